//! A Gemini answer → an Anthropic message: thoughts as a thinking block whose signature is
//! Gemini's thought signature, text blocks, and function calls as `tool_use` blocks.

use serde_json::Value;

use super::{MessagesContext, object};
use crate::domain::gemini::{self, FinishReason, PartData};
use crate::domain::translate::chat::prompt_blocked;

/// Anthropic's `stop_reason` for a Gemini finish. `stopped_at` is the client's stop sequence
/// the text ended at, if any.
pub(super) fn stop_reason(
    finish: Option<FinishReason>,
    blocked: bool,
    tool_calls: bool,
    stopped_at: Option<&str>,
) -> &'static str {
    use FinishReason as F;
    if blocked {
        return "refusal";
    }
    if stopped_at.is_some() {
        return "stop_sequence";
    }
    match finish {
        Some(F::MaxTokens) => "max_tokens",
        Some(
            F::Safety
            | F::Recitation
            | F::Blocklist
            | F::ProhibitedContent
            | F::Spii
            | F::ImageSafety
            | F::ImageProhibitedContent
            | F::ImageRecitation
            | F::Language,
        ) => "refusal",
        _ if tool_calls => "tool_use",
        _ => "end_turn",
    }
}

/// Anthropic's `usage`: output includes thinking, as `completion_tokens` does.
pub(super) fn usage(meta: Option<&gemini::UsageMetadata>) -> Value {
    let meta = meta.copied().unwrap_or_default();
    let cached = meta.cached_content_token_count.min(meta.prompt_token_count);
    object(&mut [
        ("input_tokens", (meta.prompt_token_count - cached).into()),
        (
            "output_tokens",
            (meta.candidates_token_count + meta.thoughts_token_count).into(),
        ),
        ("cache_creation_input_tokens", 0.into()),
        ("cache_read_input_tokens", cached.into()),
    ])
}

/// The earliest of the client's stop sequences in `text`: its byte offset and the sequence.
/// Gemini is not sent the sequences (it would cut the text and say only `STOP`), so the
/// gateway cuts the answer itself and can tell `stop_sequence` from `end_turn`.
pub(super) fn find_stop<'a>(text: &str, sequences: &'a [String]) -> Option<(usize, &'a str)> {
    sequences
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()).map(|at| (at, s.as_str())))
        .min_by_key(|(at, _)| *at)
}

/// The tool-use id of a call: Gemini's own id, else one derived from the message id.
pub(super) fn tool_id(ctx: &MessagesContext, upstream: Option<&str>, n: u32) -> String {
    match upstream {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => format!(
            "toolu_{}_{n}",
            ctx.id.strip_prefix("msg_").unwrap_or(&ctx.id)
        ),
    }
}

/// Translates a non-streaming answer (its first candidate).
pub fn messages_response(answer: &gemini::GenerateContentResponse, ctx: &MessagesContext) -> Value {
    let mut thinking = String::new();
    let mut call_signature = None;
    let mut any_signature = None;
    let mut blocks: Vec<Value> = Vec::new();
    let mut stopped = None;
    let mut calls = 0u32;
    let candidate = answer.candidates.first();
    let parts = candidate
        .and_then(|c| c.content.as_ref())
        .map(|c| c.parts.as_slice())
        .unwrap_or_default();
    for part in parts {
        if stopped.is_some() {
            break;
        }
        if let Some(s) = &part.thought_signature {
            any_signature.get_or_insert_with(|| s.clone());
        }
        match &part.data {
            PartData::Text(text) if part.thought => thinking.push_str(text),
            PartData::Text(text) => {
                let mut text = text.as_str();
                if let Some((at, sequence)) = find_stop(text, &ctx.stop_sequences) {
                    text = &text[..at];
                    stopped = Some(sequence);
                }
                if text.is_empty() {
                    continue;
                }
                match blocks.last_mut() {
                    Some(last) if last["type"] == "text" => {
                        let joined = format!("{}{text}", last["text"].as_str().unwrap_or_default());
                        last["text"] = Value::String(joined);
                    }
                    _ => blocks.push(object(&mut [
                        ("type", "text".into()),
                        ("text", text.into()),
                    ])),
                }
            }
            PartData::FunctionCall(call) => {
                if let Some(s) = &part.thought_signature {
                    call_signature.get_or_insert_with(|| s.clone());
                }
                let input = call
                    .args
                    .clone()
                    .unwrap_or_else(|| Value::Object(serde_json::Map::new()));
                blocks.push(object(&mut [
                    ("type", "tool_use".into()),
                    ("id", tool_id(ctx, call.id.as_deref(), calls).into()),
                    ("name", ctx.names.to_client(&call.name).into()),
                    ("input", input),
                ]));
                calls += 1;
            }
            _ => {}
        }
    }
    let signature = call_signature.or(any_signature);
    if !thinking.is_empty() || signature.is_some() {
        blocks.insert(
            0,
            object(&mut [
                ("type", "thinking".into()),
                ("thinking", thinking.into()),
                ("signature", signature.unwrap_or_default().into()),
            ]),
        );
    }
    let finish = candidate.and_then(|c| c.finish_reason);
    let blocked = prompt_blocked(answer);
    let reason = stop_reason(finish, blocked, calls > 0, stopped);
    object(&mut [
        ("id", ctx.id.as_str().into()),
        ("type", "message".into()),
        ("role", "assistant".into()),
        ("model", ctx.model.as_str().into()),
        ("content", Value::Array(blocks)),
        ("stop_reason", reason.into()),
        ("stop_sequence", stopped.into()),
        ("usage", usage(answer.usage_metadata.as_ref())),
    ])
}
