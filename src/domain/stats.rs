//! What the admin console reads, decided without I/O: the dashboard's ranges
//! and their buckets, percentiles from the rollups' latency histograms, time
//! series with every bucket present, the request-log filters (validated, each
//! error naming its parameter) and their cursor, and CSV cells.

use serde::Serialize;

use super::clock::{format_rfc3339, parse_rfc3339_ms};
use super::error::GatewayError;
use super::usage::{LATENCY_BOUNDS_MS, LATENCY_BUCKETS};

/// A dashboard range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    Hour,
    Day,
    Week,
    Month,
}

/// Which rollups a range reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rollups {
    Minute,
    Hourly,
    /// Whole UTC days (the 30-day view, whose window is whole days).
    Daily,
}

impl Range {
    pub fn parse(text: Option<&str>) -> Result<Self, GatewayError> {
        match text.unwrap_or("24h") {
            "1h" => Ok(Self::Hour),
            "24h" => Ok(Self::Day),
            "7d" => Ok(Self::Week),
            "30d" => Ok(Self::Month),
            other => Err(GatewayError::invalid_param(
                format!("`range` must be 1h, 24h, 7d or 30d, not `{other}`."),
                "range",
            )),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Hour => "1h",
            Self::Day => "24h",
            Self::Week => "7d",
            Self::Month => "30d",
        }
    }

    pub fn span_ms(self) -> u64 {
        const HOUR: u64 = 3_600_000;
        match self {
            Self::Hour => HOUR,
            Self::Day => 24 * HOUR,
            Self::Week => 7 * 24 * HOUR,
            Self::Month => 30 * 24 * HOUR,
        }
    }

    /// The width of one point of the series.
    pub fn bucket_ms(self) -> u64 {
        match self {
            Self::Hour => 60_000,
            Self::Day => 3_600_000,
            Self::Week => 6 * 3_600_000,
            Self::Month => 24 * 3_600_000,
        }
    }

    /// The one-hour view needs minute rollups, the 30-day one reads daily ones, the others
    /// hourly ones.
    pub fn rollups(self) -> Rollups {
        match self {
            Self::Hour => Rollups::Minute,
            Self::Day | Self::Week => Rollups::Hourly,
            Self::Month => Rollups::Daily,
        }
    }

    /// `[from, to)`: whole buckets, the last one holding `now`.
    pub fn window(self, now_ms: u64) -> (u64, u64) {
        let bucket = self.bucket_ms();
        let to = now_ms - now_ms % bucket + bucket;
        (to.saturating_sub(self.span_ms()), to)
    }
}

/// The sums one bucket of rollups holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sums {
    pub requests: u64,
    pub errors: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub reasoning_tokens: u64,
    pub credits: u64,
    pub latency: [u64; LATENCY_BUCKETS],
}

impl Sums {
    pub fn add(&mut self, other: &Self) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.reasoning_tokens += other.reasoning_tokens;
        self.credits += other.credits;
        for (a, b) in self.latency.iter_mut().zip(other.latency) {
            *a += b;
        }
    }
}

/// One point of a dashboard series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    pub t: String,
    pub requests: u64,
    pub errors: u64,
    pub p50_ms: Option<u64>,
    pub p95_ms: Option<u64>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub reasoning_tokens: u64,
    pub credits: u64,
}

/// The totals of a range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Totals {
    #[serde(flatten)]
    pub point: Point,
    /// Requests that ended in a 2xx, as a share of all (1 when there were none).
    pub success_rate: f64,
}

fn point(t: u64, sums: &Sums) -> Point {
    Point {
        t: format_rfc3339(t),
        requests: sums.requests,
        errors: sums.errors,
        p50_ms: percentile(&sums.latency, 0.50),
        p95_ms: percentile(&sums.latency, 0.95),
        prompt_tokens: sums.prompt_tokens,
        completion_tokens: sums.completion_tokens,
        reasoning_tokens: sums.reasoning_tokens,
        credits: sums.credits,
    }
}

/// The series of `range` over `[from, to)` from rollup rows `(bucket start, sums)` (any
/// order, any width up to the range's bucket), with every bucket present.
pub fn series(range: Range, from: u64, to: u64, rows: &[(u64, Sums)]) -> (Vec<Point>, Totals) {
    let width = range.bucket_ms();
    let count = usize::try_from(to.saturating_sub(from) / width).unwrap_or(0);
    let mut buckets = vec![Sums::default(); count];
    let mut total = Sums::default();
    for (start, sums) in rows {
        if *start < from || *start >= to {
            continue;
        }
        let i = usize::try_from((start - from) / width).unwrap_or(0);
        if let Some(bucket) = buckets.get_mut(i) {
            bucket.add(sums);
            total.add(sums);
        }
    }
    let points = buckets
        .iter()
        .enumerate()
        .map(|(i, sums)| point(from + width * i as u64, sums))
        .collect();
    let success_rate = if total.requests == 0 {
        1.0
    } else {
        ratio(total.requests - total.errors, total.requests)
    };
    (
        points,
        Totals {
            point: point(from, &total),
            success_rate,
        },
    )
}

#[expect(
    clippy::cast_precision_loss,
    reason = "request counts are far below 2^52"
)]
fn ratio(part: u64, whole: u64) -> f64 {
    part as f64 / whole as f64
}

/// The `q` quantile of a latency histogram, interpolated inside its bucket;
/// `None` for an empty one. Within one bucket's width (a factor of two) of
/// the exact value.
pub fn percentile(histogram: &[u64; LATENCY_BUCKETS], q: f64) -> Option<u64> {
    let total: u64 = histogram.iter().sum();
    if total == 0 {
        return None;
    }
    #[expect(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "counts and latencies are far below 2^52; the result is rounded on purpose"
    )]
    let estimate = {
        let rank = (q.clamp(0.0, 1.0) * total as f64).max(1.0);
        let mut seen = 0.0;
        let mut result = 0.0;
        for (i, &count) in histogram.iter().enumerate() {
            let count = count as f64;
            if count > 0.0 && seen + count >= rank {
                let lower = if i == 0 { 0 } else { LATENCY_BOUNDS_MS[i - 1] } as f64;
                let upper = LATENCY_BOUNDS_MS.get(i).map_or(lower * 2.0, |&b| b as f64);
                result = lower + (upper - lower) * ((rank - seen) / count);
                break;
            }
            seen += count;
        }
        result.round() as u64
    };
    Some(estimate)
}

/// A class of response statuses, for the log filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    Success,
    ClientError,
    ServerError,
    /// Anything but a 2xx.
    Failed,
}

impl StatusClass {
    /// The inclusive status range, or (for `Failed`) the range it excludes.
    pub fn bounds(self) -> (u16, u16) {
        match self {
            Self::Success | Self::Failed => (200, 299),
            Self::ClientError => (400, 499),
            Self::ServerError => (500, 599),
        }
    }
}

/// Where a page of the log continues: the last row's time and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub ts: u64,
    pub id: u64,
}

impl Cursor {
    pub fn encode(self) -> String {
        format!("{}_{}", self.ts, self.id)
    }

    pub fn parse(text: &str) -> Option<Self> {
        let (ts, id) = text.split_once('_')?;
        Some(Self {
            ts: ts.parse().ok()?,
            id: id.parse().ok()?,
        })
    }
}

/// The filters of `GET /admin/api/logs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery {
    pub from_ms: u64,
    pub to_ms: u64,
    pub status: Option<StatusClass>,
    pub model: Option<String>,
    pub key_id: Option<String>,
    pub user_id: Option<String>,
    pub stream: Option<bool>,
    /// Searched for in error messages.
    pub text: Option<String>,
    pub cursor: Option<Cursor>,
    pub limit: u32,
    pub csv: bool,
}

pub const DEFAULT_LOG_LIMIT: u32 = 50;
pub const MAX_LOG_LIMIT: u32 = 500;
/// A CSV export holds at most this many rows.
pub const MAX_CSV_ROWS: u32 = 100_000;
/// The log's default window when no `from` is given.
const DEFAULT_LOG_SPAN_MS: u64 = 24 * 3_600_000;

impl LogQuery {
    /// Reads the query string's pairs; an unknown or malformed parameter is a 400 naming it.
    pub fn parse(pairs: &[(String, String)], now_ms: u64) -> Result<Self, GatewayError> {
        let mut q = Self {
            from_ms: now_ms.saturating_sub(DEFAULT_LOG_SPAN_MS),
            to_ms: now_ms + 1,
            status: None,
            model: None,
            key_id: None,
            user_id: None,
            stream: None,
            text: None,
            cursor: None,
            limit: DEFAULT_LOG_LIMIT,
            csv: false,
        };
        for (name, value) in pairs {
            let bad =
                |why: &str| GatewayError::invalid_param(format!("`{name}` {why}."), name.clone());
            let value = value.trim();
            let text = || -> Result<Option<String>, GatewayError> {
                if value.chars().count() > 200 {
                    return Err(bad("is longer than 200 characters"));
                }
                Ok((!value.is_empty()).then(|| value.to_owned()))
            };
            match name.as_str() {
                "from" | "to" => {
                    let ms = parse_rfc3339_ms(value).ok_or_else(|| {
                        bad("must be an RFC 3339 time, e.g. 2026-01-31T12:00:00Z")
                    })?;
                    if name == "from" {
                        q.from_ms = ms;
                    } else {
                        q.to_ms = ms;
                    }
                }
                "status" => {
                    q.status = match value {
                        "" => None,
                        "2xx" => Some(StatusClass::Success),
                        "4xx" => Some(StatusClass::ClientError),
                        "5xx" => Some(StatusClass::ServerError),
                        "error" => Some(StatusClass::Failed),
                        _ => return Err(bad("must be 2xx, 4xx, 5xx or error")),
                    };
                }
                "model" => q.model = text()?,
                "key" => q.key_id = text()?,
                "user" => q.user_id = text()?,
                "q" => q.text = text()?,
                "stream" => {
                    q.stream = match value {
                        "" => None,
                        "true" | "1" => Some(true),
                        "false" | "0" => Some(false),
                        _ => return Err(bad("must be true or false")),
                    };
                }
                "cursor" => {
                    q.cursor = (!value.is_empty())
                        .then(|| {
                            Cursor::parse(value).ok_or_else(|| bad("is not a cursor from this API"))
                        })
                        .transpose()?;
                }
                "limit" => {
                    q.limit = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_LOG_LIMIT).contains(n))
                        .ok_or_else(|| bad("must be a whole number from 1 to 500"))?;
                }
                "format" => {
                    q.csv = match value {
                        "csv" => true,
                        "" | "json" => false,
                        _ => return Err(bad("must be json or csv")),
                    };
                }
                _ => return Err(bad("is not a log filter")),
            }
        }
        if q.from_ms >= q.to_ms {
            return Err(GatewayError::invalid_param(
                "`from` must be before `to`.",
                "from",
            ));
        }
        if q.csv {
            q.limit = MAX_CSV_ROWS;
        }
        Ok(q)
    }
}

/// A `LIKE` pattern that matches `text` anywhere, with `\` escaping SQL's wildcards.
pub fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// One CSV cell (RFC 4180 quoting). A cell a spreadsheet would run as a
/// formula (`=`, `+`, `-`, `@` first) is prefixed with `'`.
pub fn csv_cell(value: &str) -> String {
    let guarded = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_765_000_123_456;

    fn sums(requests: u64, errors: u64, latency_bucket: usize) -> Sums {
        let mut latency = [0; LATENCY_BUCKETS];
        latency[latency_bucket] = requests;
        Sums {
            requests,
            errors,
            prompt_tokens: requests * 10,
            latency,
            ..Sums::default()
        }
    }

    #[test]
    fn ranges_have_their_buckets_and_tables() {
        for (text, range, points, table) in [
            ("1h", Range::Hour, 60, Rollups::Minute),
            ("24h", Range::Day, 24, Rollups::Hourly),
            ("7d", Range::Week, 28, Rollups::Hourly),
            ("30d", Range::Month, 30, Rollups::Daily),
        ] {
            assert_eq!(Range::parse(Some(text)), Ok(range));
            assert_eq!(range.label(), text);
            assert_eq!(range.span_ms() / range.bucket_ms(), points);
            assert_eq!(range.rollups(), table);
            let (from, to) = range.window(NOW);
            assert!(from < NOW && NOW < to && to - from == range.span_ms());
            assert_eq!(to % range.bucket_ms(), 0);
        }
        assert_eq!(Range::parse(None), Ok(Range::Day));
        assert_eq!(
            Range::parse(Some("2h")).unwrap_err().openai_param(),
            Some("range")
        );
    }

    #[test]
    fn a_series_has_every_bucket_and_totals() {
        let range = Range::Day;
        let (from, to) = range.window(NOW);
        let hour = 3_600_000;
        let rows = [
            (from, sums(10, 1, 2)),
            (from + 5 * hour, sums(4, 0, 3)),
            (from + 5 * hour, sums(6, 2, 3)),
            (from - hour, sums(99, 99, 0)),
        ];
        let (points, totals) = series(range, from, to, &rows);
        assert_eq!(points.len(), 24);
        assert_eq!(points[0].requests, 10);
        assert_eq!(points[1].requests, 0);
        assert_eq!(points[1].p50_ms, None, "an empty bucket has no percentile");
        assert_eq!((points[5].requests, points[5].errors), (10, 2));
        assert_eq!(points[5].t, format_rfc3339(from + 5 * hour));
        assert_eq!(
            totals.point.requests, 20,
            "rows outside the window are ignored"
        );
        assert_eq!(totals.point.prompt_tokens, 200);
        assert!((totals.success_rate - 17.0 / 20.0).abs() < 1e-9);
        let (_, empty) = series(range, from, to, &[]);
        assert!((empty.success_rate - 1.0).abs() < f64::EPSILON);
    }

    #[test]
    fn percentiles_come_from_the_histogram() {
        let mut h = [0; LATENCY_BUCKETS];
        assert_eq!(percentile(&h, 0.5), None);
        // 100 requests in [100, 200): the median is mid-bucket.
        h[2] = 100;
        assert_eq!(percentile(&h, 0.5), Some(150));
        assert_eq!(percentile(&h, 0.95), Some(195));
        // 90 fast, 10 very slow: p50 fast, p95 in the slow bucket.
        let mut h = [0; LATENCY_BUCKETS];
        h[0] = 90;
        h[8] = 10;
        assert!(percentile(&h, 0.5).unwrap() < 50);
        let p95 = percentile(&h, 0.95).unwrap();
        assert!((6_400..12_800).contains(&p95), "{p95}");
        // The open last bucket is read as up to twice its lower bound.
        let mut h = [0; LATENCY_BUCKETS];
        h[LATENCY_BUCKETS - 1] = 1;
        assert_eq!(percentile(&h, 0.99), Some(102_400));
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn log_filters_parse_and_name_their_errors() {
        let q = LogQuery::parse(
            &pairs(&[
                ("from", "2025-12-01T00:00:00Z"),
                ("to", "2025-12-02T00:00:00+08:00"),
                ("status", "5xx"),
                ("model", "gemini-2.5-flash"),
                ("key", "k1"),
                ("user", "u_1"),
                ("stream", "false"),
                ("q", " timeout "),
                ("cursor", "1764547200000_42"),
                ("limit", "20"),
            ]),
            NOW,
        )
        .unwrap();
        assert_eq!(q.status, Some(StatusClass::ServerError));
        assert_eq!(q.stream, Some(false));
        assert_eq!(q.text.as_deref(), Some("timeout"));
        assert_eq!(
            q.cursor,
            Some(Cursor {
                ts: 1_764_547_200_000,
                id: 42
            })
        );
        assert_eq!((q.limit, q.csv), (20, false));
        assert_eq!(q.to_ms - q.from_ms, 16 * 3_600_000);

        let defaults = LogQuery::parse(&[], NOW).unwrap();
        assert_eq!(defaults.to_ms - defaults.from_ms, DEFAULT_LOG_SPAN_MS + 1);
        assert_eq!(defaults.limit, DEFAULT_LOG_LIMIT);
        assert_eq!(
            LogQuery::parse(&pairs(&[("format", "csv")]), NOW)
                .unwrap()
                .limit,
            MAX_CSV_ROWS
        );

        for (name, value) in [
            ("from", "yesterday"),
            ("status", "3xx"),
            ("stream", "maybe"),
            ("cursor", "abc"),
            ("limit", "0"),
            ("limit", "501"),
            ("format", "xml"),
            ("colour", "red"),
        ] {
            let err = LogQuery::parse(&pairs(&[(name, value)]), NOW).unwrap_err();
            assert_eq!(err.openai_param(), Some(name), "{name}={value}");
        }
        let long = "x".repeat(201);
        assert!(LogQuery::parse(&pairs(&[("q", &long)]), NOW).is_err());
        let backwards = pairs(&[
            ("from", "2025-12-02T00:00:00Z"),
            ("to", "2025-12-01T00:00:00Z"),
        ]);
        assert_eq!(
            LogQuery::parse(&backwards, NOW).unwrap_err().openai_param(),
            Some("from")
        );
    }

    #[test]
    fn cursors_round_trip() {
        let c = Cursor { ts: 5, id: 7 };
        assert_eq!(Cursor::parse(&c.encode()), Some(c));
        assert_eq!(Cursor::parse("5_x"), None);
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("a%b_c\\"), "%a\\%b\\_c\\\\%");
    }

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(csv_cell("-1,2"), "\"'-1,2\"");
    }
}
