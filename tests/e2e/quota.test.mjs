// User keys, exact quotas and the usage ledger (issue 4), end to end through
// the official OpenAI SDK, raw fetch and the Gemini surface. The mock's call
// record proves which requests reached Google; the worker's
// `[gemgate] settled user=… lease=… charged=…` lines say when settlement is
// done, so nothing here sleeps. Each test creates its own users and uses its
// own model names, so one test's ledger never shows up in another's.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import OpenAI from 'openai';
import { startStack, CLIENT_TOKEN, ADMIN_PASSWORD } from '../lib/harness.mjs';
import { assertMatchesSchema } from '../lib/openapi.mjs';
import { openaiClient } from '../lib/clients.mjs';
import {
  REQUEST_TIMEOUT_MS, charged, json, pollD1, sqlStr, waitForSettlements,
} from '../lib/util.mjs';

const UPSTREAM_KEYS = ['ok-q-1', 'ok-q-2', 'ok-q-3'];
/** Default request costs from the contract. */
const FLASH_COST = 2;
/** Token prices the token-mode tests configure. */
const PROMPT_PRICE = 1;
const COMPLETION_PRICE = 2;
/** OpenAI's duration format for x-ratelimit-reset-*: `250ms`, `54.565s`, `6m0s`, `1h2m3s`. */
const RESET_FORMAT = /^(\d+ms|(\d+h)?(\d+m)?\d+(\.\d+)?s)$/;

let stack;
/** Every user key this file was handed (create and rotate), for the storage checks. */
const issuedKeys = [];
/** The concurrency test's user, read again by the ledger test. */
let concurrency = null;

before(async () => {
  stack = await startStack({ keys: UPSTREAM_KEYS });
});
after(async () => stack?.stop());

// ---------------------------------------------------------------- helpers

async function createUser(fields) {
  const created = await stack.admin('POST', '/users', fields);
  assert.match(created.key, /^sk-[A-Za-z0-9_-]{43}$/, 'a user key is sk- plus 43 base64url characters');
  assert.equal(typeof created.user?.id, 'string');
  issuedKeys.push(created.key);
  return { id: created.user.id, key: created.key, user: created.user };
}

const userView = async (id) => (await stack.admin('GET', `/users/${id}`)).user;

const openaiFor = (key) => openaiClient(stack, { apiKey: key, timeout: REQUEST_TIMEOUT_MS });

/** A raw chat completion with a user key (bounded). */
const chat = (key, model, content = 'hi', extra = {}) => stack.call('POST', '/v1/chat/completions', {
  token: key,
  body: { model, messages: [{ role: 'user', content }], ...extra },
  timeoutMs: REQUEST_TIMEOUT_MS,
});

async function usageOf(key) {
  const res = await stack.call('GET', '/v1/usage', { token: key });
  const body = await json(res, '/v1/usage');
  assert.equal(res.status, 200, `/v1/usage: ${JSON.stringify(body)}`);
  assert.equal(body.object, 'usage');
  return body;
}

const upstreamCount = async (model) => (await stack.mockApi.calls({ model })).length;

/** The credits token mode charges for a Gemini usageMetadata (absent counts are 0). */
const chargeOfUsage = (u) =>
  (u?.promptTokenCount ?? 0) * PROMPT_PRICE +
  ((u?.candidatesTokenCount ?? 0) + (u?.thoughtsTokenCount ?? 0)) * COMPLETION_PRICE;

/** The same for a mock call record's `tokens`. */
const chargeOfTokens = (t) => t.prompt * PROMPT_PRICE + (t.candidates + t.thoughts) * COMPLETION_PRICE;

const sum = (values) => values.reduce((a, b) => a + b, 0);

/**
 * Resolves with the first event `name` the in-process mock emits whose
 * payload passes `pick`; fails after `timeoutMs`. Create it before the action
 * that triggers the event.
 */
function mockEvent(name, pick, timeoutMs = 20_000) {
  const { state } = stack.mock;
  const event = new Promise((ok, fail) => {
    const done = () => {
      clearTimeout(timer);
      state.off(name, on);
    };
    const on = (payload) => {
      if (!pick(payload)) return;
      done();
      ok(payload);
    };
    const timer = setTimeout(() => {
      done();
      fail(new Error(`the mock never emitted a matching '${name}' within ${timeoutMs} ms`));
    }, timeoutMs);
    state.on(name, on);
  });
  // Awaiting it still throws; this only keeps a test that failed before
  // awaiting it from also reporting an unhandled rejection.
  event.catch(() => {});
  return event;
}

/** Waits (bounded) until D1's settled total for `userId` reaches `credits`. */
async function waitForD1Credits(userId, credits) {
  await pollD1(
    stack,
    `SELECT credits_used FROM users WHERE id = ${sqlStr(userId)}`,
    ([row]) => row !== undefined && row.credits_used >= credits,
  );
}

const rateHeaders = (headers) => [...headers.keys()].filter((h) => h.startsWith('x-ratelimit-'));

/** Milliseconds in an OpenAI-style duration (`250ms`, `23s`, `54.565s`, `1m0s`, `1h2m3s`). */
function durationMs(text, label) {
  const m = /^(?:(\d+)ms|(?:(\d+)h)?(?:(\d+)m)?(\d+(?:\.\d+)?)s)$/.exec(text ?? '');
  assert.ok(m, `${label}: ${JSON.stringify(text)} is not an OpenAI duration`);
  if (m[1] !== undefined) return Number(m[1]);
  return Math.round((Number(m[2] ?? 0) * 3600 + Number(m[3] ?? 0) * 60 + Number(m[4])) * 1000);
}

const minuteOf = (ms) => Math.floor(ms / 60_000);

function assertOpenAiDenial(status, body, expectedStatus, code, label) {
  assert.equal(status, expectedStatus, `${label}: ${JSON.stringify(body)}`);
  assertMatchesSchema('ErrorResponse', body, label);
  assert.equal(body.error.code, code, `${label}: error.code`);
}

/** One stream event in Gemini's shape, carrying `usage`. */
function geminiChunk(model, text, usage, last) {
  return {
    candidates: [{
      content: { role: 'model', parts: [{ text }] },
      ...(last ? { finishReason: 'STOP' } : {}),
      index: 0,
    }],
    usageMetadata: usage,
    modelVersion: model,
    responseId: 'quota-refund-test',
  };
}
const usageMeta = (prompt, candidates, thoughts) => ({
  promptTokenCount: prompt,
  candidatesTokenCount: candidates,
  thoughtsTokenCount: thoughts,
  totalTokenCount: prompt + candidates + thoughts,
});

/** Reads an OpenAI SSE body until a chunk with delta content arrives (bounded reads). */
async function readUntilContent(reader, maxReads = 200) {
  const decoder = new TextDecoder();
  let text = '';
  for (let i = 0; i < maxReads; i += 1) {
    const { value, done } = await reader.read();
    if (done) return assert.fail(`the stream ended before any content: ${text.slice(0, 400)}`);
    text += decoder.decode(value, { stream: true });
    for (const line of text.split('\n')) {
      if (!line.startsWith('data: ') || line.startsWith('data: [DONE]')) continue;
      let event;
      try {
        event = JSON.parse(line.slice(6));
      } catch {
        continue; // an event split across reads
      }
      if (event.choices?.some((c) => c.delta?.content)) return text;
    }
  }
  return assert.fail(`no content chunk within ${maxReads} reads: ${text.slice(0, 400)}`);
}

async function withTokenPricing(pattern, fn) {
  await stack.admin('PUT', '/settings', {
    charging_mode: 'token',
    model_costs: [{ pattern, prompt_price: PROMPT_PRICE, completion_price: COMPLETION_PRICE }],
  });
  try {
    return await fn();
  } finally {
    await stack.admin('PUT', '/settings', { charging_mode: null, model_costs: null });
  }
}

// ---------------------------------------------------------------- tests

test('concurrency: 50 parallel requests on a 20-request quota admit exactly 20', { timeout: 180_000 }, async () => {
  const model = 'gemini-2.5-flash-q-1';
  const { id, key, user } = await createUser({ name: 'q-concurrency', credit_quota: 20 * FLASH_COST });
  assert.equal(user.credit_quota, 40);
  assert.equal(user.credits_used, 0);
  // A slow upstream keeps every admitted request in flight at once, so the
  // reservations of all 50 race each other.
  const LATENCY_MS = 4000;
  await stack.mockApi.script({ model, latencyMs: LATENCY_MS });

  const client = openaiFor(key);
  const outcomes = await Promise.allSettled(
    Array.from({ length: 50 }, (_, i) =>
      client.chat.completions.create({ model, messages: [{ role: 'user', content: `hello ${i}` }] })),
  );
  const ok = outcomes.flatMap((o, i) => (o.status === 'fulfilled' ? [[i, o.value]] : []));
  const denied = outcomes.filter((o) => o.status === 'rejected').map((o) => o.reason);
  assert.equal(ok.length, 20, `admitted ${ok.length}, expected 20: ${denied.slice(0, 3).map(String)}`);
  assert.equal(denied.length, 30);
  for (const [i, res] of ok) {
    assertMatchesSchema('CreateChatCompletionResponse', res, `admitted request ${i}`);
    assert.equal(res.choices[0].message.content, `echo: hello ${i}`);
  }
  for (const e of denied) {
    assert.ok(e instanceof OpenAI.APIError, `a denial is an API error, got ${e}`);
    assert.equal(e.status, 403, String(e));
    assert.equal(e.code, 'insufficient_quota', String(e));
    assert.equal(e.type, 'insufficient_quota', String(e));
    assertMatchesSchema('ErrorResponse', { error: e.error }, 'insufficient_quota body');
  }

  // Denied requests never reached Google, and the admitted ones really overlapped.
  const calls = await stack.mockApi.calls({ model });
  assert.equal(calls.length, 20, 'upstream calls for the model');
  // The mock answers LATENCY_MS after a call arrives: all 20 arriving within
  // that span means all 20 were open at once.
  const arrivals = calls.map((c) => c.at);
  const spread = Math.max(...arrivals) - Math.min(...arrivals);
  assert.ok(spread < LATENCY_MS, `the 20 upstream calls were not all in flight together (arrivals spread over ${spread} ms)`);

  const settled = await waitForSettlements(stack, id, 20, { where: charged });
  assert.deepEqual(settled.map((s) => s.charged), Array(20).fill(FLASH_COST));
  const usage = await usageOf(key);
  assert.equal(usage.user.id, id);
  assert.equal(usage.quota, 40);
  assert.equal(usage.used, 40);
  assert.equal(usage.reserved, 0);
  assert.equal(usage.remaining, 0);
  await waitForD1Credits(id, 40);
  assert.equal((await userView(id)).credits_used, 40);
  concurrency = { id, key, model, upstream: calls };
});

test('ledger: request_log, hourly rollups, /v1/usage and billing agree after the concurrency run', { timeout: 180_000 }, async () => {
  assert.ok(concurrency, 'this test reads the concurrency test\'s user, and that test did not finish');
  const { id, key, model, upstream } = concurrency;
  const uid = sqlStr(id);
  await pollD1(
    stack,
    `SELECT (SELECT COUNT(*) FROM request_log WHERE user_id = ${uid}) AS logged, ` +
      `(SELECT COALESCE(SUM(requests), 0) FROM usage_hourly WHERE user_id = ${uid}) AS rolled`,
    ([r]) => r.logged >= 50 && r.rolled >= 50,
  );

  const rows = await stack.d1(`SELECT * FROM request_log WHERE user_id = ${uid} ORDER BY id`);
  assert.equal(rows.length, 50, 'one request_log row per request, denied ones included');
  const ok = rows.filter((r) => r.status === 200);
  const denied = rows.filter((r) => r.status === 403);
  assert.equal(ok.length, 20);
  assert.equal(denied.length, 30);
  assert.equal(sum(rows.map((r) => r.credits)), 40);
  assert.ok(ok.every((r) => r.credits === FLASH_COST), 'each admitted request is charged the flash cost');
  assert.ok(denied.every((r) => r.credits === 0), 'denials are logged with 0 credits');
  assert.ok(rows.every((r) => r.model === model && r.stream === 0), JSON.stringify(rows[0]));
  for (const r of ok) {
    assert.ok(!UPSTREAM_KEYS.some((k) => String(r.key_id).includes(k)), `request_log.key_id holds an upstream key: ${r.key_id}`);
  }
  assert.equal(sum(ok.map((r) => r.prompt_tokens)), sum(upstream.map((c) => c.tokens.prompt)), 'prompt tokens as Google reported them');
  assert.equal(sum(ok.map((r) => r.reasoning_tokens)), sum(upstream.map((c) => c.tokens.thoughts)), 'reasoning tokens as Google reported them');

  // Rollups count every logged request, and agree with the log field by field.
  const rollups = await stack.d1(`SELECT * FROM usage_hourly WHERE user_id = ${uid}`);
  assert.ok(rollups.length >= 1);
  assert.ok(rollups.every((r) => r.model === model && r.hour % 3_600_000 === 0), JSON.stringify(rollups));
  const totals = {};
  for (const field of ['prompt_tokens', 'completion_tokens', 'reasoning_tokens', 'credits']) {
    totals[field] = sum(rows.map((r) => r[field]));
    assert.equal(sum(rollups.map((r) => r[field])), totals[field], `usage_hourly.${field}`);
  }
  assert.equal(sum(rollups.map((r) => r.requests)), rows.length, 'usage_hourly.requests');

  // The self-service view reports the same numbers.
  const usage = await usageOf(key);
  assert.equal(usage.used, 40);
  assert.equal(usage.reserved, 0);
  const pick = (o, keys) => Object.fromEntries(keys.map((k) => [k, o?.[k]]));
  const FIELDS = ['requests', 'prompt_tokens', 'completion_tokens', 'reasoning_tokens', 'credits'];
  assert.deepEqual(pick(usage.totals, FIELDS), { requests: 50, ...totals });
  assert.equal(usage.models.length, 1, JSON.stringify(usage.models));
  assert.deepEqual(pick(usage.models[0], ['model', ...FIELDS]), { model, requests: 50, ...totals });

  // The billing routes chat apps poll, answered with the user's own key.
  const sub = await stack.call('GET', '/v1/dashboard/billing/subscription', { token: key });
  const subBody = await json(sub, 'billing subscription');
  assert.equal(sub.status, 200, JSON.stringify(subBody));
  assert.equal(subBody.object, 'billing_subscription');
  assert.equal(subBody.has_payment_method, true);
  assert.equal(subBody.hard_limit_usd, 40);
  assert.equal(subBody.soft_limit_usd, 40);
  assert.equal(subBody.system_hard_limit_usd, 40);
  assert.equal(subBody.access_until, 0, 'no expiry');
  const day = (ms) => new Date(ms).toISOString().slice(0, 10);
  // A range around today in any time zone, end exclusive or not.
  const range = `start_date=${day(Date.now() - 86_400_000)}&end_date=${day(Date.now() + 2 * 86_400_000)}`;
  const billed = await stack.call('GET', `/v1/dashboard/billing/usage?${range}`, { token: key });
  const billedBody = await json(billed, 'billing usage');
  assert.equal(billed.status, 200, JSON.stringify(billedBody));
  assert.equal(billedBody.object, 'list');
  assert.equal(billedBody.total_usage, 40 * 100);

  // Last (so the counts above stay 20 + 30): the raw body of a denial, and no upstream call for it.
  const res = await chat(key, model, 'one more');
  assertOpenAiDenial(res.status, await json(res), 403, 'insufficient_quota', 'raw insufficient_quota');
  assert.equal(await upstreamCount(model), 20);
});

test('token charging: 50 concurrent streams, no admission past the balance, charges equal Google\'s usage', { timeout: 180_000 }, async () => {
  const model = 'gemini-2.5-flash-q-2';
  const MAX_TOKENS = 16;
  const K = 7; // how many reservations the quota is sized for
  const probeGate = `q2-probe-${Date.now()}`;
  const gate = `q2-burst-${Date.now()}`;
  // Releases are sticky and idempotent: a failed assertion never leaves streams held.
  const releaseGates = () => Promise.all([stack.mockApi.release(probeGate), stack.mockApi.release(gate)]);
  await withTokenPricing('gemini-2.5-flash-q-2*', async () => {
    try {
      await tokenBurst();
    } finally {
      await releaseGates();
    }
  });

  async function tokenBurst() {
    const { id, key } = await createUser({ name: 'q-token-concurrency', credit_quota: 1_000_000 });
    // Same body shape and same content length for every request, so every
    // reservation is the same; reasoning_effort low gives a known thinking budget.
    const body = (tag) => ({
      model, stream: true, max_tokens: MAX_TOKENS, reasoning_effort: 'low',
      messages: [{ role: 'user', content: `req-${tag}` }],
    });

    // 1. Probe one held stream to learn the reservation R the gateway makes.
    await stack.mockApi.script({ model, holdBeforeLast: probeGate, times: 1 });
    const probeHeld = mockEvent('held', (e) => e.gate === probeGate);
    const probe = await fetch(`${stack.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body('pp')),
      signal: AbortSignal.timeout(60_000),
    });
    assert.equal(probe.status, 200);
    await probeHeld;
    const R = (await usageOf(key)).reserved;
    await stack.mockApi.release(probeGate);
    await probe.text();
    const [probeSettle] = await waitForSettlements(stack, id, 1, { where: charged });
    const [probeCall] = await stack.mockApi.calls({ model });
    assert.equal(probeSettle.charged, chargeOfTokens(probeCall.tokens), 'the probe is charged Google\'s usage');
    const cfg = probeCall.body.generationConfig;
    assert.equal(cfg.maxOutputTokens, MAX_TOKENS);
    const outputReserve = (cfg.maxOutputTokens + (cfg.thinkingConfig?.thinkingBudget ?? 0)) * COMPLETION_PRICE;
    // The prompt part is an estimate (ceil(chars/4) of a ~100-byte request):
    // small, but its exact size is the gateway's choice.
    assert.ok(
      R - outputReserve >= 1 && R - outputReserve <= 128,
      `reservation ${R} is not (prompt estimate x ${PROMPT_PRICE}) + (max_tokens + thinking budget) x ${COMPLETION_PRICE} = small + ${outputReserve}`,
    );
    const usedBefore = (await usageOf(key)).used;
    assert.equal(usedBefore, probeSettle.charged);
    assert.equal((await usageOf(key)).reserved, 0);

    // 2. Room for exactly K reservations (and half of another).
    const quota = usedBefore + K * R + Math.floor(R / 2);
    await stack.admin('PATCH', `/users/${id}`, { credit_quota: quota });

    // 3. 50 concurrent streams. Every admitted one is held by the mock before
    // its last event, so nothing settles (and nothing is refunded) until all
    // 50 admission decisions are made: the count is exact, not timing-bound.
    await stack.mockApi.script({ model, holdBeforeLast: gate });
    const client = openaiFor(key);
    const outcomes = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) => client.chat.completions.create(body(String(i).padStart(2, '0')))),
    );
    const admitted = outcomes.flatMap((o, i) => (o.status === 'fulfilled' ? [[i, o.value]] : []));
    const denied = outcomes.filter((o) => o.status === 'rejected').map((o) => o.reason);
    assert.equal(admitted.length, K, `admitted ${admitted.length} with room for ${K}: ${denied.slice(0, 2).map(String)}`);
    for (const e of denied) {
      assert.equal(e.status, 403, String(e));
      assert.equal(e.code, 'insufficient_quota', String(e));
    }
    assert.equal(await upstreamCount(model), 1 + K, 'no upstream call for a denied request');
    const holding = await usageOf(key);
    assert.equal(holding.reserved, K * R, 'the admitted streams hold their reservations');
    assert.equal(holding.used, usedBefore);

    // 4. Let them finish; every stream is a valid OpenAI stream.
    await stack.mockApi.release(gate);
    await Promise.all(admitted.map(async ([i, stream]) => {
      let text = '';
      for await (const chunk of stream) {
        assertMatchesSchema('CreateChatCompletionStreamResponse', chunk, `stream ${i} chunk`);
        text += chunk.choices.map((c) => c.delta?.content ?? '').join('');
      }
      assert.equal(text, `echo: req-${String(i).padStart(2, '0')}`);
    }));

    const settled = await waitForSettlements(stack, id, 1 + K, { where: charged });
    const calls = await stack.mockApi.calls({ model });
    assert.equal(calls.length, 1 + K);
    const expected = sum(calls.map((c) => chargeOfTokens(c.tokens)));
    assert.ok(calls.every((c) => c.tokens.thoughts > 0), 'the mock reported thought tokens (charged at the completion price)');
    assert.equal(sum(settled.map((s) => s.charged)), expected, 'settle lines');
    const after = await usageOf(key);
    assert.equal(after.used, expected, 'the ledger');
    assert.equal(after.reserved, 0, 'every unused reservation was refunded');
    assert.ok(expected <= quota, `charged ${expected} past the quota ${quota}`);
    await waitForD1Credits(id, expected);
    const [{ credits }] = await stack.d1(`SELECT COALESCE(SUM(credits), 0) AS credits FROM request_log WHERE user_id = ${sqlStr(id)}`);
    assert.equal(credits, expected, 'sum of request_log.credits');
    assert.equal((await userView(id)).credits_used, expected, 'credits_used');
  }
});

test('rpm: 5 of 12 back-to-back requests pass; the rest get 429 with Retry-After and x-ratelimit-*', { timeout: 180_000 }, async (t) => {
  // Windows are aligned UTC minutes: a burst that straddles a boundary is
  // repeated once (with a new user), and the assertions use the one that did not.
  let chosen = null;
  for (let attempt = 1; attempt <= 2 && !chosen; attempt += 1) {
    const model = `gemini-2.5-flash-q-3-${attempt}`;
    const { key } = await createUser({ name: `q-rpm-${attempt}`, rpm: 5 });
    const t0 = Date.now();
    const results = [];
    for (let i = 0; i < 12; i += 1) {
      const res = await chat(key, model, `rpm ${i}`);
      results.push({ status: res.status, headers: res.headers, body: await json(res, `request ${i}`) });
    }
    const t1 = Date.now();
    if (minuteOf(t0) === minuteOf(t1)) chosen = { model, results, t0 };
    else t.diagnostic(`attempt ${attempt} straddled a minute boundary; repeating with a new user`);
  }
  assert.ok(chosen, 'both bursts straddled a minute boundary');
  const { model, results, t0 } = chosen;
  const windowLeftMs = (minuteOf(t0) + 1) * 60_000 - t0;

  assert.deepEqual(results.map((r) => r.status), [...Array(5).fill(200), ...Array(7).fill(429)]);
  const header = (name) => results.map((r) => r.headers.get(name));
  assert.deepEqual(header('x-ratelimit-limit-requests'), Array(12).fill('5'));
  assert.deepEqual(header('x-ratelimit-remaining-requests'), ['4', '3', '2', '1', '0', ...Array(7).fill('0')]);
  for (const [i, reset] of header('x-ratelimit-reset-requests').entries()) {
    assert.match(reset ?? '', RESET_FORMAT, `request ${i} x-ratelimit-reset-requests`);
    assert.ok(durationMs(reset, `request ${i}`) <= windowLeftMs + 1000, `request ${i}: reset ${reset} is past the minute's end`);
  }
  for (const [i, r] of results.entries()) {
    if (r.status === 200) {
      assertMatchesSchema('CreateChatCompletionResponse', r.body, `request ${i}`);
      continue;
    }
    assertOpenAiDenial(r.status, r.body, 429, 'rate_limit_exceeded', `request ${i}`);
    const retryAfter = r.headers.get('retry-after');
    assert.match(retryAfter ?? '', /^\d+$/, `request ${i} Retry-After`);
    assert.ok(+retryAfter >= 1 && +retryAfter <= 60, `Retry-After ${retryAfter}`);
    assert.ok(+retryAfter <= Math.ceil(windowLeftMs / 1000), `Retry-After ${retryAfter} outlasts the aligned minute (${windowLeftMs} ms left)`);
  }
  assert.equal(await upstreamCount(model), 5, 'rate-limited requests never reached Google');
});

test('refunds in token mode: a cut stream, a client that disconnects, an upstream failure', { timeout: 180_000 }, async (t) => {
  await withTokenPricing('gemini-2.5-flash-q-4*', async () => {
    // (a) The mock cuts the stream after one event: charged what that event reported.
    {
      const model = 'gemini-2.5-flash-q-4-cut';
      const { id, key } = await createUser({ name: 'q-refund-cut', credit_quota: 1_000_000 });
      const chunks = [
        geminiChunk(model, 'alpha ', usageMeta(9, 4, 3), false),
        geminiChunk(model, 'bravo ', usageMeta(9, 8, 3), false),
        geminiChunk(model, 'charlie', usageMeta(9, 12, 3), true),
      ];
      await stack.mockApi.script({ model, chunks, cutAfterEvents: 1, times: 1 });
      const res = await chat(key, model, 'cut me', { stream: true, max_tokens: 50 });
      assert.equal(res.status, 200);
      const text = await res.text();
      assert.ok(text.trimEnd().endsWith('data: [DONE]'), text.slice(-200));
      const [settle] = await waitForSettlements(stack, id, 1);
      const [call] = await stack.mockApi.calls({ model });
      assert.equal(call.cut?.afterEvents, 1, 'the mock cut the stream');
      const seen = call.chunks.slice(0, call.cut.afterEvents).map((c) => c.usageMetadata).filter(Boolean).at(-1);
      const expected = chargeOfUsage(seen);
      assert.equal(expected, 9 * PROMPT_PRICE + (4 + 3) * COMPLETION_PRICE);
      assert.equal(settle.charged, expected, 'charged the usage of the events Google sent');
      const usage = await usageOf(key);
      assert.equal(usage.used, expected);
      assert.equal(usage.reserved, 0);
    }

    // (b) The client goes away while the mock holds the last event. A disconnect can
    // cancel the stream's pending upstream read, and then only the settlement's
    // stall watchdog (the upstream idle timeout, lowered here) notices; the charge is
    // the same either way.
    await stack.admin('PUT', '/settings', { upstream_timeout_ms: 3000 });
    try {
      const model = 'gemini-2.5-flash-q-4-gone';
      const { id, key } = await createUser({ name: 'q-refund-disconnect', credit_quota: 1_000_000 });
      // The events before the last all carry the same usage, so the expected
      // charge does not depend on how many of them the gateway read before it
      // noticed the disconnect.
      const chunks = [
        geminiChunk(model, 'alpha ', usageMeta(9, 4, 3), false),
        geminiChunk(model, 'bravo ', usageMeta(9, 4, 3), false),
        geminiChunk(model, 'charlie', usageMeta(9, 12, 3), true),
      ];
      const gate = `q4-gone-${Date.now()}`;
      await stack.mockApi.script({ model, chunks, holdBeforeLast: gate, times: 1 });
      const held = mockEvent('held', (e) => e.gate === gate);
      const controller = new AbortController();
      const res = await fetch(`${stack.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model, stream: true, max_tokens: 50, messages: [{ role: 'user', content: 'leave early' }] }),
        signal: controller.signal,
      });
      assert.equal(res.status, 200);
      const reader = res.body.getReader();
      await readUntilContent(reader); // the gateway has read at least the first event
      const { call: live } = await held; // everything but the last event was sent
      const finished = live.finishedAt ? Promise.resolve() : mockEvent('done', (c) => c === live);
      const abortAt = Date.now();
      controller.abort();
      await reader.cancel().catch(() => {}); // already errored by the abort
      await stack.mockApi.release(gate);
      const [settle] = await waitForSettlements(stack, id, 1);
      await finished;
      const [call] = await stack.mockApi.calls({ model });
      assert.equal(call.eventTimes.filter((at) => at <= abortAt).length, chunks.length - 1, 'events sent before the abort');
      // The gateway was charged for the last usage it can have read: at least
      // the first event (it forwarded its text), at most what the mock wrote
      // (the last event only if the upstream was still open when the gate opened).
      const possible = new Set();
      for (let n = 1; n <= call.eventTimes.length; n += 1) {
        possible.add(chargeOfUsage(call.chunks.slice(0, n).map((c) => c.usageMetadata).filter(Boolean).at(-1)));
      }
      t.diagnostic(`disconnect: mock wrote ${call.eventTimes.length}/${chunks.length} events (gate ${call.gateOutcome}); charged ${settle.charged}`);
      assert.ok(possible.has(settle.charged), `charged ${settle.charged}, expected one of ${[...possible]}`);
      if (call.eventTimes.length < chunks.length) {
        assert.equal(settle.charged, chargeOfUsage(chunks[0].usageMetadata), 'charged the usage sent before the abort');
      }
      const usage = await usageOf(key);
      assert.equal(usage.used, settle.charged);
      assert.equal(usage.reserved, 0, 'the disconnect released the reservation');
    } finally {
      await stack.admin('PUT', '/settings', { upstream_timeout_ms: null });
    }

    // (c) Every key fails upstream: nothing is charged.
    {
      const model = 'gemini-2.5-flash-q-4-fail';
      const { id, key } = await createUser({ name: 'q-refund-failure', credit_quota: 1_000_000 });
      await stack.mockApi.script({ model, fault: 'server_500' });
      const res = await chat(key, model, 'fail me', { max_tokens: 50 });
      const body = await json(res);
      assert.ok(res.status >= 500, `expected an upstream failure, got ${res.status} ${JSON.stringify(body)}`);
      assert.ok(await upstreamCount(model) >= 1, 'the request was admitted and tried upstream');
      const [settle] = await waitForSettlements(stack, id, 1);
      assert.equal(settle.charged, 0);
      const usage = await usageOf(key);
      assert.equal(usage.used, 0);
      assert.equal(usage.reserved, 0);
      assert.equal((await userView(id)).credits_used, 0);
    }
  });
});

test('lifecycle changes apply on the very next request: expiry, disable, allow-list, rotate, delete', { timeout: 180_000 }, async () => {
  const flash = 'gemini-2.5-flash-q-5';
  const pro = 'gemini-2.5-pro-q-5';
  const { id, key } = await createUser({ name: 'q-lifecycle', credit_quota: 1000 });
  let successes = 0;

  const expectOk = async (k, model, label) => {
    const res = await chat(k, model, label);
    const body = await json(res, label);
    assert.equal(res.status, 200, `${label}: ${JSON.stringify(body)}`);
    assertMatchesSchema('CreateChatCompletionResponse', body, label);
    successes += 1;
  };
  const expectDenied = async (k, model, status, code, label) => {
    const before = await upstreamCount(model);
    const res = await chat(k, model, label);
    const body = await json(res, label);
    assertOpenAiDenial(res.status, body, status, code, label);
    assert.equal(await upstreamCount(model), before, `${label}: the upstream was called before the denial`);
    return body;
  };
  const patch = async (fields) => (await stack.admin('PATCH', `/users/${id}`, fields)).user;

  await expectOk(key, flash, 'fresh key');

  await patch({ expires_at: Date.now() - 5 });
  await expectDenied(key, flash, 403, 'key_expired', 'expired');
  assert.equal((await patch({ expires_at: null })).expires_at, null);
  await expectOk(key, flash, 'expiry cleared');

  assert.equal((await patch({ enabled: false })).enabled, false);
  await expectDenied(key, flash, 403, 'key_disabled', 'disabled');
  assert.equal((await patch({ enabled: true })).enabled, true);
  await expectOk(key, flash, 're-enabled');

  assert.deepEqual((await patch({ allowed_models: ['gemini-2.5-flash*'] })).allowed_models, ['gemini-2.5-flash*']);
  await expectDenied(key, pro, 403, 'model_not_allowed', 'pro outside the allow-list');
  await expectOk(key, flash, 'flash inside the allow-list');

  // Rotation: new secret, same user, same usage.
  await waitForSettlements(stack, id, successes, { where: charged });
  const usedBefore = successes * FLASH_COST;
  assert.equal((await usageOf(key)).used, usedBefore);
  await waitForD1Credits(id, usedBefore);
  assert.equal((await userView(id)).credits_used, usedBefore);
  const rotated = await stack.admin('POST', `/users/${id}/rotate`);
  issuedKeys.push(rotated.key);
  assert.match(rotated.key, /^sk-[A-Za-z0-9_-]{43}$/);
  assert.notEqual(rotated.key, key);
  assert.equal(rotated.user.id, id);
  assert.equal(rotated.user.credits_used, usedBefore);
  const old = await expectDenied(key, flash, 401, 'invalid_api_key', 'rotated-away key');
  // The same type as any unknown token gets (the gateway's 401s are authentication errors).
  assert.equal(old.error.type, 'authentication_error');
  await expectOk(rotated.key, flash, 'rotated key');
  await waitForSettlements(stack, id, successes, { where: charged });
  assert.equal((await usageOf(rotated.key)).used, usedBefore + FLASH_COST, 'usage kept across the rotation');
  await waitForD1Credits(id, usedBefore + FLASH_COST);
  assert.equal((await userView(id)).credits_used, usedBefore + FLASH_COST);

  const deleted = await stack.admin('DELETE', `/users/${id}`);
  assert.equal(deleted.deleted, true);
  await expectDenied(rotated.key, flash, 401, 'invalid_api_key', 'deleted user');
  const gone = await fetch(`${stack.url}/admin/api/users/${id}`, { headers: { authorization: `Bearer ${ADMIN_PASSWORD}` } });
  const goneBody = await json(gone, 'admin GET deleted user');
  assert.equal(gone.status, 404, JSON.stringify(goneBody));
  assert.equal(typeof goneBody.error?.message, 'string');
});

test('x-ratelimit-* headers for a limited user key; none for an unlimited one or a static token', { timeout: 180_000 }, async () => {
  const model = 'gemini-2.5-flash-q-8';
  const { key } = await createUser({ name: 'q-headers', rpm: 1000, tpm: 1_000_000 });
  const { data, response } = await openaiFor(key).chat.completions
    .create({ model, messages: [{ role: 'user', content: 'headers please' }] })
    .withResponse();
  assertMatchesSchema('CreateChatCompletionResponse', data, 'limited user completion');
  const h = (name) => response.headers.get(name);
  assert.equal(h('x-ratelimit-limit-requests'), '1000');
  assert.equal(h('x-ratelimit-remaining-requests'), '999');
  assert.match(h('x-ratelimit-reset-requests') ?? '', RESET_FORMAT);
  assert.equal(h('x-ratelimit-limit-tokens'), '1000000');
  assert.match(h('x-ratelimit-remaining-tokens') ?? '', /^\d+$/);
  assert.ok(+h('x-ratelimit-remaining-tokens') <= 1_000_000);
  assert.match(h('x-ratelimit-reset-tokens') ?? '', RESET_FORMAT);

  // A user key with no limit set gets no limit headers.
  const { key: unlimited } = await createUser({ name: 'q-headers-unlimited' });
  const free = await chat(unlimited, model, 'no limits');
  assert.equal(free.status, 200, await free.text());
  assert.deepEqual(rateHeaders(free.headers), []);

  // ACCESS_TOKENS clients: more requests than the rpm test's limit, none
  // limited, no limit headers, and an unlimited self-service view.
  for (let i = 0; i < 12; i += 1) {
    const res = await stack.call('POST', '/v1/chat/completions', {
      body: { model, messages: [{ role: 'user', content: `static ${i}` }] },
    });
    assert.equal(res.status, 200, await res.text());
    assert.deepEqual(rateHeaders(res.headers), [], `static token request ${i}`);
  }
  const res = await stack.call('GET', '/v1/usage', { token: CLIENT_TOKEN });
  const usage = await json(res, 'static /v1/usage');
  assert.equal(res.status, 200, JSON.stringify(usage));
  assert.equal(usage.object, 'usage');
  assert.equal(usage.quota, null);
  assert.equal(usage.remaining, null);
  const sub = await stack.call('GET', '/v1/dashboard/billing/subscription', { token: CLIENT_TOKEN });
  const subBody = await json(sub, 'static billing subscription');
  assert.equal(sub.status, 200, JSON.stringify(subBody));
  assert.ok(subBody.hard_limit_usd >= 1_000_000, `unlimited shows a large limit, got ${subBody.hard_limit_usd}`);
});

test('the Gemini surface applies the same admission: PERMISSION_DENIED over quota, UNAUTHENTICATED once deleted', { timeout: 180_000 }, async () => {
  const model = 'gemini-2.5-flash-q-9';
  const { id, key } = await createUser({ name: 'q-gemini', credit_quota: FLASH_COST });
  const generate = (method) => fetch(`${stack.url}/v1beta/models/${model}:${method}`, {
    method: 'POST',
    headers: { 'x-goog-api-key': key, 'content-type': 'application/json' },
    body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'native' }] }] }),
    signal: AbortSignal.timeout(60_000),
  });
  const assertGeminiError = async (res, status, name, label) => {
    const body = await json(res, label);
    assert.equal(res.status, status, `${label}: ${JSON.stringify(body)}`);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/, label);
    assert.equal(body.error?.code, status, `${label}: error.code`);
    assert.equal(body.error.status, name, `${label}: error.status`);
    assert.equal(typeof body.error.message, 'string', `${label}: error.message`);
  };

  const first = await generate('generateContent');
  const firstBody = await json(first, 'first native call');
  assert.equal(first.status, 200, JSON.stringify(firstBody));
  assert.equal(firstBody.candidates[0].content.parts[0].text, 'echo: native');
  await waitForSettlements(stack, id, 1, { where: charged });

  await assertGeminiError(await generate('generateContent'), 403, 'PERMISSION_DENIED', 'over quota');
  await assertGeminiError(await generate('streamGenerateContent?alt=sse'), 403, 'PERMISSION_DENIED', 'over quota, streaming');
  assert.equal(await upstreamCount(model), 1, 'denials never reached Google');
  assert.equal((await usageOf(key)).used, FLASH_COST);

  await stack.admin('DELETE', `/users/${id}`);
  await assertGeminiError(await generate('generateContent'), 401, 'UNAUTHENTICATED', 'deleted user');
  assert.equal(await upstreamCount(model), 1);
});

test('a key limited to some models sees only those in /v1/models; other keys see all', { timeout: 180_000 }, async () => {
  const { key } = await createUser({ name: 'q-models', allowed_models: ['gemini-2.5-flash*', 'text-embedding-*'] });
  const listed = async (apiKey) => {
    const ids = [];
    for await (const model of openaiFor(apiKey).models.list()) ids.push(model.id);
    return ids;
  };
  const limited = await listed(key);
  assert.ok(limited.length > 0 && limited.includes('gemini-2.5-flash'), JSON.stringify(limited));
  assert.ok(limited.every((id) => id.startsWith('gemini-2.5-flash') || id.startsWith('text-embedding-')), JSON.stringify(limited));
  const everything = await listed(CLIENT_TOKEN);
  assert.ok(everything.includes('gemini-2.5-pro') && !limited.includes('gemini-2.5-pro'), 'the static token sees the models the user may not use');
  const { key: open } = await createUser({ name: 'q-models-open' });
  assert.deepEqual(await listed(open), everything, 'no allow-list, no filter');
});

test('storage: only the SHA-256 of a user key is stored; listings, ledger and logs never show the key', { timeout: 180_000 }, async () => {
  // Runs last, so it also checks every key the tests above were issued.
  const { id, key } = await createUser({ name: 'q-storage', note: 'storage check', credit_quota: 100 });
  const res = await chat(key, 'gemini-2.5-flash-q-6', 'store nothing');
  assert.equal(res.status, 200, await res.text());
  await waitForSettlements(stack, id, 1, { where: charged });
  await waitForD1Credits(id, FLASH_COST); // its request_log and usage_hourly rows are in too

  /** No issued key, whole or as any 8-character run of its random part. */
  const assertNoKeys = (text, label) => {
    for (const k of issuedKeys) {
      const secret = k.slice(3);
      assert.ok(!text.includes(secret), `${label}: contains a whole user key`);
      for (let i = 0; i + 8 <= secret.length; i += 1) {
        assert.ok(!text.includes(secret.slice(i, i + 8)), `${label}: contains the key fragment ${secret.slice(i, i + 8)}`);
      }
    }
  };

  const rows = await stack.d1('SELECT * FROM users');
  assert.ok(rows.length >= 1);
  for (const row of rows) {
    for (const [column, value] of Object.entries(row)) {
      if (value !== null) assertNoKeys(String(value), `users.${column} of ${row.id}`);
    }
  }
  const row = rows.find((r) => r.id === id);
  assert.ok(row, `user ${id} not in D1`);
  assert.equal(row.key_hash, createHash('sha256').update(key).digest('hex'));

  const { users } = await stack.admin('GET', '/users');
  const listed = users.find((u) => u.id === id);
  assert.ok(listed, 'the user is listed');
  assert.ok(listed.key.startsWith('sk-'), `masked key ${listed.key}`);
  assert.ok(!listed.key.includes(key));
  assertNoKeys(JSON.stringify(users), 'admin user list');
  assertNoKeys(JSON.stringify(await userView(id)), 'admin user view');

  for (const table of ['request_log', 'usage_hourly']) {
    assertNoKeys(JSON.stringify(await stack.d1(`SELECT * FROM ${table}`)), table);
  }
  assertNoKeys(stack.log, 'worker log');
});
