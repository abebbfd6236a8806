// The Anthropic Messages surface (issue 14 §1) through the official
// @anthropic-ai/sdk: text, images, a two-tool loop, thinking on Gemini 3
// across turns with its signatures, count_tokens against the mock's own
// count, the raw event order of a stream, errors in Anthropic's shape, and a
// user key charged and logged like a chat.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { startStack, CLIENT_TOKEN } from '../lib/harness.mjs';
import { lastCall, pollD1, sqlStr, waitForSettlements, charged, upstreamCallsDuring, json } from '../lib/util.mjs';

let stack;

// Claude model names, as Claude Code sends them, aliased to Gemini models of this file.
const ALIASES = {
  'claude-sonnet-4-5': 'gemini-2.5-flash-anth',
  'claude-opus-4-1': 'gemini-3-pro-preview-anth',
  'claude-tools': 'gemini-2.5-flash-anth-tools',
  'claude-g3-tools': 'gemini-3-pro-preview-anth-tools',
  'claude-stream': 'gemini-2.5-flash-anth-stream',
  'claude-count': 'gemini-2.5-flash-anth-count',
  'claude-user': 'gemini-2.5-flash-anth-user',
  'claude-failover': 'gemini-2.5-flash-anth-failover',
  'claude-failover-stream': 'gemini-2.5-flash-anth-failover-stream',
};

before(async () => {
  stack = await startStack({ keys: ['ok-anth-1', 'ok-anth-2'], settings: { model_aliases: ALIASES } });
});
after(async () => stack?.stop());

const client = (options = {}) =>
  new Anthropic({ apiKey: CLIENT_TOKEN, baseURL: stack.url, maxRetries: 0, timeout: 60_000, ...options });

const TOOLS = [
  {
    name: 'get_weather',
    description: 'The weather in a city',
    input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
  {
    name: 'get_time',
    description: 'The time in a city',
    input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
];

/** Asserts an error body is Anthropic's `{type: "error", error: {type, message}}`. */
function assertAnthropicError(body, type) {
  assert.equal(body?.type, 'error', JSON.stringify(body));
  assert.equal(body.error?.type, type, JSON.stringify(body));
  assert.equal(typeof body.error.message, 'string');
  assert.deepEqual(Object.keys(body).sort(), ['error', 'type']);
}

/** POSTs a raw body to the worker; returns status, headers and text. */
async function raw(path, body, headers = { 'x-api-key': CLIENT_TOKEN }) {
  const res = await fetch(`${stack.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(60_000),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

test('messages.create answers text through an alias, with system and usage from the upstream', async () => {
  const msg = await client().messages.create({
    model: 'claude-sonnet-4-5',
    max_tokens: 256,
    system: [{ type: 'text', text: 'You are terse.' }],
    messages: [{ role: 'user', content: 'hello' }],
  });
  assert.equal(msg.type, 'message');
  assert.equal(msg.role, 'assistant');
  assert.equal(msg.model, 'claude-sonnet-4-5');
  assert.match(msg.id, /^msg_/);
  assert.deepEqual(msg.content, [{ type: 'text', text: 'echo: hello' }]);
  assert.equal(msg.stop_reason, 'end_turn');
  const call = await lastCall(stack, 'gemini-2.5-flash-anth');
  assert.equal(call.status, 200);
  assert.equal(call.body.systemInstruction.parts[0].text, 'You are terse.');
  assert.equal(call.body.generationConfig.maxOutputTokens, 256);
  assert.equal(msg.usage.input_tokens, call.tokens.prompt);
  // Output includes the thinking tokens, as completion_tokens does.
  assert.equal(msg.usage.output_tokens, call.tokens.candidates + call.tokens.thoughts);
});

test('the /anthropic prefix, a bearer token (ANTHROPIC_AUTH_TOKEN) and anthropic-auth-token all work', async () => {
  const viaPrefix = await client({ apiKey: null, authToken: CLIENT_TOKEN, baseURL: `${stack.url}/anthropic` }).messages.create({
    model: 'claude-sonnet-4-5',
    max_tokens: 64,
    messages: [{ role: 'user', content: 'prefixed' }],
  });
  assert.equal(viaPrefix.content[0].text, 'echo: prefixed');
  const res = await raw(
    '/v1/messages',
    { model: 'claude-sonnet-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'header' }] },
    { 'anthropic-auth-token': CLIENT_TOKEN },
  );
  assert.equal(res.status, 200, res.text);
  assert.equal(JSON.parse(res.text).content[0].text, 'echo: header');
});

test('images (base64 and URL, through the fetch guard) and a PDF document reach Gemini inline', async () => {
  const png = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082', 'hex').toString('base64');
  const pdf = Buffer.from('%PDF-1.4\n%%EOF\n').toString('base64');
  const msg = await client().messages.create({
    model: 'claude-sonnet-4-5',
    max_tokens: 64,
    messages: [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'describe' },
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: png } },
          { type: 'image', source: { type: 'url', url: `${stack.mock.url}/media/anth.jpg?type=image/jpeg&bytes=300` } },
          { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: pdf } },
        ],
      },
    ],
  });
  assert.match(msg.content[0].text, /^echo: describe/);
  const parts = (await lastCall(stack, 'gemini-2.5-flash-anth')).body.contents[0].parts;
  assert.equal(parts[1].inlineData.mimeType, 'image/png');
  assert.equal(parts[1].inlineData.data, png);
  assert.equal(parts[2].inlineData.mimeType, 'image/jpeg');
  assert.equal(parts[3].inlineData.mimeType, 'application/pdf');
  // A private target other than the allowed mock is refused before any upstream call.
  await assert.rejects(
    client().messages.create({
      model: 'claude-sonnet-4-5',
      max_tokens: 8,
      messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'url', url: 'http://10.0.0.1/x.png' } }] }],
    }),
    (e) => {
      assert.equal(e.status, 400);
      assertAnthropicError(e.error, 'invalid_request_error');
      return true;
    },
  );
});

test('two tools in a full loop: tool_use ids and names out, tool_result back wrapped like a chat tool message', async () => {
  const model = 'gemini-2.5-flash-anth-tools';
  await stack.mockApi.script({
    model,
    times: 1,
    reply: {
      parts: [
        { functionCall: { name: 'get_weather', args: { city: 'Paris' } } },
        { functionCall: { name: 'get_time', args: { city: 'Paris' } } },
      ],
      finishReason: 'STOP',
    },
  });
  const c = client();
  const question = { role: 'user', content: 'weather and time in Paris?' };
  const first = await c.messages.create({ model: 'claude-tools', max_tokens: 200, tools: TOOLS, tool_choice: { type: 'any' }, messages: [question] });
  assert.equal(first.stop_reason, 'tool_use');
  const uses = first.content.filter((b) => b.type === 'tool_use');
  assert.deepEqual(uses.map((u) => [u.name, u.input]), [['get_weather', { city: 'Paris' }], ['get_time', { city: 'Paris' }]]);
  assert.notEqual(uses[0].id, uses[1].id);
  const call1 = await lastCall(stack, model);
  assert.equal(call1.body.toolConfig.functionCallingConfig.mode, 'ANY');
  assert.deepEqual(call1.body.tools[0].functionDeclarations.map((f) => f.name), ['get_weather', 'get_time']);

  const second = await c.messages.create({
    model: 'claude-tools',
    max_tokens: 200,
    tools: TOOLS,
    messages: [
      question,
      { role: 'assistant', content: first.content },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: uses[0].id, content: '{"temp_c": 21}' },
          { type: 'tool_result', tool_use_id: uses[1].id, content: [{ type: 'text', text: '14:05' }] },
        ],
      },
    ],
  });
  assert.equal(second.stop_reason, 'end_turn');
  assert.match(second.content[0].text, /functionResponse get_weather/);
  const call2 = await lastCall(stack, model);
  const [callTurn, resultTurn] = call2.body.contents.slice(1);
  assert.equal(callTurn.role, 'model');
  assert.equal(callTurn.parts[0].functionCall.id, uses[0].id);
  const responses = resultTurn.parts.map((p) => p.functionResponse);
  assert.deepEqual(responses.map((r) => [r.name, r.id, r.response]), [
    ['get_weather', uses[0].id, { temp_c: 21 }],
    ['get_time', uses[1].id, { output: '14:05' }],
  ]);
});

test('messages.stream: a tool call arrives as input_json_delta and the final message has its input', async () => {
  const model = 'gemini-2.5-flash-anth-stream';
  await stack.mockApi.script({
    model,
    times: 1,
    reply: { parts: [{ text: 'Checking.' }, { functionCall: { name: 'get_time', args: { city: 'Oslo' } } }], finishReason: 'STOP' },
  });
  const stream = client().messages.stream({ model: 'claude-stream', max_tokens: 100, tools: TOOLS, messages: [{ role: 'user', content: 'time?' }] });
  const kinds = [];
  stream.on('streamEvent', (e) => kinds.push(e.delta?.type ?? e.type));
  const final = await stream.finalMessage();
  assert.ok(kinds.includes('input_json_delta'), kinds.join());
  assert.equal(final.stop_reason, 'tool_use');
  assert.equal(final.content[0].text, 'Checking.');
  assert.deepEqual(final.content[1].input, { city: 'Oslo' });
  assert.equal(final.content[1].name, 'get_time');

  const text = await client().messages.stream({ model: 'claude-stream', max_tokens: 100, messages: [{ role: 'user', content: 'streamed words' }] }).finalMessage();
  assert.equal(text.content[0].text, 'echo: streamed words');
  assert.equal(text.stop_reason, 'end_turn');
  const call = await lastCall(stack, model);
  assert.equal(text.usage.output_tokens, call.tokens.candidates + call.tokens.thoughts);
});

test('a raw stream follows Anthropic\'s documented event order', async () => {
  const res = await raw('/v1/messages', {
    model: 'claude-opus-4-1',
    max_tokens: 2000,
    stream: true,
    thinking: { type: 'enabled', budget_tokens: 1024 },
    messages: [{ role: 'user', content: 'order please' }],
  });
  assert.equal(res.status, 200, res.text);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const events = res.text.split('\n\n').filter(Boolean).map((block) => {
    const name = /^event: (.+)$/m.exec(block)[1];
    const data = JSON.parse(/^data: (.+)$/m.exec(block)[1]);
    assert.equal(data.type, name);
    return data;
  });
  const names = events.map((e) => e.type).join(' ');
  assert.match(
    names,
    /^message_start ping( content_block_start( content_block_delta)* content_block_stop)+ message_delta message_stop$/,
  );
  // Blocks are numbered in order and each is closed before the next opens.
  let open = null;
  let next = 0;
  for (const e of events) {
    if (e.type === 'content_block_start') {
      assert.equal(open, null);
      assert.equal(e.index, next);
      open = e.index;
      next += 1;
    } else if (e.type === 'content_block_delta') {
      assert.equal(e.index, open);
    } else if (e.type === 'content_block_stop') {
      assert.equal(e.index, open);
      open = null;
    }
  }
  const starts = events.filter((e) => e.type === 'content_block_start').map((e) => e.content_block.type);
  assert.equal(starts[0], 'thinking');
  assert.ok(starts.includes('text'));
  const delta = events.find((e) => e.type === 'message_delta');
  assert.equal(delta.delta.stop_reason, 'end_turn');
  assert.equal(typeof delta.usage.output_tokens, 'number');
});

test('thinking on Gemini 3 across two turns: the signature goes out in a thinking block and comes back upstream', async () => {
  const model = 'gemini-3-pro-preview-anth';
  const c = client();
  const ask = { role: 'user', content: 'think first' };
  const first = await c.messages.create({ model: 'claude-opus-4-1', max_tokens: 4000, thinking: { type: 'enabled', budget_tokens: 2048 }, messages: [ask] });
  const call1 = await lastCall(stack, model);
  assert.equal(call1.body.generationConfig.thinkingConfig.includeThoughts, true);
  const signed = call1.response.candidates[0].content.parts.find((p) => p.thoughtSignature);
  assert.ok(signed, 'the mock signs Gemini 3 answers');
  const thinking = first.content.filter((b) => b.type === 'thinking');
  assert.ok(thinking.length >= 1);
  assert.ok(thinking.some((b) => b.signature === signed.thoughtSignature), JSON.stringify(first.content));
  assert.ok(thinking.some((b) => b.thinking.length > 0), 'the thoughts are shown');
  assert.equal(first.content.find((b) => b.type === 'text').text, 'echo: think first');

  // Turn two (streamed), with the first answer replayed as Claude Code does.
  const second = await c.messages
    .stream({
      model: 'claude-opus-4-1',
      max_tokens: 4000,
      thinking: { type: 'enabled', budget_tokens: 2048 },
      messages: [ask, { role: 'assistant', content: first.content }, { role: 'user', content: 'and again' }],
    })
    .finalMessage();
  const call2 = await lastCall(stack, model);
  assert.equal(call2.status, 200, JSON.stringify(call2.error ?? ''));
  const replayed = call2.body.contents[1];
  assert.equal(replayed.role, 'model');
  assert.equal(replayed.parts.at(-1).thoughtSignature, signed.thoughtSignature);
  assert.ok(!replayed.parts.some((p) => p.thought), 'thoughts are not sent back');
  const signature2 = call2.chunks.flatMap((ch) => ch.candidates?.[0]?.content?.parts ?? []).find((p) => p.thoughtSignature)?.thoughtSignature;
  assert.ok(second.content.some((b) => b.type === 'thinking' && b.signature === signature2), JSON.stringify(second.content));
});

test('tool use on Gemini 3: the function call\'s signature round-trips on the call, not a placeholder', async () => {
  const model = 'gemini-3-pro-preview-anth-tools';
  await stack.mockApi.script({
    model,
    times: 1,
    reply: {
      parts: [
        { text: 'planning', thought: true },
        { functionCall: { name: 'get_weather', args: { city: 'Rome' } }, thoughtSignature: 'c2lnLWNhbGwtb25l' },
        { functionCall: { name: 'get_time', args: { city: 'Rome' } } },
      ],
      finishReason: 'STOP',
    },
  });
  const c = client();
  const ask = { role: 'user', content: 'Rome?' };
  const thinking = { type: 'enabled', budget_tokens: 1024 };
  const first = await c.messages.stream({ model: 'claude-g3-tools', max_tokens: 3000, thinking, tools: TOOLS, messages: [ask] }).finalMessage();
  assert.equal(first.stop_reason, 'tool_use');
  assert.ok(first.content.some((b) => b.type === 'thinking' && b.signature === 'c2lnLWNhbGwtb25l'), JSON.stringify(first.content));
  const uses = first.content.filter((b) => b.type === 'tool_use');
  assert.equal(uses.length, 2);
  await c.messages.create({
    model: 'claude-g3-tools',
    max_tokens: 3000,
    thinking,
    tools: TOOLS,
    messages: [
      ask,
      { role: 'assistant', content: first.content },
      { role: 'user', content: uses.map((u) => ({ type: 'tool_result', tool_use_id: u.id, content: 'ok' })) },
    ],
  });
  const call = await lastCall(stack, model);
  assert.equal(call.status, 200, JSON.stringify(call.error ?? ''));
  const calls = call.body.contents[1].parts.filter((p) => p.functionCall);
  assert.equal(calls[0].thoughtSignature, 'c2lnLWNhbGwtb25l');
  assert.equal(calls[1].thoughtSignature, undefined);
});

test('stop_sequences: the answer stops at the client\'s sequence with stop_reason stop_sequence', async () => {
  const msg = await client().messages.create({
    model: 'claude-sonnet-4-5',
    max_tokens: 100,
    stop_sequences: ['STOP'],
    messages: [{ role: 'user', content: 'one two STOP three' }],
  });
  assert.equal(msg.stop_reason, 'stop_sequence');
  assert.equal(msg.stop_sequence, 'STOP');
  assert.equal(msg.content[0].text, 'echo: one two ');
  const plain = await client().messages.create({ model: 'claude-sonnet-4-5', max_tokens: 100, stop_sequences: ['ZZZ'], messages: [{ role: 'user', content: 'no stop here' }] });
  assert.equal(plain.stop_reason, 'end_turn');
  assert.equal(plain.stop_sequence, null);
  const maxed = await client().messages.create({ model: 'claude-sonnet-4-5', max_tokens: 2, messages: [{ role: 'user', content: 'a rather long sentence to cut' }] });
  assert.equal(maxed.stop_reason, 'max_tokens');
});

test('countTokens equals the mock\'s count of the whole request, system and tools included', async () => {
  const model = 'gemini-2.5-flash-anth-count';
  const request = {
    model: 'claude-count',
    system: 'count me too',
    tools: TOOLS,
    messages: [{ role: 'user', content: 'how many tokens is this?' }],
  };
  const counted = await client().messages.countTokens(request);
  const call = await lastCall(stack, model);
  assert.equal(call.action, 'countTokens');
  assert.equal(call.status, 200);
  assert.equal(typeof call.response.totalTokens, 'number');
  assert.equal(counted.input_tokens, call.response.totalTokens);
  assert.ok(call.body.generateContentRequest.systemInstruction, 'the system counts');
  assert.ok(call.body.generateContentRequest.tools, 'the tools count');
  const bare = await client().messages.countTokens({ model: 'claude-count', messages: request.messages });
  assert.ok(bare.input_tokens < counted.input_tokens);
  // The prefixed route counts too.
  const res = await raw('/anthropic/v1/messages/count_tokens', { model: 'claude-count', messages: request.messages });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(JSON.parse(res.text), { input_tokens: bare.input_tokens });
});

test('errors come in Anthropic\'s shape: bad auth, bad body, unknown model, wrong method', async () => {
  await assert.rejects(
    client({ apiKey: 'sk-wrong' }).messages.create({ model: 'claude-sonnet-4-5', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }),
    (e) => {
      assert.ok(e instanceof Anthropic.AuthenticationError, String(e));
      assertAnthropicError(e.error, 'authentication_error');
      return true;
    },
  );
  let res = await raw('/v1/messages', { model: 'claude-sonnet-4-5', max_tokens: 5, messages: [] }, {});
  assert.equal(res.status, 401);
  assertAnthropicError(JSON.parse(res.text), 'authentication_error');

  for (const body of ['{not json', { model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'x' }] }, { model: 'claude-sonnet-4-5', max_tokens: 5, messages: [{ role: 'robot', content: 'x' }] }]) {
    res = await raw('/v1/messages', body);
    assert.equal(res.status, 400, res.text);
    assertAnthropicError(JSON.parse(res.text), 'invalid_request_error');
  }
  await assert.rejects(
    client().messages.create({ model: 'claude-unknown-9', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }),
    (e) => {
      assert.ok(e instanceof Anthropic.NotFoundError, String(e));
      assertAnthropicError(e.error, 'not_found_error');
      return true;
    },
  );
  const get = await fetch(`${stack.url}/v1/messages`, { headers: { 'x-api-key': CLIENT_TOKEN }, signal: AbortSignal.timeout(30_000) });
  assert.equal(get.status, 405);
  assertAnthropicError(await get.json(), 'invalid_request_error');
});

test('a user key is admitted, charged and logged like a chat, on the anthropic surface', async () => {
  const created = await stack.admin('POST', '/users', { name: 'anth-user', credit_quota: 100, rpm: 2 });
  const { id } = created.user;
  const { key } = created;
  const msg = await client({ apiKey: key }).messages.create({ model: 'claude-user', max_tokens: 50, messages: [{ role: 'user', content: 'bill me' }] });
  assert.equal(msg.content[0].text, 'echo: bill me');
  const [first] = await waitForSettlements(stack, id, 1, { where: charged });
  assert.ok(first.charged > 0);
  // The same question as a chat completion costs the same.
  const chat = await stack.call('POST', '/v1/chat/completions', {
    token: key,
    body: { model: 'gemini-2.5-flash-anth-user', max_tokens: 50, messages: [{ role: 'user', content: 'bill me' }] },
    timeoutMs: 60_000,
  });
  assert.equal(chat.status, 200, await chat.clone().text());
  const settled = await waitForSettlements(stack, id, 2, { where: charged });
  assert.equal(settled[1].charged, first.charged, 'a message is charged exactly like a chat');
  const usageRes = await stack.call('GET', '/v1/usage', { token: key });
  const usage = await json(usageRes, '/v1/usage');
  assert.equal(usageRes.status, 200, JSON.stringify(usage));
  assert.equal(usage.used, first.charged * 2, JSON.stringify(usage));
  const rows = await pollD1(
    stack,
    `SELECT surface, status, credits FROM request_log WHERE user_id = ${sqlStr(id)} ORDER BY ts`,
    (r) => r.length >= 2,
  );
  assert.deepEqual(rows.map((r) => r.surface).sort(), ['anthropic', 'openai']);
  const logged = rows.find((r) => r.surface === 'anthropic');
  assert.equal(logged.status, 200);
  assert.equal(logged.credits, first.charged);
  // Admission: the user's rpm of 2 is spent, so a third call is refused in Anthropic's shape.
  const refused = await raw('/v1/messages', { model: 'claude-user', max_tokens: 5, messages: [{ role: 'user', content: 'again' }] }, { 'x-api-key': key });
  assert.equal(refused.status, 429, refused.text);
  assertAnthropicError(JSON.parse(refused.text), 'rate_limit_error');
  assert.ok(Number(refused.headers.get('retry-after')) > 0, 'Retry-After');
});

test('failover: a key that answers 429 is left for the next one and the client still gets a 200', async () => {
  for (const [model, alias, stream] of [
    ['gemini-2.5-flash-anth-failover', 'claude-failover', false],
    ['gemini-2.5-flash-anth-failover-stream', 'claude-failover-stream', true],
  ]) {
    await stack.mockApi.script({ model, fault: 'rate_limit_minute', retryDelay: '30s', times: 1 });
    const body = { model: alias, max_tokens: 50, messages: [{ role: 'user', content: 'fail over' }] };
    const { result: msg, calls } = await upstreamCallsDuring(stack, () =>
      (stream ? client().messages.stream(body).finalMessage() : client().messages.create(body)));
    assert.equal(msg.content[0].text, 'echo: fail over', `stream=${stream}`);
    assert.equal(msg.stop_reason, 'end_turn');
    const ours = calls.filter((c) => c.model === model);
    assert.deepEqual(ours.map((c) => c.status), [429, 200], `stream=${stream}: ${JSON.stringify(ours.map((c) => [c.key, c.status]))}`);
    assert.notEqual(ours[0].key, ours[1].key, 'the second try is on another key');
  }
});

test('with default_model set, an unaliased name is served by it instead of 404', async () => {
  await stack.admin('PATCH', '/settings', { default_model: 'gemini-2.5-flash-anth-default' });
  try {
    const msg = await client().messages.create({ model: 'claude-haiku-unaliased', max_tokens: 20, messages: [{ role: 'user', content: 'fallback' }] });
    assert.equal(msg.content[0].text, 'echo: fallback');
    assert.equal(msg.model, 'claude-haiku-unaliased');
    assert.equal((await lastCall(stack, 'gemini-2.5-flash-anth-default')).status, 200);
  } finally {
    await stack.admin('PATCH', '/settings', { default_model: null });
  }
});
