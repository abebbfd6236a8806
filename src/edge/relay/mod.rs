//! Answers that are more than one upstream call relayed. Anti-truncation
//! continues an answer that was cut off and stitches the pieces into one stream
//! or one answer ([`continuation`]); fake streaming answers a stream from one
//! non-stream call, with heartbeats while it runs ([`fake_stream`]). Decisions
//! live in `domain::translate::{continuation, fake_stream}`; this layer only
//! makes the calls. It sits below the handlers so that any of them can relay,
//! and the two combine (a fake stream over a stitched answer).

pub mod continuation;
pub mod fake_stream;
pub mod sse;

use worker::Method;

use crate::domain::accounts::envelope::serves_candidates;
use crate::domain::error::GatewayError;
use crate::domain::gemini::GenerateContentRequest;
use crate::edge::app::App;
use crate::edge::upstream::UpstreamRequest;
use crate::edge::upstream::accounts;
use crate::edge::upstream::urls::{self, Version};

/// The upstream request for a generate call of `model` (already checked as a model id):
/// `streamGenerateContent?alt=sse` when `stream`, else `generateContent`. Gemini CLI
/// accounts may serve it unless it asks for several candidates, which Code Assist refuses.
pub fn generate_request(
    app: &App,
    model: &str,
    body: &GenerateContentRequest,
    stream: bool,
) -> Result<UpstreamRequest, GatewayError> {
    let (action, query): (&str, &[(&str, &str)]) = if stream {
        ("streamGenerateContent", &[("alt", "sse")])
    } else {
        ("generateContent", &[])
    };
    let candidates = body
        .generation_config
        .as_ref()
        .and_then(|g| g.candidate_count)
        .map(u64::from);
    Ok(UpstreamRequest {
        method: Method::Post,
        url: urls::action(
            &app.config.env.gemini_api_base,
            Version::V1Beta,
            model,
            action,
            query.iter().copied(),
        )?,
        body: Some(
            serde_json::to_string(body)
                .map_err(|e| GatewayError::Internal(format!("encode upstream body: {e}")))?,
        ),
        stream,
        gate: model.to_owned(),
        code_assist: serves_candidates(candidates).then(|| accounts::CodeAssistCall {
            method: if stream {
                accounts::Method::Stream
            } else {
                accounts::Method::Generate
            },
            model: model.to_owned(),
        }),
        pin: None,
        headers: Vec::new(),
    })
}
