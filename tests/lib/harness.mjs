// The end-to-end stack: the project's mock of Google's APIs plus the worker
// under `wrangler dev` (real workerd, local D1/KV/DO), wired together.
// Every wait here is bounded; servers listen on 127.0.0.1 only.
import './dev-proxy.mjs';
import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync, rmSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { startMock } from '../mock/google.mjs';
import { mockClient } from '../mock/client.mjs';

const execFileP = promisify(execFile);
export const ROOT = resolve(new URL('../..', import.meta.url).pathname);
const WRANGLER = join(ROOT, 'node_modules/.bin/wrangler');
const STATE_ROOT = join(ROOT, 'tests/.state');

export const ADMIN_PASSWORD = 'test-admin-password';
export const CLIENT_TOKEN = 'sk-test-client-token';
/** Bound on one admin API call: a worker that never answers fails the call, not the whole test. */
const ADMIN_TIMEOUT_MS = 120_000;

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

const baseEnv = () => ({
  ...process.env,
  WRANGLER_SEND_METRICS: 'false',
  CI_DISABLE_UPDATE_CHECK: '1',
  NO_COLOR: '1',
  FORCE_COLOR: '0',
});

/**
 * The wrangler config the tests run: the project's own, minus its `[build]`
 * table, with paths made absolute. `make e2e` builds the worker once before
 * the tests; without a build command wrangler never watches `src/`, so a file
 * touched mid-run cannot make it rebuild and restart under a test.
 * `assetsDir` replaces the `[assets]` directory (a test's own console build).
 */
const testConfigPaths = new Map();
function testConfig(assetsDir = null) {
  if (testConfigPaths.has(assetsDir)) return testConfigPaths.get(assetsDir);
  // One file per test process (and assets folder), written fresh so it always follows wrangler.toml.
  const path = join(STATE_ROOT, `wrangler.test.${process.pid}${assetsDir ? `.${testConfigPaths.size}` : ''}.toml`);
  const lines = readFileSync(join(ROOT, 'wrangler.toml'), 'utf8').split('\n');
  const out = [];
  let inBuild = false;
  for (const line of lines) {
    const table = /^\s*\[+([^\]]+)\]+/.exec(line);
    if (table) inBuild = table[1].trim() === 'build';
    if (inBuild) continue;
    out.push(
      line
        .replace(/^main = "(.*)"$/, (_, p) => `main = ${JSON.stringify(join(ROOT, p))}`)
        .replace(/^migrations_dir = "(.*)"$/, (_, p) => `migrations_dir = ${JSON.stringify(join(ROOT, p))}`)
        .replace(/^directory = "(.*)"$/, (_, p) => `directory = ${JSON.stringify(assetsDir ?? join(ROOT, p))}`),
    );
  }
  mkdirSync(STATE_ROOT, { recursive: true });
  writeFileSync(path, out.join('\n'));
  process.once('exit', () => rmSync(path, { force: true }));
  testConfigPaths.set(assetsDir, path);
  return path;
}

/** Applies the D1 migrations to a persistence dir. */
async function migrate(persistDir, assetsDir) {
  await execFileP(
    WRANGLER,
    ['d1', 'migrations', 'apply', 'DB', '--local', '--persist-to', persistDir, '--config', testConfig(assetsDir)],
    { cwd: ROOT, env: baseEnv(), timeout: 120_000 },
  );
}

/**
 * Starts `wrangler dev` and resolves once it reports ready. Secrets come from
 * an env file the harness writes, never from a developer's .dev.vars.
 */
async function startWrangler({ persistDir, envFile, vars, port, inspectorPort, assetsDir, config = null }) {
  const args = [
    'dev', '--ip', '127.0.0.1', '--port', String(port),
    '--inspector-port', String(inspectorPort),
    '--persist-to', persistDir, '--env-file', envFile,
    '--test-scheduled', '--show-interactive-dev-session=false', '--log-level', 'log',
    '--config', config ?? testConfig(assetsDir),
  ];
  for (const [k, v] of Object.entries(vars)) args.push('--var', `${k}:${v}`);
  const child = spawn(WRANGLER, args, { cwd: ROOT, env: baseEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  const log = [];
  const onData = (buf) => {
    const text = buf.toString();
    log.push(text);
    if (log.length > 2000) log.splice(0, 1000);
    if (process.env.GEMGATE_TEST_LOG) process.stderr.write(text);
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const url = `http://127.0.0.1:${port}`;
  await new Promise((ok, fail) => {
    const timer = setTimeout(() => {
      fail(new Error(`wrangler dev not ready within 180 s:\n${log.join('').slice(-4000)}`));
    }, 180_000);
    const check = (buf) => {
      if (/Ready on http/.test(buf.toString())) {
        clearTimeout(timer);
        child.stdout.off('data', check);
        ok();
      }
    };
    child.stdout.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`wrangler dev exited (${code}):\n${log.join('').slice(-4000)}`));
    });
  });
  return { child, url, log };
}

async function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((ok) => child.once('exit', ok));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** The pids of `pid` and all its descendants (children first listed after their parent), from `ps`. */
async function processTree(pid) {
  const { stdout } = await execFileP('ps', ['-e', '-o', 'pid=,ppid='], { timeout: 10_000 });
  const children = new Map();
  for (const line of stdout.split('\n')) {
    const [p, pp] = line.trim().split(/\s+/).map(Number);
    if (!Number.isInteger(p) || !Number.isInteger(pp)) continue;
    if (!children.has(pp)) children.set(pp, []);
    children.get(pp).push(p);
  }
  const tree = [];
  const queue = [pid];
  while (queue.length && tree.length < 1_000) {
    const p = queue.shift();
    tree.push(p);
    queue.push(...(children.get(p) ?? []));
  }
  return tree;
}

const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Resolves once nothing listens on 127.0.0.1:`port` (bounded). */
async function portFree(port, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const free = await new Promise((ok) => {
      const srv = createServer();
      srv.once('error', () => ok(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => ok(true)));
    });
    if (free) return;
    if (Date.now() > deadline) throw new Error(`port ${port} still taken ${timeoutMs} ms after the kill`);
    await new Promise((ok) => setTimeout(ok, 50)); // pacing a bounded poll, not a synchronisation
  }
}

/**
 * Kills `wrangler dev` as a crash would: SIGKILL to wrangler's node process
 * and every process under it (workerd above all, which holds the port and
 * the state), all at once, so none of them runs a shutdown path. Resolves
 * once every one of them is gone and the ports are free.
 */
async function killTree(child, ports) {
  if (child.exitCode !== null || child.signalCode !== null) throw new Error('wrangler dev is not running');
  const tree = await processTree(child.pid);
  const exited = new Promise((ok) => child.once('exit', ok));
  for (const pid of tree) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await exited;
  const deadline = Date.now() + 15_000;
  while (tree.some(alive)) {
    if (Date.now() > deadline) throw new Error(`processes survived SIGKILL: ${tree.filter(alive)}`);
    await new Promise((ok) => setTimeout(ok, 50)); // pacing a bounded poll
  }
  for (const port of ports) await portFree(port);
  return tree;
}

/**
 * A bare JavaScript worker (`script`, an ES module) under the same `wrangler
 * dev`, with the same flags, compatibility date and flags as the gateway: a
 * baseline that tells the runtime's own behaviour from the gateway's.
 * `vars` become its env. Resolves with `{ url, log, stop }`.
 */
export async function startScriptWorker({ script, vars = {} }) {
  mkdirSync(STATE_ROOT, { recursive: true });
  const dir = mkdtempSync(join(STATE_ROOT, 'script-'));
  const toml = readFileSync(join(ROOT, 'wrangler.toml'), 'utf8');
  const date = /^compatibility_date = "(.*)"$/m.exec(toml)?.[1];
  const flags = /^compatibility_flags = (\[.*\])$/m.exec(toml)?.[1] ?? '[]';
  if (!date) throw new Error('wrangler.toml has no compatibility_date');
  writeFileSync(join(dir, 'worker.mjs'), script);
  const config = join(dir, 'wrangler.toml');
  writeFileSync(config, `name = "script"\nmain = "worker.mjs"\ncompatibility_date = "${date}"\ncompatibility_flags = ${flags}\n`);
  // State and env file apart from the script, so nothing written while it runs sits beside its sources.
  const persistDir = mkdtempSync(join(STATE_ROOT, 'run-'));
  const envFile = join(persistDir, 'test.env');
  writeFileSync(envFile, '');
  const cleanup = () => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(persistDir, { recursive: true, force: true });
  };
  let worker;
  for (let attempt = 1; !worker; attempt += 1) {
    const port = await freePort();
    const inspectorPort = await freePort();
    try {
      worker = await startWrangler({ persistDir, envFile, vars, port, inspectorPort, config });
    } catch (e) {
      if (attempt >= 3 || !/Address already in use/.test(String(e.message))) {
        cleanup();
        throw e;
      }
    }
  }
  return {
    url: worker.url,
    get log() { return worker.log.join(''); },
    async stop() {
      await stopChild(worker.child);
      cleanup();
    },
  };
}

/**
 * The whole stack for one test file. `keys` are imported through the admin
 * API; `settings` are patched in; `assetsDir`, when given, is served as the
 * console instead of build/admin-ui. Returns helpers for the tests.
 */
export async function startStack({ keys = [], settings = null, vars = {}, secrets = {}, assetsDir = null } = {}) {
  const mock = await startMock();
  mkdirSync(STATE_ROOT, { recursive: true });
  const persistDir = mkdtempSync(join(STATE_ROOT, 'run-'));
  const envFile = join(persistDir, 'test.env');
  // A secret given as null is left out (e.g. ENCRYPTION_KEY, to run the plaintext fallback).
  let secretLines = {
    ADMIN_PASSWORD,
    ACCESS_TOKENS: `${CLIENT_TOKEN},sk-second-token`,
    ENCRYPTION_KEY: 'test-encryption-key-0123456789abcdef',
  };
  const writeSecrets = (changes) => {
    secretLines = Object.fromEntries(Object.entries({ ...secretLines, ...changes }).filter(([, v]) => v !== null && v !== undefined));
    writeFileSync(
      envFile,
      // dotenv keeps a single-quoted value literally (a JSON credential), and
      // expands only \n in a double-quoted one.
      Object.entries(secretLines)
        .map(([k, v]) => `${k}=${v.includes('"') && !v.includes("'") && !v.includes('\n') ? `'${v}'` : JSON.stringify(v)}`)
        .join('\n') + '\n',
    );
  };
  writeSecrets(secrets);
  await migrate(persistDir, assetsDir);
  // The mock's media endpoint is the one private target image_url fetches may reach.
  // Every Google endpoint points at the mock: the Gemini API, Code Assist and OAuth.
  const allVars = {
    GEMINI_API_BASE: mock.url,
    CODE_ASSIST_API_BASE: mock.url,
    GOOGLE_OAUTH_TOKEN_URL: `${mock.url}/token`,
    GOOGLE_OAUTH_AUTH_URL: `${mock.url}/o/oauth2/v2/auth`,
    GOOGLE_USERINFO_URL: `${mock.url}/oauth2/v2/userinfo`,
    IMAGE_FETCH_ALLOW_PRIVATE: new URL(mock.url).host,
    ...vars,
  };
  // A port found free can be taken by another process before wrangler binds it
  // (it also opens ports of its own); that start is retried on fresh ports.
  let port;
  let inspectorPort;
  let worker;
  for (let attempt = 1; !worker; attempt += 1) {
    port = await freePort();
    inspectorPort = await freePort();
    try {
      worker = await startWrangler({ persistDir, envFile, vars: allVars, port, inspectorPort, assetsDir });
    } catch (e) {
      if (attempt >= 3 || !/Address already in use/.test(String(e.message))) {
        await mock.close();
        throw e;
      }
    }
  }

  const stack = {
    mock,
    mockApi: mockClient(mock.url),
    get url() { return worker.url; },
    get log() { return worker.log.join(''); },
    /** Resolves once the worker's output matches `pattern` (bounded). */
    waitForLog(pattern, timeoutMs = 10_000) {
      if (pattern.test(worker.log.join(''))) return Promise.resolve();
      const { child } = worker;
      return new Promise((ok, fail) => {
        const onData = () => {
          if (pattern.test(worker.log.join(''))) done(ok);
        };
        const timer = setTimeout(() => done(() => fail(new Error(`log never matched ${pattern}`))), timeoutMs);
        const done = (fn) => {
          clearTimeout(timer);
          child.stdout.off('data', onData);
          child.stderr.off('data', onData);
          fn();
        };
        child.stdout.on('data', onData);
        child.stderr.on('data', onData);
      });
    },
    persistDir,
    /**
     * Stops and starts `wrangler dev` on the same state dir and port;
     * `secrets` changes the secrets it starts with (null removes one).
     */
    async restart({ secrets: changes } = {}) {
      await stopChild(worker.child);
      if (changes) writeSecrets(changes);
      worker = await startWrangler({ persistDir, envFile, vars: allVars, port, inspectorPort, assetsDir });
    },
    /**
     * A crash and a restart: SIGKILLs `wrangler dev` and every process under
     * it (workerd included) at once, then starts it on the same state dir and
     * port. Resolves with `{ killed }`, the pids that were killed.
     */
    async killAndRestart() {
      const killed = await killTree(worker.child, [port, inspectorPort]);
      worker = await startWrangler({ persistDir, envFile, vars: allVars, port, inspectorPort, assetsDir });
      return { killed };
    },
    async stop() {
      await stopChild(worker.child);
      await mock.close();
      // Keep the state for a post-mortem only when asked to.
      if (!process.env.GEMGATE_KEEP_STATE) rmSync(persistDir, { recursive: true, force: true });
    },
    /** Runs SQL against the worker's local D1 (what is really stored). */
    async d1(sql) {
      const { stdout } = await execFileP(
        WRANGLER,
        ['d1', 'execute', 'DB', '--local', '--persist-to', persistDir, '--json', '--command', sql, '--config', testConfig(assetsDir)],
        { cwd: ROOT, env: baseEnv(), timeout: 60_000 },
      );
      return JSON.parse(stdout)[0].results;
    },
    /** Admin API call with the admin bearer. */
    async admin(method, path, body) {
      let text;
      let res;
      try {
        res = await fetch(`${worker.url}/admin/api${path}`, {
          method,
          headers: { authorization: `Bearer ${ADMIN_PASSWORD}`, 'content-type': 'application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(ADMIN_TIMEOUT_MS),
        });
        text = await res.text();
      } catch (e) {
        throw new Error(`admin ${method} ${path}: no answer (${e.name === 'TimeoutError' ? `not within ${ADMIN_TIMEOUT_MS} ms` : e.message})`);
      }
      let json = null;
      try { json = JSON.parse(text); } catch { /* not JSON */ }
      if (!res.ok) throw new Error(`admin ${method} ${path}: ${res.status} ${text}`);
      return json;
    },
    /**
     * Raw HTTP to the worker with the client token (`token: null` sends
     * none). `body` is sent as JSON unless `raw`; `timeoutMs`, when given,
     * aborts the request after that long.
     */
    async call(method, path, { body, headers = {}, token = CLIENT_TOKEN, raw = false, timeoutMs } = {}) {
      const h = { ...headers };
      if (token) h.authorization = `Bearer ${token}`;
      if (body !== undefined && !raw) h['content-type'] ??= 'application/json';
      return fetch(`${worker.url}${path}`, {
        method,
        headers: h,
        body: body === undefined ? undefined : raw ? body : JSON.stringify(body),
        signal: timeoutMs === undefined ? undefined : AbortSignal.timeout(timeoutMs),
      });
    },
  };
  try {
    if (keys.length) await stack.admin('POST', '/keys', { keys });
    if (settings) await stack.admin('PUT', '/settings', settings);
  } catch (e) {
    await stack.stop();
    throw e;
  }
  return stack;
}
