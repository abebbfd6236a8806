//! The data model of the `OpenAPI` conversion: the parts that make up one schema position
//! ([`Part`], [`Node`]), the annotations laid on last ([`Annotations`]), and a converted schema
//! before its annotations are applied ([`Out`], [`Converted`]). No conversion rules here.

use serde_json::{Map, Value, json};

use super::types::{ARRAY, NULL, NUMBER, OBJECT, STRING, Types};

pub(super) const SKIP_ANY_OF: u8 = 1;
pub(super) const SKIP_ONE_OF: u8 = 2;
pub(super) const SKIP_ANNOTATIONS: u8 = 4;

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
pub(super) struct Part<'a> {
    pub(super) map: &'a Map<String, Value>,
    pub(super) skip: u8,
}

impl<'a> Part<'a> {
    pub(super) fn get(self, key: &str) -> Option<&'a Value> {
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

    pub(super) fn has_assertions(self) -> bool {
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
pub(super) struct Node<'a> {
    pub(super) parts: Vec<Part<'a>>,
}

impl<'a> Node<'a> {
    pub(super) fn get(&self, key: &str) -> Option<&'a Value> {
        self.parts.iter().find_map(|part| part.get(key))
    }

    pub(super) fn all<'s>(&'s self, key: &'s str) -> impl Iterator<Item = &'a Value> + 's {
        self.parts.iter().filter_map(move |part| part.get(key))
    }

    pub(super) fn str(&self, key: &str) -> Option<&'a str> {
        self.get(key).and_then(Value::as_str)
    }

    fn has(&self, keys: &[&str]) -> bool {
        keys.iter().any(|key| self.get(key).is_some())
    }

    /// The intersection of every part's `type` (`OpenAPI`'s `nullable: true` adds null);
    /// `None` when no part constrains the type.
    pub(super) fn types(&self) -> Option<Types> {
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
    pub(super) fn values(&self) -> Option<Vec<&'a Value>> {
        if let Some(value) = self.get("const") {
            return Some(vec![value]);
        }
        match self.get("enum") {
            Some(Value::Array(values)) if !values.is_empty() => Some(values.iter().collect()),
            _ => None,
        }
    }

    /// Types implied by keywords when no `type` is given.
    pub(super) fn implied_types(&self) -> u8 {
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

    pub(super) fn annotations(&self) -> Annotations<'a> {
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
pub(super) struct Annotations<'a> {
    pub(super) title: Option<&'a str>,
    pub(super) description: Option<&'a str>,
    pub(super) default: Option<&'a Value>,
    pub(super) example: Option<&'a Value>,
    pub(super) nullable: bool,
}

impl Annotations<'_> {
    pub(super) fn overlaid_by(self, outer: Self) -> Self {
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
pub(super) struct Out<'a> {
    pub(super) map: Map<String, Value>,
    pub(super) notes: Vec<String>,
    /// The value is JSON-encoded into a string, so `default`/`example` are too.
    pub(super) encoded: bool,
    pub(super) annotations: Annotations<'a>,
}

impl<'a> Out<'a> {
    pub(super) fn typed(gemini_type: &str, annotations: Annotations<'a>) -> Self {
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
    pub(super) fn json_text(what: &str, annotations: Annotations<'a>) -> Self {
        let mut out = Self::typed("STRING", annotations);
        out.notes.push(format!("{what}, JSON-encoded as a string"));
        out.encoded = true;
        out
    }

    pub(super) fn finish(self) -> Map<String, Value> {
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
pub(super) enum Converted<'a> {
    Schema(Out<'a>),
    /// Only `null` is valid: a union's null branch, which becomes `nullable`.
    Null,
    /// Nothing is valid: `false`, or a recursive `$ref` past the unroll limit.
    Never,
}

/// `{type: STRING, nullable: true}` for a position where only null is valid; Gemini's `NULL`
/// type is newer than `nullable`, so this is the form every model takes.
pub(super) fn null_schema() -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("type".to_owned(), json!("STRING"));
    map.insert("nullable".to_owned(), Value::Bool(true));
    map.insert("description".to_owned(), json!("Always null."));
    map
}
