use serde_json::{Value, json};

use super::*;
use crate::domain::openai::ChatMessage;
use crate::domain::translate::chat::{ChatContext, ReplyPlan};

fn parse(body: &Value) -> Result<request::ParsedResponses, crate::domain::error::GatewayError> {
    parse_request(body.to_string().as_bytes())
}

fn param(err: &crate::domain::error::GatewayError) -> Option<String> {
    err.openai_param().map(str::to_owned)
}

fn meta() -> ResponseMeta {
    let parsed = parse(&json!({"model": "m", "input": "hi"})).unwrap();
    ResponseMeta {
        id: "resp_abc".into(),
        created_at: 7,
        model: "m".into(),
        echo: prepare(parsed, Vec::new()).unwrap().echo,
    }
}

fn ctx() -> ChatContext {
    ChatContext {
        id: "chatcmpl-abc".into(),
        created: 7,
        model: "m".into(),
        reply: ReplyPlan::default(),
    }
}

#[test]
fn a_string_input_is_one_user_message_after_the_instructions() {
    let parsed =
        parse(&json!({"model": "m", "input": "hello", "instructions": "Be brief."})).unwrap();
    assert!(parsed.store, "store defaults to true");
    let prepared = prepare(parsed, Vec::new()).unwrap();
    let roles: Vec<_> = prepared
        .chat
        .messages
        .iter()
        .map(ChatMessage::role)
        .collect();
    assert_eq!(roles.len(), 2);
    assert_eq!(roles[0].as_str(), "system");
    assert_eq!(roles[1].as_str(), "user");
    assert_eq!(
        prepared.conversation.len(),
        1,
        "instructions are not part of the conversation"
    );
}

#[test]
fn bad_input_names_the_field() {
    let cases = [
        (json!({"input": "x"}), "model"),
        (json!({"model": 5, "input": "x"}), "model"),
        (json!({"model": "m", "input": 5}), "input"),
        (
            json!({"model": "m", "input": [{"type": "bogus"}]}),
            "input[0].type",
        ),
        (
            json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_audio"}]}]}),
            "input[0].content[0].type",
        ),
        (
            json!({"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{nope"}]}),
            "input[0].arguments",
        ),
        (json!({"model": "m", "input": "x", "store": "yes"}), "store"),
        (
            json!({"model": "m", "input": "x", "background": true}),
            "background",
        ),
    ];
    for (body, want) in cases {
        let err = parse(&body).expect_err(&body.to_string());
        assert_eq!(err.status(), 400, "{body}");
        assert_eq!(param(&err).as_deref(), Some(want), "{body}: {err:?}");
    }
}

#[test]
fn built_in_tools_and_orphan_outputs_are_refused() {
    let parsed =
        parse(&json!({"model": "m", "input": "x", "tools": [{"type": "web_search"}]})).unwrap();
    let err = prepare(parsed, Vec::new()).unwrap_err();
    assert_eq!(param(&err).as_deref(), Some("tools[0].type"));
    assert!(err.client_message().contains("web_search"));
    let parsed = parse(&json!({"model": "m", "input": [
        {"type": "function_call_output", "call_id": "nope", "output": "r"}
    ]}))
    .unwrap();
    let err = prepare(parsed, Vec::new()).unwrap_err();
    assert_eq!(param(&err).as_deref(), Some("input[0].call_id"));
}

#[test]
fn a_tool_loop_continues_the_history_as_chat_messages() {
    let history = vec![
        Item::Message {
            id: None,
            role: MessageRole::User,
            content: ItemContent::Text("weather?".into()),
            status: None,
        },
        Item::Reasoning {
            id: Some("rs_1".into()),
            summary: vec![SummaryText::new("thinking".into())],
            encrypted_content: None,
        },
        Item::FunctionCall {
            id: Some("fc_1".into()),
            call_id: "call_1__thought__c2ln".into(),
            name: "get_weather".into(),
            arguments: "{\"city\":\"Paris\"}".into(),
            status: Some("completed".into()),
        },
        Item::FunctionCall {
            id: Some("fc_2".into()),
            call_id: "call_2".into(),
            name: "get_time".into(),
            arguments: "{}".into(),
            status: None,
        },
    ];
    let parsed = parse(&json!({"model": "m", "input": [
        {"type": "function_call_output", "call_id": "call_1__thought__c2ln", "output": "21C"},
        {"type": "function_call_output", "call_id": "call_2", "output": "14:05"},
    ], "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}],
       "tool_choice": {"type": "function", "name": "get_weather"}}))
    .unwrap();
    let prepared = prepare(parsed, history).unwrap();
    let chat = serde_json::to_value(&prepared.chat).unwrap();
    let messages = chat["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 4, "{messages:?}");
    assert_eq!(
        messages[1]["tool_calls"].as_array().unwrap().len(),
        2,
        "parallel calls are one turn"
    );
    assert_eq!(messages[1]["tool_calls"][0]["id"], "call_1__thought__c2ln");
    assert_eq!(messages[2]["role"], "tool");
    assert_eq!(chat["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(
        chat["tool_choice"],
        json!({"type": "function", "function": {"name": "get_weather"}})
    );
    assert_eq!(prepared.conversation.len(), 6);
}

#[test]
fn text_format_and_reasoning_map_to_chat() {
    let parsed = parse(&json!({"model": "m", "input": "x",
        "text": {"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": true}},
        "reasoning": {"effort": "low", "summary": "auto"}, "max_output_tokens": 50}))
    .unwrap();
    let prepared = prepare(parsed, Vec::new()).unwrap();
    assert!(prepared.wants_summary);
    let chat = serde_json::to_value(&prepared.chat).unwrap();
    assert_eq!(chat["response_format"]["type"], "json_schema");
    assert_eq!(chat["response_format"]["json_schema"]["name"], "out");
    assert_eq!(chat["reasoning_effort"], "low");
    assert_eq!(chat["max_completion_tokens"], 50);
    assert_eq!(prepared.echo.text["format"]["name"], "out");
}

/// Gemini SSE bytes of the given responses.
fn sse(events: &[Value]) -> Vec<u8> {
    let mut out = String::new();
    for e in events {
        out.push_str("data: ");
        out.push_str(&e.to_string());
        out.push_str("\r\n\r\n");
    }
    out.into_bytes()
}

fn events(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8(bytes.to_vec())
        .unwrap()
        .split("\n\n")
        .filter_map(|block| block.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

#[test]
fn a_stream_follows_the_documented_event_order() {
    let mut pipeline = ResponsesSsePipeline::new(ctx(), meta());
    let mut out = pipeline.push(&sse(&[
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "plan", "thought": true}]}}]}),
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}}]}),
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "lo"}]}}]}),
        json!({"candidates": [{"content": {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": "c2ln"}]}, "finishReason": "STOP"}],
               "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4, "totalTokenCount": 7}}),
    ]));
    let (tail, done) = pipeline.finish();
    out.extend(tail);
    let events = events(&out);
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let seqs: Vec<u64> = events
        .iter()
        .map(|e| e["sequence_number"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
    let done = done.expect("a finished stream has a response to store");
    assert_eq!(done.status, "completed");
    assert_eq!(done.output.len(), 3);
    let last = events.last().unwrap();
    assert_eq!(last["response"]["output"][1]["content"][0]["text"], "Hello");
    assert_eq!(last["response"]["usage"]["total_tokens"], 7);
    let call = &last["response"]["output"][2];
    assert_eq!(call["type"], "function_call");
    assert!(
        call["call_id"]
            .as_str()
            .unwrap()
            .ends_with("__thought__c2ln"),
        "{call}"
    );
    assert_eq!(call["arguments"], "{\"a\":1}");
}

#[test]
fn a_truncated_stream_fails_and_stores_nothing() {
    let mut pipeline = ResponsesSsePipeline::new(ctx(), meta());
    let out = pipeline.push(&sse(&[
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}}]}),
    ]));
    let (tail, done) = pipeline.finish();
    assert!(done.is_none());
    let all = events(&[out, tail].concat());
    assert_eq!(all.last().unwrap()["type"], "response.failed");
    assert_eq!(all.last().unwrap()["response"]["status"], "failed");
}

#[test]
fn a_length_cut_is_incomplete() {
    let chat: crate::domain::openai::ChatCompletion = serde_json::from_value(json!({
        "id": "chatcmpl-abc", "object": "chat.completion", "created": 7, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "par"}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    }))
    .unwrap();
    let out = from_chat(chat, &meta());
    assert_eq!(out.status, "incomplete");
    assert_eq!(
        out.incomplete_details,
        Some(json!({"reason": "max_output_tokens"}))
    );
    assert_eq!(out.usage.unwrap().output_tokens, 2);
}

#[test]
fn scopes_differ_per_user_and_static_tokens_share_one() {
    assert_eq!(scope_of(None), scope_of(None));
    assert_ne!(scope_of(Some("u_1")), scope_of(Some("u_2")));
    assert_ne!(scope_of(Some("u_1")), scope_of(None));
    assert_eq!(not_found("resp_x").status(), 404);
}

#[test]
fn output_items_sent_back_as_input_continue_statelessly() {
    let chat: crate::domain::openai::ChatCompletion = serde_json::from_value(json!({
        "id": "chatcmpl-abc", "object": "chat.completion", "created": 7, "model": "m",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Let me look.", "reasoning_content": "thinking",
            "tool_calls": [{"id": "call_1__thought__c2ln", "type": "function",
                            "function": {"name": "f", "arguments": "{\"a\":1}"}}]}}]
    }))
    .unwrap();
    let first = from_chat(chat, &meta());
    let kinds: Vec<_> = first
        .output
        .iter()
        .map(|item| serde_json::to_value(item).unwrap()["type"].clone())
        .collect();
    assert_eq!(
        kinds,
        [json!("reasoning"), json!("message"), json!("function_call")]
    );
    // What an SDK client does: the whole output, then the tool's result, as the next input.
    let mut input: Vec<Value> = first
        .output
        .iter()
        .map(|item| serde_json::to_value(item).unwrap())
        .collect();
    input.insert(0, json!({"role": "user", "content": "go"}));
    input.push(
        json!({"type": "function_call_output", "call_id": "call_1__thought__c2ln", "output": "42"}),
    );
    let parsed = parse(&json!({"model": "m", "input": input})).unwrap();
    let chat = serde_json::to_value(prepare(parsed, Vec::new()).unwrap().chat).unwrap();
    let roles: Vec<_> = chat["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].clone())
        .collect();
    assert_eq!(
        roles,
        [
            json!("user"),
            json!("assistant"),
            json!("assistant"),
            json!("tool")
        ]
    );
    assert_eq!(
        chat["messages"][2]["tool_calls"][0]["id"],
        "call_1__thought__c2ln"
    );
}
