use serde_json::{Value, json};

use super::*;
use crate::domain::gemini::GenerationConfig;
use crate::domain::sse::payloads;
use crate::domain::translate::chat::ReplyPlan;

fn plan(max_attempts: u32, capped: bool) -> Plan {
    let compat = Compat {
        anti_truncation_max_attempts: max_attempts,
        ..Compat::default()
    };
    let body = GenerateContentRequest {
        generation_config: capped.then(|| GenerationConfig {
            max_output_tokens: Some(10),
            ..GenerationConfig::default()
        }),
        ..GenerateContentRequest::default()
    };
    Plan::for_request(&compat, &body).expect("plan")
}

fn original() -> GenerateContentRequest {
    let mut body = GenerateContentRequest {
        contents: vec![Content::new(Role::User, vec![Part::text("tell me")])],
        ..GenerateContentRequest::default()
    };
    plan(3, false).instruct(&mut body, false);
    body
}

/// Runs texts through a filter, one push each, and the finish.
fn filtered(marker: &str, pieces: &[&str]) -> (String, bool) {
    let mut filter = MarkerFilter::new(marker);
    let mut out: String = pieces.iter().map(|p| filter.push(p)).collect();
    let ended = filter.ended_with_marker();
    out.push_str(&filter.finish());
    (out, ended)
}

#[test]
fn the_marker_is_removed_whole_or_split_anywhere() {
    let text = "Hello world.\n[done]";
    for cut in 0..=text.len() {
        let (out, marked) = filtered("[done]", &[&text[..cut], &text[cut..]]);
        assert_eq!(out, "Hello world.", "cut at {cut}");
        assert!(marked, "cut at {cut}");
    }
    let bytes: Vec<String> = text.chars().map(String::from).collect();
    let refs: Vec<&str> = bytes.iter().map(String::as_str).collect();
    assert_eq!(filtered("[done]", &refs), ("Hello world.".to_owned(), true));
}

#[test]
fn nothing_that_could_be_the_marker_is_shown_before_it_is_decided() {
    let mut filter = MarkerFilter::new("[done]");
    assert_eq!(filter.push("a [do"), "a");
    assert_eq!(filter.push("g] b"), " [dog] b", "not the marker after all");
    assert_eq!(filter.push(" \n"), "", "trailing whitespace waits");
    assert_eq!(filter.push("c"), " \nc");
    assert!(!filter.ended_with_marker());
    assert_eq!(filter.finish(), "");
}

#[test]
fn text_without_the_marker_is_released_at_the_end_as_written() {
    assert_eq!(
        filtered("[done]", &["cut mid [do"]),
        ("cut mid [do".to_owned(), false)
    );
    assert_eq!(
        filtered("[done]", &["ends \n"]),
        ("ends \n".to_owned(), false)
    );
}

#[test]
fn a_marker_in_the_middle_is_dropped_and_does_not_end_the_answer() {
    let (out, marked) = filtered("[done]", &["one [done] two"]);
    assert_eq!(out, "one two");
    assert!(!marked);
    let (out, marked) = filtered("[done]", &["x[done]\n\n  "]);
    assert_eq!(out, "x");
    assert!(marked, "whitespace after the marker still ends with it");
}

#[test]
fn multibyte_markers_and_text_are_split_on_character_boundaries() {
    let text = "答案是 42。【完】";
    for (cut, _) in text.char_indices() {
        let (out, marked) = filtered("【完】", &[&text[..cut], &text[cut..]]);
        assert_eq!(out, "答案是 42。", "cut at {cut}");
        assert!(marked);
    }
}

#[test]
fn structured_output_several_candidates_skip_the_mode() {
    let compat = Compat::default();
    let with = |config: GenerationConfig| GenerateContentRequest {
        generation_config: Some(config),
        ..GenerateContentRequest::default()
    };
    assert!(
        Plan::for_request(
            &compat,
            &with(GenerationConfig {
                response_mime_type: Some("application/json".into()),
                ..GenerationConfig::default()
            })
        )
        .is_none()
    );
    assert!(
        Plan::for_request(
            &compat,
            &with(GenerationConfig {
                candidate_count: Some(2),
                ..GenerationConfig::default()
            })
        )
        .is_none()
    );
    assert!(Plan::for_request(&compat, &GenerateContentRequest::default()).is_some());
}

#[test]
fn the_instruction_joins_the_system_instruction_with_the_marker_in_backticks() {
    let mut body = GenerateContentRequest {
        system_instruction: Some(Content {
            role: None,
            parts: vec![Part::text("be brief")],
        }),
        ..GenerateContentRequest::default()
    };
    plan(3, false).instruct(&mut body, false);
    let parts = &body.system_instruction.as_ref().unwrap().parts;
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0], Part::text("be brief"));
    let PartData::Text(text) = &parts[1].data else {
        panic!("{parts:?}")
    };
    assert!(text.contains("`[done]`"), "{text}");
    assert!(original().system_instruction.is_some());
}

fn event(value: Value) -> GenerateContentResponse {
    serde_json::from_value(value).unwrap()
}

fn text_event(
    text: &str,
    finish: Option<&str>,
    usage: Option<(u64, u64)>,
) -> GenerateContentResponse {
    let mut v = json!({"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}]});
    if let Some(f) = finish {
        v["candidates"][0]["finishReason"] = json!(f);
    }
    if let Some((p, c)) = usage {
        v["usageMetadata"] =
            json!({"promptTokenCount": p, "candidatesTokenCount": c, "totalTokenCount": p + c});
    }
    event(v)
}

#[test]
fn a_cut_piece_is_continued_with_the_text_so_far_then_a_user_turn() {
    let mut machine = Continuation::new(plan(3, false), original());
    machine.on_response(text_event("Once upon", None, Some((10, 2))));
    machine.on_response(text_event(" a time [do", None, Some((10, 4))));
    let Step::Continue(body) = machine.end_piece() else {
        panic!("a stream that just ended is continued")
    };
    assert_eq!(body.contents.len(), 3);
    assert_eq!(body.contents[0], original().contents[0]);
    assert_eq!(
        body.contents[1],
        Content::new(Role::Model, vec![Part::text("Once upon a time [do")])
    );
    assert_eq!(
        body.contents[2],
        Content::new(Role::User, vec![Part::text(CONTINUE_PROMPT)])
    );
    assert_eq!(body.system_instruction, original().system_instruction);
    assert_eq!(machine.attempts(), 1);
    assert_eq!(
        machine.usage().prompt_token_count,
        10,
        "the last usage of a piece counts"
    );
}

#[test]
fn finish_reasons_decide_whether_a_piece_was_cut() {
    // (finish, client capped, ends with marker) → continued?
    let cases = [
        (None, false, false, true),
        (Some("MAX_TOKENS"), false, false, true),
        (Some("MAX_TOKENS"), true, false, false),
        (Some("STOP"), false, false, true),
        (Some("STOP"), false, true, false),
        (Some("MAX_TOKENS"), false, true, false),
        (None, false, true, false),
        (Some("SAFETY"), false, false, false),
    ];
    for (finish, capped, marked, continued) in cases {
        let mut machine = Continuation::new(plan(3, capped), original());
        let text = if marked { "all\n[done]" } else { "all" };
        machine.on_response(text_event(text, finish, None));
        let step = machine.end_piece();
        assert_eq!(
            matches!(step, Step::Continue(_)),
            continued,
            "{finish:?} capped={capped} marked={marked}"
        );
    }
}

#[test]
fn the_finish_is_the_last_pieces_and_the_usage_sums_every_piece() {
    let mut machine = Continuation::new(plan(3, false), original());
    machine.on_response(text_event("a", Some("MAX_TOKENS"), Some((5, 1))));
    assert!(matches!(machine.end_piece(), Step::Continue(_)));
    machine.on_response(text_event("b\n[do", None, Some((7, 2))));
    machine.on_response(text_event("ne]", Some("MAX_TOKENS"), Some((7, 3))));
    let Step::Finish(last) = machine.end_piece() else {
        panic!("ended with the marker")
    };
    let candidate = &last.candidates[0];
    assert_eq!(candidate.finish_reason, Some(FinishReason::Stop));
    assert_eq!(
        candidate.content.as_ref().unwrap().parts,
        Vec::<Part>::new()
    );
    let usage = last.usage_metadata.unwrap();
    assert_eq!(
        (
            usage.prompt_token_count,
            usage.candidates_token_count,
            usage.total_token_count
        ),
        (12, 4, 16)
    );
}

#[test]
fn attempts_are_bounded_and_the_last_finish_stays() {
    let mut machine = Continuation::new(plan(2, false), original());
    for _ in 0..2 {
        machine.on_response(text_event("x", Some("MAX_TOKENS"), None));
        assert!(matches!(machine.end_piece(), Step::Continue(_)));
    }
    machine.on_response(text_event("y ", Some("MAX_TOKENS"), None));
    let Step::Finish(last) = machine.end_piece() else {
        panic!("out of attempts")
    };
    assert_eq!(
        last.candidates[0].finish_reason,
        Some(FinishReason::MaxTokens)
    );
    assert_eq!(
        last.candidates[0].content.as_ref().unwrap().parts,
        vec![Part::text(" ")],
        "the held whitespace is released"
    );
}

#[test]
fn tool_calls_and_blocked_prompts_are_never_continued() {
    let mut machine = Continuation::new(plan(3, false), original());
    machine.on_response(event(json!({"candidates": [{"content": {"role": "model",
        "parts": [{"functionCall": {"name": "f", "args": {}}}]}, "finishReason": "STOP"}]})));
    assert!(matches!(machine.end_piece(), Step::Finish(_)));
    let mut machine = Continuation::new(plan(3, false), original());
    let blocked = machine.on_response(event(
        json!({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 3}}),
    ));
    assert!(blocked.usage_metadata.is_none());
    let Step::Finish(last) = machine.end_piece() else {
        panic!("blocked")
    };
    assert!(last.candidates.is_empty());
    assert_eq!(last.usage_metadata.unwrap().prompt_token_count, 3);
}

#[test]
fn without_text_the_original_request_is_asked_again() {
    let mut machine = Continuation::new(plan(3, false), original());
    machine.on_response(event(json!({"candidates": [{"content": {"role": "model",
        "parts": [{"text": "hmm", "thought": true}]}}]})));
    let Step::Continue(body) = machine.end_piece() else {
        panic!("cut")
    };
    assert_eq!(*body, original());
}

// ---------------------------------------------------------------- the stream pipeline

fn ctx() -> ChatContext {
    ChatContext {
        id: "chatcmpl-c1".into(),
        created: 1_700_000_000,
        model: "anti-trunc/gemini-2.5-flash".into(),
        reply: ReplyPlan::default(),
    }
}

fn sse(v: &Value) -> Vec<u8> {
    format!("data: {v}\r\n\r\n").into_bytes()
}

fn text_sse(text: &str, finish: Option<&str>, usage: Option<(u64, u64)>) -> Vec<u8> {
    sse(&serde_json::to_value(text_event(text, finish, usage)).unwrap())
}

fn content(events: &[Value]) -> String {
    events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect()
}

#[test]
fn pieces_stream_as_one_seamless_completion() {
    let mut p =
        ContinuedSsePipeline::new(ctx(), true, Continuation::new(plan(3, false), original()));
    let mut out = p.push(&text_sse("Once ", None, Some((10, 1))));
    out.extend(p.push(&text_sse("upon", None, Some((10, 2)))));
    let end = p.end_piece(None);
    out.extend(end.bytes);
    let next = end.next.expect("continued");
    assert_eq!(next.contents[1].parts, vec![Part::text("Once upon")]);
    out.extend(p.push(&text_sse(" a time.\n[do", None, Some((14, 3)))));
    out.extend(p.push(&text_sse("ne]", Some("STOP"), Some((14, 4)))));
    let end = p.end_piece(None);
    assert!(end.next.is_none());
    out.extend(end.bytes);
    assert!(p.ended());

    let events = payloads(&out);
    assert_eq!(content(&events), "Once upon a time.");
    assert!(!String::from_utf8_lossy(&out).contains("[do"));
    let roles = events
        .iter()
        .filter(|e| e["choices"][0]["delta"].get("role").is_some())
        .count();
    assert_eq!(roles, 1, "one role chunk");
    let finishes: Vec<&Value> = events
        .iter()
        .filter(|e| !e["choices"][0]["finish_reason"].is_null() && e.get("choices").is_some())
        .map(|e| &e["choices"][0]["finish_reason"])
        .collect();
    assert_eq!(finishes, [&json!("stop")]);
    assert!(
        events
            .iter()
            .filter(|e| e.is_object())
            .all(|e| e["id"] == "chatcmpl-c1")
    );
    let usage: Vec<&Value> = events.iter().filter_map(|e| e.get("usage")).collect();
    assert_eq!(usage.len(), 1);
    assert_eq!(usage[0]["prompt_tokens"], 24);
    assert_eq!(usage[0]["completion_tokens"], 6);
    assert_eq!(events.last(), Some(&json!("[DONE]")));
    assert_eq!(events.iter().filter(|e| **e == json!("[DONE]")).count(), 1);
    assert_eq!(p.usage().prompt_tokens, 24);
}

#[test]
fn a_piece_split_at_every_byte_gives_the_same_stream() {
    let mut input = text_sse("Hello", None, Some((3, 1)));
    input.extend(text_sse(" there\n[do", None, Some((3, 2))));
    input.extend(text_sse("ne]", Some("STOP"), Some((3, 3))));
    let run = |cut: usize| {
        let mut p =
            ContinuedSsePipeline::new(ctx(), false, Continuation::new(plan(3, false), original()));
        let mut out = p.push(&input[..cut]);
        out.extend(p.push(&input[cut..]));
        out.extend(p.end_piece(None).bytes);
        out
    };
    let whole = run(0);
    assert_eq!(content(&payloads(&whole)), "Hello there");
    for cut in 0..=input.len() {
        assert_eq!(run(cut), whole, "cut at {cut}");
    }
}

#[test]
fn a_break_is_continued_and_a_failed_continuation_ends_with_an_error() {
    let mut p =
        ContinuedSsePipeline::new(ctx(), false, Continuation::new(plan(3, false), original()));
    let mut out = p.push(&text_sse("part", None, None));
    let broke = GatewayError::BadGateway("The upstream stream was interrupted.".into());
    let end = p.end_piece(Some(&broke));
    assert!(end.next.is_some(), "a broken stream is continued");
    out.extend(end.bytes);
    out.extend(p.fail(&GatewayError::BadGateway("no key".into())));
    assert!(p.fail(&broke).is_empty(), "ended once");
    let events = payloads(&out);
    assert_eq!(content(&events), "part");
    assert_eq!(events[events.len() - 2]["error"]["message"], "no key");
    assert_eq!(events.last(), Some(&json!("[DONE]")));
}

#[test]
fn out_of_attempts_a_broken_stream_reports_its_break() {
    let mut p =
        ContinuedSsePipeline::new(ctx(), false, Continuation::new(plan(1, false), original()));
    p.push(&text_sse("a", None, None));
    assert!(p.end_piece(None).next.is_some());
    p.push(&text_sse("b", None, None));
    let broke = GatewayError::UpstreamTimeout("stalled".into());
    let end = p.end_piece(Some(&broke));
    assert!(end.next.is_none());
    let events = payloads(&end.bytes);
    assert_eq!(events[events.len() - 2]["error"]["message"], "stalled");
}

#[test]
fn a_client_cap_finishes_with_length_and_tool_calls_pass_through() {
    let mut p =
        ContinuedSsePipeline::new(ctx(), false, Continuation::new(plan(3, true), original()));
    p.push(&text_sse("short", Some("MAX_TOKENS"), None));
    let end = p.end_piece(None);
    assert!(end.next.is_none());
    let events = payloads(&end.bytes);
    assert_eq!(
        events[events.len() - 2]["choices"][0]["finish_reason"],
        "length"
    );

    let mut p =
        ContinuedSsePipeline::new(ctx(), false, Continuation::new(plan(3, false), original()));
    let mut out = p.push(&sse(&json!({"candidates": [{"content": {"role": "model",
        "parts": [{"functionCall": {"name": "f", "args": {"a": 1}}}]}, "finishReason": "STOP"}]})));
    let end = p.end_piece(None);
    assert!(end.next.is_none());
    out.extend(end.bytes);
    let events = payloads(&out);
    let finish = events
        .iter()
        .find_map(|e| e["choices"][0]["finish_reason"].as_str());
    assert_eq!(finish, Some("tool_calls"));
}

#[test]
fn an_upstream_error_event_ends_the_stream_without_continuing() {
    let mut p =
        ContinuedSsePipeline::new(ctx(), false, Continuation::new(plan(3, false), original()));
    let out = p.push(b"data: {\"error\":{\"code\":500,\"message\":\"x\"}}\n\n");
    assert!(
        String::from_utf8(out)
            .unwrap()
            .ends_with("data: [DONE]\n\n")
    );
    let end = p.end_piece(None);
    assert!(end.next.is_none() && end.bytes.is_empty());
}

// ---------------------------------------------------------------- stitching whole answers

#[test]
fn whole_answers_are_stitched_into_one() {
    let mut stitcher = Stitcher::new(Continuation::new(plan(3, false), original()));
    let first = event(
        json!({"candidates": [{"content": {"role": "model", "parts": [
        {"text": "plan", "thought": true}, {"text": "The answer "}]},
        "finishReason": "MAX_TOKENS", "groundingMetadata": {"x": 1}}],
        "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 2, "thoughtsTokenCount": 1, "totalTokenCount": 8},
        "modelVersion": "m", "responseId": "r1"}),
    );
    let next = stitcher.on_answer(first).expect("continued");
    assert_eq!(next.contents[1].parts, vec![Part::text("The answer ")]);
    let second = text_event("is 42.\n[done]", Some("STOP"), Some((9, 3)));
    assert!(stitcher.on_answer(second).is_none());
    assert_eq!(stitcher.usage().prompt_tokens, 14);
    let out = stitcher.into_response();
    let candidate = &out.candidates[0];
    assert_eq!(candidate.finish_reason, Some(FinishReason::Stop));
    let parts = &candidate.content.as_ref().unwrap().parts;
    assert_eq!(parts.len(), 2, "{parts:?}");
    assert!(parts[0].thought);
    assert_eq!(parts[1], Part::text("The answer is 42."));
    assert_eq!(out.response_id.as_deref(), Some("r1"));
    let usage = out.usage_metadata.unwrap();
    assert_eq!(
        (
            usage.prompt_token_count,
            usage.candidates_token_count,
            usage.thoughts_token_count
        ),
        (14, 5, 1)
    );
}

#[test]
fn a_blocked_answer_is_returned_as_blocked() {
    let mut stitcher = Stitcher::new(Continuation::new(plan(3, false), original()));
    assert!(
        stitcher
            .on_answer(event(json!({"promptFeedback": {"blockReason": "SAFETY"}})))
            .is_none()
    );
    let out = stitcher.into_response();
    assert!(out.candidates.is_empty());
    assert!(out.prompt_feedback.is_some());
}

#[test]
fn a_system_as_user_model_gets_the_marker_instruction_in_its_first_user_turn() {
    let mut body = original();
    body.system_instruction = None;
    plan(3, false).instruct(&mut body, true);
    assert!(
        body.system_instruction.is_none(),
        "gemma refuses systemInstruction"
    );
    let first = serde_json::to_value(&body.contents[0]).expect("json");
    assert_eq!(first["role"], "user");
    let text = first["parts"][0]["text"].as_str().expect("text");
    assert!(text.contains("`[done]`"), "{text}");
}

#[test]
fn an_upstream_event_past_the_cap_ends_the_continued_stream_with_an_error() {
    let mut pipeline =
        ContinuedSsePipeline::new(ctx(), false, Continuation::new(plan(3, false), original()));
    let out = pipeline.push(&vec![b'x'; crate::domain::sse::MAX_EVENT_BYTES + 1]);
    let events = payloads(&out);
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events[0]["error"]["message"].is_string());
    assert_eq!(events[1], "[DONE]");
    assert!(pipeline.ended());
    let end = pipeline.end_piece(None);
    assert!(end.bytes.is_empty());
    assert!(end.next.is_none(), "no continuation after the stream ended");
}
