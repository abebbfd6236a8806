// Tools and structured output against the mock's model of Gemini's schema
// rules (issue 3, acceptance 3 and 5): every tool_choice form, every
// response_format form, and a set of real-world schemas, each sent as tool
// parameters and as a response schema, to a JSON-Schema model (2.5) and to a
// model that only takes Gemini's OpenAPI subset (2.0). Then the SDK's
// beta parse helper with a Zod schema, end to end.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { zodResponseFormat } from 'openai/helpers/zod';
import { z } from 'zod';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { startStack, ROOT } from '../lib/harness.mjs';
import { assertMatchesSchema } from '../lib/openapi.mjs';
import { openaiClient } from '../lib/clients.mjs';
import { lastCall } from '../lib/util.mjs';

const FIXTURES = join(ROOT, 'tests/fixtures/schemas');
const SCHEMAS = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => ({ file: f, ...JSON.parse(readFileSync(join(FIXTURES, f), 'utf8')) }));

let stack;
let client;

before(async () => {
  stack = await startStack({ keys: ['ok-schema-1'] });
  client = openaiClient(stack);
});
after(async () => stack?.stop());

/** Validates a value against a client's JSON Schema, as the client would. */
function validatorFor(schema) {
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false });
  addFormats(ajv);
  const { $schema: _ignored, ...rest } = schema;
  // draft-07 `definitions` refs resolve the same way under 2020-12.
  return ajv.compile(rest);
}

const toolName = (name) => name.replace(/[^a-zA-Z0-9_]/g, '_').slice(0, 60);

test('the schema set is large enough to mean something', () => {
  assert.ok(SCHEMAS.length >= 15, `only ${SCHEMAS.length} schemas`);
});

const MODELS = [
  { model: 'gemini-2.5-flash-schemas', dialect: 'json' },
  { model: 'gemini-2.0-flash-schemas', dialect: 'openapi' },
];

for (const { model, dialect } of MODELS) {
  test(`every schema as tool parameters is accepted by the mock's Gemini rules (${dialect})`, async () => {
    for (const fixture of SCHEMAS.filter((s) => !s.enumOnly)) {
      const name = toolName(fixture.name);
      const res = await client.chat.completions.create({
        model,
        messages: [{ role: 'user', content: `use ${name}` }],
        tools: [{ type: 'function', function: { name, description: fixture.source, parameters: fixture.schema } }],
      });
      assertMatchesSchema('CreateChatCompletionResponse', res, fixture.file);
      const call = await lastCall(stack, model);
      assert.equal(call.status, 200, `${fixture.file}: ${call.error?.error?.message ?? ''}`);
      const decl = call.body.tools[0].functionDeclarations[0];
      if (dialect === 'json') {
        assert.ok(decl.parametersJsonSchema, `${fixture.file}: JSON Schema sent as is`);
        assert.equal(decl.parameters, undefined);
      } else {
        assert.equal(decl.parametersJsonSchema, undefined, `${fixture.file}: the 2.0 model gets the OpenAPI subset`);
      }
    }
  });

  test(`every schema as response_format.json_schema is accepted, and the answer validates (${dialect})`, async () => {
    for (const fixture of SCHEMAS) {
      const res = await client.chat.completions.create({
        model,
        messages: [{ role: 'user', content: 'fill it' }],
        response_format: { type: 'json_schema', json_schema: { name: toolName(fixture.name), schema: fixture.schema, strict: true } },
      });
      assertMatchesSchema('CreateChatCompletionResponse', res, fixture.file);
      const call = await lastCall(stack, model);
      assert.equal(call.status, 200, `${fixture.file}: ${call.error?.error?.message ?? ''}`);
      const config = call.body.generationConfig;
      const value = JSON.parse(res.choices[0].message.content);
      if (fixture.enumOnly) {
        assert.equal(config.responseMimeType, 'text/x.enum', fixture.file);
        assert.ok(fixture.schema.enum.includes(value), `${fixture.file}: an enum value as a JSON string`);
        continue;
      }
      assert.equal(config.responseMimeType, 'application/json', fixture.file);
      if (dialect === 'json') {
        assert.ok(config.responseJsonSchema && !config.responseSchema, fixture.file);
        const validate = validatorFor(fixture.schema);
        assert.ok(validate(value), `${fixture.file}: ${JSON.stringify(validate.errors)}`);
      } else {
        assert.ok(config.responseSchema && !config.responseJsonSchema, fixture.file);
      }
    }
  });
}

test('every tool_choice form maps to its functionCallingConfig', async () => {
  const model = 'gemini-2.5-flash-tool-choice';
  const fn = (name) => ({ type: 'function', function: { name, parameters: { type: 'object', properties: { q: { type: 'string' } } } } });
  const tools = [fn('search'), fn('fetch'), fn('write')];
  const rows = [
    [undefined, undefined],
    ['none', { mode: 'NONE' }],
    ['auto', { mode: 'AUTO' }],
    ['required', { mode: 'ANY' }],
    [{ type: 'function', function: { name: 'fetch' } }, { mode: 'ANY', allowedFunctionNames: ['fetch'] }],
    [
      { type: 'allowed_tools', allowed_tools: { mode: 'auto', tools: [{ type: 'function', function: { name: 'search' } }, { type: 'function', function: { name: 'write' } }] } },
      { mode: 'VALIDATED', allowedFunctionNames: ['search', 'write'] },
    ],
    [
      { type: 'allowed_tools', allowed_tools: { mode: 'required', tools: [{ type: 'function', function: { name: 'write' } }] } },
      { mode: 'ANY', allowedFunctionNames: ['write'] },
    ],
  ];
  for (const [choice, expected] of rows) {
    const body = { model, messages: [{ role: 'user', content: 'go' }], tools };
    if (choice !== undefined) body.tool_choice = choice;
    await client.chat.completions.create(body);
    const call = await lastCall(stack, model);
    assert.equal(call.status, 200, JSON.stringify(choice));
    assert.deepEqual(call.body.toolConfig?.functionCallingConfig, expected, JSON.stringify(choice));
  }
  // A name that is not among the tools is the client's error, before any upstream call.
  const before = (await stack.mockApi.calls({ model })).length;
  await assert.rejects(
    client.chat.completions.create({ model, messages: [{ role: 'user', content: 'go' }], tools, tool_choice: { type: 'function', function: { name: 'nope' } } }),
    (e) => e.status === 400 && e.param === 'tool_choice',
  );
  assert.equal((await stack.mockApi.calls({ model })).length, before);
});

test('every response_format form maps to its mime type', async () => {
  const model = 'gemini-2.5-flash-response-format';
  const rows = [
    [{ type: 'text' }, 'text/plain', (c) => assert.equal(c, 'echo: give')],
    [{ type: 'json_object' }, 'application/json', (c) => assert.deepEqual(JSON.parse(c), { echo: 'give' })],
    [{ type: 'json_schema', json_schema: { name: 'color', schema: { type: 'string', enum: ['red', 'green'] } } }, 'text/x.enum', (c) => assert.equal(JSON.parse(c), 'red')],
    [
      { type: 'json_schema', json_schema: { name: 'obj', schema: { type: 'object', properties: { n: { type: 'integer', minimum: 3 } }, required: ['n'] } } },
      'application/json',
      (c) => assert.ok(JSON.parse(c).n >= 3),
    ],
  ];
  for (const [format, mime, check] of rows) {
    for (const stream of [false, true]) {
      let content = '';
      if (stream) {
        const s = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'give' }], response_format: format, stream: true });
        for await (const chunk of s) {
          assertMatchesSchema('CreateChatCompletionStreamResponse', chunk);
          content += chunk.choices[0]?.delta?.content ?? '';
        }
      } else {
        const res = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'give' }], response_format: format });
        content = res.choices[0].message.content;
      }
      const call = await lastCall(stack, model);
      assert.equal(call.status, 200);
      assert.equal(call.body.generationConfig.responseMimeType, mime, `${format.type} ${stream}`);
      check(content);
    }
  }
});

test('beta.chat.completions.parse with a Zod schema returns the parsed object', async () => {
  const Step = z.object({ explanation: z.string(), output: z.string() });
  const MathAnswer = z.object({
    steps: z.array(Step),
    final_answer: z.string(),
    confidence: z.number().nullable(),
    kind: z.enum(['arithmetic', 'algebra']),
  });
  const model = 'gemini-2.5-flash-parse';
  const completion = await client.chat.completions.parse({
    model,
    messages: [{ role: 'user', content: 'solve 8x + 7 = -23' }],
    response_format: zodResponseFormat(MathAnswer, 'math_answer'),
  });
  const { _request_id: _id, ...plain } = completion;
  const message = completion.choices[0].message;
  assert.equal(message.refusal ?? null, null);
  const parsed = message.parsed;
  assert.ok(parsed, 'the SDK parsed the answer');
  assert.deepEqual(MathAnswer.parse(parsed), parsed);
  assert.ok(Array.isArray(parsed.steps) && ['arithmetic', 'algebra'].includes(parsed.kind));
  const call = await lastCall(stack, model);
  assert.equal(call.body.generationConfig.responseMimeType, 'application/json');
  assert.ok(call.body.generationConfig.responseJsonSchema.properties.steps);
  // The wire response, without the SDK's additions, validates against OpenAI's schema.
  const wire = { ...plain, choices: plain.choices.map(({ message: { parsed: _p, ...m }, ...c }) => ({ ...c, message: m })) };
  assertMatchesSchema('CreateChatCompletionResponse', wire);

  // The same on a Gemini 3 model that is thinking.
  const withTools = await client.chat.completions.parse({
    model: 'gemini-3-flash-preview-parse',
    messages: [{ role: 'user', content: 'solve it' }],
    response_format: zodResponseFormat(MathAnswer, 'math_answer'),
    reasoning_effort: 'low',
  });
  assert.deepEqual(MathAnswer.parse(withTools.choices[0].message.parsed), withTools.choices[0].message.parsed);
});

test("a response schema reaches Gemini in the client's key order, so the answer comes back in it", async () => {
  const model = 'gemini-2.5-flash-order';
  // Deliberately not alphabetical: a model should reason before it answers.
  const schema = {
    type: 'object',
    properties: {
      reasoning: { type: 'string' },
      answer: { type: 'string' },
      confidence: { type: 'number', minimum: 0, maximum: 1 },
      citations: { type: 'array', items: { type: 'object', properties: { url: { type: 'string' }, quote: { type: 'string' } }, required: ['url', 'quote'] } },
    },
    required: ['reasoning', 'answer', 'confidence', 'citations'],
    additionalProperties: false,
  };
  const res = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'why?' }],
    response_format: { type: 'json_schema', json_schema: { name: 'ordered', schema, strict: true } },
  });
  const sent = (await lastCall(stack, model)).body.generationConfig.responseJsonSchema;
  assert.deepEqual(Object.keys(sent), ['type', 'properties', 'required', 'additionalProperties'], 'top-level keys in the client order');
  assert.deepEqual(Object.keys(sent.properties), ['reasoning', 'answer', 'confidence', 'citations']);
  assert.deepEqual(Object.keys(sent.properties.citations.items.properties), ['url', 'quote']);
  assert.deepEqual(Object.keys(JSON.parse(res.choices[0].message.content)), ['reasoning', 'answer', 'confidence', 'citations']);
});
