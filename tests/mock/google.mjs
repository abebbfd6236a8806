// A mock of Google's Gemini API, Code Assist (Gemini CLI) and OAuth endpoints
// for gemgate's tests. Node built-ins only. See README.md in this folder.
//
//   const mock = await startMock();          // listens on 127.0.0.1, random port
//   fetch(`${mock.url}/v1beta/models/gemini-2.5-flash:generateContent`, ...)
//   mock.state.calls                         // every request, in order
//   await mock.close();                      // ends held streams too

import http from 'node:http';
import { once } from 'node:events';
import { handleCodeAssist, codeAssistRoute } from './lib/codeassist.mjs';
import { handleControl } from './lib/control.mjs';
import { filesRoute, handleFiles } from './lib/files.mjs';
import { apiKeyOf, geminiRoute, handleGemini } from './lib/gemini.mjs';
import { internalError } from './lib/errors.mjs';
import { readBodyBytes, sendHtml404, sendGoogleJson } from './lib/http.mjs';
import { handleMedia } from './lib/media.mjs';
import { CATALOG, stripModelsPrefix } from './lib/models.mjs';
import { bearerOf, handleAuthorize, handleRevoke, handleToken, handleUserinfo } from './lib/oauth.mjs';
import { MockState } from './lib/state.mjs';

export { CATALOG } from './lib/models.mjs';
export { MockState } from './lib/state.mjs';
export { mediaBytes } from './lib/media.mjs';

const HOST = '127.0.0.1';
const RECORDED_HEADERS = ['content-type', 'x-goog-api-key', 'authorization', 'user-agent', 'x-goog-api-client'];

/**
 * Starts the mock.
 * opts.port                  port to listen on (default 0 = random)
 * opts.gateTimeoutMs         auto-release for holdBeforeLast gates (default 30000)
 * opts.accessTokenTtlSeconds expires_in of issued access tokens (default 3599)
 * opts.models                extra Model objects appended to the catalogue
 * Returns { url, port, close(), state }.
 */
export async function startMock(opts = {}) {
  const state = new MockState({ gateTimeoutMs: opts.gateTimeoutMs });
  const catalog = [...CATALOG, ...(opts.models ?? [])];
  const lifetime = new AbortController();
  // Known once listening, before any request arrives: the files API names the mock in upload URLs and file URIs.
  let baseUrl;
  const server = http.createServer((req, res) => {
    serve({ req, res, state, catalog, opts, baseUrl, lifetime: lifetime.signal }).catch((err) => crashed(res, err));
  });
  server.listen(opts.port ?? 0, HOST);
  await once(server, 'listening');
  const { port } = server.address();
  baseUrl = `http://${HOST}:${port}`;

  let closing;
  const close = () => {
    closing ??= (async () => {
      lifetime.abort(); // wakes every pending latency, delay and gate
      server.closeAllConnections();
      await new Promise((resolve) => server.close(() => resolve()));
    })();
    return closing;
  };
  return { url: baseUrl, port, close, state };
}

function crashed(res, err) {
  if (err?.name !== 'AbortError') console.error('[gemgate mock] handler failed:', err);
  if (!res.headersSent) {
    const { status, body } = internalError();
    sendGoogleJson(res, status, body);
  } else {
    res.destroy();
  }
}

async function serve({ req, res, state, catalog, opts, baseUrl, lifetime }) {
  const url = new URL(req.url, `http://${HOST}`);
  // Routes depend on the method, path and query only, so the body can be read knowing whether it is text.
  const filesMatch = url.pathname.startsWith('/__mock/') ? null : filesRoute(req.method, url);
  const bytes = await readBodyBytes(req);
  // Upload chunks are bytes: kept as a Buffer, never decoded (nor recorded) as text.
  const binary = filesMatch?.binary === true;
  const rawBody = binary ? '' : bytes.toString('utf8');
  const ctx = { req, res, url, rawBody, bodyBytes: binary ? bytes : null, state, catalog, opts, baseUrl };
  if (url.pathname.startsWith('/__mock/')) return handleControl(ctx);

  // Each request gets a signal that fires when the client goes away or the mock closes.
  const request = new AbortController();
  res.on('close', () => request.abort());
  ctx.signal = AbortSignal.any([lifetime, request.signal]);

  const geminiMatch = !filesMatch && geminiRoute(req.method, url.pathname);
  const codeAssistMatch = !filesMatch && !geminiMatch && codeAssistRoute(req.method, url.pathname);
  const action =
    filesMatch?.action ?? geminiMatch?.action ?? codeAssistMatch?.action ?? otherAction(req.method, url.pathname);
  ctx.call = state.record(callFields(ctx, action, geminiMatch));
  res.on('close', () => {
    // The client went away before the response was complete (a gateway's
    // timeout, a disconnect), as opposed to the mock's own drop or cut.
    const mockDidIt = ctx.call.droppedAt || ctx.call.cut || lifetime.aborted;
    if (!res.writableEnded && !mockDidIt) ctx.call.abandonedAt = Date.now();
    state.finish(ctx.call);
  });

  if (filesMatch) return handleFiles(ctx, filesMatch);
  if (geminiMatch) return handleGemini(ctx, geminiMatch);
  if (codeAssistMatch) return handleCodeAssist(ctx, codeAssistMatch);
  if (action === 'authorize') return handleAuthorize(ctx);
  if (action === 'token') return handleToken(ctx);
  if (action === 'userinfo') return handleUserinfo(ctx);
  if (action === 'revoke') return handleRevoke(ctx);
  if (action === 'media') return handleMedia(ctx);
  ctx.call.status = 404;
  sendHtml404(res, url.pathname);
}

function otherAction(method, pathname) {
  if (method === 'GET' && pathname === '/o/oauth2/v2/auth') return 'authorize';
  if (method === 'POST' && pathname === '/token') return 'token';
  if (method === 'POST' && pathname === '/revoke') return 'revoke';
  if (method === 'GET' && pathname === '/oauth2/v2/userinfo') return 'userinfo';
  if (method === 'GET' && /^\/media\/[^/]+$/.test(pathname)) return 'media';
  return 'unknown';
}

function callFields({ req, url, rawBody, bodyBytes }, action, geminiMatch) {
  return {
    method: req.method,
    path: url.pathname,
    action,
    model: geminiMatch?.model ? stripModelsPrefix(geminiMatch.model) : null,
    key: apiKeyOf(req, url) ?? bearerOf(req),
    alt: url.searchParams.get('alt'),
    query: Object.fromEntries(url.searchParams),
    headers: Object.fromEntries(RECORDED_HEADERS.filter((h) => h in req.headers).map((h) => [h, req.headers[h]])),
    body: decodeBody(rawBody),
    // A binary body (an upload chunk) is recorded by its length only.
    ...(bodyBytes ? { bodyBytes: bodyBytes.length } : {}),
  };
}

function decodeBody(text) {
  if (text === '') return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
