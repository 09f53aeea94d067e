// facestream REST client for Node >= 20 (and browsers): global fetch, FormData and Blob only.
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';

/**
 * @typedef {{x: number, y: number, width: number, height: number}} BBox
 * @typedef {{filename: string, face_id: string, quality: number, bbox: BBox}} AcceptedImage
 * @typedef {{filename: string, reason: string, message: string}} RejectedImage
 * @typedef {{person_id: string, enrollment_id: string, model: string,
 *            accepted: AcceptedImage[], rejected: RejectedImage[], offsets: Record<string, number>}} EnrollResult
 * @typedef {{person_id: string, similarity: number}} Candidate
 * @typedef {{request_id: string, person_id: string|null, similarity: number|null, unknown: boolean,
 *            threshold: number, candidates: Candidate[], model: string, bbox: BBox|null,
 *            gallery_size: number, timings_ms: Record<string, number>}} IdentifyResult
 * @typedef {{face_id: string, quality: number, bbox: BBox, model_id: string, created_at: string}} Face
 * @typedef {{person_id: string, face_count: number, faces: Face[], created_at: string,
 *            updated_at: string}} Person
 * @typedef {{items: {person_id: string, face_count: number, created_at: string, updated_at: string}[],
 *            total: number, limit: number, offset: number}} PersonPage
 * @typedef {{topic: string, partition: number, offset: number}} LogPosition
 * @typedef {{erasure_id: string, kind: 'person'|'face'|'gallery', gallery: string, person_id: string|null,
 *            face_id: string|null, status: 'pending', command: LogPosition, receipt: string}} ErasureAccepted
 *   202 from a DELETE: the erasure command is on the log (`command`); `receipt` is
 *   `/erasures/<erasure_id>`. Follow it with `erasure()` or `waitForErasure()`.
 * @typedef {{partition: number, offset: number}} TombstonePosition
 * @typedef {{group: string, partitions: number[], applied: boolean}} ShardProgress
 * @typedef {{replica_id: string, group: string, partitions: number[], applied: boolean}} ReplicaProgress
 * @typedef {{erasure_id: string, kind: 'person'|'face'|'gallery', gallery: string, person_id: string|null,
 *            face_ids: string[], face_count?: number|null, status: 'pending'|'done', waiting_for: ('eraser'|'replicas'|'projection')[],
 *            requested_at: string|null, erased_at: string|null, tombstones: TombstonePosition[],
 *            shards: ShardProgress[], replicas: ReplicaProgress[], projection_applied: boolean,
 *            note: string}} ErasureReceipt
 *   `done` when every ready replica has applied the tombstones and the database projection has
 *   applied the erasure; until then `waiting_for` says what it waits for.
 * @typedef {{persons: number|null, faces: number|null, gallery_size: number, replicas: object[],
 *            in_flight: number, threshold: number, model: string, consumer_lag: object[]}} Stats
 * @typedef {{status: 'ready'|'degraded'|'unavailable', live: boolean, ready: boolean,
 *            checks: Record<string, boolean>, detail: Record<string, string>}} Health
 * @typedef {string | Uint8Array | Blob | {filename: string, data: Uint8Array | Blob}} ImageInput
 *   A file path (Node), raw bytes, a Blob, or a named pair.
 * @typedef {'none'|'low'|'medium'|'high'|'auto'} QualityFilter
 * @typedef {{backend: string, options: Record<string, number|string>}} IndexSpec
 *   `backend` '' is the deployment's default.
 * @typedef {{id: string, description: string, pack: string, threshold: number,
 *            quality_filter_enroll: QualityFilter, quality_filter_identify: QualityFilter,
 *            index: IndexSpec, generation: number, state: 'active'|'deleting', created_by: string,
 *            created_at: string, persons?: number|null, faces?: number|null}} Gallery
 *   The policies in force (the gallery's own, else the deployment's); `persons` and `faces`
 *   from `getGallery()`.
 * @typedef {{gallery: string, generation: number}} GalleryReplay
 * @typedef {{gallery?: string}} InGallery
 *   `gallery` overrides the client's for one call; `'default'` names the default gallery.
 */

/** Every failure: an API error (its `code` and HTTP `status`) or a transport error (`status` 0). */
export class FacestreamError extends Error {
  /**
   * @param {string} code machine-readable code (`no_face`, `unknown_person`, `timeout`, ...)
   * @param {string} message
   * @param {number} [status] HTTP status, 0 for a transport failure
   * @param {Record<string, any>} [body] the parsed error body
   */
  constructor(code, message, status = 0, body = {}) {
    super(status ? `${status} ${code}: ${message}` : `${code}: ${message}`);
    this.name = 'FacestreamError';
    this.code = code;
    this.status = status;
    this.body = body;
  }
}

const seg = (value) => encodeURIComponent(String(value));

// Codes waitForErasure polls through: another API instance may not have read the erasure off
// the ledger yet. unknown_person / unknown_face (nothing to erase) are final.
const ERASURE_NOT_YET = new Set(['not_found']);

function erasureTimeout(erasureId, timeoutMs, last) {
  const body = { erasure_id: erasureId };
  let where = 'no answer';
  if (last instanceof FacestreamError) {
    body.last_error = last.code;
    where = `last answer ${last.status} ${last.code}`;
  } else if (last) {
    body.status = last.status;
    body.waiting_for = [...(last.waiting_for ?? [])];
    where = `still ${last.status}, waiting for ${body.waiting_for.join(', ') || 'nothing'}`;
  }
  return new FacestreamError('timeout', `erasure ${erasureId} not done after ${timeoutMs} ms: ${where}`, 0, body);
}

export class FacestreamClient {
  /**
   * @param {{baseUrl?: string, apiKey?: string, gallery?: string, timeoutMs?: number, fetch?: typeof fetch}} [options]
   *   Defaults: FACESTREAM_API_URL / FACESTREAM_API_KEY from the environment, 60 s timeout.
   *   `gallery` pins the client to one gallery: enroll, identify, persons, faces and stats go to
   *   `/galleries/<gallery>/...`; without it they use the routes without a gallery (`default`).
   */
  constructor(options = {}) {
    const env = globalThis.process?.env ?? {};
    this.baseUrl = (options.baseUrl ?? env.FACESTREAM_API_URL ?? 'http://127.0.0.1:8000').replace(/\/+$/, '');
    this.apiKey = options.apiKey ?? env.FACESTREAM_API_KEY;
    this.gallery = options.gallery ?? null;
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /** A gallery route's path: under `/galleries/<gallery>` when the call or the client names one. */
  #scoped(path, gallery) {
    const chosen = gallery ?? this.gallery;
    return chosen == null ? path : `/galleries/${seg(chosen)}${path}`;
  }

  /**
   * @param {string} personId
   * @param {ImageInput[]} images
   * @param {{qualityFilter?: QualityFilter} & InGallery} [options]
   * @returns {Promise<EnrollResult>} a 422 (no image accepted) throws, with `body.rejected`
   */
  async enroll(personId, images, { qualityFilter, gallery } = {}) {
    if (!images.length) throw new TypeError('enroll needs at least one image');
    const form = new FormData();
    for (const [i, image] of images.entries()) {
      const { blob, filename } = await toBlob(image, i);
      form.append('images', blob, filename);
    }
    const query = qualityFilter ? { quality_filter: qualityFilter } : {};
    return this.#send('POST', this.#scoped(`/enroll/${seg(personId)}`, gallery), { body: form, query });
  }

  /**
   * @param {ImageInput} image
   * @param {{topK?: number, threshold?: number, minOffsets?: Record<string, number> | string,
   *          qualityFilter?: QualityFilter} & InGallery} [options]
   *   `minOffsets`: an enrollment's `offsets`, so that only replicas that applied it answer.
   * @returns {Promise<IdentifyResult>}
   */
  async identify(image, options = {}) {
    const form = new FormData();
    const { blob, filename } = await toBlob(image, 0);
    form.append('image', blob, filename);
    const query = {};
    if (options.qualityFilter) query.quality_filter = options.qualityFilter;
    if (options.topK !== undefined) query.top_k = options.topK;
    if (options.threshold !== undefined) query.threshold = options.threshold;
    if (options.minOffsets) {
      query.min_offsets = typeof options.minOffsets === 'string'
        ? options.minOffsets
        : Object.entries(options.minOffsets).map(([p, o]) => `${p}:${o}`).join(',');
    }
    return this.#send('POST', this.#scoped('/identify', options.gallery), { body: form, query });
  }

  /** @param {string} personId @param {InGallery} [options] @returns {Promise<Person>} */
  getPerson(personId, { gallery } = {}) {
    return this.#send('GET', this.#scoped(`/persons/${seg(personId)}`, gallery));
  }

  /** @param {{limit?: number, offset?: number} & InGallery} [page] @returns {Promise<PersonPage>} */
  listPersons({ limit = 100, offset = 0, gallery } = {}) {
    return this.#send('GET', this.#scoped('/persons', gallery), { query: { limit, offset } });
  }

  /**
   * Erase a person: every face enrolled before this call leaves every index and the database.
   * The API answers 202 at once; `waitForErasure(accepted.erasure_id)` waits until it is done.
   * @param {string} personId
   * @param {InGallery} [options]
   * @returns {Promise<ErasureAccepted>}
   */
  deletePerson(personId, { gallery } = {}) {
    return this.#send('DELETE', this.#scoped(`/persons/${seg(personId)}`, gallery));
  }

  /** Erase one face (202 at once). @param {string} faceId @param {InGallery} [options] @returns {Promise<ErasureAccepted>} */
  deleteFace(faceId, { gallery } = {}) {
    return this.#send('DELETE', this.#scoped(`/faces/${seg(faceId)}`, gallery));
  }

  /**
   * The receipt of an erasure, `pending` or `done`. Rejects with a 404 `unknown_person` /
   * `unknown_face` when the log held nothing to erase, `not_found` for an unknown id.
   * @param {string} erasureId
   * @returns {Promise<ErasureReceipt>}
   */
  erasure(erasureId) {
    return this.#send('GET', `/erasures/${seg(erasureId)}`);
  }

  /**
   * Poll the receipt every `intervalMs` until it is `done` and resolve to it. Rejects with the
   * 404 `unknown_person` / `unknown_face` when there was nothing to erase, and with a
   * FacestreamError `timeout` (status 0, `body` with the last `status` and `waiting_for`) when it
   * is not done within `timeoutMs`. `not_found` is polled through until the deadline (another
   * API instance may not have read the erasure yet).
   * @param {string} erasureId
   * @param {{timeoutMs?: number, intervalMs?: number}} [options] defaults 60 s and 500 ms
   * @returns {Promise<ErasureReceipt>}
   */
  async waitForErasure(erasureId, { timeoutMs = 60_000, intervalMs = 500 } = {}) {
    if (!(timeoutMs >= 0) || !(intervalMs > 0)) throw new RangeError('waitForErasure needs timeoutMs >= 0 and intervalMs > 0');
    const deadline = Date.now() + timeoutMs;
    let last = null;
    for (;;) {
      try {
        last = await this.erasure(erasureId);
        if (last.status === 'done') return last;
      } catch (err) {
        if (!(err instanceof FacestreamError) || !ERASURE_NOT_YET.has(err.code)) throw err;
        last = err;
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw erasureTimeout(erasureId, timeoutMs, last);
      await new Promise((r) => setTimeout(r, Math.min(intervalMs, remaining)));
    }
  }

  /** @param {InGallery} [options] @returns {Promise<Stats>} */
  stats({ gallery } = {}) {
    return this.#send('GET', this.#scoped('/stats', gallery));
  }

  /** Readiness; a 503 resolves to `{ready: false, ...}` rather than throwing. @returns {Promise<Health>} */
  health() {
    return this.#send('GET', '/health', { okStatuses: [503] });
  }

  /**
   * Create a gallery (an admin key for every gallery). What is left out is the deployment's:
   * its pack, threshold, quality filters and index backend. Rejects with 409 `gallery_exists`
   * when the id is taken.
   * @param {string} galleryId 1-63 of [a-z0-9_-], starting with a letter or digit
   * @param {{description?: string, pack?: string, threshold?: number,
   *          qualityFilterEnroll?: QualityFilter, qualityFilterIdentify?: QualityFilter,
   *          indexBackend?: string, indexOptions?: Record<string, number|string>}} [options]
   * @returns {Promise<Gallery>}
   */
  createGallery(galleryId, options = {}) {
    const body = { id: galleryId };
    const given = {
      description: options.description,
      pack: options.pack,
      threshold: options.threshold,
      quality_filter_enroll: options.qualityFilterEnroll,
      quality_filter_identify: options.qualityFilterIdentify,
    };
    for (const [k, v] of Object.entries(given)) if (v !== undefined) body[k] = v;
    if (options.indexBackend !== undefined || options.indexOptions !== undefined) {
      body.index = { backend: options.indexBackend ?? '', options: { ...(options.indexOptions ?? {}) } };
    }
    return this.#send('POST', '/galleries', { json: body });
  }

  /** The galleries this key may see. @returns {Promise<Gallery[]>} */
  async listGalleries() {
    return (await this.#send('GET', '/galleries')).galleries;
  }

  /** One gallery with its counts; rejects with 404 `unknown_gallery`. @param {string} galleryId @returns {Promise<Gallery>} */
  getGallery(galleryId) {
    return this.#send('GET', `/galleries/${seg(galleryId)}`);
  }

  /**
   * Delete a gallery: an erasure of every face in it (202 at once, kind `gallery`); follow it
   * with `waitForErasure()`. The `default` gallery cannot be deleted (409).
   * @param {string} galleryId
   * @returns {Promise<ErasureAccepted>}
   */
  deleteGallery(galleryId) {
    return this.#send('DELETE', `/galleries/${seg(galleryId)}`);
  }

  /** Every replica rebuilds this gallery's index from the log (202). @param {string} galleryId @returns {Promise<GalleryReplay>} */
  replayGallery(galleryId) {
    return this.#send('POST', `/galleries/${seg(galleryId)}/replay`);
  }

  async #send(method, path, { body, json, query, okStatuses = [] } = {}) {
    const url = new URL(this.baseUrl + path);
    for (const [k, v] of Object.entries(query ?? {})) url.searchParams.set(k, String(v));
    const headers = { Accept: 'application/json' };
    if (this.apiKey) headers['X-API-Key'] = this.apiKey;
    if (json !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(json);
    }
    let response;
    try {
      response = await this.fetch(url, { method, headers, body, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      const timedOut = err?.name === 'TimeoutError' || err?.name === 'AbortError';
      throw new FacestreamError(timedOut ? 'timeout' : 'connection_error', String(err?.message ?? err));
    }
    const text = await response.text();
    let parsed = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = null;
    }
    if (response.ok || okStatuses.includes(response.status)) return parsed;
    if (parsed && typeof parsed === 'object') {
      throw new FacestreamError(String(parsed.code ?? 'http_error'), String(parsed.message ?? ''), response.status, parsed);
    }
    throw new FacestreamError('http_error', text.slice(0, 200) || response.statusText, response.status);
  }
}

const TYPES = { '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.png': 'image/png', '.webp': 'image/webp', '.bmp': 'image/bmp' };

function typeOf(filename) {
  const dot = filename.lastIndexOf('.');
  return TYPES[dot >= 0 ? filename.slice(dot).toLowerCase() : ''] ?? 'application/octet-stream';
}

/** @param {ImageInput} image @param {number} index */
async function toBlob(image, index) {
  if (typeof image === 'string') {
    const filename = basename(image);
    return { blob: new Blob([await readFile(image)], { type: typeOf(filename) }), filename };
  }
  if (image instanceof Blob) return { blob: image, filename: image.name ?? `image-${index}.jpg` };
  if (image instanceof Uint8Array) return { blob: new Blob([image], { type: 'image/jpeg' }), filename: `image-${index}.jpg` };
  if (image && typeof image === 'object' && 'filename' in image) {
    const data = image.data instanceof Blob ? image.data : new Blob([image.data], { type: typeOf(image.filename) });
    return { blob: data, filename: image.filename };
  }
  throw new TypeError('an image is a path, a Uint8Array, a Blob or {filename, data}');
}
