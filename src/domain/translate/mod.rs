//! Translation between the `OpenAI` surface and Gemini, plus the helpers every translator shares:
//! request-body decoding with errors that name the failing field, and the finish-reason and
//! usage maps clients depend on.
//!
//! Pure functions and state machines over `openai` and `gemini` types: no I/O, no clock, no
//! randomness (ids and timestamps are passed in).

pub mod anthropic;
pub mod chat;
pub mod continuation;
pub mod embeddings;
pub mod fake_stream;
mod grounding;
pub mod models;
pub mod names;
pub mod order;
pub mod schema;
pub mod stream;
pub mod switches;
pub mod thinking;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::domain::error::GatewayError;
use crate::domain::{gemini, openai};

/// Checks that a JSON value deserializes as some type; entries of a field table.
pub(crate) type Check = fn(&Value) -> Result<(), serde_json::Error>;

pub(crate) fn check<T: DeserializeOwned>(value: &Value) -> Result<(), serde_json::Error> {
    T::deserialize(value).map(drop)
}

/// Parses a body that must be a JSON object, with an error a client can act on.
pub(crate) fn json_object(body: &[u8]) -> Result<Map<String, Value>, GatewayError> {
    if body.trim_ascii().is_empty() {
        return Err(GatewayError::invalid(
            "request body is empty; expected a JSON object",
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(other) => Err(GatewayError::invalid(format!(
            "request body must be a JSON object, not {}",
            json_kind(&other)
        ))),
        Err(err) => Err(GatewayError::invalid(format!(
            "request body is not valid JSON: {err}"
        ))),
    }
}

pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `prefix.field`, or `field` at the top level.
pub(crate) fn join_path(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_owned()
    } else {
        format!("{prefix}.{field}")
    }
}

/// A 400 naming `path`. serde's "missing field `x`" becomes a path ending in `x`.
pub(crate) fn field_error(path: &str, err: &serde_json::Error) -> GatewayError {
    let message = err.to_string();
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(field, _)| field);
    match missing {
        Some(field) => required(&join_path(path, field)),
        None if path.is_empty() => {
            GatewayError::invalid(format!("invalid request body: {message}"))
        }
        None => GatewayError::invalid_param(format!("{path}: {message}"), path),
    }
}

pub(crate) fn required(path: &str) -> GatewayError {
    GatewayError::invalid_param(format!("{path}: this field is required"), path)
}

/// The first field of `object` listed in `fields` that fails its check.
pub(crate) fn first_field_error(
    object: &Map<String, Value>,
    fields: &[(&str, Check)],
    prefix: &str,
) -> Option<GatewayError> {
    fields.iter().find_map(|(name, check)| {
        let value = object.get(*name)?;
        check(value)
            .err()
            .map(|err| field_error(&join_path(prefix, name), &err))
    })
}

/// The first element of an array that does not deserialize as `T`, named `path[i]`.
pub(crate) fn first_item_error<T: DeserializeOwned>(
    value: &Value,
    path: &str,
) -> Option<GatewayError> {
    let Some(items) = value.as_array() else {
        return check::<Option<Vec<T>>>(value)
            .err()
            .map(|err| field_error(path, &err));
    };
    items.iter().enumerate().find_map(|(i, item)| {
        check::<T>(item)
            .err()
            .map(|err| field_error(&format!("{path}[{i}]"), &err))
    })
}

/// The finish-reason map: `STOP` → `stop` (or `tool_calls`), `MAX_TOKENS` → `length`, the
/// safety family → `content_filter`, everything else → `stop`.
pub(crate) fn finish_reason(
    reason: gemini::FinishReason,
    has_tool_calls: bool,
) -> openai::FinishReason {
    use gemini::FinishReason as G;
    use openai::FinishReason as O;
    match reason {
        G::MaxTokens => O::Length,
        G::Safety
        | G::Recitation
        | G::Blocklist
        | G::ProhibitedContent
        | G::Spii
        | G::ImageSafety
        | G::ImageProhibitedContent
        | G::ImageRecitation
        | G::Language => O::ContentFilter,
        G::Stop
        | G::MalformedFunctionCall
        | G::Other
        | G::FinishReasonUnspecified
        | G::ImageOther
        | G::NoImage
        | G::UnexpectedToolCall
        | G::TooManyToolCalls
        | G::Unknown => {
            if has_tool_calls {
                O::ToolCalls
            } else {
                O::Stop
            }
        }
    }
}

/// The usage map. Gemini's `totalTokenCount` also counts tool-use prompt tokens (e.g.
/// search results), so the total is never reported below prompt + completion.
pub(crate) fn usage(meta: &gemini::UsageMetadata) -> openai::CompletionUsage {
    let completion = meta.candidates_token_count + meta.thoughts_token_count;
    openai::CompletionUsage {
        prompt_tokens: meta.prompt_token_count,
        completion_tokens: completion,
        total_tokens: meta
            .total_token_count
            .max(meta.prompt_token_count + completion),
        prompt_tokens_details: Some(openai::PromptTokensDetails {
            cached_tokens: meta.cached_content_token_count,
        }),
        completion_tokens_details: Some(openai::CompletionTokensDetails {
            reasoning_tokens: meta.thoughts_token_count,
        }),
    }
}

/// Serializes a wire value for an SSE event. Our wire types have only string keys, so this
/// cannot fail in practice; if it ever did, the client gets an error event, not a panic.
pub(crate) fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| {
        r#"{"error":{"message":"Internal server error.","type":"api_error","param":null,"code":"internal_error"}}"#
            .to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gemini::FinishReason as G;
    use openai::FinishReason as O;

    #[test]
    fn finish_reasons_follow_the_documented_table() {
        let table = [
            (G::Stop, false, O::Stop),
            (G::Stop, true, O::ToolCalls),
            (G::MaxTokens, false, O::Length),
            (G::MaxTokens, true, O::Length),
            (G::Safety, false, O::ContentFilter),
            (G::Recitation, false, O::ContentFilter),
            (G::Blocklist, false, O::ContentFilter),
            (G::ProhibitedContent, false, O::ContentFilter),
            (G::Spii, false, O::ContentFilter),
            (G::ImageSafety, false, O::ContentFilter),
            (G::Language, false, O::ContentFilter),
            (G::MalformedFunctionCall, false, O::Stop),
            (G::Other, false, O::Stop),
            (G::Unknown, false, O::Stop),
        ];
        for (gemini, tools, want) in table {
            assert_eq!(
                finish_reason(gemini, tools),
                want,
                "{gemini:?} tools={tools}"
            );
        }
    }

    #[test]
    fn safety_finish_reason_maps_to_content_filter() {
        assert_eq!(finish_reason(G::Safety, false), O::ContentFilter);
    }

    #[test]
    fn usage_counts_thoughts_as_completion_and_reports_cache() {
        let meta = gemini::UsageMetadata {
            prompt_token_count: 10,
            candidates_token_count: 5,
            thoughts_token_count: 7,
            cached_content_token_count: 4,
            total_token_count: 22,
            tool_use_prompt_token_count: 0,
        };
        let usage = usage(&meta);
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.total_tokens
            ),
            (10, 12, 22)
        );
        assert_eq!(usage.completion_tokens_details.unwrap().reasoning_tokens, 7);
        assert_eq!(usage.prompt_tokens_details.unwrap().cached_tokens, 4);
    }

    #[test]
    fn usage_total_is_never_below_its_parts() {
        let meta = gemini::UsageMetadata {
            prompt_token_count: 3,
            candidates_token_count: 2,
            ..gemini::UsageMetadata::default()
        };
        assert_eq!(usage(&meta).total_tokens, 5);
    }

    #[test]
    fn body_errors_are_clear() {
        let msg = |body: &[u8]| json_object(body).unwrap_err().client_message();
        assert!(msg(b"").contains("empty"));
        assert!(msg(b"  \n").contains("empty"));
        assert!(msg(b"{not json").contains("not valid JSON"));
        assert!(msg(b"[1]").contains("must be a JSON object, not an array"));
        assert!(msg(b"null").contains("not null"));
    }
}
