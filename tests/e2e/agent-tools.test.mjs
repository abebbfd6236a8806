// Agent loops through the official OpenAI SDK (issue 3, acceptance 1 and 2):
// the model calls two tools in parallel, the client runs them and sends the
// results, the model answers. The mock's record proves what upstream got; the
// client side proves distinct indices and exact arguments. Gemini 3 runs in
// three client variants, and the mock rejects a call replayed unsigned.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack } from '../lib/harness.mjs';
import { assertMatchesSchema } from '../lib/openapi.mjs';
import { genaiClient, openaiClient } from '../lib/clients.mjs';
import { lastCall } from '../lib/util.mjs';

let stack;
let client;

before(async () => {
  stack = await startStack({ keys: ['ok-agent-1'] });
  client = openaiClient(stack);
});
after(async () => stack?.stop());

const TOOLS = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Current weather for a city',
      parameters: {
        type: 'object',
        properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['c', 'f'] } },
        required: ['city'],
        additionalProperties: false,
      },
    },
  },
  {
    type: 'function',
    function: {
      name: 'get_time',
      description: 'Local time in a time zone',
      parameters: { type: 'object', properties: { tz: { type: 'string' } }, required: ['tz'] },
    },
  },
];
const WEATHER_ARGS = { city: 'Paris', unit: 'c' };
const TIME_ARGS = { tz: 'Europe/Paris' };
const SIG = 'c2lnbmF0dXJlLWZvci1nZXQtd2VhdGhlcg==';

/** Scripts the model's first step: two parallel calls (Gemini 3 signs the first). */
async function scriptParallelCalls(model, { signed = false } = {}) {
  const first = { functionCall: { name: 'get_weather', args: WEATHER_ARGS } };
  if (signed) first.thoughtSignature = SIG;
  await stack.mockApi.script({
    model,
    times: 1,
    reply: { parts: [first, { functionCall: { name: 'get_time', args: TIME_ARGS } }], finishReason: 'STOP' },
  });
}

/** Runs the tools the way an agent does, answering each call by its id. */
function toolResults(toolCalls) {
  return toolCalls.map((call) => {
    const args = JSON.parse(call.function.arguments);
    const content = call.function.name === 'get_weather' ? JSON.stringify({ temp: 21, city: args.city }) : '14:05';
    return { role: 'tool', tool_call_id: call.id, content };
  });
}

/** Accumulates streamed tool-call deltas by `index`, exactly as the OpenAI SDKs do. */
async function collectStream(stream) {
  const calls = [];
  let content = '';
  let finish = null;
  const firstDeltaOf = new Map();
  for await (const chunk of stream) {
    assertMatchesSchema('CreateChatCompletionStreamResponse', chunk, 'stream chunk');
    for (const choice of chunk.choices) {
      if (choice.delta.content) content += choice.delta.content;
      for (const d of choice.delta.tool_calls ?? []) {
        if (!calls[d.index]) {
          calls[d.index] = { id: d.id, type: d.type, function: { name: d.function.name, arguments: '' }, extra_content: d.extra_content };
          firstDeltaOf.set(d.index, d);
        }
        calls[d.index].function.arguments += d.function?.arguments ?? '';
      }
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  }
  for (const [index, d] of firstDeltaOf) {
    assert.ok(d.id && d.type === 'function' && d.function?.name, `first delta of call ${index} carries id, type and name`);
  }
  return { calls, content, finish };
}

async function runLoop({ model, stream, variant = 'keep-all' }) {
  const messages = [{ role: 'user', content: 'Weather and time in Paris?' }];
  let toolCalls;
  if (stream) {
    const step = await collectStream(await client.chat.completions.create({ model, messages, tools: TOOLS, stream: true }));
    assert.equal(step.finish, 'tool_calls');
    toolCalls = step.calls;
  } else {
    const res = await client.chat.completions.create({ model, messages, tools: TOOLS });
    assertMatchesSchema('CreateChatCompletionResponse', res, 'tool-call completion');
    assert.equal(res.choices[0].finish_reason, 'tool_calls');
    toolCalls = res.choices[0].message.tool_calls;
  }
  assert.equal(toolCalls.length, 2, 'both parallel calls reach the client');
  assert.notEqual(toolCalls[0].id, toolCalls[1].id, 'distinct ids');
  assert.deepEqual(toolCalls.map((c) => c.function.name), ['get_weather', 'get_time']);
  assert.deepEqual(JSON.parse(toolCalls[0].function.arguments), WEATHER_ARGS, 'exact arguments');
  assert.deepEqual(JSON.parse(toolCalls[1].function.arguments), TIME_ARGS, 'exact arguments');

  // What the client keeps of each call before sending the history back.
  const replayed = toolCalls.map((c, i) => {
    const kept = { id: c.id, type: 'function', function: { name: c.function.name, arguments: c.function.arguments } };
    if (variant === 'keep-all' && c.extra_content) kept.extra_content = c.extra_content;
    if (variant === 'keep-extra-content') {
      kept.id = `client-own-id-${i}`;
      if (c.extra_content) kept.extra_content = c.extra_content;
    }
    if (variant === 'drop-both') kept.id = `client-own-id-${i}`;
    return kept;
  });
  messages.push({ role: 'assistant', content: null, tool_calls: replayed });
  messages.push(...toolResults(replayed));
  const before = (await stack.mockApi.calls({ model })).length;
  let answer;
  if (stream) {
    answer = (await collectStream(await client.chat.completions.create({ model, messages, tools: TOOLS, stream: true }))).content;
  } else {
    const res = await client.chat.completions.create({ model, messages, tools: TOOLS });
    assertMatchesSchema('CreateChatCompletionResponse', res, 'final completion');
    assert.equal(res.choices[0].finish_reason, 'stop');
    answer = res.choices[0].message.content;
  }
  assert.equal(answer, 'echo: [functionResponse get_weather] [functionResponse get_time]');
  const calls = await stack.mockApi.calls({ model });
  assert.equal(calls.length, before + 1);
  const upstream = calls.at(-1);
  assert.equal(upstream.status, 200, `upstream accepted the replayed history: ${JSON.stringify(upstream.error ?? '')}`);
  return { toolCalls, replayed, upstream };
}

/** The model turn and tool turn the gateway sent upstream. */
function historyOf(upstream) {
  const [user, modelTurn, toolTurn] = upstream.body.contents;
  assert.equal(user.role, 'user');
  assert.equal(modelTurn.role, 'model');
  assert.equal(toolTurn.role, 'user', 'consecutive tool messages merge into one user turn');
  return { modelTurn, toolTurn };
}

function assertHistory(upstream, replayed) {
  const { modelTurn, toolTurn } = historyOf(upstream);
  const calls = modelTurn.parts.map((p) => p.functionCall);
  assert.deepEqual(calls.map((c) => c.name), ['get_weather', 'get_time']);
  assert.deepEqual(calls.map((c) => c.args), [WEATHER_ARGS, TIME_ARGS]);
  const responses = toolTurn.parts.map((p) => p.functionResponse);
  assert.deepEqual(responses.map((r) => r.name), ['get_weather', 'get_time'], 'named after the function, found by tool_call_id');
  assert.deepEqual(responses[0].response, { temp: 21, city: 'Paris' }, 'a JSON result goes as the object');
  assert.deepEqual(responses[1].response, { output: '14:05' }, 'a non-JSON result is wrapped');
  // Call ids travel to Gemini and pair each response with its call.
  const baseId = (id) => id.split('__thought__')[0];
  assert.deepEqual(calls.map((c) => c.id), replayed.map((c) => baseId(c.id)));
  assert.deepEqual(responses.map((r) => r.id), replayed.map((c) => baseId(c.id)));
  return modelTurn;
}

for (const stream of [false, true]) {
  test(`agent loop on Gemini 2.5, ${stream ? 'streaming' : 'non-streaming'}: two parallel calls, results, answer`, async () => {
    const model = `gemini-2.5-flash-agent-${stream ? 's' : 'j'}`;
    await scriptParallelCalls(model);
    const { replayed, upstream } = await runLoop({ model, stream });
    const modelTurn = assertHistory(upstream, replayed);
    assert.ok(modelTurn.parts.every((p) => !p.thoughtSignature), 'no signature is invented for 2.5');
    // The first request declared both tools with their JSON Schemas intact.
    const first = (await stack.mockApi.calls({ model }))[0];
    const decls = first.body.tools[0].functionDeclarations;
    assert.deepEqual(decls.map((d) => d.name), ['get_weather', 'get_time']);
    assert.deepEqual(decls[0].parametersJsonSchema, TOOLS[0].function.parameters);
  });
}

for (const variant of ['keep-all', 'keep-extra-content', 'drop-both']) {
  for (const stream of [false, true]) {
    test(`Gemini 3 agent loop, client ${variant}, ${stream ? 'streaming' : 'non-streaming'}: the signature round-trips`, async () => {
      const model = `gemini-3-pro-preview-agent-${variant}-${stream ? 's' : 'j'}`;
      await scriptParallelCalls(model, { signed: true });
      const { toolCalls, replayed, upstream } = await runLoop({ model, stream, variant });
      assert.equal(toolCalls[0].extra_content?.google?.thought_signature, SIG, 'signature in extra_content');
      assert.ok(toolCalls[0].id.endsWith(`__thought__${SIG}`), 'signature carried in the id');
      assert.equal(toolCalls[1].extra_content, undefined, 'only the signed call carries one');
      const modelTurn = assertHistory(upstream, replayed);
      const expected = variant === 'drop-both' ? 'skip_thought_signature_validator' : SIG;
      assert.equal(modelTurn.parts[0].thoughtSignature, expected);
      assert.equal(modelTurn.parts[1].thoughtSignature, undefined);
    });
  }
}

test('the mock rejects a Gemini 3 call replayed without a signature, so the loop tests are honest', async () => {
  const res = await fetch(`${stack.mock.url}/v1beta/models/gemini-3-pro-preview-honesty:generateContent`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-goog-api-key': 'ok-agent-1' },
    body: JSON.stringify({
      contents: [
        { role: 'user', parts: [{ text: 'weather?' }] },
        { role: 'model', parts: [{ functionCall: { name: 'get_weather', args: WEATHER_ARGS } }] },
        { role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: { temp: 21 } } }] },
      ],
    }),
  });
  assert.equal(res.status, 400);
  const body = await res.json();
  assert.equal(body.error.status, 'INVALID_ARGUMENT');
  assert.match(body.error.message, /thought_signature/);
});

test('parallel_tool_calls: false returns only the first call', async () => {
  const model = 'gemini-2.5-flash-agent-single';
  for (const stream of [false, true]) {
    await scriptParallelCalls(model);
    const body = { model, messages: [{ role: 'user', content: 'both?' }], tools: TOOLS, parallel_tool_calls: false };
    const calls = stream
      ? (await collectStream(await client.chat.completions.create({ ...body, stream: true }))).calls
      : (await client.chat.completions.create(body)).choices[0].message.tool_calls;
    assert.deepEqual(calls.map((c) => c.function.name), ['get_weather'], stream ? 'stream' : 'json');
  }
});

test('function names Gemini would reject are normalised upstream and restored for the client', async () => {
  const model = 'gemini-2.5-flash-agent-names';
  const mcpName = 'github/create issue';
  const tools = [
    { type: 'function', function: { name: mcpName, parameters: { type: 'object', properties: { title: { type: 'string' } } } } },
    { type: 'function', function: { name: 'ok_name', parameters: { type: 'object', properties: {} } } },
  ];
  await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }], tools, tool_choice: { type: 'function', function: { name: mcpName } } });
  const first = await lastCall(stack, model);
  assert.equal(first.status, 200, JSON.stringify(first.error ?? ''));
  const [upstreamName, okName] = first.body.tools[0].functionDeclarations.map((d) => d.name);
  assert.equal(okName, 'ok_name', 'valid names are untouched');
  assert.match(upstreamName, /^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$/);
  assert.deepEqual(first.body.toolConfig.functionCallingConfig, { mode: 'ANY', allowedFunctionNames: [upstreamName] });

  await stack.mockApi.script({ model, times: 1, reply: { parts: [{ functionCall: { name: upstreamName, args: { title: 'Bug' } } }] } });
  const res = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'file it' }], tools });
  const call = res.choices[0].message.tool_calls[0];
  assert.equal(call.function.name, mcpName, 'the client gets its own name back');

  // Replaying the history sends the normalised name again, and the result pairs with it.
  const res2 = await client.chat.completions.create({
    model,
    tools,
    messages: [
      { role: 'user', content: 'file it' },
      { role: 'assistant', content: null, tool_calls: [call] },
      { role: 'tool', tool_call_id: call.id, content: '{"number": 7}' },
    ],
  });
  assert.equal(res2.choices[0].finish_reason, 'stop');
  const last = await lastCall(stack, model);
  assert.equal(last.body.contents[1].parts[0].functionCall.name, upstreamName);
  assert.equal(last.body.contents[2].parts[0].functionResponse.name, upstreamName);
});

test('the native surface passes Gemini 3 signatures through untouched, streaming too', async () => {
  const ai = genaiClient(stack);
  const model = 'gemini-3-pro-preview-native-sig';
  const tools = [{ functionDeclarations: [{ name: 'get_weather', parametersJsonSchema: TOOLS[0].function.parameters }] }];
  for (const stream of [false, true]) {
    await scriptParallelCalls(model, { signed: true });
    const contents = [{ role: 'user', parts: [{ text: 'weather?' }] }];
    let parts;
    if (stream) {
      parts = [];
      for await (const chunk of await ai.models.generateContentStream({ model, contents, config: { tools } })) {
        parts.push(...(chunk.candidates?.[0]?.content?.parts ?? []));
      }
    } else {
      parts = (await ai.models.generateContent({ model, contents, config: { tools } })).candidates[0].content.parts;
    }
    const calls = parts.filter((p) => p.functionCall);
    assert.equal(calls.length, 2);
    assert.equal(calls[0].thoughtSignature, SIG, `${stream ? 'stream' : 'json'}: the signature reaches the client as sent`);
    // The SDK replays the model turn as it got it; upstream sees the same bytes.
    contents.push({ role: 'model', parts: calls });
    contents.push({ role: 'user', parts: calls.map((c) => ({ functionResponse: { name: c.functionCall.name, response: { ok: true } } })) });
    await ai.models.generateContent({ model, contents, config: { tools } });
    const upstream = await lastCall(stack, model);
    assert.equal(upstream.status, 200);
    assert.equal(upstream.body.contents[1].parts[0].thoughtSignature, SIG);
  }
});
