// Helpers the end-to-end test files share. Those that read the stack take it
// as their first argument (the object tests/lib/harness.mjs startStack
// returns); the rest are plain functions.
import assert from 'node:assert/strict';

/** The bound on one request to the worker, for tests that bound their own. */
export const REQUEST_TIMEOUT_MS = 60_000;

/** The body of `res` parsed as JSON; fails with the status and the start of the body when it is not. */
export async function json(res, label = 'response') {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    return assert.fail(`${label} is not JSON (${res.status}): ${text.slice(0, 500)}`);
  }
}

/** Little-endian float32 values of a base64 string (an embedding with encoding_format base64). */
export function decodeFloat32(b64) {
  const bytes = Buffer.from(b64, 'base64');
  assert.equal(bytes.length % 4, 0, 'base64 embedding is not a whole number of float32s');
  return Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(i * 4));
}

/** `s` with every RegExp metacharacter escaped, to match it literally. */
export const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// ---------------------------------------------------------------- the gateway's defaults

/**
 * The `default_safety_settings` the gateway adds to a generation request that
 * sets none (every category at its least restrictive threshold).
 */
export const DEFAULT_SAFETY_SETTINGS = Object.freeze([
  { category: 'HARM_CATEGORY_HARASSMENT', threshold: 'OFF' },
  { category: 'HARM_CATEGORY_HATE_SPEECH', threshold: 'OFF' },
  { category: 'HARM_CATEGORY_SEXUALLY_EXPLICIT', threshold: 'OFF' },
  { category: 'HARM_CATEGORY_DANGEROUS_CONTENT', threshold: 'OFF' },
  { category: 'HARM_CATEGORY_CIVIC_INTEGRITY', threshold: 'BLOCK_NONE' },
]);

// ---------------------------------------------------------------- the mock's call record

/** The latest upstream call the mock recorded for `model`; fails if there is none. */
export async function lastCall(stack, model) {
  const calls = await stack.mockApi.calls({ model });
  assert.ok(calls.length > 0, `no upstream call for ${model}`);
  return calls.at(-1);
}

/** Runs `fn` and returns its result with the upstream calls the mock recorded meanwhile. */
export async function upstreamCallsDuring(stack, fn) {
  const before = (await stack.mockApi.calls()).length;
  const result = await fn();
  const calls = (await stack.mockApi.calls()).slice(before);
  return { result, calls };
}

// ---------------------------------------------------------------- the worker's cron

/**
 * Fires the worker's five-minute cron through wrangler's test route and waits
 * (bounded) until this run is done: one more "done" line than before it, so
 * a second run never returns on the first one's line. (wrangler's route runs
 * the cron now: a test moves stored timestamps back to let time pass.)
 */
export async function runCron(stack) {
  const doneLines = () => stack.log.match(/\[gemgate\] cron \*\/5 \* \* \* \* done/g)?.length ?? 0;
  const before = doneLines();
  const res = await fetch(`${stack.url}/__scheduled?cron=${encodeURIComponent('*/5 * * * *')}`, {
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  assert.equal(res.status, 200);
  await stack.waitForLog({ test: () => doneLines() > before, toString: () => `cron run ${before + 1} done` });
}

// ---------------------------------------------------------------- the usage ledger

/**
 * The worker logs `[gemgate] settled user=<id> lease=<lease> charged=<n>`
 * once a user-key request's charge is final. These helpers read those lines,
 * so a test waits for settlement instead of sleeping.
 */
const settleRe = (userId) =>
  new RegExp(`\\[gemgate\\] settled user=${escapeRe(userId)} lease=(\\S+) charged=(\\d+)`, 'g');

/** The settlement lines for `userId` in the worker log so far, oldest first, as `{ lease, charged }`. */
export function settlements(stack, userId) {
  return [...stack.log.matchAll(settleRe(userId))].map((m) => ({ lease: m[1], charged: Number(m[2]) }));
}

/** A settlement that charged something (a `where` for waitForSettlements). */
export const charged = (s) => s.charged > 0;

/**
 * Resolves (bounded) once `userId` has at least `count` settlement lines that
 * pass `where`, and returns all of them. The harness's waitForLog only calls
 * `pattern.test(log)`, so an object that counts lines works as the pattern.
 */
export async function waitForSettlements(stack, userId, count, { where = () => true, timeoutMs = 30_000 } = {}) {
  const re = settleRe(userId);
  const matching = (text) =>
    [...text.matchAll(re)].filter((m) => where({ lease: m[1], charged: Number(m[2]) })).length;
  await stack.waitForLog(
    { test: (text) => matching(text) >= count, toString: () => `${count} x "settled user=${userId}"` },
    timeoutMs,
  );
  return settlements(stack, userId).filter(where);
}

/**
 * request_log rows, their usage_hourly rollups and users.credits_used are
 * written in one D1 batch off the hot path (ctx.wait_until). The settle line
 * marks the ledger (what /v1/usage `used`/`reserved` report), not that batch,
 * and denied requests print no line at all: nothing signals when the D1 rows
 * land. So D1-backed views are read only after this poll has seen them
 * arrive: a bounded number of D1 reads (each one a `wrangler d1 execute`
 * process, which paces the loop by itself), never a sleep. Returns the rows
 * that passed `ready`.
 */
export async function pollD1(stack, sql, ready, attempts = 20) {
  let rows;
  for (let i = 0; i < attempts; i += 1) {
    rows = await stack.d1(sql);
    if (ready(rows)) return rows;
  }
  return assert.fail(`D1 never reached the expected state in ${attempts} reads of:\n${sql}\nlast: ${JSON.stringify(rows)}`);
}

/** Quotes a server-generated id for raw SQL, refusing anything odd. */
export function sqlStr(value) {
  assert.match(String(value), /^[A-Za-z0-9_.:/-]+$/, `unexpected characters in ${value}`);
  return `'${value}'`;
}

/**
 * Resolves once `predicate()` holds, checked now and on every call the mock
 * (`state`, an in-process mock's EventEmitter) records or finishes; fails
 * after `timeoutMs`. Create it before the action it waits for.
 */
export function mockCondition(state, predicate, what, timeoutMs = 15_000) {
  const promise = new Promise((ok, fail) => {
    const check = () => {
      if (!predicate()) return;
      done();
      ok();
    };
    const timer = setTimeout(() => {
      done();
      fail(new Error(`${what}: not within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      state.off('call', check);
      state.off('done', check);
    };
    state.on('call', check);
    state.on('done', check);
    check();
  });
  promise.catch(() => {}); // awaiting it still throws
  return promise;
}

/**
 * Runs `fn(step)` and fails, naming the step it was in, when it has not
 * ended within `limitMs`: a long test that hangs says where, instead of
 * only "timed out". `step(label)` marks where `fn` is; keep `limitMs`
 * below the test's own timeout.
 */
export async function inSteps(limitMs, fn) {
  let at = 'before the first step';
  let timer;
  const stuck = new Promise((_, fail) => {
    timer = setTimeout(() => fail(new Error(`stuck for ${limitMs} ms in step: ${at}`)), limitMs);
  });
  try {
    return await Promise.race([fn((label) => { at = label; }), stuck]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Closes a browser context, giving up after `timeoutMs` instead of hanging
 * the test. Called from a `finally`, it reports a close that hangs on
 * stderr rather than throwing, so the error that ended the test (if any)
 * stays the one the test fails with.
 */
export async function closeWithin(context, timeoutMs = 30_000) {
  let timer;
  try {
    await Promise.race([
      context.close(),
      new Promise((_, fail) => { timer = setTimeout(() => fail(new Error(`the browser context did not close within ${timeoutMs} ms`)), timeoutMs); }),
    ]);
  } catch (e) {
    console.error(`closeWithin: ${e.message}`);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------- leases left behind

/**
 * Calls `read()` until `ready(value)` holds (at least once, paced `everyMs`);
 * fails once `deadline` (a time) has passed first. Returns the value read.
 * For state that changes on its own (a lease expiring), where there is no
 * event to wait for.
 */
export async function pollUntil(read, ready, deadline, what, everyMs = 100) {
  let value;
  for (let i = 0; i < 100_000; i += 1) {
    value = await read();
    if (ready(value)) return value;
    if (Date.now() >= deadline) break;
    await new Promise((ok) => setTimeout(ok, everyMs)); // paces the poll; the deadline bounds it
  }
  return assert.fail(`${what}: not by the deadline; last read ${JSON.stringify(value)}`);
}

/** A concurrency-limited model's slots as its gate reports them: `{ in_flight, queued, … }`. */
export async function gateQueue(stack, model) {
  const gate = await stack.admin('GET', `/models/${encodeURIComponent(model)}/gate`);
  assert.equal(typeof gate.queue?.in_flight, 'number', `gate of ${model}: ${JSON.stringify(gate)}`);
  assert.equal(typeof gate.queue?.queued, 'number', `gate of ${model}: ${JSON.stringify(gate)}`);
  return gate.queue;
}

/** A user key's ledger as `/v1/usage` reports it (`used`, `reserved`, …); reading it also expires dead leases. */
export async function ledgerOf(stack, key) {
  const res = await stack.call('GET', '/v1/usage', { token: key, timeoutMs: REQUEST_TIMEOUT_MS });
  const body = await json(res, '/v1/usage');
  assert.equal(res.status, 200, `/v1/usage: ${JSON.stringify(body)}`);
  return body;
}

/** Waits (bounded) until D1's `users.credits_used` for `userId` equals `credits`; returns it. */
export async function d1CreditsReach(stack, userId, credits) {
  const [row] = await pollD1(
    stack,
    `SELECT credits_used FROM users WHERE id = ${sqlStr(userId)}`,
    ([r]) => r !== undefined && r.credits_used === credits,
  );
  return row.credits_used;
}
