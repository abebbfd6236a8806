//! Server-sent events: an incremental decoder (WHATWG `text/event-stream` rules) and the encoder
//! for the events this gateway writes.
//!
//! Owns framing only; knows nothing of JSON or of either API, and does no I/O.

/// One dispatched event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, when the event carried one.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The `id:` field, when the event carried one.
    pub id: Option<String>,
    /// The `retry:` field in milliseconds, when the event carried a valid one.
    pub retry: Option<u64>,
}

/// The most one event may hold while it is read: its unfinished line and the fields it has
/// gathered (`data:` lines joined, `event:`, `id:`). An upstream event is a JSON chunk of
/// kilobytes, an inline image a few megabytes; a stream that passes this (garbage without a
/// line break, endless `data:` lines without the blank line that ends an event) is broken,
/// and holding it would exhaust the isolate's memory.
pub const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// Decodes a byte stream into events, whatever the chunk boundaries: split lines, a split
/// `\r\n`, or a multi-byte UTF-8 character split across chunks.
///
/// Holds at most its cap ([`MAX_EVENT_BYTES`] unless [`SseDecoder::with_cap`] says otherwise)
/// between calls. An event that would pass it ends the decoding: the decoder drops what it
/// holds, reports [`SseDecoder::overflowed`], and ignores any further input.
#[derive(Debug)]
pub struct SseDecoder {
    /// Bytes of the line being read, up to (excluding) its terminator.
    line: Vec<u8>,
    /// The previous chunk ended in `\r`; a `\n` opening the next chunk belongs to it.
    skip_lf: bool,
    /// No line has been completed yet, so a UTF-8 BOM may still need stripping.
    at_start: bool,
    pending: Pending,
    /// The most [`Self::buffered`] may reach.
    cap: usize,
    /// An event passed the cap; the stream is over.
    overflowed: bool,
}

/// The event being assembled from field lines.
#[derive(Debug, Default)]
struct Pending {
    event: Option<String>,
    data: String,
    has_data: bool,
    id: Option<String>,
    retry: Option<u64>,
}

impl Pending {
    fn size(&self) -> usize {
        self.data.len()
            + self.event.as_ref().map_or(0, String::len)
            + self.id.as_ref().map_or(0, String::len)
    }
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::with_cap(MAX_EVENT_BYTES)
    }
}

impl SseDecoder {
    const BOM: &'static [u8] = b"\xEF\xBB\xBF";

    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder that holds at most `cap` bytes of one event.
    pub fn with_cap(cap: usize) -> Self {
        Self {
            line: Vec::new(),
            skip_lf: false,
            at_start: true,
            pending: Pending::default(),
            cap,
            overflowed: false,
        }
    }

    /// Whether an event passed the cap. The events completed before it were returned; none
    /// are after it.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// Bytes held for the event being read: never more than the cap between calls.
    pub fn buffered(&self) -> usize {
        self.line.len() + self.pending.size()
    }

    /// Feeds bytes; returns the events completed by them (none once it has overflowed).
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        let mut events = Vec::new();
        if self.overflowed {
            return events;
        }
        let mut rest = bytes;
        if self.skip_lf && !rest.is_empty() {
            self.skip_lf = false;
            if rest[0] == b'\n' {
                rest = &rest[1..];
            }
        }
        while let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            if !self.hold(&rest[..end]) {
                return events;
            }
            self.end_line(&mut events);
            if self.buffered() > self.cap {
                // A `data:` line with bytes that are not UTF-8 grows as it is decoded.
                self.overflow();
                return events;
            }
            let crlf = rest[end] == b'\r' && rest.get(end + 1) == Some(&b'\n');
            if rest[end] == b'\r' && end + 1 == rest.len() {
                self.skip_lf = true;
            }
            rest = &rest[end + if crlf { 2 } else { 1 }..];
        }
        self.hold(rest);
        events
    }

    /// Adds bytes to the line being read, unless that passes the cap (then it overflows).
    fn hold(&mut self, bytes: &[u8]) -> bool {
        if self.buffered().saturating_add(bytes.len()) > self.cap {
            self.overflow();
            return false;
        }
        self.line.extend_from_slice(bytes);
        true
    }

    fn overflow(&mut self) {
        self.overflowed = true;
        self.line = Vec::new();
        self.pending = Pending::default();
    }

    /// Ends the stream. Unlike a browser, it dispatches a final event that lacks its closing
    /// blank line: an upstream cut right after its last `data:` line still delivers it.
    pub fn finish(mut self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        if self.overflowed {
            return events;
        }
        if !self.line.is_empty() {
            self.end_line(&mut events);
        }
        self.dispatch(&mut events);
        events
    }

    fn end_line(&mut self, events: &mut Vec<SseEvent>) {
        let mut line = std::mem::take(&mut self.line);
        if std::mem::replace(&mut self.at_start, false) && line.starts_with(Self::BOM) {
            line.drain(..Self::BOM.len());
        }
        if line.is_empty() {
            self.dispatch(events);
        } else {
            self.field(&line);
        }
        // Reuse the allocation for the next line.
        line.clear();
        self.line = line;
    }

    fn field(&mut self, line: &[u8]) {
        if line[0] == b':' {
            return; // comment
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        let value = String::from_utf8_lossy(value);
        let pending = &mut self.pending;
        match name {
            b"data" => {
                if pending.has_data {
                    pending.data.push('\n');
                }
                pending.data.push_str(&value);
                pending.has_data = true;
            }
            b"event" => pending.event = Some(value.into_owned()),
            b"id" if !value.contains('\0') => pending.id = Some(value.into_owned()),
            b"retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                pending.retry = value.parse().ok();
            }
            _ => {}
        }
    }

    /// Per the spec, an event without any `data:` line is discarded.
    fn dispatch(&mut self, events: &mut Vec<SseEvent>) {
        let pending = std::mem::take(&mut self.pending);
        if pending.has_data {
            events.push(SseEvent {
                event: pending.event,
                data: pending.data,
                id: pending.id,
                retry: pending.retry,
            });
        }
    }
}

/// The stream terminator `OpenAI` clients wait for.
pub const DONE: &str = "data: [DONE]\n\n";

/// Frames a payload as one `data:` event. A payload with line breaks becomes several `data:`
/// lines, which a decoder joins back with `\n`.
pub fn encode_data(json: &str) -> String {
    let mut out = String::with_capacity(json.len() + 8);
    for line in json.lines() {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    if json.is_empty() {
        out.push_str("data: \n");
    }
    out.push('\n');
    out
}

/// Decodes client-facing SSE bytes back into their payloads, JSON where it parses (so
/// `[DONE]` stays a string): what the translators' tests read their output with.
#[cfg(test)]
pub(crate) fn payloads(out: &[u8]) -> Vec<serde_json::Value> {
    let mut decoder = SseDecoder::new();
    let mut events = decoder.push(out);
    events.extend(decoder.finish());
    events
        .into_iter()
        .map(|e| serde_json::from_str(&e.data).unwrap_or(serde_json::Value::String(e.data)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(s: &str) -> SseEvent {
        SseEvent {
            data: s.to_owned(),
            ..SseEvent::default()
        }
    }

    fn decode_whole(input: &[u8]) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::new();
        let mut events = decoder.push(input);
        events.extend(decoder.finish());
        events
    }

    fn decode_split(input: &[u8], cuts: &[usize]) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::new();
        let mut events = Vec::new();
        let mut start = 0;
        for &cut in cuts {
            events.extend(decoder.push(&input[start..cut]));
            start = cut;
        }
        events.extend(decoder.push(&input[start..]));
        events.extend(decoder.finish());
        events
    }

    /// Every fixture, split once at every byte offset, and split at many pseudo-random offsets,
    /// decodes to the same events as the whole input.
    fn assert_split_invariant(input: &[u8]) -> Vec<SseEvent> {
        let whole = decode_whole(input);
        for cut in 0..=input.len() {
            assert_eq!(decode_split(input, &[cut]), whole, "cut at {cut}");
        }
        let mut state = 0x2545_f491_u32;
        for _ in 0..50 {
            let mut cuts = Vec::new();
            for _ in 0..8 {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                cuts.push(state as usize % (input.len() + 1));
            }
            cuts.sort_unstable();
            assert_eq!(decode_split(input, &cuts), whole, "cuts {cuts:?}");
        }
        let byte_at_a_time: Vec<usize> = (1..input.len()).collect();
        assert_eq!(decode_split(input, &byte_at_a_time), whole);
        whole
    }

    #[test]
    fn decodes_lf_crlf_and_cr_line_endings_alike() {
        let want = vec![data("a"), data("b")];
        for input in [
            &b"data: a\n\ndata: b\n\n"[..],
            b"data: a\r\n\r\ndata: b\r\n\r\n",
            b"data: a\r\rdata: b\r\r",
            b"data: a\r\n\ndata: b\n\r\n",
        ] {
            assert_eq!(assert_split_invariant(input), want, "{input:?}");
        }
    }

    #[test]
    fn joins_multi_line_data_and_reads_event_id_retry() {
        let input = b"event: update\nid: 7\nretry: 1500\ndata: line1\ndata:line2\ndata\n\n";
        assert_eq!(
            assert_split_invariant(input),
            vec![SseEvent {
                event: Some("update".into()),
                data: "line1\nline2\n".into(),
                id: Some("7".into()),
                retry: Some(1500),
            }]
        );
    }

    #[test]
    fn skips_comments_and_events_without_data() {
        let input = b": keep-alive\n\nevent: ping\n\n:x\ndata: real\n\n";
        assert_eq!(assert_split_invariant(input), vec![data("real")]);
    }

    #[test]
    fn only_one_leading_space_is_stripped() {
        assert_eq!(decode_whole(b"data:  two\n\n"), vec![data(" two")]);
        assert_eq!(decode_whole(b"data:\n\n"), vec![data("")]);
    }

    #[test]
    fn multi_byte_utf8_split_anywhere_survives() {
        let input = "data: {\"text\":\"héllo → 世界 🎉\"}\r\n\r\n".as_bytes();
        assert_eq!(
            assert_split_invariant(input),
            vec![data("{\"text\":\"héllo → 世界 🎉\"}")]
        );
    }

    #[test]
    fn finish_flushes_an_event_without_trailing_blank_line() {
        assert_eq!(
            assert_split_invariant(b"data: a\n\ndata: b"),
            vec![data("a"), data("b")]
        );
        assert_eq!(decode_whole(b"data: b\n"), vec![data("b")]);
        assert_eq!(decode_whole(b"data: b\r"), vec![data("b")]);
        assert!(decode_whole(b": only a comment").is_empty());
    }

    #[test]
    fn leading_bom_is_stripped_once() {
        let input = b"\xEF\xBB\xBFdata: a\n\n\xEF\xBB\xBFdata: b\n\n";
        let events = assert_split_invariant(input);
        assert_eq!(events[0], data("a"));
        assert_eq!(events.len(), 1, "a BOM mid-stream makes an unknown field");
    }

    #[test]
    fn id_with_nul_is_ignored_and_bad_retry_is_ignored() {
        let events = decode_whole(b"id: a\0b\nretry: 1x\ndata: d\n\n");
        assert_eq!(events, vec![data("d")]);
    }

    #[test]
    fn replays_gemini_fixture_at_every_split() {
        let input = include_bytes!("../../tests/fixtures/gemini_stream_text.sse");
        let events = assert_split_invariant(input);
        assert_eq!(events.len(), 3);
        assert!(events.iter().all(|e| e.data.starts_with('{')));
    }

    #[test]
    fn encode_data_frames_one_event() {
        assert_eq!(encode_data("{\"a\":1}"), "data: {\"a\":1}\n\n");
        assert_eq!(DONE, "data: [DONE]\n\n");
        assert_eq!(encode_data(""), "data: \n\n");
    }

    #[test]
    fn a_line_past_the_cap_overflows_and_ends_the_decoding() {
        let mut decoder = SseDecoder::with_cap(10);
        assert!(decoder.push(b"data: 0123").is_empty());
        assert_eq!(decoder.buffered(), 10);
        assert!(!decoder.overflowed());
        assert!(decoder.push(b"4").is_empty());
        assert!(decoder.overflowed());
        assert_eq!(decoder.buffered(), 0, "what it held is dropped");
        assert!(decoder.push(b"\n\ndata: late\n\n").is_empty());
        assert!(decoder.finish().is_empty());
    }

    #[test]
    fn events_before_the_overflow_are_still_returned() {
        let mut decoder = SseDecoder::with_cap(16);
        let events = decoder.push(b"data: a\n\ndata: 0123456789abcdef");
        assert_eq!(events, vec![data("a")]);
        assert!(decoder.overflowed());
    }

    #[test]
    fn data_lines_without_the_blank_line_count_towards_the_cap() {
        let mut decoder = SseDecoder::with_cap(20);
        assert!(decoder.push(b"data: aaaaaaaaaa\n").is_empty());
        assert!(!decoder.overflowed());
        assert!(decoder.push(b"data: bbbbbbbbbb\n").is_empty());
        assert!(
            decoder.overflowed(),
            "21 bytes of data held under a cap of 20"
        );
        // The default cap holds any real event.
        let mut decoder = SseDecoder::new();
        let big = format!("data: {}\n\n", "x".repeat(1 << 20));
        assert_eq!(decoder.push(big.as_bytes()).len(), 1);
    }

    #[test]
    fn encoded_multi_line_payload_decodes_back() {
        let payload = "a\nb\r\nc";
        assert_eq!(
            decode_whole(encode_data(payload).as_bytes()),
            vec![data("a\nb\nc")]
        );
    }
}
