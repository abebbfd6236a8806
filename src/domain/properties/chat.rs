//! The `OpenAI` chat surface: generated request bodies through [`parse_chat_request`] and
//! [`prepare_chat`], and generated upstream answers through [`chat_response`].

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Value, json};

use super::{
    any_json, assert_client_error, base64_payload, config, deep_json, gemini_response, key,
    member_p, mutate, mutations, number, object, odd_string, or_wrong, schema,
};
use crate::domain::compat::{Compat, InjectPosition, PromptInjection, SearchCitations};
use crate::domain::gemini;
use crate::domain::translate::chat::{
    ChatContext, ChatOptions, ReplyPlan, chat_response, parse_chat_request, prepare_chat,
};
use crate::domain::translate::schema::{function_parameters_openapi, to_json_schema, to_openapi};

fn model(hostile: bool) -> BoxedStrategy<Value> {
    or_wrong(
        hostile,
        prop_oneof![
            4 => select(vec![
                "gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.5-flash-lite", "gemini-3-pro-preview",
                "gemini-2.0-flash", "gemma-3-27b-it", "gemini-2.5-flash-search", "gemini-2.5-flash-nothinking",
                "gemini-2.5-flash-thinking-high", "gemini-2.5-flash-code", "gemini-embedding-001",
                "models/gemini-2.5-flash", "gemini-3-flash-preview-low", "gemini-2.5-flash-urlcontext",
            ])
            .prop_map(|m| Value::String(m.to_owned())),
            u32::from(hostile) => odd_string().prop_map(Value::String),
        ]
        .boxed(),
    )
}

fn content_part(hostile: bool) -> BoxedStrategy<Value> {
    let data_url = (
        select(vec![
            "image/png",
            "image/jpeg",
            "image/webp",
            "application/pdf",
            "audio/mp3",
            "text/plain",
            "",
        ]),
        base64_payload(),
    )
        .prop_map(|(mime, data)| format!("data:{mime};base64,{data}"));
    let url = prop_oneof![
        3 => data_url,
        1 => Just("https://example.com/cat.png".to_owned()),
        1 => Just("http://127.0.0.1/x.png".to_owned()),
        1 => odd_string(),
    ];
    prop_oneof![
        6 => odd_string().prop_map(|t| json!({ "type": "text", "text": t })),
        2 => (url, prop::option::of(select(vec!["low", "high", "auto", "x"]))).prop_map(|(url, detail)| {
            let mut image = json!({ "url": url });
            if let Some(d) = detail {
                image["detail"] = d.into();
            }
            json!({ "type": "image_url", "image_url": image })
        }),
        1 => (base64_payload(), select(vec!["wav", "mp3", "flac", "ogg"]))
            .prop_map(|(data, format)| json!({ "type": "input_audio", "input_audio": { "data": data, "format": format } })),
        1 => (base64_payload(), odd_string())
            .prop_map(|(data, name)| json!({ "type": "file", "file": { "file_data": format!("data:application/pdf;base64,{data}"), "filename": name } })),
        u32::from(hostile) => (odd_string(), any_json()).prop_map(|(ty, body)| json!({ "type": ty, "x": body })),
        u32::from(hostile) => any_json(),
    ]
    .boxed()
}

fn content(hostile: bool) -> BoxedStrategy<Value> {
    or_wrong(
        hostile,
        prop_oneof![
            4 => odd_string().prop_map(Value::String),
            3 => prop::collection::vec(content_part(hostile), 0..4).prop_map(Value::Array),
            1 => Just(Value::Null),
        ]
        .boxed(),
    )
}

fn function_name() -> BoxedStrategy<String> {
    prop_oneof![
        3 => "[a-zA-Z_][a-zA-Z0-9_.-]{0,20}",
        1 => odd_string(),
        1 => (65usize..200).prop_map(|n| "f".repeat(n)),
    ]
    .boxed()
}

fn tool_call(hostile: bool) -> BoxedStrategy<Value> {
    let arguments = if hostile {
        prop_oneof![any_json().prop_map(|v| v.to_string()), odd_string()].boxed()
    } else {
        prop::collection::vec((key(), any_json()), 0..3)
            .prop_map(|members| Value::Object(members.into_iter().collect()).to_string())
            .boxed()
    };
    or_wrong(
        hostile,
        (odd_string(), function_name(), arguments)
            .prop_map(|(id, name, arguments)| {
                json!({ "id": id, "type": "function", "function": { "name": name, "arguments": arguments } })
            })
            .boxed(),
    )
}

/// An assistant turn that calls tools, then a result for each call.
fn tool_round() -> BoxedStrategy<Vec<Value>> {
    (
        prop::option::of(odd_string()),
        prop::collection::vec((tool_call(false), odd_string()), 1..3),
    )
        .prop_map(|(content, calls)| {
            let mut turns = vec![json!({
                "role": "assistant",
                "content": content,
                "tool_calls": calls.iter().map(|(call, _)| call.clone()).collect::<Vec<_>>(),
            })];
            for (call, result) in calls {
                turns
                    .push(json!({ "role": "tool", "tool_call_id": call["id"], "content": result }));
            }
            turns
        })
        .boxed()
}

/// A message. Plausible: one of each role's own shape (a tool result names its call, an
/// assistant turn may carry tool calls and no content). Hostile: any members, any types.
fn message(hostile: bool) -> BoxedStrategy<Value> {
    if !hostile {
        let text = prop_oneof![
            3 => odd_string().prop_map(Value::String),
            2 => prop::collection::vec(content_part(false), 1..4).prop_map(Value::Array),
        ];
        return prop_oneof![
            4 => text.clone().prop_map(|c| json!({ "role": "user", "content": c })),
            1 => (select(vec!["system", "developer"]), odd_string())
                .prop_map(|(role, c)| json!({ "role": role, "content": c })),
            2 => odd_string().prop_map(|c| json!({ "role": "assistant", "content": c })),
        ]
        .boxed();
    }
    let role = prop_oneof![
        6 => select(vec!["system", "user", "assistant", "tool", "developer", "function"])
            .prop_map(|r| Value::String(r.to_owned())),
        1 => odd_string().prop_map(Value::String),
    ]
    .boxed();
    or_wrong(
        hostile,
        vec![
            member_p("role", 0.8, or_wrong(hostile, role)),
            member_p("content", 0.8, content(hostile)),
            member_p("name", 0.3, odd_string().prop_map(Value::String).boxed()),
            member_p(
                "tool_calls",
                0.3,
                prop::collection::vec(tool_call(hostile), 0..3)
                    .prop_map(Value::Array)
                    .boxed(),
            ),
            member_p(
                "tool_call_id",
                0.3,
                odd_string().prop_map(Value::String).boxed(),
            ),
            member_p(
                "reasoning_content",
                0.3,
                odd_string().prop_map(Value::String).boxed(),
            ),
            member_p("extra_content", 0.3, any_json()),
        ]
        .prop_map(object)
        .boxed(),
    )
}

fn tool(hostile: bool) -> BoxedStrategy<Value> {
    or_wrong(
        hostile,
        (
            if hostile {
                select(vec!["function", "function", "web_search", "x"])
            } else {
                select(vec!["function"])
            },
            function_name(),
            prop::option::of(odd_string()),
            prop::option::of(schema()),
            prop::option::of(any::<bool>()),
        )
            .prop_map(|(ty, name, description, parameters, strict)| {
                let mut function = json!({ "name": name });
                if let Some(d) = description {
                    function["description"] = d.into();
                }
                if let Some(p) = parameters {
                    function["parameters"] = p;
                }
                if let Some(s) = strict {
                    function["strict"] = s.into();
                }
                json!({ "type": ty, "function": function })
            })
            .boxed(),
    )
}

fn response_format(hostile: bool) -> BoxedStrategy<Value> {
    or_wrong(
        hostile,
        prop_oneof![
            3 => (odd_string(), schema(), prop::option::of(any::<bool>())).prop_map(|(name, schema, strict)| {
                let mut spec = json!({ "name": name, "schema": schema });
                if let Some(s) = strict {
                    spec["strict"] = s.into();
                }
                json!({ "type": "json_schema", "json_schema": spec })
            }),
            1 => Just(json!({ "type": "json_object" })),
            1 => Just(json!({ "type": "text" })),
        ]
        .boxed(),
    )
}

fn google_extension(hostile: bool) -> BoxedStrategy<Value> {
    or_wrong(
        hostile,
        (
            prop::option::of((prop::option::of(-2i64..40_000), prop::option::of(any::<bool>()), prop::option::of(select(vec!["low", "high", "minimal", "medium", "x"])))),
            prop::option::of(prop::collection::vec(
                (select(vec!["HARM_CATEGORY_HARASSMENT", "HARM_CATEGORY_HATE_SPEECH", "X"]), select(vec!["OFF", "BLOCK_NONE", "Y"])),
                0..3,
            )),
            prop::option::of(odd_string()),
        )
            .prop_map(|(thinking, safety, cached)| {
                let mut google = json!({});
                if let Some((budget, include, level)) = thinking {
                    let mut config = json!({});
                    if let Some(b) = budget {
                        config["thinking_budget"] = b.into();
                    }
                    if let Some(i) = include {
                        config["include_thoughts"] = i.into();
                    }
                    if let Some(l) = level {
                        config["thinking_level"] = l.into();
                    }
                    google["thinking_config"] = config;
                }
                if let Some(s) = safety {
                    google["safety_settings"] = s
                        .into_iter()
                        .map(|(category, threshold)| json!({ "category": category, "threshold": threshold }))
                        .collect();
                }
                if let Some(c) = cached {
                    google["cached_content"] = c.into();
                }
                json!({ "google": google })
            })
            .boxed(),
    )
}

fn boolean(hostile: bool) -> BoxedStrategy<Value> {
    or_wrong(hostile, any::<bool>().prop_map(Value::Bool).boxed())
}

fn small_number(hostile: bool) -> BoxedStrategy<Value> {
    if hostile {
        or_wrong(hostile, number())
    } else {
        prop_oneof![
            (0.0f64..2.0).prop_map(Value::from),
            (1u64..5000).prop_map(Value::from),
        ]
        .boxed()
    }
}

fn int_in(hostile: bool, range: std::ops::Range<u64>) -> BoxedStrategy<Value> {
    or_wrong(hostile, range.prop_map(Value::from).boxed())
}

type Member = BoxedStrategy<Option<(String, Value)>>;

/// The messages of a body: plausible ones end with a user turn and answer every tool call.
fn messages(hostile: bool) -> BoxedStrategy<Value> {
    if hostile {
        return or_wrong(
            hostile,
            prop::collection::vec(message(hostile), 0..5)
                .prop_map(Value::Array)
                .boxed(),
        );
    }
    let turns = prop_oneof![3 => message(false).prop_map(|m| vec![m]), 1 => tool_round()];
    (prop::collection::vec(turns, 0..4), odd_string())
        .prop_map(|(turns, last)| {
            let mut all: Vec<Value> = turns.into_iter().flatten().collect();
            all.push(json!({ "role": "user", "content": last }));
            Value::Array(all)
        })
        .boxed()
}

/// The sampling and output fields, each present with probability `odds`.
fn sampling_fields(hostile: bool, odds: f64) -> Vec<Member> {
    let stop = prop_oneof![
        odd_string().prop_map(Value::String),
        prop::collection::vec(odd_string(), 0..5)
            .prop_map(|v| v.into_iter().map(Value::String).collect())
    ]
    .boxed();
    vec![
        member_p("stream", odds, boolean(hostile)),
        member_p(
            "stream_options",
            odds,
            or_wrong(
                hostile,
                boolean(hostile)
                    .prop_map(|b| json!({ "include_usage": b }))
                    .boxed(),
            ),
        ),
        member_p("temperature", odds, small_number(hostile)),
        member_p(
            "top_p",
            odds,
            or_wrong(hostile, (0.0f64..1.0).prop_map(Value::from).boxed()),
        ),
        member_p("max_tokens", odds, int_in(hostile, 1..70_000)),
        member_p("max_completion_tokens", odds, int_in(hostile, 1..70_000)),
        member_p("n", odds, int_in(hostile, 1..4)),
        member_p(
            "seed",
            odds,
            int_in(hostile, 0..i32::MAX.unsigned_abs().into()),
        ),
        member_p("stop", odds, or_wrong(hostile, stop)),
        member_p("presence_penalty", odds, small_number(hostile)),
        member_p("logprobs", odds, boolean(hostile)),
        member_p(
            "top_logprobs",
            if hostile { odds } else { 0.0 },
            int_in(hostile, 0..21),
        ),
    ]
}

/// Reasoning, tools, the response format and the extension fields.
fn feature_fields(hostile: bool, odds: f64) -> Vec<Member> {
    let effort = if hostile {
        vec![
            "none", "minimal", "low", "medium", "high", "xhigh", "max", "ultra",
        ]
    } else {
        vec!["none", "minimal", "low", "medium", "high"]
    };
    let choice = if hostile {
        vec!["auto", "none", "required", "any"]
    } else {
        vec!["auto", "none", "required"]
    };
    let tool_choice = prop_oneof![
        select(choice).prop_map(|c| Value::String(c.to_owned())),
        function_name()
            .prop_map(|name| json!({ "type": "function", "function": { "name": name } })),
    ]
    .boxed();
    vec![
        member_p(
            "reasoning_effort",
            odds,
            or_wrong(
                hostile,
                select(effort)
                    .prop_map(|e| Value::String(e.to_owned()))
                    .boxed(),
            ),
        ),
        member_p(
            "tools",
            odds,
            or_wrong(
                hostile,
                prop::collection::vec(tool(hostile), 1..4)
                    .prop_map(Value::Array)
                    .boxed(),
            ),
        ),
        member_p("tool_choice", odds, or_wrong(hostile, tool_choice)),
        member_p("response_format", odds, response_format(hostile)),
        member_p("parallel_tool_calls", odds, boolean(hostile)),
        member_p("extra_body", odds, google_extension(hostile)),
        member_p(
            "web_search_options",
            odds,
            or_wrong(hostile, Just(json!({})).boxed()),
        ),
    ]
}

/// A chat request body: every field the translator reads. Plausible: a model and messages,
/// and each other field a quarter of the time. Hostile: every field half of the time, a
/// third of them of a wrong type or nested too deep, plus unknown fields.
fn chat_body(hostile: bool) -> BoxedStrategy<Value> {
    let (needed, odds) = if hostile { (0.5, 0.5) } else { (1.0, 0.25) };
    let mut fields = vec![
        member_p("model", needed, model(hostile)),
        member_p("messages", needed, messages(hostile)),
    ];
    fields.extend(sampling_fields(hostile, odds));
    fields.extend(feature_fields(hostile, odds));
    let extra = prop::collection::vec((key(), any_json()), 0..if hostile { 3 } else { 1 });
    (fields, extra)
        .prop_map(move |(members, extra)| {
            let mut body = object(members);
            if let Value::Object(map) = &mut body {
                for (name, value) in extra {
                    map.entry(name).or_insert(value);
                }
                // A plausible body names a tool to choose only among tools it has.
                if !hostile && !map.contains_key("tools") {
                    map.remove("tool_choice");
                }
            }
            body
        })
        .boxed()
}

/// Every switch on: thoughts in content, citations with a list, system as user, code
/// execution and URL context for every model, prompt injections in every position.
fn every_switch() -> Compat {
    Compat {
        thoughts_in_content: true,
        search_citations: SearchCitations::AnnotationsAndList,
        system_as_user_models: vec!["*".into()],
        code_execution_models: vec!["*".into()],
        url_context_models: vec!["gemini-*".into()],
        prompt_injection: [
            InjectPosition::System,
            InjectPosition::Prefix,
            InjectPosition::Suffix,
        ]
        .into_iter()
        .map(|position| PromptInjection {
            pattern: "*".into(),
            position,
            text: "be brief".into(),
        })
        .collect(),
        ..Compat::default()
    }
}

/// The Gemini body of a prepared request is at most this many bytes for a body of `input`:
/// proportionate to the input (a schema's `OpenAPI` form may grow to 64 times its size as
/// its `$ref`s are inlined, and no more), plus room for the settings' additions (safety
/// settings, injections, instructions).
fn output_bound(input: usize) -> usize {
    64 * input + 64 * 1024
}

/// A body through parse and prepare, with and without every switch: translated within the
/// output bound, or refused with a client error.
fn check_chat(body: &[u8]) -> Result<(), TestCaseError> {
    let every = every_switch();
    for options in [
        ChatOptions::default(),
        ChatOptions {
            include_thoughts: true,
            compat: Some(&every),
            ..ChatOptions::default()
        },
    ] {
        match parse_chat_request(body).and_then(|req| prepare_chat(req, &options)) {
            Ok(prepared) => {
                let out = serde_json::to_vec(&prepared.body)
                    .map_err(|e| TestCaseError::fail(format!("unserializable body: {e}")))?;
                prop_assert!(
                    out.len() <= output_bound(body.len()),
                    "{} bytes in, {} bytes out",
                    body.len(),
                    out.len()
                );
                prop_assert!(!prepared.upstream_model.is_empty());
                prop_assert!(!prepared.upstream_model.contains('/'));
            }
            Err(err) => assert_client_error(&err)?,
        }
    }
    Ok(())
}

fn ctx() -> ChatContext {
    ChatContext {
        id: "chatcmpl-prop".into(),
        created: 1_700_000_000,
        model: "gemini-2.5-flash".into(),
        reply: ReplyPlan::default(),
    }
}

proptest! {
    #![proptest_config(config(1500))]
    #[test]
    fn valid_ish_chat_bodies_translate_or_get_a_client_error(body in prop_oneof![chat_body(false), chat_body(true)]) {
        check_chat(body.to_string().as_bytes())?;
    }
}

proptest! {
    #![proptest_config(config(800))]
    #[test]
    fn arbitrary_json_as_a_chat_body_is_a_client_error_or_translates(
        body in prop_oneof![any_json(), deep_json()],
    ) {
        let bytes = body.to_string().into_bytes();
        check_chat(&bytes)?;
        // Not an object at the top level: refused, naming what it is.
        if !body.is_object() {
            let err = parse_chat_request(&bytes);
            prop_assert!(err.is_err());
        }
    }

    #[test]
    fn mutated_chat_bodies_translate_or_get_a_client_error(body in chat_body(false), edits in mutations()) {
        check_chat(&mutate(body.to_string().into_bytes(), &edits))?;
    }
}

proptest! {
    #![proptest_config(config(600))]
    #[test]
    fn any_upstream_answer_becomes_a_completion_or_an_error(resp in gemini_response()) {
        let Ok(resp) = serde_json::from_value::<gemini::GenerateContentResponse>(resp) else {
            return Ok(());
        };
        match chat_response(resp, &ctx()) {
            Ok(completion) => {
                let out = serde_json::to_value(&completion)
                    .map_err(|e| TestCaseError::fail(format!("unserializable completion: {e}")))?;
                prop_assert_eq!(&out["object"], "chat.completion");
                prop_assert!(out["choices"].as_array().is_some_and(|c| !c.is_empty()));
            }
            Err(err) => prop_assert!(err.status() >= 400, "{err:?}"),
        }
    }
}

proptest! {
    #![proptest_config(config(500))]
    #[test]
    fn schemas_convert_within_their_growth_cap_or_are_refused(schema in schema()) {
        let size = schema.to_string().len();
        // Numbers are counted at 8 bytes; a long one written out is up to 24.
        let bound = 3 * (64 * size + 1024);
        for out in [to_openapi(&schema), to_json_schema(&schema)].into_iter().flatten() {
            let written = out.to_string().len();
            prop_assert!(written <= bound, "{size} bytes of schema became {written}");
        }
        if let Ok(Some(out)) = function_parameters_openapi(&schema) {
            prop_assert!(out.to_string().len() <= bound);
        }
        // And through a request, for a model that takes the `OpenAPI` dialect.
        let body = json!({
            "model": "gemini-2.0-flash",
            "messages": [{ "role": "user", "content": "hi" }],
            "tools": [{ "type": "function", "function": { "name": "f", "parameters": schema } }],
            "response_format": { "type": "json_schema", "json_schema": { "name": "r", "schema": schema } },
        });
        check_chat(body.to_string().as_bytes())?;
    }
}

proptest! {
    #![proptest_config(config(12))]
    #[test]
    fn huge_strings_anywhere_translate_or_get_a_client_error(
        unit in select(vec!["x", "é", "世", "🎉", "\u{0}", "\"", "\\"]),
        size in 50_000usize..200_000,
        place in 0usize..6,
    ) {
        let huge = unit.repeat(size / unit.len());
        let mut body = json!({
            "model": "gemini-2.0-flash",
            "messages": [{ "role": "user", "content": "hi" }],
        });
        match place {
            0 => body["model"] = json!(huge),
            1 => body["messages"][0]["content"] = json!(huge),
            2 => body["messages"][0]["content"] = json!([{ "type": "image_url", "image_url": { "url": format!("data:image/png;base64,{huge}") } }]),
            3 => body["tools"] = json!([{ "type": "function", "function": { "name": huge, "parameters": { "type": "object", "properties": { "a": { "type": "string" } } } } }]),
            4 => body["response_format"] = json!({ "type": "json_schema", "json_schema": { "name": "r", "schema": { "type": "object", "properties": { "a": { "type": "string", "description": huge } } } } }),
            _ => body["stop"] = json!([huge]),
        }
        check_chat(body.to_string().as_bytes())?;
        let native = json!({ "contents": [{ "role": "user", "parts": [{ "text": huge }] }] });
        super::native::check_native(native.to_string().as_bytes(), "gemini-2.5-flash")?;
    }
}
