//! The failover loop's side of key health: asking a model's gate for the next
//! key, reporting outcomes to it, disabling an invalid key in D1, and
//! mirroring what the gate reports into D1 for the admin API. Only failures
//! are reported on the request's path; the rest runs in the background.

use crate::domain::error::GatewayError;
use crate::domain::gate::{GateRequest, GateResponse, Report, Roster};
use crate::domain::keypool::KeyHealthView;
use crate::edge::app::App;
use crate::edge::now_ms;
use crate::edge::objects::gate;
use crate::edge::snapshot::{self, Snapshot};
use crate::edge::store::keys as key_store;
use crate::edge::upstream::local;

/// Calls a gate with the snapshot's roster, resending the full list once if
/// the gate no longer has it (it restarted, or another snapshot pushed it out).
pub async fn call_gate(
    app: &App,
    snap: &Snapshot,
    gate_name: &str,
    op: impl Fn(Roster) -> GateRequest,
) -> Result<GateResponse, GatewayError> {
    let mut answer = gate::call(&app.env, gate_name, &op(snap.roster_for(gate_name))).await?;
    if answer == GateResponse::NeedRoster {
        answer = gate::call(&app.env, gate_name, &op(snap.full_roster(gate_name))).await?;
    }
    snap.mark_sent(gate_name);
    Ok(answer)
}

/// Reports the last failed attempt of a request that ran out of attempts. It
/// is awaited: it must be on record before the next request chooses.
pub async fn record_last(app: &App, snap: &Snapshot, gate_name: &str, report: Report) {
    let policy = snap.settings.policy();
    let answer = call_gate(app, snap, gate_name, |roster| GateRequest::Report {
        roster,
        report: report.clone(),
        policy: policy.clone(),
    })
    .await;
    match answer {
        Ok(GateResponse::Recorded { reported, view }) => {
            local::adopt(snap, gate_name, &view);
            mirror(app, gate_name, reported);
        }
        Ok(other) => worker::console_warn!("[gemgate] gate answered Report with {other:?}"),
        Err(e) => worker::console_warn!("[gemgate] gate report failed: {e}"),
    }
}

/// Reports a success in the background (the key had failures to clear).
pub fn report_in_background(app: &App, snap: &Snapshot, gate_name: &str, report: Report) {
    let env = app.env.clone();
    let gate_name = gate_name.to_owned();
    let candidates = snap.candidates(&gate_name);
    // Off the hot path: the full list is sent, so this never needs a retry.
    let op = GateRequest::Report {
        roster: snap.full_roster(&gate_name),
        report,
        policy: snap.settings.policy(),
    };
    let db = app.db().ok();
    app.background.spawn(async move {
        match gate::call(&env, &gate_name, &op).await {
            Ok(GateResponse::Recorded { reported, view }) => {
                local::adopt_candidates(&gate_name, &candidates, &view);
                if let Some(db) = db {
                    for view in &reported {
                        write_mirror(&db, &gate_name, view).await;
                    }
                }
            }
            Ok(_) => {}
            Err(e) => worker::console_warn!("[gemgate] gate report failed: {e}"),
        }
    });
}

/// Takes an invalid key out of this isolate at once and disables it in D1 in
/// the background, so every isolate drops it on its next snapshot.
pub fn disable_in_background(app: &App, key_id: &str, reason: &str) {
    snapshot::forget_key(key_id);
    let Ok(db) = app.db() else { return };
    let (id, reason) = (key_id.to_owned(), reason.to_owned());
    app.background.spawn(async move {
        if let Err(e) = key_store::disable(&db, &id, &reason, now_ms()).await {
            worker::console_warn!("[gemgate] could not disable key {id}: {e}");
        }
    });
}

/// Labels a key with the Google Cloud project its error named, unless it
/// has a label already (the operator's word wins).
pub fn label_project_in_background(app: &App, key_id: &str, project: &str) {
    let Ok(db) = app.db() else { return };
    let (id, project) = (key_id.to_owned(), project.to_owned());
    app.background.spawn(async move {
        match key_store::learn_project(&db, &id, &project, now_ms()).await {
            Ok(true) => {
                worker::console_log!(
                    "[gemgate] key {id} is in project {project} (from Google's error)"
                );
            }
            Ok(false) => {}
            Err(e) => worker::console_warn!("[gemgate] could not label key {id}: {e}"),
        }
    });
}

/// Mirrors the health of the keys a failure touched into D1, for the admin
/// API and the projects view.
pub fn mirror(app: &App, model: &str, reported: Vec<KeyHealthView>) {
    if reported.is_empty() {
        return;
    }
    let Ok(db) = app.db() else { return };
    let model = model.to_owned();
    app.background.spawn(async move {
        for view in &reported {
            write_mirror(&db, &model, view).await;
        }
    });
}

async fn write_mirror(db: &worker::D1Database, model: &str, view: &KeyHealthView) {
    let written = if crate::domain::accounts::record::is_account(&view.id) {
        crate::edge::store::accounts::record_health(db, model, view, now_ms()).await
    } else {
        key_store::record_health(db, model, view, now_ms()).await
    };
    if let Err(e) = written {
        worker::console_warn!("[gemgate] health mirror failed: {e}");
    }
}
