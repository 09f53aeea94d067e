// Hermetic tests (a fake fetch) always run; the live tests run against a stack when
// FACESTREAM_API_URL and FACESTREAM_API_KEY are set (tests/integration/clients sets them).
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { FacestreamClient, FacestreamError } from '../src/index.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const FACES = process.env.FACESTREAM_FACES_DIR ?? join(REPO, '..', 'shared', 'faces');
const LIVE = Boolean(process.env.FACESTREAM_API_URL && process.env.FACESTREAM_API_KEY);

function fakeFetch(status, body, seen = []) {
  return async (url, init) => {
    seen.push({ url: String(url), init });
    return new Response(typeof body === 'string' ? body : JSON.stringify(body), {
      status,
      headers: { 'content-type': 'application/json' },
    });
  };
}

describe('FacestreamClient (hermetic)', () => {
  it('sends the key, the multipart field and the query', async () => {
    const seen = [];
    const fs = new FacestreamClient({ baseUrl: 'http://api.test/', apiKey: 'k1', fetch: fakeFetch(200, { person_id: null, unknown: true }, seen) });
    const result = await fs.identify(new Uint8Array([1, 2, 3]), { topK: 3, threshold: 0.5 });
    assert.equal(result.unknown, true);
    const { url, init } = seen[0];
    assert.equal(url, 'http://api.test/identify?top_k=3&threshold=0.5');
    assert.equal(init.method, 'POST');
    assert.equal(init.headers['X-API-Key'], 'k1');
    assert.ok(init.body instanceof FormData);
    assert.ok(init.body.get('image') instanceof Blob);
  });

  it('repeats the images field and escapes the person id', async () => {
    const seen = [];
    const fs = new FacestreamClient({ baseUrl: 'http://api.test', apiKey: 'k', fetch: fakeFetch(201, { accepted: [], rejected: [] }, seen) });
    await fs.enroll('jane/doe', [new Uint8Array([1]), { filename: 'b.png', data: new Uint8Array([2]) }]);
    assert.equal(seen[0].url, 'http://api.test/enroll/jane%2Fdoe');
    const parts = seen[0].init.body.getAll('images');
    assert.equal(parts.length, 2);
    assert.equal(parts[1].name, 'b.png');
  });

  it('turns an error body into a FacestreamError with code and status', async () => {
    const fs = new FacestreamClient({ baseUrl: 'http://api.test', fetch: fakeFetch(404, { code: 'unknown_person', message: 'no person' }) });
    await assert.rejects(fs.getPerson('x'), (err) => err instanceof FacestreamError && err.code === 'unknown_person' && err.status === 404);
  });

  it('answers health with ready=false on 503 instead of throwing', async () => {
    const fs = new FacestreamClient({ baseUrl: 'http://api.test', fetch: fakeFetch(503, { status: 'unavailable', live: true, ready: false, checks: {} }) });
    assert.equal((await fs.health()).ready, false);
  });

  it('reports a transport failure as connection_error', async () => {
    const fs = new FacestreamClient({ baseUrl: 'http://api.test', fetch: async () => { throw new TypeError('fetch failed'); } });
    await assert.rejects(fs.stats(), (err) => err instanceof FacestreamError && err.code === 'connection_error' && err.status === 0);
  });
});

async function photosOf(person) {
  const folder = join(FACES, 'people', person);
  return (await readdir(folder)).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort().map((f) => join(folder, f));
}

async function eventually(what, probe, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await probe();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  const seen = last instanceof Error ? last.message : JSON.stringify(last);
  throw new Error(`timed out waiting for ${what}; last: ${seen}`);
}

describe('FacestreamClient (live stack)', { skip: !LIVE && 'FACESTREAM_API_URL / FACESTREAM_API_KEY not set' }, () => {
  const fs = new FacestreamClient();
  const personId = `js.${Date.now().toString(36)}.${Math.random().toString(36).slice(2, 8)}`;

  it('is healthy', async () => {
    const health = await fs.health();
    assert.equal(health.ready, true);
    assert.equal(health.checks.broker, true);
  });

  it('enrolls, identifies, reads, lists and erases a person', async () => {
    const photos = await photosOf('george_clooney');
    const enrolled = await fs.enroll(personId, photos.slice(0, -1));
    assert.equal(enrolled.person_id, personId);
    assert.ok(enrolled.accepted.length >= 2, JSON.stringify(enrolled));
    const probe = photos.at(-1);
    // The gallery may already hold these photos under another name (an earlier run, another
    // client): then that name can rank first with the same similarity. Ours must be a candidate
    // above the threshold; when it is not, say what the API answered.
    const match = await eventually('identification', async () => {
      const r = await fs.identify(probe, { topK: 10 });
      const ours = r.candidates.find((c) => c.person_id === personId);
      if (ours) return { ...r, ours };
      throw new Error(`${personId} not among the candidates: ${JSON.stringify({ person_id: r.person_id, similarity: r.similarity, candidates: r.candidates })}`);
    });
    assert.equal(match.unknown, false);
    assert.ok(match.ours.similarity >= match.threshold, JSON.stringify(match));

    const person = await eventually('projection', () => fs.getPerson(personId).catch(() => null));
    assert.equal(person.face_count, enrolled.accepted.length);
    const page = await fs.listPersons({ limit: 1000 });
    assert.ok(page.items.some((p) => p.person_id === personId));
    // Replica heartbeats (and so /stats) trail the index by up to one status interval.
    const stats = await eventually('stats', async () => {
      const s = await fs.stats();
      return s.gallery_size >= enrolled.accepted.length ? s : null;
    });
    assert.ok(stats.replicas.length >= 1);

    const faceId = enrolled.accepted[0].face_id;
    const faceReceipt = await fs.deleteFace(faceId);
    assert.deepEqual(faceReceipt.face_ids, [faceId]);
    const receipt = await fs.deletePerson(personId);
    assert.equal(receipt.person_id, personId);
    await eventually('erasure', () => fs.getPerson(personId).then(() => false, (e) => e.code === 'unknown_person'));
  });

  it('raises FacestreamError with the API code', async () => {
    await assert.rejects(fs.getPerson('never.enrolled.js'), (e) => e instanceof FacestreamError && e.status === 404 && e.code === 'unknown_person');
    await assert.rejects(fs.identify(new Uint8Array([1, 2, 3, 4])), (e) => e.status === 422 && e.code === 'undecodable_image');
    await assert.rejects(fs.enroll('bad id!', [new Uint8Array([1])]), (e) => e.status === 422 && e.code === 'invalid_person_id');
    const anonymous = new FacestreamClient({ apiKey: '' });
    await assert.rejects(anonymous.stats(), (e) => e.status === 401 && e.code === 'unauthorized');
  });
});
