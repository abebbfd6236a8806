//! The Anthropic Messages surface ⇄ Gemini. Requests go through the chat translation (see
//! [`request`]); answers, streamed or whole, are built here from Gemini's parts.
//!
//! Pure: no I/O, no clock; the message id arrives in [`MessagesContext`].

mod request;
mod response;
mod stream;

#[cfg(test)]
mod tests;

use serde_json::{Value, json};

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

/// The body of `countTokens` for a translated request: the whole generate request, so the
/// system instruction and the tools count too.
pub fn count_tokens_body(model: &str, body: &gemini::GenerateContentRequest) -> Value {
    let mut request = serde_json::to_value(body).unwrap_or_else(|_| json!({}));
    if let Some(object) = request.as_object_mut() {
        object.insert("model".into(), Value::String(format!("models/{model}")));
    }
    json!({ "generateContentRequest": request })
}

/// `{"input_tokens": n}` from Gemini's `countTokens` answer.
pub fn count_tokens_response(answer: &Value) -> Option<Value> {
    let total = answer
        .get("totalTokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    answer.is_object().then(|| json!({ "input_tokens": total }))
}
