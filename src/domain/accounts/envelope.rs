//! Code Assist's envelope. A `generateContent` body goes up as
//! `{model, project, user_prompt_id, request}`; the answer comes back as
//! `{response, traceId}`, each stream event too. Unwrapped here, the rest of
//! the gateway (both surfaces, tools, thought signatures, usage) sees exactly
//! what an API key would have returned.

use serde_json::{Value, json};

use crate::domain::render;
use crate::domain::sse::{SseDecoder, encode_data};
use crate::domain::translate::stream::event_too_large;
use crate::domain::translate::to_json;

/// The generate body for Code Assist. `request` is the Gemini body as JSON
/// text (built by the translation, or the native client's own).
pub fn wrap_generate(
    model: &str,
    project: &str,
    prompt_id: &str,
    request: &str,
) -> Result<String, String> {
    let request: Value =
        serde_json::from_str(request).map_err(|e| format!("request body is not JSON: {e}"))?;
    let Value::Object(mut request) = request else {
        return Err("request body must be a JSON object".into());
    };
    // The model is the envelope's; a body naming one too would be refused.
    request.remove("model");
    Ok(json!({
        "model": model,
        "project": project,
        "user_prompt_id": prompt_id,
        "request": request,
    })
    .to_string())
}

/// The `countTokens` body for Code Assist: `{request: {model: "models/…", contents}}`.
/// A native body's `generateContentRequest` gives its contents.
pub fn wrap_count(model: &str, request: &str) -> Result<String, String> {
    let body: Value =
        serde_json::from_str(request).map_err(|e| format!("request body is not JSON: {e}"))?;
    let contents = body
        .get("contents")
        .or_else(|| body.pointer("/generateContentRequest/contents"))
        .cloned()
        .unwrap_or(Value::Array(Vec::new()));
    Ok(
        json!({ "request": { "model": format!("models/{model}"), "contents": contents } })
            .to_string(),
    )
}

/// A non-stream answer without its wrapper. An answer that has no `response`
/// (an error body, `countTokens`) is returned as it is.
pub fn unwrap_body(body: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(mut map)) if map.contains_key("response") => {
            match map.remove("response") {
                Some(inner) => serde_json::to_vec(&inner).unwrap_or_else(|_| body.to_vec()),
                None => body.to_vec(),
            }
        }
        _ => body.to_vec(),
    }
}

/// Unwraps an SSE stream event by event, whatever the chunking: every
/// `data: {"response": X, "traceId": …}` leaves as `data: X`.
#[derive(Debug, Default)]
pub struct StreamUnwrapper {
    decoder: SseDecoder,
}

impl StreamUnwrapper {
    pub fn new() -> Self {
        Self::default()
    }

    /// The unwrapped events these bytes complete. An event over the decoder's cap ends the
    /// stream with Google's error envelope as its last event; after that, nothing.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        if self.ended() {
            return Vec::new();
        }
        let events = self.decoder.push(bytes);
        let mut out = Self::render(events);
        if self.decoder.overflowed() {
            let err = event_too_large();
            out.extend_from_slice(encode_data(&to_json(&render::gemini_error(&err))).as_bytes());
        }
        out
    }

    /// Whether the stream is over (an event passed the cap): further input is ignored.
    pub fn ended(&self) -> bool {
        self.decoder.overflowed()
    }

    pub fn finish(self) -> Vec<u8> {
        Self::render(self.decoder.finish())
    }

    fn render(events: Vec<crate::domain::sse::SseEvent>) -> Vec<u8> {
        let mut out = String::new();
        for event in events {
            if event.data.is_empty() {
                continue;
            }
            let inner = match serde_json::from_str::<Value>(&event.data) {
                Ok(Value::Object(mut map)) if map.contains_key("response") => map
                    .remove("response")
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
                // Not an envelope (an error event): relayed as it came.
                _ => event.data,
            };
            out.push_str(&encode_data(&inner));
        }
        out.into_bytes()
    }
}

/// Whether Code Assist can serve a `GenerateContentRequest`: it refuses
/// more than one candidate, so such a request is left to the API keys.
pub fn code_assist_can_serve(request: &Value) -> bool {
    serves_candidates(
        request
            .pointer("/generationConfig/candidateCount")
            .and_then(Value::as_u64),
    )
}

/// Whether Code Assist serves a request asking for `candidate_count` candidates.
pub fn serves_candidates(candidate_count: Option<u64>) -> bool {
    candidate_count.is_none_or(|n| n <= 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_than_one_candidate_is_left_to_the_keys() {
        assert!(code_assist_can_serve(&json!({"contents": []})));
        assert!(code_assist_can_serve(
            &json!({"generationConfig": {"candidateCount": 1}})
        ));
        assert!(!code_assist_can_serve(
            &json!({"generationConfig": {"candidateCount": 2}})
        ));
    }
    use crate::domain::sse::SseDecoder;

    #[test]
    fn the_envelope_carries_model_project_and_prompt_id() {
        let body = wrap_generate(
            "gemini-2.5-pro",
            "p-1",
            "id-1",
            r#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"model":"x"}"#,
        )
        .unwrap();
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["model"], "gemini-2.5-pro");
        assert_eq!(v["project"], "p-1");
        assert_eq!(v["user_prompt_id"], "id-1");
        assert_eq!(v["request"]["contents"][0]["parts"][0]["text"], "hi");
        assert!(v["request"].get("model").is_none());
        assert!(wrap_generate("m", "p", "i", "[1]").is_err());
        assert!(wrap_generate("m", "p", "i", "{").is_err());
    }

    #[test]
    fn count_tokens_nests_the_model_and_contents() {
        let v: Value = serde_json::from_str(
            &wrap_count(
                "gemini-2.5-flash",
                r#"{"generateContentRequest":{"contents":[{"parts":[{"text":"a"}]}]}}"#,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"request": {"model": "models/gemini-2.5-flash", "contents": [{"parts": [{"text": "a"}]}]}})
        );
    }

    #[test]
    fn a_stream_event_past_the_cap_ends_with_googles_error() {
        let mut unwrapper = StreamUnwrapper::new();
        let first = unwrapper.push(b"data: {\"response\": {\"a\": 1}}\r\n\r\n");
        assert_eq!(first, b"data: {\"a\":1}\n\n");
        let out = unwrapper.push(&vec![b'x'; crate::domain::sse::MAX_EVENT_BYTES + 1]);
        assert!(unwrapper.ended());
        let mut d = SseDecoder::new();
        let events = d.push(&out);
        assert_eq!(events.len(), 1);
        let err: Value = serde_json::from_str(&events[0].data).unwrap();
        assert_eq!(err["error"]["code"], 502);
        assert_eq!(err["error"]["status"], "UNAVAILABLE");
        assert!(unwrapper.push(b"data: {}\n\n").is_empty());
    }

    #[test]
    fn answers_lose_their_wrapper_and_errors_stay() {
        let out = unwrap_body(br#"{"response": {"candidates": []}, "traceId": "t"}"#);
        assert_eq!(
            serde_json::from_slice::<Value>(&out).unwrap(),
            json!({"candidates": []})
        );
        assert_eq!(
            unwrap_body(br#"{"error": {"code": 400}}"#),
            br#"{"error": {"code": 400}}"#.to_vec()
        );
        assert_eq!(unwrap_body(b"not json"), b"not json".to_vec());
    }

    #[test]
    fn streams_unwrap_at_every_split() {
        let stream = "data: {\"response\": {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"he\"}]}}]}, \"traceId\": \"t\"}\r\n\r\n\
                      data: {\"response\": {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"llo\"}]}, \"finishReason\": \"STOP\"}]}, \"traceId\": \"t\"}\r\n\r\n";
        let bytes = stream.as_bytes();
        for split in 0..bytes.len() {
            let mut u = StreamUnwrapper::new();
            let mut out = u.push(&bytes[..split]);
            out.extend(u.push(&bytes[split..]));
            out.extend(u.finish());
            let mut d = SseDecoder::new();
            let events: Vec<Value> = d
                .push(&out)
                .into_iter()
                .map(|e| serde_json::from_str(&e.data).unwrap())
                .collect();
            assert_eq!(events.len(), 2, "split at {split}");
            assert_eq!(
                events[0]["candidates"][0]["content"]["parts"][0]["text"],
                "he"
            );
            assert_eq!(events[1]["candidates"][0]["finishReason"], "STOP");
            assert!(events.iter().all(|e| e.get("traceId").is_none()));
        }
    }
}
