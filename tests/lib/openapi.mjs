// Validates OpenAI-surface responses against the official OpenAI OpenAPI 3.1
// document with Ajv, the JSON Schema library: nothing here is a hand-written
// schema check. The document is vendored in the repository as a subset:
// tests/fixtures/openai-openapi/openapi.json holds the upstream `openapi` and
// `info` and every `components.schemas` entry the tests' root schemas reach
// through `$ref` (source commit, licence, root list and the command that
// regenerates it: tests/fixtures/openai-openapi/README.md; the extractor is
// tests/lib/extract-openapi.mjs).
//
//   import { assertMatchesSchema, validateAgainst } from '../lib/openapi.mjs';
//   assertMatchesSchema('CreateChatCompletionResponse', body, 'non-stream chat');
//   const { valid, errors } = validateAgainst('ErrorResponse', body);
//
// The whole document is added to Ajv under the id `openai`, so the spec's own
// `$ref: '#/components/schemas/...'` pointers resolve inside it, and a schema
// is fetched as `openai#/components/schemas/<Name>`.
//
// Ajv is configured, not the spec edited:
// - `strict: false` makes Ajv ignore the OpenAPI-only keywords it does not
//   know (`x-*`, `discriminator`, `example`, `deprecated`, ...).
// - The OpenAPI formats that are not JSON Schema formats (`unixtime`,
//   `int64`, `float`, `double`, `binary`) are registered; `uri`, `date` etc.
//   come from ajv-formats.
// - `nullable` is the one OpenAPI 3.0 keyword Ajv refuses to ignore: it
//   implements it natively next to `type`, and throws at compile time when a
//   schema has `nullable` without `type` (as
//   `CreateChatCompletionStreamResponse.usage` does: a `$ref` + `nullable`).
//   So the document is loaded into a deep copy in which every
//   `nullable: true` schema `S` becomes `anyOf: [S, {type: 'null'}]` (its
//   JSON Schema meaning) and `nullable: false` is dropped. The file on disk
//   is never modified.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const ROOT = resolve(new URL('../..', import.meta.url).pathname);
export const SPEC_PATH = resolve(ROOT, 'tests/fixtures/openai-openapi/openapi.json');
const SPEC_ID = 'openai';

/** Keys whose value is a map of names to schemas (a property may be called `nullable`). */
const SCHEMA_MAPS = new Set(['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas', 'schemas']);

/**
 * A deep copy of `node` with OpenAPI 3.0 `nullable` rewritten in JSON Schema
 * terms. Only a boolean `nullable` on a schema object is a keyword; a
 * property named `nullable` (a schema inside `properties`) is left alone.
 */
export function rewriteNullable(node, inSchemaMap = false) {
  if (Array.isArray(node)) return node.map((item) => rewriteNullable(item));
  if (node === null || typeof node !== 'object') return node;
  const out = {};
  for (const [key, value] of Object.entries(node)) {
    out[key] = rewriteNullable(value, !inSchemaMap && SCHEMA_MAPS.has(key));
  }
  if (inSchemaMap) return out; // `out` is a name → schema map, not a schema
  if (typeof out.nullable !== 'boolean') return out;
  const { nullable, ...schema } = out;
  if (!nullable) return schema;
  // Keep annotations at the top so error paths stay readable.
  const { description, title, ...rest } = schema;
  return {
    ...(title !== undefined ? { title } : {}),
    ...(description !== undefined ? { description } : {}),
    anyOf: [rest, { type: 'null' }],
  };
}

let cached = null;

/** The Ajv instance with the spec loaded (built once per process). */
export function openApiAjv() {
  if (cached) return cached;
  const spec = rewriteNullable(JSON.parse(readFileSync(SPEC_PATH, 'utf8')));
  assert.match(String(spec.openapi), /^3\.1\./, `${SPEC_PATH} is not an OpenAPI 3.1 document`);
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
  addFormats(ajv);
  const isInt = (n) => Number.isInteger(n);
  ajv.addFormat('unixtime', { type: 'number', validate: (n) => isInt(n) && n >= 0 });
  ajv.addFormat('int64', { type: 'number', validate: isInt });
  ajv.addFormat('int32', { type: 'number', validate: (n) => isInt(n) && n >= -(2 ** 31) && n < 2 ** 31 });
  ajv.addFormat('float', { type: 'number', validate: Number.isFinite });
  ajv.addFormat('double', { type: 'number', validate: Number.isFinite });
  ajv.addFormat('binary', true);
  ajv.addSchema(spec, SPEC_ID);
  cached = { ajv, spec };
  return cached;
}

const validators = new Map();

/** The compiled validator for `components.schemas[name]`. */
export function schemaValidator(name) {
  let validate = validators.get(name);
  if (!validate) {
    const { ajv, spec } = openApiAjv();
    assert.ok(
      spec.components?.schemas?.[name],
      `${SPEC_PATH} has no schema named ${name}: the vendored subset holds only what its root schemas reach; ` +
        'add the name to ROOTS in tests/lib/extract-openapi.mjs and regenerate (tests/fixtures/openai-openapi/README.md)',
    );
    validate = ajv.getSchema(`${SPEC_ID}#/components/schemas/${name}`);
    assert.equal(typeof validate, 'function', `Ajv could not compile ${name}`);
    validators.set(name, validate);
  }
  return validate;
}

/** `{ valid, errors, text }` for `data` against `components.schemas[name]`. */
export function validateAgainst(name, data) {
  const validate = schemaValidator(name);
  const valid = validate(data);
  const errors = valid ? [] : [...validate.errors];
  const text = valid ? '' : openApiAjv().ajv.errorsText(errors, { dataVar: 'response', separator: '\n  ' });
  return { valid, errors, text };
}

function excerpt(data, max = 1500) {
  const json = JSON.stringify(data, (_k, v) => (Array.isArray(v) && v.length > 8 && typeof v[0] === 'number'
    ? [...v.slice(0, 4), `… ${v.length - 4} more numbers`]
    : v));
  return json.length > max ? `${json.slice(0, max)}…` : json;
}

/** Fails with Ajv's own error list when `data` does not match `components.schemas[name]`. */
export function assertMatchesSchema(name, data, label = name) {
  const { valid, errors, text } = validateAgainst(name, data);
  if (valid) return;
  const detail = errors
    .slice(0, 25)
    .map((e) => `${e.instancePath || '/'} ${e.keyword} ${JSON.stringify(e.params)} (${e.schemaPath})`)
    .join('\n  ');
  assert.fail(
    `${label} does not validate against ${name} in ${SPEC_PATH}:\n  ${text}\n` +
      `ajv errors (${errors.length}):\n  ${detail}\nresponse: ${excerpt(data)}`,
  );
}
