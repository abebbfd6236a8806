//! Which key a call must go to because its body names a file or a context cache
//! that key holds (`domain::files` decides; `store::pins` remembers).

use serde_json::Value;

use crate::domain::error::GatewayError;
use crate::domain::files;
use crate::edge::app::App;
use crate::edge::now_ms;
use crate::edge::snapshot::Snapshot;
use crate::edge::store::pins;
use crate::edge::upstream::UpstreamRequest;

/// The key a request body pins its call to in the caller's `scope`, when it names
/// files or a cache (`None` for the common body that names neither: no D1 read).
pub async fn pin_for(
    app: &App,
    snap: &Snapshot,
    scope: &str,
    raw: &[u8],
    parsed: &Value,
) -> Result<Option<String>, GatewayError> {
    if !files::may_reference(raw) {
        return Ok(None);
    }
    let refs = files::references(parsed);
    if refs.is_empty() {
        return Ok(None);
    }
    let names: Vec<String> = refs.names.iter().cloned().collect();
    let found = pins::find(&app.db()?, &names, scope, now_ms()).await?;
    files::pinned_key(&refs, &found, |key| snap.secret(key).is_some())
}

/// Pins a translated generate request (chat, Messages, Responses) that names a
/// context cache (`extra_body.google.cached_content`) to the cache's key: a
/// translated body names no Files API file (file ids are refused), so only its
/// `cachedContent` is looked at.
pub async fn pin_translated(
    app: &App,
    snap: &Snapshot,
    scope: &str,
    cached_content: Option<&str>,
    request: &mut UpstreamRequest,
) -> Result<(), GatewayError> {
    let Some(name) = cached_content else {
        return Ok(());
    };
    let refs = files::References {
        names: [name.to_owned()].into(),
    };
    let found = pins::find(&app.db()?, &[name.to_owned()], scope, now_ms()).await?;
    request.pin = files::pinned_key(&refs, &found, |key| snap.secret(key).is_some())?;
    Ok(())
}
