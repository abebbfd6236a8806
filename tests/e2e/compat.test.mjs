// The compatibility switches of issue 12 (section 3) and the seeds' model-name
// spellings, through the OpenAI SDK (and the GenAI SDK for the native
// surface), with the mock's record as the witness of what went upstream:
// system-as-user, prompt injection, default safety settings, thoughts in
// <think> tags, search citations as annotations (and as a list), code
// execution, URL context, and -non-thinking/-max/-high/-medium/-low/-minimal.
// Each test fails when its switch is off or ignored.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack } from '../lib/harness.mjs';
import { assertMatchesSchema } from '../lib/openapi.mjs';
import { genaiClient, openaiClient } from '../lib/clients.mjs';
import { DEFAULT_SAFETY_SETTINGS, lastCall } from '../lib/util.mjs';
import { CODE_EXECUTION_PARTS, GROUNDING_SOURCES } from '../mock/lib/generate.mjs';

let stack;
let client;

before(async () => {
  stack = await startStack({ keys: ['ok-compat-1'] });
  client = openaiClient(stack);
});
after(async () => stack?.stop());

/** Sets `settings` for the duration of `fn`, then puts them back to their defaults. */
async function withSettings(settings, fn) {
  await stack.admin('PUT', '/settings', settings);
  try {
    return await fn();
  } finally {
    await stack.admin('PUT', '/settings', Object.fromEntries(Object.keys(settings).map((k) => [k, null])));
  }
}

/** A non-streamed chat call, checked against OpenAI's schema. */
async function chat(model, messages, extra = {}) {
  const data = await client.chat.completions.create({ model, messages, ...extra });
  assertMatchesSchema('CreateChatCompletionResponse', data, model);
  return data;
}

/**
 * A streamed chat call: the chunks (each checked against OpenAI's schema), the
 * content, and the stream guarantees (one id, role first, finish once, last).
 */
async function streamed(model, messages, extra = {}) {
  const stream = await client.chat.completions.create({ model, messages, stream: true, ...extra });
  const chunks = [];
  for await (const chunk of stream) {
    assertMatchesSchema('CreateChatCompletionStreamResponse', chunk, model);
    chunks.push(chunk);
  }
  assert.equal(new Set(chunks.map((c) => c.id)).size, 1, 'one id');
  const choices = chunks.flatMap((c) => c.choices);
  assert.equal(choices[0].delta.role, 'assistant', 'role first');
  const finishes = choices.filter((c) => c.finish_reason);
  assert.equal(finishes.length, 1, 'finish_reason once');
  assert.equal(finishes[0], choices.at(-1), 'finish last');
  return {
    chunks,
    choices,
    content: choices.map((c) => c.delta.content ?? '').join(''),
    reasoning: choices.map((c) => c.delta.reasoning_content ?? '').join(''),
  };
}

const user = (content) => [{ role: 'user', content }];

// ---------------------------------------------------------------- system as user

test('system as user: a gemma model gets the system prompt as its leading user turn and answers', async () => {
  const model = 'gemma-3-sau';
  const messages = [
    { role: 'system', content: 'You are terse.' },
    { role: 'developer', content: 'No emoji.' },
    { role: 'user', content: 'hello' },
  ];
  const data = await chat(model, messages);
  assert.equal(data.choices[0].message.content, 'echo: You are terse.\n\nNo emoji.\n\nhello');
  const call = await lastCall(stack, model);
  assert.equal(call.status, 200);
  assert.equal(call.body.systemInstruction, undefined);
  assert.deepEqual(call.body.contents, [
    { role: 'user', parts: [{ text: 'You are terse.\n\nNo emoji.\n\n' }, { text: 'hello' }] },
  ]);

  // Streamed the same way.
  const s = await streamed(model, messages);
  assert.equal(s.content, 'echo: You are terse.\n\nNo emoji.\n\nhello');

  // With the switch emptied, the mock's gemma refuses the instruction as Google does:
  // the switch is what makes the call work.
  await withSettings({ system_as_user_models: [] }, async () => {
    await assert.rejects(chat(model, messages), (err) => {
      assert.equal(err.status, 400);
      assert.match(err.message, /Developer instruction is not enabled for models\/gemma-3-sau/);
      return true;
    });
  });
});

test('system as user on the native surface: a systemInstruction sent to gemma is moved into the contents', async () => {
  const model = 'gemma-3-sau-native';
  const ai = genaiClient(stack);
  const res = await ai.models.generateContent({
    model,
    contents: 'hi there',
    config: { systemInstruction: 'Answer in French.' },
  });
  assert.equal(res.text, 'echo: Answer in French.\n\nhi there');
  const call = await lastCall(stack, model);
  assert.equal(call.body.systemInstruction, undefined);
  assert.deepEqual(call.body.contents[0].parts, [{ text: 'Answer in French.\n\n' }, { text: 'hi there' }]);
});

// ---------------------------------------------------------------- prompt injection

test('prompt injection: system, prefix and suffix rows reach the request, in order, for matching models only', async () => {
  const rows = [
    { pattern: 'gemini-2.5-flash-inj*', position: 'system', text: 'Injected rule.' },
    { pattern: 'gemini-2.5-flash-inj*', position: 'prefix', text: 'PREFIX' },
    { pattern: '*-inj', position: 'suffix', text: 'SUFFIX 1' },
    { pattern: '*', position: 'suffix', text: 'SUFFIX 2' },
    { pattern: 'gemma-*', position: 'prefix', text: 'NEVER' },
  ];
  await withSettings({ prompt_injection: rows }, async () => {
    const model = 'gemini-2.5-flash-inj';
    const data = await chat(model, [
      { role: 'system', content: 'Be kind.' },
      { role: 'user', content: 'first' },
      { role: 'assistant', content: 'ok' },
      { role: 'user', content: 'second' },
    ]);
    assert.equal(data.choices[0].message.content, 'echo: PREFIX\n\nsecond\n\nSUFFIX 1\n\nSUFFIX 2');
    const call = await lastCall(stack, model);
    assert.deepEqual(call.body.systemInstruction, { parts: [{ text: 'Be kind.\n\nInjected rule.' }] });
    assert.equal(call.body.contents[0].parts[0].text, 'first', 'only the last user message with text');
    assert.equal(call.body.contents[2].parts[0].text, 'PREFIX\n\nsecond\n\nSUFFIX 1\n\nSUFFIX 2');

    // No system message: the system row makes one.
    const bare = 'gemini-2.5-flash-inj2';
    await chat(bare, user('q'));
    const bareCall = await lastCall(stack, bare);
    assert.deepEqual(bareCall.body.systemInstruction, { parts: [{ text: 'Injected rule.' }] });
    assert.equal(bareCall.body.contents[0].parts[0].text, 'PREFIX\n\nq\n\nSUFFIX 2');

    // A model only the catch-all row matches.
    const other = 'gemini-2.0-flash-noinj';
    await chat(other, user('q'));
    const otherCall = await lastCall(stack, other);
    assert.equal(otherCall.body.systemInstruction, undefined);
    assert.equal(otherCall.body.contents[0].parts[0].text, 'q\n\nSUFFIX 2');
  });
  // Without rows, nothing is injected.
  const model = 'gemini-2.5-flash-inj3';
  await chat(model, user('q'));
  const call = await lastCall(stack, model);
  assert.equal(call.body.systemInstruction, undefined);
  assert.equal(call.body.contents[0].parts[0].text, 'q');
});

// ---------------------------------------------------------------- default safety settings

const DEFAULT_SAFETY = DEFAULT_SAFETY_SETTINGS;

test('default safety settings are sent when the client sends none; the client\'s own replace them', async () => {
  const model = 'gemini-2.5-flash-safety';
  await chat(model, user('q'));
  assert.deepEqual((await lastCall(stack, model)).body.safetySettings, DEFAULT_SAFETY);

  const own = [{ category: 'HARM_CATEGORY_HARASSMENT', threshold: 'BLOCK_ONLY_HIGH' }];
  await chat(model, user('q'), { extra_body: { google: { safety_settings: own } } });
  assert.deepEqual((await lastCall(stack, model)).body.safetySettings, own);
  await chat(model, user('q'), { safety_settings: own });
  assert.deepEqual((await lastCall(stack, model)).body.safetySettings, own);

  const custom = [{ category: 'HARM_CATEGORY_DANGEROUS_CONTENT', threshold: 'BLOCK_ONLY_HIGH' }];
  await withSettings({ default_safety_settings: custom }, async () => {
    await chat(model, user('q'));
    assert.deepEqual((await lastCall(stack, model)).body.safetySettings, custom);
  });
  await withSettings({ default_safety_settings: [] }, async () => {
    await chat(model, user('q'));
    assert.equal((await lastCall(stack, model)).body.safetySettings, undefined, 'an empty list sends nothing');
  });

  // The native surface too, unless the body has its own.
  const native = 'gemini-2.5-flash-safety-native';
  const ai = genaiClient(stack);
  await ai.models.generateContent({ model: native, contents: 'q' });
  assert.deepEqual((await lastCall(stack, native)).body.safetySettings, DEFAULT_SAFETY);
  await ai.models.generateContent({ model: native, contents: 'q', config: { safetySettings: own } });
  assert.deepEqual((await lastCall(stack, native)).body.safetySettings, own);
});

// ---------------------------------------------------------------- thoughts in content

test('thoughts_in_content: thoughts come inside content as <think>…</think>, streamed and not', async () => {
  const thoughts = { extra_body: { google: { thinking_config: { include_thoughts: true } } } };
  await withSettings({ thoughts_in_content: true }, async () => {
    const model = 'gemini-2.5-flash-think-tags';
    const data = await chat(model, user('why'), thoughts);
    const call = await lastCall(stack, model);
    const thought = call.response.candidates[0].content.parts.find((p) => p.thought).text;
    const message = data.choices[0].message;
    assert.equal(message.content, `<think>${thought}</think>echo: why`);
    assert.equal(message.reasoning_content, undefined);

    const s = await streamed(model, user('why'), thoughts);
    assert.equal(s.content, `<think>${thought}</think>echo: why`);
    assert.equal(s.reasoning, '', 'no reasoning_content then');
    const pieces = s.choices.map((c) => c.delta.content).filter(Boolean);
    assert.ok(pieces[0].startsWith('<think>'), 'opens with the first thought delta');
    assert.ok(pieces[1].startsWith('</think>') && pieces[1].length > '</think>'.length, 'closes before the first answer text');

    // Without thoughts asked for, nothing changes.
    const plain = await chat('gemini-2.5-flash-think-none', user('why'));
    assert.equal(plain.choices[0].message.content, 'echo: why');
  });
  // Off (the default): thoughts stay in reasoning_content.
  const data = await chat('gemini-2.5-flash-think-off', user('why'), thoughts);
  assert.equal(data.choices[0].message.content, 'echo: why');
  assert.ok(data.choices[0].message.reasoning_content.length > 0);
});

// ---------------------------------------------------------------- citations

/** The text each annotation's span covers in `content`, by characters. */
const spans = (content, annotations) =>
  annotations.map((a) => [...content].slice(a.url_citation.start_index, a.url_citation.end_index).join(''));

test('search citations: groundingMetadata becomes url_citation annotations with character indices (Chinese answer)', async () => {
  const question = '北京是中国的首都吗？上海呢？';
  const data = await chat('gemini-2.5-flash-cite-search', user(question));
  const call = await lastCall(stack, 'gemini-2.5-flash-cite');
  assert.deepEqual(call.body.tools, [{ googleSearch: {} }]);
  const supports = call.response.candidates[0].groundingMetadata.groundingSupports;
  const message = data.choices[0].message;
  assert.equal(message.content, `echo: ${question}`);
  // Google's byte offsets are not the character offsets of this answer.
  assert.notEqual(supports[1].segment.startIndex, [...supports[0].segment.text].length);
  assert.deepEqual(message.annotations, [
    { type: 'url_citation', url_citation: { url: GROUNDING_SOURCES[0].uri, title: GROUNDING_SOURCES[0].title, start_index: 0, end_index: [...supports[0].segment.text].length } },
    ...[1, 0].map((k) => ({
      type: 'url_citation',
      url_citation: {
        url: GROUNDING_SOURCES[k].uri,
        title: GROUNDING_SOURCES[k].title,
        start_index: [...supports[0].segment.text].length,
        end_index: [...message.content].length,
      },
    })),
  ]);
  assert.deepEqual(spans(message.content, message.annotations), [supports[0].segment.text, supports[1].segment.text, supports[1].segment.text]);

  // Streamed: the annotations come on a delta before the finish chunk.
  const s = await streamed('gemini-2.5-flash-cite-search', user(question));
  assert.equal(s.content, `echo: ${question}`);
  const annotated = s.choices.filter((c) => c.delta.annotations);
  assert.equal(annotated.length, 1);
  assert.equal(annotated[0], s.choices.at(-2), 'right before the finish');
  assert.deepEqual(annotated[0].delta.annotations, message.annotations);
});

test('search_citations annotations_and_list: a numbered, deduplicated source list ends the answer', async () => {
  const list = `\n\nSources:\n1. [${GROUNDING_SOURCES[0].title}](${GROUNDING_SOURCES[0].uri})\n2. [${GROUNDING_SOURCES[1].title}](${GROUNDING_SOURCES[1].uri})`;
  await withSettings({ search_citations: 'annotations_and_list' }, async () => {
    const data = await chat('gemini-2.5-flash-cite-list-search', user('天气如何'));
    const message = data.choices[0].message;
    assert.equal(message.content, `echo: 天气如何${list}`);
    assert.deepEqual(spans(message.content, message.annotations), ['echo:', ' 天气如何', ' 天气如何']);

    const s = await streamed('gemini-2.5-flash-cite-list-search', user('天气如何'));
    assert.equal(s.content, `echo: 天气如何${list}`);
    assert.equal(s.choices.at(-2).delta.content, list, 'the list is the last content delta before the finish');
  });
  // The default shows no list.
  const data = await chat('gemini-2.5-flash-cite-nolist-search', user('天气如何'));
  assert.equal(data.choices[0].message.content, 'echo: 天气如何');
});

// ---------------------------------------------------------------- code execution and URL context

const FENCED = '\n```python\nprint(6 * 7)\n```\n\n```output\n42\n\n```\nThe code printed 42.';

test('code execution: -code adds the codeExecution tool and its parts render as fenced blocks, streamed and not', async () => {
  const data = await chat('gemini-2.5-flash-exec-code', user('compute'));
  const call = await lastCall(stack, 'gemini-2.5-flash-exec');
  assert.deepEqual(call.body.tools, [{ codeExecution: {} }]);
  assert.deepEqual(call.response.candidates[0].content.parts.slice(1), CODE_EXECUTION_PARTS);
  assert.equal(data.choices[0].message.content, `echo: compute${FENCED}`);
  const s = await streamed('gemini-2.5-flash-exec-code', user('compute'));
  assert.equal(s.content, `echo: compute${FENCED}`);

  // code_execution_models gives it without the suffix.
  await withSettings({ code_execution_models: ['gemini-2.5-flash-exec-glob'] }, async () => {
    const glob = await chat('gemini-2.5-flash-exec-glob', user('compute'));
    assert.equal(glob.choices[0].message.content, `echo: compute${FENCED}`);
  });
  const none = await chat('gemini-2.5-flash-exec-glob', user('compute'));
  assert.equal(none.choices[0].message.content, 'echo: compute');
  assert.equal((await lastCall(stack, 'gemini-2.5-flash-exec-glob')).body.tools, undefined);
});

test('URL context: -urlcontext adds the urlContext tool; a model without it is a 400 naming model', async () => {
  await chat('gemini-2.5-flash-url-urlcontext', user('read https://example.com/page'));
  assert.deepEqual((await lastCall(stack, 'gemini-2.5-flash-url')).body.tools, [{ urlContext: {} }]);
  await withSettings({ url_context_models: ['gemini-3-flash-preview-url*', 'gemini-2.0-flash-url*'] }, async () => {
    await chat('gemini-3-flash-preview-url', user('q'));
    assert.deepEqual((await lastCall(stack, 'gemini-3-flash-preview-url')).body.tools, [{ urlContext: {} }]);
    // A glob only adds it where it works.
    await chat('gemini-2.0-flash-url', user('q'));
    assert.equal((await lastCall(stack, 'gemini-2.0-flash-url')).body.tools, undefined);
  });
  const before = (await stack.mockApi.calls({ model: 'gemini-2.0-flash-old' })).length;
  await assert.rejects(chat('gemini-2.0-flash-old-urlcontext', user('q')), (err) => {
    assert.equal(err.status, 400);
    assert.equal(err.param, 'model');
    assert.match(err.message, /gemini-2\.0-flash-old/);
    return true;
  });
  assert.equal((await stack.mockApi.calls({ model: 'gemini-2.0-flash-old' })).length, before, 'nothing went upstream');
});

// ---------------------------------------------------------------- model-name spellings

test('the seeds\' suffix spellings reach the mock as the right thinkingConfig, and combine with -search', async () => {
  const rows = [
    ['gemini-2.5-flash-sp1', '-non-thinking', { thinkingBudget: 0 }],
    ['gemini-2.5-flash-sp2', '-max', { thinkingBudget: 24576 }],
    ['gemini-2.5-flash-sp3', '-high', { thinkingBudget: 24576 }],
    ['gemini-2.5-flash-sp4', '-medium', { thinkingBudget: 8192 }],
    ['gemini-2.5-flash-sp5', '-low', { thinkingBudget: 1024 }],
    ['gemini-2.5-flash-sp6', '-minimal', { thinkingBudget: 0 }],
    ['gemini-2.5-pro-sp7', '-max', { thinkingBudget: 32768 }],
    ['gemini-3-flash-preview-sp8', '-minimal', { thinkingLevel: 'minimal' }],
    ['gemini-3-flash-preview-sp9', '-low', { thinkingLevel: 'low' }],
    ['gemini-3-flash-preview-sp10', '-medium', { thinkingLevel: 'medium' }],
    ['gemini-3-flash-preview-sp11', '-high', { thinkingLevel: 'high' }],
    ['gemini-3-flash-preview-sp12', '-non-thinking', { thinkingLevel: 'minimal' }],
  ];
  for (const [base, suffix, config] of rows) {
    const data = await chat(`${base}${suffix}`, user('q'));
    assert.equal(data.model, `${base}${suffix}`, 'the client sees its own name');
    const call = await lastCall(stack, base);
    assert.equal(call.status, 200, `${base}${suffix}: the mock accepted it`);
    assert.deepEqual(call.body.generationConfig?.thinkingConfig, config, `${base}${suffix}`);
  }
  const combined = await chat('gemini-3-pro-preview-sp13-medium-search', user('q'));
  assert.equal(combined.choices[0].message.content, 'echo: q');
  const call = await lastCall(stack, 'gemini-3-pro-preview-sp13');
  assert.deepEqual(call.body.generationConfig.thinkingConfig, { thinkingLevel: 'high' }, '3 Pro has no medium');
  assert.deepEqual(call.body.tools, [{ googleSearch: {} }]);

  // They are valid model_variants, listed after each model that thinks.
  await withSettings({ model_variants: ['-high', '-non-thinking-search'] }, async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    const at = ids.indexOf('gemini-2.5-flash');
    assert.deepEqual(ids.slice(at, at + 3), ['gemini-2.5-flash', 'gemini-2.5-flash-high', 'gemini-2.5-flash-non-thinking-search']);
  });
});
