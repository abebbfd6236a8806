// Small HTTP helpers shared by every surface of the mock.

import { setTimeout as sleep } from 'node:timers/promises';
import { pretty } from './json.mjs';

export const JSON_TYPE = 'application/json; charset=UTF-8';

/** Headers Google's front end adds to every generativelanguage response. */
const GOOGLE_HEADERS = {
  vary: 'Origin, X-Origin, Referer',
  server: 'scaffolding on HTTPServer2',
  'x-xss-protection': '0',
  'x-frame-options': 'SAMEORIGIN',
  'x-content-type-options': 'nosniff',
};

/** Reads the whole request body as bytes (a Buffer), for bodies that are not text (file uploads). */
export async function readBodyBytes(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** Reads the whole request body as a UTF-8 string. */
export async function readBody(req) {
  return (await readBodyBytes(req)).toString('utf8');
}

/** Sends a Google-style (pretty, HTML-safe) JSON body. */
export function sendGoogleJson(res, status, body) {
  sendRaw(res, status, JSON_TYPE, pretty(body), GOOGLE_HEADERS);
}

/**
 * Sends a Google-style JSON body whose second half waits `stallMs` after the
 * first: the headers (with the whole length) and the first half go out at
 * once, as a connection that stalls mid-answer. Resolves when the body is
 * sent, or when the client left first (then false).
 */
export async function sendGoogleJsonStalled(res, status, body, stallMs, signal) {
  if (res.headersSent || res.destroyed) return false;
  const bytes = Buffer.from(pretty(body));
  const half = Math.floor(bytes.length / 2);
  res.writeHead(status, { ...GOOGLE_HEADERS, 'content-type': JSON_TYPE, 'content-length': bytes.length });
  res.write(bytes.subarray(0, half));
  if (!(await pause(stallMs, signal)) || res.destroyed) return false;
  res.end(bytes.subarray(half));
  return true;
}

/** Sends plain compact JSON (control endpoints, OAuth endpoints). */
export function sendPlainJson(res, status, body, contentType = 'application/json') {
  sendRaw(res, status, contentType, JSON.stringify(body));
}

export function sendRaw(res, status, contentType, text, extraHeaders = {}) {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, {
    ...extraHeaders,
    'content-type': contentType,
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** Starts a streamed 200 response with Google's headers. */
export function startStream(res, contentType) {
  res.writeHead(200, { ...GOOGLE_HEADERS, 'content-type': contentType });
  res.flushHeaders();
}

/**
 * An unknown URL on googleapis.com is answered by the Google front end with an
 * HTML page, not a JSON error. Gateways must cope with non-JSON error bodies.
 */
export function sendHtml404(res, path) {
  const html =
    '<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n' +
    '  <title>Error 404 (Not Found)!!1</title>\n' +
    `  <p><b>404.</b> <ins>That’s an error.</ins>\n  <p>The requested URL <code>${escapeHtml(path)}</code> ` +
    'was not found on this server.  <ins>That’s all we know.</ins>\n';
  sendRaw(res, 404, 'text/html; charset=UTF-8', html);
}

function escapeHtml(text) {
  return text.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Waits `ms`, resolving `false` instead of throwing when `signal` aborts first. */
export async function pause(ms, signal) {
  if (!ms || ms <= 0) return !signal?.aborted;
  try {
    await sleep(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}

/** Parses an `application/x-www-form-urlencoded` body into a plain object. */
export function parseForm(text) {
  return Object.fromEntries(new URLSearchParams(text));
}
