//! What a request costs in tokens, before and after: a worst-case prompt estimate for the
//! reservation, and the last `usageMetadata` in a response the gateway relays byte for byte
//! (native JSON, SSE or JSON-array streams, Code Assist envelopes) for the settlement.

use serde::Deserialize;
use serde_json::Value;

use crate::domain::gemini::{self, PartData};
use crate::domain::quota::{Estimate, Usage};

/// Gemini counts an image as 258 tokens; other media are billed at least that.
const MEDIA_TOKENS: u64 = 258;

/// A prompt estimate that errs high: a token per 4 bytes of every text (contents, system
/// instruction, tool declarations, function calls and results), and 258 per media part.
pub fn estimate_prompt_tokens(req: &gemini::GenerateContentRequest) -> u64 {
    let mut bytes: u64 = 0;
    let mut media: u64 = 0;
    let contents = req.contents.iter().chain(req.system_instruction.iter());
    for part in contents.flat_map(|c| c.parts.iter()) {
        match &part.data {
            PartData::Text(text) => bytes += text.len() as u64,
            PartData::InlineData(_) | PartData::FileData(_) => media += 1,
            other => bytes += serde_json::to_string(other).map_or(0, |s| s.len() as u64),
        }
    }
    for tool in &req.tools {
        bytes += serde_json::to_string(tool).map_or(0, |s| s.len() as u64);
    }
    bytes.div_ceil(4) + media * MEDIA_TOKENS
}

/// The output a request may produce: its `maxOutputTokens`, or `default_max` when unset.
pub fn max_output_tokens(req: &gemini::GenerateContentRequest, default_max: u64) -> u64 {
    req.generation_config
        .as_ref()
        .and_then(|c| c.max_output_tokens)
        .map_or(default_max, u64::from)
}

/// The thinking budget a request set, when positive. Dynamic thinking (unset or -1) is settled
/// at its real cost.
pub fn thinking_budget(req: &gemini::GenerateContentRequest) -> u64 {
    req.generation_config
        .as_ref()
        .and_then(|c| c.thinking_config.as_ref())
        .and_then(|t| t.thinking_budget)
        .and_then(|b| u64::try_from(b).ok())
        .unwrap_or(0)
}

/// The worst case a generate request can cost, for its reservation.
pub fn estimate(req: &gemini::GenerateContentRequest, default_max_output_tokens: u64) -> Estimate {
    Estimate {
        prompt_tokens: estimate_prompt_tokens(req),
        max_output_tokens: max_output_tokens(req, default_max_output_tokens),
        thinking_tokens: thinking_budget(req),
    }
}

/// The worst case of a native request, from its JSON body: a generate request is estimated as
/// one; anything else (embeddings) counts a prompt token per 4 bytes of the body.
pub fn estimate_native(body: &Value, body_len: usize, default_max_output_tokens: u64) -> Estimate {
    match gemini::GenerateContentRequest::deserialize(body) {
        Ok(req) => estimate(&req, default_max_output_tokens),
        Err(_) => Estimate {
            prompt_tokens: (body_len as u64).div_ceil(4),
            ..Estimate::default()
        },
    }
}

/// Gemini's usage counts as the ledger's [`Usage`].
pub fn from_metadata(meta: &gemini::UsageMetadata) -> Usage {
    Usage {
        prompt_tokens: meta.prompt_token_count,
        completion_tokens: meta.candidates_token_count,
        reasoning_tokens: meta.thoughts_token_count,
    }
}

/// The usage in a complete response body (any framing), for settling an answer that was
/// relayed unread; zero when it reports none.
pub fn usage_in(body: &[u8]) -> Usage {
    let mut scanner = UsageScanner::new();
    scanner.push(body);
    scanner.last().map(from_metadata).unwrap_or_default()
}

/// Finds the last complete `"usageMetadata": {…}` object in a byte stream, chunk by chunk,
/// whatever framing carries it. Holds at most one object's bytes between chunks.
#[derive(Debug, Default)]
pub struct UsageScanner {
    /// Unconsumed tail: a possible partial key, or an object still open.
    pending: Vec<u8>,
    last: Option<gemini::UsageMetadata>,
}

const KEY: &[u8] = b"\"usageMetadata\"";
/// An object bigger than this is not usage metadata; drop it rather than buffer without end.
const MAX_OBJECT: usize = 16 * 1024;

impl UsageScanner {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, chunk: &[u8]) {
        self.pending.extend_from_slice(chunk);
        let mut consumed = 0;
        loop {
            let rest = &self.pending[consumed..];
            let Some(at) = find(rest, KEY) else {
                // Keep only what could be the start of the key.
                consumed = self
                    .pending
                    .len()
                    .saturating_sub(KEY.len() - 1)
                    .max(consumed);
                break;
            };
            let after_key = consumed + at + KEY.len();
            match object_after(&self.pending[after_key..]) {
                Scan::Found(range_start, range_end) => {
                    let object = &self.pending[after_key + range_start..after_key + range_end];
                    if let Ok(meta) = serde_json::from_slice::<gemini::UsageMetadata>(object) {
                        self.last = Some(meta);
                    }
                    consumed = after_key + range_end;
                }
                Scan::Incomplete => {
                    consumed += at;
                    break;
                }
                Scan::Invalid => consumed = after_key,
            }
        }
        self.pending.drain(..consumed);
        if self.pending.len() > MAX_OBJECT {
            self.pending.clear();
        }
    }

    pub fn last(&self) -> Option<&gemini::UsageMetadata> {
        self.last.as_ref()
    }
}

enum Scan {
    /// The object's byte range, relative to the slice after the key.
    Found(usize, usize),
    Incomplete,
    Invalid,
}

/// After `"usageMetadata"`: optional whitespace, `:`, whitespace, then a balanced object.
fn object_after(bytes: &[u8]) -> Scan {
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while bytes.get(*i).is_some_and(u8::is_ascii_whitespace) {
            *i += 1;
        }
    };
    skip_ws(&mut i);
    match bytes.get(i) {
        None => return Scan::Incomplete,
        Some(b':') => i += 1,
        Some(_) => return Scan::Invalid,
    }
    skip_ws(&mut i);
    match bytes.get(i) {
        None => return Scan::Incomplete,
        Some(b'{') => {}
        Some(_) => return Scan::Invalid,
    }
    let start = i;
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    while let Some(&b) = bytes.get(i) {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        return Scan::Found(start, i + 1);
                    }
                }
                _ => {}
            }
        }
        i += 1;
        if i - start > MAX_OBJECT {
            return Scan::Invalid;
        }
    }
    Scan::Incomplete
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One request-log row, as the ledger writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRow {
    pub ts: u64,
    /// `None` for `ACCESS_TOKENS` clients.
    pub user_id: Option<String>,
    pub model: String,
    pub key_id: String,
    pub status: u16,
    pub usage: Usage,
    pub credits: u64,
    /// The user's settled total in its ledger right after this request
    /// settled (`None` when it was not settled there: a refusal, a static
    /// token, a ledger that did not answer).
    pub ledger_used: Option<u64>,
    pub latency_ms: u64,
    pub stream: bool,
    /// What the client was told when the request failed (already free of secrets).
    pub error: Option<String>,
    /// The request's `x-request-id`.
    pub request_id: String,
    /// The API surface it came on (`openai`, `gemini`).
    pub surface: &'static str,
}

/// Upper bounds (ms) of the latency histogram's buckets; one more bucket holds the rest.
/// Doubling widths: percentiles read from it are within a bucket's width of the truth.
pub const LATENCY_BOUNDS_MS: [u64; 11] = [
    50, 100, 200, 400, 800, 1_600, 3_200, 6_400, 12_800, 25_600, 51_200,
];
/// Buckets of the latency histogram.
pub const LATENCY_BUCKETS: usize = LATENCY_BOUNDS_MS.len() + 1;

/// The histogram bucket a latency falls in.
pub fn latency_bucket(latency_ms: u64) -> usize {
    LATENCY_BOUNDS_MS
        .iter()
        .position(|&bound| latency_ms < bound)
        .unwrap_or(LATENCY_BOUNDS_MS.len())
}

/// What a group of requests adds up to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub requests: u64,
    /// Requests that did not end in a 2xx.
    pub errors: u64,
    pub usage: Usage,
    pub credits: u64,
    /// Request latencies, counted per [`LATENCY_BOUNDS_MS`] bucket.
    pub latency: [u64; LATENCY_BUCKETS],
}

impl Totals {
    fn add(&mut self, row: &LogRow) {
        self.requests += 1;
        self.errors += u64::from(!(200..300).contains(&row.status));
        self.usage.prompt_tokens += row.usage.prompt_tokens;
        self.usage.completion_tokens += row.usage.completion_tokens;
        self.usage.reasoning_tokens += row.usage.reasoning_tokens;
        self.credits += row.credits;
        self.latency[latency_bucket(row.latency_ms)] += 1;
    }
}

/// The rollup a batch of rows adds, per (time bucket, user, model, upstream key).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rollup {
    /// The bucket's start, in ms (an hour or a minute, by the table).
    pub bucket: u64,
    /// `""` for `ACCESS_TOKENS` clients.
    pub user_id: String,
    pub model: String,
    pub key_id: String,
    pub totals: Totals,
}

pub const MINUTE_MS: u64 = 60_000;
pub const HOUR_MS: u64 = 3_600_000;
pub const DAY_MS: u64 = 86_400_000;

/// Folds rows into rollup deltas of `bucket_ms`-wide buckets, so one flush writes each rollup
/// row once, however many requests it carries.
pub fn aggregate(rows: &[LogRow], bucket_ms: u64) -> Vec<Rollup> {
    let mut rollups: Vec<Rollup> = Vec::new();
    for row in rows {
        let user = row.user_id.as_deref().unwrap_or_default();
        let bucket = row.ts - row.ts % bucket_ms;
        let at = rollups.iter().position(|r| {
            r.bucket == bucket
                && r.user_id == user
                && r.model == row.model
                && r.key_id == row.key_id
        });
        let i = at.unwrap_or_else(|| {
            rollups.push(Rollup {
                bucket,
                user_id: user.to_owned(),
                model: row.model.clone(),
                key_id: row.key_id.clone(),
                ..Rollup::default()
            });
            rollups.len() - 1
        });
        rollups[i].totals.add(row);
    }
    rollups
}

/// One dimension of the dashboard's splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dim {
    /// Every request (the series and totals); its name is `""`.
    All,
    Model,
    Key,
    User,
}

impl Dim {
    pub const ALL: [Dim; 4] = [Dim::All, Dim::Model, Dim::Key, Dim::User];

    pub fn as_str(self) -> &'static str {
        match self {
            Dim::All => "all",
            Dim::Model => "model",
            Dim::Key => "key",
            Dim::User => "user",
        }
    }

    fn of(self, row: &LogRow) -> &str {
        match self {
            Dim::All => "",
            Dim::Model => &row.model,
            Dim::Key => &row.key_id,
            Dim::User => row.user_id.as_deref().unwrap_or_default(),
        }
    }
}

/// The rollup a batch adds to one dimension: per (hour, dimension, its value). Each row counts
/// once per dimension, so a split over a month reads one row per value and hour, however many
/// combinations of users, models and keys the traffic made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DimRollup {
    pub bucket: u64,
    pub dim: Dim,
    pub name: String,
    pub totals: Totals,
}

pub fn aggregate_dims(rows: &[LogRow], bucket_ms: u64) -> Vec<DimRollup> {
    let mut out: Vec<DimRollup> = Vec::new();
    for row in rows {
        let bucket = row.ts - row.ts % bucket_ms;
        for dim in Dim::ALL {
            let name = dim.of(row);
            let at = out
                .iter()
                .position(|r| r.bucket == bucket && r.dim == dim && r.name == name);
            let i = at.unwrap_or_else(|| {
                out.push(DimRollup {
                    bucket,
                    dim,
                    name: name.to_owned(),
                    totals: Totals::default(),
                });
                out.len() - 1
            });
            out[i].totals.add(row);
        }
    }
    out
}

/// Each user's settled total as of a batch: the highest ledger total among its
/// rows. `users.credits_used` only ever moves up to it (`MAX`), never adds to
/// it, so a batch lost with its isolate (a crash within the flush delay) is
/// made good by the user's next batch, and batches written out of order never
/// count a charge twice.
pub fn user_totals(rows: &[LogRow]) -> Vec<(String, u64)> {
    let mut totals: Vec<(String, u64)> = Vec::new();
    for row in rows {
        let (Some(id), Some(used)) = (row.user_id.as_ref(), row.ledger_used) else {
            continue;
        };
        match totals.iter_mut().find(|(u, _)| u == id) {
            Some((_, total)) => *total = (*total).max(used),
            None => totals.push((id.clone(), used)),
        }
    }
    totals
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_native_generate_request_is_estimated_like_a_translated_one() {
        let body = json!({
            "contents": [{"role": "user", "parts": [{"text": "abcdefgh"}]}],
            "generationConfig": {"maxOutputTokens": 100, "thinkingConfig": {"thinkingBudget": 64}}
        });
        let text = body.to_string();
        assert_eq!(
            estimate_native(&body, text.len(), 8_192),
            Estimate {
                prompt_tokens: 2,
                max_output_tokens: 100,
                thinking_tokens: 64,
            }
        );
        let bare = json!({"contents": [{"parts": [{"text": "abcd"}]}]});
        let estimate = estimate_native(&bare, 0, 8_192);
        assert_eq!(
            (estimate.max_output_tokens, estimate.thinking_tokens),
            (8_192, 0)
        );
    }

    #[test]
    fn other_native_bodies_count_a_token_per_four_bytes() {
        let body = json!({"requests": "not a generate request"});
        assert_eq!(
            estimate_native(&body, 41, 8_192),
            Estimate {
                prompt_tokens: 11,
                ..Estimate::default()
            }
        );
    }

    fn scan_in_pieces(text: &str, step: usize) -> Option<gemini::UsageMetadata> {
        let mut scanner = UsageScanner::new();
        for piece in text.as_bytes().chunks(step) {
            scanner.push(piece);
        }
        scanner.last().copied()
    }

    #[test]
    fn finds_the_last_usage_in_every_framing_and_split() {
        let sse = "data: {\"candidates\": [], \"usageMetadata\": {\"promptTokenCount\": 5}}\r\n\r\n\
                   data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"a \\\"usageMetadata\\\": {\"}]}}],\
                   \"usageMetadata\": {\"promptTokenCount\": 5, \"candidatesTokenCount\": 7, \"thoughtsTokenCount\": 3}}\r\n\r\n";
        let array = "[{\"usageMetadata\": {\"promptTokenCount\": 1}}\n,\r\n{\"response\": {\"usageMetadata\" : {\"promptTokenCount\": 9, \"candidatesTokenCount\": 2}}}\n]";
        for step in [1, 2, 3, 7, 64, 10_000] {
            let meta = scan_in_pieces(sse, step).unwrap();
            assert_eq!(
                from_metadata(&meta),
                Usage {
                    prompt_tokens: 5,
                    completion_tokens: 7,
                    reasoning_tokens: 3
                },
                "sse step {step}"
            );
            let meta = scan_in_pieces(array, step).unwrap();
            assert_eq!(
                (meta.prompt_token_count, meta.candidates_token_count),
                (9, 2),
                "array step {step}"
            );
        }
    }

    #[test]
    fn nothing_found_and_garbage_are_harmless() {
        assert!(scan_in_pieces("data: {\"candidates\": []}\n\n", 3).is_none());
        assert!(scan_in_pieces("\"usageMetadata\": 5, \"usageMetadata\" {", 2).is_none());
        let mut scanner = UsageScanner::new();
        scanner.push(b"\"usageMetadata\": {");
        scanner.push(&vec![b'x'; MAX_OBJECT * 2]);
        assert!(scanner.last().is_none());
        assert!(scanner.pending.len() <= MAX_OBJECT);
    }

    #[test]
    fn rows_fold_into_hourly_rollups_and_user_totals() {
        let row = |ts: u64, user: Option<&str>, model: &str, credits: u64| LogRow {
            ts,
            user_id: user.map(str::to_owned),
            model: model.to_owned(),
            key_id: "k1".to_owned(),
            status: 200,
            usage: Usage {
                prompt_tokens: 10,
                completion_tokens: 5,
                reasoning_tokens: 1,
            },
            credits,
            ledger_used: None,
            latency_ms: 3,
            stream: false,
            error: None,
            request_id: String::new(),
            surface: "openai",
        };
        let mut rows = vec![
            row(HOUR_MS + 5, Some("u1"), "m", 2),
            row(HOUR_MS + 9, Some("u1"), "m", 2),
            row(2 * HOUR_MS, Some("u1"), "m", 2),
            row(HOUR_MS + 1, None, "m", 0),
            row(HOUR_MS + 1, Some("u2"), "n", 0),
        ];
        rows[1].status = 502;
        rows[1].latency_ms = 900;
        let rollups = aggregate(&rows, HOUR_MS);
        assert_eq!(rollups.len(), 4);
        let first = &rollups[0].totals;
        assert_eq!((first.requests, first.errors), (2, 1));
        assert_eq!(first.credits, 4);
        assert_eq!(first.usage.prompt_tokens, 20);
        assert_eq!(first.latency[0], 1, "3 ms");
        assert_eq!(first.latency[latency_bucket(900)], 1);
        assert_eq!(rollups[1].bucket, 2 * HOUR_MS);
        assert_eq!(rollups[2].user_id, "");
        assert_eq!(
            user_totals(&rows),
            vec![],
            "no row says what its ledger holds"
        );
        let total: u64 = rollups.iter().map(|r| r.totals.requests).sum();
        assert_eq!(total, rows.len() as u64);

        // Per dimension: every row counts once in each.
        let dims = aggregate_dims(&rows, HOUR_MS);
        for dim in Dim::ALL {
            let n: u64 = dims
                .iter()
                .filter(|d| d.dim == dim)
                .map(|d| d.totals.requests)
                .sum();
            assert_eq!(n, rows.len() as u64, "{dim:?}");
        }
        let all_first_hour = dims
            .iter()
            .find(|d| d.dim == Dim::All && d.bucket == HOUR_MS)
            .unwrap();
        assert_eq!(
            (all_first_hour.name.as_str(), all_first_hour.totals.requests),
            ("", 4)
        );
        let users: Vec<&str> = dims
            .iter()
            .filter(|d| d.dim == Dim::User && d.bucket == HOUR_MS)
            .map(|d| d.name.as_str())
            .collect();
        assert_eq!(users, ["u1", "", "u2"]);
        // Minute buckets split what an hour holds together.
        assert_eq!(aggregate(&rows, MINUTE_MS).len(), 4);
        assert_eq!(aggregate(&rows[..2], MINUTE_MS).len(), 1);
    }

    #[test]
    fn latencies_fall_in_doubling_buckets() {
        assert_eq!(latency_bucket(0), 0);
        assert_eq!(latency_bucket(49), 0);
        assert_eq!(latency_bucket(50), 1);
        assert_eq!(latency_bucket(1_599), 5);
        assert_eq!(latency_bucket(51_200), LATENCY_BUCKETS - 1);
        assert_eq!(latency_bucket(u64::MAX), LATENCY_BUCKETS - 1);
    }

    #[test]
    fn the_prompt_estimate_counts_texts_tools_and_media() {
        let req: gemini::GenerateContentRequest = serde_json::from_value(json!({
            "contents": [{"role": "user", "parts": [{"text": "12345678"}, {"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]}],
            "systemInstruction": {"parts": [{"text": "abcd"}]},
            "generationConfig": {"maxOutputTokens": 100, "thinkingConfig": {"thinkingBudget": 50}}
        }))
        .unwrap();
        assert_eq!(estimate_prompt_tokens(&req), 3 + 258);
        assert_eq!(max_output_tokens(&req, 8192), 100);
        assert_eq!(thinking_budget(&req), 50);
        let bare: gemini::GenerateContentRequest =
            serde_json::from_value(json!({"contents": []})).unwrap();
        assert_eq!(max_output_tokens(&bare, 8192), 8192);
        assert_eq!(thinking_budget(&bare), 0);
    }

    fn settled(user: Option<&str>, credits: u64, ledger_used: Option<u64>) -> LogRow {
        LogRow {
            ts: 0,
            user_id: user.map(str::to_owned),
            model: "m".to_owned(),
            key_id: String::new(),
            status: 200,
            usage: Usage::default(),
            credits,
            ledger_used,
            latency_ms: 0,
            stream: false,
            error: None,
            request_id: String::new(),
            surface: "openai",
        }
    }

    #[test]
    fn a_batch_carries_each_users_highest_ledger_total_never_a_sum() {
        // Out of order (two isolates' settlements interleaved), a refusal with no
        // ledger total, and a static token's row.
        let rows = [
            settled(Some("u1"), 5, Some(105)),
            settled(Some("u2"), 3, Some(3)),
            settled(Some("u1"), 10, Some(100)),
            settled(Some("u1"), 0, None),
            settled(None, 0, None),
        ];
        assert_eq!(
            user_totals(&rows),
            vec![("u1".to_owned(), 105), ("u2".to_owned(), 3)]
        );
    }

    #[test]
    fn a_lost_batch_is_made_good_by_the_next_and_nothing_counts_twice() {
        // D1's total under `credits_used = MAX(credits_used, total)`.
        let apply = |d1: u64, rows: &[LogRow]| {
            user_totals(rows)
                .into_iter()
                .fold(d1, |d1, (_, total)| d1.max(total))
        };
        // Three settlements: 10, 5 and 7 credits, the ledger at 10, 15, 22.
        let (a, b, c) = (
            settled(Some("u1"), 10, Some(10)),
            settled(Some("u1"), 5, Some(15)),
            settled(Some("u1"), 7, Some(22)),
        );
        // The batch holding `b` died with its isolate; `c` arrives later.
        let d1 = apply(apply(0, std::slice::from_ref(&a)), std::slice::from_ref(&c));
        assert_eq!(d1, 22, "converged to the ledger");
        // Every batch written, in any order: still the ledger, never more.
        for order in [[&a, &b, &c], [&c, &b, &a], [&b, &a, &c]] {
            let d1 = order
                .iter()
                .fold(0, |d1, row| apply(d1, std::slice::from_ref(*row)));
            assert_eq!(d1, 22);
        }
    }
}
