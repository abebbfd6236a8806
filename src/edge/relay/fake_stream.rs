//! Fake streaming at the edge: a client that asked for a stream gets its
//! response at once, while the gateway makes one non-stream upstream call.
//! The response body races that call against a heartbeat timer; every byte it
//! writes is decided by `domain::translate::fake_stream`, and written into the
//! response by a background task (`http::stream`), which stops at the first
//! heartbeat the client is no longer there to take.
//!
//! Admission (the user's ledger, the model's queue) runs before the response
//! starts, so a refusal is still a plain HTTP error. The upstream call is a
//! future the handler hands over ([`respond`]): today one `generateContent`
//! with failover ([`generate`]); anti-truncation's stitched call plugs in the
//! same way. Until it resolves the client has only the opening and heartbeats,
//! so failover stays invisible. The call runs as the request's background
//! work, so it neither waits for the client to read nor dies with the body,
//! and it settles the ticket when it resolves.

use std::convert::Infallible;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use futures::channel::oneshot;
use futures::future::{Either, select};
use futures::{StreamExt, stream};
use worker::{Delay, Headers, Response};

use crate::domain::error::GatewayError;
use crate::domain::gemini::{GenerateContentRequest, GenerateContentResponse};
use crate::domain::quota::{Estimate, Usage};
use crate::domain::translate::chat::ChatContext;
use crate::domain::translate::continuation::{COST_MULTIPLIER, Continuation, Plan, Stitcher};
use crate::domain::translate::fake_stream::{ChatSse, FakeStream, Format, NativeArray, NativeSse};
use crate::domain::usage::{from_metadata, usage_in};
use crate::edge::access::Caller;
use crate::edge::app::App;
use crate::edge::billing::ticket::{Outcome, Pending, Ticket, admit_call};
use crate::edge::http::render;
use crate::edge::http::stream::piped;
use crate::edge::relay::continuation::{Calls, Stitched, Unfinished, pin_of, stitch};
use crate::edge::snapshot::Snapshot;
use crate::edge::upstream::{self, UpstreamBody, UpstreamOk, UpstreamRequest};

/// What the upstream call came to: the answer, the key that served it, and
/// the usage to settle with.
pub struct Served<A> {
    pub answer: A,
    pub key_id: String,
    pub usage: Usage,
}

/// Anti-truncation over a fake stream: the plan and the first request (marker
/// instruction included) the whole answer is continued from.
pub struct Continued {
    pub plan: Plan,
    pub body: GenerateContentRequest,
    /// The upstream model id (checked).
    pub model: String,
}

/// `/v1/chat/completions` with `stream: true`, answered from the non-stream
/// `request`: admitted first (at `multiplier` times the model's cost), then
/// streamed as `ctx` says. With `continued`, the answer is first continued
/// until complete and stitched (anti-truncation), all before the client sees it.
#[allow(clippy::too_many_arguments)]
pub async fn chat(
    app: &App,
    caller: &Caller,
    snap: &Rc<Snapshot>,
    request: UpstreamRequest,
    ctx: ChatContext,
    include_usage: bool,
    estimate: impl FnOnce() -> Estimate,
    continued: Option<Continued>,
) -> Result<Response, GatewayError> {
    let multiplier = continued.as_ref().map_or(1, |_| COST_MULTIPLIER);
    let ticket = admit_call(app, caller, snap, &request.gate, true, estimate, multiplier).await?;
    let call = generate(app, snap, request, ctx.model.clone());
    let calls = continued
        .as_ref()
        .map_or(1, |c| 1 + u64::from(c.plan.max_attempts()));
    let client_model = ctx.model.clone();
    let detached = app.detached();
    let owned_snap = Rc::clone(snap);
    let answer = async move {
        let ok = call.await?;
        let key_id = ok.key_id.clone();
        let answer: GenerateContentResponse = ok.json()?;
        let Some(Continued { plan, body, model }) = continued else {
            let usage = answer
                .usage_metadata
                .as_ref()
                .map(from_metadata)
                .unwrap_or_default();
            return Ok(Served {
                answer,
                key_id,
                usage,
            });
        };
        let calls = Calls {
            app: &detached,
            snap: &owned_snap,
            model: &model,
            client_model: &client_model,
            pin: pin_of(&body, &key_id),
        };
        let stitcher = Stitcher::new(Continuation::new(plan, body));
        match stitch(&calls, stitcher, answer, key_id).await {
            Ok(Stitched {
                response,
                usage,
                key_id,
            }) => Ok(Served {
                answer: response,
                key_id,
                usage,
            }),
            // Nothing but heartbeats was sent: the client gets the error event. The calls
            // answered before the failure are not charged (a failed settlement).
            Err(Unfinished { error, .. }) => Err(error),
        }
    };
    let format = ChatSse::new(ctx, include_usage);
    let headers = render::sse_headers()?;
    respond(
        app,
        ticket,
        format,
        answer,
        Timing::of(snap, calls),
        headers,
    )
}

/// `:streamGenerateContent` answered from the non-stream `request`: as SSE
/// events when `sse` (`alt=sse`), else as Google's JSON array.
pub async fn native(
    app: &App,
    caller: &Caller,
    snap: &Rc<Snapshot>,
    request: UpstreamRequest,
    sse: bool,
    estimate: impl FnOnce() -> Estimate,
) -> Result<Response, GatewayError> {
    let ticket = admit_call(app, caller, snap, &request.gate, true, estimate, 1).await?;
    let call = generate(app, snap, request, String::new());
    let answer = async move {
        let ok = call.await?;
        let UpstreamBody::Full(bytes) = ok.body else {
            return Err(GatewayError::Internal(
                "a non-stream request got a stream".into(),
            ));
        };
        Ok(Served {
            usage: usage_in(&bytes),
            answer: bytes,
            key_id: ok.key_id,
        })
    };
    let timing = Timing::of(snap, 1);
    let headers = Headers::new();
    // `no-transform`: a compressing proxy buffers small writes, and heartbeats are
    // only worth anything if they reach the client as they are written.
    headers.set("cache-control", "no-cache, no-transform")?;
    if sse {
        headers.set("content-type", "text/event-stream")?;
        respond(app, ticket, NativeSse, answer, timing, headers)
    } else {
        headers.set("content-type", "application/json; charset=UTF-8")?;
        respond(app, ticket, NativeArray, answer, timing, headers)
    }
}

/// The one non-stream upstream call, with failover, as a future the response
/// body can own. An upstream refusal becomes the gateway's error for `model`.
pub fn generate(
    app: &App,
    snap: &Rc<Snapshot>,
    request: UpstreamRequest,
    model: String,
) -> impl Future<Output = Result<UpstreamOk, GatewayError>> + 'static {
    let app = app.detached();
    let snap = Rc::clone(snap);
    async move {
        upstream::send(&app, &snap, &request)
            .await
            .map_err(|e| e.to_error(&model))
    }
}

/// How often a fake stream beats, and how long its call may still run once the
/// client left before its ticket settles as failed.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub interval_ms: u64,
    pub grace_ms: u64,
}

impl Timing {
    /// For a call of `calls` upstream calls, each with failover: every attempt may take
    /// the upstream timeout.
    pub fn of(snap: &Snapshot, calls: u64) -> Self {
        let settings = &snap.settings;
        let attempts = u64::from(settings.max_retries) + 1;
        Self {
            interval_ms: settings.compat.fake_stream_interval_ms,
            grace_ms: settings
                .upstream_timeout_ms
                .saturating_mul(attempts)
                .saturating_mul(calls.max(1)),
        }
    }
}

/// The response: HTTP 200 at once with `format`'s opening, a heartbeat every
/// `timing.interval_ms` while `call` runs, then its answer (or error) and the end.
///
/// `call` runs in the request's background work, not in the response body: it
/// proceeds however fast the client reads, and settles the ticket when it
/// resolves (served with its usage, or failed), even when the client left
/// meanwhile. When the runtime cancels it with the client, the ticket settles
/// as failed then ([`Ticket::settle_later`]).
pub fn respond<F, Fut>(
    app: &App,
    ticket: Ticket,
    format: F,
    call: Fut,
    timing: Timing,
    headers: Headers,
) -> Result<Response, GatewayError>
where
    F: Format + 'static,
    F::Answer: 'static,
    Fut: Future<Output = Result<Served<F::Answer>, GatewayError>> + 'static,
{
    let pending = ticket.settle_later(app, timing.grace_ms);
    let (answered, answer) = oneshot::channel();
    app.background.spawn(async move {
        let result = settle(pending, call.await);
        // The body is gone when the client left; the ticket is settled all the same.
        let _ = answered.send(result);
    });
    let body = Body {
        stream: FakeStream::new(format),
        answer,
        interval: Duration::from_millis(timing.interval_ms),
        opened: false,
    };
    let bytes = stream::unfold(body, |mut b| async move {
        if b.stream.ended() {
            return None;
        }
        if !b.opened {
            b.opened = true;
            return Some((b.stream.opening(), b));
        }
        let tick = Box::pin(Delay::from(b.interval));
        let resolved = match select(&mut b.answer, tick).await {
            Either::Left((result, _)) => Some(result.unwrap_or_else(|_| {
                Err(GatewayError::Internal(
                    "the upstream call ended without an answer".into(),
                ))
            })),
            Either::Right(((), _)) => None,
        };
        let out = match resolved {
            Some(result) => b.stream.end(result),
            None => b.stream.heartbeat(),
        };
        Some((out, b))
    });
    let bytes = bytes.map(Ok::<Vec<u8>, Infallible>);
    let (resp, pump) = piped(bytes, headers)?;
    app.background.spawn(pump);
    Ok(resp)
}

/// The response body's state: the writer, and where the answer will arrive.
struct Body<F: Format> {
    stream: FakeStream<F>,
    answer: oneshot::Receiver<Result<F::Answer, GatewayError>>,
    interval: Duration,
    opened: bool,
}

/// Settles the ticket with what the call came to, before the client sees it.
fn settle<A>(pending: Pending, result: Result<Served<A>, GatewayError>) -> Result<A, GatewayError> {
    match result {
        Ok(served) => {
            pending.settle(Outcome::served(served.usage, served.key_id));
            Ok(served.answer)
        }
        Err(err) => {
            if err.status() >= 500 {
                worker::console_warn!("[gemgate] fake stream failed: {err}");
            }
            pending.settle(Outcome::failed(&err));
            Err(err)
        }
    }
}
