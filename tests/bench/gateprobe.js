// gateprobe: a bench-only worker that binds gemgate's `ModelGate` Durable
// Object class directly (binding GATE, scriptName gemgate) and drives one
// gate as hard as it can from inside workerd, to find what a single gate
// can serve per second without HTTP, Miniflare's entry worker or the mock
// in the way. tests/bench/run.mjs loads it and calls
//
//   GET /probe?c=<calls in flight>&ms=<duration>&name=<gate name>
//
// and gets back JSON { ops, elapsed_ms, ops_per_sec, errors, first_error,
// rosters_sent }. The op is the one the old design made once per request,
// choosing a key; it stays supported: `next` with no report. The first call
// sends the whole roster, later ones only its digest, as the real worker does.

const CANDIDATES = [{ id: 'k1' }, { id: 'k2' }, { id: 'k3' }];
const IDS = new Set(CANDIDATES.map((c) => c.id));
const DIGEST = 'bench';
const nextOp = (roster) => JSON.stringify({ op: 'next', roster, exclude: [], report: null, policy: {} });
const FULL = nextOp({ roster: 'full', digest: DIGEST, candidates: CANDIDATES });
const KNOWN = nextOp({ roster: 'known', digest: DIGEST });
const MAX_OPS = 2_000_000; // a bound on the loop whatever the clock does
const MAX_MS = 10_000;
const MAX_CONCURRENCY = 256;

/** One `next` call; returns 'ok', 'need_roster' or an error string. */
async function next(stub, body) {
  const res = await stub.fetch('https://gate/', { method: 'POST', body });
  const text = await res.text();
  if (res.status !== 200) return `HTTP ${res.status}: ${text.slice(0, 200)}`;
  let answer;
  try {
    answer = JSON.parse(text);
  } catch {
    return `not JSON: ${text.slice(0, 200)}`;
  }
  if (answer.result === 'need_roster') return 'need_roster';
  if (answer.result !== 'next') return `expected result "next": ${text.slice(0, 200)}`;
  const d = answer.decision;
  if (d && typeof d === 'object' && 'decision' in d && (d.decision !== 'chosen' || !IDS.has(d.key_id))) {
    return `the gate chose no bench key: ${text.slice(0, 200)}`;
  }
  return 'ok';
}

async function probe(env, concurrency, ms, name) {
  const stub = env.GATE.get(env.GATE.idFromName(name));
  let rosterKnown = false;
  let rostersSent = 0;
  let errors = 0;
  let firstError = null;
  const call = async () => {
    let body = rosterKnown ? KNOWN : FULL;
    if (body === FULL) rostersSent++;
    let outcome = await next(stub, body);
    if (outcome === 'need_roster') {
      // The gate restarted and forgot the list: send it again, as the worker would.
      rostersSent++;
      outcome = await next(stub, FULL);
    }
    if (outcome === 'ok') rosterKnown = true;
    else {
      errors++;
      firstError ??= outcome;
    }
  };
  // Not measured: the object starts, loads its storage and learns the roster.
  for (let i = 0; i < 20; i++) await call();
  if (errors > 0) return { ops: 0, elapsed_ms: 0, ops_per_sec: 0, errors, first_error: firstError, rosters_sent: rostersSent };

  let ops = 0;
  const start = Date.now(); // advances with I/O in workerd, and every op is I/O
  const deadline = start + ms;
  const worker = async () => {
    while (ops < MAX_OPS && Date.now() < deadline && errors === 0) {
      ops++;
      await call();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = Date.now() - start;
  return {
    ops,
    elapsed_ms: elapsed,
    ops_per_sec: elapsed > 0 ? (ops * 1000) / elapsed : 0,
    errors,
    first_error: firstError,
    rosters_sent: rostersSent,
  };
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (request.method !== 'GET' || url.pathname !== '/probe') return new Response('not found', { status: 404 });
    const int = (k, def, max) => Math.min(max, Math.max(1, Number.parseInt(url.searchParams.get(k) ?? '', 10) || def));
    const result = await probe(env, int('c', 1, MAX_CONCURRENCY), int('ms', 2000, MAX_MS), url.searchParams.get('name') || 'bench-gateprobe');
    return Response.json(result, { status: result.errors > 0 ? 500 : 200 });
  },
};
