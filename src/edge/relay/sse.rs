//! A translated stream relayed to the client, whatever surface's SSE it speaks: the
//! upstream body pumped through a domain pipeline ([`SsePipeline`]) while the meter learns
//! its usage, and response ids.

use std::convert::Infallible;

use futures::future::LocalBoxFuture;
use futures::{StreamExt, stream};
use worker::Response;

use crate::domain::error::GatewayError;
use crate::domain::quota::Usage;
use crate::domain::translate::stream::SsePipeline;
use crate::edge::app::App;
use crate::edge::billing::meter::{Meter, Metering};
use crate::edge::billing::ticket::Ticket;
use crate::edge::http::render;
use crate::edge::http::stream::piped;
use crate::edge::now_ms;
use crate::edge::snapshot::Snapshot;
use crate::edge::upstream::fetch::{BodyStream, StreamBreak};
use crate::edge::upstream::{UpstreamBody, UpstreamOk};

/// The state of a translated stream: the pipeline until it finished, the
/// upstream body, the first chunk already read during failover, and the meter
/// that settles the request when the pump is dropped.
struct Pump {
    pipeline: Option<Box<dyn Relay>>,
    rest: Option<BodyStream>,
    first: Option<Vec<u8>>,
    meter: Meter,
}

/// Work a pipeline needs done before its trailing bytes go out (storing what it finished).
pub type BeforeEnd = LocalBoxFuture<'static, ()>;

/// A pipeline behind a pointer, so one pump (its future, its stream) serves every surface:
/// a copy per surface would cost the wasm several kilobytes.
pub trait Relay {
    fn usage(&self) -> Option<Usage>;
    fn push(&mut self, upstream_bytes: &[u8]) -> Vec<u8>;
    /// The pipeline's trailing bytes: its `finish`, or its `fail` with `err`; and what the
    /// pump must await before it sends them, if anything.
    fn end(self: Box<Self>, err: Option<&GatewayError>) -> (Vec<u8>, Option<BeforeEnd>);
}

impl<P: SsePipeline> Relay for P {
    fn usage(&self) -> Option<Usage> {
        SsePipeline::usage(self)
    }

    fn push(&mut self, upstream_bytes: &[u8]) -> Vec<u8> {
        SsePipeline::push(self, upstream_bytes)
    }

    fn end(self: Box<Self>, err: Option<&GatewayError>) -> (Vec<u8>, Option<BeforeEnd>) {
        let bytes = match err {
            Some(err) => (*self).fail(err),
            None => (*self).finish(),
        };
        (bytes, None)
    }
}

impl Pump {
    /// Translates upstream bytes; the meter learns the usage the pipeline read.
    fn push(&mut self, bytes: &[u8]) -> Option<Vec<u8>> {
        let pipeline = self.pipeline.as_mut()?;
        let out = pipeline.push(bytes);
        self.meter.observe(bytes);
        self.meter.record(pipeline.usage());
        Some(out)
    }
}

/// Streams the translated SSE to the client, chunk by chunk as upstream
/// chunks arrive (through the runtime's pipe, written by a background task);
/// nothing is buffered whole.
/// The ticket settles once the stream is done ([`Ticket::settle_when_done`]).
pub fn sse_response<P: SsePipeline + 'static>(
    app: &App,
    snap: &Snapshot,
    ticket: Ticket,
    ok: UpstreamOk,
    pipeline: P,
) -> Result<Response, GatewayError> {
    relay(app, snap, ticket, ok, Box::new(pipeline))
}

/// [`sse_response`] for a pipeline that is not a plain [`SsePipeline`].
pub fn relay(
    app: &App,
    snap: &Snapshot,
    ticket: Ticket,
    ok: UpstreamOk,
    pipeline: Box<dyn Relay>,
) -> Result<Response, GatewayError> {
    let meter = ticket.settle_when_done(
        app,
        ok.key_id.clone(),
        snap.settings.upstream_timeout_ms,
        Metering::Told,
    );
    let (first, rest) = match ok.body {
        UpstreamBody::Stream { first, rest } => (first, Some(rest)),
        UpstreamBody::Full(bytes) => (bytes, None),
    };
    let pump = Pump {
        pipeline: Some(pipeline),
        rest,
        first: Some(first),
        meter,
    };
    let body = stream::unfold(pump, |mut p| async move {
        // Once the pipeline finished, the upstream body (already ended) is never polled again.
        p.pipeline.as_ref()?;
        if let Some(first) = p.first.take() {
            let out = p.push(&first)?;
            return Some((out, p));
        }
        let next = match p.rest.as_mut() {
            Some(rest) => rest.next().await,
            None => None,
        };
        match next {
            Some(Ok(bytes)) => {
                let out = p.push(&bytes)?;
                Some((out, p))
            }
            Some(Err(broke)) => {
                worker::console_warn!("[gemgate] upstream stream ended early: {broke:?}");
                let pipeline = p.pipeline.take()?;
                let err = match broke {
                    StreamBreak::Idle => GatewayError::UpstreamTimeout(
                        "The upstream stream stalled and was cut off.".into(),
                    ),
                    StreamBreak::Failed(_) => {
                        GatewayError::BadGateway("The upstream stream was interrupted.".into())
                    }
                };
                Some((pipeline.end(Some(&err)).0, p))
            }
            None => {
                let pipeline = p.pipeline.take()?;
                let (out, before) = pipeline.end(None);
                if let Some(before) = before {
                    before.await;
                }
                Some((out, p))
            }
        }
    })
    .map(Ok::<Vec<u8>, Infallible>);
    let (response, pump) = piped(body, render::sse_headers()?)?;
    app.background.spawn(pump);
    Ok(response)
}

/// A response id such as `chatcmpl-3fJ…`: 24 random base62 characters.
pub fn new_id(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 24];
    if getrandom::fill(&mut bytes).is_err() {
        // Ids need uniqueness, not secrecy: fall back to the clock.
        bytes[..8].copy_from_slice(&now_ms().to_le_bytes());
    }
    let tail: String = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    format!("{prefix}{tail}")
}
