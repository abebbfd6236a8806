//! The public entry points: [`to_openapi`], [`to_json_schema`], the function-parameters
//! variants of both, and [`enum_only`]. Each checks the root and hands off to the converter
//! (`OpenAPI`) or the light-touch normaliser (JSON Schema); the rules themselves live there.

use serde_json::{Map, Value, json};

use super::MAX_UNROLL;
use super::convert::Converter;
use super::helpers::{check_root, not_an_object_error, resolve};
use super::json_schema::{check_refs, inline_root_ref, normalise_json_schema};
use super::keywords::merge_objects;
use super::node::{Converted, Node, null_schema};
use super::types::{OBJECT, Types};

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
///   [`MAX_DEPTH`](super::MAX_DEPTH) become `{type: STRING}` described as JSON-encoded: Gemini
///   has no way to say "any object", and a string the model fills with JSON keeps the
///   information.
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
