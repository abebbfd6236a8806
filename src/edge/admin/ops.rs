//! Operations: the maintenance jobs' history, the upstream error view, and
//! the archive of long-invalid keys (restore or purge).

use serde::Deserialize;
use serde_json::{Value, json};
use worker::{Request, Response};

use crate::domain::error::GatewayError;
use crate::domain::jobs::{JOBS, JobRun};
use crate::edge::app::App;
use crate::edge::http::{body, render};
use crate::edge::store::keys as key_store;
use crate::edge::store::ops as ops_store;
use crate::edge::{now_ms, snapshot};

type HandlerResult = Result<Response, GatewayError>;

/// Runs of each job the history shows.
const RUNS_SHOWN: u32 = 20;

/// The cron schedule every job runs on (`wrangler.toml`'s `[triggers]`).
const SCHEDULE: &str = "*/5 * * * *";

/// `GET /admin/api/jobs`: per job, its last runs (newest first).
pub async fn jobs(app: &App) -> HandlerResult {
    let runs = ops_store::runs(&app.db()?, RUNS_SHOWN).await?;
    let jobs: Vec<Value> = JOBS
        .iter()
        .map(|name| {
            let mine: Vec<&JobRun> = runs.iter().filter(|r| r.job == *name).collect();
            json!({
                "name": name,
                "schedule": SCHEDULE,
                "last": mine.first(),
                "runs": mine,
            })
        })
        .collect();
    render::json(200, &json!({ "jobs": jobs }))
}

/// The error view's query: a window and the filters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ErrorQuery {
    /// Look back this many minutes (60; 1–10080).
    minutes: Option<u64>,
    upstream: Option<String>,
    model: Option<String>,
    class: Option<String>,
    /// Groups and events returned at most (100; 1–500).
    limit: Option<u32>,
}

/// Classes a failure may have (`Outcome::label`).
const CLASSES: [&str; 5] = [
    "rate_limited",
    "key_invalid",
    "server_error",
    "network",
    "timeout",
];

/// `GET /admin/api/errors?minutes=&upstream=&model=&class=&limit=`: the
/// failures of each upstream on each model, with Google's latest message
/// (scrubbed), the cooldown now and the client requests they touched; and
/// the latest failures one by one.
pub async fn errors(app: &App, req: &Request) -> HandlerResult {
    let url = req.url()?;
    let pairs: serde_json::Map<String, Value> = url
        .query_pairs()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| {
            let v = v.into_owned();
            let value = match k.as_ref() {
                "minutes" | "limit" => v.parse::<u64>().map_or(Value::String(v), Value::from),
                _ => Value::String(v),
            };
            (k.into_owned(), value)
        })
        .collect();
    let query: ErrorQuery = serde_json::from_value(Value::Object(pairs)).map_err(|e| {
        GatewayError::invalid(format!(
            "Query: {e}. Use minutes (1–10080), upstream, model, class and limit (1–500)."
        ))
    })?;
    let minutes = query.minutes.unwrap_or(60);
    if !(1..=10_080).contains(&minutes) {
        return Err(GatewayError::invalid_param(
            "`minutes` must be 1–10080.",
            "minutes",
        ));
    }
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(GatewayError::invalid_param(
            "`limit` must be 1–500.",
            "limit",
        ));
    }
    if let Some(class) = query.class.as_deref()
        && !CLASSES.contains(&class)
    {
        return Err(GatewayError::invalid_param(
            format!("`class` must be one of {}.", CLASSES.join(", ")),
            "class",
        ));
    }
    let filter = ops_store::ErrorFilter {
        upstream: query.upstream,
        model: query.model,
        class: query.class,
    };
    let now = now_ms();
    let since = now.saturating_sub(minutes * 60_000);
    let (groups, events) = ops_store::error_view(&app.db()?, since, &filter, limit).await?;
    render::json(
        200,
        &json!({ "since": since, "now": now, "groups": groups, "events": events }),
    )
}

/// `GET /admin/api/keys/archive`.
pub async fn archived(app: &App) -> HandlerResult {
    let keys = ops_store::archived(&app.db()?).await?;
    render::json(200, &json!({ "total": keys.len(), "keys": keys }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Ids {
    ids: Vec<String>,
}

/// The archived keys among a request's `{"ids": [...]}` (1–500 of them);
/// an id that is not in the archive is a 400 naming it.
async fn archived_ids(app: &App, req: &mut Request) -> Result<Vec<String>, GatewayError> {
    let Ids { ids } = serde_json::from_value(body::read_admin_json(req).await?).map_err(|e| {
        GatewayError::invalid_param(format!("Expected {{\"ids\": [..]}}: {e}"), "ids")
    })?;
    if ids.is_empty() || ids.len() > 500 {
        return Err(GatewayError::invalid_param(
            "Give 1 to 500 ids at a time.",
            "ids",
        ));
    }
    let found = ops_store::archived_among(&app.db()?, &ids).await?;
    if let Some(missing) = ids.iter().find(|id| !found.contains(id)) {
        return Err(GatewayError::invalid_param(
            format!("No archived key with id {missing}."),
            "ids",
        ));
    }
    Ok(found)
}

/// `POST /admin/api/keys/archive/restore` `{"ids": [...]}`: the keys go back
/// into the pool, enabled, with a clean health record (the next request or
/// probe finds out whether Google agrees).
pub async fn restore(app: &App, req: &mut Request) -> HandlerResult {
    let ids = archived_ids(app, req).await?;
    let restored = ops_store::revive(&app.db()?, &ids, now_ms()).await?;
    snapshot::invalidate();
    render::json(200, &json!({ "restored": restored }))
}

/// `POST /admin/api/keys/archive/purge` `{"ids": [...]}`: the keys are deleted.
pub async fn purge(app: &App, req: &mut Request) -> HandlerResult {
    let ids = archived_ids(app, req).await?;
    let purged = key_store::delete(&app.db()?, &ids).await?;
    render::json(200, &json!({ "purged": purged }))
}
