// A small proto3-JSON decoder reproducing the errors of Google's JSON front end.
//
// decode(type, json) walks a request against a message description and
// returns `{ value, violations }`: `value` is the request normalized to
// camelCase with single values wrapped into lists; `violations` lists
// `{ field?, description }` problems worded as Google words them.

export const GL_PACKAGE = 'google.ai.generativelanguage.v1beta';

/**
 * `fields` maps camelCase JSON names to types. It may be a function so that a
 * message can refer to itself (Schema.items is a Schema).
 * `oneofs` maps a oneof name to the JSON names of its members.
 */
export function message(name, fields, { oneofs = {}, pkg = GL_PACKAGE } = {}) {
  let cached;
  return {
    kind: 'message',
    typeUrl: `type.googleapis.com/${pkg}.${name}`,
    get fields() {
      cached ??= typeof fields === 'function' ? fields() : fields;
      return cached;
    },
    oneofs,
  };
}

export const repeated = (of) => ({ kind: 'repeated', of });
export const mapOf = (of) => ({ kind: 'map', of });
export const enumeration = (name, values) => ({
  kind: 'enum',
  typeUrl: `type.googleapis.com/${GL_PACKAGE}.${name}`,
  values,
});

/** `text`: the value stays the JSON string it was sent as (Duration, Timestamp), instead of becoming a number. */
const scalar = (protoType, accepts, { text = false } = {}) => ({ kind: 'scalar', protoType, accepts, text });
const isIntegral = (v) =>
  (typeof v === 'number' && Number.isInteger(v)) || (typeof v === 'string' && /^-?\d+$/.test(v));
// Google's parser takes numbers written as JSON strings too (proto3 JSON allows it).
const isNumeric = (v) =>
  typeof v === 'number' ||
  (typeof v === 'string' && (/^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(v) || /^-?(NaN|Infinity)$/.test(v)));

export const STRING = scalar('TYPE_STRING', (v) => typeof v === 'string');
export const BOOL = scalar('TYPE_BOOL', (v) => typeof v === 'boolean');
export const INT32 = scalar('TYPE_INT32', isIntegral);
export const INT64 = scalar('TYPE_INT64', isIntegral);
export const FLOAT = scalar('TYPE_FLOAT', isNumeric);
export const DOUBLE = scalar('TYPE_DOUBLE', isNumeric);
/** google.protobuf.Duration in JSON: seconds with up to 9 fractional digits and an "s" ("300s", "1.5s"). */
export const DURATION = scalar(
  'type.googleapis.com/google.protobuf.Duration',
  (v) => typeof v === 'string' && /^-?\d+(\.\d{1,9})?s$/.test(v),
  { text: true },
);
/** google.protobuf.Timestamp in JSON: RFC 3339 with a "Z" or an offset. */
export const TIMESTAMP = scalar(
  'type.googleapis.com/google.protobuf.Timestamp',
  (v) =>
    typeof v === 'string' &&
    /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/.test(v) &&
    Number.isFinite(Date.parse(v)),
  { text: true },
);
export const BYTES = { kind: 'bytes' };
/** Free-form JSON (google.protobuf.Struct / Value) or a sub-tree the mock does not model. */
export const ANY = { kind: 'any' };

export const camelToSnake = (name) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const snakeToCamel = (name) => name.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());

/** Google prints offending values as JSON; long ones are shortened here to keep messages readable. */
function shown(value) {
  const text = JSON.stringify(value);
  return text.length > 200 ? `${text.slice(0, 197)}...` : text;
}

export function decode(type, json) {
  const violations = [];
  const value = new Decoder(violations).root(type, json);
  return { value, violations };
}

class Decoder {
  constructor(violations) {
    this.violations = violations;
  }

  fail(field, description) {
    this.violations.push(field === undefined ? { description } : { field, description });
  }

  invalidValue(path, typeName, valueText) {
    this.fail(path, `Invalid value at '${path}' (${typeName}), ${valueText}`);
  }

  root(type, json) {
    if (json === null || typeof json !== 'object' || Array.isArray(json)) {
      this.fail(undefined, 'Invalid JSON payload received. Root element must be a message.');
      return {};
    }
    return this.message(type, json, '');
  }

  message(type, json, path) {
    const out = {};
    const oneofSeen = {};
    for (const [rawName, raw] of Object.entries(json)) {
      // Google's parser accepts both the JSON (camelCase) and proto (snake_case) spelling.
      const name = snakeToCamel(rawName);
      const fieldType = type.fields[name];
      const at = path ? ` at '${path}'` : '';
      if (!fieldType) {
        this.fail(path || undefined, `Invalid JSON payload received. Unknown name "${rawName}"${at}: Cannot find field.`);
        continue;
      }
      if (Array.isArray(raw) && fieldType.kind !== 'repeated' && fieldType.kind !== 'any') {
        this.fail(
          path || undefined,
          `Invalid JSON payload received. Unknown name "${rawName}"${at}: Proto field is not repeating, cannot start list.`,
        );
        continue;
      }
      if (!this.claimOneof(type, name, oneofSeen, path)) continue;
      const childPath = path ? `${path}.${camelToSnake(name)}` : camelToSnake(name);
      const decoded = this.field(fieldType, raw, childPath);
      if (decoded !== undefined) out[name] = decoded;
    }
    return out;
  }

  /** A second member of the same oneof is rejected. */
  claimOneof(type, name, seen, path) {
    for (const [oneof, members] of Object.entries(type.oneofs)) {
      if (!members.includes(name)) continue;
      if (seen[oneof]) {
        this.invalidValue(path, 'oneof', `oneof field '${oneof}' is already set. Cannot set '${name}'`);
        return false;
      }
      seen[oneof] = name;
    }
    return true;
  }

  field(type, raw, path) {
    if (raw === null) return this.nullValue(type, path);
    switch (type.kind) {
      case 'any':
        return raw;
      case 'repeated':
        // Google's quirk: a single value where a list is expected is taken as a one-element list.
        return (Array.isArray(raw) ? raw : [raw]).map((item, i) => this.element(type.of, item, `${path}[${i}]`));
      case 'map':
        return this.map(type, raw, path);
      default:
        return this.element(type, raw, path);
    }
  }

  /**
   * `null` for a scalar means "unset" (proto3 JSON). For a message or a list
   * Google rejects it.
   */
  nullValue(type, path) {
    if (type.kind === 'scalar' || type.kind === 'bytes' || type.kind === 'enum' || type.kind === 'any') return undefined;
    const inner = type.kind === 'repeated' || type.kind === 'map' ? type.of : type;
    this.invalidValue(path, typeNameOf(inner), 'null');
    return undefined;
  }

  element(type, raw, path) {
    if (raw === null) {
      this.invalidValue(path, typeNameOf(type), 'null');
      return undefined;
    }
    switch (type.kind) {
      case 'any':
        return raw;
      case 'message':
        if (typeof raw !== 'object' || Array.isArray(raw)) {
          this.invalidValue(path, type.typeUrl, shown(raw));
          return undefined;
        }
        return this.message(type, raw, path);
      case 'enum':
        return this.enumValue(type, raw, path);
      case 'bytes':
        return this.bytes(raw, path);
      default:
        return this.scalar(type, raw, path);
    }
  }

  scalar(type, raw, path) {
    if (typeof raw === 'object') {
      this.invalidValue(path, type.protoType, 'Starting an object on a scalar field');
      return undefined;
    }
    if (!type.accepts(raw)) {
      this.invalidValue(path, type.protoType, shown(raw));
      return undefined;
    }
    return type === STRING || type === BOOL || type.text ? raw : Number(raw);
  }

  /** Enum names are matched case-insensitively ("object" is OBJECT); numbers are accepted too. */
  enumValue(type, raw, path) {
    if (typeof raw === 'number' && Number.isInteger(raw) && raw >= 0 && raw < type.values.length) {
      return type.values[raw];
    }
    const match = typeof raw === 'string' && type.values.find((v) => v === raw.toUpperCase());
    if (match) return match;
    if (typeof raw === 'object') this.invalidValue(path, type.typeUrl, 'Starting an object on a scalar field');
    else this.invalidValue(path, type.typeUrl, shown(raw));
    return undefined;
  }

  /** bytes fields take standard or URL-safe base64, padding optional. */
  bytes(raw, path) {
    const body = typeof raw === 'string' ? raw.replace(/={0,2}$/, '') : null;
    if (body === null || !/^[A-Za-z0-9+/_-]*$/.test(body) || body.length % 4 === 1) {
      const valueText = typeof raw === 'object' ? 'Starting an object on a scalar field' : `Base64 decoding failed for ${shown(raw)}`;
      this.invalidValue(path, 'TYPE_BYTES', valueText);
      return undefined;
    }
    return raw;
  }

  /** Map entries are addressed as `field[i].value` in Google's messages. */
  map(type, raw, path) {
    if (typeof raw !== 'object' || Array.isArray(raw)) {
      this.invalidValue(path, typeNameOf(type.of), shown(raw));
      return undefined;
    }
    const out = {};
    Object.entries(raw).forEach(([key, value], i) => {
      const decoded = this.field(type.of, value, `${path}[${i}].value`);
      if (decoded !== undefined) out[key] = decoded;
    });
    return out;
  }
}

function typeNameOf(type) {
  if (type.kind === 'message' || type.kind === 'enum') return type.typeUrl;
  if (type.kind === 'bytes') return 'TYPE_BYTES';
  return type.protoType ?? 'TYPE_MESSAGE';
}
