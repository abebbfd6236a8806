// 500 streams the client abandons at random points (issue 13 §5.3): before
// the response's headers, right after the first chunk, or in the middle.
// Half go through the OpenAI SDK, half through the Google GenAI SDK
// (Gemini-native streamGenerateContent), with user keys charged by tokens,
// on a model with a concurrency limit. However a request ends, it must settle
// exactly once: afterwards no reservation and no slot is held, and each
// ledger is exactly the sum of what its settlements charged.
//
// upstream_timeout_ms stays at its default (120 s), so a lease that was never
// settled would hold its reservation for 2 x 120 s + 60 s: the bounded polls
// below end long before that, so they pass only if every request settled.
// The abort points come from a seeded generator (GEMGATE_ABORT_SEED to replay one).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { GoogleGenAI } from '@google/genai';
import { startStack } from '../lib/harness.mjs';
import { openaiClient } from '../lib/clients.mjs';
import {
  REQUEST_TIMEOUT_MS, d1CreditsReach, gateQueue, ledgerOf, pollUntil, settlements,
} from '../lib/util.mjs';

const MODEL = 'gemini-2.5-flash-abort';
const N = 500;
const CONCURRENCY = 16;
const USERS = 4;
const MAX_CONCURRENCY = 24;
/** Upstream events per stream, and the gap between them: a stream lasts about 0.4 s. */
const EVENTS = 20;
const EVENT_GAP_MS = 20;
const PROMPT_PRICE = 1;
const COMPLETION_PRICE = 2;
/** How long after the last abort every request must have settled. */
const SETTLE_WITHIN_MS = 60_000;
const SEED = Number(process.env.GEMGATE_ABORT_SEED ?? 20261207);

let stack;

before(async () => {
  stack = await startStack({ keys: ['ok-abort-1', 'ok-abort-2', 'ok-abort-3'] });
});
after(async () => stack?.stop());

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function chunks() {
  return Array.from({ length: EVENTS }, (_, i) => ({
    candidates: [{
      content: { role: 'model', parts: [{ text: `part${i} ` }] },
      ...(i === EVENTS - 1 ? { finishReason: 'STOP' } : {}),
      index: 0,
    }],
    usageMetadata: { promptTokenCount: 7, candidatesTokenCount: 3 * (i + 1), totalTokenCount: 7 + 3 * (i + 1) },
    modelVersion: MODEL,
  }));
}

/** What a whole stream costs: its last usage at the prices. */
const FULL_CHARGE = 7 * PROMPT_PRICE + 3 * EVENTS * COMPLETION_PRICE;

/**
 * One stream, abandoned as `plan` says: `headers` aborts `delayMs` after the
 * request is sent (before the response if it has not come yet), `first`
 * after the first chunk, `mid` after `after` chunks. Resolves with what
 * really happened: where it stopped and how many chunks the client saw.
 */
async function abandon({ sdk, client, plan, i }) {
  const controller = new AbortController();
  let chunksSeen = 0;
  let headersCame = false;
  const timer = plan.at === 'headers' ? setTimeout(() => controller.abort(), plan.delayMs) : null;
  const bound = setTimeout(() => controller.abort(new Error('bound')), REQUEST_TIMEOUT_MS);
  try {
    const stream = sdk === 'openai'
      ? await client.chat.completions.create(
        { model: MODEL, stream: true, max_tokens: 256, messages: [{ role: 'user', content: `abort ${i}` }] },
        { signal: controller.signal },
      )
      : await client.models.generateContentStream({
        model: MODEL,
        contents: `abort ${i}`,
        config: { maxOutputTokens: 256, abortSignal: controller.signal },
      });
    headersCame = true;
    const stopAfter = plan.at === 'first' ? 1 : plan.at === 'mid' ? plan.after : Infinity;
    for await (const _ of stream) {
      chunksSeen += 1;
      if (chunksSeen >= stopAfter) {
        controller.abort();
        break;
      }
    }
    return { at: plan.at, headersCame, chunksSeen, ended: chunksSeen < stopAfter ? 'completed' : 'aborted' };
  } catch (e) {
    if (controller.signal.reason?.message === 'bound') throw new Error(`stream ${i} (${sdk}, ${JSON.stringify(plan)}) was not done within ${REQUEST_TIMEOUT_MS} ms`);
    const aborted = e instanceof OpenAI.APIUserAbortError || e?.name === 'AbortError' || controller.signal.aborted;
    if (aborted) return { at: plan.at, headersCame, chunksSeen, ended: 'aborted' };
    // wrangler dev's local proxy now and then drops a connection under this
    // churn of aborts (undici's "fetch failed", or its own 503 "Your worker
    // restarted mid-request"): counted and bounded below, never ignored.
    const message = `${e?.message ?? e} ${e?.cause?.code ?? ''}`;
    if (e instanceof OpenAI.APIConnectionError || /fetch failed|restarted mid-request|UND_ERR_SOCKET|ECONNRESET/.test(message)) {
      return { at: plan.at, headersCame, chunksSeen, ended: 'transport', detail: message.slice(0, 160) };
    }
    throw new Error(`stream ${i} (${sdk}, ${JSON.stringify(plan)}) failed: ${e?.stack ?? e}`);
  } finally {
    clearTimeout(timer);
    clearTimeout(bound);
  }
}

test('500 streams aborted by the client at random points leave 0 reservations, 0 slots, and exact ledgers', { timeout: 600_000 }, async (t) => {
  await stack.admin('PUT', '/settings', {
    model_limits: [{ pattern: `${MODEL}*`, max_concurrency: MAX_CONCURRENCY, max_wait_ms: 30_000 }],
    charging_mode: 'token',
    model_costs: [{ pattern: `${MODEL}*`, prompt_price: PROMPT_PRICE, completion_price: COMPLETION_PRICE }],
  });
  try {
    const users = [];
    for (let u = 0; u < USERS; u += 1) {
      const created = await stack.admin('POST', '/users', { name: `abort-${u}`, credit_quota: 1_000_000_000 });
      users.push({
        id: created.user.id,
        key: created.key,
        openai: openaiClient(stack, { apiKey: created.key, timeout: REQUEST_TIMEOUT_MS }),
        genai: new GoogleGenAI({ apiKey: created.key, httpOptions: { baseUrl: stack.url, timeout: REQUEST_TIMEOUT_MS } }),
      });
    }
    await stack.mockApi.script({ model: MODEL, chunks: chunks(), eventDelayMs: EVENT_GAP_MS });

    // The plans, drawn up front from the seed.
    const random = prng(SEED);
    const plans = Array.from({ length: N }, (_, i) => {
      const r = random();
      const plan = r < 1 / 3 ? { at: 'headers', delayMs: Math.floor(random() * 40) }
        : r < 2 / 3 ? { at: 'first' }
          : { at: 'mid', after: 2 + Math.floor(random() * (EVENTS - 6)) };
      return { i, sdk: i % 2 ? 'genai' : 'openai', user: users[i % USERS], plan };
    });

    const since = stack.mock.state.seq;
    const startedAt = Date.now();
    const results = new Array(N);
    let next = 0;
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < N) {
        const p = plans[next];
        next += 1;
        const client = p.sdk === 'openai' ? p.user.openai : p.user.genai;
        results[p.i] = { sdk: p.sdk, ...await abandon({ sdk: p.sdk, client, plan: p.plan, i: p.i }) };
      }
    }));
    const abortedBy = Date.now();
    const tally = {};
    for (const r of results) {
      const k = `${r.sdk}/${r.at}/${r.headersCame ? 'after-headers' : 'before-headers'}/${r.ended}`;
      tally[k] = (tally[k] ?? 0) + 1;
    }
    t.diagnostic(`seed ${SEED}: ${N} streams, ${CONCURRENCY} at a time, in ${abortedBy - startedAt} ms: ${JSON.stringify(tally)}`);
    const transport = results.filter((r) => r.ended === 'transport');
    if (transport.length) t.diagnostic(`dropped by the local proxy: ${JSON.stringify(transport.map((r) => r.detail))}`);
    assert.ok(transport.length <= N / 50, `${transport.length} of ${N} requests failed in transport`);
    assert.ok(results.filter((r) => r.ended === 'aborted').length >= N * 0.9, 'most streams were really aborted');
    assert.ok(results.some((r) => !r.headersCame), 'no stream was aborted before its headers');
    assert.ok(results.some((r) => r.at === 'mid' && r.ended === 'aborted' && r.chunksSeen >= 2), 'no stream was aborted mid-stream');

    // Every request settles on its own, long before any lease could expire:
    // no reservation and no slot left.
    const deadline = abortedBy + SETTLE_WITHIN_MS;
    const ledgers = [];
    for (const u of users) {
      ledgers.push(await pollUntil(() => ledgerOf(stack, u.key), (l) => l.reserved === 0, deadline,
        `user ${u.id}'s reservations released`, 250));
    }
    const slots = await pollUntil(() => gateQueue(stack, MODEL), (q) => q.in_flight === 0 && q.queued === 0,
      deadline, 'every slot free', 250);
    t.diagnostic(`0 reservations and 0 slots ${Date.now() - abortedBy} ms after the last abort; queue ${JSON.stringify(slots)}`);

    // Settled exactly once each: one settlement line per request that reached
    // Google (every admitted request makes one upstream call here).
    const calls = stack.mock.state.findCalls({ model: MODEL, since });
    const lines = await pollUntil(
      () => users.map((u) => settlements(stack, u.id)),
      (ls) => ls.flat().length >= calls.length, deadline, `${calls.length} settlement lines`, 250,
    );
    const leases = lines.flat().map((s) => s.lease);
    assert.equal(new Set(leases).size, leases.length, 'a lease settled twice');
    assert.equal(leases.length, calls.length, 'settlements vs upstream calls');
    t.diagnostic(`${calls.length} requests reached Google and settled; charges: ${JSON.stringify(
      Object.entries(lines.flat().reduce((m, s) => ({ ...m, [s.charged]: (m[s.charged] ?? 0) + 1 }), {})),
    )}`);

    // Each ledger is the sum of what its settlements charged (no leaked
    // reservation, nothing charged twice), never more than whole streams,
    // and D1's credits_used converges to it.
    for (const [n, u] of users.entries()) {
      const charges = lines[n].map((s) => s.charged);
      assert.ok(charges.every((c) => c <= FULL_CHARGE), `a charge past a whole stream (${FULL_CHARGE}): ${charges}`);
      const total = charges.reduce((a, b) => a + b, 0);
      assert.equal(ledgers[n].used, total, `user ${u.id}: ledger vs settlements`);
      assert.equal(await d1CreditsReach(stack, u.id, total), total, `user ${u.id}: D1 credits_used`);
    }

    // And every slot can be taken at once again.
    await stack.mockApi.script({ model: MODEL, latencyMs: 300, times: MAX_CONCURRENCY });
    const again = await Promise.all(Array.from({ length: MAX_CONCURRENCY }, async (_, i) => {
      const res = await stack.call('POST', '/v1/chat/completions', {
        token: users[i % USERS].key,
        body: { model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: `after ${i}` }] },
        timeoutMs: REQUEST_TIMEOUT_MS,
      });
      await res.text();
      return res.status;
    }));
    assert.deepEqual(again.filter((s) => s !== 200), [], 'a request after the aborts was not served');
    t.diagnostic(`whole test body: ${Date.now() - startedAt} ms`);
  } finally {
    await stack.admin('PUT', '/settings', { model_limits: null, charging_mode: null, model_costs: null });
  }
});
