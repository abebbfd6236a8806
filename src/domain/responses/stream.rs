//! Streaming Responses: Gemini SSE → the chat stream translator's chunks → Responses events,
//! in `OpenAI`'s documented order, each with its `sequence_number`:
//!
//! `response.created`, `response.in_progress`, then per output item `response.output_item.added`,
//! its parts (`response.content_part.added`, `response.output_text.delta`…`done`,
//! `response.content_part.done`; or `response.reasoning_summary_part.added`,
//! `response.reasoning_summary_text.delta`…`done`, `response.reasoning_summary_part.done`; or
//! `response.function_call_arguments.delta`…`done`), `response.output_item.done`; and last
//! `response.completed` (`response.incomplete` when cut by a limit, `response.failed` on an
//! error). One item is open at a time: a new kind of output closes the open one.

use serde_json::{Value, json};

use super::ResponseMeta;
use super::items::{Item, ItemContent, MessageRole};
use super::output::{
    ResponseObject, ResponseUsage, annotation, call_item, message_item, reasoning_item,
};
use crate::domain::error::GatewayError;
use crate::domain::openai::{ChatCompletionChunk, CompletionUsage, Delta, FinishReason};
use crate::domain::quota::Usage;
use crate::domain::sse::SseDecoder;
use crate::domain::translate::chat::ChatContext;
use crate::domain::translate::stream::{ChatStreamTranslator, event_too_large, parse_event};
use crate::domain::translate::to_json;

/// Upstream SSE bytes in, Responses SSE bytes out.
#[derive(Debug)]
pub struct ResponsesSsePipeline {
    decoder: SseDecoder,
    chat: Option<ChatStreamTranslator>,
    meta: ResponseMeta,
    /// Closed items accumulate in its `output`.
    response: ResponseObject,
    open: Option<Open>,
    seq: u64,
    started: bool,
    ended: bool,
    finish: Option<FinishReason>,
    usage: Option<CompletionUsage>,
    ledger_usage: Option<Usage>,
}

#[derive(Debug)]
enum Open {
    Reasoning {
        text: String,
    },
    Message {
        text: String,
        annotations: Vec<Value>,
    },
    Call {
        tool_index: u32,
        call_id: String,
        name: String,
        arguments: String,
    },
}

impl ResponsesSsePipeline {
    /// `ctx` is the chat translation's context (its id seeds the call ids).
    pub fn new(ctx: ChatContext, meta: ResponseMeta) -> Self {
        Self {
            decoder: SseDecoder::new(),
            chat: Some(ChatStreamTranslator::new(ctx, true)),
            response: ResponseObject::in_progress(&meta),
            meta,
            open: None,
            seq: 0,
            started: false,
            ended: false,
            finish: None,
            usage: None,
            ledger_usage: None,
        }
    }

    /// Usage reported so far, in the ledger's terms (what a cut stream is settled with).
    pub fn usage(&self) -> Option<Usage> {
        self.ledger_usage
    }

    /// SSE bytes for the client; possibly empty. The first call opens with
    /// `response.created` and `response.in_progress`.
    pub fn push(&mut self, upstream_bytes: &[u8]) -> Vec<u8> {
        if self.ended {
            return Vec::new();
        }
        let mut out = String::new();
        self.start(&mut out);
        for event in self.decoder.push(upstream_bytes) {
            self.on_event(&event.data, &mut out);
        }
        if self.decoder.overflowed() && !self.ended {
            self.fail_into(&event_too_large(), &mut out);
        }
        out.into_bytes()
    }

    /// The closing events, and the finished response (to store) unless the stream failed.
    pub fn finish(mut self) -> (Vec<u8>, Option<ResponseObject>) {
        if self.ended {
            return (Vec::new(), None);
        }
        let mut out = String::new();
        self.start(&mut out);
        for event in std::mem::take(&mut self.decoder).finish() {
            self.on_event(&event.data, &mut out);
        }
        if self.ended {
            return (out.into_bytes(), None);
        }
        let Some(chat) = self.chat.take() else {
            return (out.into_bytes(), None);
        };
        match chat.finish() {
            Ok(chunks) => {
                for chunk in chunks {
                    self.on_chunk(chunk, &mut out);
                }
            }
            Err(err) => {
                self.fail_into(&err, &mut out);
                return (out.into_bytes(), None);
            }
        }
        self.close(&mut out);
        if self.response.output.is_empty() {
            // An empty answer is still one (empty) message, as a non-streamed one is.
            self.open_item(
                Open::Message {
                    text: String::new(),
                    annotations: Vec::new(),
                },
                &mut out,
            );
            self.close(&mut out);
        }
        self.response.finish(self.finish);
        self.response.usage = self.usage.map(ResponseUsage::from);
        let kind = if self.response.status == "incomplete" {
            "response.incomplete"
        } else {
            "response.completed"
        };
        let response = self.response.clone();
        self.emit_response(kind, &mut out);
        self.ended = true;
        (out.into_bytes(), Some(response))
    }

    /// Ends the stream with `response.failed`, e.g. on an upstream read failure.
    pub fn fail(mut self, err: &GatewayError) -> Vec<u8> {
        if self.ended {
            return Vec::new();
        }
        let mut out = String::new();
        self.start(&mut out);
        self.fail_into(err, &mut out);
        out.into_bytes()
    }

    fn start(&mut self, out: &mut String) {
        if std::mem::replace(&mut self.started, true) {
            return;
        }
        self.emit_response("response.created", out);
        self.emit_response("response.in_progress", out);
    }

    fn fail_into(&mut self, err: &GatewayError, out: &mut String) {
        self.response.fail(err);
        self.emit_response("response.failed", out);
        self.ended = true;
    }

    fn on_event(&mut self, data: &str, out: &mut String) {
        if self.ended {
            return;
        }
        match parse_event(data) {
            Ok(None) => {}
            Ok(Some(resp)) => {
                let Some(chat) = self.chat.as_mut() else {
                    return;
                };
                let chunks = chat.on_response(resp);
                self.ledger_usage = chat.usage();
                for chunk in chunks {
                    self.on_chunk(chunk, out);
                }
            }
            Err(err) => self.fail_into(&err, out),
        }
    }

    fn on_chunk(&mut self, chunk: ChatCompletionChunk, out: &mut String) {
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage);
        }
        // The Responses API has one answer: choice 0.
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            self.on_delta(choice.delta, out);
            if let Some(reason) = choice.finish_reason {
                self.finish = Some(reason);
            }
        }
    }

    fn on_delta(&mut self, delta: Delta, out: &mut String) {
        if let Some(text) = delta.reasoning_content.filter(|t| !t.is_empty()) {
            if !matches!(self.open, Some(Open::Reasoning { .. })) {
                self.close(out);
                self.open_item(
                    Open::Reasoning {
                        text: String::new(),
                    },
                    out,
                );
            }
            let (item_id, output_index) = self.open_ids("rs");
            if let Some(Open::Reasoning { text: all }) = self.open.as_mut() {
                all.push_str(&text);
            }
            self.emit(
                "response.reasoning_summary_text.delta",
                &json!({"item_id": item_id, "output_index": output_index, "summary_index": 0, "delta": text}),
                out,
            );
        }
        if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
            if !matches!(self.open, Some(Open::Message { .. })) {
                self.close(out);
                self.open_item(
                    Open::Message {
                        text: String::new(),
                        annotations: Vec::new(),
                    },
                    out,
                );
            }
            let (item_id, output_index) = self.open_ids("msg");
            if let Some(Open::Message { text: all, .. }) = self.open.as_mut() {
                all.push_str(&text);
            }
            self.emit(
                "response.output_text.delta",
                &json!({"item_id": item_id, "output_index": output_index, "content_index": 0, "delta": text, "logprobs": []}),
                out,
            );
        }
        if !delta.annotations.is_empty()
            && let Some(Open::Message { annotations, .. }) = self.open.as_mut()
        {
            annotations.extend(delta.annotations.iter().map(annotation));
        }
        for call in delta.tool_calls {
            let arguments = call
                .function
                .as_ref()
                .and_then(|f| f.arguments.clone())
                .unwrap_or_default();
            if let Some(call_id) = call.id {
                self.close(out);
                let name = call.function.and_then(|f| f.name).unwrap_or_default();
                self.open_item(
                    Open::Call {
                        tool_index: call.index,
                        call_id,
                        name,
                        arguments: String::new(),
                    },
                    out,
                );
            }
            if arguments.is_empty() {
                continue;
            }
            let (item_id, output_index) = self.open_ids("fc");
            match self.open.as_mut() {
                Some(Open::Call {
                    tool_index,
                    arguments: all,
                    ..
                }) if *tool_index == call.index => all.push_str(&arguments),
                _ => continue,
            }
            self.emit(
                "response.function_call_arguments.delta",
                &json!({"item_id": item_id, "output_index": output_index, "delta": arguments}),
                out,
            );
        }
    }

    /// The open item's id and output index (it is always the next output).
    fn open_ids(&self, prefix: &str) -> (String, usize) {
        let index = self.response.output.len();
        (self.meta.item_id(prefix, index), index)
    }

    fn open_item(&mut self, open: Open, out: &mut String) {
        let output_index = self.response.output.len();
        let (item, part) = match &open {
            Open::Reasoning { .. } => (
                Item::Reasoning {
                    id: Some(self.meta.item_id("rs", output_index)),
                    summary: Vec::new(),
                    encrypted_content: None,
                },
                Some((
                    "response.reasoning_summary_part.added",
                    "summary_index",
                    json!({"type": "summary_text", "text": ""}),
                )),
            ),
            Open::Message { .. } => (
                Item::Message {
                    id: Some(self.meta.item_id("msg", output_index)),
                    role: MessageRole::Assistant,
                    content: ItemContent::Parts(Vec::new()),
                    status: Some("in_progress".to_owned()),
                },
                Some((
                    "response.content_part.added",
                    "content_index",
                    json!({"type": "output_text", "text": "", "annotations": []}),
                )),
            ),
            Open::Call { call_id, name, .. } => (
                Item::FunctionCall {
                    id: Some(self.meta.item_id("fc", output_index)),
                    call_id: call_id.clone(),
                    name: name.clone(),
                    arguments: String::new(),
                    status: Some("in_progress".to_owned()),
                },
                None,
            ),
        };
        let item_id = item_id(&item);
        self.emit_item("response.output_item.added", output_index, &item, out);
        if let Some((kind, index_name, part)) = part {
            self.emit(
                kind,
                &json!({"item_id": item_id, "output_index": output_index, index_name: 0, "part": part}),
                out,
            );
        }
        self.open = Some(open);
    }

    /// Closes the open item, if any: its `…done` events, and the item joins the output.
    fn close(&mut self, out: &mut String) {
        let Some(open) = self.open.take() else {
            return;
        };
        let output_index = self.response.output.len();
        let item = match open {
            Open::Reasoning { text } => {
                let item_id = self.meta.item_id("rs", output_index);
                let ids =
                    json!({"item_id": item_id, "output_index": output_index, "summary_index": 0});
                self.emit(
                    "response.reasoning_summary_text.done",
                    &with(&ids, "text", json!(text)),
                    out,
                );
                self.emit(
                    "response.reasoning_summary_part.done",
                    &with(&ids, "part", json!({"type": "summary_text", "text": text})),
                    out,
                );
                reasoning_item(&self.meta, output_index, text)
            }
            Open::Message { text, annotations } => {
                let item_id = self.meta.item_id("msg", output_index);
                let ids =
                    json!({"item_id": item_id, "output_index": output_index, "content_index": 0});
                let mut done = with(&ids, "text", json!(text));
                done["logprobs"] = json!([]);
                self.emit("response.output_text.done", &done, out);
                let part = json!({"type": "output_text", "text": text, "annotations": annotations});
                self.emit("response.content_part.done", &with(&ids, "part", part), out);
                message_item(&self.meta, output_index, text, annotations)
            }
            Open::Call {
                call_id,
                name,
                arguments,
                ..
            } => {
                let item_id = self.meta.item_id("fc", output_index);
                self.emit(
                    "response.function_call_arguments.done",
                    &json!({"item_id": item_id, "output_index": output_index, "name": name, "arguments": arguments}),
                    out,
                );
                call_item(
                    &self.meta,
                    output_index,
                    crate::domain::openai::ToolCall {
                        id: call_id,
                        kind: crate::domain::openai::ToolType::Function,
                        function: crate::domain::openai::FunctionCall { name, arguments },
                        extra_content: None,
                    },
                )
            }
        };
        self.emit_item("response.output_item.done", output_index, &item, out);
        self.response.output.push(item);
    }

    /// One event: `event: <type>` and its JSON with `type` and `sequence_number`.
    fn emit(&mut self, kind: &str, body: &Value, out: &mut String) {
        self.emit_json(kind, &body.to_string(), out);
    }

    /// An event carrying the response object as it stands.
    fn emit_response(&mut self, kind: &str, out: &mut String) {
        let body = format!("{{\"response\":{}}}", to_json(&self.response));
        self.emit_json(kind, &body, out);
    }

    fn emit_item(&mut self, kind: &str, output_index: usize, item: &Item, out: &mut String) {
        let body = format!(
            "{{\"output_index\":{output_index},\"item\":{}}}",
            to_json(item)
        );
        self.emit_json(kind, &body, out);
    }

    /// Writes `object` (JSON object text) with `type` and `sequence_number` first. Items and
    /// the response object are serialized straight to text, as they are for a JSON answer and
    /// for storage, so the worker carries one serializer of each.
    fn emit_json(&mut self, kind: &str, object: &str, out: &mut String) {
        let rest = object.strip_prefix('{').unwrap_or("}");
        let kind_json = Value::from(kind).to_string();
        out.push_str("event: ");
        out.push_str(kind);
        out.push_str("\ndata: {\"type\":");
        out.push_str(&kind_json);
        out.push_str(",\"sequence_number\":");
        out.push_str(&self.seq.to_string());
        if rest != "}" {
            out.push(',');
        }
        out.push_str(rest);
        out.push_str("\n\n");
        self.seq += 1;
    }
}

fn item_id(item: &Item) -> Option<String> {
    match item {
        Item::Message { id, .. }
        | Item::FunctionCall { id, .. }
        | Item::FunctionCallOutput { id, .. }
        | Item::Reasoning { id, .. } => id.clone(),
    }
}

/// `ids` with one more field.
fn with(ids: &Value, key: &str, value: Value) -> Value {
    let mut out = ids.clone();
    out[key] = value;
    out
}
