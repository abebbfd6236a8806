//! Fake streaming: a client that asked for a stream gets one at once, while the
//! gateway makes one non-stream upstream call. Until the answer is there the
//! stream carries only its opening (the role chunk) and heartbeat comments, so
//! every upstream failure can still fail over; then the whole answer follows
//! as the ordinary stream would have carried it.
//!
//! This module decides every byte such a stream writes, for the three forms
//! it takes: `OpenAI` chat SSE, Gemini SSE (`alt=sse`) and Gemini's JSON array.
//! The edge only races a timer against the upstream call and writes what this
//! says. No I/O, no clock.

use serde::de::IgnoredAny;

use crate::domain::compat::{Compat, Modes};
use crate::domain::error::GatewayError;
use crate::domain::gemini::GenerateContentResponse;
use crate::domain::render;
use crate::domain::sse;
use crate::domain::translate::chat::ChatContext;
use crate::domain::translate::stream::{ChatStreamTranslator, error_events};
use crate::domain::translate::to_json;

/// The request header that asks for fake streaming (`1` or `true`).
pub const HEADER: &str = "x-gemgate-fake-stream";

/// Whether the header's value asks for fake streaming: `1` or `true` (any case,
/// surrounding spaces ignored). Anything else, or no header, does not.
pub fn header_asks(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        let v = v.trim();
        v == "1" || v.eq_ignore_ascii_case("true")
    })
}

/// The modes a request gets ([`Compat::modes_for`]: its prefixes, and the globs for its
/// model as sent or as resolved), with fake streaming also when its header asks
/// ([`header_asks`]). Fake streaming applies only to requests that asked for a stream.
pub fn modes<'a>(
    compat: &Compat,
    asked: Modes,
    header: Option<&str>,
    models: impl IntoIterator<Item = &'a str>,
) -> Modes {
    let mut given = compat.modes_for(asked, models);
    given.fake_stream |= header_asks(header);
    given
}

/// One form of fake stream: what it opens with, what a heartbeat is, and how
/// the answer (or the error that replaced it) ends it.
pub trait Format {
    /// What the upstream call hands over.
    type Answer;
    /// Sent at once, before the upstream call.
    fn opening(&mut self) -> Vec<u8>;
    /// Sent every interval while the call runs: bytes no client reads as data.
    fn heartbeat(&self) -> &'static [u8];
    /// The whole answer, and the stream's end.
    fn answer(self, answer: Self::Answer) -> Vec<u8>;
    /// The error that ended the stream instead (HTTP 200 was already sent).
    fn fail(self, err: &GatewayError) -> Vec<u8>;
}

/// A fake stream's writer: the opening once, heartbeats, then exactly one end.
/// After the end it writes nothing more.
#[derive(Debug)]
pub struct FakeStream<F> {
    format: Option<F>,
    opened: bool,
}

impl<F: Format> FakeStream<F> {
    pub fn new(format: F) -> Self {
        Self {
            format: Some(format),
            opened: false,
        }
    }

    /// The opening; empty when already sent or ended.
    pub fn opening(&mut self) -> Vec<u8> {
        match self.format.as_mut() {
            Some(format) if !self.opened => {
                self.opened = true;
                format.opening()
            }
            _ => Vec::new(),
        }
    }

    /// A heartbeat; empty once ended.
    pub fn heartbeat(&self) -> Vec<u8> {
        self.format
            .as_ref()
            .map(|f| f.heartbeat().to_vec())
            .unwrap_or_default()
    }

    /// Ends the stream with the call's result (with the opening first, if it was
    /// not sent yet); empty when already ended.
    pub fn end(&mut self, result: Result<F::Answer, GatewayError>) -> Vec<u8> {
        let mut out = self.opening();
        let Some(format) = self.format.take() else {
            return out;
        };
        out.extend(match result {
            Ok(answer) => format.answer(answer),
            Err(err) => format.fail(&err),
        });
        out
    }

    pub fn ended(&self) -> bool {
        self.format.is_none()
    }
}

/// An SSE comment line: every SSE client skips it.
pub const SSE_HEARTBEAT: &[u8] = b": heartbeat\n\n";
/// The same in Google's CRLF framing.
pub const SSE_HEARTBEAT_CRLF: &[u8] = b": heartbeat\r\n\r\n";
/// JSON whitespace inside the array: valid between `[` and its first element.
pub const JSON_HEARTBEAT: &[u8] = b"\n";

/// `OpenAI` chat chunks, translated exactly as a real stream's would be.
#[derive(Debug)]
pub struct ChatSse {
    translator: ChatStreamTranslator,
}

impl ChatSse {
    pub fn new(ctx: ChatContext, include_usage: bool) -> Self {
        Self {
            translator: ChatStreamTranslator::new(ctx, include_usage),
        }
    }
}

impl Format for ChatSse {
    type Answer = GenerateContentResponse;

    /// The role chunk of the first choice (the translator will not repeat it).
    fn opening(&mut self) -> Vec<u8> {
        encode(&self.translator.open_choice(0))
    }

    fn heartbeat(&self) -> &'static [u8] {
        SSE_HEARTBEAT
    }

    /// The answer as one stream event, then the finish, usage and `[DONE]` (or, for an
    /// answer without a finish, the error event a truncated stream gets).
    fn answer(mut self, answer: GenerateContentResponse) -> Vec<u8> {
        let mut out = encode(&self.translator.on_response(answer));
        match self.translator.finish() {
            Ok(chunks) => {
                out.extend(encode(&chunks));
                out.extend_from_slice(sse::DONE.as_bytes());
            }
            Err(err) => out.extend(error_events(&err).into_bytes()),
        }
        out
    }

    fn fail(self, err: &GatewayError) -> Vec<u8> {
        error_events(err).into_bytes()
    }
}

fn encode(chunks: &[crate::domain::openai::ChatCompletionChunk]) -> Vec<u8> {
    let mut out = String::new();
    for chunk in chunks {
        out.push_str(&sse::encode_data(&to_json(chunk)));
    }
    out.into_bytes()
}

/// Gemini's `alt=sse` form: `data: {GenerateContentResponse}` events in CRLF framing,
/// heartbeat comments before. The answer is the upstream body, relayed unchanged
/// (only its insignificant whitespace removed, as an event is one line).
#[derive(Debug, Default)]
pub struct NativeSse;

impl Format for NativeSse {
    type Answer = Vec<u8>;

    /// A first comment, so the client sees the stream open at once.
    fn opening(&mut self) -> Vec<u8> {
        SSE_HEARTBEAT_CRLF.to_vec()
    }

    fn heartbeat(&self) -> &'static [u8] {
        SSE_HEARTBEAT_CRLF
    }

    fn answer(self, answer: Vec<u8>) -> Vec<u8> {
        match compact_json(&answer) {
            Ok(json) => native_event(&json),
            Err(err) => self.fail(&err),
        }
    }

    /// Google's error envelope as the last event, as Google ends a failing stream.
    fn fail(self, err: &GatewayError) -> Vec<u8> {
        native_event(&to_json(&render::gemini_error(err)))
    }
}

fn native_event(json: &str) -> Vec<u8> {
    format!("data: {json}\r\n\r\n").into_bytes()
}

/// Gemini's default stream form, one JSON array: `[` at once, newlines (JSON
/// whitespace, which every parser skips, streaming ones included) as
/// heartbeats, then the answer as the one element and `]`.
#[derive(Debug, Default)]
pub struct NativeArray;

impl Format for NativeArray {
    type Answer = Vec<u8>;

    fn opening(&mut self) -> Vec<u8> {
        b"[".to_vec()
    }

    fn heartbeat(&self) -> &'static [u8] {
        JSON_HEARTBEAT
    }

    fn answer(self, answer: Vec<u8>) -> Vec<u8> {
        match compact_json(&answer) {
            Ok(json) => format!("{json}\n]").into_bytes(),
            Err(err) => self.fail(&err),
        }
    }

    /// Google's error envelope as the array's element.
    fn fail(self, err: &GatewayError) -> Vec<u8> {
        format!("{}\n]", to_json(&render::gemini_error(err))).into_bytes()
    }
}

/// A JSON document on one line: whitespace outside strings removed, everything else
/// (key order, numbers, escapes) exactly as sent. Errs when it is not JSON.
pub fn compact_json(bytes: &[u8]) -> Result<String, GatewayError> {
    let unreadable =
        || GatewayError::BadGateway("Upstream sent an unreadable response.".to_owned());
    serde_json::from_slice::<IgnoredAny>(bytes).map_err(|_| unreadable())?;
    let mut out = Vec::with_capacity(bytes.len());
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
            out.push(b);
        } else if !b.is_ascii_whitespace() {
            out.push(b);
        }
    }
    // Valid JSON stays valid UTF-8: only ASCII whitespace was removed.
    String::from_utf8(out).map_err(|_| unreadable())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::sse::payloads;
    use crate::domain::translate::chat::ReplyPlan;
    use serde_json::{Value, json};

    fn ctx() -> ChatContext {
        ChatContext {
            id: "chatcmpl-fs".into(),
            created: 1_700_000_002,
            model: "fake-stream/gemini-2.5-flash".into(),
            reply: ReplyPlan::default(),
        }
    }

    fn answer() -> GenerateContentResponse {
        serde_json::from_value(json!({
            "candidates": [{
                "content": {"role": "model", "parts": [
                    {"text": "weighing it", "thought": true},
                    {"text": "Both at once."},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                    {"functionCall": {"name": "get_time", "args": {"tz": "CET"}}}
                ]},
                "finishReason": "STOP",
                "index": 0
            }],
            "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 7,
                "thoughtsTokenCount": 3, "totalTokenCount": 15}
        }))
        .unwrap()
    }

    #[test]
    fn the_header_asks_with_1_or_true_only() {
        for yes in ["1", "true", "TRUE", "True", " true "] {
            assert!(header_asks(Some(yes)), "{yes}");
        }
        for no in ["0", "false", "", "yes", "2", "on"] {
            assert!(!header_asks(Some(no)), "{no}");
        }
        assert!(!header_asks(None));
    }

    #[test]
    fn a_prefix_the_header_or_a_glob_chooses_it() {
        let compat = Compat {
            fake_stream_models: vec!["gemini-2.5-pro*".to_owned()],
            ..Compat::default()
        };
        let chosen = |asked, header, models: &[&str]| {
            modes(&compat, asked, header, models.iter().copied()).fake_stream
        };
        let (bare, asked) = compat.strip_prefixes("fake-stream/gemini-2.5-flash");
        assert!(chosen(asked, None, &[bare]));
        let (bare, asked) = compat.strip_prefixes("gemini-2.5-flash");
        assert!(!chosen(asked, None, &[bare]));
        assert!(!chosen(asked, Some("false"), &[bare]));
        assert!(chosen(asked, Some("true"), &[bare]));
        // An alias that resolves to a matching model counts too.
        assert!(chosen(asked, None, &["pro-alias", "gemini-2.5-pro"]));
    }

    #[test]
    fn chat_opens_with_the_role_then_heartbeats_then_the_whole_answer_once() {
        let mut stream = FakeStream::new(ChatSse::new(ctx(), true));
        let mut out = stream.opening();
        assert!(stream.opening().is_empty(), "the opening is sent once");
        let opening = payloads(&out);
        assert_eq!(opening.len(), 1);
        assert_eq!(
            opening[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": ""})
        );
        out.extend(stream.heartbeat());
        out.extend(stream.heartbeat());
        assert_eq!(&out[out.len() - SSE_HEARTBEAT.len()..], SSE_HEARTBEAT);
        out.extend(stream.end(Ok(answer())));
        assert!(stream.ended());
        assert!(stream.heartbeat().is_empty() && stream.end(Ok(answer())).is_empty());
        let all = payloads(&out);
        assert_eq!(all.last(), Some(&json!("[DONE]")));
        let chunks = &all[..all.len() - 1];
        assert!(chunks.iter().all(|c| c["id"] == "chatcmpl-fs"));
        assert!(
            chunks
                .iter()
                .all(|c| c["model"] == "fake-stream/gemini-2.5-flash")
        );
        let deltas: Vec<&Value> = chunks
            .iter()
            .filter_map(|c| c["choices"].get(0))
            .map(|c| &c["delta"])
            .collect();
        assert_eq!(
            deltas.iter().filter(|d| d.get("role").is_some()).count(),
            1,
            "the role chunk is not repeated"
        );
        assert_eq!(deltas[1]["content"], "Both at once.");
        assert_eq!(deltas[1]["reasoning_content"], "weighing it");
        let calls: Vec<&Value> = deltas
            .iter()
            .filter_map(|d| d.get("tool_calls"))
            .flat_map(|t| t.as_array().unwrap())
            .filter(|t| t.get("id").is_some())
            .collect();
        assert_eq!(calls.len(), 2);
        assert_eq!(
            (calls[0]["index"].as_u64(), calls[1]["index"].as_u64()),
            (Some(0), Some(1))
        );
        assert_ne!(calls[0]["id"], calls[1]["id"]);
        let finishes: Vec<&Value> = chunks
            .iter()
            .filter_map(|c| c["choices"].get(0))
            .filter(|c| !c["finish_reason"].is_null())
            .collect();
        assert_eq!(finishes.len(), 1);
        assert_eq!(finishes[0]["finish_reason"], "tool_calls");
        let usage = &chunks.last().unwrap()["usage"];
        assert_eq!(usage["completion_tokens"], 10);
        assert_eq!(usage["completion_tokens_details"]["reasoning_tokens"], 3);
    }

    #[test]
    fn chat_failure_after_the_opening_is_an_error_event_then_done() {
        let mut stream = FakeStream::new(ChatSse::new(ctx(), true));
        let mut out = stream.opening();
        out.extend(stream.end(Err(GatewayError::Upstream {
            status: 429,
            message: "All keys are rate limited.".into(),
            google_status: Some("RESOURCE_EXHAUSTED".into()),
        })));
        let all = payloads(&out);
        assert_eq!(all.len(), 3);
        assert_eq!(all[1]["error"]["message"], "All keys are rate limited.");
        assert_eq!(all[1]["error"]["type"], "rate_limit_error");
        assert_eq!(all[2], json!("[DONE]"));
    }

    #[test]
    fn chat_answer_without_a_finish_is_a_truncation_error() {
        let mut stream = FakeStream::new(ChatSse::new(ctx(), false));
        let empty: GenerateContentResponse = serde_json::from_value(json!({})).unwrap();
        let all = payloads(&stream.end(Ok(empty)));
        assert_eq!(all[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(all[1]["error"]["type"], "api_error");
        assert_eq!(all[2], json!("[DONE]"));
    }

    #[test]
    fn native_sse_relays_the_answer_as_one_line_event() {
        let mut stream = FakeStream::new(NativeSse);
        let mut out = stream.opening();
        out.extend(stream.heartbeat());
        let body = b"{\n  \"candidates\": [\n    {\"content\": {\"parts\": [{\"text\": \"a \\\" b\\n\"}]}}\n  ],\n  \"zeta\": 1, \"alpha\": 2\n}\n";
        out.extend(stream.end(Ok(body.to_vec())));
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            ": heartbeat\r\n\r\n: heartbeat\r\n\r\ndata: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a \\\" b\\n\"}]}}],\"zeta\":1,\"alpha\":2}\r\n\r\n"
        );
    }

    #[test]
    fn native_errors_take_googles_shape() {
        let err = GatewayError::Upstream {
            status: 503,
            message: "overloaded".into(),
            google_status: Some("UNAVAILABLE".into()),
        };
        let mut sse = FakeStream::new(NativeSse);
        sse.opening();
        let text = String::from_utf8(sse.end(Err(err.clone()))).unwrap();
        assert_eq!(
            text,
            "data: {\"error\":{\"code\":503,\"message\":\"overloaded\",\"status\":\"UNAVAILABLE\"}}\r\n\r\n"
        );
        let mut array = FakeStream::new(NativeArray);
        let mut out = array.opening();
        out.extend(array.heartbeat());
        out.extend(array.end(Err(err)));
        let parsed: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(parsed[0]["error"]["status"], "UNAVAILABLE");
        // A body that is not JSON is the gateway's error, not relayed.
        let mut sse = FakeStream::new(NativeSse);
        sse.opening();
        let text = String::from_utf8(sse.end(Ok(b"not json".to_vec()))).unwrap();
        assert!(text.starts_with("data: {\"error\":{\"code\":502"), "{text}");
    }

    #[test]
    fn the_json_array_form_parses_whole_with_heartbeats_inside() {
        let mut stream = FakeStream::new(NativeArray);
        let mut out = stream.opening();
        for _ in 0..3 {
            out.extend(stream.heartbeat());
        }
        out.extend(stream.end(Ok(
            br#"{"candidates": [], "usageMetadata": {"promptTokenCount": 1}}"#.to_vec(),
        )));
        assert!(out.starts_with(b"[\n\n\n{"));
        let parsed: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            parsed,
            json!([{"candidates": [], "usageMetadata": {"promptTokenCount": 1}}])
        );
    }

    #[test]
    fn compact_json_keeps_strings_and_order() {
        assert_eq!(
            compact_json(b" { \"b\" : [ 1 , 2 ] , \"a\" : \"x  y\\\\\" } ").unwrap(),
            r#"{"b":[1,2],"a":"x  y\\"}"#
        );
        assert!(compact_json(b"{").is_err());
        assert!(compact_json(b"").is_err());
    }
}
