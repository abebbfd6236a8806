//! The request log (`request_log`), its hourly rollups (`usage_hourly`) and
//! each user's settled total (`users.credits_used`): written together in one
//! D1 batch, and pruned by retention.

use worker::D1Database;

use crate::domain::error::GatewayError;
use crate::domain::usage::{LogRow, aggregate};
use crate::edge::store::changes;
use crate::edge::{internal, js_int, js_opt};

/// One D1 batch: the log rows, each touched rollup once, each user's settled total once.
pub async fn write(db: &D1Database, rows: &[LogRow]) -> Result<(), GatewayError> {
    let (rollups, credits) = aggregate(rows);
    let mut statements = Vec::with_capacity(rows.len() + rollups.len() + credits.len());
    for row in rows {
        statements.push(
            db.prepare(
                "INSERT INTO request_log (ts, user_id, model, key_id, status, prompt_tokens, \
                 completion_tokens, reasoning_tokens, credits, latency_ms, stream) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
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
            ])
            .map_err(internal("bind log"))?,
        );
    }
    for r in &rollups {
        statements.push(
            db.prepare(
                "INSERT INTO usage_hourly (hour, user_id, model, key_id, requests, prompt_tokens, \
                 completion_tokens, reasoning_tokens, credits) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                 ON CONFLICT (hour, user_id, model, key_id) DO UPDATE SET \
                 requests = requests + ?5, prompt_tokens = prompt_tokens + ?6, \
                 completion_tokens = completion_tokens + ?7, \
                 reasoning_tokens = reasoning_tokens + ?8, credits = credits + ?9",
            )
            .bind(&[
                js_int(r.hour),
                r.user_id.as_str().into(),
                r.model.as_str().into(),
                r.key_id.as_str().into(),
                js_int(r.requests),
                js_int(r.usage.prompt_tokens),
                js_int(r.usage.completion_tokens),
                js_int(r.usage.reasoning_tokens),
                js_int(r.credits),
            ])
            .map_err(internal("bind rollup"))?,
        );
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

/// Deletes log rows older than `log_cutoff_ms` and rollups older than
/// `rollup_cutoff_ms`; returns how many of each went.
pub async fn prune(
    db: &D1Database,
    log_cutoff_ms: u64,
    rollup_cutoff_ms: u64,
) -> Result<(usize, usize), GatewayError> {
    let results = db
        .batch(vec![
            db.prepare("DELETE FROM request_log WHERE ts < ?1")
                .bind(&[js_int(log_cutoff_ms)])
                .map_err(internal("bind log retention"))?,
            db.prepare("DELETE FROM usage_hourly WHERE hour < ?1")
                .bind(&[js_int(rollup_cutoff_ms)])
                .map_err(internal("bind rollup retention"))?,
        ])
        .await
        .map_err(internal("retention"))?;
    let [log, rollups] = crate::edge::store::batch_of(results)?;
    Ok((changes(&log), changes(&rollups)))
}
