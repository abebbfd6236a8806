//! Scheduled maintenance (Cron Triggers). Each job is idempotent and bounded;
//! later parts add OAuth token refresh, key probes and usage rollups here.

use worker::{Env, ScheduleContext, ScheduledEvent};

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
    worker::console_log!("[gemgate] cron {cron} done");
}
