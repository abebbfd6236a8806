//! Fake streaming at the edge: a client that asked for a stream gets its
//! response at once, while the gateway makes one non-stream upstream call.
//! The response body races that call against a heartbeat timer; every byte it
//! writes is decided by `domain::translate::fake_stream`.
//!
//! Admission (the user's ledger, the model's queue) runs before the response
//! starts, so a refusal is still a plain HTTP error. The upstream call is a
//! future the handler hands over ([`respond`]): today one `generateContent`
//! with failover ([`generate`]); anti-truncation's stitched call plugs in the
//! same way. Until it resolves the client has only the opening and heartbeats,
//! so failover stays invisible. The ticket settles once the call resolved,
//! or as failed when the client leaves first.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use futures::future::{Either, select};
use futures::stream;
use worker::{Delay, Headers, Response};

use crate::domain::error::GatewayError;
use crate::domain::gemini::GenerateContentResponse;
use crate::domain::quota::{Estimate, Usage};
use crate::domain::translate::chat::ChatContext;
use crate::domain::translate::fake_stream::{ChatSse, FakeStream, Format, NativeArray, NativeSse};
use crate::domain::usage::{from_metadata, usage_in};
use crate::edge::access::Caller;
use crate::edge::app::App;
use crate::edge::billing::ticket::{Outcome, Pending, Ticket, admit_call};
use crate::edge::http::render;
use crate::edge::snapshot::Snapshot;
use crate::edge::upstream::{self, UpstreamBody, UpstreamOk, UpstreamRequest};

/// What the upstream call came to: the answer, the key that served it, and
/// the usage to settle with.
pub struct Served<A> {
    pub answer: A,
    pub key_id: String,
    pub usage: Usage,
}

/// `/v1/chat/completions` with `stream: true`, answered from the non-stream
/// `request`: admitted first, then streamed as `ctx` says.
pub async fn chat(
    app: &App,
    caller: &Caller,
    snap: &Rc<Snapshot>,
    request: UpstreamRequest,
    ctx: ChatContext,
    include_usage: bool,
    estimate: impl FnOnce() -> Estimate,
) -> Result<Response, GatewayError> {
    let ticket = admit_call(app, caller, snap, &request.gate, true, estimate).await?;
    let call = generate(app, snap, request, ctx.model.clone());
    let answer = async move {
        let ok = call.await?;
        let key_id = ok.key_id.clone();
        let answer: GenerateContentResponse = ok.json()?;
        let usage = answer
            .usage_metadata
            .as_ref()
            .map(from_metadata)
            .unwrap_or_default();
        Ok(Served {
            answer,
            key_id,
            usage,
        })
    };
    let interval = snap.settings.compat.fake_stream_interval_ms;
    let format = ChatSse::new(ctx, include_usage);
    respond(
        app,
        ticket,
        format,
        answer,
        interval,
        render::sse_headers()?,
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
    let ticket = admit_call(app, caller, snap, &request.gate, true, estimate).await?;
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
    let interval = snap.settings.compat.fake_stream_interval_ms;
    let headers = Headers::new();
    if sse {
        headers.set("content-type", "text/event-stream")?;
        headers.set("cache-control", "no-cache")?;
        respond(app, ticket, NativeSse, answer, interval, headers)
    } else {
        headers.set("content-type", "application/json; charset=UTF-8")?;
        respond(app, ticket, NativeArray, answer, interval, headers)
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

/// The response: HTTP 200 at once with `format`'s opening, a heartbeat every
/// `interval_ms` while `call` runs, then its answer (or error) and the end. The
/// ticket settles when `call` resolves (served with its usage, or failed), or
/// as failed when the client leaves first.
pub fn respond<F, Fut>(
    app: &App,
    ticket: Ticket,
    format: F,
    call: Fut,
    interval_ms: u64,
    headers: Headers,
) -> Result<Response, GatewayError>
where
    F: Format + 'static,
    F::Answer: 'static,
    Fut: Future<Output = Result<Served<F::Answer>, GatewayError>> + 'static,
{
    let body = Body {
        stream: FakeStream::new(format),
        call: Box::pin(call),
        pending: Some(ticket.settle_later(app)),
        interval: Duration::from_millis(interval_ms),
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
        let resolved = match select(b.call.as_mut(), tick).await {
            Either::Left((result, _)) => Some(result),
            Either::Right(((), _)) => None,
        };
        let out = match resolved {
            Some(result) => {
                let result = b.settle(result);
                b.stream.end(result)
            }
            None => b.stream.heartbeat(),
        };
        Some((out, b))
    });
    let bytes = futures::StreamExt::map(bytes, Ok::<Vec<u8>, worker::Error>);
    Ok(Response::from_stream(bytes)?.with_headers(headers))
}

/// The response body's state. Dropped (client gone) before the call resolved,
/// its `pending` settles the ticket as failed.
struct Body<F: Format, Fut> {
    stream: FakeStream<F>,
    call: Pin<Box<Fut>>,
    pending: Option<Pending>,
    interval: Duration,
    opened: bool,
}

impl<F: Format, Fut> Body<F, Fut> {
    /// Settles the ticket with what the call came to, before the client sees it.
    fn settle(
        &mut self,
        result: Result<Served<F::Answer>, GatewayError>,
    ) -> Result<F::Answer, GatewayError> {
        let Some(pending) = self.pending.take() else {
            return result.map(|served| served.answer);
        };
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
}
