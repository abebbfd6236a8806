//! Streamed response bodies written through workerd's native pipe.
//!
//! The worker crate's `Response::from_stream` wraps a Rust stream in a JS
//! `ReadableStream` whose pull source polls it: every chunk crosses between JS
//! and wasm several times. Here the body is instead the readable side of an
//! `IdentityTransformStream` (workerd's native pipe, a global there), and a
//! task writes the chunks into its writable side: one write per chunk, or
//! fewer, since chunks the source yields while a write is pending go out
//! together in the next one (whole chunks only, so event boundaries stay
//! where the source put them).
//!
//! Each write is awaited before more than [`READ_AHEAD`] bytes are read, so a
//! slow client slows the source down, as a pulled stream would. A write that
//! fails means the client went away: the task stops and drops the source at
//! once, which stops reading the upstream and lets whatever the source owns
//! (a stream's meter) settle. A source that ends with an error aborts the
//! body, so the client sees the connection cut, as it would with the
//! upstream's own.

use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;

use futures::future::{Either, select};
use futures::{Stream, StreamExt};
use worker::wasm_bindgen::JsValue;
use worker::wasm_bindgen::prelude::wasm_bindgen;
use worker::wasm_bindgen_futures::JsFuture;
use worker::{Headers, Response, ResponseBody, js_sys, web_sys};

use crate::domain::error::GatewayError;

/// How many bytes the task reads ahead of a write still pending. A
/// translated chunk is far smaller; the bound only matters when the client
/// reads slower than the upstream sends.
const READ_AHEAD: usize = 64 * 1024;

#[wasm_bindgen(wasm_bindgen = worker::wasm_bindgen)]
extern "C" {
    /// workerd's native pass-through stream (not a standard global).
    type IdentityTransformStream;
    #[wasm_bindgen(constructor, catch)]
    fn new() -> Result<IdentityTransformStream, JsValue>;
    #[wasm_bindgen(method, getter)]
    fn readable(this: &IdentityTransformStream) -> web_sys::ReadableStream;
    #[wasm_bindgen(method, getter)]
    fn writable(this: &IdentityTransformStream) -> Sink;

    /// The pipe's writable side.
    type Sink;
    #[wasm_bindgen(method, catch, js_name = getWriter)]
    fn get_writer(this: &Sink) -> Result<Writer, JsValue>;

    /// Its writer. A chunk passed as `Vec<u8>` is copied into a fresh
    /// `Uint8Array` by the glue, in the same call.
    type Writer;
    #[wasm_bindgen(method, catch)]
    fn write(this: &Writer, chunk: Vec<u8>) -> Result<js_sys::Promise, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn close(this: &Writer) -> Result<js_sys::Promise, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn abort(this: &Writer, reason: &JsValue) -> Result<js_sys::Promise, JsValue>;
}

/// The work that writes a piped body; it must be spawned for the body to flow
/// (as the request's background work, so that it outlives the handler).
pub type Pump = Pin<Box<dyn Future<Output = ()>>>;

/// A 200 response with `headers` whose body is what `source` yields, and the
/// task that writes it. Empty chunks are skipped. The source is dropped as
/// soon as it ended or the client went away, before the body is closed.
pub fn piped<S, E>(source: S, headers: Headers) -> Result<(Response, Pump), GatewayError>
where
    S: Stream<Item = Result<Vec<u8>, E>> + 'static,
    E: Display + 'static,
{
    let pipe = IdentityTransformStream::new().map_err(runtime("IdentityTransformStream"))?;
    let writer = pipe.writable().get_writer().map_err(runtime("getWriter"))?;
    let resp = Response::from_body(ResponseBody::Stream(pipe.readable()))?.with_headers(headers);
    Ok((resp, Box::pin(pump(Box::pin(source), writer))))
}

fn runtime(what: &'static str) -> impl FnOnce(JsValue) -> GatewayError {
    move |e| GatewayError::Internal(format!("{what}: {e:?}"))
}

/// Writes `source` into `writer` until it ends (close), fails (abort), or a
/// write fails (the client is gone).
async fn pump<S, E>(mut source: Pin<Box<S>>, writer: Writer)
where
    S: Stream<Item = Result<Vec<u8>, E>>,
    E: Display,
{
    let mut ready: Vec<u8> = Vec::new();
    let mut writing: Option<JsFuture> = None;
    // `Some` once the source ended: how.
    let mut ended: Option<Result<(), E>> = None;
    // Bounded: each turn either takes one item from the source, or settles one
    // write; the source ends (its idle guard ends a stalled upstream), and a
    // write resolves or rejects once the client read or left.
    loop {
        if writing.is_none() && !ready.is_empty() {
            match writer.write(std::mem::take(&mut ready)) {
                Ok(promise) => writing = Some(JsFuture::from(promise)),
                Err(_) => return,
            }
        }
        let next = match writing.as_mut() {
            None if ended.is_some() => break,
            None => source.next().await,
            Some(pending) if ended.is_some() || ready.len() >= READ_AHEAD => {
                if pending.await.is_err() {
                    return;
                }
                writing = None;
                continue;
            }
            // While a write is pending the source may run ahead; `next` is
            // cancel-safe (a stream keeps its own state between polls).
            Some(pending) => match select(pending, source.next()).await {
                Either::Left((written, _)) => {
                    if written.is_err() {
                        return;
                    }
                    writing = None;
                    continue;
                }
                Either::Right((next, _)) => next,
            },
        };
        match next {
            Some(Ok(chunk)) if ready.is_empty() => ready = chunk,
            Some(Ok(chunk)) => ready.extend_from_slice(&chunk),
            Some(Err(e)) => ended = Some(Err(e)),
            None => ended = Some(Ok(())),
        }
    }
    // The source (and a meter in it) goes before the client hears the end.
    drop(source);
    let closed = match ended {
        Some(Err(e)) => writer.abort(&js_sys::Error::new(&e.to_string()).into()),
        _ => writer.close(),
    };
    if let Ok(promise) = closed {
        // A client that left rejects it; nothing is left to tell.
        let _ = JsFuture::from(promise).await;
    }
}
