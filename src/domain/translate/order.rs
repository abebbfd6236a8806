//! Key order of a client's JSON, kept where it means something.
//!
//! `serde_json` here stores objects sorted by key, so a response schema would reach Gemini with
//! its properties in alphabetical order, and Gemini 2.5+ writes structured answers in the
//! schema's order: a `reasoning`-before-`answer` schema would come back answer first. This
//! module records the order every object of the request had, and writes a (possibly
//! rewritten) schema back out in that order. An object is matched by its key set, so it finds
//! its order even after `$ref`s were inlined or keys dropped around it.

use std::collections::HashMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

/// The key order of every object with two keys or more, by its sorted key set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyOrders {
    by_set: HashMap<Vec<String>, Vec<String>>,
}

impl KeyOrders {
    /// Reads the orders from a raw JSON document. Malformed input yields no orders.
    pub fn collect(raw: &[u8]) -> Self {
        let mut orders = Self::default();
        if let Ok(node) = serde_json::from_slice::<Node>(raw) {
            orders.record(&node);
        }
        orders
    }

    pub fn is_empty(&self) -> bool {
        self.by_set.is_empty()
    }

    fn record(&mut self, node: &Node) {
        match node {
            Node::Object(entries) => {
                if entries.len() >= 2 {
                    let order: Vec<String> = entries.iter().map(|(k, _)| k.clone()).collect();
                    let mut set = order.clone();
                    set.sort();
                    set.dedup();
                    // The first object with a key set wins; later twins are usually the same.
                    self.by_set.entry(set).or_insert(order);
                }
                for (_, child) in entries {
                    self.record(child);
                }
            }
            Node::Array(items) => items.iter().for_each(|item| self.record(item)),
            Node::Leaf => {}
        }
    }

    /// The recorded order for an object with exactly these keys.
    fn order_of<'a>(&'a self, keys: &[&'a String]) -> Option<&'a [String]> {
        let set: Vec<String> = keys.iter().map(|k| (*k).clone()).collect();
        self.by_set.get(&set).map(Vec::as_slice)
    }

    /// `value` as JSON text, each object's keys in the order the client wrote them (sorted
    /// when unknown). The same value as `serde_json::to_string`, only ordered.
    pub fn to_json(&self, value: &Value) -> Box<RawValue> {
        let mut out = String::new();
        self.write(value, &mut out);
        RawValue::from_string(out).unwrap_or_else(|_| raw_of(value))
    }

    fn write(&self, value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                let keys: Vec<&String> = map.keys().collect();
                let ordered: Vec<&str> = match self.order_of(&keys) {
                    Some(order) => order.iter().map(String::as_str).collect(),
                    None => keys.iter().map(|k| k.as_str()).collect(),
                };
                out.push('{');
                for (i, key) in ordered.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String((*key).to_owned()).to_string());
                    out.push(':');
                    if let Some(child) = map.get(*key) {
                        self.write(child, out);
                    }
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    self.write(item, out);
                }
                out.push(']');
            }
            leaf => out.push_str(&leaf.to_string()),
        }
    }
}

/// Plain serialisation, for the impossible case of invalid text above.
fn raw_of(value: &Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).unwrap_or_default()
}

/// A JSON document that remembers key order (and nothing else of its values).
enum Node {
    Object(Vec<(String, Node)>),
    Array(Vec<Node>),
    Leaf,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_str<E>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Node>()? {
            entries.push((key, value));
        }
        Ok(Node::Object(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_are_written_in_the_clients_order() {
        let raw = br#"{"model":"m","response_format":{"type":"json_schema","json_schema":{"name":"a",
            "schema":{"type":"object","properties":{"reasoning":{"type":"string"},"answer":{"type":"string"},
            "confidence":{"type":"number"}},"required":["reasoning","answer","confidence"]}}}}"#;
        let orders = KeyOrders::collect(raw);
        let schema = json!({"type": "object",
            "properties": {"reasoning": {"type": "string"}, "answer": {"type": "string"}, "confidence": {"type": "number"}},
            "required": ["reasoning", "answer", "confidence"]});
        let text = orders.to_json(&schema).get().to_owned();
        let reasoning = text.find("\"reasoning\":{").unwrap();
        let answer = text.find("\"answer\":{").unwrap();
        let confidence = text.find("\"confidence\":{").unwrap();
        assert!(reasoning < answer && answer < confidence, "{text}");
        assert!(
            text.starts_with("{\"type\":\"object\",\"properties\""),
            "{text}"
        );
        // Same value, only ordered.
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), schema);
    }

    #[test]
    fn unknown_key_sets_fall_back_to_sorted_and_strings_are_escaped() {
        let orders = KeyOrders::collect(br#"{"b":1,"a":2}"#);
        let value = json!({"z": "q\"uote\n", "y": [1, 2.5, null, true], "x": {"b": 1, "a": 2}});
        let text = orders.to_json(&value).get().to_owned();
        assert_eq!(
            text,
            r#"{"x":{"b":1,"a":2},"y":[1,2.5,null,true],"z":"q\"uote\n"}"#
        );
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), value);
    }

    #[test]
    fn malformed_input_records_nothing() {
        assert!(KeyOrders::collect(b"{not json").is_empty());
        assert!(KeyOrders::collect(b"[1, 2]").is_empty());
    }
}
