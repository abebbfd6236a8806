//! The isolate's copies of each model's key pool (`domain::schedule`), and
//! their refresh from the model's gate. A copy is fetched once, before the
//! isolate's first request for the model; after that, requests choose from
//! it with no gate call, and it is refreshed in the background.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::domain::error::GatewayError;
use crate::domain::gate::{Decision, GateRequest, GateResponse, HealthView, Report};
use crate::domain::keypool::{Candidate, PoolPolicy};
use crate::domain::schedule::LocalPool;
use crate::edge::app::App;
use crate::edge::crypto::random_u64;
use crate::edge::now_ms;
use crate::edge::objects::gate;
use crate::edge::snapshot::Snapshot;

thread_local! {
    static POOLS: RefCell<HashMap<String, LocalPool>> = RefCell::new(HashMap::new());
}

fn with_pool<T>(model: &str, f: impl FnOnce(&mut LocalPool) -> T) -> T {
    POOLS.with(|pools| {
        let mut pools = pools.borrow_mut();
        let pool = pools
            .entry(model.to_owned())
            .or_insert_with(|| LocalPool::new(random_u64()));
        f(pool)
    })
}

/// Makes sure this isolate has a view of `model`'s health: the first request
/// for a model waits for it (once per isolate); later ones start a
/// background refresh when one is due.
pub async fn ensure_view(app: &App, snap: &Snapshot, model: &str) {
    let now = now_ms();
    let refresh_ms = snap.settings.health_refresh_ms;
    let (cold, due) = with_pool(model, |p| {
        let cold = !p.has_view();
        (cold, p.refresh_due(now, if cold { 0 } else { refresh_ms }))
    });
    if cold {
        match fetch_view(app, model).await {
            Ok(view) => adopt(snap, model, &view),
            Err(e) => {
                // Serve anyway, from a copy that knows nothing yet (every key
                // healthy): a failure's report or a later request fetches it.
                with_pool(model, LocalPool::refresh_failed);
                worker::console_warn!("[gemgate] no health view for {model} yet: {e}");
            }
        }
        return;
    }
    if due {
        let env = app.env.clone();
        let candidates = snap.candidates(model);
        let model = model.to_owned();
        app.background.spawn(async move {
            match gate::call(&env, &model, &GateRequest::View).await {
                Ok(GateResponse::View { view }) => {
                    with_pool(&model, |p| p.adopt(&view, &candidates, now_ms()));
                }
                other => {
                    with_pool(&model, LocalPool::refresh_failed);
                    if let Err(e) = other {
                        worker::console_warn!("[gemgate] health refresh failed: {e}");
                    }
                }
            }
        });
    }
}

async fn fetch_view(app: &App, model: &str) -> Result<HealthView, GatewayError> {
    match gate::call(&app.env, model, &GateRequest::View).await? {
        GateResponse::View { view } => Ok(view),
        other => Err(GatewayError::Internal(format!(
            "gate answered View with {other:?}"
        ))),
    }
}

/// Takes a view the gate sent back (to a report, or a refresh).
pub fn adopt(snap: &Snapshot, model: &str, view: &HealthView) {
    adopt_candidates(model, &snap.candidates(model), view);
}

/// [`adopt`] with the candidates already in hand (background work, which
/// does not hold the snapshot).
pub fn adopt_candidates(model: &str, candidates: &[Candidate], view: &HealthView) {
    with_pool(model, |p| p.adopt(view, candidates, now_ms()));
}

/// Chooses a key for one attempt, in this isolate.
pub fn choose(snap: &Snapshot, model: &str, exclude: &[String], policy: &PoolPolicy) -> Decision {
    let candidates = snap.candidates(model);
    with_pool(model, |p| p.choose(&candidates, exclude, now_ms(), policy))
}

/// Records an attempt's outcome in this isolate's copy at once.
/// Returns whether the key had failures before (a success the gate must hear about).
pub fn record(snap: &Snapshot, model: &str, report: &Report, policy: &PoolPolicy) -> bool {
    let candidates = snap.candidates(model);
    with_pool(model, |p| p.record(report, &candidates, now_ms(), policy))
}
