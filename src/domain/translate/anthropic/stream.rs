//! Streaming Messages: Gemini `streamGenerateContent?alt=sse` events → Anthropic's event
//! sequence, as a state machine, and the bytes-in/bytes-out pipeline the edge drives.
//!
//! The sequence: `message_start`, `ping`, then per content block `content_block_start`,
//! its deltas (`thinking_delta` and a final `signature_delta`, `text_delta`,
//! `input_json_delta`) and `content_block_stop`; at the end one `message_delta` with the
//! `stop_reason` and usage, and `message_stop`. An upstream failure ends the stream with an
//! `error` event instead.

use serde_json::Value;

use super::response::{find_stop, stop_reason, tool_id, usage};
use super::{MessagesContext, object};
use crate::domain::error::GatewayError;
use crate::domain::gemini::{self, FinishReason, PartData};
use crate::domain::quota::Usage;
use crate::domain::render::anthropic_error;
use crate::domain::sse::SseDecoder;
use crate::domain::translate::chat::prompt_blocked;
use crate::domain::translate::stream::{event_too_large, parse_event};
use crate::domain::usage::from_metadata;

/// The block being streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Thinking,
}

/// Turns Gemini stream events into Anthropic events (first candidate only).
#[derive(Debug)]
pub struct MessagesStreamTranslator {
    ctx: MessagesContext,
    started: bool,
    open: Option<Open>,
    /// The index the next block gets.
    next_index: u32,
    /// The signature the open thinking block ends with.
    pending_signature: Option<String>,
    /// Text held back while it may be the start of a stop sequence.
    held: String,
    /// The stop sequence the text ended at; everything after it is dropped.
    stopped: Option<String>,
    calls: u32,
    finish: Option<FinishReason>,
    blocked: bool,
    usage: Option<gemini::UsageMetadata>,
}

impl MessagesStreamTranslator {
    pub fn new(ctx: MessagesContext) -> Self {
        Self {
            ctx,
            started: false,
            open: None,
            next_index: 0,
            pending_signature: None,
            held: String::new(),
            stopped: None,
            calls: 0,
            finish: None,
            blocked: false,
            usage: None,
        }
    }

    /// Usage reported so far, in the ledger's terms.
    pub fn usage(&self) -> Option<Usage> {
        self.usage.as_ref().map(from_metadata)
    }

    /// The events one upstream response becomes.
    pub fn on_response(&mut self, resp: &gemini::GenerateContentResponse) -> Vec<Value> {
        let mut out = Vec::new();
        if let Some(meta) = &resp.usage_metadata {
            self.usage = Some(*meta);
        }
        self.start(&mut out);
        if prompt_blocked(resp) {
            self.blocked = true;
            return out;
        }
        let Some(candidate) = resp.candidates.iter().find(|c| c.index.unwrap_or(0) == 0) else {
            return out;
        };
        if let Some(reason) = candidate.finish_reason {
            self.finish = Some(reason);
        }
        let parts = candidate
            .content
            .as_ref()
            .map(|c| c.parts.as_slice())
            .unwrap_or_default();
        for part in parts {
            if self.stopped.is_some() {
                break;
            }
            let signature = part.thought_signature.clone();
            match &part.data {
                PartData::Text(text) if part.thought => {
                    if self.open != Some(Open::Thinking) {
                        self.close(&mut out);
                        self.open_block(&mut out, Open::Thinking);
                    }
                    if !text.is_empty() {
                        out.push(self.delta("thinking_delta", "thinking", text));
                    }
                    if signature.is_some() {
                        self.pending_signature = signature;
                    }
                }
                PartData::Text(text) => {
                    if self.open == Some(Open::Thinking) && signature.is_some() {
                        self.pending_signature.clone_from(&signature);
                        self.close(&mut out);
                    } else if self.open == Some(Open::Thinking) {
                        self.close(&mut out);
                    }
                    self.text(&mut out, text);
                    if let Some(s) = signature.filter(|_| self.stopped.is_none()) {
                        // Gemini signs the answer's last text part: the signature follows
                        // the text in a block of its own.
                        self.close(&mut out);
                        self.signature_block(&mut out, s);
                    }
                }
                PartData::FunctionCall(call) => {
                    if self.open == Some(Open::Thinking) && signature.is_some() {
                        self.pending_signature.clone_from(&signature);
                        self.close(&mut out);
                    } else {
                        self.close(&mut out);
                        if let Some(s) = signature {
                            self.signature_block(&mut out, s);
                        }
                    }
                    let id = tool_id(&self.ctx, call.id.as_deref(), self.calls);
                    self.calls += 1;
                    let name = self.ctx.names.to_client(&call.name).to_owned();
                    let index = self.next_index;
                    self.next_index += 1;
                    let block = object(&mut [
                        ("type", "tool_use".into()),
                        ("id", id.into()),
                        ("name", name.into()),
                        ("input", Value::Object(serde_json::Map::new())),
                    ]);
                    out.push(block_event(
                        "content_block_start",
                        index,
                        "content_block",
                        block,
                    ));
                    let args = call
                        .args
                        .as_ref()
                        .map_or_else(|| "{}".to_owned(), Value::to_string);
                    let delta = typed("input_json_delta", "partial_json", args.into());
                    out.push(block_event("content_block_delta", index, "delta", delta));
                    out.push(stop_event(index));
                }
                _ => {}
            }
        }
        out
    }

    /// The closing events: the open block closed, `message_delta` and `message_stop`; an
    /// error when the upstream ended without finishing.
    pub fn finish(mut self) -> Result<Vec<Value>, GatewayError> {
        if !self.started || (self.finish.is_none() && !self.blocked && self.stopped.is_none()) {
            return Err(GatewayError::BadGateway(
                "The upstream stream ended before the answer was complete.".into(),
            ));
        }
        let mut out = Vec::new();
        self.close(&mut out);
        let reason = stop_reason(
            self.finish,
            self.blocked,
            self.calls > 0,
            self.stopped.as_deref(),
        );
        let delta = object(&mut [
            ("stop_reason", reason.into()),
            ("stop_sequence", self.stopped.take().into()),
        ]);
        out.push(object(&mut [
            ("type", "message_delta".into()),
            ("delta", delta),
            ("usage", usage(self.usage.as_ref())),
        ]));
        out.push(only_type("message_stop"));
        Ok(out)
    }

    fn start(&mut self, out: &mut Vec<Value>) {
        if self.started {
            return;
        }
        self.started = true;
        let mut usage = usage(self.usage.as_ref());
        usage["output_tokens"] = 0.into();
        let message = object(&mut [
            ("id", self.ctx.id.as_str().into()),
            ("type", "message".into()),
            ("role", "assistant".into()),
            ("model", self.ctx.model.as_str().into()),
            ("content", Value::Array(Vec::new())),
            ("stop_reason", Value::Null),
            ("stop_sequence", Value::Null),
            ("usage", usage),
        ]);
        out.push(typed("message_start", "message", message));
        out.push(only_type("ping"));
    }

    /// Streams answer text, holding back what could begin a stop sequence.
    fn text(&mut self, out: &mut Vec<Value>, text: &str) {
        if self.open != Some(Open::Text) {
            self.close(out);
            self.open_block(out, Open::Text);
        }
        self.held.push_str(text);
        let ready = if let Some((at, sequence)) = find_stop(&self.held, &self.ctx.stop_sequences) {
            self.stopped = Some(sequence.to_owned());
            let ready = self.held[..at].to_owned();
            self.held.clear();
            ready
        } else {
            let hold = self
                .ctx
                .stop_sequences
                .iter()
                .map(String::len)
                .max()
                .unwrap_or(0)
                .saturating_sub(1);
            let mut cut = self.held.len().saturating_sub(hold);
            while !self.held.is_char_boundary(cut) {
                cut -= 1;
            }
            let rest = self.held.split_off(cut);
            std::mem::replace(&mut self.held, rest)
        };
        if !ready.is_empty() {
            out.push(self.delta("text_delta", "text", &ready));
        }
    }

    fn open_block(&mut self, out: &mut Vec<Value>, open: Open) {
        let block = match open {
            Open::Text => typed("text", "text", "".into()),
            Open::Thinking => object(&mut [
                ("type", "thinking".into()),
                ("thinking", "".into()),
                ("signature", "".into()),
            ]),
        };
        let index = self.next_index;
        out.push(block_event(
            "content_block_start",
            index,
            "content_block",
            block,
        ));
        self.next_index += 1;
        self.open = Some(open);
    }

    /// A thinking block that only carries a signature.
    fn signature_block(&mut self, out: &mut Vec<Value>, signature: String) {
        self.open_block(out, Open::Thinking);
        self.pending_signature = Some(signature);
        self.close(out);
    }

    /// A delta of the open block: `{"type": kind, field: text}`.
    fn delta(&self, kind: &str, field: &str, text: &str) -> Value {
        let index = self.next_index.saturating_sub(1);
        let delta = typed(kind, field, text.into());
        block_event("content_block_delta", index, "delta", delta)
    }

    /// Closes the open block: held text is flushed, a thinking block gets its signature.
    fn close(&mut self, out: &mut Vec<Value>) {
        match self.open.take() {
            Some(Open::Text) => {
                let held = std::mem::take(&mut self.held);
                if !held.is_empty() {
                    out.push(self.delta("text_delta", "text", &held));
                }
            }
            Some(Open::Thinking) => {
                if let Some(signature) = self.pending_signature.take() {
                    out.push(self.delta("signature_delta", "signature", &signature));
                }
            }
            None => return,
        }
        out.push(stop_event(self.next_index.saturating_sub(1)));
    }
}

/// `{"type": kind, field: value}`.
fn typed(kind: &str, field: &str, value: Value) -> Value {
    object(&mut [("type", kind.into()), (field, value)])
}

fn only_type(kind: &str) -> Value {
    object(&mut [("type", kind.into())])
}

/// `{"type": kind, "index": index, field: value}`.
fn block_event(kind: &str, index: u32, field: &str, value: Value) -> Value {
    object(&mut [
        ("type", kind.into()),
        ("index", index.into()),
        (field, value),
    ])
}

fn stop_event(index: u32) -> Value {
    object(&mut [
        ("type", "content_block_stop".into()),
        ("index", index.into()),
    ])
}

/// One SSE event; its name is the data's `type`.
fn encode(out: &mut String, data: &Value) {
    out.push_str("event: ");
    out.push_str(data["type"].as_str().unwrap_or("error"));
    out.push_str("\ndata: ");
    out.push_str(&data.to_string());
    out.push_str("\n\n");
}

fn error_event(err: &GatewayError) -> String {
    let mut out = String::new();
    encode(&mut out, &anthropic_error(err));
    out
}

/// Upstream SSE bytes in, Anthropic SSE bytes out.
#[derive(Debug)]
pub struct MessagesSsePipeline {
    decoder: SseDecoder,
    translator: MessagesStreamTranslator,
    ended: bool,
}

impl MessagesSsePipeline {
    pub fn new(ctx: MessagesContext) -> Self {
        Self {
            decoder: SseDecoder::new(),
            translator: MessagesStreamTranslator::new(ctx),
            ended: false,
        }
    }

    fn on_event(&mut self, data: &str, out: &mut String) {
        if self.ended {
            return;
        }
        match parse_event(data) {
            Ok(None) => {}
            Ok(Some(resp)) => {
                for e in self.translator.on_response(&resp) {
                    encode(out, &e);
                }
            }
            Err(err) => {
                out.push_str(&error_event(&err));
                self.ended = true;
            }
        }
    }
}

impl crate::domain::translate::stream::SsePipeline for MessagesSsePipeline {
    fn usage(&self) -> Option<Usage> {
        self.translator.usage()
    }

    fn push(&mut self, upstream_bytes: &[u8]) -> Vec<u8> {
        if self.ended {
            return Vec::new();
        }
        let mut out = String::new();
        for e in self.decoder.push(upstream_bytes) {
            self.on_event(&e.data, &mut out);
        }
        if self.decoder.overflowed() && !self.ended {
            out.push_str(&error_event(&event_too_large()));
            self.ended = true;
        }
        out.into_bytes()
    }

    fn finish(mut self) -> Vec<u8> {
        if self.ended {
            return Vec::new();
        }
        let mut out = String::new();
        for e in std::mem::take(&mut self.decoder).finish() {
            self.on_event(&e.data, &mut out);
        }
        if self.ended {
            return out.into_bytes();
        }
        match self.translator.finish() {
            Ok(events) => events.iter().for_each(|e| encode(&mut out, e)),
            Err(err) => out.push_str(&error_event(&err)),
        }
        out.into_bytes()
    }

    fn fail(self, err: &GatewayError) -> Vec<u8> {
        if self.ended {
            return Vec::new();
        }
        error_event(err).into_bytes()
    }
}
