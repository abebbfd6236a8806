// The model catalog settings on both surfaces, through both official SDKs:
// aliases (listed, and served as their model), disabled models (neither
// listed nor served), per-model thinking defaults (applied only when a
// request sets no thinking), the optional default model for unknown names,
// the admin models API that edits them, and bad values (a 400 naming the
// field, nothing saved).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '@google/genai';
import { startStack } from '../lib/harness.mjs';
import { genaiClient, openaiClient } from '../lib/clients.mjs';
import { lastCall } from '../lib/util.mjs';

let stack;
let openai;
let genai;

before(async () => {
  stack = await startStack({ keys: ['ok-catalog-1', 'ok-catalog-2'] });
  openai = openaiClient(stack);
  genai = genaiClient(stack);
});
after(async () => stack?.stop());

const chat = (model, content, extra = {}) =>
  openai.chat.completions.create({ model, messages: [{ role: 'user', content }], ...extra });
const generate = (model, text, config) =>
  genai.models.generateContent({ model, contents: text, ...(config ? { config } : {}) });

/** The status an SDK call failed with. */
async function failure(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  return assert.fail('expected the call to fail');
}

/** PATCHes settings expecting a 400 that names `field`; then checks nothing was saved. */
async function refused(patch, field) {
  const before = await stack.admin('GET', '/settings');
  const res = await stack.call('PATCH', '/admin/api/settings', {
    body: patch, headers: { authorization: 'Bearer test-admin-password' }, token: null,
  });
  const body = await res.json();
  assert.equal(res.status, 400, `${JSON.stringify(patch)}: ${JSON.stringify(body)}`);
  assert.equal(body.error.param, field, JSON.stringify(body));
  assert.deepEqual(await stack.admin('GET', '/settings'), before, 'a refused patch saves nothing');
}

test('an alias is listed and served as its model on both surfaces', async () => {
  await stack.admin('PATCH', '/settings', { model_aliases: { 'my-fast': 'gemini-2.5-flash-cat1' } });
  const res = await chat('my-fast', 'hello alias');
  assert.equal(res.choices[0].message.content, 'echo: hello alias');
  assert.equal(res.model, 'my-fast', 'the client sees the name it asked for');
  assert.equal((await lastCall(stack, 'gemini-2.5-flash-cat1')).action, 'generateContent');

  const native = await generate('my-fast', 'native alias');
  assert.equal(native.text, 'echo: native alias');
  const call = await lastCall(stack, 'gemini-2.5-flash-cat1');
  assert.match(call.path, /models\/gemini-2\.5-flash-cat1:generateContent$/);

  // Listed right after its model, on both surfaces (the upstream's own catalogue model).
  await stack.admin('PATCH', '/settings', { model_aliases: { 'my-fast': 'gemini-2.5-flash' } });
  const ids = (await openai.models.list()).data.map((m) => m.id);
  assert.equal(ids[ids.indexOf('gemini-2.5-flash') + 1], 'my-fast', ids.join(' '));
  assert.equal((await openai.models.retrieve('my-fast')).id, 'my-fast');
  const names = [];
  for await (const m of await genai.models.list()) names.push(m.name);
  assert.ok(names.includes('models/my-fast'), names.join(' '));
  assert.equal((await genai.models.get({ model: 'my-fast' })).name, 'models/my-fast');
});

test('a disabled model is neither listed nor served, under its name or an alias', async () => {
  await stack.admin('PATCH', '/settings', {
    disabled_models: ['gemini-2.0-*'], model_aliases: { old: 'gemini-2.0-flash' },
  });
  const before = (await stack.mockApi.calls({ model: 'gemini-2.0-flash' })).length;
  for (const model of ['gemini-2.0-flash', 'old', 'gemini-2.0-flash-nothinking']) {
    const err = await failure(chat(model, 'hi'));
    assert.equal(err.status, 404, `${model}: ${err}`);
    assert.equal(err.code, 'model_not_found');
  }
  const nativeErr = await failure(generate('gemini-2.0-flash', 'hi'));
  assert.ok(nativeErr instanceof ApiError);
  assert.equal(nativeErr.status, 404);
  assert.equal((await stack.mockApi.calls({ model: 'gemini-2.0-flash' })).length, before, 'nothing went upstream');
  const ids = (await openai.models.list()).data.map((m) => m.id);
  assert.ok(!ids.some((id) => id.startsWith('gemini-2.0-') || id === 'old'), ids.join(' '));
  const names = [];
  for await (const m of await genai.models.list()) names.push(m.name);
  assert.ok(!names.some((n) => n.startsWith('models/gemini-2.0-')), names.join(' '));
  await stack.admin('PATCH', '/settings', { disabled_models: null, model_aliases: null });
  assert.equal((await chat('gemini-2.0-flash', 'back')).choices[0].message.content, 'echo: back');
});

test('a thinking default applies when the request sets no thinking, on both surfaces', async () => {
  const model = 'gemini-2.5-flash-cat3';
  await stack.admin('PATCH', '/settings', {
    thinking_defaults: [{ pattern: 'gemini-2.5-flash-cat3*', thinking_budget: 0, include_thoughts: false }],
  });
  await chat(model, 'no thinking asked');
  assert.deepEqual((await lastCall(stack, model)).body.generationConfig.thinkingConfig, { thinkingBudget: 0, includeThoughts: false });
  await chat(model, 'effort asked', { reasoning_effort: 'high' });
  assert.deepEqual((await lastCall(stack, model)).body.generationConfig.thinkingConfig, { thinkingBudget: 24576, includeThoughts: false });

  await generate(model, 'native default');
  assert.deepEqual((await lastCall(stack, model)).body.generationConfig.thinkingConfig, { thinkingBudget: 0, includeThoughts: false });
  await generate(model, 'native own', { thinkingConfig: { thinkingBudget: 2048 } });
  assert.deepEqual((await lastCall(stack, model)).body.generationConfig.thinkingConfig, { thinkingBudget: 2048 });
  // Another model is untouched.
  await chat('gemini-2.5-pro-cat3', 'other model');
  assert.equal((await lastCall(stack, 'gemini-2.5-pro-cat3')).body.generationConfig?.thinkingConfig, undefined);
  await stack.admin('PATCH', '/settings', { thinking_defaults: null });
});

test('default_model answers unknown names only when set', async () => {
  const err = await failure(chat('gpt-4o', 'unknown'));
  assert.equal(err.status, 404);
  await stack.admin('PATCH', '/settings', { default_model: 'gemini-2.5-flash' });
  const generations = async () => (await stack.mockApi.calls({ model: 'gemini-2.5-flash', action: 'generateContent' })).length;
  const before = await generations();
  const res = await chat('gpt-4o', 'answered by the default');
  assert.equal(res.choices[0].message.content, 'echo: answered by the default');
  assert.equal(res.model, 'gpt-4o');
  assert.equal(await generations(), before + 1);
  // A known model is still itself.
  await chat('gemini-2.5-pro', 'known');
  assert.equal((await lastCall(stack, 'gemini-2.5-pro')).action, 'generateContent');
  await stack.admin('PATCH', '/settings', { default_model: null });
  assert.equal((await failure(chat('gpt-4o', 'off again'))).status, 404);
});

test('bad catalog values get a 400 naming the field, and nothing is saved', async () => {
  await refused({ model_aliases: { same: 'same' } }, 'model_aliases');
  await refused({ model_aliases: { a: 'b', b: 'c' } }, 'model_aliases');
  await refused({ model_aliases: { 'bad name': 'gemini-2.5-flash' } }, 'model_aliases');
  await refused({ model_aliases: ['not', 'an', 'object'] }, 'model_aliases');
  await refused({ disabled_models: [''] }, 'disabled_models');
  await refused({ thinking_defaults: [{ pattern: 'x', thinking_budget: 1, thinking_level: 'low' }] }, 'thinking_defaults');
  await refused({ thinking_defaults: [{ pattern: 'x', thinking_level: 'extreme' }] }, 'thinking_defaults');
  await refused({ thinking_defaults: [{ pattern: 'x', colour: 'red' }] }, 'thinking_defaults');
  await refused({ default_model: '../etc' }, 'default_model');
});

test('the admin models API shows and edits aliases, enabled, cost and thinking per model', async () => {
  const { models, default_model: defaultModel } = await stack.admin('GET', '/models');
  assert.equal(defaultModel, null);
  const pro = models.find((m) => m.id === 'gemini-2.5-pro');
  assert.ok(pro, models.map((m) => m.id).join(' '));
  assert.deepEqual(
    { enabled: pro.enabled, aliases: pro.aliases, thinking: pro.thinking, cost: pro.cost, thinking_default: pro.thinking_default },
    { enabled: true, aliases: [], thinking: true, cost: { request_cost: 10, prompt_price: 1, completion_price: 1 }, thinking_default: null },
  );
  const { model } = await stack.admin('PATCH', '/models/gemini-2.5-pro', {
    aliases: ['big-brain'],
    cost: { request_cost: 7, prompt_price: 1, completion_price: 3 },
    thinking_default: { thinking_budget: 1024, include_thoughts: true },
  });
  assert.deepEqual(model.aliases, ['big-brain']);
  assert.equal(model.cost.request_cost, 7);
  assert.deepEqual(model.thinking_default, { thinking_budget: 1024, include_thoughts: true });
  const settings = await stack.admin('GET', '/settings');
  assert.equal(settings.model_aliases['big-brain'], 'gemini-2.5-pro');
  assert.equal(settings.model_costs[0].pattern, 'gemini-2.5-pro');

  await chat('big-brain', 'through the new alias');
  assert.deepEqual((await lastCall(stack, 'gemini-2.5-pro')).body.generationConfig.thinkingConfig, { thinkingBudget: 1024, includeThoughts: true });

  const off = await stack.admin('PATCH', '/models/gemini-2.5-pro', { enabled: false });
  assert.equal(off.model.enabled, false);
  assert.equal((await failure(chat('big-brain', 'disabled'))).status, 404);
  assert.equal((await failure(generate('gemini-2.5-pro', 'disabled'))).status, 404);

  // A bad edit is a 400 naming the field, and nothing changes.
  const before = await stack.admin('GET', '/settings');
  for (const [patch, field] of [
    [{ thinking_default: { thinking_level: 'loud' } }, 'thinking_defaults'],
    [{ aliases: ['bad name'] }, 'model_aliases'],
  ]) {
    const res = await stack.call('PATCH', '/admin/api/models/gemini-2.5-pro', {
      body: patch, headers: { authorization: 'Bearer test-admin-password' }, token: null,
    });
    const body = await res.json();
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.equal(body.error.param, field);
  }
  const unknownField = await stack.call('PATCH', '/admin/api/models/gemini-2.5-pro', {
    body: { colour: 'red' }, headers: { authorization: 'Bearer test-admin-password' }, token: null,
  });
  assert.equal(unknownField.status, 400);
  assert.deepEqual(await stack.admin('GET', '/settings'), before);

  await stack.admin('PATCH', '/models/gemini-2.5-pro', { enabled: true, aliases: [], cost: null, thinking_default: null });
  assert.equal((await chat('gemini-2.5-pro', 'back')).choices[0].message.content, 'echo: back');
});
