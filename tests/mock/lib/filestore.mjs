// What the Files API and cachedContents hold, and the checks of the
// references requests make to them. Everything belongs to the API key that
// created it: each key stands for its own Google project, and a project sees
// only its own files and cached contents.

import { createHash, randomBytes } from 'node:crypto';
import { cachedContentNotFound, fileNotAccessible, invalidArgument } from './errors.mjs';

/** Google keeps an uploaded file for 48 hours. */
export const FILE_LIFETIME_MS = 48 * 3600 * 1000;
/** A cached content created without `ttl` or `expireTime` lives one hour. */
export const DEFAULT_CACHE_TTL_MS = 3600 * 1000;
/** Google's resumable uploads take chunks in multiples of 8 MiB (the last one excepted). */
export const UPLOAD_CHUNK_GRANULARITY = 8 * 1024 * 1024;
/** Google's per-file limit. */
export const MAX_FILE_BYTES = 2 * 1024 * 1024 * 1024;

const GOOGLE_FILES_PREFIX = 'https://generativelanguage.googleapis.com/v1beta/files/';
const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
const ID_LENGTH = 12;
/** A name a client may choose: up to 40 lowercase alphanumerics or dashes, no dash at either end. */
export const FILE_ID = /^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$/;

const stamp = (ms) => new Date(ms).toISOString();

/**
 * The `sha256Hash` Google returns: the base64 of the SHA-256's lowercase
 * **hex** digest (88 characters), not of the raw digest. Decoded, it reads
 * as the `sha256sum` of the bytes.
 */
export function googleSha256(bytes) {
  return Buffer.from(createHash('sha256').update(bytes).digest('hex'), 'latin1').toString('base64');
}

/** A fresh id: 12 lowercase alphanumerics (Google's generated ids are `[a-z0-9]`). */
function freshId(taken) {
  // Collisions are vanishingly rare; the bound only keeps the loop finite.
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const id = Array.from(randomBytes(ID_LENGTH), (b) => ID_ALPHABET[b % ID_ALPHABET.length]).join('');
    if (!taken.has(id)) return id;
  }
  throw new Error('no free resource id after 100 attempts');
}

/** A record from `map` that has not expired; an expired one is forgotten, as Google deletes it. */
function live(map, id, now = Date.now()) {
  const record = map.get(id);
  if (!record) return null;
  if (record.expiresAt <= now) {
    map.delete(id);
    return null;
  }
  return record;
}

/** The live records of `key`, newest first. */
function liveOf(map, key) {
  return [...map.keys()]
    .map((id) => live(map, id))
    .filter((r) => r && r.key === key)
    .sort((a, b) => b.seq - a.seq);
}

export class FileStore {
  constructor() {
    this.seq = 0;
    this.clear();
  }

  /** Forgets every file, pending upload and cached content. `seq` keeps counting. */
  clear() {
    /** file id -> { id, key, seq, bytes, resource, expiresAt } */
    this.files = new Map();
    /** upload id -> { id, key, fileId, displayName, mimeType, declared, chunks, received } */
    this.uploads = new Map();
    /** cached content id -> { id, key, seq, model, displayName, createTime, updateTime, expiresAt, tokens, details } */
    this.caches = new Map();
  }

  // -------------------------------------------------------------- uploads

  /** A resumable upload session; the file it makes belongs to `key`, the key that started it. */
  startUpload({ key, fileId, displayName, mimeType, declared }) {
    const id = randomBytes(24).toString('base64url');
    const upload = { id, key, fileId, displayName, mimeType, declared, chunks: [], received: 0 };
    this.uploads.set(id, upload);
    return upload;
  }

  append(upload, chunk) {
    if (chunk.length === 0) return;
    upload.chunks.push(chunk);
    upload.received += chunk.length;
  }

  endUpload(upload) {
    this.uploads.delete(upload.id);
  }

  // -------------------------------------------------------------- files

  /** Makes the file an upload finalizes. `baseUrl` is the mock's, for the file's `uri`. */
  finishUpload(upload, baseUrl, now = Date.now()) {
    const id = upload.fileId ?? freshId(this.files);
    const bytes = Buffer.concat(upload.chunks);
    const created = stamp(now);
    const resource = {
      name: `files/${id}`,
      ...(upload.displayName ? { displayName: upload.displayName } : {}),
      mimeType: upload.mimeType,
      sizeBytes: String(bytes.length),
      createTime: created,
      updateTime: created,
      expirationTime: stamp(now + FILE_LIFETIME_MS),
      sha256Hash: googleSha256(bytes),
      uri: `${baseUrl}/v1beta/files/${id}`,
      state: 'ACTIVE',
      source: 'UPLOADED',
    };
    const record = { id, key: upload.key, seq: ++this.seq, bytes, resource, expiresAt: now + FILE_LIFETIME_MS };
    this.files.set(id, record);
    this.endUpload(upload);
    return record;
  }

  /** A live file by id, whoever owns it, or null. */
  file(id) {
    return live(this.files, id);
  }

  /** The file when `key` owns it, else null (Google does not tell "not yours" from "gone"). */
  ownedFile(key, id) {
    const record = this.file(id);
    return record && record.key === key ? record : null;
  }

  filesOf(key) {
    return liveOf(this.files, key);
  }

  deleteFile(id) {
    this.files.delete(id);
  }

  // -------------------------------------------------------------- cached contents

  /** `model` is the id without "models/"; `tokens`/`details` are the cached prompt's count and its per-modality breakdown. */
  addCache({ key, model, displayName, expiresAt, tokens, details, now = Date.now() }) {
    const id = freshId(this.caches);
    const record = {
      id,
      key,
      seq: ++this.seq,
      model,
      displayName,
      createTime: stamp(now),
      updateTime: stamp(now),
      expiresAt,
      tokens,
      details,
    };
    this.caches.set(id, record);
    return record;
  }

  cache(id) {
    return live(this.caches, id);
  }

  ownedCache(key, id) {
    const record = this.cache(id);
    return record && record.key === key ? record : null;
  }

  cachesOf(key) {
    return liveOf(this.caches, key);
  }

  setExpiry(record, expiresAt, now = Date.now()) {
    record.expiresAt = expiresAt;
    record.updateTime = stamp(now);
  }

  deleteCache(id) {
    this.caches.delete(id);
  }

  // -------------------------------------------------------------- inspection

  /** Makes `files/<id>` or `cachedContents/<id>` expire now, as if its time ran out. Returns how many were live (0 or 1). */
  expire(name) {
    const m = /^(files|cachedContents)\/(.+)$/.exec(String(name ?? ''));
    if (!m) return 0;
    const map = m[1] === 'files' ? this.files : this.caches;
    const known = live(map, m[2]) !== null;
    map.delete(m[2]);
    return known ? 1 : 0;
  }

  /** What `GET /__mock/files` lists, oldest first. */
  snapshot() {
    const all = (map) => [...map.keys()].map((id) => live(map, id)).filter(Boolean).sort((a, b) => a.seq - b.seq);
    return {
      files: all(this.files).map(({ key, resource }) => ({
        name: resource.name,
        key,
        sizeBytes: resource.sizeBytes,
        mimeType: resource.mimeType,
        sha256Hash: resource.sha256Hash,
        ...(resource.displayName ? { displayName: resource.displayName } : {}),
      })),
      cachedContents: all(this.caches).map(({ id, key, model }) => ({ name: `cachedContents/${id}`, key, model: `models/${model}` })),
      uploads: [...this.uploads.values()].map(({ id, key, declared, received }) => ({ id, key, declared: declared ?? null, received })),
    };
  }
}

/** The CachedContent resource as Google returns it: metadata only, never the contents. */
export function cachedContentJson(record) {
  return {
    name: `cachedContents/${record.id}`,
    model: `models/${record.model}`,
    createTime: record.createTime,
    updateTime: record.updateTime,
    expireTime: stamp(record.expiresAt),
    ...(record.displayName ? { displayName: record.displayName } : {}),
    usageMetadata: { totalTokenCount: record.tokens },
  };
}

// ---------------------------------------------------------------- references

/**
 * The id of the Files API file a `fileUri` names: `<mock>/v1beta/files/<id>`,
 * `https://generativelanguage.googleapis.com/v1beta/files/<id>` or
 * `files/<id>`. Null for anything else (a YouTube URL, `gs://`, a web URL).
 */
export function fileIdOf(uri, baseUrl) {
  const text = String(uri ?? '');
  const prefix = [`${baseUrl}/v1beta/files/`, GOOGLE_FILES_PREFIX, 'files/'].find((p) => text.startsWith(p));
  return prefix === undefined ? null : text.slice(prefix.length);
}

/** Every `fileData.fileUri` in contents and the system instruction. */
function fileUris({ contents = [], systemInstruction }) {
  return [...contents, ...(systemInstruction ? [systemInstruction] : [])]
    .flatMap((content) => content?.parts ?? [])
    .map((part) => part?.fileData?.fileUri)
    .filter((uri) => typeof uri === 'string');
}

/** cloudcode-pa's catch-all 400 (Code Assist has neither a Files API nor cached contents). */
export const CODE_ASSIST_INVALID_ARGUMENT = 'Request contains an invalid argument.';
export const CACHE_WITH_INSTRUCTIONS =
  'Tool config, tools and system instruction should not be set in the request when using cached content.';

/**
 * Checks what a request refers to. `source` holds the request's `contents`,
 * `systemInstruction`, `tools`, `toolConfig` and `cachedContent`; `modelId`
 * is the model it runs on (no "models/"). Returns `{ refusal }`, the
 * `{status, body}` to answer, or `{ cache }`: the cached content the
 * request uses, or null.
 *
 * Gemini API, in this order: a `cachedContent` must be the caller's (403),
 * made for the same model (400), and the request must not set
 * systemInstruction, tools or toolConfig beside it (400); then every Files
 * API `fileUri` must name a file of the caller's (403). Code Assist
 * (`surface: 'codeassist'`): any Files API reference or cachedContent is a
 * 400.
 */
export function checkReferences(store, { key, source, modelId, baseUrl, surface = 'gemini' }) {
  const fileIds = fileUris(source)
    .map((uri) => fileIdOf(uri, baseUrl))
    .filter((id) => id !== null);
  const cachedContent = source.cachedContent || null;
  if (surface === 'codeassist') {
    return fileIds.length || cachedContent ? { refusal: invalidArgument(CODE_ASSIST_INVALID_ARGUMENT) } : { cache: null };
  }
  let cache = null;
  if (cachedContent) {
    const m = /^cachedContents\/([^/]+)$/.exec(cachedContent);
    cache = m ? store.ownedCache(key, m[1]) : null;
    if (!cache) return { refusal: cachedContentNotFound() };
    if (cache.model !== modelId) {
      return {
        refusal: invalidArgument(
          `Model used by GenerateContent request (models/${modelId}) and CachedContent (models/${cache.model}) has to be the same.`,
        ),
      };
    }
    if (source.systemInstruction || source.tools?.length || source.toolConfig) {
      return { refusal: invalidArgument(CACHE_WITH_INSTRUCTIONS) };
    }
  }
  const foreign = fileIds.find((id) => !store.ownedFile(key, id));
  if (foreign !== undefined) return { refusal: fileNotAccessible(foreign) };
  return { cache };
}
