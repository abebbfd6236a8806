// The semantic rules Google applies to schemas once a request has parsed:
// the OpenAPI `Schema` subset (`parameters`, `response`, `responseSchema`)
// and free-form JSON Schema (`parametersJsonSchema`, `responseJsonSchema`).
//
// Every function here returns a list of problems `{ path, problem }`; the
// caller turns them into Google's `* Message.path: problem` lines. All
// problems are collected, as Google reports every violation at once.

// ---------------------------------------------------------------- OpenAPI subset

/** Formats Google accepts per type; a type missing here accepts none. */
const FORMATS = {
  STRING: ['enum', 'date-time'],
  NUMBER: ['float', 'double'],
  INTEGER: ['int32', 'int64'],
};

function formatProblem(type) {
  const allowed = FORMATS[type];
  if (!allowed) return `format is not supported for ${type} type`;
  return `only '${allowed[0]}' and '${allowed[1]}' are supported for ${type} type`;
}

/**
 * Checks a decoded OpenAPI `Schema` (camelCase keys, upper-case types) and
 * its sub-schemas. Paths use Google's style: `properties[name]`, `items`,
 * `any_of[i]`.
 */
export function openApiSchemaProblems(schema, path, out = []) {
  const type = schema.type && schema.type !== 'TYPE_UNSPECIFIED' ? schema.type : undefined;
  const properties = schema.properties ?? {};
  const anyOf = schema.anyOf ?? [];
  const problem = (field, text) => out.push({ path: field ? `${path}.${field}` : path, problem: text });

  if (!type && anyOf.length === 0) problem('type', 'must be specified');
  if (type === 'OBJECT' && Object.keys(properties).length === 0) {
    problem('properties', 'should be non-empty for OBJECT type');
  }
  (schema.required ?? []).forEach((name, i) => {
    if (!Object.hasOwn(properties, name)) problem(`required[${i}]`, 'property is not defined');
  });
  if (schema.enum?.length && type !== 'STRING') problem('enum', 'only allowed for STRING type');
  if (type === 'ARRAY' && !schema.items) problem('items', 'missing field.');
  if (schema.format && type && !FORMATS[type]?.includes(schema.format)) problem('format', formatProblem(type));
  (schema.propertyOrdering ?? []).forEach((name, i) => {
    if (!Object.hasOwn(properties, name)) problem(`property_ordering[${i}]`, 'property is not defined');
  });

  for (const [name, child] of Object.entries(properties)) openApiSchemaProblems(child, `${path}.properties[${name}]`, out);
  if (schema.items) openApiSchemaProblems(schema.items, `${path}.items`, out);
  anyOf.forEach((child, i) => openApiSchemaProblems(child, `${path}.any_of[${i}]`, out));
  return out;
}

// ---------------------------------------------------------------- JSON Schema

export const JSON_TYPES = ['string', 'number', 'integer', 'boolean', 'array', 'object', 'null'];

/** Keywords whose value is a map of sub-schemas, a list of them, or one. */
const MAP_KEYWORDS = ['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas'];
const LIST_KEYWORDS = ['anyOf', 'oneOf', 'allOf', 'prefixItems'];
const SINGLE_KEYWORDS = [
  'items',
  'additionalItems',
  'additionalProperties',
  'unevaluatedItems',
  'unevaluatedProperties',
  'contains',
  'propertyNames',
  'not',
  'if',
  'then',
  'else',
];

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Calls `visit(schema, path)` for every sub-schema reachable through schema
 * keywords (not through `enum`, `const`, `default` or `examples`, whose
 * values are data). Paths: `properties[name]`, `anyOf[i]`, `items`, ...
 */
export function eachSubschema(schema, path, visit) {
  if (!isObject(schema)) return;
  for (const key of MAP_KEYWORDS) {
    if (!isObject(schema[key])) continue;
    for (const [name, child] of Object.entries(schema[key])) visit(child, `${path}.${key}[${name}]`);
  }
  for (const key of LIST_KEYWORDS) {
    if (Array.isArray(schema[key])) schema[key].forEach((child, i) => visit(child, `${path}.${key}[${i}]`));
  }
  for (const key of SINGLE_KEYWORDS) {
    if (!(key in schema)) continue;
    // Draft-4 tuples: `items` as a list of schemas.
    if (key === 'items' && Array.isArray(schema.items)) schema.items.forEach((child, i) => visit(child, `${path}.items[${i}]`));
    else visit(schema[key], `${path}.${key}`);
  }
}

/**
 * Resolves a `$ref` inside `root`: `#`, a JSON pointer (`#/$defs/Name`,
 * `#/definitions/Name`, ...) or a plain-name fragment matching an `$anchor`.
 * Returns the target schema, or undefined when it does not resolve (remote
 * references never do: Google does not fetch them).
 */
export function resolveRef(root, ref) {
  if (typeof ref !== 'string' || !ref.startsWith('#')) return undefined;
  let fragment;
  try {
    fragment = decodeURIComponent(ref.slice(1));
  } catch {
    return undefined; // a malformed %-escape names nothing
  }
  if (fragment === '') return root;
  if (!fragment.startsWith('/')) return findAnchor(root, fragment);
  let node = root;
  for (const raw of fragment.slice(1).split('/')) {
    const token = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, token)) return undefined;
    node = node[token];
  }
  return node;
}

function findAnchor(root, name) {
  let found;
  const visit = (schema) => {
    if (found !== undefined || !isObject(schema)) return;
    if (schema.$anchor === name) found = schema;
    else eachSubschema(schema, '', visit);
  };
  visit(root);
  return found;
}

const validType = (t) => JSON_TYPES.includes(t);

/**
 * Checks a JSON Schema value. Keywords Gemini does not support are ignored,
 * as Google documents, so only structure is checked: the root is an object
 * (sub-schemas may be booleans), every `$ref` resolves inside the document,
 * and `type` names JSON Schema types. `{ objectRoot }` also requires the
 * root to be `type: "object"` (function parameters).
 */
export function jsonSchemaProblems(root, path, { objectRoot = false } = {}) {
  const out = [];
  if (!isObject(root)) {
    out.push({ path, problem: 'must be a JSON object' });
    return out;
  }
  const check = (schema, at) => {
    if (typeof schema === 'boolean') return;
    if (!isObject(schema)) {
      out.push({ path: at, problem: 'must be a JSON object or a boolean' });
      return;
    }
    if ('$ref' in schema && resolveRef(root, schema.$ref) === undefined) {
      out.push({ path: `${at}.$ref`, problem: `reference ${JSON.stringify(schema.$ref)} does not resolve within this schema` });
    }
    if ('type' in schema) {
      const types = Array.isArray(schema.type) ? schema.type : [schema.type];
      const bad = types.length === 0 ? [] : types.filter((t) => !validType(t));
      if (types.length === 0 || bad.length) {
        out.push({
          path: `${at}.type`,
          problem: `invalid type ${JSON.stringify(bad[0] ?? schema.type)}; must be one of ${JSON_TYPES.join(', ')} or a list of them`,
        });
      }
    }
    eachSubschema(schema, at, check);
  };
  check(root, path);
  // A root that only points at a definition (Pydantic, zod-to-json-schema) has its target's type.
  if (objectRoot && rootType(root) !== 'object') {
    out.push({ path: `${path}.type`, problem: 'the root schema of function parameters must be of type "object"' });
  }
  return out;
}

const MAX_REF_HOPS = 32;

function rootType(root) {
  let schema = root;
  for (let hop = 0; hop < MAX_REF_HOPS && isObject(schema) && schema.type === undefined && '$ref' in schema; hop += 1) {
    schema = resolveRef(root, schema.$ref);
  }
  return isObject(schema) ? schema.type : undefined;
}

/** Whether a JSON Schema / OpenAPI schema root is a string enum (what text/x.enum needs). */
export function isStringEnum(schema) {
  if (!isObject(schema) || !Array.isArray(schema.enum) || schema.enum.length === 0) return false;
  return String(schema.type).toLowerCase() === 'string';
}
