// `GET /media/<name>`: a file server for the gateway's server-side fetches of
// image (and PDF) URLs. Calls are recorded with action `media`, so a test can
// prove whether the gateway fetched, how often, and when.
//
// Query parameters (README, "Media endpoint"): type, body, bytes, chunked,
// delayMs, stallMs, status, redirect.

import { pause } from './http.mjs';

export const DEFAULT_MEDIA_TYPE = 'image/png';
export const DEFAULT_MEDIA_BYTES = 256;
/** Large enough for tests of inline-size limits (Gemini's is 20 MB), small enough to build in memory. */
export const MAX_MEDIA_BYTES = 128 * 1024 * 1024;

/**
 * The signatures content sniffers look for. WebP needs "RIFF", a size and
 * "WEBPVP" (WHATWG MIME sniffing), so its size field is filled in per body.
 */
const MAGIC = {
  'image/png': () => Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
  'image/jpeg': () => Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00]),
  'image/gif': () => Buffer.from('GIF89a', 'latin1'),
  'image/webp': (bytes) => {
    const head = Buffer.from('RIFF\0\0\0\0WEBPVP8 ', 'latin1');
    head.writeUInt32LE(Math.max(0, bytes - 8), 4);
    return head;
  },
  'application/pdf': () => Buffer.from('%PDF-1.7\n', 'latin1'),
};

/** HTTP forbids a body on these. */
const NO_BODY_STATUSES = new Set([204, 205, 304]);

/** `image/png; charset=x` and `IMAGE/PNG` are both image/png. */
const baseType = (type) => String(type ?? '').split(';')[0].trim().toLowerCase();

/**
 * The body served for `{ type, bytes }`: exactly `bytes` bytes, starting
 * with the magic bytes of `type` when it is image/png, image/jpeg, image/gif,
 * image/webp or application/pdf (cut short if `bytes` is smaller), then
 * padding where the byte at offset i is (i * 7 + 3) % 256.
 */
export function mediaBytes({ type = DEFAULT_MEDIA_TYPE, bytes = DEFAULT_MEDIA_BYTES } = {}) {
  const body = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i += 1) body[i] = (i * 7 + 3) % 256;
  const magic = MAGIC[baseType(type)]?.(bytes);
  if (magic) magic.copy(body, 0, 0, Math.min(magic.length, bytes));
  return body;
}

/** Parses the query into options, or `{ problem }` for a value the mock cannot serve. */
function mediaOptions(params) {
  const number = (name, fallback, [min, max] = [0, Number.MAX_SAFE_INTEGER]) => {
    const raw = params.get(name);
    if (raw === null || raw === '') return fallback;
    const n = Number(raw);
    return Number.isInteger(n) && n >= min && n <= max ? n : NaN;
  };
  const type = params.get('type') ?? DEFAULT_MEDIA_TYPE;
  const options = {
    // `type=none` sends no Content-Type; the body then has the default type's bytes unless `body` says otherwise.
    contentType: type === 'none' ? null : type,
    bodyType: params.get('body') ?? (type === 'none' ? DEFAULT_MEDIA_TYPE : type),
    bytes: number('bytes', DEFAULT_MEDIA_BYTES, [0, MAX_MEDIA_BYTES]),
    chunked: params.get('chunked') === '1',
    delayMs: number('delayMs', 0),
    stallMs: number('stallMs', 0),
    status: number('status', 200, [200, 599]),
    redirect: params.get('redirect'),
  };
  const bad = ['bytes', 'delayMs', 'stallMs', 'status'].find((k) => Number.isNaN(options[k]));
  return bad ? { problem: `invalid ${bad}: ${params.get(bad)}` } : options;
}

export async function handleMedia(ctx) {
  const { res, url, call, signal } = ctx;
  const options = mediaOptions(url.searchParams);
  if (options.problem) return finish(call, res, 400, { 'content-type': 'text/plain' }, options.problem);
  call.media = { contentType: options.contentType, bytes: options.bytes };
  if (!(await pause(options.delayMs, signal))) return;
  if (options.redirect !== null) {
    return finish(call, res, 302, { location: options.redirect, 'content-length': 0 }, '');
  }
  const empty = NO_BODY_STATUSES.has(options.status);
  const body = empty ? Buffer.alloc(0) : mediaBytes({ type: options.bodyType, bytes: options.bytes });
  const headers = {
    ...(options.contentType ? { 'content-type': options.contentType } : {}),
    ...(options.chunked ? {} : { 'content-length': body.length }),
  };
  call.status = options.status;
  res.writeHead(options.status, headers);
  if (empty) return res.end();
  // The headers go out before a stall even when the first half is empty.
  if (options.stallMs) res.flushHeaders();
  // Half the body goes out at once; a stall, if any, sits between the halves.
  const half = Math.floor(body.length / 2);
  if (!(await write(res, body.subarray(0, half)))) return;
  if (!(await pause(options.stallMs, signal))) return;
  if (!(await write(res, body.subarray(half)))) return;
  res.end();
}

function finish(call, res, status, headers, text) {
  call.status = status;
  res.writeHead(status, headers);
  res.end(text);
}

/** Resolves true once written, false if the socket is gone. */
function write(res, chunk) {
  if (res.destroyed) return Promise.resolve(false);
  if (chunk.length === 0) return Promise.resolve(true);
  return new Promise((resolve) => res.write(chunk, (err) => resolve(!err)));
}
