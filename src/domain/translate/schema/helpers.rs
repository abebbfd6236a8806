//! Helpers both dialects share: the root check, the function-parameters error, and local
//! `$ref` resolution (JSON pointers, percent-decoded).

use serde_json::Value;

use crate::domain::translate::json_kind;

pub(super) fn check_root(schema: &Value) -> Result<(), String> {
    match schema {
        Value::Object(_) | Value::Bool(true) => Ok(()),
        Value::Bool(false) => Err("the schema `false` admits no value".to_owned()),
        other => Err(format!(
            "a schema must be a JSON object, not {}",
            json_kind(other)
        )),
    }
}

pub(super) fn not_an_object_error(declared: Option<&Value>) -> String {
    match declared {
        Some(declared) => format!(
            "function parameters must be an object schema (`type: \"object\"`), not `type: {declared}`"
        ),
        None => "function parameters must be an object schema (`type: \"object\"`)".to_owned(),
    }
}

/// Resolves a local `$ref` against `root`: the JSON pointer it names (percent-decoded, so the
/// two spellings of one target count as one for recursion) and the target.
pub(super) fn resolve<'a>(root: &'a Value, reference: &str) -> Result<(String, &'a Value), String> {
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
