//! Anti-truncation: the model is asked to end its answer with a marker; an answer that ends
//! without it was cut off, and is continued by asking again with the text so far as a model
//! turn and a short user turn asking to go on. The pieces are stitched into one answer, the
//! marker never reaches the client, and the usage sums every piece.
//!
//! The decisions live here, pure: [`MarkerFilter`] (the marker, held back across events),
//! [`Continuation`] (is a piece complete, the next request, the summed usage),
//! [`ContinuedSsePipeline`] (one seamless `OpenAI` stream over several upstream streams) and
//! [`Stitcher`] (the same for whole answers). The edge only makes the calls.

use crate::domain::compat::Compat;
use crate::domain::error::GatewayError;
use crate::domain::gemini::{
    Candidate, Content, FinishReason, GenerateContentRequest, GenerateContentResponse, Part,
    PartData, PromptFeedback, Role, UsageMetadata,
};
use crate::domain::quota::Usage;
use crate::domain::sse::{self, SseDecoder};
use crate::domain::translate::chat::{ChatContext, prompt_blocked};
use crate::domain::translate::stream::{
    ChatStreamTranslator, error_events, event_too_large, parse_event,
};
use crate::domain::translate::to_json;
use crate::domain::usage::from_metadata;

/// A user key pays this many times the model's cost for an anti-truncation request: each
/// continuation is a billed call, and the mode is opt-in.
pub const COST_MULTIPLIER: u64 = 2;

/// The user turn that asks for the rest of a cut answer.
pub const CONTINUE_PROMPT: &str = "Your previous answer was cut off. Continue it exactly where \
it stopped: start with the very next characters and do not repeat anything you already wrote.";

/// How one request is continued; built only for requests that can be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    marker: String,
    instruction: String,
    max_attempts: u32,
    /// The client capped the output (`max_tokens`): a `MAX_TOKENS` finish is its answer.
    client_capped: bool,
}

impl Plan {
    /// The plan for a request whose model asked for anti-truncation, or `None` when its shape
    /// rules the mode out: structured output (JSON, enum) cannot end with a marker, and
    /// several candidates cannot be continued as one answer.
    pub fn for_request(compat: &Compat, body: &GenerateContentRequest) -> Option<Self> {
        let config = body.generation_config.as_ref();
        let structured = config
            .and_then(|c| c.response_mime_type.as_deref())
            .is_some_and(|mime| mime != "text/plain");
        let several = config
            .and_then(|c| c.candidate_count)
            .is_some_and(|n| n > 1);
        if structured || several || compat.anti_truncation_marker.is_empty() {
            return None;
        }
        Some(Self {
            marker: compat.anti_truncation_marker.clone(),
            instruction: compat.marker_instruction(),
            max_attempts: compat.anti_truncation_max_attempts,
            client_capped: config.and_then(|c| c.max_output_tokens).is_some(),
        })
    }

    /// Continuation calls at most, after the first call.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// Adds the marker instruction to the request's system instruction (its last part), or,
    /// for a model that takes its system prompt as a user turn (`as_user`), where that goes.
    pub fn instruct(&self, body: &mut GenerateContentRequest, as_user: bool) {
        let part = Part::text(self.instruction.clone());
        if as_user {
            let system = Content {
                role: None,
                parts: vec![part],
            };
            super::switches::system_into_contents(Some(system), &mut body.contents);
            return;
        }
        match &mut body.system_instruction {
            Some(system) => system.parts.push(part),
            None => {
                body.system_instruction = Some(Content {
                    role: None,
                    parts: vec![part],
                });
            }
        }
    }
}

/// The request that continues `original` after `text`: the conversation, the text so far as
/// one model turn, then [`CONTINUE_PROMPT`]. Without text yet, the original is asked again.
pub fn continuation_request(
    original: &GenerateContentRequest,
    text: &str,
) -> GenerateContentRequest {
    let mut body = original.clone();
    if !text.is_empty() {
        body.contents
            .push(Content::new(Role::Model, vec![Part::text(text)]));
        body.contents
            .push(Content::new(Role::User, vec![Part::text(CONTINUE_PROMPT)]));
    }
    body
}

/// Removes the marker from answer text that arrives in pieces. Any tail that could still
/// become the marker (a prefix of it, after optional whitespace) is held back until more text
/// decides; whitespace before a marker is dropped with it, so the answer ends cleanly.
#[derive(Debug, Clone)]
pub struct MarkerFilter {
    marker: String,
    held: String,
    /// The marker was seen, and nothing but whitespace came after it.
    after_marker: bool,
}

impl MarkerFilter {
    pub fn new(marker: impl Into<String>) -> Self {
        Self {
            marker: marker.into(),
            held: String::new(),
            after_marker: false,
        }
    }

    /// Takes the next text; returns what can be shown now.
    pub fn push(&mut self, text: &str) -> String {
        let mut buf = std::mem::take(&mut self.held);
        buf.push_str(text);
        let mut out = String::new();
        if self.marker.is_empty() {
            return buf;
        }
        while let Some(at) = buf.find(&self.marker) {
            let before = buf[..at].trim_end();
            if !before.is_empty() {
                out.push_str(before);
            }
            buf.drain(..at + self.marker.len());
            self.after_marker = true;
        }
        let keep = self.hold_len(&buf);
        let release = &buf[..buf.len() - keep];
        if !release.is_empty() {
            out.push_str(release);
            self.after_marker = false;
        }
        buf[buf.len() - keep..].clone_into(&mut self.held);
        out
    }

    /// How many trailing bytes of `buf` may still be the marker's start: the longest proper
    /// prefix of the marker it ends with, and the whitespace before it.
    fn hold_len(&self, buf: &str) -> usize {
        let prefix = self
            .marker
            .char_indices()
            .rev()
            .map(|(i, _)| i)
            .filter(|&k| k > 0)
            .find(|&k| buf.ends_with(&self.marker[..k]))
            .unwrap_or(0);
        let rest = &buf[..buf.len() - prefix];
        buf.len() - rest.trim_end().len()
    }

    /// The answer ended with the marker (only whitespace after it).
    pub fn ended_with_marker(&self) -> bool {
        self.after_marker && self.held.trim().is_empty()
    }

    /// The answer is over: what is still held is shown, unless it is the whitespace after
    /// the final marker.
    pub fn finish(&mut self) -> String {
        let held = std::mem::take(&mut self.held);
        if self.after_marker && held.trim().is_empty() {
            String::new()
        } else {
            held
        }
    }
}

/// What to do once a piece ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Send this continuation request.
    Continue(Box<GenerateContentRequest>),
    /// The answer is over: this last response carries the held-back text, the final finish
    /// reason (none when the answer stays cut) and the usage of every piece.
    Finish(GenerateContentResponse),
}

/// The state of one continued answer across its pieces (upstream calls).
#[derive(Debug, Clone)]
pub struct Continuation {
    plan: Plan,
    original: GenerateContentRequest,
    filter: MarkerFilter,
    /// All answer text so far, as the model wrote it (marker included).
    text: String,
    /// Continuation calls asked for so far.
    attempts: u32,
    /// Usage of the pieces that ended.
    spent: UsageMetadata,
    /// The last usage the current piece reported (Gemini's counts are cumulative).
    piece_usage: Option<UsageMetadata>,
    piece_finish: Option<FinishReason>,
    tool_calls: bool,
    blocked: bool,
}

impl Continuation {
    /// `original` is the first request, marker instruction included.
    pub fn new(plan: Plan, original: GenerateContentRequest) -> Self {
        let filter = MarkerFilter::new(plan.marker.clone());
        Self {
            plan,
            original,
            filter,
            text: String::new(),
            attempts: 0,
            spent: UsageMetadata::default(),
            piece_usage: None,
            piece_finish: None,
            tool_calls: false,
            blocked: false,
        }
    }

    /// The usage of every piece so far, the current one included.
    pub fn usage(&self) -> UsageMetadata {
        add(self.spent, self.piece_usage.unwrap_or_default())
    }

    /// Continuation calls asked for so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The answer text so far, as the model wrote it.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// One upstream response (a stream event or a whole answer) → the response to translate:
    /// the marker removed or held back, and without finish reasons or usage, which only
    /// [`Step::Finish`] carries.
    pub fn on_response(&mut self, mut resp: GenerateContentResponse) -> GenerateContentResponse {
        if let Some(meta) = resp.usage_metadata.take() {
            self.piece_usage = Some(meta);
        }
        if prompt_blocked(&resp) {
            self.blocked = true;
            return resp;
        }
        for candidate in &mut resp.candidates {
            if let Some(reason) = candidate.finish_reason.take() {
                self.piece_finish = Some(reason);
            }
            let Some(content) = candidate.content.as_mut() else {
                continue;
            };
            for part in &mut content.parts {
                match &mut part.data {
                    PartData::FunctionCall(_) => self.tool_calls = true,
                    PartData::Text(text) if !part.thought => {
                        self.text.push_str(text);
                        *text = self.filter.push(text);
                    }
                    _ => {}
                }
            }
        }
        resp
    }

    /// The current piece ended (its stream ended or broke, or its answer arrived): continue,
    /// or finish. A piece is complete when it ends with the marker, called tools, was
    /// blocked, or finished for another reason than `STOP`/`MAX_TOKENS`; `MAX_TOKENS` is
    /// also complete when the client capped the output. Anything else was cut off.
    pub fn end_piece(&mut self) -> Step {
        let finish = self.piece_finish.take();
        if let Some(meta) = self.piece_usage.take() {
            self.spent = add(self.spent, meta);
        }
        let marked = self.filter.ended_with_marker();
        let cut = match finish {
            None | Some(FinishReason::Stop) => true,
            Some(FinishReason::MaxTokens) => !self.plan.client_capped,
            Some(_) => false,
        };
        let complete = marked || self.tool_calls || self.blocked || !cut;
        if !complete && self.attempts < self.plan.max_attempts {
            self.attempts += 1;
            return Step::Continue(Box::new(continuation_request(&self.original, &self.text)));
        }
        let reason = if marked && matches!(finish, None | Some(FinishReason::MaxTokens)) {
            Some(FinishReason::Stop)
        } else {
            finish
        };
        let text = self.filter.finish();
        let candidates = if self.blocked {
            Vec::new()
        } else {
            let parts = if text.is_empty() {
                Vec::new()
            } else {
                vec![Part::text(text)]
            };
            vec![Candidate {
                content: Some(Content::new(Role::Model, parts)),
                finish_reason: reason,
                index: Some(0),
                ..Candidate::default()
            }]
        };
        Step::Finish(GenerateContentResponse {
            candidates,
            usage_metadata: Some(self.spent),
            ..GenerateContentResponse::default()
        })
    }
}

/// Every count of two usages, added.
fn add(a: UsageMetadata, b: UsageMetadata) -> UsageMetadata {
    UsageMetadata {
        prompt_token_count: a.prompt_token_count.saturating_add(b.prompt_token_count),
        candidates_token_count: a
            .candidates_token_count
            .saturating_add(b.candidates_token_count),
        total_token_count: a.total_token_count.saturating_add(b.total_token_count),
        thoughts_token_count: a
            .thoughts_token_count
            .saturating_add(b.thoughts_token_count),
        cached_content_token_count: a
            .cached_content_token_count
            .saturating_add(b.cached_content_token_count),
        tool_use_prompt_token_count: a
            .tool_use_prompt_token_count
            .saturating_add(b.tool_use_prompt_token_count),
    }
}

/// How a piece of a continued stream ended.
#[derive(Debug, Clone, PartialEq)]
pub struct PieceEnd {
    /// Bytes for the client (the piece's last events; at the end, the finish, usage and
    /// `[DONE]`, or an error event and `[DONE]`).
    pub bytes: Vec<u8>,
    /// The continuation request to stream next; `None` when the stream is over.
    pub next: Option<Box<GenerateContentRequest>>,
}

/// [`ChatSsePipeline`](crate::domain::translate::stream::ChatSsePipeline) over several
/// upstream streams: upstream SSE bytes in, one `OpenAI` stream out (one id, one role
/// chunk, the finish and usage once at the very end, `[DONE]` once).
#[derive(Debug)]
pub struct ContinuedSsePipeline {
    decoder: SseDecoder,
    machine: Continuation,
    /// `None` once the client stream ended (finished, or an error event was written).
    translator: Option<ChatStreamTranslator>,
}

impl ContinuedSsePipeline {
    pub fn new(ctx: ChatContext, include_usage: bool, machine: Continuation) -> Self {
        Self {
            decoder: SseDecoder::new(),
            machine,
            translator: Some(ChatStreamTranslator::new(ctx, include_usage)),
        }
    }

    /// The usage of every piece so far, in the ledger's terms (for settlement).
    pub fn usage(&self) -> Usage {
        from_metadata(&self.machine.usage())
    }

    /// Whether the client stream is over.
    pub fn ended(&self) -> bool {
        self.translator.is_none()
    }

    /// Continuation calls asked for so far.
    pub fn attempts(&self) -> u32 {
        self.machine.attempts()
    }

    /// Bytes of the current upstream piece → bytes for the client; possibly empty.
    pub fn push(&mut self, upstream_bytes: &[u8]) -> Vec<u8> {
        if self.ended() {
            return Vec::new();
        }
        let mut out = String::new();
        for event in self.decoder.push(upstream_bytes) {
            self.on_event(&event.data, &mut out);
        }
        if self.decoder.overflowed() && self.translator.take().is_some() {
            out.push_str(&error_events(&event_too_large()));
        }
        out.into_bytes()
    }

    /// The current upstream piece ended: cleanly (`broke` is `None`) or broken by `broke`.
    /// Its partial last event, if any, is dropped when it broke.
    pub fn end_piece(&mut self, broke: Option<&GatewayError>) -> PieceEnd {
        let decoder = std::mem::take(&mut self.decoder);
        let mut out = String::new();
        if broke.is_none() {
            for event in decoder.finish() {
                self.on_event(&event.data, &mut out);
            }
        }
        if self.ended() {
            return PieceEnd {
                bytes: out.into_bytes(),
                next: None,
            };
        }
        match self.machine.end_piece() {
            Step::Continue(body) => PieceEnd {
                bytes: out.into_bytes(),
                next: Some(body),
            },
            Step::Finish(last) => {
                self.finish(last, broke, &mut out);
                PieceEnd {
                    bytes: out.into_bytes(),
                    next: None,
                }
            }
        }
    }

    /// Ends the stream with an error event and `[DONE]` (a continuation call failed).
    pub fn fail(&mut self, err: &GatewayError) -> Vec<u8> {
        match self.translator.take() {
            Some(_) => error_events(err).into_bytes(),
            None => Vec::new(),
        }
    }

    fn finish(
        &mut self,
        last: GenerateContentResponse,
        broke: Option<&GatewayError>,
        out: &mut String,
    ) {
        let Some(mut translator) = self.translator.take() else {
            return;
        };
        let unfinished = last
            .candidates
            .first()
            .is_some_and(|c| c.finish_reason.is_none());
        for chunk in translator.on_response(last) {
            out.push_str(&sse::encode_data(&to_json(&chunk)));
        }
        if let (Some(err), true) = (broke, unfinished) {
            out.push_str(&error_events(err));
            return;
        }
        match translator.finish() {
            Ok(chunks) => {
                for chunk in &chunks {
                    out.push_str(&sse::encode_data(&to_json(chunk)));
                }
                out.push_str(sse::DONE);
            }
            Err(err) => out.push_str(&error_events(&err)),
        }
    }

    fn on_event(&mut self, data: &str, out: &mut String) {
        let Some(translator) = self.translator.as_mut() else {
            return;
        };
        match parse_event(data) {
            Ok(None) => {}
            Ok(Some(resp)) => {
                let resp = self.machine.on_response(resp);
                for chunk in translator.on_response(resp) {
                    out.push_str(&sse::encode_data(&to_json(&chunk)));
                }
            }
            Err(err) => {
                out.push_str(&error_events(&err));
                self.translator = None;
            }
        }
    }
}

/// Whole answers (non-streaming calls) stitched into one `GenerateContentResponse`: the
/// thoughts and other parts of every piece in order, the answer text joined without the
/// marker, the last finish reason, and the usage of every piece.
#[derive(Debug, Clone)]
pub struct Stitcher {
    machine: Continuation,
    parts: Vec<Part>,
    /// The latest candidate's other fields (grounding, safety ratings, …).
    meta: Option<Candidate>,
    finish: Option<FinishReason>,
    feedback: Option<PromptFeedback>,
    model_version: Option<String>,
    response_id: Option<String>,
    usage: Option<UsageMetadata>,
}

impl Stitcher {
    pub fn new(machine: Continuation) -> Self {
        Self {
            machine,
            parts: Vec::new(),
            meta: None,
            finish: None,
            feedback: None,
            model_version: None,
            response_id: None,
            usage: None,
        }
    }

    /// Takes the answer of the latest call; returns the continuation request to send next,
    /// or `None` when the answer is complete ([`into_response`](Self::into_response)).
    pub fn on_answer(
        &mut self,
        answer: GenerateContentResponse,
    ) -> Option<Box<GenerateContentRequest>> {
        let cleaned = self.machine.on_response(answer);
        self.absorb(cleaned, false);
        match self.machine.end_piece() {
            Step::Continue(body) => Some(body),
            Step::Finish(last) => {
                self.absorb(last, true);
                None
            }
        }
    }

    /// The usage of every call so far.
    pub fn usage(&self) -> Usage {
        from_metadata(&self.machine.usage())
    }

    /// Continuation calls asked for so far.
    pub fn attempts(&self) -> u32 {
        self.machine.attempts()
    }

    /// Takes a cleaned piece, or (`last`) the machine's closing response, whose candidate
    /// carries only the held-back text and the finish reason.
    fn absorb(&mut self, resp: GenerateContentResponse, last: bool) {
        if resp.prompt_feedback.is_some() {
            self.feedback = resp.prompt_feedback;
        }
        if resp.usage_metadata.is_some() {
            self.usage = resp.usage_metadata;
        }
        self.model_version = resp.model_version.or(self.model_version.take());
        self.response_id = self.response_id.take().or(resp.response_id);
        let Some(mut candidate) = resp.candidates.into_iter().next() else {
            return;
        };
        if candidate.finish_reason.is_some() {
            self.finish = candidate.finish_reason.take();
        }
        for part in candidate
            .content
            .take()
            .map(|c| c.parts)
            .unwrap_or_default()
        {
            self.add_part(part);
        }
        if !last {
            self.meta = Some(candidate);
        }
    }

    /// Appends a part, joining answer text to the answer text before it.
    fn add_part(&mut self, part: Part) {
        let plain = |p: &Part| matches!(p.data, PartData::Text(_)) && !p.thought;
        if plain(&part)
            && let PartData::Text(text) = &part.data
        {
            if text.is_empty() && part.thought_signature.is_none() {
                return;
            }
            if let Some(last) = self.parts.last_mut().filter(|p| plain(p))
                && let PartData::Text(joined) = &mut last.data
            {
                joined.push_str(text);
                if part.thought_signature.is_some() {
                    last.thought_signature = part.thought_signature;
                }
                return;
            }
        }
        self.parts.push(part);
    }

    /// The stitched answer. A blocked prompt keeps its feedback and no candidate.
    pub fn into_response(self) -> GenerateContentResponse {
        let candidates = match self.meta {
            Some(meta) if !self.machine.blocked => vec![Candidate {
                content: Some(Content::new(Role::Model, self.parts)),
                finish_reason: self.finish,
                index: Some(0),
                ..meta
            }],
            _ => Vec::new(),
        };
        GenerateContentResponse {
            candidates,
            prompt_feedback: self.feedback,
            usage_metadata: self.usage,
            model_version: self.model_version,
            response_id: self.response_id,
        }
    }
}

#[cfg(test)]
mod tests;
