// ModelGate state lives in Durable Object storage: key health survives a
// restart of `wrangler dev`. The rotation is each isolate's own (issue 11:
// keys are chosen inside the isolate, from a cursor that starts at a random
// offset), so after a restart it must still be a strict rotation over the
// keys that are not cooling, from wherever it starts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CLIENT_TOKEN, startStack } from '../lib/harness.mjs';
import {
  REQUEST_TIMEOUT_MS, charged, d1CreditsReach, gateQueue, ledgerOf, mockCondition, pollUntil, sqlStr,
  upstreamCallsDuring, waitForSettlements,
} from '../lib/util.mjs';

let stack;
const KEYS = ['ok-restart-1', 'ok-restart-2', 'ok-restart-3', 'ok-restart-4'];

before(async () => {
  stack = await startStack({ keys: KEYS });
});
after(async () => stack?.stop());

/** The upstream keys one chat request (with `token`) went through, in order. */
async function chatKey(model, token = CLIENT_TOKEN) {
  const { calls } = await upstreamCallsDuring(stack, async () => {
    const res = await stack.call('POST', '/v1/chat/completions', {
      token,
      body: { model, messages: [{ role: 'user', content: 'hi' }] },
      timeoutMs: REQUEST_TIMEOUT_MS,
    });
    assert.equal(res.status, 200, await res.clone().text());
  });
  return calls.map((c) => c.key);
}

/**
 * Five requests with `cooled` rate limited for 600 s on `model` (its one
 * 429 scripted here): the cooled key is tried once and never serves, and the
 * others serve in a strict rotation. Returns `follow(key)`, the key that
 * serves after `key` in that rotation.
 */
async function learnRotation(model, cooled, token) {
  await stack.mockApi.script({ key: cooled, model, fault: 'rate_limit_minute', retryDelay: '600s', times: 1 });
  const order = [];
  for (let i = 0; i < 5; i += 1) order.push(await chatKey(model, token));
  const served = order.map((keys) => keys.at(-1));
  assert.ok(order.flat().includes(cooled), 'the cooled key was never tried');
  assert.ok(!served.includes(cooled));
  // The rotation order is the candidates' (keys in D1 order); read it off
  // the first full cycle.
  const cycle = served.slice(0, KEYS.length - 1);
  assert.equal(new Set(cycle).size, cycle.length, `not a rotation: ${served}`);
  assert.deepEqual(served.slice(cycle.length), cycle.slice(0, served.length - cycle.length));
  return (k) => cycle[(cycle.indexOf(k) + 1) % cycle.length];
}

/**
 * Six requests after a restart: the cooled key is never tried (its 600 s
 * cooldown survived), and every other key serves, in the cyclic order
 * `follow` learned before the restart.
 */
async function assertRotationKept(model, cooled, follow, token) {
  const after = [];
  for (let i = 0; i < 6; i += 1) after.push(await chatKey(model, token));
  assert.ok(!after.flat().includes(cooled), `cooled key retried after restart: ${after}`);
  const rotation = after.map((k) => k.at(-1));
  for (let i = 1; i < rotation.length; i += 1) {
    assert.equal(rotation[i], follow(rotation[i - 1]), `rotation broken after restart: ${rotation}`);
  }
}

test('key cooldowns survive a restart, and the rotation after it is still strict', async () => {
  const model = 'gemini-2.5-flash-restart';
  // One key is rate limited for a long time on this model only.
  const cooled = 'ok-restart-2';
  const follow = await learnRotation(model, cooled, CLIENT_TOKEN);
  await stack.restart();
  await assertRotationKept(model, cooled, follow, CLIENT_TOKEN);
});

// ---------------------------------------------------------------- a crash under load

const KILL_MODEL = 'gemini-2.5-flash-restart-kill';
/** A model of its own (same limit and prices) for the request that completes just before the kill. */
const LAST_MODEL = `${KILL_MODEL}-last`;
const IN_FLIGHT = 50;
/**
 * The lease lifetimes come from the upstream timeout (no setting of their
 * own): long enough that the held requests are still waiting for Google's
 * first byte when the worker dies, short enough to wait for the leases.
 */
const UPSTREAM_TIMEOUT_MS = 20_000;
/** How long the mock holds each of the 50 before it answers. */
const HOLD_MS = 60_000;
/** A model slot's lease: upstream_timeout_ms + 5 s. */
const SLOT_LEASE_MS = UPSTREAM_TIMEOUT_MS + 5_000;
/** A user ledger's lease (its reservation): 2 x upstream_timeout_ms + 60 s. */
const LEDGER_LEASE_MS = 2 * UPSTREAM_TIMEOUT_MS + 60_000;
/** Slack on a lease deadline for a busy machine. */
const SLACK_MS = 15_000;
const PROMPT_PRICE = 1;
const COMPLETION_PRICE = 2;
const chargeOfTokens = (t) => t.prompt * PROMPT_PRICE + (t.candidates + t.thoughts) * COMPLETION_PRICE;
const sum = (values) => values.reduce((a, b) => a + b, 0);

/** Rejects after `ms` with `what`: a bound on a wait that has no timeout of its own. */
function within(promise, ms, what) {
  let timer;
  const bound = new Promise((_, fail) => {
    timer = setTimeout(() => fail(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([promise, bound]).finally(() => clearTimeout(timer));
}

/** A chat completion with `key` on `model`, unbounded: the crash ends it. */
const chatWith = (key, model, content) => stack.call('POST', '/v1/chat/completions', {
  token: key, body: { model, max_tokens: 64, messages: [{ role: 'user', content }] },
});

test('SIGKILL with 50 requests held upstream: health, rotation, slots, reservations and credits_used all come back', { timeout: 420_000 }, async (t) => {
  const cooled = 'ok-restart-3';
  await stack.admin('PUT', '/settings', {
    upstream_timeout_ms: UPSTREAM_TIMEOUT_MS,
    model_limits: [{ pattern: `${KILL_MODEL}*`, max_concurrency: IN_FLIGHT, max_wait_ms: 1_000 }],
    charging_mode: 'token',
    model_costs: [{ pattern: `${KILL_MODEL}*`, prompt_price: PROMPT_PRICE, completion_price: COMPLETION_PRICE }],
  });
  try {
    const created = await stack.admin('POST', '/users', { name: 'restart-kill', credit_quota: 1_000_000_000 });
    const { key } = created;
    const userId = created.user.id;

    // 1. Before: one key cooled for 600 s, the rotation over the others learned,
    // every completed request settled and in D1.
    const follow = await learnRotation(KILL_MODEL, cooled, key);
    const before = await waitForSettlements(stack, userId, 5, { where: charged });
    const usedBefore = (await ledgerOf(stack, key)).used;
    assert.equal(usedBefore, sum(before.map((s) => s.charged)), 'the ledger before the kill is its settlements');
    await d1CreditsReach(stack, userId, usedBefore);

    // 2. 50 requests in flight: each one admitted (a slot and a reservation)
    // and held by the mock before its answer when the worker dies.
    await stack.mockApi.script({ model: KILL_MODEL, latencyMs: HOLD_MS, times: IN_FLIGHT });
    const since = stack.mock.state.seq;
    const inFlight = mockCondition(stack.mock.state,
      () => stack.mock.state.findCalls({ model: KILL_MODEL, since }).length >= IN_FLIGHT,
      `${IN_FLIGHT} requests upstream`, 60_000);
    const clients = Array.from({ length: IN_FLIGHT }, (_, i) => chatWith(key, KILL_MODEL, `in flight ${String(i).padStart(2, '0')}`)
      .then((r) => `answered ${r.status}`, (e) => e.cause?.code ?? e.name));
    await inFlight;
    const admittedBy = Date.now();
    const doomed = stack.mock.state.findCalls({ model: KILL_MODEL, since });
    assert.equal(doomed.length, IN_FLIGHT, 'one upstream call per request');
    assert.ok(doomed.every((c) => c.finishedAt === undefined), 'a held request ended before the kill');
    const held = await ledgerOf(stack, key);
    const R = held.reserved / IN_FLIGHT;
    assert.ok(Number.isInteger(R) && R > 0, `reserved ${held.reserved} is not ${IN_FLIGHT} equal reservations`);
    assert.equal(held.used, usedBefore, 'nothing settled while in flight');
    assert.equal((await gateQueue(stack, KILL_MODEL)).in_flight, IN_FLIGHT, 'every request holds a slot');

    // One more request completes just before the crash (its own model, so its
    // own gate): the kill follows its settlement at once, most likely before
    // the isolate's log batch (request_log row and credits_used) is flushed.
    const res = await stack.call('POST', '/v1/chat/completions', {
      token: key, body: { model: LAST_MODEL, max_tokens: 64, messages: [{ role: 'user', content: 'last' }] },
      timeoutMs: REQUEST_TIMEOUT_MS,
    });
    assert.equal(res.status, 200, await res.text());
    const [last] = await waitForSettlements(stack, userId, 6, { where: charged }).then((s) => s.slice(5));

    // 3. The crash: SIGKILL to wrangler and workerd at once, then a start on the same state.
    const killAt = Date.now();
    const { killed } = await stack.killAndRestart();
    const upAt = Date.now();
    t.diagnostic(`killed ${killed.length} processes; back up ${upAt - killAt} ms after the kill (${killAt - admittedBy} ms after the last admission)`);
    const [{ n: lastRows }] = await stack.d1(`SELECT COUNT(*) AS n FROM request_log WHERE user_id = ${sqlStr(userId)} AND model = ${sqlStr(LAST_MODEL)}`);
    const [{ credits_used: d1AtRestart }] = await stack.d1(`SELECT credits_used FROM users WHERE id = ${sqlStr(userId)}`);
    t.diagnostic(`the request settled just before the kill (${last.charged} credits): its log batch was ${lastRows ? 'written before' : 'lost with'} the worker; D1 credits_used ${d1AtRestart} at the restart, the ledger ${usedBefore + last.charged}`);
    const usedAtKill = usedBefore + last.charged;
    const ends = await within(Promise.all(clients), 30_000, 'the killed requests failing at their clients');
    t.diagnostic(`the clients of the killed requests saw: ${[...new Set(ends)]}`);
    assert.ok(!ends.some((e) => e.startsWith('answered')), `a killed request was answered: ${ends}`);

    // 4. Right after the restart the dead requests still hold what they took, and nothing was charged for them.
    const after = await ledgerOf(stack, key);
    const slots = await gateQueue(stack, KILL_MODEL);
    t.diagnostic(`after the restart: reserved ${after.reserved} (${after.reserved / R} leases), slots ${JSON.stringify(slots)}`);
    assert.equal(after.used, usedAtKill, 'a killed request was charged');
    assert.ok(after.reserved <= IN_FLIGHT * R && after.reserved % R === 0, `reserved ${after.reserved} is not whole leases of ${R}`);
    assert.ok(slots.in_flight <= IN_FLIGHT);

    // 5. The slots come back on their own, within a slot lease.
    const freed = await pollUntil(() => gateQueue(stack, KILL_MODEL), (q) => q.in_flight === 0 && q.queued === 0,
      admittedBy + SLOT_LEASE_MS + SLACK_MS, 'the killed requests\' slots expiring');
    t.diagnostic(`every slot free ${Date.now() - admittedBy} ms after the last admission: ${JSON.stringify(freed)}`);

    // 6. Health and cursor: the cooled key is still cooled, the rotation still strict.
    await assertRotationKept(KILL_MODEL, cooled, follow, key);

    // 7. New requests serve normally: all 50 slots can be taken at once again.
    await stack.mockApi.script({ model: KILL_MODEL, latencyMs: 500, times: IN_FLIGHT });
    const again = await Promise.all(Array.from({ length: IN_FLIGHT }, async (_, i) => {
      const res = await stack.call('POST', '/v1/chat/completions', {
        token: key, body: { model: KILL_MODEL, max_tokens: 64, messages: [{ role: 'user', content: `again ${i}` }] },
        timeoutMs: REQUEST_TIMEOUT_MS,
      });
      await res.text();
      return res.status;
    }));
    assert.deepEqual(again.filter((s) => s !== 200), [], 'a request after the restart was not served');

    // 8. The reservations expire on their own, within a ledger lease.
    const drained = await pollUntil(() => ledgerOf(stack, key), (u) => u.reserved === 0,
      admittedBy + LEDGER_LEASE_MS + SLACK_MS, 'the killed requests\' reservations expiring', 1_000);
    t.diagnostic(`every reservation released ${Date.now() - admittedBy} ms after the last admission`);

    // 9. The ledger is exactly what the completed requests used (Google's
    // usage at the prices), none of the killed ones; D1 converges to it, even
    // when the batch of the request settled just before the kill was lost.
    const doomedSeqs = new Set(doomed.map((c) => c.seq));
    const completed = [...stack.mock.state.findCalls({ model: KILL_MODEL }), ...stack.mock.state.findCalls({ model: LAST_MODEL })]
      .filter((c) => c.status === 200 && !doomedSeqs.has(c.seq) && c.tokens);
    const expected = sum(completed.map((c) => chargeOfTokens(c.tokens)));
    const newSettled = await waitForSettlements(stack, userId, 6 + IN_FLIGHT, { where: charged });
    assert.equal(newSettled.length, 6 + IN_FLIGHT, 'one settlement per request after the restart');
    assert.equal(sum(newSettled.map((s) => s.charged)), drained.used - usedAtKill, 'settlements after the restart');
    assert.equal(drained.used, expected, 'the ledger: Google\'s usage of the completed requests');
    assert.equal(await d1CreditsReach(stack, userId, drained.used), drained.used, 'D1 credits_used');
  } finally {
    await stack.admin('PUT', '/settings', {
      upstream_timeout_ms: null, model_limits: null, charging_mode: null, model_costs: null,
    });
  }
});
