//! User keys in D1 (`users`: the record and only the SHA-256 of each secret)
//! and the per-user totals read back from the hourly rollups.

use std::collections::HashMap;

use serde::Deserialize;
use worker::D1Database;
use worker::wasm_bindgen::JsValue;

use crate::domain::error::GatewayError;
use crate::domain::users::{UsageTotals, UserRecord};
use crate::edge::{int, internal, js_int};

/// D1 returns numbers as JS numbers (f64).
#[derive(Deserialize)]
struct UserRow {
    id: String,
    name: String,
    note: Option<String>,
    key_hash: String,
    key_hint: String,
    enabled: f64,
    expires_at: Option<f64>,
    allowed_models: Option<String>,
    credit_quota: Option<f64>,
    rpm: Option<f64>,
    rpd: Option<f64>,
    tpm: Option<f64>,
    max_concurrency: Option<f64>,
    credits_used: f64,
    created_at: f64,
    updated_at: f64,
}

fn small(v: Option<f64>) -> Option<u32> {
    v.map(|v| u32::try_from(int(v)).unwrap_or(u32::MAX))
}

impl From<UserRow> for UserRecord {
    fn from(r: UserRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            note: r.note.unwrap_or_default(),
            key_hash: r.key_hash,
            key_hint: r.key_hint,
            enabled: r.enabled != 0.0,
            expires_at: r.expires_at.map(int),
            allowed_models: r
                .allowed_models
                .and_then(|m| serde_json::from_str(&m).ok())
                .unwrap_or_default(),
            credit_quota: r.credit_quota.map(int),
            rpm: small(r.rpm),
            rpd: small(r.rpd),
            tpm: r.tpm.map(int),
            max_concurrency: small(r.max_concurrency),
            credits_used: int(r.credits_used),
            created_at: int(r.created_at),
            updated_at: int(r.updated_at),
        }
    }
}

const COLUMNS: &str = "id, name, note, key_hash, key_hint, enabled, expires_at, allowed_models, \
    credit_quota, rpm, rpd, tpm, max_concurrency, credits_used, created_at, updated_at";

async fn one(
    db: &D1Database,
    column: &str,
    value: &str,
) -> Result<Option<UserRecord>, GatewayError> {
    let row: Option<UserRow> = db
        .prepare(format!("SELECT {COLUMNS} FROM users WHERE {column} = ?1"))
        .bind(&[value.into()])
        .map_err(internal("bind user read"))?
        .first(None)
        .await
        .map_err(internal("read user"))?;
    Ok(row.map(UserRecord::from))
}

/// The user whose key hashes to `hash`.
pub async fn by_hash(db: &D1Database, hash: &str) -> Result<Option<UserRecord>, GatewayError> {
    one(db, "key_hash", hash).await
}

pub async fn get(db: &D1Database, id: &str) -> Result<Option<UserRecord>, GatewayError> {
    one(db, "id", id).await
}

pub async fn list(db: &D1Database) -> Result<Vec<UserRecord>, GatewayError> {
    let rows: Vec<UserRow> = db
        .prepare(format!(
            "SELECT {COLUMNS} FROM users ORDER BY created_at, id"
        ))
        .all()
        .await
        .map_err(internal("list users"))?
        .results()
        .map_err(internal("decode users"))?;
    Ok(rows.into_iter().map(UserRecord::from).collect())
}

fn opt(v: Option<u64>) -> JsValue {
    v.map_or(JsValue::NULL, js_int)
}

/// Writes the whole record (insert or update).
pub async fn save(db: &D1Database, user: &UserRecord, insert: bool) -> Result<(), GatewayError> {
    let sql = if insert {
        format!(
            "INSERT INTO users ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, \
             ?12, ?13, ?14, ?15, ?16)"
        )
    } else {
        "UPDATE users SET name = ?2, note = ?3, key_hash = ?4, key_hint = ?5, enabled = ?6, \
         expires_at = ?7, allowed_models = ?8, credit_quota = ?9, rpm = ?10, rpd = ?11, \
         tpm = ?12, max_concurrency = ?13, credits_used = ?14, created_at = ?15, \
         updated_at = ?16 WHERE id = ?1"
            .to_owned()
    };
    let models = serde_json::to_string(&user.allowed_models).unwrap_or_else(|_| "[]".into());
    db.prepare(sql)
        .bind(&[
            user.id.as_str().into(),
            user.name.as_str().into(),
            user.note.as_str().into(),
            user.key_hash.as_str().into(),
            user.key_hint.as_str().into(),
            js_int(u64::from(user.enabled)),
            opt(user.expires_at),
            models.as_str().into(),
            opt(user.credit_quota),
            opt(user.rpm.map(u64::from)),
            opt(user.rpd.map(u64::from)),
            opt(user.tpm),
            opt(user.max_concurrency.map(u64::from)),
            js_int(user.credits_used),
            js_int(user.created_at),
            js_int(user.updated_at),
        ])
        .map_err(internal("bind user save"))?
        .run()
        .await
        .map_err(internal("save user"))?;
    Ok(())
}

pub async fn delete(db: &D1Database, id: &str) -> Result<(), GatewayError> {
    db.prepare("DELETE FROM users WHERE id = ?1")
        .bind(&[id.into()])
        .map_err(internal("bind user delete"))?
        .run()
        .await
        .map_err(internal("delete user"))?;
    Ok(())
}

#[derive(Deserialize)]
struct TotalsRow {
    user_id: String,
    requests: f64,
    prompt_tokens: f64,
    completion_tokens: f64,
    reasoning_tokens: f64,
    credits: f64,
}

impl TotalsRow {
    fn totals(&self) -> UsageTotals {
        UsageTotals {
            requests: int(self.requests),
            prompt_tokens: int(self.prompt_tokens),
            completion_tokens: int(self.completion_tokens),
            reasoning_tokens: int(self.reasoning_tokens),
            credits: int(self.credits),
        }
    }
}

const TOTALS: &str = "SUM(requests) AS requests, SUM(prompt_tokens) AS prompt_tokens, \
    SUM(completion_tokens) AS completion_tokens, SUM(reasoning_tokens) AS reasoning_tokens, \
    SUM(credits) AS credits";

/// Rollup totals per user (all users, or one).
pub async fn usage_totals(
    db: &D1Database,
    user: Option<&str>,
) -> Result<HashMap<String, UsageTotals>, GatewayError> {
    let stmt = match user {
        Some(id) => db
            .prepare(format!(
                "SELECT user_id, {TOTALS} FROM usage_hourly WHERE user_id = ?1 GROUP BY user_id"
            ))
            .bind(&[id.into()])
            .map_err(internal("bind usage"))?,
        None => db.prepare(format!(
            "SELECT user_id, {TOTALS} FROM usage_hourly WHERE user_id != '' GROUP BY user_id"
        )),
    };
    let rows: Vec<TotalsRow> = stmt
        .all()
        .await
        .map_err(internal("usage totals"))?
        .results()
        .map_err(internal("decode usage totals"))?;
    Ok(rows
        .iter()
        .map(|r| (r.user_id.clone(), r.totals()))
        .collect())
}

/// Per-model totals of one user, by model name.
pub async fn usage_by_model(
    db: &D1Database,
    user_id: &str,
) -> Result<Vec<(String, UsageTotals)>, GatewayError> {
    #[derive(Deserialize)]
    struct Row {
        model: String,
        #[serde(flatten)]
        totals: TotalsRow,
    }
    let rows: Vec<Row> = db
        .prepare(format!(
            "SELECT model, user_id, {TOTALS} FROM usage_hourly WHERE user_id = ?1 \
             GROUP BY model ORDER BY model"
        ))
        .bind(&[user_id.into()])
        .map_err(internal("bind model usage"))?
        .all()
        .await
        .map_err(internal("model usage"))?
        .results()
        .map_err(internal("decode model usage"))?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let totals = r.totals.totals();
            (r.model, totals)
        })
        .collect())
}

/// The credits one user spent in `[start_ms, end_ms)`, from the rollups.
pub async fn credits_between(
    db: &D1Database,
    user_id: &str,
    start_ms: u64,
    end_ms: u64,
) -> Result<f64, GatewayError> {
    #[derive(Deserialize)]
    struct Row {
        credits: Option<f64>,
    }
    let row: Option<Row> = db
        .prepare(
            "SELECT SUM(credits) AS credits FROM usage_hourly \
             WHERE user_id = ?1 AND hour >= ?2 AND hour < ?3",
        )
        .bind(&[user_id.into(), js_int(start_ms), js_int(end_ms)])
        .map_err(internal("bind billing usage"))?
        .first(None)
        .await
        .map_err(internal("billing usage"))?;
    Ok(row.and_then(|r| r.credits).unwrap_or(0.0))
}
