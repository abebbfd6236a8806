//! Tests of chat translation: parse errors, request translation (messages, media, tools,
//! generation config, response formats) and response translation.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::content::{is_strict_base64, parse_data_url};
use super::ids::split_call_id;
use super::*;
use crate::domain::error::GatewayError;
use crate::domain::gemini;

fn ctx() -> ChatContext {
    ChatContext {
        id: "chatcmpl-abc123".into(),
        created: 1_700_000_000,
        model: "gemini-2.5-flash".into(),
        reply: ReplyPlan::default(),
    }
}

#[expect(clippy::needless_pass_by_value, reason = "called with json! literals")]
fn prepare(body: Value) -> Result<PreparedChat, GatewayError> {
    let req = parse_chat_request(body.to_string().as_bytes())?;
    prepare_chat(req, &ChatOptions::default())
}

fn gemini_body(body: Value) -> Value {
    serde_json::to_value(prepare(body).unwrap().body).unwrap()
}

fn to_value<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap()
}

fn bad(body: Value) -> GatewayError {
    prepare(body).unwrap_err()
}

fn assert_bad(body: Value, param: &str, message_part: &str) {
    let err = bad(body);
    assert_eq!(err.status(), 400, "{err:?}");
    assert_eq!(err.openai_param(), Some(param), "{err:?}");
    assert!(
        err.client_message().contains(message_part),
        "{:?} does not contain {message_part:?}",
        err.client_message()
    );
}

fn respond(resp: Value) -> Value {
    let resp: gemini::GenerateContentResponse = serde_json::from_value(resp).unwrap();
    serde_json::to_value(chat_response(resp, &ctx()).unwrap()).unwrap()
}

const PNG_DATA_URL: &str = "data:image/png;base64,iVBORw0KGgo=";

// -- parsing --------------------------------------------------------------------------

#[test]
fn parse_errors_name_the_failing_message_field() {
    let cases = [
        (
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}, {"role": "user", "content": 5}]}),
            "messages[1].content",
            "messages[1].content: invalid type: integer `5`, expected a string or an array of content parts",
        ),
        (
            json!({"model": "m", "messages": [{"role": "bot", "content": "hi"}]}),
            "messages[0].role",
            "messages[0].role: unsupported role \"bot\"",
        ),
        (
            json!({"model": "m", "messages": [{"content": "hi"}]}),
            "messages[0].role",
            "messages[0].role: this field is required",
        ),
        (
            json!({"model": "m", "messages": [{"role": "user"}]}),
            "messages[0].content",
            "messages[0].content: this field is required",
        ),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "video", "video": {}}]}]}),
            "messages[0].content[0]",
            "unknown variant `video`",
        ),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}),
            "messages[0].content[0].image_url",
            "this field is required",
        ),
        (
            json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]}),
            "messages[0].tool_call_id",
            "this field is required",
        ),
        (
            json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"id": "a", "type": "function"}]}]}),
            "messages[0].tool_calls[0].function",
            "this field is required",
        ),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": null}]}),
            "messages[0].content",
            "expected a string or an array of content parts",
        ),
    ];
    assert_parse_errors(&cases);
}

#[test]
fn parse_errors_name_the_failing_top_level_field() {
    let cases = [
        (
            json!({"messages": []}),
            "model",
            "model: this field is required",
        ),
        (
            json!({"model": "m"}),
            "messages",
            "messages: this field is required",
        ),
        (
            json!({"model": 5, "messages": []}),
            "model",
            "model: invalid type: integer `5`",
        ),
        (
            json!({"model": "m", "messages": {}}),
            "messages",
            "expected an array",
        ),
        (
            json!({"model": "m", "messages": ["hi"]}),
            "messages[0]",
            "expected a message object",
        ),
        (
            json!({"model": "m", "messages": [], "temperature": "hot"}),
            "temperature",
            "temperature: invalid type: string",
        ),
        (
            json!({"model": "m", "messages": [], "max_tokens": -1}),
            "max_tokens",
            "max_tokens: invalid value",
        ),
        (
            json!({"model": "m", "messages": [], "stop": 1}),
            "stop",
            "a string or an array of strings",
        ),
        (
            json!({"model": "m", "messages": [], "stream": "yes"}),
            "stream",
            "stream: invalid type",
        ),
        (
            json!({"model": "m", "messages": [], "tools": [{"type": "custom", "custom": {}}]}),
            "tools[0]",
            "unknown variant `custom`",
        ),
        (
            json!({"model": "m", "messages": [], "tool_choice": "sometimes"}),
            "tool_choice",
            "unknown variant `sometimes`",
        ),
        (
            json!({"model": "m", "messages": [], "reasoning_effort": "extreme"}),
            "reasoning_effort",
            "unknown variant `extreme`",
        ),
    ];
    assert_parse_errors(&cases);
}

fn assert_parse_errors(cases: &[(Value, &str, &str)]) {
    for &(ref body, param, message) in cases {
        let err = parse_chat_request(body.to_string().as_bytes()).unwrap_err();
        assert_eq!(err.openai_param(), Some(param), "{body}: {err:?}");
        assert!(
            err.client_message().contains(message),
            "{body}: {:?} lacks {message:?}",
            err.client_message()
        );
    }
}

#[test]
fn body_that_is_not_a_json_object_is_rejected_clearly() {
    for (body, message) in [
        (&b""[..], "request body is empty"),
        (b"{\"model\":", "not valid JSON"),
        (b"[]", "must be a JSON object"),
        (b"\"hi\"", "must be a JSON object"),
    ] {
        let err = parse_chat_request(body).unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(err.client_message().contains(message), "{err:?}");
    }
}

// -- request translation ----------------------------------------------------------------

#[test]
fn request_translation_table() {
    let cases = [
        (
            "system and developer go to systemInstruction in order; roles map to user/model",
            json!({"model": "gemini-2.5-flash", "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
                {"role": "assistant", "content": "Salut"},
                {"role": "user", "content": "Ça va?"}
            ]}),
            json!({
                "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "Use French."}]},
                "contents": [
                    {"role": "user", "parts": [{"text": "Hi"}]},
                    {"role": "model", "parts": [{"text": "Salut"}]},
                    {"role": "user", "parts": [{"text": "Ça va?"}]}
                ]
            }),
        ),
        (
            "consecutive same-role turns merge and empty text is dropped",
            json!({"model": "m", "messages": [
                {"role": "user", "content": "a"},
                {"role": "user", "content": ""},
                {"role": "user", "content": [{"type": "text", "text": "b"}, {"type": "text", "text": ""}]},
                {"role": "assistant", "content": ""},
                {"role": "assistant", "content": "c"}
            ]}),
            json!({"contents": [
                {"role": "user", "parts": [{"text": "a"}, {"text": "b"}]},
                {"role": "model", "parts": [{"text": "c"}]}
            ]}),
        ),
        (
            "sampling parameters map one to one; max_completion_tokens wins over max_tokens",
            json!({"model": "models/gemini-2.5-pro", "messages": [{"role": "user", "content": "x"}],
                   "temperature": 0.2, "top_p": 0.9, "max_tokens": 10, "max_completion_tokens": 20,
                   "stop": ["END", "STOP"], "n": 2, "seed": 42, "presence_penalty": 0.5,
                   "frequency_penalty": -0.5}),
            json!({"contents": [{"role": "user", "parts": [{"text": "x"}]}],
                   "generationConfig": {"temperature": 0.2, "topP": 0.9, "maxOutputTokens": 20,
                                        "stopSequences": ["END", "STOP"], "candidateCount": 2,
                                        "seed": 42, "presencePenalty": 0.5, "frequencyPenalty": -0.5}}),
        ),
        (
            "a single stop string becomes a one-element list; max_tokens alone is used",
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": "END", "max_tokens": 7}),
            json!({"contents": [{"role": "user", "parts": [{"text": "x"}]}],
                   "generationConfig": {"stopSequences": ["END"], "maxOutputTokens": 7}}),
        ),
        (
            "images, audio and files become inlineData",
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "what is this"},
                {"type": "image_url", "image_url": {"url": PNG_DATA_URL, "detail": "high"}},
                {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "mp3"}},
                {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERg==", "filename": "a.pdf"}}
            ]}]}),
            json!({"contents": [{"role": "user", "parts": [
                {"text": "what is this"},
                {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                {"inlineData": {"mimeType": "audio/mp3", "data": "AAAA"}},
                {"inlineData": {"mimeType": "application/pdf", "data": "JVBERg=="}}
            ]}]}),
        ),
        (
            "response_format json_schema sets the MIME type and the JSON schema",
            json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "x"}],
                   "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"}}}}),
            json!({"contents": [{"role": "user", "parts": [{"text": "x"}]}],
                   "generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": {"type": "object"}}}),
        ),
        (
            "response_format json_object sets the MIME type only",
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}}),
            json!({"contents": [{"role": "user", "parts": [{"text": "x"}]}],
                   "generationConfig": {"responseMimeType": "application/json"}}),
        ),
        (
            "unknown top-level and message fields are not forwarded upstream",
            json!({"model": "m", "messages": [{"role": "user", "content": "x", "name": "bob", "cache_control": {}}],
                   "user": "u1", "parallel_tool_calls": true, "metadata": {"k": "v"}, "store": false}),
            json!({"contents": [{"role": "user", "parts": [{"text": "x"}]}]}),
        ),
    ];
    for (name, openai_body, want) in cases {
        assert_eq!(gemini_body(openai_body), want, "{name}");
    }
}

#[test]
fn model_prefix_is_stripped_and_stream_flags_are_read() {
    let prepared = prepare(json!({"model": "models/gemini-2.5-flash", "stream": true,
        "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "x"}]}))
    .unwrap();
    assert_eq!(prepared.upstream_model, "gemini-2.5-flash");
    assert!(prepared.stream && prepared.include_usage);
    let plain = prepare(
        json!({"model": "m", "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "x"}]}),
    )
    .unwrap();
    assert!(!plain.stream && !plain.include_usage);
}

#[test]
fn a_conversation_starting_with_an_assistant_turn_is_kept_as_is() {
    let body = gemini_body(json!({"model": "m", "messages": [
        {"role": "assistant", "content": "Welcome!"}, {"role": "user", "content": "hi"}]}));
    assert_eq!(body["contents"][0]["role"], "model");
}

#[test]
fn validation_rejects_bad_values_with_the_param_named() {
    let msg = |extra: Value| {
        let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    assert_bad(
        msg(json!({"temperature": 2.5})),
        "temperature",
        "between 0 and 2",
    );
    assert_bad(
        msg(json!({"temperature": -0.1})),
        "temperature",
        "between 0 and 2",
    );
    assert_bad(msg(json!({"top_p": 1.5})), "top_p", "between 0 and 1");
    assert_bad(msg(json!({"n": 0})), "n", "between 1 and 8");
    assert_bad(msg(json!({"n": 9})), "n", "between 1 and 8");
    assert_bad(msg(json!({"max_tokens": 0})), "max_tokens", "at least 1");
    assert_bad(
        msg(json!({"max_completion_tokens": 0})),
        "max_completion_tokens",
        "at least 1",
    );
    assert_bad(
        msg(json!({"presence_penalty": 3})),
        "presence_penalty",
        "between -2 and 2",
    );
    assert_bad(
        msg(json!({"stop": ["1", "2", "3", "4", "5", "6"]})),
        "stop",
        "at most 5",
    );
    assert_bad(msg(json!({"seed": 5_000_000_000_i64})), "seed", "32-bit");
    assert_bad(msg(json!({"model": ""})), "model", "non-empty");
    assert_bad(
        msg(json!({"model": "a/b"})),
        "model",
        "not a valid model name",
    );
    assert_bad(
        json!({"model": "m", "messages": []}),
        "messages",
        "at least one message",
    );
    assert_bad(
        json!({"model": "m", "messages": [{"role": "system", "content": "only rules"}, {"role": "user", "content": ""}]}),
        "messages",
        "at least one user, assistant or tool message",
    );
}

#[test]
fn edge_values_are_accepted_and_never_overridden() {
    let body = gemini_body(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "temperature": 0, "top_p": 1, "n": 1, "logprobs": false, "top_logprobs": 0}),
    );
    assert_eq!(
        body["generationConfig"],
        json!({"temperature": 0.0, "topP": 1.0, "candidateCount": 1})
    );
}

#[test]
fn media_errors_name_the_content_part() {
    let with_part = |part: Value| json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}, part]}]});
    assert_bad(
        with_part(json!({"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@@"}})),
        "messages[0].content[1].image_url",
        "not valid base64",
    );
    assert_bad(
        with_part(json!({"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}})),
        "messages[0].content[1].image_url",
        "not valid base64",
    );
    assert_bad(
        with_part(json!({"type": "image_url", "image_url": {"url": "data:image/png,rawbytes"}})),
        "messages[0].content[1].image_url",
        "expected a base64 data: URL",
    );
    assert_bad(
        with_part(json!({"type": "image_url", "image_url": {"url": "ftp://x"}})),
        "messages[0].content[1].image_url",
        "scheme `ftp` is not supported",
    );
    assert_bad(
        with_part(
            json!({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "midi"}}),
        ),
        "messages[0].content[1].input_audio.format",
        "unsupported audio format",
    );
    assert_bad(
        with_part(json!({"type": "file", "file": {"file_id": "file-123"}})),
        "messages[0].content[1].file.file_id",
        "not supported yet",
    );
    assert_bad(
        json!({"model": "m", "messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": PNG_DATA_URL}}]}, {"role": "user", "content": "x"}]}),
        "messages[0].content[0]",
        "may only contain text parts",
    );
}

#[test]
fn strict_base64_matches_the_base64_crate() {
    let long_valid = STANDARD.encode(vec![7u8; 10_000]);
    let mut long_padded_inside = STANDARD.encode(vec![1u8; 3070]);
    long_padded_inside.push_str(&STANDARD.encode([1u8; 3]));
    for sample in [
        "",
        "A",
        "AA==",
        "AAA=",
        "AAAA",
        "AB==",
        "AAB=",
        "A===",
        "====",
        "AA=A",
        "QUJD",
        "QUJDRA==",
        "QUJDRA=",
        "QUJD\n",
        "QU JD",
        "-_-_",
        &long_valid,
        &long_padded_inside,
    ] {
        assert_eq!(
            is_strict_base64(sample),
            STANDARD.decode(sample).is_ok() && !sample.is_empty(),
            "{sample:.20}"
        );
    }
}

#[test]
fn data_url_parameters_and_case_are_tolerated() {
    assert_eq!(
        parse_data_url("DATA:image/jpeg;name=a.jpg;BASE64,AAAA"),
        Some(("image/jpeg", "AAAA"))
    );
    assert_eq!(parse_data_url("data:;base64,AAAA"), None);
}

#[test]
fn tools_and_tool_choice_translate() {
    let tools = json!([
        {"type": "function", "function": {"name": "get_weather", "description": "Weather",
         "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "additionalProperties": false}, "strict": true}},
        {"type": "function", "function": {"name": "now"}}
    ]);
    let declarations = json!([{"functionDeclarations": [
        {"name": "get_weather", "description": "Weather",
         "parametersJsonSchema": {"type": "object", "properties": {"city": {"type": "string"}}, "additionalProperties": false}},
        {"name": "now"}
    ]}]);
    let cases = [
        (json!(null), json!(null)),
        (
            json!("auto"),
            json!({"functionCallingConfig": {"mode": "AUTO"}}),
        ),
        (
            json!("none"),
            json!({"functionCallingConfig": {"mode": "NONE"}}),
        ),
        (
            json!("required"),
            json!({"functionCallingConfig": {"mode": "ANY"}}),
        ),
        (
            json!({"type": "function", "function": {"name": "now"}}),
            json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["now"]}}),
        ),
        (
            json!({"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [{"type": "function", "function": {"name": "now"}}]}}),
            json!({"functionCallingConfig": {"mode": "VALIDATED", "allowedFunctionNames": ["now"]}}),
        ),
        (
            json!({"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [{"type": "function", "function": {"name": "now"}}]}}),
            json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["now"]}}),
        ),
    ];
    for (choice, want) in cases {
        let body = gemini_body(
            json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "x"}],
            "tools": tools, "tool_choice": choice}),
        );
        assert_eq!(body["tools"], declarations);
        assert_eq!(
            body.get("toolConfig").cloned().unwrap_or(Value::Null),
            want,
            "{choice}"
        );
    }
}

#[test]
fn tool_choice_without_tools_or_with_an_unknown_name_is_rejected() {
    let base = |choice: Value, tools: Value| json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": choice, "tools": tools});
    assert_bad(
        base(json!("required"), json!([])),
        "tool_choice",
        "requires tools",
    );
    assert_bad(
        base(
            json!({"type": "function", "function": {"name": "nope"}}),
            json!([{"type": "function", "function": {"name": "f"}}]),
        ),
        "tool_choice",
        "`nope`",
    );
    let body = gemini_body(base(json!("auto"), json!(null)));
    assert!(body.get("toolConfig").is_none() && body.get("tools").is_none());
}

#[test]
fn tool_history_round_trips_to_function_call_and_response() {
    let body = gemini_body(json!({"model": "gemini-2.5-flash", "messages": [
        {"role": "user", "content": "weather in Paris and Rome?"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}
        ]},
        {"role": "tool", "tool_call_id": "call_2", "content": "{\"temp\": 20}"},
        {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "18C"}]},
        {"role": "user", "content": "thanks"}
    ]}));
    assert_eq!(
        body["contents"],
        json!([
            {"role": "user", "parts": [{"text": "weather in Paris and Rome?"}]},
            {"role": "model", "parts": [
                {"functionCall": {"id": "call_1", "name": "get_weather", "args": {"city": "Paris"}}},
                {"functionCall": {"id": "call_2", "name": "get_weather", "args": {"city": "Rome"}}}
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"id": "call_2", "name": "get_weather", "response": {"temp": 20}}},
                {"functionResponse": {"id": "call_1", "name": "get_weather", "response": {"output": "18C"}}},
                {"text": "thanks"}
            ]}
        ])
    );
}

#[test]
fn legacy_function_call_and_function_role_translate() {
    let body = gemini_body(json!({"model": "m", "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": null, "function_call": {"name": "f", "arguments": ""}},
        {"role": "function", "name": "f", "content": "done"}
    ]}));
    assert_eq!(
        body["contents"][1]["parts"],
        json!([{"functionCall": {"name": "f", "args": {}}}])
    );
    assert_eq!(
        body["contents"][2]["parts"],
        json!([{"functionResponse": {"name": "f", "response": {"output": "done"}}}])
    );
}

#[test]
fn tool_errors_name_the_message() {
    assert_bad(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "ghost", "content": "1"}]}),
        "messages[1].tool_call_id",
        "`ghost`",
    );
    assert_bad(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}]}),
        "messages[1].tool_calls[0].function.arguments",
        "JSON object",
    );
}

#[test]
fn tool_message_name_is_the_fallback_when_the_call_is_not_in_history() {
    let body = gemini_body(json!({"model": "m", "messages": [
        {"role": "user", "content": "x"},
        {"role": "tool", "tool_call_id": "trimmed", "name": "lookup", "content": "1"}]}));
    assert_eq!(
        body["contents"][0]["parts"][1]["functionResponse"]["name"],
        "lookup"
    );
}

#[test]
fn thought_signatures_round_trip_from_id_or_extra_content() {
    let body = gemini_body(json!({"model": "gemini-3-pro-preview", "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [
            {"id": "call_a__thought__c2lnLWE=", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            {"id": "call_b", "type": "function", "function": {"name": "g", "arguments": "{}"},
             "extra_content": {"google": {"thought_signature": "c2lnLWI="}}}
        ]},
        {"role": "tool", "tool_call_id": "call_a__thought__c2lnLWE=", "content": "1"},
        {"role": "tool", "tool_call_id": "call_b", "content": "2"}
    ]}));
    let model_parts = &body["contents"][1]["parts"];
    assert_eq!(model_parts[0]["thoughtSignature"], "c2lnLWE=");
    assert_eq!(model_parts[1]["thoughtSignature"], "c2lnLWI=");
    assert_eq!(
        body["contents"][2]["parts"][0]["functionResponse"]["name"],
        "f"
    );
}

#[test]
fn gemini_3_gets_the_sentinel_when_a_client_dropped_the_signature() {
    let history = |model: &str| {
        json!({"model": model, "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            {"id": "b", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "a", "content": "1"},
        {"role": "tool", "tool_call_id": "b", "content": "2"}]})
    };
    let parts = &gemini_body(history("gemini-3-flash-preview"))["contents"][1]["parts"];
    assert_eq!(parts[0]["thoughtSignature"], SIGNATURE_SENTINEL);
    assert!(
        parts[1].get("thoughtSignature").is_none(),
        "only the first call of a step"
    );
    let parts = &gemini_body(history("gemini-2.5-flash"))["contents"][1]["parts"];
    assert!(parts[0].get("thoughtSignature").is_none());
}

#[test]
fn reasoning_effort_suffixes_and_thinking_config_reach_the_body() {
    let body = |req: Value| prepare(req).unwrap();
    let p = body(
        json!({"model": "gemini-3-pro-preview", "reasoning_effort": "medium",
        "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(
        to_value(&p.body)["generationConfig"]["thinkingConfig"],
        json!({"thinkingLevel": "high"})
    );
    assert_eq!(p.adjustments, vec!["reasoning_effort=medium->high"]);
    // Suffixes leave the upstream model bare and add search.
    let p = body(json!({"model": "gemini-2.5-flash-thinking-4096-search",
        "messages": [{"role": "user", "content": "x"}]}));
    assert_eq!(p.upstream_model, "gemini-2.5-flash");
    let sent = to_value(&p.body);
    assert_eq!(
        sent["generationConfig"]["thinkingConfig"],
        json!({"thinkingBudget": 4096})
    );
    assert_eq!(sent["tools"], json!([{"googleSearch": {}}]));
    // extra_body.google (or a top-level `google`) wins over reasoning_effort.
    for (key, wrap) in [("extra_body", true), ("google", false)] {
        let google = json!({"thinking_config": {"thinking_budget": 300, "include_thoughts": true},
            "safety_settings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "OFF"}],
            "cached_content": "cachedContents/c1"});
        let ext = if wrap {
            json!({"google": google})
        } else {
            google
        };
        let p = body(
            json!({"model": "gemini-2.5-flash", "reasoning_effort": "high", key: ext,
            "messages": [{"role": "user", "content": "x"}]}),
        );
        let sent = to_value(&p.body);
        assert_eq!(
            sent["generationConfig"]["thinkingConfig"],
            json!({"thinkingBudget": 300, "includeThoughts": true}),
            "{key}"
        );
        assert_eq!(sent["safetySettings"][0]["threshold"], "OFF");
        assert_eq!(sent["cachedContent"], "cachedContents/c1");
        assert!(p.adjustments.is_empty());
    }
    // The configured default asks for thoughts.
    let req = parse_chat_request(
        json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "x"}]})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let p = prepare_chat(
        req,
        &ChatOptions {
            include_thoughts: true,
            catalog: None,
            compat: None,
        },
    )
    .unwrap();
    assert_eq!(
        to_value(&p.body)["generationConfig"]["thinkingConfig"],
        json!({"includeThoughts": true})
    );
    assert_bad(
        json!({"model": "gemini-2.5-flash", "extra_body": {"google": {"thinking_config": {"budget": 1}}},
            "messages": [{"role": "user", "content": "x"}]}),
        "extra_body.google",
        "unknown field `budget`",
    );
}

#[test]
fn generation_config_keys_pass_through_and_the_rest_is_listed() {
    let p = prepare(json!({"model": "gemini-2.5-flash", "top_k": 12, "topK": 99,
        "response_modalities": ["TEXT"], "temperature": 0.2, "maxOutputTokens": 7, "max_tokens": 5,
        "mystery": 1, "metadata": {"a": "b"}, "parallel_tool_calls": true,
        "messages": [{"role": "user", "content": "x"}]}))
    .unwrap();
    let config = &to_value(&p.body)["generationConfig"];
    assert_eq!(config["responseModalities"], json!(["TEXT"]));
    assert!(config["topK"] == json!(12) || config["topK"] == json!(99));
    assert_eq!(config["maxOutputTokens"], 5, "the OpenAI parameter wins");
    assert_eq!(config["temperature"], 0.2);
    assert_eq!(p.ignored, vec!["mystery"]);
    let err = bad(
        json!({"model": "gemini-2.5-flash", "top_k": "x", "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(err.status(), 400);
    assert!(err.client_message().contains("generationConfig"), "{err:?}");
}

#[test]
fn logprobs_map_and_are_validated() {
    let p = prepare(
        json!({"model": "gemini-2.5-flash", "logprobs": true, "top_logprobs": 3,
        "messages": [{"role": "user", "content": "x"}]}),
    )
    .unwrap();
    let config = &to_value(&p.body)["generationConfig"];
    assert_eq!(config["responseLogprobs"], true);
    assert_eq!(config["logprobs"], 3);
    assert_bad(
        json!({"model": "m", "top_logprobs": 3, "messages": [{"role": "user", "content": "x"}]}),
        "top_logprobs",
        "requires logprobs",
    );
    assert_bad(
        json!({"model": "m", "logprobs": true, "top_logprobs": 21, "messages": [{"role": "user", "content": "x"}]}),
        "top_logprobs",
        "between 0 and 20",
    );
    let out = openai_logprobs(&json!({
        "chosenCandidates": [{"token": "he", "logProbability": -0.5}, {"token": "y", "logProbability": -1.0}],
        "topCandidates": [{"candidates": [{"token": "he", "logProbability": -0.5}, {"token": "hi", "logProbability": -2.0}]}]
    }));
    assert_eq!(
        out,
        json!({"content": [
            {"token": "he", "logprob": -0.5, "bytes": [104, 101], "top_logprobs": [
                {"token": "he", "logprob": -0.5, "bytes": [104, 101]},
                {"token": "hi", "logprob": -2.0, "bytes": [104, 105]}]},
            {"token": "y", "logprob": -1.0, "bytes": [121], "top_logprobs": []}
        ], "refusal": null})
    );
}

#[test]
fn remote_images_become_placeholders_filled_in_order() {
    let mut p = prepare(json!({"model": "gemini-2.5-flash", "messages": [
        {"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}},
            {"type": "text", "text": "and"},
            {"type": "image_url", "image_url": {"url": "HTTP://example.com/b.jpg"}}]}]}))
    .unwrap();
    assert_eq!(
        p.remote_media
            .iter()
            .map(|m| (m.url.as_str(), m.param.as_str()))
            .collect::<Vec<_>>(),
        vec![
            (
                "https://example.com/a.png",
                "messages[0].content[0].image_url"
            ),
            (
                "HTTP://example.com/b.jpg",
                "messages[0].content[2].image_url"
            ),
        ]
    );
    let blob = |m: &str, d: &str| gemini::Blob {
        mime_type: m.to_owned(),
        data: d.to_owned(),
    };
    fill_remote_media(
        &mut p.body,
        vec![blob("image/png", "AAAA"), blob("image/jpeg", "BBBB")],
    );
    assert_eq!(
        to_value(&p.body)["contents"][0]["parts"],
        json!([{"inlineData": {"mimeType": "image/png", "data": "AAAA"}}, {"text": "and"},
            {"inlineData": {"mimeType": "image/jpeg", "data": "BBBB"}}])
    );
    let many: Vec<Value> = (0..=MAX_REMOTE_MEDIA)
        .map(|i| json!({"type": "image_url", "image_url": {"url": format!("https://e.com/{i}.png")}}))
        .collect();
    assert_bad(
        json!({"model": "m", "messages": [{"role": "user", "content": many}]}),
        &format!("messages[0].content[{MAX_REMOTE_MEDIA}].image_url"),
        "at most",
    );
}

#[test]
fn response_format_forms_and_enum_answers() {
    let config = |format: Value, model: &str| {
        to_value(
            &prepare(json!({"model": model, "response_format": format,
                "messages": [{"role": "user", "content": "x"}]}))
            .unwrap()
            .body,
        )["generationConfig"]
            .clone()
    };
    assert_eq!(
        config(json!({"type": "text"}), "gemini-2.5-flash")["responseMimeType"],
        "text/plain"
    );
    assert_eq!(
        config(json!({"type": "json_object"}), "gemini-2.5-flash")["responseMimeType"],
        "application/json"
    );
    let schema = json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"], "additionalProperties": false});
    let c = config(
        json!({"type": "json_schema", "json_schema": {"name": "n", "schema": schema}}),
        "gemini-2.5-flash",
    );
    assert_eq!(c["responseJsonSchema"]["properties"]["a"]["type"], "string");
    assert!(c.get("responseSchema").is_none());
    let c = config(
        json!({"type": "json_schema", "json_schema": {"name": "n", "schema": schema}}),
        "gemini-2.0-flash",
    );
    assert_eq!(c["responseSchema"]["properties"]["a"]["type"], "STRING");
    assert!(c.get("responseJsonSchema").is_none());
    let p = prepare(json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "c", "schema": {"type": "string", "enum": ["red", "blue"]}}}}))
    .unwrap();
    assert!(p.reply.enum_as_json);
    let c = to_value(&p.body)["generationConfig"].clone();
    assert_eq!(c["responseMimeType"], "text/x.enum");
    assert_eq!(
        c["responseSchema"],
        json!({"type": "STRING", "enum": ["red", "blue"]})
    );
    let ctx = ChatContext {
        reply: p.reply,
        ..ctx()
    };
    let out = chat_response(
        serde_json::from_value(json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "red"}]}, "finishReason": "STOP"}]})).unwrap(),
        &ctx,
    )
    .unwrap();
    assert_eq!(out.choices[0].message.content.as_deref(), Some("\"red\""));
}

#[test]
fn prepared_body_never_contains_null() {
    fn has_null(v: &Value) -> bool {
        match v {
            Value::Null => true,
            Value::Array(items) => items.iter().any(has_null),
            Value::Object(map) => map.values().any(has_null),
            _ => false,
        }
    }
    let body = gemini_body(json!({"model": "m", "messages": [
        {"role": "system", "content": "s"}, {"role": "user", "content": "x"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "a", "content": "r"}],
        "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "auto",
        "temperature": null, "stop": null, "response_format": {"type": "text"}}));
    assert!(!has_null(&body), "{body}");
}

// -- response translation ---------------------------------------------------------------

#[test]
fn text_response_becomes_a_spec_shaped_completion() {
    let got = respond(json!({
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Hello"}, {"text": " world"}]},
                        "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 2, "totalTokenCount": 7},
        "modelVersion": "gemini-2.5-flash", "responseId": "xyz"
    }));
    assert_eq!(
        got,
        json!({
            "id": "chatcmpl-abc123", "object": "chat.completion", "created": 1_700_000_000, "model": "gemini-2.5-flash",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello world", "refusal": null},
                         "logprobs": null, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7,
                      "prompt_tokens_details": {"cached_tokens": 0},
                      "completion_tokens_details": {"reasoning_tokens": 0}}
        })
    );
}

#[test]
fn thoughts_go_to_reasoning_content_never_content() {
    let got = respond(json!({
        "candidates": [{"content": {"parts": [{"text": "thinking...", "thought": true}, {"text": "Answer"}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 1, "thoughtsTokenCount": 9, "totalTokenCount": 15}
    }));
    let message = &got["choices"][0]["message"];
    assert_eq!(message["content"], "Answer");
    assert_eq!(message["reasoning_content"], "thinking...");
    assert_eq!(got["usage"]["completion_tokens"], 10);
    assert_eq!(
        got["usage"]["completion_tokens_details"]["reasoning_tokens"],
        9
    );
}

#[test]
fn safety_finish_reason_maps_to_content_filter() {
    let got = respond(
        json!({"candidates": [{"finishReason": "SAFETY", "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH", "blocked": true}]}]}),
    );
    assert_eq!(got["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(got["choices"][0]["message"]["content"], "");
}

#[test]
fn max_tokens_finish_reason_maps_to_length() {
    let got = respond(
        json!({"candidates": [{"content": {"role": "model"}, "finishReason": "MAX_TOKENS"}]}),
    );
    assert_eq!(got["choices"][0]["finish_reason"], "length");
}

#[test]
fn blocked_prompt_is_a_content_filter_choice_not_an_error() {
    let got = respond(
        json!({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                             "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9}}),
    );
    assert_eq!(
        got["choices"],
        json!([{"index": 0, "message": {"role": "assistant", "content": "", "refusal": null},
                                       "logprobs": null, "finish_reason": "content_filter"}])
    );
    assert_eq!(got["usage"]["prompt_tokens"], 9);
}

#[test]
fn empty_response_without_block_reason_is_a_bad_gateway() {
    let err = chat_response(gemini::GenerateContentResponse::default(), &ctx()).unwrap_err();
    assert_eq!(err.status(), 502);
}

#[test]
fn multiple_candidates_become_indexed_choices() {
    let got = respond(json!({"candidates": [
        {"content": {"parts": [{"text": "A"}]}, "finishReason": "STOP"},
        {"content": {"parts": [{"text": "B"}]}, "finishReason": "MAX_TOKENS", "index": 1}
    ]}));
    assert_eq!(got["choices"][0]["index"], 0);
    assert_eq!(got["choices"][1]["index"], 1);
    assert_eq!(got["choices"][1]["message"]["content"], "B");
    assert_eq!(got["choices"][1]["finish_reason"], "length");
}

#[test]
fn function_calls_become_tool_calls_with_distinct_stable_ids() {
    let got = respond(json!({"candidates": [{"content": {"parts": [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2ln"},
        {"functionCall": {"name": "now"}}
    ]}, "finishReason": "STOP"}]}));
    let message = &got["choices"][0]["message"];
    assert_eq!(got["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(message["content"], Value::Null);
    assert_eq!(
        message["tool_calls"],
        json!([
            {"id": "call_abc123_0_0__thought__c2ln", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
             "extra_content": {"google": {"thought_signature": "c2ln"}}},
            {"id": "call_abc123_0_1", "type": "function", "function": {"name": "now", "arguments": "{}"}}
        ])
    );
    assert_eq!(
        split_call_id("call_abc123_0_0__thought__c2ln"),
        ("call_abc123_0_0", Some("c2ln"))
    );
}

#[test]
fn code_execution_and_images_render_as_markdown() {
    let got = respond(json!({"candidates": [{"content": {"parts": [
        {"executableCode": {"language": "PYTHON", "code": "print(1)"}},
        {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "1"}},
        {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
        {"somethingNew": {}}
    ]}, "finishReason": "STOP"}]}));
    assert_eq!(
        got["choices"][0]["message"]["content"],
        "\n```python\nprint(1)\n```\n\n```output\n1\n```\n![image](data:image/png;base64,AAAA)"
    );
}

#[test]
fn unknown_finish_reason_maps_to_stop() {
    let got = respond(
        json!({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "BRAND_NEW"}]}),
    );
    assert_eq!(got["choices"][0]["finish_reason"], "stop");
}
