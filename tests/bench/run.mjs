// gemgate benchmark: gemgate's added latency (p50, p99), throughput at 1 and
// 16 clients, workerd CPU per request and bundle size, each against a bare
// passthrough worker run in the same workerd (one Miniflare instance),
// against the same zero-latency Google mock, measured the same way over real
// HTTP on 127.0.0.1. Also what one ModelGate alone serves per second and,
// with BENCH_KEYS, what a large key pool costs. Not under `wrangler dev`,
// whose own overhead would swamp the worker's (tests/bench/README.md says why).
//
//   node tests/bench/run.mjs          (or `make bench`)
//
// Env knobs (all optional, all bounded): BENCH_WARMUP (50), BENCH_SEQ (300),
// BENCH_TP_SECONDS (5, per target and concurrency level), BENCH_TP_MAX (1000,
// likewise), BENCH_CONCURRENCY (1,16: a comma list of client counts),
// BENCH_SCENARIOS (comma list of openai-chat, openai-chat-stream,
// native-generate, user-key, model-limits), BENCH_GATE_SECONDS (2, per gate
// probe level), BENCH_KEYS (unset: no pool comparison; N > 3: a second
// gemgate with N keys runs openai-chat beside the 3-key one), BENCH_AB (a
// directory holding another build's index.js and index_bg.wasm: each selected
// scenario then also runs against that build, alternated with this one in the
// same workerd, the fairest comparison of two builds on a noisy machine).
//
// Prints a table, the issue's targets beside the figures (informational),
// and as its very last line `bench-summary: <one-line JSON>`. Writes the same
// data to tests/bench/last-run.json. Exits non-zero if a correctness guard or
// any measured request fails; never because a target is missed.
import http from 'node:http';
import readline from 'node:readline';
import { execFileSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
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
const LEVELS = (() => {
  const raw = (process.env.BENCH_CONCURRENCY ?? '').split(',').map((s) => Number.parseInt(s.trim(), 10));
  const ok = [...new Set(raw.filter((n) => Number.isFinite(n)).map((n) => Math.min(64, Math.max(1, n))))];
  return ok.length ? ok.sort((a, b) => a - b) : [1, 16];
})();
/** The level whose req/s the scenario objects of the summary carry (`rps`): 16 by default. */
const HEADLINE = LEVELS.includes(16) ? 16 : LEVELS.at(-1);
const GATE_MS = intEnv('BENCH_GATE_SECONDS', 2, 1, 10) * 1000;
const GATE_LEVELS = [1, 16];
/**
 * Where workerd keeps D1, KV and Durable Object storage (SQLite). On disk every Durable
 * Object write waits for an fsync, whose latency on a shared VM follows the neighbours'
 * I/O (one gate measured ~250 ops/s on disk against ~3000 on tmpfs on the same machine),
 * so by default the storage goes to a tmpfs, /dev/shm. BENCH_STORAGE=disk puts it in
 * Miniflare's usual place under the OS temp dir.
 */
const STORAGE = (() => {
  const want = (process.env.BENCH_STORAGE ?? 'tmpfs').trim();
  if (want !== 'tmpfs' && want !== 'disk') {
    console.error(`BENCH_STORAGE: expected tmpfs or disk, got ${want}`);
    process.exit(2);
  }
  if (want === 'tmpfs') {
    try {
      accessSync('/dev/shm', constants.W_OK);
      return { kind: 'tmpfs', base: '/dev/shm' };
    } catch {
      console.log('bench: /dev/shm is not writable; storage goes to disk');
    }
  }
  return { kind: 'disk', base: tmpdir() };
})();
const ROUNDS = 4; // segments per target per phase, alternated A B B A A B B A
const REQUEST_TIMEOUT_MS = 10_000;
const RUN_DEADLINE_MS = 300_000; // the whole run, setup included; a default run takes ~1.5 min

const ADMIN_PASSWORD = 'bench-admin-password';
const CLIENT_TOKEN = 'sk-bench-client-token';
const SMALL_POOL = 3;
const LARGE_POOL = process.env.BENCH_KEYS ? intEnv('BENCH_KEYS', 0, 1, 5000) : 0;
const AB_BUILD = process.env.BENCH_AB ? resolve(process.env.BENCH_AB) : null;
const poolKeys = (n) => Array.from({ length: n }, (_, i) => `ok-bench-${i + 1}`);
const PASSTHROUGH_KEY = 'ok-bench-passthrough';
const MODEL = 'gemini-2.5-flash';
const LIMITED_MODEL = 'gemini-2.5-flash-lite';
const MODEL_LIMITS = [{ pattern: LIMITED_MODEL, max_concurrency: 64, max_wait_ms: 5000 }];
const PROMPT = 'gemgate bench: the quick brown fox jumps over the lazy dog';
const ECHO = `echo: ${PROMPT}`;
const HOSTS = {
  gemgate: 'gemgate.bench',
  passthrough: 'passthrough.bench',
  'gemgate-large': 'gemgate-large.bench',
  'gemgate-ab': 'gemgate-ab.bench',
  gateprobe: 'gateprobe.bench',
};
/** Worker log lines every request prints; counted, not echoed, so the report stays readable. */
const ROUTINE_LOG = /^\[gemgate\] (settled |usage log: wrote )/;

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
const chatBody = (model, stream) =>
  JSON.stringify({ model, messages: [{ role: 'user', content: PROMPT }], ...(stream ? { stream: true } : {}) });
const staticAuth = { authorization: `Bearer ${CLIENT_TOKEN}` };
const chatSpec = (model = MODEL) => ({
  path: '/v1/chat/completions',
  headers: staticAuth,
  body: chatBody(model, false),
  text: openaiJsonText,
});
/** The baseline of every non-stream OpenAI scenario: the equivalent generateContent, passed through. */
const passGenerate = { path: `/v1beta/models/${MODEL}:generateContent`, body: geminiBody, text: geminiJsonText };

/** A user key with limits that never bite, created once the worker is up. */
let USER_KEY = '';
/** Why `model-limits` cannot run on this build, if it cannot. */
let MODEL_LIMITS_SKIP = '';

const SCENARIOS = [
  {
    id: 'openai-chat',
    title: 'OpenAI chat (non-stream)',
    gemgate: chatSpec(),
    passthrough: passGenerate,
  },
  {
    id: 'openai-chat-stream',
    title: 'OpenAI chat (stream, SSE)',
    gemgate: { path: '/v1/chat/completions', headers: staticAuth, body: chatBody(MODEL, true), text: openaiSseText },
    passthrough: { path: `/v1beta/models/${MODEL}:streamGenerateContent?alt=sse`, body: geminiBody, text: geminiSseText },
  },
  {
    id: 'native-generate',
    title: 'Gemini generateContent',
    gemgate: {
      path: `/v1beta/models/${MODEL}:generateContent`,
      headers: { 'x-goog-api-key': CLIENT_TOKEN },
      body: geminiBody,
      text: geminiJsonText,
    },
    passthrough: passGenerate,
  },
  {
    // The same chat through a user key with an rpm and an rpd: the UserLedger admits
    // beside the ModelGate call, and settlement plus the log row go through waitUntil.
    id: 'user-key',
    title: 'OpenAI chat, user key',
    gemgate: {
      ...chatSpec(),
      get headers() {
        return { authorization: `Bearer ${USER_KEY}` };
      },
      // The ledger's admission is what sets these; without them it did not run.
      expectHeaders: ['x-ratelimit-limit-requests', 'x-ratelimit-remaining-requests'],
    },
    passthrough: passGenerate,
  },
  {
    // A model with a concurrency limit (model_limits), far above what the bench sends.
    id: 'model-limits',
    title: `OpenAI chat, ${LIMITED_MODEL} limited`,
    gemgate: chatSpec(LIMITED_MODEL),
    passthrough: passGenerate,
    get skip() {
      return MODEL_LIMITS_SKIP;
    },
  },
];
const ONLY = (process.env.BENCH_SCENARIOS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
{
  const unknown = ONLY.filter((id) => !SCENARIOS.some((s) => s.id === id));
  if (unknown.length) {
    console.error(`BENCH_SCENARIOS: unknown ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.id).join(', ')}`);
    process.exit(2);
  }
}
const SELECTED = SCENARIOS.filter((s) => ONLY.length === 0 || ONLY.includes(s.id));

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
const MAX_SOCKETS = Math.max(...LEVELS, ...GATE_LEVELS);
const agents = Object.fromEntries(
  Object.keys(HOSTS).map((t) => [t, new http.Agent({ keepAlive: true, maxSockets: MAX_SOCKETS })]),
);

/** One request; resolves { status, headers, body, ms } once the whole body is read. */
function request(target, { method = 'POST', path, headers = {}, body }, timeoutMs = REQUEST_TIMEOUT_MS) {
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
        timeout: timeoutMs,
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const ms = Number(process.hrtime.bigint() - start) / 1e6;
          ok({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), ms });
        });
        res.on('error', fail);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${target} ${path}: no answer within ${timeoutMs} ms`)));
    req.on('error', fail);
    req.end(payload);
  });
}

const admin = (method, path, body) =>
  request('gemgate', { method, path, headers: { authorization: `Bearer ${ADMIN_PASSWORD}` }, body: body && JSON.stringify(body) });

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
const ticksToMs = (ticks) => (ticks * 1000) / CLK_TCK;

// ---- measurement ------------------------------------------------------------------

function newTally() {
  return {
    seq: [],
    seqErrors: 0,
    tp: Object.fromEntries(LEVELS.map((c) => [c, { requests: 0, ms: 0 }])),
    tpErrors: 0,
    cpuTicks: 0,
    cpuRequests: 0,
  };
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
  const missing = (spec.expectHeaders ?? []).filter((h) => !(h in res.headers));
  if (missing.length) return `${where}: response lacks ${missing.join(', ')}`;
  return null;
}

function noteFailure(failures, target, what) {
  if (failures.length < 20) failures.push(`${target}: ${what}`);
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
      noteFailure(failures, target, e.message);
      continue;
    }
    tally.seq.push(res.ms);
    if (res.status !== 200) {
      tally.seqErrors++;
      noteFailure(failures, target, `HTTP ${res.status} ${res.body.slice(0, 200)}`);
    }
  }
  tally.cpuTicks += cpuTicks() - t0;
  tally.cpuRequests += n;
}

/** Concurrent segment: `concurrency` clients until `maxReq` requests or `maxMs`. */
async function tpSegment(target, spec, concurrency, maxReq, maxMs, tally, failures) {
  let started = 0;
  let done = 0;
  const t0 = cpuTicks();
  const start = performance.now();
  const deadline = start + maxMs;
  const client = async () => {
    while (started < maxReq && performance.now() < deadline) {
      started++;
      try {
        const res = await request(target, spec);
        if (res.status !== 200) {
          tally.tpErrors++;
          noteFailure(failures, target, `HTTP ${res.status} ${res.body.slice(0, 200)}`);
        }
      } catch (e) {
        tally.tpErrors++;
        noteFailure(failures, target, e.message);
      }
      done++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, client));
  const elapsed = performance.now() - start;
  tally.tp[concurrency].requests += done;
  tally.tp[concurrency].ms += elapsed;
  tally.cpuTicks += cpuTicks() - t0;
  tally.cpuRequests += done;
}

/** A B B A A B B A ...: each target goes first equally often. */
const order = (pair, round) => (round % 2 === 0 ? pair : [pair[1], pair[0]]);

/**
 * Measures `sc` on the two targets of `pair` (gemgate against the passthrough, or the
 * small pool against the large one), alternating them in every phase.
 */
async function runScenario(sc, pair, mockUrl) {
  const failures = [];
  // Correctness guard: one checked response from each target.
  for (const target of pair) {
    const res = await request(target, sc[target]);
    const problem = check(res, sc[target], `${sc.id}/${target}`);
    if (problem) throw new Error(`correctness guard failed: ${problem}`);
  }
  // Warm-up, alternating, not measured.
  for (let i = 0; i < WARMUP; i++) {
    for (const target of order(pair, i)) {
      const res = await request(target, sc[target]);
      if (res.status !== 200) throw new Error(`warm-up ${sc.id}/${target}: HTTP ${res.status} ${res.body.slice(0, 300)}`);
    }
  }
  const tally = Object.fromEntries(pair.map((t) => [t, newTally()]));
  const perRound = Math.ceil(SEQ / ROUNDS);
  for (let r = 0; r < ROUNDS; r++) {
    const n = Math.min(perRound, SEQ - r * perRound);
    for (const target of order(pair, r)) await seqSegment(target, sc[target], n, tally[target], failures);
  }
  for (const c of LEVELS) {
    for (let r = 0; r < ROUNDS; r++) {
      for (const target of order(pair, r)) {
        await tpSegment(target, sc[target], c, Math.ceil(TP_MAX / ROUNDS), TP_MS / ROUNDS, tally[target], failures);
      }
    }
  }
  // Keep the mock's call log bounded between scenarios.
  await fetch(`${mockUrl}/__mock/reset`, { method: 'POST' }).catch(() => {});
  return summarize(sc, pair, tally, failures);
}

const pct = (sorted, p) => {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
};

function summarize(sc, pair, tally, failures) {
  const side = (t) => {
    const sorted = [...t.seq].sort((a, b) => a - b);
    const throughput = Object.fromEntries(
      LEVELS.map((c) => [`c${c}`, { rps: t.tp[c].requests / (t.tp[c].ms / 1000), requests: t.tp[c].requests }]),
    );
    return {
      requests: sorted.length,
      p50Ms: pct(sorted, 50),
      p99Ms: pct(sorted, 99),
      meanMs: sorted.reduce((a, b) => a + b, 0) / (sorted.length || 1),
      throughput,
      throughputRps: throughput[`c${HEADLINE}`].rps,
      cpuMsPerRequest: ticksToMs(t.cpuTicks) / (t.cpuRequests || 1),
      cpuRequests: t.cpuRequests,
      errors: t.seqErrors + t.tpErrors,
    };
  };
  const [a, b] = pair;
  const g = side(tally[a]);
  const p = side(tally[b]);
  return {
    id: sc.id,
    title: sc.title,
    targets: pair,
    [a]: { path: sc[a].path, ...g },
    [b]: { path: sc[b].path, ...p },
    addedMs: { p50: g.p50Ms - p.p50Ms, p99: g.p99Ms - p.p99Ms, cpu: g.cpuMsPerRequest - p.cpuMsPerRequest },
    ratio: {
      p50: g.p50Ms / p.p50Ms,
      p99: g.p99Ms / p.p99Ms,
      throughput: Object.fromEntries(LEVELS.map((c) => [`c${c}`, g.throughput[`c${c}`].rps / p.throughput[`c${c}`].rps])),
      cpu: g.cpuMsPerRequest / p.cpuMsPerRequest,
    },
    failures: failures.slice(0, 10),
  };
}

/**
 * BENCH_AB: each selected scenario that needs no user key or limits, this build against
 * the other, alternated in the same workerd; printed at once, not part of the summary.
 */
async function compareBuilds(mockUrl) {
  for (const sc of SELECTED.filter((s) => !s.skip && !['user-key', 'model-limits'].includes(s.id))) {
    const pair = { id: `${sc.id} (A/B)`, title: sc.title, gemgate: sc.gemgate, 'gemgate-ab': sc.gemgate };
    const run = await runScenario(pair, ['gemgate', 'gemgate-ab'], mockUrl);
    const [a, b] = [run.gemgate, run['gemgate-ab']];
    const c16 = `c${HEADLINE}`;
    console.log(
      `  A/B ${sc.id}: CPU ${a.cpuMsPerRequest.toFixed(3)} vs ${b.cpuMsPerRequest.toFixed(3)} ms (${run.ratio.cpu.toFixed(3)}x), ` +
        `p50 ${a.p50Ms.toFixed(3)} vs ${b.p50Ms.toFixed(3)} ms, req/s ${c16} ${a.throughput[c16].rps.toFixed(0)} vs ${b.throughput[c16].rps.toFixed(0)} ` +
        `(this build vs ${AB_BUILD})`,
    );
  }
}

// ---- one ModelGate alone ---------------------------------------------------------

/** Drives one gate from the gateprobe worker at each level; ops/s and workerd CPU per op. */
async function probeGate() {
  const levels = {};
  for (const c of GATE_LEVELS) {
    const t0 = cpuTicks();
    const res = await request('gateprobe', { method: 'GET', path: `/probe?c=${c}&ms=${GATE_MS}&name=bench-gateprobe` }, GATE_MS + 30_000);
    const ticks = cpuTicks() - t0;
    let out;
    try {
      out = JSON.parse(res.body);
    } catch {
      throw new Error(`gate probe c=${c}: HTTP ${res.status} ${res.body.slice(0, 300)}`);
    }
    if (res.status !== 200 || out.errors > 0 || !(out.ops > 0)) {
      throw new Error(`gate probe c=${c}: HTTP ${res.status}, ${out.errors} error(s): ${out.first_error ?? res.body.slice(0, 300)}`);
    }
    // The CPU includes the 20 unmeasured warm-up calls; they are a rounding error next to ops.
    levels[`c${c}`] = { opsPerSec: out.ops_per_sec, ops: out.ops, elapsedMs: out.elapsed_ms, cpuMsPerOp: ticksToMs(ticks) / out.ops };
  }
  const best = Math.max(...Object.values(levels).map((l) => l.opsPerSec));
  return { name: 'bench-gateprobe', seconds: GATE_MS / 1000, levels, opsPerSec: best };
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

/** Adds upstream keys through the admin API of `target`, in batches. */
async function addKeys(target, keys) {
  const BATCH = 250;
  let stored = 0;
  for (let i = 0; i < keys.length; i += BATCH) {
    const res = await request(target, {
      path: '/admin/api/keys',
      headers: { authorization: `Bearer ${ADMIN_PASSWORD}` },
      body: JSON.stringify({ keys: keys.slice(i, i + BATCH) }),
    }, 60_000);
    if (res.status < 200 || res.status >= 300) throw new Error(`${target} POST /admin/api/keys: HTTP ${res.status} ${res.body.slice(0, 300)}`);
    const counts = JSON.parse(res.body);
    stored += (counts.added ?? 0) + (counts.existing ?? 0);
  }
  if (stored !== keys.length) throw new Error(`${target}: ${stored} of ${keys.length} keys stored`);
}

/** Sets model_limits; on a build that does not know the setting, `model-limits` is skipped. */
async function setModelLimits() {
  const res = await admin('PATCH', '/admin/api/settings', { model_limits: MODEL_LIMITS });
  if (res.status === 200) return '';
  if (res.status === 400 && /Unknown setting/i.test(res.body)) {
    return 'this build does not know the model_limits setting (PATCH /admin/api/settings answered "Unknown setting")';
  }
  throw new Error(`PATCH /admin/api/settings model_limits: HTTP ${res.status} ${res.body.slice(0, 300)}`);
}

// ---- report ----------------------------------------------------------------------------

const f3 = (x) => (Number.isFinite(x) ? x.toFixed(3) : 'n/a');
const f0 = (x) => (Number.isFinite(x) ? x.toFixed(0) : 'n/a');
const signed = (x, d = 2) => (Number.isFinite(x) ? (x >= 0 ? '+' : '') + x.toFixed(d) : 'n/a');
const ratio = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}x` : 'n/a');
const round = (x, d = 3) => (Number.isFinite(x) ? Number(x.toFixed(d)) : null);

function table(rows) {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)));
  return rows
    .map((r, i) => {
      const line = r.map((cell, c) => (c === 0 ? String(cell).padEnd(widths[c]) : String(cell).padStart(widths[c]))).join('  ');
      return i === 0 ? `${line}\n${widths.map((w) => '-'.repeat(w)).join('  ')}` : line;
    })
    .join('\n');
}

/**
 * The passthrough's CPU per request on the machine issue 11's absolute targets were set on
 * (its text: "1.2 ms CPU per request against the passthrough's 0.3 ms"). Absolute times
 * scale with the machine, so each ms target is also judged scaled by this machine's
 * passthrough CPU over this reference.
 */
const REFERENCE_PASSTHROUGH_CPU_MS = 0.3;

/** Issue 11's targets, each with the figure it judges; informational, never fatal. */
function targets(report) {
  const out = [];
  const by = (id) => report.scenarios.find((s) => s.id === id && !s.skipped);
  const chat = by('openai-chat');
  // This machine's speed against the reference: >1 means slower.
  const scale = chat ? Math.max(1, chat.passthrough.cpuMsPerRequest / REFERENCE_PASSTHROUGH_CPU_MS) : 1;
  const add = (what, figure, shown, limit, met, scaled = null) =>
    out.push({ what, figure: round(figure), shown, limit, met: Number.isFinite(figure) ? met : null, scaled });
  /** A latency target in ms: met as written, and met once scaled to this machine. */
  const addMs = (what, figure, limitMs) =>
    add(what, figure, `${signed(figure, 3)} ms`, `<= ${limitMs} ms`, figure <= limitMs, {
      limitMs: round(limitMs * scale),
      met: Number.isFinite(figure) ? figure <= limitMs * scale : null,
    });
  if (chat) {
    addMs('openai-chat added p50', chat.addedMs.p50, 0.4);
    add('openai-chat CPU vs passthrough', chat.ratio.cpu, ratio(chat.ratio.cpu), '<= 2.5x', chat.ratio.cpu <= 2.5);
  }
  const stream = by('openai-chat-stream');
  if (stream) add('openai-chat-stream CPU vs passthrough', stream.ratio.cpu, ratio(stream.ratio.cpu), '<= 3x', stream.ratio.cpu <= 3);
  const native = by('native-generate');
  if (native) addMs('native-generate added p50', native.addedMs.p50, 0.3);
  const user = by('user-key');
  if (user) addMs('user-key added p50', user.addedMs.p50, 1.2);
  if (LEVELS.includes(16)) {
    // "With the default settings and a static token": the scenarios that use a user key
    // or a concurrency limit go through a Durable Object by design; they are shown, not judged.
    for (const s of report.scenarios.filter((x) => !x.skipped)) {
      const r = s.ratio.throughput.c16;
      const judged = s.id !== 'user-key' && s.id !== 'model-limits';
      add(`${s.id} throughput c=16 vs passthrough`, r, ratio(r), judged ? '>= 0.6x' : '(shown)', judged ? r >= 0.6 : null);
    }
  }
  if (report.pool) {
    const d = report.pool.cpuDiffMs;
    add(`pool CPU ${report.pool.largeKeys} keys minus ${report.pool.smallKeys} keys`, d, `${signed(d, 3)} ms`, '<= 0.2 ms', d <= 0.2, {
      limitMs: round(0.2 * scale),
      met: Number.isFinite(d) ? d <= 0.2 * scale : null,
    });
  }
  report.machineScale = round(scale, 2);
  return out;
}

function printReport(report) {
  const b = report.bundle;
  const lines = [];
  const lv = LEVELS.map((c) => `c${c}`);
  lines.push('');
  lines.push(
    `gemgate bench  (${report.date}, workerd via Miniflare ${report.miniflareVersion}, node ${process.version}, ${report.cpus} cores, ` +
      `load average ${report.loadAverage.start} at start, ${report.loadAverage.end} at end)`,
  );
  lines.push(
    `warm-up ${report.config.warmup}/target, sequential ${report.config.sequential}/target, ` +
      `throughput at c=${LEVELS.join(' and c=')} for <=${report.config.throughputSeconds}s or <=${report.config.throughputMax} req/target each, ` +
      `${report.config.rounds} alternating rounds; CPU tick = ${1000 / CLK_TCK} ms; storage on ${report.config.storage}`,
  );
  lines.push('');
  const rows = [['scenario', 'target', 'p50 ms', 'p99 ms', ...LEVELS.map((c) => `req/s c=${c}`), 'CPU ms/req', 'errors']];
  const block = (s, labels) => {
    const [a] = s.targets;
    for (const t of s.targets) {
      const x = s[t];
      rows.push([t === a ? s.title : '', labels[t] ?? t, f3(x.p50Ms), f3(x.p99Ms), ...lv.map((k) => f0(x.throughput[k].rps)), f3(x.cpuMsPerRequest), x.errors]);
    }
    rows.push(['', labels.diff ?? 'added / ratio', `${signed(s.addedMs.p50)} (${ratio(s.ratio.p50)})`, `${signed(s.addedMs.p99)} (${ratio(s.ratio.p99)})`,
      ...lv.map((k) => ratio(s.ratio.throughput[k])), `${signed(s.addedMs.cpu, 3)} (${ratio(s.ratio.cpu)})`, '']);
  };
  for (const s of report.scenarios) {
    if (s.skipped) {
      rows.push([s.title, 'SKIPPED', '', '', ...lv.map(() => ''), '', '']);
      continue;
    }
    block(s, {});
  }
  if (report.pool) {
    block(report.pool.run, {
      gemgate: `gemgate ${report.pool.smallKeys} keys`,
      'gemgate-large': `gemgate ${report.pool.largeKeys} keys`,
      diff: 'large - small',
    });
  }
  lines.push(table(rows));
  lines.push('');
  for (const s of report.scenarios.filter((x) => x.skipped)) lines.push(`skipped ${s.id}: ${s.skipped}`);
  const g = report.gate;
  lines.push(
    `gate capacity: ${f0(g.opsPerSec)} ops/s  (one ModelGate, op "next", driven from a worker for ${g.seconds} s per level: ` +
      Object.entries(g.levels).map(([k, l]) => `${k.replace('c', 'c=')} ${f0(l.opsPerSec)} ops/s, ${f3(l.cpuMsPerOp)} ms CPU/op`).join('; ') + ')',
  );
  if (report.pool) {
    lines.push(
      `pool: ${report.pool.largeKeys} keys vs ${report.pool.smallKeys} keys on openai-chat: CPU ${signed(report.pool.cpuDiffMs, 3)} ms/req ` +
        `(${f3(report.pool.run['gemgate-large'].cpuMsPerRequest)} vs ${f3(report.pool.run.gemgate.cpuMsPerRequest)})`,
    );
  }
  lines.push(
    `bundle: build/index_bg.wasm ${(b.wasmBytes / 1024).toFixed(0)} KiB raw, ${(b.wasmGzipBytes / 1024).toFixed(0)} KiB gzip -9 ` +
      `(target < 1024 KiB gzip); build/index.js ${(b.jsBytes / 1024).toFixed(1)} KiB`,
  );
  lines.push('');
  lines.push('targets (issue 11; informational, the bench does not fail on them):');
  lines.push(
    `  machine scale ${report.machineScale}x: this run's passthrough CPU per request over the ` +
      `${REFERENCE_PASSTHROUGH_CPU_MS} ms of the machine the ms targets were set on`,
  );
  const verdict = (met) => (met === null ? 'n/a' : met ? 'met' : 'MISSED');
  for (const t of report.targets) {
    const scaled = t.scaled ? `   scaled <= ${t.scaled.limitMs} ms ${verdict(t.scaled.met)}` : '';
    lines.push(`  ${t.what.padEnd(48)} ${t.shown.padStart(10)}   target ${t.limit.padEnd(10)} ${verdict(t.met).padEnd(6)}${scaled}`);
  }
  lines.push('');
  lines.push(`run: ${report.runSeconds} s; worker log: ${report.routineLogLines} routine line(s) not echoed; JSON: ${report.jsonPath}`);
  for (const s of [...report.scenarios, ...(report.pool ? [report.pool.run] : [])]) {
    for (const f of s.failures ?? []) lines.push(`failure [${s.id}] ${f}`);
  }
  console.log(lines.join('\n'));
}

/** The one-line JSON of the last line, for tools that track the figures. */
function summaryLine(report) {
  const side = (x) => ({ p50_ms: round(x.p50Ms), p99_ms: round(x.p99Ms), rps: round(x.throughputRps, 1), cpu_ms: round(x.cpuMsPerRequest) });
  const ran = report.scenarios.filter((s) => !s.skipped);
  const summary = {
    scenarios: report.scenarios.map((s) =>
      s.skipped ? { scenario: s.id, skipped: s.skipped } : { scenario: s.id, gemgate: side(s.gemgate), passthrough: side(s.passthrough) },
    ),
    throughput: Object.fromEntries(
      ran.map((s) => [
        s.id,
        Object.fromEntries(
          LEVELS.map((c) => [
            `c${c}`,
            { gemgate: round(s.gemgate.throughput[`c${c}`].rps, 1), passthrough: round(s.passthrough.throughput[`c${c}`].rps, 1), ratio: round(s.ratio.throughput[`c${c}`]) },
          ]),
        ),
      ]),
    ),
    gate_ops_per_sec: round(report.gate.opsPerSec, 0),
    machine_scale: report.machineScale,
    gate: Object.fromEntries(Object.entries(report.gate.levels).map(([k, l]) => [k, { ops_per_sec: round(l.opsPerSec, 0), cpu_ms_per_op: round(l.cpuMsPerOp, 4) }])),
  };
  if (report.pool) {
    const p = report.pool;
    summary.pool = {
      scenario: 'openai-chat',
      small_keys: p.smallKeys,
      large_keys: p.largeKeys,
      small: side(p.run.gemgate),
      large: side(p.run['gemgate-large']),
      cpu_diff_ms: round(p.cpuDiffMs),
    };
  }
  return `bench-summary: ${JSON.stringify(summary)}`;
}

// ---- main -------------------------------------------------------------------------------

/** workerd's stdout and stderr: routine per-request lines are counted, the rest echoed to stderr. */
let routineLogLines = 0;
let LOAD_AT_START = null;
function handleRuntimeStdio(stdout, stderr) {
  for (const stream of [stdout, stderr]) {
    readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
      if (ROUTINE_LOG.test(line)) routineLogLines++;
      else process.stderr.write(`workerd: ${line}\n`);
    });
  }
}

async function main() {
  const bundle = bundleSize();
  const compatDate = compatibilityDate();
  const mock = await startMock();
  let mf;
  // Our own directory, so it is removed however the run ends.
  const storageRoot = mkdtempSync(join(STORAGE.base, 'gemgate-bench-'));
  const cleanup = async () => {
    for (const a of Object.values(agents)) a.destroy();
    if (mf) await mf.dispose().catch(() => {});
    mf = undefined;
    await mock.close().catch(() => {});
    rmSync(storageRoot, { recursive: true, force: true });
  };
  const watchdog = setTimeout(() => {
    console.error(`bench: exceeded ${RUN_DEADLINE_MS / 1000} s, aborting`);
    cleanup().finally(() => process.exit(2));
  }, RUN_DEADLINE_MS);
  watchdog.unref();
  const runStart = performance.now();
  LOAD_AT_START = round(loadavg()[0], 2);
  let report;
  try {
    const gemgateBindings = {
      // [vars] from wrangler.toml, every Google endpoint pointed at the mock.
      GEMINI_API_BASE: mock.url,
      CODE_ASSIST_API_BASE: mock.url,
      GOOGLE_OAUTH_TOKEN_URL: `${mock.url}/token`,
      GOOGLE_OAUTH_AUTH_URL: `${mock.url}/o/oauth2/v2/auth`,
      GOOGLE_USERINFO_URL: `${mock.url}/oauth2/v2/userinfo`,
      // Secrets, as plain bindings.
      ADMIN_PASSWORD,
      ACCESS_TOKENS: CLIENT_TOKEN,
    };
    mf = new Miniflare({
      host: '127.0.0.1',
      port: 0,
      log: new Log(LogLevel.WARN),
      handleRuntimeStdio,
      defaultPersistRoot: storageRoot,
      cf: false, // placeholder request.cf; never fetch it from Cloudflare
      workers: [
        gemgateWorker({ compatDate, route: `${HOSTS.gemgate}/*`, storage: 'gemgate-bench', bindings: gemgateBindings }),
        {
          name: 'passthrough',
          modules: true,
          script: PASSTHROUGH_JS,
          compatibilityDate: compatDate,
          routes: [`${HOSTS.passthrough}/*`],
          bindings: { UPSTREAM: mock.url, UPSTREAM_KEY: PASSTHROUGH_KEY },
        },
        {
          // Binds gemgate's gate class directly, to measure one gate without a request around it.
          name: 'gateprobe',
          modules: true,
          scriptPath: join(ROOT, 'tests/bench/gateprobe.js'),
          compatibilityDate: compatDate,
          routes: [`${HOSTS.gateprobe}/*`],
          durableObjects: { GATE: { className: 'ModelGate', scriptName: 'gemgate' } },
        },
        ...(LARGE_POOL
          ? [
              // A second gemgate, with its own D1, KV and Durable Objects, holding the large pool.
              gemgateWorker({
                name: 'gemgate-large',
                compatDate,
                route: `${HOSTS['gemgate-large']}/*`,
                storage: 'gemgate-bench-large',
                bindings: gemgateBindings,
              }),
            ]
          : []),
        ...(AB_BUILD
          ? [
              // The other build of an A/B run, with stores of its own.
              gemgateWorker({
                name: 'gemgate-ab',
                compatDate,
                route: `${HOSTS['gemgate-ab']}/*`,
                storage: 'gemgate-bench-ab',
                bindings: gemgateBindings,
                build: AB_BUILD,
              }),
            ]
          : []),
      ],
    });
    const url = await mf.ready;
    PORT = Number(url.port);
    WORKERD_PID = findWorkerd();
    const migrations = await migrate(mf);
    if (LARGE_POOL) await migrate(mf, 'gemgate-large');
    if (AB_BUILD) await migrate(mf, 'gemgate-ab');

    // Routing guard: the Host header must pick the worker, not the fallback.
    const routed = await request('passthrough', { method: 'GET', path: '/__bench/route' });
    if (routed.status !== 404 || routed.body !== 'not found') {
      throw new Error(`passthrough.bench is not routed to the passthrough worker: HTTP ${routed.status} ${routed.body.slice(0, 200)}`);
    }

    await addKeys('gemgate', poolKeys(SMALL_POOL));
    if (LARGE_POOL) await addKeys('gemgate-large', poolKeys(LARGE_POOL));
    if (AB_BUILD) await addKeys('gemgate-ab', poolKeys(SMALL_POOL));
    const user = await admin('POST', '/admin/api/users', { name: 'bench', rpm: 10_000_000, rpd: 1_000_000_000 });
    if (user.status !== 201) throw new Error(`POST /admin/api/users: HTTP ${user.status} ${user.body.slice(0, 300)}`);
    USER_KEY = JSON.parse(user.body).key;
    if (SELECTED.some((s) => s.id === 'model-limits')) MODEL_LIMITS_SKIP = await setModelLimits();
    console.log(
      `workerd pid ${WORKERD_PID} on ${url.origin}; mock ${mock.url}; migrations ${migrations.join(', ')}; ` +
        `${SMALL_POOL} keys${LARGE_POOL ? ` (and ${LARGE_POOL} on gemgate-large)` : ''}, a user key` +
        `${MODEL_LIMITS_SKIP ? '' : SELECTED.some((s) => s.id === 'model-limits') ? ' and model_limits' : ''} added`,
    );

    const scenarios = [];
    for (const sc of SELECTED) {
      if (sc.skip) {
        console.log(`  ${sc.id}: SKIPPED: ${sc.skip}`);
        scenarios.push({ id: sc.id, title: sc.title, skipped: sc.skip });
        continue;
      }
      const t0 = performance.now();
      scenarios.push(await runScenario(sc, ['gemgate', 'passthrough'], mock.url));
      console.log(`  ${sc.id}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }

    if (AB_BUILD) await compareBuilds(mock.url);

    let t0 = performance.now();
    const gate = await probeGate();
    console.log(`  gate probe: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    let pool;
    if (LARGE_POOL) {
      t0 = performance.now();
      const chat = SCENARIOS.find((s) => s.id === 'openai-chat');
      const sc = { id: 'pool', title: `OpenAI chat, ${LARGE_POOL} vs ${SMALL_POOL} keys`, gemgate: chat.gemgate, 'gemgate-large': chat.gemgate };
      // Large first, so `added` and the ratios read large minus small, large over small.
      const run = await runScenario(sc, ['gemgate-large', 'gemgate'], mock.url);
      pool = { smallKeys: SMALL_POOL, largeKeys: LARGE_POOL, cpuDiffMs: run.addedMs.cpu, run };
      console.log(`  pool (${LARGE_POOL} keys): done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }

    const { version: miniflareVersion } = JSON.parse(readFileSync(join(ROOT, 'node_modules/miniflare/package.json'), 'utf8'));
    report = {
      date: new Date().toISOString(),
      miniflareVersion,
      node: process.version,
      cpus: cpus().length,
      // Other work on the machine skews every figure; a load well above the core count says so.
      loadAverage: { start: LOAD_AT_START, end: round(loadavg()[0], 2) },
      clockTicksPerSecond: CLK_TCK,
      config: {
        warmup: WARMUP,
        sequential: SEQ,
        concurrency: LEVELS,
        throughputSeconds: TP_MS / 1000,
        throughputMax: TP_MAX,
        gateSeconds: GATE_MS / 1000,
        rounds: ROUNDS,
        storage: STORAGE.kind,
        prompt: PROMPT,
        model: MODEL,
        limitedModel: LIMITED_MODEL,
        modelLimits: MODEL_LIMITS,
        keys: SMALL_POOL,
        largeKeys: LARGE_POOL || null,
      },
      bundle,
      scenarios,
      gate,
      pool,
      jsonPath: 'tests/bench/last-run.json',
    };
  } catch (e) {
    console.error(`bench failed: ${e.stack ?? e}`);
    process.exitCode = 1;
  } finally {
    // Before printing: once workerd is gone, none of its output can follow the summary line.
    await cleanup();
    clearTimeout(watchdog);
  }
  if (!report) return;
  report.runSeconds = round((performance.now() - runStart) / 1000, 1);
  report.routineLogLines = routineLogLines;
  report.targets = targets(report);
  const summary = summaryLine(report);
  report.summary = JSON.parse(summary.slice('bench-summary: '.length));
  writeFileSync(join(ROOT, report.jsonPath), JSON.stringify(report, null, 2) + '\n');
  printReport(report);
  const measured = [...report.scenarios.filter((s) => !s.skipped), ...(report.pool ? [report.pool.run] : [])];
  const errors = measured.reduce((n, s) => n + s.targets.reduce((m, t) => m + s[t].errors, 0), 0);
  if (errors > 0) {
    console.log(`bench: ${errors} measured request(s) failed`);
    process.exitCode = 1;
  }
  console.log(summary);
}

await main();
