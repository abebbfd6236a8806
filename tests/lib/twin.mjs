// Two gemgate workers that share one ModelGate but hold their own isolate
// state, for the tests of how stale an isolate's key-health view may get
// (issue 11, acceptance 2). `wrangler dev` runs one isolate, so it cannot
// show two; this runs the built worker (build/index.js + its wasm) twice
// in one Miniflare instance, as tests/bench/run.mjs runs it once:
//
//   A  "gemgate":       the worker with every Durable Object class bound
//                       to itself, as wrangler.toml declares them.
//   B  "gemgate-twin":  the same script under another name. Its Durable
//                       Object bindings point at A's classes (scriptName),
//                       so both reach the same ModelGate per model; its D1
//                       and KV are A's (the same ids in one Miniflare).
//
// Each worker is its own isolate, so each has its own per-isolate caches
// (settings snapshot, key-health view, cursors). Requests go through
// Miniflare's dispatchFetch, routed by host (a.twin / b.twin). Everything
// listens on 127.0.0.1; every request is bounded.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startMock } from '../mock/google.mjs';
import { mockClient } from '../mock/client.mjs';
import { compatibilityDate, gemgateWorker, migrate } from '../bench/d1.mjs';
import { ADMIN_PASSWORD, CLIENT_TOKEN, ROOT } from './harness.mjs';

const { Miniflare, Log, LogLevel } = await import(join(ROOT, 'node_modules/miniflare/dist/src/index.js'));

export const TWIN_HOSTS = { a: 'a.twin', b: 'b.twin' };
const NAMES = { a: 'gemgate', b: 'gemgate-twin' };
/** Bounds every request a test sends through the twin. */
const REQUEST_TIMEOUT_MS = 30_000;
/** Bounds Miniflare's start (workerd, the wasm compile). */
const START_TIMEOUT_MS = 60_000;

/** wrangler.toml's compatibility_flags (enable_request_signal), which the bench's worker leaves out. */
function compatibilityFlags() {
  const toml = readFileSync(join(ROOT, 'wrangler.toml'), 'utf8');
  const m = /^compatibility_flags\s*=\s*\[([^\]]*)\]/m.exec(toml);
  return m ? [...m[1].matchAll(/"([^"]+)"/g)].map((f) => f[1]) : [];
}

function bounded(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, fail) => {
    timer = setTimeout(() => fail(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Starts the mock and the two workers, applies the D1 migrations, adds
 * `keys` and patches `settings` (both through A's admin API, before B has
 * served anything, so B's first snapshot already has them).
 * Returns `{ mock, mockApi, a, b, log, stop() }`; `a` and `b` each have
 * `fetch(path, init)`, `admin(method, path, body)` and `chat(model, content)`.
 */
export async function startTwin({ keys = [], settings = null } = {}) {
  const mock = await startMock();
  const compatDate = compatibilityDate();
  const flags = compatibilityFlags();
  const bindings = {
    GEMINI_API_BASE: mock.url,
    CODE_ASSIST_API_BASE: mock.url,
    GOOGLE_OAUTH_TOKEN_URL: `${mock.url}/token`,
    GOOGLE_OAUTH_AUTH_URL: `${mock.url}/o/oauth2/v2/auth`,
    GOOGLE_USERINFO_URL: `${mock.url}/oauth2/v2/userinfo`,
    ADMIN_PASSWORD,
    ACCESS_TOKENS: CLIENT_TOKEN,
    ENCRYPTION_KEY: 'test-encryption-key-0123456789abcdef',
  };
  const storage = `gemgate-twin-${process.pid}`;
  const a = {
    ...gemgateWorker({ compatDate, route: `${TWIN_HOSTS.a}/*`, storage, bindings }),
    name: NAMES.a,
    compatibilityFlags: flags,
  };
  // Every Durable Object binding of A, served by A's classes.
  const shared = Object.fromEntries(
    Object.entries(a.durableObjects).map(([binding, { className }]) => [binding, { className, scriptName: NAMES.a }]),
  );
  const b = {
    ...a,
    name: NAMES.b,
    routes: [`${TWIN_HOSTS.b}/*`],
    durableObjects: shared,
  };
  const verbose = Boolean(process.env.GEMGATE_TEST_LOG);
  // workerd's own output (both workers' console lines), kept for post-mortems.
  const log = [];
  const keep = (stream) => stream.on('data', (buf) => {
    log.push(buf.toString());
    if (log.length > 2000) log.splice(0, 1000);
    if (verbose) process.stderr.write(buf);
  });
  let mf;
  try {
    mf = new Miniflare({
      host: '127.0.0.1',
      port: 0,
      log: new Log(verbose ? LogLevel.DEBUG : LogLevel.WARN),
      cf: false, // never fetch request.cf from Cloudflare
      handleRuntimeStdio: (stdout, stderr) => {
        keep(stdout);
        keep(stderr);
      },
      workers: [a, b],
    });
    await bounded(mf.ready, START_TIMEOUT_MS, 'Miniflare start');
    await bounded(migrate(mf), START_TIMEOUT_MS, 'D1 migrations');
  } catch (e) {
    await mf?.dispose().catch(() => {});
    await mock.close();
    throw e;
  }

  const side = (host) => {
    const fetchOn = (path, init = {}) =>
      mf.dispatchFetch(`http://${host}${path}`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS), ...init });
    return {
      host,
      fetch: fetchOn,
      /** Admin API call with the admin bearer; throws on a non-2xx answer. */
      async admin(method, path, body) {
        const res = await fetchOn(`/admin/api${path}`, {
          method,
          headers: { authorization: `Bearer ${ADMIN_PASSWORD}`, 'content-type': 'application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        const text = await res.text();
        if (!res.ok) throw new Error(`${host} admin ${method} ${path}: ${res.status} ${text}`);
        return text ? JSON.parse(text) : null;
      },
      /** One OpenAI chat completion with the client token; resolves `{ status, headers, body }`. */
      async chat(model, content) {
        const res = await fetchOn('/v1/chat/completions', {
          method: 'POST',
          headers: { authorization: `Bearer ${CLIENT_TOKEN}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model, messages: [{ role: 'user', content }] }),
        });
        const text = await res.text();
        let body = text;
        try { body = JSON.parse(text); } catch { /* kept as text */ }
        return { status: res.status, headers: res.headers, body };
      },
    };
  };

  let stopping;
  const twin = {
    mock,
    mockApi: mockClient(mock.url),
    a: side(TWIN_HOSTS.a),
    b: side(TWIN_HOSTS.b),
    /** workerd's output so far (both workers). */
    get log() { return log.join(''); },
    stop() {
      stopping ??= (async () => {
        await bounded(mf.dispose(), 30_000, 'Miniflare dispose').catch(() => {});
        await mock.close();
      })();
      return stopping;
    },
  };
  try {
    if (keys.length) await twin.a.admin('POST', '/keys', { keys });
    if (settings) await twin.a.admin('PUT', '/settings', settings);
  } catch (e) {
    await twin.stop();
    throw e;
  }
  return twin;
}
