//! `GET /admin/api/stats` (the dashboard: series, splits, failing keys, pool
//! capacity, all from rollups and the health mirror) and `GET
//! /admin/api/logs` (the request log, filtered and paged, or CSV).

use futures::stream;
use serde_json::{Value, json};
use worker::{Headers, Request, Response, Url};

use crate::domain::clock::format_rfc3339;
use crate::domain::error::GatewayError;
use crate::domain::stats::{self, Cursor, LogQuery, Range, csv_cell};
use crate::edge::app::App;
use crate::edge::http::render;
use crate::edge::store::keys as key_store;
use crate::edge::store::stats::{self as stats_store, By, Filter, LogEntry};
use crate::edge::{int, now_ms};

type HandlerResult = Result<Response, GatewayError>;

/// Rows in each split of the dashboard.
const SPLIT_ROWS: u32 = 20;
/// Rows a CSV export reads from D1 at a time.
const CSV_PAGE: u32 = 1_000;

fn pairs(url: &Url) -> Vec<(String, String)> {
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub async fn stats(app: &App, req: &Request) -> HandlerResult {
    let url = req.url()?;
    let pairs = pairs(&url);
    let param = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    if let Some((name, _)) = pairs
        .iter()
        .find(|(k, _)| !matches!(k.as_str(), "range" | "user" | "model" | "key"))
    {
        return Err(GatewayError::invalid_param(
            format!("`{name}` is not a stats parameter."),
            name.clone(),
        ));
    }
    let range = Range::parse(param("range"))?;
    let filter = Filter {
        user: param("user"),
        model: param("model"),
        key: param("key"),
    };
    let now = now_ms();
    let (from, to) = range.window(now);
    let db = app.db()?;
    let rollups = range.rollups();
    let rows = stats_store::series(&db, rollups, from, to, range.bucket_ms(), filter).await?;
    let (series, totals) = stats::series(range, from, to, &rows);
    let split = |by| stats_store::split(&db, rollups, from, to, filter, by, SPLIT_ROWS);
    let (by_model, by_key, by_user) =
        futures::try_join!(split(By::Model), split(By::Key), split(By::User))?;
    let failing = stats_store::failing_keys(&db, 10).await?;
    let capacity = stats_store::capacity(&db, now).await?;
    let counts = key_store::health_counts(&db, now).await?;
    let accounts = crate::edge::store::accounts::counts(&db).await?;
    let disabled = counts.total.saturating_sub(counts.enabled);
    // Models in the health mirror, then the ones traffic used this range without a failure.
    let mut pools: Vec<Value> = capacity
        .iter()
        .map(|c| {
            let cooling = int(c.cooling);
            json!({
                "model": c.model,
                "healthy": counts.enabled.saturating_sub(cooling),
                "cooling": cooling,
                "disabled": disabled,
                "next_back_at": c.next_back_at.map(|t| format_rfc3339(int(t))),
            })
        })
        .collect();
    for (model, _, _) in &by_model {
        if !capacity.iter().any(|c| &c.model == model) {
            pools.push(json!({
                "model": model, "healthy": counts.enabled, "cooling": 0,
                "disabled": disabled, "next_back_at": null,
            }));
        }
    }
    render::json(
        200,
        &json!({
            "range": range.label(),
            "from": format_rfc3339(from),
            "to": format_rfc3339(to),
            "bucket_seconds": range.bucket_ms() / 1000,
            "accounts": accounts,
            "series": series,
            "totals": totals,
            "by_model": by_model.iter().map(|(model, _, s)| json!({
                "model": model, "requests": s.requests, "errors": s.errors,
                "tokens": s.prompt_tokens + s.completion_tokens + s.reasoning_tokens,
                "credits": s.credits,
            })).collect::<Vec<_>>(),
            "by_key": by_key.iter().map(|(id, masked, s)| json!({
                "key_id": id, "masked": masked, "requests": s.requests, "errors": s.errors,
            })).collect::<Vec<_>>(),
            "by_user": by_user.iter().map(|(id, name, s)| json!({
                "user_id": id, "name": name, "requests": s.requests, "credits": s.credits,
            })).collect::<Vec<_>>(),
            "top_failing_keys": failing.iter().map(|k| json!({
                "key_id": k.key_id, "masked": k.masked, "failures": int(k.failures),
                "last_error": k.last_error,
            })).collect::<Vec<_>>(),
            "capacity": pools,
        }),
    )
}

fn entry_json(e: &LogEntry) -> Value {
    json!({
        "id": int(e.id),
        "ts": format_rfc3339(int(e.ts)),
        "user_id": e.user_id,
        "user_name": e.user_name,
        "model": e.model,
        "key_id": e.key_id,
        "key_masked": e.key_masked,
        "status": int(e.status),
        "prompt_tokens": int(e.prompt_tokens),
        "completion_tokens": int(e.completion_tokens),
        "reasoning_tokens": int(e.reasoning_tokens),
        "credits": int(e.credits),
        "latency_ms": int(e.latency_ms),
        "stream": e.stream != 0.0,
        "error": e.error,
        "request_id": e.request_id,
        "surface": e.surface,
    })
}

const CSV_HEADER: &str = "id,ts,user_id,user_name,model,key_id,key_masked,status,prompt_tokens,\
    completion_tokens,reasoning_tokens,credits,latency_ms,stream,error,request_id,surface\r\n";

fn csv_line(e: &LogEntry) -> String {
    let cells = [
        int(e.id).to_string(),
        format_rfc3339(int(e.ts)),
        e.user_id.clone().unwrap_or_default(),
        e.user_name.clone().unwrap_or_default(),
        e.model.clone(),
        e.key_id.clone(),
        e.key_masked.clone().unwrap_or_default(),
        int(e.status).to_string(),
        int(e.prompt_tokens).to_string(),
        int(e.completion_tokens).to_string(),
        int(e.reasoning_tokens).to_string(),
        int(e.credits).to_string(),
        int(e.latency_ms).to_string(),
        (e.stream != 0.0).to_string(),
        e.error.clone().unwrap_or_default(),
        e.request_id.clone().unwrap_or_default(),
        e.surface.clone().unwrap_or_default(),
    ];
    let mut line = cells
        .iter()
        .map(|c| csv_cell(c))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

pub async fn logs(app: &App, req: &Request) -> HandlerResult {
    let url = req.url()?;
    let query = LogQuery::parse(&pairs(&url), now_ms())?;
    let db = app.db()?;
    if query.csv {
        return csv(db, query);
    }
    let entries = stats_store::logs(&db, &query, query.cursor, query.limit).await?;
    let next = (entries.len() == usize::try_from(query.limit).unwrap_or(usize::MAX))
        .then(|| entries.last().map(|e| e.cursor().encode()))
        .flatten();
    render::json(
        200,
        &json!({
            "logs": entries.iter().map(entry_json).collect::<Vec<_>>(),
            "next_cursor": next,
        }),
    )
}

/// Every filtered row as CSV, read from D1 a page at a time while the body streams, so a
/// large export never sits whole in memory.
fn csv(db: worker::D1Database, query: LogQuery) -> HandlerResult {
    struct Export {
        db: worker::D1Database,
        query: LogQuery,
        cursor: Option<Cursor>,
        left: u32,
        header: bool,
        done: bool,
    }
    let export = Export {
        cursor: query.cursor,
        left: query.limit,
        db,
        query,
        header: true,
        done: false,
    };
    let body = stream::unfold(export, |mut e| async move {
        if e.header {
            e.header = false;
            return Some((Ok(CSV_HEADER.as_bytes().to_vec()), e));
        }
        if e.done || e.left == 0 {
            return None;
        }
        let page = e.left.min(CSV_PAGE);
        match stats_store::logs(&e.db, &e.query, e.cursor, page).await {
            Ok(entries) => {
                e.done = entries.len() < usize::try_from(page).unwrap_or(usize::MAX);
                e.left = e
                    .left
                    .saturating_sub(u32::try_from(entries.len()).unwrap_or(u32::MAX));
                e.cursor = entries.last().map(LogEntry::cursor);
                let chunk: String = entries.iter().map(csv_line).collect();
                Some((Ok(chunk.into_bytes()), e))
            }
            Err(err) => {
                worker::console_error!("[gemgate] log export failed: {err}");
                e.done = true;
                Some((Err(worker::Error::RustError("log export failed".into())), e))
            }
        }
    });
    let headers = Headers::new();
    headers.set("content-type", "text/csv; charset=utf-8")?;
    headers.set(
        "content-disposition",
        "attachment; filename=\"gemgate-logs.csv\"",
    )?;
    Ok(Response::from_stream(body)?.with_headers(headers))
}
