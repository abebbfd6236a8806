// Transient upstream faults must not reach clients: with five keys and the
// mock failing 30 % of calls transiently (at most two faults per request),
// 500 requests at 20 concurrent give 0 client-visible failures.
//
// Transient = 500, 503, a dropped connection, a first-byte timeout. The mock's
// flaky rule draws them deterministically per request body (see
// tests/mock/README.md, "Flaky rules"); every request here has its own
// content, so the mock's call records say exactly what each request met.
// The upstream timeout is lowered to its minimum (1 s) so a `slow` fault
// (2.5 s) is a first-byte timeout; every other setting keeps its default,
// `max_retries` (3) included, so at most two faults leave one attempt to spare.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startStack, CLIENT_TOKEN } from '../lib/harness.mjs';

const KEYS = ['ok-tf-1', 'ok-tf-2', 'ok-tf-3', 'ok-tf-4', 'ok-tf-5'];
const UPSTREAM_TIMEOUT_MS = 1000;
const SLOW_MS = 2500;
const FAULTS = ['server_500', 'server_503', 'drop', 'slow'];
const RATE = 0.3;
const MAX_PER_REQUEST = 2;
const REQUESTS = 500;
const IN_FLIGHT = 20;

let stack;
let client;

before(async () => {
  stack = await startStack({ keys: KEYS, settings: { upstream_timeout_ms: UPSTREAM_TIMEOUT_MS } });
  client = new OpenAI({ apiKey: CLIENT_TOKEN, baseURL: `${stack.url}/v1`, maxRetries: 0, timeout: 60_000 });
});
after(async () => stack?.stop());

// ---------------------------------------------------------------- helpers

const MODEL_CALLS = new Set(['generateContent', 'streamGenerateContent']);

/** The user text of an upstream call (what identifies the client request). */
const textOf = (call) => (call.body?.contents?.at(-1)?.parts ?? []).map((p) => p.text ?? '').join('');

/** One chat completion through the SDK; `stream` reads the deltas to the end. Resolves to the reply text. */
async function chat(model, content, stream) {
  const messages = [{ role: 'user', content }];
  if (!stream) {
    const res = await client.chat.completions.create({ model, messages });
    return res.choices[0].message.content;
  }
  const events = await client.chat.completions.create({ model, messages, stream: true });
  let text = '';
  for await (const chunk of events) text += chunk.choices[0]?.delta?.content ?? '';
  return text;
}

/** Runs `fn(i)` for i in 0..n-1 with at most `width` in flight; resolves to the results in order. */
async function pool(n, width, fn) {
  const out = new Array(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next;
      next += 1;
      out[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: width }, worker));
  return out;
}

/**
 * Resolves once every call the in-process mock recorded for `model` has
 * ended (answered, dropped or abandoned); fails after `timeoutMs`. A gateway
 * that gave up on a slow call closes it at once; one that did not leaves it
 * running until the mock answers it.
 */
function allCallsEnded(model, timeoutMs) {
  const { state } = stack.mock;
  const open = () => state.calls.filter((c) => c.model === model && !c.finishedAt);
  if (open().length === 0) return Promise.resolve();
  return new Promise((ok, fail) => {
    const onDone = () => {
      if (open().length === 0) finish(ok);
    };
    const timer = setTimeout(() => finish(() => fail(new Error(`${open().length} upstream calls still open after ${timeoutMs} ms`))), timeoutMs);
    const finish = (fn) => {
      clearTimeout(timer);
      state.off('done', onDone);
      fn();
    };
    state.on('done', onDone);
  });
}

const tally = (values) => {
  const out = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
};

// ---------------------------------------------------------------- tests

test('a call slower than upstream_timeout_ms is a first-byte timeout: abandoned after ~1 s, served from another key', { timeout: 60_000 }, async () => {
  const model = 'gemini-2.5-flash-tf-slow';
  for (const stream of [false, true]) {
    const content = `slow ${stream ? 'stream' : 'json'}`;
    await stack.mockApi.script({ model, latencyMs: SLOW_MS, times: 1 });
    const started = Date.now();
    assert.equal(await chat(model, content, stream), `echo: ${content}`);
    const elapsed = Date.now() - started;
    await allCallsEnded(model, 10_000);
    const calls = (await stack.mockApi.calls({ model })).filter((c) => textOf(c) === content);
    assert.equal(calls.length, 2, `one timed-out call and one answer: ${JSON.stringify(calls.map((c) => [c.key, c.status]))}`);
    const [slow, served] = calls;
    assert.equal(slow.status, null, 'the mock never answered the slow call');
    assert.equal(typeof slow.abandonedAt, 'number', 'the gateway closed the slow call');
    const gaveUpAfter = slow.abandonedAt - slow.at;
    assert.ok(gaveUpAfter >= UPSTREAM_TIMEOUT_MS - 100 && gaveUpAfter < SLOW_MS, `gave up after ${gaveUpAfter} ms`);
    assert.equal(served.status, 200);
    assert.notEqual(served.key, slow.key, 'the retry went to another key');
    assert.ok(elapsed < SLOW_MS + 1000, `the client waited ${elapsed} ms`);
  }
});

test('5 keys, 30 % transient faults (≤ 2 per request): 500 requests at 20 concurrent, 0 client-visible failures', { timeout: 600_000 }, async (t) => {
  const model = 'gemini-2.5-flash-tf-flaky';
  await stack.mockApi.script({
    model,
    flaky: { rate: RATE, faults: FAULTS, maxPerRequest: MAX_PER_REQUEST, seed: 7, slowMs: SLOW_MS },
  });
  // Every third request streams; every content is unique, so every upstream body is.
  const contentOf = (i) => `transient ${i} of ${REQUESTS}`;
  const streams = (i) => i % 3 === 2;
  const started = Date.now();
  const outcomes = await pool(REQUESTS, IN_FLIGHT, async (i) => {
    try {
      return { text: await chat(model, contentOf(i), streams(i)) };
    } catch (err) {
      return { error: `${err.status ?? err.name}: ${err.error?.message ?? err.message}` };
    }
  });
  const wallMs = Date.now() - started;
  await allCallsEnded(model, SLOW_MS + 10_000);

  // ---- what the mock saw, per client request
  const calls = (await stack.mockApi.calls({ model })).filter((c) => MODEL_CALLS.has(c.action));
  const byText = new Map();
  for (const c of calls) byText.set(textOf(c), [...(byText.get(textOf(c)) ?? []), c]);
  const perRequest = Array.from({ length: REQUESTS }, (_, i) => (byText.get(contentOf(i)) ?? []).sort((a, b) => a.seq - b.seq));
  assert.equal(perRequest.reduce((n, cs) => n + cs.length, 0), calls.length, 'every upstream call belongs to one of the requests');

  const faultCounts = Object.fromEntries(FAULTS.map((f) => [f, calls.filter((c) => c.fault === f).length]));
  const faulted = calls.filter((c) => c.fault).length;
  const share = faulted / calls.length;
  const failures = outcomes.flatMap((o, i) => (o.error ? [{ i, stream: streams(i), error: o.error }] : []));
  const wrong = outcomes.flatMap((o, i) => (o.text !== undefined && o.text !== `echo: ${contentOf(i)}` ? [{ i, text: o.text }] : []));
  const summary = {
    requests: REQUESTS,
    streaming: outcomes.filter((_, i) => streams(i)).length,
    wallMs,
    upstreamCalls: calls.length,
    faults: faultCounts,
    faultShare: Number(share.toFixed(3)),
    faultsPerRequest: tally(perRequest.map((cs) => cs.filter((c) => c.fault).length)),
    callsPerRequest: tally(perRequest.map((cs) => cs.length)),
    succeeded: outcomes.filter((o) => o.text !== undefined).length,
    failed: failures.length,
    failedStreaming: failures.filter((f) => f.stream).length,
    failuresByError: tally(failures.map((f) => f.error)),
    wrongText: wrong.length,
  };
  t.diagnostic(`transient faults: ${JSON.stringify(summary)}`);

  // ---- the gateway's handling of each request, as the mock saw it
  for (const [i, cs] of perRequest.entries()) {
    const label = `request ${i} (${cs.map((c) => `${c.key}:${c.fault ?? c.status}`).join(' → ')})`;
    assert.ok(cs.filter((c) => c.fault).length <= MAX_PER_REQUEST, `${label} got more than ${MAX_PER_REQUEST} faults`);
    const keys = cs.map((c) => c.key);
    assert.equal(new Set(keys).size, keys.length, `${label} used a key twice`);
    // Nothing was served after a fault on the same key within one request:
    // a faulted key is not asked again, and a slow call the gateway timed out
    // was closed, never answered.
    for (const [n, c] of cs.entries()) {
      if (!c.fault) continue;
      assert.ok(!cs.slice(n + 1).some((later) => later.key === c.key), `${label}: ${c.key} was asked again after its ${c.fault}`);
      if (c.fault === 'slow') {
        assert.equal(c.status, null, `${label}: the slow call on ${c.key} was answered after the gateway's timeout`);
        assert.equal(typeof c.abandonedAt, 'number', `${label}: the gateway never closed its slow call on ${c.key}`);
      }
    }
    const served = cs.filter((c) => c.status === 200 && !c.fault);
    assert.ok(served.length <= 1, `${label}: served ${served.length} times`);
    if (outcomes[i].text !== undefined) assert.equal(served[0], cs.at(-1), `${label}: the answer must come from the last call`);
  }

  // ---- the acceptance: no client saw any of it
  assert.deepEqual(wrong, [], 'replies with the wrong text');
  assert.equal(
    failures.length,
    0,
    `${failures.length} of ${REQUESTS} requests failed (${summary.failedStreaming} streaming): ${JSON.stringify(summary.failuresByError)}`,
  );

  // ---- the faults really happened, as scripted (so passing means something)
  for (const f of FAULTS) assert.ok(faultCounts[f] > 0, `no ${f} fault happened: ${JSON.stringify(faultCounts)}`);
  // Retries stop at the first success, so at rate p with two faults at most the
  // expected share of all calls is (p + p²) / (1 + p + p²) = 0.28 for p = 0.3.
  assert.ok(Math.abs(share - RATE) <= 0.06, `fault share ${share.toFixed(3)} is not near ${RATE}`);
});
