//! Admin console sessions in D1 (`admin_sessions`) and the salt their signing
//! key is derived from (`meta`, `admin_session_salt`).

use serde::Deserialize;
use worker::D1Database;

use crate::domain::error::GatewayError;
use crate::edge::store::{batch_of, changes, meta};
use crate::edge::{int, internal, js_int};

const SALT: &str = "admin_session_salt";

/// The salt, created from `fresh` if none is stored yet (the first login).
pub async fn salt(db: &D1Database, fresh: &str, now_ms: u64) -> Result<String, GatewayError> {
    db.prepare("INSERT OR IGNORE INTO meta (name, value, updated_at) VALUES (?1, ?2, ?3)")
        .bind(&[SALT.into(), fresh.into(), js_int(now_ms)])
        .map_err(internal("bind salt"))?
        .run()
        .await
        .map_err(internal("create salt"))?;
    meta::get(db, SALT)
        .await?
        .ok_or_else(|| GatewayError::Internal("the session salt vanished".into()))
}

/// The salt and whether session `id` is live (stored, not revoked, not expired), in one read.
pub async fn lookup(
    db: &D1Database,
    id: &str,
    now_ms: u64,
) -> Result<(Option<String>, bool), GatewayError> {
    #[derive(Deserialize)]
    struct Row {
        expires_at: f64,
        revoked_at: Option<f64>,
    }
    let results = db
        .batch(vec![
            meta::select(db, SALT)?,
            db.prepare("SELECT expires_at, revoked_at FROM admin_sessions WHERE id = ?1")
                .bind(&[id.into()])
                .map_err(internal("bind session"))?,
        ])
        .await
        .map_err(internal("read session"))?;
    let [salt, session] = batch_of(results)?;
    let rows: Vec<Row> = session.results().map_err(internal("decode session"))?;
    let live = rows
        .first()
        .is_some_and(|r| r.revoked_at.is_none() && int(r.expires_at) > now_ms);
    Ok((meta::decode(&salt)?, live))
}

pub async fn create(
    db: &D1Database,
    id: &str,
    now_ms: u64,
    expires_ms: u64,
) -> Result<(), GatewayError> {
    db.prepare("INSERT INTO admin_sessions (id, created_at, expires_at) VALUES (?1, ?2, ?3)")
        .bind(&[id.into(), js_int(now_ms), js_int(expires_ms)])
        .map_err(internal("bind session"))?
        .run()
        .await
        .map_err(internal("create session"))?;
    Ok(())
}

/// Ends one session for good. Rows that expired a day ago go at the same time.
pub async fn revoke(db: &D1Database, id: &str, now_ms: u64) -> Result<usize, GatewayError> {
    let results = db
        .batch(vec![
            db.prepare(
                "UPDATE admin_sessions SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            )
            .bind(&[id.into(), js_int(now_ms)])
            .map_err(internal("bind revoke"))?,
            db.prepare("DELETE FROM admin_sessions WHERE expires_at < ?1")
                .bind(&[js_int(now_ms.saturating_sub(86_400_000))])
                .map_err(internal("bind session prune"))?,
        ])
        .await
        .map_err(internal("revoke session"))?;
    Ok(results.first().map_or(0, changes))
}

/// Ends every session: each row is revoked and the salt replaced, so no
/// token signed before now verifies again.
pub async fn revoke_all(
    db: &D1Database,
    fresh_salt: &str,
    now_ms: u64,
) -> Result<usize, GatewayError> {
    let results = db
        .batch(vec![
            db.prepare("UPDATE admin_sessions SET revoked_at = ?1 WHERE revoked_at IS NULL")
                .bind(&[js_int(now_ms)])
                .map_err(internal("bind revoke all"))?,
            db.prepare(
                "INSERT INTO meta (name, value, updated_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (name) DO UPDATE SET value = ?2, updated_at = ?3",
            )
            .bind(&[SALT.into(), fresh_salt.into(), js_int(now_ms)])
            .map_err(internal("bind salt"))?,
        ])
        .await
        .map_err(internal("revoke all sessions"))?;
    Ok(results.first().map_or(0, changes))
}
