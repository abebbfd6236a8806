// The mock as a "model" that follows a response schema: a deterministic
// JSON value that validates against `responseJsonSchema` (JSON Schema) or
// `responseSchema` (OpenAPI subset, converted to JSON Schema first).
//
// Rules (README, "Schema-following replies"): `$ref`s are resolved; every
// property is emitted (only the required ones past MAX_DEPTH or inside a
// recursive reference); the first non-null anyOf/oneOf branch is taken; the
// first enum/const value; strings are the echo text for the first free-form
// string and words after it, within minLength/maxLength, or a sample value
// for known formats, or generated from `pattern` when that is not matched;
// numbers within their bounds; arrays with max(1, minItems)
// items (never more than maxItems); no additionalProperties.

import { compile, patternInstance } from './pattern.mjs';
import { resolveRef } from './schema.mjs';

/** Past this depth only required properties and minItems items are followed, so recursive schemas end. */
const MAX_DEPTH = 6;
/** A required chain this deep cannot be satisfied: give up with null rather than loop. */
const HARD_DEPTH = 64;
const MAX_REF_HOPS = 32;

const WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'foxtrot', 'golf', 'hotel', 'india', 'juliett', 'kilo', 'lima', 'mike'];

/** Sample values that satisfy the common string formats. */
const FORMAT_VALUES = {
  'date-time': '2025-01-01T00:00:00Z',
  date: '2025-01-01',
  time: '00:00:00Z',
  duration: 'P1D',
  email: 'echo@example.com',
  'idn-email': 'echo@example.com',
  hostname: 'example.com',
  'idn-hostname': 'example.com',
  ipv4: '192.0.2.1',
  ipv6: '2001:db8::1',
  uri: 'https://example.com/',
  'uri-reference': 'https://example.com/',
  iri: 'https://example.com/',
  'iri-reference': 'https://example.com/',
  url: 'https://example.com/',
  uuid: '00000000-0000-4000-8000-000000000000',
  'json-pointer': '/echo',
  regex: '^echo$',
};

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * A value valid against JSON Schema `schema`. `echo` is the text given to
 * the first free-form string.
 */
export function schemaInstance(schema, { echo }) {
  return new InstanceBuilder(schema, echo).value(schema, 0, false);
}

/** The OpenAPI `Schema` subset (decoded: camelCase keys, upper-case types) as JSON Schema. */
export function openApiToJsonSchema(schema) {
  if (!isObject(schema)) return true;
  const out = {};
  if (schema.type && schema.type !== 'TYPE_UNSPECIFIED') out.type = schema.type.toLowerCase();
  const copied = ['format', 'enum', 'required', 'minItems', 'maxItems', 'minLength', 'maxLength', 'pattern', 'minimum',
    'maximum', 'minProperties', 'maxProperties', 'propertyOrdering'];
  for (const key of copied) if (schema[key] !== undefined) out[key] = schema[key];
  if (schema.properties) {
    out.properties = Object.fromEntries(Object.entries(schema.properties).map(([k, v]) => [k, openApiToJsonSchema(v)]));
  }
  if (schema.items) out.items = openApiToJsonSchema(schema.items);
  if (schema.anyOf?.length) out.anyOf = schema.anyOf.map(openApiToJsonSchema);
  return out;
}

class InstanceBuilder {
  constructor(root, echo) {
    this.root = root;
    this.echo = echo;
    this.echoUsed = false;
    this.wordCount = 0;
    // The root counts as being expanded, so a `$ref: "#"` inside it is recursion.
    this.refStack = [root];
  }

  /** `lean`: inside a recursive reference, so optional parts are left out. */
  value(schema, depth, lean) {
    if (depth > HARD_DEPTH || schema === false) return null;
    if (!isObject(schema)) return this.string({});
    if (typeof schema.$ref === 'string') return this.viaRef(schema, depth, lean);
    if (Array.isArray(schema.allOf) && schema.allOf.length) {
      const { allOf, ...rest } = schema;
      return this.value(allOf.map((s) => this.deref(s)).reduce(merge, rest), depth, lean);
    }
    if ('const' in schema) return schema.const;
    if (Array.isArray(schema.enum) && schema.enum.length) return schema.enum[0];
    const branches = schema.anyOf ?? schema.oneOf;
    if (Array.isArray(branches) && branches.length) {
      const { anyOf: _a, oneOf: _o, ...rest } = schema;
      const branch = branches.map((b) => this.deref(b)).find((b) => !isNullOnly(b)) ?? branches[0];
      return this.value(merge(rest, this.deref(branch)), depth, lean);
    }
    switch (typeOf(schema)) {
      case 'null':
        return null;
      case 'boolean':
        return true;
      case 'integer':
        return numberIn(schema, true);
      case 'number':
        return numberIn(schema, false);
      case 'array':
        return this.array(schema, depth, lean);
      case 'object':
        return this.object(schema, depth, lean);
      default:
        return this.string(schema);
    }
  }

  /** Follows a `$ref`; meeting a target already being expanded means recursion, so go lean. */
  viaRef(schema, depth, lean) {
    const { $ref, ...siblings } = schema;
    const target = resolveRef(this.root, $ref);
    if (target === undefined) return null;
    const recursive = this.refStack.includes(target);
    this.refStack.push(target);
    try {
      const merged = isObject(target) ? { ...target, ...siblings } : target;
      return this.value(merged, depth + 1, lean || recursive);
    } finally {
      this.refStack.pop();
    }
  }

  /** A sub-schema with its `$ref` chain resolved, for merging into its parent. */
  deref(schema) {
    let current = schema;
    for (let hop = 0; hop < MAX_REF_HOPS && isObject(current) && typeof current.$ref === 'string'; hop += 1) {
      const { $ref, ...siblings } = current;
      const target = resolveRef(this.root, $ref);
      current = isObject(target) ? { ...target, ...siblings } : target ?? true;
    }
    return current;
  }

  object(schema, depth, lean) {
    const properties = isObject(schema.properties) ? schema.properties : {};
    const required = Array.isArray(schema.required) ? schema.required : [];
    const ordering = Array.isArray(schema.propertyOrdering) ? schema.propertyOrdering : [];
    const names = [...new Set([...ordering.filter((n) => n in properties), ...Object.keys(properties)])];
    const followAll = !lean && depth < MAX_DEPTH;
    const out = {};
    for (const name of names) {
      if (followAll || required.includes(name)) out[name] = this.value(properties[name], depth + 1, lean);
    }
    // JSON Schema allows requiring a property it does not describe: any value does.
    for (const name of required) if (!(name in out)) out[name] = this.value(true, depth + 1, lean);
    return out;
  }

  array(schema, depth, lean) {
    const prefix = schema.prefixItems ?? (Array.isArray(schema.items) ? schema.items : []);
    const rest = Array.isArray(schema.items) ? schema.additionalItems ?? true : schema.items ?? true;
    const minItems = Number.isInteger(schema.minItems) ? schema.minItems : 0;
    let count = !lean && depth < MAX_DEPTH ? Math.max(1, minItems) : minItems;
    if (Number.isInteger(schema.maxItems)) count = Math.min(count, schema.maxItems);
    if (rest === false) count = Math.min(count, prefix.length);
    return Array.from({ length: count }, (_, i) => this.value(i < prefix.length ? prefix[i] : rest, depth + 1, lean));
  }

  /**
   * A format sample, else the echo (once), else a word; cut or padded to the
   * length bounds. A `pattern` the result misses is generated from instead;
   * the echo then waits for the next free-form string.
   */
  string(schema) {
    const lengths = {
      minLength: Number.isInteger(schema.minLength) ? schema.minLength : 0,
      maxLength: Number.isInteger(schema.maxLength) ? schema.maxLength : Infinity,
    };
    const pattern = typeof schema.pattern === 'string' ? compile(schema.pattern) : null;
    const fits = (text) => !pattern || pattern.test(text);
    const format = FORMAT_VALUES[schema.format];
    if (format !== undefined && fits(fitLength(format, lengths))) return fitLength(format, lengths);
    if (format === undefined && !this.echoUsed && fits(fitLength(this.echo, lengths))) {
      this.echoUsed = true;
      return fitLength(this.echo, lengths);
    }
    const word = fitLength(this.word(), lengths);
    if (fits(word)) return word;
    return patternInstance(schema.pattern, lengths) ?? word;
  }

  word() {
    const n = this.wordCount;
    this.wordCount += 1;
    const round = Math.floor(n / WORDS.length);
    return `${WORDS[n % WORDS.length]}${round ? round + 1 : ''}`;
  }
}

function fitLength(text, { minLength, maxLength }) {
  let chars = [...text];
  if (chars.length > maxLength) chars = chars.slice(0, maxLength);
  while (chars.length < minLength) chars.push('x');
  return chars.join('');
}

function isNullOnly(schema) {
  if (!isObject(schema)) return false;
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  return types.length > 0 && types.every((t) => t === 'null');
}

/** The type to produce: the first non-null listed type, else inferred from the keywords present. */
function typeOf(schema) {
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    return types.find((t) => t !== 'null') ?? (types.length ? 'null' : 'string');
  }
  if (schema.properties || schema.required || schema.additionalProperties !== undefined) return 'object';
  if (schema.items !== undefined || schema.prefixItems) return 'array';
  if (['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf'].some((k) => k in schema)) return 'number';
  return 'string';
}

/** Shallow merge of two schemas, uniting `properties` and `required` (allOf, anyOf siblings). */
function merge(base, extra) {
  if (!isObject(extra)) return base;
  const out = { ...base, ...extra };
  if (isObject(base.properties) || isObject(extra.properties)) out.properties = { ...base.properties, ...extra.properties };
  if (Array.isArray(base.required) || Array.isArray(extra.required)) {
    out.required = [...new Set([...(base.required ?? []), ...(extra.required ?? [])])];
  }
  return out;
}

/**
 * The tighter of an inclusive and an exclusive bound, as `{ value, exclusive }`.
 * Draft 4 writes exclusiveMinimum as a boolean beside minimum; later drafts as a number.
 */
function bound(schema, inclusiveKey, exclusiveKey, tighter) {
  const inclusive = typeof schema[inclusiveKey] === 'number' ? schema[inclusiveKey] : undefined;
  const exclusive = schema[exclusiveKey];
  if (exclusive === true && inclusive !== undefined) return { value: inclusive, exclusive: true };
  if (typeof exclusive === 'number') {
    if (inclusive === undefined || tighter(exclusive, inclusive) || exclusive === inclusive) return { value: exclusive, exclusive: true };
  }
  return inclusive === undefined ? undefined : { value: inclusive, exclusive: false };
}

/** 1 (integers) or 1.5 (numbers) when allowed, else a value inside the bounds, on the multipleOf lattice if any. */
function numberIn(schema, integer) {
  const lo = bound(schema, 'minimum', 'exclusiveMinimum', (a, b) => a > b);
  const hi = bound(schema, 'maximum', 'exclusiveMaximum', (a, b) => a < b);
  const step = schema.multipleOf > 0 ? schema.multipleOf : integer ? 1 : undefined;
  if (step !== undefined) {
    const kLow = lo ? (lo.exclusive ? Math.floor(lo.value / step) + 1 : Math.ceil(lo.value / step)) : -Infinity;
    const kHigh = hi ? (hi.exclusive ? Math.ceil(hi.value / step) - 1 : Math.floor(hi.value / step)) : Infinity;
    const k = Math.min(Math.max(1, kLow), kHigh);
    const value = k * step;
    return Number.isInteger(step) ? value : Number(value.toPrecision(12));
  }
  const preferred = 1.5;
  const aboveLow = !lo || (lo.exclusive ? preferred > lo.value : preferred >= lo.value);
  const belowHigh = !hi || (hi.exclusive ? preferred < hi.value : preferred <= hi.value);
  if (aboveLow && belowHigh) return preferred;
  if (lo && hi) return (lo.value + hi.value) / 2;
  if (lo) return lo.exclusive ? lo.value + 1 : lo.value;
  return hi.exclusive ? hi.value - 1 : hi.value;
}
