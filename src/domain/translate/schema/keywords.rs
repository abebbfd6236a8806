//! Per-type keyword rules of the `OpenAPI` conversion: Gemini type names, string and number
//! keywords (formats, bounds, enums), `required`/`propertyOrdering` filtering, and the merge
//! of a root union of objects for function parameters. Never recurses into subschemas.

use std::collections::BTreeSet;

use serde_json::{Map, Number, Value, json};

use super::node::{Node, Out};
use super::types::{ARRAY, BOOLEAN, INTEGER, NUMBER, OBJECT};

pub(super) fn gemini_type_name(bit: u8) -> &'static str {
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
pub(super) fn property_names<'v>(
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

pub(super) fn string_keywords(node: &Node<'_>, values: Option<&[&Value]>, out: &mut Out<'_>) {
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

pub(super) fn number_keywords(
    node: &Node<'_>,
    integer: bool,
    values: Option<&[&Value]>,
    out: &mut Out<'_>,
) {
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
pub(super) fn describe_values(values: Option<&[&Value]>, out: &mut Out<'_>) {
    let Some(values) = values.filter(|values| !values.is_empty()) else {
        return;
    };
    let texts: Vec<String> = values.iter().map(ToString::to_string).collect();
    out.notes.push(match texts.as_slice() {
        [only] => format!("must be {only}"),
        _ => format!("one of: {}", texts.join(", ")),
    });
}

pub(super) fn copy_count(node: &Node<'_>, key: &str, map: &mut Map<String, Value>) {
    if let Some(count) = node.get(key).filter(|v| v.is_u64()) {
        map.insert(key.to_owned(), count.clone());
    }
}

/// One OBJECT for a union of objects at the root of function parameters: properties united
/// (the first definition of a name wins, except that string enums of a shared discriminator
/// are united), `required` intersected, the union's own annotations kept.
pub(super) fn merge_objects(
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
