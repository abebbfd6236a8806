//! The Gemini-native surface: generated bodies through what its handler does with them
//! (parse, [`native_generate_body`], the cost estimate, Code Assist's envelope), and
//! generated model paths through the router and the model-name checks.

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Value, json};

use super::{
    any_json, assert_client_error, config, deep_json, gemini_part, key, member, mutate, mutations,
    number, object, odd_string, or_wrong, same_json, schema,
};
use crate::domain::accounts::envelope::{code_assist_can_serve, wrap_count, wrap_generate};
use crate::domain::catalog::{Catalog, ThinkingDefault};
use crate::domain::compat::{Compat, InjectPosition, PromptInjection};
use crate::domain::gemini::{self, ModelName};
use crate::domain::route::{self, GeminiRoute, Hints, Route, Surface, check_model_id};
use crate::domain::translate::switches::native_generate_body;
use crate::domain::usage::{estimate, estimate_native};

fn content(hostile: bool) -> BoxedStrategy<Value> {
    or_wrong(
        hostile,
        (
            prop::option::of(select(vec!["user", "model", "function", "system", "x"])),
            prop::collection::vec(gemini_part(), 0..4),
        )
            .prop_map(|(role, parts)| {
                let mut c = json!({ "parts": parts });
                if let Some(r) = role {
                    c["role"] = r.into();
                }
                c
            })
            .boxed(),
    )
}

fn generation_config(hostile: bool) -> BoxedStrategy<Value> {
    or_wrong(
        hostile,
        vec![
            member("temperature", or_wrong(hostile, number())),
            member("maxOutputTokens", or_wrong(hostile, number())),
            member(
                "candidateCount",
                or_wrong(hostile, (0u64..10).prop_map(Value::from).boxed()),
            ),
            member(
                "responseMimeType",
                or_wrong(
                    hostile,
                    select(vec!["text/plain", "application/json", "text/x.enum", "x"])
                        .prop_map(|m| Value::String(m.to_owned()))
                        .boxed(),
                ),
            ),
            member("responseSchema", schema()),
            member("responseJsonSchema", schema()),
            member(
                "thinkingConfig",
                or_wrong(
                    hostile,
                    (
                        prop::option::of(-2i64..40_000),
                        prop::option::of(any::<bool>()),
                        prop::option::of(select(vec!["low", "high", "minimal"])),
                    )
                        .prop_map(|(budget, include, level)| {
                            let mut c = json!({});
                            if let Some(b) = budget {
                                c["thinkingBudget"] = b.into();
                            }
                            if let Some(i) = include {
                                c["includeThoughts"] = i.into();
                            }
                            if let Some(l) = level {
                                c["thinkingLevel"] = l.into();
                            }
                            c
                        })
                        .boxed(),
                ),
            ),
            member(
                "stopSequences",
                or_wrong(
                    hostile,
                    prop::collection::vec(odd_string(), 0..6)
                        .prop_map(|v| v.into_iter().map(Value::String).collect())
                        .boxed(),
                ),
            ),
        ]
        .prop_map(object)
        .boxed(),
    )
}

fn tool(hostile: bool) -> BoxedStrategy<Value> {
    or_wrong(
        hostile,
        prop_oneof![
            3 => prop::collection::vec((odd_string(), prop::option::of(schema())), 0..3).prop_map(|decls| {
                let decls: Vec<Value> = decls
                    .into_iter()
                    .map(|(name, parameters)| match parameters {
                        Some(p) => json!({ "name": name, "parameters": p }),
                        None => json!({ "name": name }),
                    })
                    .collect();
                json!({ "functionDeclarations": decls })
            }),
            1 => Just(json!({ "googleSearch": {} })),
            1 => Just(json!({ "codeExecution": {} })),
            1 => Just(json!({ "urlContext": {} })),
        ]
        .boxed(),
    )
}

/// A `generateContent` body: every field Gemini reads, in either spelling where the gateway
/// looks at both, now and then of a wrong type, plus unknown fields.
fn native_body(hostile: bool) -> BoxedStrategy<Value> {
    let fields = vec![
        member(
            "contents",
            or_wrong(
                hostile,
                prop::collection::vec(content(hostile), 0..4)
                    .prop_map(Value::Array)
                    .boxed(),
            ),
        ),
        member("systemInstruction", content(hostile)),
        member("system_instruction", content(hostile)),
        member("generationConfig", generation_config(hostile)),
        member("generation_config", generation_config(hostile)),
        member(
            "safetySettings",
            or_wrong(
                hostile,
                prop::collection::vec(
                    (
                        select(vec![
                            "HARM_CATEGORY_HARASSMENT",
                            "HARM_CATEGORY_DANGEROUS_CONTENT",
                            "X",
                        ]),
                        select(vec!["OFF", "BLOCK_NONE", "BLOCK_ONLY_HIGH", "Y"]),
                    )
                        .prop_map(|(c, t)| json!({ "category": c, "threshold": t })),
                    0..3,
                )
                .prop_map(Value::Array)
                .boxed(),
            ),
        ),
        member("safety_settings", any_json()),
        member(
            "tools",
            or_wrong(
                hostile,
                prop::collection::vec(tool(hostile), 0..3)
                    .prop_map(Value::Array)
                    .boxed(),
            ),
        ),
        member("toolConfig", any_json()),
        member(
            "cachedContent",
            odd_string().prop_map(Value::String).boxed(),
        ),
    ];
    let extra = prop::collection::vec((key(), any_json()), 0..if hostile { 3 } else { 1 });
    (fields, extra)
        .prop_map(|(members, extra)| {
            let mut body = object(members);
            if let Value::Object(map) = &mut body {
                for (name, value) in extra {
                    map.entry(name).or_insert(value);
                }
            }
            body
        })
        .boxed()
}

fn native_model() -> BoxedStrategy<&'static str> {
    select(vec![
        "gemini-2.5-flash",
        "gemini-2.5-pro",
        "gemini-3-pro-preview",
        "gemma-3-27b-it",
        "gemini-2.0-flash",
        "gemini-embedding-001",
    ])
    .boxed()
}

/// The operator's settings the native handling applies: none, the defaults, or every switch
/// and a thinking default for every model.
fn settings() -> Vec<(Catalog, Compat)> {
    let quiet = Compat {
        default_safety_settings: Vec::new(),
        system_as_user_models: Vec::new(),
        ..Compat::default()
    };
    let every = Compat {
        system_as_user_models: vec!["*".into()],
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
    };
    let thinking = Catalog {
        thinking_defaults: vec![ThinkingDefault {
            pattern: "*".into(),
            thinking_budget: Some(1024),
            thinking_level: None,
            include_thoughts: Some(true),
        }],
        ..Catalog::default()
    };
    vec![
        (Catalog::default(), quiet),
        (Catalog::default(), Compat::default()),
        (thinking, every),
    ]
}

/// What the native handler does with a body, for each of the settings: it parses as a JSON
/// object or is refused; the body sent upstream is a JSON object, proportionate in size,
/// untouched when no setting applies, and keeps every member of the client's but the ones
/// a switch owns; the estimate and Code Assist's envelope take it.
pub(super) fn check_native(raw: &[u8], model: &str) -> Result<(), TestCaseError> {
    let Ok(parsed) = serde_json::from_slice::<Value>(raw) else {
        return Ok(()); // the handler's 400 "Invalid JSON payload"
    };
    if !parsed.is_object() {
        return Ok(()); // the handler's 400 "must be a JSON object"
    }
    let _ = estimate_native(&parsed, raw.len(), 8192);
    let typed = serde_json::from_slice::<gemini::GenerateContentRequest>(raw);
    if let Ok(request) = &typed {
        let _ = estimate(request, 8192);
        prop_assert!(serde_json::to_vec(request).is_ok());
    }
    for (index, (catalog, compat)) in settings().into_iter().enumerate() {
        let mut body = parsed.clone();
        let sent = match native_generate_body(raw.to_vec(), &mut body, model, &catalog, &compat) {
            Ok(sent) => sent,
            Err(err) => {
                assert_client_error(&err)?;
                continue;
            }
        };
        prop_assert!(
            sent.len() <= 2 * raw.len() + 64 * 1024,
            "{} bytes in, {} out",
            raw.len(),
            sent.len()
        );
        let out: Value = serde_json::from_slice(&sent)
            .map_err(|e| TestCaseError::fail(format!("the body sent upstream is not JSON: {e}")))?;
        let (Value::Object(out), Value::Object(client)) = (&out, &parsed) else {
            return Err(TestCaseError::fail(
                "the body sent upstream is not an object",
            ));
        };
        if index == 0 {
            prop_assert_eq!(&sent[..], raw, "no setting applies, yet the body changed");
        }
        let owned = [
            "safetySettings",
            "systemInstruction",
            "system_instruction",
            "contents",
            "generationConfig",
            "generation_config",
        ];
        for (name, value) in client {
            if !owned.contains(&name.as_str()) {
                let kept = out.get(name).is_some_and(|v| same_json(v, value));
                prop_assert!(kept, "member {name} lost or changed");
            }
        }
        let has_safety =
            client.contains_key("safetySettings") || client.contains_key("safety_settings");
        if index == 1 && !has_safety {
            prop_assert!(
                out.contains_key("safetySettings"),
                "the default safety settings are missing"
            );
        }
        if let Some(theirs) = client.get("safetySettings") {
            prop_assert!(
                out.get("safetySettings")
                    .is_some_and(|ours| same_json(ours, theirs))
            );
        }
        let text = String::from_utf8_lossy(&sent);
        let _ = code_assist_can_serve(&Value::Object(out.clone()));
        let wrapped = wrap_generate(model, "project-1", "prompt-1", &text)
            .map_err(|e| TestCaseError::fail(format!("envelope refused a JSON object: {e}")))?;
        match serde_json::from_str::<Value>(&wrapped) {
            Ok(wrapped) => {
                prop_assert!(wrapped["request"].is_object());
                prop_assert!(wrapped["request"].get("model").is_none());
            }
            // The envelope is one level deeper than the body, which may sit at the limit.
            Err(e) => prop_assert!(
                e.to_string().contains("recursion limit"),
                "envelope is not JSON: {e}"
            ),
        }
        prop_assert!(wrap_count(model, &text).is_ok());
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(1200))]
    #[test]
    fn valid_ish_native_bodies_pass_through_the_handling(body in prop_oneof![native_body(false), native_body(true)], model in native_model()) {
        check_native(body.to_string().as_bytes(), model)?;
    }
}

proptest! {
    #![proptest_config(config(400))]
    #[test]
    fn arbitrary_json_as_a_native_body(body in prop_oneof![any_json(), deep_json()], model in native_model()) {
        check_native(body.to_string().as_bytes(), model)?;
    }

    #[test]
    fn mutated_native_bodies(body in native_body(false), edits in mutations(), model in native_model()) {
        check_native(&mutate(body.to_string().into_bytes(), &edits), model)?;
    }
}

fn model_segment() -> BoxedStrategy<String> {
    prop_oneof![
        3 => "[a-z0-9][a-z0-9.-]{0,20}",
        2 => (select(vec!["", "fake-stream/", "anti-trunc/", "fake-stream/anti-trunc/", "anti-trunc/fake-stream/", "x/"]), "[a-z0-9.-]{0,20}")
            .prop_map(|(prefix, id)| format!("{prefix}{id}")),
        1 => select(vec!["..", "%2e%2e", "..%2F..%2Fadmin", "%00", "a%2Fb", "gemini%20flash", "", "models", ":"]).prop_map(str::to_owned),
        1 => odd_string(),
        1 => (100usize..300).prop_map(|n| "m".repeat(n)),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(config(600))]
    #[test]
    fn model_paths_route_or_get_a_clear_error(
        prefix in select(vec!["/v1beta/", "/v1/", "/gemini/v1beta/", "/v1beta//", "/"]),
        segment in model_segment(),
        action in select(vec!["generateContent", "streamGenerateContent", "countTokens", "embedContent", "batchEmbedContents", "nope", ""]),
        method in select(vec!["POST", "GET", "DELETE", "PATCH"]),
        google_client in any::<bool>(),
    ) {
        let path = format!("{prefix}models/{segment}:{action}");
        match route::resolve(method, &path, Hints { google_client }) {
            Ok(Route::Gemini(GeminiRoute::Action { model, .. })) => {
                // The handler strips mode prefixes, then checks the id it puts in the URL.
                let (bare, _) = Compat::default().strip_prefixes(&model);
                if check_model_id(bare).is_ok() {
                    prop_assert!(ModelName::parse(bare).is_ok(), "{bare:?} routed but is no model name");
                }
            }
            Ok(_) => {}
            Err(err) => {
                assert_client_error(&err.error)?;
                if prefix.starts_with("/v1beta") || prefix.starts_with("/gemini") {
                    prop_assert_eq!(err.surface, Surface::Gemini);
                }
            }
        }
        // Names the way a client writes them in a body.
        if let Err(err) = ModelName::parse(&segment) {
            assert_client_error(&err)?;
        }
    }
}
