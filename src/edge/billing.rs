//! Per-request accounting: admission (a reservation in the user's `UserLedger`, run in
//! parallel with the first `ModelGate` call), settlement with the real usage, the request log
//! and hourly rollups (one D1 batch, off the hot path), and the self-service usage endpoints.
//! The arithmetic is `domain::quota`; this file moves its inputs and outputs.

use std::rc::Rc;

use std::cell::RefCell;
use std::time::Duration;

use futures::channel::oneshot;
use futures::future::{Either, select};
use serde_json::json;
use worker::{Delay, Env, Response, Url};

use super::app::{App, internal};
use super::openai::runtime;
use super::users::{self, UserRecord};
use super::{js_int, keys, ledger, now_ms, render};
use crate::domain::config::Settings;
use crate::domain::error::GatewayError;
use crate::domain::quota::{
    self, ChargingMode, Denial, Estimate, LedgerRequest, LedgerResponse, Price, RateView, Usage,
};
use crate::domain::usage::{LogRow, UsageScanner, aggregate, from_metadata};

/// Who is calling: a static `ACCESS_TOKENS` token (unlimited) or a user key.
#[derive(Debug, Clone)]
pub enum Caller {
    Static,
    User(Rc<UserRecord>),
}

/// An admitted request, to be settled exactly once.
pub struct Ticket {
    env: Env,
    user: Option<Rc<UserRecord>>,
    lease_id: Option<String>,
    mode: ChargingMode,
    price: Price,
    model: String,
    stream: bool,
    started_ms: u64,
}

/// How a request ended, for its settlement and log row.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub usage: Usage,
    /// The upstream answered with success (even if a stream was later cut).
    pub served: bool,
    pub status: u16,
    pub key_id: String,
}

/// Admits one request of `caller` for `model`. A static token is always admitted (and
/// logged); a user key reserves its worst case in its ledger first, so `estimate` runs only
/// for user keys. A refusal is logged, and its rate numbers still reach the response headers.
pub async fn admit(
    app: &App,
    settings: &Settings,
    model: &str,
    estimate: impl FnOnce() -> Estimate,
    stream: bool,
) -> Result<Ticket, GatewayError> {
    let caller = app.caller.borrow().clone();
    let price = quota::price_for(model, &settings.model_costs);
    let mut ticket = Ticket {
        env: app.env.clone(),
        user: None,
        lease_id: None,
        mode: settings.charging_mode,
        price,
        model: model.to_owned(),
        stream,
        started_ms: now_ms(),
    };
    let Some(Caller::User(user)) = caller else {
        return Ok(ticket);
    };
    let reservation = quota::reservation(settings.charging_mode, price, estimate(), 1);
    let lease_id = lease_id()?;
    let op = LedgerRequest::Admit {
        limits: user.limits(),
        used_baseline: user.credits_used,
        key_hash: user.key_hash.clone(),
        model: model.to_owned(),
        reservation,
        lease_id: lease_id.clone(),
        // A lease outlives the longest request; one never settled is released after this.
        lease_ttl_ms: settings.upstream_timeout_ms.saturating_mul(2) + 60_000,
        day_zone: settings.quota_timezone.clone(),
    };
    match ledger::call(&app.env, &user.id, &op).await? {
        LedgerResponse::Admitted { limits, .. } => {
            *app.rate.borrow_mut() = Some(limits);
            ticket.user = Some(user);
            ticket.lease_id = Some(lease_id);
            Ok(ticket)
        }
        LedgerResponse::Denied {
            denial,
            retry_after_ms,
            limits,
        } => {
            *app.rate.borrow_mut() = Some(limits);
            let err = denied(denial, retry_after_ms);
            ticket.user = Some(user);
            let status = err.status();
            app.ctx.wait_until(ticket.finish(Outcome {
                status,
                ..Outcome::default()
            }));
            Err(err)
        }
        other => Err(GatewayError::Internal(format!(
            "ledger answered Admit with {other:?}"
        ))),
    }
}

fn lease_id() -> Result<String, GatewayError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes)
        .map_err(|e| GatewayError::Internal(format!("random lease id: {e}")))?;
    Ok(crate::domain::sha256::to_hex(&bytes))
}

/// A ledger refusal in the surface-neutral error the renderer shapes.
fn denied(denial: Denial, retry_after_ms: Option<u64>) -> GatewayError {
    let (status, code, message) = match denial {
        Denial::InvalidKey => (401, "invalid_api_key", "Invalid API key."),
        Denial::Disabled => (403, "key_disabled", "This API key is disabled."),
        Denial::Expired => (403, "key_expired", "This API key has expired."),
        Denial::ModelNotAllowed => (
            403,
            "model_not_allowed",
            "This API key may not use this model.",
        ),
        Denial::InsufficientQuota => (
            403,
            "insufficient_quota",
            "You exceeded your current quota: this key's credit cannot cover the request.",
        ),
        Denial::RequestsPerMinute => (
            429,
            "rate_limit_exceeded",
            "Rate limit reached for requests per minute.",
        ),
        Denial::RequestsPerDay => (
            429,
            "rate_limit_exceeded",
            "Rate limit reached for requests per day.",
        ),
        Denial::TokensPerMinute => (
            429,
            "rate_limit_exceeded",
            "Rate limit reached for tokens per minute.",
        ),
        Denial::Concurrency => (
            429,
            "rate_limit_exceeded",
            "Too many concurrent requests for this key.",
        ),
    };
    GatewayError::Denied {
        status,
        code,
        message: message.to_owned(),
        retry_after_secs: retry_after_ms.map(|ms| ms.div_ceil(1000).max(1)),
    }
}

impl Ticket {
    /// Settles in the background: the charge in the ledger, then the log row, the rollup and
    /// the user's settled total in one D1 batch.
    pub fn settle(self, app: &App, outcome: Outcome) {
        app.ctx.wait_until(self.finish(outcome));
    }

    /// Settles once `meter` is done (the stream ended or broke), or once the client went away.
    ///
    /// A client that disconnects can take the request's pending I/O with it: the stream then
    /// waits forever on an upstream read and is never dropped. So this task also settles, with
    /// the last usage the meter saw, when the request's signal reports the disconnect, or when
    /// the meter has seen nothing for longer than the upstream idle timeout (`idle_ms`), which
    /// a live stream never does: its idle guard ends it first.
    pub fn settle_when_done(self, app: &App, key_id: String, idle_ms: u64) -> Meter {
        let (tx, rx) = oneshot::channel::<Usage>();
        let seen = Rc::new(RefCell::new(MeterState {
            usage: Usage::default(),
            last_activity_ms: now_ms(),
        }));
        let state = Rc::clone(&seen);
        let gone = app.client_signal.clone().map(|s| Box::pin(client_gone(s)));
        app.ctx.wait_until(async move {
            let last_seen = || state.borrow().usage;
            let stalled = async {
                // Bounded: each tick waits at most the idle limit, and the loop ends once the
                // meter has been quiet for that long.
                let limit = idle_ms + STALL_GRACE_MS;
                loop {
                    let quiet = now_ms().saturating_sub(state.borrow().last_activity_ms);
                    if quiet >= limit {
                        return;
                    }
                    Delay::from(Duration::from_millis((limit - quiet).min(STALL_TICK_MS))).await;
                }
            };
            let ended = select(rx, Box::pin(stalled));
            let usage = match gone {
                Some(gone) => match select(ended, gone).await {
                    Either::Left((Either::Left((done, _)), _)) => {
                        done.unwrap_or_else(|_| last_seen())
                    }
                    Either::Left((Either::Right(((), _)), _)) | Either::Right(((), _)) => {
                        last_seen()
                    }
                },
                None => match ended.await {
                    Either::Left((done, _)) => done.unwrap_or_else(|_| last_seen()),
                    Either::Right(((), _)) => last_seen(),
                },
            };
            self.finish(Outcome {
                usage,
                served: true,
                status: 200,
                key_id,
            })
            .await;
        });
        Meter {
            scanner: UsageScanner::new(),
            seen,
            done: Some(tx),
        }
    }

    async fn finish(self, outcome: Outcome) {
        let credits = quota::charge(self.mode, self.price, outcome.usage, outcome.served, 1);
        let user_id = self.user.as_ref().map(|u| u.id.clone());
        let mut charged = 0;
        // A static token is not charged; its row still records what the request used.
        if let (Some(user), Some(lease_id)) = (&self.user, &self.lease_id) {
            let tokens = outcome.usage.prompt_tokens
                + outcome.usage.completion_tokens
                + outcome.usage.reasoning_tokens;
            let op = LedgerRequest::Settle {
                lease_id: lease_id.clone(),
                credits,
                tokens,
            };
            match ledger::call(&self.env, &user.id, &op).await {
                Ok(LedgerResponse::Settled { charged: c, .. }) => charged = c,
                Ok(other) => worker::console_warn!("[gemgate] ledger settle answered {other:?}"),
                Err(e) => worker::console_warn!("[gemgate] ledger settle failed: {e}"),
            }
            worker::console_log!(
                "[gemgate] settled user={} lease={lease_id} charged={charged}",
                user.id
            );
        }
        let row = LogRow {
            ts: now_ms(),
            user_id,
            model: self.model.clone(),
            key_id: outcome.key_id,
            status: outcome.status,
            usage: outcome.usage,
            credits: charged,
            latency_ms: now_ms().saturating_sub(self.started_ms),
            stream: self.stream,
        };
        log_row(&self.env, row).await;
    }
}

// ---------------------------------------------------------------------------------------------
// the request log, batched per isolate
// ---------------------------------------------------------------------------------------------

/// Rows wait this long for company before one D1 batch writes them all.
const FLUSH_AFTER_MS: u64 = 500;
/// A flush never carries more than this many rows (D1 batches stay small).
const FLUSH_MAX_ROWS: usize = 50;

#[derive(Default)]
struct PendingLog {
    rows: Vec<LogRow>,
    /// A flush is waiting; later rows ride along with it.
    scheduled: bool,
}

thread_local! {
    static PENDING: RefCell<PendingLog> = RefCell::new(PendingLog::default());
}

/// Queues a log row. The first row of a quiet isolate waits [`FLUSH_AFTER_MS`] (inside the
/// `waitUntil` it already runs in) and then writes every row queued meanwhile in one batch;
/// a full queue is written at once. Rows of an isolate evicted inside that window are lost,
/// which costs the log a row but never the ledger a credit: balances live in `UserLedger`.
async fn log_row(env: &Env, row: LogRow) {
    let (flush_now, wait) = PENDING.with(|p| {
        let mut p = p.borrow_mut();
        p.rows.push(row);
        if p.rows.len() >= FLUSH_MAX_ROWS {
            (true, false)
        } else if p.scheduled {
            (false, false)
        } else {
            p.scheduled = true;
            (false, true)
        }
    });
    if wait {
        Delay::from(Duration::from_millis(FLUSH_AFTER_MS)).await;
    }
    if !(flush_now || wait) {
        return;
    }
    let rows = PENDING.with(|p| {
        let mut p = p.borrow_mut();
        if wait {
            p.scheduled = false;
        }
        std::mem::take(&mut p.rows)
    });
    if rows.is_empty() {
        return;
    }
    match write_rows(env, &rows).await {
        Ok(()) => worker::console_log!("[gemgate] usage log: wrote {} row(s)", rows.len()),
        Err(e) => worker::console_warn!(
            "[gemgate] usage log: {} row(s) not written: {e}",
            rows.len()
        ),
    }
}

/// One D1 batch: the log rows, each touched rollup once, each user's settled total once.
async fn write_rows(env: &Env, rows: &[LogRow]) -> Result<(), GatewayError> {
    let db = env
        .d1("DB")
        .map_err(|e| GatewayError::Internal(format!("D1 binding DB: {e}")))?;
    let (rollups, credits) = aggregate(rows);
    let mut statements = Vec::with_capacity(rows.len() + rollups.len() + credits.len());
    for row in rows {
        statements.push(
            db.prepare(
                "INSERT INTO request_log (ts, user_id, model, key_id, status, prompt_tokens, \
                 completion_tokens, reasoning_tokens, credits, latency_ms, stream) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )
            .bind(&[
                js_int(row.ts),
                row.user_id
                    .as_deref()
                    .map_or(worker::wasm_bindgen::JsValue::NULL, Into::into),
                row.model.as_str().into(),
                row.key_id.as_str().into(),
                js_int(u64::from(row.status)),
                js_int(row.usage.prompt_tokens),
                js_int(row.usage.completion_tokens),
                js_int(row.usage.reasoning_tokens),
                js_int(row.credits),
                js_int(row.latency_ms),
                js_int(u64::from(row.stream)),
            ])
            .map_err(internal("bind log"))?,
        );
    }
    for r in &rollups {
        statements.push(
            db.prepare(
                "INSERT INTO usage_hourly (hour, user_id, model, key_id, requests, prompt_tokens, \
                 completion_tokens, reasoning_tokens, credits) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                 ON CONFLICT (hour, user_id, model, key_id) DO UPDATE SET \
                 requests = requests + ?5, prompt_tokens = prompt_tokens + ?6, \
                 completion_tokens = completion_tokens + ?7, \
                 reasoning_tokens = reasoning_tokens + ?8, credits = credits + ?9",
            )
            .bind(&[
                js_int(r.hour),
                r.user_id.as_str().into(),
                r.model.as_str().into(),
                r.key_id.as_str().into(),
                js_int(r.requests),
                js_int(r.usage.prompt_tokens),
                js_int(r.usage.completion_tokens),
                js_int(r.usage.reasoning_tokens),
                js_int(r.credits),
            ])
            .map_err(internal("bind rollup"))?,
        );
    }
    for (user, total) in &credits {
        statements.push(
            db.prepare("UPDATE users SET credits_used = credits_used + ?1 WHERE id = ?2")
                .bind(&[js_int(*total), user.as_str().into()])
                .map_err(internal("bind credits"))?,
        );
    }
    db.batch(statements).await.map_err(internal("write log"))?;
    Ok(())
}

/// Watches a relayed or translated stream for its usage; when dropped (the stream ended, broke
/// or the client disconnected) it hands the last usage seen to the settlement.
pub struct Meter {
    scanner: UsageScanner,
    /// Shared with the settlement, for when the stream is never dropped.
    seen: Rc<RefCell<MeterState>>,
    done: Option<oneshot::Sender<Usage>>,
}

/// What the settlement can read while the stream is still alive.
struct MeterState {
    usage: Usage,
    last_activity_ms: u64,
}

/// How often a stream's settlement looks for a stalled meter, and the slack it allows.
const STALL_TICK_MS: u64 = 5_000;
const STALL_GRACE_MS: u64 = 2_000;

impl Meter {
    pub fn observe(&mut self, bytes: &[u8]) {
        self.scanner.push(bytes);
        let mut state = self.seen.borrow_mut();
        state.last_activity_ms = now_ms();
        if let Some(meta) = self.scanner.last() {
            state.usage = from_metadata(meta);
        }
    }
}

/// Resolves when the client disconnects (the request's signal aborts).
async fn client_gone(signal: worker::web_sys::AbortSignal) {
    use worker::wasm_bindgen::{JsCast, JsValue, closure::Closure};
    let promise = worker::js_sys::Promise::new(&mut |resolve, _reject| {
        if signal.aborted() {
            let _ = resolve.call0(&JsValue::NULL);
            return;
        }
        let on_abort = Closure::once_into_js(move || {
            let _ = resolve.call0(&JsValue::NULL);
        });
        signal.set_onabort(Some(on_abort.unchecked_ref()));
    });
    let _ = worker::wasm_bindgen_futures::JsFuture::from(promise).await;
}

impl Drop for Meter {
    fn drop(&mut self) {
        let usage = self.scanner.last().map(from_metadata).unwrap_or_default();
        if let Some(done) = self.done.take() {
            let _ = done.send(usage);
        }
    }
}

/// The usage in a complete response body, for settling a non-streamed answer.
pub fn usage_of_body(bytes: &[u8]) -> Usage {
    let mut scanner = UsageScanner::new();
    scanner.push(bytes);
    scanner.last().map(from_metadata).unwrap_or_default()
}

/// Adds `x-ratelimit-*` headers (`OpenAI`'s names) for the limits a user key has.
pub fn apply_rate_headers(resp: &mut Response, rate: &RateView) {
    let headers = resp.headers_mut();
    let set = |name: &str, value: String| {
        let _ = headers.set(name, &value);
    };
    if let Some(limit) = rate.limit_requests {
        set("x-ratelimit-limit-requests", limit.to_string());
    }
    if let Some(remaining) = rate.remaining_requests {
        set("x-ratelimit-remaining-requests", remaining.to_string());
    }
    if let Some(reset) = rate.reset_requests_ms {
        set("x-ratelimit-reset-requests", quota::format_reset(reset));
    }
    if let Some(limit) = rate.limit_tokens {
        set("x-ratelimit-limit-tokens", limit.to_string());
    }
    if let Some(remaining) = rate.remaining_tokens {
        set("x-ratelimit-remaining-tokens", remaining.to_string());
    }
    if let Some(reset) = rate.reset_tokens_ms {
        set("x-ratelimit-reset-tokens", quota::format_reset(reset));
    }
}

// ---------------------------------------------------------------------------------------------
// self-service
// ---------------------------------------------------------------------------------------------

/// A large number standing for "unlimited" where a client expects one.
const UNLIMITED: u64 = 100_000_000;

/// The caller's exact balance from its ledger (`None` for static tokens).
async fn status(
    app: &App,
    settings: &Settings,
) -> Result<Option<(Rc<UserRecord>, LedgerResponse)>, GatewayError> {
    let caller = app.caller.borrow().clone();
    let Some(Caller::User(user)) = caller else {
        return Ok(None);
    };
    // Admission checks the key; a status read refuses the same keys the same way.
    let answer = ledger::call(
        &app.env,
        &user.id,
        &LedgerRequest::Status {
            day_zone: settings.quota_timezone.clone(),
        },
    )
    .await?;
    Ok(Some((user, answer)))
}

/// `GET /v1/usage`.
pub async fn usage(app: &App) -> Result<Response, GatewayError> {
    let snap = keys::snapshot(app).await?;
    let Some((user, answer)) = status(app, &snap.settings).await? else {
        return render::json(
            200,
            &json!({
                "object": "usage", "user": null, "quota": null, "used": 0, "reserved": 0,
                "remaining": null, "limits": {}, "totals": {}, "models": [],
            }),
        )
        .map_err(runtime);
    };
    let LedgerResponse::Status {
        used,
        reserved,
        quota,
        limits,
        ..
    } = answer
    else {
        return Err(GatewayError::Internal(
            "ledger answered Status wrongly".into(),
        ));
    };
    *app.rate.borrow_mut() = Some(limits);
    let models = users::usage_by_model(&app.db()?, &user.id).await?;
    let mut totals = users::UsageTotals::default();
    for (_, t) in &models {
        totals.requests += t.requests;
        totals.prompt_tokens += t.prompt_tokens;
        totals.completion_tokens += t.completion_tokens;
        totals.reasoning_tokens += t.reasoning_tokens;
        totals.credits += t.credits;
    }
    let models: Vec<_> = models
        .into_iter()
        .map(|(model, t)| {
            json!({
                "model": model, "requests": t.requests, "prompt_tokens": t.prompt_tokens,
                "completion_tokens": t.completion_tokens, "reasoning_tokens": t.reasoning_tokens,
                "credits": t.credits,
            })
        })
        .collect();
    render::json(
        200,
        &json!({
            "object": "usage",
            "user": { "id": user.id, "name": user.name },
            "quota": quota,
            "used": used,
            "reserved": reserved,
            "remaining": quota.map(|q| q.saturating_sub(used + reserved)),
            "expires_at": user.expires_at,
            "limits": {
                "rpm": user.rpm, "rpd": user.rpd, "tpm": user.tpm,
                "max_concurrency": user.max_concurrency,
            },
            "totals": totals,
            "models": models,
        }),
    )
    .map_err(runtime)
}

/// `GET /v1/dashboard/billing/subscription`, as chat apps (`NextChat`, `LobeChat`) poll it for a
/// balance. Credits are reported as the currency unit.
pub async fn subscription(app: &App) -> Result<Response, GatewayError> {
    let snap = keys::snapshot(app).await?;
    let (quota, access_until) = match status(app, &snap.settings).await? {
        Some((user, LedgerResponse::Status { quota, .. })) => (
            quota.unwrap_or(UNLIMITED),
            user.expires_at.map_or(0, |ms| ms / 1000),
        ),
        _ => (UNLIMITED, 0),
    };
    render::json(
        200,
        &json!({
            "object": "billing_subscription",
            "has_payment_method": true,
            "hard_limit_usd": quota,
            "soft_limit_usd": quota,
            "system_hard_limit_usd": quota,
            "access_until": access_until,
        }),
    )
    .map_err(runtime)
}

/// `GET /v1/dashboard/billing/usage?start_date=YYYY-MM-DD&end_date=YYYY-MM-DD`:
/// `total_usage` in hundredths of a credit, as the legacy endpoint reports cents.
pub async fn billing_usage(app: &App, url: &Url) -> Result<Response, GatewayError> {
    #[derive(serde::Deserialize)]
    struct Row {
        credits: Option<f64>,
    }
    let caller = app.caller.borrow().clone();
    let Some(Caller::User(user)) = caller else {
        return render::json(200, &json!({ "object": "list", "total_usage": 0 })).map_err(runtime);
    };
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let bound = |name: &str, default: u64| -> Result<u64, GatewayError> {
        match param(name) {
            None => Ok(default),
            Some(date) => crate::domain::clock::parse_date_ms(&date).ok_or_else(|| {
                GatewayError::invalid_param(format!("{name} must be YYYY-MM-DD"), name)
            }),
        }
    };
    let start = bound("start_date", 0)?;
    let end = bound("end_date", now_ms())?;
    let row: Option<Row> = app
        .db()?
        .prepare(
            "SELECT SUM(credits) AS credits FROM usage_hourly \
             WHERE user_id = ?1 AND hour >= ?2 AND hour < ?3",
        )
        .bind(&[user.id.as_str().into(), js_int(start), js_int(end)])
        .map_err(internal("bind billing usage"))?
        .first(None)
        .await
        .map_err(internal("billing usage"))?;
    let credits = row.and_then(|r| r.credits).unwrap_or(0.0);
    render::json(
        200,
        &json!({ "object": "list", "total_usage": credits * 100.0 }),
    )
    .map_err(runtime)
}

/// The caller for a client token: a static token, or a user key found by its hash. Keys the
/// record already marks unusable are refused here; the ledger has the final word at admission.
pub async fn authenticate(app: &App, token: &str) -> Result<Caller, GatewayError> {
    if crate::domain::auth::matches_any(token, &app.config.access_tokens) {
        return Ok(Caller::Static);
    }
    match users::by_token(app, token).await? {
        Some(user) => {
            if !user.enabled {
                return Err(denied(Denial::Disabled, None));
            }
            if user.expires_at.is_some_and(|at| at <= now_ms()) {
                return Err(denied(Denial::Expired, None));
            }
            Ok(Caller::User(user))
        }
        None => Err(GatewayError::Unauthorized("Invalid API key.".into())),
    }
}
