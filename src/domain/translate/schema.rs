//! JSON Schema → the two schema dialects Gemini accepts.
//!
//! * JSON Schema (`parametersJsonSchema`, `responseJsonSchema`, Gemini 2.5 and later) ignores
//!   keywords it does not know but 400s on a non-object schema, a `$ref` that does not resolve
//!   locally, a `$ref` with siblings other than `description`/`default`, an unknown `type`, or
//!   function parameters whose root is not `type: "object"`. [`to_json_schema`] fixes exactly
//!   those and leaves the rest alone.
//! * Gemini's `OpenAPI` `Schema` subset (`parameters`, `responseSchema`) is a protobuf message: an
//!   unknown key, a `type` list or an empty OBJECT is a 400. [`to_openapi`] rebuilds the schema
//!   from an allow-list, inlining `$ref`s and folding JSON Schema's extras into what the subset
//!   can say, or into the description so the model still sees them.
//!
//! Pure functions over `serde_json` values: no I/O, no clock. Adversarial input must not blow
//! the isolate's stack or CPU: nesting, `$ref` unrolling and the inlined size are all capped.
//!
//! `serde_json` here keeps object keys sorted (no `preserve_order`), so the client's property
//! order is already gone by the time a schema gets here; `propertyOrdering` is kept only when
//! the client sent it.

use std::collections::{BTreeMap, BTreeSet};

use super::json_kind;
use serde_json::{Map, Number, Value, json};

/// Deeper subschemas are sent as JSON-encoded strings (`OpenAPI`) or rejected (JSON Schema).
const MAX_DEPTH: usize = 32;
/// How many times one `$ref` may be expanded inside itself before recursion is cut off:
/// Gemini's subset cannot express recursion, so a tree becomes three levels of tree.
const MAX_UNROLL: usize = 3;
/// Subschemas visited while inlining; bounds the work a "billion laughs" of `$ref`s can cause.
const MAX_NODES: usize = 10_000;
/// Schema nesting [`to_json_schema`] accepts. `serde_json` already stops parsing at 128 levels
/// of JSON, about half that in schema levels.
const MAX_JSON_SCHEMA_DEPTH: usize = 64;

/// Keys of Gemini's `OpenAPI` `Schema` subset; [`to_openapi`] emits nothing else.
pub const OPENAPI_KEYS: [&str; 22] = [
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "items",
    "minimum",
    "maximum",
];

// ---------------------------------------------------------------------------------------------
// public API
// ---------------------------------------------------------------------------------------------

/// JSON Schema → Gemini's `OpenAPI` subset. Lossy but never produces what Gemini's rules reject:
///
/// * `$ref`s are inlined; a recursive one is unrolled [`MAX_UNROLL`] times. Past that, a
///   property that recurses directly is dropped (and removed from `required`), a nullable one
///   (`anyOf: [{$ref}, {type: null}]`) can only be null, and an array of it can only be empty
///   (`maxItems: 0`), so that required keys stay present for strict client-side parsers.
/// * `type: [T, "null"]`, and `anyOf`/`oneOf` with a `{type: "null"}` branch, become
///   `nullable: true`; other unions become `anyOf`, with `nullable` pushed into each branch;
///   `allOf` is merged (properties and `required` united, other keys first-wins).
/// * `const: "x"` becomes `enum: ["x"]`. Non-string enums and consts on a string type become
///   strings of their JSON text; on any other type the enum is dropped and its values go to the
///   description, keeping the type so the client still receives a number or boolean.
/// * A `format` Gemini does not allow for the type, an exclusive bound on a number, `multipleOf`
///   and `uniqueItems` go to the description. Exclusive bounds on integers become exact
///   inclusive ones. `examples[0]` becomes `example`.
/// * Objects without properties, untyped schemas and subschemas nested deeper than
///   [`MAX_DEPTH`] become `{type: STRING}` described as JSON-encoded: Gemini has no way to say
///   "any object", and a string the model fills with JSON keeps the information.
pub fn to_openapi(schema: &Value) -> Result<Value, String> {
    check_root(schema)?;
    let mut converter = Converter::new(schema);
    match converter.convert(&[schema], Vec::new(), 0)? {
        Converted::Schema(out) => Ok(Value::Object(out.finish())),
        Converted::Null => Ok(Value::Object(null_schema())),
        Converted::Never => Err("the schema admits no value".to_owned()),
    }
}

/// A JSON Schema made safe for `parametersJsonSchema`/`responseJsonSchema`, unchanged where
/// already valid. Every `$ref` must be a local JSON pointer (`#`, `#/$defs/X`,
/// `#/definitions/X`, …) that resolves, or this is an `Err`. It also:
///
/// * drops `$schema`, `$id` and `$comment` everywhere: they constrain nothing, the `OpenAPI`
///   fields 400 on `$schema` (so keeping it out of both dialects costs nothing), `$comment`
///   next to a `$ref` would trip the sibling rule below, and a nested `$id` would change how
///   `$ref`s below it resolve, which Gemini does not model;
/// * inlines a `$ref` at the root (zod-to-json-schema with a name, Pydantic's self-referencing
///   models), so the root carries `type: "object"` itself;
/// * wraps a `$ref` that has siblings other than `description`/`default` (which Gemini
///   rejects) as `anyOf: [{$ref}]` next to those siblings, which means the same;
/// * lower-cases known `type` names and drops unknown ones, and turns boolean subschemas under
///   `properties`, `$defs` and the combinators into `{}` / `{"not": {}}`;
/// * adds `type: "object"` to an untyped root that has object keywords.
pub fn to_json_schema(schema: &Value) -> Result<Value, String> {
    check_root(schema)?;
    let mut out = match schema {
        Value::Bool(true) => Value::Object(Map::new()),
        other => other.clone(),
    };
    if let Value::Object(root) = &mut out {
        inline_root_ref(root)?;
    }
    normalise_json_schema(&mut out)?;
    if let Value::Object(root) = &mut out {
        let object_keywords = [
            "properties",
            "required",
            "additionalProperties",
            "patternProperties",
            "minProperties",
            "maxProperties",
        ];
        let combined = ["anyOf", "oneOf", "allOf", "$ref", "enum", "const"];
        if !root.contains_key("type")
            && object_keywords.iter().any(|k| root.contains_key(*k))
            && !combined.iter().any(|k| root.contains_key(*k))
        {
            root.insert("type".to_owned(), json!("object"));
        }
    }
    check_refs(&out)?;
    Ok(out)
}

/// [`to_json_schema`] for function parameters, whose root Gemini requires to be
/// `type: "object"`: an untyped root gets it, a nullable object root loses the `null`, and any
/// other root type is an `Err`.
pub fn function_parameters_json_schema(schema: &Value) -> Result<Value, String> {
    let mut out = to_json_schema(schema)?;
    let Value::Object(root) = &mut out else {
        return Err("function parameters must be a JSON object schema".to_owned());
    };
    match root.get("type").map(Types::parse) {
        None => {}
        Some(Some(types)) if types.0 & OBJECT != 0 => {}
        Some(_) => return Err(not_an_object_error(root.get("type"))),
    }
    root.insert("type".to_owned(), json!("object"));
    Ok(out)
}

/// Function parameters in the `OpenAPI` dialect: `None` when the schema has no properties
/// (Gemini rejects an empty OBJECT, and a function without parameters needs none). A free-form
/// object (`additionalProperties` only) is also `None`: the function is declared without
/// parameters and called with `{}`, rather than with one JSON-encoded string the client's
/// function would not expect. A root union of objects is merged into one object (properties
/// united, `required` intersected, string enums of a shared discriminator united). A root that
/// declares a type other than object is an `Err`.
pub fn function_parameters_openapi(schema: &Value) -> Result<Option<Value>, String> {
    check_root(schema)?;
    let mut converter = Converter::new(schema);
    let mut parts = Vec::new();
    if converter.expand(schema, &mut parts, 0)?
        && let Some(types) = (Node { parts }).types()
        && types.0 & OBJECT == 0
    {
        let declared = schema.as_object().and_then(|m| m.get("type"));
        return Err(not_an_object_error(declared));
    }
    let Value::Object(mut root) = to_openapi(schema)? else {
        return Ok(None);
    };
    if root.get("type") == Some(&json!("OBJECT")) {
        root.remove("nullable");
        return Ok(Some(Value::Object(root)));
    }
    let Some(Value::Array(branches)) = root.remove("anyOf") else {
        return Ok(None);
    };
    let objects: Vec<Map<String, Value>> = branches
        .into_iter()
        .filter_map(|branch| match branch {
            Value::Object(map) if map.get("type") == Some(&json!("OBJECT")) => Some(map),
            _ => None,
        })
        .collect();
    Ok(merge_objects(objects, &root).map(Value::Object))
}

/// `Some(values)` when the schema is just a string enum (`{"type":"string","enum":[..]}`,
/// `{"enum":[..strings]}` or a string `const`), possibly behind a root `$ref`, with nothing
/// else but annotations: what Gemini's `text/x.enum` response mode can express.
pub fn enum_only(schema: &Value) -> Option<Vec<String>> {
    const ALLOWED: [&str; 12] = [
        "type",
        "enum",
        "const",
        "title",
        "description",
        "default",
        "examples",
        "$schema",
        "$id",
        "$comment",
        "$defs",
        "definitions",
    ];
    let mut map = schema.as_object()?;
    for _ in 0..MAX_UNROLL {
        let Some(reference) = map.get("$ref") else {
            break;
        };
        let (_, target) = resolve(schema, reference.as_str()?).ok()?;
        if map
            .keys()
            .any(|k| k != "$ref" && !ALLOWED.contains(&k.as_str()))
        {
            return None;
        }
        map = target.as_object()?;
    }
    if map.keys().any(|k| !ALLOWED.contains(&k.as_str())) {
        return None;
    }
    if let Some(declared) = map.get("type")
        && !declared.as_str()?.eq_ignore_ascii_case("string")
    {
        return None;
    }
    let values = match (map.get("const"), map.get("enum")) {
        (Some(Value::String(value)), _) => vec![value.clone()],
        (None, Some(Value::Array(values))) => values
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()?,
        _ => return None,
    };
    (!values.is_empty()).then_some(values)
}

// ---------------------------------------------------------------------------------------------
// shared helpers
// ---------------------------------------------------------------------------------------------

fn check_root(schema: &Value) -> Result<(), String> {
    match schema {
        Value::Object(_) | Value::Bool(true) => Ok(()),
        Value::Bool(false) => Err("the schema `false` admits no value".to_owned()),
        other => Err(format!(
            "a schema must be a JSON object, not {}",
            json_kind(other)
        )),
    }
}

fn not_an_object_error(declared: Option<&Value>) -> String {
    match declared {
        Some(declared) => format!(
            "function parameters must be an object schema (`type: \"object\"`), not `type: {declared}`"
        ),
        None => "function parameters must be an object schema (`type: \"object\"`)".to_owned(),
    }
}

/// Resolves a local `$ref` against `root`: the JSON pointer it names (percent-decoded, so the
/// two spellings of one target count as one for recursion) and the target.
fn resolve<'a>(root: &'a Value, reference: &str) -> Result<(String, &'a Value), String> {
    let Some(fragment) = reference.strip_prefix('#') else {
        return Err(format!(
            "`$ref` `{reference}` is not local: only references into this schema (`#/...`) are supported"
        ));
    };
    let pointer = percent_decode(fragment);
    if !pointer.is_empty() && !pointer.starts_with('/') {
        return Err(format!(
            "`$ref` `{reference}` does not resolve: only JSON-pointer references (`#/...`) are supported"
        ));
    }
    let Some(target) = root.pointer(&pointer) else {
        return Err(format!("`$ref` `{reference}` does not resolve"));
    };
    if !matches!(target, Value::Object(_) | Value::Bool(_)) {
        return Err(format!(
            "`$ref` `{reference}` points at {}, not a schema",
            json_kind(target)
        ));
    }
    Ok((pointer, target))
}

/// URI-fragment decoding for `$ref`s like `#/$defs/My%20Model`; a malformed escape stays as is.
fn percent_decode(text: &str) -> String {
    if !text.contains('%') {
        return text.to_owned();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        if let Some(byte) = escaped {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_owned())
}

// ---------------------------------------------------------------------------------------------
// types
// ---------------------------------------------------------------------------------------------

const NULL: u8 = 1;
const BOOLEAN: u8 = 2;
const OBJECT: u8 = 4;
const ARRAY: u8 = 8;
const NUMBER: u8 = 16;
const INTEGER: u8 = 32;
const STRING: u8 = 64;
const ANY: u8 = NULL | BOOLEAN | OBJECT | ARRAY | NUMBER | INTEGER | STRING;
/// Output order when one schema splits into several types.
const SINGLE_TYPES: [u8; 6] = [STRING, NUMBER, INTEGER, BOOLEAN, ARRAY, OBJECT];

/// A set of JSON types. `number` includes `integer`, so intersecting the two gives integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Types(u8);

impl Types {
    /// The types a `type` keyword names; `None` when it names none we know (no constraint).
    fn parse(value: &Value) -> Option<Self> {
        let bits = match value {
            Value::String(name) => type_bit(name),
            Value::Array(names) => names
                .iter()
                .filter_map(Value::as_str)
                .fold(0, |bits, name| bits | type_bit(name)),
            _ => 0,
        };
        (bits != 0).then_some(Self(bits))
    }

    /// The narrowest type of a value: integers are INTEGER, other numbers NUMBER.
    fn of(value: &Value) -> u8 {
        match value {
            Value::Null => NULL,
            Value::Bool(_) => BOOLEAN,
            Value::Number(n) if n.is_i64() || n.is_u64() => INTEGER,
            Value::Number(_) => NUMBER,
            Value::String(_) => STRING,
            Value::Array(_) => ARRAY,
            Value::Object(_) => OBJECT,
        }
    }
}

fn type_bit(name: &str) -> u8 {
    match name.to_ascii_lowercase().as_str() {
        "null" => NULL,
        "boolean" => BOOLEAN,
        "object" => OBJECT,
        "array" => ARRAY,
        "number" => NUMBER | INTEGER,
        "integer" => INTEGER,
        "string" => STRING,
        _ => 0,
    }
}

fn json_schema_type_name(bit: u8) -> &'static str {
    match bit {
        NULL => "null",
        BOOLEAN => "boolean",
        OBJECT => "object",
        ARRAY => "array",
        NUMBER => "number",
        INTEGER => "integer",
        _ => "string",
    }
}

/// Splits a set into single output types; `number` absorbs `integer`.
fn single_types(bits: u8) -> Vec<u8> {
    let bits = if bits & NUMBER != 0 {
        bits & !INTEGER
    } else {
        bits
    };
    SINGLE_TYPES
        .into_iter()
        .filter(|bit| bits & bit != 0)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// to_openapi: the conversion
// ---------------------------------------------------------------------------------------------

const SKIP_ANY_OF: u8 = 1;
const SKIP_ONE_OF: u8 = 2;
const SKIP_ANNOTATIONS: u8 = 4;

/// Keywords that say nothing about which values are valid; a union's siblings made only of
/// these need not be distributed into its branches.
const NON_ASSERTIONS: [&str; 17] = [
    "title",
    "description",
    "default",
    "examples",
    "example",
    "nullable",
    "$schema",
    "$id",
    "$anchor",
    "$comment",
    "$defs",
    "definitions",
    "discriminator",
    "deprecated",
    "readOnly",
    "writeOnly",
    "propertyOrdering",
];

/// One schema object that contributes to a node: the node itself, or what it pulls in through
/// `$ref` and `allOf`. `skip` hides keywords already dealt with.
#[derive(Debug, Clone, Copy)]
struct Part<'a> {
    map: &'a Map<String, Value>,
    skip: u8,
}

impl<'a> Part<'a> {
    fn get(self, key: &str) -> Option<&'a Value> {
        let skipped = match key {
            "anyOf" => self.skip & SKIP_ANY_OF != 0,
            "oneOf" => self.skip & SKIP_ONE_OF != 0,
            "title" | "description" | "default" | "examples" | "example" => {
                self.skip & SKIP_ANNOTATIONS != 0
            }
            // Consumed by `Converter::expand`.
            "$ref" | "allOf" => true,
            _ => false,
        };
        if skipped { None } else { self.map.get(key) }
    }

    fn has_assertions(self) -> bool {
        self.map.keys().any(|key| {
            self.get(key).is_some()
                && !NON_ASSERTIONS.contains(&key.as_str())
                && !key.starts_with("x-")
        })
    }
}

/// The conjunction of parts that one schema position stands for. Keywords are read first-wins,
/// except those merged explicitly (`type`, `properties`, `required`).
#[derive(Debug, Clone)]
struct Node<'a> {
    parts: Vec<Part<'a>>,
}

impl<'a> Node<'a> {
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.parts.iter().find_map(|part| part.get(key))
    }

    fn all<'s>(&'s self, key: &'s str) -> impl Iterator<Item = &'a Value> + 's {
        self.parts.iter().filter_map(move |part| part.get(key))
    }

    fn str(&self, key: &str) -> Option<&'a str> {
        self.get(key).and_then(Value::as_str)
    }

    fn has(&self, keys: &[&str]) -> bool {
        keys.iter().any(|key| self.get(key).is_some())
    }

    /// The intersection of every part's `type` (`OpenAPI`'s `nullable: true` adds null);
    /// `None` when no part constrains the type.
    fn types(&self) -> Option<Types> {
        self.parts.iter().fold(None, |acc, part| {
            let Some(Types(mut bits)) = part.get("type").and_then(Types::parse) else {
                return acc;
            };
            if part.get("nullable") == Some(&Value::Bool(true)) {
                bits |= NULL;
            }
            Some(Types(acc.map_or(bits, |Types(acc)| acc & bits)))
        })
    }

    /// `const`, else `enum`.
    fn values(&self) -> Option<Vec<&'a Value>> {
        if let Some(value) = self.get("const") {
            return Some(vec![value]);
        }
        match self.get("enum") {
            Some(Value::Array(values)) if !values.is_empty() => Some(values.iter().collect()),
            _ => None,
        }
    }

    /// Types implied by keywords when no `type` is given.
    fn implied_types(&self) -> u8 {
        let mut bits = 0;
        if self.has(&[
            "properties",
            "additionalProperties",
            "patternProperties",
            "required",
            "minProperties",
            "maxProperties",
            "propertyNames",
        ]) {
            bits |= OBJECT;
        }
        if self.has(&[
            "items",
            "prefixItems",
            "additionalItems",
            "minItems",
            "maxItems",
            "uniqueItems",
            "contains",
        ]) {
            bits |= ARRAY;
        }
        if self.has(&["minLength", "maxLength", "pattern"]) {
            bits |= STRING;
        }
        if self.has(&[
            "minimum",
            "maximum",
            "exclusiveMinimum",
            "exclusiveMaximum",
            "multipleOf",
        ]) {
            bits |= NUMBER;
        }
        bits
    }

    fn annotations(&self) -> Annotations<'a> {
        let example = self.get("example").or_else(|| match self.get("examples") {
            Some(Value::Array(examples)) => examples.first(),
            _ => None,
        });
        Annotations {
            title: self.str("title"),
            description: self.str("description"),
            default: self.get("default"),
            example,
            nullable: false,
        }
    }
}

/// What a schema says about itself, applied last so that a union with one surviving branch can
/// lay the outer field's description over the branch's.
#[derive(Debug, Clone, Copy, Default)]
struct Annotations<'a> {
    title: Option<&'a str>,
    description: Option<&'a str>,
    default: Option<&'a Value>,
    example: Option<&'a Value>,
    nullable: bool,
}

impl Annotations<'_> {
    fn overlaid_by(self, outer: Self) -> Self {
        Self {
            title: outer.title.or(self.title),
            description: outer.description.or(self.description),
            default: outer.default.or(self.default),
            example: outer.example.or(self.example),
            nullable: self.nullable || outer.nullable,
        }
    }
}

/// A converted schema whose annotations are not yet applied.
#[derive(Debug, Clone)]
struct Out<'a> {
    map: Map<String, Value>,
    notes: Vec<String>,
    /// The value is JSON-encoded into a string, so `default`/`example` are too.
    encoded: bool,
    annotations: Annotations<'a>,
}

impl<'a> Out<'a> {
    fn typed(gemini_type: &str, annotations: Annotations<'a>) -> Self {
        let mut map = Map::new();
        map.insert("type".to_owned(), json!(gemini_type));
        Self {
            map,
            notes: Vec::new(),
            encoded: false,
            annotations,
        }
    }

    /// `{type: STRING}` that the model fills with JSON: Gemini's subset has no "any value" and
    /// no "object with arbitrary keys".
    fn json_text(what: &str, annotations: Annotations<'a>) -> Self {
        let mut out = Self::typed("STRING", annotations);
        out.notes.push(format!("{what}, JSON-encoded as a string"));
        out.encoded = true;
        out
    }

    fn finish(self) -> Map<String, Value> {
        let Self {
            mut map,
            notes,
            encoded,
            annotations,
        } = self;
        let encode = |value: &Value| {
            if encoded {
                Value::String(value.to_string())
            } else {
                value.clone()
            }
        };
        if let Some(title) = annotations.title {
            map.insert("title".to_owned(), json!(title));
        }
        let notes = notes.join("; ");
        let description = match (annotations.description, notes.is_empty()) {
            (Some(description), true) => Some(description.to_owned()),
            (Some(description), false) => Some(format!("{description} ({notes})")),
            (None, false) => Some(notes),
            (None, true) => None,
        };
        if let Some(description) = description {
            map.insert("description".to_owned(), Value::String(description));
        }
        if let Some(default) = annotations.default {
            map.insert("default".to_owned(), encode(default));
        }
        if let Some(example) = annotations.example {
            map.insert("example".to_owned(), encode(example));
        }
        if annotations.nullable {
            map.insert("nullable".to_owned(), Value::Bool(true));
        }
        map
    }
}

#[derive(Debug)]
enum Converted<'a> {
    Schema(Out<'a>),
    /// Only `null` is valid: a union's null branch, which becomes `nullable`.
    Null,
    /// Nothing is valid: `false`, or a recursive `$ref` past the unroll limit.
    Never,
}

/// `{type: STRING, nullable: true}` for a position where only null is valid; Gemini's `NULL`
/// type is newer than `nullable`, so this is the form every model takes.
fn null_schema() -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("type".to_owned(), json!("STRING"));
    map.insert("nullable".to_owned(), Value::Bool(true));
    map.insert("description".to_owned(), json!("Always null."));
    map
}

struct Converter<'a> {
    root: &'a Value,
    /// Subschemas visited so far, against [`MAX_NODES`].
    visited: usize,
    /// Pointers of the `$ref`s being expanded on the current path, to count recursion.
    active: Vec<String>,
}

impl<'a> Converter<'a> {
    fn new(root: &'a Value) -> Self {
        Self {
            root,
            visited: 0,
            // The root counts as one expansion of `#`.
            active: vec![String::new()],
        }
    }

    fn visit(&mut self) -> Result<(), String> {
        self.visited += 1;
        if self.visited > MAX_NODES {
            return Err(format!(
                "the schema is too large: more than {MAX_NODES} subschemas once `$ref`s are inlined"
            ));
        }
        Ok(())
    }

    /// Adds `schema` and everything it pulls in through `$ref` and `allOf` to `parts`, keeping
    /// the `$ref`s on `active` for the caller to pop. False when nothing is valid.
    fn expand(
        &mut self,
        schema: &'a Value,
        parts: &mut Vec<Part<'a>>,
        depth: usize,
    ) -> Result<bool, String> {
        self.visit()?;
        if depth > MAX_DEPTH {
            return Err(format!(
                "`$ref`s and `allOf`s nest more than {MAX_DEPTH} levels deep"
            ));
        }
        let map = match schema {
            Value::Bool(admits) => return Ok(*admits),
            Value::Object(map) => map,
            other => {
                return Err(format!(
                    "a schema must be a JSON object or boolean, not {}",
                    json_kind(other)
                ));
            }
        };
        parts.push(Part { map, skip: 0 });
        if let Some(reference) = map.get("$ref") {
            let Value::String(reference) = reference else {
                return Err(format!(
                    "`$ref` must be a string, not {}",
                    json_kind(reference)
                ));
            };
            let (pointer, target) = resolve(self.root, reference)?;
            let expansions = self.active.iter().filter(|p| **p == pointer).count();
            if expansions >= MAX_UNROLL {
                return Ok(false);
            }
            self.active.push(pointer);
            if !self.expand(target, parts, depth + 1)? {
                return Ok(false);
            }
        }
        match map.get("allOf") {
            None => {}
            Some(Value::Array(branches)) => {
                for branch in branches {
                    if !self.expand(branch, parts, depth + 1)? {
                        return Ok(false);
                    }
                }
            }
            Some(other) => {
                return Err(format!(
                    "`allOf` must be an array, not {}",
                    json_kind(other)
                ));
            }
        }
        Ok(true)
    }

    /// Converts the conjunction of `heads` (each expanded) and `rest` (already expanded).
    fn convert(
        &mut self,
        heads: &[&'a Value],
        rest: Vec<Part<'a>>,
        depth: usize,
    ) -> Result<Converted<'a>, String> {
        let mark = self.active.len();
        let result = self.convert_expanded(heads, rest, depth);
        self.active.truncate(mark);
        result
    }

    fn convert_expanded(
        &mut self,
        heads: &[&'a Value],
        rest: Vec<Part<'a>>,
        depth: usize,
    ) -> Result<Converted<'a>, String> {
        if depth > MAX_DEPTH {
            let annotations = Annotations {
                description: heads
                    .first()
                    .and_then(|head| head.get("description"))
                    .and_then(Value::as_str),
                ..Annotations::default()
            };
            return Ok(Converted::Schema(Out::json_text(
                "any JSON value",
                annotations,
            )));
        }
        let mut parts = Vec::new();
        for head in heads {
            if !self.expand(head, &mut parts, 0)? {
                return Ok(Converted::Never);
            }
        }
        parts.extend(rest);
        self.convert_node(&Node { parts }, depth)
    }

    fn convert_node(&mut self, node: &Node<'a>, depth: usize) -> Result<Converted<'a>, String> {
        if let Some((index, skip, branches)) = find_union(node)? {
            return self.convert_union(node, index, skip, branches, depth);
        }
        let declared = node.types();
        if declared == Some(Types(0)) {
            return Ok(Converted::Never);
        }
        let allowed = declared.map_or(ANY, |Types(bits)| bits);
        let values = node.values();
        let nullable = allowed & NULL != 0
            && match (&values, declared) {
                (Some(values), _) => values.iter().any(|v| v.is_null()),
                (None, Some(_)) => true,
                // Untyped and unconstrained: "any value" covers null already.
                (None, None) => false,
            };
        let values: Option<Vec<&'a Value>> =
            values.map(|values| values.into_iter().filter(|v| !v.is_null()).collect());
        let mut bits = match (&values, declared) {
            (Some(values), None) => values.iter().fold(0, |bits, v| bits | Types::of(v)),
            (_, Some(_)) => allowed & !NULL,
            (None, None) => node.implied_types(),
        };
        if values.as_ref().is_some_and(Vec::is_empty) {
            bits = 0;
        }
        let mut annotations = node.annotations();
        annotations.nullable = nullable;
        if bits == 0 {
            return Ok(match (declared, &values, nullable) {
                (_, _, true) => Converted::Null,
                (None, None, false) => {
                    Converted::Schema(Out::json_text("any JSON value", annotations))
                }
                _ => Converted::Never,
            });
        }
        // A string-like enum stays one STRING enum, its other values as their JSON text.
        if values.is_some() && bits & STRING != 0 {
            bits = STRING;
        }
        let types = single_types(bits);
        if let [single] = types[..] {
            return self.convert_typed(node, single, values.as_deref(), annotations, depth);
        }
        // Several types: one branch per type, the annotations on the union.
        let mut branches = Vec::new();
        for single in types {
            let values = values.as_ref().map(|values| {
                values
                    .iter()
                    .copied()
                    .filter(|v| {
                        let of = Types::of(v);
                        of & single != 0 || (of == INTEGER && single == NUMBER)
                    })
                    .collect::<Vec<_>>()
            });
            let branch = Annotations {
                nullable,
                ..Annotations::default()
            };
            if let Converted::Schema(out) =
                self.convert_typed(node, single, values.as_deref(), branch, depth)?
            {
                branches.push(Value::Object(out.finish()));
            }
        }
        Ok(union_of(branches, node.annotations(), nullable))
    }

    /// `X ∧ (A ∨ B)` is `(X ∧ A) ∨ (X ∧ B)`: the union's siblings go into every branch (unless
    /// they are only annotations, which stay on the union).
    fn convert_union(
        &mut self,
        node: &Node<'a>,
        index: usize,
        skip: u8,
        branches: &'a [Value],
        depth: usize,
    ) -> Result<Converted<'a>, String> {
        let mut rest = node.parts.clone();
        rest[index].skip |= skip;
        let outer = Node { parts: rest };
        let shared: Vec<Part<'a>> = if outer.parts.iter().any(|part| part.has_assertions()) {
            outer
                .parts
                .iter()
                .map(|part| Part {
                    skip: part.skip | SKIP_ANNOTATIONS,
                    ..*part
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut nullable = node.get("nullable") == Some(&Value::Bool(true));
        let mut converted = Vec::new();
        for branch in branches {
            match self.convert(&[branch], shared.clone(), depth + 1)? {
                Converted::Schema(out) => converted.push(out),
                Converted::Null => nullable = true,
                Converted::Never => {}
            }
        }
        let mut annotations = outer.annotations();
        annotations.nullable = nullable;
        if converted.len() == 1
            && let Some(mut only) = converted.pop()
        {
            only.annotations = only.annotations.overlaid_by(annotations);
            return Ok(Converted::Schema(only));
        }
        let branches = converted
            .into_iter()
            .map(|mut out| {
                out.annotations.nullable |= nullable;
                Value::Object(out.finish())
            })
            .collect();
        Ok(union_of(branches, outer.annotations(), nullable))
    }

    fn convert_typed(
        &mut self,
        node: &Node<'a>,
        single: u8,
        values: Option<&[&'a Value]>,
        annotations: Annotations<'a>,
        depth: usize,
    ) -> Result<Converted<'a>, String> {
        let mut out = Out::typed(gemini_type_name(single), annotations);
        match single {
            STRING => string_keywords(node, values, &mut out),
            NUMBER | INTEGER => number_keywords(node, single == INTEGER, values, &mut out),
            BOOLEAN => describe_values(values, &mut out),
            ARRAY => {
                if let Some(items) = self.array_items(node, depth)? {
                    out.map.insert("items".to_owned(), items);
                    for key in ["minItems", "maxItems"] {
                        copy_count(node, key, &mut out.map);
                    }
                } else {
                    // Only `[]` is valid. Saying so (rather than dropping the property) keeps
                    // a required `children` present at the bottom of an unrolled tree, which
                    // strict client-side parsers insist on.
                    let any = Out::json_text("any JSON value", Annotations::default());
                    out.map
                        .insert("items".to_owned(), Value::Object(any.finish()));
                    out.map.insert("maxItems".to_owned(), json!(0));
                    out.notes.push("always empty".to_owned());
                }
                if node.get("uniqueItems") == Some(&Value::Bool(true)) {
                    out.notes.push("items must be unique".to_owned());
                }
                describe_values(values, &mut out);
            }
            _ => return self.convert_object(node, values, annotations, depth),
        }
        Ok(Converted::Schema(out))
    }

    /// The single `items` schema Gemini takes: tuples (`prefixItems`, or draft-7 `items: [..]`)
    /// become a union of their positions. `None` when no item is valid: the array can only be
    /// empty, as when a recursive `$ref` in `items` is cut off.
    fn array_items(&mut self, node: &Node<'a>, depth: usize) -> Result<Option<Value>, String> {
        let (tuple, additional) = match (node.get("prefixItems"), node.get("items")) {
            (Some(Value::Array(prefix)), items) => (prefix.as_slice(), items),
            (_, Some(Value::Array(tuple))) => (tuple.as_slice(), node.get("additionalItems")),
            (_, items) => (&[][..], items),
        };
        let mut schemas: Vec<&'a Value> = tuple.iter().collect();
        match additional {
            Some(additional) => schemas.push(additional),
            None if tuple.is_empty() => {
                let any = Out::json_text("any JSON value", Annotations::default());
                return Ok(Some(Value::Object(any.finish())));
            }
            None => {}
        }
        let mut items: Vec<Value> = Vec::new();
        let mut seen = BTreeSet::new();
        for schema in schemas {
            let item = match self.convert(&[schema], Vec::new(), depth + 1)? {
                Converted::Schema(out) => Value::Object(out.finish()),
                Converted::Null => Value::Object(null_schema()),
                Converted::Never => continue,
            };
            if seen.insert(item.to_string()) {
                items.push(item);
            }
        }
        Ok(match items.len() {
            0 => None,
            1 => items.pop(),
            _ => Some(json!({ "anyOf": items })),
        })
    }

    fn convert_object(
        &mut self,
        node: &Node<'a>,
        values: Option<&[&'a Value]>,
        annotations: Annotations<'a>,
        depth: usize,
    ) -> Result<Converted<'a>, String> {
        // Properties from every part; one named in several parts is their conjunction.
        let mut sources: BTreeMap<&'a str, Vec<&'a Value>> = BTreeMap::new();
        for properties in node.all("properties") {
            if let Value::Object(properties) = properties {
                for (name, schema) in properties {
                    sources.entry(name.as_str()).or_default().push(schema);
                }
            }
        }
        let mut properties = Map::new();
        for (name, schemas) in sources {
            let property = match self.convert(&schemas, Vec::new(), depth + 1)? {
                Converted::Schema(out) => out.finish(),
                Converted::Null => null_schema(),
                Converted::Never => continue,
            };
            properties.insert(name.to_owned(), Value::Object(property));
        }
        if properties.is_empty() {
            let mut out = Out::json_text("a JSON object", annotations);
            describe_values(values, &mut out);
            return Ok(Converted::Schema(out));
        }
        let mut out = Out::typed("OBJECT", annotations);
        let required = property_names(node.all("required"), &properties);
        if !required.is_empty() {
            out.map
                .insert("required".to_owned(), Value::Array(required));
        }
        let ordering = property_names(node.get("propertyOrdering").into_iter(), &properties);
        if !ordering.is_empty() {
            out.map
                .insert("propertyOrdering".to_owned(), Value::Array(ordering));
        }
        for key in ["minProperties", "maxProperties"] {
            copy_count(node, key, &mut out.map);
        }
        out.map
            .insert("properties".to_owned(), Value::Object(properties));
        describe_values(values, &mut out);
        Ok(Converted::Schema(out))
    }
}

/// A node's union: the index of the part holding it, the skip bit that hides it, the branches.
type Union<'a> = (usize, u8, &'a [Value]);

/// The first non-empty `anyOf`/`oneOf` of a node.
fn find_union<'a>(node: &Node<'a>) -> Result<Option<Union<'a>>, String> {
    for (index, part) in node.parts.iter().enumerate() {
        for (key, skip) in [("anyOf", SKIP_ANY_OF), ("oneOf", SKIP_ONE_OF)] {
            match part.get(key) {
                None => {}
                Some(Value::Array(branches)) if branches.is_empty() => {}
                Some(Value::Array(branches)) => return Ok(Some((index, skip, branches))),
                Some(other) => {
                    return Err(format!(
                        "`{key}` must be an array, not {}",
                        json_kind(other)
                    ));
                }
            }
        }
    }
    Ok(None)
}

fn union_of(branches: Vec<Value>, annotations: Annotations<'_>, nullable: bool) -> Converted<'_> {
    if branches.is_empty() {
        return if nullable {
            Converted::Null
        } else {
            Converted::Never
        };
    }
    let mut map = Map::new();
    map.insert("anyOf".to_owned(), Value::Array(branches));
    Converted::Schema(Out {
        map,
        notes: Vec::new(),
        encoded: false,
        // `nullable` is carried by each branch: Gemini wants it next to a `type`.
        annotations: Annotations {
            nullable: false,
            ..annotations
        },
    })
}

fn gemini_type_name(bit: u8) -> &'static str {
    match bit {
        BOOLEAN => "BOOLEAN",
        OBJECT => "OBJECT",
        ARRAY => "ARRAY",
        NUMBER => "NUMBER",
        INTEGER => "INTEGER",
        _ => "STRING",
    }
}

/// The names in `lists` (arrays of strings) that are keys of `properties`, first occurrence
/// first, each once.
fn property_names<'v>(
    lists: impl Iterator<Item = &'v Value>,
    properties: &Map<String, Value>,
) -> Vec<Value> {
    let mut seen = BTreeSet::new();
    lists
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(Value::as_str)
        .filter(|name| properties.contains_key(*name) && seen.insert(*name))
        .map(|name| Value::String(name.to_owned()))
        .collect()
}

fn string_keywords(node: &Node<'_>, values: Option<&[&Value]>, out: &mut Out<'_>) {
    let mut seen = BTreeSet::new();
    let values: Vec<Value> = values
        .into_iter()
        .flatten()
        .map(|v| match v {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        })
        .filter(|text| seen.insert(text.clone()))
        .map(Value::String)
        .collect();
    let has_enum = !values.is_empty();
    if has_enum {
        out.map.insert("enum".to_owned(), Value::Array(values));
    }
    if let Some(format) = node.str("format") {
        match format {
            "date-time" => {
                out.map.insert("format".to_owned(), json!(format));
            }
            "enum" if has_enum => {
                out.map.insert("format".to_owned(), json!(format));
            }
            "enum" => {}
            other => out.notes.push(format!("format: {other}")),
        }
    }
    for key in ["minLength", "maxLength"] {
        copy_count(node, key, &mut out.map);
    }
    if let Some(pattern) = node.get("pattern").filter(|p| p.is_string()) {
        out.map.insert("pattern".to_owned(), pattern.clone());
    }
}

fn number_keywords(node: &Node<'_>, integer: bool, values: Option<&[&Value]>, out: &mut Out<'_>) {
    if let Some(format) = node.str("format") {
        let allowed = if integer {
            matches!(format, "int32" | "int64")
        } else {
            matches!(format, "float" | "double")
        };
        if allowed {
            out.map.insert("format".to_owned(), json!(format));
        } else {
            out.notes.push(format!("format: {format}"));
        }
    }
    for (inclusive, exclusive, lower) in [
        ("minimum", "exclusiveMinimum", true),
        ("maximum", "exclusiveMaximum", false),
    ] {
        if let Some(bound) = bound(node, inclusive, exclusive, lower, integer, &mut out.notes) {
            out.map.insert(inclusive.to_owned(), bound);
        }
    }
    if let Some(step) = node.get("multipleOf").filter(|v| v.is_number()) {
        out.notes.push(format!("a multiple of {step}"));
    }
    describe_values(values, out);
}

/// Gemini has only inclusive `minimum`/`maximum`. An exclusive bound on an integer becomes the
/// next integer inside it (exact); on a number it is sent as the inclusive bound (the boundary
/// value itself is the only error) and stated in the description. Handles both the numeric
/// (draft 6+) and the boolean (draft 4) form of `exclusiveMinimum`/`exclusiveMaximum`.
fn bound(
    node: &Node<'_>,
    inclusive: &str,
    exclusive: &str,
    lower: bool,
    integer: bool,
    notes: &mut Vec<String>,
) -> Option<Value> {
    let inclusive = node.get(inclusive).filter(|v| v.is_number());
    let (value, is_exclusive) = match node.get(exclusive) {
        Some(Value::Number(number)) => {
            let candidate = number.as_f64()?;
            let tighter = inclusive.and_then(Value::as_f64).is_some_and(|current| {
                if lower {
                    current > candidate
                } else {
                    current < candidate
                }
            });
            if tighter {
                (inclusive?, false)
            } else {
                (node.get(exclusive)?, true)
            }
        }
        Some(Value::Bool(true)) => (inclusive?, true),
        _ => (inclusive?, false),
    };
    if !is_exclusive {
        return Some(value.clone());
    }
    if integer {
        let step: i64 = if lower { 1 } else { -1 };
        if let Some(next) = value.as_i64().and_then(|v| v.checked_add(step)) {
            return Some(json!(next));
        }
        let v = value.as_f64()?;
        let next = if lower {
            v.floor() + 1.0
        } else {
            v.ceil() - 1.0
        };
        return Number::from_f64(next).map(Value::Number);
    }
    let relation = if lower { "greater than" } else { "less than" };
    notes.push(format!("{relation} {value}"));
    Some(value.clone())
}

/// Enum values a type other than STRING cannot carry go to the description.
fn describe_values(values: Option<&[&Value]>, out: &mut Out<'_>) {
    let Some(values) = values.filter(|values| !values.is_empty()) else {
        return;
    };
    let texts: Vec<String> = values.iter().map(ToString::to_string).collect();
    out.notes.push(match texts.as_slice() {
        [only] => format!("must be {only}"),
        _ => format!("one of: {}", texts.join(", ")),
    });
}

fn copy_count(node: &Node<'_>, key: &str, map: &mut Map<String, Value>) {
    if let Some(count) = node.get(key).filter(|v| v.is_u64()) {
        map.insert(key.to_owned(), count.clone());
    }
}

/// One OBJECT for a union of objects at the root of function parameters: properties united
/// (the first definition of a name wins, except that string enums of a shared discriminator
/// are united), `required` intersected, the union's own annotations kept.
fn merge_objects(
    objects: Vec<Map<String, Value>>,
    outer: &Map<String, Value>,
) -> Option<Map<String, Value>> {
    let mut properties = Map::new();
    let mut required: Option<Vec<Value>> = None;
    let mut any = false;
    for mut object in objects {
        any = true;
        if let Some(Value::Object(props)) = object.remove("properties") {
            for (name, schema) in props {
                match properties.get_mut(&name) {
                    None => {
                        properties.insert(name, schema);
                    }
                    Some(existing) => unite_enums(existing, &schema),
                }
            }
        }
        let names = match object.remove("required") {
            Some(Value::Array(names)) => names,
            _ => Vec::new(),
        };
        required = Some(match required {
            None => names,
            Some(kept) => kept.into_iter().filter(|n| names.contains(n)).collect(),
        });
    }
    if !any {
        return None;
    }
    let mut merged = Map::new();
    merged.insert("type".to_owned(), json!("OBJECT"));
    for key in ["title", "description"] {
        if let Some(value) = outer.get(key) {
            merged.insert(key.to_owned(), value.clone());
        }
    }
    if let Some(required) = required.filter(|r| !r.is_empty()) {
        merged.insert("required".to_owned(), Value::Array(required));
    }
    merged.insert("properties".to_owned(), Value::Object(properties));
    Some(merged)
}

fn unite_enums(existing: &mut Value, other: &Value) {
    let (Some(Value::Array(values)), Some(Value::Array(more))) =
        (existing.get_mut("enum"), other.get("enum"))
    else {
        return;
    };
    for value in more {
        if !values.contains(value) {
            values.push(value.clone());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// to_json_schema: the light touch
// ---------------------------------------------------------------------------------------------

/// Keywords whose value is one subschema, a list of them, or a map of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    One,
    List,
    Map,
    /// `items` (one or, before 2020-12, a list) and `dependencies` (a map of schemas or of
    /// property lists).
    OneOrList,
    MapOfSome,
}

fn slot(key: &str) -> Option<Slot> {
    Some(match key {
        "additionalItems"
        | "additionalProperties"
        | "not"
        | "if"
        | "then"
        | "else"
        | "contains"
        | "propertyNames"
        | "unevaluatedItems"
        | "unevaluatedProperties"
        | "contentSchema" => Slot::One,
        "items" => Slot::OneOrList,
        "allOf" | "anyOf" | "oneOf" | "prefixItems" => Slot::List,
        "properties" | "patternProperties" | "$defs" | "definitions" | "dependentSchemas" => {
            Slot::Map
        }
        "dependencies" => Slot::MapOfSome,
        _ => return None,
    })
}

/// Where a boolean subschema is unusual enough that Gemini may not take it.
fn object_only(slot: Slot) -> bool {
    matches!(slot, Slot::List | Slot::Map)
}

fn inline_root_ref(root: &mut Map<String, Value>) -> Result<(), String> {
    for _ in 0..MAX_DEPTH {
        let Some(reference) = root.remove("$ref") else {
            return Ok(());
        };
        let Value::String(reference) = reference else {
            return Err(format!(
                "`$ref` must be a string, not {}",
                json_kind(&reference)
            ));
        };
        let snapshot = Value::Object(root.clone());
        let (pointer, target) = resolve(&snapshot, &reference)?;
        if pointer.is_empty() {
            return Err(format!("`$ref` `{reference}` at the root refers to itself"));
        }
        match target {
            Value::Object(target) => {
                for (key, value) in target {
                    root.entry(key.clone()).or_insert_with(|| value.clone());
                }
            }
            Value::Bool(true) => {}
            _ => return Err(format!("`$ref` `{reference}` names the schema `false`")),
        }
    }
    Err(format!(
        "`$ref`s at the root chain more than {MAX_DEPTH} times"
    ))
}

fn normalise_json_schema(schema: &mut Value) -> Result<(), String> {
    let mut stack: Vec<(&mut Value, usize)> = vec![(schema, 0)];
    while let Some((node, depth)) = stack.pop() {
        if depth > MAX_JSON_SCHEMA_DEPTH {
            return Err(format!(
                "the schema nests more than {MAX_JSON_SCHEMA_DEPTH} levels deep"
            ));
        }
        let Value::Object(map) = node else {
            continue;
        };
        normalise_node(map)?;
        for (key, value) in map {
            let Some(slot) = slot(key) else {
                continue;
            };
            let children: Vec<&mut Value> = match (slot, value) {
                (Slot::List | Slot::OneOrList, Value::Array(items)) => items.iter_mut().collect(),
                (Slot::Map | Slot::MapOfSome, Value::Object(map)) => map.values_mut().collect(),
                (Slot::One | Slot::OneOrList, value) => vec![value],
                _ => Vec::new(),
            };
            for child in children {
                if object_only(slot)
                    && let Value::Bool(admits) = child
                {
                    *child = if *admits {
                        json!({})
                    } else {
                        json!({ "not": {} })
                    };
                }
                // `dependencies` may map to a list of property names: not a schema.
                if slot == Slot::MapOfSome && !child.is_object() {
                    continue;
                }
                stack.push((child, depth + 1));
            }
        }
    }
    Ok(())
}

fn normalise_node(map: &mut Map<String, Value>) -> Result<(), String> {
    for key in ["$schema", "$id", "$comment"] {
        map.remove(key);
    }
    if let Some(declared) = map.remove("type") {
        let names: Vec<Value> = match &declared {
            Value::String(name) => known_type(name).map(|n| json!(n)).into_iter().collect(),
            Value::Array(names) => names
                .iter()
                .filter_map(Value::as_str)
                .filter_map(known_type)
                .fold(Vec::new(), |mut unique, name| {
                    if !unique.contains(&json!(name)) {
                        unique.push(json!(name));
                    }
                    unique
                }),
            _ => Vec::new(),
        };
        match (declared, names.len()) {
            (_, 0) => {}
            (Value::String(_), _) => {
                map.insert(
                    "type".to_owned(),
                    names.into_iter().next().unwrap_or_default(),
                );
            }
            _ => {
                map.insert("type".to_owned(), Value::Array(names));
            }
        }
    }
    match map.get("$ref") {
        None => return Ok(()),
        Some(Value::String(_)) => {}
        Some(other) => return Err(format!("`$ref` must be a string, not {}", json_kind(other))),
    }
    let crowded = map
        .keys()
        .any(|k| !matches!(k.as_str(), "$ref" | "description" | "default"));
    if crowded {
        // Gemini: "If a schema node has $ref set, then only description and default can be set
        // alongside it". `anyOf` with one branch means the same as the `$ref`.
        let reference = map.remove("$ref").unwrap_or_default();
        let wrapped = json!({ "$ref": reference });
        match map.remove("anyOf") {
            None => {
                map.insert("anyOf".to_owned(), json!([wrapped]));
            }
            Some(existing) => {
                let all_of = map
                    .entry("allOf")
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(all_of) = all_of {
                    all_of.push(json!({ "anyOf": [wrapped] }));
                    all_of.push(json!({ "anyOf": existing }));
                } else {
                    return Err("`allOf` must be an array".to_owned());
                }
            }
        }
    }
    Ok(())
}

fn known_type(name: &str) -> Option<&'static str> {
    match type_bit(name) {
        0 => None,
        bits if bits == NUMBER | INTEGER => Some("number"),
        bit => Some(json_schema_type_name(bit)),
    }
}

/// Every `$ref` in a schema position resolves, locally, to a schema.
fn check_refs(root: &Value) -> Result<(), String> {
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        let Value::Object(map) = node else {
            continue;
        };
        if let Some(reference) = map.get("$ref") {
            let Value::String(reference) = reference else {
                return Err(format!(
                    "`$ref` must be a string, not {}",
                    json_kind(reference)
                ));
            };
            resolve(root, reference)?;
        }
        for (key, value) in map {
            match (slot(key), value) {
                (None, _) => {}
                (Some(Slot::List | Slot::OneOrList), Value::Array(items)) => stack.extend(items),
                (Some(Slot::Map | Slot::MapOfSome), Value::Object(map)) => {
                    stack.extend(map.values());
                }
                (Some(_), value) => stack.push(value),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! fixtures {
        ($($name:literal),* $(,)?) => {
            [$(($name, include_str!(concat!("../../../tests/fixtures/schemas/", $name, ".json")))),*]
        };
    }

    const FIXTURES: [(&str, &str); 24] = fixtures![
        "allof_composition",
        "const_discriminated_union",
        "deeply_nested_objects",
        "formats_and_bounds",
        "free_form_objects",
        "integer_and_boolean_enums",
        "mcp_browser_click",
        "mcp_fetch_url",
        "mcp_filesystem_edit_file",
        "mcp_filesystem_read_multiple_files",
        "mcp_github_create_issue",
        "mcp_no_parameters",
        "multi_type_unions",
        "nested_arrays",
        "nullable_type_arrays",
        "openai_strict_nullable_enum",
        "pydantic_discriminated_union",
        "pydantic_order_with_defs",
        "recursive_defs_comment_thread",
        "recursive_tree_root_ref",
        "string_enum_only",
        "tuple_prefix_items",
        "zod_named_definitions_ref",
        "zod_strict_response_format",
    ];

    struct Fixture {
        file: &'static str,
        schema: Value,
        enum_only: bool,
    }

    fn fixtures() -> Vec<Fixture> {
        FIXTURES
            .iter()
            .map(|(file, text)| {
                let fixture: Value = serde_json::from_str(text).unwrap();
                assert!(fixture["name"].is_string(), "{file}: name");
                assert!(fixture["source"].is_string(), "{file}: source");
                Fixture {
                    file,
                    schema: fixture["schema"].clone(),
                    enum_only: fixture["enumOnly"] == json!(true),
                }
            })
            .collect()
    }

    #[test]
    fn every_fixture_file_is_listed() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/schemas");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter_map(|name| name.strip_suffix(".json").map(str::to_owned))
            .collect();
        on_disk.sort();
        let listed: Vec<&str> = FIXTURES.iter().map(|(name, _)| *name).collect();
        assert_eq!(on_disk, listed);
    }

    // --- checkers -----------------------------------------------------------------------------

    /// Gemini's rules for its `OpenAPI` subset, R1–R7, plus the key allow-list.
    fn openapi_violations(schema: &Value, path: &str, out: &mut Vec<String>) {
        let Value::Object(map) = schema else {
            out.push(format!("{path}: not an object"));
            return;
        };
        for key in map.keys() {
            if !OPENAPI_KEYS.contains(&key.as_str()) {
                out.push(format!("{path}: key `{key}` is not allowed"));
            }
        }
        let gemini_type = map.get("type").and_then(Value::as_str);
        let any_of = map.get("anyOf").and_then(Value::as_array);
        if gemini_type.is_none() && any_of.is_none_or(Vec::is_empty) {
            out.push(format!("{path}: R1 neither type nor a non-empty anyOf"));
        }
        if let Some(t) = map.get("type")
            && !matches!(
                t.as_str(),
                Some("STRING" | "NUMBER" | "INTEGER" | "BOOLEAN" | "ARRAY" | "OBJECT")
            )
        {
            out.push(format!("{path}: bad type {t}"));
        }
        let properties = map.get("properties").and_then(Value::as_object);
        if gemini_type == Some("OBJECT") && properties.is_none_or(Map::is_empty) {
            out.push(format!("{path}: R2 OBJECT without properties"));
        }
        if map.contains_key("properties") && gemini_type != Some("OBJECT") {
            out.push(format!("{path}: properties on a non-OBJECT"));
        }
        let is_property = |name: &Value| {
            name.as_str()
                .is_some_and(|n| properties.is_some_and(|p| p.contains_key(n)))
        };
        if let Some(required) = map.get("required") {
            let names = required.as_array().cloned().unwrap_or_default();
            if !names.iter().all(is_property) {
                out.push(format!("{path}: R3 required {required} not in properties"));
            }
        }
        if let Some(values) = map.get("enum") {
            let strings = values
                .as_array()
                .is_some_and(|v| !v.is_empty() && v.iter().all(Value::is_string));
            if gemini_type != Some("STRING") || !strings {
                out.push(format!("{path}: R4 enum {values} on {gemini_type:?}"));
            }
        }
        if gemini_type == Some("ARRAY") && !map.contains_key("items") {
            out.push(format!("{path}: R5 ARRAY without items"));
        }
        if map.contains_key("items") && gemini_type != Some("ARRAY") {
            out.push(format!("{path}: items on a non-ARRAY"));
        }
        if let Some(format) = map.get("format") {
            let ok = matches!(
                (gemini_type, format.as_str()),
                (Some("STRING"), Some("enum" | "date-time"))
                    | (Some("NUMBER"), Some("float" | "double"))
                    | (Some("INTEGER"), Some("int32" | "int64"))
            );
            if !ok {
                out.push(format!("{path}: R6 format {format} on {gemini_type:?}"));
            }
        }
        if let Some(ordering) = map.get("propertyOrdering") {
            let names = ordering.as_array().cloned().unwrap_or_default();
            if !names.iter().all(is_property) {
                out.push(format!("{path}: R7 propertyOrdering {ordering}"));
            }
        }
        for (name, child) in properties.into_iter().flatten() {
            openapi_violations(child, &format!("{path}.properties.{name}"), out);
        }
        if let Some(items) = map.get("items") {
            openapi_violations(items, &format!("{path}.items"), out);
        }
        for (i, branch) in any_of.into_iter().flatten().enumerate() {
            openapi_violations(branch, &format!("{path}.anyOf[{i}]"), out);
        }
    }

    fn assert_gemini_openapi(schema: &Value, label: &str) {
        let mut violations = Vec::new();
        openapi_violations(schema, "$", &mut violations);
        assert!(
            violations.is_empty(),
            "{label}: {violations:#?}\n{schema:#}"
        );
    }

    /// What Gemini's JSON Schema mode insists on.
    fn json_schema_violations(root: &Value) -> Vec<String> {
        let mut out = Vec::new();
        if !root.is_object() {
            out.push("root is not an object".to_owned());
        }
        let mut stack = vec![("$".to_owned(), root)];
        while let Some((path, node)) = stack.pop() {
            let Value::Object(map) = node else { continue };
            if map.contains_key("$schema") {
                out.push(format!("{path}: $schema"));
            }
            if let Some(reference) = map.get("$ref") {
                match reference.as_str().map(|r| resolve(root, r)) {
                    Some(Ok(_)) => {}
                    _ => out.push(format!("{path}: $ref {reference} does not resolve")),
                }
                if map
                    .keys()
                    .any(|k| !matches!(k.as_str(), "$ref" | "description" | "default"))
                {
                    out.push(format!("{path}: $ref with other siblings"));
                }
            }
            if let Some(declared) = map.get("type") {
                let names = match declared {
                    Value::Array(names) => names.clone(),
                    one => vec![one.clone()],
                };
                let known = [
                    "string", "number", "integer", "boolean", "object", "array", "null",
                ];
                if names.is_empty()
                    || !names
                        .iter()
                        .all(|n| n.as_str().is_some_and(|n| known.contains(&n)))
                {
                    out.push(format!("{path}: type {declared}"));
                }
            }
            for (key, value) in map {
                match (slot(key), value) {
                    (None, _) => {}
                    (Some(_), Value::Array(items)) => {
                        for (i, item) in items.iter().enumerate() {
                            stack.push((format!("{path}.{key}[{i}]"), item));
                        }
                    }
                    (Some(Slot::Map | Slot::MapOfSome), Value::Object(map)) => {
                        for (name, item) in map {
                            stack.push((format!("{path}.{key}.{name}"), item));
                        }
                    }
                    (Some(_), value) => stack.push((format!("{path}.{key}"), value)),
                }
            }
        }
        out
    }

    fn openapi(schema: &Value) -> Value {
        let out = to_openapi(schema).unwrap();
        assert_gemini_openapi(&out, &schema.to_string());
        out
    }

    fn description(schema: &Value) -> &str {
        schema["description"].as_str().unwrap_or_default()
    }

    /// How many times `key` nests inside itself following `path` from `schema`.
    fn nesting(schema: &Value, path: &[&str]) -> usize {
        let mut depth = 0;
        let mut node = schema;
        loop {
            let mut next = node;
            for step in path {
                next = &next[*step];
            }
            if next.is_null() {
                return depth;
            }
            depth += 1;
            node = next;
        }
    }

    // --- fixtures -----------------------------------------------------------------------------

    #[test]
    fn every_fixture_converts_to_valid_openapi() {
        for fixture in fixtures() {
            let out =
                to_openapi(&fixture.schema).unwrap_or_else(|e| panic!("{}: {e}", fixture.file));
            assert_gemini_openapi(&out, fixture.file);
        }
    }

    #[test]
    fn every_fixture_is_a_valid_json_schema_with_local_refs() {
        for fixture in fixtures() {
            let out =
                to_json_schema(&fixture.schema).unwrap_or_else(|e| panic!("{}: {e}", fixture.file));
            let violations = json_schema_violations(&out);
            assert!(violations.is_empty(), "{}: {violations:#?}", fixture.file);
        }
    }

    #[test]
    fn every_object_fixture_makes_function_parameters() {
        for fixture in fixtures().iter().filter(|f| !f.enum_only) {
            let json_schema = function_parameters_json_schema(&fixture.schema)
                .unwrap_or_else(|e| panic!("{}: {e}", fixture.file));
            assert_eq!(json_schema["type"], json!("object"), "{}", fixture.file);
            assert!(json_schema_violations(&json_schema).is_empty());
            let openapi = function_parameters_openapi(&fixture.schema)
                .unwrap_or_else(|e| panic!("{}: {e}", fixture.file));
            match openapi {
                None => assert_eq!(fixture.file, "mcp_no_parameters"),
                Some(openapi) => {
                    assert_eq!(openapi["type"], json!("OBJECT"), "{}", fixture.file);
                    assert_gemini_openapi(&openapi, fixture.file);
                }
            }
        }
    }

    #[test]
    fn only_the_enum_fixture_is_enum_only() {
        for fixture in fixtures() {
            assert_eq!(
                enum_only(&fixture.schema).is_some(),
                fixture.enum_only,
                "{}",
                fixture.file
            );
        }
    }

    #[test]
    fn pydantic_fixture_keeps_its_shape() {
        let fixture = fixtures()
            .into_iter()
            .find(|f| f.file == "pydantic_order_with_defs")
            .unwrap();
        let out = openapi(&fixture.schema);
        let props = &out["properties"];
        assert_eq!(props["items"]["items"]["type"], json!("OBJECT"));
        assert_eq!(
            props["items"]["items"]["properties"]["quantity"]["minimum"],
            json!(1)
        );
        assert_eq!(props["billing_address"]["type"], json!("OBJECT"));
        assert_eq!(props["billing_address"]["nullable"], json!(true));
        assert_eq!(
            description(&props["shipping_address"]),
            "Where to ship the order."
        );
        assert_eq!(
            props["shipping"],
            json!({"type": "STRING", "enum": ["standard", "express", "overnight"], "title": "Shipping", "default": "standard"})
        );
        assert_eq!(
            out["required"],
            json!(["customer_id", "items", "shipping_address"])
        );
    }

    // --- $ref ---------------------------------------------------------------------------------

    #[test]
    fn refs_into_defs_definitions_and_any_pointer_are_inlined() {
        let schema = json!({
            "type": "object",
            "properties": {
                "a": {"$ref": "#/$defs/A"},
                "b": {"$ref": "#/definitions/B"},
                "c": {"$ref": "#/properties/a"},
                "d": {"$ref": "#/$defs/With%20Space"},
                "e": {"$ref": "#/$defs/sl~1ash"}
            },
            "$defs": {
                "A": {"type": "string", "description": "from A"},
                "With Space": {"type": "boolean"},
                "sl/ash": {"type": "integer"}
            },
            "definitions": {"B": {"type": "number"}}
        });
        let out = openapi(&schema);
        let props = &out["properties"];
        assert_eq!(
            props["a"],
            json!({"type": "STRING", "description": "from A"})
        );
        assert_eq!(props["b"], json!({"type": "NUMBER"}));
        assert_eq!(props["c"], props["a"]);
        assert_eq!(props["d"], json!({"type": "BOOLEAN"}));
        assert_eq!(props["e"], json!({"type": "INTEGER"}));
    }

    #[test]
    fn ref_siblings_override_the_target_annotations() {
        let schema = json!({
            "type": "object",
            "properties": {"a": {"$ref": "#/$defs/A", "description": "outer", "title": "T"}},
            "$defs": {"A": {"type": "string", "description": "inner", "maxLength": 3}}
        });
        assert_eq!(
            openapi(&schema)["properties"]["a"],
            json!({"type": "STRING", "description": "outer", "title": "T", "maxLength": 3})
        );
    }

    #[test]
    fn unresolvable_refs_are_errors_that_name_the_ref() {
        let missing = json!({"type": "object", "properties": {"a": {"$ref": "#/$defs/Missing"}}});
        assert_eq!(
            to_openapi(&missing).unwrap_err(),
            "`$ref` `#/$defs/Missing` does not resolve"
        );
        assert_eq!(
            to_json_schema(&missing).unwrap_err(),
            "`$ref` `#/$defs/Missing` does not resolve"
        );
        let remote = json!({"properties": {"a": {"$ref": "https://example.com/s.json#/A"}}});
        assert!(to_openapi(&remote).unwrap_err().contains("is not local"));
        assert!(
            to_json_schema(&remote)
                .unwrap_err()
                .contains("is not local")
        );
        let anchor = json!({"properties": {"a": {"$ref": "#thing"}}});
        assert!(
            to_json_schema(&anchor)
                .unwrap_err()
                .contains("JSON-pointer")
        );
        let not_schema = json!({"properties": {"a": {"$ref": "#/required"}}, "required": ["a"]});
        assert!(
            to_openapi(&not_schema)
                .unwrap_err()
                .contains("not a schema")
        );
    }

    #[test]
    fn recursive_root_ref_unrolls_three_levels_then_ends_in_an_empty_array() {
        let schema = json!({
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "children": {"type": "array", "items": {"$ref": "#"}}
            },
            "required": ["name", "children"]
        });
        let out = openapi(&schema);
        // The root, then two nested copies whose `children` can only be empty.
        assert_eq!(nesting(&out, &["properties", "children", "items"]), 3);
        let deepest = &out["properties"]["children"]["items"]["properties"]["children"]["items"];
        assert_eq!(deepest["required"], json!(["name", "children"]));
        let cut = &deepest["properties"]["children"];
        assert_eq!(cut["type"], json!("ARRAY"));
        assert_eq!(cut["maxItems"], json!(0));
        assert_eq!(description(cut), "always empty");
    }

    #[test]
    fn a_directly_recursive_property_is_dropped_past_the_limit() {
        let schema = json!({
            "type": "object",
            "properties": {"name": {"type": "string"}, "parent": {"$ref": "#"}},
            "required": ["name", "parent"]
        });
        let out = openapi(&schema);
        assert_eq!(nesting(&out, &["properties", "parent"]), 2);
        let deepest = &out["properties"]["parent"]["properties"]["parent"];
        assert_eq!(deepest["properties"], json!({"name": {"type": "STRING"}}));
        assert_eq!(
            deepest["required"],
            json!(["name"]),
            "dropped from required"
        );
    }

    #[test]
    fn recursive_defs_through_optional_end_in_an_always_null() {
        let schema = json!({
            "$ref": "#/$defs/Node",
            "$defs": {"Node": {
                "type": "object",
                "properties": {
                    "value": {"type": "integer"},
                    "next": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]}
                },
                "required": ["value", "next"]
            }}
        });
        let out = openapi(&schema);
        // Node itself, then two nested copies; the third `next` can only be null.
        assert_eq!(nesting(&out, &["properties", "next"]), 3);
        let last = &out["properties"]["next"]["properties"]["next"];
        assert_eq!(last["type"], json!("OBJECT"));
        assert_eq!(last["nullable"], json!(true));
        assert_eq!(
            last["properties"]["next"],
            json!({"type": "STRING", "nullable": true, "description": "Always null."})
        );
        assert_eq!(last["required"], json!(["value", "next"]));
    }

    #[test]
    fn recursion_that_empties_an_object_degrades_to_a_json_string() {
        let schema = json!({
            "type": "object",
            "properties": {"self": {"$ref": "#/properties/self/items/0"}},
        });
        // A pointer into a non-schema list: an error, not a loop.
        assert!(to_openapi(&schema).is_err());
        let only_recursive = json!({
            "type": "object",
            "properties": {"loop": {"$ref": "#"}},
            "required": ["loop"]
        });
        let out = openapi(&only_recursive);
        let innermost = &out["properties"]["loop"]["properties"]["loop"];
        assert_eq!(innermost["type"], json!("STRING"));
        assert!(description(innermost).contains("JSON-encoded"));
    }

    #[test]
    fn ref_cycles_without_structure_terminate() {
        let schema = json!({
            "type": "object",
            "properties": {"a": {"$ref": "#/$defs/A"}, "b": {"type": "string"}},
            "$defs": {"A": {"$ref": "#/$defs/B"}, "B": {"$ref": "#/$defs/A"}}
        });
        let out = openapi(&schema);
        assert_eq!(out["properties"], json!({"b": {"type": "STRING"}}));
    }

    // --- nullability and unions -----------------------------------------------------------------

    #[test]
    fn type_arrays_with_null_become_nullable() {
        let out = openapi(&json!({"type": ["string", "null"], "maxLength": 5}));
        assert_eq!(
            out,
            json!({"type": "STRING", "nullable": true, "maxLength": 5})
        );
        let out = openapi(&json!({"type": ["array", "null"], "items": {"type": "integer"}}));
        assert_eq!(
            out,
            json!({"type": "ARRAY", "nullable": true, "items": {"type": "INTEGER"}})
        );
    }

    #[test]
    fn any_of_and_one_of_with_a_null_branch_become_nullable() {
        for key in ["anyOf", "oneOf"] {
            let schema = json!({
                key: [{"type": "integer"}, {"type": "null"}],
                "default": null,
                "title": "Limit"
            });
            assert_eq!(
                openapi(&schema),
                json!({"type": "INTEGER", "nullable": true, "title": "Limit", "default": null})
            );
        }
    }

    #[test]
    fn multi_branch_unions_become_any_of_with_nullable_in_each_branch() {
        let schema = json!({
            "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}, {"type": "null"}],
            "description": "one or many"
        });
        assert_eq!(
            openapi(&schema),
            json!({
                "description": "one or many",
                "anyOf": [
                    {"type": "STRING", "nullable": true},
                    {"type": "ARRAY", "items": {"type": "STRING"}, "nullable": true}
                ]
            })
        );
    }

    #[test]
    fn several_non_null_types_become_any_of() {
        let out = openapi(&json!({"type": ["string", "integer", "null"], "minimum": 1}));
        assert_eq!(
            out,
            json!({"anyOf": [
                {"type": "STRING", "nullable": true},
                {"type": "INTEGER", "minimum": 1, "nullable": true}
            ]})
        );
        // number covers integer.
        assert_eq!(
            openapi(&json!({"type": ["integer", "number"]})),
            json!({"type": "NUMBER"})
        );
    }

    #[test]
    fn union_siblings_are_distributed_into_the_branches() {
        let schema = json!({
            "type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
            "anyOf": [{"required": ["a"]}, {"required": ["b"]}],
            "description": "a or b"
        });
        let out = openapi(&schema);
        assert_eq!(out["description"], json!("a or b"));
        let branches = out["anyOf"].as_array().unwrap();
        assert_eq!(branches.len(), 2);
        assert_eq!(branches[0]["required"], json!(["a"]));
        assert_eq!(branches[1]["required"], json!(["b"]));
        assert!(branches.iter().all(|b| b["type"] == json!("OBJECT")));
        assert!(branches[0].get("description").is_none());
    }

    #[test]
    fn all_of_merges_properties_required_and_first_annotations() {
        let schema = json!({
            "allOf": [
                {"type": "object", "description": "first", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                {"type": "object", "description": "second", "properties": {"b": {"type": "integer"}, "a": {"maxLength": 4}}, "required": ["b"]}
            ]
        });
        assert_eq!(
            openapi(&schema),
            json!({
                "type": "OBJECT",
                "description": "first",
                "properties": {"a": {"type": "STRING", "maxLength": 4}, "b": {"type": "INTEGER"}},
                "required": ["a", "b"]
            })
        );
    }

    #[test]
    fn contradictory_types_admit_nothing() {
        let schema = json!({
            "type": "object",
            "properties": {"a": {"allOf": [{"type": "string"}, {"type": "integer"}]}, "b": {"type": "boolean"}},
            "required": ["a", "b"]
        });
        let out = openapi(&schema);
        assert_eq!(out["properties"], json!({"b": {"type": "BOOLEAN"}}));
        assert_eq!(out["required"], json!(["b"]));
    }

    // --- const and enum -------------------------------------------------------------------------

    #[test]
    fn string_const_becomes_a_one_value_enum() {
        assert_eq!(
            openapi(&json!({"const": "circle"})),
            json!({"type": "STRING", "enum": ["circle"]})
        );
        assert_eq!(
            openapi(&json!({"type": "string", "const": "circle"})),
            json!({"type": "STRING", "enum": ["circle"]})
        );
    }

    #[test]
    fn non_string_consts_keep_their_type_and_go_to_the_description() {
        assert_eq!(
            openapi(&json!({"const": true, "description": "Confirm."})),
            json!({"type": "BOOLEAN", "description": "Confirm. (must be true)"})
        );
        assert_eq!(
            openapi(&json!({"const": 3})),
            json!({"type": "INTEGER", "description": "must be 3"})
        );
        assert_eq!(
            openapi(&json!({"type": "string", "const": 3})),
            json!({"type": "STRING", "enum": ["3"]})
        );
    }

    #[test]
    fn integer_enums_are_described_and_string_typed_ones_stringified() {
        assert_eq!(
            openapi(&json!({"type": "integer", "enum": [1, 2, 3], "description": "Priority."})),
            json!({"type": "INTEGER", "description": "Priority. (one of: 1, 2, 3)"})
        );
        assert_eq!(
            openapi(&json!({"enum": [200, 404]})),
            json!({"type": "INTEGER", "description": "one of: 200, 404"})
        );
        assert_eq!(
            openapi(&json!({"type": "string", "enum": ["a", 1, true]})),
            json!({"type": "STRING", "enum": ["a", "1", "true"]})
        );
        // Mixed, untyped, with a string: string-like.
        assert_eq!(
            openapi(&json!({"enum": ["auto", 0]})),
            json!({"type": "STRING", "enum": ["auto", "0"]})
        );
    }

    #[test]
    fn null_inside_an_enum_becomes_nullable() {
        assert_eq!(
            openapi(&json!({"type": ["string", "null"], "enum": ["low", "high", null]})),
            json!({"type": "STRING", "enum": ["low", "high"], "nullable": true})
        );
        // A string type does not admit the null value.
        assert_eq!(
            openapi(&json!({"type": "string", "enum": ["low", null]})),
            json!({"type": "STRING", "enum": ["low"]})
        );
    }

    // --- formats, bounds, annotations ---------------------------------------------------------

    #[test]
    fn formats_gemini_does_not_allow_move_to_the_description() {
        assert_eq!(
            openapi(&json!({"type": "string", "format": "uri", "description": "Link"})),
            json!({"type": "STRING", "description": "Link (format: uri)"})
        );
        assert_eq!(
            openapi(&json!({"type": "string", "format": "date-time"})),
            json!({"type": "STRING", "format": "date-time"})
        );
        assert_eq!(
            openapi(&json!({"type": "integer", "format": "int64"})),
            json!({"type": "INTEGER", "format": "int64"})
        );
        assert_eq!(
            openapi(&json!({"type": "number", "format": "int32"})),
            json!({"type": "NUMBER", "description": "format: int32"})
        );
        assert_eq!(
            openapi(&json!({"type": "boolean", "format": "flag"})),
            json!({"type": "BOOLEAN"})
        );
    }

    #[test]
    fn title_is_kept_and_the_first_example_becomes_example() {
        assert_eq!(
            openapi(&json!({"type": "string", "title": "Day", "examples": ["2025-01-31", "x"]})),
            json!({"type": "STRING", "title": "Day", "example": "2025-01-31"})
        );
    }

    #[test]
    fn exclusive_bounds_are_exact_for_integers_and_described_for_numbers() {
        assert_eq!(
            openapi(&json!({"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 100})),
            json!({"type": "INTEGER", "minimum": 1, "maximum": 99})
        );
        assert_eq!(
            openapi(&json!({"type": "number", "exclusiveMinimum": 0})),
            json!({"type": "NUMBER", "minimum": 0, "description": "greater than 0"})
        );
        // Draft 4: a boolean that makes `minimum` exclusive.
        assert_eq!(
            openapi(&json!({"type": "integer", "minimum": 5, "exclusiveMinimum": true})),
            json!({"type": "INTEGER", "minimum": 6})
        );
        // The tighter of the two wins.
        assert_eq!(
            openapi(&json!({"type": "integer", "minimum": 10, "exclusiveMinimum": 0})),
            json!({"type": "INTEGER", "minimum": 10})
        );
        assert_eq!(
            openapi(&json!({"type": "integer", "exclusiveMaximum": 2.5})),
            json!({"type": "INTEGER", "maximum": 2.0})
        );
    }

    #[test]
    fn unsupported_keywords_are_dropped() {
        let schema = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "$id": "urn:x",
            "$comment": "c",
            "type": "object",
            "properties": {"a": {"type": "string", "readOnly": true, "deprecated": true, "not": {"const": "x"}}},
            "additionalProperties": false,
            "patternProperties": {"^x-": {}},
            "dependencies": {"a": ["b"]},
            "if": {"required": ["a"]},
            "then": {"required": ["b"]},
            "else": {},
            "unevaluatedProperties": false
        });
        assert_eq!(
            openapi(&schema),
            json!({"type": "OBJECT", "properties": {"a": {"type": "STRING"}}})
        );
    }

    #[test]
    fn unique_items_and_multiple_of_are_described() {
        assert_eq!(
            openapi(
                &json!({"type": "array", "items": {"type": "integer", "multipleOf": 5}, "uniqueItems": true})
            ),
            json!({"type": "ARRAY", "items": {"type": "INTEGER", "description": "a multiple of 5"}, "description": "items must be unique"})
        );
    }

    // --- degrading ------------------------------------------------------------------------------

    #[test]
    fn free_form_objects_become_json_encoded_strings_keeping_the_description() {
        for schema in [
            json!({"type": "object", "description": "Body."}),
            json!({"type": "object", "additionalProperties": true, "description": "Body."}),
            json!({"type": "object", "additionalProperties": {"type": "string"}, "description": "Body."}),
            json!({"type": "object", "properties": {}, "description": "Body."}),
        ] {
            assert_eq!(
                openapi(&schema),
                json!({"type": "STRING", "description": "Body. (a JSON object, JSON-encoded as a string)"}),
                "{schema}"
            );
        }
    }

    #[test]
    fn untyped_schemas_become_json_encoded_strings() {
        for schema in [json!({}), json!(true), json!({"description": "Anything"})] {
            let out = openapi(&schema);
            assert_eq!(out["type"], json!("STRING"));
            assert!(description(&out).contains("any JSON value, JSON-encoded"));
        }
        let out = openapi(&json!({"type": "object", "properties": {"v": {"default": {"a": 1}}}}));
        assert_eq!(out["properties"]["v"]["default"], json!("{\"a\":1}"));
    }

    #[test]
    fn untyped_schemas_with_typed_keywords_get_the_implied_type() {
        assert_eq!(
            openapi(&json!({"properties": {"a": {"maxLength": 2}}})),
            json!({"type": "OBJECT", "properties": {"a": {"type": "STRING", "maxLength": 2}}})
        );
        assert_eq!(
            openapi(&json!({"items": {"minimum": 0}})),
            json!({"type": "ARRAY", "items": {"type": "NUMBER", "minimum": 0}})
        );
    }

    #[test]
    fn arrays_without_items_get_json_encoded_items() {
        let out = openapi(&json!({"type": "array"}));
        assert_eq!(out["items"]["type"], json!("STRING"));
    }

    #[test]
    fn tuples_become_a_union_of_their_positions() {
        let schema = json!({
            "type": "array",
            "prefixItems": [{"type": "number"}, {"type": "number"}],
            "minItems": 2,
            "maxItems": 2
        });
        assert_eq!(
            openapi(&schema),
            json!({"type": "ARRAY", "items": {"type": "NUMBER"}, "minItems": 2, "maxItems": 2})
        );
        let mixed = json!({"type": "array", "items": [{"type": "string"}, {"type": "integer"}], "additionalItems": false});
        assert_eq!(
            openapi(&mixed)["items"],
            json!({"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]})
        );
    }

    #[test]
    fn required_and_property_ordering_are_filtered_to_existing_properties() {
        let schema = json!({
            "type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
            "required": ["a", "ghost", "a"],
            "propertyOrdering": ["b", "ghost", "a"]
        });
        let out = openapi(&schema);
        assert_eq!(out["required"], json!(["a"]));
        assert_eq!(out["propertyOrdering"], json!(["b", "a"]));
    }

    #[test]
    fn types_are_upper_cased_and_unknown_ones_ignored() {
        assert_eq!(
            openapi(&json!({"type": "STRING"})),
            json!({"type": "STRING"})
        );
        assert_eq!(
            openapi(&json!({"type": "Boolean"})),
            json!({"type": "BOOLEAN"})
        );
        let out = openapi(&json!({"type": "any"}));
        assert_eq!(out["type"], json!("STRING"));
    }

    // --- limits ---------------------------------------------------------------------------------

    #[test]
    fn deep_nesting_is_cut_off_not_a_stack_overflow() {
        let mut schema = json!({"type": "string"});
        for _ in 0..500 {
            schema = json!({"type": "object", "properties": {"x": schema}, "required": ["x"]});
        }
        let out = openapi(&schema);
        assert!(nesting(&out, &["properties", "x"]) <= MAX_DEPTH + 1);
        assert!(to_json_schema(&schema).unwrap_err().contains("levels deep"));
        let mut all_of = json!({"type": "string"});
        for _ in 0..500 {
            all_of = json!({"allOf": [all_of]});
        }
        assert!(to_openapi(&all_of).unwrap_err().contains("levels deep"));
    }

    #[test]
    fn exponential_ref_fan_out_hits_the_size_cap() {
        let mut defs = Map::new();
        defs.insert("D0".to_owned(), json!({"type": "string"}));
        for i in 1..40 {
            let below = format!("#/$defs/D{}", i - 1);
            defs.insert(
                format!("D{i}"),
                json!({"type": "object", "properties": {"l": {"$ref": below}, "r": {"$ref": below}}}),
            );
        }
        let schema = json!({"$ref": "#/$defs/D39", "$defs": defs});
        assert!(to_openapi(&schema).unwrap_err().contains("too large"));
        // The JSON Schema dialect keeps `$ref`s, so it has nothing to blow up.
        assert!(to_json_schema(&schema).is_ok());
    }

    #[test]
    fn non_schemas_are_errors() {
        assert!(
            to_openapi(&json!("string"))
                .unwrap_err()
                .contains("JSON object")
        );
        assert!(to_openapi(&json!(false)).is_err());
        assert!(
            to_json_schema(&json!([1]))
                .unwrap_err()
                .contains("not an array")
        );
        assert!(
            to_openapi(&json!({"properties": {"a": 5}}))
                .unwrap_err()
                .contains("not a number")
        );
        assert!(
            to_openapi(&json!({"anyOf": {}}))
                .unwrap_err()
                .contains("must be an array")
        );
    }

    // --- function parameters ------------------------------------------------------------------

    #[test]
    fn parameters_without_properties_are_none() {
        for schema in [
            json!({"type": "object", "properties": {}}),
            json!({"type": "object"}),
            json!({}),
            json!({"type": "object", "additionalProperties": true}),
        ] {
            assert_eq!(
                function_parameters_openapi(&schema).unwrap(),
                None,
                "{schema}"
            );
        }
    }

    #[test]
    fn parameters_must_be_an_object() {
        let err = function_parameters_openapi(&json!({"type": "string"})).unwrap_err();
        assert!(err.contains("must be an object schema"), "{err}");
        let err = function_parameters_json_schema(&json!({"type": "array"})).unwrap_err();
        assert!(err.contains("must be an object schema"), "{err}");
        assert_eq!(
            function_parameters_json_schema(&json!({"properties": {}})).unwrap(),
            json!({"type": "object", "properties": {}})
        );
        assert_eq!(
            function_parameters_json_schema(&json!({"type": ["object", "null"]})).unwrap(),
            json!({"type": "object"})
        );
        let nullable = json!({"type": ["object", "null"], "properties": {"a": {"type": "string"}}});
        assert_eq!(
            function_parameters_openapi(&nullable).unwrap(),
            Some(json!({"type": "OBJECT", "properties": {"a": {"type": "STRING"}}}))
        );
    }

    #[test]
    fn parameters_that_are_a_union_of_objects_merge_into_one() {
        let schema = json!({
            "description": "A shape.",
            "oneOf": [
                {"type": "object", "properties": {"kind": {"const": "circle"}, "r": {"type": "number"}}, "required": ["kind", "r"]},
                {"type": "object", "properties": {"kind": {"const": "square"}, "side": {"type": "number"}}, "required": ["kind", "side"]}
            ]
        });
        assert_eq!(
            function_parameters_openapi(&schema).unwrap(),
            Some(json!({
                "type": "OBJECT",
                "description": "A shape.",
                "properties": {
                    "kind": {"type": "STRING", "enum": ["circle", "square"]},
                    "r": {"type": "NUMBER"},
                    "side": {"type": "NUMBER"}
                },
                "required": ["kind"]
            }))
        );
    }

    // --- enum_only ------------------------------------------------------------------------------

    #[test]
    fn enum_only_accepts_bare_string_enums() {
        let values = Some(vec!["a".to_owned(), "b".to_owned()]);
        assert_eq!(
            enum_only(&json!({"type": "string", "enum": ["a", "b"]})),
            values
        );
        assert_eq!(
            enum_only(&json!({"enum": ["a", "b"], "title": "T"})),
            values
        );
        assert_eq!(
            enum_only(&json!({"$ref": "#/$defs/E", "$defs": {"E": {"enum": ["a", "b"]}}})),
            values
        );
        assert_eq!(
            enum_only(&json!({"const": "a"})),
            Some(vec!["a".to_owned()])
        );
    }

    #[test]
    fn enum_only_rejects_anything_more() {
        for schema in [
            json!({"type": "integer", "enum": [1, 2]}),
            json!({"enum": ["a", 1]}),
            json!({"enum": []}),
            json!({"type": ["string", "null"], "enum": ["a", null]}),
            json!({"type": "string", "enum": ["a"], "maxLength": 1}),
            json!({"type": "object", "properties": {"a": {"enum": ["x"]}}}),
            json!({"type": "string"}),
            json!("a"),
        ] {
            assert_eq!(enum_only(&schema), None, "{schema}");
        }
    }

    // --- to_json_schema -------------------------------------------------------------------------

    #[test]
    fn valid_json_schemas_pass_unchanged() {
        let schema = json!({
            "type": "object",
            "properties": {
                "a": {"$ref": "#/$defs/A", "description": "d", "default": "x"},
                "b": {"type": ["string", "null"], "format": "uri"},
                "c": {"anyOf": [{"type": "integer"}, {"type": "null"}]}
            },
            "required": ["a"],
            "additionalProperties": false,
            "$defs": {"A": {"type": "string", "enum": ["x", "y"]}}
        });
        assert_eq!(to_json_schema(&schema).unwrap(), schema);
    }

    #[test]
    fn json_schema_drops_schema_id_and_comment() {
        let schema = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "$id": "urn:x",
            "type": "object",
            "properties": {"a": {"type": "string", "$comment": "c"}}
        });
        assert_eq!(
            to_json_schema(&schema).unwrap(),
            json!({"type": "object", "properties": {"a": {"type": "string"}}})
        );
    }

    #[test]
    fn json_schema_inlines_a_root_ref() {
        let schema = json!({
            "$ref": "#/definitions/Contact",
            "definitions": {"Contact": {"type": "object", "properties": {"next": {"$ref": "#/definitions/Contact"}}}},
            "$schema": "http://json-schema.org/draft-07/schema#"
        });
        let out = to_json_schema(&schema).unwrap();
        assert_eq!(out["type"], json!("object"));
        assert_eq!(
            out["properties"]["next"],
            json!({"$ref": "#/definitions/Contact"})
        );
        assert!(out.get("$ref").is_none());
        let looping = json!({"$ref": "#"});
        assert!(to_json_schema(&looping).unwrap_err().contains("itself"));
    }

    #[test]
    fn json_schema_wraps_refs_with_other_siblings() {
        let schema = json!({
            "type": "object",
            "properties": {
                "a": {"$ref": "#/$defs/A", "title": "A", "description": "d"},
                "b": {"$ref": "#/$defs/A", "anyOf": [{"maxLength": 3}]}
            },
            "$defs": {"A": {"type": "string"}}
        });
        let out = to_json_schema(&schema).unwrap();
        assert_eq!(
            out["properties"]["a"],
            json!({"anyOf": [{"$ref": "#/$defs/A"}], "title": "A", "description": "d"})
        );
        assert_eq!(
            out["properties"]["b"],
            json!({"allOf": [{"anyOf": [{"$ref": "#/$defs/A"}]}, {"anyOf": [{"maxLength": 3}]}]})
        );
        assert!(json_schema_violations(&out).is_empty());
    }

    #[test]
    fn json_schema_normalises_types_and_boolean_subschemas() {
        let schema = json!({
            "type": "OBJECT",
            "properties": {
                "a": {"type": ["String", "NULL", "whatever"]},
                "b": {"type": "any"},
                "c": true,
                "d": false
            },
            "additionalProperties": true
        });
        assert_eq!(
            to_json_schema(&schema).unwrap(),
            json!({
                "type": "object",
                "properties": {"a": {"type": ["string", "null"]}, "b": {}, "c": {}, "d": {"not": {}}},
                "additionalProperties": true
            })
        );
    }

    #[test]
    fn json_schema_adds_object_type_to_an_untyped_root_with_properties() {
        assert_eq!(
            to_json_schema(&json!({"properties": {"a": {}}})).unwrap(),
            json!({"type": "object", "properties": {"a": {}}})
        );
        assert_eq!(to_json_schema(&json!(true)).unwrap(), json!({}));
        assert_eq!(
            to_json_schema(&json!({"anyOf": [{"type": "string"}]})).unwrap(),
            json!({"anyOf": [{"type": "string"}]})
        );
    }

    #[test]
    fn refs_inside_non_schema_values_are_not_followed() {
        let schema = json!({
            "type": "object",
            "properties": {"$ref": {"type": "string"}},
            "default": {"$ref": "#/nowhere"},
            "enum": [{"$ref": "#/nowhere"}]
        });
        assert!(to_json_schema(&schema).is_ok());
    }
}
