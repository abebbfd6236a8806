// Writes tests/fixtures/openai-openapi/openapi.json, the part of the official
// OpenAI OpenAPI document (github.com/openai/openai-openapi) that the
// contract checks in tests/lib/openapi.mjs validate against: the document's
// `openapi` version and `info`, and only the `components.schemas` entries
// reachable through `$ref` from ROOTS. Entries keep their order and content
// exactly as in the full document; nothing is rewritten.
//
//   node tests/lib/extract-openapi.mjs <path to the full openai-openapi.json>
//
// A test that validates against a schema not listed in ROOTS fails with a
// message pointing here: add the name, regenerate, commit the result.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';

/** Every schema name a test passes to assertMatchesSchema / validateAgainst / schemaValidator. */
export const ROOTS = [
  'CreateChatCompletionResponse',
  'CreateChatCompletionStreamResponse',
  'CreateEmbeddingResponse',
  'ErrorResponse',
  'ListModelsResponse',
  'Model',
];

const ROOT = resolve(new URL('../..', import.meta.url).pathname);
export const OUT_PATH = resolve(ROOT, 'tests/fixtures/openai-openapi/openapi.json');
const PREFIX = '#/components/schemas/';

/** The schema name a local `$ref` points to (a JSON Pointer segment, maybe URI-encoded). */
function refName(ref) {
  assert.ok(ref.startsWith(PREFIX), `$ref ${ref} does not point into components.schemas: the subset would not resolve it`);
  const segment = ref.slice(PREFIX.length);
  assert.ok(!segment.includes('/'), `$ref ${ref} points inside a schema, not at one`);
  return decodeURIComponent(segment).replace(/~1/g, '/').replace(/~0/g, '~');
}

/** The names of `components.schemas` reachable from `roots`, in the document's order. */
export function reachableSchemas(schemas, roots) {
  const seen = new Set();
  const todo = [...roots];
  const visit = (node) => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (node === null || typeof node !== 'object') return undefined;
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string') todo.push(refName(value));
      else visit(value);
    }
    return undefined;
  };
  while (todo.length) {
    const name = todo.pop();
    if (seen.has(name)) continue;
    assert.ok(Object.hasOwn(schemas, name), `components.schemas has no ${name}`);
    seen.add(name);
    visit(schemas[name]);
  }
  return Object.keys(schemas).filter((name) => seen.has(name));
}

/** The subset document for `spec` (the full document, parsed). */
export function extract(spec, roots = ROOTS) {
  assert.match(String(spec.openapi), /^3\.1\./, 'not an OpenAPI 3.1 document');
  const schemas = spec.components?.schemas;
  assert.ok(schemas && typeof schemas === 'object', 'the document has no components.schemas');
  const names = reachableSchemas(schemas, roots);
  return {
    openapi: spec.openapi,
    info: spec.info,
    components: { schemas: Object.fromEntries(names.map((name) => [name, schemas[name]])) },
  };
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)) {
  const [source, ...extra] = process.argv.slice(2);
  if (!source || extra.length) {
    process.stderr.write('usage: node tests/lib/extract-openapi.mjs <path to the full openai-openapi.json>\n');
    process.exit(2);
  }
  const subset = extract(JSON.parse(readFileSync(source, 'utf8')));
  mkdirSync(dirname(OUT_PATH), { recursive: true });
  const text = `${JSON.stringify(subset, null, 2)}\n`;
  writeFileSync(OUT_PATH, text);
  const count = Object.keys(subset.components.schemas).length;
  process.stdout.write(`${relative(process.cwd(), OUT_PATH)}: ${count} schemas from ${ROOTS.length} roots, ${Buffer.byteLength(text)} bytes\n`);
}
