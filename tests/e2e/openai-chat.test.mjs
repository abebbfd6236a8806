// Chat completions through the official OpenAI SDK, JSON and streaming,
// with the upstream requests checked in the mock's record (acceptance 1).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack } from '../lib/harness.mjs';
import { openaiClient } from '../lib/clients.mjs';
import { lastCall } from '../lib/util.mjs';

let stack;
let client;

before(async () => {
  stack = await startStack({ keys: ['ok-chat-1', 'ok-chat-2'] });
  client = openaiClient(stack);
});
after(async () => stack?.stop());

test('non-streaming chat translates the request and the answer', async () => {
  const model = 'gemini-2.5-flash';
  const res = await client.chat.completions.create({
    model,
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'developer', content: 'Answer in English.' },
      { role: 'user', content: 'first question' },
      { role: 'assistant', content: 'first answer' },
      { role: 'user', content: [{ type: 'text', text: 'second question' }] },
    ],
    temperature: 0.3,
    top_p: 0.9,
    max_tokens: 123,
    stop: ['END', 'STOP'],
    seed: 7,
    presence_penalty: 0.5,
    frequency_penalty: 0.25,
  });
  assert.equal(res.object, 'chat.completion');
  assert.match(res.id, /^chatcmpl-/);
  assert.equal(res.model, model);
  assert.equal(res.choices.length, 1);
  assert.equal(res.choices[0].message.role, 'assistant');
  assert.equal(res.choices[0].message.content, 'echo: second question');
  assert.equal(res.choices[0].finish_reason, 'stop');
  assert.ok(res.usage.prompt_tokens > 0);
  assert.equal(res.usage.total_tokens, res.usage.prompt_tokens + res.usage.completion_tokens);

  const call = await lastCall(stack, model);
  assert.equal(call.action, 'generateContent');
  assert.deepEqual(call.body.systemInstruction.parts.map((p) => p.text), ['Be brief.', 'Answer in English.']);
  assert.deepEqual(call.body.contents.map((c) => c.role), ['user', 'model', 'user']);
  assert.deepEqual(call.body.generationConfig, {
    temperature: 0.3,
    topP: 0.9,
    maxOutputTokens: 123,
    stopSequences: ['END', 'STOP'],
    seed: 7,
    presencePenalty: 0.5,
    frequencyPenalty: 0.25,
  });
  assert.ok(['ok-chat-1', 'ok-chat-2'].includes(call.key), 'upstream saw an upstream key, not the client token');
});

test('image data URLs become inlineData and n maps to candidateCount', async () => {
  const model = 'gemini-2.5-flash-vision';
  const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex').toString('base64');
  const res = await client.chat.completions.create({
    model,
    n: 2,
    max_completion_tokens: 50,
    messages: [{
      role: 'user',
      content: [
        { type: 'text', text: 'what is this' },
        { type: 'image_url', image_url: { url: `data:image/png;base64,${png}`, detail: 'low' } },
      ],
    }],
  });
  assert.deepEqual(res.choices.map((c) => c.index), [0, 1]);
  const call = await lastCall(stack, model);
  assert.deepEqual(call.body.contents[0].parts[1], { inlineData: { mimeType: 'image/png', data: png } });
  assert.equal(call.body.generationConfig.candidateCount, 2);
  assert.equal(call.body.generationConfig.maxOutputTokens, 50);
});

test('finish reasons and usage details follow the mapping', async () => {
  const cases = [
    ['MAX_TOKENS', 'length'],
    ['SAFETY', 'content_filter'],
    ['RECITATION', 'content_filter'],
    ['PROHIBITED_CONTENT', 'content_filter'],
    ['OTHER', 'stop'],
  ];
  for (const [gemini, openai] of cases) {
    const model = `gemini-2.5-flash-fr-${gemini.toLowerCase().replace(/_/g, '-')}`;
    await stack.mockApi.script({
      model,
      reply: {
        parts: [{ text: 'partial' }],
        finishReason: gemini,
        usageMetadata: {
          promptTokenCount: 11, candidatesTokenCount: 5, thoughtsTokenCount: 7,
          cachedContentTokenCount: 3, totalTokenCount: 23,
        },
      },
    });
    const res = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }] });
    assert.equal(res.choices[0].finish_reason, openai, gemini);
    assert.equal(res.usage.prompt_tokens, 11);
    assert.equal(res.usage.completion_tokens, 12);
    assert.equal(res.usage.total_tokens, 23);
    assert.equal(res.usage.completion_tokens_details.reasoning_tokens, 7);
    assert.equal(res.usage.prompt_tokens_details.cached_tokens, 3);
  }
});

test('a blocked prompt is a content_filter choice, never a 500', async () => {
  const model = 'gemini-2.5-flash-blocked';
  await stack.mockApi.script({ model, reply: { promptFeedback: { blockReason: 'SAFETY' } } });
  const res = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }] });
  assert.equal(res.choices[0].finish_reason, 'content_filter');
});

test('streaming: role first, one id, finish once, usage chunk, [DONE]', async () => {
  const model = 'gemini-2.5-flash-stream';
  const stream = await client.chat.completions.create({
    model,
    stream: true,
    stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'tell me a story' }],
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.ok(chunks.length >= 3);
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  assert.equal(new Set(chunks.map((c) => c.id)).size, 1);
  assert.equal(new Set(chunks.map((c) => c.created)).size, 1);
  assert.ok(chunks.every((c) => c.model === model && c.object === 'chat.completion.chunk'));
  const finishes = chunks.flatMap((c) => c.choices).filter((c) => c.finish_reason);
  assert.equal(finishes.length, 1);
  assert.equal(finishes[0].finish_reason, 'stop');
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.ok(last.usage.total_tokens > 0);
  const text = chunks.flatMap((c) => c.choices).map((c) => c.delta?.content ?? '').join('');
  assert.equal(text, 'echo: tell me a story');
  const call = await lastCall(stack, model);
  assert.equal(call.action, 'streamGenerateContent');
  assert.equal(call.alt, 'sse');

  // The raw stream ends with data: [DONE].
  const raw = await stack.call('POST', '/v1/chat/completions', {
    body: { model, stream: true, messages: [{ role: 'user', content: 'again' }] },
  });
  assert.match(raw.headers.get('content-type'), /text\/event-stream/);
  const body = await raw.text();
  assert.ok(body.trimEnd().endsWith('data: [DONE]'), body.slice(-200));
});

test('stream chunks are forwarded as they arrive, never buffered whole', async () => {
  const model = 'gemini-2.5-flash-live';
  const gate = `live-${Date.now()}`;
  await stack.mockApi.script({ model, holdBeforeLast: gate, times: 1 });
  const stream = await client.chat.completions.create({
    model, stream: true, messages: [{ role: 'user', content: 'one two three four' }],
  });
  const iterator = stream[Symbol.asyncIterator]();
  // The mock holds its last event until released: if the worker buffered the
  // stream, this first read could never complete (bounded by the test timeout).
  const first = await iterator.next();
  assert.equal(first.done, false);
  assert.equal(first.value.choices[0].delta.role, 'assistant');
  const firstSeenAt = Date.now();
  const released = await stack.mockApi.release(gate);
  assert.ok(released.released ?? true);
  const rest = [];
  for (let r = await iterator.next(); !r.done; r = await iterator.next()) rest.push(r.value);
  const call = await lastCall(stack, model);
  assert.ok(call.lastEventSentAt >= firstSeenAt, 'the first chunk arrived only after the last event was sent');
  assert.equal(rest.flatMap((c) => c.choices).filter((c) => c.finish_reason).length, 1);
});

test('an upstream stream cut mid-event ends with an error event and [DONE]', async () => {
  const model = 'gemini-2.5-flash-cut';
  await stack.mockApi.script({ model, cutAfterEvents: 1, times: 1 });
  const raw = await stack.call('POST', '/v1/chat/completions', {
    body: { model, stream: true, messages: [{ role: 'user', content: 'a b c d e f' }] },
  });
  assert.equal(raw.status, 200);
  const events = (await raw.text()).split('\n\n').filter(Boolean).map((e) => e.replace(/^data: /, ''));
  assert.equal(events.at(-1), '[DONE]');
  const error = JSON.parse(events.at(-2));
  assert.equal(typeof error.error.message, 'string');
  assert.ok('type' in error.error && 'code' in error.error);
});

test('upstream timeouts: a slow first byte or a stalled body fails over, a stalled stream ends with an error event', async () => {
  await stack.admin('PUT', '/settings', { upstream_timeout_ms: 1000 });
  try {
    // The first key tried answers too late: the request moves to the other.
    const slowModel = 'gemini-2.5-flash-slowkey';
    await stack.mockApi.script({ model: slowModel, latencyMs: 4000, times: 1 });
    const res = await client.chat.completions.create({
      model: slowModel, messages: [{ role: 'user', content: 'are you there' }],
    });
    assert.equal(res.choices[0].message.content, 'echo: are you there');
    const calls = await stack.mockApi.calls({ model: slowModel });
    assert.equal(calls.length, 2);
    assert.notEqual(calls[0].key, calls[1].key);

    // An answer whose body stalls after its headers and half its bytes: headers alone
    // are not an answer. The attempt times out, its connection is closed, and the
    // request moves to the other key, rather than wait for the rest (5 s later).
    const halfModel = 'gemini-2.5-flash-halfbody';
    await stack.mockApi.script({ model: halfModel, bodyStallMs: 5000, times: 1 });
    const half = await client.chat.completions.create({
      model: halfModel, messages: [{ role: 'user', content: 'half an answer' }],
    });
    assert.equal(half.choices[0].message.content, 'echo: half an answer');
    const halfCalls = await stack.mockApi.calls({ model: halfModel });
    assert.equal(halfCalls.length, 2, 'the stalled answer was given up and the other key tried');
    assert.notEqual(halfCalls[0].key, halfCalls[1].key);
    const givenUp = await stack.mockApi.waitFinished(halfCalls[0].seq, 3000);
    assert.equal(givenUp.finished, true, 'the gateway closed the stalled answer');
    assert.equal(typeof givenUp.call.abandonedAt, 'number', 'closed by the gateway, before the mock sent the rest');

    // A stream whose upstream stalls after the first event.
    const stallModel = 'gemini-2.5-flash-stall';
    await stack.mockApi.script({ model: stallModel, eventDelayMs: 5000, times: 1 });
    const raw = await stack.call('POST', '/v1/chat/completions', {
      body: { model: stallModel, stream: true, messages: [{ role: 'user', content: 'a b c d e f g h' }] },
    });
    assert.equal(raw.status, 200);
    const events = (await raw.text()).split('\n\n').filter(Boolean).map((e) => e.replace(/^data: /, ''));
    assert.equal(events.at(-1), '[DONE]');
    const error = JSON.parse(events.at(-2)).error;
    assert.equal(error.code, 'upstream_timeout');
    // Cut off once the limit passed, not when the next event came (5 s later): and the
    // gateway closed the upstream connection then, rather than leave it to run on.
    const [stalled] = await stack.mockApi.calls({ model: stallModel });
    const ended = await stack.mockApi.waitFinished(stalled.seq, 3000);
    assert.equal(ended.finished, true, 'the gateway closed the stalled upstream call');
    assert.equal(typeof ended.call.abandonedAt, 'number', 'closed by the gateway, not by the mock');
    assert.equal(ended.call.eventTimes.length, 1, 'no event after the first was sent before the cut');

    // The limit is on the gap between chunks, not on the whole stream: events 600 ms apart
    // over about 3 s (well past the 1 s limit) all arrive, and no error comes.
    const steadyModel = 'gemini-2.5-flash-steady';
    await stack.mockApi.script({ model: steadyModel, eventDelayMs: 600, times: 1 });
    const prompt = 'steady '.repeat(30).trim();
    const steady = await stack.call('POST', '/v1/chat/completions', {
      body: { model: steadyModel, stream: true, messages: [{ role: 'user', content: prompt }] },
    });
    assert.equal(steady.status, 200);
    const steadyEvents = (await steady.text()).split('\n\n').filter(Boolean).map((e) => e.replace(/^data: /, ''));
    assert.equal(steadyEvents.at(-1), '[DONE]');
    const chunks = steadyEvents.slice(0, -1).map((e) => JSON.parse(e));
    assert.ok(chunks.every((c) => !c.error), 'no error event');
    assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), `echo: ${prompt}`);
    const [steadyCall] = await stack.mockApi.calls({ model: steadyModel });
    assert.ok(steadyCall.eventTimes.length >= 5, `${steadyCall.eventTimes.length} events`);
    assert.ok(steadyCall.eventTimes.at(-1) - steadyCall.eventTimes[0] > 2000, 'the stream outlasted the limit');
  } finally {
    await stack.admin('PUT', '/settings', { upstream_timeout_ms: null });
  }
});
