//! Scheduled maintenance (Cron Triggers). Each job is idempotent and bounded,
//! and a failing job is logged without stopping the others.

use worker::{D1Database, Env, ScheduleContext, ScheduledEvent};

use crate::domain::error::GatewayError;
use crate::edge::config::secret;
use crate::edge::store::keys as key_store;
use crate::edge::store::{log as log_store, meta, settings as settings_store};
use crate::edge::{now_ms, snapshot};

const DAY_MS: u64 = 24 * 3600 * 1000;

pub async fn run(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let cron = event.cron();
    let Ok(db) = env.d1("DB") else {
        worker::console_error!("[gemgate] cron {cron}: no DB binding");
        return;
    };
    if let Err(e) = import_env_keys(&env, &db).await {
        worker::console_warn!("[gemgate] cron import failed: {e}");
    }
    // Health mirror rows whose cooldown ended a day ago carry no information.
    if let Err(e) = key_store::prune_health(&db, now_ms().saturating_sub(DAY_MS)).await {
        worker::console_warn!("[gemgate] cron prune failed: {e}");
    }
    match retention(&db).await {
        Ok((log, rollups, minutes)) => worker::console_log!(
            "[gemgate] cron retention: {log} log row(s), {rollups} hourly and {minutes} minute rollup(s) deleted"
        ),
        Err(e) => worker::console_warn!("[gemgate] cron retention failed: {e}"),
    }
    worker::console_log!("[gemgate] cron {cron} done");
}

/// A changed `GEMINI_API_KEYS` is picked up here even if no isolate restarts.
async fn import_env_keys(env: &Env, db: &D1Database) -> Result<(), GatewayError> {
    let Some(raw) = secret(env, "GEMINI_API_KEYS") else {
        return Ok(());
    };
    let sealer = snapshot::sealer(env).await?;
    let stored = meta::get(db, meta::ENV_KEYS_DIGEST).await?;
    let now = now_ms();
    if key_store::import_env_if_changed(db, &raw, sealer.as_deref(), stored.as_deref(), now).await?
    {
        snapshot::invalidate();
    }
    Ok(())
}

/// Deletes request-log rows and hourly rollups past their configured retention.
async fn retention(db: &D1Database) -> Result<(usize, usize, usize), GatewayError> {
    let settings = settings_store::load(db).await?;
    let now = now_ms();
    log_store::prune(
        db,
        now.saturating_sub(u64::from(settings.log_retention_days) * DAY_MS),
        now.saturating_sub(u64::from(settings.rollup_retention_days) * DAY_MS),
        now.saturating_sub(log_store::MINUTE_RETENTION_MS),
    )
    .await
}
