//! Which key a call must go to because its body names a file or a context cache
//! that key holds (`domain::files` decides; `store::pins` remembers).

use serde_json::Value;

use crate::domain::error::GatewayError;
use crate::domain::files;
use crate::edge::app::App;
use crate::edge::now_ms;
use crate::edge::snapshot::Snapshot;
use crate::edge::store::pins;

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
