//! Scheduled maintenance (Cron Triggers). Each job is idempotent and bounded,
//! and a failing job is logged without stopping the others.

mod reseal;

use worker::{D1Database, Env, ScheduleContext, ScheduledEvent};

use crate::domain::accounts::oauth::REFRESH_AHEAD_MS;
use crate::domain::accounts::onboard::Attention;
use crate::domain::error::GatewayError;
use crate::edge::config::secret;
use crate::edge::objects::token::{self, TokenAnswer, TokenRequest};
use crate::edge::store::accounts as account_store;
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
    match refresh_tokens(&env, &db).await {
        Ok((fresh, refreshed)) => worker::console_log!(
            "[gemgate] cron tokens: {refreshed} refreshed ahead of expiry, {fresh} still fresh"
        ),
        Err(e) => worker::console_warn!("[gemgate] cron token refresh failed: {e}"),
    }
    if let Err(e) = account_store::prune_sign_ins(&db, now_ms().saturating_sub(DAY_MS)).await {
        worker::console_warn!("[gemgate] cron sign-in prune failed: {e}");
    }
    match retention(&db).await {
        Ok((log, rollups, minutes)) => worker::console_log!(
            "[gemgate] cron retention: {log} log row(s), {rollups} hourly and {minutes} minute rollup(s) deleted"
        ),
        Err(e) => worker::console_warn!("[gemgate] cron retention failed: {e}"),
    }
    match reseal::run(&env, &db).await {
        Ok(r) => worker::console_log!(
            "[gemgate] cron reseal: {} re-sealed, {} remaining, {} failed",
            r.resealed,
            r.remaining,
            r.failed
        ),
        Err(e) => worker::console_warn!("[gemgate] cron reseal failed: {e}"),
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

/// Refreshes the access token of every usable account that would expire
/// before the next run (plus `REFRESH_AHEAD_MS`), through its object, so a
/// request rarely waits for a refresh. A grant Google refuses puts the
/// account in needs-attention. Returns (still fresh, refreshed).
async fn refresh_tokens(env: &Env, db: &D1Database) -> Result<(usize, usize), GatewayError> {
    let accounts = account_store::decode_stored(
        &account_store::select_usable(db)
            .all()
            .await
            .map_err(crate::edge::internal("read accounts"))?,
    )?;
    if accounts.is_empty() {
        return Ok((0, 0));
    }
    let sealer = snapshot::sealer(env).await?;
    let token_url = crate::edge::config::isolate_config(env)
        .env
        .oauth_token_url
        .clone();
    let (mut fresh, mut refreshed) = (0, 0);
    for stored in accounts {
        let id = stored.id.clone();
        let account = match snapshot::open_account(sealer.as_deref(), stored).await {
            Ok(account) => account,
            Err(e) => {
                // As in the snapshot: one row that cannot be opened never stops the others.
                worker::console_error!("[gemgate] cron: cannot open account {id}: {e}");
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
            }
            Ok(TokenAnswer::Unavailable { message }) => worker::console_warn!(
                "[gemgate] cron: account {} token not refreshed now: {message}",
                account.id
            ),
            Err(e) => worker::console_warn!("[gemgate] cron: account {}: {e}", account.id),
        }
    }
    Ok((fresh, refreshed))
}

/// The cron's period (`*/5 * * * *`).
const CRON_INTERVAL_MS: u64 = 5 * 60_000;

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
