//! The request log (`request_log`), its hourly rollups (`usage_hourly`) and
//! each user's settled total (`users.credits_used`): written together in one
//! D1 batch, and pruned by retention.

use worker::{D1Database, D1PreparedStatement};

use crate::domain::error::GatewayError;
use crate::domain::usage::{
    HOUR_MS, LATENCY_BUCKETS, LogRow, MINUTE_MS, Rollup, aggregate, user_credits,
};
use crate::edge::store::changes;
use crate::edge::{internal, js_int, js_opt};

/// The latency columns of both rollup tables, in histogram order.
const LATENCY_COLUMNS: &str =
    "lat_0, lat_1, lat_2, lat_3, lat_4, lat_5, lat_6, lat_7, lat_8, lat_9, lat_10, lat_11";

/// One D1 batch: the log rows, each touched hourly and minute rollup once, each user's
/// settled total once.
pub async fn write(db: &D1Database, rows: &[LogRow]) -> Result<(), GatewayError> {
    let hourly = aggregate(rows, HOUR_MS);
    let minutely = aggregate(rows, MINUTE_MS);
    let credits = user_credits(rows);
    let mut statements =
        Vec::with_capacity(rows.len() + hourly.len() + minutely.len() + credits.len());
    for row in rows {
        statements.push(
            db.prepare(
                "INSERT INTO request_log (ts, user_id, model, key_id, status, prompt_tokens, \
                 completion_tokens, reasoning_tokens, credits, latency_ms, stream, error) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )
            .bind(&[
                js_int(row.ts),
                js_opt(row.user_id.as_deref()),
                row.model.as_str().into(),
                row.key_id.as_str().into(),
                js_int(u64::from(row.status)),
                js_int(row.usage.prompt_tokens),
                js_int(row.usage.completion_tokens),
                js_int(row.usage.reasoning_tokens),
                js_int(row.credits),
                js_int(row.latency_ms),
                js_int(u64::from(row.stream)),
                js_opt(row.error.as_deref()),
            ])
            .map_err(internal("bind log"))?,
        );
    }
    for (table, bucket, rollups) in [
        ("usage_hourly", "hour", &hourly),
        ("usage_minute", "minute", &minutely),
    ] {
        for r in rollups {
            statements.push(upsert(db, table, bucket, r)?);
        }
    }
    for (user, total) in &credits {
        statements.push(
            db.prepare("UPDATE users SET credits_used = credits_used + ?1 WHERE id = ?2")
                .bind(&[js_int(*total), user.as_str().into()])
                .map_err(internal("bind credits"))?,
        );
    }
    db.batch(statements).await.map_err(internal("write log"))?;
    Ok(())
}

/// Adds one rollup delta to `table`, whose time column is `bucket`.
fn upsert(
    db: &D1Database,
    table: &str,
    bucket: &str,
    r: &Rollup,
) -> Result<D1PreparedStatement, GatewayError> {
    let latency_params: Vec<String> = (0..LATENCY_BUCKETS)
        .map(|i| format!("?{}", 11 + i))
        .collect();
    let latency_sums: Vec<String> = (0..LATENCY_BUCKETS)
        .map(|i| format!("lat_{i} = lat_{i} + ?{}", 11 + i))
        .collect();
    let sql = format!(
        "INSERT INTO {table} ({bucket}, user_id, model, key_id, requests, errors, prompt_tokens, \
         completion_tokens, reasoning_tokens, credits, {LATENCY_COLUMNS}) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, {}) \
         ON CONFLICT ({bucket}, user_id, model, key_id) DO UPDATE SET \
         requests = requests + ?5, errors = errors + ?6, prompt_tokens = prompt_tokens + ?7, \
         completion_tokens = completion_tokens + ?8, reasoning_tokens = reasoning_tokens + ?9, \
         credits = credits + ?10, {}",
        latency_params.join(", "),
        latency_sums.join(", "),
    );
    let mut params = vec![
        js_int(r.bucket),
        r.user_id.as_str().into(),
        r.model.as_str().into(),
        r.key_id.as_str().into(),
        js_int(r.requests),
        js_int(r.errors),
        js_int(r.usage.prompt_tokens),
        js_int(r.usage.completion_tokens),
        js_int(r.usage.reasoning_tokens),
        js_int(r.credits),
    ];
    params.extend(r.latency.iter().map(|&n| js_int(n)));
    db.prepare(sql)
        .bind(&params)
        .map_err(internal("bind rollup"))
}

/// Minute rollups are kept this long: they serve only the one-hour view.
pub const MINUTE_RETENTION_MS: u64 = 2 * 24 * HOUR_MS;

/// Deletes log rows older than `log_cutoff_ms`, hourly rollups older than
/// `rollup_cutoff_ms` and minute rollups older than `minute_cutoff_ms`; returns how many of
/// each went.
pub async fn prune(
    db: &D1Database,
    log_cutoff_ms: u64,
    rollup_cutoff_ms: u64,
    minute_cutoff_ms: u64,
) -> Result<(usize, usize, usize), GatewayError> {
    let results = db
        .batch(vec![
            db.prepare("DELETE FROM request_log WHERE ts < ?1")
                .bind(&[js_int(log_cutoff_ms)])
                .map_err(internal("bind log retention"))?,
            db.prepare("DELETE FROM usage_hourly WHERE hour < ?1")
                .bind(&[js_int(rollup_cutoff_ms)])
                .map_err(internal("bind rollup retention"))?,
            db.prepare("DELETE FROM usage_minute WHERE minute < ?1")
                .bind(&[js_int(minute_cutoff_ms)])
                .map_err(internal("bind minute retention"))?,
        ])
        .await
        .map_err(internal("retention"))?;
    let [log, rollups, minutes] = crate::edge::store::batch_of(results)?;
    Ok((changes(&log), changes(&rollups), changes(&minutes)))
}
