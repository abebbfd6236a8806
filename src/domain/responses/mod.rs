//! `OpenAI`'s Responses API (`/v1/responses`) on top of the chat translation.
//!
//! A Responses request becomes a [`ChatCompletionRequest`] (so tools, thought signatures,
//! thinking and structured output go through `translate::chat` unchanged), and the chat answer
//! (whole, or chunk by chunk) becomes Responses output items and events. The conversation a
//! stored response continues is a list of [`Item`]s the edge keeps in D1.
//!
//! Must not do I/O or read a clock: ids and timestamps arrive in [`ResponseMeta`].
//!
//! [`ChatCompletionRequest`]: crate::domain::openai::ChatCompletionRequest

mod items;
mod output;
mod request;
mod stream;

#[cfg(test)]
mod tests;

pub use items::{ContentItem, Item, ItemContent, MessageRole, SummaryText};
pub use output::{ResponseObject, ResponseUsage, deleted, from_chat, not_found, scope_of};
pub use request::{
    Echo, ParsedResponses, PreparedResponses, conversation_from_json, parse_request, prepare,
};
pub use stream::ResponsesSsePipeline;

/// What a response object says of itself besides its output, fixed when the request arrives.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseMeta {
    /// `resp_…`.
    pub id: String,
    /// Unix seconds.
    pub created_at: u64,
    /// The model as the client named it.
    pub model: String,
    /// The request's parameters, echoed back in the response object.
    pub echo: Echo,
}

impl ResponseMeta {
    /// The random tail shared by the response id and its items' ids.
    fn tail(&self) -> &str {
        self.id.strip_prefix("resp_").unwrap_or(&self.id)
    }

    /// The id of output item `index` of kind `prefix` (`msg`, `rs`, `fc`).
    fn item_id(&self, prefix: &str, index: usize) -> String {
        format!("{prefix}_{}_{index}", self.tail())
    }
}
