//! Which key a call must go to because its body names a file or a context cache
//! that key holds (`domain::files` decides; `store::pins` remembers).

use serde_json::Value;

use crate::domain::error::GatewayError;
use crate::domain::files;
use crate::domain::responses::scope_of;
use crate::edge::app::App;
use crate::edge::now_ms;
use crate::edge::snapshot::Snapshot;
use crate::edge::store::pins;
use crate::edge::upstream::UpstreamRequest;

/// The key a request body pins its call to in the scope of the caller (`user_id`, `None` for a static token), when it names files
/// or a cache (`None` for the common body that names neither: no hash, no D1 read).
pub async fn pin_for(
    app: &App,
    snap: &Snapshot,
    user_id: Option<&str>,
    raw: &[u8],
    parsed: &Value,
) -> Result<Option<String>, GatewayError> {
    if !files::may_reference(raw) {
        return Ok(None);
    }
    key_for(app, snap, user_id, &files::references(parsed)).await
}

/// Pins a translated generate request (chat, Messages, Responses) that names a
/// context cache (`extra_body.google.cached_content`) to the cache's key: a
/// translated body names no Files API file (file ids are refused), so only its
/// `cachedContent` is looked at.
pub async fn pin_translated(
    app: &App,
    snap: &Snapshot,
    user_id: Option<&str>,
    cached_content: Option<&str>,
    request: &mut UpstreamRequest,
) -> Result<(), GatewayError> {
    if let Some(name) = cached_content {
        let refs = files::References {
            names: [name.to_owned()].into(),
        };
        request.pin = key_for(app, snap, user_id, &refs).await?;
    }
    Ok(())
}

/// The key holding everything `refs` names, from the caller's pins.
async fn key_for(
    app: &App,
    snap: &Snapshot,
    user_id: Option<&str>,
    refs: &files::References,
) -> Result<Option<String>, GatewayError> {
    if refs.is_empty() {
        return Ok(None);
    }
    let names: Vec<String> = refs.names.iter().cloned().collect();
    let found = pins::find(&app.db()?, &names, &scope_of(user_id), now_ms()).await?;
    files::pinned_key(refs, &found, |key| snap.secret(key).is_some())
}
