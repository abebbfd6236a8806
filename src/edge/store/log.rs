//! The request log (`request_log`), its hourly rollups (`usage_hourly`) and
//! each user's settled total (`users.credits_used`, the ledger's figure): written together in one
//! D1 batch, and pruned by retention.

use worker::wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement};

use crate::domain::error::GatewayError;
use crate::domain::ops::{MetricRow, aggregate_metrics};
use crate::domain::usage::{
    DAY_MS, HOUR_MS, LATENCY_BUCKETS, LogRow, MINUTE_MS, Totals, aggregate, aggregate_dims,
    user_totals,
};
use crate::edge::store::changes;
use crate::edge::{internal, js_int, js_opt};

/// One D1 batch: the log rows, each touched hourly and minute rollup once, each user's
/// settled total once.
pub async fn write(db: &D1Database, rows: &[LogRow]) -> Result<(), GatewayError> {
    let hourly = aggregate(rows, HOUR_MS);
    let minutely = aggregate(rows, MINUTE_MS);
    let dims = aggregate_dims(rows, HOUR_MS);
    let daily = aggregate_dims(rows, DAY_MS);
    let credits = user_totals(rows);
    let mut statements =
        Vec::with_capacity(rows.len() + hourly.len() + minutely.len() + dims.len() + credits.len());
    for row in rows {
        statements.push(
            db.prepare(
                "INSERT INTO request_log (ts, user_id, model, key_id, status, prompt_tokens, \
                 completion_tokens, reasoning_tokens, credits, latency_ms, stream, error, \
                 request_id, surface) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
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
                row.request_id.as_str().into(),
                row.surface.into(),
            ])
            .map_err(internal("bind log"))?,
        );
    }
    for (table, bucket, rollups) in [
        ("usage_hourly", "hour", &hourly),
        ("usage_minute", "minute", &minutely),
    ] {
        for r in rollups {
            let dims = [
                r.user_id.as_str().into(),
                r.model.as_str().into(),
                r.key_id.as_str().into(),
            ];
            let columns = ["user_id", "model", "key_id"];
            statements.push(upsert(
                db, table, bucket, &columns, dims, r.bucket, &r.totals,
            )?);
        }
    }
    for (table, bucket, rollups) in [
        ("usage_dims", "hour", &dims),
        ("usage_dims_daily", "day", &daily),
    ] {
        for d in rollups {
            let names = [d.dim.as_str().into(), d.name.as_str().into()];
            let columns = ["dim", "name"];
            statements.push(upsert(
                db, table, bucket, &columns, names, d.bucket, &d.totals,
            )?);
        }
    }
    for (user, total) in &credits {
        statements.push(
            // Up to the ledger's total, never added to: a lost batch is made good by the next.
            db.prepare("UPDATE users SET credits_used = MAX(credits_used, ?1) WHERE id = ?2")
                .bind(&[js_int(*total), user.as_str().into()])
                .map_err(internal("bind credits"))?,
        );
    }
    for m in aggregate_metrics(rows) {
        statements.push(metric_upsert(db, &m)?);
    }
    db.batch(statements).await.map_err(internal("write log"))?;
    Ok(())
}

/// The latency histogram's columns, `lat_0`…
fn latency_columns() -> impl Iterator<Item = String> {
    (0..LATENCY_BUCKETS).map(|i| format!("lat_{i}"))
}

/// An insert into `table` that adds to the row its `keys` name when there is
/// one: parameters `?1…` are the key columns, then the `sums`, in order.
fn additive_upsert(table: &str, keys: &[&str], sums: &[String]) -> String {
    let marks: Vec<String> = (1..=keys.len() + sums.len())
        .map(|i| format!("?{i}"))
        .collect();
    let updates: Vec<String> = sums
        .iter()
        .zip(&marks[keys.len()..])
        .map(|(column, mark)| format!("{column} = {column} + {mark}"))
        .collect();
    let keys = keys.join(", ");
    format!(
        "INSERT INTO {table} ({keys}, {}) VALUES ({}) ON CONFLICT ({keys}) DO UPDATE SET {}",
        sums.join(", "),
        marks.join(", "),
        updates.join(", ")
    )
}

/// Adds a batch's increments to the never-pruned totals behind `/metrics`.
fn metric_upsert(db: &D1Database, m: &MetricRow) -> Result<D1PreparedStatement, GatewayError> {
    let sums: Vec<String> = ["requests".to_owned(), "latency_ms".to_owned()]
        .into_iter()
        .chain(latency_columns())
        .collect();
    let sql = additive_upsert("metric_totals", &["surface", "model", "outcome"], &sums);
    let mut binds: Vec<JsValue> = vec![
        m.surface.as_str().into(),
        m.model.as_str().into(),
        m.outcome.as_str().into(),
        js_int(m.requests),
        js_int(m.latency_ms),
    ];
    binds.extend(m.buckets.iter().map(|&n| js_int(n)));
    db.prepare(sql)
        .bind(&binds)
        .map_err(internal("bind metric totals"))
}

/// Adds one rollup delta to `table`, whose time column is `bucket` and whose other key
/// columns are `columns` (with `values`).
fn upsert<const N: usize>(
    db: &D1Database,
    table: &str,
    bucket: &str,
    columns: &[&str; N],
    values: [JsValue; N],
    start: u64,
    t: &Totals,
) -> Result<D1PreparedStatement, GatewayError> {
    let keys: Vec<&str> = std::iter::once(bucket)
        .chain(columns.iter().copied())
        .collect();
    let sums: Vec<String> = [
        "requests",
        "errors",
        "prompt_tokens",
        "completion_tokens",
        "reasoning_tokens",
        "credits",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain(latency_columns())
    .collect();
    let sql = additive_upsert(table, &keys, &sums);
    let mut params = vec![js_int(start)];
    params.extend(values);
    params.extend([
        js_int(t.requests),
        js_int(t.errors),
        js_int(t.usage.prompt_tokens),
        js_int(t.usage.completion_tokens),
        js_int(t.usage.reasoning_tokens),
        js_int(t.credits),
    ]);
    params.extend(t.latency.iter().map(|&n| js_int(n)));
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
            db.prepare("DELETE FROM usage_dims WHERE hour < ?1")
                .bind(&[js_int(rollup_cutoff_ms)])
                .map_err(internal("bind dims retention"))?,
            db.prepare("DELETE FROM usage_dims_daily WHERE day < ?1")
                .bind(&[js_int(rollup_cutoff_ms)])
                .map_err(internal("bind daily dims retention"))?,
            db.prepare("DELETE FROM usage_minute WHERE minute < ?1")
                .bind(&[js_int(minute_cutoff_ms)])
                .map_err(internal("bind minute retention"))?,
            // The error view's raw rows live as long as the request log.
            db.prepare("DELETE FROM upstream_errors WHERE ts < ?1")
                .bind(&[js_int(log_cutoff_ms)])
                .map_err(internal("bind error retention"))?,
        ])
        .await
        .map_err(internal("retention"))?;
    let [log, rollups, dims, daily, minutes, errors] = crate::edge::store::batch_of(results)?;
    Ok((
        changes(&log) + changes(&errors),
        changes(&rollups) + changes(&dims) + changes(&daily),
        changes(&minutes),
    ))
}
