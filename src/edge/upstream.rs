//! Upstream calls with failover: ask the model's gate for a key, fetch with
//! a timeout, classify the outcome once, and try another key when the
//! outcome says so. Nothing is retried after the first byte reached the
//! client: a stream is handed over only once its first chunk arrived.

use std::future::Future;
use std::time::Duration;

use std::pin::Pin;

use futures::future::{Either, join, select};
use futures::{Stream, StreamExt, stream};
use worker::{
    AbortController, ByteStream, D1Database, Delay, Fetch, Headers, Method, Request, RequestInit,
    wasm_bindgen::JsValue,
};

use super::app::App;
use super::gate;
use super::keys::{self, Snapshot};
use super::now_ms;
use crate::domain::error::GatewayError;
use crate::domain::gate::{Decision, GateRequest, GateResponse, Report, Roster};
use crate::domain::keypool::KeyHealthView;
use crate::domain::mask::{mask_secret, scrub};
use crate::domain::outcome::{Outcome, classify, google_error_message};

/// One logical upstream request, replayable on several keys.
pub struct UpstreamRequest {
    pub method: Method,
    /// The full URL without the key.
    pub url: String,
    pub body: Option<String>,
    /// Hand the body over as a stream once the first chunk arrived.
    pub stream: bool,
    /// The gate (model) whose keys and health apply.
    pub gate: String,
}

pub enum UpstreamBody {
    Full(Vec<u8>),
    Stream { first: Vec<u8>, rest: BodyStream },
}

/// Why an upstream stream ended early.
#[derive(Debug)]
pub enum StreamBreak {
    /// No chunk arrived within the upstream timeout.
    Idle,
    /// The connection failed.
    Failed(String),
}

impl From<StreamBreak> for worker::Error {
    fn from(b: StreamBreak) -> Self {
        match b {
            StreamBreak::Idle => Self::RustError("upstream stream went idle".into()),
            StreamBreak::Failed(e) => Self::RustError(e),
        }
    }
}

/// The rest of an upstream stream, guarded so a stalled upstream cannot hold
/// a client forever: a gap longer than the timeout ends it with `Idle`.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Vec<u8>, StreamBreak>>>>;

fn idle_guarded(body: ByteStream, gap: Duration) -> BodyStream {
    Box::pin(stream::unfold(Some(body), move |state| async move {
        let mut body = state?;
        let next = {
            let chunk = Box::pin(body.next());
            let timer = Box::pin(Delay::from(gap));
            match select(chunk, timer).await {
                Either::Left((chunk, _)) => Some(chunk),
                Either::Right(_) => None,
            }
        };
        match next {
            Some(Some(Ok(bytes))) => Some((Ok(bytes), Some(body))),
            Some(Some(Err(e))) => Some((Err(StreamBreak::Failed(e.to_string())), None)),
            Some(None) => None,
            None => Some((Err(StreamBreak::Idle), None)),
        }
    }))
}

pub struct UpstreamOk {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: UpstreamBody,
    pub key_id: String,
}

impl UpstreamOk {
    /// The whole body of a non-stream answer, parsed as `T`.
    pub fn json<T: serde::de::DeserializeOwned>(self) -> Result<T, GatewayError> {
        let UpstreamBody::Full(bytes) = self.body else {
            return Err(GatewayError::Internal(
                "a non-stream request got a stream".into(),
            ));
        };
        serde_json::from_slice(&bytes).map_err(|e| {
            GatewayError::BadGateway(format!("Upstream sent an unreadable response: {e}"))
        })
    }
}

pub enum UpstreamError {
    /// The request itself was refused upstream (4xx other than key/quota
    /// problems): the client gets it, and the key stays healthy.
    Client {
        status: u16,
        body: Vec<u8>,
    },
    Gateway(GatewayError),
}

impl From<GatewayError> for UpstreamError {
    fn from(e: GatewayError) -> Self {
        Self::Gateway(e)
    }
}

/// What a failed attempt leaves behind for the final error.
#[derive(Default)]
struct Failures {
    min_retry_after_ms: Option<u64>,
    rate_limited: bool,
    last: Option<(Outcome, String)>,
}

impl Failures {
    fn note(&mut self, outcome: &Outcome, detail: String) {
        if let Outcome::RateLimited { retry_after_ms, .. } = outcome {
            self.rate_limited = true;
            let ms = retry_after_ms.unwrap_or(60_000);
            self.min_retry_after_ms = Some(self.min_retry_after_ms.map_or(ms, |m| m.min(ms)));
        }
        self.last = Some((outcome.clone(), detail));
    }

    fn into_error(self) -> GatewayError {
        if self.rate_limited {
            return GatewayError::RateLimited {
                message: "All upstream keys are rate limited; retry later.".into(),
                retry_after_secs: Some(self.min_retry_after_ms.unwrap_or(60_000).div_ceil(1000)),
            };
        }
        match self.last {
            Some((Outcome::Timeout, _)) => {
                GatewayError::UpstreamTimeout("The upstream did not answer in time.".into())
            }
            Some((Outcome::ServerError { status }, detail)) if status == 503 => {
                GatewayError::Upstream {
                    status,
                    message: detail,
                    google_status: Some("UNAVAILABLE".into()),
                }
            }
            Some((_, detail)) => GatewayError::BadGateway(detail),
            None => GatewayError::BadGateway("No upstream attempt was made.".into()),
        }
    }
}

/// Runs the request with failover over the snapshot's keys.
pub async fn send(
    app: &App,
    snap: &Snapshot,
    req: &UpstreamRequest,
) -> Result<UpstreamOk, UpstreamError> {
    send_admitted(app, snap, req, async { Ok(()) }).await
}

/// Like [`send`], with an admission check (a user's ledger) run in parallel with the first
/// gate call, so it adds no round trip; nothing is fetched upstream unless it passes.
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
    let mut tried: Vec<String> = Vec::new();
    let mut report: Option<Report> = None;
    let mut failures = Failures::default();

    for _ in 0..=settings.max_retries {
        let last = report.take();
        let gate_call = call_gate(app, snap, &req.gate, |roster| GateRequest::Next {
            roster,
            exclude: tried.clone(),
            report: last.clone(),
            policy: policy.clone(),
        });
        let answer = match admit.take() {
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
        mirror_health(app, &req.gate, reported);
        let Some((key_id, report_success)) = decide(decision, failures.last.is_some())? else {
            break;
        };
        let Some(secret) = snap.secret(&key_id) else {
            return Err(GatewayError::Internal(format!("gate chose unknown key {key_id}")).into());
        };
        let started = now_ms();
        let (outcome, result) = attempt(req, secret, timeout).await;
        let latency_ms = now_ms().saturating_sub(started);
        match (outcome, result) {
            (Outcome::Ok, Ok(ok)) => {
                if report_success {
                    report_in_background(
                        app,
                        req,
                        snap,
                        Report {
                            key_id: key_id.clone(),
                            outcome: Outcome::Ok,
                            latency_ms,
                        },
                    );
                }
                return Ok(UpstreamOk { key_id, ..ok });
            }
            (Outcome::ClientError { status }, Err(body)) => {
                return Err(UpstreamError::Client {
                    status,
                    body: scrub_body(body, secret),
                });
            }
            (outcome, result) => {
                let detail = scrub(&failure_detail(&outcome, result.err().as_deref()), secret);
                worker::console_warn!(
                    "[gemgate] {} on key {} for {}: {}",
                    outcome.label(),
                    mask_secret(secret),
                    req.gate,
                    detail
                );
                if let Outcome::KeyInvalid { reason } = &outcome {
                    disable_in_background(app, &key_id, reason);
                }
                failures.note(&outcome, detail);
                tried.push(key_id.clone());
                report = Some(Report {
                    key_id,
                    outcome,
                    latency_ms,
                });
            }
        }
    }
    // Out of attempts: the last outcome must be on record before the next
    // request chooses, so this report is awaited.
    if let Some(last) = report {
        record_last(app, req, snap, last).await;
    }
    Err(failures.into_error().into())
}

/// The key to try next, `None` to stop trying (after earlier failures), or
/// the error to answer when nothing was tried yet.
fn decide(decision: Decision, failed_before: bool) -> Result<Option<(String, bool)>, GatewayError> {
    match decision {
        Decision::Chosen {
            key_id,
            report_success,
        } => Ok(Some((key_id, report_success))),
        Decision::Exhausted { .. } | Decision::NoKeys if failed_before => Ok(None),
        Decision::Exhausted { retry_after_ms } => Err(GatewayError::RateLimited {
            message: "All upstream keys are cooling down; retry later.".into(),
            retry_after_secs: Some(retry_after_ms.div_ceil(1000).max(1)),
        }),
        Decision::NoKeys => Err(GatewayError::NoKeysConfigured),
    }
}

/// An upstream error body relayed to the client must not carry our key.
fn scrub_body(body: Vec<u8>, secret: &str) -> Vec<u8> {
    match std::str::from_utf8(&body) {
        Ok(text) if text.contains(secret) || text.contains("api_key:") => {
            scrub(text, secret).into_bytes()
        }
        _ => body,
    }
}

fn failure_detail(outcome: &Outcome, body: Option<&[u8]>) -> String {
    body.and_then(google_error_message).map_or_else(
        || format!("upstream answered {}", outcome.summary()),
        |(message, _)| message,
    )
}

/// Calls a gate with the snapshot's roster, resending the full list once if
/// the gate no longer has it (it restarted, or another snapshot pushed it out).
async fn call_gate(
    app: &App,
    snap: &Snapshot,
    gate_name: &str,
    op: impl Fn(Roster) -> GateRequest,
) -> Result<GateResponse, GatewayError> {
    let mut answer = gate::call(&app.env, gate_name, &op(snap.roster_for(gate_name))).await?;
    if answer == GateResponse::NeedRoster {
        answer = gate::call(&app.env, gate_name, &op(snap.full_roster())).await?;
    }
    snap.mark_sent(gate_name);
    Ok(answer)
}

async fn record_last(app: &App, req: &UpstreamRequest, snap: &Snapshot, report: Report) {
    let policy = snap.settings.policy();
    let answer = call_gate(app, snap, &req.gate, |roster| GateRequest::Report {
        roster,
        report: report.clone(),
        policy: policy.clone(),
    })
    .await;
    match answer {
        Ok(GateResponse::Recorded { reported }) => mirror_health(app, &req.gate, reported),
        Ok(other) => worker::console_warn!("[gemgate] gate answered Report with {other:?}"),
        Err(e) => worker::console_warn!("[gemgate] gate report failed: {e}"),
    }
}

/// One attempt on one key. `Ok` carries the response; `Err` the error body.
async fn attempt(
    req: &UpstreamRequest,
    secret: &str,
    timeout: Duration,
) -> (Outcome, Result<UpstreamOk, Vec<u8>>) {
    let controller = AbortController::default();
    let signal = controller.signal();
    let Ok(request) = build(req, secret) else {
        return (Outcome::Network, Err(Vec::new()));
    };
    let fetch = Fetch::Request(request);
    let sent = Box::pin(fetch.send_with_signal(&signal));
    let timer = Box::pin(Delay::from(timeout));
    let mut resp = match select(sent, timer).await {
        Either::Left((Ok(resp), _)) => resp,
        Either::Left((Err(_), _)) => return (Outcome::Network, Err(Vec::new())),
        Either::Right(_) => {
            controller.abort();
            return (Outcome::Timeout, Err(Vec::new()));
        }
    };
    let status = resp.status_code();
    let content_type = resp.headers().get("content-type").ok().flatten();
    if !(200..300).contains(&status) {
        let body = resp.bytes().await.unwrap_or_default();
        return (classify(status, &body), Err(body));
    }
    let body = if req.stream {
        let Ok(mut body_stream) = resp.stream() else {
            return (Outcome::Network, Err(Vec::new()));
        };
        let first = Box::pin(body_stream.next());
        let timer = Box::pin(Delay::from(timeout));
        match select(first, timer).await {
            Either::Left((Some(Ok(first)), _)) => UpstreamBody::Stream {
                first,
                rest: idle_guarded(body_stream, timeout),
            },
            // An empty 200 stream is handed over as is; the translator
            // reports the truncation in the surface's own way.
            Either::Left((None, _)) => UpstreamBody::Full(Vec::new()),
            Either::Left((Some(Err(_)), _)) => return (Outcome::Network, Err(Vec::new())),
            Either::Right(_) => {
                controller.abort();
                return (Outcome::Timeout, Err(Vec::new()));
            }
        }
    } else {
        match resp.bytes().await {
            Ok(bytes) => UpstreamBody::Full(bytes),
            Err(_) => return (Outcome::Network, Err(Vec::new())),
        }
    };
    (
        Outcome::Ok,
        Ok(UpstreamOk {
            status,
            content_type,
            body,
            key_id: String::new(),
        }),
    )
}

fn build(req: &UpstreamRequest, secret: &str) -> worker::Result<Request> {
    let headers = Headers::new();
    headers.set("x-goog-api-key", secret)?;
    if req.body.is_some() {
        headers.set("content-type", "application/json")?;
    }
    let mut init = RequestInit::new();
    init.with_method(req.method.clone()).with_headers(headers);
    if let Some(body) = &req.body {
        init.with_body(Some(JsValue::from_str(body)));
    }
    Request::new_with_init(&req.url, &init)
}

fn report_in_background(app: &App, req: &UpstreamRequest, snap: &Snapshot, report: Report) {
    let env = app.env.clone();
    let gate_name = req.gate.clone();
    // Off the hot path: the full list is sent, so this never needs a retry.
    let op = GateRequest::Report {
        roster: snap.full_roster(),
        report,
        policy: snap.settings.policy(),
    };
    let db = app.db().ok();
    app.ctx.wait_until(async move {
        match gate::call(&env, &gate_name, &op).await {
            Ok(GateResponse::Recorded {
                reported: Some(view),
            }) => {
                if let Some(db) = db {
                    write_mirror(&db, &gate_name, &view).await;
                }
            }
            Ok(_) => {}
            Err(e) => worker::console_warn!("[gemgate] gate report failed: {e}"),
        }
    });
}

fn disable_in_background(app: &App, key_id: &str, reason: &str) {
    keys::forget_in_snapshot(key_id);
    let Ok(db) = app.db() else { return };
    let (id, reason) = (key_id.to_owned(), reason.to_owned());
    app.ctx.wait_until(async move {
        if let Err(e) = keys::disable(&db, &id, &reason).await {
            worker::console_warn!("[gemgate] could not disable key {id}: {e}");
        }
    });
}

/// Mirrors a key's health after a failure into D1, for the admin API.
fn mirror_health(app: &App, model: &str, reported: Option<KeyHealthView>) {
    let Some(view) = reported else { return };
    let Ok(db) = app.db() else { return };
    let model = model.to_owned();
    app.ctx
        .wait_until(async move { write_mirror(&db, &model, &view).await });
}

async fn write_mirror(db: &D1Database, model: &str, view: &KeyHealthView) {
    let result = keys::record_health(
        db,
        &view.id,
        model,
        view.cooldown_until_ms,
        view.consecutive_failures,
        view.last_error.as_deref(),
    )
    .await;
    if let Err(e) = result {
        worker::console_warn!("[gemgate] health mirror failed: {e}");
    }
}
