//! The compatibility switches through chat translation: what `prepare_chat` sends with a
//! [`Compat`], and how responses and streams show thoughts, citations and code.

use serde_json::{Value, json};

use super::*;
use crate::domain::compat::{InjectPosition, PromptInjection};
use crate::domain::error::GatewayError;
use crate::domain::translate::stream::ChatStreamTranslator;

#[expect(clippy::needless_pass_by_value, reason = "called with json! literals")]
fn prepare_with(body: Value, compat: &Compat) -> Result<PreparedChat, GatewayError> {
    let req = parse_chat_request(body.to_string().as_bytes())?;
    prepare_chat(
        req,
        &ChatOptions {
            compat: Some(compat),
            ..ChatOptions::default()
        },
    )
}

fn sent(body: Value, compat: &Compat) -> Value {
    serde_json::to_value(prepare_with(body, compat).unwrap().body).unwrap()
}

fn quiet() -> Compat {
    Compat {
        default_safety_settings: Vec::new(),
        ..Compat::default()
    }
}

#[test]
fn system_and_developer_messages_go_as_a_leading_user_turn_for_gemma() {
    let body = json!({"model": "gemma-3-27b-it", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "developer", "content": [{"type": "text", "text": "no emoji"}]},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "yo"},
        {"role": "user", "content": "again"}
    ]});
    let out = sent(body.clone(), &quiet());
    assert!(out.get("systemInstruction").is_none(), "{out}");
    assert_eq!(
        out["contents"],
        json!([
            {"role": "user", "parts": [{"text": "be brief\n\nno emoji\n\n"}, {"text": "hi"}]},
            {"role": "model", "parts": [{"text": "yo"}]},
            {"role": "user", "parts": [{"text": "again"}]}
        ])
    );
    // A model-first conversation gets a user turn of its own.
    let out = sent(
        json!({"model": "gemma-3-27b-it", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "hi"}
        ]}),
        &quiet(),
    );
    let roles: Vec<&str> = out["contents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "model", "user"]);
    assert_eq!(out["contents"][0]["parts"], json!([{"text": "be brief"}]));
    // Other models, or with the switch emptied, keep systemInstruction.
    let mut gemini = body.clone();
    gemini["model"] = json!("gemini-2.5-flash");
    assert_eq!(
        sent(gemini, &quiet())["systemInstruction"],
        json!({"parts": [{"text": "be brief"}, {"text": "no emoji"}]})
    );
    let off = Compat {
        system_as_user_models: Vec::new(),
        ..quiet()
    };
    assert!(sent(body, &off).get("systemInstruction").is_some());
}

#[test]
fn injections_reach_the_system_instruction_and_the_last_user_text() {
    let row = |position, text: &str| PromptInjection {
        pattern: "gemini-2.5-*".into(),
        position,
        text: text.into(),
    };
    let compat = Compat {
        prompt_injection: vec![
            row(InjectPosition::System, "SYS"),
            row(InjectPosition::Prefix, "PRE"),
            row(InjectPosition::Suffix, "SUF"),
        ],
        ..quiet()
    };
    let out = sent(
        json!({"model": "gemini-2.5-flash-search", "messages": [
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "two"}
        ]}),
        &compat,
    );
    assert_eq!(
        out["systemInstruction"],
        json!({"parts": [{"text": "SYS"}]})
    );
    assert_eq!(out["contents"][0]["parts"][0]["text"], "one");
    assert_eq!(out["contents"][2]["parts"][0]["text"], "PRE\n\ntwo\n\nSUF");
    // For a system-as-user model the system row goes where the system prompt goes.
    let gemma = Compat {
        prompt_injection: vec![PromptInjection {
            pattern: "gemma-*".into(),
            ..row(InjectPosition::System, "SYS")
        }],
        ..quiet()
    };
    let out = sent(
        json!({"model": "gemma-3-27b-it", "messages": [
            {"role": "system", "content": "rules"},
            {"role": "user", "content": "q"}
        ]}),
        &gemma,
    );
    assert!(out.get("systemInstruction").is_none());
    assert_eq!(
        out["contents"][0]["parts"],
        json!([{"text": "rules\n\nSYS\n\n"}, {"text": "q"}])
    );
    // A model no row matches is untouched.
    let out = sent(
        json!({"model": "gemini-2.0-flash", "messages": [{"role": "user", "content": "q"}]}),
        &compat,
    );
    assert!(out.get("systemInstruction").is_none());
    assert_eq!(out["contents"][0]["parts"][0]["text"], "q");
}

#[test]
fn default_safety_settings_apply_unless_the_client_sends_its_own() {
    let compat = Compat::default();
    let defaults = serde_json::to_value(&compat.default_safety_settings).unwrap();
    let base = json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "q"}]});
    assert_eq!(sent(base.clone(), &compat)["safetySettings"], defaults);
    let own = json!([{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}]);
    for (key, value) in [
        ("extra_body", json!({"google": {"safety_settings": own}})),
        ("google", json!({"safetySettings": own})),
        ("safety_settings", own.clone()),
        ("safetySettings", own.clone()),
    ] {
        let mut body = base.clone();
        body[key] = value;
        let p = prepare_with(body, &compat).unwrap();
        assert_eq!(
            serde_json::to_value(&p.body).unwrap()["safetySettings"],
            own,
            "{key}"
        );
        assert!(p.ignored.is_empty(), "{key}: {:?}", p.ignored);
    }
    // An empty list from the client, or from the operator, sends nothing.
    let mut body = base.clone();
    body["safety_settings"] = json!([]);
    assert!(sent(body, &compat).get("safetySettings").is_none());
    assert!(sent(base.clone(), &quiet()).get("safetySettings").is_none());
    // A malformed list is a 400 naming it.
    let mut body = base;
    body["safety_settings"] = json!([{"category": 1}]);
    let err = prepare_with(body, &compat).unwrap_err();
    assert_eq!(err.openai_param(), Some("safety_settings"), "{err:?}");
}

#[test]
fn code_execution_and_url_context_tools() {
    let tools = |model: &str, compat: &Compat| {
        sent(
            json!({"model": model, "messages": [{"role": "user", "content": "q"}]}),
            compat,
        )["tools"]
            .clone()
    };
    assert_eq!(
        tools("gemini-2.5-flash-code", &quiet()),
        json!([{"codeExecution": {}}])
    );
    assert_eq!(
        tools("gemini-2.5-flash-search-urlcontext-code", &quiet()),
        json!([{"googleSearch": {}}, {"codeExecution": {}}, {"urlContext": {}}])
    );
    assert_eq!(
        tools("gemini-3-flash-preview-urlcontext", &quiet()),
        json!([{"urlContext": {}}])
    );
    let by_glob = Compat {
        code_execution_models: vec!["gemini-2.5-pro*".into()],
        url_context_models: vec!["*".into()],
        ..quiet()
    };
    assert_eq!(
        tools("gemini-2.5-pro", &by_glob),
        json!([{"codeExecution": {}}, {"urlContext": {}}])
    );
    // A glob adds URL context only where it works; the suffix on such a model is a 400.
    assert_eq!(tools("gemini-2.0-flash", &by_glob), Value::Null);
    let err = prepare_with(
        json!({"model": "gemini-2.0-flash-urlcontext", "messages": [{"role": "user", "content": "q"}]}),
        &quiet(),
    )
    .unwrap_err();
    assert_eq!(err.status(), 400);
    assert_eq!(err.openai_param(), Some("model"));
    assert!(err.client_message().contains("gemini-2.0-flash"), "{err:?}");
    // Function tools come first, built-in tools after.
    let out = sent(
        json!({"model": "gemini-2.5-flash-code", "messages": [{"role": "user", "content": "q"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]}),
        &quiet(),
    );
    assert_eq!(out["tools"][1], json!({"codeExecution": {}}));
    assert!(out["tools"][0]["functionDeclarations"].is_array());
}

#[test]
fn new_suffixes_reach_the_thinking_config() {
    let config = |model: &str| {
        sent(
            json!({"model": model, "messages": [{"role": "user", "content": "q"}]}),
            &quiet(),
        )["generationConfig"]["thinkingConfig"]
            .clone()
    };
    assert_eq!(
        config("gemini-2.5-flash-non-thinking"),
        json!({"thinkingBudget": 0})
    );
    assert_eq!(
        config("gemini-2.5-flash-high-search"),
        json!({"thinkingBudget": 24576})
    );
    assert_eq!(
        config("gemini-2.5-pro-max"),
        json!({"thinkingBudget": 32768})
    );
    assert_eq!(
        config("gemini-3-flash-preview-minimal"),
        json!({"thinkingLevel": "minimal"})
    );
    let p = prepare_with(
        json!({"model": "gemini-3-pro-preview-medium", "messages": [{"role": "user", "content": "q"}]}),
        &quiet(),
    )
    .unwrap();
    assert_eq!(p.upstream_model, "gemini-3-pro-preview");
    assert_eq!(p.adjustments, ["model_suffix=medium->high"]);
}

fn ctx(reply: ReplyPlan) -> ChatContext {
    ChatContext {
        id: "chatcmpl-c1".into(),
        created: 1,
        model: "m".into(),
        reply,
    }
}

fn respond(resp: Value, reply: ReplyPlan) -> Value {
    let resp: gemini::GenerateContentResponse = serde_json::from_value(resp).unwrap();
    serde_json::to_value(chat_response(resp, &ctx(reply)).unwrap()).unwrap()
}

fn thinking_reply() -> Value {
    json!({"candidates": [{"content": {"role": "model", "parts": [
        {"text": "Let me think.", "thought": true},
        {"text": "The answer."}
    ]}, "finishReason": "STOP"}]})
}

#[test]
fn thoughts_in_content_are_wrapped_in_think_tags() {
    let reply = ReplyPlan {
        thoughts_in_content: true,
        ..ReplyPlan::default()
    };
    let out = respond(thinking_reply(), reply.clone());
    let message = &out["choices"][0]["message"];
    assert_eq!(
        message["content"],
        "<think>Let me think.</think>The answer."
    );
    assert!(message.get("reasoning_content").is_none());
    // Off: thoughts stay in reasoning_content.
    let out = respond(thinking_reply(), ReplyPlan::default());
    assert_eq!(
        out["choices"][0]["message"]["reasoning_content"],
        "Let me think."
    );
    // Only thoughts: the block closes at the end.
    let only = json!({"candidates": [{"content": {"parts": [{"text": "hmm", "thought": true}]},
        "finishReason": "MAX_TOKENS"}]});
    assert_eq!(
        respond(only, reply)["choices"][0]["message"]["content"],
        "<think>hmm</think>"
    );
    // A JSON answer keeps its thoughts out of content, so it still parses.
    let p = prepare_with(
        json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "q"}],
            "response_format": {"type": "json_object"}}),
        &Compat {
            thoughts_in_content: true,
            ..quiet()
        },
    )
    .unwrap();
    assert!(!p.reply.thoughts_in_content);
}

/// Chunks of a stream, as JSON.
fn stream(events: &[Value], reply: ReplyPlan) -> Vec<Value> {
    let mut t = ChatStreamTranslator::new(ctx(reply), false);
    let mut out = Vec::new();
    for event in events {
        out.extend(t.on_response(serde_json::from_value(event.clone()).unwrap()));
    }
    out.extend(t.finish().unwrap());
    out.iter()
        .map(|c| serde_json::to_value(c).unwrap())
        .collect()
}

fn deltas(chunks: &[Value], field: &str) -> Vec<String> {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"][field].as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn streamed_thoughts_open_with_the_first_thought_and_close_before_the_answer() {
    let reply = ReplyPlan {
        thoughts_in_content: true,
        ..ReplyPlan::default()
    };
    let part = |text: &str, thought: bool| json!({"candidates": [{"content": {"parts": [{"text": text, "thought": thought}]}}]});
    let last =
        json!({"candidates": [{"content": {"parts": [{"text": "!"}]}, "finishReason": "STOP"}]});
    let chunks = stream(
        &[
            part("a", true),
            part("b", true),
            part("Answer", false),
            last,
        ],
        reply.clone(),
    );
    assert_eq!(
        deltas(&chunks, "content"),
        ["<think>a", "b", "</think>Answer", "!"]
    );
    assert!(deltas(&chunks, "reasoning_content").is_empty());
    let finishes = chunks
        .iter()
        .filter(|c| !c["choices"][0]["finish_reason"].is_null())
        .count();
    assert_eq!(finishes, 1);
    // No answer text: closed before the finish chunk.
    let end = json!({"candidates": [{"content": {"parts": [{"text": "c", "thought": true}]}, "finishReason": "STOP"}]});
    let chunks = stream(&[part("a", true), end], reply);
    assert_eq!(deltas(&chunks, "content"), ["<think>a", "c", "</think>"]);
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    assert_eq!(chunks.last().unwrap()["choices"][0]["delta"], json!({}));
}

fn grounded(text: &str, cited: &[&str]) -> Value {
    let supports: Vec<Value> = cited
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let start = text.find(c).unwrap();
            json!({"segment": {"startIndex": start, "endIndex": start + c.len(), "text": c},
                "groundingChunkIndices": [i]})
        })
        .collect();
    json!({
        "groundingChunks": [
            {"web": {"uri": "https://one.example/", "title": "one.example"}},
            {"web": {"uri": "https://two.example/", "title": "two.example"}}
        ],
        "groundingSupports": supports
    })
}

fn cited_spans(content: &str, annotations: &Value) -> Vec<String> {
    annotations
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let u = &a["url_citation"];
            let index = |key: &str| usize::try_from(u[key].as_u64().unwrap()).unwrap();
            let (start, end) = (index("start_index"), index("end_index"));
            content.chars().skip(start).take(end - start).collect()
        })
        .collect()
}

#[test]
fn grounding_becomes_annotations_with_character_indices_and_an_optional_list() {
    let text = "北京是首都。上海最大。";
    let metadata = grounded(text, &["北京是首都。", "上海最大。"]);
    let resp = json!({"candidates": [{"content": {"parts": [{"text": text}]},
        "finishReason": "STOP", "groundingMetadata": metadata}]});
    let out = respond(resp.clone(), ReplyPlan::default());
    let message = &out["choices"][0]["message"];
    assert_eq!(message["content"], text);
    assert_eq!(
        message["annotations"][1],
        json!({"type": "url_citation", "url_citation": {"url": "https://two.example/",
            "title": "two.example", "start_index": 6, "end_index": 11}})
    );
    assert_eq!(
        cited_spans(text, &message["annotations"]),
        ["北京是首都。", "上海最大。"]
    );
    let listed = respond(
        resp,
        ReplyPlan {
            sources_list: true,
            thoughts_in_content: true,
            ..ReplyPlan::default()
        },
    );
    let content = listed["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(
        content,
        format!(
            "{text}\n\nSources:\n1. [one.example](https://one.example/)\n2. [two.example](https://two.example/)"
        )
    );
    // With a think block ahead, the indices still point at the cited text.
    let thought = json!({"candidates": [{"content": {"parts": [
        {"text": "想一想", "thought": true}, {"text": text}]},
        "finishReason": "STOP", "groundingMetadata": grounded(text, &["上海最大。"])}]});
    let out = respond(
        thought,
        ReplyPlan {
            thoughts_in_content: true,
            ..ReplyPlan::default()
        },
    );
    let message = &out["choices"][0]["message"];
    let content = message["content"].as_str().unwrap();
    assert!(content.starts_with("<think>想一想</think>"));
    assert_eq!(
        cited_spans(content, &message["annotations"]),
        ["上海最大。"]
    );
}

#[test]
fn streamed_grounding_arrives_with_a_delta_before_the_finish() {
    let text = "北京是首都。上海最大。";
    let pieces = ["北京是", "首都。上海", "最大。"];
    let mut events: Vec<Value> = pieces
        .iter()
        .map(|p| json!({"candidates": [{"content": {"parts": [{"text": p}]}}]}))
        .collect();
    events.push(
        json!({"candidates": [{"content": {"parts": [{"text": ""}]}, "finishReason": "STOP",
        "groundingMetadata": grounded(text, &["北京是首都。", "上海最大。"])}]}),
    );
    let reply = ReplyPlan {
        grounded: true,
        sources_list: true,
        ..ReplyPlan::default()
    };
    let chunks = stream(&events, reply);
    let content: String = deltas(&chunks, "content").concat();
    assert!(content.starts_with(text));
    assert!(content.ends_with("\n\nSources:\n1. [one.example](https://one.example/)\n2. [two.example](https://two.example/)"));
    let n = chunks.len();
    let with_annotations: Vec<usize> = (0..n)
        .filter(|i| {
            chunks[*i]["choices"][0]["delta"]
                .get("annotations")
                .is_some()
        })
        .collect();
    assert_eq!(with_annotations, [n - 2], "once, right before the finish");
    let annotations = &chunks[n - 2]["choices"][0]["delta"]["annotations"];
    assert_eq!(
        cited_spans(&content, annotations),
        ["北京是首都。", "上海最大。"]
    );
    assert_eq!(chunks[n - 1]["choices"][0]["finish_reason"], "stop");
}

#[test]
fn code_execution_parts_render_as_fenced_blocks_in_both_modes() {
    let parts = json!([
        {"text": "Let me compute."},
        {"executableCode": {"language": "PYTHON", "code": "print(6 * 7)"}},
        {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "42\n"}},
        {"text": "It is 42."}
    ]);
    let want = "Let me compute.\n```python\nprint(6 * 7)\n```\n\n```output\n42\n\n```\nIt is 42.";
    let out = respond(
        json!({"candidates": [{"content": {"parts": parts}, "finishReason": "STOP"}]}),
        ReplyPlan::default(),
    );
    assert_eq!(out["choices"][0]["message"]["content"], want);
    let events: Vec<Value> = parts
        .as_array()
        .unwrap()
        .iter()
        .map(|p| json!({"candidates": [{"content": {"parts": [p]}}]}))
        .chain([json!({"candidates": [{"finishReason": "STOP"}]})])
        .collect();
    let chunks = stream(&events, ReplyPlan::default());
    assert_eq!(deltas(&chunks, "content").concat(), want);
}
