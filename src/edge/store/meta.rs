//! The `meta` table: small named values the gateway keeps for itself, such as
//! the digest of the last imported `GEMINI_API_KEYS`.

use worker::{D1Database, D1PreparedStatement, D1Result};

use crate::domain::error::GatewayError;
use crate::edge::store::settings::ValueRow;
use crate::edge::{internal, js_int};

/// Where the digest of the last imported `GEMINI_API_KEYS` is kept.
pub const ENV_KEYS_DIGEST: &str = "env_keys_digest";

/// The statement that reads one value, for a batch.
pub fn select(db: &D1Database, name: &str) -> Result<D1PreparedStatement, GatewayError> {
    db.prepare("SELECT value FROM meta WHERE name = ?1")
        .bind(&[name.into()])
        .map_err(internal("bind meta read"))
}

pub fn decode(result: &D1Result) -> Result<Option<String>, GatewayError> {
    let rows: Vec<ValueRow> = result.results().map_err(internal("decode meta"))?;
    Ok(rows.into_iter().next().map(|r| r.value))
}

pub async fn get(db: &D1Database, name: &str) -> Result<Option<String>, GatewayError> {
    decode(
        &select(db, name)?
            .all()
            .await
            .map_err(internal("read meta"))?,
    )
}

pub async fn put(
    db: &D1Database,
    name: &str,
    value: &str,
    now_ms: u64,
) -> Result<(), GatewayError> {
    db.prepare(
        "INSERT INTO meta (name, value, updated_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (name) DO UPDATE SET value = ?2, updated_at = ?3",
    )
    .bind(&[name.into(), value.into(), js_int(now_ms)])
    .map_err(internal("bind meta write"))?
    .run()
    .await
    .map_err(internal("write meta"))?;
    Ok(())
}
