use serde_json::{Value, json};

use super::*;
use crate::domain::error::GatewayError;
use crate::domain::gemini::GenerateContentResponse;
use crate::domain::render::anthropic_error;
use crate::domain::translate::chat::{ChatOptions, prepare_chat};
use crate::domain::translate::stream::SsePipeline;

fn prepare(body: &Value) -> (gemini::GenerateContentRequest, MessagesPlan) {
    let (chat, plan) = to_chat_request(body.to_string().as_bytes(), false).unwrap();
    let mut prepared = prepare_chat(chat, &ChatOptions::default()).unwrap();
    apply_signatures(&mut prepared.body, &plan.signatures);
    (prepared.body, plan)
}

fn ctx() -> MessagesContext {
    MessagesContext {
        id: "msg_abc".into(),
        model: "claude-sonnet-4-5".into(),
        ..MessagesContext::default()
    }
}

fn err_of(body: &Value) -> GatewayError {
    to_chat_request(body.to_string().as_bytes(), false).unwrap_err()
}

#[test]
fn system_blocks_images_documents_and_sampling_become_the_gemini_request() {
    let (body, plan) = prepare(&json!({
        "model": "gemini-2.5-flash",
        "max_tokens": 64,
        "system": [{"type": "text", "text": "be brief"}, {"type": "text", "text": "and kind"}],
        "temperature": 0.5, "top_p": 0.9, "top_k": 7,
        "stop_sequences": ["END"],
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "look"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
        ]}],
    }));
    let wire = serde_json::to_value(&body).unwrap();
    assert_eq!(
        wire["systemInstruction"]["parts"][0]["text"],
        "be brief\n\nand kind"
    );
    let parts = &wire["contents"][0]["parts"];
    assert_eq!(parts[0]["text"], "look");
    assert_eq!(parts[1]["inlineData"]["mimeType"], "image/png");
    assert_eq!(parts[2]["inlineData"]["mimeType"], "application/pdf");
    let config = &wire["generationConfig"];
    assert_eq!(config["maxOutputTokens"], 64);
    assert_eq!(config["temperature"], 0.5);
    assert_eq!(config["topK"], 7);
    // The gateway cuts at stop sequences itself, so Gemini never hears of them.
    assert!(config.get("stopSequences").is_none(), "{config}");
    assert_eq!(plan.stop_sequences, ["END"]);
}

#[test]
fn a_url_image_is_left_to_the_edges_fetch_guard() {
    let (chat, _) = to_chat_request(
        json!({"model": "gemini-2.5-flash", "max_tokens": 5, "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}]}]})
        .to_string()
        .as_bytes(),
        false,
    )
    .unwrap();
    let prepared = prepare_chat(chat, &ChatOptions::default()).unwrap();
    assert_eq!(prepared.remote_media.len(), 1);
    assert_eq!(prepared.remote_media[0].url, "https://example.com/a.png");
}

#[test]
fn a_tool_loop_keeps_ids_names_results_and_the_signature() {
    let (body, _) = prepare(&json!({
        "model": "gemini-3-pro-preview",
        "max_tokens": 100,
        "tools": [
            {"name": "get_weather", "description": "w", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
            {"name": "get_time", "input_schema": {"type": "object"}},
        ],
        "tool_choice": {"type": "any"},
        "messages": [
            {"role": "user", "content": "weather and time?"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "SIG1"},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "{\"temp\": 20}"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "noon"}]},
            ]},
        ],
    }));
    let wire = serde_json::to_value(&body).unwrap();
    let model = &wire["contents"][1]["parts"];
    assert_eq!(model[0]["functionCall"]["name"], "get_weather");
    assert_eq!(model[0]["functionCall"]["id"], "toolu_1");
    assert_eq!(model[0]["functionCall"]["args"], json!({"city": "Paris"}));
    assert_eq!(model[0]["thoughtSignature"], "SIG1");
    assert!(model[1].get("thoughtSignature").is_none());
    let results = &wire["contents"][2]["parts"];
    assert_eq!(
        results[0]["functionResponse"]["response"],
        json!({"temp": 20})
    );
    assert_eq!(results[1]["functionResponse"]["name"], "get_time");
    assert_eq!(
        results[1]["functionResponse"]["response"],
        json!({"output": "noon"})
    );
    assert_eq!(
        wire["toolConfig"]["functionCallingConfig"]["mode"], "ANY",
        "{wire}"
    );
}

#[test]
fn tool_choice_maps_every_type() {
    for (choice, mode) in [
        (json!({"type": "auto"}), "AUTO"),
        (json!({"type": "none"}), "NONE"),
        (json!({"type": "tool", "name": "f"}), "ANY"),
    ] {
        let (body, _) = prepare(&json!({
            "model": "gemini-2.5-flash", "max_tokens": 5,
            "tools": [{"name": "f", "input_schema": {"type": "object"}}],
            "tool_choice": choice,
            "messages": [{"role": "user", "content": "x"}],
        }));
        let wire = serde_json::to_value(&body).unwrap();
        assert_eq!(wire["toolConfig"]["functionCallingConfig"]["mode"], mode);
    }
}

#[test]
fn thinking_maps_to_geminis_thinking_config() {
    let (body, _) = prepare(&json!({
        "model": "gemini-2.5-flash", "max_tokens": 5000,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "messages": [{"role": "user", "content": "x"}],
    }));
    let config = serde_json::to_value(body.generation_config.unwrap()).unwrap();
    assert_eq!(config["thinkingConfig"]["thinkingBudget"], 2048);
    assert_eq!(config["thinkingConfig"]["includeThoughts"], true);
    let (body, _) = prepare(&json!({
        "model": "gemini-2.5-flash", "max_tokens": 5,
        "thinking": {"type": "disabled"},
        "messages": [{"role": "user", "content": "x"}],
    }));
    let config = serde_json::to_value(body.generation_config.unwrap()).unwrap();
    assert_eq!(config["thinkingConfig"]["thinkingBudget"], 0);
}

#[test]
fn a_text_turns_signature_goes_back_on_its_text() {
    let (body, _) = prepare(&json!({
        "model": "gemini-3-pro-preview", "max_tokens": 5,
        "messages": [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "", "signature": "S"},
                {"type": "text", "text": "b"}]},
            {"role": "user", "content": "c"},
        ],
    }));
    assert_eq!(
        body.contents[1].parts[0].thought_signature.as_deref(),
        Some("S")
    );
}

#[test]
fn bad_bodies_name_the_field() {
    let cases = [
        (json!({"max_tokens": 5, "messages": []}), "model"),
        (json!({"model": "m", "messages": []}), "max_tokens"),
        (json!({"model": "m", "max_tokens": 5}), "messages"),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "bot", "content": "x"}]}),
            "messages[0].role",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "thinking": {"type": "enabled"}, "messages": [{"role": "user", "content": "x"}]}),
            "thinking.budget_tokens",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "tools": [{"type": "web_search_20250305", "name": "w"}], "messages": [{"role": "user", "content": "x"}]}),
            "tools[0].type",
        ),
    ];
    for (body, param) in cases {
        match err_of(&body) {
            GatewayError::InvalidRequest { param: p, .. } => {
                assert_eq!(p.as_deref(), Some(param), "{body}");
            }
            other => panic!("{body}: {other:?}"),
        }
    }
    assert_eq!(
        to_chat_request(b"not json", false).unwrap_err().status(),
        400
    );
    // count_tokens needs no max_tokens.
    assert!(
        to_chat_request(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}]})
                .to_string()
                .as_bytes(),
            true
        )
        .is_ok()
    );
}

fn answer(v: &Value) -> GenerateContentResponse {
    serde_json::from_value(v.clone()).unwrap()
}

#[test]
fn a_whole_answer_has_thinking_with_the_signature_then_text_and_tools() {
    let out = messages_response(
        &answer(&json!({
            "candidates": [{"content": {"role": "model", "parts": [
                {"text": "pondering", "thought": true},
                {"text": "Let me check."},
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "SIG"},
            ]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "thoughtsTokenCount": 7, "totalTokenCount": 22},
        })),
        &ctx(),
    );
    assert_eq!(out["type"], "message");
    assert_eq!(out["model"], "claude-sonnet-4-5");
    assert_eq!(out["stop_reason"], "tool_use");
    let content = out["content"].as_array().unwrap();
    assert_eq!(
        content[0],
        json!({"type": "thinking", "thinking": "pondering", "signature": "SIG"})
    );
    assert_eq!(content[1], json!({"type": "text", "text": "Let me check."}));
    assert_eq!(content[2]["type"], "tool_use");
    assert_eq!(content[2]["id"], "toolu_abc_0");
    assert_eq!(content[2]["input"], json!({"city": "Paris"}));
    assert_eq!(out["usage"]["input_tokens"], 10);
    assert_eq!(out["usage"]["output_tokens"], 12);
}

#[test]
fn stop_reasons_follow_the_answer() {
    let text = |finish: &str| {
        answer(
            &json!({"candidates": [{"content": {"parts": [{"text": "one two END three"}]}, "finishReason": finish}]}),
        )
    };
    assert_eq!(
        messages_response(&text("STOP"), &ctx())["stop_reason"],
        "end_turn"
    );
    assert_eq!(
        messages_response(&text("MAX_TOKENS"), &ctx())["stop_reason"],
        "max_tokens"
    );
    assert_eq!(
        messages_response(&text("SAFETY"), &ctx())["stop_reason"],
        "refusal"
    );
    let mut stopping = ctx();
    stopping.stop_sequences = vec!["nope".into(), "END".into()];
    let out = messages_response(&text("STOP"), &stopping);
    assert_eq!(out["stop_reason"], "stop_sequence");
    assert_eq!(out["stop_sequence"], "END");
    assert_eq!(out["content"][0]["text"], "one two ");
    let blocked = answer(&json!({"promptFeedback": {"blockReason": "SAFETY"}}));
    assert_eq!(
        messages_response(&blocked, &ctx())["stop_reason"],
        "refusal"
    );
}

/// `(event name, data)` pairs of an SSE body.
fn events(bytes: &[u8]) -> Vec<(String, Value)> {
    String::from_utf8(bytes.to_vec())
        .unwrap()
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let (name, data) = e.split_once('\n').unwrap();
            (
                name.strip_prefix("event: ").unwrap().to_owned(),
                serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap(),
            )
        })
        .collect()
}

fn run(ctx: MessagesContext, chunks: &[Value]) -> Vec<(String, Value)> {
    let mut pipeline = MessagesSsePipeline::new(ctx);
    let mut out = Vec::new();
    for chunk in chunks {
        out.extend(pipeline.push(format!("data: {chunk}\r\n\r\n").as_bytes()));
    }
    out.extend(pipeline.finish());
    events(&out)
}

#[test]
fn a_stream_follows_anthropics_event_sequence() {
    let got = run(
        ctx(),
        &[
            json!({"candidates": [{"content": {"parts": [{"text": "hm", "thought": true}]}}], "usageMetadata": {"promptTokenCount": 4}}),
            json!({"candidates": [{"content": {"parts": [{"text": "Hel"}]}}]}),
            json!({"candidates": [{"content": {"parts": [{"text": "lo"}, {"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": "SIG"}]}, "finishReason": "STOP"}],
                "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 3, "thoughtsTokenCount": 2}}),
        ],
    );
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    assert_eq!(got[0].1["message"]["usage"]["input_tokens"], 4);
    assert_eq!(got[2].1["content_block"]["type"], "thinking");
    assert_eq!(got[5].1["content_block"]["type"], "text");
    assert_eq!(got[6].1["delta"]["text"], "Hel");
    // The call's signature rides on a thinking block of its own, before the call.
    assert_eq!(got[9].1["content_block"]["type"], "thinking");
    assert_eq!(
        got[10].1["delta"],
        json!({"type": "signature_delta", "signature": "SIG"})
    );
    assert_eq!(got[12].1["content_block"]["type"], "tool_use");
    assert_eq!(got[12].1["index"], 3);
    assert_eq!(got[13].1["delta"]["partial_json"], "{\"a\":1}");
    assert_eq!(got[15].1["delta"]["stop_reason"], "tool_use");
    assert_eq!(got[15].1["usage"]["output_tokens"], 5);
    for (i, (name, data)) in got.iter().enumerate() {
        assert_eq!(data["type"], name.as_str(), "event {i}");
    }
}

#[test]
fn a_signature_on_thoughts_closes_the_thinking_block() {
    let got = run(
        ctx(),
        &[
            json!({"candidates": [{"content": {"parts": [{"text": "hm", "thought": true}]}}]}),
            json!({"candidates": [{"content": {"parts": [{"text": "answer", "thoughtSignature": "TS"}]}, "finishReason": "STOP"}]}),
        ],
    );
    let deltas: Vec<&Value> = got
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .map(|(_, d)| &d["delta"])
        .collect();
    assert_eq!(deltas[0]["thinking"], "hm");
    assert_eq!(deltas[1]["signature"], "TS");
    assert_eq!(deltas[2]["text"], "answer");
    assert_eq!(got.last().unwrap().0, "message_stop");
}

#[test]
fn a_streamed_stop_sequence_split_across_chunks_is_cut() {
    let mut stopping = ctx();
    stopping.stop_sequences = vec!["STOP!".into()];
    let got = run(
        stopping,
        &[
            json!({"candidates": [{"content": {"parts": [{"text": "abc ST"}]}}]}),
            json!({"candidates": [{"content": {"parts": [{"text": "OP! more"}]}}]}),
            json!({"candidates": [{"content": {"parts": [{"text": "and more"}]}, "finishReason": "STOP"}]}),
        ],
    );
    let text: String = got
        .iter()
        .filter_map(|(_, d)| d["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "abc ");
    let delta = &got[got.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "stop_sequence");
    assert_eq!(delta["delta"]["stop_sequence"], "STOP!");
}

#[test]
fn a_truncated_stream_ends_with_an_error_event() {
    let got = run(
        ctx(),
        &[json!({"candidates": [{"content": {"parts": [{"text": "a"}]}}]})],
    );
    let (name, data) = got.last().unwrap();
    assert_eq!(name, "error");
    assert_eq!(data["type"], "error");
    assert_eq!(data["error"]["type"], "api_error");
    let mut pipeline = MessagesSsePipeline::new(ctx());
    let out =
        events(&pipeline.push(b"data: {\"error\":{\"code\":429,\"message\":\"slow down\"}}\n\n"));
    assert_eq!(out[0].1["error"]["type"], "rate_limit_error");
}

#[test]
fn errors_take_anthropics_documented_types() {
    for (err, kind) in [
        (GatewayError::invalid("x"), "invalid_request_error"),
        (
            GatewayError::Unauthorized("x".into()),
            "authentication_error",
        ),
        (GatewayError::Forbidden("x".into()), "permission_error"),
        (GatewayError::ModelNotFound("m".into()), "not_found_error"),
        (
            GatewayError::RateLimited {
                message: "x".into(),
                retry_after_secs: None,
            },
            "rate_limit_error",
        ),
        (GatewayError::BadGateway("x".into()), "api_error"),
        (GatewayError::NoKeysConfigured, "overloaded_error"),
        (GatewayError::Internal("secret".into()), "api_error"),
    ] {
        let body = anthropic_error(&err);
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], kind, "{err:?}");
        assert!(body["error"]["message"].is_string());
    }
}

#[test]
fn count_tokens_sends_the_whole_generate_request() {
    let (body, _) = prepare(&json!({
        "model": "gemini-2.5-flash", "max_tokens": 5, "system": "sys",
        "tools": [{"name": "f", "input_schema": {"type": "object"}}],
        "messages": [{"role": "user", "content": "x"}],
    }));
    let wire: Value =
        serde_json::from_str(&count_tokens_body("gemini-2.5-flash", &body).unwrap()).unwrap();
    let inner = &wire["generateContentRequest"];
    assert_eq!(inner["model"], "models/gemini-2.5-flash");
    assert_eq!(inner["systemInstruction"]["parts"][0]["text"], "sys");
    assert!(inner["tools"].is_array());
    assert_eq!(
        count_tokens_response(&json!({"totalTokens": 42})),
        Some(json!({"input_tokens": 42}))
    );
}
