// gemgate benchmark: gemgate's added latency (p50, p99), throughput, workerd
// CPU per request and bundle size, each against a bare passthrough worker
// run in the same workerd (one Miniflare instance), against the same
// zero-latency Google mock, measured the same way over real HTTP on
// 127.0.0.1. Not under `wrangler dev`, whose own overhead would swamp the
// worker's (tests/bench/README.md says why).
//
//   node tests/bench/run.mjs          (or `make bench`)
//
// Env knobs (all optional, all bounded): BENCH_WARMUP (50), BENCH_SEQ (300),
// BENCH_TP_SECONDS (5), BENCH_TP_MAX (1000), BENCH_CONCURRENCY (8),
// BENCH_SCENARIOS (comma list of native,chat,stream), BENCH_KEYS (3: the
// size of the upstream key pool, to see that per-request cost does not grow
// with it).
//
// Prints a table and writes the same data to tests/bench/last-run.json.
// Exits non-zero if the correctness guard or any measured request fails.
import http from 'node:http';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join, resolve } from 'node:path';
import { startMock } from '../mock/google.mjs';
import { compatibilityDate, gemgateWorker, migrate } from './d1.mjs';

const ROOT = resolve(new URL('../..', import.meta.url).pathname);
const { Miniflare, Log, LogLevel } = await import(join(ROOT, 'node_modules/miniflare/dist/src/index.js'));

// ---- knobs -------------------------------------------------------------------

const intEnv = (name, def, min, max) => {
  const v = Number.parseInt(process.env[name] ?? '', 10);
  return Number.isFinite(v) ? Math.min(max, Math.max(min, v)) : def;
};
const WARMUP = intEnv('BENCH_WARMUP', 50, 1, 500);
const SEQ = intEnv('BENCH_SEQ', 300, 10, 2000);
const TP_MS = intEnv('BENCH_TP_SECONDS', 5, 1, 20) * 1000;
const TP_MAX = intEnv('BENCH_TP_MAX', 1000, 10, 5000);
const CONCURRENCY = intEnv('BENCH_CONCURRENCY', 8, 1, 32);
const ROUNDS = 4; // segments per target per phase, alternated A B B A A B B A
const REQUEST_TIMEOUT_MS = 10_000;
const RUN_DEADLINE_MS = 170_000; // the whole run, setup included
const ONLY = (process.env.BENCH_SCENARIOS ?? '').split(',').map((s) => s.trim()).filter(Boolean);

const ADMIN_PASSWORD = 'bench-admin-password';
const CLIENT_TOKEN = 'sk-bench-client-token';
const KEY_COUNT = intEnv('BENCH_KEYS', 3, 1, 2000);
const UPSTREAM_KEYS = Array.from({ length: KEY_COUNT }, (_, i) => `ok-bench-${i + 1}`);
const PASSTHROUGH_KEY = 'ok-bench-passthrough';
const MODEL = 'gemini-2.5-flash';
const PROMPT = 'gemgate bench: the quick brown fox jumps over the lazy dog';
const ECHO = `echo: ${PROMPT}`;
const HOSTS = { gemgate: 'gemgate.bench', passthrough: 'passthrough.bench' };

// ---- the passthrough baseline -------------------------------------------------

const PASSTHROUGH_JS = `
const ROUTE = /^\\/v1beta\\/models\\/[^/:]+:(generateContent|streamGenerateContent)$/;
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (request.method !== 'POST' || !ROUTE.test(url.pathname)) {
      return new Response('not found', { status: 404 });
    }
    return fetch(env.UPSTREAM + url.pathname + url.search, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-goog-api-key': env.UPSTREAM_KEY },
      body: request.body,
    });
  },
};
`;

// ---- scenarios ------------------------------------------------------------------

const geminiBody = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: PROMPT }] }] });
const chatBody = (stream) =>
  JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: PROMPT }], ...(stream ? { stream: true } : {}) });

/** A user key with generous limits, created once the worker is up. */
let USER_KEY = '';

const SCENARIOS = [
  {
    id: 'native',
    title: 'Gemini generateContent',
    gemgate: {
      path: `/v1beta/models/${MODEL}:generateContent`,
      headers: { 'x-goog-api-key': CLIENT_TOKEN },
      body: geminiBody,
      text: geminiJsonText,
    },
    passthrough: { path: `/v1beta/models/${MODEL}:generateContent`, body: geminiBody, text: geminiJsonText },
  },
  {
    id: 'chat',
    title: 'OpenAI chat (non-stream)',
    gemgate: {
      path: '/v1/chat/completions',
      headers: { authorization: `Bearer ${CLIENT_TOKEN}` },
      body: chatBody(false),
      text: openaiJsonText,
    },
    passthrough: { path: `/v1beta/models/${MODEL}:generateContent`, body: geminiBody, text: geminiJsonText },
  },
  {
    // The same chat through a user key: the UserLedger admission runs beside the
    // ModelGate call, and settlement plus the log row go through waitUntil.
    id: 'user',
    title: 'OpenAI chat, user key',
    gemgate: {
      path: '/v1/chat/completions',
      get headers() {
        return { authorization: `Bearer ${USER_KEY}` };
      },
      body: chatBody(false),
      text: openaiJsonText,
    },
    passthrough: { path: `/v1beta/models/${MODEL}:generateContent`, body: geminiBody, text: geminiJsonText },
  },
  {
    id: 'stream',
    title: 'OpenAI chat (stream, SSE)',
    gemgate: {
      path: '/v1/chat/completions',
      headers: { authorization: `Bearer ${CLIENT_TOKEN}` },
      body: chatBody(true),
      text: openaiSseText,
    },
    passthrough: {
      path: `/v1beta/models/${MODEL}:streamGenerateContent?alt=sse`,
      body: geminiBody,
      text: geminiSseText,
    },
  },
].filter((s) => ONLY.length === 0 || ONLY.includes(s.id));

function geminiText(obj) {
  const parts = obj?.candidates?.[0]?.content?.parts ?? [];
  return parts.filter((p) => !p.thought && typeof p.text === 'string').map((p) => p.text).join('');
}
function geminiJsonText(body) {
  return geminiText(JSON.parse(body));
}
function openaiJsonText(body) {
  return JSON.parse(body)?.choices?.[0]?.message?.content ?? '';
}
function sseData(body) {
  return body
    .split(/\r?\n\r?\n/)
    .flatMap((ev) => ev.split(/\r?\n/).filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()))
    .filter((d) => d.length > 0);
}
function geminiSseText(body) {
  return sseData(body).map((d) => geminiText(JSON.parse(d))).join('');
}
function openaiSseText(body) {
  const data = sseData(body);
  if (data.at(-1) !== '[DONE]') throw new Error('stream did not end with data: [DONE]');
  return data
    .slice(0, -1)
    .map((d) => JSON.parse(d)?.choices?.[0]?.delta?.content ?? '')
    .join('');
}

// ---- HTTP client ----------------------------------------------------------------

let PORT = 0;
const agents = {
  gemgate: new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY }),
  passthrough: new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY }),
};

/** One request; resolves { status, body, ms } once the whole body is read. */
function request(target, { method = 'POST', path, headers = {}, body }) {
  return new Promise((ok, fail) => {
    const payload = body === undefined ? undefined : Buffer.from(body);
    const start = process.hrtime.bigint();
    const req = http.request(
      {
        host: '127.0.0.1',
        port: PORT,
        method,
        path,
        agent: agents[target],
        headers: {
          host: HOSTS[target],
          ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
          ...headers,
        },
        timeout: REQUEST_TIMEOUT_MS,
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const ms = Number(process.hrtime.bigint() - start) / 1e6;
          ok({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8'), ms });
        });
        res.on('error', fail);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${target} ${path}: no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', fail);
    req.end(payload);
  });
}

// ---- workerd CPU ----------------------------------------------------------------

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

function procStat(pid) {
  const raw = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised comm, which may itself contain spaces.
  const rest = raw.slice(raw.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(rest[1]), utime: Number(rest[11]), stime: Number(rest[12]) };
}

/** The workerd process among this process's descendants. */
function findWorkerd() {
  const children = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const { ppid } = procStat(name);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(name));
    } catch {
      /* the process ended */
    }
  }
  const queue = [...(children.get(process.pid) ?? [])];
  const found = [];
  for (let i = 0; i < queue.length && i < 10_000; i++) {
    const pid = queue[i];
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
    } catch {
      continue;
    }
    if (cmd.includes('workerd')) found.push({ pid, cmd });
    queue.push(...(children.get(pid) ?? []));
  }
  if (found.length !== 1) {
    throw new Error(`expected one workerd descendant, found ${found.length}: ${JSON.stringify(found)}`);
  }
  return found[0].pid;
}

let WORKERD_PID = 0;
const cpuTicks = () => {
  const s = procStat(WORKERD_PID);
  return s.utime + s.stime;
};

// ---- measurement ------------------------------------------------------------------

function newTally() {
  return { seq: [], seqErrors: 0, tpRequests: 0, tpErrors: 0, tpMs: 0, cpuTicks: 0, cpuRequests: 0 };
}

function check(res, spec, where) {
  if (res.status !== 200) return `${where}: HTTP ${res.status}: ${res.body.slice(0, 300)}`;
  let text;
  try {
    text = spec.text(res.body);
  } catch (e) {
    return `${where}: unreadable body (${e.message}): ${res.body.slice(0, 300)}`;
  }
  if (text !== ECHO) return `${where}: expected text ${JSON.stringify(ECHO)}, got ${JSON.stringify(text)}`;
  return null;
}

/** Sequential segment: `n` requests one after another. */
async function seqSegment(target, spec, n, tally, failures) {
  const t0 = cpuTicks();
  for (let i = 0; i < n; i++) {
    let res;
    try {
      res = await request(target, spec);
    } catch (e) {
      tally.seqErrors++;
      failures.push(`${target}: ${e.message}`);
      continue;
    }
    tally.seq.push(res.ms);
    if (res.status !== 200) {
      tally.seqErrors++;
      if (failures.length < 20) failures.push(`${target}: HTTP ${res.status} ${res.body.slice(0, 200)}`);
    }
  }
  tally.cpuTicks += cpuTicks() - t0;
  tally.cpuRequests += n;
}

/** Concurrent segment: CONCURRENCY workers until `maxReq` requests or `maxMs`. */
async function tpSegment(target, spec, maxReq, maxMs, tally, failures) {
  let started = 0;
  let done = 0;
  const t0 = cpuTicks();
  const start = performance.now();
  const deadline = start + maxMs;
  const worker = async () => {
    while (started < maxReq && performance.now() < deadline) {
      started++;
      try {
        const res = await request(target, spec);
        if (res.status !== 200) {
          tally.tpErrors++;
          if (failures.length < 20) failures.push(`${target}: HTTP ${res.status} ${res.body.slice(0, 200)}`);
        }
      } catch (e) {
        tally.tpErrors++;
        if (failures.length < 20) failures.push(`${target}: ${e.message}`);
      }
      done++;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const elapsed = performance.now() - start;
  tally.tpRequests += done;
  tally.tpMs += elapsed;
  tally.cpuTicks += cpuTicks() - t0;
  tally.cpuRequests += done;
}

/** A B B A A B B A ...: each target goes first equally often. */
const order = (round) => (round % 2 === 0 ? ['gemgate', 'passthrough'] : ['passthrough', 'gemgate']);

async function runScenario(sc, mockUrl) {
  const failures = [];
  // Correctness guard: one checked response from each target.
  for (const target of ['gemgate', 'passthrough']) {
    const res = await request(target, sc[target]);
    const problem = check(res, sc[target], `${sc.id}/${target}`);
    if (problem) throw new Error(`correctness guard failed: ${problem}`);
  }
  // Warm-up, alternating, not measured.
  for (let i = 0; i < WARMUP; i++) {
    for (const target of order(i)) {
      const res = await request(target, sc[target]);
      if (res.status !== 200) throw new Error(`warm-up ${sc.id}/${target}: HTTP ${res.status} ${res.body.slice(0, 300)}`);
    }
  }
  const tally = { gemgate: newTally(), passthrough: newTally() };
  const perRound = Math.ceil(SEQ / ROUNDS);
  for (let r = 0; r < ROUNDS; r++) {
    const n = Math.min(perRound, SEQ - r * perRound);
    for (const target of order(r)) await seqSegment(target, sc[target], n, tally[target], failures);
  }
  for (let r = 0; r < ROUNDS; r++) {
    for (const target of order(r)) {
      await tpSegment(target, sc[target], Math.ceil(TP_MAX / ROUNDS), TP_MS / ROUNDS, tally[target], failures);
    }
  }
  // Keep the mock's call log bounded between scenarios.
  await fetch(`${mockUrl}/__mock/reset`, { method: 'POST' }).catch(() => {});
  return summarize(sc, tally, failures);
}

const pct = (sorted, p) => {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
};

function summarize(sc, tally, failures) {
  const side = (t) => {
    const sorted = [...t.seq].sort((a, b) => a - b);
    return {
      requests: sorted.length,
      p50Ms: pct(sorted, 50),
      p99Ms: pct(sorted, 99),
      meanMs: sorted.reduce((a, b) => a + b, 0) / (sorted.length || 1),
      throughputRps: t.tpRequests / (t.tpMs / 1000),
      throughputRequests: t.tpRequests,
      cpuMsPerRequest: ((t.cpuTicks * 1000) / CLK_TCK) / (t.cpuRequests || 1),
      cpuRequests: t.cpuRequests,
      errors: t.seqErrors + t.tpErrors,
    };
  };
  const g = side(tally.gemgate);
  const p = side(tally.passthrough);
  return {
    id: sc.id,
    title: sc.title,
    gemgate: { path: sc.gemgate.path, ...g },
    passthrough: { path: sc.passthrough.path, ...p },
    addedMs: { p50: g.p50Ms - p.p50Ms, p99: g.p99Ms - p.p99Ms },
    ratio: {
      p50: g.p50Ms / p.p50Ms,
      p99: g.p99Ms / p.p99Ms,
      throughput: g.throughputRps / p.throughputRps,
      cpu: g.cpuMsPerRequest / p.cpuMsPerRequest,
    },
    failures: failures.slice(0, 10),
  };
}

// ---- setup ----------------------------------------------------------------------------


function bundleSize() {
  const wasm = readFileSync(join(ROOT, 'build/index_bg.wasm'));
  return {
    wasmBytes: wasm.length,
    wasmGzipBytes: gzipSync(wasm, { level: 9 }).length,
    jsBytes: statSync(join(ROOT, 'build/index.js')).size,
  };
}

// ---- report ----------------------------------------------------------------------------

const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');
const f3 = (x) => (Number.isFinite(x) ? x.toFixed(3) : 'n/a');
const f0 = (x) => (Number.isFinite(x) ? x.toFixed(0) : 'n/a');
const signed = (x) => (Number.isFinite(x) ? (x >= 0 ? '+' : '') + x.toFixed(2) : 'n/a');
const ratio = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}x` : 'n/a');

function table(rows) {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)));
  return rows
    .map((r, i) => {
      const line = r.map((cell, c) => (c === 0 ? String(cell).padEnd(widths[c]) : String(cell).padStart(widths[c]))).join('  ');
      return i === 0 ? `${line}\n${widths.map((w) => '-'.repeat(w)).join('  ')}` : line;
    })
    .join('\n');
}

function printReport(report) {
  const b = report.bundle;
  const lines = [];
  lines.push('');
  lines.push(`gemgate bench  (${report.date}, workerd via Miniflare ${report.miniflareVersion}, node ${process.version}, ${report.cpus} cores)`);
  lines.push(
    `warm-up ${report.config.warmup}/target, sequential ${report.config.sequential}/target, ` +
      `throughput c=${report.config.concurrency} for <=${report.config.throughputSeconds}s or <=${report.config.throughputMax} req/target, ` +
      `${report.config.rounds} alternating rounds; CPU tick = ${1000 / CLK_TCK} ms`,
  );
  lines.push('');
  const rows = [['scenario', 'target', 'p50 ms', 'p99 ms', 'req/s', 'CPU ms/req', 'errors']];
  for (const s of report.scenarios) {
    for (const t of ['gemgate', 'passthrough']) {
      const x = s[t];
      rows.push([t === 'gemgate' ? s.title : '', t, f3(x.p50Ms), f3(x.p99Ms), f0(x.throughputRps), f3(x.cpuMsPerRequest), x.errors]);
    }
    rows.push(['', 'added / ratio', `${signed(s.addedMs.p50)} (${ratio(s.ratio.p50)})`, `${signed(s.addedMs.p99)} (${ratio(s.ratio.p99)})`,
      ratio(s.ratio.throughput), ratio(s.ratio.cpu), '']);
  }
  lines.push(table(rows));
  lines.push('');
  lines.push(
    `bundle: build/index_bg.wasm ${(b.wasmBytes / 1024).toFixed(0)} KiB raw, ${(b.wasmGzipBytes / 1024).toFixed(0)} KiB gzip -9 ` +
      `(target < 1024 KiB gzip); build/index.js ${(b.jsBytes / 1024).toFixed(1)} KiB`,
  );
  lines.push(`JSON: ${report.jsonPath}`);
  for (const s of report.scenarios) {
    for (const f of s.failures) lines.push(`failure [${s.id}] ${f}`);
  }
  console.log(lines.join('\n'));
}

// ---- main -------------------------------------------------------------------------------

async function main() {
  const bundle = bundleSize();
  const compatDate = compatibilityDate();
  const mock = await startMock();
  let mf;
  const cleanup = async () => {
    for (const a of Object.values(agents)) a.destroy();
    if (mf) await mf.dispose().catch(() => {});
    mf = undefined;
    await mock.close().catch(() => {});
  };
  const watchdog = setTimeout(() => {
    console.error(`bench: exceeded ${RUN_DEADLINE_MS / 1000} s, aborting`);
    cleanup().finally(() => process.exit(2));
  }, RUN_DEADLINE_MS);
  watchdog.unref();
  try {
    mf = new Miniflare({
      host: '127.0.0.1',
      port: 0,
      log: new Log(LogLevel.WARN),
      cf: false, // placeholder request.cf; never fetch it from Cloudflare
      workers: [
        gemgateWorker({
          compatDate,
          route: `${HOSTS.gemgate}/*`,
          storage: 'gemgate-bench',
          bindings: {
            // [vars] from wrangler.toml, every Google endpoint pointed at the mock.
            GEMINI_API_BASE: mock.url,
            CODE_ASSIST_API_BASE: mock.url,
            GOOGLE_OAUTH_TOKEN_URL: `${mock.url}/token`,
            GOOGLE_OAUTH_AUTH_URL: `${mock.url}/o/oauth2/v2/auth`,
            GOOGLE_USERINFO_URL: `${mock.url}/oauth2/v2/userinfo`,
            // Secrets, as plain bindings.
            ADMIN_PASSWORD,
            ACCESS_TOKENS: CLIENT_TOKEN,
          },
        }),
        {
          name: 'passthrough',
          modules: true,
          script: PASSTHROUGH_JS,
          compatibilityDate: compatDate,
          routes: [`${HOSTS.passthrough}/*`],
          bindings: { UPSTREAM: mock.url, UPSTREAM_KEY: PASSTHROUGH_KEY },
        },
      ],
    });
    const url = await mf.ready;
    PORT = Number(url.port);
    WORKERD_PID = findWorkerd();
    const migrations = await migrate(mf);

    // Routing guard: the Host header must pick the worker, not the fallback.
    const routed = await request('passthrough', { method: 'GET', path: '/__bench/route' });
    if (routed.status !== 404 || routed.body !== 'not found') {
      throw new Error(`passthrough.bench is not routed to the passthrough worker: HTTP ${routed.status} ${routed.body.slice(0, 200)}`);
    }

    const added = await request('gemgate', {
      path: '/admin/api/keys',
      headers: { authorization: `Bearer ${ADMIN_PASSWORD}` },
      body: JSON.stringify({ keys: UPSTREAM_KEYS }),
    });
    if (added.status < 200 || added.status >= 300) {
      throw new Error(`POST /admin/api/keys: HTTP ${added.status} ${added.body.slice(0, 300)}`);
    }
    const user = await request('gemgate', {
      path: '/admin/api/users',
      headers: { authorization: `Bearer ${ADMIN_PASSWORD}` },
      body: JSON.stringify({ name: 'bench', credit_quota: 1_000_000_000_000, rpm: 10_000_000, tpm: 1_000_000_000 }),
    });
    if (user.status !== 201) throw new Error(`POST /admin/api/users: HTTP ${user.status} ${user.body.slice(0, 300)}`);
    USER_KEY = JSON.parse(user.body).key;
    console.log(`workerd pid ${WORKERD_PID} on ${url.origin}; mock ${mock.url}; migrations ${migrations.join(', ')}; keys and a user added`);

    const scenarios = [];
    for (const sc of SCENARIOS) {
      const t0 = performance.now();
      scenarios.push(await runScenario(sc, mock.url));
      console.log(`  ${sc.id}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    const jsonPath = join(ROOT, 'tests/bench/last-run.json');
    const { version: miniflareVersion } = JSON.parse(readFileSync(join(ROOT, 'node_modules/miniflare/package.json'), 'utf8'));
    const report = {
      date: new Date().toISOString(),
      miniflareVersion,
      node: process.version,
      cpus: (await import('node:os')).cpus().length,
      clockTicksPerSecond: CLK_TCK,
      config: {
        warmup: WARMUP,
        sequential: SEQ,
        concurrency: CONCURRENCY,
        throughputSeconds: TP_MS / 1000,
        throughputMax: TP_MAX,
        rounds: ROUNDS,
        prompt: PROMPT,
        model: MODEL,
      },
      bundle,
      scenarios,
      jsonPath: 'tests/bench/last-run.json',
    };
    writeFileSync(jsonPath, JSON.stringify(report, null, 2) + '\n');
    printReport(report);
    const errors = scenarios.reduce((n, s) => n + s.gemgate.errors + s.passthrough.errors, 0);
    if (errors > 0) {
      console.error(`bench: ${errors} measured request(s) failed`);
      process.exitCode = 1;
    }
  } catch (e) {
    console.error(`bench failed: ${e.stack ?? e}`);
    process.exitCode = 1;
  } finally {
    await cleanup();
    clearTimeout(watchdog);
  }
}

await main();
