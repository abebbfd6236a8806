//! Stored Responses API responses (`responses`): the response object and the conversation
//! a `previous_response_id` continues, readable only in the scope that stored them.

use serde::Deserialize;
use worker::D1Database;

use crate::domain::error::GatewayError;
use crate::edge::store::changes;
use crate::edge::{internal, js_int};

/// One response to keep.
pub struct NewResponse<'a> {
    pub id: &'a str,
    pub scope: &'a str,
    pub created_at: u64,
    pub expires_at: u64,
    /// The response object as returned (JSON).
    pub body: &'a str,
    /// The conversation it ends: input and output items (JSON array).
    pub conversation: &'a str,
}

pub async fn insert(db: &D1Database, row: &NewResponse<'_>) -> Result<(), GatewayError> {
    db.prepare(
        "INSERT OR REPLACE INTO responses (id, scope, created_at, expires_at, body, conversation) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .bind(&[
        row.id.into(),
        row.scope.into(),
        js_int(row.created_at),
        js_int(row.expires_at),
        row.body.into(),
        row.conversation.into(),
    ])
    .map_err(internal("bind response"))?
    .run()
    .await
    .map_err(internal("store response"))?;
    Ok(())
}

/// A stored response's object and conversation (JSON), if it exists in `scope` and has not
/// expired by `now_ms`.
pub async fn get(
    db: &D1Database,
    id: &str,
    scope: &str,
    now_ms: u64,
) -> Result<Option<(String, String)>, GatewayError> {
    #[derive(Deserialize)]
    struct Row {
        body: String,
        conversation: String,
    }
    let row: Option<Row> = db
        .prepare(
            "SELECT body, conversation FROM responses WHERE id = ?1 AND scope = ?2 AND expires_at > ?3",
        )
        .bind(&[id.into(), scope.into(), js_int(now_ms)])
        .map_err(internal("bind response read"))?
        .first(None)
        .await
        .map_err(internal("read response"))?;
    Ok(row.map(|r| (r.body, r.conversation)))
}

/// Deletes a response of `scope`; whether one was there (and not expired).
pub async fn delete(
    db: &D1Database,
    id: &str,
    scope: &str,
    now_ms: u64,
) -> Result<bool, GatewayError> {
    let result = db
        .prepare("DELETE FROM responses WHERE id = ?1 AND scope = ?2 AND expires_at > ?3")
        .bind(&[id.into(), scope.into(), js_int(now_ms)])
        .map_err(internal("bind response delete"))?
        .run()
        .await
        .map_err(internal("delete response"))?;
    Ok(changes(&result) > 0)
}

/// Deletes every response expired by `now_ms`; how many.
pub async fn prune(db: &D1Database, now_ms: u64) -> Result<usize, GatewayError> {
    let result = db
        .prepare("DELETE FROM responses WHERE expires_at <= ?1")
        .bind(&[js_int(now_ms)])
        .map_err(internal("bind response retention"))?
        .run()
        .await
        .map_err(internal("response retention"))?;
    Ok(changes(&result))
}
