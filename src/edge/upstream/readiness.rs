//! Whether the pool can serve, per model in use, for `/health` and
//! `/metrics`: D1's mirror of the gates' health read through the routing of
//! the current settings (`domain::ops` counts and judges).

use crate::domain::error::GatewayError;
use crate::domain::ops::{ModelHealth, PoolCounts};
use crate::edge::app::App;
use crate::edge::snapshot;
use crate::edge::store::ops as ops_store;
use crate::edge::upstream::PROBE_MODEL;

/// Each model in use: its keys and accounts usable now (D1's mirror of the
/// gates' health, read through the routing of the current settings).
pub async fn model_health(app: &App, now_ms: u64) -> Result<Vec<ModelHealth>, GatewayError> {
    let db = app.db()?;
    let (snap, (keys, accounts, cooling, mut models)) =
        futures::try_join!(snapshot::snapshot(app), ops_store::pool_health(&db, now_ms),)?;
    let routing = &snap.settings.routing;
    if accounts > 0 {
        models.extend(routing.code_assist_models.iter().cloned());
    }
    if let Some(default) = snap.settings.catalog.default_model.clone() {
        models.push(default);
    }
    // The pool's everyday model is always listed: it stands for "the pool
    // can serve" when nothing is in use yet, and beside a model whose keys
    // are all out of quota it tells degraded from down.
    models.push(PROBE_MODEL.to_owned());
    models.sort();
    let pool = PoolCounts {
        keys,
        accounts,
        cooling: &cooling,
    };
    Ok(crate::domain::ops::model_health(&models, routing, &pool))
}
