//! Scheduled maintenance (Cron Triggers). Each job is idempotent and bounded;
//! later parts add OAuth token refresh, key probes and usage rollups here.

use worker::{D1Database, Env, ScheduleContext, ScheduledEvent};

use super::keys;
use super::{js_int, now_ms};

pub async fn run(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let cron = event.cron();
    let Ok(db) = env.d1("DB") else {
        worker::console_error!("[gemgate] cron {cron}: no DB binding");
        return;
    };
    // A changed GEMINI_API_KEYS is picked up here even if no isolate restarts.
    if let Some(raw) = super::app::secret(&env, "GEMINI_API_KEYS") {
        let imported = async {
            let sealer = keys::sealer(&env).await?;
            let stored = keys::imported_env_digest(&db).await?;
            keys::import_env_if_changed(&db, &raw, sealer.as_deref(), stored.as_deref()).await
        };
        if let Err(e) = imported.await {
            worker::console_warn!("[gemgate] cron import failed: {e}");
        }
    }
    // Health mirror rows whose cooldown ended a day ago carry no information.
    let cutoff = now_ms().saturating_sub(24 * 3600 * 1000);
    let pruned = db
        .prepare("DELETE FROM key_model_health WHERE cooldown_until < ?1 AND updated_at < ?1")
        .bind(&[js_int(cutoff)]);
    match pruned {
        Ok(stmt) => {
            if let Err(e) = stmt.run().await {
                worker::console_warn!("[gemgate] cron prune failed: {e}");
            }
        }
        Err(e) => worker::console_warn!("[gemgate] cron prune bind failed: {e}"),
    }
    retention(&db).await;
    worker::console_log!("[gemgate] cron {cron} done");
}

/// Deletes request-log rows and hourly rollups past their configured retention.
async fn retention(db: &D1Database) {
    const DAY_MS: u64 = 24 * 3600 * 1000;
    let settings = match super::settings::load(db).await {
        Ok(settings) => settings,
        Err(e) => {
            worker::console_warn!("[gemgate] cron retention: settings: {e}");
            return;
        }
    };
    let now = now_ms();
    let jobs = [
        (
            "DELETE FROM request_log WHERE ts < ?1",
            now.saturating_sub(u64::from(settings.log_retention_days) * DAY_MS),
        ),
        (
            "DELETE FROM usage_hourly WHERE hour < ?1",
            now.saturating_sub(u64::from(settings.rollup_retention_days) * DAY_MS),
        ),
    ];
    for (sql, cutoff) in jobs {
        let deleted = match db.prepare(sql).bind(&[js_int(cutoff)]) {
            Ok(stmt) => stmt.run().await.map(|r| {
                r.meta()
                    .ok()
                    .flatten()
                    .and_then(|m| m.changes)
                    .unwrap_or_default()
            }),
            Err(e) => Err(e),
        };
        match deleted {
            Ok(n) => worker::console_log!(
                "[gemgate] cron retention: {n} row(s) older than {cutoff} deleted by `{sql}`"
            ),
            Err(e) => worker::console_warn!("[gemgate] cron retention failed: {e}"),
        }
    }
}
