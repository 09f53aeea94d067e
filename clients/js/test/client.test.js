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

const ERASURE_ID = '9a0c6f3e1b2d4c5e8f7a6b5c4d3e2f10';
const FACE_ID = '6b1f0e3c2d4a5b6c7d8e9f0a1b2c3d4e';

function accepted(kind) {
  return {
    erasure_id: ERASURE_ID, kind, person_id: kind === 'person' ? 'jane.doe' : null, face_id: kind === 'face' ? FACE_ID : null,
    status: 'pending', command: { topic: 'facestream.enroll.requests.v1', partition: 2, offset: 118 }, receipt: `/erasures/${ERASURE_ID}`,
  };
}

function receipt(status, waitingFor) {
  const erased = !waitingFor.includes('eraser');
  const done = status === 'done';
  return {
    erasure_id: ERASURE_ID, kind: 'person', person_id: 'jane.doe', face_ids: erased ? [FACE_ID] : [], status, waiting_for: waitingFor,
    requested_at: '2026-11-25T15:02:11Z', erased_at: erased ? '2026-11-25T15:02:11.310000Z' : null,
    tombstones: erased ? [{ partition: 1, offset: 42 }] : [],
    shards: [{ group: 'replicas', partitions: [0, 1, 2], applied: done }],
    replicas: [{ replica_id: 'replica-1', group: 'replicas', partitions: [0, 1, 2], applied: done }],
    projection_applied: done, note: 'Compaction removes ...',
  };
}

/** A fetch that answers with the next [status, body] of the script (the last one repeats). */
function scriptedFetch(script, seen = []) {
  return async (url, init) => {
    seen.push({ url: String(url), method: init.method });
    const [status, body] = script.length > 1 ? script.shift() : script[0];
    return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
  };
}

const apiError = (code) => ({ code, message: code, request_id: 'r' });

describe('erasure (hermetic)', () => {
  it('deletePerson and deleteFace resolve to the 202 body', async () => {
    const seen = [];
    const fs = new FacestreamClient({ baseUrl: 'http://api.test', fetch: scriptedFetch([[202, accepted('person')], [202, accepted('face')]], seen) });
    const person = await fs.deletePerson('jane/doe');
    const face = await fs.deleteFace(FACE_ID);
    assert.deepEqual(seen, [
      { url: 'http://api.test/persons/jane%2Fdoe', method: 'DELETE' },
      { url: `http://api.test/faces/${FACE_ID}`, method: 'DELETE' },
    ]);
    assert.equal(person.erasure_id, ERASURE_ID);
    assert.equal(person.kind, 'person');
    assert.equal(person.status, 'pending');
    assert.deepEqual(person.command, { topic: 'facestream.enroll.requests.v1', partition: 2, offset: 118 });
    assert.equal(person.receipt, `/erasures/${ERASURE_ID}`);
    assert.equal(face.kind, 'face');
    assert.equal(face.face_id, FACE_ID);
  });

  it('waitForErasure polls through not_found and pending until done', async () => {
    const seen = [];
    const fs = new FacestreamClient({
      baseUrl: 'http://api.test',
      fetch: scriptedFetch([
        [404, apiError('not_found')],
        [200, receipt('pending', ['eraser', 'projection'])],
        [200, receipt('pending', ['replicas', 'projection'])],
        [200, receipt('done', [])],
      ], seen),
    });
    const done = await fs.waitForErasure(ERASURE_ID, { timeoutMs: 5_000, intervalMs: 10 });
    assert.equal(seen.length, 4);
    assert.ok(seen.every((r) => r.method === 'GET' && r.url === `http://api.test/erasures/${ERASURE_ID}`));
    assert.equal(done.status, 'done');
    assert.deepEqual(done.waiting_for, []);
    assert.deepEqual(done.face_ids, [FACE_ID]);
    assert.equal(done.projection_applied, true);
  });

  for (const code of ['unknown_person', 'unknown_face']) {
    it(`waitForErasure rejects with ${code} when there was nothing to erase`, async () => {
      const fs = new FacestreamClient({ baseUrl: 'http://api.test', fetch: scriptedFetch([[200, receipt('pending', ['eraser', 'projection'])], [404, apiError(code)]]) });
      await assert.rejects(fs.waitForErasure(ERASURE_ID, { timeoutMs: 5_000, intervalMs: 10 }), (e) => e instanceof FacestreamError && e.status === 404 && e.code === code);
    });
  }

  it('waitForErasure rejects with timeout and where the erasure stood', async () => {
    const fs = new FacestreamClient({ baseUrl: 'http://api.test', fetch: scriptedFetch([[200, receipt('pending', ['replicas', 'projection'])]]) });
    const started = Date.now();
    await assert.rejects(fs.waitForErasure(ERASURE_ID, { timeoutMs: 200, intervalMs: 50 }), (e) => {
      assert.ok(e instanceof FacestreamError);
      assert.equal(e.code, 'timeout');
      assert.equal(e.status, 0);
      assert.deepEqual(e.body, { erasure_id: ERASURE_ID, status: 'pending', waiting_for: ['replicas', 'projection'] });
      assert.match(e.message, /replicas, projection/);
      return true;
    });
    assert.ok(Date.now() - started >= 200);
    const unknown = new FacestreamClient({ baseUrl: 'http://api.test', fetch: scriptedFetch([[404, apiError('not_found')]]) });
    await assert.rejects(unknown.waitForErasure(ERASURE_ID, { timeoutMs: 50, intervalMs: 10 }), (e) => e.code === 'timeout' && e.body.last_error === 'not_found');
  });

  it('erasure() rejects with the API code', async () => {
    const fs = new FacestreamClient({ baseUrl: 'http://api.test', fetch: scriptedFetch([[404, apiError('unknown_face')]]) });
    await assert.rejects(fs.erasure(ERASURE_ID), (e) => e.status === 404 && e.code === 'unknown_face');
  });
});

function galleryBody(id = 'watchlist', counts = {}) {
  return {
    id, description: 'Persons of interest, site A', pack: 'default', threshold: 0.5,
    quality_filter_enroll: 'medium', quality_filter_identify: 'none',
    index: { backend: 'faiss-ivfpq', options: { nlist: 64, m: 16 } }, generation: 0, state: 'active',
    created_by: 'key-1a2b', created_at: '2026-11-30T18:02:11.120000+00:00', ...counts,
  };
}

/** A fetch that records method, url and body and answers 200 {} (or what `answer` returns). */
function recordingFetch(seen, answer = () => [200, {}]) {
  return async (url, init) => {
    seen.push({ method: init.method, url: String(url), headers: init.headers, body: init.body });
    const [status, body] = answer(String(url), init);
    return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
  };
}

async function useEveryGalleryRoute(fs) {
  await fs.enroll('jane.doe', [new Uint8Array([1])], { qualityFilter: 'high' });
  await fs.identify(new Uint8Array([1]), { topK: 2 });
  await fs.getPerson('jane.doe');
  await fs.listPersons({ limit: 10 });
  await fs.deletePerson('jane.doe');
  await fs.deleteFace(FACE_ID);
  await fs.stats();
  await fs.health();
  await fs.erasure(ERASURE_ID);
}

describe('galleries (hermetic)', () => {
  it('a client without a gallery uses the routes without one', async () => {
    const seen = [];
    const fs = new FacestreamClient({ baseUrl: 'http://api.test', fetch: recordingFetch(seen) });
    assert.equal(fs.gallery, null);
    await useEveryGalleryRoute(fs);
    assert.deepEqual(seen.map((r) => `${r.method} ${r.url.replace('http://api.test', '')}`), [
      'POST /enroll/jane.doe?quality_filter=high',
      'POST /identify?top_k=2',
      'GET /persons/jane.doe',
      'GET /persons?limit=10&offset=0',
      'DELETE /persons/jane.doe',
      `DELETE /faces/${FACE_ID}`,
      'GET /stats',
      'GET /health',
      `GET /erasures/${ERASURE_ID}`,
    ]);
  });

  it('a gallery client scopes every gallery route but health and receipts', async () => {
    const seen = [];
    const fs = new FacestreamClient({ baseUrl: 'http://api.test', apiKey: 'k', gallery: 'watchlist', fetch: recordingFetch(seen) });
    await useEveryGalleryRoute(fs);
    assert.deepEqual(seen.map((r) => `${r.method} ${r.url.replace('http://api.test', '')}`), [
      'POST /galleries/watchlist/enroll/jane.doe?quality_filter=high',
      'POST /galleries/watchlist/identify?top_k=2',
      'GET /galleries/watchlist/persons/jane.doe',
      'GET /galleries/watchlist/persons?limit=10&offset=0',
      'DELETE /galleries/watchlist/persons/jane.doe',
      `DELETE /galleries/watchlist/faces/${FACE_ID}`,
      'GET /galleries/watchlist/stats',
      'GET /health',
      `GET /erasures/${ERASURE_ID}`,
    ]);
    assert.ok(seen.every((r) => r.headers['X-API-Key'] === 'k'));
  });

  it("a call's gallery overrides the client's, and ids are escaped", async () => {
    const seen = [];
    const fs = new FacestreamClient({ baseUrl: 'http://api.test', gallery: 'watchlist', fetch: recordingFetch(seen) });
    await fs.identify(new Uint8Array([1]), { gallery: 'staff', qualityFilter: 'medium' });
    await fs.enroll('jane.doe', [new Uint8Array([1])], { gallery: 'default' });
    await fs.stats({ gallery: 'a/b' });
    await new FacestreamClient({ baseUrl: 'http://api.test', fetch: recordingFetch(seen) }).deletePerson('jane.doe', { gallery: 'site-b_2' });
    assert.deepEqual(seen.map((r) => `${r.method} ${r.url.replace('http://api.test', '')}`), [
      'POST /galleries/staff/identify?quality_filter=medium',
      'POST /galleries/default/enroll/jane.doe',
      'GET /galleries/a%2Fb/stats',
      'DELETE /galleries/site-b_2/persons/jane.doe',
    ]);
  });

  it('createGallery sends JSON with only what is given', async () => {
    const seen = [];
    const fs = new FacestreamClient({ baseUrl: 'http://api.test', apiKey: 'admin', fetch: recordingFetch(seen, () => [201, galleryBody()]) });
    const created = await fs.createGallery('watchlist', {
      description: 'Persons of interest, site A', threshold: 0.5, qualityFilterEnroll: 'medium',
      indexBackend: 'faiss-ivfpq', indexOptions: { nlist: 64, m: 16 },
    });
    await fs.createGallery('bare');
    await fs.createGallery('tuned', { indexOptions: { nprobe: 8 } });
    assert.ok(seen.every((r) => r.method === 'POST' && r.url === 'http://api.test/galleries'));
    assert.ok(seen.every((r) => r.headers['Content-Type'] === 'application/json'));
    assert.deepEqual(seen.map((r) => JSON.parse(r.body)), [
      {
        id: 'watchlist', description: 'Persons of interest, site A', threshold: 0.5, quality_filter_enroll: 'medium',
        index: { backend: 'faiss-ivfpq', options: { nlist: 64, m: 16 } },
      },
      { id: 'bare' },
      { id: 'tuned', index: { backend: '', options: { nprobe: 8 } } },
    ]);
    assert.deepEqual(created, galleryBody());
  });

  it('createGallery rejects with gallery_exists', async () => {
    const fs = new FacestreamClient({ baseUrl: 'http://api.test', fetch: fakeFetch(409, { code: 'gallery_exists', message: 'taken' }) });
    await assert.rejects(fs.createGallery('watchlist'), (e) => e instanceof FacestreamError && e.status === 409 && e.code === 'gallery_exists');
  });

  it('lists, reads, replays and deletes galleries by the id given', async () => {
    const seen = [];
    const answers = {
      'GET http://api.test/galleries': [200, { galleries: [galleryBody('default'), galleryBody()] }],
      'GET http://api.test/galleries/watchlist': [200, galleryBody('watchlist', { persons: 3, faces: 11 })],
      'POST http://api.test/galleries/watchlist/replay': [202, { gallery: 'watchlist', generation: 1 }],
      'DELETE http://api.test/galleries/watchlist': [202, { ...accepted('gallery'), kind: 'gallery', gallery: 'watchlist', person_id: null }],
      'GET http://api.test/galleries/nowhere': [404, { code: 'unknown_gallery', message: 'no' }],
    };
    const fs = new FacestreamClient({
      baseUrl: 'http://api.test', gallery: 'staff', fetch: recordingFetch(seen, (url, init) => answers[`${init.method} ${url}`]),
    });
    const listed = await fs.listGalleries();
    assert.deepEqual(listed.map((g) => g.id), ['default', 'watchlist']);
    const one = await fs.getGallery('watchlist');
    assert.deepEqual([one.persons, one.faces], [3, 11]);
    assert.deepEqual(await fs.replayGallery('watchlist'), { gallery: 'watchlist', generation: 1 });
    const erasure = await fs.deleteGallery('watchlist');
    assert.deepEqual([erasure.kind, erasure.gallery, erasure.receipt], ['gallery', 'watchlist', `/erasures/${ERASURE_ID}`]);
    await assert.rejects(fs.getGallery('nowhere'), (e) => e.status === 404 && e.code === 'unknown_gallery');
    assert.equal(seen.length, 5);
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

    // Erasure: 202 with an erasure id at once, then the receipt until it is done.
    const faceId = enrolled.accepted[0].face_id;
    const faceAccepted = await fs.deleteFace(faceId);
    assert.equal(faceAccepted.kind, 'face');
    assert.equal(faceAccepted.face_id, faceId);
    assert.equal(faceAccepted.status, 'pending');
    assert.equal(faceAccepted.receipt, `/erasures/${faceAccepted.erasure_id}`);
    const faceReceipt = await fs.waitForErasure(faceAccepted.erasure_id, { timeoutMs: 60_000 });
    assert.equal(faceReceipt.status, 'done');
    assert.deepEqual(faceReceipt.waiting_for, []);
    assert.deepEqual(faceReceipt.face_ids, [faceId]);
    assert.equal(faceReceipt.person_id, personId);
    assert.equal(faceReceipt.projection_applied, true);
    assert.ok(faceReceipt.replicas.length >= 1 && faceReceipt.replicas.every((r) => r.applied), JSON.stringify(faceReceipt));
    // Done means the projection applied it: the row is gone now, not eventually.
    const remaining = enrolled.accepted.slice(1).map((a) => a.face_id).sort();
    assert.deepEqual((await fs.getPerson(personId)).faces.map((f) => f.face_id).sort(), remaining);

    const accepted = await fs.deletePerson(personId);
    assert.equal(accepted.kind, 'person');
    assert.equal(accepted.person_id, personId);
    const receipt = await fs.waitForErasure(accepted.erasure_id, { timeoutMs: 60_000 });
    assert.equal(receipt.status, 'done');
    assert.equal(receipt.kind, 'person');
    assert.deepEqual([...receipt.face_ids].sort(), remaining);
    const again = await fs.erasure(accepted.erasure_id); // done stays done
    assert.equal(again.status, 'done');
    assert.deepEqual([again.face_ids, again.tombstones], [receipt.face_ids, receipt.tombstones]);
    await assert.rejects(fs.getPerson(personId), (e) => e.status === 404 && e.code === 'unknown_person');
    const after = await fs.identify(probe, { topK: 10 });
    assert.ok(!after.candidates.some((c) => c.person_id === personId), JSON.stringify(after.candidates));
  });

  it('creates a gallery, enrolls and identifies in it, and deletes it', async () => {
    const gallery = `js-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
    const created = await fs.createGallery(gallery, { description: 'js client test', threshold: 0.3 });
    assert.deepEqual([created.id, created.threshold, created.state], [gallery, 0.3, 'active']);
    assert.ok((await fs.listGalleries()).some((g) => g.id === gallery));
    const inGallery = new FacestreamClient({ gallery });
    const photos = await photosOf('george_clooney');
    const enrolled = await eventually('enrollment in the new gallery', () => inGallery.enroll('john.roe', photos.slice(0, -1)));
    assert.ok(enrolled.accepted.length >= 1, JSON.stringify(enrolled));
    const match = await inGallery.identify(photos.at(-1), { minOffsets: enrolled.offsets });
    assert.deepEqual([match.person_id, match.unknown, match.threshold], ['john.roe', false, 0.3]);
    const counted = await eventually('counts', async () => {
      const g = await fs.getGallery(gallery);
      return g.faces ? g : null;
    });
    assert.deepEqual([counted.persons, counted.faces], [1, enrolled.accepted.length]);
    const accepted = await fs.deleteGallery(gallery);
    assert.deepEqual([accepted.kind, accepted.gallery], ['gallery', gallery]);
    const receipt = await fs.waitForErasure(accepted.erasure_id, { timeoutMs: 90_000 });
    assert.equal(receipt.status, 'done');
    assert.equal(receipt.kind, 'gallery');
    await assert.rejects(fs.identify(photos.at(-1), { gallery }), (e) => ['unknown_gallery', 'gallery_deleting'].includes(e.code));
  });

  it('raises FacestreamError with the API code', async () => {
    await assert.rejects(fs.getPerson('never.enrolled.js'), (e) => e instanceof FacestreamError && e.status === 404 && e.code === 'unknown_person');
    await assert.rejects(fs.identify(new Uint8Array([1, 2, 3, 4])), (e) => e.status === 422 && e.code === 'undecodable_image');
    await assert.rejects(fs.enroll('bad id!', [new Uint8Array([1])]), (e) => e.status === 422 && e.code === 'invalid_person_id');
    await assert.rejects(fs.erasure('f'.repeat(32)), (e) => e.status === 404 && e.code === 'not_found');
    const nothing = await fs.deleteFace('e'.repeat(32));
    await assert.rejects(fs.waitForErasure(nothing.erasure_id, { timeoutMs: 60_000 }), (e) => e.status === 404 && e.code === 'unknown_face');
    const anonymous = new FacestreamClient({ apiKey: '' });
    await assert.rejects(anonymous.stats(), (e) => e.status === 401 && e.code === 'unauthorized');
  });
});
