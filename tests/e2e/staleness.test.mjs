// Issue 11, acceptance 2: how stale an isolate's copy of a model's key
// health may get. Requests choose their key inside the isolate from that
// copy, which the isolate refreshes from the model's gate in the background
// at most every `health_refresh_ms`. So when another isolate cools a key,
// this one keeps using it until its next refresh (then stops), or until it
// meets the failure itself (one call, whose report brings the current view
// back).
//
// `wrangler dev` runs one isolate, so this file runs two: the twin of
// tests/lib/twin.mjs, worker A and worker B in one Miniflare, each with its
// own isolate state, sharing one ModelGate per model and one D1. A cools a
// key; B's calls to it are counted from the mock's call record.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTwin } from '../lib/twin.mjs';
import { mockCondition as mockConditionOf } from '../lib/util.mjs';

/** The setting under test: small, so the bound is short. */
const REFRESH_MS = 500;
/** One background refresh's round trip to the gate, plus scheduling slack. */
const ROUND_TRIP_MS = 300;
/** After a key is cooled elsewhere, B may still call it only this long. */
const STALE_BOUND_MS = REFRESH_MS + ROUND_TRIP_MS;
/** How long B's traffic is watched after the cooling. */
const OBSERVE_MS = 3_000;
/** B's traffic before the cooling, so B's view is warm and refreshed a few times. */
const WARM_MS = 3 * REFRESH_MS;

const KEYS = ['ok-stale-k1', 'ok-stale-k2', 'ok-stale-k3'];
const [K1] = KEYS;

let twin;

before(async () => {
  twin = await startTwin({ keys: KEYS, settings: { health_refresh_ms: REFRESH_MS } });
});
after(async () => twin?.stop());

// ---------------------------------------------------------------- helpers

/** Resolves once `predicate()` holds for the twin's mock (see util.mjs). */
const mockCondition = (predicate, what, timeoutMs = 10_000) =>
  mockConditionOf(twin.mock.state, predicate, what, timeoutMs);

const callsOf = (model) => twin.mock.state.findCalls({ model });

/**
 * Steady sequential chat traffic from one worker on `model`: one request
 * after another, each with a unique prompt, until `stopAt` (a time) or
 * `maxRequests`. `pause()` resolves once the request in flight is done and
 * holds the loop (bounded by `maxPauseMs`) until `resume()`.
 */
function steadyTraffic(side, model, { maxRequests = 3_000, maxPauseMs = 20_000, label = side.host } = {}) {
  const results = [];
  let stopAt = Date.now() + 60_000;
  let hold = null;
  let onIdle = null;
  const loop = (async () => {
    for (let i = 0; i < maxRequests && Date.now() < stopAt; i += 1) {
      if (hold) {
        onIdle?.();
        await hold.promise;
      }
      const sentAt = Date.now();
      const res = await side.chat(model, `${label} ${i}`);
      results.push({ i, sentAt, doneAt: Date.now(), status: res.status, body: res.body });
    }
  })();
  loop.catch(() => {}); // reported by runUntil, which awaits it
  return {
    results,
    pause() {
      let resume;
      const promise = new Promise((ok) => {
        resume = ok;
      });
      const timer = setTimeout(resume, maxPauseMs); // a forgotten resume cannot hang the loop
      hold = { promise, resume: () => { clearTimeout(timer); resume(); } };
      return new Promise((ok) => {
        onIdle = ok;
      });
    },
    resume() {
      const h = hold;
      hold = null;
      onIdle = null;
      h?.resume();
    },
    /** Runs until `time`, then resolves with every result. */
    async runUntil(time) {
      stopAt = time;
      await loop;
      return results;
    },
  };
}

/**
 * Through worker A, cools K1 for `model` with a scripted 429 (RetryInfo
 * 600 s): `rule` is scripted, then A sends requests until one reaches K1
 * (A's own rotation gets there within a few). Resolves with the time A's
 * request came back, by when the gate knows of the cooldown (a failure is
 * reported, awaited, before the request moves on to another key).
 */
async function coolK1ThroughA(model, rule) {
  await twin.mockApi.script({ key: K1, model, fault: 'rate_limit_minute', retryDelay: '600s', ...rule });
  for (let i = 0; i < 2 * KEYS.length; i += 1) {
    const before = twin.mock.state.seq;
    const res = await twin.a.chat(model, `A cools k1, ${i}`);
    assert.equal(res.status, 200, `A's request must fail over to a healthy key: ${JSON.stringify(res.body)}`);
    const calls = twin.mock.state.findCalls({ model, since: before });
    const hit = calls.find((c) => c.key === K1);
    if (hit) {
      assert.equal(hit.status, 429, 'A met the scripted 429 on K1');
      return { cooledAt: Date.now(), seq: twin.mock.state.seq };
    }
  }
  return assert.fail(`A never reached ${K1} in ${2 * KEYS.length} requests`);
}

/** Warms B on `model` until it has used K1 and refreshed its view a few times. */
async function warmB(traffic, model) {
  const start = Date.now();
  await mockCondition(
    () => Date.now() - start >= WARM_MS && callsOf(model).some((c) => c.key === K1 && c.status === 200),
    `B's traffic on ${model} reaching ${K1} and running ${WARM_MS} ms`,
  );
  assert.ok(traffic.results.every((r) => r.status === 200), `B failed while warming: ${JSON.stringify(traffic.results.find((r) => r.status !== 200))}`);
}

// ---------------------------------------------------------------- tests

test('the twin: B reads A\'s D1 and reaches A\'s gates (a key cooled through A is cooled for a cold B)', { timeout: 60_000 }, async () => {
  const ids = (list) => list.keys.map((k) => k.id).sort();
  assert.deepEqual(ids(await twin.b.admin('GET', '/keys')), ids(await twin.a.admin('GET', '/keys')), 'B sees A\'s keys');
  assert.equal((await twin.b.admin('GET', '/keys')).keys.length, KEYS.length);

  const model = 'gemini-2.5-flash-twin-shared';
  await coolK1ThroughA(model, { times: 1 });
  // B never served this model: whether it asks the gate per request or
  // fetches the model's view before its first request, the view is the
  // gate's, so K1 is cooled for it too. Were B's gate its own, it would
  // call K1 within three requests.
  const since = twin.mock.state.seq;
  for (let i = 0; i < 3 * KEYS.length; i += 1) {
    const res = await twin.b.chat(model, `cold B ${i}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
  }
  const calls = twin.mock.state.findCalls({ model, since });
  assert.equal(calls.length, 3 * KEYS.length, 'one upstream call per request');
  assert.deepEqual(calls.filter((c) => c.key === K1), [], 'B called the key cooled through A: the two do not share the gate');
});

test('acceptance 2: B stops calling a key cooled through A within health_refresh_ms + one refresh round trip', { timeout: 60_000 }, async (t) => {
  const model = 'gemini-2.5-flash-stale-1';
  const traffic = steadyTraffic(twin.b, model, { label: 'B' });
  try {
    await warmB(traffic, model);
    await traffic.pause();
    const { cooledAt, seq } = await coolK1ThroughA(model, { times: 1 });
    // K1 would now succeed again: a B request that reached it would learn
    // nothing by itself, so only B's refresh can take it out of B's choice.
    await twin.mockApi.script({ key: K1, model, fault: null });
    traffic.resume();
    const results = await traffic.runUntil(cooledAt + OBSERVE_MS);

    const after = twin.mock.state.findCalls({ model, since: seq }); // A is done: these are B's
    const late = after.filter((c) => c.key === K1);
    const within = late.filter((c) => c.at - cooledAt <= STALE_BOUND_MS);
    const beyond = late.filter((c) => c.at - cooledAt > STALE_BOUND_MS);
    t.diagnostic(
      `B made ${after.length} upstream calls in the ${OBSERVE_MS} ms after the cooling; ` +
        `${within.length} reached ${K1} within the ${STALE_BOUND_MS} ms bound ` +
        `(at +${within.map((c) => c.at - cooledAt).join(', +') || '-'} ms), ${beyond.length} after it`,
    );
    assert.ok(after.length >= 10, `B's traffic did not keep flowing (${after.length} calls)`);
    assert.ok(results.every((r) => r.status === 200), 'every B request succeeded');
    assert.deepEqual(
      beyond.map((c) => c.at - cooledAt),
      [],
      `B still called ${K1} more than ${STALE_BOUND_MS} ms after A cooled it (ms after the cooling)`,
    );
    assert.ok(after.some((c) => c.key !== K1 && c.at - cooledAt > STALE_BOUND_MS), 'B kept serving from the other keys');
  } finally {
    traffic.resume();
    await traffic.runUntil(0);
  }
});

test('acceptance 2: when the cooled key still fails for B, B calls it at most once', { timeout: 60_000 }, async (t) => {
  const model = 'gemini-2.5-flash-stale-2';
  const traffic = steadyTraffic(twin.b, model, { label: 'B' });
  try {
    await warmB(traffic, model);
    await traffic.pause();
    // K1 keeps answering 429 (no `times`), for A's request and for B's.
    const { cooledAt, seq } = await coolK1ThroughA(model, {});
    traffic.resume();
    const results = await traffic.runUntil(cooledAt + OBSERVE_MS);

    const after = twin.mock.state.findCalls({ model, since: seq });
    const late = after.filter((c) => c.key === K1);
    t.diagnostic(`B called ${K1} ${late.length} time(s) after A cooled it (at +${late.map((c) => c.at - cooledAt).join(', +') || '-'} ms)`);
    assert.ok(after.length >= 10, `B's traffic did not keep flowing (${after.length} calls)`);
    assert.ok(results.every((r) => r.status === 200), 'every B request succeeded, failing over past K1');
    // One failed call per isolate, plus the calls that isolate had in
    // flight at once (B's traffic is sequential: one).
    assert.ok(late.length <= 1, `B called ${K1} ${late.length} times after it was cooled: the failure report did not update B's view`);
    assert.ok(late.every((c) => c.status === 429));
  } finally {
    traffic.resume();
    await traffic.runUntil(0);
  }
});
