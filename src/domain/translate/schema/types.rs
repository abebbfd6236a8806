//! JSON types as bit sets: parsing a `type` keyword, the type of a value, and the type names
//! of JSON Schema. Shared by both dialects; knows nothing of Gemini's `OpenAPI` names.

use serde_json::Value;

pub(super) const NULL: u8 = 1;
pub(super) const BOOLEAN: u8 = 2;
pub(super) const OBJECT: u8 = 4;
pub(super) const ARRAY: u8 = 8;
pub(super) const NUMBER: u8 = 16;
pub(super) const INTEGER: u8 = 32;
pub(super) const STRING: u8 = 64;
pub(super) const ANY: u8 = NULL | BOOLEAN | OBJECT | ARRAY | NUMBER | INTEGER | STRING;
/// Output order when one schema splits into several types.
const SINGLE_TYPES: [u8; 6] = [STRING, NUMBER, INTEGER, BOOLEAN, ARRAY, OBJECT];

/// A set of JSON types. `number` includes `integer`, so intersecting the two gives integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Types(pub(super) u8);

impl Types {
    /// The types a `type` keyword names; `None` when it names none we know (no constraint).
    pub(super) fn parse(value: &Value) -> Option<Self> {
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
    pub(super) fn of(value: &Value) -> u8 {
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

pub(super) fn type_bit(name: &str) -> u8 {
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

pub(super) fn json_schema_type_name(bit: u8) -> &'static str {
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
pub(super) fn single_types(bits: u8) -> Vec<u8> {
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
