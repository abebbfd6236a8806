//! Admission and settlement. An admitted request holds a [`Ticket`]; settling
//! it charges the ledger with what the request used and writes its log row.
//! A ticket that is dropped unsettled settles itself as a refund, so no early
//! return can leave a user's reservation and concurrency slot held.

use std::cell::RefCell;
use std::rc::Rc;

use std::time::Duration;

use worker::{Delay, Env};

use futures::channel::oneshot;
use futures::future::{Either, join, select};

use crate::domain::config::Settings;
use crate::domain::error::GatewayError;
use crate::domain::limits::{LEASE_SLACK_MS, limits_for};
use crate::domain::quota::{
    self, ChargingMode, Estimate, LedgerRequest, LedgerResponse, Price, Usage,
};
use crate::domain::usage::LogRow;
use crate::domain::users::{UserRecord, denial_error};
use crate::edge::access::Caller;
use crate::edge::app::{App, Background};
use crate::edge::billing::log as request_log;
use crate::edge::billing::meter::{Meter, Metering, client_gone};
use crate::edge::crypto::random_hex;
use crate::edge::now_ms;
use crate::edge::objects::{gate, ledger};
use crate::edge::snapshot::Snapshot;
use crate::edge::upstream::{self, UpstreamError, UpstreamOk, UpstreamRequest};

/// How a request ended, for its settlement and log row.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub usage: Usage,
    /// The upstream answered with success (even if a stream was later cut).
    pub served: bool,
    pub status: u16,
    pub key_id: String,
    /// What the client was told, when the request failed.
    pub error: Option<String>,
}

impl Outcome {
    /// A request that ended with `err` before anything was served.
    pub fn failed(err: &GatewayError) -> Self {
        Self {
            status: err.status(),
            error: Some(err.client_message()),
            ..Self::default()
        }
    }

    /// An answer the upstream served, with the usage it reported.
    pub fn served(usage: Usage, key_id: String) -> Self {
        Self {
            usage,
            served: true,
            status: 200,
            key_id,
            error: None,
        }
    }
}

/// What a ticket dropped without a recorded failure is logged with: the
/// handler left by a path that forgot to say why.
fn dropped() -> GatewayError {
    GatewayError::Internal("the request ended without settling".into())
}

/// An admitted request, to be settled exactly once.
pub struct Ticket {
    env: Env,
    background: Background,
    /// `None` once settled.
    open: Option<Admission>,
    /// What a drop settles with: the last failure `fail` recorded.
    failure: Option<GatewayError>,
}

/// What a settlement needs to know about its admission.
struct Admission {
    user: Option<Rc<UserRecord>>,
    lease_id: Option<String>,
    /// A slot of a concurrency-limited model, given back at settlement.
    slot: Option<gate::Lease>,
    /// The model counts tokens per key (`key_tpm`): settlement tells its gate.
    counts_tokens: bool,
    mode: ChargingMode,
    price: Price,
    /// What the model's cost is multiplied by (2 for anti-truncation requests).
    multiplier: u64,
    model: String,
    stream: bool,
    started_ms: u64,
    request_id: String,
    surface: &'static str,
}

impl Ticket {
    /// Settles in the background: the charge in the ledger, then the log row, the rollup and
    /// the user's settled total in one D1 batch.
    pub fn settle(mut self, outcome: Outcome) {
        let Some(admission) = self.open.take() else {
            return;
        };
        if admission.is_plain() {
            // Nothing to charge or give back: the row is queued now, and only
            // the flush it may start runs in the background.
            if let Some(flush) = request_log::enqueue(&self.env, admission.row(outcome, 0, None)) {
                self.background.spawn(flush);
            }
            return;
        }
        self.background
            .spawn(admission.finish(self.env.clone(), outcome));
    }

    /// Records that the request is failing with `err` and hands it back: when
    /// the error leaves the handler, the dropped ticket refunds the
    /// reservation and logs the request with this status.
    pub fn fail(&mut self, err: GatewayError) -> GatewayError {
        self.failure = Some(err.clone());
        err
    }

    /// Gives the ticket the slot its request holds, to give back when it settles.
    fn hold(&mut self, slot: gate::Lease) {
        if let Some(admission) = self.open.as_mut() {
            admission.slot = Some(slot);
        }
    }

    /// [`Ticket::fail`] for a result: `ticket.check(answer.json())?`.
    pub fn check<T>(&mut self, result: Result<T, GatewayError>) -> Result<T, GatewayError> {
        result.map_err(|e| self.fail(e))
    }

    /// Settles once the returned meter is done (the stream ended, broke, or the client went
    /// away); see [`Meter`]. `idle_ms` is the upstream's idle limit.
    pub fn settle_when_done(
        mut self,
        app: &App,
        key_id: String,
        idle_ms: u64,
        metering: Metering,
    ) -> Meter {
        let (meter, done) = Meter::new(metering, app.client_signal.clone(), idle_ms);
        if let Some(admission) = self.open.take() {
            let env = self.env.clone();
            self.background.spawn(async move {
                // A stream holding a slot renews it while it flows; the meter
                // always ends (end, break, client gone, or stall), and with it
                // the renewals.
                let usage = match admission.slot.clone() {
                    Some(slot) => {
                        let renew = async { gate::keep_alive(&env, &slot).await };
                        match select(Box::pin(done), Box::pin(renew)).await {
                            Either::Left((usage, _)) => usage,
                            Either::Right(((), _)) => Usage::default(),
                        }
                    }
                    None => done.await,
                };
                admission.finish(env, Outcome::served(usage, key_id)).await;
            });
        }
        meter
    }
}

/// A ticket whose outcome the response body will tell ([`Ticket::settle_later`]).
pub struct Pending {
    told: Option<oneshot::Sender<Outcome>>,
}

impl Pending {
    /// Settles the ticket with `outcome` (in the background).
    pub fn settle(mut self, outcome: Outcome) {
        if let Some(told) = self.told.take() {
            // The receiver is gone only when the client left first; that settled already.
            let _ = told.send(outcome);
        }
    }
}

/// What a request whose client left before its outcome was known is logged with.
fn client_left() -> Outcome {
    Outcome {
        status: 499,
        error: Some("The client disconnected before the answer.".to_owned()),
        ..Outcome::default()
    }
}

impl Ticket {
    /// Settles once the returned [`Pending`] is told the outcome, by work that learns
    /// it after the response started (fake streaming's upstream call). Untold (the
    /// `Pending` dropped), the ticket settles as failed: nothing was served. When the
    /// client disconnects first, the call still gets `grace_ms` to finish (the runtime
    /// may cancel it with the client, and then it never tells). A slot the request
    /// holds is renewed until then.
    pub fn settle_later(mut self, app: &App, grace_ms: u64) -> Pending {
        let (told, outcome) = oneshot::channel::<Outcome>();
        let gone = app.client_signal.clone();
        if let Some(admission) = self.open.take() {
            let env = self.env.clone();
            self.background.spawn(async move {
                let told = async {
                    let Some(signal) = gone else {
                        return outcome.await.unwrap_or_else(|_| client_left());
                    };
                    let mut outcome = outcome;
                    match select(&mut outcome, Box::pin(client_gone(signal))).await {
                        Either::Left((result, _)) => {
                            return result.unwrap_or_else(|_| client_left());
                        }
                        Either::Right(((), _)) => {}
                    }
                    let grace = Delay::from(Duration::from_millis(grace_ms));
                    match select(outcome, grace).await {
                        Either::Left((Ok(outcome), _)) => outcome,
                        Either::Left((Err(_), _)) | Either::Right(((), _)) => client_left(),
                    }
                };
                let outcome = match admission.slot.clone() {
                    Some(slot) => {
                        let renew = async { gate::keep_alive(&env, &slot).await };
                        match select(Box::pin(told), Box::pin(renew)).await {
                            Either::Left((outcome, _)) => outcome,
                            Either::Right(((), _)) => client_left(),
                        }
                    }
                    None => told.await,
                };
                admission.finish(env, outcome).await;
            });
        }
        Pending { told: Some(told) }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(admission) = self.open.take() {
            let failure = self.failure.take().unwrap_or_else(|| {
                worker::console_warn!(
                    "[gemgate] a ticket for {} was dropped unsettled; refunding it",
                    admission.model
                );
                dropped()
            });
            self.background
                .spawn(admission.finish(self.env.clone(), Outcome::failed(&failure)));
        }
    }
}

/// Admits one request of `caller` for `model`. A static token is always admitted (and
/// logged); a user key reserves its worst case in its ledger first, so `estimate` runs only
/// for user keys. A refusal is logged, and its rate numbers still reach the response headers.
pub async fn admit(
    app: &App,
    caller: &Caller,
    settings: &Settings,
    model: &str,
    estimate: impl FnOnce() -> Estimate,
    stream: bool,
) -> Result<Ticket, GatewayError> {
    admit_scaled(app, caller, settings, model, estimate, stream, 1).await
}

/// [`admit`] for a request that costs `multiplier` times its model's cost (reserved and
/// charged): anti-truncation requests pay 2.
pub async fn admit_scaled(
    app: &App,
    caller: &Caller,
    settings: &Settings,
    model: &str,
    estimate: impl FnOnce() -> Estimate,
    stream: bool,
    multiplier: u64,
) -> Result<Ticket, GatewayError> {
    let price = quota::price_for(model, &settings.model_costs);
    let mut admission = Admission {
        user: None,
        lease_id: None,
        slot: None,
        counts_tokens: limits_for(&settings.model_limits, model)
            .budget
            .is_some_and(|b| b.tpm.is_some()),
        mode: settings.charging_mode,
        price,
        multiplier,
        model: model.to_owned(),
        stream,
        started_ms: now_ms(),
        request_id: app.request_id.clone(),
        surface: app.surface.get(),
    };
    let ticket = |admission| Ticket {
        env: app.env.clone(),
        background: app.background.clone(),
        open: Some(admission),
        failure: None,
    };
    let Some(user) = caller.user() else {
        return Ok(ticket(admission));
    };
    let reservation = quota::reservation(settings.charging_mode, price, estimate(), multiplier);
    let lease_id = random_hex::<8>()?;
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
    admission.user = Some(Rc::clone(user));
    match ledger::call(&app.env, &user.id, &op).await? {
        LedgerResponse::Admitted { limits, .. } => {
            *app.rate.borrow_mut() = Some(limits);
            admission.lease_id = Some(lease_id);
            Ok(ticket(admission))
        }
        LedgerResponse::Denied {
            denial,
            retry_after_ms,
            limits,
        } => {
            *app.rate.borrow_mut() = Some(limits);
            let err = denial_error(denial, retry_after_ms);
            // Nothing was reserved: settling only writes the refusal's log row.
            ticket(admission).settle(Outcome::failed(&err));
            Err(err)
        }
        other => Err(GatewayError::Internal(format!(
            "ledger answered Admit with {other:?}"
        ))),
    }
}

/// Sends with failover after admitting the caller, the two in parallel. A failed upstream
/// call is settled here (nothing was served); the caller settles the ticket of a success.
pub async fn metered_send(
    app: &App,
    caller: &Caller,
    snap: &Snapshot,
    request: &UpstreamRequest,
    estimate: impl FnOnce() -> Estimate,
) -> Result<(Ticket, UpstreamOk), UpstreamError> {
    metered_send_scaled(app, caller, snap, request, estimate, 1).await
}

/// [`metered_send`] for a request that costs `multiplier` times its model's cost.
pub async fn metered_send_scaled(
    app: &App,
    caller: &Caller,
    snap: &Snapshot,
    request: &UpstreamRequest,
    estimate: impl FnOnce() -> Estimate,
    multiplier: u64,
) -> Result<(Ticket, UpstreamOk), UpstreamError> {
    let ticket = RefCell::new(None);
    let admission = async {
        let admitted = admit_call(
            app,
            caller,
            snap,
            &request.gate,
            request.stream,
            estimate,
            multiplier,
        )
        .await?;
        *ticket.borrow_mut() = Some(admitted);
        Ok(())
    };
    let result = upstream::send_admitted(app, snap, request, admission).await;
    match (ticket.into_inner(), result) {
        (Some(ticket), Ok(ok)) => Ok((ticket, ok)),
        (Some(ticket), Err(e)) => {
            ticket.settle(Outcome::failed(&e.to_error(&request.gate)));
            Err(e)
        }
        // Refused at admission, which logged it.
        (None, Err(e)) => Err(e),
        (None, Ok(_)) => Err(GatewayError::Internal("admitted without a ticket".into()).into()),
    }
}

/// Admits one call on `gate` (the model): the caller's ledger and the model's
/// concurrency queue, in parallel; each one's refusal gives back what the other
/// took (a dropped ticket refunds, a dropped slot is released). `stream` is what
/// the client asked for, as the log row records it; `multiplier` scales the cost
/// (anti-truncation pays 2). [`metered_send`] runs this
/// beside the upstream's first step; fake streaming runs it alone, before its
/// response starts, so a refusal is still a plain HTTP error.
pub async fn admit_call(
    app: &App,
    caller: &Caller,
    snap: &Snapshot,
    gate: &str,
    stream: bool,
    estimate: impl FnOnce() -> Estimate,
    multiplier: u64,
) -> Result<Ticket, GatewayError> {
    let concurrency = limits_for(&snap.settings.model_limits, gate).concurrency;
    let admitted = admit_scaled(
        app,
        caller,
        &snap.settings,
        gate,
        estimate,
        stream,
        multiplier,
    );
    let slot = async {
        match concurrency {
            Some(limit) => {
                let ttl_ms = snap.settings.upstream_timeout_ms + LEASE_SLACK_MS;
                gate::acquire(&app.env, &app.background, gate, limit, ttl_ms)
                    .await
                    .map(Some)
            }
            None => Ok(None),
        }
    };
    let (admitted, slot) = join(admitted, slot).await;
    let mut admitted = admitted?;
    match slot {
        Ok(Some(slot)) => admitted.hold(slot),
        Ok(None) => {}
        Err(e) => return Err(admitted.fail(e)),
    }
    Ok(admitted)
}

impl Admission {
    async fn finish(self, env: Env, outcome: Outcome) {
        if let Some(slot) = &self.slot {
            gate::release(&env, slot).await;
        }
        if self.counts_tokens && outcome.served && !outcome.key_id.is_empty() {
            let tokens = outcome.usage.prompt_tokens
                + outcome.usage.completion_tokens
                + outcome.usage.reasoning_tokens;
            gate::count_usage(&env, &self.model, &outcome.key_id, tokens).await;
        }
        let credits = quota::charge(
            self.mode,
            self.price,
            outcome.usage,
            outcome.served,
            self.multiplier,
        );
        let mut charged = 0;
        let mut ledger_used = None;
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
            match ledger::call(&env, &user.id, &op).await {
                Ok(LedgerResponse::Settled {
                    charged: c, used, ..
                }) => {
                    charged = c;
                    ledger_used = Some(used);
                }
                Ok(other) => worker::console_warn!("[gemgate] ledger settle answered {other:?}"),
                Err(e) => worker::console_warn!("[gemgate] ledger settle failed: {e}"),
            }
            worker::console_log!(
                "[gemgate] settled user={} lease={lease_id} charged={charged} status={}",
                user.id,
                outcome.status
            );
        }
        request_log::write(&env, self.row(outcome, charged, ledger_used)).await;
    }

    /// A static token's request that holds no slot and counts no tokens:
    /// settling it is only its log row.
    fn is_plain(&self) -> bool {
        self.user.is_none() && self.slot.is_none() && !self.counts_tokens
    }

    fn row(self, outcome: Outcome, charged: u64, ledger_used: Option<u64>) -> LogRow {
        LogRow {
            ts: now_ms(),
            user_id: self.user.as_ref().map(|u| u.id.clone()),
            model: self.model,
            key_id: outcome.key_id,
            status: outcome.status,
            usage: outcome.usage,
            credits: charged,
            ledger_used,
            latency_ms: now_ms().saturating_sub(self.started_ms),
            stream: self.stream,
            error: outcome.error,
            request_id: self.request_id,
            surface: self.surface,
        }
    }
}
