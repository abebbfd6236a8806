//! `OpenAI` chat completions → Gemini `generateContent` (request) and back (non-streaming
//! response), plus the candidate-to-message pieces the stream translator shares.
//!
//! Must not do I/O or read a clock or randomness: the completion id and timestamp arrive in
//! [`ChatContext`], and tool-call ids are derived from that id.

use crate::domain::catalog::Catalog;
use crate::domain::compat::Compat;
use crate::domain::gemini;
use crate::domain::translate::names::NameMap;

mod content;
mod generation;
mod ids;
mod messages;
mod parse;
mod request;
mod response;
mod tools;

#[cfg(test)]
mod tests;

pub use content::fill_remote_media;
pub(crate) use ids::CallIds;
pub use parse::parse_chat_request;
pub use request::prepare_chat;
pub use response::chat_response;
pub(crate) use response::{CandidateOutput, ThinkTags, openai_logprobs, prompt_blocked};

/// Stream-independent facts of one completion, chosen by the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatContext {
    /// `chatcmpl-…`, unique per request.
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// The model as the client named it; echoed back in every response.
    pub model: String,
    /// How the response is shaped back for this request, decided by [`prepare_chat`].
    pub reply: ReplyPlan,
}

/// What the response translation must undo or enforce for one request. Derived from the
/// request alone, so the gateway keeps no per-conversation state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent yes/no decisions of one request"
)]
pub struct ReplyPlan {
    /// Gemini function names → the client's own names.
    pub names: NameMap,
    /// `text/x.enum` was used for an enum-only schema: the bare answer is re-encoded as the
    /// JSON string the client's schema asked for.
    pub enum_as_json: bool,
    /// `parallel_tool_calls: false`: only the first call of a turn is returned.
    pub single_tool_call: bool,
    /// `thoughts_in_content`: thoughts go into `content` as `<think>…</think>` instead of
    /// `reasoning_content` (never for a JSON or enum answer, which must stay parseable).
    pub thoughts_in_content: bool,
    /// `search_citations: annotations_and_list`: a grounded answer ends with a numbered
    /// list of its sources, besides the `url_citation` annotations every grounded answer gets.
    pub sources_list: bool,
    /// The request has the `googleSearch` tool: a stream keeps its answer text, to place
    /// the citations that arrive at its end.
    pub grounded: bool,
    /// `chat_image_output: parts`: generated images go to `images` as `image_url` parts
    /// instead of Markdown data URLs in `content`.
    pub image_parts: bool,
}

/// Gateway settings that shape translation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChatOptions<'a> {
    /// Return thoughts as `reasoning_content` unless the request says otherwise.
    pub include_thoughts: bool,
    /// The operator's per-model thinking defaults (`thinking_defaults`).
    pub catalog: Option<&'a Catalog>,
    /// The compatibility switches (system-as-user, prompt injection, default safety
    /// settings, thoughts in content, citations, code execution, URL context); none
    /// when absent.
    pub compat: Option<&'a Compat>,
}

/// An `image_url` with an http(s) URL, fetched by the edge before the request goes upstream.
/// Its part in the body is a placeholder until [`fill_remote_media`] replaces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteMedia {
    pub url: String,
    /// The request field, for errors (`messages[0].content[1].image_url`).
    pub param: String,
}

/// A validated request, ready for `POST /v1beta/models/{upstream_model}:generateContent`
/// (or `:streamGenerateContent?alt=sse` when `stream`).
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedChat {
    /// Bare model id, without `models/`.
    pub upstream_model: String,
    pub body: gemini::GenerateContentRequest,
    pub stream: bool,
    /// Only meaningful when `stream`: end with a usage chunk.
    pub include_usage: bool,
    pub reply: ReplyPlan,
    /// Values moved to what the model accepts, for `x-gemgate-adjusted`
    /// (`reasoning_effort=medium->high`).
    pub adjustments: Vec<String>,
    /// Top-level fields that were neither translated nor passed through; logged at debug.
    pub ignored: Vec<String>,
    /// Remote images to fetch, in the order of their placeholders in `body`.
    pub remote_media: Vec<RemoteMedia>,
}

/// Gemini's limit on `stopSequences`; `OpenAI` documents 4, so every valid `OpenAI` request fits.
const MAX_STOP_SEQUENCES: usize = 5;
/// Gemini's limit on `candidateCount`.
const MAX_CANDIDATES: u32 = 8;
/// Gemini 3 rejects a replayed function call without its thought signature; this documented
/// sentinel tells it to skip the check when a client dropped the real one.
const SIGNATURE_SENTINEL: &str = "skip_thought_signature_validator";
/// Joins a tool-call id and the Gemini thought signature it carries, so the signature survives
/// clients that keep only `id`, `type` and `function` of a tool call.
const SIGNATURE_SEPARATOR: &str = "__thought__";
/// Marks an `inlineData` placeholder for a remote image; never sent upstream.
const REMOTE_PLACEHOLDER: &str = "x-gemgate/remote";
/// More remote images than this in one request is refused rather than fetched.
pub const MAX_REMOTE_MEDIA: usize = 16;

#[cfg(test)]
mod compat_tests;
