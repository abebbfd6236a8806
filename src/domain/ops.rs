//! Seeing the gateway from outside: the request id every response carries,
//! the one-look `/health` verdict, and the Prometheus text of `/metrics`.

use std::fmt::Write as _;

use serde::Serialize;

use crate::domain::usage::{LATENCY_BOUNDS_MS, LATENCY_BUCKETS};

/// The header that carries a request's id, both ways.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Longest client-sent id kept; a longer one is replaced.
const MAX_REQUEST_ID: usize = 128;

/// The client's own `x-request-id` when it is a sane token (1–128 visible
/// ASCII characters), so its logs and ours line up; otherwise `None`, and
/// the gateway makes one. Anything else could forge log lines or bloat rows.
pub fn client_request_id(sent: Option<&str>) -> Option<String> {
    let id = sent?.trim();
    let sane =
        !id.is_empty() && id.len() <= MAX_REQUEST_ID && id.bytes().all(|b| b.is_ascii_graphic());
    sane.then(|| id.to_owned())
}

/// A new request id from 12 random bytes: `req_` and 24 hex digits.
pub fn new_request_id(random: [u8; 12]) -> String {
    format!("req_{}", crate::domain::sha256::to_hex(&random))
}

/// One model's usable upstreams, for `/health` and `/metrics`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ModelHealth {
    pub model: String,
    /// Enabled keys that may serve it and are not cooling on it now.
    pub keys: u64,
    /// Usable accounts that may serve it and are not cooling on it now.
    pub accounts: u64,
    /// Enabled upstreams that may serve it, cooling or not.
    pub total: u64,
}

impl ModelHealth {
    pub fn usable(&self) -> u64 {
        self.keys + self.accounts
    }
}

/// The pool as D1 has it, for the per-model health.
pub struct PoolCounts<'a> {
    /// Enabled, unarchived keys.
    pub keys: u64,
    /// Accounts usable now (enabled, no attention needed, onboarded).
    pub accounts: u64,
    /// `(upstream id, model)` for every usable upstream cooling on a model now.
    pub cooling: &'a [(String, String)],
}

/// Each model's usable keys and accounts: every upstream the routing lets
/// serve it, less those cooling on it. `models` is the list to report
/// (the models in use), in order, without repeats.
pub fn model_health(
    models: &[String],
    routing: &crate::domain::accounts::routing::Routing,
    pool: &PoolCounts<'_>,
) -> Vec<ModelHealth> {
    let mut seen: Vec<&str> = Vec::with_capacity(models.len());
    let mut out = Vec::with_capacity(models.len());
    for model in models {
        if seen.contains(&model.as_str()) {
            continue;
        }
        seen.push(model);
        let route = routing.route(model, false);
        let cooling = |accounts: bool| {
            pool.cooling
                .iter()
                .filter(|(id, m)| {
                    m == model && crate::domain::accounts::record::is_account(id) == accounts
                })
                .count() as u64
        };
        let keys = if route.keys { pool.keys } else { 0 };
        let accounts = if route.accounts { pool.accounts } else { 0 };
        out.push(ModelHealth {
            model: model.clone(),
            keys: keys.saturating_sub(if route.keys { cooling(false) } else { 0 }),
            accounts: accounts.saturating_sub(if route.accounts { cooling(true) } else { 0 }),
            total: keys + accounts,
        });
    }
    out
}

/// The overall verdict of `/health`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every model has a usable upstream, and most upstreams are usable.
    Ok,
    /// The gateway serves, but a model has no usable upstream, or more than
    /// half of a model's upstreams are cooling.
    Degraded,
    /// No model can be served now.
    Down,
}

impl Status {
    /// `/health`'s HTTP status: 503 only when nothing can be served, so an
    /// uptime monitor alerts on `down` and a dashboard reads the rest.
    pub fn http_status(self) -> u16 {
        match self {
            Self::Ok | Self::Degraded => 200,
            Self::Down => 503,
        }
    }
}

/// The verdict over the models' health.
pub fn verdict(models: &[ModelHealth]) -> Status {
    if models.iter().all(|m| m.usable() == 0) {
        return Status::Down;
    }
    let degraded = models
        .iter()
        .any(|m| m.usable() == 0 || m.usable() * 2 < m.total);
    if degraded {
        Status::Degraded
    } else {
        Status::Ok
    }
}

/// The outcome label of a logged request, by its status.
pub fn outcome_of(status: u16) -> &'static str {
    match status {
        200..=299 => "ok",
        429 => "rate_limited",
        400..=499 => "client_error",
        _ => "upstream_error",
    }
}

/// One row of `metric_totals`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricRow {
    pub surface: String,
    pub model: String,
    pub outcome: String,
    pub requests: u64,
    pub latency_ms: u64,
    pub buckets: [u64; LATENCY_BUCKETS],
}

/// The batch's rows folded into `metric_totals` increments, one per
/// surface, model and outcome.
pub fn aggregate_metrics(rows: &[crate::domain::usage::LogRow]) -> Vec<MetricRow> {
    let mut out: Vec<MetricRow> = Vec::new();
    for row in rows {
        let outcome = outcome_of(row.status);
        let at = out
            .iter()
            .position(|m| m.surface == row.surface && m.model == row.model && m.outcome == outcome);
        let i = at.unwrap_or_else(|| {
            out.push(MetricRow {
                surface: row.surface.to_owned(),
                model: row.model.clone(),
                outcome: outcome.to_owned(),
                ..MetricRow::default()
            });
            out.len() - 1
        });
        let m = &mut out[i];
        m.requests += 1;
        m.latency_ms += row.latency_ms;
        m.buckets[crate::domain::usage::latency_bucket(row.latency_ms)] += 1;
    }
    out
}

/// A model's queue at its gate, where `max_concurrency` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueGauge {
    pub model: String,
    pub in_flight: u64,
    pub waiting: u64,
}

/// Everything `/metrics` shows.
pub struct Metrics<'a> {
    pub totals: &'a [MetricRow],
    pub health: &'a [ModelHealth],
    pub queues: &'a [QueueGauge],
    pub upstream_errors: &'a [(String, String, u64)],
}

/// A label value, escaped as the text format asks (`\\`, `\"`, `\n`).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The Prometheus text exposition (version 0.0.4) of the metrics.
pub fn prometheus(m: &Metrics<'_>) -> String {
    let mut out = String::with_capacity(4096);
    // Each row's label set, escaped once for both families.
    let labels: Vec<String> = m
        .totals
        .iter()
        .map(|r| {
            format!(
                "surface=\"{}\",model=\"{}\",outcome=\"{}\"",
                label(&r.surface),
                label(&r.model),
                label(&r.outcome)
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "# HELP gemgate_requests_total Client requests settled, by surface, model and outcome.\n# TYPE gemgate_requests_total counter"
    );
    for (r, labels) in m.totals.iter().zip(&labels) {
        let _ = writeln!(out, "gemgate_requests_total{{{labels}}} {}", r.requests);
    }
    let _ = writeln!(
        out,
        "# HELP gemgate_request_duration_seconds Client request latency, first byte to settlement.\n# TYPE gemgate_request_duration_seconds histogram"
    );
    for (r, labels) in m.totals.iter().zip(&labels) {
        let mut cumulative = 0;
        for (i, bound) in LATENCY_BOUNDS_MS.iter().enumerate() {
            cumulative += r.buckets[i];
            let _ = writeln!(
                out,
                "gemgate_request_duration_seconds_bucket{{{labels},le=\"{}\"}} {cumulative}",
                seconds(*bound)
            );
        }
        let _ = writeln!(
            out,
            "gemgate_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}\n\
             gemgate_request_duration_seconds_sum{{{labels}}} {}\n\
             gemgate_request_duration_seconds_count{{{labels}}} {}",
            r.requests,
            seconds(r.latency_ms),
            r.requests
        );
    }
    let _ = writeln!(
        out,
        "# HELP gemgate_usable_upstreams Keys and accounts usable now, by model and kind.\n# TYPE gemgate_usable_upstreams gauge"
    );
    for h in m.health {
        let model = label(&h.model);
        let _ = writeln!(
            out,
            "gemgate_usable_upstreams{{model=\"{model}\",kind=\"key\"}} {}\ngemgate_usable_upstreams{{model=\"{model}\",kind=\"account\"}} {}",
            h.keys, h.accounts
        );
    }
    let _ = writeln!(
        out,
        "# HELP gemgate_upstream_errors_recent Failed upstream attempts in the last hour, by model and class.\n# TYPE gemgate_upstream_errors_recent gauge"
    );
    for (model, class, n) in m.upstream_errors {
        let _ = writeln!(
            out,
            "gemgate_upstream_errors_recent{{model=\"{}\",class=\"{}\"}} {n}",
            label(model),
            label(class)
        );
    }
    let _ = writeln!(
        out,
        "# HELP gemgate_queue_in_flight Requests holding a slot, for models with max_concurrency.\n# TYPE gemgate_queue_in_flight gauge\n# HELP gemgate_queue_waiting Requests waiting for a slot, for models with max_concurrency.\n# TYPE gemgate_queue_waiting gauge"
    );
    for q in m.queues {
        let model = label(&q.model);
        let _ = writeln!(
            out,
            "gemgate_queue_in_flight{{model=\"{model}\"}} {}\ngemgate_queue_waiting{{model=\"{model}\"}} {}",
            q.in_flight, q.waiting
        );
    }
    out
}

/// Milliseconds as seconds, exactly (`1600` → `1.6`).
fn seconds(ms: u64) -> String {
    let (whole, frac) = (ms / 1000, ms % 1000);
    if frac == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{frac:03}")
            .trim_end_matches('0')
            .to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(model: &str, keys: u64, accounts: u64, total: u64) -> ModelHealth {
        ModelHealth {
            model: model.into(),
            keys,
            accounts,
            total,
        }
    }

    #[test]
    fn a_client_id_is_kept_only_when_it_is_a_sane_token() {
        assert_eq!(client_request_id(Some("abc-123")), Some("abc-123".into()));
        assert_eq!(client_request_id(Some("  t1 ")), Some("t1".into()));
        assert_eq!(client_request_id(Some("a b")), None);
        assert_eq!(client_request_id(Some("a\r\nb")), None);
        assert_eq!(client_request_id(Some("")), None);
        assert_eq!(client_request_id(Some("日本")), None);
        assert_eq!(client_request_id(Some(&"x".repeat(129))), None);
        assert_eq!(client_request_id(None), None);
        assert_eq!(
            new_request_id([0xab; 12]),
            format!("req_{}", "ab".repeat(12))
        );
    }

    #[test]
    fn a_model_counts_what_may_serve_it_less_what_cools_on_it() {
        use crate::domain::accounts::routing::Routing;
        let routing = Routing::default();
        let account = crate::domain::accounts::record::account_id("a@example.com");
        let cooling = vec![
            ("k1".to_owned(), "gemini-2.5-flash".to_owned()),
            ("k2".to_owned(), "gemini-2.5-flash".to_owned()),
            (account.clone(), "gemini-2.5-flash".to_owned()),
            ("k1".to_owned(), "gemma-3-27b-it".to_owned()),
        ];
        let pool = PoolCounts {
            keys: 3,
            accounts: 2,
            cooling: &cooling,
        };
        let models = ["gemini-2.5-flash", "gemma-3-27b-it", "gemini-2.5-flash"].map(String::from);
        assert_eq!(
            model_health(&models, &routing, &pool),
            vec![
                health("gemini-2.5-flash", 1, 1, 5),
                // Code Assist does not serve Gemma: keys only.
                health("gemma-3-27b-it", 2, 0, 3),
            ]
        );
    }

    #[test]
    fn the_verdict_reads_every_model() {
        assert_eq!(
            verdict(&[health("a", 3, 0, 3), health("b", 1, 1, 2)]),
            Status::Ok
        );
        assert_eq!(
            verdict(&[health("a", 3, 0, 3), health("b", 0, 0, 2)]),
            Status::Degraded
        );
        assert_eq!(verdict(&[health("a", 1, 0, 3)]), Status::Degraded);
        assert_eq!(
            verdict(&[health("a", 0, 0, 3), health("b", 0, 0, 0)]),
            Status::Down
        );
        assert_eq!(verdict(&[]), Status::Down);
        assert_eq!(Status::Down.http_status(), 503);
        assert_eq!(Status::Degraded.http_status(), 200);
    }

    #[test]
    fn outcomes_follow_the_status() {
        assert_eq!(outcome_of(200), "ok");
        assert_eq!(outcome_of(429), "rate_limited");
        assert_eq!(outcome_of(400), "client_error");
        assert_eq!(outcome_of(503), "upstream_error");
        assert_eq!(outcome_of(500), "upstream_error");
    }

    #[test]
    fn the_text_format_is_cumulative_and_escaped() {
        let mut buckets = [0; LATENCY_BUCKETS];
        buckets[0] = 2;
        buckets[3] = 1;
        let totals = [MetricRow {
            surface: "openai".into(),
            model: "gem\"ini".into(),
            outcome: "ok".into(),
            requests: 3,
            latency_ms: 1_650,
            buckets,
        }];
        let text = prometheus(&Metrics {
            totals: &totals,
            health: &[health("m", 2, 1, 3)],
            queues: &[QueueGauge {
                model: "m".into(),
                in_flight: 2,
                waiting: 5,
            }],
            upstream_errors: &[("m".into(), "rate_limited".into(), 4)],
        });
        let labels = r#"surface="openai",model="gem\"ini",outcome="ok""#;
        assert!(text.contains(&format!("gemgate_requests_total{{{labels}}} 3\n")));
        assert!(text.contains(&format!(
            "gemgate_request_duration_seconds_bucket{{{labels},le=\"0.05\"}} 2\n"
        )));
        assert!(text.contains(&format!(
            "gemgate_request_duration_seconds_bucket{{{labels},le=\"0.2\"}} 2\n"
        )));
        assert!(text.contains(&format!(
            "gemgate_request_duration_seconds_bucket{{{labels},le=\"0.4\"}} 3\n"
        )));
        assert!(text.contains(&format!(
            "gemgate_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} 3\n"
        )));
        assert!(text.contains(&format!(
            "gemgate_request_duration_seconds_sum{{{labels}}} 1.65\n"
        )));
        assert!(text.contains(&format!(
            "gemgate_request_duration_seconds_count{{{labels}}} 3\n"
        )));
        assert!(text.contains("gemgate_usable_upstreams{model=\"m\",kind=\"account\"} 1\n"));
        assert!(text.contains("gemgate_queue_waiting{model=\"m\"} 5\n"));
        assert!(
            text.contains("gemgate_upstream_errors_recent{model=\"m\",class=\"rate_limited\"} 4\n")
        );
        // Every sample line is `name{labels} value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = line.rsplit_once(' ').unwrap_or_default();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
