//! Pinned resources (`pinned_resources`) and resumable upload sessions
//! (`upload_sessions`): which upstream key holds a file or a cache, readable only in
//! the scope that made it.

use serde::Deserialize;
use worker::D1Database;

use crate::domain::error::GatewayError;
use crate::domain::files::{Collection, Pin};
use crate::edge::store::{changes, select_by_ids};
use crate::edge::{internal, js_int};

/// A resource to pin (or re-pin, with Google's latest view of it).
pub struct NewPin<'a> {
    pub name: &'a str,
    pub scope: &'a str,
    pub key_id: &'a str,
    pub resource: &'a str,
    pub now_ms: u64,
    pub expires_at: u64,
}

pub async fn put(db: &D1Database, pin: &NewPin<'_>) -> Result<(), GatewayError> {
    db.prepare(
        "INSERT INTO pinned_resources (name, scope, key_id, resource, created_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (name) DO UPDATE SET resource = excluded.resource, \
         expires_at = excluded.expires_at \
         WHERE pinned_resources.scope = excluded.scope AND pinned_resources.key_id = excluded.key_id",
    )
    .bind(&[
        pin.name.into(),
        pin.scope.into(),
        pin.key_id.into(),
        pin.resource.into(),
        js_int(pin.now_ms),
        js_int(pin.expires_at),
    ])
    .map_err(internal("bind pin"))?
    .run()
    .await
    .map_err(internal("store pin"))?;
    Ok(())
}

#[derive(Deserialize)]
struct PinRow {
    name: String,
    key_id: String,
}

/// The pins of `names` in `scope` that have not expired by `now_ms`.
pub async fn find(
    db: &D1Database,
    names: &[String],
    scope: &str,
    now_ms: u64,
) -> Result<Vec<Pin>, GatewayError> {
    let rows: Vec<PinRow> = select_by_ids(
        db,
        &format!(
            "SELECT name, key_id FROM pinned_resources WHERE name IN ({{ids}}) \
             AND scope = '{}' AND expires_at > {now_ms}",
            hex(scope)?
        ),
        names,
        "read pins",
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Pin {
            name: r.name,
            key_id: r.key_id,
        })
        .collect())
}

/// A scope is a SHA-256 in hex: checked before it goes into SQL text.
fn hex(scope: &str) -> Result<&str, GatewayError> {
    if scope.len() == 64 && scope.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(scope)
    } else {
        Err(GatewayError::Internal(
            "a scope that is not a digest".into(),
        ))
    }
}

/// One pin of `scope`, if it exists and has not expired.
pub async fn get(
    db: &D1Database,
    name: &str,
    scope: &str,
    now_ms: u64,
) -> Result<Option<Pin>, GatewayError> {
    Ok(find(db, &[name.to_owned()], scope, now_ms).await?.pop())
}

/// The stored resources of `scope` in `collection` after `after` (a name; empty for
/// the first page), by name, at most `limit`.
pub async fn list(
    db: &D1Database,
    collection: Collection,
    scope: &str,
    after: &str,
    limit: usize,
    now_ms: u64,
) -> Result<Vec<(String, String)>, GatewayError> {
    #[derive(Deserialize)]
    struct Row {
        name: String,
        resource: String,
    }
    let prefix = format!("{}/", collection.as_str());
    // `[prefix, prefix + 0x7f)` is every name of the collection, by the index.
    let upper = format!("{}\u{7f}", collection.as_str());
    let rows: Vec<Row> = db
        .prepare(
            "SELECT name, resource FROM pinned_resources WHERE scope = ?1 AND name > ?2 \
             AND name >= ?3 AND name < ?4 AND expires_at > ?5 ORDER BY name LIMIT ?6",
        )
        .bind(&[
            scope.into(),
            after.into(),
            prefix.as_str().into(),
            upper.as_str().into(),
            js_int(now_ms),
            js_int(limit as u64),
        ])
        .map_err(internal("bind pin list"))?
        .all()
        .await
        .map_err(internal("list pins"))?
        .results()
        .map_err(internal("read pin list"))?;
    Ok(rows.into_iter().map(|r| (r.name, r.resource)).collect())
}

/// Forgets a pin (its resource was deleted upstream).
pub async fn delete(db: &D1Database, name: &str, scope: &str) -> Result<(), GatewayError> {
    db.prepare("DELETE FROM pinned_resources WHERE name = ?1 AND scope = ?2")
        .bind(&[name.into(), scope.into()])
        .map_err(internal("bind pin delete"))?
        .run()
        .await
        .map_err(internal("delete pin"))?;
    Ok(())
}

/// An upload session handed out to a client.
pub struct NewUpload<'a> {
    pub id: &'a str,
    pub scope: &'a str,
    pub key_id: &'a str,
    /// Google's upload URL, sealed when a key is set.
    pub target: &'a str,
    pub now_ms: u64,
    pub expires_at: u64,
}

pub async fn put_upload(db: &D1Database, up: &NewUpload<'_>) -> Result<(), GatewayError> {
    db.prepare(
        "INSERT INTO upload_sessions (id, scope, key_id, target, created_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .bind(&[
        up.id.into(),
        up.scope.into(),
        up.key_id.into(),
        up.target.into(),
        js_int(up.now_ms),
        js_int(up.expires_at),
    ])
    .map_err(internal("bind upload session"))?
    .run()
    .await
    .map_err(internal("store upload session"))?;
    Ok(())
}

/// An upload session of `scope`: its key and (sealed) Google upload URL.
pub async fn get_upload(
    db: &D1Database,
    id: &str,
    scope: &str,
    now_ms: u64,
) -> Result<Option<(String, String)>, GatewayError> {
    #[derive(Deserialize)]
    struct Row {
        key_id: String,
        target: String,
    }
    let row: Option<Row> = db
        .prepare(
            "SELECT key_id, target FROM upload_sessions WHERE id = ?1 AND scope = ?2 AND expires_at > ?3",
        )
        .bind(&[id.into(), scope.into(), js_int(now_ms)])
        .map_err(internal("bind upload session read"))?
        .first(None)
        .await
        .map_err(internal("read upload session"))?;
    Ok(row.map(|r| (r.key_id, r.target)))
}

pub async fn delete_upload(db: &D1Database, id: &str) -> Result<(), GatewayError> {
    db.prepare("DELETE FROM upload_sessions WHERE id = ?1")
        .bind(&[id.into()])
        .map_err(internal("bind upload session delete"))?
        .run()
        .await
        .map_err(internal("delete upload session"))?;
    Ok(())
}

/// Deletes the pins and upload sessions expired by `now_ms`: how many of each.
pub async fn prune(db: &D1Database, now_ms: u64) -> Result<(usize, usize), GatewayError> {
    let pins = db
        .prepare("DELETE FROM pinned_resources WHERE expires_at <= ?1")
        .bind(&[js_int(now_ms)])
        .map_err(internal("bind pin retention"))?
        .run()
        .await
        .map_err(internal("pin retention"))?;
    let uploads = db
        .prepare("DELETE FROM upload_sessions WHERE expires_at <= ?1")
        .bind(&[js_int(now_ms)])
        .map_err(internal("bind upload retention"))?
        .run()
        .await
        .map_err(internal("upload retention"))?;
    Ok((changes(&pins), changes(&uploads)))
}
