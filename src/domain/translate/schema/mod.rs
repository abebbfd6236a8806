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

mod api;
mod convert;
mod helpers;
mod json_schema;
mod keywords;
mod node;
mod types;

#[cfg(test)]
mod tests;

pub use api::{
    enum_only, function_parameters_json_schema, function_parameters_openapi, to_json_schema,
    to_openapi,
};

/// Deeper subschemas are sent as JSON-encoded strings (`OpenAPI`) or rejected (JSON Schema).
const MAX_DEPTH: usize = 32;
/// How many times one `$ref` may be expanded inside itself before recursion is cut off:
/// Gemini's subset cannot express recursion, so a tree becomes three levels of tree.
const MAX_UNROLL: usize = 3;
/// Subschemas visited while inlining; bounds the work a "billion laughs" of `$ref`s can cause.
const MAX_NODES: usize = 10_000;
/// The most the `OpenAPI` form of a schema may outgrow the schema, in bytes written per byte
/// read: inlining copies a `$ref`'s target (descriptions, enums) into every place it is used,
/// and a few nested `$ref`s, each used a few times, would otherwise turn kilobytes into
/// gigabytes well within [`MAX_NODES`]. Real schemas stay far below it.
const MAX_GROWTH: usize = 64;
/// Room for the notes the conversion adds to a tiny schema (`{}` becomes a described STRING).
const MIN_BUDGET: usize = 1024;
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
