//! Streaming chat: Gemini `streamGenerateContent?alt=sse` events → `OpenAI`
//! `chat.completion.chunk`s, and the bytes-in/bytes-out pipeline the edge drives.
//!
//! Owns the stream-level facts (id, created, model, which choices were opened, tool-call
//! indices, finish, usage) so every chunk is consistent. Must not do I/O or read a clock.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::domain::error::GatewayError;
use crate::domain::gemini;
use crate::domain::openai::{self, ChatCompletionChunk, ChunkChoice, Delta, Role, ToolCall};
use crate::domain::quota::Usage;
use crate::domain::render;
use crate::domain::sse::{self, SseDecoder};
use crate::domain::translate::chat::{
    CallIds, CandidateOutput, ChatContext, ThinkTags, openai_logprobs, prompt_blocked,
};
use crate::domain::translate::grounding::Citations;
use crate::domain::translate::{finish_reason, to_json, usage};
use crate::domain::usage::from_metadata;

/// Turns Gemini stream events into `OpenAI` chunks.
///
/// Chunk order per choice: a `{role: "assistant", content: ""}` chunk, content chunks, then at
/// [`finish`](Self::finish) exactly one chunk carrying `finish_reason`. The finish is held back
/// until the upstream ends so nothing can follow it, and so `STOP` can become `tool_calls` when
/// the choice called tools.
#[derive(Debug)]
pub struct ChatStreamTranslator {
    ctx: ChatContext,
    include_usage: bool,
    /// Opened choices (their role chunk was sent), by index.
    choices: BTreeMap<u32, ChoiceState>,
    usage: Option<gemini::UsageMetadata>,
}

#[derive(Debug, Default)]
struct ChoiceState {
    /// Tool calls issued so far; also the index the next one gets.
    next_tool_index: u32,
    finish: Option<Finish>,
    /// With `enum_as_json`: the opening quote of the JSON string was sent.
    quote_open: bool,
    /// With `thoughts_in_content`: whether a `<think>` block is open.
    think: ThinkTags,
    /// For a grounded request: the answer text so far, the characters of `content` sent
    /// before it began, all characters of `content` sent, and the grounding metadata seen.
    answer: String,
    answer_lead: Option<u32>,
    content_chars: u32,
    grounding: Vec<Value>,
}

#[derive(Debug, Clone, Copy)]
enum Finish {
    Upstream(gemini::FinishReason),
    PromptBlocked,
}

impl ChoiceState {
    /// Notes a content slice of a grounded answer: `text`, of which the first `lead`
    /// characters are thoughts and tags, not answer.
    fn track_answer(&mut self, text: &str, lead: usize) {
        let chars = text.chars().count();
        let lead = lead.min(chars);
        let to_u32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        if chars > lead {
            self.answer_lead
                .get_or_insert(self.content_chars.saturating_add(to_u32(lead)));
            let at = text.char_indices().nth(lead).map_or(text.len(), |(b, _)| b);
            self.answer.push_str(&text[at..]);
        }
        self.content_chars = self.content_chars.saturating_add(to_u32(chars));
    }

    /// The closing deltas of a choice before its finish: an open `<think>` closed, then
    /// the citations of a grounded answer (with the source list when asked for).
    fn closing_deltas(&mut self, sources_list: bool) -> Vec<Delta> {
        let mut deltas = Vec::new();
        if let Some(close) = self.think.close() {
            deltas.push(Delta {
                content: Some(close.to_owned()),
                ..Delta::default()
            });
        }
        if self.grounding.is_empty() {
            return deltas;
        }
        let mut citations = Citations::default();
        let lead = self.answer_lead.unwrap_or(self.content_chars);
        for metadata in &self.grounding {
            citations.add(metadata, &self.answer, lead);
        }
        let list = citations.sources_list().filter(|_| sources_list);
        if list.is_some() || !citations.annotations.is_empty() {
            deltas.push(Delta {
                content: list,
                annotations: citations.annotations,
                ..Delta::default()
            });
        }
        deltas
    }

    fn finish_reason(&self) -> Option<openai::FinishReason> {
        Some(match self.finish? {
            Finish::Upstream(reason) => finish_reason(reason, self.next_tool_index > 0),
            Finish::PromptBlocked => openai::FinishReason::ContentFilter,
        })
    }
}

impl ChatStreamTranslator {
    pub fn new(ctx: ChatContext, include_usage: bool) -> Self {
        Self {
            ctx,
            include_usage,
            choices: BTreeMap::new(),
            usage: None,
        }
    }

    /// Usage reported so far (Gemini's counts are cumulative, so the last one is the total),
    /// in the ledger's terms: what a stream is settled with, even after it was cut.
    pub fn usage(&self) -> Option<Usage> {
        self.usage.as_ref().map(from_metadata)
    }

    pub fn on_response(
        &mut self,
        resp: gemini::GenerateContentResponse,
    ) -> Vec<ChatCompletionChunk> {
        let mut chunks = Vec::new();
        if let Some(meta) = resp.usage_metadata {
            self.usage = Some(meta);
        }
        if prompt_blocked(&resp) {
            self.open(0, &mut chunks)
                .finish
                .get_or_insert(Finish::PromptBlocked);
            return chunks;
        }
        for (candidate, position) in resp.candidates.into_iter().zip(0u32..) {
            self.on_candidate(candidate, position, &mut chunks);
        }
        chunks
    }

    fn on_candidate(
        &mut self,
        candidate: gemini::Candidate,
        position: u32,
        chunks: &mut Vec<ChatCompletionChunk>,
    ) {
        let index = candidate.index.unwrap_or(position);
        let first_tool_index = self.open(index, chunks).next_tool_index;
        let logprobs = candidate.logprobs_result.as_ref().map(openai_logprobs);
        let parts = candidate.content.map(|c| c.parts).unwrap_or_default();
        let mut ids = CallIds::new(&self.ctx, index, first_tool_index);
        let mut output = CandidateOutput::collect(parts, &mut ids, &self.ctx.reply);
        let next_tool_index = ids.next_index();
        if self.ctx.reply.enum_as_json && !output.text.is_empty() {
            output.text = self.enum_fragment(index, &output.text);
        }
        let reply = &self.ctx.reply;
        let (thoughts_in_content, grounded) = (reply.thoughts_in_content, reply.grounded);
        let state = self.choices.entry(index).or_default();
        let lead = if thoughts_in_content {
            state.think.fold(&mut output)
        } else {
            0
        };
        if grounded {
            state.track_answer(&output.text, lead);
            if let Some(metadata) = candidate.grounding_metadata
                && state.grounding.last() != Some(&metadata)
            {
                state.grounding.push(metadata);
            }
        }
        self.content_chunks(index, output, logprobs, first_tool_index, chunks);
        let state = self.choices.entry(index).or_default();
        state.next_tool_index = next_tool_index;
        if let Some(reason) = candidate.finish_reason {
            state.finish.get_or_insert(Finish::Upstream(reason));
        }
    }

    /// The role chunk of choice `index`, sent ahead of any upstream event (fake streaming
    /// opens with it); empty when the choice is already open. The choice's later events
    /// do not repeat it.
    pub fn open_choice(&mut self, index: u32) -> Vec<ChatCompletionChunk> {
        let mut chunks = Vec::new();
        self.open(index, &mut chunks);
        chunks
    }

    /// Returns the choice's state, sending its role chunk first if it is new.
    fn open(&mut self, index: u32, chunks: &mut Vec<ChatCompletionChunk>) -> &mut ChoiceState {
        if !self.choices.contains_key(&index) {
            let delta = Delta {
                role: Some(Role::Assistant),
                content: Some(String::new()),
                ..Delta::default()
            };
            chunks.push(self.chunk(index, delta, None));
        }
        self.choices.entry(index).or_default()
    }

    /// A slice of a `text/x.enum` answer as part of one JSON string: the opening quote with
    /// the first slice, each slice escaped; [`finish`](Self::finish) closes the quote.
    fn enum_fragment(&mut self, index: u32, text: &str) -> String {
        let escaped = Value::String(text.to_owned()).to_string();
        let inner = &escaped[1..escaped.len() - 1];
        let state = self.choices.entry(index).or_default();
        if std::mem::replace(&mut state.quote_open, true) {
            inner.to_owned()
        } else {
            format!("\"{inner}")
        }
    }

    fn content_chunks(
        &self,
        index: u32,
        output: CandidateOutput,
        logprobs: Option<Value>,
        first_tool_index: u32,
        chunks: &mut Vec<ChatCompletionChunk>,
    ) {
        if !output.text.is_empty() || !output.reasoning.is_empty() || !output.images.is_empty() {
            let delta = Delta {
                content: (!output.text.is_empty()).then_some(output.text),
                reasoning_content: (!output.reasoning.is_empty()).then_some(output.reasoning),
                images: output.images,
                ..Delta::default()
            };
            let mut chunk = self.chunk(index, delta, None);
            if let Some(choice) = chunk.choices.first_mut() {
                choice.logprobs = logprobs;
            }
            chunks.push(chunk);
        }
        for (call, tool_index) in output.tool_calls.into_iter().zip(first_tool_index..) {
            let (opening, arguments) = tool_call_deltas(call, tool_index);
            chunks.push(self.chunk(index, opening, None));
            chunks.push(self.chunk(index, arguments, None));
        }
    }

    fn chunk(
        &self,
        index: u32,
        delta: Delta,
        finish: Option<openai::FinishReason>,
    ) -> ChatCompletionChunk {
        self.envelope(
            vec![ChunkChoice {
                index,
                delta,
                logprobs: None,
                finish_reason: finish,
            }],
            None,
        )
    }

    fn envelope(
        &self,
        choices: Vec<ChunkChoice>,
        usage: Option<openai::CompletionUsage>,
    ) -> ChatCompletionChunk {
        ChatCompletionChunk {
            id: self.ctx.id.clone(),
            object: openai::Object::ChatCompletionChunk,
            created: self.ctx.created,
            model: self.ctx.model.clone(),
            choices,
            usage,
            system_fingerprint: None,
        }
    }

    /// The finish chunk of every choice, then the usage chunk when asked for.
    ///
    /// Errs when the upstream ended before every choice had a finish reason: the answer was
    /// truncated, and the client must not mistake it for a complete one.
    pub fn finish(mut self) -> Result<Vec<ChatCompletionChunk>, GatewayError> {
        let truncated =
            self.choices.is_empty() || self.choices.values().any(|c| c.finish.is_none());
        if truncated {
            return Err(GatewayError::BadGateway(
                "The upstream stream ended before the response was complete.".to_owned(),
            ));
        }
        let mut chunks = Vec::new();
        let mut choices = std::mem::take(&mut self.choices);
        for (&index, state) in &mut choices {
            if self.ctx.reply.enum_as_json && state.next_tool_index == 0 {
                let close = if state.quote_open { "\"" } else { "\"\"" };
                let delta = Delta {
                    content: Some(close.to_owned()),
                    ..Delta::default()
                };
                chunks.push(self.chunk(index, delta, None));
            }
            for delta in state.closing_deltas(self.ctx.reply.sources_list) {
                chunks.push(self.chunk(index, delta, None));
            }
            if let Some(finish) = state.finish_reason() {
                chunks.push(self.chunk(index, Delta::default(), Some(finish)));
            }
        }
        if self.include_usage {
            let usage = usage(&self.usage.unwrap_or_default());
            chunks.push(self.envelope(Vec::new(), Some(usage)));
        }
        Ok(chunks)
    }
}

/// A tool call as two deltas: the first names it (id, type, name, empty arguments), the second
/// carries the arguments, as `OpenAI` streams them. Gemini sends each call whole.
fn tool_call_deltas(call: ToolCall, index: u32) -> (Delta, Delta) {
    let opening = openai::ToolCallChunk {
        index,
        id: Some(call.id),
        kind: Some(call.kind),
        function: Some(openai::FunctionCallChunk {
            name: Some(call.function.name),
            arguments: Some(String::new()),
        }),
        extra_content: call.extra_content,
    };
    let arguments = openai::ToolCallChunk {
        index,
        function: Some(openai::FunctionCallChunk {
            name: None,
            arguments: Some(call.function.arguments),
        }),
        ..openai::ToolCallChunk::default()
    };
    let delta = |tool_call| Delta {
        tool_calls: vec![tool_call],
        ..Delta::default()
    };
    (delta(opening), delta(arguments))
}

/// Upstream SSE bytes in, client SSE bytes out: [`SseDecoder`] → JSON → [`ChatStreamTranslator`]
/// → `data:` events. The edge must request `alt=sse`; without it Gemini streams a JSON array.
///
/// After an error event and `[DONE]` have been written, the pipeline is ended: further input
/// is ignored and `finish`/`fail` write nothing.
#[derive(Debug)]
pub struct ChatSsePipeline {
    decoder: SseDecoder,
    translator: ChatStreamTranslator,
    ended: bool,
}

impl ChatSsePipeline {
    pub fn new(ctx: ChatContext, include_usage: bool) -> Self {
        Self {
            decoder: SseDecoder::new(),
            translator: ChatStreamTranslator::new(ctx, include_usage),
            ended: false,
        }
    }

    /// Usage reported so far; see [`ChatStreamTranslator::usage`].
    pub fn usage(&self) -> Option<Usage> {
        self.translator.usage()
    }

    /// SSE bytes for the client; possibly empty.
    pub fn push(&mut self, upstream_bytes: &[u8]) -> Vec<u8> {
        if self.ended {
            return Vec::new();
        }
        let events = self.decoder.push(upstream_bytes);
        let mut out = String::new();
        for event in events {
            self.on_event(&event.data, &mut out);
        }
        if self.decoder.overflowed() && !self.ended {
            out.push_str(&error_events(&event_too_large()));
            self.ended = true;
        }
        out.into_bytes()
    }

    /// Trailing events: finish chunks, the usage chunk, `[DONE]`; or, when the upstream was
    /// truncated, an error event and `[DONE]`.
    pub fn finish(mut self) -> Vec<u8> {
        if self.ended {
            return Vec::new();
        }
        let mut out = String::new();
        for event in std::mem::take(&mut self.decoder).finish() {
            self.on_event(&event.data, &mut out);
        }
        if self.ended {
            return out.into_bytes();
        }
        match self.translator.finish() {
            Ok(chunks) => {
                for chunk in &chunks {
                    out.push_str(&sse::encode_data(&to_json(chunk)));
                }
                out.push_str(sse::DONE);
            }
            Err(err) => out.push_str(&error_events(&err)),
        }
        out.into_bytes()
    }

    /// Ends the stream with an error event and `[DONE]`, e.g. on an upstream read failure.
    pub fn fail(self, err: &GatewayError) -> Vec<u8> {
        if self.ended {
            return Vec::new();
        }
        error_events(err).into_bytes()
    }

    fn on_event(&mut self, data: &str, out: &mut String) {
        if self.ended {
            return;
        }
        match parse_event(data) {
            Ok(None) => {}
            Ok(Some(resp)) => {
                for chunk in self.translator.on_response(resp) {
                    out.push_str(&sse::encode_data(&to_json(&chunk)));
                }
            }
            Err(err) => {
                out.push_str(&error_events(&err));
                self.ended = true;
            }
        }
    }
}

/// A translated stream as the edge drives it: upstream bytes in, the surface's SSE out.
pub trait SsePipeline {
    /// Usage reported so far, what the stream is settled with even when cut.
    fn usage(&self) -> Option<Usage>;
    /// SSE bytes for the client; possibly empty.
    fn push(&mut self, upstream_bytes: &[u8]) -> Vec<u8>;
    /// The trailing events once the upstream ended.
    fn finish(self) -> Vec<u8>;
    /// Ends the stream with an error event, e.g. on an upstream read failure.
    fn fail(self, err: &GatewayError) -> Vec<u8>;
}

impl SsePipeline for ChatSsePipeline {
    fn usage(&self) -> Option<Usage> {
        Self::usage(self)
    }

    fn push(&mut self, upstream_bytes: &[u8]) -> Vec<u8> {
        Self::push(self, upstream_bytes)
    }

    fn finish(self) -> Vec<u8> {
        Self::finish(self)
    }

    fn fail(self, err: &GatewayError) -> Vec<u8> {
        Self::fail(self, err)
    }
}

/// What a client is told when an upstream event passed the decoder's cap.
pub(crate) fn event_too_large() -> GatewayError {
    GatewayError::BadGateway(format!(
        "The upstream stream sent an event larger than {} MiB; the stream was ended.",
        sse::MAX_EVENT_BYTES / (1024 * 1024)
    ))
}

/// One upstream event: a response, nothing (keep-alive, `[DONE]`), or an error to relay.
pub(crate) fn parse_event(
    data: &str,
) -> Result<Option<gemini::GenerateContentResponse>, GatewayError> {
    let data = data.trim();
    if data.is_empty() || data == "[DONE]" {
        return Ok(None);
    }
    // The usual event names no `error` key (nor a `\u` escape that could spell one): parsed
    // straight into the response, without a `Value` in between. Anything else, and anything
    // the direct parse refuses, takes the general path below, whose answer is the same.
    if !data.contains("error")
        && !data.contains("\\u")
        && let Ok(resp) = serde_json::from_str::<gemini::GenerateContentResponse>(data)
    {
        return Ok(Some(resp));
    }
    parse_event_via_value(data)
}

/// [`parse_event`] through a `Value`: an `error` key is relayed, anything else must be a response.
fn parse_event_via_value(
    data: &str,
) -> Result<Option<gemini::GenerateContentResponse>, GatewayError> {
    let malformed =
        || GatewayError::BadGateway("The upstream sent a malformed stream event.".to_owned());
    let value: Value = serde_json::from_str(data).map_err(|_| malformed())?;
    if let Some(error) = value.get("error") {
        let status = gemini::ErrorStatus::deserialize(error).unwrap_or_default();
        return Err(upstream_error(status));
    }
    gemini::GenerateContentResponse::deserialize(value)
        .map(Some)
        .map_err(|_| malformed())
}

/// A mid-stream Google error: a 4xx keeps its status and message (the client's fault, e.g. a
/// request Gemini only rejects once generating); anything else is a bad gateway.
fn upstream_error(status: gemini::ErrorStatus) -> GatewayError {
    let message = if status.message.is_empty() {
        "The upstream returned an error.".to_owned()
    } else {
        status.message
    };
    if (400..500).contains(&status.code) {
        GatewayError::Upstream {
            status: status.code,
            message,
            google_status: (!status.status.is_empty()).then_some(status.status),
        }
    } else {
        GatewayError::BadGateway(message)
    }
}

/// `data: {"error": {...}}` then `data: [DONE]`.
pub fn error_events(err: &GatewayError) -> String {
    let body = to_json(&render::openai_error(err));
    let mut out = sse::encode_data(&body);
    out.push_str(sse::DONE);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::sse::payloads;
    use crate::domain::translate::chat::ReplyPlan;
    use serde_json::json;

    fn ctx() -> ChatContext {
        ChatContext {
            id: "chatcmpl-s1".into(),
            created: 1_700_000_001,
            model: "gemini-2.5-flash".into(),
            reply: ReplyPlan::default(),
        }
    }

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Runs bytes through a pipeline, pushing them in the given pieces.
    fn run(input: &[u8], cuts: &[usize], include_usage: bool) -> Vec<u8> {
        let mut pipeline = ChatSsePipeline::new(ctx(), include_usage);
        let mut out = Vec::new();
        let mut start = 0;
        for &cut in cuts {
            out.extend(pipeline.push(&input[start..cut]));
            start = cut;
        }
        out.extend(pipeline.push(&input[start..]));
        out.extend(pipeline.finish());
        out
    }

    fn replay_at_every_split(name: &str, include_usage: bool) -> Vec<Value> {
        let input = fixture(name);
        let whole = run(&input, &[], include_usage);
        for cut in 0..=input.len() {
            assert_eq!(
                run(&input, &[cut], include_usage),
                whole,
                "{name} cut at {cut}"
            );
        }
        let mut state = 0x9e37_79b9_u32;
        for _ in 0..30 {
            let mut cuts: Vec<usize> = (0..6)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    state as usize % (input.len() + 1)
                })
                .collect();
            cuts.sort_unstable();
            assert_eq!(
                run(&input, &cuts, include_usage),
                whole,
                "{name} cuts {cuts:?}"
            );
        }
        payloads(&whole)
    }

    /// The invariants every successful stream must hold.
    fn assert_stream_invariants(events: &[Value], include_usage: bool) {
        assert_eq!(
            events.last(),
            Some(&json!("[DONE]")),
            "[DONE] ends the stream"
        );
        let chunks = &events[..events.len() - 1];
        assert!(!chunks.is_empty());
        for chunk in chunks {
            assert_eq!(chunk["id"], "chatcmpl-s1");
            assert_eq!(chunk["created"], 1_700_000_001);
            assert_eq!(chunk["model"], "gemini-2.5-flash");
            assert_eq!(chunk["object"], "chat.completion.chunk");
            for choice in chunk["choices"].as_array().unwrap() {
                assert!(
                    choice.get("finish_reason").is_some(),
                    "finish_reason is always present"
                );
                assert!(choice.get("logprobs").is_some());
            }
        }
        let indices: std::collections::BTreeSet<u64> = chunks
            .iter()
            .flat_map(|c| {
                c["choices"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|ch| ch["index"].as_u64().unwrap())
            })
            .collect();
        for index in indices {
            let of_choice: Vec<&Value> = chunks
                .iter()
                .flat_map(|c| c["choices"].as_array().unwrap())
                .filter(|ch| ch["index"] == index)
                .collect();
            assert_eq!(
                of_choice[0]["delta"],
                json!({"role": "assistant", "content": ""}),
                "role first"
            );
            assert_eq!(
                of_choice
                    .iter()
                    .filter(|ch| ch["delta"].get("role").is_some())
                    .count(),
                1,
                "role sent once"
            );
            let finishes: Vec<_> = of_choice
                .iter()
                .filter(|ch| !ch["finish_reason"].is_null())
                .collect();
            assert_eq!(
                finishes.len(),
                1,
                "finish_reason exactly once for choice {index}"
            );
            assert!(
                std::ptr::eq(*finishes[0], *of_choice.last().unwrap()),
                "finish on the last chunk"
            );
        }
        let usage_chunks: Vec<_> = chunks.iter().filter(|c| c.get("usage").is_some()).collect();
        if include_usage {
            assert_eq!(usage_chunks.len(), 1);
            assert!(
                std::ptr::eq(usage_chunks[0], chunks.last().unwrap()),
                "usage chunk is last"
            );
            assert_eq!(usage_chunks[0]["choices"], json!([]));
        } else {
            assert!(usage_chunks.is_empty(), "usage is omitted, never null");
        }
    }

    fn content_of(events: &[Value], field: &str) -> String {
        events
            .iter()
            .filter_map(|e| e.get("choices"))
            .flat_map(|c| c.as_array().unwrap())
            .filter_map(|ch| ch["delta"][field].as_str())
            .collect()
    }

    #[test]
    fn text_stream_replays_identically_at_every_split() {
        let events = replay_at_every_split("gemini_stream_text.sse", true);
        assert_stream_invariants(&events, true);
        assert_eq!(content_of(&events, "content"), "Hello, wörld 🎉!");
        let n = events.len();
        assert_eq!(
            events[n - 3]["choices"][0],
            json!({"index": 0, "delta": {}, "logprobs": null, "finish_reason": "stop"})
        );
        assert_eq!(
            events[n - 2]["usage"],
            json!({"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9,
            "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}})
        );
    }

    #[test]
    fn without_include_usage_there_is_no_usage_chunk() {
        let events = replay_at_every_split("gemini_stream_text.sse", false);
        assert_stream_invariants(&events, false);
    }

    #[test]
    fn thoughts_stream_as_reasoning_content_and_tool_calls_get_distinct_indices() {
        let events = replay_at_every_split("gemini_stream_thinking_tools.sse", true);
        assert_stream_invariants(&events, true);
        assert_eq!(
            content_of(&events, "reasoning_content"),
            "**Planning** I should call the tool."
        );
        assert_eq!(content_of(&events, "content"), "Let me check.");
        let calls: Vec<&Value> = events
            .iter()
            .filter_map(|e| e.get("choices"))
            .flat_map(|c| c.as_array().unwrap())
            .filter_map(|ch| ch["delta"].get("tool_calls"))
            .flat_map(|t| t.as_array().unwrap())
            .collect();
        assert_eq!(
            calls,
            [
                &json!({"index": 0, "id": "call_s1_0_0__thought__c2lnLWE=", "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                    "extra_content": {"google": {"thought_signature": "c2lnLWE="}}}),
                &json!({"index": 0, "function": {"arguments": "{\"city\":\"Paris\"}"}}),
                &json!({"index": 1, "id": "call_s1_0_1", "type": "function", "function": {"name": "get_time", "arguments": ""}}),
                &json!({"index": 1, "function": {"arguments": "{\"tz\":\"CET\"}"}}),
            ]
        );
        let finish = events
            .iter()
            .rev()
            .find_map(|e| e["choices"][0]["finish_reason"].as_str());
        assert_eq!(finish, Some("tool_calls"));
        let usage = &events[events.len() - 2]["usage"];
        assert_eq!(usage["completion_tokens"], 27);
        assert_eq!(usage["completion_tokens_details"]["reasoning_tokens"], 12);
        assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 8);
    }

    #[test]
    fn tool_call_deltas_keep_distinct_index_across_events() {
        let mut translator = ChatStreamTranslator::new(ctx(), false);
        let call = |name: &str| -> gemini::GenerateContentResponse {
            serde_json::from_value(
                json!({"candidates": [{"content": {"parts": [{"functionCall": {"name": name}}]}}]}),
            )
            .unwrap()
        };
        let first = translator.on_response(call("a"));
        let second = translator.on_response(call("b"));
        let index_of = |chunks: &[ChatCompletionChunk]| {
            chunks.last().unwrap().choices[0].delta.tool_calls[0].index
        };
        assert_eq!((index_of(&first), index_of(&second)), (0, 1));
        assert_eq!(
            second[0].choices[0].delta.tool_calls[0].id.as_deref(),
            Some("call_s1_0_1")
        );
    }

    #[test]
    fn blocked_prompt_streams_a_content_filter_finish() {
        let events = replay_at_every_split("gemini_stream_blocked.sse", true);
        assert_stream_invariants(&events, true);
        assert_eq!(events[1]["choices"][0]["finish_reason"], "content_filter");
        assert_eq!(events[2]["usage"]["prompt_tokens"], 7);
    }

    #[test]
    fn two_candidates_stream_as_two_choices_each_finishing_once() {
        let events = replay_at_every_split("gemini_stream_two_candidates.sse", false);
        assert_stream_invariants(&events, false);
        let finishes: Vec<(u64, &str)> = events
            .iter()
            .filter_map(|e| e.get("choices"))
            .flat_map(|c| c.as_array().unwrap())
            .filter_map(|ch| Some((ch["index"].as_u64()?, ch["finish_reason"].as_str()?)))
            .collect();
        assert_eq!(finishes, [(0, "stop"), (1, "length")]);
    }

    #[test]
    fn upstream_error_event_ends_the_stream_with_an_error_then_done() {
        let events = replay_at_every_split("gemini_stream_error.sse", true);
        let n = events.len();
        assert_eq!(events[n - 1], json!("[DONE]"));
        assert_eq!(
            events[n - 2],
            json!({"error": {"message": "The model is overloaded. Please try again later.",
            "type": "api_error", "param": null, "code": "upstream_error"}})
        );
        assert_eq!(
            content_of(&events, "content"),
            "Partial",
            "nothing after the error is translated"
        );
        assert!(
            events
                .iter()
                .all(|e| e["choices"][0]["finish_reason"].is_null())
        );
    }

    #[test]
    fn client_fault_error_event_keeps_its_status_type() {
        let out = run(b"data: {\"error\":{\"code\":400,\"message\":\"bad arg\",\"status\":\"INVALID_ARGUMENT\"}}\n\n", &[], false);
        assert_eq!(
            payloads(&out),
            [
                json!({"error": {"message": "bad arg", "type": "invalid_request_error", "param": null, "code": null}}),
                json!("[DONE]")
            ]
        );
    }

    #[test]
    fn truncated_stream_ends_with_an_error_event_then_done() {
        let events = replay_at_every_split("gemini_stream_truncated.sse", true);
        let n = events.len();
        assert_eq!(events[n - 1], json!("[DONE]"));
        assert_eq!(events[n - 2]["error"]["type"], "api_error");
        assert_eq!(content_of(&events, "content"), "Once upon a time");
        assert!(events.iter().all(|e| e.get("usage").is_none()));
    }

    #[test]
    fn empty_upstream_is_truncated() {
        let translator = ChatStreamTranslator::new(ctx(), true);
        assert_eq!(translator.finish().unwrap_err().status(), 502);
    }

    #[test]
    fn malformed_event_ends_the_stream_with_an_error() {
        let out = run(b"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]}}]}\n\ndata: {oops\n\ndata: {\"candidates\":[]}\n\n", &[], false);
        let events = payloads(&out);
        assert_eq!(events.len(), 4, "{events:?}");
        assert_eq!(
            events[2]["error"]["message"],
            "The upstream sent a malformed stream event."
        );
        assert_eq!(events[3], json!("[DONE]"));
    }

    #[test]
    fn keep_alives_comments_and_upstream_done_are_ignored() {
        let out = run(b": ping\n\ndata:\n\ndata: [DONE]\n\ndata: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]},\"finishReason\":\"STOP\"}]}\n\n", &[], false);
        let events = payloads(&out);
        assert_stream_invariants(&events, false);
    }

    #[test]
    fn fail_writes_an_error_event_then_done_once() {
        let mut pipeline = ChatSsePipeline::new(ctx(), false);
        pipeline.push(b"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]}}]}\n\n");
        let out = pipeline.fail(&GatewayError::UpstreamTimeout(
            "The upstream timed out.".into(),
        ));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "data: {\"error\":{\"message\":\"The upstream timed out.\",\"type\":\"api_error\",\"param\":null,\"code\":\"upstream_timeout\"}}\n\ndata: [DONE]\n\n"
        );
    }

    #[test]
    fn nothing_is_written_after_the_stream_ended() {
        let mut pipeline = ChatSsePipeline::new(ctx(), false);
        let out = pipeline.push(b"data: {\"error\":{\"code\":500,\"message\":\"x\"}}\n\n");
        assert!(
            String::from_utf8(out)
                .unwrap()
                .ends_with("data: [DONE]\n\n")
        );
        assert!(pipeline.push(b"data: {\"candidates\":[]}\n\n").is_empty());
        assert!(pipeline.finish().is_empty());
        let mut pipeline = ChatSsePipeline::new(ctx(), false);
        pipeline.push(b"data: {\"error\":{\"code\":500,\"message\":\"x\"}}\n\n");
        assert!(
            pipeline
                .fail(&GatewayError::Internal("late".into()))
                .is_empty()
        );
    }

    #[test]
    fn a_final_event_without_blank_line_is_still_translated() {
        let out = run(b"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]},\"finishReason\":\"STOP\"}]}", &[], false);
        assert_stream_invariants(&payloads(&out), false);
    }

    #[test]
    fn the_direct_parse_reads_every_fixture_event_as_the_value_path_does() {
        for name in [
            "gemini_stream_blocked.sse",
            "gemini_stream_error.sse",
            "gemini_stream_text.sse",
            "gemini_stream_thinking_tools.sse",
            "gemini_stream_truncated.sse",
            "gemini_stream_two_candidates.sse",
        ] {
            let mut decoder = SseDecoder::new();
            let mut events = decoder.push(&fixture(name));
            events.extend(decoder.finish());
            assert!(!events.is_empty(), "{name}");
            for event in events {
                let data = event.data.trim();
                if data.is_empty() || data == "[DONE]" {
                    continue;
                }
                assert_eq!(
                    parse_event(data),
                    parse_event_via_value(data),
                    "{name}: {data}"
                );
            }
        }
    }

    #[test]
    fn an_error_key_is_relayed_whichever_way_it_is_spelled() {
        for data in [
            r#"{"error":{"code":400,"message":"bad arg"}}"#,
            r#"{"\u0065rror":{"code":400,"message":"bad arg"}}"#,
        ] {
            assert_eq!(parse_event(data).unwrap_err().status(), 400, "{data}");
        }
    }

    /// An upstream that streams without ever ending an event would make the decoder hold
    /// it all: past the cap, the client gets an error event and `[DONE]`, and nothing after.
    #[test]
    fn an_upstream_event_past_the_cap_ends_the_stream_with_an_error() {
        let mut pipeline = ChatSsePipeline::new(ctx(), false);
        let opening = pipeline.push(&fixture("gemini_stream_truncated.sse"));
        assert!(!opening.is_empty());
        let garbage = vec![b'x'; sse::MAX_EVENT_BYTES + 1];
        let out = pipeline.push(&garbage);
        let events = payloads(&out);
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0]["error"]["type"], "api_error");
        assert!(
            events[0]["error"]["message"]
                .as_str()
                .unwrap()
                .contains("larger than 16 MiB"),
            "{events:?}"
        );
        assert_eq!(events[1], "[DONE]");
        assert!(pipeline.push(b"data: {}\n\n").is_empty());
        assert!(pipeline.finish().is_empty());
    }

    #[test]
    fn usage_is_readable_before_finish_for_settlement() {
        let mut pipeline = ChatSsePipeline::new(ctx(), false);
        assert!(pipeline.usage().is_none());
        pipeline.push(&fixture("gemini_stream_truncated.sse"));
        pipeline.push(
            b"data: {\"usageMetadata\":{\"promptTokenCount\":3,\"candidatesTokenCount\":4}}\n\n",
        );
        assert_eq!(
            pipeline.usage(),
            Some(Usage {
                prompt_tokens: 3,
                completion_tokens: 4,
                reasoning_tokens: 0,
            })
        );
    }
}
