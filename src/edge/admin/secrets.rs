//! `GET /admin/api/secrets`: whether upstream secrets are sealed at rest,
//! under which key (by fingerprint, never the key), and how far a key
//! rotation has come: the rows not yet under the current key, per table.
//! Counted in SQL by prefix; nothing is opened and no secret is returned.

use serde_json::{Value, json};
use worker::Response;

use crate::domain::error::GatewayError;
use crate::domain::sealed::RESEAL_BATCH;
use crate::edge::app::App;
use crate::edge::config::secret;
use crate::edge::http::render;
use crate::edge::snapshot;
use crate::edge::store::sealed::{self as sealed_store, Census, TABLES};

pub async fn get(app: &App) -> Result<Response, GatewayError> {
    let ring = snapshot::sealer(&app.env).await?;
    let fingerprints = ring.as_ref().map(|r| r.fingerprints().clone());
    let current = fingerprints.as_ref().map(|f| f.current.as_str());
    let previous = fingerprints.as_ref().and_then(|f| f.previous.as_deref());
    let census = sealed_store::census(&app.db()?, current, previous).await?;
    let per_table = |field: fn(&Census) -> u64| -> Value {
        let mut out = serde_json::Map::new();
        for (table, counted) in TABLES.iter().zip(census.iter()) {
            out.insert(table.name.to_owned(), json!(field(counted)));
        }
        Value::Object(out)
    };
    render::json(
        200,
        &json!({
            "encryption": if ring.is_some() { "on" } else { "off" },
            "current_fingerprint": current,
            "previous_set": secret(&app.env, "ENCRYPTION_KEY_PREVIOUS").is_some(),
            "previous_fingerprint": previous,
            "batch_size": RESEAL_BATCH,
            "remaining": per_table(|c| c.remaining),
            "plaintext": per_table(|c| c.plaintext),
            "unknown_key": per_table(|c| c.unknown_key),
        }),
    )
}
