// Tests of the Google mock itself: `node --test tests/mock/`.
// Every wait is bounded by the per-test timeout; nothing sleeps to synchronise.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startMock } from './google.mjs';
import { mockClient } from './client.mjs';

const T = { timeout: 10_000 };
const KEY = 'test-key-0001';

let mock;
let client;
before(async () => {
  mock = await startMock();
  client = mockClient(mock.url);
});
after(() => mock.close());

// ---------------------------------------------------------------- helpers

let freshCounter = 0;
/** A model name nobody else uses, so each test reads only its own calls. */
const fresh = (base = 'gemini-2.5-flash') => `${base}-t${++freshCounter}`;

async function call(path, { method = 'POST', key = KEY, body, headers = {} } = {}) {
  const res = await fetch(`${mock.url}${path}`, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(key ? { 'x-goog-api-key': key } : {}), ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

const generate = (model, body, opts = {}) =>
  call(`/v1beta/models/${model}:${opts.action ?? 'generateContent'}${opts.query ?? ''}`, { ...opts, body });

const ask = (text, extra = {}) => ({ contents: [{ role: 'user', parts: [{ text }] }], ...extra });

const lastCall = async (filter) => (await client.calls(filter)).at(-1);

/** Splits an SSE body into parsed `data:` payloads, checking Google's CRLF framing. */
function sseEvents(text) {
  assert.ok(text.endsWith('\r\n\r\n'), 'every event ends with CRLF CRLF');
  return text
    .split('\r\n\r\n')
    .filter(Boolean)
    .map((block) => {
      assert.match(block, /^data: \{.*\}$/s);
      return JSON.parse(block.slice('data: '.length));
    });
}

const textOf = (chunks) =>
  chunks.flatMap((c) => c.candidates?.[0]?.content.parts ?? []).filter((p) => !p.thought).map((p) => p.text).join('');

/** Reads a streamed body until `predicate(textSoFar)` holds; returns the reader and the text. */
async function readUntil(res, predicate) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  while (!predicate(text)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  return { reader, text };
}

async function readRest(reader, text = '') {
  const decoder = new TextDecoder();
  let out = text;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return out;
    out += decoder.decode(value, { stream: true });
  }
}

const streamFetch = (model, body, { alt = true, key = KEY } = {}) =>
  fetch(`${mock.url}/v1beta/models/${model}:streamGenerateContent${alt ? '?alt=sse' : ''}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-goog-api-key': key },
    body: JSON.stringify(body),
  });

// ---------------------------------------------------------------- auth

describe('authentication', () => {
  test('a missing key is 403 PERMISSION_DENIED for unregistered callers', T, async () => {
    const r = await generate('gemini-2.5-flash', ask('hi'), { key: null });
    assert.equal(r.status, 403);
    assert.equal(r.headers.get('content-type'), 'application/json; charset=UTF-8');
    assert.deepEqual(r.json, {
      error: {
        code: 403,
        message:
          "Method doesn't allow unregistered callers (callers without established identity). " +
          'Please use API Key or other form of API consumer identity to call this API.',
        status: 'PERMISSION_DENIED',
      },
    });
  });

  test('the key may come in ?key= and is recorded in full', T, async () => {
    const model = fresh();
    const r = await call(`/v1beta/models/${model}:generateContent?key=query-key-123`, { key: null, body: ask('hi') });
    assert.equal(r.status, 200);
    const c = await lastCall({ model });
    assert.equal(c.key, 'query-key-123');
    assert.equal(c.query.key, 'query-key-123');
  });
});

// ---------------------------------------------------------------- models

describe('models', () => {
  test('models.list pages with pageSize and omits nextPageToken on the last page', T, async () => {
    const names = [];
    let token;
    let pages = 0;
    do {
      const r = await call(`/v1beta/models?pageSize=5${token ? `&pageToken=${token}` : ''}`, { method: 'GET' });
      assert.equal(r.status, 200);
      assert.ok(r.json.models.length <= 5);
      names.push(...r.json.models.map((m) => m.name));
      token = r.json.nextPageToken;
      if (!token) assert.equal('nextPageToken' in r.json, false);
      pages += 1;
    } while (token);
    assert.ok(pages >= 3, `expected at least 3 pages, got ${pages}`);
    const all = await call('/v1beta/models', { method: 'GET' });
    assert.deepEqual(names, all.json.models.map((m) => m.name), 'default pageSize (50) returns everything');
    assert.equal(all.json.nextPageToken, undefined);
    for (const id of [
      'gemini-2.5-flash', 'gemini-2.5-pro', 'gemini-2.5-flash-lite', 'gemini-2.0-flash', 'gemini-3-pro-preview',
      'gemini-3-flash-preview', 'gemini-embedding-001', 'text-embedding-004', 'imagen-4.0-generate-001',
    ]) {
      assert.ok(names.includes(`models/${id}`), `${id} is listed`);
    }
    const catalogue = await client.models();
    assert.equal(catalogue.length, names.length);
  });

  test('Model objects look like Google\'s', T, async () => {
    const flash = await call('/v1beta/models/gemini-2.5-flash', { method: 'GET' });
    assert.equal(flash.status, 200);
    assert.equal(flash.json.name, 'models/gemini-2.5-flash');
    for (const field of ['version', 'displayName', 'description', 'inputTokenLimit', 'outputTokenLimit', 'temperature', 'topP', 'topK', 'maxTemperature']) {
      assert.ok(field in flash.json, `has ${field}`);
    }
    assert.deepEqual(flash.json.supportedGenerationMethods, ['generateContent', 'countTokens', 'createCachedContent', 'batchGenerateContent']);
    assert.equal(flash.json.thinking, true);
    const embed = await call('/v1/models/gemini-embedding-001', { method: 'GET' });
    assert.deepEqual(embed.json.supportedGenerationMethods, ['embedContent', 'countTextTokens', 'countTokens', 'asyncBatchEmbedContent']);
    const old = await call('/v1beta/models/gemini-2.0-flash', { method: 'GET' });
    assert.equal('thinking' in old.json, false);
  });

  test('models.get of an unknown model is 404 NOT_FOUND', T, async () => {
    const r = await call('/v1beta/models/xyz', { method: 'GET' });
    assert.equal(r.status, 404);
    assert.equal(r.json.error.status, 'NOT_FOUND');
    assert.match(r.json.error.message, /^models\/xyz is not found for API version v1beta/);
  });
});

// ---------------------------------------------------------------- generateContent

describe('generateContent', () => {
  test('echoes the last user turn with Google\'s response shape and records token counts', T, async () => {
    const model = fresh('gemini-2.0-flash');
    const body = {
      systemInstruction: { parts: [{ text: 'Be brief.' }] },
      contents: [
        { role: 'user', parts: [{ text: 'first' }] },
        { role: 'model', parts: [{ text: 'ok' }] },
        { role: 'user', parts: [{ text: 'Hello, ' }, { text: 'world' }] },
      ],
    };
    const r = await generate(model, body);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'application/json; charset=UTF-8');
    const { candidates, usageMetadata, modelVersion, responseId } = r.json;
    assert.deepEqual(candidates, [
      { content: { parts: [{ text: 'echo: Hello, world' }], role: 'model' }, finishReason: 'STOP', index: 0 },
    ]);
    assert.equal(modelVersion, model);
    assert.match(responseId, /^[A-Za-z0-9_-]{22}$/);
    // ceil(chars/4) per text: "Be brief."=3, "first"=2, "ok"=1, "Hello, "=2, "world"=2
    assert.deepEqual(usageMetadata, {
      promptTokenCount: 10,
      candidatesTokenCount: 5,
      totalTokenCount: 15,
      promptTokensDetails: [{ modality: 'TEXT', tokenCount: 10 }],
    });
    const c = await lastCall({ model });
    assert.equal(c.action, 'generateContent');
    assert.equal(c.status, 200);
    assert.deepEqual(c.body, body);
    assert.deepEqual(c.tokens, { prompt: 10, candidates: 5, thoughts: 0, total: 15 });
    assert.equal(c.headers['x-goog-api-key'], KEY);
  });

  test('2.5 models report thoughtsTokenCount; includeThoughts adds a leading thought part', T, async () => {
    const plain = await generate(fresh(), ask('think'));
    assert.ok(plain.json.usageMetadata.thoughtsTokenCount > 0);
    assert.equal(plain.json.candidates[0].content.parts.length, 1);
    const u = plain.json.usageMetadata;
    assert.equal(u.totalTokenCount, u.promptTokenCount + u.candidatesTokenCount + u.thoughtsTokenCount);

    const shown = await generate(fresh(), ask('think', { generationConfig: { thinkingConfig: { includeThoughts: true } } }));
    const [thought, answer] = shown.json.candidates[0].content.parts;
    assert.equal(thought.thought, true);
    assert.equal(typeof thought.text, 'string');
    assert.deepEqual(answer, { text: 'echo: think' });
    assert.ok(shown.json.usageMetadata.thoughtsTokenCount > 0);

    const off = await generate(fresh(), ask('think', { generationConfig: { thinkingConfig: { thinkingBudget: 0 } } }));
    assert.equal('thoughtsTokenCount' in off.json.usageMetadata, false);
    const lite = await generate('gemini-2.5-flash-lite', ask('think'));
    assert.equal('thoughtsTokenCount' in lite.json.usageMetadata, false, 'Flash-Lite does not think by default');
    const pro = await generate('gemini-2.5-pro', ask('x', { generationConfig: { thinkingConfig: { thinkingBudget: 0 } } }));
    assert.equal(pro.status, 400);
    assert.equal(pro.json.error.message, 'Budget 0 is invalid. This model only works in thinking mode.');
  });

  test('candidateCount N gives N candidates indexed 0..N-1', T, async () => {
    const r = await generate(fresh(), ask('many', { generationConfig: { candidateCount: 3 } }));
    assert.deepEqual(r.json.candidates.map((c) => c.index), [0, 1, 2]);
    assert.equal(r.json.candidates[0].content.parts[0].text, 'echo: many');
  });

  test('snake_case field names are accepted; maxOutputTokens truncates with MAX_TOKENS', T, async () => {
    const r = await generate(fresh('gemini-2.0-flash'), {
      contents: [{ role: 'user', parts: [{ text: 'a long enough prompt to be cut' }] }],
      generation_config: { max_output_tokens: 2, thinking_config: { include_thoughts: false } },
      system_instruction: { parts: { text: 'single part, not a list' } },
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.candidates[0].finishReason, 'MAX_TOKENS');
    assert.equal(r.json.candidates[0].content.parts[0].text, 'echo: a ');
  });

  test('Gemini 3 replies carry a base64 thoughtSignature', T, async () => {
    const r = await generate('gemini-3-pro-preview', ask('sig'));
    const part = r.json.candidates[0].content.parts[0];
    assert.equal(part.text, 'echo: sig');
    assert.match(part.thoughtSignature, /^[A-Za-z0-9+/]+=*$/);
  });

  test('scripted reply parts, raw candidates and blocked prompts', T, async () => {
    const model = fresh();
    await client.script({ model, times: 1, reply: { parts: [{ functionCall: { name: 'get_weather', args: { city: 'Paris' } } }] } });
    const fc = await generate(model, ask('weather?'));
    assert.deepEqual(fc.json.candidates[0].content.parts, [{ functionCall: { name: 'get_weather', args: { city: 'Paris' } } }]);
    assert.equal(fc.json.candidates[0].finishReason, 'STOP');

    await client.script({ model, times: 1, reply: { promptFeedback: { blockReason: 'SAFETY' } } });
    const blocked = await generate(model, ask('bad'));
    assert.equal(blocked.status, 200);
    assert.equal('candidates' in blocked.json, false);
    assert.deepEqual(blocked.json.promptFeedback, { blockReason: 'SAFETY' });
    assert.equal(blocked.json.usageMetadata.promptTokenCount, 1);

    await client.script({ model, times: 1, reply: { candidates: [{ content: { parts: [{ text: 'raw' }], role: 'model' }, finishReason: 'SAFETY', index: 0 }] } });
    const raw = await generate(model, ask('x'));
    assert.deepEqual(raw.json.candidates, [{ content: { parts: [{ text: 'raw' }], role: 'model' }, finishReason: 'SAFETY', index: 0 }]);

    const back = await generate(model, ask('normal'));
    assert.equal(back.json.candidates[0].content.parts.at(-1).text, 'echo: normal', 'times:1 rules expire');
  });
});

// ---------------------------------------------------------------- validation

describe('request validation', () => {
  const bad = async (body, model = fresh()) => {
    const r = await generate(model, body);
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.error.status, 'INVALID_ARGUMENT');
    assert.equal(r.json.error.code, 400);
    return r.json.error;
  };

  test('malformed JSON', T, async () => {
    const e = await bad('{"contents": [');
    assert.match(e.message, /^Invalid JSON payload received\. /);
  });

  test('unknown fields at the top level and in generationConfig', T, async () => {
    assert.equal((await bad(ask('x', { foo: 1 }))).message, 'Invalid JSON payload received. Unknown name "foo": Cannot find field.');
    const e = await bad(ask('x', { generationConfig: { foo: 1 } }));
    assert.equal(e.message, 'Invalid JSON payload received. Unknown name "foo" at \'generation_config\': Cannot find field.');
    assert.deepEqual(e.details, [
      {
        '@type': 'type.googleapis.com/google.rpc.BadRequest',
        fieldViolations: [{ field: 'generation_config', description: e.message }],
      },
    ]);
    const schema = await bad(ask('x', { tools: [{ functionDeclarations: [{ name: 'f', parameters: { type: 'object', additionalProperties: false } }] }] }));
    assert.match(schema.message, /Unknown name "additionalProperties" at 'tools\[0\]\.function_declarations\[0\]\.parameters'/);
  });

  test('all real generationConfig and thinkingConfig fields are accepted', T, async () => {
    const generationConfig = {
      stopSequences: ['zzz'], responseMimeType: 'text/plain', responseSchema: { type: 'STRING' }, responseJsonSchema: { type: 'string' },
      responseModalities: ['TEXT'], candidateCount: 1, maxOutputTokens: 100, temperature: 0.5, topP: 0.9, topK: 10, seed: 1,
      presencePenalty: 0, frequencyPenalty: 0, responseLogprobs: false, logprobs: 1, enableEnhancedCivicAnswers: false,
      speechConfig: {}, thinkingConfig: { thinkingBudget: 128, includeThoughts: false, thinkingLevel: 'low' },
      mediaResolution: 'MEDIA_RESOLUTION_LOW', imageConfig: {},
    };
    const r = await generate(fresh(), ask('x', { generationConfig, tools: [], toolConfig: {}, safetySettings: [], labels: { a: 'b' } }));
    assert.equal(r.status, 200, r.text);
  });

  test('missing or empty contents', T, async () => {
    assert.equal((await bad({})).message, '* GenerateContentRequest.contents: contents is not specified\n');
    assert.equal((await bad({ contents: [] })).message, '* GenerateContentRequest.contents: contents is not specified\n');
    assert.equal(
      (await bad({ contents: [{ role: 'user', parts: [] }] })).message,
      '* GenerateContentRequest.contents[0].parts: contents.parts must not be empty.\n',
    );
  });

  test('invalid role', T, async () => {
    const e = await bad({ contents: [{ role: 'assistant', parts: [{ text: 'x' }] }] });
    assert.equal(e.message, 'Please use a valid role: user, model.');
  });

  test('null where an object or list is expected', T, async () => {
    const e = await bad(ask('x', { generationConfig: null }));
    assert.equal(e.message, "Invalid value at 'generation_config' (type.googleapis.com/google.ai.generativelanguage.v1beta.GenerationConfig), null");
    const list = await bad({ contents: null });
    assert.match(list.message, /^Invalid value at 'contents' /);
  });

  test('inlineData.data that is not base64', T, async () => {
    const e = await bad({ contents: [{ role: 'user', parts: [{ text: 'see' }, { inlineData: { mimeType: 'image/png', data: 'not base64!' } }] }] });
    assert.equal(e.message, 'Invalid value at \'contents[0].parts[1].inline_data.data\' (TYPE_BYTES), Base64 decoding failed for "not base64!"');
  });

  test('unknown models are 404 with Google\'s message; fresh gemini-* names are accepted', T, async () => {
    const r = await generate('xyz', ask('x'));
    assert.equal(r.status, 404);
    assert.deepEqual(r.json, {
      error: {
        code: 404,
        message:
          'models/xyz is not found for API version v1beta, or is not supported for generateContent. ' +
          'Call ListModels to see the list of available models and their supported methods.',
        status: 'NOT_FOUND',
      },
    });
    assert.equal((await generate('gemini-2.5-flash-brand-new-7', ask('x'))).status, 200);
    assert.equal((await generate('gemini-embedding-001', ask('x'))).status, 404, 'embedding models do not generate');
  });

  test('unknown URLs get Google\'s HTML 404 page', T, async () => {
    const r = await call('/v1beta/nothing/here', { method: 'GET' });
    assert.equal(r.status, 404);
    assert.match(r.headers.get('content-type'), /^text\/html/);
    assert.match(r.text, /That’s an error/);
  });
});

// ---------------------------------------------------------------- streaming

describe('streamGenerateContent', () => {
  test('alt=sse: CRLF-framed data events, no [DONE], usage complete only on the last', T, async () => {
    const model = fresh('gemini-2.0-flash');
    const r = await generate(model, ask('stream me please'), { action: 'streamGenerateContent', query: '?alt=sse' });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'text/event-stream');
    assert.ok(!r.text.includes('[DONE]'));
    const events = sseEvents(r.text);
    assert.ok(events.length >= 3, `at least 3 events, got ${events.length}`);
    assert.equal(textOf(events), 'echo: stream me please');
    const prompt = 4; // ceil(16/4)
    for (const e of events.slice(0, -1)) {
      assert.equal(e.candidates[0].finishReason, undefined);
      assert.deepEqual(e.usageMetadata, { promptTokenCount: prompt, totalTokenCount: prompt, promptTokensDetails: [{ modality: 'TEXT', tokenCount: prompt }] });
    }
    const last = events.at(-1);
    assert.equal(last.candidates[0].finishReason, 'STOP');
    assert.deepEqual(last.usageMetadata, { promptTokenCount: 4, candidatesTokenCount: 6, totalTokenCount: 10, promptTokensDetails: [{ modality: 'TEXT', tokenCount: 4 }] });
    assert.equal(new Set(events.map((e) => e.responseId)).size, 1, 'one responseId per stream');
    assert.ok(events.every((e) => e.modelVersion === model));
    assert.match(r.text, /^data: \{"candidates": \[\{"content": \{"parts": \[/, "Google's ': ' separators");
    const c = await lastCall({ model });
    assert.equal(c.alt, 'sse');
    assert.equal(c.eventTimes.length, events.length);
    assert.equal(c.lastEventSentAt, c.eventTimes.at(-1));
    assert.deepEqual(c.tokens, { prompt: 4, candidates: 6, thoughts: 0, total: 10 });
  });

  test('without alt=sse: one JSON array written as [{..}\\n,\\r\\n{..}\\n]', T, async () => {
    const r = await generate(fresh(), ask('array'), { action: 'streamGenerateContent' });
    assert.equal(r.headers.get('content-type'), 'application/json; charset=UTF-8');
    assert.match(r.text, /^\[\{\n/);
    assert.match(r.text, /\}\n,\r\n\{\n/);
    assert.match(r.text, /\}\n\]$/);
    const chunks = JSON.parse(r.text);
    assert.ok(chunks.length >= 3);
    assert.equal(textOf(chunks), 'echo: array');
    assert.ok(chunks.at(-1).usageMetadata.thoughtsTokenCount > 0);
  });

  test('scripted chunks and a mid-event cut', T, async () => {
    const model = fresh();
    const chunks = [
      { candidates: [{ content: { parts: [{ text: 'one' }], role: 'model' }, index: 0 }] },
      { candidates: [{ content: { parts: [{ text: 'two' }], role: 'model' }, index: 0 }] },
      { candidates: [{ content: { parts: [{ text: 'three' }], role: 'model' }, finishReason: 'STOP', index: 0 }] },
    ];
    await client.script({ model, times: 1, chunks });
    const whole = await generate(model, ask('x'), { action: 'streamGenerateContent', query: '?alt=sse' });
    assert.deepEqual(sseEvents(whole.text), chunks);

    await client.script({ model, chunks, cutAfterEvents: 1 });
    const res = await streamFetch(model, ask('x'));
    assert.equal(res.status, 200);
    const { reader, text } = await readUntil(res, (t) => t.split('\r\n\r\n').length > 1);
    await assert.rejects(readRest(reader, text), 'the connection dies mid-event');
    const c = await lastCall({ model });
    assert.equal(c.eventTimes.length, 1);
    assert.equal(c.cut.afterEvents, 1);
    assert.equal(c.lastEventSentAt, undefined);
  });

  test('holdBeforeLast waits for /__mock/release and records event times', T, async () => {
    const model = fresh();
    const gate = `gate-${model}`;
    await client.script({ model, holdBeforeLast: gate });
    const held = once(mock.state, 'held');
    const res = await streamFetch(model, ask('hold on'));
    const [{ call: heldCall }] = await held;
    assert.equal(heldCall.model, model);
    const { reader, text } = await readUntil(res, (t) => t.split('\r\n\r\n').length - 1 === heldCall.eventTimes.length);
    assert.equal(sseEvents(text).at(-1).candidates[0].finishReason, undefined, 'the last event is still held');
    assert.deepEqual(await client.release(gate), { gate, released: true, waiting: 1 });
    const all = sseEvents(await readRest(reader, text));
    assert.equal(all.at(-1).candidates[0].finishReason, 'STOP');
    const c = await lastCall({ model });
    assert.equal(c.eventTimes.length, all.length);
    assert.equal(c.gateOutcome, 'released');
    assert.ok(c.lastEventSentAt >= c.releasedAt);
    assert.ok(c.heldAt >= c.eventTimes.at(-2));
  });

  test('a gate auto-releases after gateTimeoutMs', T, async () => {
    const quick = await startMock({ gateTimeoutMs: 50 });
    try {
      await mockClient(quick.url).script({ holdBeforeLast: 'never-released' });
      const res = await fetch(`${quick.url}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse`, {
        method: 'POST',
        headers: { 'x-goog-api-key': KEY },
        body: JSON.stringify(ask('x')),
      });
      assert.ok(sseEvents(await res.text()).length >= 3);
      assert.equal(quick.state.calls.at(-1).gateOutcome, 'timeout');
    } finally {
      await quick.close();
    }
  });

  test('eventDelayMs spaces events out', T, async () => {
    const model = fresh();
    await client.script({ model, eventDelayMs: 30 });
    await generate(model, ask('slowly'), { action: 'streamGenerateContent', query: '?alt=sse' });
    const { eventTimes } = await lastCall({ model });
    for (let i = 1; i < eventTimes.length; i += 1) assert.ok(eventTimes[i] - eventTimes[i - 1] >= 25);
  });
});

// ---------------------------------------------------------------- countTokens, embeddings

describe('countTokens and embeddings', () => {
  test('countTokens counts contents, or a whole generateContentRequest', T, async () => {
    const contents = [{ role: 'user', parts: [{ text: 'count these words' }] }];
    const plain = await call('/v1beta/models/gemini-2.5-flash:countTokens', { body: { contents } });
    assert.deepEqual(plain.json, { totalTokens: 5, promptTokensDetails: [{ modality: 'TEXT', tokenCount: 5 }] });
    const request = { model: 'models/gemini-2.5-flash', contents, systemInstruction: { parts: [{ text: 'sys!' }] } };
    const full = await call('/v1beta/models/gemini-2.5-flash:countTokens', { body: { generateContentRequest: request } });
    assert.equal(full.json.totalTokens, 6);
    const gen = await generate(fresh(), { contents, systemInstruction: request.systemInstruction });
    assert.equal(gen.json.usageMetadata.promptTokenCount, full.json.totalTokens, 'same count as generateContent');
    const c = await lastCall({ action: 'countTokens' });
    assert.equal(c.tokens.prompt, 6);
  });

  test('embedContent: default sizes, outputDimensionality, determinism', T, async () => {
    const embed = (model, body) => call(`/v1beta/models/${model}:embedContent`, { body });
    const content = { parts: [{ text: 'embed me' }] };
    const a = await embed('gemini-embedding-001', { content });
    assert.equal(a.json.embedding.values.length, 3072);
    const norm = Math.hypot(...a.json.embedding.values);
    assert.ok(Math.abs(norm - 1) < 1e-3, 'full-size vectors are normalized');
    const b = await embed('gemini-embedding-001', { content });
    assert.deepEqual(a.json.embedding.values, b.json.embedding.values);
    assert.equal((await embed('text-embedding-004', { content })).json.embedding.values.length, 768);
    assert.equal((await embed('gemini-embedding-001', { content, outputDimensionality: 256 })).json.embedding.values.length, 256);
    const other = await embed('gemini-embedding-001', { content: { parts: [{ text: 'something else' }] } });
    assert.notDeepEqual(other.json.embedding.values, a.json.embedding.values);
    assert.equal((await embed('gemini-2.5-flash', { content })).status, 404);
  });

  test('batchEmbedContents requires each request to name the URL model', T, async () => {
    const url = '/v1beta/models/gemini-embedding-001:batchEmbedContents';
    const ok = await call(url, {
      body: { requests: ['a', 'b'].map((text) => ({ model: 'models/gemini-embedding-001', content: { parts: [{ text }] }, outputDimensionality: 8 })) },
    });
    assert.equal(ok.status, 200);
    assert.equal(ok.json.embeddings.length, 2);
    assert.ok(ok.json.embeddings.every((e) => e.values.length === 8));
    const wrong = await call(url, { body: { requests: [{ model: 'models/text-embedding-004', content: { parts: [{ text: 'a' }] } }] } });
    assert.equal(wrong.status, 400);
    assert.match(wrong.json.error.message, /^\* BatchEmbedContentsRequest\.requests\[0\]\.model: /);
    const missing = await call(url, { body: { requests: [{ content: { parts: [{ text: 'a' }] } }] } });
    assert.equal(missing.json.error.message, '* BatchEmbedContentsRequest.requests[0].model: model is not specified\n');
  });
});

// ---------------------------------------------------------------- faults

describe('faults by key name and by script', () => {
  test('rl-minute-* keys: per-minute 429 with a RetryInfo', T, async () => {
    const r = await generate('gemini-2.5-flash', ask('x'), { key: 'rl-minute-a' });
    assert.equal(r.status, 429);
    assert.equal(r.headers.get('content-type'), 'application/json; charset=UTF-8');
    assert.deepEqual(r.json, {
      error: {
        code: 429,
        message:
          'You exceeded your current quota, please check your plan and billing details. For more information on this error, ' +
          'head to: https://ai.google.dev/gemini-api/docs/rate-limits.',
        status: 'RESOURCE_EXHAUSTED',
        details: [
          {
            '@type': 'type.googleapis.com/google.rpc.QuotaFailure',
            violations: [
              {
                quotaMetric: 'generativelanguage.googleapis.com/generate_content_free_tier_requests',
                quotaId: 'GenerateRequestsPerMinutePerProjectPerModel-FreeTier',
                quotaDimensions: { location: 'global', model: 'gemini-2.5-flash' },
                quotaValue: '10',
              },
            ],
          },
          {
            '@type': 'type.googleapis.com/google.rpc.Help',
            links: [{ description: 'Learn more about Gemini API quotas', url: 'https://ai.google.dev/gemini-api/docs/rate-limits' }],
          },
          { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '2s' },
        ],
      },
    });
    const custom = await generate('gemini-2.5-flash', ask('x'), { key: 'rl-minute-1500ms-a' });
    assert.equal(custom.json.error.details.at(-1).retryDelay, '1.500s');
  });

  test('rl-day-* keys: per-day quota id, still with a RetryInfo', T, async () => {
    const r = await generate('gemini-2.5-flash', ask('x'), { key: 'rl-day-b' });
    assert.equal(r.status, 429);
    assert.equal(r.json.error.details[0].violations[0].quotaId, 'GenerateRequestsPerDayPerProjectPerModel-FreeTier');
    assert.equal(r.json.error.details.at(-1)['@type'], 'type.googleapis.com/google.rpc.RetryInfo');
  });

  test('invalid-*, denied-*, err500-*, err503-* keys', T, async () => {
    const invalid = await generate('gemini-2.5-flash', ask('x'), { key: 'invalid-c' });
    assert.equal(invalid.status, 400);
    assert.deepEqual(invalid.json.error.details[0], {
      '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
      reason: 'API_KEY_INVALID',
      domain: 'googleapis.com',
      metadata: { service: 'generativelanguage.googleapis.com' },
    });
    assert.equal(invalid.json.error.message, 'API key not valid. Please pass a valid API key.');
    const listing = await call('/v1beta/models', { method: 'GET', key: 'invalid-c' });
    assert.equal(listing.status, 400, 'a bad key fails every method');

    const denied = await generate('gemini-2.5-flash', ask('x'), { key: 'denied-d' });
    assert.equal(denied.status, 403);
    assert.equal(denied.json.error.status, 'PERMISSION_DENIED');
    assert.equal(denied.json.error.details[0].reason, 'CONSUMER_SUSPENDED');

    const e500 = await generate('gemini-2.5-flash', ask('x'), { key: 'err500-e' });
    assert.deepEqual(e500.json.error, {
      code: 500,
      message: 'An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting',
      status: 'INTERNAL',
    });
    const e503 = await generate('gemini-2.5-flash', ask('x'), { key: 'err503-f' });
    assert.deepEqual(e503.json.error, { code: 503, message: 'The model is overloaded. Please try again later.', status: 'UNAVAILABLE' });
  });

  test('slow-<ms>-* keys delay the response', T, async () => {
    const started = Date.now();
    const r = await generate('gemini-2.5-flash', ask('x'), { key: 'slow-80-g' });
    assert.equal(r.status, 200);
    assert.ok(Date.now() - started >= 80);
  });

  test('rules: times, newest-wins, model scoping, raw faults, fault:null', T, async () => {
    const model = fresh();
    const other = fresh();
    await client.script({ model, fault: 'server_503', times: 2 });
    await client.script({ model, fault: 'rate_limit_day', retryDelay: '7s', times: 1 });
    const first = await generate(model, ask('x'));
    assert.equal(first.status, 429, 'newest rule wins');
    assert.equal(first.json.error.details.at(-1).retryDelay, '7s');
    assert.equal((await generate(model, ask('x'))).status, 503);
    assert.equal((await generate(other, ask('x'))).status, 200, 'rules are scoped to their model');
    assert.equal((await generate(model, ask('x'))).status, 503);
    assert.equal((await generate(model, ask('x'))).status, 200, 'both rules used up');

    await client.script({ model, fault: { status: 418, body: { error: { code: 418, message: 'teapot', status: 'X' } } }, times: 1 });
    const raw = await generate(model, ask('x'));
    assert.equal(raw.status, 418);
    assert.equal(raw.json.error.message, 'teapot');

    await client.script({ key: 'rl-minute-override', fault: null, times: 1 });
    assert.equal((await generate(model, ask('x'), { key: 'rl-minute-override' })).status, 200, 'fault:null beats the key convention');

    const c = await lastCall({ model });
    assert.equal(typeof c.rule, 'number');
    await assert.rejects(client.script({ fault: 'nope' }), /unknown fault/);
    await assert.rejects(client.script({ modle: 'typo' }), /unknown rule field/);
  });

  test('not_found and latencyMs', T, async () => {
    const model = fresh();
    await client.script({ model, fault: 'not_found', latencyMs: 40, times: 1 });
    const started = Date.now();
    const r = await generate(model, ask('x'));
    assert.equal(r.status, 404);
    assert.ok(Date.now() - started >= 40);
  });
});

// ---------------------------------------------------------------- call log and control

describe('call log and control endpoints', () => {
  test('calls are recorded in order with the documented fields and filters', T, async () => {
    const model = fresh();
    await generate(model, ask('one'), { headers: { 'user-agent': 'gemgate-test', 'x-goog-api-client': 'genai-js/1.0' } });
    await generate(model, ask('two'), { action: 'countTokens' });
    const calls = await client.calls({ model });
    assert.deepEqual(calls.map((c) => c.action), ['generateContent', 'countTokens']);
    assert.ok(calls[0].seq < calls[1].seq);
    const [c] = calls;
    for (const field of ['seq', 'at', 'method', 'path', 'action', 'model', 'key', 'alt', 'query', 'headers', 'body', 'status']) {
      assert.ok(field in c, `call has ${field}`);
    }
    assert.equal(c.path, `/v1beta/models/${model}:generateContent`);
    assert.equal(c.headers['user-agent'], 'gemgate-test');
    assert.equal(c.headers['x-goog-api-client'], 'genai-js/1.0');
    assert.equal((await client.calls({ model, action: 'countTokens' })).length, 1);
    assert.equal((await client.calls({ model, key: 'someone-else' })).length, 0);
  });

  test('reset clears calls and rules; clearScripts clears rules only', T, async () => {
    const local = await startMock();
    try {
      const ctl = mockClient(local.url);
      await ctl.script({ fault: 'server_500' });
      await ctl.clearScripts();
      const post = () => fetch(`${local.url}/v1beta/models/gemini-2.5-flash:generateContent`, { method: 'POST', headers: { 'x-goog-api-key': KEY }, body: JSON.stringify(ask('x')) });
      assert.equal((await post()).status, 200);
      await ctl.script({ fault: 'server_500' });
      assert.equal((await ctl.calls()).length, 1);
      await ctl.reset();
      assert.equal((await ctl.calls()).length, 0);
      assert.equal((await post()).status, 200);
    } finally {
      await local.close();
    }
  });
});

// ---------------------------------------------------------------- OAuth and Code Assist

describe('OAuth and Code Assist', () => {
  const token = async (refreshToken) => {
    const res = await fetch(`${mock.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: 'cid', client_secret: 'secret' }),
    });
    return { status: res.status, json: await res.json() };
  };
  const internal = (method, accessToken, body, query = '') =>
    call(`/v1internal:${method}${query}`, { key: null, body, headers: accessToken ? { authorization: `Bearer ${accessToken}` } : {} });

  test('refresh_token grant issues an access token; unknown or revoked tokens are invalid_grant', T, async () => {
    const ok = await token('1//alice');
    assert.equal(ok.status, 200);
    assert.match(ok.json.access_token, /^ya29\.mock-/);
    assert.equal(ok.json.expires_in, 3599);
    assert.equal(ok.json.token_type, 'Bearer');
    assert.equal(ok.json.id_token.split('.').length, 3);
    assert.equal(typeof ok.json.scope, 'string');
    const invalidGrant = { error: 'invalid_grant', error_description: 'Token has been expired or revoked.' };
    assert.deepEqual(await token('not-a-google-token'), { status: 400, json: invalidGrant });
    assert.deepEqual(await token('1//revoked-bob'), { status: 400, json: invalidGrant });

    const info = await call('/oauth2/v2/userinfo', { method: 'GET', key: null, headers: { authorization: `Bearer ${ok.json.access_token}` } });
    assert.equal(info.json.email, 'alice@example.com');
    assert.match(info.json.id, /^\d{21}$/);
    const c = await lastCall({ action: 'token' });
    assert.equal(c.key, '1//revoked-bob');
    assert.equal(c.body.grant_type, 'refresh_token');
  });

  test('v1internal generate, stream, countTokens, loadCodeAssist, onboardUser', T, async () => {
    const { json: { access_token: at } } = await token('1//carol');
    const request = { contents: [{ role: 'user', parts: [{ text: 'hi cli' }] }] };
    const envelope = { model: 'gemini-2.5-pro', project: 'mock-project-carol', user_prompt_id: 'p1', request };

    const gen = await internal('generateContent', at, envelope);
    assert.equal(gen.status, 200, gen.text);
    assert.equal(gen.json.response.candidates[0].content.parts.at(-1).text, 'echo: hi cli');
    assert.equal(typeof gen.json.traceId, 'string');
    const c = await lastCall({ action: 'v1internal.generateContent' });
    assert.equal(c.key, at);
    assert.equal(c.account, '1//carol');
    assert.equal(c.model, 'gemini-2.5-pro');

    const stream = await internal('streamGenerateContent', at, envelope, '?alt=sse');
    const events = sseEvents(stream.text);
    assert.ok(events.length >= 3);
    assert.ok(events.every((e) => e.response && e.traceId === events[0].traceId));
    assert.equal(textOf(events.map((e) => e.response)), 'echo: hi cli');

    const count = await internal('countTokens', at, { request: { model: 'models/gemini-2.5-pro', contents: request.contents } });
    assert.deepEqual(count.json, { totalTokens: 2 });

    const load = await internal('loadCodeAssist', at, { metadata: { pluginType: 'GEMINI' } });
    assert.equal(load.json.currentTier.id, 'free-tier');
    assert.equal(load.json.cloudaicompanionProject, 'mock-project-carol');
    assert.ok(load.json.allowedTiers.some((t) => t.id === 'free-tier'));

    const { json: { access_token: newcomer } } = await token('1//new-dave');
    assert.equal((await internal('loadCodeAssist', newcomer, {})).json.currentTier, undefined);
    const onboard = await internal('onboardUser', newcomer, { tierId: 'free-tier' });
    assert.equal(onboard.json.done, true);
    assert.equal(onboard.json.response.cloudaicompanionProject.id, 'mock-project-new-dave');
    assert.equal((await internal('loadCodeAssist', newcomer, {})).json.currentTier.id, 'free-tier');
  });

  test('bearer tokens not issued by /token, or revoked, are 401 UNAUTHENTICATED', T, async () => {
    const body = { model: 'gemini-2.5-flash', request: ask('x') };
    const none = await internal('generateContent', null, body);
    assert.equal(none.status, 401);
    assert.equal(none.json.error.status, 'UNAUTHENTICATED');
    assert.equal((await internal('generateContent', 'ya29.forged', body)).status, 401);
    const { json: { access_token: at } } = await token('1//erin');
    assert.equal((await internal('generateContent', at, body)).status, 200);
    await fetch(`${mock.url}/__mock/oauth/revoke`, { method: 'POST', body: JSON.stringify({ refresh_token: '1//erin' }) });
    assert.equal((await internal('generateContent', at, body)).status, 401);
    assert.equal((await token('1//erin')).status, 400);
  });

  test('Code Assist rate limits use the cloudcode-pa shape; rules can match the refresh token', T, async () => {
    const { json: { access_token: at } } = await token('1//frank');
    await client.script({ key: '1//frank', fault: 'rate_limit_minute', retryDelay: '5s', times: 1 });
    const r = await internal('generateContent', at, { model: 'gemini-2.5-pro', request: ask('x') });
    assert.equal(r.status, 429);
    assert.equal(r.json.error.details[0].reason, 'RATE_LIMIT_EXCEEDED');
    assert.equal(r.json.error.details[0].domain, 'cloudcode-pa.googleapis.com');
    assert.deepEqual(r.json.error.details[1], { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '5s' });
  });
});

// ---------------------------------------------------------------- lifecycle

describe('lifecycle', () => {
  test('close() ends held streams and resolves', T, async () => {
    const local = await startMock();
    await mockClient(local.url).script({ holdBeforeLast: 'forever' });
    const held = once(local.state, 'held');
    const res = await fetch(`${local.url}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse`, {
      method: 'POST',
      headers: { 'x-goog-api-key': KEY },
      body: JSON.stringify(ask('x')),
    });
    await held;
    const reading = res.text();
    await local.close();
    await assert.rejects(reading);
  });

  test('server.mjs prints MOCK_URL and exits on SIGTERM', T, async () => {
    const script = fileURLToPath(new URL('./server.mjs', import.meta.url));
    const child = spawn(process.execPath, [script, '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      let out = '';
      for await (const chunk of child.stdout) {
        out += chunk;
        if (out.includes('\n')) break;
      }
      const match = /^MOCK_URL=(http:\/\/127\.0\.0\.1:\d+)\n$/.exec(out);
      assert.ok(match, `unexpected output ${JSON.stringify(out)}`);
      const health = await fetch(`${match[1]}/__mock/health`);
      assert.deepEqual(await health.json(), { ok: true });
    } finally {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const [code] = await exited;
      assert.equal(code, 0);
    }
  });
});
