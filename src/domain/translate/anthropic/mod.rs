//! The Anthropic Messages surface ⇄ Gemini. Requests go through the chat translation (see
//! [`request`]); answers, streamed or whole, are built here from Gemini's parts.
//!
//! Pure: no I/O, no clock; the message id arrives in [`MessagesContext`].

mod request;
mod response;
mod stream;

#[cfg(test)]
mod tests;

use serde_json::Value;

use crate::domain::error::GatewayError;
use crate::domain::gemini;
use crate::domain::translate::names::NameMap;

pub use request::{MessagesPlan, apply_signatures, to_chat_request};
pub use response::messages_response;
pub use stream::{MessagesSsePipeline, MessagesStreamTranslator};

/// Stream-independent facts of one message, chosen by the edge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessagesContext {
    /// `msg_…`, unique per request.
    pub id: String,
    /// The model as the client named it.
    pub model: String,
    /// Gemini function names → the client's tool names.
    pub names: NameMap,
    /// The client's stop sequences; the gateway cuts the answer at the first one.
    pub stop_sequences: Vec<String>,
}

/// A JSON object of `fields`, in one call where `json!` spends a `to_value`, an `unwrap`
/// and an insert per field: this surface builds many small objects, and the wasm has a
/// size budget.
pub(super) fn object(fields: &mut [(&str, Value)]) -> Value {
    Value::Object(
        fields
            .iter_mut()
            .map(|(key, value)| ((*key).to_owned(), std::mem::take(value)))
            .collect(),
    )
}

/// The body of `countTokens` for a translated request: the whole generate request, so the
/// system instruction and the tools count too. Written as text around the request's own
/// serialization (the one a generate call uses), not through a `Value`, which would cost
/// the wasm a second serializer for every Gemini request type.
pub fn count_tokens_body(
    model: &str,
    body: &gemini::GenerateContentRequest,
) -> Result<String, GatewayError> {
    let request = serde_json::to_string(body)
        .map_err(|e| GatewayError::Internal(format!("encode countTokens request: {e}")))?;
    let fields = request.strip_prefix('{').unwrap_or("}");
    let comma = if fields.starts_with('}') { "" } else { "," };
    let model = Value::String(format!("models/{model}"));
    Ok(format!(
        "{{\"generateContentRequest\":{{\"model\":{model}{comma}{fields}}}"
    ))
}

/// `{"input_tokens": n}` from Gemini's `countTokens` answer.
pub fn count_tokens_response(answer: &Value) -> Option<Value> {
    let total = answer
        .get("totalTokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    answer
        .is_object()
        .then(|| object(&mut [("input_tokens", total.into())]))
}
