// Anti-truncation (issue 12, section 2) on /v1/chat/completions, through the
// OpenAI SDK and raw SSE. The mock's scripted `answer` is a long answer it
// cuts off after some pieces; its continuations answer the rest and end with
// the marker the system instruction asks for (tests/mock/README.md). The
// mock's call record shows every upstream call, what it was sent and the
// tokens it reported.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack } from '../lib/harness.mjs';
import { openaiClient } from '../lib/clients.mjs';
import { REQUEST_TIMEOUT_MS, json, waitForSettlements } from '../lib/util.mjs';

const MARKER = '[done]';
const ANSWER =
  'Rivers begin as rain on high ground. The water gathers in rills, then streams, and the streams ' +
  'join into a river that cuts its valley over thousands of years. Near the sea the river slows, ' +
  'drops the silt it carried, and spreads into a delta of shifting channels, marsh and sandbanks.';
/** Models whose names this file's settings give the mode through a glob. */
const GLOB = 'gemini-2.5-flash-atglob*';

let stack;
let client;

before(async () => {
  stack = await startStack({ keys: ['ok-at-1'], settings: { anti_truncation_models: [GLOB] } });
  client = openaiClient(stack, { timeout: REQUEST_TIMEOUT_MS });
});
after(async () => stack?.stop());

// ---------------------------------------------------------------- helpers

const ask = (model, extra = {}) => ({ model, messages: [{ role: 'user', content: 'How do rivers form deltas?' }], ...extra });

/** Streams through the SDK and returns every chunk. */
async function streamChunks(model, extra = {}) {
  const stream = await client.chat.completions.create({
    ...ask(model, extra),
    stream: true,
    stream_options: { include_usage: true },
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

const contentOf = (chunks) => chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
const finishesOf = (chunks) => chunks.flatMap((c) => c.choices.filter((ch) => ch.finish_reason !== null).map((ch) => ch.finish_reason));

/** The prefix of ANSWER after `pieces` of `events` pieces, as the mock cuts it. */
function cutAt(pieces, events) {
  const chars = [...ANSWER];
  return chars.slice(0, Math.floor((pieces * chars.length) / events)).join('');
}

/** What a user turn / model turn carries as text. */
const textOf = (content) => (content?.parts ?? []).map((p) => p.text ?? '').join('');

/** Token usage summed over the mock's calls, in OpenAI's terms. */
function summed(calls) {
  const prompt = calls.reduce((a, c) => a + c.tokens.prompt, 0);
  const completion = calls.reduce((a, c) => a + c.tokens.candidates + c.tokens.thoughts, 0);
  return { prompt, completion };
}

/** Every upstream call for `model`, once the last one's response finished. */
async function callsOf(model, count) {
  const calls = await stack.mockApi.calls({ model });
  assert.equal(calls.length, count, `${model}: ${count} upstream call(s), got ${calls.length}`);
  assert.ok(calls.every((c) => c.status === 200), `${model}: every call answered`);
  return calls;
}

// ---------------------------------------------------------------- 1, 5: a stream cut twice

test('a stream cut twice is continued into the complete answer, one seamless stream', async () => {
  const model = 'gemini-2.5-flash-at1';
  await stack.mockApi.script({ model, answer: { text: ANSWER, events: 9, cuts: [3, 6] } });
  const chunks = await streamChunks(`anti-trunc/${model}`);

  assert.equal(contentOf(chunks), ANSWER, 'the stitched text is the untruncated answer');
  assert.equal(new Set(chunks.map((c) => c.id)).size, 1, 'one id');
  assert.ok(chunks.every((c) => c.model === `anti-trunc/${model}`), 'chunks name the model as sent');
  const roles = chunks.filter((c) => c.choices[0]?.delta?.role !== undefined);
  assert.equal(roles.length, 1, 'one role chunk');
  assert.equal(roles[0], chunks[0], 'the role chunk comes first');
  assert.deepEqual(finishesOf(chunks), ['stop'], 'finish_reason once');
  const usages = chunks.filter((c) => c.usage);
  assert.equal(usages.length, 1, 'usage once');
  assert.equal(usages[0], chunks.at(-1), 'usage last');

  const calls = await callsOf(model, 3);
  const { prompt, completion } = summed(calls);
  assert.equal(usages[0].usage.prompt_tokens, prompt, 'prompt tokens of every call');
  assert.equal(usages[0].usage.completion_tokens, completion, 'completion tokens of every call');
  assert.equal(usages[0].usage.total_tokens, prompt + completion);
});

test('continuation requests carry the conversation, the text so far as one model turn, then a user turn', async () => {
  const model = 'gemini-2.5-flash-at5';
  await stack.mockApi.script({ model, answer: { text: ANSWER, events: 9, cuts: [3, 6] } });
  await streamChunks(`anti-trunc/${model}`);
  const calls = await callsOf(model, 3);
  const [first, ...continuations] = calls;
  assert.equal(first.body.contents.length, 1);
  assert.match(textOf(first.body.systemInstruction), /`\[done\]`/, 'the marker instruction, marker in backticks');
  const soFar = [cutAt(3, 9), cutAt(6, 9)];
  continuations.forEach((call, i) => {
    const contents = call.body.contents;
    assert.deepEqual(contents.slice(0, -2), first.body.contents, 'the conversation as first sent');
    assert.deepEqual(contents.at(-2), { role: 'model', parts: [{ text: soFar[i] }] }, 'exactly the text so far');
    assert.equal(contents.at(-1).role, 'user');
    assert.match(textOf(contents.at(-1)), /continue/i);
    assert.deepEqual(call.body.systemInstruction, first.body.systemInstruction);
    assert.equal(call.answer.continuation, true, 'the mock took it for a continuation');
  });
});

// ---------------------------------------------------------------- 2: the marker

test('the marker never reaches the client, even split across two events (raw SSE)', async () => {
  const model = 'gemini-2.5-flash-at2';
  await stack.mockApi.script({ model, answer: { text: ANSWER, events: 5, cuts: [2], cutWith: 'MAX_TOKENS', splitMarker: true } });
  const res = await stack.call('POST', '/v1/chat/completions', {
    body: { ...ask(`anti-trunc/${model}`), stream: true },
    timeoutMs: REQUEST_TIMEOUT_MS,
  });
  assert.equal(res.status, 200);
  const raw = await res.text();
  const calls = await callsOf(model, 2);
  const sent = calls[1].chunks.map((c) => c.candidates[0].content.parts[0].text);
  assert.ok(sent.at(-2).endsWith('\n[do') && sent.at(-1) === 'ne]', `the mock split the marker: ${JSON.stringify(sent)}`);

  assert.ok(!raw.includes('[do') && !raw.includes('ne]'), `no piece of the marker: ${raw.slice(-600)}`);
  const events = raw.split('\n\n').filter(Boolean).map((e) => e.replace(/^data: /, ''));
  assert.equal(events.at(-1), '[DONE]');
  assert.equal(events.filter((e) => e === '[DONE]').length, 1, '[DONE] once');
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
  assert.equal(contentOf(chunks), ANSWER, 'nothing dropped but the marker and the newline before it');
  assert.deepEqual(finishesOf(chunks), ['stop']);
});

// ---------------------------------------------------------------- 3: tool calls

test('a tool-call answer passes through untouched and is never continued', async () => {
  const model = 'gemini-2.5-flash-at3';
  await stack.mockApi.script({ model, reply: { parts: [{ functionCall: { name: 'get_weather', args: { city: 'Paris' } } }] } });
  const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
  const chunks = await streamChunks(`anti-trunc/${model}`, { tools });
  const calls = chunks.flatMap((c) => c.choices[0]?.delta?.tool_calls ?? []);
  assert.equal(calls[0].function.name, 'get_weather');
  assert.equal(calls.map((c) => c.function.arguments ?? '').join(''), '{"city":"Paris"}');
  assert.deepEqual(finishesOf(chunks), ['tool_calls']);
  await callsOf(model, 1);

  const whole = await client.chat.completions.create(ask(`anti-trunc/${model}`, { tools }));
  assert.equal(whole.choices[0].finish_reason, 'tool_calls');
  assert.equal(whole.choices[0].message.tool_calls[0].function.arguments, '{"city":"Paris"}');
  await callsOf(model, 2);
});

// ---------------------------------------------------------------- 4: charged twice

test('a user key is charged twice the model cost for anti-truncation', async () => {
  const created = await stack.admin('POST', '/users', { name: 'at-double', credit_quota: 1_000_000 });
  const { key } = created;
  const userId = created.user.id;
  const chat = async (model) => {
    const res = await stack.call('POST', '/v1/chat/completions', { token: key, body: ask(model), timeoutMs: REQUEST_TIMEOUT_MS });
    const body = await json(res, model);
    assert.equal(res.status, 200, JSON.stringify(body));
    return body;
  };
  // Request mode (the default): the model's request cost, or twice it.
  const plain = 'gemini-2.5-flash-at4';
  const doubled = 'gemini-2.5-flash-at4b';
  await stack.mockApi.script({ model: doubled, answer: { text: ANSWER, events: 4, cuts: [2], cutWith: 'MAX_TOKENS' } });
  await chat(plain);
  const [one] = await waitForSettlements(stack, userId, 1);
  const out = await chat(`anti-trunc/${doubled}`);
  assert.equal(out.choices[0].message.content, ANSWER);
  const settled = await waitForSettlements(stack, userId, 2);
  assert.ok(one.charged > 0);
  assert.equal(settled[1].charged, 2 * one.charged, 'twice the plain request');

  // Token mode: twice the tokens of every call, prompts included.
  const tokenModel = 'gemini-2.5-flash-at4t';
  await stack.mockApi.script({ model: tokenModel, answer: { text: ANSWER, events: 4, cuts: [1, 3], cutWith: 'MAX_TOKENS' } });
  await stack.admin('PUT', '/settings', {
    charging_mode: 'token',
    model_costs: [{ pattern: `${tokenModel}*`, prompt_price: 1, completion_price: 3 }],
  });
  try {
    await chat(`anti-trunc/${tokenModel}`);
    const all = await waitForSettlements(stack, userId, 3);
    const calls = await callsOf(tokenModel, 3);
    const { prompt, completion } = summed(calls);
    assert.equal(all[2].charged, 2 * (prompt * 1 + completion * 3));
  } finally {
    await stack.admin('PUT', '/settings', { charging_mode: null, model_costs: null });
  }
});

// ---------------------------------------------------------------- 6: non-stream

test('non-stream: a MAX_TOKENS answer is continued and stitched; a client max_tokens gets length', async () => {
  const model = 'gemini-2.5-flash-at6';
  await stack.mockApi.script({ model, answer: { text: ANSWER, events: 4, cuts: [1, 3], cutWith: 'MAX_TOKENS' } });
  const out = await client.chat.completions.create(ask(`anti-trunc/${model}`));
  assert.equal(out.model, `anti-trunc/${model}`);
  assert.equal(out.choices.length, 1);
  assert.equal(out.choices[0].message.content, ANSWER);
  assert.equal(out.choices[0].finish_reason, 'stop');
  const calls = await callsOf(model, 3);
  assert.ok(calls.every((c) => c.action === 'generateContent'));
  assert.deepEqual(calls[2].body.contents.at(-2), { role: 'model', parts: [{ text: cutAt(3, 4) }] });
  const { prompt, completion } = summed(calls);
  assert.equal(out.usage.prompt_tokens, prompt);
  assert.equal(out.usage.completion_tokens, completion);

  const capped = 'gemini-2.5-flash-at6b';
  await stack.mockApi.script({ model: capped, answer: { text: ANSWER, events: 4, cuts: [1], cutWith: 'MAX_TOKENS' } });
  const short = await client.chat.completions.create(ask(`anti-trunc/${capped}`, { max_tokens: 40 }));
  assert.equal(short.choices[0].finish_reason, 'length');
  assert.equal(short.choices[0].message.content, cutAt(1, 4));
  await callsOf(capped, 1);
  const streamed = await streamChunks(`anti-trunc/${capped}`, { max_completion_tokens: 40 });
  assert.deepEqual(finishesOf(streamed), ['length']);
  assert.equal(contentOf(streamed), cutAt(1, 4));
  await callsOf(capped, 2);
});

// ---------------------------------------------------------------- 7: what selects the mode

test('the prefix and the settings glob select the mode; without them no marker instruction is sent', async () => {
  const globbed = 'gemini-2.5-flash-atglob1';
  await stack.mockApi.script({ model: globbed, answer: { text: ANSWER, events: 4, cuts: [2] } });
  const byGlob = await streamChunks(globbed);
  assert.equal(contentOf(byGlob), ANSWER);
  assert.ok(byGlob.every((c) => c.model === globbed));
  const globCalls = await callsOf(globbed, 2);
  assert.match(textOf(globCalls[0].body.systemInstruction), /`\[done\]`/);

  // The prefix combines with fake-stream/ in either order, and the model still resolves.
  const prefixed = 'gemini-2.5-flash-at7';
  await stack.mockApi.script({ model: prefixed, answer: { text: ANSWER, events: 4, cuts: [2] } });
  const byPrefix = await client.chat.completions.create(ask(`anti-trunc/${prefixed}`));
  assert.equal(byPrefix.choices[0].message.content, ANSWER);
  const prefixCalls = await callsOf(prefixed, 2);
  assert.match(textOf(prefixCalls[0].body.systemInstruction), /`\[done\]`/);
  for (const name of [`fake-stream/anti-trunc/${prefixed}`, `anti-trunc/fake-stream/${prefixed}`]) {
    const res = await stack.call('POST', '/v1/chat/completions', { body: ask(name), timeoutMs: REQUEST_TIMEOUT_MS });
    const body = await json(res, name);
    assert.equal(res.status, 200, `${name}: ${JSON.stringify(body)}`);
    assert.equal(body.model, name);
    const last = (await stack.mockApi.calls({ model: prefixed })).at(-1);
    assert.match(textOf(last.body.systemInstruction), /`\[done\]`/, name);
  }

  const plain = 'gemini-2.5-flash-at7plain';
  await stack.mockApi.script({ model: plain, answer: { text: ANSWER, events: 4 } });
  const out = await client.chat.completions.create({
    ...ask(plain),
    messages: [{ role: 'system', content: 'Be clear.' }, { role: 'user', content: 'How do rivers form deltas?' }],
  });
  assert.equal(out.choices[0].message.content, ANSWER);
  const [call] = await callsOf(plain, 1);
  assert.equal(textOf(call.body.systemInstruction), 'Be clear.', 'no marker instruction');
  assert.ok(!JSON.stringify(call.body).includes(MARKER));
});
