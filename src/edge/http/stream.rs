//! Streamed response bodies written through workerd's native pipe.
//!
//! The worker crate's `Response::from_stream` wraps a Rust stream in a JS
//! `ReadableStream` whose pull source polls it: every chunk crosses between JS
//! and wasm several times. Here the body is instead the readable side of an
//! `IdentityTransformStream` (workerd's native pipe, a global there), and a
//! task writes the chunks into its writable side, as `domain::pipe` decides:
//! chunks ready together go out in one write, whole; the source runs at most
//! [`READ_AHEAD`] bytes ahead of the client; a failed write (the client went
//! away) stops the task, which drops the source at once: that stops reading
//! the upstream and lets whatever the source owns (a stream's meter) settle.
//! A source that ends with an error aborts the body, so the client sees the
//! connection cut, as it would with the upstream's own.

use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;

use futures::Stream;
use futures::future::{FutureExt, Map};
use worker::wasm_bindgen::JsValue;
use worker::wasm_bindgen::prelude::wasm_bindgen;
use worker::wasm_bindgen_futures::JsFuture;
use worker::{Headers, Response, ResponseBody, js_sys, web_sys};

use crate::domain::error::GatewayError;
use crate::domain::pipe::{self, Pumped, Sink};

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
    fn writable(this: &IdentityTransformStream) -> Writable;

    /// The pipe's writable side.
    type Writable;
    #[wasm_bindgen(method, catch, js_name = getWriter)]
    fn get_writer(this: &Writable) -> Result<Writer, JsValue>;

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

/// A response (200 until told otherwise) with `headers` whose body is what `source` yields, and the
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

/// The pipe's writer as the pump's sink: a write resolves `false` when it rejects
/// (the client left).
struct PipeSink(Writer);

type Written = Map<JsFuture, fn(Result<JsValue, JsValue>) -> bool>;

impl Sink for PipeSink {
    type Written = Written;

    fn write(&mut self, chunk: Vec<u8>) -> Option<Written> {
        let written: fn(Result<JsValue, JsValue>) -> bool = |result| result.is_ok();
        let promise = self.0.write(chunk).ok()?;
        Some(JsFuture::from(promise).map(written))
    }
}

/// Writes `source` into `writer` (see `domain::pipe`), then drops the source
/// (and a meter in it) before the client hears the end: closed when the
/// source ended, aborted when it failed, nothing more when the client left.
async fn pump<S, E>(mut source: Pin<Box<S>>, writer: Writer)
where
    S: Stream<Item = Result<Vec<u8>, E>>,
    E: Display,
{
    let mut sink = PipeSink(writer);
    let pumped = pipe::pump(&mut source, &mut sink, READ_AHEAD).await;
    drop(source);
    let PipeSink(writer) = sink;
    let closed = match pumped {
        Pumped::Done => writer.close(),
        Pumped::Failed(e) => writer.abort(&js_sys::Error::new(&e.to_string()).into()),
        Pumped::Gone => return,
    };
    if let Ok(promise) = closed {
        // A client that left meanwhile rejects it; nothing is left to tell.
        let _ = JsFuture::from(promise).await;
    }
}
