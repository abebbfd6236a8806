//! The response object, and a chat completion's answer as Responses output items.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::ResponseMeta;
use super::items::{ContentItem, Item, ItemContent, MessageRole, SummaryText};
use crate::domain::error::GatewayError;
use crate::domain::openai::{Annotation, ChatCompletion, CompletionUsage, FinishReason, ToolCall};
use crate::domain::sha256::sha256_hex;

/// `OpenAI`'s response object, as returned, streamed and stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseObject {
    pub id: String,
    pub object: String,
    pub created_at: u64,
    /// `in_progress`, `completed`, `incomplete` or `failed`.
    pub status: String,
    pub error: Option<Value>,
    pub incomplete_details: Option<Value>,
    pub instructions: Option<String>,
    pub max_output_tokens: Option<u32>,
    pub model: String,
    pub output: Vec<Item>,
    pub parallel_tool_calls: bool,
    pub previous_response_id: Option<String>,
    pub reasoning: Value,
    pub store: bool,
    pub temperature: Option<f64>,
    pub text: Value,
    pub tool_choice: Value,
    pub tools: Vec<Value>,
    pub top_p: Option<f64>,
    pub truncation: String,
    pub usage: Option<ResponseUsage>,
    pub user: Option<String>,
    pub metadata: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseUsage {
    pub input_tokens: u64,
    pub input_tokens_details: CachedTokens,
    pub output_tokens: u64,
    pub output_tokens_details: ReasoningTokens,
    pub total_tokens: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedTokens {
    pub cached_tokens: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReasoningTokens {
    pub reasoning_tokens: u64,
}

impl From<CompletionUsage> for ResponseUsage {
    fn from(u: CompletionUsage) -> Self {
        Self {
            input_tokens: u.prompt_tokens,
            input_tokens_details: CachedTokens {
                cached_tokens: u.prompt_tokens_details.map_or(0, |d| d.cached_tokens),
            },
            output_tokens: u.completion_tokens,
            output_tokens_details: ReasoningTokens {
                reasoning_tokens: u
                    .completion_tokens_details
                    .map_or(0, |d| d.reasoning_tokens),
            },
            total_tokens: u.total_tokens,
        }
    }
}

impl ResponseObject {
    /// The object before any output: what `response.created` carries.
    pub fn in_progress(meta: &ResponseMeta) -> Self {
        let echo = meta.echo.clone();
        Self {
            id: meta.id.clone(),
            object: "response".to_owned(),
            created_at: meta.created_at,
            status: "in_progress".to_owned(),
            error: None,
            incomplete_details: None,
            instructions: echo.instructions,
            max_output_tokens: echo.max_output_tokens,
            model: meta.model.clone(),
            output: Vec::new(),
            parallel_tool_calls: echo.parallel_tool_calls,
            previous_response_id: echo.previous_response_id,
            reasoning: echo.reasoning,
            store: echo.store,
            temperature: echo.temperature,
            text: echo.text,
            tool_choice: echo.tool_choice,
            tools: echo.tools,
            top_p: echo.top_p,
            truncation: "disabled".to_owned(),
            usage: None,
            user: echo.user,
            metadata: echo.metadata,
        }
    }

    /// Sets the final status from the chat finish reason: cut by the token limit or a
    /// filter is `incomplete`, anything else `completed`.
    pub(super) fn finish(&mut self, reason: Option<FinishReason>) {
        let incomplete = match reason {
            Some(FinishReason::Length) => Some("max_output_tokens"),
            Some(FinishReason::ContentFilter) => Some("content_filter"),
            _ => None,
        };
        match incomplete {
            Some(reason) => {
                "incomplete".clone_into(&mut self.status);
                self.incomplete_details = Some(json!({ "reason": reason }));
            }
            None => "completed".clone_into(&mut self.status),
        }
    }

    /// A stream that failed: `failed`, with the error as `OpenAI` reports it there.
    pub(super) fn fail(&mut self, err: &GatewayError) {
        "failed".clone_into(&mut self.status);
        let code = if err.status() >= 500 {
            "server_error"
        } else {
            err.openai_code().unwrap_or("invalid_request")
        };
        self.error = Some(json!({ "code": code, "message": err.client_message() }));
    }
}

/// A non-streamed chat answer as a response object.
pub fn from_chat(chat: ChatCompletion, meta: &ResponseMeta) -> ResponseObject {
    let mut out = ResponseObject::in_progress(meta);
    let Some(choice) = chat.choices.into_iter().next() else {
        out.finish(None);
        return out;
    };
    let message = choice.message;
    if let Some(reasoning) = message.reasoning_content.filter(|r| !r.is_empty()) {
        out.output
            .push(reasoning_item(meta, out.output.len(), reasoning));
    }
    let text = message.content.or(message.refusal).unwrap_or_default();
    if !text.is_empty() || message.tool_calls.is_empty() {
        let annotations = message.annotations.iter().map(annotation).collect();
        out.output
            .push(message_item(meta, out.output.len(), text, annotations));
    }
    for call in message.tool_calls {
        out.output.push(call_item(meta, out.output.len(), call));
    }
    out.usage = chat.usage.map(ResponseUsage::from);
    out.finish(Some(choice.finish_reason));
    out
}

pub(super) fn reasoning_item(meta: &ResponseMeta, index: usize, text: String) -> Item {
    Item::Reasoning {
        id: Some(meta.item_id("rs", index)),
        summary: if text.is_empty() {
            Vec::new()
        } else {
            vec![SummaryText::new(text)]
        },
        encrypted_content: None,
    }
}

pub(super) fn message_item(
    meta: &ResponseMeta,
    index: usize,
    text: String,
    annotations: Vec<Value>,
) -> Item {
    Item::Message {
        id: Some(meta.item_id("msg", index)),
        role: MessageRole::Assistant,
        content: ItemContent::Parts(vec![ContentItem::OutputText { text, annotations }]),
        status: Some("completed".to_owned()),
    }
}

pub(super) fn call_item(meta: &ResponseMeta, index: usize, call: ToolCall) -> Item {
    Item::FunctionCall {
        id: Some(meta.item_id("fc", index)),
        call_id: call.id,
        name: call.function.name,
        arguments: call.function.arguments,
        status: Some("completed".to_owned()),
    }
}

/// A chat `url_citation` in the Responses shape (flat, no wrapper object).
pub(super) fn annotation(a: &Annotation) -> Value {
    let c = &a.url_citation;
    json!({
        "type": "url_citation",
        "url": c.url,
        "title": c.title,
        "start_index": c.start_index,
        "end_index": c.end_index,
    })
}

/// The scope a stored response belongs to: one per user key, one for all static
/// `ACCESS_TOKENS` together. Stored as a hash so the table names no user.
pub fn scope_of(user_id: Option<&str>) -> String {
    let scope = match user_id {
        Some(id) => format!("user:{id}"),
        None => "static".to_owned(),
    };
    sha256_hex(scope.as_bytes())
}

/// A stored response that does not exist for this caller (never stored, expired, deleted, or
/// another key's): the same 404 in every case, so no key learns of another's responses.
pub fn not_found(id: &str) -> GatewayError {
    let shown: String = id.chars().take(80).collect();
    GatewayError::NotFound(format!("Response with id '{shown}' not found."))
}

/// The body of a successful `DELETE /v1/responses/{id}`.
pub fn deleted(id: &str) -> Value {
    json!({ "id": id, "object": "response.deleted", "deleted": true })
}
