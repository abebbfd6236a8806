//! Operations tables: the upstream failures behind the error view
//! (`upstream_errors`), the maintenance job history (`job_runs`), the
//! archive of long-invalid keys, the pool's per-model health for `/health`
//! and `/metrics`, and the totals behind `/metrics` (`metric_totals`).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use worker::D1Database;
use worker::wasm_bindgen::JsValue;

use crate::domain::error::GatewayError;
use crate::domain::jobs::{Cooling, Invalid, JobRun, RUNS_KEPT};
use crate::domain::ops::MetricRow;
use crate::domain::usage::LATENCY_BUCKETS;
use crate::edge::store::keys::listed_mask;
use crate::edge::store::{batch_of, changes, select_by_ids};
use crate::edge::{int, internal, js_int, js_opt};

/// The reason `set_enabled` writes when an admin disables a key: such keys
/// are never probed, archived or brought back by maintenance.
pub const BY_ADMIN: &str = "disabled by admin";

// ---------------------------------------------------------------- upstream errors

/// One failed upstream attempt.
pub struct UpstreamFailure<'a> {
    pub ts: u64,
    pub request_id: &'a str,
    pub upstream_id: &'a str,
    pub model: &'a str,
    pub class: &'a str,
    pub status: Option<u16>,
    /// Google's message, secrets already scrubbed.
    pub message: &'a str,
}

/// Longest message kept per failure.
const MAX_MESSAGE: usize = 500;

pub async fn record_failure(db: &D1Database, f: &UpstreamFailure<'_>) -> Result<(), GatewayError> {
    let message: String = f.message.chars().take(MAX_MESSAGE).collect();
    db.prepare(
        "INSERT INTO upstream_errors (ts, request_id, upstream_id, model, class, status, message) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .bind(&[
        js_int(f.ts),
        f.request_id.into(),
        f.upstream_id.into(),
        f.model.into(),
        f.class.into(),
        f.status
            .map_or(JsValue::NULL, |s| JsValue::from_f64(f64::from(s))),
        message.into(),
    ])
    .map_err(internal("bind upstream error"))?
    .run()
    .await
    .map_err(internal("record upstream error"))?;
    Ok(())
}

/// The error view's filters (each optional).
#[derive(Debug, Default, Deserialize)]
pub struct ErrorFilter {
    pub upstream: Option<String>,
    pub model: Option<String>,
    pub class: Option<String>,
}

/// Failures of one upstream on one model, of one class.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorGroup {
    pub upstream_id: String,
    /// `key` or `account`.
    pub kind: String,
    /// The key's masked secret or the account's email.
    pub name: Option<String>,
    pub label: Option<String>,
    pub model: String,
    pub class: String,
    pub status: Option<u16>,
    pub message: String,
    /// Failed attempts in the window.
    pub failures: u64,
    /// Client requests that met them.
    pub requests: u64,
    pub first_at: u64,
    pub last_at: u64,
    /// When the upstream's cooldown on the model ends (0: not cooling).
    pub cooldown_until: u64,
    /// Whether the key is disabled now (invalid, or by an admin).
    pub disabled: bool,
}

/// One failure as recorded.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorEvent {
    pub ts: u64,
    pub request_id: String,
    pub upstream_id: String,
    pub model: String,
    pub class: String,
    pub status: Option<u16>,
    pub message: String,
}

/// The filter's `WHERE` clause over `e`, binding from `?2` on (`?1` is the window's start).
fn filter_sql(filter: &ErrorFilter) -> (String, Vec<JsValue>) {
    let mut sql = String::from("e.ts >= ?1");
    let mut binds = Vec::new();
    for (column, value) in [
        ("e.upstream_id", &filter.upstream),
        ("e.model", &filter.model),
        ("e.class", &filter.class),
    ] {
        if let Some(v) = value {
            binds.push(JsValue::from_str(v));
            let _ = write!(sql, " AND {column} = ?{}", binds.len() + 1);
        }
    }
    (sql, binds)
}

#[derive(Deserialize)]
struct GroupRow {
    upstream_id: String,
    secret: Option<String>,
    masked: Option<String>,
    email: Option<String>,
    label: Option<String>,
    model: String,
    class: String,
    status: Option<f64>,
    message: Option<String>,
    failures: f64,
    requests: f64,
    first_at: f64,
    last_at: f64,
    cooldown_until: Option<f64>,
    enabled: Option<f64>,
}
#[derive(Deserialize)]
struct EventRow {
    ts: f64,
    request_id: String,
    upstream_id: String,
    model: String,
    class: String,
    status: Option<f64>,
    message: String,
}

fn status_of(s: Option<f64>) -> Option<u16> {
    s.and_then(|s| u16::try_from(int(s)).ok())
}

impl GroupRow {
    fn into_group(self) -> ErrorGroup {
        let r = self;
        let is_account = crate::domain::accounts::record::is_account(&r.upstream_id);
        // The key's masked form (or the account's email): never the secret.
        let name = if is_account {
            r.email
        } else {
            r.secret
                .as_deref()
                .map(|secret| listed_mask(secret, r.masked.as_deref()))
        };
        ErrorGroup {
            kind: if is_account { "account" } else { "key" }.to_owned(),
            name,
            label: r.label,
            model: r.model,
            class: r.class,
            status: status_of(r.status),
            message: r.message.unwrap_or_default(),
            failures: int(r.failures),
            requests: int(r.requests),
            first_at: int(r.first_at),
            last_at: int(r.last_at),
            cooldown_until: r.cooldown_until.map_or(0, int),
            disabled: r.enabled.is_some_and(|e| e == 0.0),
            upstream_id: r.upstream_id,
        }
    }
}

/// The groups (most recent first) and the latest raw failures since `since_ms`.
pub async fn error_view(
    db: &D1Database,
    since_ms: u64,
    filter: &ErrorFilter,
    limit: u32,
) -> Result<(Vec<ErrorGroup>, Vec<ErrorEvent>), GatewayError> {
    let (filter_clause, filter_binds) = filter_sql(filter);
    let mut binds = vec![js_int(since_ms)];
    binds.extend(filter_binds);
    let limit_at = binds.len() + 1;
    binds.push(js_int(u64::from(limit)));
    // The latest failure of each group carries its status and message.
    let groups = db
        .prepare(format!(
            "SELECT g.*, k.secret, k.masked, k.label, k.enabled, a.email, \
             COALESCE(kh.cooldown_until, ah.cooldown_until, 0) AS cooldown_until, \
             (SELECT x.status FROM upstream_errors x WHERE x.id = g.last_id) AS status, \
             (SELECT x.message FROM upstream_errors x WHERE x.id = g.last_id) AS message \
             FROM (SELECT e.upstream_id, e.model, e.class, COUNT(*) AS failures, \
                   COUNT(DISTINCT e.request_id) AS requests, MIN(e.ts) AS first_at, \
                   MAX(e.ts) AS last_at, MAX(e.id) AS last_id \
                   FROM upstream_errors e WHERE {filter_clause} \
                   GROUP BY e.upstream_id, e.model, e.class) g \
             LEFT JOIN upstream_keys k ON k.id = g.upstream_id \
             LEFT JOIN accounts a ON a.id = g.upstream_id \
             LEFT JOIN key_model_health kh ON kh.key_id = g.upstream_id AND kh.model = g.model \
             LEFT JOIN account_model_health ah ON ah.account_id = g.upstream_id AND ah.model = g.model \
             ORDER BY g.last_at DESC LIMIT ?{limit_at}"
        ))
        .bind(&binds)
        .map_err(internal("bind error view"))?;
    let events = db
        .prepare(format!(
            "SELECT e.ts, e.request_id, e.upstream_id, e.model, e.class, e.status, e.message \
             FROM upstream_errors e WHERE {filter_clause} ORDER BY e.id DESC LIMIT ?{limit_at}"
        ))
        .bind(&binds)
        .map_err(internal("bind error events"))?;
    let [groups, events] = batch_of(
        db.batch(vec![groups, events])
            .await
            .map_err(internal("error view"))?,
    )?;
    let groups = groups
        .results::<GroupRow>()
        .map_err(internal("decode error view"))?
        .into_iter()
        .map(GroupRow::into_group)
        .collect();
    let events = events
        .results::<EventRow>()
        .map_err(internal("decode error events"))?
        .into_iter()
        .map(|r| ErrorEvent {
            ts: int(r.ts),
            request_id: r.request_id,
            upstream_id: r.upstream_id,
            model: r.model,
            class: r.class,
            status: status_of(r.status),
            message: r.message,
        })
        .collect();
    Ok((groups, events))
}

/// Failed attempts per model and class since `since_ms`, for `/metrics`.
pub async fn recent_error_counts(
    db: &D1Database,
    since_ms: u64,
) -> Result<Vec<(String, String, u64)>, GatewayError> {
    #[derive(Deserialize)]
    struct Row {
        model: String,
        class: String,
        n: f64,
    }
    let rows: Vec<Row> = db
        .prepare(
            "SELECT model, class, COUNT(*) AS n FROM upstream_errors WHERE ts >= ?1 \
             GROUP BY model, class ORDER BY model, class",
        )
        .bind(&[js_int(since_ms)])
        .map_err(internal("bind error counts"))?
        .all()
        .await
        .map_err(internal("error counts"))?
        .results()
        .map_err(internal("decode error counts"))?;
    Ok(rows
        .into_iter()
        .map(|r| (r.model, r.class, int(r.n)))
        .collect())
}

// ---------------------------------------------------------------- job history

pub async fn record_run(db: &D1Database, run: &JobRun) -> Result<(), GatewayError> {
    let counts = serde_json::to_string(&run.counts)
        .map_err(|e| GatewayError::Internal(format!("job counts: {e}")))?;
    let job: JsValue = run.job.as_str().into();
    db.batch(vec![
        db.prepare(
            "INSERT INTO job_runs (job, started_at, duration_ms, ok, counts, error) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .bind(&[
            job.clone(),
            js_int(run.started_at),
            js_int(run.duration_ms),
            js_int(u64::from(run.ok)),
            counts.into(),
            js_opt(run.error.as_deref()),
        ])
        .map_err(internal("bind job run"))?,
        // Each job keeps its last runs only.
        db.prepare(
            "DELETE FROM job_runs WHERE job = ?1 AND id NOT IN \
             (SELECT id FROM job_runs WHERE job = ?1 ORDER BY id DESC LIMIT ?2)",
        )
        .bind(&[job, js_int(u64::from(RUNS_KEPT))])
        .map_err(internal("bind job prune"))?,
    ])
    .await
    .map_err(internal("record job run"))?;
    Ok(())
}

/// Every job's runs, newest first, at most `per_job` each.
pub async fn runs(db: &D1Database, per_job: u32) -> Result<Vec<JobRun>, GatewayError> {
    #[derive(Deserialize)]
    struct Row {
        job: String,
        started_at: f64,
        duration_ms: f64,
        ok: f64,
        counts: String,
        error: Option<String>,
    }
    let rows: Vec<Row> = db
        .prepare(
            "SELECT job, started_at, duration_ms, ok, counts, error FROM \
             (SELECT *, ROW_NUMBER() OVER (PARTITION BY job ORDER BY id DESC) AS n FROM job_runs) \
             WHERE n <= ?1 ORDER BY job, started_at DESC",
        )
        .bind(&[js_int(u64::from(per_job))])
        .map_err(internal("bind job runs"))?
        .all()
        .await
        .map_err(internal("job runs"))?
        .results()
        .map_err(internal("decode job runs"))?;
    Ok(rows
        .into_iter()
        .map(|r| JobRun {
            job: r.job,
            started_at: int(r.started_at),
            duration_ms: int(r.duration_ms),
            ok: r.ok != 0.0,
            counts: serde_json::from_str::<Map<String, Value>>(&r.counts).unwrap_or_default(),
            error: r.error,
        })
        .collect())
}

// ---------------------------------------------------------------- probes and the archive

/// What the probe job chooses from: cooldown rows with failures (keys and
/// accounts) and keys disabled as invalid (not archived, not by an admin).
pub async fn probe_candidates(
    db: &D1Database,
) -> Result<(Vec<Cooling>, Vec<Invalid>), GatewayError> {
    #[derive(Deserialize)]
    struct CoolingRow {
        id: String,
        model: String,
        cooldown_until: f64,
        consecutive_failures: f64,
    }
    #[derive(Deserialize)]
    struct InvalidRow {
        id: String,
        disabled_at: Option<f64>,
        probed_at: Option<f64>,
    }
    let results = db
        .batch(vec![
            db.prepare(
                "SELECT h.key_id AS id, h.model, h.cooldown_until, h.consecutive_failures \
                 FROM key_model_health h JOIN upstream_keys k ON k.id = h.key_id \
                 WHERE k.enabled = 1 AND (h.consecutive_failures > 0 OR h.cooldown_until > 0) \
                 UNION ALL \
                 SELECT h.account_id AS id, h.model, h.cooldown_until, h.consecutive_failures \
                 FROM account_model_health h JOIN accounts a ON a.id = h.account_id \
                 WHERE a.enabled = 1 AND a.attention IS NULL \
                 AND (h.consecutive_failures > 0 OR h.cooldown_until > 0)",
            ),
            db.prepare(
                "SELECT id, disabled_at, probed_at FROM upstream_keys \
                 WHERE enabled = 0 AND archived_at IS NULL \
                 AND COALESCE(disabled_reason, '') <> ?1",
            )
            .bind(&[BY_ADMIN.into()])
            .map_err(internal("bind invalid keys"))?,
        ])
        .await
        .map_err(internal("probe candidates"))?;
    let [cooling, invalid] = batch_of(results)?;
    let cooling = cooling
        .results::<CoolingRow>()
        .map_err(internal("decode cooling"))?
        .into_iter()
        .map(|r| Cooling {
            upstream_id: r.id,
            model: r.model,
            cooldown_until: int(r.cooldown_until),
            consecutive_failures: u32::try_from(int(r.consecutive_failures)).unwrap_or(u32::MAX),
        })
        .collect();
    let invalid = invalid
        .results::<InvalidRow>()
        .map_err(internal("decode invalid keys"))?
        .into_iter()
        .map(|r| Invalid {
            id: r.id,
            disabled_at: r.disabled_at.map_or(0, int),
            probed_at: r.probed_at.map(int),
        })
        .collect();
    Ok((cooling, invalid))
}

/// Marks an upstream healthy on a model in the mirror, after a probe it
/// answered: nothing cools, nothing failed, so the next run leaves it be.
pub async fn clear_health(
    db: &D1Database,
    id: &str,
    model: &str,
    now_ms: u64,
) -> Result<(), GatewayError> {
    let (table, column) = if crate::domain::accounts::record::is_account(id) {
        ("account_model_health", "account_id")
    } else {
        ("key_model_health", "key_id")
    };
    db.prepare(format!(
        "UPDATE {table} SET cooldown_until = 0, consecutive_failures = 0, last_error = NULL, \
         updated_at = ?3 WHERE {column} = ?1 AND model = ?2"
    ))
    .bind(&[id.into(), model.into(), js_int(now_ms)])
    .map_err(internal("bind clear health"))?
    .run()
    .await
    .map_err(internal("clear health"))?;
    Ok(())
}

/// Notes that a key was probed now (paces the invalid keys' re-checks).
pub async fn mark_probed(db: &D1Database, id: &str, now_ms: u64) -> Result<(), GatewayError> {
    db.prepare("UPDATE upstream_keys SET probed_at = ?2 WHERE id = ?1")
        .bind(&[id.into(), js_int(now_ms)])
        .map_err(internal("bind probed"))?
        .run()
        .await
        .map_err(internal("mark probed"))?;
    Ok(())
}

/// Brings a key back into the pool: enabled, its reason and archive mark
/// cleared, its health forgotten (a fresh start on every model).
pub async fn revive(db: &D1Database, ids: &[String], now_ms: u64) -> Result<usize, GatewayError> {
    let mut statements = Vec::with_capacity(ids.len() * 2);
    for id in ids {
        statements.push(
            db.prepare(
                "UPDATE upstream_keys SET enabled = 1, disabled_reason = NULL, disabled_at = NULL, \
                 archived_at = NULL, updated_at = ?2 WHERE id = ?1",
            )
            .bind(&[id.as_str().into(), js_int(now_ms)])
            .map_err(internal("bind revive"))?,
        );
        statements.push(
            db.prepare("DELETE FROM key_model_health WHERE key_id = ?1")
                .bind(&[id.as_str().into()])
                .map_err(internal("bind revive health"))?,
        );
    }
    if statements.is_empty() {
        return Ok(0);
    }
    let results = db
        .batch(statements)
        .await
        .map_err(internal("revive keys"))?;
    Ok(results.iter().step_by(2).map(changes).sum())
}

/// Archives the keys disabled as invalid at or before `cutoff_ms`; returns how many.
pub async fn archive_invalid(
    db: &D1Database,
    cutoff_ms: u64,
    now_ms: u64,
) -> Result<usize, GatewayError> {
    let result = db
        .prepare(
            "UPDATE upstream_keys SET archived_at = ?2 WHERE enabled = 0 AND archived_at IS NULL \
             AND disabled_at IS NOT NULL AND disabled_at <= ?1 \
             AND COALESCE(disabled_reason, '') <> ?3",
        )
        .bind(&[js_int(cutoff_ms), js_int(now_ms), BY_ADMIN.into()])
        .map_err(internal("bind archive"))?
        .run()
        .await
        .map_err(internal("archive keys"))?;
    Ok(changes(&result))
}

/// An archived key, masked.
#[derive(Debug, Serialize)]
pub struct ArchivedKey {
    pub id: String,
    pub masked: String,
    pub label: Option<String>,
    pub project: Option<String>,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<u64>,
    pub archived_at: u64,
}

pub async fn archived(db: &D1Database) -> Result<Vec<ArchivedKey>, GatewayError> {
    #[derive(Deserialize)]
    struct Row {
        id: String,
        secret: String,
        masked: Option<String>,
        label: Option<String>,
        project: Option<String>,
        disabled_reason: Option<String>,
        disabled_at: Option<f64>,
        archived_at: f64,
    }
    let rows: Vec<Row> = db
        .prepare(
            "SELECT id, secret, masked, label, project, disabled_reason, disabled_at, archived_at \
             FROM upstream_keys WHERE archived_at IS NOT NULL ORDER BY archived_at DESC, id",
        )
        .all()
        .await
        .map_err(internal("archived keys"))?
        .results()
        .map_err(internal("decode archived keys"))?;
    Ok(rows
        .into_iter()
        .map(|r| ArchivedKey {
            masked: listed_mask(&r.secret, r.masked.as_deref()),
            id: r.id,
            label: r.label,
            project: r.project,
            disabled_reason: r.disabled_reason,
            disabled_at: r.disabled_at.map(int),
            archived_at: int(r.archived_at),
        })
        .collect())
}

/// Ids among `ids` that are in the archive.
pub async fn archived_among(db: &D1Database, ids: &[String]) -> Result<Vec<String>, GatewayError> {
    #[derive(Deserialize)]
    struct Row {
        id: String,
    }
    let found: Vec<Row> = select_by_ids(
        db,
        "SELECT id FROM upstream_keys WHERE archived_at IS NOT NULL AND id IN ({ids})",
        ids,
        "read archived ids",
    )
    .await?;
    Ok(ids
        .iter()
        .filter(|id| found.iter().any(|r| &r.id == *id))
        .cloned()
        .collect())
}

// ---------------------------------------------------------------- pool health and totals

/// The pool as D1 has it now, and the models in use (the last day's
/// traffic and health rows, and the Code Assist models while accounts exist).
pub async fn pool_health(
    db: &D1Database,
    now_ms: u64,
) -> Result<(u64, u64, Vec<(String, String)>, Vec<String>), GatewayError> {
    #[derive(Deserialize)]
    struct Counts {
        keys: f64,
        accounts: f64,
    }
    #[derive(Deserialize)]
    struct CoolingRow {
        id: String,
        model: String,
    }
    #[derive(Deserialize)]
    struct Model {
        name: String,
    }
    let day_ago = js_int(now_ms.saturating_sub(24 * 3600 * 1000));
    let results = db
        .batch(vec![
            db.prepare(
                "SELECT (SELECT COUNT(*) FROM upstream_keys WHERE enabled = 1) AS keys, \
                 (SELECT COUNT(*) FROM accounts WHERE enabled = 1 AND attention IS NULL \
                  AND project_id IS NOT NULL AND project_id <> '') AS accounts",
            ),
            db.prepare(
                "SELECT h.key_id AS id, h.model FROM key_model_health h \
                 JOIN upstream_keys k ON k.id = h.key_id \
                 WHERE k.enabled = 1 AND h.cooldown_until > ?1 \
                 UNION ALL SELECT h.account_id AS id, h.model FROM account_model_health h \
                 JOIN accounts a ON a.id = h.account_id \
                 WHERE a.enabled = 1 AND a.attention IS NULL AND h.cooldown_until > ?1",
            )
            .bind(&[js_int(now_ms)])
            .map_err(internal("bind cooling"))?,
            db.prepare(
                "SELECT name FROM (SELECT name, MAX(hour) AS last FROM usage_dims \
                  WHERE dim = 'model' AND hour >= ?1 AND name <> '' GROUP BY name \
                  UNION SELECT model AS name, MAX(updated_at) AS last FROM key_model_health \
                  WHERE updated_at >= ?1 GROUP BY model \
                  UNION SELECT model AS name, MAX(updated_at) AS last FROM account_model_health \
                  WHERE updated_at >= ?1 GROUP BY model) GROUP BY name ORDER BY name LIMIT 100",
            )
            .bind(&[day_ago])
            .map_err(internal("bind models in use"))?,
        ])
        .await
        .map_err(internal("pool health"))?;
    let [counts, cooling, models] = batch_of(results)?;
    let counts = counts
        .results::<Counts>()
        .map_err(internal("decode pool counts"))?
        .into_iter()
        .next()
        .map_or((0, 0), |c| (int(c.keys), int(c.accounts)));
    let cooling = cooling
        .results::<CoolingRow>()
        .map_err(internal("decode cooling"))?
        .into_iter()
        .map(|r| (r.id, r.model))
        .collect();
    let models = models
        .results::<Model>()
        .map_err(internal("decode models in use"))?
        .into_iter()
        .map(|m| m.name)
        .collect();
    Ok((counts.0, counts.1, cooling, models))
}

pub async fn metric_totals(db: &D1Database) -> Result<Vec<MetricRow>, GatewayError> {
    let rows: Vec<Map<String, Value>> = db
        .prepare("SELECT * FROM metric_totals ORDER BY surface, model, outcome")
        .all()
        .await
        .map_err(internal("metric totals"))?
        .results()
        .map_err(internal("decode metric totals"))?;
    let text = |row: &Map<String, Value>, k: &str| {
        row.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let num = |row: &Map<String, Value>, k: &str| row.get(k).and_then(Value::as_f64).map_or(0, int);
    Ok(rows
        .iter()
        .map(|row| {
            let mut buckets = [0; LATENCY_BUCKETS];
            for (i, b) in buckets.iter_mut().enumerate() {
                *b = num(row, &format!("lat_{i}"));
            }
            MetricRow {
                surface: text(row, "surface"),
                model: text(row, "model"),
                outcome: text(row, "outcome"),
                requests: num(row, "requests"),
                latency_ms: num(row, "latency_ms"),
                buckets,
            }
        })
        .collect())
}
