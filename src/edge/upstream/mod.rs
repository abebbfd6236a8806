//! Upstream calls with failover: ask the model's gate for a key, fetch with a
//! timeout, classify the outcome once, and try another key when the outcome
//! says so (`domain::failover` decides; this loop performs). Nothing is
//! retried after the first byte reached the client: a stream is handed over
//! only once its first chunk arrived.

pub mod accounts;
pub mod fetch;
pub mod health;
pub mod local;
pub mod media;
pub mod models;
pub mod pins;
mod quiet;
pub mod readiness;
pub mod urls;

use std::future::Future;
use std::time::Duration;

use futures::future::join;

use crate::domain::accounts::onboard::Attention;
use crate::domain::accounts::record::is_account;
use crate::domain::error::GatewayError;
use crate::domain::failover::{Failover, Step, Verdict, failure_detail};
use crate::domain::gate::{Decision, GateRequest, GateResponse, Report};
use crate::domain::limits::{KeyBudget, counts_against_budget, limits_for};
use crate::domain::mask::{mask_secret, scrub};
use crate::domain::outcome::{Outcome, project_of_error};
use crate::edge::app::App;
use crate::edge::now_ms;
use crate::edge::snapshot::{Snapshot, UpstreamKey};
use crate::edge::store::ops as ops_store;
use crate::edge::upstream::accounts::AccountAttempt;
use crate::edge::upstream::fetch::{Attempt, attempt};
pub use crate::edge::upstream::fetch::{
    BodyStream, StreamBreak, UpstreamBody, UpstreamError, UpstreamOk, UpstreamRequest,
};
use crate::edge::upstream::health::{
    call_gate, disable_in_background, mirror, record_last, report_in_background,
};

/// Runs the request with failover over the snapshot's keys.
pub async fn send(
    app: &App,
    snap: &Snapshot,
    req: &UpstreamRequest,
) -> Result<UpstreamOk, UpstreamError> {
    send_admitted(app, snap, req, async { Ok(()) }).await
}

/// Who chooses the key of each attempt.
enum Chooser {
    /// This isolate, from its copy of the model's health: no gate call
    /// before the fetch, and one (awaited) report after each failure.
    Local,
    /// The model's gate, which alone can count per-key budgets exactly: one
    /// call per attempt, carrying the previous attempt's failure.
    Gate(KeyBudget),
    /// The one key that holds what the request names: tried once, whatever its
    /// health; its outcome is recorded as [`Chooser::Local`] records.
    Pinned(String),
}

/// Like [`send`], with an admission check (a user's ledger) run in parallel
/// with the one gate call the request may need first (a cold isolate's
/// health view, or a budgeted model's choice), so it adds no round trip;
/// nothing is fetched upstream unless it passes.
pub async fn send_admitted(
    app: &App,
    snap: &Snapshot,
    req: &UpstreamRequest,
    admit: impl Future<Output = Result<(), GatewayError>>,
) -> Result<UpstreamOk, UpstreamError> {
    let mut admit = Some(admit);
    let settings = &snap.settings;
    let policy = settings.policy();
    let timeout = Duration::from_millis(settings.upstream_timeout_ms);
    let mut failover = Failover::default();
    let no_accounts = accounts_excluded(snap, req)?;
    let chooser = Chooser::for_request(snap, req);
    if let Chooser::Local | Chooser::Pinned(_) = chooser {
        let view = local::ensure_view(app, snap, &req.gate);
        match admit.take() {
            Some(admission) => join(view, admission).await.1?,
            None => view.await,
        }
    }

    for _ in 0..=settings.max_retries {
        let mut exclude = failover.tried().to_vec();
        exclude.extend(no_accounts.iter().cloned());
        let decision = match &chooser {
            Chooser::Local => local::choose(snap, &req.gate, &exclude, &policy),
            Chooser::Pinned(key_id) => pinned_decision(key_id, &failover),
            Chooser::Gate(budget) => {
                let report = failover.take_report();
                choose_at_gate(app, snap, req, exclude, report, *budget, admit.take()).await?
            }
        };
        let (key_id, report_success) = match failover.step(decision) {
            Step::Try {
                key_id,
                report_success,
            } => (key_id, report_success),
            Step::GiveUp => break,
            Step::Fail(err) => return Err(err.into()),
        };
        let started = now_ms();
        let (
            Attempt {
                outcome, answer, ..
            },
            secret,
            attention,
        ) = attempt_on(app, snap, req, &key_id, timeout).await?;
        let latency_ms = now_ms().saturating_sub(started);
        let detail = || {
            let body = answer.as_ref().err().map(Vec::as_slice);
            scrub(&failure_detail(&outcome, body), secret)
        };
        match failover.judge(&key_id, &outcome, latency_ms, detail) {
            Verdict::Answer => {
                return match (answer, &outcome) {
                    (Ok(ok), _) => {
                        let report = Report {
                            key_id,
                            outcome: Outcome::Ok,
                            latency_ms,
                        };
                        // The gate hears about a success that clears failures,
                        // whether they were there when the key was chosen or
                        // arrived from a concurrent request since.
                        let clears = match chooser {
                            Chooser::Local | Chooser::Pinned(_) => {
                                local::record(snap, &req.gate, &report, &policy)
                            }
                            Chooser::Gate(_) => false,
                        };
                        if report_success || clears {
                            report_in_background(app, snap, &req.gate, report);
                        }
                        Ok(ok)
                    }
                    (Err(body), Outcome::ClientError { status }) => Err(UpstreamError::Client {
                        status: *status,
                        body: scrub_body(body, secret),
                    }),
                    (Err(_), other) => Err(GatewayError::Internal(format!(
                        "attempt answered {} without a response",
                        other.label()
                    ))
                    .into()),
                };
            }
            Verdict::Retry => {
                let detail = failover.last_detail().unwrap_or_default().to_owned();
                if let Chooser::Local | Chooser::Pinned(_) = chooser {
                    // Recorded here at once, and at the gate before the next
                    // attempt: its answer brings this isolate up to date.
                    if let Some(report) = failover.take_report() {
                        let _ = local::record(snap, &req.gate, &report, &policy);
                        record_last(app, snap, &req.gate, report).await;
                    }
                }
                let body = answer.as_ref().err().map(Vec::as_slice);
                learn_project(app, snap, &key_id, body);
                note_failure(app, req, &key_id, secret, &outcome, &detail, attention).await;
            }
        }
    }
    // Out of attempts: the last outcome must be on record before the next
    // request chooses, so this report is awaited.
    if let Some(last) = failover.take_report() {
        record_last(app, snap, &req.gate, last).await;
    }
    Err(failover.into_error().into())
}

impl Chooser {
    fn for_request(snap: &Snapshot, req: &UpstreamRequest) -> Self {
        match (
            &req.pin,
            limits_for(&snap.settings.model_limits, &req.gate).budget,
        ) {
            (Some(key_id), _) => Self::Pinned(key_id.clone()),
            (None, Some(budget)) if counts_against_budget(&req.url) => Self::Gate(budget),
            _ => Self::Local,
        }
    }
}

/// A pinned request's one try: it has no other key to fail over to.
fn pinned_decision(key_id: &str, failover: &Failover) -> Decision {
    if failover.tried().is_empty() {
        Decision::Chosen {
            key_id: key_id.to_owned(),
            report_success: false,
        }
    } else {
        Decision::Exhausted { retry_after_ms: 0 }
    }
}

/// The accounts a request must not go to: one no account can serve (a
/// model list, embeddings, several candidates) never goes to one, even
/// where the routing allows accounts. A pinned request goes to its key
/// whatever the routing says of accounts.
fn accounts_excluded(snap: &Snapshot, req: &UpstreamRequest) -> Result<Vec<String>, GatewayError> {
    if req.pin.is_some() {
        return Ok(Vec::new());
    }
    let no_accounts = if req.code_assist.is_none() {
        snap.accounts_in(&req.gate)
    } else {
        Vec::new()
    };
    if !no_accounts.is_empty() && !snap.has_keys_for(&req.gate) {
        return Err(GatewayError::invalid(format!(
            "Only Gemini CLI accounts may serve `{}` (setting `upstream_routing`), and they cannot serve this request (embeddings, or more than one candidate); allow API keys for it.",
            req.gate
        )));
    }
    Ok(no_accounts)
}

/// Asks a budgeted model's gate for the next key, reporting the previous
/// attempt's failure in the same call (and running the admission check
/// beside the first call).
async fn choose_at_gate(
    app: &App,
    snap: &Snapshot,
    req: &UpstreamRequest,
    exclude: Vec<String>,
    report: Option<Report>,
    budget: KeyBudget,
    admit: Option<impl Future<Output = Result<(), GatewayError>>>,
) -> Result<Decision, UpstreamError> {
    let policy = snap.settings.policy();
    let gate_call = call_gate(app, snap, &req.gate, |roster| GateRequest::Next {
        roster,
        exclude: exclude.clone(),
        report: report.clone(),
        policy: policy.clone(),
        budget: Some(budget),
    });
    let answer = match admit {
        Some(admission) => {
            let (answer, admitted) = join(gate_call, admission).await;
            admitted?;
            answer?
        }
        None => gate_call.await?,
    };
    let GateResponse::Next { decision, reported } = answer else {
        return Err(
            GatewayError::Internal("gate answered Next with another variant".into()).into(),
        );
    };
    mirror(app, &req.gate, reported);
    Ok(decision)
}

/// A key with no project label whose error names its Google Cloud project
/// gets that label (in D1, off the request's path), so a quota 429 on it
/// cools its siblings from the next snapshot on.
fn learn_project(app: &App, snap: &Snapshot, key_id: &str, body: Option<&[u8]>) {
    if is_account(key_id) || snap.project_of(key_id).is_some() {
        return;
    }
    let Some(project) = body.and_then(project_of_error) else {
        return;
    };
    health::label_project_in_background(app, key_id, &project);
}

/// One attempt on the upstream the gate chose, a key or an account: what it
/// came to, the secret to scrub from what it said, and the refusal that
/// needs the operator, if any.
async fn attempt_on<'s>(
    app: &App,
    snap: &'s Snapshot,
    req: &UpstreamRequest,
    id: &str,
    timeout: Duration,
) -> Result<(Attempt, &'s str, Option<Attention>), UpstreamError> {
    if is_account(id) {
        let (Some(account), Some(call)) = (snap.account(id), req.code_assist.as_ref()) else {
            return Err(GatewayError::Internal(format!("gate chose unknown account {id}")).into());
        };
        let AccountAttempt { attempt, attention } =
            accounts::attempt(app, account, req, call, timeout).await;
        return Ok((attempt, account.refresh_token.as_str(), attention));
    }
    let Some(secret) = snap.secret(id) else {
        return Err(GatewayError::Internal(format!("gate chose unknown key {id}")).into());
    };
    Ok((attempt(req, id, secret, timeout).await, secret, None))
}

/// Logs a failed attempt that will be retried elsewhere; an invalid key is
/// disabled, a refused account put in needs-attention (awaited: it is rare,
/// and once the client has its answer the account's state is on record).
async fn note_failure(
    app: &App,
    req: &UpstreamRequest,
    id: &str,
    secret: &str,
    outcome: &Outcome,
    detail: &str,
    attention: Option<Attention>,
) {
    record_failure_in_background(app, id, &req.gate, outcome, detail);
    if is_account(id) {
        worker::console_warn!(
            "[gemgate] req={} {} on account {id} for {}: {detail}",
            app.request_id,
            outcome.label(),
            req.gate,
        );
        accounts::error_in_background(app, id, detail.to_owned());
        if let Outcome::KeyInvalid { reason } = outcome {
            let attention = attention.unwrap_or_else(|| Attention::Forbidden {
                message: reason.clone(),
            });
            accounts::attention_now(app, id, &attention).await;
        }
        return;
    }
    worker::console_warn!(
        "[gemgate] req={} {} on key {} for {}: {detail}",
        app.request_id,
        outcome.label(),
        mask_secret(secret),
        req.gate,
    );
    if let Outcome::KeyInvalid { reason } = outcome {
        disable_in_background(app, id, reason);
    }
}

/// Puts a failed attempt on record for the error view, off the request's path.
fn record_failure_in_background(app: &App, id: &str, model: &str, outcome: &Outcome, detail: &str) {
    let Ok(db) = app.db() else { return };
    let (request_id, id, model, detail) = (
        app.request_id.clone(),
        id.to_owned(),
        model.to_owned(),
        detail.to_owned(),
    );
    let (class, status) = (outcome.label(), outcome.status());
    app.background.spawn(async move {
        let failure = ops_store::UpstreamFailure {
            ts: now_ms(),
            request_id: &request_id,
            upstream_id: &id,
            model: &model,
            class,
            status,
            message: &detail,
        };
        if let Err(e) = ops_store::record_failure(&db, &failure).await {
            worker::console_warn!("[gemgate] could not record an upstream error: {e}");
        }
    });
}

/// The model a key probe counts tokens on, and whose gate records the outcome.
pub const PROBE_MODEL: &str = "gemini-2.5-flash";

/// What one probe of a key came to.
#[derive(Debug, serde::Serialize)]
pub struct Probe {
    pub id: String,
    pub ok: bool,
    pub outcome: &'static str,
    pub status: Option<u16>,
    pub latency_ms: u64,
    pub message: Option<String>,
}

/// Tries one key with a cheap call (`countTokens` on [`PROBE_MODEL`]) and records the outcome
/// like any other: reported to the model's gate, and an invalid key disabled.
pub async fn probe(app: &App, snap: &Snapshot, key: &UpstreamKey) -> Probe {
    probe_on(app, snap, key, PROBE_MODEL, true).await
}

/// [`probe`] on `model`. With `record`, the outcome goes to the model's gate (and
/// the D1 mirror) as any attempt's would, and an invalid key is disabled;
/// without, nothing is recorded (a disabled key has nothing at the gate).
pub async fn probe_on(
    app: &App,
    snap: &Snapshot,
    key: &UpstreamKey,
    model: &str,
    record: bool,
) -> Probe {
    let request = UpstreamRequest {
        method: worker::Method::Post,
        url: match urls::action(
            &app.config.env.gemini_api_base,
            urls::Version::V1Beta,
            model,
            "countTokens",
            [],
        ) {
            Ok(url) => url,
            Err(e) => {
                return Probe {
                    id: key.id.clone(),
                    ok: false,
                    outcome: "network",
                    status: None,
                    latency_ms: 0,
                    message: Some(e.client_message()),
                };
            }
        },
        body: Some(r#"{"contents":[{"role":"user","parts":[{"text":"ping"}]}]}"#.to_owned()),
        stream: false,
        gate: model.to_owned(),
        code_assist: None,
        pin: None,
        headers: Vec::new(),
    };
    let timeout = Duration::from_millis(snap.settings.upstream_timeout_ms.min(30_000));
    let started = now_ms();
    let Attempt {
        outcome, answer, ..
    } = attempt(&request, &key.id, &key.secret, timeout).await;
    let latency_ms = now_ms().saturating_sub(started);
    let status = match &answer {
        Ok(ok) => Some(ok.status),
        Err(_) => match &outcome {
            Outcome::ClientError { status } | Outcome::ServerError { status } => Some(*status),
            Outcome::RateLimited { .. } => Some(429),
            _ => None,
        },
    };
    let message = answer
        .as_ref()
        .err()
        .map(|body| scrub(&failure_detail(&outcome, Some(body)), &key.secret));
    // A key re-checked while disabled keeps the time it was first found
    // invalid: the archive counts from it.
    if let (true, Outcome::KeyInvalid { reason }) = (record, &outcome) {
        disable_in_background(app, &key.id, reason);
    }
    if record {
        let report = Report {
            key_id: key.id.clone(),
            outcome: outcome.clone(),
            latency_ms,
        };
        record_last(app, snap, model, report).await;
    }
    Probe {
        id: key.id.clone(),
        ok: outcome == Outcome::Ok,
        outcome: outcome.label(),
        status,
        latency_ms,
        message,
    }
}

/// An upstream error body relayed to the client must not carry our key.
pub fn scrub_body(body: Vec<u8>, secret: &str) -> Vec<u8> {
    match std::str::from_utf8(&body) {
        Ok(text) if text.contains(secret) || text.contains("api_key:") => {
            scrub(text, secret).into_bytes()
        }
        _ => body,
    }
}
