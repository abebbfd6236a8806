//! The console's reads: rollup series and splits (`usage_hourly`,
//! `usage_minute`), the request log page by page, and the pool's health
//! mirror. Every query is bounded by time and served by an index; none scans
//! `request_log` whole.

use std::fmt::Write as _;

use serde::Deserialize;
use worker::D1Database;
use worker::wasm_bindgen::JsValue;

use crate::domain::error::GatewayError;
use crate::domain::stats::{Cursor, LogQuery, Rollups, StatusClass, Sums, like_pattern};
use crate::domain::usage::LATENCY_BUCKETS;
use crate::edge::{int, internal, js_int};

/// Narrows rollups to one user, model or key.
#[derive(Debug, Default, Clone, Copy)]
pub struct Filter<'a> {
    pub user: Option<&'a str>,
    pub model: Option<&'a str>,
    pub key: Option<&'a str>,
}

/// What a rollup split is by.
#[derive(Debug, Clone, Copy)]
pub enum By {
    Model,
    Key,
    User,
}

/// The user × model × key rollups a range reads (a filter needs them): the daily view sums
/// hourly rows.
fn table(rollups: Rollups) -> (&'static str, &'static str) {
    match rollups {
        Rollups::Minute => ("usage_minute", "minute"),
        Rollups::Hourly | Rollups::Daily => ("usage_hourly", "hour"),
    }
}

const SUMS: &str = "SUM(r.requests) AS requests, SUM(r.errors) AS errors, \
    SUM(r.prompt_tokens) AS prompt_tokens, SUM(r.completion_tokens) AS completion_tokens, \
    SUM(r.reasoning_tokens) AS reasoning_tokens, SUM(r.credits) AS credits, \
    SUM(r.lat_0) AS lat_0, SUM(r.lat_1) AS lat_1, SUM(r.lat_2) AS lat_2, SUM(r.lat_3) AS lat_3, \
    SUM(r.lat_4) AS lat_4, SUM(r.lat_5) AS lat_5, SUM(r.lat_6) AS lat_6, SUM(r.lat_7) AS lat_7, \
    SUM(r.lat_8) AS lat_8, SUM(r.lat_9) AS lat_9, SUM(r.lat_10) AS lat_10, SUM(r.lat_11) AS lat_11";

/// One row of summed rollups, as D1 returns it (numbers as f64, NULL for no rows).
#[derive(Deserialize)]
struct SumsRow {
    name: Option<String>,
    label: Option<String>,
    bucket: Option<f64>,
    requests: Option<f64>,
    errors: Option<f64>,
    prompt_tokens: Option<f64>,
    completion_tokens: Option<f64>,
    reasoning_tokens: Option<f64>,
    credits: Option<f64>,
    lat_0: Option<f64>,
    lat_1: Option<f64>,
    lat_2: Option<f64>,
    lat_3: Option<f64>,
    lat_4: Option<f64>,
    lat_5: Option<f64>,
    lat_6: Option<f64>,
    lat_7: Option<f64>,
    lat_8: Option<f64>,
    lat_9: Option<f64>,
    lat_10: Option<f64>,
    lat_11: Option<f64>,
}

impl SumsRow {
    fn sums(&self) -> Sums {
        let n = |v: Option<f64>| v.map_or(0, int);
        let latency: [u64; LATENCY_BUCKETS] = [
            n(self.lat_0),
            n(self.lat_1),
            n(self.lat_2),
            n(self.lat_3),
            n(self.lat_4),
            n(self.lat_5),
            n(self.lat_6),
            n(self.lat_7),
            n(self.lat_8),
            n(self.lat_9),
            n(self.lat_10),
            n(self.lat_11),
        ];
        Sums {
            requests: n(self.requests),
            errors: n(self.errors),
            prompt_tokens: n(self.prompt_tokens),
            completion_tokens: n(self.completion_tokens),
            reasoning_tokens: n(self.reasoning_tokens),
            credits: n(self.credits),
            latency,
        }
    }
}

/// `WHERE` over a rollup table's time column and the filter, with its parameters.
fn conditions(bucket: &str, from: u64, to: u64, filter: Filter<'_>) -> (String, Vec<JsValue>) {
    let mut sql = format!("r.{bucket} >= ?1 AND r.{bucket} < ?2");
    let mut params = vec![js_int(from), js_int(to)];
    for (column, value) in [
        ("user_id", filter.user),
        ("model", filter.model),
        ("key_id", filter.key),
    ] {
        if let Some(value) = value {
            params.push(value.into());
            let _ = write!(sql, " AND r.{column} = ?{}", params.len());
        }
    }
    (sql, params)
}

impl Filter<'_> {
    fn is_empty(&self) -> bool {
        self.user.is_none() && self.model.is_none() && self.key.is_none()
    }
}

/// The per-dimension rollups (table, time column) a query can read: hourly or daily ones,
/// with no filter. They hold one row per value and bucket, where `usage_hourly` holds one per
/// user × model × key.
fn dims_table(rollups: Rollups, filter: Filter<'_>) -> Option<(&'static str, &'static str)> {
    match rollups {
        _ if !filter.is_empty() => None,
        Rollups::Minute => None,
        Rollups::Hourly => Some(("usage_dims", "hour")),
        Rollups::Daily => Some(("usage_dims_daily", "day")),
    }
}

/// Rollup sums per `bucket_ms`-wide bucket of `[from, to)`.
pub async fn series(
    db: &D1Database,
    rollups: Rollups,
    from: u64,
    to: u64,
    bucket_ms: u64,
    filter: Filter<'_>,
) -> Result<Vec<(u64, Sums)>, GatewayError> {
    let (table, bucket, conditions, mut params) =
        if let Some((table, bucket)) = dims_table(rollups, filter) {
            (
                table,
                bucket,
                format!("r.dim = 'all' AND r.{bucket} >= ?1 AND r.{bucket} < ?2"),
                vec![js_int(from), js_int(to)],
            )
        } else {
            let (table, bucket) = table(rollups);
            let (conditions, params) = conditions(bucket, from, to, filter);
            (table, bucket, conditions, params)
        };
    params.push(js_int(bucket_ms));
    let width = params.len();
    let sql = format!(
        "SELECT (r.{bucket} / ?{width}) * ?{width} AS bucket, {SUMS} FROM {table} r \
         WHERE {conditions} GROUP BY 1 ORDER BY 1"
    );
    let rows: Vec<SumsRow> = db
        .prepare(sql)
        .bind(&params)
        .map_err(internal("bind series"))?
        .all()
        .await
        .map_err(internal("read series"))?
        .results()
        .map_err(internal("decode series"))?;
    Ok(rows
        .iter()
        .filter_map(|r| r.bucket.map(|b| (int(b), r.sums())))
        .collect())
}

/// Rollup sums of `[from, to)` per model, key or user, most requests first, with a label
/// (a key's mask, a user's name).
pub async fn split(
    db: &D1Database,
    rollups: Rollups,
    from: u64,
    to: u64,
    filter: Filter<'_>,
    by: By,
    limit: u32,
) -> Result<Vec<(String, Option<String>, Sums)>, GatewayError> {
    let dims = dims_table(rollups, filter);
    let (table, conditions, mut params) = if let Some((table, bucket)) = dims {
        let dim = match by {
            By::Model => "model",
            By::Key => "key",
            By::User => "user",
        };
        (
            table,
            format!("r.dim = ?3 AND r.{bucket} >= ?1 AND r.{bucket} < ?2"),
            vec![js_int(from), js_int(to), dim.into()],
        )
    } else {
        let (table, bucket) = table(rollups);
        let (conditions, params) = conditions(bucket, from, to, filter);
        (table, conditions, params)
    };
    let dims = dims.is_some();
    let column = match (dims, by) {
        (true, _) => "r.name",
        (false, By::Model) => "r.model",
        (false, By::Key) => "r.key_id",
        (false, By::User) => "r.user_id",
    };
    let (label, join) = match by {
        By::Model => ("NULL", String::new()),
        By::Key => (
            "k.masked",
            format!("LEFT JOIN upstream_keys k ON k.id = {column}"),
        ),
        By::User => ("u.name", format!("LEFT JOIN users u ON u.id = {column}")),
    };
    params.push(js_int(u64::from(limit)));
    let sql = format!(
        "SELECT {column} AS name, {label} AS label, {SUMS} FROM {table} r {join} \
         WHERE {conditions} AND {column} != '' GROUP BY {column} \
         ORDER BY requests DESC LIMIT ?{}",
        params.len()
    );
    let rows: Vec<SumsRow> = db
        .prepare(sql)
        .bind(&params)
        .map_err(internal("bind split"))?
        .all()
        .await
        .map_err(internal("read split"))?
        .results()
        .map_err(internal("decode split"))?;
    Ok(rows
        .iter()
        .filter_map(|r| Some((r.name.clone()?, r.label.clone(), r.sums())))
        .collect())
}

/// A key that is failing now, from the health mirror.
#[derive(Debug, Deserialize)]
pub struct FailingKey {
    pub key_id: String,
    pub masked: Option<String>,
    pub failures: f64,
    pub last_error: Option<String>,
}

/// The keys with the most consecutive failures across models.
pub async fn failing_keys(db: &D1Database, limit: u32) -> Result<Vec<FailingKey>, GatewayError> {
    db.prepare(
        "SELECT h.key_id AS key_id, k.masked AS masked, SUM(h.consecutive_failures) AS failures, \
         (SELECT h2.last_error FROM key_model_health h2 WHERE h2.key_id = h.key_id \
          ORDER BY h2.updated_at DESC LIMIT 1) AS last_error \
         FROM key_model_health h LEFT JOIN upstream_keys k ON k.id = h.key_id \
         GROUP BY h.key_id HAVING failures > 0 ORDER BY failures DESC LIMIT ?1",
    )
    .bind(&[js_int(u64::from(limit))])
    .map_err(internal("bind failing keys"))?
    .all()
    .await
    .map_err(internal("read failing keys"))?
    .results()
    .map_err(internal("decode failing keys"))
}

/// A model's pool as the health mirror sees it.
#[derive(Debug, Deserialize)]
pub struct Capacity {
    pub model: String,
    pub cooling: f64,
    pub next_back_at: Option<f64>,
}

/// Per model with mirrored health: how many enabled keys are cooling, and when the first is
/// back. (Healthy = enabled − cooling.)
pub async fn capacity(db: &D1Database, now_ms: u64) -> Result<Vec<Capacity>, GatewayError> {
    db.prepare(
        "SELECT h.model AS model, \
         SUM(CASE WHEN h.cooldown_until > ?1 THEN 1 ELSE 0 END) AS cooling, \
         MIN(CASE WHEN h.cooldown_until > ?1 THEN h.cooldown_until END) AS next_back_at \
         FROM key_model_health h JOIN upstream_keys k ON k.id = h.key_id AND k.enabled = 1 \
         GROUP BY h.model ORDER BY h.model",
    )
    .bind(&[js_int(now_ms)])
    .map_err(internal("bind capacity"))?
    .all()
    .await
    .map_err(internal("read capacity"))?
    .results()
    .map_err(internal("decode capacity"))
}

/// One request-log row for the console.
#[derive(Debug, Deserialize)]
pub struct LogEntry {
    pub id: f64,
    pub ts: f64,
    pub user_id: Option<String>,
    pub user_name: Option<String>,
    pub model: String,
    pub key_id: String,
    pub key_masked: Option<String>,
    pub status: f64,
    pub prompt_tokens: f64,
    pub completion_tokens: f64,
    pub reasoning_tokens: f64,
    pub credits: f64,
    pub latency_ms: f64,
    pub stream: f64,
    pub error: Option<String>,
    pub request_id: Option<String>,
    pub surface: Option<String>,
}

impl LogEntry {
    pub fn cursor(&self) -> Cursor {
        Cursor {
            ts: int(self.ts),
            id: int(self.id),
        }
    }
}

/// One page of the log, newest first, after `cursor` when given, at most `limit` rows.
pub async fn logs(
    db: &D1Database,
    q: &LogQuery,
    cursor: Option<Cursor>,
    limit: u32,
) -> Result<Vec<LogEntry>, GatewayError> {
    let mut sql = String::from(
        "SELECT l.id, l.ts, l.user_id, u.name AS user_name, l.model, l.key_id, \
         k.masked AS key_masked, l.status, l.prompt_tokens, l.completion_tokens, \
         l.reasoning_tokens, l.credits, l.latency_ms, l.stream, l.error, l.request_id, \
         l.surface FROM request_log l LEFT JOIN users u ON u.id = l.user_id \
         LEFT JOIN upstream_keys k ON k.id = l.key_id WHERE l.ts >= ?1 AND l.ts < ?2",
    );
    let mut params = vec![js_int(q.from_ms), js_int(q.to_ms)];
    let mut add = |sql: &mut String, clause: &str, values: Vec<JsValue>| {
        let mut clause = clause.to_owned();
        for value in values {
            params.push(value);
            clause = clause.replacen('#', &format!("?{}", params.len()), 1);
        }
        sql.push_str(" AND ");
        sql.push_str(&clause);
    };
    if let Some(class) = q.status {
        let (low, high) = class.bounds();
        let clause = if class == StatusClass::Failed {
            "(l.status < # OR l.status > #)"
        } else {
            "l.status BETWEEN # AND #"
        };
        add(
            &mut sql,
            clause,
            vec![js_int(low.into()), js_int(high.into())],
        );
    }
    for (column, value) in [
        ("l.model", &q.model),
        ("l.key_id", &q.key_id),
        ("l.user_id", &q.user_id),
    ] {
        if let Some(value) = value {
            add(
                &mut sql,
                &format!("{column} = #"),
                vec![value.as_str().into()],
            );
        }
    }
    if let Some(stream) = q.stream {
        add(&mut sql, "l.stream = #", vec![js_int(u64::from(stream))]);
    }
    if let Some(text) = &q.text {
        add(
            &mut sql,
            "l.error LIKE # ESCAPE '\\'",
            vec![like_pattern(text).into()],
        );
    }
    if let Some(c) = cursor {
        add(
            &mut sql,
            "(l.ts < # OR (l.ts = # AND l.id < #))",
            vec![js_int(c.ts), js_int(c.ts), js_int(c.id)],
        );
    }
    params.push(js_int(u64::from(limit)));
    let _ = write!(
        sql,
        " ORDER BY l.ts DESC, l.id DESC LIMIT ?{}",
        params.len()
    );
    db.prepare(sql)
        .bind(&params)
        .map_err(internal("bind logs"))?
        .all()
        .await
        .map_err(internal("read logs"))?
        .results()
        .map_err(internal("decode logs"))
}
