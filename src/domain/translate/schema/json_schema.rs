//! [`to_json_schema`](super::to_json_schema)'s light touch: inlining a root `$ref`,
//! normalising `type`, boolean subschemas and crowded `$ref`s, and checking that every `$ref`
//! resolves. Must leave every keyword Gemini accepts as the client sent it.

use serde_json::{Map, Value, json};

use super::helpers::resolve;
use super::types::{INTEGER, NUMBER, json_schema_type_name, type_bit};
use super::{MAX_DEPTH, MAX_JSON_SCHEMA_DEPTH};
use crate::domain::translate::json_kind;

/// Keywords whose value is one subschema, a list of them, or a map of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    One,
    List,
    Map,
    /// `items` (one or, before 2020-12, a list) and `dependencies` (a map of schemas or of
    /// property lists).
    OneOrList,
    MapOfSome,
}

pub(super) fn slot(key: &str) -> Option<Slot> {
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

pub(super) fn inline_root_ref(root: &mut Map<String, Value>) -> Result<(), String> {
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

pub(super) fn normalise_json_schema(schema: &mut Value) -> Result<(), String> {
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
pub(super) fn check_refs(root: &Value) -> Result<(), String> {
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
