// Tests of the Google mock itself: `node --test tests/mock/`.
// Every wait is bounded by the per-test timeout; nothing sleeps to synchronise.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mediaBytes, startMock } from './google.mjs';
import { mockClient } from './client.mjs';
import { mediaBytes as libMediaBytes } from './lib/media.mjs';
import { thinkingBudgetRange, thinkingLevelsOf } from './lib/models.mjs';

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
      generation_config: { max_output_tokens: 2, stop_sequences: ['never-there'] },
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
    // Valid together: one schema field at a time, a budget on 2.5 and a level on Gemini 3.
    const generationConfig = {
      stopSequences: ['zzz'], responseMimeType: 'application/json', responseSchema: { type: 'STRING' },
      responseModalities: ['TEXT'], candidateCount: 1, maxOutputTokens: 100, temperature: 0.5, topP: 0.9, topK: 10, seed: 1,
      presencePenalty: 0, frequencyPenalty: 0, responseLogprobs: true, logprobs: 1, enableEnhancedCivicAnswers: false,
      speechConfig: {}, thinkingConfig: { thinkingBudget: 128, includeThoughts: false },
      mediaResolution: 'MEDIA_RESOLUTION_LOW', imageConfig: {},
    };
    const r = await generate(fresh(), ask('x', { generationConfig, tools: [], toolConfig: {}, safetySettings: [], labels: { a: 'b' } }));
    assert.equal(r.status, 200, r.text);
    const level = { responseMimeType: 'application/json', responseJsonSchema: { type: 'string' }, thinkingConfig: { thinkingLevel: 'low' } };
    const g3 = await generate(fresh('gemini-3-flash-preview'), ask('x', { generationConfig: level }));
    assert.equal(g3.status, 200, g3.text);
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

  test('holdBeforeLast holds a non-stream generateContent answer whole until released', T, async () => {
    const model = fresh();
    const gate = `gate-${model}`;
    const parts = [
      { text: 'weighing it', thought: true },
      { text: 'Both at once.' },
      { functionCall: { name: 'get_weather', args: { city: 'Paris' } } },
      { functionCall: { name: 'get_time', args: { tz: 'CET' } } },
    ];
    await client.script({ model, holdBeforeLast: gate, reply: { parts } });
    const held = once(mock.state, 'held');
    const answer = generate(model, ask('hold the whole answer'));
    const [{ call: heldCall }] = await held;
    assert.equal(heldCall.action, 'generateContent');
    assert.equal(heldCall.status ?? null, null, 'nothing was sent while held');
    assert.deepEqual(await client.release(gate), { gate, released: true, waiting: 1 });
    const res = await answer;
    assert.equal(res.status, 200);
    assert.deepEqual(res.json.candidates[0].content.parts, parts);
    const c = await lastCall({ model });
    assert.equal(c.action, 'generateContent');
    assert.equal(c.gateOutcome, 'released');
    assert.ok(c.releasedAt >= c.heldAt);
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

describe('built-in tools and Gemma', () => {
  test('googleSearch: groundingMetadata cites the answer by UTF-8 byte offsets, with the last stream event', T, async () => {
    const model = fresh();
    const body = ask('北京是中国的首都 and Paris', { tools: [{ googleSearch: {} }] });
    const r = await generate(model, body);
    assert.equal(r.status, 200);
    const [candidate] = r.json.candidates;
    const text = candidate.content.parts.map((p) => p.text).join('');
    assert.equal(text, 'echo: 北京是中国的首都 and Paris');
    const meta = candidate.groundingMetadata;
    assert.deepEqual(meta.groundingChunks.map((c) => c.web.title), ['source-one.example', 'source-two.example']);
    assert.ok(meta.groundingChunks.every((c) => c.web.uri.startsWith('https://vertexaisearch.cloud.google.com/grounding-api-redirect/')));
    assert.deepEqual(meta.webSearchQueries, ['北京是中国的首都 and Paris']);
    assert.match(meta.searchEntryPoint.renderedContent, /^<div/);
    const bytes = Buffer.from(text);
    assert.equal(meta.groundingSupports.length, 2);
    assert.equal(meta.groundingSupports[0].segment.startIndex, undefined, 'a 0 start is left out');
    assert.deepEqual(meta.groundingSupports.map((s) => s.groundingChunkIndices), [[0], [1, 0]]);
    for (const { segment } of meta.groundingSupports) {
      assert.equal(bytes.subarray(segment.startIndex ?? 0, segment.endIndex).toString(), segment.text, 'byte offsets');
    }
    assert.notEqual(meta.groundingSupports[1].segment.startIndex, [...text].length / 2, 'bytes, not characters');
    // Streamed: the text is split as usual, and the metadata comes with the last event only.
    const s = await generate(fresh(), body, { action: 'streamGenerateContent', query: '?alt=sse' });
    const events = sseEvents(s.text);
    assert.equal(textOf(events), text);
    assert.ok(events.slice(0, -1).every((e) => !e.candidates[0].groundingMetadata));
    assert.deepEqual(events.at(-1).candidates[0].groundingMetadata, meta);
    // Without the tool there is none.
    assert.equal((await generate(fresh(), ask('x'))).json.candidates[0].groundingMetadata, undefined);
  });

  test('codeExecution: executableCode and codeExecutionResult parts follow the answer, streamed whole', T, async () => {
    const body = ask('compute', { tools: [{ codeExecution: {} }] });
    const r = await generate(fresh(), body);
    assert.deepEqual(r.json.candidates[0].content.parts, [
      { text: 'echo: compute' },
      { executableCode: { language: 'PYTHON', code: 'print(6 * 7)' } },
      { codeExecutionResult: { outcome: 'OUTCOME_OK', output: '42\n' } },
      { text: 'The code printed 42.' },
    ]);
    const s = await generate(fresh(), body, { action: 'streamGenerateContent', query: '?alt=sse' });
    const parts = sseEvents(s.text).flatMap((e) => e.candidates[0].content.parts);
    assert.deepEqual(parts.filter((p) => p.executableCode || p.codeExecutionResult), r.json.candidates[0].content.parts.slice(1, 3));
  });

  test('urlContext is accepted and reports the URLs of the prompt as retrieved', T, async () => {
    const r = await generate(fresh(), ask('read https://example.com/a please', { tools: [{ urlContext: {} }] }));
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.candidates[0].urlContextMetadata, {
      urlMetadata: [{ retrievedUrl: 'https://example.com/a', urlRetrievalStatus: 'URL_RETRIEVAL_STATUS_SUCCESS' }],
    });
  });

  test('every gemma-* model (fresh names too) refuses systemInstruction with Google\'s 400', T, async () => {
    for (const model of ['gemma-3-27b-it', fresh('gemma-3')]) {
      const r = await generate(model, ask('x', { systemInstruction: { parts: [{ text: 'be nice' }] } }));
      assert.equal(r.status, 400, model);
      assert.equal(r.json.error.status, 'INVALID_ARGUMENT');
      assert.equal(r.json.error.message, `Developer instruction is not enabled for models/${model}`);
      const ok = await generate(model, ask('be nice\n\nx'));
      assert.equal(ok.status, 200, model);
      assert.equal(ok.json.candidates[0].content.parts[0].text, 'echo: be nice\n\nx');
    }
  });
});

describe('scripted answers: cut off and continued (anti-truncation)', () => {
  const ANSWER = 'The quick brown fox jumps over the lazy dog, then runs into the forest and sleeps.';
  const MARKER = '[done]';
  const system = { parts: [{ text: 'Be brief.' }, { text: `End with \`${MARKER}\` on its own.` }] };
  const sse = { action: 'streamGenerateContent', query: '?alt=sse' };
  /** A continuation request: the question, the text so far as a model turn, then a user turn. */
  const continuing = (soFar) => ({
    systemInstruction: system,
    contents: [
      { role: 'user', parts: [{ text: 'tell me' }] },
      { role: 'model', parts: [{ text: soFar }] },
      { role: 'user', parts: [{ text: 'continue' }] },
    ],
  });
  const chars = [...ANSWER];
  const at = (pieces, events) => chars.slice(0, Math.floor((pieces * chars.length) / events)).join('');

  test('a stream is cut after its pieces, continued from the text so far, and ends with the marker', T, async () => {
    const model = fresh();
    await client.script({ model, answer: { text: ANSWER, events: 6, cuts: [2, 4] } });
    const first = sseEvents((await generate(model, ask('tell me', { systemInstruction: system }), sse)).text);
    assert.equal(first.length, 2);
    assert.equal(textOf(first), at(2, 6));
    assert.ok(first.every((e) => e.candidates[0].finishReason === undefined), 'the stream just ends');
    assert.equal(first.at(-1).usageMetadata.candidatesTokenCount, Math.ceil(at(2, 6).length / 4), 'usage is cumulative');

    const second = sseEvents((await generate(model, continuing(at(2, 6)), sse)).text);
    assert.equal(textOf(second), at(4, 6).slice(at(2, 6).length));
    const third = sseEvents((await generate(model, continuing(at(4, 6)), sse)).text);
    assert.equal(textOf(third), `${ANSWER.slice(at(4, 6).length)}\n${MARKER}`);
    assert.equal(third.at(-1).candidates[0].finishReason, 'STOP');
    const calls = await client.calls({ model });
    assert.deepEqual(calls.map((c) => c.answer.from), [0, [...at(2, 6)].length, [...at(4, 6)].length]);
    assert.deepEqual(calls.map((c) => c.answer.continuation), [false, true, true]);
    assert.deepEqual(calls[2].tokens, {
      prompt: third.at(-1).usageMetadata.promptTokenCount,
      candidates: third.at(-1).usageMetadata.candidatesTokenCount,
      thoughts: 0,
      total: third.at(-1).usageMetadata.totalTokenCount,
    });
  });

  test('cutWith MAX_TOKENS, the marker split across two events, and a non-stream answer', T, async () => {
    const model = fresh();
    await client.script({ model, answer: { text: ANSWER, events: 4, cuts: [1], cutWith: 'MAX_TOKENS', splitMarker: true } });
    const first = sseEvents((await generate(model, ask('tell me', { systemInstruction: system }), sse)).text);
    assert.equal(first.at(-1).candidates[0].finishReason, 'MAX_TOKENS');
    const rest = sseEvents((await generate(model, continuing(textOf(first)), sse)).text);
    const texts = rest.map((e) => e.candidates[0].content.parts[0].text);
    assert.ok(texts.at(-2).endsWith('\n[do'), JSON.stringify(texts));
    assert.equal(texts.at(-1), 'ne]');
    assert.equal(textOf(first) + textOf(rest), `${ANSWER}\n${MARKER}`);

    const whole = await generate(model, ask('tell me', { systemInstruction: system }));
    assert.equal(whole.json.candidates[0].finishReason, 'MAX_TOKENS');
    assert.equal(whole.json.candidates[0].content.parts[0].text, at(1, 4));
  });

  test('without a marker in the system instruction none is written; bad answers are rejected', T, async () => {
    const model = fresh();
    await client.script({ model, answer: { text: ANSWER } });
    const r = await generate(model, ask('tell me'));
    assert.equal(r.json.candidates[0].content.parts[0].text, ANSWER);
    assert.equal(r.json.candidates[0].finishReason, 'STOP');
    // A model turn that is not the answer's start is an ordinary conversation: it starts over.
    const other = await generate(model, { ...continuing('something else'), systemInstruction: undefined });
    assert.equal(other.json.candidates[0].content.parts[0].text, ANSWER);
    for (const answer of [{ text: '' }, { text: 'abc', cuts: [3] }, { text: 'abc', cutWith: 'STOP' }, { text: 'abc', nope: 1 }]) {
      await assert.rejects(client.script({ model, answer }), /answer/);
    }
  });
});

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

  test('project: a 429 names its project in an ErrorInfo, as Google\'s paid-tier 429s do', T, async () => {
    const model = fresh();
    await client.script({ key: 'proj-key-a', model, fault: 'rate_limit_minute', retryDelay: '9s', project: '123', times: 1 });
    const r = await generate(model, ask('x'), { key: 'proj-key-a' });
    assert.equal(r.status, 429);
    const { details } = r.json.error;
    assert.deepEqual(details[0], {
      '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
      reason: 'RATE_LIMIT_EXCEEDED',
      domain: 'googleapis.com',
      metadata: {
        consumer: 'projects/123',
        service: 'generativelanguage.googleapis.com',
        quota_limit: 'GenerateRequestsPerMinutePerProjectPerModel-FreeTier',
        quota_location: 'global',
      },
    });
    // The usual free-tier details follow, unchanged.
    assert.deepEqual(details.slice(1).map((d) => d['@type']), [
      'type.googleapis.com/google.rpc.QuotaFailure',
      'type.googleapis.com/google.rpc.Help',
      'type.googleapis.com/google.rpc.RetryInfo',
    ]);
    assert.equal(details.at(-1).retryDelay, '9s');
    assert.equal((await generate(model, ask('x'), { key: 'proj-key-a' })).status, 200, 'times:1 used up');

    // Per-day 429s name the per-day quota; a rule adding only a project applies to a key convention's 429.
    await client.script({ key: 'rl-day-proj-b', project: 'my-project-7', times: 1 });
    const day = await generate(model, ask('x'), { key: 'rl-day-proj-b' });
    assert.equal(day.status, 429);
    assert.equal(day.json.error.details[0].metadata.consumer, 'projects/my-project-7');
    assert.equal(day.json.error.details[0].metadata.quota_limit, 'GenerateRequestsPerDayPerProjectPerModel-FreeTier');

    // Without a project, no ErrorInfo (the free tier's shape); other faults ignore it.
    const plain = await generate(model, ask('x'), { key: 'rl-minute-proj-c' });
    assert.ok(!plain.json.error.details.some((d) => d['@type'].endsWith('ErrorInfo')));
    await client.script({ key: 'proj-key-d', model, fault: 'server_503', project: '123', times: 1 });
    const overloaded = await generate(model, ask('x'), { key: 'proj-key-d' });
    assert.equal(overloaded.status, 503);
    assert.equal(overloaded.json.error.details, undefined);

    for (const project of [123, '', 'a/b', 'x'.repeat(65)]) {
      await assert.rejects(client.script({ fault: 'rate_limit_minute', project }), /project must be/);
    }
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

// ---------------------------------------------------------------- transient faults

describe('transient faults: drop, latency past a client timeout, flaky rules', () => {
  /** A generateContent that may fail at the network level: `{ status, json }` or `{ network: <cause code> }`. */
  async function attempt(model, body, opts = {}) {
    try {
      return await generate(model, body, opts);
    } catch (err) {
      assert.equal(err.name, 'TypeError', `a network failure, got ${err}`);
      return { network: err.cause?.code ?? String(err.cause ?? err) };
    }
  }

  /** Resolves with the next call for `model` whose response ended (bounded by the test timeout). */
  function doneOf(model) {
    return new Promise((resolve) => {
      const on = (c) => {
        if (c.model !== model) return;
        mock.state.off('done', on);
        resolve(c);
      };
      mock.state.on('done', on);
    });
  }

  /** Runs `fn(i)` for i in 0..n-1, at most `width` at a time; resolves to the results in order. */
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
    await Promise.all(Array.from({ length: Math.min(width, n) }, worker));
    return out;
  }

  const FOUR = ['server_500', 'server_503', 'drop', 'slow'];

  test('drop resets the connection without a response, after latencyMs when both are set', T, async () => {
    const model = fresh();
    await client.script({ model, fault: 'drop', latencyMs: 60, times: 2 });
    const started = Date.now();
    const dropped = await attempt(model, ask('x'));
    assert.ok(Date.now() - started >= 60, 'latencyMs is waited out before the drop');
    assert.ok(['ECONNRESET', 'UND_ERR_SOCKET'].includes(dropped.network), `expected a reset, got ${JSON.stringify(dropped)}`);
    const stream = await streamFetch(model, ask('x')).then(
      (r) => ({ status: r.status }),
      (err) => ({ network: err.cause?.code ?? String(err) }),
    );
    assert.ok(stream.network, `a stream is dropped before its headers too, got ${JSON.stringify(stream)}`);
    const calls = await client.calls({ model });
    assert.deepEqual(calls.map((c) => c.action), ['generateContent', 'streamGenerateContent']);
    for (const c of calls) {
      assert.equal(c.fault, 'drop');
      assert.equal(c.status, null, 'nothing was sent');
      assert.equal(c.response, undefined);
      assert.equal(typeof c.droppedAt, 'number');
      assert.equal(c.abandonedAt, undefined, 'the mock dropped it; the client did not leave');
    }
    assert.equal((await generate(model, ask('x'))).status, 200, 'the mock serves normally afterwards');
    assert.equal((await lastCall({ model })).fault, undefined);
  });

  test('latencyMs longer than the client waits: the client gives up first and the call is marked abandoned', T, async () => {
    const model = fresh();
    await client.script({ model, latencyMs: 5000, times: 1 });
    const done = doneOf(model);
    await assert.rejects(
      fetch(`${mock.url}/v1beta/models/${model}:generateContent`, {
        method: 'POST',
        headers: { 'x-goog-api-key': KEY },
        body: JSON.stringify(ask('x')),
        signal: AbortSignal.timeout(150),
      }),
      { name: 'TimeoutError' },
    );
    const c = await done;
    assert.equal(c.status, null, 'the mock never answered');
    assert.equal(c.response, undefined);
    const after = c.abandonedAt - c.at;
    assert.ok(after >= 100 && after < 4000, `abandoned ${after} ms after arrival`);
    // A caller that waits gets the answer once the latency is over.
    await client.script({ model, latencyMs: 120, times: 1 });
    const started = Date.now();
    assert.equal((await generate(model, ask('x'))).status, 200);
    assert.ok(Date.now() - started >= 120);
    assert.equal((await lastCall({ model })).abandonedAt, undefined);
  });

  test('bodyStallMs sends the headers and half the answer, then stalls; a client that leaves is recorded', T, async () => {
    const model = fresh();
    await client.script({ model, bodyStallMs: 5000, times: 1 });
    const done = doneOf(model);
    const res = await fetch(`${mock.url}/v1beta/models/${model}:generateContent`, {
      method: 'POST',
      headers: { 'x-goog-api-key': KEY },
      body: JSON.stringify(ask('x')),
    });
    assert.equal(res.status, 200, 'the headers come at once');
    const length = Number(res.headers.get('content-length'));
    const reader = res.body.getReader();
    let received = 0;
    while (received < Math.floor(length / 2)) {
      const { value, done: ended } = await reader.read();
      assert.ok(!ended, 'the body does not end before its second half');
      received += value.length;
    }
    assert.equal(received, Math.floor(length / 2), 'only the first half arrives');
    await reader.cancel();
    const c = await done;
    assert.equal(typeof c.abandonedAt, 'number', 'the client left mid-answer');
    // A caller that waits gets the whole answer, bodyStallMs later.
    await client.script({ model, bodyStallMs: 80, times: 1 });
    const started = Date.now();
    const whole = await generate(model, ask('x'));
    assert.equal(whole.status, 200);
    assert.ok(whole.json.candidates[0].content.parts.length > 0, JSON.stringify(whole.json));
    assert.ok(Date.now() - started >= 80);
    assert.equal((await lastCall({ model })).abandonedAt, undefined);
  });

  test('/__mock/wait resolves when a call finishes, and reports an unfinished one at its timeout', T, async () => {
    const model = fresh();
    await client.script({ model, eventDelayMs: 300, times: 1 });
    const res = await fetch(`${mock.url}/v1beta/models/${model}:streamGenerateContent?alt=sse`, {
      method: 'POST',
      headers: { 'x-goog-api-key': KEY },
      body: JSON.stringify(ask('one two three four five six')),
    });
    const [call] = await client.calls({ model });
    const early = await client.waitFinished(call.seq, 50);
    assert.equal(early.finished, false, 'the stream is still going');
    assert.equal(early.call.finishedAt, undefined);
    const [waited] = await Promise.all([client.waitFinished(call.seq, 10_000), res.text()]);
    assert.equal(waited.finished, true);
    assert.equal(typeof waited.call.finishedAt, 'number');
    assert.ok(waited.call.eventTimes.length >= 3);
    // Already finished: at once. Unknown or missing seq: an error.
    assert.equal((await client.waitFinished(call.seq, 0)).finished, true);
    await assert.rejects(client.waitFinished(999_999, 10), /no call 999999/);
    await assert.rejects(client.waitFinished(undefined, 10), /seq/);
  });

  test('flaky: the fault share follows rate over many bodies; each fault behaves as named', { timeout: 30_000 }, async () => {
    const model = fresh();
    const SLOW_MS = 40;
    await client.script({ model, flaky: { rate: 0.3, faults: FOUR, seed: 11, slowMs: SLOW_MS } });
    const N = 600;
    const results = await pool(N, 30, async (i) => {
      const started = Date.now();
      const r = await attempt(model, ask(`rate body ${i}`));
      return { ...r, ms: Date.now() - started };
    });
    const calls = await client.calls({ model });
    assert.equal(calls.length, N);
    const byText = new Map(calls.map((c) => [c.body.contents[0].parts[0].text, c]));
    const counts = Object.fromEntries(FOUR.map((f) => [f, 0]));
    for (const [i, r] of results.entries()) {
      const c = byText.get(`rate body ${i}`);
      assert.equal(c.flaky.attempt, 0, 'each body was sent once');
      assert.equal(c.flaky.fault ?? undefined, c.fault, 'the call records the fault it got');
      if (c.fault) counts[c.fault] += 1;
      if (c.fault === 'server_500') assert.equal(r.status, 500);
      else if (c.fault === 'server_503') assert.equal(r.status, 503);
      else if (c.fault === 'drop') assert.ok(r.network, `body ${i} was dropped: ${JSON.stringify(r)}`);
      else assert.equal(r.status, 200, `body ${i} (${c.fault ?? 'no fault'})`);
      if (c.fault === 'slow') assert.ok(r.ms >= SLOW_MS, `a slow call answered after ${r.ms} ms`);
    }
    const faulted = Object.values(counts).reduce((a, b) => a + b, 0);
    const share = faulted / N;
    // 600 draws at p = 0.3: one standard deviation is 0.019.
    assert.ok(Math.abs(share - 0.3) < 0.06, `fault share ${share} (${JSON.stringify(counts)})`);
    for (const f of FOUR) assert.ok(counts[f] > N * 0.3 * 0.25 * 0.5, `${f} drawn ${counts[f]} times (${JSON.stringify(counts)})`);
  });

  test('flaky: never more than maxPerRequest faults for one body; other bodies start afresh', T, async () => {
    const model = fresh();
    await client.script({ model, flaky: { rate: 1, faults: ['server_500'], maxPerRequest: 2 } });
    const statuses = [];
    for (let i = 0; i < 5; i += 1) statuses.push((await generate(model, ask('same body'))).status);
    assert.deepEqual(statuses, [500, 500, 200, 200, 200]);
    assert.equal((await generate(model, ask('another body'))).status, 500, 'a new body is a new request');
    const calls = await client.calls({ model });
    assert.deepEqual(calls.map((c) => c.flaky.attempt), [0, 1, 2, 3, 4, 0]);
    assert.equal(new Set(calls.slice(0, 5).map((c) => c.flaky.request)).size, 1, 'one request id per body');
    assert.notEqual(calls[5].flaky.request, calls[0].flaky.request);

    // At rate 0.5 over 6 attempts, bodies hit the cap; none goes past it.
    const capped = fresh();
    await client.script({ model: capped, flaky: { rate: 0.5, faults: ['server_503', 'drop'], maxPerRequest: 1, seed: 3 } });
    await pool(80, 20, async (i) => {
      for (let n = 0; n < 6; n += 1) await attempt(capped, ask(`capped ${i}`));
    });
    const perBody = new Map();
    for (const c of await client.calls({ model: capped })) {
      const text = c.body.contents[0].parts[0].text;
      perBody.set(text, [...(perBody.get(text) ?? []), c]);
    }
    assert.equal(perBody.size, 80);
    const faultsOf = (cs) => cs.filter((c) => c.fault).length;
    for (const [text, cs] of perBody) assert.ok(faultsOf(cs) <= 1, `${text}: ${faultsOf(cs)} faults`);
    const lateFirstFault = [...perBody.values()].filter((cs) => cs.findIndex((c) => c.fault) > 0).length;
    assert.ok(lateFirstFault > 0, 'some bodies got their fault on a later attempt (the cap was reached, not just luck)');
    const capHit = [...perBody.values()].filter((cs) => faultsOf(cs) === 1).length;
    assert.ok(capHit > 70, `at rate 0.5 over 6 attempts nearly every body reaches the cap (${capHit}/80)`);
  });

  test('flaky: the same seed and bodies give the same faults, whatever the order; another seed differs', { timeout: 20_000 }, async () => {
    const run = async (seed, order) => {
      const model = fresh();
      await client.script({ model, flaky: { rate: 0.4, faults: ['server_500', 'server_503'], maxPerRequest: 2, seed } });
      for (const i of order) {
        for (let n = 0; n < 3; n += 1) await generate(model, ask(`determinism ${i}`));
      }
      const byBody = {};
      for (const c of await client.calls({ model })) {
        const text = c.body.contents[0].parts[0].text;
        (byBody[text] ??= []).push(c.fault ?? null);
      }
      return byBody;
    };
    const ids = Array.from({ length: 40 }, (_, i) => i);
    const a = await run(7, ids);
    const b = await run(7, [...ids].reverse());
    const c = await run(8, ids);
    assert.deepEqual(b, a, 'same seed, same bodies: same faults per body and attempt');
    assert.notDeepEqual(c, a, 'another seed draws differently');
    assert.ok(Object.values(a).flat().some(Boolean), 'some faults were drawn');
  });

  test('flaky: a drawn rate_limit_minute is Google\'s per-minute 429 with the rule\'s retryDelay; spare keys never draw it, nor a long run', { timeout: 30_000 }, async () => {
    const model = fresh();
    const SPARE = 'spare-key-0001';
    await client.script({
      model,
      retryDelay: '1s',
      flaky: { rate: 0.5, faults: ['rate_limit_minute', 'server_503'], seed: 5, spareKeys: [SPARE] },
    });
    const N = 200;
    const results = await pool(N, 20, async (i) => ({
      other: await generate(model, ask(`quota body ${i}`)),
      spare: await generate(model, ask(`quota body ${i}`), { key: SPARE }),
    }));
    const calls = await client.calls({ model });
    assert.equal(calls.length, 2 * N);
    const count = (key, fault) => calls.filter((c) => c.key === key && c.fault === fault).length;
    for (const r of results) {
      if (r.other.status !== 429) continue;
      assert.equal(r.other.json.error.status, 'RESOURCE_EXHAUSTED');
      const details = r.other.json.error.details;
      const quota = details.find((d) => d['@type'] === 'type.googleapis.com/google.rpc.QuotaFailure');
      assert.match(quota.violations[0].quotaId, /PerMinute/);
      const retry = details.find((d) => d['@type'] === 'type.googleapis.com/google.rpc.RetryInfo');
      assert.equal(retry.retryDelay, '1s');
    }
    assert.ok(count(KEY, 'rate_limit_minute') > N * 0.5 * 0.5 * 0.5, `an ordinary key drew ${count(KEY, 'rate_limit_minute')} quota 429s`);
    assert.equal(count(SPARE, 'rate_limit_minute'), 0, 'a spare key never draws a quota fault');
    assert.ok(results.every((r) => r.spare.status !== 429));
    // It still fails, with the faults that leave a key in rotation, but never
    // more than SPARE_RUN (2) times in a row: at rate 0.5 that is 3/7 of its calls.
    const spareShare = count(SPARE, 'server_503') / N;
    assert.ok(Math.abs(spareShare - 3 / 7) < 0.1, `the spare key failed ${spareShare} of its calls`);
    let run = 0;
    let longest = 0;
    for (const c of calls.filter((x) => x.key === SPARE)) {
      run = c.fault ? run + 1 : 0;
      longest = Math.max(longest, run);
    }
    assert.equal(longest, 2, 'a spare key fails at most twice in a row');
    await assert.rejects(client.script({ model: fresh(), flaky: { rate: 0.1, faults: ['drop'], spareKeys: [''] } }), /spareKeys/);
  });

  test('flaky: slow answers successfully after slowMs; a client that gives up first abandons it', T, async () => {
    const model = fresh();
    await client.script({ model, flaky: { rate: 1, faults: ['slow'], maxPerRequest: 1, slowMs: 3000 } });
    const done = doneOf(model);
    await assert.rejects(
      fetch(`${mock.url}/v1beta/models/${model}:generateContent`, {
        method: 'POST',
        headers: { 'x-goog-api-key': KEY },
        body: JSON.stringify(ask('slow one')),
        signal: AbortSignal.timeout(150),
      }),
      { name: 'TimeoutError' },
    );
    const c = await done;
    assert.equal(c.fault, 'slow');
    assert.equal(c.status, null);
    assert.equal(typeof c.abandonedAt, 'number');
    // Same body again: the one allowed fault is spent, so it is served at once.
    const started = Date.now();
    const r = await generate(model, ask('slow one'));
    assert.equal(r.status, 200);
    assert.ok(Date.now() - started < 2000);
    assert.equal(r.json.candidates[0].content.parts.at(-1).text, 'echo: slow one');

    const waited = fresh();
    await client.script({ model: waited, flaky: { rate: 1, faults: ['slow'], slowMs: 100 } });
    const t0 = Date.now();
    const ok = await generate(waited, ask('wait for it'));
    assert.equal(ok.status, 200);
    assert.ok(Date.now() - t0 >= 100);
    const w = await lastCall({ model: waited });
    assert.equal(w.fault, 'slow');
    assert.equal(w.status, 200);
  });

  test('flaky rules are validated like every rule field; the rule lists its spec', T, async () => {
    const bad = [
      [{ flaky: { rate: 1.5, faults: ['drop'] } }, /flaky.rate/],
      [{ flaky: { rate: 0.3 } }, /flaky.faults/],
      [{ flaky: { rate: 0.3, faults: ['server_502'] } }, /unknown flaky fault/],
      [{ flaky: { rate: 0.3, faults: ['slow'] } }, /slowMs/],
      [{ flaky: { rate: 0.3, faults: ['drop'], maxPerRequst: 2 } }, /unknown flaky field/],
      [{ flaky: { rate: 0.3, faults: ['drop'], maxPerRequest: 1.5 } }, /maxPerRequest/],
      [{ flaky: { rate: 0.3, faults: ['drop'], seed: 'x' } }, /seed/],
      [{ flaky: [] }, /flaky must be a JSON object/],
      [{ fault: 'slow' }, /unknown fault "slow"/],
      [{ latencyMs: -5 }, /latencyMs/],
      [{ bodyStallMs: 0 }, /bodyStallMs/],
      [{ bodyStallMs: 'long' }, /bodyStallMs/],
    ];
    for (const [spec, message] of bad) await assert.rejects(client.script(spec), message, JSON.stringify(spec));
    const model = fresh();
    const spec = { rate: 0.2, faults: ['drop', 'slow'], maxPerRequest: 2, seed: 1, slowMs: 10 };
    const rule = await client.script({ model, flaky: spec });
    assert.deepEqual(rule, { id: rule.id, model, flaky: spec });
    const { rules } = await (await fetch(`${mock.url}/__mock/scripts`)).json();
    assert.deepEqual(rules.find((r) => r.id === rule.id), rule, 'no decision state leaks into the listing');
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

  test('each call records when it started (at) and ended (finishedAt), whatever the ending', T, async () => {
    const model = fresh();
    const done = (pred) => new Promise((resolve) => {
      const on = (c) => {
        if (!pred(c)) return;
        mock.state.off('done', on);
        resolve(c);
      };
      mock.state.on('done', on);
    });

    // A slow success: the span covers the scripted latency.
    await client.script({ model, latencyMs: 60, times: 1 });
    const before = Date.now();
    const slowDone = done((c) => c.model === model && c.fault === undefined);
    assert.equal((await generate(model, ask('slow'))).status, 200);
    const slow = await slowDone;
    assert.ok(slow.at >= before && slow.at <= slow.finishedAt, JSON.stringify(slow));
    assert.ok(slow.finishedAt - slow.at >= 60, `span ${slow.finishedAt - slow.at} ms`);

    // A stream: it ends after its last event.
    await client.script({ model, eventDelayMs: 20, times: 1 });
    const streamDone = done((c) => c.model === model && c.action === 'streamGenerateContent');
    await (await generate(model, ask('a b c d e f'), { action: 'streamGenerateContent', query: '?alt=sse' })).text;
    const stream = await streamDone;
    assert.ok(stream.eventTimes.length >= 3);
    assert.ok(stream.at <= stream.eventTimes[0] && stream.lastEventSentAt <= stream.finishedAt, JSON.stringify(stream));

    // A fault and a client that gives up: both still get an end time.
    await client.script({ model, fault: 'server_500', times: 1 });
    const faultDone = done((c) => c.model === model && c.fault === 'server_500');
    assert.equal((await generate(model, ask('x'))).status, 500);
    const fault = await faultDone;
    assert.ok(fault.finishedAt >= fault.at);

    await client.script({ model, latencyMs: 5_000, times: 1 });
    const abandonedDone = done((c) => c.model === model && c.abandonedAt);
    await assert.rejects(fetch(`${mock.url}/v1beta/models/${model}:generateContent`, {
      method: 'POST',
      headers: { 'x-goog-api-key': KEY, 'content-type': 'application/json' },
      body: JSON.stringify(ask('x')),
      signal: AbortSignal.timeout(50),
    }));
    const abandoned = await abandonedDone;
    // `at` is taken once the body is read, which a loaded machine delays, so
    // only the order and the cut-short span are certain.
    assert.ok(abandoned.finishedAt >= abandoned.at && abandoned.finishedAt < abandoned.at + 5_000, JSON.stringify(abandoned));
    assert.ok(abandoned.finishedAt >= abandoned.abandonedAt, JSON.stringify(abandoned));

    // The control endpoint lists both times.
    for (const c of await client.calls({ model })) {
      assert.equal(typeof c.at, 'number');
      assert.equal(typeof c.finishedAt, 'number', `call ${c.seq} has no finishedAt`);
      assert.ok(c.finishedAt >= c.at);
    }
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

    // Any account without a state prefix is a paid standard-tier user, already onboarded.
    const load = await internal('loadCodeAssist', at, { metadata: { pluginType: 'GEMINI' } });
    assert.equal(load.json.currentTier.id, 'standard-tier');
    assert.equal(load.json.cloudaicompanionProject, 'mock-project-carol');
    assert.deepEqual(load.json.allowedTiers.map((t) => [t.id, t.isDefault]), [['standard-tier', true]]);
    const onboard = await internal('onboardUser', at, { tierId: 'standard-tier', metadata: { pluginType: 'GEMINI' } });
    assert.equal(onboard.json.done, true);
    assert.equal(onboard.json.response.cloudaicompanionProject.id, 'mock-project-carol');
  });

  test('bearer tokens not issued by /token, or revoked, are 401 UNAUTHENTICATED', T, async () => {
    const body = { model: 'gemini-2.5-flash', project: 'mock-project-erin', request: ask('x') };
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

// ---------------------------------------------------------------- schema rules

/** The 400 message of a request the mock must reject. */
async function rejected(model, body) {
  const r = await generate(model, body);
  assert.equal(r.status, 400, r.text);
  assert.equal(r.json.error.status, 'INVALID_ARGUMENT');
  return r.json.error.message;
}

async function accepted(model, body) {
  const r = await generate(model, body);
  assert.equal(r.status, 200, r.text);
  return r.json;
}

const withFunctions = (declarations, extra = {}) => ask('x', { tools: [{ functionDeclarations: declarations }], ...extra });
const FN = '* GenerateContentRequest.tools[0].function_declarations';
const GC = '* GenerateContentRequest.generation_config';

describe('schema rules: OpenAPI subset (parameters, response, responseSchema)', () => {
  test('every violation is reported, one line each, with Google\'s paths', T, async () => {
    const parameters = {
      type: 'OBJECT',
      properties: {
        city: { type: 'ARRAY' },
        when: { type: 'STRING', format: 'date' },
        count: { type: 'INTEGER', enum: ['1'], format: 'float' },
        note: { description: 'no type' },
        nested: { type: 'OBJECT', properties: {} },
        choice: { anyOf: [{ type: 'STRING' }, { description: 'untyped branch' }] },
      },
      required: ['city', 'country'],
      propertyOrdering: ['when', 'zip'],
    };
    const message = await rejected(fresh(), withFunctions([{ name: 'ok' }, { name: 'weather', parameters }]));
    const at = `${FN}[1].parameters`;
    assert.equal(
      message,
      `${at}.required[1]: property is not defined\n` +
        `${at}.property_ordering[1]: property is not defined\n` +
        `${at}.properties[city].items: missing field.\n` +
        `${at}.properties[when].format: only 'enum' and 'date-time' are supported for STRING type\n` +
        `${at}.properties[count].enum: only allowed for STRING type\n` +
        `${at}.properties[count].format: only 'int32' and 'int64' are supported for INTEGER type\n` +
        `${at}.properties[note].type: must be specified\n` +
        `${at}.properties[nested].properties: should be non-empty for OBJECT type\n` +
        `${at}.properties[choice].any_of[1].type: must be specified\n`,
    );
  });

  test('formats per type; response and responseSchema are checked the same way', T, async () => {
    const message = await rejected(fresh(), withFunctions(
      [{ name: 'f', response: { type: 'BOOLEAN', format: 'bool' } }],
      { generationConfig: { responseMimeType: 'application/json', responseSchema: { type: 'OBJECT', properties: { x: { type: 'NUMBER', format: 'int32' } } } } },
    ));
    assert.equal(
      message,
      `${FN}[0].response.format: format is not supported for BOOLEAN type\n` +
        `${GC}.response_schema.properties[x].format: only 'float' and 'double' are supported for NUMBER type\n`,
    );
    await accepted(fresh(), ask('x', {
      generationConfig: {
        responseMimeType: 'application/json',
        responseSchema: {
          type: 'object',
          properties: {
            at: { type: 'string', format: 'date-time' },
            kind: { type: 'string', format: 'enum', enum: ['a', 'b'] },
            n: { type: 'integer', format: 'int64' },
            x: { type: 'number', format: 'double' },
            list: { type: 'array', items: { type: 'string' } },
            either: { anyOf: [{ type: 'string' }, { type: 'integer' }] },
          },
          required: ['at'],
          propertyOrdering: ['n', 'at'],
        },
      },
    }));
  });
});

describe('schema rules: JSON Schema (parametersJsonSchema, responseJsonSchema)', () => {
  test('J0: only Gemini 2.5, Gemini 3 and the -latest aliases accept JSON Schema fields', T, async () => {
    const declarations = [{ name: 'f', parametersJsonSchema: { type: 'object', properties: { a: { type: 'string' } } } }];
    assert.equal(
      await rejected(fresh('gemini-2.0-flash'), withFunctions(declarations)),
      `parameters_json_schema is not supported for models/gemini-2.0-flash-t${freshCounter}. Use parameters instead.`,
    );
    assert.equal(
      await rejected('gemma-3-27b-it', ask('x', { generationConfig: { responseMimeType: 'application/json', responseJsonSchema: { type: 'string' } } })),
      'response_json_schema is not supported for models/gemma-3-27b-it. Use response_schema instead.',
    );
    assert.equal(
      await rejected('gemini-2.0-flash', withFunctions([{ name: 'f', responseJsonSchema: { type: 'string' } }])),
      'response_json_schema is not supported for models/gemini-2.0-flash. Use response instead.',
    );
    for (const model of [fresh(), fresh('gemini-3-pro-preview'), 'gemini-flash-latest', 'gemini-pro-latest']) {
      await accepted(model, withFunctions(declarations));
    }
  });

  test('J1-J4: object roots, local $refs, JSON Schema type names, object parameters', T, async () => {
    const declarations = [
      { name: 'a', parametersJsonSchema: ['not', 'an', 'object'] },
      { name: 'b', parametersJsonSchema: { type: 'string' } },
      {
        name: 'c',
        parametersJsonSchema: {
          type: 'object',
          properties: {
            good: { $ref: '#/$defs/Good' },
            old: { $ref: '#/definitions/Old' },
            self: { $ref: '#' },
            dangling: { $ref: '#/$defs/Missing' },
            remote: { $ref: 'https://example.com/schema.json' },
            typo: { type: 'strin' },
            list: { type: ['string', 'nil'] },
            number: 5,
            anything: true,
          },
          $defs: { Good: { type: 'string' } },
          definitions: { Old: { type: ['integer', 'null'] } },
        },
      },
    ];
    const at = `${FN}[2].parameters_json_schema.properties`;
    assert.equal(
      await rejected(fresh(), withFunctions(declarations)),
      `${FN}[0].parameters_json_schema: must be a JSON object\n` +
        `${FN}[1].parameters_json_schema.type: the root schema of function parameters must be of type "object"\n` +
        `${at}[dangling].$ref: reference "#/$defs/Missing" does not resolve within this schema\n` +
        `${at}[remote].$ref: reference "https://example.com/schema.json" does not resolve within this schema\n` +
        `${at}[typo].type: invalid type "strin"; must be one of string, number, integer, boolean, array, object, null or a list of them\n` +
        `${at}[list].type: invalid type "nil"; must be one of string, number, integer, boolean, array, object, null or a list of them\n` +
        `${at}[number]: must be a JSON object or a boolean\n`,
    );
  });

  test('J5: a schema in both forms is rejected; keywords Gemini ignores are accepted', T, async () => {
    const both = await rejected(fresh(), withFunctions(
      [{ name: 'f', parameters: { type: 'OBJECT', properties: { a: { type: 'STRING' } } }, parametersJsonSchema: { type: 'object' } }],
      { generationConfig: { responseMimeType: 'application/json', responseSchema: { type: 'STRING' }, responseJsonSchema: { type: 'string' } } },
    ));
    assert.equal(
      both,
      `${FN}[0]: only one of parameters and parameters_json_schema may be set\n` +
        `${GC}: only one of response_schema and response_json_schema may be set\n`,
    );
    // A root that is only a $ref (Pydantic, zod-to-json-schema) counts with its target's type.
    const rooted = { $ref: '#/definitions/Args', definitions: { Args: { type: 'object', properties: { q: { type: 'string' } } } } };
    await accepted(fresh(), withFunctions([{ name: 'search', parametersJsonSchema: rooted }]));
    await accepted(fresh(), withFunctions([{
      name: 'fetch_url',
      parametersJsonSchema: {
        $schema: 'https://json-schema.org/draft/2020-12/schema',
        type: 'object',
        properties: { url: { type: 'string', format: 'uri' }, mode: { const: 'fast' }, extra: { type: 'object' } },
        required: ['url'],
        additionalProperties: false,
      },
    }]));
  });
});

describe('generationConfig: response MIME type, schema and function names/turns', () => {
  test('responseMimeType must be one Google allows; a schema needs JSON or text/x.enum', T, async () => {
    assert.equal(
      await rejected(fresh(), ask('x', { generationConfig: { responseMimeType: 'image/png' } })),
      `${GC}.response_mime_type: allowed mimetypes are text/plain, application/json, application/xml, application/yaml and text/x.enum.\n`,
    );
    for (const responseMimeType of ['text/plain', undefined]) {
      assert.equal(
        await rejected(fresh(), ask('x', { generationConfig: { responseMimeType, responseSchema: { type: 'STRING' } } })),
        `${GC}.response_mime_type: must be application/json or text/x.enum when a response schema is set\n`,
      );
    }
    assert.equal(
      await rejected(fresh(), ask('x', { generationConfig: { responseMimeType: 'text/x.enum', responseSchema: { type: 'INTEGER' } } })),
      `${GC}.response_mime_type: text/x.enum requires a response schema of type STRING with enum values\n`,
    );
    for (const responseMimeType of ['application/xml', 'application/yaml', 'text/plain']) {
      await accepted(fresh(), ask('x', { generationConfig: { responseMimeType } }));
    }
  });

  test('text/x.enum replies with the first enum value as plain text', T, async () => {
    const generationConfig = { responseMimeType: 'text/x.enum', responseSchema: { type: 'STRING', enum: ['Positive', 'Negative'] } };
    const json = await accepted(fresh(), ask('I like it', { generationConfig }));
    assert.equal(json.candidates[0].content.parts.at(-1).text, 'Positive');
    const viaJson = { responseMimeType: 'text/x.enum', responseJsonSchema: { type: 'string', enum: ['yes', 'no'] } };
    assert.equal((await accepted(fresh(), ask('x', { generationConfig: viaJson }))).candidates[0].content.parts.at(-1).text, 'yes');
  });

  test('function names must match Google\'s pattern', T, async () => {
    const invalid =
      'Invalid function name. Must start with a letter or an underscore. Must be alphameric (a-z, A-Z, 0-9), ' +
      'underscores (_), dots (.), colons (:), or dashes (-), with a maximum length of 64.';
    const names = ['get_weather', '_x', 'ns.tool:v1-b', 'a'.repeat(64), '9lives', 'has space', 'a'.repeat(65), ''];
    const message = await rejected(fresh(), withFunctions(names.map((name) => ({ name }))));
    assert.equal(message, [4, 5, 6, 7].map((i) => `${FN}[${i}].name: ${invalid}\n`).join(''));
  });

  test('a functionResponse turn must answer every functionCall of the turn before it', T, async () => {
    const call = (name) => ({ functionCall: { name, args: {} } });
    const answer = (name) => ({ functionResponse: { name, response: { ok: true } } });
    const turns = (responses) => ({
      contents: [
        { role: 'user', parts: [{ text: 'two cities' }] },
        { role: 'model', parts: [call('a'), call('b')] },
        { role: 'user', parts: responses },
      ],
    });
    assert.equal(
      await rejected(fresh(), turns([answer('a')])),
      'Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.',
    );
    await accepted(fresh(), turns([answer('a'), answer('b')]));
    await accepted(fresh(), turns([{ text: 'never mind' }]));
  });
});

// ---------------------------------------------------------------- schema-following replies

/**
 * A small JSON Schema validator (the subset the mock's replies must honour).
 * Returns a list of problems; empty means valid.
 */
function validate(schema, value, root = schema, at = '$') {
  if (schema === true) return [];
  if (schema === false) return [`${at}: false schema`];
  const problems = [];
  const fail = (text) => problems.push(`${at}: ${text}`);
  if (schema.$ref) {
    const target = schema.$ref === '#' ? root : schema.$ref.slice(2).split('/').reduce((node, key) => node[key], root);
    problems.push(...validate(target, value, root, at));
  }
  const typeOk = (t) =>
    t === 'null' ? value === null
      : t === 'array' ? Array.isArray(value)
        : t === 'object' ? value !== null && typeof value === 'object' && !Array.isArray(value)
          : t === 'integer' ? Number.isInteger(value)
            : typeof value === t;
  if (schema.type && !(Array.isArray(schema.type) ? schema.type : [schema.type]).some(typeOk)) fail(`not ${schema.type}`);
  if (schema.enum && !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(value))) fail('not in enum');
  if ('const' in schema && JSON.stringify(schema.const) !== JSON.stringify(value)) fail('not const');
  if (schema.anyOf && !schema.anyOf.some((s) => validate(s, value, root).length === 0)) fail('no anyOf branch');
  if (schema.oneOf && schema.oneOf.filter((s) => validate(s, value, root).length === 0).length !== 1) fail('not exactly one oneOf');
  for (const s of schema.allOf ?? []) problems.push(...validate(s, value, root, at));
  if (typeof value === 'string') {
    if (schema.pattern && !new RegExp(schema.pattern, 'u').test(value)) fail(`pattern ${schema.pattern}`);
    const length = [...value].length;
    if (length < (schema.minLength ?? 0) || length > (schema.maxLength ?? Infinity)) fail('length');
    const formats = {
      'date-time': /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/,
      date: /^\d{4}-\d\d-\d\d$/,
      email: /^[^@\s]+@[^@\s]+\.[a-z]+$/,
      uri: /^[a-z][a-z0-9+.-]*:\/\/\S+$/,
      uuid: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
    };
    if (formats[schema.format] && !formats[schema.format].test(value)) fail(`format ${schema.format}`);
  }
  if (typeof value === 'number') {
    if (value < (schema.minimum ?? -Infinity) || value > (schema.maximum ?? Infinity)) fail('out of range');
    if (value <= (schema.exclusiveMinimum ?? -Infinity) || value >= (schema.exclusiveMaximum ?? Infinity)) fail('out of exclusive range');
    if (schema.multipleOf && Math.abs(value / schema.multipleOf - Math.round(value / schema.multipleOf)) > 1e-9) fail('multipleOf');
  }
  if (Array.isArray(value)) {
    if (value.length < (schema.minItems ?? 0) || value.length > (schema.maxItems ?? Infinity)) fail('item count');
    value.forEach((item, i) => problems.push(...validate(schema.items ?? true, item, root, `${at}[${i}]`)));
  }
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    for (const name of schema.required ?? []) if (!(name in value)) fail(`missing ${name}`);
    for (const [name, v] of Object.entries(value)) {
      const sub = schema.properties?.[name] ?? schema.additionalProperties ?? true;
      problems.push(...validate(sub, v, root, `${at}.${name}`));
    }
  }
  return problems;
}

describe('schema-following replies', () => {
  const RECIPE = {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    type: 'object',
    properties: {
      title: { type: 'string', minLength: 3 },
      summary: { type: 'string', maxLength: 5 },
      code: { type: 'string', minLength: 8 },
      createdAt: { type: 'string', format: 'date-time' },
      day: { type: 'string', format: 'date' },
      author: { $ref: '#/$defs/Person' },
      servings: { type: 'integer', minimum: 2, maximum: 12 },
      rating: { type: 'number', exclusiveMinimum: 4, exclusiveMaximum: 5 },
      odd: { type: 'integer', minimum: 10, multipleOf: 7 },
      tags: { type: 'array', items: { type: 'string', enum: ['quick', 'vegan'] }, minItems: 2, maxItems: 3 },
      none: { type: 'array', items: { type: 'string' }, maxItems: 0 },
      diet: { anyOf: [{ type: 'null' }, { type: 'string', enum: ['omnivore', 'vegetarian'] }] },
      unit: { oneOf: [{ const: 'metric' }, { const: 'imperial' }] },
      nullableCount: { type: ['null', 'integer'], minimum: 3 },
      steps: { type: 'array', items: { $ref: '#/$defs/Step' } },
      meta: { allOf: [{ type: 'object', properties: { a: { type: 'boolean' } }, required: ['a'] }, { properties: { b: { type: 'string', format: 'uuid' } }, required: ['b'] }] },
    },
    required: ['title', 'author', 'steps'],
    additionalProperties: false,
    $defs: {
      Person: {
        type: 'object',
        properties: { name: { type: 'string' }, email: { type: 'string', format: 'email' }, site: { type: 'string', format: 'uri' } },
        required: ['name', 'email'],
        additionalProperties: false,
      },
      Step: {
        type: 'object',
        properties: { text: { type: 'string' }, substeps: { type: 'array', items: { $ref: '#/$defs/Step' } } },
        required: ['text'],
      },
    },
  };

  const jsonConfig = (schema, extra = {}) => ({ generationConfig: { responseMimeType: 'application/json', responseJsonSchema: schema, ...extra } });

  test('responseJsonSchema: a deterministic instance that validates', T, async () => {
    const model = fresh();
    const json = await accepted(model, ask('pancakes', jsonConfig(RECIPE)));
    const text = json.candidates[0].content.parts.at(-1).text;
    const value = JSON.parse(text);
    assert.deepEqual(validate(RECIPE, value), []);
    assert.equal(value.title, 'echo: pancakes', 'the first free-form string carries the echo');
    assert.equal([...value.summary].length, 5);
    assert.ok(value.code.length >= 8);
    assert.equal(value.createdAt, '2025-01-01T00:00:00Z');
    assert.equal(value.day, '2025-01-01');
    assert.match(value.author.email, /@example\.com$/);
    assert.equal(value.servings, 2);
    assert.equal(value.tags.length, 2);
    assert.deepEqual(value.none, []);
    assert.equal(value.diet, 'omnivore', 'first non-null branch, first enum value');
    assert.equal(value.unit, 'metric');
    assert.equal(value.nullableCount, 3);
    assert.equal(value.odd, 14);
    assert.equal(typeof value.meta.a, 'boolean');
    assert.ok(value.steps.length >= 1);
    assert.equal(JSON.stringify(value).includes('substeps'), true, 'recursion is followed a little');
    const again = await accepted(model, ask('pancakes', jsonConfig(RECIPE)));
    assert.equal(again.candidates[0].content.parts.at(-1).text, text, 'deterministic');
  });

  test('strings follow their pattern; the echo goes to the first string it fits', T, async () => {
    const schema = {
      type: 'object',
      properties: {
        code: { type: 'string', pattern: '^[A-Z]{3}$' },
        note: { type: 'string' },
        pin: { type: 'string', pattern: '^[0-9]{4}$' },
        postal: { type: 'string', pattern: '^[0-9A-Z -]{3,10}$', minLength: 5 },
        version: { type: 'string', pattern: '^v\\d+(\\.\\d+){2}(-[a-z]+)?$' },
        slug: { type: 'string', pattern: '^(?:[a-z0-9]+)(?:-[a-z0-9]+)*$' },
        not_space: { type: 'string', pattern: '^[^\\s]+$' },
        contains: { type: 'string', pattern: 'echo' },
      },
      required: ['code', 'note', 'pin', 'postal', 'version', 'slug', 'not_space', 'contains'],
    };
    const value = JSON.parse((await accepted(fresh(), ask('pat', jsonConfig(schema)))).candidates[0].content.parts.at(-1).text);
    assert.deepEqual(validate(schema, value), []);
    assert.equal(value.code, 'AAA');
    assert.equal(value.note, 'echo: pat');
    assert.equal(value.pin, '0000');
  });

  test('recursive $refs ("#" and $defs) end; required recursion is still followed', T, async () => {
    const tree = { type: 'object', properties: { name: { type: 'string' }, children: { type: 'array', items: { $ref: '#' } } }, required: ['name'] };
    const value = JSON.parse((await accepted(fresh(), ask('t', jsonConfig(tree)))).candidates[0].content.parts.at(-1).text);
    assert.deepEqual(validate(tree, value), []);
    const list = {
      $ref: '#/$defs/Node',
      $defs: { Node: { type: 'object', properties: { v: { type: 'integer' }, next: { $ref: '#/$defs/Node' } }, required: ['v'] } },
    };
    const linked = JSON.parse((await accepted(fresh(), ask('l', jsonConfig(list)))).candidates[0].content.parts.at(-1).text);
    assert.deepEqual(validate(list, linked), []);
  });

  test('responseSchema (OpenAPI) with propertyOrdering; no schema keeps {"echo"}', T, async () => {
    const responseSchema = {
      type: 'OBJECT',
      properties: {
        b: { type: 'STRING' },
        a: { type: 'ARRAY', items: { type: 'INTEGER', minimum: 5 }, minItems: '2' },
        c: { type: 'STRING', enum: ['x', 'y'], nullable: true },
        d: { anyOf: [{ type: 'BOOLEAN' }, { type: 'STRING' }] },
      },
      required: ['a'],
      propertyOrdering: ['c', 'a', 'b'],
    };
    const json = await accepted(fresh(), ask('hi', { generationConfig: { responseMimeType: 'application/json', responseSchema } }));
    const text = json.candidates[0].content.parts.at(-1).text;
    assert.equal(text, '{"c":"x","a":[5,5],"b":"echo: hi","d":true}');
    const plain = await accepted(fresh(), ask('hi', { generationConfig: { responseMimeType: 'application/json' } }));
    assert.equal(plain.candidates[0].content.parts.at(-1).text, '{"echo":"hi"}');
  });

  test('every candidate is valid JSON; streams split the JSON across at least 3 events', T, async () => {
    const schema = RECIPE;
    const many = await accepted(fresh(), ask('two', jsonConfig(schema, { candidateCount: 2 })));
    const second = JSON.parse(many.candidates[1].content.parts.at(-1).text);
    assert.deepEqual(validate(schema, second), []);
    assert.equal(second.title, 'echo: two [1]');

    const model = fresh();
    const r = await generate(model, ask('streamed', jsonConfig(schema)), { action: 'streamGenerateContent', query: '?alt=sse' });
    const events = sseEvents(r.text);
    assert.ok(events.length >= 3, `got ${events.length} events`);
    const text = textOf(events);
    assert.deepEqual(validate(schema, JSON.parse(text)), []);
    const whole = await accepted(model, ask('streamed', jsonConfig(schema)));
    assert.equal(text, whole.candidates[0].content.parts.at(-1).text);
  });
});

// ---------------------------------------------------------------- thinking rules

describe('thinking rules', () => {
  test('thinkingLevelsOf and thinkingBudgetRange', T, () => {
    assert.deepEqual(thinkingLevelsOf('gemini-3-pro-preview'), ['LOW', 'HIGH']);
    assert.deepEqual(thinkingLevelsOf('gemini-3.1-pro-preview'), ['LOW', 'MEDIUM', 'HIGH']);
    assert.deepEqual(thinkingLevelsOf('gemini-3-flash-preview'), ['MINIMAL', 'LOW', 'MEDIUM', 'HIGH']);
    assert.deepEqual(thinkingLevelsOf('gemini-3.1-flash-lite-preview'), ['MINIMAL', 'LOW', 'MEDIUM', 'HIGH']);
    assert.deepEqual(thinkingLevelsOf('gemini-3.5-flash'), ['LOW', 'MEDIUM', 'HIGH']);
    assert.deepEqual(thinkingLevelsOf('gemini-2.5-pro'), []);
    assert.deepEqual(thinkingBudgetRange('gemini-2.5-pro'), { min: 128, max: 32768, zero: false });
    assert.deepEqual(thinkingBudgetRange('gemini-2.5-flash-lite'), { min: 512, max: 24576, zero: true });
    assert.deepEqual(thinkingBudgetRange('gemini-2.5-flash'), { min: 0, max: 24576, zero: true });
    assert.deepEqual(thinkingBudgetRange('gemini-flash-latest'), { min: 0, max: 24576, zero: true });
    assert.equal(thinkingBudgetRange('gemini-3-pro-preview'), null);
    assert.equal(thinkingBudgetRange('gemini-2.0-flash'), null);
  });

  const thinking = (thinkingConfig) => ask('x', { generationConfig: { thinkingConfig } });

  test('levels: per model, Gemini 3 only, never with a budget', T, async () => {
    assert.equal(
      await rejected(fresh('gemini-3-pro-preview'), thinking({ thinkingLevel: 'MEDIUM' })),
      'Thinking level MEDIUM is not supported for this model. Please retry with other thinking level.',
    );
    assert.equal(
      await rejected(fresh('gemini-3.1-pro-preview'), thinking({ thinkingLevel: 'minimal' })),
      'Thinking level MINIMAL is not supported for this model. Please retry with other thinking level.',
    );
    await accepted(fresh('gemini-3-pro-preview'), thinking({ thinkingLevel: 'low' }));
    await accepted(fresh('gemini-3.1-pro-preview'), thinking({ thinkingLevel: 'medium' }));
    await accepted(fresh('gemini-3-flash-preview'), thinking({ thinkingLevel: 'minimal' }));
    assert.equal(await rejected(fresh(), thinking({ thinkingLevel: 'LOW' })), 'Thinking level is not supported for this model.');
    assert.equal(
      await rejected(fresh('gemini-3-flash-preview'), thinking({ thinkingLevel: 'LOW', thinkingBudget: 1024 })),
      'You can only set only one of thinking budget and thinking level.',
    );
  });

  test('thinkingConfig on a model that does not think', T, async () => {
    assert.equal(await rejected('gemini-2.0-flash', thinking({ thinkingBudget: 0 })), 'Thinking is not enabled for models/gemini-2.0-flash');
    const gemma = await rejected('gemma-3-27b-it', thinking({ includeThoughts: false }));
    assert.equal(gemma, 'Thinking is not enabled for models/gemma-3-27b-it');
  });

  test('Gemini 2.5 budget ranges (-1 = dynamic always allowed)', T, async () => {
    const cases = [
      ['gemini-2.5-pro', 40000, '128 and 32768'],
      ['gemini-2.5-pro', 100, '128 and 32768'],
      ['gemini-2.5-flash', 24577, '0 and 24576'],
      ['gemini-2.5-flash', -2, '0 and 24576'],
      ['gemini-2.5-flash-lite', 100, '512 and 24576'],
      ['gemini-pro-latest', 32769, '128 and 32768'],
    ];
    for (const [base, budget, range] of cases) {
      // The -latest aliases are matched by exact name, so they are not made fresh.
      const model = base.endsWith('-latest') ? base : fresh(base);
      assert.equal(
        await rejected(model, thinking({ thinkingBudget: budget })),
        `The thinking budget ${budget} is invalid. Please choose a value between ${range}.`,
      );
    }
    for (const [base, budget] of [['gemini-2.5-pro', -1], ['gemini-2.5-pro', 32768], ['gemini-2.5-flash', 0], ['gemini-2.5-flash', 1],
      ['gemini-2.5-flash-lite', 0], ['gemini-2.5-flash-lite', 512], ['gemini-2.5-flash-lite', -1], ['gemini-3-pro-preview', 50000]]) {
      await accepted(fresh(base), thinking({ thinkingBudget: budget }));
    }
    assert.equal(await rejected(fresh('gemini-2.5-pro'), thinking({ thinkingBudget: 0 })), 'Budget 0 is invalid. This model only works in thinking mode.');
  });

  test('thought tokens grow with the level; budgets still cap them', T, async () => {
    const tokens = async (thinkingConfig) =>
      (await accepted(fresh('gemini-3-flash-preview'), thinking(thinkingConfig))).usageMetadata.thoughtsTokenCount;
    const counts = [];
    for (const thinkingLevel of ['MINIMAL', 'LOW', 'MEDIUM', 'HIGH']) counts.push(await tokens({ thinkingLevel }));
    assert.ok(counts.every((n, i) => n > 0 && (i === 0 || n > counts[i - 1])), `increasing: ${counts}`);
    assert.equal(await tokens({ thinkingLevel: 'HIGH' }), counts[3], 'deterministic');
    assert.equal(await tokens({}), counts[2], 'unset counts as MEDIUM');
    assert.equal((await accepted(fresh(), thinking({ thinkingBudget: 3 }))).usageMetadata.thoughtsTokenCount, 3);
    const shown = await accepted(fresh('gemini-3-flash-preview'), thinking({ thinkingLevel: 'LOW', includeThoughts: true }));
    assert.equal(shown.candidates[0].content.parts[0].thought, true);
  });
});

// ---------------------------------------------------------------- logprobs

describe('logprobs', () => {
  const logprobsConfig = (extra) => ({ generationConfig: { responseLogprobs: true, ...extra } });

  /** Checks a candidate's logprobs against its answer text; returns the chosen tokens. */
  function checkLogprobs(candidate, topN) {
    const text = candidate.content.parts.filter((p) => !p.thought).map((p) => p.text).join('');
    const { chosenCandidates, topCandidates } = candidate.logprobsResult;
    assert.equal(chosenCandidates.map((c) => c.token).join(''), text, 'tokens join to the text');
    for (const c of chosenCandidates) {
      assert.ok([...c.token].length <= 4);
      assert.ok(Number.isInteger(c.tokenId) && c.tokenId >= 0);
      assert.ok(c.logProbability < 0);
    }
    const mean = chosenCandidates.reduce((s, c) => s + c.logProbability, 0) / chosenCandidates.length;
    assert.ok(Math.abs(candidate.avgLogprobs - mean) < 1e-9);
    if (topN === 0) {
      assert.equal(topCandidates, undefined);
    } else {
      assert.equal(topCandidates.length, chosenCandidates.length);
      topCandidates.forEach((top, i) => {
        assert.equal(top.candidates.length, topN);
        assert.deepEqual(top.candidates[0], chosenCandidates[i]);
        const probs = top.candidates.map((c) => c.logProbability);
        assert.ok(probs.every((p, k) => k === 0 || p < probs[k - 1]), 'less likely after the chosen one');
        assert.equal(new Set(top.candidates.map((c) => c.token)).size, topN, 'distinct tokens');
      });
    }
    return chosenCandidates;
  }

  test('responseLogprobs adds logprobsResult and avgLogprobs; logprobs N adds N top candidates', T, async () => {
    const model = fresh();
    const json = await accepted(model, ask('tell me about logprobs', logprobsConfig({ logprobs: 20 })));
    const [candidate] = json.candidates;
    assert.deepEqual(Object.keys(candidate), ['content', 'finishReason', 'avgLogprobs', 'logprobsResult', 'index']);
    const first = checkLogprobs(candidate, 20);
    const again = await accepted(model, ask('tell me about logprobs', logprobsConfig({ logprobs: 20 })));
    assert.deepEqual(again.candidates[0].logprobsResult.chosenCandidates, first, 'deterministic');
    checkLogprobs((await accepted(fresh('gemini-2.0-flash-lite'), ask('no top', logprobsConfig()))).candidates[0], 0);
    const off = await accepted(fresh(), ask('x', { generationConfig: { responseLogprobs: false } }));
    assert.equal('logprobsResult' in off.candidates[0], false);
  });

  test('streams carry the logprobs of each event\'s text', T, async () => {
    const r = await generate(fresh('gemini-2.0-flash'), ask('a streamed answer with logprobs', logprobsConfig({ logprobs: 2 })), {
      action: 'streamGenerateContent',
      query: '?alt=sse',
    });
    const events = sseEvents(r.text);
    assert.ok(events.length >= 3);
    for (const event of events) checkLogprobs(event.candidates[0], 2);
  });

  test('logprobs needs responseLogprobs, 0..20, and a model that serves logprobs', T, async () => {
    assert.equal(
      await rejected(fresh(), ask('x', { generationConfig: { logprobs: 3 } })),
      `${GC}.logprobs: can only be set when response_logprobs is true\n`,
    );
    assert.equal(await rejected(fresh(), ask('x', logprobsConfig({ logprobs: 21 }))), `${GC}.logprobs: must be between 0 and 20\n`);
    for (const base of ['gemini-2.5-pro', 'gemini-2.5-flash-lite', 'gemini-3-flash-preview', 'gemini-flash-latest']) {
      const model = base.endsWith('-latest') ? base : fresh(base);
      assert.equal(await rejected(model, ask('x', logprobsConfig())), `Logprobs is not enabled for models/${model}`);
    }
    await accepted(fresh('gemini-2.0-flash-001'), ask('x', logprobsConfig({ logprobs: 0 })));
  });
});

// ---------------------------------------------------------------- media endpoint

describe('media endpoint', () => {
  const media = (query = '', init = {}) => fetch(`${mock.url}/media/${init.name ?? 'img'}${query}`, init);
  const mediaCalls = (name) => client.calls({ action: 'media' }).then((calls) => calls.filter((c) => c.path === `/media/${name}`));

  test('defaults: image/png, 256 bytes, PNG magic, recorded as action media', T, async () => {
    const name = `default-${fresh()}.png`;
    const res = await media('', { name });
    const body = Buffer.from(await res.arrayBuffer());
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'image/png');
    assert.equal(res.headers.get('content-length'), '256');
    assert.deepEqual(body, mediaBytes({ type: 'image/png', bytes: 256 }));
    assert.deepEqual(body.subarray(0, 8), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    assert.equal(body[8], (8 * 7 + 3) % 256, 'padding byte i is (i * 7 + 3) % 256');
    const [c] = await mediaCalls(name);
    assert.equal(c.method, 'GET');
    assert.equal(c.status, 200);
    assert.deepEqual(c.media, { contentType: 'image/png', bytes: 256 });
    assert.equal(typeof c.finishedAt, 'number');
    assert.deepEqual(mediaBytes(), libMediaBytes({ type: 'image/png', bytes: 256 }), 'the same helper in lib/');
  });

  test('magic bytes per type; type=none; body= picks the bytes; tiny bodies cut the magic', T, async () => {
    const starts = {
      'image/jpeg': [0xff, 0xd8, 0xff],
      'image/gif': [...Buffer.from('GIF89a')],
      'image/webp': [...Buffer.from('RIFF'), 92, 0, 0, 0, ...Buffer.from('WEBPVP8 ')],
      'application/pdf': [...Buffer.from('%PDF-')],
    };
    for (const [type, magic] of Object.entries(starts)) {
      const res = await media(`?type=${encodeURIComponent(type)}&bytes=100`);
      const body = Buffer.from(await res.arrayBuffer());
      assert.equal(res.headers.get('content-type'), type);
      assert.deepEqual([...body.subarray(0, magic.length)], magic, type);
      assert.deepEqual(body, mediaBytes({ type, bytes: 100 }));
    }
    const bare = await media('?type=none&bytes=16');
    assert.equal(bare.headers.get('content-type'), null);
    assert.deepEqual(Buffer.from(await bare.arrayBuffer()), mediaBytes({ type: 'image/png', bytes: 16 }));
    const octet = await media('?type=application/octet-stream&body=image/gif&bytes=10');
    assert.equal(octet.headers.get('content-type'), 'application/octet-stream');
    assert.deepEqual(Buffer.from(await octet.arrayBuffer()), mediaBytes({ type: 'image/gif', bytes: 10 }));
    assert.deepEqual([...mediaBytes({ type: 'image/png', bytes: 3 })], [0x89, 0x50, 0x4e]);
    assert.equal(mediaBytes({ type: 'text/plain', bytes: 2 }).toString('hex'), '030a');
  });

  test('chunked=1 drops Content-Length; status= and redirect=', T, async () => {
    const chunked = await media('?chunked=1&bytes=1000');
    assert.equal(chunked.headers.get('content-length'), null);
    assert.equal(chunked.headers.get('transfer-encoding'), 'chunked');
    assert.equal((await chunked.arrayBuffer()).byteLength, 1000);

    const missing = await media('?status=404');
    assert.equal(missing.status, 404);
    await missing.arrayBuffer();

    const name = `hop-${fresh()}`;
    const target = `/media/${name}-target?type=image/jpeg&bytes=50`;
    const manual = await media(`?redirect=${encodeURIComponent(target)}`, { name, redirect: 'manual' });
    assert.equal(manual.status, 302);
    assert.equal(manual.headers.get('location'), target);
    const followed = await media(`?redirect=${encodeURIComponent(target)}`, { name });
    assert.equal(followed.headers.get('content-type'), 'image/jpeg');
    assert.deepEqual(Buffer.from(await followed.arrayBuffer()), mediaBytes({ type: 'image/jpeg', bytes: 50 }));
    assert.equal((await mediaCalls(name)).length, 2);
    assert.equal((await mediaCalls(`${name}-target`)).length, 1);

    assert.equal((await media('?bytes=-1')).status, 400);
    assert.equal((await fetch(`${mock.url}/media/x`, { method: 'POST' })).status, 404, 'GET only');
  });

  test('delayMs holds the headers; stallMs stalls after half the body', T, async () => {
    const started = Date.now();
    const delayed = await media('?delayMs=80');
    assert.ok(Date.now() - started >= 75, 'headers only after the delay');
    await delayed.arrayBuffer();

    const res = await media('?stallMs=250&bytes=64');
    assert.equal(res.headers.get('content-length'), '64');
    const reader = res.body.getReader();
    let received = 0;
    while (received < 32) {
      const { value, done } = await reader.read();
      if (done) break;
      received += value.length;
    }
    const halfAt = Date.now();
    assert.equal(received, 32, 'the first half arrives before the stall');
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      received += value.length;
    }
    assert.equal(received, 64);
    assert.ok(Date.now() - halfAt >= 200, 'the second half waits for stallMs');
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

// ---------------------------------------------------------------- images and speech

describe('images and speech', () => {
  test('Imagen :predict returns sampleCount PNGs and checks its parameters', T, async () => {
    const model = fresh('imagen-4.0-generate');
    const ok = await call(`/v1beta/models/${model}:predict`, {
      body: { instances: [{ prompt: 'a red fox' }], parameters: { sampleCount: 2, aspectRatio: '16:9' } },
    });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.predictions.length, 2);
    for (const p of ok.json.predictions) {
      assert.equal(p.mimeType, 'image/png');
      const bytes = Buffer.from(p.bytesBase64Encoded, 'base64');
      assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    }
    const bad = await call(`/v1beta/models/${model}:predict`, {
      body: { instances: [{ prompt: 'x' }], parameters: { sampleCount: 5 } },
    });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.status, 'INVALID_ARGUMENT');
    const ratio = await call(`/v1beta/models/${model}:predict`, {
      body: { instances: [{ prompt: 'x' }], parameters: { aspectRatio: '2:1' } },
    });
    assert.equal(ratio.status, 400);
    // generateContent is not an Imagen method.
    assert.equal((await generate(model, ask('x'))).status, 404);
    // Key conventions apply to predict.
    const limited = await call(`/v1beta/models/${model}:predict`, { key: 'rl-minute-imagen', body: { instances: [{ prompt: 'x' }] } });
    assert.equal(limited.status, 429);
  });

  test('an image model returns an inlineData PNG when IMAGE output is asked for', T, async () => {
    const model = fresh('gemini-2.5-flash-image');
    const res = await generate(model, ask('a blue bird', { generationConfig: { responseModalities: ['TEXT', 'IMAGE'], imageConfig: { aspectRatio: '1:1' } } }));
    assert.equal(res.status, 200, res.text);
    const parts = res.json.candidates[0].content.parts;
    const image = parts.find((p) => p.inlineData);
    assert.equal(image.inlineData.mimeType, 'image/png');
    assert.ok(parts.some((p) => typeof p.text === 'string'));
    assert.ok(res.json.usageMetadata.candidatesTokenCount > 0);
    // IMAGE output from a model that does not draw is refused.
    const refused = await generate(fresh(), ask('x', { generationConfig: { responseModalities: ['TEXT', 'IMAGE'] } }));
    assert.equal(refused.status, 400);
  });

  test('a TTS model returns 24 kHz L16 PCM in the voice asked for, and only AUDIO', T, async () => {
    const model = fresh('gemini-2.5-flash-preview-tts');
    const speech = (voiceName, modalities = ['AUDIO']) => generate(model, ask('hello there world', {
      generationConfig: { responseModalities: modalities, speechConfig: { voiceConfig: { prebuiltVoiceConfig: { voiceName } } } },
    }));
    const res = await speech('Kore');
    assert.equal(res.status, 200, res.text);
    const [part] = res.json.candidates[0].content.parts;
    assert.equal(part.inlineData.mimeType, 'audio/L16;codec=pcm;rate=24000');
    assert.equal(Buffer.from(part.inlineData.data, 'base64').length, 3 * 2400 * 2);
    assert.equal((await speech('Nobody')).status, 400);
    assert.equal((await speech('Kore', ['TEXT'])).status, 400);
  });
});
