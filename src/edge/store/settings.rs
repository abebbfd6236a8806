//! Runtime settings in D1: one JSON document, scope `global`.

use serde::Deserialize;
use worker::{D1Database, D1PreparedStatement, D1Result};

use crate::domain::config::Settings;
use crate::domain::error::GatewayError;
use crate::edge::{internal, js_int};

/// A row with one `value` column (the `settings` and `meta` tables).
#[derive(Deserialize)]
pub struct ValueRow {
    pub value: String,
}

/// The statement that reads the settings, for a batch.
pub fn select(db: &D1Database) -> D1PreparedStatement {
    db.prepare("SELECT value FROM settings WHERE scope = 'global'")
}

/// The settings a batch result holds: the stored ones, or the defaults when
/// none (or none readable) are stored. Unknown stored fields are ignored, so a
/// rollback never breaks.
pub fn decode(result: &D1Result) -> Result<Settings, GatewayError> {
    let rows: Vec<ValueRow> = result.results().map_err(internal("decode settings"))?;
    Ok(rows
        .first()
        .and_then(|r| serde_json::from_str(&r.value).ok())
        .unwrap_or_default())
}

pub async fn load(db: &D1Database) -> Result<Settings, GatewayError> {
    decode(&select(db).all().await.map_err(internal("load settings"))?)
}

pub async fn save(db: &D1Database, settings: &Settings, now_ms: u64) -> Result<(), GatewayError> {
    let value = serde_json::to_string(settings)
        .map_err(|e| GatewayError::Internal(format!("encode settings: {e}")))?;
    db.prepare(
        "INSERT INTO settings (scope, value, updated_at) VALUES ('global', ?1, ?2) \
         ON CONFLICT (scope) DO UPDATE SET value = ?1, updated_at = ?2",
    )
    .bind(&[value.into(), js_int(now_ms)])
    .map_err(internal("bind settings"))?
    .run()
    .await
    .map_err(internal("save settings"))?;
    Ok(())
}
