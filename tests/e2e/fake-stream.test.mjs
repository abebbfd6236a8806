// Fake streaming (issue 12, section 1), end to end: a stream request answered
// from one non-stream `generateContent`, with heartbeat comments while Google
// works, then the whole answer as ordinary chunks. Driven through the openai
// SDK and @google/genai, and raw fetch where the bytes matter. The mock holds
// the non-stream answer on a gate (`holdBeforeLast`) until a test releases it,
// and its call record says which method each upstream call used. Nothing
// sleeps: waits are on the mock's events and the worker's log, all bounded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack } from '../lib/harness.mjs';
import { genaiClient, openaiClient } from '../lib/clients.mjs';
import { REQUEST_TIMEOUT_MS, json, waitForSettlements } from '../lib/util.mjs';

const HEARTBEAT = ': heartbeat';
/** The default per-request cost of a flash model (the settings contract). */
const FLASH_COST = 2;

let stack;
let client;

before(async () => {
  stack = await startStack({ keys: ['ok-fs-1', 'ok-fs-2'] });
  client = openaiClient(stack, { timeout: REQUEST_TIMEOUT_MS });
  await stack.admin('PATCH', '/settings', {
    fake_stream_interval_ms: 100,
    fake_stream_models: ['gemini-2.5-flash-fs6g*', 'gemini-2.5-flash-fs5*'],
  });
});
after(async () => stack?.stop());

// ---------------------------------------------------------------- helpers

const PARTS = [
  { text: 'Weighing the two lookups.', thought: true },
  { text: 'Both at once.' },
  { functionCall: { name: 'get_weather', args: { city: 'Paris' } } },
  { functionCall: { name: 'get_time', args: { tz: 'CET' } } },
];

const TOOLS = ['get_weather', 'get_time'].map((name) => ({
  type: 'function',
  function: { name, parameters: { type: 'object', properties: {}, additionalProperties: true } },
}));

const messages = (content) => [{ role: 'user', content }];

/** The mock's calls for `model` (the bare upstream name). */
const callsOf = (model) => stack.mockApi.calls({ model });

/** The actions of the mock's calls for `model`, in order. */
const actionsOf = async (model) => (await callsOf(model)).map((c) => c.action);

/** A raw streaming chat request (bounded). */
const rawStream = (model, { headers = {}, content = 'hi' } = {}) =>
  stack.call('POST', '/v1/chat/completions', {
    body: { model, stream: true, messages: messages(content) },
    headers,
    timeoutMs: REQUEST_TIMEOUT_MS,
  });

/** SSE blocks of a text: comments and `data:` events, in order. */
function blocks(text) {
  return text
    .split('\n\n')
    .filter((b) => b.length > 0)
    .map((b) => {
      if (b.startsWith(':')) return { comment: b };
      assert.match(b, /^data: /, `an SSE event: ${b}`);
      const data = b.slice('data: '.length);
      return { data: data === '[DONE]' ? data : JSON.parse(data) };
    });
}

/** Reads `reader` until `predicate(text)` holds or the body ends; at most `max` reads. */
async function readUntil(reader, text, predicate, max = 500) {
  const decoder = new TextDecoder();
  let out = text;
  for (let i = 0; i < max && !predicate(out); i += 1) {
    const { value, done } = await reader.read();
    if (done) return { text: out, done: true };
    out += decoder.decode(value, { stream: true });
  }
  assert.ok(predicate(out), `the stream never reached the expected point; got:\n${out.slice(0, 2000)}`);
  return { text: out, done: false };
}

/** Reads `reader` to its end (at most `max` reads). */
async function readToEnd(reader, text, max = 500) {
  const decoder = new TextDecoder();
  let out = text;
  for (let i = 0; i < max; i += 1) {
    const { value, done } = await reader.read();
    if (done) return { text: out };
    out += decoder.decode(value, { stream: true });
  }
  return assert.fail(`the body did not end within ${max} reads`);
}

/**
 * Resolves once the mock holds a call at `gate` (its `held` event); fails after
 * `timeoutMs`. Create it before the request.
 */
function heldAt(gate, timeoutMs = 15_000) {
  const { state } = stack.mock;
  const promise = new Promise((ok, fail) => {
    const onHeld = (e) => {
      if (e.gate !== gate) return;
      done();
      ok(e.call);
    };
    const timer = setTimeout(() => {
      done();
      fail(new Error(`the mock never held a call at ${gate} within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      state.off('held', onHeld);
    };
    state.on('held', onHeld);
  });
  promise.catch(() => {}); // awaiting it still throws
  return promise;
}

const count = (text, needle) => text.split(needle).length - 1;

/** Collects an openai SDK stream: every chunk, the text, reasoning, tool calls by index, finishes, usage. */
async function collect(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  const choices = chunks.flatMap((c) => c.choices);
  const calls = [];
  for (const tc of choices.flatMap((c) => c.delta?.tool_calls ?? [])) {
    calls[tc.index] ??= { id: undefined, name: '', arguments: '' };
    if (tc.id) calls[tc.index].id = tc.id;
    if (tc.function?.name) calls[tc.index].name += tc.function.name;
    if (tc.function?.arguments) calls[tc.index].arguments += tc.function.arguments;
  }
  return {
    chunks,
    text: choices.map((c) => c.delta?.content ?? '').join(''),
    reasoning: choices.map((c) => c.delta?.reasoning_content ?? '').join(''),
    calls,
    finishes: choices.filter((c) => c.finish_reason).map((c) => c.finish_reason),
    usage: chunks.filter((c) => c.usage).map((c) => c.usage),
  };
}

// ---------------------------------------------------------------- acceptance 1

test('heartbeats arrive while Google holds the answer; nothing but the role chunk comes before it', { timeout: 60_000 }, async () => {
  const model = 'gemini-2.5-flash-fs1';
  const gate = `gate-${model}`;
  await stack.mockApi.script({ model, holdBeforeLast: gate });
  const held = heldAt(gate);
  // The response starts while the mock holds the answer: HTTP 200 with SSE headers at once.
  const res = await rawStream(`fake-stream/${model}`, { content: 'hold on' });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  await held;
  const reader = res.body.getReader();
  const early = await readUntil(reader, '', (t) => count(t, HEARTBEAT) >= 2);
  const heldCall = stack.mock.state.calls.find((c) => c.model === model);
  assert.equal(heldCall.gateOutcome, undefined, 'the answer was still held when the heartbeats arrived');
  const beforeRelease = blocks(early.text.slice(0, early.text.lastIndexOf('\n\n') + 2));
  const data = beforeRelease.filter((b) => b.data);
  assert.equal(data.length, 1, `only the role chunk before the answer: ${early.text}`);
  assert.deepEqual(data[0].data.choices[0].delta, { role: 'assistant', content: '' });
  assert.ok(beforeRelease.filter((b) => b.comment === HEARTBEAT).length >= 2);

  await stack.mockApi.release(gate);
  const rest = await readUntil(reader, early.text, (t) => t.includes('data: [DONE]'));
  const all = blocks(rest.text);
  const events = all.filter((b) => b.data && b.data !== '[DONE]').map((b) => b.data);
  assert.equal(events.at(0).choices[0].delta.role, 'assistant');
  assert.equal(events.filter((e) => e.choices[0]?.delta?.role).length, 1, 'the role chunk is sent once');
  assert.equal(events.map((e) => e.choices[0]?.delta?.content ?? '').join(''), 'echo: hold on');
  assert.equal(new Set(events.map((e) => e.id)).size, 1, 'one id');
  assert.ok(events.every((e) => e.model === `fake-stream/${model}`), 'the model as the client sent it');
  assert.equal(events.filter((e) => e.choices[0]?.finish_reason).length, 1);
  assert.equal(all.at(-1).data, '[DONE]');
  // After the first data chunk that is not the role chunk, no heartbeat.
  const firstAnswer = all.findIndex((b) => b.data && b.data !== '[DONE]' && !b.data.choices[0]?.delta?.role);
  assert.ok(all.slice(firstAnswer).every((b) => !b.comment), 'no heartbeat inside the answer');
  assert.deepEqual(await actionsOf(model), ['generateContent']);
});

// ---------------------------------------------------------------- acceptance 2

test('the SDK stream carries text, reasoning, two parallel tool calls with ids, one finish and usage', { timeout: 60_000 }, async () => {
  const model = 'gemini-2.5-flash-fs2';
  await stack.mockApi.script({ model, reply: { parts: PARTS } });
  const stream = await client.chat.completions.create({
    model: `fake-stream/${model}`,
    messages: messages('weather and time in Paris'),
    tools: TOOLS,
    stream: true,
    stream_options: { include_usage: true },
  });
  const got = await collect(stream);
  assert.equal(got.text, 'Both at once.');
  assert.equal(got.reasoning, 'Weighing the two lookups.');
  assert.equal(got.calls.length, 2);
  assert.deepEqual(got.calls.map((c) => c.name), ['get_weather', 'get_time']);
  assert.deepEqual(got.calls.map((c) => JSON.parse(c.arguments)), [{ city: 'Paris' }, { tz: 'CET' }]);
  assert.ok(got.calls.every((c) => typeof c.id === 'string' && c.id.length > 0));
  assert.notEqual(got.calls[0].id, got.calls[1].id);
  assert.deepEqual(got.finishes, ['tool_calls']);
  assert.equal(new Set(got.chunks.map((c) => c.id)).size, 1, 'one id throughout');
  assert.equal(got.usage.length, 1);
  const call = (await callsOf(model)).at(-1);
  assert.equal(call.action, 'generateContent');
  assert.equal(got.usage[0].prompt_tokens, call.tokens.prompt);
  assert.equal(got.usage[0].completion_tokens, call.tokens.candidates + call.tokens.thoughts);
});

// ---------------------------------------------------------------- acceptance 3

test('a 429 on the first key fails over unseen: two generateContent calls, the client sees the answer', { timeout: 60_000 }, async () => {
  const model = 'gemini-2.5-flash-fs3';
  await stack.mockApi.script({ model, fault: 'rate_limit_minute', times: 1 });
  const got = await collect(await client.chat.completions.create({
    model: `fake-stream/${model}`,
    messages: messages('fail over'),
    stream: true,
  }));
  assert.equal(got.text, 'echo: fail over');
  assert.deepEqual(got.finishes, ['stop']);
  const calls = await callsOf(model);
  assert.deepEqual(calls.map((c) => c.action), ['generateContent', 'generateContent']);
  assert.deepEqual(calls.map((c) => c.status), [429, 200]);
  assert.notEqual(calls[0].key, calls[1].key, 'the second attempt used the other key');
});

// ---------------------------------------------------------------- acceptance 4

test('no key left: HTTP 200, then an error event and [DONE]', { timeout: 60_000 }, async () => {
  const model = 'gemini-2.5-flash-fs4';
  await stack.mockApi.script({ model, fault: 'server_503' });
  const res = await rawStream(`fake-stream/${model}`);
  assert.equal(res.status, 200);
  const all = blocks(await res.text());
  const data = all.filter((b) => b.data).map((b) => b.data);
  assert.equal(data[0].choices[0].delta.role, 'assistant');
  assert.equal(data.length, 3, `role chunk, error, [DONE]: ${JSON.stringify(data)}`);
  const { error } = data[1];
  assert.equal(typeof error.message, 'string');
  assert.equal(typeof error.type, 'string');
  assert.ok('code' in error && 'param' in error, 'OpenAI error shape');
  assert.equal(data[2], '[DONE]');
  const calls = await callsOf(model);
  assert.ok(calls.length >= 2, 'every key was tried');
  assert.ok(calls.every((c) => c.action === 'generateContent' && c.status === 503));
});

// ---------------------------------------------------------------- acceptance 5

test('the native surface streams from one generateContent: @google/genai over SSE', { timeout: 60_000 }, async () => {
  const model = 'gemini-2.5-flash-fs5s';
  await stack.mockApi.script({ model, reply: { parts: PARTS } });
  const ai = genaiClient(stack);
  const stream = await ai.models.generateContentStream({
    model,
    contents: 'weather and time in Paris',
  });
  const responses = [];
  for await (const r of stream) responses.push(r);
  assert.equal(responses.length, 1, 'one event: the whole answer');
  const parts = responses[0].candidates[0].content.parts;
  assert.deepEqual(parts.map((p) => p.functionCall?.name ?? p.text), ['Weighing the two lookups.', 'Both at once.', 'get_weather', 'get_time']);
  assert.equal(responses[0].candidates[0].finishReason, 'STOP');
  assert.ok(responses[0].usageMetadata.totalTokenCount > 0);
  assert.deepEqual(await actionsOf(model), ['generateContent'], 'no streamGenerateContent upstream');
  const call = (await callsOf(model)).at(-1);
  assert.equal(call.alt ?? null, null, 'the upstream call is plain JSON, not alt=sse');
});

test('the native surface takes the model prefix in its path; an unknown prefix is a 400 naming model', { timeout: 60_000 }, async () => {
  const model = 'gemini-2.5-flash-fs5p';
  const ai = genaiClient(stack);
  const stream = await ai.models.generateContentStream({ model: `fake-stream/${model}`, contents: 'prefixed' });
  const texts = [];
  for await (const r of stream) texts.push(r.candidates[0].content.parts[0].text);
  assert.deepEqual(texts, ['echo: prefixed']);
  assert.deepEqual(await actionsOf(model), ['generateContent'], 'answered from one generateContent');
  const res = await fetch(`${stack.url}/v1beta/models/no-such-mode/${model}:streamGenerateContent?alt=sse`, {
    method: 'POST',
    headers: { 'x-goog-api-key': 'sk-test-client-token', 'content-type': 'application/json' },
    body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'x' }] }] }),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  assert.equal(res.status, 400);
  const body = await res.json();
  assert.equal(body.error?.status, 'INVALID_ARGUMENT', JSON.stringify(body));
  assert.match(body.error?.message ?? '', /model/, JSON.stringify(body));
  assert.deepEqual(await actionsOf(model), ['generateContent'], 'the refused request reached nothing upstream');
});

test('the native JSON-array form: `[`, whitespace heartbeats, the answer, `]` parses as one array', { timeout: 60_000 }, async () => {
  const model = 'gemini-2.5-flash-fs5a';
  const gate = `gate-${model}`;
  await stack.mockApi.script({ model, holdBeforeLast: gate });
  const held = heldAt(gate);
  const res = await fetch(`${stack.url}/v1beta/models/${model}:streamGenerateContent`, {
    method: 'POST',
    // wrangler dev gzips application/json and so holds small writes back (it ignores the
    // response's `no-transform`); the heartbeats are checked on the bytes as written.
    headers: { 'x-goog-api-key': 'sk-test-client-token', 'content-type': 'application/json', 'accept-encoding': 'identity' },
    body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'array' }] }] }),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  await held;
  const reader = res.body.getReader();
  const early = await readUntil(reader, '', (t) => t.startsWith('[') && count(t, '\n') >= 2);
  assert.match(early.text, /^\[\s*$/, 'only `[` and whitespace while held');
  await stack.mockApi.release(gate);
  const { text } = await readToEnd(reader, early.text);
  assert.ok(text.endsWith(']'), text);
  const parsed = JSON.parse(text);
  assert.ok(Array.isArray(parsed) && parsed.length === 1);
  assert.equal(parsed[0].candidates[0].content.parts[0].text, 'echo: array');
  assert.deepEqual(await actionsOf(model), ['generateContent']);
});

// ---------------------------------------------------------------- acceptance 6

test('each way of choosing works: glob, prefix, renamed prefix, header 1 and true; otherwise the stream goes upstream as before', { timeout: 120_000 }, async () => {
  const streamed = async (model, { headers, label, expect } = {}) => {
    const got = await collect(await client.chat.completions.create(
      { model, messages: messages(label ?? model), stream: true },
      headers ? { headers } : undefined,
    ));
    assert.equal(got.text, expect ?? `echo: ${label ?? model}`, model);
    assert.deepEqual(got.finishes, ['stop'], model);
    assert.ok(got.chunks.every((c) => c.model === model), `${model}: chunks name the model as sent`);
  };

  await streamed('gemini-2.5-flash-fs6g');
  assert.deepEqual(await actionsOf('gemini-2.5-flash-fs6g'), ['generateContent'], 'glob');

  await streamed('fake-stream/gemini-2.5-flash-fs6p');
  assert.deepEqual(await actionsOf('gemini-2.5-flash-fs6p'), ['generateContent'], 'prefix');

  // Combined with anti-truncation (prefixes in either order): the whole answer is
  // continued with non-stream calls and stitched before the client sees it.
  const whole = 'The quick brown fox jumps over the lazy dog, then runs into the forest and sleeps.';
  for (const [name, bare] of [['anti-trunc/fake-stream/gemini-2.5-flash-fs6b', 'gemini-2.5-flash-fs6b'],
    ['fake-stream/anti-trunc/gemini-2.5-flash-fs6c', 'gemini-2.5-flash-fs6c']]) {
    await stack.mockApi.script({ model: bare, answer: { text: whole, events: 4, cuts: [2], cutWith: 'MAX_TOKENS' } });
    await streamed(name, { label: bare, expect: whole });
    assert.deepEqual(await actionsOf(bare), ['generateContent', 'generateContent'], `${name}: one continuation, both non-stream`);
  }

  await stack.admin('PATCH', '/settings', { fake_stream_prefix: 'fs-mode/' });
  try {
    await streamed('fs-mode/gemini-2.5-flash-fs6r');
    assert.deepEqual(await actionsOf('gemini-2.5-flash-fs6r'), ['generateContent'], 'renamed prefix');
  } finally {
    await stack.admin('PATCH', '/settings', { fake_stream_prefix: 'fake-stream/' });
  }

  await streamed('gemini-2.5-flash-fs6h1', { headers: { 'x-gemgate-fake-stream': '1' } });
  assert.deepEqual(await actionsOf('gemini-2.5-flash-fs6h1'), ['generateContent'], 'header 1');
  await streamed('gemini-2.5-flash-fs6ht', { headers: { 'x-gemgate-fake-stream': 'TRUE' } });
  assert.deepEqual(await actionsOf('gemini-2.5-flash-fs6ht'), ['generateContent'], 'header true');

  // Not asked: a real upstream stream, as before.
  await streamed('gemini-2.5-flash-fs6n');
  await streamed('gemini-2.5-flash-fs6n0', { headers: { 'x-gemgate-fake-stream': '0' } });
  await streamed('gemini-2.5-flash-fs6nf', { headers: { 'x-gemgate-fake-stream': 'false' } });
  await streamed('gemini-2.5-flash-fs6nx', { headers: { 'x-gemgate-fake-stream': 'yes please' } });
  for (const model of ['gemini-2.5-flash-fs6n', 'gemini-2.5-flash-fs6n0', 'gemini-2.5-flash-fs6nf', 'gemini-2.5-flash-fs6nx']) {
    const calls = await callsOf(model);
    assert.deepEqual(calls.map((c) => [c.action, c.alt]), [['streamGenerateContent', 'sse']], model);
  }

  // A non-stream request in fake-stream mode is unaffected: one JSON answer.
  const plain = await client.chat.completions.create({ model: 'fake-stream/gemini-2.5-flash-fs6j', messages: messages('plain') });
  assert.equal(plain.object, 'chat.completion');
  assert.equal(plain.choices[0].message.content, 'echo: plain');
  assert.equal(plain.model, 'fake-stream/gemini-2.5-flash-fs6j');
  assert.deepEqual(await actionsOf('gemini-2.5-flash-fs6j'), ['generateContent']);
});

// ---------------------------------------------------------------- acceptance 7

test('a user key: a fake stream settles its ledger; a quota refusal is a plain 429, not a stream', { timeout: 120_000 }, async () => {
  const model = 'gemini-2.5-flash-fs7';
  const created = await stack.admin('POST', '/users', { name: 'fs-quota', rpm: 1, credit_quota: 1000 });
  const { key } = created;
  const { id } = created.user;
  const userClient = openaiClient(stack, { apiKey: key, timeout: REQUEST_TIMEOUT_MS });

  const got = await collect(await userClient.chat.completions.create({
    model: `fake-stream/${model}`,
    messages: messages('metered'),
    stream: true,
    stream_options: { include_usage: true },
  }));
  assert.equal(got.text, 'echo: metered');
  await waitForSettlements(stack, id, 1, { where: (s) => s.charged > 0 });
  const usageRes = await stack.call('GET', '/v1/usage', { token: key });
  const usage = await json(usageRes, '/v1/usage');
  assert.equal(usageRes.status, 200, JSON.stringify(usage));
  assert.equal(usage.used, FLASH_COST, 'the fake stream was charged');

  const refused = await stack.call('POST', '/v1/chat/completions', {
    token: key,
    body: { model: `fake-stream/${model}`, stream: true, messages: messages('again') },
    timeoutMs: REQUEST_TIMEOUT_MS,
  });
  const body = await json(refused, 'the refusal');
  assert.equal(refused.status, 429, JSON.stringify(body));
  assert.match(refused.headers.get('content-type') ?? '', /application\/json/);
  assert.equal(body.error.type, 'rate_limit_error');
  assert.equal(typeof body.error.message, 'string');
  assert.ok(Number(refused.headers.get('retry-after')) > 0, 'Retry-After');
  assert.equal((await callsOf(model)).length, 1, 'the refusal never reached Google');
});
