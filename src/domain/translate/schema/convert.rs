//! [`to_openapi`](super::to_openapi)'s converter: expands `$ref`s and `allOf` within the caps,
//! distributes unions, and dispatches each single type to its keyword rules. Emits only the
//! keys of Gemini's `OpenAPI` subset.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::helpers::resolve;
use super::keywords::{
    copy_count, describe_values, gemini_type_name, number_keywords, property_names, string_keywords,
};
use super::node::{
    Annotations, Converted, Node, Out, Part, SKIP_ANNOTATIONS, SKIP_ANY_OF, SKIP_ONE_OF,
    null_schema,
};
use super::types::{ANY, ARRAY, BOOLEAN, INTEGER, NULL, NUMBER, STRING, Types, single_types};
use super::{MAX_DEPTH, MAX_GROWTH, MAX_NODES, MAX_UNROLL, MIN_BUDGET};
use crate::domain::translate::json_kind;

pub(super) struct Converter<'a> {
    root: &'a Value,
    /// Subschemas visited so far, against [`MAX_NODES`].
    visited: usize,
    /// Pointers of the `$ref`s being expanded on the current path, to count recursion.
    active: Vec<String>,
    /// Bytes of output written so far, against `budget`.
    written: usize,
    /// The most output this schema may become: [`MAX_GROWTH`] times its own size.
    budget: usize,
}

impl<'a> Converter<'a> {
    pub(super) fn new(root: &'a Value) -> Self {
        Self {
            root,
            visited: 0,
            // The root counts as one expansion of `#`.
            active: vec![String::new()],
            written: 0,
            budget: json_size(root)
                .saturating_mul(MAX_GROWTH)
                .saturating_add(MIN_BUDGET),
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

    /// A converted schema as the map it is written as, charged against the budget. Each map
    /// is charged for what it holds itself; the subschemas under it were charged when they
    /// were written. `$ref`s inlined many times over (a "billion laughs" of descriptions)
    /// end here, before they hold the memory they would need.
    fn write(&mut self, map: Map<String, Value>) -> Result<Map<String, Value>, String> {
        self.written = self.written.saturating_add(own_size(&map));
        if self.written > self.budget {
            return Err(format!(
                "the schema is too large: once `$ref`s are inlined it would be more than \
                 {MAX_GROWTH} times its own size"
            ));
        }
        Ok(map)
    }

    fn finish(&mut self, out: Out<'_>) -> Result<Map<String, Value>, String> {
        self.write(out.finish())
    }

    fn null(&mut self) -> Result<Map<String, Value>, String> {
        self.write(null_schema())
    }

    /// Adds `schema` and everything it pulls in through `$ref` and `allOf` to `parts`, keeping
    /// the `$ref`s on `active` for the caller to pop. False when nothing is valid.
    pub(super) fn expand(
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
    pub(super) fn convert(
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
                branches.push(Value::Object(self.finish(out)?));
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
        let mut branches = Vec::with_capacity(converted.len());
        for mut out in converted {
            out.annotations.nullable |= nullable;
            branches.push(Value::Object(self.finish(out)?));
        }
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
                        .insert("items".to_owned(), Value::Object(self.finish(any)?));
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
                return Ok(Some(Value::Object(self.finish(any)?)));
            }
            None => {}
        }
        let mut items: Vec<Value> = Vec::new();
        let mut seen = BTreeSet::new();
        for schema in schemas {
            let item = match self.convert(&[schema], Vec::new(), depth + 1)? {
                Converted::Schema(out) => Value::Object(self.finish(out)?),
                Converted::Null => Value::Object(self.null()?),
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
                Converted::Schema(out) => self.finish(out)?,
                Converted::Null => self.null()?,
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

/// About how many bytes `value` takes as JSON text; no allocation.
pub(super) fn json_size(value: &Value) -> usize {
    match value {
        Value::Null => 4,
        Value::Bool(_) => 5,
        Value::Number(_) => 8,
        Value::String(s) => s.len() + 2,
        Value::Array(items) => items.iter().map(|v| json_size(v) + 1).sum::<usize>() + 2,
        Value::Object(map) => {
            map.iter()
                .map(|(k, v)| k.len() + 4 + json_size(v))
                .sum::<usize>()
                + 2
        }
    }
}

/// The bytes a written schema map holds itself: everything but the subschemas under
/// `properties`, `items` and `anyOf`, which were written (and charged) on their own.
fn own_size(map: &Map<String, Value>) -> usize {
    map.iter()
        .map(|(k, v)| {
            k.len()
                + 4
                + match (k.as_str(), v) {
                    ("properties", Value::Object(properties)) => {
                        properties.keys().map(|name| name.len() + 4).sum()
                    }
                    ("items" | "anyOf", _) => 2,
                    _ => json_size(v),
                }
        })
        .sum::<usize>()
        + 2
}
