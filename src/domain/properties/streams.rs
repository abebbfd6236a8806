//! Byte streams: the SSE decoder, the stream translators built on it (chat, anti-truncation,
//! Code Assist's envelope), the usage scanner, and the fake streams' answer framing. Inputs
//! are valid streams, cut at random points, with bytes changed, and split at random chunk
//! boundaries.

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Value, json};

use super::{any_json, config, cuts, gemini_response, mutate, mutations, pieces, same_json};
use crate::domain::accounts::envelope::StreamUnwrapper;
use crate::domain::compat::Compat;
use crate::domain::error::GatewayError;
use crate::domain::gemini::{Content, GenerateContentRequest, GenerateContentResponse, Part, Role};
use crate::domain::sse::{SseDecoder, SseEvent};
use crate::domain::translate::chat::{ChatContext, ReplyPlan};
use crate::domain::translate::continuation::{Continuation, ContinuedSsePipeline, Plan};
use crate::domain::translate::fake_stream::{
    ChatSse, FakeStream, NativeArray, NativeSse, compact_json,
};
use crate::domain::translate::stream::ChatSsePipeline;
use crate::domain::usage::{UsageScanner, usage_in};

// ------------------------------------------------------------------------------ the decoder

/// Decodes `input` in the pieces `cuts` make; the events, and whether it overflowed. Checks
/// the decoder never holds more than `cap` between pushes.
fn decode(
    input: &[u8],
    cuts: &[usize],
    cap: usize,
) -> Result<(Vec<SseEvent>, bool), TestCaseError> {
    let mut decoder = SseDecoder::with_cap(cap);
    let mut events = Vec::new();
    for piece in pieces(input, cuts) {
        let was_over = decoder.overflowed();
        let got = decoder.push(piece);
        prop_assert!(!was_over || got.is_empty(), "events after the overflow");
        events.extend(got);
        prop_assert!(
            decoder.buffered() <= cap,
            "{} bytes held over a cap of {cap}",
            decoder.buffered()
        );
    }
    let overflowed = decoder.overflowed();
    events.extend(decoder.finish());
    Ok((events, overflowed))
}

#[derive(Debug, Clone)]
struct Framed {
    event: Option<String>,
    data: Vec<String>,
    id: Option<String>,
    retry: Option<u64>,
    comment: bool,
}

fn framed_event() -> BoxedStrategy<Framed> {
    let value = "[^\r\n\0]{0,12}";
    (
        prop::option::of(value),
        prop::collection::vec(value, 0..4),
        prop::option::of(value),
        prop::option::of(0u64..100_000),
        any::<bool>(),
    )
        .prop_map(|(event, data, id, retry, comment)| Framed {
            event,
            data,
            id,
            retry,
            comment,
        })
        .boxed()
}

/// The events as SSE text, each line ended as `endings` says (LF, CRLF or CR), and the
/// events a decoder must give for it.
fn frame(events: &[Framed], endings: &[u8], bom: bool) -> (Vec<u8>, Vec<SseEvent>) {
    let mut out = Vec::new();
    if bom {
        out.extend_from_slice(b"\xEF\xBB\xBF");
    }
    let mut n = 0usize;
    let mut after_cr = false;
    let mut line = |out: &mut Vec<u8>, text: &str| {
        out.extend_from_slice(text.as_bytes());
        let ending: &[u8] = match endings[n % endings.len()] % 3 {
            // A blank line ended by LF right after a CR would read as one CRLF.
            0 if after_cr && text.is_empty() => b"\r\n",
            0 => b"\n",
            1 => b"\r\n",
            _ => b"\r",
        };
        out.extend_from_slice(ending);
        after_cr = ending == b"\r";
        n += 1;
    };
    let mut want = Vec::new();
    for e in events {
        if e.comment {
            line(&mut out, ": keep-alive");
        }
        if let Some(name) = &e.event {
            line(&mut out, &format!("event: {name}"));
        }
        if let Some(id) = &e.id {
            line(&mut out, &format!("id: {id}"));
        }
        if let Some(retry) = e.retry {
            line(&mut out, &format!("retry: {retry}"));
        }
        for d in &e.data {
            line(&mut out, &format!("data: {d}"));
        }
        line(&mut out, "");
        if !e.data.is_empty() {
            want.push(SseEvent {
                event: e.event.clone(),
                data: e.data.join("\n"),
                id: e.id.clone(),
                retry: e.retry,
            });
        }
    }
    (out, want)
}

proptest! {
    #![proptest_config(config(600))]
    #[test]
    fn sse_framings_split_anywhere_decode_to_their_events(
        events in prop::collection::vec(framed_event(), 0..6),
        endings in prop::collection::vec(any::<u8>(), 1..8),
        bom in any::<bool>(),
        raw_cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let (input, want) = frame(&events, &endings, bom);
        let (whole, over) = decode(&input, &[], usize::MAX)?;
        prop_assert!(!over);
        prop_assert_eq!(&whole, &want);
        let (split, _) = decode(&input, &cuts(input.len(), &raw_cuts), usize::MAX)?;
        prop_assert_eq!(split, want);
    }
}

/// Bytes with long runs without a line break, and line breaks now and then.
fn garbage() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        2 => prop::collection::vec(any::<u8>(), 0..2000),
        2 => prop::collection::vec(
            prop_oneof![
                4 => prop::collection::vec(any::<u8>().prop_filter("no line break", |b| *b != b'\n' && *b != b'\r'), 0..300),
                1 => select(vec![b"\n".to_vec(), b"\r\n".to_vec(), b"\n\n".to_vec(), b"data: ".to_vec(), b"data:x\n".to_vec()]),
            ],
            0..12,
        )
        .prop_map(|runs| runs.concat()),
        1 => (1usize..5000).prop_map(|n| b"data: ".iter().copied().chain(std::iter::repeat_n(b'x', n)).collect()),
        1 => (1usize..600).prop_map(|n| b"data: a\n".repeat(n)),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(config(800))]
    #[test]
    fn the_decoder_holds_at_most_its_cap_whatever_the_bytes_and_chunks(
        input in garbage(),
        cap in prop_oneof![1usize..64, 64usize..4096, Just(usize::MAX)],
        raw_cuts in prop::collection::vec(any::<usize>(), 0..10),
    ) {
        let (whole, over_whole) = decode(&input, &[], cap)?;
        let (split, over_split) = decode(&input, &cuts(input.len(), &raw_cuts), cap)?;
        prop_assert_eq!(&whole, &split, "chunk boundaries changed the events");
        prop_assert_eq!(over_whole, over_split);
        // Undecodable bytes become U+FFFD (3 bytes): no event holds more than that growth.
        let data: usize = whole.iter().map(|e| e.data.len()).sum();
        prop_assert!(data <= 3 * input.len(), "{data} bytes of data from {} bytes", input.len());
        let breaks = input.iter().filter(|b| **b == b'\n' || **b == b'\r').count();
        prop_assert!(whole.len() <= breaks + 1);
        // A line longer than the cap overflows the decoder.
        let longest = input.split(|b| *b == b'\n' || *b == b'\r').map(<[u8]>::len).max().unwrap_or(0);
        if longest > cap {
            prop_assert!(over_whole, "a {longest}-byte line under a cap of {cap} did not overflow");
        }
        if over_whole {
            let mut decoder = SseDecoder::with_cap(cap);
            decoder.push(&input);
            prop_assert_eq!(decoder.buffered(), 0, "an overflowed decoder keeps bytes");
            prop_assert!(decoder.push(b"data: late\n\n").is_empty());
            prop_assert!(decoder.finish().is_empty());
        }
    }
}

// ------------------------------------------------------------------------------ translators

fn ctx() -> ChatContext {
    ChatContext {
        id: "chatcmpl-prop".into(),
        created: 1_700_000_000,
        model: "gemini-2.5-flash".into(),
        reply: ReplyPlan::default(),
    }
}

/// Upstream events as Google frames them (CRLF), now and then with a keep-alive comment.
fn upstream_stream() -> BoxedStrategy<Vec<u8>> {
    prop::collection::vec((gemini_response(), any::<bool>()), 0..6)
        .prop_map(|events| {
            let mut out = Vec::new();
            for (event, comment) in events {
                if comment {
                    out.extend_from_slice(b": ping\r\n\r\n");
                }
                out.extend_from_slice(format!("data: {event}\r\n\r\n").as_bytes());
            }
            out
        })
        .boxed()
}

/// A client stream as the translators write it: `data:` events that are JSON, the last
/// and only `[DONE]` at its very end.
fn assert_client_stream(out: &[u8]) -> Result<(), TestCaseError> {
    let mut decoder = SseDecoder::new();
    let mut events = decoder.push(out);
    prop_assert!(!decoder.overflowed());
    events.extend(decoder.finish());
    prop_assert!(
        out.ends_with(b"data: [DONE]\n\n"),
        "the stream does not end with [DONE]"
    );
    let done = events.iter().filter(|e| e.data == "[DONE]").count();
    prop_assert_eq!(done, 1, "[DONE] {} times", done);
    for event in &events[..events.len() - 1] {
        let chunk: Value = serde_json::from_str(&event.data).map_err(|e| {
            TestCaseError::fail(format!("an event is not JSON ({e}): {}", event.data))
        })?;
        let shaped = chunk["object"] == "chat.completion.chunk"
            || chunk["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty());
        prop_assert!(shaped, "neither a chunk nor an error: {}", event.data);
    }
    Ok(())
}

/// Runs bytes through a chat pipeline in the given pieces.
fn run_chat(input: &[u8], cuts: &[usize], include_usage: bool) -> Vec<u8> {
    let mut pipeline = ChatSsePipeline::new(ctx(), include_usage);
    let mut out = Vec::new();
    for piece in pieces(input, cuts) {
        out.extend(pipeline.push(piece));
    }
    out.extend(pipeline.finish());
    out
}

/// Client bytes per upstream byte: each upstream event may become a few chunks, each
/// repeating the completion's id, model and timestamp; plus the closing chunks.
fn stream_bound(input: usize) -> usize {
    16 * input + 8 * 1024
}

proptest! {
    #![proptest_config(config(700))]
    #[test]
    fn gemini_streams_through_the_chat_pipeline_whole_split_cut_and_mutated(
        input in upstream_stream(),
        raw_cuts in prop::collection::vec(any::<usize>(), 0..8),
        cut_at in any::<usize>(),
        edits in mutations(),
        include_usage in any::<bool>(),
    ) {
        let whole = run_chat(&input, &[], include_usage);
        assert_client_stream(&whole)?;
        prop_assert!(whole.len() <= stream_bound(input.len()), "{} bytes in, {} out", input.len(), whole.len());
        let split = run_chat(&input, &cuts(input.len(), &raw_cuts), include_usage);
        prop_assert_eq!(&split, &whole, "chunk boundaries changed the client stream");
        let truncated = &input[..cut_at % (input.len() + 1)];
        let cut = run_chat(truncated, &cuts(truncated.len(), &raw_cuts), include_usage);
        assert_client_stream(&cut)?;
        let mutated = mutate(input.clone(), &edits);
        let out = run_chat(&mutated, &cuts(mutated.len(), &raw_cuts), include_usage);
        assert_client_stream(&out)?;
        prop_assert!(out.len() <= stream_bound(mutated.len()));
    }
}

proptest! {
    #![proptest_config(config(300))]
    #[test]
    fn gemini_streams_through_the_anti_truncation_pipeline_piece_by_piece(
        upstream_pieces in prop::collection::vec((upstream_stream(), any::<bool>(), prop::collection::vec(any::<usize>(), 0..4)), 1..5),
        max_attempts in 1u32..4,
        include_usage in any::<bool>(),
    ) {
        let compat = Compat { anti_truncation_max_attempts: max_attempts, ..Compat::default() };
        let mut original = GenerateContentRequest {
            contents: vec![Content::new(Role::User, vec![Part::text("tell me")])],
            ..GenerateContentRequest::default()
        };
        let plan = Plan::for_request(&compat, &original)
            .ok_or_else(|| TestCaseError::fail("no plan for a plain request"))?;
        plan.instruct(&mut original, false);
        let mut pipeline = ContinuedSsePipeline::new(ctx(), include_usage, Continuation::new(plan, original));
        let mut out = Vec::new();
        let mut total_in = 0;
        let mut ended = false;
        for (bytes, broke, raw_cuts) in &upstream_pieces {
            total_in += bytes.len();
            for piece in pieces(bytes, &cuts(bytes.len(), raw_cuts)) {
                out.extend(pipeline.push(piece));
            }
            let err = GatewayError::BadGateway("the upstream stream broke".into());
            let end = pipeline.end_piece(broke.then_some(&err));
            out.extend(end.bytes);
            if end.next.is_none() {
                ended = true;
                break;
            }
        }
        prop_assert!(pipeline.attempts() <= max_attempts);
        if !ended {
            // The pieces ran out with a continuation asked for: the edge's call failed.
            out.extend(pipeline.fail(&GatewayError::BadGateway("the continuation failed".into())));
        }
        prop_assert!(pipeline.ended());
        assert_client_stream(&out)?;
        prop_assert!(out.len() <= stream_bound(total_in) + 8 * 1024);
    }
}

proptest! {
    #![proptest_config(config(400))]
    #[test]
    fn code_assist_streams_unwrap_split_anywhere_and_survive_mutation(
        answers in prop::collection::vec(any_json(), 0..5),
        raw_cuts in prop::collection::vec(any::<usize>(), 0..8),
        edits in mutations(),
    ) {
        let mut input = Vec::new();
        for answer in &answers {
            let event = json!({ "response": answer, "traceId": "t-1" });
            input.extend_from_slice(format!("data: {event}\r\n\r\n").as_bytes());
        }
        let mut unwrapper = StreamUnwrapper::new();
        let mut out = Vec::new();
        for piece in pieces(&input, &cuts(input.len(), &raw_cuts)) {
            out.extend(unwrapper.push(piece));
        }
        out.extend(unwrapper.finish());
        let mut decoder = SseDecoder::new();
        let mut events = decoder.push(&out);
        events.extend(decoder.finish());
        prop_assert_eq!(events.len(), answers.len());
        for (event, answer) in events.iter().zip(&answers) {
            let got: Value = serde_json::from_str(&event.data)
                .map_err(|e| TestCaseError::fail(format!("an unwrapped event is not JSON ({e})")))?;
            prop_assert!(same_json(&got, answer), "{got} is not {answer}");
        }
        prop_assert!(out.len() <= input.len());
        let mutated = mutate(input, &edits);
        let mut unwrapper = StreamUnwrapper::new();
        let mut out = Vec::new();
        for piece in pieces(&mutated, &cuts(mutated.len(), &raw_cuts)) {
            out.extend(unwrapper.push(piece));
        }
        out.extend(unwrapper.finish());
        prop_assert!(out.len() <= 3 * mutated.len() + 64);
    }
}

// ------------------------------------------------------------------------------ usage scanner

/// Bytes around `"usageMetadata"` objects; the filler holds no `"`, so it never starts a key.
fn usage_stream() -> BoxedStrategy<Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            2 => prop::collection::vec(any::<u8>().prop_filter("no quote", |b| *b != b'"'), 0..200),
            1 => (0u32..100_000, 0u32..100_000, any::<bool>()).prop_map(|(p, c, spaced)| {
                let sep = if spaced { " : " } else { ":" };
                format!("\"usageMetadata\"{sep}{{\"promptTokenCount\": {p}, \"candidatesTokenCount\": {c}, \"x\": {{\"y\": \"}}\"}}}}").into_bytes()
            }),
        ],
        0..8,
    )
    .prop_map(|parts| parts.concat())
    .boxed()
}

proptest! {
    #![proptest_config(config(400))]
    #[test]
    fn the_usage_scanner_finds_the_last_usage_whatever_the_chunks(
        input in prop_oneof![3 => usage_stream(), 1 => prop::collection::vec(any::<u8>(), 0..1000)],
        raw_cuts in prop::collection::vec(any::<usize>(), 0..10),
    ) {
        let mut scanner = UsageScanner::new();
        for piece in pieces(&input, &cuts(input.len(), &raw_cuts)) {
            scanner.push(piece);
        }
        let split = scanner.last().map(crate::domain::usage::from_metadata).unwrap_or_default();
        prop_assert_eq!(split, usage_in(&input), "chunk boundaries changed the usage found");
    }
}

// ------------------------------------------------------------------------------ fake streams

/// JSON text with whitespace where JSON allows it, or bytes that are not JSON.
fn answer_bytes() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        2 => (gemini_response(), any::<bool>()).prop_map(|(v, pretty)| {
            if pretty { serde_json::to_vec_pretty(&v).unwrap_or_default() } else { v.to_string().into_bytes() }
        }),
        1 => (gemini_response(), mutations()).prop_map(|(v, edits)| mutate(serde_json::to_vec_pretty(&v).unwrap_or_default(), &edits)),
        1 => prop::collection::vec(any::<u8>(), 0..300),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(config(500))]
    #[test]
    fn fake_stream_answers_are_one_line_of_the_same_json_or_an_error(
        answer in answer_bytes(),
        include_usage in any::<bool>(),
    ) {
        let parsed = serde_json::from_slice::<Value>(&answer);
        match compact_json(&answer) {
            Ok(line) => {
                prop_assert!(!line.contains('\n') && !line.contains('\r'));
                prop_assert!(line.len() <= answer.len());
                let again: Value = serde_json::from_str(&line)
                    .map_err(|e| TestCaseError::fail(format!("compacted JSON does not parse: {e}")))?;
                prop_assert_eq!(Some(again), parsed.ok());
            }
            Err(err) => {
                prop_assert!(parsed.is_err(), "valid JSON refused");
                prop_assert_eq!(err.status(), 502);
            }
        }
        // Native SSE: one event (the answer or Google's error) after the opening comment.
        let native = FakeStream::new(NativeSse).end(Ok(answer.clone()));
        let mut decoder = SseDecoder::new();
        let mut events = decoder.push(&native);
        events.extend(decoder.finish());
        prop_assert_eq!(events.len(), 1);
        prop_assert!(serde_json::from_str::<Value>(&events[0].data).is_ok());
        // Native array: `[`, the element, `]`, as one JSON array.
        let array = FakeStream::new(NativeArray).end(Ok(answer.clone()));
        let array: Value = serde_json::from_slice(&array)
            .map_err(|e| TestCaseError::fail(format!("the array form is not JSON: {e}")))?;
        prop_assert_eq!(array.as_array().map(Vec::len), Some(1));
        // OpenAI SSE from the typed answer.
        if let Ok(resp) = serde_json::from_slice::<GenerateContentResponse>(&answer) {
            let mut fake = FakeStream::new(ChatSse::new(ctx(), include_usage));
            let mut out = fake.opening();
            out.extend(fake.heartbeat());
            out.extend(fake.end(Ok(resp)));
            prop_assert!(fake.end(Err(GatewayError::BadGateway("late".into()))).is_empty());
            assert_client_stream(&out)?;
        }
    }
}
