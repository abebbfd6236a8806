// Contract: OpenAI-surface responses validate against the official OpenAI
// OpenAPI 3.1 document (the subset vendored in tests/fixtures/openai-openapi),
// with Ajv (tests/lib/openapi.mjs): non-stream chat, every stream chunk,
// models, embeddings and errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack } from '../lib/harness.mjs';
import { assertMatchesSchema, validateAgainst } from '../lib/openapi.mjs';
import { REQUEST_TIMEOUT_MS, decodeFloat32, json } from '../lib/util.mjs';

const KEY = 'ok-contract-1';

let stack;

before(async () => {
  stack = await startStack({ keys: [KEY] });
});
after(async () => stack?.stop());

/** `stack.call`, bounded in time. */
const call = (method, path, options = {}) => stack.call(method, path, { ...options, timeoutMs: REQUEST_TIMEOUT_MS });

/**
 * Reads a whole SSE response (it must end: the worker closes it after
 * `[DONE]`) and returns the `data:` payloads in order, `[DONE]` included.
 */
async function sseEvents(res) {
  const text = await withTimeout(res.text(), REQUEST_TIMEOUT_MS, 'SSE stream did not end');
  const events = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    const data = block
      .split(/\r?\n/)
      .filter((line) => line.startsWith('data:'))
      .map((line) => line.slice(5).replace(/^ /, ''))
      .join('\n');
    if (data) events.push(data);
  }
  return events;
}

function withTimeout(promise, ms, message) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, fail) => {
      timer = setTimeout(() => fail(new Error(`${message} within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Streams a chat and returns the parsed chunks (without `[DONE]`), checking the framing. */
async function streamChat(body) {
  const res = await call('POST', '/v1/chat/completions', { body: { ...body, stream: true } });
  assert.equal(res.status, 200, `stream status ${res.status}: ${res.status === 200 ? '' : await res.text()}`);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const events = await sseEvents(res);
  assert.equal(events.at(-1), '[DONE]', `the stream must end with data: [DONE]; got ${events.at(-1)}`);
  assert.equal(events.filter((e) => e === '[DONE]').length, 1, '[DONE] must appear exactly once');
  return events.slice(0, -1).map((e) => JSON.parse(e));
}

const WEATHER_TOOL = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Weather for a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};

// ---------------------------------------------------------------- the validator itself

test('the validator is real: broken objects fail and a well-formed one passes', () => {
  const good = {
    id: 'chatcmpl-selfcheck',
    object: 'chat.completion',
    created: 1_700_000_000,
    model: 'gemini-2.5-flash',
    choices: [{
      index: 0,
      finish_reason: 'stop',
      logprobs: null,
      message: { role: 'assistant', content: 'hi', refusal: null },
    }],
    usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
  };
  assertMatchesSchema('CreateChatCompletionResponse', good, 'self-check');

  const { choices: _dropped, ...noChoices } = good;
  const broken = validateAgainst('CreateChatCompletionResponse', noChoices);
  assert.equal(broken.valid, false, 'a chat completion without choices must fail');
  assert.ok(broken.errors.some((e) => e.keyword === 'required' && e.params.missingProperty === 'choices'), broken.text);
  assert.throws(
    () => assertMatchesSchema('CreateChatCompletionResponse', noChoices, 'no choices'),
    /must have required property 'choices'/,
    'the failure message must carry ajv\'s errors',
  );

  const badFinish = structuredClone(good);
  badFinish.choices[0].finish_reason = 'finished';
  assert.equal(validateAgainst('CreateChatCompletionResponse', badFinish).valid, false, 'unknown finish_reason must fail');

  const badChunk = { id: 'x', object: 'chat.completion', created: 1, model: 'm', choices: [] };
  assert.equal(validateAgainst('CreateChatCompletionStreamResponse', badChunk).valid, false, 'chunk with the wrong object must fail');

  const badError = { error: { message: 'x', type: 'invalid_request_error' } };
  const e = validateAgainst('ErrorResponse', badError);
  assert.equal(e.valid, false, 'an error without param and code must fail');
  assert.match(e.text, /param/);

  const badEmbedding = { object: 'list', model: 'm', data: [{ object: 'embedding', index: 0, embedding: ['x'] }], usage: { prompt_tokens: 1, total_tokens: 1 } };
  assert.equal(validateAgainst('CreateEmbeddingResponse', badEmbedding).valid, false, 'non-numeric embedding must fail');

  assert.equal(validateAgainst('ListModelsResponse', { object: 'list', data: [{ id: 'm', object: 'model' }] }).valid, false,
    'a model without created/owned_by must fail');
});

// ---------------------------------------------------------------- chat

test('non-streaming chat completion validates as CreateChatCompletionResponse', async () => {
  const res = await call('POST', '/v1/chat/completions', {
    body: {
      model: 'gemini-2.5-flash',
      messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'contract plain' }],
      max_tokens: 100,
    },
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  const body = await json(res, 'chat');
  assertMatchesSchema('CreateChatCompletionResponse', body, 'non-stream chat');
  assert.equal(body.object, 'chat.completion');
  assert.equal(body.choices[0].message.content, 'echo: contract plain');
  assert.equal(body.choices[0].finish_reason, 'stop');
});

test('non-streaming chat with n=2 and a length finish validates', async () => {
  const res = await call('POST', '/v1/chat/completions', {
    body: { model: 'gemini-2.5-flash-contract-n2', n: 2, max_tokens: 2, messages: [{ role: 'user', content: 'a long enough question to be truncated' }] },
  });
  assert.equal(res.status, 200);
  const body = await json(res, 'chat n=2');
  assertMatchesSchema('CreateChatCompletionResponse', body, 'chat n=2');
  assert.deepEqual(body.choices.map((c) => c.index), [0, 1]);
  assert.deepEqual(body.choices.map((c) => c.finish_reason), ['length', 'length']);
});

test('non-streaming chat with a tool call validates', async () => {
  const model = 'gemini-2.5-flash-contract-tools';
  await stack.mockApi.script({
    model,
    action: 'generateContent',
    reply: { parts: [{ functionCall: { name: 'get_weather', args: { city: 'Paris' } } }], finishReason: 'STOP' },
  });
  const res = await call('POST', '/v1/chat/completions', {
    body: { model, tools: [WEATHER_TOOL], messages: [{ role: 'user', content: 'weather in Paris?' }] },
  });
  assert.equal(res.status, 200);
  const body = await json(res, 'chat tools');
  assertMatchesSchema('CreateChatCompletionResponse', body, 'chat with tool call');
  const [choice] = body.choices;
  assert.equal(choice.finish_reason, 'tool_calls');
  assert.equal(choice.message.tool_calls.length, 1);
  assert.equal(choice.message.tool_calls[0].function.name, 'get_weather');
  assert.deepEqual(JSON.parse(choice.message.tool_calls[0].function.arguments), { city: 'Paris' });
});

test('every chunk of a stream validates: role chunk, content, finish chunk and include_usage chunk', async () => {
  const chunks = await streamChat({
    model: 'gemini-2.5-flash',
    messages: [{ role: 'user', content: 'a streamed contract answer that is long enough to come in several pieces' }],
    stream_options: { include_usage: true },
  });
  assert.ok(chunks.length >= 4, `expected role, content, finish and usage chunks; got ${chunks.length}`);
  chunks.forEach((chunk, i) => assertMatchesSchema('CreateChatCompletionStreamResponse', chunk, `stream chunk ${i}`));

  assert.equal(chunks[0].choices[0].delta.role, 'assistant', 'the first chunk carries the role');
  const choiceChunks = chunks.filter((c) => c.choices.length > 0);
  const finishes = choiceChunks.filter((c) => c.choices.some((ch) => ch.finish_reason !== null && ch.finish_reason !== undefined));
  assert.equal(finishes.length, 1, 'finish_reason appears once');
  assert.equal(finishes[0], choiceChunks.at(-1), 'finish_reason is on the last choice chunk');
  assert.equal(finishes[0].choices[0].finish_reason, 'stop');
  const usage = chunks.at(-1);
  assert.deepEqual(usage.choices, [], 'the include_usage chunk has choices: []');
  assert.ok(usage.usage && usage.usage.total_tokens > 0, 'the include_usage chunk carries usage');
  for (const c of chunks) {
    assert.equal(c.object, 'chat.completion.chunk');
    assert.deepEqual([c.id, c.created, c.model], [chunks[0].id, chunks[0].created, chunks[0].model], 'same id/created/model in every chunk');
  }
  const text = choiceChunks.map((c) => c.choices[0].delta.content ?? '').join('');
  assert.equal(text, 'echo: a streamed contract answer that is long enough to come in several pieces');
});

test('every chunk of an n=2 stream validates, with one finish per choice', async () => {
  const chunks = await streamChat({
    model: 'gemini-2.5-flash-contract-stream-n2',
    n: 2,
    messages: [{ role: 'user', content: 'two streamed candidates, long enough to come in pieces' }],
    stream_options: { include_usage: true },
  });
  chunks.forEach((chunk, i) => assertMatchesSchema('CreateChatCompletionStreamResponse', chunk, `n=2 chunk ${i}`));
  for (const index of [0, 1]) {
    const mine = chunks.flatMap((c) => c.choices.filter((ch) => ch.index === index));
    assert.equal(mine[0].delta.role, 'assistant', `choice ${index}: first delta carries the role`);
    const finishes = mine.filter((ch) => ch.finish_reason !== null && ch.finish_reason !== undefined);
    assert.equal(finishes.length, 1, `choice ${index}: one finish_reason`);
    assert.equal(finishes[0], mine.at(-1), `choice ${index}: finish_reason comes last`);
  }
  assert.deepEqual(chunks.at(-1).choices, []);
});

test('every chunk of a streamed tool call validates', async () => {
  const model = 'gemini-2.5-flash-contract-stream-tools';
  await stack.mockApi.script({
    model,
    action: 'streamGenerateContent',
    reply: {
      parts: [
        { functionCall: { name: 'get_weather', args: { city: 'Paris' } } },
        { functionCall: { name: 'get_weather', args: { city: 'Rome' } } },
      ],
      finishReason: 'STOP',
    },
  });
  const chunks = await streamChat({ model, tools: [WEATHER_TOOL], messages: [{ role: 'user', content: 'two cities' }] });
  chunks.forEach((chunk, i) => assertMatchesSchema('CreateChatCompletionStreamResponse', chunk, `tool stream chunk ${i}`));
  const deltas = chunks.flatMap((c) => c.choices.flatMap((ch) => ch.delta.tool_calls ?? []));
  assert.deepEqual([...new Set(deltas.map((d) => d.index))].sort(), [0, 1], 'two calls with distinct indexes');
  assert.equal(chunks.filter((c) => c.choices.length).at(-1).choices[0].finish_reason, 'tool_calls');
});

test('an upstream failure after the first byte becomes a data: {error} event that validates as ErrorResponse', async () => {
  const model = 'gemini-2.5-flash-contract-cut';
  await stack.mockApi.script({ model, action: 'streamGenerateContent', cutAfterEvents: 2 });
  const chunks = await streamChat({
    model,
    messages: [{ role: 'user', content: 'this answer will be cut in the middle of its third event by the mock' }],
  });
  const errors = chunks.filter((c) => 'error' in c);
  assert.equal(errors.length, 1, `expected one error event before [DONE]; got ${JSON.stringify(chunks).slice(0, 800)}`);
  assert.equal(chunks.at(-1), errors[0], 'the error event is the last one before [DONE]');
  assertMatchesSchema('ErrorResponse', errors[0], 'mid-stream error event');
  chunks.slice(0, -1).forEach((chunk, i) => assertMatchesSchema('CreateChatCompletionStreamResponse', chunk, `chunk ${i} before the cut`));
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
});

// ---------------------------------------------------------------- models

test('GET /v1/models validates as ListModelsResponse, every entry as Model', async () => {
  const res = await call('GET', '/v1/models');
  assert.equal(res.status, 200);
  const body = await json(res, 'models');
  assertMatchesSchema('ListModelsResponse', body, 'model list');
  assert.ok(body.data.length > 0, 'the list is empty');
  body.data.forEach((m, i) => assertMatchesSchema('Model', m, `model ${i} (${m.id})`));
});

test('GET /v1/models/{id} validates as Model', async () => {
  const res = await call('GET', '/v1/models/gemini-2.5-pro');
  assert.equal(res.status, 200);
  const body = await json(res, 'model');
  assertMatchesSchema('Model', body, 'one model');
  assert.equal(body.id, 'gemini-2.5-pro');
});

// ---------------------------------------------------------------- embeddings

test('float embeddings validate as CreateEmbeddingResponse', async () => {
  const res = await call('POST', '/v1/embeddings', {
    body: { model: 'gemini-embedding-001', input: ['contract one', 'contract two'], encoding_format: 'float' },
  });
  assert.equal(res.status, 200);
  const body = await json(res, 'embeddings');
  assertMatchesSchema('CreateEmbeddingResponse', body, 'float embeddings');
  assert.equal(body.data.length, 2);
  assert.ok(body.data.every((d) => Array.isArray(d.embedding) && d.embedding.length === 3072));
});

test('base64 embeddings validate as CreateEmbeddingResponse (the only deviation is the documented base64 string)', async () => {
  const res = await call('POST', '/v1/embeddings', {
    body: { model: 'gemini-embedding-001', input: 'contract base64', encoding_format: 'base64', dimensions: 16 },
  });
  assert.equal(res.status, 200);
  const body = await json(res, 'embeddings base64');
  assert.equal(typeof body.data[0].embedding, 'string', 'encoding_format base64 gives a base64 string');
  // The official schema types `embedding` as number[] only, although the API
  // returns a string for base64. Every other part of the body must validate:
  const raw = validateAgainst('CreateEmbeddingResponse', body);
  const offPaths = raw.errors.filter((e) => !/^\/data\/\d+\/embedding$/.test(e.instancePath));
  assert.deepEqual(offPaths, [], `errors outside data[i].embedding:\n${raw.text}`);
  // ... and the body as the OpenAI SDK hands it over (base64 decoded to floats) validates whole.
  const decoded = {
    ...body,
    data: body.data.map((d) => ({ ...d, embedding: decodeFloat32(d.embedding) })),
  };
  assertMatchesSchema('CreateEmbeddingResponse', decoded, 'base64 embeddings, decoded');
  assert.equal(decoded.data[0].embedding.length, 16);
});

// ---------------------------------------------------------------- errors

async function expectError(res, status, label) {
  assert.equal(res.status, status, `${label}: status`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/, `${label}: content-type`);
  const body = await json(res, label);
  assertMatchesSchema('ErrorResponse', body, label);
  return body;
}

test('401 errors validate as ErrorResponse', async () => {
  const missing = await expectError(
    await call('POST', '/v1/chat/completions', { token: null, body: { model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'x' }] } }),
    401,
    'missing token',
  );
  assert.equal(missing.error.type, 'authentication_error');
  const wrong = await expectError(await call('GET', '/v1/models', { token: 'sk-not-a-real-token' }), 401, 'wrong token');
  assert.equal(wrong.error.code, 'invalid_api_key');
});

test('404 errors validate as ErrorResponse', async () => {
  const model = await expectError(
    await call('POST', '/v1/chat/completions', { body: { model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] } }),
    404,
    'unknown model (chat)',
  );
  assert.equal(model.error.code, 'model_not_found');
  const getModel = await expectError(await call('GET', '/v1/models/no-such-model'), 404, 'unknown model (GET)');
  assert.equal(getModel.error.code, 'model_not_found');
  await expectError(await call('GET', '/v1/no-such-route'), 404, 'unknown route');
});

test('400 errors validate as ErrorResponse', async () => {
  const bad = await expectError(
    await call('POST', '/v1/chat/completions', { body: '{"model": "gemini-2.5-flash", "messages": [', raw: true, headers: { 'content-type': 'application/json' } }),
    400,
    'malformed JSON',
  );
  assert.equal(bad.error.type, 'invalid_request_error');
  await expectError(await call('POST', '/v1/chat/completions', { body: { model: 'gemini-2.5-flash' } }), 400, 'missing messages');
  await expectError(await call('POST', '/v1/embeddings', { body: { model: 'gemini-embedding-001', input: [] } }), 400, 'empty embeddings input');
  await expectError(await call('GET', '/v1/chat/completions'), 405, 'wrong method');
});

test('429 errors validate as ErrorResponse and carry Retry-After', async () => {
  const model = 'gemini-2.5-flash-contract-429';
  await stack.mockApi.script({ model, fault: 'rate_limit_minute', retryDelay: '5s' });
  const res = await call('POST', '/v1/chat/completions', { body: { model, messages: [{ role: 'user', content: 'x' }] } });
  const body = await expectError(res, 429, 'all keys rate limited');
  assert.equal(body.error.type, 'rate_limit_error');
  assert.ok(Number(res.headers.get('retry-after')) >= 1, `Retry-After: ${res.headers.get('retry-after')}`);
  await stack.mockApi.clearScripts();
});
