//! Anti-truncation's calls: the first answer arrived through the usual
//! admission and failover; each continuation the domain asks for is another
//! upstream call with failover (`upstream::send`), and its pieces go through
//! the same pipeline, so the client sees one stream or one answer.

use std::convert::Infallible;
use std::rc::Rc;

use futures::{StreamExt, stream};
use worker::Response;

use crate::domain::error::GatewayError;
use crate::domain::gemini::{GenerateContentRequest, GenerateContentResponse};
use crate::domain::quota::Usage;
use crate::domain::translate::chat::{self, ChatContext};
use crate::domain::translate::continuation::{Continuation, ContinuedSsePipeline, Plan, Stitcher};
use crate::edge::app::App;
use crate::edge::billing::meter::{Meter, Metering};
use crate::edge::billing::ticket::{Outcome, Ticket};
use crate::edge::http::render;
use crate::edge::http::stream::piped;
use crate::edge::relay::generate_request;
use crate::edge::snapshot::Snapshot;
use crate::edge::upstream::{self, BodyStream, StreamBreak, UpstreamBody, UpstreamOk};

/// A chat request in anti-truncation mode, whose first call was answered.
pub struct ContinuedChat {
    pub plan: Plan,
    /// The upstream model id (checked).
    pub model: String,
    /// The first request, marker instruction included.
    pub body: GenerateContentRequest,
    pub ctx: ChatContext,
    pub stream: bool,
    pub include_usage: bool,
}

/// Answers a continued chat request: a seamless SSE stream, or one stitched completion.
/// Settles `ticket` on every path, with the usage of every call.
pub async fn respond(
    app: &App,
    snap: Rc<Snapshot>,
    mut ticket: Ticket,
    ok: UpstreamOk,
    chat: ContinuedChat,
) -> Result<Response, GatewayError> {
    let ContinuedChat {
        plan,
        model,
        body,
        ctx,
        stream,
        include_usage,
    } = chat;
    if stream {
        let meter = ticket.settle_when_done(
            app,
            ok.key_id.clone(),
            snap.settings.upstream_timeout_ms,
            Metering::Told,
        );
        let pin = pin_of(&body, &ok.key_id);
        let pipeline =
            ContinuedSsePipeline::new(ctx.clone(), include_usage, Continuation::new(plan, body));
        let mut relay = Relay::new(app, snap, model, ctx.model, ok, pipeline, meter);
        relay.pin = pin;
        return sse_response(app, relay);
    }
    let key_id = ok.key_id.clone();
    let first: GenerateContentResponse = ticket.check(ok.json())?;
    let calls = Calls {
        app,
        snap: &snap,
        model: &model,
        client_model: &ctx.model,
        pin: pin_of(&body, &key_id),
    };
    match stitch(
        &calls,
        Stitcher::new(Continuation::new(plan, body)),
        first,
        key_id,
    )
    .await
    {
        Ok(done) => {
            ticket.settle(Outcome::served(done.usage, done.key_id));
            render::json(200, &chat::chat_response(done.response, &ctx)?)
        }
        Err(cut) => {
            // The calls that were answered are billed: settle with their usage.
            ticket.settle(Outcome {
                usage: cut.usage,
                served: true,
                status: cut.error.status(),
                key_id: cut.key_id,
                error: Some(cut.error.client_message()),
            });
            Err(cut.error)
        }
    }
}

/// Where continuation calls go.
pub struct Calls<'a> {
    pub app: &'a App,
    pub snap: &'a Snapshot,
    /// The upstream model id (checked).
    pub model: &'a str,
    /// The model as the client named it, for errors.
    pub client_model: &'a str,
    /// The key every call must go to (see [`pin_of`]).
    pub pin: Option<String>,
}

/// The key a continuation of `body` must go to (`domain::files::continuation_pin`).
pub fn pin_of(body: &GenerateContentRequest, first_key: &str) -> Option<String> {
    crate::domain::files::continuation_pin(body.cached_content.as_deref(), first_key)
}

/// A stitched answer and what it cost.
pub struct Stitched {
    pub response: GenerateContentResponse,
    /// Every call's usage, summed.
    pub usage: Usage,
    /// The key of the last call.
    pub key_id: String,
}

/// A continuation call failed: the error, and the usage of the calls answered before it.
pub struct Unfinished {
    pub error: GatewayError,
    pub usage: Usage,
    pub key_id: String,
}

/// Continues a whole (non-streaming) answer until it is complete or out of attempts, each
/// continuation a `generateContent` call with failover, and returns the stitched answer.
/// `first` is the answer to the first request, which `stitcher`'s machine was built with.
pub async fn stitch(
    calls: &Calls<'_>,
    mut stitcher: Stitcher,
    first: GenerateContentResponse,
    mut key_id: String,
) -> Result<Stitched, Unfinished> {
    let mut next = stitcher.on_answer(first);
    // Bounded: the machine asks for at most `anti_truncation_max_attempts` continuations.
    while let Some(body) = next {
        worker::console_log!(
            "[gemgate] anti-truncation: continuing {} (continuation {})",
            calls.model,
            stitcher.attempts()
        );
        let answered = async {
            let mut request = generate_request(calls.app, calls.model, &body, false)?;
            request.pin.clone_from(&calls.pin);
            let ok = upstream::send(calls.app, calls.snap, &request)
                .await
                .map_err(|e| e.to_error(calls.client_model))?;
            let id = ok.key_id.clone();
            Ok::<_, GatewayError>((id, ok.json::<GenerateContentResponse>()?))
        }
        .await;
        match answered {
            Ok((id, answer)) => {
                key_id = id;
                next = stitcher.on_answer(answer);
            }
            Err(error) => {
                return Err(Unfinished {
                    error,
                    usage: stitcher.usage(),
                    key_id,
                });
            }
        }
    }
    Ok(Stitched {
        usage: stitcher.usage(),
        response: stitcher.into_response(),
        key_id,
    })
}

/// A continued stream: the current upstream piece, and what a continuation call needs.
struct Relay {
    app: App,
    snap: Rc<Snapshot>,
    model: String,
    client_model: String,
    /// The key every continuation must go to (see [`pin_of`]).
    pin: Option<String>,
    pipeline: ContinuedSsePipeline,
    /// The first chunk of the current piece, read during failover.
    first: Option<Vec<u8>>,
    rest: Option<BodyStream>,
    meter: Meter,
}

impl Relay {
    fn new(
        app: &App,
        snap: Rc<Snapshot>,
        model: String,
        client_model: String,
        ok: UpstreamOk,
        pipeline: ContinuedSsePipeline,
        meter: Meter,
    ) -> Self {
        let mut relay = Self {
            app: app.detached(),
            snap,
            model,
            client_model,
            pin: None,
            pipeline,
            first: None,
            rest: None,
            meter,
        };
        relay.take_body(ok);
        relay
    }

    fn take_body(&mut self, ok: UpstreamOk) {
        let (first, rest) = match ok.body {
            UpstreamBody::Stream { first, rest } => (first, Some(rest)),
            UpstreamBody::Full(bytes) => (bytes, None),
        };
        self.first = Some(first);
        self.rest = rest;
    }

    /// Translates upstream bytes; the meter learns the usage summed so far.
    fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        let out = self.pipeline.push(bytes);
        self.meter.observe(bytes);
        self.meter.record(Some(self.pipeline.usage()));
        out
    }

    /// The next bytes for the client; `None` once the stream is over.
    async fn step(&mut self) -> Option<Vec<u8>> {
        if self.pipeline.ended() {
            return None;
        }
        if let Some(first) = self.first.take() {
            return Some(self.push(&first));
        }
        let next = match self.rest.as_mut() {
            Some(rest) => rest.next().await,
            None => None,
        };
        match next {
            Some(Ok(bytes)) => Some(self.push(&bytes)),
            Some(Err(broke)) => {
                worker::console_warn!("[gemgate] upstream stream ended early: {broke:?}");
                self.rest = None;
                let err = break_error(&broke);
                Some(self.end_piece(Some(&err)).await)
            }
            None => {
                self.rest = None;
                Some(self.end_piece(None).await)
            }
        }
    }

    /// The piece ended: finish the stream, or open the continuation the pipeline asks for.
    async fn end_piece(&mut self, broke: Option<&GatewayError>) -> Vec<u8> {
        let end = self.pipeline.end_piece(broke);
        self.meter.record(Some(self.pipeline.usage()));
        let mut out = end.bytes;
        let Some(body) = end.next else {
            return out;
        };
        worker::console_log!(
            "[gemgate] anti-truncation: continuing {} (continuation {})",
            self.model,
            self.pipeline.attempts()
        );
        // A continuation call is activity: the meter must not take it for a stalled stream.
        self.meter.observe(&[]);
        match self.open(&body).await {
            Ok(ok) => self.take_body(ok),
            Err(err) => {
                worker::console_warn!("[gemgate] anti-truncation: continuation failed: {err}");
                out.extend(self.pipeline.fail(&err));
            }
        }
        out
    }

    async fn open(&self, body: &GenerateContentRequest) -> Result<UpstreamOk, GatewayError> {
        let mut request = generate_request(&self.app, &self.model, body, true)?;
        request.pin.clone_from(&self.pin);
        upstream::send(&self.app, &self.snap, &request)
            .await
            .map_err(|e| e.to_error(&self.client_model))
    }
}

fn break_error(broke: &StreamBreak) -> GatewayError {
    match broke {
        StreamBreak::Idle => {
            GatewayError::UpstreamTimeout("The upstream stream stalled and was cut off.".into())
        }
        StreamBreak::Failed(_) => {
            GatewayError::BadGateway("The upstream stream was interrupted.".into())
        }
    }
}

/// Streams the continued completion to the client as the pieces arrive, through the
/// runtime's pipe.
fn sse_response(app: &App, relay: Relay) -> Result<Response, GatewayError> {
    let body = stream::unfold(relay, |mut relay| async move {
        let out = relay.step().await?;
        Some((Ok::<Vec<u8>, Infallible>(out), relay))
    });
    let (resp, pump) = piped(body, render::sse_headers()?)?;
    app.background.spawn(pump);
    Ok(resp)
}
