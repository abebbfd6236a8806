// The OpenAI Responses API (issue 14 §2) through the official `openai` SDK:
// create (JSON and streamed), a function-tool loop across previous_response_id
// with Gemini 3 thought signatures, text.format JSON schema, retrieve/delete,
// key scoping, store:false, the ledger, failover, the raw event order, bad
// input in OpenAI's error shape, and the cron's retention of stored responses.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startStack } from '../lib/harness.mjs';
import { openaiClient } from '../lib/clients.mjs';
import { ledgerOf, pollD1, runCron, sqlStr, waitForSettlements } from '../lib/util.mjs';

let stack;
let client;

before(async () => {
  stack = await startStack({ keys: ['ok-resp-1', 'ok-resp-2'], settings: { responses_ttl_days: 7 } });
  client = openaiClient(stack, { timeout: 60_000 });
});
after(async () => stack?.stop());

const DAY = 24 * 3600 * 1000;
/** Default per-request cost of a Flash-class model. */
const FLASH_COST = 2;

const WEATHER = {
  type: 'function',
  name: 'get_weather',
  description: 'Current weather for a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};
const SIG = 'c2lnbmF0dXJlLWZvci1yZXNwb25zZXM=';

async function createUser(name) {
  const created = await stack.admin('POST', '/users', { name, credit_quota: 100 });
  return { id: created.user.id, key: created.key };
}

/** The SDK rejection of `promise`, checked to carry OpenAI's error shape. */
async function apiError(promise, label) {
  let err;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof OpenAI.APIError, `${label}: expected an API error, got ${err ?? 'a success'}`);
  for (const field of ['message', 'type', 'param', 'code']) assert.ok(field in err.error, `${label}: error.${field} missing: ${JSON.stringify(err.error)}`);
  return err;
}

/** A raw call's OpenAI-shaped error. */
async function rawError(res, status, label) {
  const body = await res.json();
  assert.equal(res.status, status, `${label}: ${JSON.stringify(body)}`);
  assert.equal(typeof body.error?.message, 'string', label);
  assert.equal(typeof body.error.type, 'string', label);
  assert.ok('param' in body.error && 'code' in body.error, `${label}: ${JSON.stringify(body)}`);
  return body.error;
}

/** Collects an SDK event stream: the event types and the final response. */
async function collect(stream) {
  const events = [];
  for await (const event of stream) events.push(event);
  const last = events.at(-1);
  assert.equal(last?.type, 'response.completed', `stream ended with ${last?.type}`);
  return { events, response: last.response };
}

test('a plain create answers in the Responses shape and can be retrieved', async () => {
  const model = 'gemini-2.5-flash';
  const res = await client.responses.create({ model, input: 'hello there', instructions: 'Be brief.' });
  assert.equal(res.object, 'response');
  assert.match(res.id, /^resp_/);
  assert.equal(res.status, 'completed');
  assert.equal(res.model, model);
  assert.equal(res.output_text, 'echo: hello there');
  const message = res.output.find((o) => o.type === 'message');
  assert.equal(message.role, 'assistant');
  assert.equal(message.content[0].type, 'output_text');
  assert.ok(res.usage.input_tokens > 0);
  assert.equal(res.usage.total_tokens, res.usage.input_tokens + res.usage.output_tokens);
  const upstream = (await stack.mockApi.calls({ model })).at(-1);
  assert.deepEqual(upstream.body.systemInstruction.parts.map((p) => p.text), ['Be brief.']);

  const again = await client.responses.retrieve(res.id);
  assert.equal(again.id, res.id);
  assert.equal(again.output_text, 'echo: hello there');
  const [row] = await stack.d1(`SELECT created_at, expires_at FROM responses WHERE id = ${sqlStr(res.id)}`);
  assert.equal(row.expires_at - row.created_at, 7 * DAY, 'kept for responses_ttl_days');
});

test('a function-tool loop continues across previous_response_id, thought signature included (JSON and stream)', async () => {
  for (const stream of [false, true]) {
    const model = `gemini-3-pro-preview-resp-${stream ? 's' : 'j'}`;
    await stack.mockApi.script({
      model,
      times: 1,
      reply: { parts: [{ functionCall: { name: 'get_weather', args: { city: 'Paris' } }, thoughtSignature: SIG }], finishReason: 'STOP' },
    });
    const args = { model, input: 'Weather in Paris?', tools: [WEATHER], tool_choice: 'auto' };
    const first = stream ? (await collect(await client.responses.create({ ...args, stream: true }))).response : await client.responses.create(args);
    const call = first.output.find((o) => o.type === 'function_call');
    assert.ok(call, `a function_call item: ${JSON.stringify(first.output)}`);
    assert.equal(call.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.arguments), { city: 'Paris' });
    assert.match(call.id, /^fc_/);

    const second = await client.responses.create({
      model,
      previous_response_id: first.id,
      tools: [WEATHER],
      input: [{ type: 'function_call_output', call_id: call.call_id, output: JSON.stringify({ temp: 21 }) }],
    });
    assert.equal(second.previous_response_id, first.id);
    assert.equal(second.output_text, 'echo: [functionResponse get_weather]');
    const upstream = (await stack.mockApi.calls({ model })).at(-1);
    assert.deepEqual(upstream.body.contents.map((c) => c.role), ['user', 'model', 'user']);
    const [replayed] = upstream.body.contents[1].parts;
    assert.equal(replayed.functionCall.name, 'get_weather');
    assert.equal(replayed.thoughtSignature, SIG, 'the Gemini 3 signature went back with the call');
    assert.deepEqual(upstream.body.contents[2].parts[0].functionResponse.response, { temp: 21 });
  }
});

test('text.format json_schema reaches Gemini as a response schema', async () => {
  const model = 'gemini-2.5-flash-resp-schema';
  const schema = { type: 'object', properties: { answer: { type: 'string' }, score: { type: 'integer' } }, required: ['answer', 'score'], additionalProperties: false };
  const res = await client.responses.create({
    model,
    input: 'rate it',
    text: { format: { type: 'json_schema', name: 'rating', schema, strict: true } },
  });
  const parsed = JSON.parse(res.output_text);
  assert.equal(typeof parsed.answer, 'string');
  assert.equal(Number.isInteger(parsed.score), true);
  assert.equal(res.text.format.type, 'json_schema');
  const upstream = (await stack.mockApi.calls({ model })).at(-1);
  assert.equal(upstream.body.generationConfig.responseMimeType, 'application/json');
  assert.deepEqual(Object.keys(upstream.body.generationConfig.responseJsonSchema.properties), ['answer', 'score']);
});

test('reasoning.summary returns the thoughts as a reasoning item', async () => {
  const model = 'gemini-2.5-flash-resp-think';
  const res = await client.responses.create({ model, input: 'think first', reasoning: { effort: 'low', summary: 'auto' } });
  const reasoning = res.output.find((o) => o.type === 'reasoning');
  assert.ok(reasoning?.summary?.[0]?.text, `a reasoning summary: ${JSON.stringify(res.output)}`);
  assert.equal(res.output.at(-1).type, 'message');
  const upstream = (await stack.mockApi.calls({ model })).at(-1);
  assert.equal(upstream.body.generationConfig.thinkingConfig.includeThoughts, true);
});

test('the raw stream follows OpenAI\'s documented event order with increasing sequence numbers', async () => {
  const res = await stack.call('POST', '/v1/responses', { body: { model: 'gemini-2.5-flash', input: 'stream me', stream: true } });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /text\/event-stream/);
  const text = await res.text();
  const events = text.split('\n\n').filter((b) => b.trim()).map((block) => {
    const name = block.match(/^event: (.+)$/m)?.[1];
    const data = JSON.parse(block.match(/^data: (.+)$/m)[1]);
    assert.equal(name, data.type, 'the event line names the data type');
    return data;
  });
  const kinds = events.map((e) => e.type);
  const shape = kinds.map((k) => (k === 'response.output_text.delta' ? 'delta' : k)).filter((k, i, all) => k !== 'delta' || all[i - 1] !== 'delta');
  assert.deepEqual(shape, [
    'response.created',
    'response.in_progress',
    'response.output_item.added',
    'response.content_part.added',
    'delta',
    'response.output_text.done',
    'response.content_part.done',
    'response.output_item.done',
    'response.completed',
  ]);
  events.forEach((e, i) => assert.equal(e.sequence_number, i, `sequence_number of ${e.type}`));
  const deltas = events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join('');
  assert.equal(deltas, 'echo: stream me');
  assert.equal(events.find((e) => e.type === 'response.output_text.done').text, deltas);
  const completed = events.at(-1).response;
  assert.equal(completed.status, 'completed');
  assert.ok(completed.usage.total_tokens > 0);
  const stored = await client.responses.retrieve(completed.id);
  assert.equal(stored.output_text, deltas, 'a streamed response is stored too');
});

test('another key cannot read, continue or delete a stored response; its owner can', async () => {
  const alice = await createUser('resp-alice');
  const bob = await createUser('resp-bob');
  const asAlice = openaiClient(stack, { apiKey: alice.key, timeout: 60_000 });
  const asBob = openaiClient(stack, { apiKey: bob.key, timeout: 60_000 });
  const res = await asAlice.responses.create({ model: 'gemini-2.5-flash', input: 'secret' });
  assert.equal((await apiError(asBob.responses.retrieve(res.id), 'bob reads')).status, 404);
  assert.equal((await apiError(client.responses.retrieve(res.id), 'a static token reads')).status, 404);
  const cont = await apiError(asBob.responses.create({ model: 'gemini-2.5-flash', input: 'more', previous_response_id: res.id }), 'bob continues');
  assert.equal(cont.status, 400);
  assert.equal(cont.error.param, 'previous_response_id');
  assert.equal((await apiError(asBob.responses.delete(res.id), 'bob deletes')).status, 404);
  assert.equal((await asAlice.responses.retrieve(res.id)).output_text, 'echo: secret');
  await asAlice.responses.delete(res.id);
  assert.equal((await apiError(asAlice.responses.retrieve(res.id), 'read after delete')).status, 404);
});

test('store:false keeps nothing: it cannot be retrieved nor continued', async () => {
  const res = await client.responses.create({ model: 'gemini-2.5-flash', input: 'forget me', store: false });
  assert.equal(res.store, false);
  assert.equal(res.output_text, 'echo: forget me');
  assert.equal((await apiError(client.responses.retrieve(res.id), 'retrieve')).status, 404);
  const cont = await apiError(client.responses.create({ model: 'gemini-2.5-flash', input: 'x', previous_response_id: res.id }), 'continue');
  assert.equal(cont.status, 400);
  assert.deepEqual(await stack.d1(`SELECT id FROM responses WHERE id = ${sqlStr(res.id)}`), []);
});

test('a user key is charged and logged for a response exactly like for a chat completion', async () => {
  const { id, key } = await createUser('resp-ledger');
  const asUser = openaiClient(stack, { apiKey: key, timeout: 60_000 });
  await asUser.responses.create({ model: 'gemini-2.5-flash', input: 'charge me' });
  await waitForSettlements(stack, id, 1);
  const afterResponse = await ledgerOf(stack, key);
  await asUser.chat.completions.create({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'charge me' }] });
  await waitForSettlements(stack, id, 2);
  const afterChat = await ledgerOf(stack, key);
  assert.equal(afterResponse.used, FLASH_COST, 'the response cost what a Flash request costs');
  assert.equal(afterChat.used - afterResponse.used, afterResponse.used, 'the same as a chat completion');
  assert.equal(afterChat.reserved, 0);
  const rows = await pollD1(stack, `SELECT status, credits FROM request_log WHERE user_id = ${sqlStr(id)} ORDER BY id`, (rs) => rs.length >= 2);
  assert.deepEqual(rows.map((r) => [r.status, r.credits]), [[200, FLASH_COST], [200, FLASH_COST]]);
});

test('a failing first key fails over: the client still gets its response', async () => {
  const model = 'gemini-2.5-flash-resp-failover';
  await stack.mockApi.script({ model, fault: 'server_503', times: 1 });
  const res = await client.responses.create({ model, input: 'survive' });
  assert.equal(res.output_text, 'echo: survive');
  const calls = await stack.mockApi.calls({ model });
  assert.deepEqual(calls.map((c) => c.status), [503, 200]);
  assert.notEqual(calls[0].key, calls[1].key, 'the second attempt used the other key');
});

test('bad input gets a 400 or 404 in OpenAI\'s error shape', async () => {
  const post = (body) => stack.call('POST', '/v1/responses', { body });
  let err = await rawError(await post({ input: 'x' }), 400, 'no model');
  assert.equal(err.param, 'model');
  err = await rawError(await post({ model: 'gemini-2.5-flash', input: [{ type: 'computer_call_output', call_id: 'c' }] }), 400, 'bad item type');
  assert.equal(err.param, 'input[0].type');
  assert.match(err.message, /computer_call_output/);
  err = await rawError(await post({ model: 'gemini-2.5-flash', input: 'x', previous_response_id: 'resp_nope' }), 400, 'unknown previous');
  assert.equal(err.param, 'previous_response_id');
  err = await rawError(await post({ model: 'gemini-2.5-flash', input: 'x', tools: [{ type: 'web_search' }] }), 400, 'built-in tool');
  assert.equal(err.param, 'tools[0].type');
  assert.match(err.message, /web_search/);
  err = await rawError(await stack.call('GET', '/v1/responses/resp_missing'), 404, 'retrieve unknown');
  assert.equal(err.type, 'invalid_request_error');
  await rawError(await stack.call('DELETE', '/v1/responses/resp_missing'), 404, 'delete unknown');
});

test('the cron deletes stored responses past their expiry, and only those', async () => {
  const now = Date.now();
  await stack.d1(
    `INSERT INTO responses (id, scope, created_at, expires_at, body, conversation) VALUES
       ('resp_expired', 'x', ${now - 8 * DAY}, ${now - DAY}, '{}', '[]'),
       ('resp_fresh', 'x', ${now}, ${now + DAY}, '{}', '[]')`,
  );
  await runCron(stack);
  const rows = await stack.d1(`SELECT id FROM responses WHERE id IN ('resp_expired', 'resp_fresh')`);
  assert.deepEqual(rows.map((r) => r.id), ['resp_fresh']);
});
