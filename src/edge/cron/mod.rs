//! Scheduled maintenance (Cron Triggers). Each job is idempotent and bounded,
//! and a failing job is logged without stopping the others.

mod reseal;

use std::future::Future;

use serde_json::{Map, Value};
use worker::{D1Database, Env, ScheduleContext, ScheduledEvent};

use crate::domain::accounts::oauth::REFRESH_AHEAD_MS;
use crate::domain::accounts::onboard::Attention;
use crate::domain::accounts::record::is_account;
use crate::domain::error::GatewayError;
use crate::domain::gate::Report;
use crate::domain::jobs::{self, JobRun, ProbeTarget};
use crate::domain::outcome::Outcome;
use crate::edge::app::App;
use crate::edge::config::secret;
use crate::edge::objects::token::{self, TokenAnswer, TokenRequest};
use crate::edge::store::accounts as account_store;
use crate::edge::store::keys as key_store;
use crate::edge::store::ops as ops_store;
use crate::edge::store::pins as pins_store;
use crate::edge::store::responses as response_store;
use crate::edge::store::{log as log_store, meta, settings as settings_store};
use crate::edge::{int, now_ms, snapshot, upstream};

const DAY_MS: u64 = 24 * 3600 * 1000;

pub async fn run(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let cron = event.cron();
    // The run's clock is its scheduled time (in production, when the trigger
    // fired; wrangler's `/__scheduled` test route fires it now).
    let now = int(event.schedule());
    let app = App::for_cron(env, format!("cron_{now}"));
    let Ok(db) = app.db() else {
        worker::console_error!("[gemgate] cron {cron}: no DB binding");
        return;
    };
    job(&db, "import", import_env_keys(&app, &db)).await;
    job(&db, "probe", probe(&app, &db, now)).await;
    job(&db, "archive", archive(&app, &db, now)).await;
    job(&db, "tokens", refresh_tokens(&app, &db)).await;
    job(&db, "retention", retention(&db, now)).await;
    job(&db, "reseal", reseal_secrets(&app, &db)).await;
    job(&db, "files", expire_pins(&db, now)).await;
    // What the jobs left in the background (health mirrors, disables).
    app.background.drain().await;
    worker::console_log!("[gemgate] cron {cron} done (scheduled at {now})");
}

/// Runs one job, logs it and puts the run on record; a failure is logged
/// and recorded, and never stops the jobs after it.
async fn job(
    db: &D1Database,
    name: &str,
    work: impl Future<Output = Result<Map<String, Value>, GatewayError>>,
) {
    let started = now_ms();
    let result = work.await;
    let duration_ms = now_ms().saturating_sub(started);
    let run = match result {
        Ok(counts) => {
            worker::console_log!(
                "[gemgate] cron job {name}: {} in {duration_ms} ms",
                Value::Object(counts.clone())
            );
            JobRun {
                job: name.to_owned(),
                started_at: started,
                duration_ms,
                ok: true,
                counts,
                error: None,
            }
        }
        Err(e) => {
            worker::console_warn!("[gemgate] cron job {name} failed: {e}");
            JobRun {
                job: name.to_owned(),
                started_at: started,
                duration_ms,
                ok: false,
                counts: Map::new(),
                error: Some(e.to_string()),
            }
        }
    };
    if let Err(e) = ops_store::record_run(db, &run).await {
        worker::console_warn!("[gemgate] cron job {name}: history not written: {e}");
    }
}

/// Probes what may have healed (see `domain::jobs::probe_plan`): a cooled
/// key or account that answers has its failures cleared at its gate; an
/// invalid key that answers is back in the pool.
async fn probe(app: &App, db: &D1Database, now: u64) -> Result<Map<String, Value>, GatewayError> {
    let (cooling, invalid) = ops_store::probe_candidates(db).await?;
    let plan = jobs::probe_plan(&cooling, &invalid, now, jobs::PROBES_PER_RUN);
    let due = cooling.iter().filter(|c| c.cooldown_until <= now).count() + invalid.len();
    let (mut probed, mut recovered, mut failing) = (0, 0, 0);
    if !plan.is_empty() {
        let snap = snapshot::snapshot(app).await?;
        // The keys the plan names, opened in one read.
        let key_ids: Vec<String> = plan
            .iter()
            .filter_map(|t| match t {
                ProbeTarget::Cooled { upstream_id, .. } if !is_account(upstream_id) => {
                    Some(upstream_id.clone())
                }
                ProbeTarget::Invalid { id } => Some(id.clone()),
                ProbeTarget::Cooled { .. } => None,
            })
            .collect();
        let keys = snapshot::keys_by_id(app, &key_ids).await?;
        let key = |id: &str| keys.iter().find(|k| k.id == id);
        for target in plan {
            let (id, ok) = match target {
                ProbeTarget::Cooled { upstream_id, model } if is_account(&upstream_id) => {
                    let Some(account) = snap.account(&upstream_id) else {
                        continue;
                    };
                    let (outcome, ..) = upstream::accounts::probe(app, account, &model).await;
                    let ok = outcome == Outcome::Ok;
                    let report = Report {
                        key_id: upstream_id.clone(),
                        outcome,
                        latency_ms: 0,
                    };
                    upstream::health::record_last(app, &snap, &model, report).await;
                    if ok {
                        ops_store::clear_health(db, &upstream_id, &model, now).await?;
                    }
                    (upstream_id, ok)
                }
                ProbeTarget::Cooled { upstream_id, model } => {
                    let Some(key) = key(&upstream_id) else {
                        continue;
                    };
                    let result = upstream::probe_on(app, &snap, key, &model, true).await;
                    if result.ok {
                        ops_store::clear_health(db, &upstream_id, &model, now).await?;
                    }
                    (upstream_id, result.ok)
                }
                ProbeTarget::Invalid { id } => {
                    let Some(key) = key(&id) else {
                        continue;
                    };
                    let result =
                        upstream::probe_on(app, &snap, key, upstream::PROBE_MODEL, false).await;
                    ops_store::mark_probed(db, &id, now).await?;
                    if result.ok {
                        ops_store::revive(db, std::slice::from_ref(&id), now).await?;
                        snapshot::invalidate();
                    }
                    (id, result.ok)
                }
            };
            probed += 1;
            if ok {
                recovered += 1;
                worker::console_log!("[gemgate] cron probe: {id} recovered");
            } else {
                failing += 1;
            }
        }
    }
    Ok(jobs::counts([
        ("due", due as u64),
        ("probed", probed),
        ("recovered", recovered),
        ("still_failing", failing),
    ]))
}

/// Re-seals, in a batch, secrets not sealed under the current `ENCRYPTION_KEY`.
async fn reseal_secrets(app: &App, db: &D1Database) -> Result<Map<String, Value>, GatewayError> {
    let r = reseal::run(&app.env, db).await?;
    worker::console_log!(
        "[gemgate] cron reseal: {} re-sealed, {} remaining, {} failed",
        r.resealed,
        r.remaining,
        r.failed
    );
    Ok(jobs::counts([
        ("resealed", r.resealed as u64),
        ("remaining", r.remaining),
        ("failed", r.failed as u64),
    ]))
}

/// Forgets the files and caches Google has deleted by now (each row carries Google's
/// own expiry), and the upload sessions no client finished.
async fn expire_pins(db: &D1Database, now: u64) -> Result<Map<String, Value>, GatewayError> {
    let (pins, uploads) = pins_store::prune(db, now).await?;
    worker::console_log!(
        "[gemgate] cron files: {pins} pin(s) and {uploads} upload session(s) expired"
    );
    Ok(jobs::counts([
        ("pins", pins as u64),
        ("upload_sessions", uploads as u64),
    ]))
}

/// Moves keys invalid for longer than `archive_invalid_after_days` to the archive.
async fn archive(app: &App, db: &D1Database, now: u64) -> Result<Map<String, Value>, GatewayError> {
    let settings = snapshot::snapshot(app).await?.settings.clone();
    let Some(cutoff) = jobs::archive_cutoff(now, settings.archive_invalid_after_days) else {
        return Ok(jobs::counts([("archived", 0)]));
    };
    let archived = ops_store::archive_invalid(db, cutoff, now).await?;
    Ok(jobs::counts([("archived", archived as u64)]))
}

/// A changed `GEMINI_API_KEYS` is picked up here even if no isolate restarts.
async fn import_env_keys(app: &App, db: &D1Database) -> Result<Map<String, Value>, GatewayError> {
    let Some(raw) = secret(&app.env, "GEMINI_API_KEYS") else {
        return Ok(jobs::counts([("changed", 0)]));
    };
    let sealer = snapshot::sealer(&app.env).await?;
    let stored = meta::get(db, meta::ENV_KEYS_DIGEST).await?;
    let changed =
        key_store::import_env_if_changed(db, &raw, sealer.as_deref(), stored.as_deref(), now_ms())
            .await?;
    if changed {
        snapshot::invalidate();
    }
    Ok(jobs::counts([("changed", u64::from(changed))]))
}

/// Refreshes the access token of every usable account that would expire
/// before the next run (plus `REFRESH_AHEAD_MS`), through its object, so a
/// request rarely waits for a refresh. A grant Google refuses puts the
/// account in needs-attention.
async fn refresh_tokens(app: &App, db: &D1Database) -> Result<Map<String, Value>, GatewayError> {
    let env = &app.env;
    let accounts = account_store::decode_stored(
        &account_store::select_usable(db)
            .all()
            .await
            .map_err(crate::edge::internal("read accounts"))?,
    )?;
    let (mut fresh, mut refreshed, mut refused, mut failed) = (0, 0, 0, 0);
    let sealer = if accounts.is_empty() {
        None
    } else {
        snapshot::sealer(env).await?
    };
    let token_url = app.config.env.oauth_token_url.clone();
    for stored in accounts {
        let id = stored.id.clone();
        let account = match snapshot::open_account(sealer.as_deref(), stored).await {
            Ok(account) => account,
            Err(e) => {
                // As in the snapshot: one row that cannot be opened never stops the others.
                worker::console_error!("[gemgate] cron: cannot open account {id}: {e}");
                failed += 1;
                continue;
            }
        };
        let ask = TokenRequest {
            refresh_token: account.refresh_token,
            client_id: account.client_id,
            client_secret: account.client_secret,
            token_url: token_url.clone(),
            stale: None,
            min_ttl_ms: REFRESH_AHEAD_MS + CRON_INTERVAL_MS,
        };
        match token::get(env, &account.id, &ask).await {
            Ok(TokenAnswer::Token {
                refreshed: true, ..
            }) => refreshed += 1,
            Ok(TokenAnswer::Token { .. }) => fresh += 1,
            Ok(TokenAnswer::Refused { message }) => {
                let attention = Attention::Revoked { message };
                account_store::set_attention(db, &account.id, &attention, now_ms()).await?;
                snapshot::invalidate();
                refused += 1;
            }
            Ok(TokenAnswer::Unavailable { message }) => {
                worker::console_warn!(
                    "[gemgate] cron: account {} token not refreshed now: {message}",
                    account.id
                );
                failed += 1;
            }
            Err(e) => {
                worker::console_warn!("[gemgate] cron: account {}: {e}", account.id);
                failed += 1;
            }
        }
    }
    worker::console_log!(
        "[gemgate] cron tokens: {refreshed} refreshed ahead of expiry, {fresh} still fresh"
    );
    Ok(jobs::counts([
        ("refreshed", refreshed),
        ("fresh", fresh),
        ("refused", refused),
        ("failed", failed),
    ]))
}

/// The cron's period (`*/5 * * * *`).
const CRON_INTERVAL_MS: u64 = 5 * 60_000;

/// Deletes what is past its retention: request-log rows and upstream
/// failures, hourly and minute rollups, health mirror rows whose cooldown
/// ended a day ago (they carry no information) and old sign-in states.
async fn retention(db: &D1Database, now: u64) -> Result<Map<String, Value>, GatewayError> {
    let settings = settings_store::load(db).await?;
    let (log, rollups, minutes) = log_store::prune(
        db,
        now.saturating_sub(u64::from(settings.log_retention_days) * DAY_MS),
        now.saturating_sub(u64::from(settings.rollup_retention_days) * DAY_MS),
        now.saturating_sub(log_store::MINUTE_RETENTION_MS),
    )
    .await?;
    let health = key_store::prune_health(db, now.saturating_sub(DAY_MS)).await?;
    account_store::prune_sign_ins(db, now.saturating_sub(DAY_MS)).await?;
    // Stored responses carry their own expiry (`responses_ttl_days` when stored).
    let responses = response_store::prune(db, now).await?;
    worker::console_log!(
        "[gemgate] cron retention: {log} log row(s), {rollups} hourly and {minutes} minute rollup(s) deleted"
    );
    Ok(jobs::counts([
        ("log_rows", log as u64),
        ("rollups", rollups as u64),
        ("minute_rollups", minutes as u64),
        ("health_rows", health as u64),
        ("responses", responses as u64),
    ]))
}
