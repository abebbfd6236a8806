//! What the model gates and the pool report: each concurrency-limited
//! model's queue for the dashboard, one gate's counters (tests read them to
//! prove the common path makes no gate call), and `/metrics`.

use futures::future::join_all;
use serde_json::{Value, json};
use worker::Response;

use crate::domain::error::GatewayError;
use crate::domain::gate::{GateRequest, GateResponse};
use crate::domain::limits::{Concurrency, QueueView, limits_for};
use crate::domain::ops::{self, QueueGauge};
use crate::domain::quota::glob_match;
use crate::edge::app::App;
use crate::edge::http::render;
use crate::edge::now_ms;
use crate::edge::objects::gate;
use crate::edge::snapshot;
use crate::edge::store::ops as ops_store;
use crate::edge::upstream::models;
use crate::edge::upstream::readiness;

type HandlerResult = Result<Response, GatewayError>;

/// Models whose queues the dashboard lists at most.
const MAX_QUEUES: usize = 50;

/// `GET /admin/api/models/queues`: every model with a concurrency limit
/// (the upstream list's models and the exact names in `model_limits`).
pub async fn queues(app: &App) -> HandlerResult {
    let out: Vec<Value> = limited_queues(app)
        .await?
        .into_iter()
        .map(|(model, limit, queue)| {
            let mut row = json!({
                "model": model,
                "max_concurrency": limit.max,
                "max_wait_ms": limit.max_wait_ms,
            });
            if let (Value::Object(row), Ok(Value::Object(queue))) =
                (&mut row, serde_json::to_value(&queue))
            {
                row.extend(queue);
            }
            row
        })
        .collect();
    render::json(200, &json!({ "models": out }))
}

/// `GET /metrics`: Prometheus text. Counters come from D1's never-pruned
/// totals, gauges from the pool's health now and the limited models' gates.
pub async fn metrics(app: &App) -> HandlerResult {
    let db = app.db()?;
    let now = now_ms();
    let (totals, health, queues, errors) = futures::try_join!(
        ops_store::metric_totals(&db),
        readiness::model_health(app, now),
        limited_queues(app),
        ops_store::recent_error_counts(&db, now.saturating_sub(3_600_000)),
    )?;
    let queues: Vec<QueueGauge> = queues
        .into_iter()
        .map(|(model, _, q)| QueueGauge {
            model,
            in_flight: q.in_flight as u64,
            waiting: q.queued as u64,
        })
        .collect();
    let text = ops::prometheus(&ops::Metrics {
        totals: &totals,
        health: &health,
        queues: &queues,
        upstream_errors: &errors,
    });
    render::text(200, "text/plain; version=0.0.4; charset=utf-8", &text)
}

/// Each concurrency-limited model, its limit and its gate's queue now.
async fn limited_queues(app: &App) -> Result<Vec<(String, Concurrency, QueueView)>, GatewayError> {
    let snap = snapshot::snapshot(app).await?;
    let rows = &snap.settings.model_limits;
    let mut names: Vec<String> = rows
        .iter()
        .filter(|r| r.max_concurrency.is_some() && !r.pattern.contains(['*', '?']))
        .map(|r| r.pattern.clone())
        .collect();
    if rows.iter().any(|r| r.max_concurrency.is_some()) {
        // The list is cached; a failure only leaves the globbed models out.
        if let Ok(list) = models::cached_list(app, &snap).await {
            names.extend(
                list.iter()
                    .map(|m| m.name.as_str().to_owned())
                    .filter(|id| rows.iter().any(|r| glob_match(&r.pattern, id))),
            );
        }
    }
    names.sort();
    names.dedup();
    let limited: Vec<(String, _)> = names
        .into_iter()
        .filter_map(|name| {
            let limit = limits_for(rows, &name).concurrency?;
            Some((name, limit))
        })
        .take(MAX_QUEUES)
        .collect();
    let answers = join_all(
        limited
            .iter()
            .map(|(name, _)| gate::call(&app.env, name, &GateRequest::Snapshot)),
    )
    .await;
    Ok(limited
        .into_iter()
        .zip(answers)
        .filter_map(|((model, limit), answer)| match answer {
            Ok(GateResponse::Snapshot { queue, .. }) => Some((model, limit, queue)),
            _ => None,
        })
        .collect())
}

/// `GET /admin/api/models/{model}/gate`.
pub async fn gate(app: &App, model: &str) -> HandlerResult {
    let snap = snapshot::snapshot(app).await?;
    let applied = limits_for(&snap.settings.model_limits, model);
    match gate::call(&app.env, model, &GateRequest::Snapshot).await? {
        GateResponse::Snapshot { keys, calls, queue } => render::json(
            200,
            &json!({
                "model": model,
                "scheduled": if applied.is_local() { "isolate" } else { "gate" },
                "max_concurrency": applied.concurrency.map(|c| c.max),
                "max_wait_ms": applied.concurrency.map(|c| c.max_wait_ms),
                "budget": applied.budget,
                "calls": calls,
                "queue": queue,
                "keys": keys,
            }),
        ),
        other => Err(GatewayError::Internal(format!(
            "gate answered Snapshot with {other:?}"
        ))),
    }
}
