// The official Google GenAI SDK, with its base URL set to the worker, calls
// generateContent, generateContentStream, countTokens, embedContent and
// models.list; the mock's record shows each request passed through with
// only the credential swapped. Also the /gemini/v1beta and /v1 prefixes,
// ?key= auth, and both stream framings byte for byte.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '@google/genai';
import { startStack, CLIENT_TOKEN } from '../lib/harness.mjs';
import { genaiClient } from '../lib/clients.mjs';
import { DEFAULT_SAFETY_SETTINGS, REQUEST_TIMEOUT_MS, upstreamCallsDuring } from '../lib/util.mjs';
import { pretty } from '../mock/lib/json.mjs';
import { JSON_ARRAY, SSE } from '../mock/lib/stream.mjs';
import { embeddingValues } from '../mock/lib/tokens.mjs';

const KEYS = ['ok-genai-1', 'ok-genai-2'];

let stack;
let ai;

before(async () => {
  stack = await startStack({ keys: KEYS });
  ai = genaiClient(stack);
});
after(async () => stack?.stop());

/**
 * Runs `fn` (SDK calls) and returns what the SDK sent to the worker and
 * what the worker sent upstream meanwhile. The SDK resolves the global
 * `fetch` per request, so a wrapper sees its exact bodies.
 */
async function traced(fn) {
  const sent = [];
  const original = globalThis.fetch;
  const { result, calls } = await upstreamCallsDuring(stack, async () => {
    globalThis.fetch = (input, init) => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      if (url.startsWith(stack.url)) {
        sent.push({
          url: new URL(url),
          method: init?.method ?? 'GET',
          headers: new Headers(init?.headers),
          body: typeof init?.body === 'string' ? init.body : undefined,
        });
      }
      return original(input, init);
    };
    try {
      return await fn();
    } finally {
      globalThis.fetch = original;
    }
  });
  return { result, sent, calls };
}

/** The one upstream call of a trace, checked for the credential swap. */
function onlyUpstreamCall(calls, action) {
  const matching = calls.filter((c) => c.action === action);
  assert.equal(matching.length, 1, `expected one upstream ${action}; saw ${calls.map((c) => c.action).join(', ')}`);
  const [call] = matching;
  assertCredentialSwapped(call);
  return call;
}

function assertCredentialSwapped(call) {
  assert.ok(KEYS.includes(call.key), `upstream got key ${call.key}, not an upstream key`);
  assert.equal(call.headers['x-goog-api-key'], call.key, 'the upstream key travels in x-goog-api-key');
  assert.equal(call.query.key, undefined, 'a ?key= went upstream');
  assert.equal(call.headers.authorization, undefined, 'an Authorization header went upstream');
  assert.ok(!JSON.stringify(call).includes(CLIENT_TOKEN), 'the client token reached the upstream');
}

/** A generation body as the gateway sends it on: the default safety settings added when it has none. */
const withDefaultSafety = (body) => ({ safetySettings: DEFAULT_SAFETY_SETTINGS, ...body });

/** The SDK's own request body, as JSON. */
function sentBody(sent, pathSuffix) {
  const req = sent.find((s) => s.url.pathname.endsWith(pathSuffix));
  assert.ok(req, `the SDK sent no request ending in ${pathSuffix}: ${sent.map((s) => s.url.pathname)}`);
  assert.equal(req.headers.get('x-goog-api-key'), CLIENT_TOKEN, 'the SDK authenticated with the client token');
  return JSON.parse(req.body);
}

const textOf = (n) => Math.ceil([...n].length / 4);

// ---------------------------------------------------------------- the SDK

test('SDK generateContent: answer comes back, body passed through, key swapped', async () => {
  const model = 'gemini-2.5-flash';
  const { result: res, sent, calls } = await traced(() =>
    ai.models.generateContent({
      model,
      contents: 'hello from the genai sdk',
      config: {
        systemInstruction: 'Be brief.',
        temperature: 0.25,
        topK: 20,
        maxOutputTokens: 300,
        stopSequences: ['NEVER-APPEARS'],
        safetySettings: [{ category: 'HARM_CATEGORY_HARASSMENT', threshold: 'BLOCK_ONLY_HIGH' }],
        thinkingConfig: { thinkingBudget: 0 },
      },
    }));
  assert.equal(res.text, 'echo: hello from the genai sdk');
  assert.equal(res.candidates[0].finishReason, 'STOP');
  assert.equal(sent.length, 1);
  assert.equal(sent[0].url.pathname, `/v1beta/models/${model}:generateContent`);

  const call = onlyUpstreamCall(calls, 'generateContent');
  assert.equal(call.path, `/v1beta/models/${model}:generateContent`);
  assert.deepEqual(call.body, sentBody(sent, ':generateContent'), 'the upstream body differs from what the SDK sent');
  assert.equal(call.body.generationConfig.temperature, 0.25);
  assert.equal(res.usageMetadata.promptTokenCount, call.tokens.prompt);
  assert.equal(res.usageMetadata.totalTokenCount, call.tokens.total);
});

test('SDK generateContentStream: chunks arrive, upstream asked with alt=sse', async () => {
  const model = 'gemini-2.5-flash-genai-stream';
  const prompt = 'stream this reply back to me in several separate pieces please';
  const { result: chunks, sent, calls } = await traced(async () => {
    const out = [];
    for await (const chunk of await ai.models.generateContentStream({ model, contents: prompt })) out.push(chunk);
    return out;
  });
  assert.ok(chunks.length >= 3, `expected several chunks, got ${chunks.length}`);
  assert.equal(chunks.map((c) => c.text ?? '').join(''), `echo: ${prompt}`);
  assert.equal(chunks.at(-1).candidates[0].finishReason, 'STOP');
  assert.equal(new Set(chunks.map((c) => c.responseId)).size, 1, 'one responseId across the stream');

  const call = onlyUpstreamCall(calls, 'streamGenerateContent');
  assert.equal(call.alt, 'sse', 'the upstream stream must be asked for with alt=sse');
  assert.deepEqual(call.query, { alt: 'sse' });
  assert.deepEqual(call.body, withDefaultSafety(sentBody(sent, ':streamGenerateContent')));
  assert.equal(chunks.length, call.chunks.length, 'every upstream chunk reached the SDK');
});

test('SDK countTokens', async () => {
  const model = 'gemini-2.5-pro';
  const text = 'count these tokens for me, please';
  const { result: res, sent, calls } = await traced(() => ai.models.countTokens({ model, contents: text }));
  assert.equal(res.totalTokens, textOf(text));
  const call = onlyUpstreamCall(calls, 'countTokens');
  assert.equal(call.path, `/v1beta/models/${model}:countTokens`);
  assert.deepEqual(call.body, sentBody(sent, ':countTokens'));
});

test('SDK embedContent (one and several contents, outputDimensionality)', async () => {
  const model = 'gemini-embedding-001';
  const texts = ['alpha passage', 'beta passage'];
  const { result: res, sent, calls } = await traced(() =>
    ai.models.embedContent({ model, contents: texts, config: { outputDimensionality: 32 } }));
  assert.equal(res.embeddings.length, 2);
  res.embeddings.forEach((e, i) => {
    assert.equal(e.values.length, 32);
    assert.deepEqual(e.values, embeddingValues(texts[i], 32, false), `embedding ${i} was altered on the way`);
  });
  const call = onlyUpstreamCall(calls, 'batchEmbedContents');
  assert.deepEqual(call.body, sentBody(sent, ':batchEmbedContents'));
  assert.deepEqual(call.body.requests.map((r) => r.outputDimensionality), [32, 32]);

  const one = await ai.models.embedContent({ model, contents: 'a single passage' });
  assert.equal(one.embeddings.length, 1);
  assert.equal(one.embeddings[0].values.length, 3072);
});

test('SDK models.list walks every page through the worker', async () => {
  const catalog = await stack.mockApi.models();
  const pageSize = 5;
  const { result: names, calls } = await traced(async () => {
    const out = [];
    const pager = await ai.models.list({ config: { pageSize } });
    for await (const m of pager) out.push(m.name);
    return out;
  });
  assert.deepEqual(names, catalog.map((m) => m.name), 'the SDK must see the whole catalogue, in order');
  const lists = calls.filter((c) => c.action === 'models.list');
  const pages = Math.ceil(catalog.length / pageSize);
  assert.equal(lists.length, pages, `expected ${pages} upstream pages`);
  lists.forEach((c, i) => {
    assertCredentialSwapped(c);
    assert.equal(c.query.pageSize, String(pageSize), `page ${i + 1}: pageSize not forwarded`);
    assert.equal(Boolean(c.query.pageToken), i > 0, `page ${i + 1}: pageToken`);
  });
});

test('SDK models.get and an SDK-visible 404', async () => {
  const model = await ai.models.get({ model: 'gemini-2.5-pro' });
  assert.equal(model.name, 'models/gemini-2.5-pro');
  assert.equal(model.displayName, 'Gemini 2.5 Pro');
  await assert.rejects(
    ai.models.generateContent({ model: 'no-such-model', contents: 'x' }),
    (e) => e instanceof ApiError && e.status === 404,
  );
});

test('SDK with apiVersion v1: generateContent and models.list go through /v1', async () => {
  const v1 = genaiClient(stack, { apiVersion: 'v1' });
  const catalog = await stack.mockApi.models();
  const { result, calls } = await traced(async () => {
    const res = await v1.models.generateContent({ model: 'gemini-2.5-flash', contents: 'over v1' });
    const names = [];
    for await (const m of await v1.models.list({ config: { pageSize: 10 } })) names.push(m.name);
    return { text: res.text, names };
  });
  assert.equal(result.text, 'echo: over v1');
  assert.deepEqual(result.names, catalog.map((m) => m.name));
  const gen = onlyUpstreamCall(calls, 'generateContent');
  assert.equal(gen.path, '/v1/models/gemini-2.5-flash:generateContent');
  const lists = calls.filter((c) => c.action === 'models.list');
  assert.equal(lists.length, Math.ceil(catalog.length / 10));
  for (const c of lists) {
    assertCredentialSwapped(c);
    assert.equal(c.path, '/v1/models');
  }
});

// ---------------------------------------------------------------- raw routes

/** A raw request to the worker, by default with the client token as x-goog-api-key; bounded in time. */
const native = (method, path, { body, headers = { 'x-goog-api-key': CLIENT_TOKEN } } = {}) =>
  stack.call(method, path, { body, headers, token: null, timeoutMs: REQUEST_TIMEOUT_MS });

/** A raw request, its whole body, and the upstream calls it caused. */
async function rawCall(method, path, opts) {
  const { result, calls } = await upstreamCallsDuring(stack, async () => {
    const res = await native(method, path, opts);
    return { res, text: await res.text() };
  });
  return { ...result, calls };
}

test('generateContent under /v1beta, /gemini/v1beta and /v1, relayed byte for byte', async () => {
  const body = { contents: [{ role: 'user', parts: [{ text: 'which prefix?' }] }], generationConfig: { candidateCount: 1 } };
  for (const [prefix, upstreamVersion] of [['/v1beta', 'v1beta'], ['/gemini/v1beta', 'v1beta'], ['/v1', 'v1']]) {
    const { res, text, calls } = await rawCall('POST', `${prefix}/models/gemini-2.5-flash:generateContent`, { body });
    assert.equal(res.status, 200, `${prefix}: ${text.slice(0, 300)}`);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    const json = JSON.parse(text);
    assert.equal(json.candidates[0].content.parts.at(-1).text, 'echo: which prefix?', prefix);
    // Google's pretty, HTML-safe JSON: proof the body was not re-serialized.
    assert.equal(text, pretty(json), `${prefix}: the response body was rewritten`);
    const [call] = calls;
    assert.equal(calls.length, 1, prefix);
    assertCredentialSwapped(call);
    assert.equal(call.path, `/${upstreamVersion}/models/gemini-2.5-flash:generateContent`, prefix);
    assert.deepEqual(call.body, withDefaultSafety(body), `${prefix}: body changed on the way`);
  }
});

test('?key= authenticates on the native surface and is not forwarded', async () => {
  const text = 'query key auth';
  const { res, text: out, calls } = await rawCall(
    'POST',
    `/v1beta/models/gemini-2.5-flash:countTokens?key=${encodeURIComponent(CLIENT_TOKEN)}`,
    { body: { contents: [{ parts: [{ text }] }] }, headers: {} },
  );
  assert.equal(res.status, 200, out);
  assert.equal(JSON.parse(out).totalTokens, textOf(text));
  assert.equal(calls.length, 1);
  assertCredentialSwapped(calls[0]);
  assert.deepEqual(calls[0].query, {});
});

test('streamGenerateContent without alt=sse relays Google\'s JSON array unchanged', async () => {
  const prompt = 'json array framing, passed through untouched by the gateway';
  const { res, text, calls } = await rawCall('POST', '/v1beta/models/gemini-2.5-flash:streamGenerateContent', {
    body: { contents: [{ role: 'user', parts: [{ text: prompt }] }] },
  });
  assert.equal(res.status, 200, text.slice(0, 300));
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  const call = onlyUpstreamCall(calls, 'streamGenerateContent');
  assert.equal(call.alt, null, 'alt=sse was added upstream');
  assert.ok(call.chunks.length >= 3);
  const expected = call.chunks.map((o, i) => JSON_ARRAY.frame(o, i)).join('') + JSON_ARRAY.trailer(call.chunks.length);
  assert.equal(text, expected, 'the JSON-array stream was altered');
  const parsed = JSON.parse(text);
  assert.ok(Array.isArray(parsed));
  assert.equal(parsed.map((c) => c.candidates[0].content.parts[0].text).join(''), `echo: ${prompt}`);
});

test('streamGenerateContent with alt=sse relays the SSE events unchanged (?key= auth too)', async () => {
  const prompt = 'sse framing, passed through untouched by the gateway';
  const { res, text, calls } = await rawCall(
    'POST',
    `/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=${encodeURIComponent(CLIENT_TOKEN)}`,
    { body: { contents: [{ role: 'user', parts: [{ text: prompt }] }] }, headers: {} },
  );
  assert.equal(res.status, 200, text.slice(0, 300));
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const call = onlyUpstreamCall(calls, 'streamGenerateContent');
  assert.deepEqual(call.query, { alt: 'sse' });
  const expected = call.chunks.map((o, i) => SSE.frame(o, i)).join('') + SSE.trailer(call.chunks.length);
  assert.equal(text, expected, 'the SSE stream was altered');
});

test('embedContent, batchEmbedContents and models.get pass through', async () => {
  const embed = await rawCall('POST', '/v1beta/models/gemini-embedding-001:embedContent', {
    body: { content: { parts: [{ text: 'raw embed' }] }, outputDimensionality: 8, taskType: 'RETRIEVAL_QUERY' },
  });
  assert.equal(embed.res.status, 200, embed.text);
  assert.deepEqual(JSON.parse(embed.text).embedding.values, embeddingValues('raw embed', 8, false));
  const call = onlyUpstreamCall(embed.calls, 'embedContent');
  assert.equal(call.body.taskType, 'RETRIEVAL_QUERY');

  const batchBody = {
    requests: ['one', 'two'].map((text) => ({ model: 'models/gemini-embedding-001', content: { parts: [{ text }] }, outputDimensionality: 4 })),
  };
  const batch = await rawCall('POST', '/v1/models/gemini-embedding-001:batchEmbedContents', { body: batchBody });
  assert.equal(batch.res.status, 200, batch.text);
  assert.deepEqual(JSON.parse(batch.text).embeddings.map((e) => e.values), [embeddingValues('one', 4, false), embeddingValues('two', 4, false)]);
  const bcall = onlyUpstreamCall(batch.calls, 'batchEmbedContents');
  assert.equal(bcall.path, '/v1/models/gemini-embedding-001:batchEmbedContents');
  assert.deepEqual(bcall.body, batchBody);

  const catalog = await stack.mockApi.models();
  const got = await rawCall('GET', '/gemini/v1beta/models/gemini-2.5-flash');
  assert.equal(got.res.status, 200, got.text);
  assert.deepEqual(JSON.parse(got.text), catalog.find((m) => m.name === 'models/gemini-2.5-flash'));

  const page = await rawCall('GET', '/v1beta/models?pageSize=3');
  assert.equal(page.res.status, 200, page.text);
  const listed = JSON.parse(page.text);
  assert.deepEqual(listed.models.map((m) => m.name), catalog.slice(0, 3).map((m) => m.name));
  assert.equal(typeof listed.nextPageToken, 'string', 'nextPageToken must pass through');
  const lcall = onlyUpstreamCall(page.calls, 'models.list');
  assert.deepEqual(lcall.query, { pageSize: '3' });
});
