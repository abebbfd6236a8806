//! Runtime settings in D1 (one JSON document, scope `global`). The hot path
//! reads them through the key snapshot; only the admin API comes here.

use serde::Deserialize;
use worker::D1Database;

use super::app::internal;
use super::{js_int, now_ms};
use crate::domain::config::Settings;
use crate::domain::error::GatewayError;

pub const SELECT_GLOBAL: &str = "SELECT value FROM settings WHERE scope = 'global'";

/// A row with one `value` column (the `settings` and `meta` tables).
#[derive(Deserialize)]
pub struct SettingsRow {
    value: String,
}

impl SettingsRow {
    pub fn into_value(self) -> String {
        self.value
    }
}

/// The stored settings, or the defaults when none (or unreadable) are stored.
/// Unknown stored fields are ignored, so a rollback never breaks.
pub fn from_row(row: Option<&SettingsRow>) -> Settings {
    row.and_then(|r| serde_json::from_str(&r.value).ok())
        .unwrap_or_default()
}

pub async fn load(db: &D1Database) -> Result<Settings, GatewayError> {
    let row: Option<SettingsRow> = db
        .prepare(SELECT_GLOBAL)
        .first(None)
        .await
        .map_err(internal("load settings"))?;
    Ok(from_row(row.as_ref()))
}

pub async fn save(db: &D1Database, settings: &Settings) -> Result<(), GatewayError> {
    let value = serde_json::to_string(settings)
        .map_err(|e| GatewayError::Internal(format!("encode settings: {e}")))?;
    db.prepare(
        "INSERT INTO settings (scope, value, updated_at) VALUES ('global', ?1, ?2) \
         ON CONFLICT (scope) DO UPDATE SET value = ?1, updated_at = ?2",
    )
    .bind(&[value.into(), js_int(now_ms())])
    .map_err(internal("bind settings"))?
    .run()
    .await
    .map_err(internal("save settings"))?;
    super::keys::invalidate();
    Ok(())
}
