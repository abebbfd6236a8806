// Every admitted request is settled, including those that fail after the
// upstream answered 200: a body that does not parse (chat, embeddings) and
// an embeddings answer with fewer vectors than inputs. Unsettled, such a
// request keeps the user's concurrency slot and reserved credits until its
// lease expires (minutes) and leaves no request-log row. So is a stream whose
// client leaves in the middle, on every surface that streams: the gateway
// stops reading the upstream and settles it once.
//
// Each test uses its own user key (max_concurrency 1, a credit quota) and
// model name. A control case (an upstream 400, settled today) runs the same
// checks first. The worker's `[gemgate] settled user=… lease=… charged=N` line
// says when the ledger settled, so nothing sleeps; request_log rows are
// written in a batch off the hot path, so they are read with a bounded poll.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startStack } from '../lib/harness.mjs';
import { ledgerOf, mockCondition, settlements, sqlStr, waitForSettlements } from '../lib/util.mjs';

/** Default per-request costs: Flash-class models, and models that are neither Flash nor Pro. */
const FLASH_COST = 2;
const OTHER_COST = 1;
/** How long a settlement may take to show up in the log once the client has its answer. */
const SETTLE_WAIT_MS = 15_000;

let stack;

before(async () => {
  stack = await startStack({ keys: ['ok-settle-1', 'ok-settle-2'] });
});
after(async () => stack?.stop());

// ---------------------------------------------------------------- helpers

async function createUser(name) {
  const created = await stack.admin('POST', '/users', { name, credit_quota: 100, max_concurrency: 1 });
  assert.equal(typeof created.user?.id, 'string');
  assert.equal(created.user.max_concurrency, 1);
  return { id: created.user.id, key: created.key };
}

const openaiFor = (key) => new OpenAI({ apiKey: key, baseURL: `${stack.url}/v1`, maxRetries: 0, timeout: 60_000 });

const usageOf = (key) => ledgerOf(stack, key);

/** Waits (bounded) for the `count`-th settlement line of `userId`; resolves to its charge, or null if none came. */
async function settlementNo(userId, count) {
  try {
    await waitForSettlements(stack, userId, count, { timeoutMs: SETTLE_WAIT_MS });
  } catch {
    return null;
  }
  return settlements(stack, userId)[count - 1].charged;
}

/**
 * Reads `SELECT … FROM request_log` for `userId` until `ready(rows)` holds, a
 * bounded number of times (each read is a `wrangler d1 execute` process,
 * which paces the loop by itself; nothing sleeps).
 */
async function pollLog(userId, ready, attempts = 20) {
  const sql = `SELECT status, credits, ts FROM request_log WHERE user_id = ${sqlStr(userId)} ORDER BY id`;
  let rows = [];
  for (let i = 0; i < attempts; i += 1) {
    rows = await stack.d1(sql);
    if (ready(rows)) return rows;
  }
  return rows;
}

/** The rejection an SDK call ended with, checked to be an OpenAI-shaped error. */
async function apiErrorOf(promise, label) {
  let err;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof OpenAI.APIError, `${label}: expected an API error, got ${err ?? 'a success'}`);
  assert.ok(err.error && typeof err.error === 'object', `${label}: no error object in ${err}`);
  for (const field of ['message', 'type', 'param', 'code']) assert.ok(field in err.error, `${label}: error.${field} missing: ${JSON.stringify(err.error)}`);
  assert.equal(typeof err.error.message, 'string');
  assert.ok(err.error.message.length > 0);
  assert.equal(typeof err.error.type, 'string');
  return err;
}

/**
 * The scenario shared by the three early returns: a user key with room for
 * one request at a time sends the bad request, then the same request again
 * once the upstream is healthy. Everything that should have happened is
 * collected first and compared in one go, so a failure shows the whole picture.
 */
async function expectSettled(t, { name, model, cost, script, bad, next, error }) {
  const { id, key } = await createUser(name);
  const client = openaiFor(key);
  await stack.mockApi.script({ model, times: 1, ...script });

  const err = await apiErrorOf(bad(client), name);
  t.diagnostic(`${name}: the client got ${err.status} ${JSON.stringify(err.error)}`);
  assert.equal(err.status, error.status, `${name}: ${err.status} ${JSON.stringify(err.error)}`);
  assert.equal(err.error.type, error.type);
  assert.match(err.error.message, error.message);
  const [upstream] = await stack.mockApi.calls({ model });
  assert.equal(upstream?.status, script.fault.status, 'the upstream answered as scripted');
  assert.equal(upstream.fault, 'raw');

  // The failed request must be settled (nothing charged), releasing its slot and reservation.
  const charged = await settlementNo(id, 1);
  const afterFailure = await usageOf(key);
  const nextStartedAt = Date.now();
  let nextOutcome;
  try {
    await next(client);
    nextOutcome = { status: 200 };
  } catch (e) {
    nextOutcome = { status: e.status ?? e.name, message: e.error?.message ?? e.message };
  }
  // The next request's row (served or refused) comes after the failed one's, in the same or a later batch.
  const rows = await pollLog(id, (rs) => rs.some((r) => r.ts >= nextStartedAt));
  const observed = {
    settlement: charged === null ? `no settlement line within ${SETTLE_WAIT_MS} ms` : { charged },
    afterFailure: { reserved: afterFailure.reserved, used: afterFailure.used },
    nextRequest: nextOutcome,
    requestLog: rows.map((r) => ({ status: r.status, credits: r.credits })),
  };
  t.diagnostic(`${name}: ${JSON.stringify(observed)}`);
  assert.deepEqual(observed, {
    settlement: { charged: 0 },
    afterFailure: { reserved: 0, used: 0 },
    nextRequest: { status: 200 },
    requestLog: [
      { status: error.status, credits: 0 },
      { status: 200, credits: cost },
    ],
  });
}

const chatOnce = (client, model, content) =>
  client.chat.completions.create({ model, messages: [{ role: 'user', content }] }).then((res) => {
    assert.equal(res.choices[0].message.content, `echo: ${content}`);
  });

const embedTwo = (client, model) =>
  client.embeddings.create({ model, input: ['first input', 'second input'], encoding_format: 'float' }).then((res) => {
    assert.equal(res.data.length, 2);
  });

/** What the client must get for an upstream 200 it cannot use: a 502 in OpenAI's shape. */
const UNREADABLE = { status: 502, type: 'api_error', message: /upstream/i };

// ---------------------------------------------------------------- tests

// A control: a request the upstream refuses is settled today, and passes the
// very checks the three cases below fail, so those failures are the defect,
// not the test.
test('control: an upstream 400 refusal is settled (slot, reservation, log row)', { timeout: 180_000 }, async (t) => {
  const model = 'gemini-2.5-flash-settle-control';
  const refusal = { error: { code: 400, message: 'Request contains an invalid argument.', status: 'INVALID_ARGUMENT' } };
  await expectSettled(t, {
    name: 'settle-control-400',
    model,
    cost: FLASH_COST,
    script: { action: 'generateContent', fault: { status: 400, body: refusal } },
    bad: (client) => chatOnce(client, model, 'refused'),
    next: (client) => chatOnce(client, model, 'after the refusal'),
    error: { status: 400, type: 'invalid_request_error', message: /invalid argument/ },
  });
});

test('chat: an upstream 200 whose body is not JSON is settled (slot, reservation, log row)', { timeout: 180_000 }, async (t) => {
  const model = 'gemini-2.5-flash-settle-chat';
  await expectSettled(t, {
    name: 'settle-chat-unparsable',
    model,
    cost: FLASH_COST,
    script: { action: 'generateContent', fault: { status: 200, body: '{"candidates": [ this is not JSON', contentType: 'application/json; charset=UTF-8' } },
    bad: (client) => chatOnce(client, model, 'unreadable answer'),
    next: (client) => chatOnce(client, model, 'after the unreadable answer'),
    error: UNREADABLE,
  });
});

test('embeddings: an upstream 200 whose body is not JSON is settled', { timeout: 180_000 }, async (t) => {
  const model = 'gemini-embedding-001-settle-unparsable';
  await expectSettled(t, {
    name: 'settle-embed-unparsable',
    model,
    cost: OTHER_COST,
    script: { action: 'batchEmbedContents', fault: { status: 200, body: '{"embeddings": [ not JSON', contentType: 'application/json; charset=UTF-8' } },
    bad: (client) => embedTwo(client, model),
    next: (client) => embedTwo(client, model),
    error: UNREADABLE,
  });
});

test('embeddings: an upstream 200 with fewer embeddings than inputs is settled', { timeout: 180_000 }, async (t) => {
  const model = 'gemini-embedding-001-settle-short';
  await expectSettled(t, {
    name: 'settle-embed-short',
    model,
    cost: OTHER_COST,
    script: { action: 'batchEmbedContents', fault: { status: 200, body: { embeddings: [{ values: [0.6, 0.8] }] } } },
    bad: (client) => embedTwo(client, model),
    next: (client) => embedTwo(client, model),
    error: { status: 502, type: 'api_error', message: /embeddings/i },
  });
});

// ---------------------------------------------------------------- a client that leaves mid-stream

/** Upstream events of a slow stream: the mock would take LEAVE_EVENTS x LEAVE_GAP_MS (10 s) to end it. */
const LEAVE_EVENTS = 40;
const LEAVE_GAP_MS = 250;

/** `LEAVE_EVENTS` one-word stream events in Gemini's shape, the last one finished. */
function slowChunks(model) {
  return Array.from({ length: LEAVE_EVENTS }, (_, i) => ({
    candidates: [{
      content: { role: 'model', parts: [{ text: `word${i} ` }] },
      ...(i === LEAVE_EVENTS - 1 ? { finishReason: 'STOP' } : {}),
      index: 0,
    }],
    usageMetadata: { promptTokenCount: 5, candidatesTokenCount: i + 1, totalTokenCount: 6 + i },
    modelVersion: model,
    responseId: 'settle-leave',
  }));
}

/** Reads `reader` until the text so far matches `pattern` (bounded reads); returns the text. */
async function readUntil(reader, pattern, maxReads = 200) {
  const decoder = new TextDecoder();
  let text = '';
  for (let i = 0; i < maxReads; i += 1) {
    const { value, done } = await reader.read();
    if (done) return assert.fail(`the stream ended before ${pattern}: ${text.slice(0, 400)}`);
    text += decoder.decode(value, { stream: true });
    if (pattern.test(text)) return text;
  }
  return assert.fail(`no ${pattern} within ${maxReads} reads: ${text.slice(0, 400)}`);
}

const openaiStream = (model) => ({
  path: '/v1/chat/completions',
  headers: (key) => ({ authorization: `Bearer ${key}` }),
  body: { model, stream: true, messages: [{ role: 'user', content: 'leave early' }] },
});

/**
 * A user key (room for one request at a time) starts a stream, reads until
 * `started` shows in the body, and disconnects. Then: the request settled
 * once, its reservation and slot are free (the next request is admitted),
 * and, when `upstreamAbandoned`, the upstream stream was dropped: the mock
 * saw its connection closed before the last event. (The local runtime may
 * close it along with the client too; that the writer itself stops at a
 * failed write is unit-tested in `domain::pipe`.)
 */
async function leaveMidStream(t, { name, model, request, started, script, upstreamAbandoned }) {
  const { id, key } = await createUser(name);
  await stack.mockApi.script({ model, times: 1, ...script });
  const controller = new AbortController();
  const res = await fetch(`${stack.url}${request.path}`, {
    method: 'POST',
    headers: { ...request.headers(key), 'content-type': 'application/json' },
    body: JSON.stringify(request.body),
    signal: controller.signal,
  });
  assert.equal(res.status, 200, `${name}: ${res.status}`);
  const reader = res.body.getReader();
  await readUntil(reader, started);
  controller.abort();
  await reader.cancel().catch(() => {}); // already errored by the abort

  const charged = await settlementNo(id, 1);
  const [call] = stack.mock.state.findCalls({ model });
  await mockCondition(stack.mock.state, () => call.finishedAt, `${name}: the upstream call ending`);
  const afterLeaving = await usageOf(key);
  const nextStartedAt = Date.now();
  let next;
  try {
    await chatOnce(openaiFor(key), model, 'after leaving');
    next = { status: 200 };
  } catch (e) {
    next = { status: e.status ?? e.name, message: e.error?.message ?? e.message };
  }
  await settlementNo(id, 2);
  const rows = await pollLog(id, (rs) => rs.some((r) => r.ts >= nextStartedAt));
  const observed = {
    settlement: charged === null ? `no settlement line within ${SETTLE_WAIT_MS} ms` : 'settled',
    afterLeaving: { reserved: afterLeaving.reserved, used: afterLeaving.used === charged },
    nextRequest: next,
    // One line and one row per request: the stream settled exactly once.
    settlements: settlements(stack, id).length,
    requestLog: rows.map((r) => r.status),
    upstream: upstreamAbandoned
      ? { abandoned: typeof call.abandonedAt === 'number', eventsSent: call.eventTimes?.length < LEAVE_EVENTS }
      : 'not checked',
  };
  t.diagnostic(`${name}: ${JSON.stringify(observed)}; mock sent ${call.eventTimes?.length ?? 0} events, charged ${charged}`);
  assert.deepEqual(observed, {
    settlement: 'settled',
    afterLeaving: { reserved: 0, used: true },
    nextRequest: { status: 200 },
    settlements: 2,
    requestLog: [200, 200],
    upstream: upstreamAbandoned ? { abandoned: true, eventsSent: true } : 'not checked',
  });
}

test('a client that leaves mid-stream: the upstream read stops, and the request settles once (OpenAI, anti-truncation, Gemini, fake stream)', { timeout: 300_000 }, async (t) => {
  const slow = (model) => ({ chunks: slowChunks(model), eventDelayMs: LEAVE_GAP_MS });
  const content = /"content":"word0/;

  const openaiModel = 'gemini-2.5-flash-settle-leave-openai';
  await leaveMidStream(t, {
    name: 'settle-leave-openai',
    model: openaiModel,
    request: openaiStream(openaiModel),
    started: content,
    script: slow(openaiModel),
    upstreamAbandoned: true,
  });

  const continuedModel = 'gemini-2.5-flash-settle-leave-at';
  await leaveMidStream(t, {
    name: 'settle-leave-anti-truncation',
    model: continuedModel,
    request: openaiStream(`anti-trunc/${continuedModel}`),
    started: content,
    script: slow(continuedModel),
    upstreamAbandoned: true,
  });

  const nativeModel = 'gemini-2.5-flash-settle-leave-native';
  await leaveMidStream(t, {
    name: 'settle-leave-native',
    model: nativeModel,
    request: {
      path: `/v1beta/models/${nativeModel}:streamGenerateContent?alt=sse`,
      headers: (key) => ({ 'x-goog-api-key': key }),
      body: { contents: [{ role: 'user', parts: [{ text: 'leave early' }] }] },
    },
    started: /"text": ?"word0/,
    script: slow(nativeModel),
    upstreamAbandoned: true,
  });

  // A fake stream's one upstream call runs on its own (it may finish after the client
  // left); its ticket settles once either way.
  const fakeModel = 'gemini-2.5-flash-settle-leave-fake';
  await leaveMidStream(t, {
    name: 'settle-leave-fake-stream',
    model: fakeModel,
    request: openaiStream(`fake-stream/${fakeModel}`),
    started: /"role":"assistant"/,
    script: { action: 'generateContent', latencyMs: 2_000 },
    upstreamAbandoned: false,
  });
});
