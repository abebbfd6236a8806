//! Property tests: generated requests and byte streams through the translators and the
//! decoders, asserting what must hold for any input a client or an upstream can send. No
//! panic; a refusal is a clear client error (4xx with a message, renderable in both
//! surfaces' shapes), never an internal one; nothing grows without bound (the SSE decoder
//! holds at most its cap, output stays proportionate to input); and chunk boundaries never
//! change a stream's translation.
//!
//! Cases per property (`ProptestConfig::cases`, fixed here so the run time is known: an
//! explicit count is not changed by `PROPTEST_CASES`). Generators come in two moods: plausible
//! throughout (about half of the chat bodies translate), reaching the deep translation paths,
//! or hostile throughout (wrong types, deep nesting, odd and huge strings), reaching the
//! error paths.
//!
//! | module | property | cases |
//! |---|---|---|
//! | `chat` | plausible and hostile chat bodies, with no switch and with every switch on | 1500 |
//! | `chat` | arbitrary JSON (deep nesting, odd strings, wrong types) as a chat body | 800 |
//! | `chat` | plausible chat bodies with bytes cut, flipped, inserted or dropped | 800 |
//! | `chat` | non-stream answers from generated upstream JSON | 600 |
//! | `chat` | schemas (`$ref` fan-outs included) through both dialects and a request | 500 |
//! | `chat` | strings of 50k–200k characters in every kind of field, both surfaces | 12 |
//! | `native` | plausible and hostile `generateContent` bodies through the native handling | 1200 |
//! | `native` | arbitrary JSON as a native body | 400 |
//! | `native` | plausible native bodies with bytes changed | 400 |
//! | `native` | model paths, names and mode prefixes through the router | 600 |
//! | `streams` | SSE framings (LF, CRLF, CR, BOM, comments) split anywhere | 600 |
//! | `streams` | arbitrary bytes under a small decoder cap: bounded, split-invariant | 800 |
//! | `streams` | Gemini streams through the chat pipeline: whole, split, cut, mutated | 700 |
//! | `streams` | the same through the anti-truncation pipeline, piece by piece | 300 |
//! | `streams` | Code Assist streams unwrapped, split and mutated | 400 |
//! | `streams` | the usage scanner over arbitrary chunks | 400 |
//! | `streams` | `compact_json` and the fake streams' answer framing | 500 |
//!
//! 10,512 cases in all, about 25 s of CPU in a debug build (`cargo test` spreads them over
//! the cores). A failure prints its shrunk input; no failure files are written.

mod chat;
mod native;
mod streams;

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Number, Value};

use crate::domain::error::GatewayError;
use crate::domain::render;
use crate::domain::route::Surface;

/// A proptest config with `cases` cases and no failure files written into the source tree.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Strings clients and upstreams send: short plain ones, every Unicode scalar (controls,
/// NUL, BOM, bidi overrides), JSON and SSE metacharacters, and long runs.
fn odd_string() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "[a-zA-Z0-9 _.:/-]{0,12}",
        3 => prop::collection::vec(any::<char>(), 0..16).prop_map(String::from_iter),
        2 => select(vec![
            "", "\0", "\u{feff}", "\u{202e}evil", "null", "[DONE]", "data: x\n\n", "\r\n", "\\u0000",
            "\"", "\\", "{", "}]", "🎉🎉", "é", "models/../admin", "%2e%2e", "gemini-2.5-flash",
            "<think>", "[done]", "$ref", "#/$defs/a", "\u{fffd}",
        ])
        .prop_map(str::to_owned),
        1 => (1usize..3_000, select(vec!["x", "é", "世", "🎉", "\n", "\"", "a b"]))
            .prop_map(|(n, unit)| unit.repeat(n)),
    ]
    .boxed()
}

/// Field names a translator looks for, mixed with odd ones, as object keys.
fn key() -> BoxedStrategy<String> {
    prop_oneof![
        3 => select(vec![
            "model", "messages", "role", "content", "text", "type", "parts", "contents", "name",
            "tools", "function", "parameters", "properties", "items", "required", "$ref", "$defs",
            "anyOf", "allOf", "enum", "stream", "google", "thinking_config", "thinkingConfig",
            "generationConfig", "systemInstruction", "safetySettings", "image_url", "url",
            "tool_calls", "arguments", "response_format", "json_schema", "schema", "candidates",
            "usageMetadata", "finishReason", "response", "error", "data",
        ])
        .prop_map(str::to_owned),
        1 => odd_string(),
    ]
    .boxed()
}

fn number() -> BoxedStrategy<Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-5i64..5).prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        (-3.0f64..3.0).prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
    ]
    .boxed()
}

/// Any JSON value, a few levels deep.
fn any_json() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        odd_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..5)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
    .boxed()
}

/// A value nested `depth` arrays or objects deep, past `serde_json`'s limit of 128 at times.
fn deep_json() -> BoxedStrategy<Value> {
    (1usize..200, any::<bool>(), any_json())
        .prop_map(|(depth, arrays, core)| {
            (0..depth).fold(core, |inner, _| {
                if arrays {
                    Value::Array(vec![inner])
                } else {
                    let mut map = Map::new();
                    map.insert("a".to_owned(), inner);
                    Value::Object(map)
                }
            })
        })
        .boxed()
}

/// A plausible value; with `wrong`, any JSON (a wrong type, deep nesting) a third of the time.
/// Generators take `wrong` so a case is either plausible throughout, reaching the deep
/// translation paths, or hostile throughout, reaching the error paths.
fn or_wrong(wrong: bool, plausible: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    if wrong {
        prop_oneof![4 => plausible, 1 => any_json(), 1 => deep_json()].boxed()
    } else {
        plausible
    }
}

/// An optional object member: present about half of the time.
fn member(
    name: &'static str,
    value: BoxedStrategy<Value>,
) -> BoxedStrategy<Option<(String, Value)>> {
    prop::option::of(value.prop_map(move |v| (name.to_owned(), v))).boxed()
}

/// An optional object member, present with probability `p`.
fn member_p(
    name: &'static str,
    p: f64,
    value: BoxedStrategy<Value>,
) -> BoxedStrategy<Option<(String, Value)>> {
    let pair = value.prop_map(move |v| (name.to_owned(), v));
    if p >= 1.0 {
        pair.prop_map(Some).boxed()
    } else if p <= 0.0 {
        Just(None).boxed()
    } else {
        prop::option::weighted(p, pair).boxed()
    }
}

/// The present members as an object.
fn object(members: Vec<Option<(String, Value)>>) -> Value {
    Value::Object(members.into_iter().flatten().collect())
}

/// Edits to a byte string: cut it, flip a byte, insert one, or drop a range.
#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Flip(usize, u8),
    Insert(usize, u8),
    Remove(usize, usize),
}

fn mutations() -> BoxedStrategy<Vec<Mutation>> {
    prop::collection::vec(
        prop_oneof![
            any::<usize>().prop_map(Mutation::Truncate),
            (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Flip(at, b)),
            (
                any::<usize>(),
                select(b"{}[]\",:\\\n\r \0\xff\xc3".to_vec())
            )
                .prop_map(|(at, b)| Mutation::Insert(at, b)),
            (any::<usize>(), 0usize..16).prop_map(|(at, n)| Mutation::Remove(at, n)),
        ],
        1..4,
    )
    .boxed()
}

fn mutate(mut bytes: Vec<u8>, edits: &[Mutation]) -> Vec<u8> {
    for edit in edits {
        let len = bytes.len();
        match *edit {
            Mutation::Truncate(at) => bytes.truncate(at % (len + 1)),
            Mutation::Flip(at, b) if len > 0 => bytes[at % len] ^= b | 1,
            Mutation::Insert(at, b) => bytes.insert(at % (len + 1), b),
            Mutation::Remove(at, n) if len > 0 => {
                let start = at % len;
                bytes.drain(start..(start + n).min(len));
            }
            Mutation::Flip(..) | Mutation::Remove(..) => {}
        }
    }
    bytes
}

/// Sorted cut points into `len` bytes, from arbitrary numbers.
fn cuts(len: usize, raw: &[usize]) -> Vec<usize> {
    let mut cuts: Vec<usize> = raw.iter().map(|c| c % (len + 1)).collect();
    cuts.sort_unstable();
    cuts
}

/// `bytes` in the pieces `cuts` make.
fn pieces<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for &cut in cuts {
        out.push(&bytes[start..cut]);
        start = cut;
    }
    out.push(&bytes[start..]);
    out
}

/// Equal JSON, but for the last bit of a float: `serde_json` parses floats fast rather than
/// exactly (no `float_roundtrip`), so a relayed float may move by one ULP.
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            (x - y).abs() <= f64::EPSILON * 4.0 * x.abs().max(y.abs()).max(1.0)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

/// A refusal a client can act on: a 4xx with a message, in both surfaces' shapes.
fn assert_client_error(err: &GatewayError) -> Result<(), TestCaseError> {
    let status = err.status();
    prop_assert!(
        (400..500).contains(&status),
        "not a client error: {status} {err:?}"
    );
    prop_assert!(
        !err.client_message().trim().is_empty(),
        "no message: {err:?}"
    );
    for surface in [Surface::OpenAi, Surface::Gemini] {
        prop_assert!(render::error_body(surface, err).get("error").is_some());
    }
    Ok(())
}

/// JSON-Schema-like values: every keyword the converters read, `$ref`s into `$defs` (some
/// recursive, some dangling), unions and long descriptions.
fn schema() -> BoxedStrategy<Value> {
    let types = select(vec![
        "string", "number", "integer", "boolean", "object", "array", "null", "STRING", "date",
    ]);
    let leaf = prop_oneof![
        4 => (types.clone(), prop::option::of(odd_string()), prop::option::of(prop::collection::vec(odd_string(), 0..4)))
            .prop_map(|(ty, description, values)| {
                let mut map = Map::new();
                map.insert("type".into(), Value::String(ty.to_owned()));
                if let Some(d) = description {
                    map.insert("description".into(), Value::String(d));
                }
                if let Some(v) = values {
                    map.insert("enum".into(), v.into_iter().map(Value::String).collect());
                }
                Value::Object(map)
            }),
        1 => select(vec!["#", "#/$defs/a", "#/$defs/b", "#/definitions/a", "#/$defs/missing", "http://x/s.json", "#/properties/p"])
            .prop_map(|r| serde_json::json!({ "$ref": r })),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => any_json(),
    ];
    let node = leaf
        .prop_recursive(4, 32, 4, move |inner| {
            prop_oneof![
                (
                    prop::collection::vec((key(), inner.clone()), 0..4),
                    prop::option::of(prop::collection::vec(key(), 0..3)),
                    prop::option::of(any_json())
                )
                    .prop_map(|(props, required, additional)| {
                        let mut map = Map::new();
                        map.insert("type".into(), "object".into());
                        map.insert(
                            "properties".into(),
                            Value::Object(props.into_iter().collect()),
                        );
                        if let Some(r) = required {
                            map.insert(
                                "required".into(),
                                r.into_iter().map(Value::String).collect(),
                            );
                        }
                        if let Some(a) = additional {
                            map.insert("additionalProperties".into(), a);
                        }
                        Value::Object(map)
                    }),
                (inner.clone(), prop::option::of(0u64..5)).prop_map(|(items, min)| {
                    let mut map = Map::new();
                    map.insert("type".into(), "array".into());
                    map.insert("items".into(), items);
                    if let Some(m) = min {
                        map.insert("minItems".into(), m.into());
                    }
                    Value::Object(map)
                }),
                (
                    select(vec!["anyOf", "oneOf", "allOf"]),
                    prop::collection::vec(inner.clone(), 0..4)
                )
                    .prop_map(|(k, branches)| serde_json::json!({ k: branches })),
                prop::collection::vec(select(vec!["string", "null", "integer", "object"]), 1..3)
                    .prop_map(|tys| serde_json::json!({ "type": tys })),
            ]
        })
        .boxed();
    let with_defs =
        (node.clone(), prop::option::of((node.clone(), node))).prop_map(|(mut root, defs)| {
            if let (Some((a, b)), Value::Object(map)) = (defs, &mut root) {
                map.insert("$defs".into(), serde_json::json!({ "a": a, "b": b }));
            }
            root
        });
    prop_oneof![6 => with_defs, 1 => ref_fan_out()].boxed()
}

/// `$defs` that each use the one below several times, over a described leaf: the shape
/// that multiplies a description when `$ref`s are inlined.
fn ref_fan_out() -> BoxedStrategy<Value> {
    (1usize..5, 2usize..12, 0usize..4000)
        .prop_map(|(levels, fan_out, described)| {
            let mut defs = Map::new();
            defs.insert(
                "d0".into(),
                serde_json::json!({ "type": "string", "description": "x".repeat(described) }),
            );
            for level in 1..=levels {
                let properties: Map<String, Value> = (0..fan_out)
                    .map(|i| {
                        (
                            format!("p{i}"),
                            serde_json::json!({ "$ref": format!("#/$defs/d{}", level - 1) }),
                        )
                    })
                    .collect();
                defs.insert(
                    format!("d{level}"),
                    serde_json::json!({ "type": "object", "properties": properties }),
                );
            }
            serde_json::json!({ "$defs": defs, "$ref": format!("#/$defs/d{levels}") })
        })
        .boxed()
}

/// Base64 of arbitrary bytes, or text that is not base64.
fn base64_payload() -> BoxedStrategy<String> {
    use base64::Engine as _;
    prop_oneof![
        3 => prop::collection::vec(any::<u8>(), 0..64)
            .prop_map(|b| base64::engine::general_purpose::STANDARD.encode(b)),
        1 => odd_string(),
    ]
    .boxed()
}

/// One part of a Gemini answer or request.
fn gemini_part() -> BoxedStrategy<Value> {
    prop_oneof![
        5 => odd_string().prop_map(|t| serde_json::json!({ "text": t })),
        2 => (odd_string(), any::<bool>()).prop_map(|(t, thought)| serde_json::json!({ "text": t, "thought": thought })),
        1 => (odd_string(), odd_string()).prop_map(|(t, s)| serde_json::json!({ "text": t, "thoughtSignature": s })),
        2 => (odd_string(), any_json()).prop_map(|(name, args)| serde_json::json!({ "functionCall": { "name": name, "args": args } })),
        1 => (odd_string(), any_json()).prop_map(|(name, response)| serde_json::json!({ "functionResponse": { "name": name, "response": response } })),
        1 => (select(vec!["image/png", "image/jpeg", "audio/wav", "application/pdf", "x/y"]), base64_payload())
            .prop_map(|(mime, data)| serde_json::json!({ "inlineData": { "mimeType": mime, "data": data } })),
        1 => (odd_string(), odd_string()).prop_map(|(code, out)| serde_json::json!({ "executableCode": { "language": "PYTHON", "code": code }, "codeExecutionResult": { "outcome": "OUTCOME_OK", "output": out } })),
        1 => any_json(),
    ]
    .boxed()
}

fn finish_reason() -> BoxedStrategy<Value> {
    select(vec![
        "STOP",
        "MAX_TOKENS",
        "SAFETY",
        "RECITATION",
        "OTHER",
        "MALFORMED_FUNCTION_CALL",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "LANGUAGE",
        "IMAGE_SAFETY",
        "NEW_REASON",
        "FINISH_REASON_UNSPECIFIED",
    ])
    .prop_map(|r| Value::String(r.to_owned()))
    .boxed()
}

fn usage_metadata() -> BoxedStrategy<Value> {
    (
        0u64..100_000,
        0u64..100_000,
        prop::option::of(0u64..10_000),
        prop::option::of(any::<u64>()),
    )
        .prop_map(|(prompt, candidates, thoughts, total)| {
            let mut meta = serde_json::json!({
                "promptTokenCount": prompt,
                "candidatesTokenCount": candidates,
            });
            if let Some(t) = thoughts {
                meta["thoughtsTokenCount"] = t.into();
            }
            if let Some(t) = total {
                meta["totalTokenCount"] = t.into();
            }
            meta
        })
        .boxed()
}

/// One `GenerateContentResponse` (a whole answer, or one stream event): candidates with
/// parts, finish reasons, grounding, usage, a blocked prompt; now and then any JSON.
fn gemini_response() -> BoxedStrategy<Value> {
    let candidate = (
        prop::option::of(0u32..4),
        prop::collection::vec(gemini_part(), 0..4),
        prop::option::of(finish_reason()),
        prop::option::of(any_json()),
    )
        .prop_map(|(index, parts, finish, grounding)| {
            let mut c = serde_json::json!({ "content": { "role": "model", "parts": parts } });
            if let Some(i) = index {
                c["index"] = i.into();
            }
            if let Some(f) = finish {
                c["finishReason"] = f;
            }
            if let Some(g) = grounding {
                c["groundingMetadata"] = g;
            }
            c
        });
    prop_oneof![
        8 => (
            prop::collection::vec(candidate, 0..3),
            prop::option::of(usage_metadata()),
            prop::option::of(select(vec!["SAFETY", "OTHER", "BLOCKLIST"])),
        )
            .prop_map(|(candidates, usage, blocked)| {
                let mut resp = serde_json::json!({ "candidates": candidates, "modelVersion": "gemini-2.5-flash" });
                if let Some(u) = usage {
                    resp["usageMetadata"] = u;
                }
                if let Some(b) = blocked {
                    resp["promptFeedback"] = serde_json::json!({ "blockReason": b });
                }
                resp
            }),
        1 => (400u16..600, odd_string()).prop_map(|(code, message)| serde_json::json!({ "error": { "code": code, "message": message, "status": "INTERNAL" } })),
        1 => any_json(),
    ]
    .boxed()
}
