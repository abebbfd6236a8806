// Reasoning and generation options through the OpenAI SDK (issue 3,
// acceptance 4): reasoning_effort × model family with the upstream
// thinkingConfig asserted and the mock (which knows each model's accepted
// levels and budget ranges) accepting it; thoughts only in reasoning_content;
// exact reasoning_tokens; extra_body.google; model suffixes; logprobs; and
// generationConfig keys passed at the top level.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, ADMIN_PASSWORD } from '../lib/harness.mjs';
import { assertMatchesSchema } from '../lib/openapi.mjs';
import { openaiClient } from '../lib/clients.mjs';
import { lastCall } from '../lib/util.mjs';

let stack;
let client;

before(async () => {
  stack = await startStack({ keys: ['ok-reason-1'] });
  client = openaiClient(stack);
});
after(async () => stack?.stop());

/** One chat call; every answer must validate against OpenAI's schema. */
async function ask(model, extra = {}) {
  const out = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'think' }], ...extra }).withResponse();
  assertMatchesSchema('CreateChatCompletionResponse', out.data, model);
  return out;
}

const budget = (n) => ({ thinkingBudget: n });
const level = (l) => ({ thinkingLevel: l });

// model → effort → [upstream thinkingConfig, x-gemgate-adjusted or null]
const TABLE = {
  'gemini-2.5-flash': {
    none: [budget(0), null], minimal: [budget(0), null], low: [budget(1024), null],
    medium: [budget(8192), null], high: [budget(24576), null], xhigh: [budget(24576), null],
  },
  'gemini-2.5-pro': {
    none: [budget(128), 'reasoning_effort=none->thinking_budget:128'],
    minimal: [budget(128), 'reasoning_effort=minimal->thinking_budget:128'],
    low: [budget(1024), null], medium: [budget(8192), null], high: [budget(24576), null], xhigh: [budget(32768), null],
  },
  'gemini-2.5-flash-lite': {
    none: [budget(0), null], minimal: [budget(0), null], low: [budget(1024), null],
    medium: [budget(8192), null], high: [budget(24576), null], xhigh: [budget(24576), null],
  },
  'gemini-3-pro-preview': {
    none: [level('low'), 'reasoning_effort=none->low'], minimal: [level('low'), 'reasoning_effort=minimal->low'],
    low: [level('low'), null], medium: [level('high'), 'reasoning_effort=medium->high'],
    high: [level('high'), null], xhigh: [level('high'), 'reasoning_effort=xhigh->high'],
  },
  'gemini-3.1-pro-preview': {
    none: [level('low'), 'reasoning_effort=none->low'], minimal: [level('low'), 'reasoning_effort=minimal->low'],
    low: [level('low'), null], medium: [level('medium'), null], high: [level('high'), null],
    xhigh: [level('high'), 'reasoning_effort=xhigh->high'],
  },
  'gemini-3-flash-preview': {
    none: [level('minimal'), 'reasoning_effort=none->minimal'], minimal: [level('minimal'), null],
    low: [level('low'), null], medium: [level('medium'), null], high: [level('high'), null],
    xhigh: [level('high'), 'reasoning_effort=xhigh->high'],
  },
  'gemini-2.0-flash': Object.fromEntries(
    ['none', 'minimal', 'low', 'medium', 'high', 'xhigh'].map((e) => [e, [undefined, `reasoning_effort=${e}->ignored (model does not think)`]]),
  ),
};

for (const [family, rows] of Object.entries(TABLE)) {
  test(`reasoning_effort × ${family}: every effort maps to what the model accepts`, async () => {
    for (const [effort, [config, adjusted]] of Object.entries(rows)) {
      // Ends in `-t`: `-low`, `-high`, … are model suffixes of their own.
      const model = `${family}-effort-${effort}-t`;
      const { data, response } = await ask(model, { reasoning_effort: effort });
      assert.equal(data.choices[0].message.content, 'echo: think');
      assert.equal(response.headers.get('x-gemgate-adjusted'), adjusted, `${model} header`);
      const call = await lastCall(stack, model);
      assert.equal(call.status, 200, `${model}: the mock accepted it: ${JSON.stringify(call.error ?? '')}`);
      assert.deepEqual(call.body.generationConfig?.thinkingConfig, config, `${model} thinkingConfig`);
    }
  });
}

test('a level the model does not accept is what the mock refuses, so the table is honest', async () => {
  const res = await fetch(`${stack.mock.url}/v1beta/models/gemini-3-pro-preview-honest:generateContent`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-goog-api-key': 'ok-reason-1' },
    body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'x' }] }], generationConfig: { thinkingConfig: { thinkingLevel: 'MEDIUM' } } }),
  });
  assert.equal(res.status, 400);
});

test('thoughts arrive in reasoning_content, never in content, and reasoning_tokens are exact', async () => {
  const model = 'gemini-2.5-flash-thoughts';
  const { data } = await ask(model, { extra_body: { google: { thinking_config: { include_thoughts: true } } } });
  assertMatchesSchema('CreateChatCompletionResponse', data);
  const call = await lastCall(stack, model);
  assert.deepEqual(call.body.generationConfig.thinkingConfig, { includeThoughts: true });
  const thought = call.response.candidates[0].content.parts.find((p) => p.thought).text;
  assert.equal(data.choices[0].message.reasoning_content, thought);
  assert.equal(data.choices[0].message.content, 'echo: think');
  assert.ok(call.tokens.thoughts > 0);
  assert.equal(data.usage.completion_tokens_details.reasoning_tokens, call.tokens.thoughts);
  assert.equal(data.usage.completion_tokens, call.tokens.candidates + call.tokens.thoughts);
  assert.equal(data.usage.prompt_tokens, call.tokens.prompt);

  const streamModel = 'gemini-3-flash-preview-thoughts';
  const stream = await client.chat.completions.create({
    model: streamModel,
    messages: [{ role: 'user', content: 'think' }],
    reasoning_effort: 'low',
    stream: true,
    stream_options: { include_usage: true },
    extra_body: { google: { thinking_config: { include_thoughts: true } } },
  });
  let reasoning = '';
  let content = '';
  let usage;
  for await (const chunk of stream) {
    assertMatchesSchema('CreateChatCompletionStreamResponse', chunk);
    for (const c of chunk.choices) {
      reasoning += c.delta.reasoning_content ?? '';
      content += c.delta.content ?? '';
    }
    if (chunk.usage) usage = chunk.usage;
  }
  const streamed = await lastCall(stack, streamModel);
  assert.deepEqual(streamed.body.generationConfig.thinkingConfig, { thinkingLevel: 'low', includeThoughts: true });
  const thoughtText = streamed.chunks.flatMap((c) => c.candidates?.[0]?.content?.parts ?? []).filter((p) => p.thought).map((p) => p.text).join('');
  assert.ok(thoughtText.length > 0);
  assert.equal(reasoning, thoughtText);
  assert.equal(content, 'echo: think');
  assert.equal(usage.completion_tokens_details.reasoning_tokens, streamed.tokens.thoughts);
});

test('extra_body.google.thinking_config wins over reasoning_effort', async () => {
  const model = 'gemini-2.5-flash-explicit';
  const { response } = await ask(model, {
    reasoning_effort: 'high',
    extra_body: { google: { thinking_config: { thinking_budget: 2048, include_thoughts: false } } },
  });
  assert.equal(response.headers.get('x-gemgate-adjusted'), null);
  assert.deepEqual((await lastCall(stack, model)).body.generationConfig.thinkingConfig, { thinkingBudget: 2048, includeThoughts: false });

  const g3 = 'gemini-3-flash-preview-explicit';
  await ask(g3, { reasoning_effort: 'high', extra_body: { google: { thinking_config: { thinking_level: 'minimal' } } } });
  assert.deepEqual((await lastCall(stack, g3)).body.generationConfig.thinkingConfig, { thinkingLevel: 'minimal' });
});

test('model suffixes set thinking and search, and combine', async () => {
  const { data } = await ask('gemini-2.5-flash-thinking-4096-search');
  assert.equal(data.model, 'gemini-2.5-flash-thinking-4096-search', 'the client sees its own model name');
  const combined = await lastCall(stack, 'gemini-2.5-flash');
  assert.equal(combined.path, '/v1beta/models/gemini-2.5-flash:generateContent');
  assert.deepEqual(combined.body.generationConfig.thinkingConfig, { thinkingBudget: 4096 });
  assert.deepEqual(combined.body.tools, [{ googleSearch: {} }]);

  const off = await ask('gemini-2.5-pro-nothinking');
  assert.equal(off.response.headers.get('x-gemgate-adjusted'), 'model_suffix=nothinking->thinking_budget:128');
  assert.deepEqual((await lastCall(stack, 'gemini-2.5-pro')).body.generationConfig.thinkingConfig, { thinkingBudget: 128 });

  await ask('gemini-2.5-flash-lite-maxthinking');
  assert.deepEqual((await lastCall(stack, 'gemini-2.5-flash-lite')).body.generationConfig.thinkingConfig, { thinkingBudget: 24576 });

  await ask('gemini-2.5-flash-nothinking');
  const nothinking = await lastCall(stack, 'gemini-2.5-flash');
  assert.deepEqual(nothinking.body.generationConfig.thinkingConfig, { thinkingBudget: 0 });
  assert.equal(nothinking.tokens.thoughts, 0, 'thinking really is off');
});

test('generationConfig keys at the top level pass through; unknown fields are ignored, never a 500', async () => {
  const model = 'gemini-2.5-flash-passthrough';
  // A context cache is read on the key that holds it: made first, through the gateway.
  const made = await stack.call('POST', '/v1beta/cachedContents', {
    body: { model: `models/${model}`, contents: [{ role: 'user', parts: [{ text: 'context' }] }] },
  });
  assert.equal(made.status, 200, await made.clone().text());
  const cache = (await made.json()).name;
  const { data } = await ask(model, {
    top_k: 17,
    response_modalities: ['TEXT'],
    temperature: 0.5,
    made_up_field: { nested: true },
    metadata: { trace: '1' },
    extra_body: {
      google: {
        safety_settings: [{ category: 'HARM_CATEGORY_HARASSMENT', threshold: 'BLOCK_NONE' }],
        cached_content: cache,
      },
    },
  });
  assert.equal(data.choices[0].message.content, 'echo: think');
  const call = await lastCall(stack, model);
  assert.equal(call.body.generationConfig.topK, 17);
  assert.deepEqual(call.body.generationConfig.responseModalities, ['TEXT']);
  assert.equal(call.body.generationConfig.temperature, 0.5);
  assert.deepEqual(call.body.safetySettings, [{ category: 'HARM_CATEGORY_HARASSMENT', threshold: 'BLOCK_NONE' }]);
  assert.equal(call.body.cachedContent, cache);
  assert.equal(call.body.made_up_field, undefined);
  assert.equal(call.body.madeUpField, undefined);

  // A generationConfig key with a wrong type is the client's error, in OpenAI's shape.
  const bad = await stack.call('POST', '/v1/chat/completions', {
    body: { model, messages: [{ role: 'user', content: 'x' }], top_k: 'many' },
  });
  assert.equal(bad.status, 400);
  const err = (await bad.json()).error;
  assert.equal(err.type, 'invalid_request_error');
  assert.match(err.message, /generationConfig/);
});

test('logprobs and top_logprobs map to responseLogprobs/logprobs and come back per token', async () => {
  const model = 'gemini-2.5-flash-logprobs';
  const { data } = await ask(model, { logprobs: true, top_logprobs: 2 });
  assertMatchesSchema('CreateChatCompletionResponse', data);
  const call = await lastCall(stack, model);
  assert.equal(call.body.generationConfig.responseLogprobs, true);
  assert.equal(call.body.generationConfig.logprobs, 2);
  const tokens = data.choices[0].logprobs.content;
  assert.equal(tokens.map((t) => t.token).join(''), data.choices[0].message.content);
  assert.ok(tokens.every((t) => t.top_logprobs.length === 2 && t.top_logprobs[0].token === t.token && t.logprob <= 0));
  assert.deepEqual(tokens[0].bytes, [...Buffer.from(tokens[0].token)]);

  const stream = await client.chat.completions.create({
    model, messages: [{ role: 'user', content: 'think' }], logprobs: true, stream: true,
  });
  let text = '';
  let tokenText = '';
  for await (const chunk of stream) {
    assertMatchesSchema('CreateChatCompletionStreamResponse', chunk);
    for (const c of chunk.choices) {
      text += c.delta.content ?? '';
      tokenText += (c.logprobs?.content ?? []).map((t) => t.token).join('');
    }
  }
  assert.equal(tokenText, text);

  // A model that rejects logprobs gives a clear 400, not a 500 or a chat message.
  await assert.rejects(
    client.chat.completions.create({ model: 'gemini-2.5-pro-logprobs', messages: [{ role: 'user', content: 'x' }], logprobs: true }),
    (e) => e.status === 400 && /logprobs/i.test(e.message),
  );
  // top_logprobs without logprobs is refused before any upstream call.
  const before = (await stack.mockApi.calls({ model })).length;
  await assert.rejects(
    client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }], top_logprobs: 3 }),
    (e) => e.status === 400 && e.param === 'top_logprobs',
  );
  assert.equal((await stack.mockApi.calls({ model })).length, before);
});

test('the configured include_thoughts default returns thoughts without asking', async () => {
  await stack.admin('PUT', '/settings', { include_thoughts: true });
  try {
    const model = 'gemini-2.5-flash-default-thoughts';
    const { data } = await ask(model);
    assert.deepEqual((await lastCall(stack, model)).body.generationConfig.thinkingConfig, { includeThoughts: true });
    assert.ok(data.choices[0].message.reasoning_content.length > 0);
    assert.equal(data.choices[0].message.content, 'echo: think');
    // The request can still say no.
    const off = 'gemini-2.5-flash-default-thoughts-off';
    const { data: quiet } = await ask(off, { extra_body: { google: { thinking_config: { include_thoughts: false } } } });
    assert.equal(quiet.choices[0].message.reasoning_content, undefined);
  } finally {
    await stack.admin('PUT', '/settings', { include_thoughts: null });
  }
});

test('configured suffix variants are listed after each model that thinks, and can be retrieved', async () => {
  // Refused: not a gateway suffix.
  const bad = await stack.call('PUT', '/admin/api/settings', { token: null, headers: { authorization: `Bearer ${ADMIN_PASSWORD}` }, body: { model_variants: ['-turbo'] } });
  assert.equal(bad.status, 400);
  await stack.admin('PUT', '/settings', { model_variants: ['-search', '-nothinking'] });
  try {
    const ids = [];
    for await (const model of client.models.list()) ids.push(model.id);
    const at = ids.indexOf('gemini-2.5-flash');
    assert.ok(at >= 0, 'the base model is listed');
    assert.deepEqual(ids.slice(at, at + 3), ['gemini-2.5-flash', 'gemini-2.5-flash-search', 'gemini-2.5-flash-nothinking']);
    assert.ok(!ids.includes('gemini-2.0-flash-search'), 'a model that does not think gets no variants');
    assert.ok(!ids.some((id) => id.includes('embedding') && id.endsWith('-search')), 'nor does an embedding model');
    const one = await client.models.retrieve('gemini-2.5-flash-search');
    assert.equal(one.id, 'gemini-2.5-flash-search');
    assertMatchesSchema('Model', one);
  } finally {
    await stack.admin('PUT', '/settings', { model_variants: null });
  }
});
