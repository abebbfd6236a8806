//! Reading request bodies under a size cap, so an oversized body is a 413
//! and never an out-of-memory isolate; and reading bodies chunk by chunk.

use serde_json::Value;
use worker::wasm_bindgen::JsCast;
use worker::wasm_bindgen::prelude::{Closure, wasm_bindgen};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{Request, js_sys, wasm_bindgen::JsValue, web_sys};

use crate::domain::error::GatewayError;
use crate::domain::translate::json_kind;

/// Reads the whole body, refusing it once it passes `limit` bytes. A
/// `Content-Length` over the limit is refused before reading anything; a body
/// without one (chunked) is counted as it streams in, and its reader is
/// cancelled at the first chunk past the limit, so no more than `limit` bytes
/// (and one chunk) are ever held.
pub async fn read_capped(req: &mut Request, limit: u64) -> Result<Vec<u8>, GatewayError> {
    let too_large = || GatewayError::PayloadTooLarge { limit_bytes: limit };
    let declared = req
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    if declared.is_some() {
        // The declared length frames the body, and it is within the cap: one
        // read of the whole body, rather than a reader's round trips per chunk.
        let buf = req
            .bytes()
            .await
            .map_err(|e| GatewayError::invalid(format!("could not read the request body: {e}")))?;
        if buf.len() as u64 > limit {
            return Err(too_large());
        }
        return Ok(buf);
    }
    let Some(body) = req.inner().body() else {
        // No body at all.
        return Ok(Vec::new());
    };
    let mut reader = BodyReader::new(&body);
    let mut buf = Vec::new();
    while let Some(chunk) = reader.next().await {
        let chunk = chunk
            .map_err(|e| GatewayError::invalid(format!("could not read the request body: {e}")))?;
        if (buf.len() + chunk.len()) as u64 > limit {
            // Stop the upload here rather than pull the rest of it in.
            reader.cancel().await;
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// Admin request bodies are small; this cap is fixed.
const ADMIN_BODY_LIMIT: u64 = 1024 * 1024;

/// An admin API body as a JSON object; an empty body is `{}`. Anything but an object is a
/// 400 here, before a handler's serde would fill a struct from an array by position.
pub async fn read_admin_json(req: &mut Request) -> Result<Value, GatewayError> {
    let value = read_admin_value(req).await?;
    if !value.is_object() {
        return Err(GatewayError::invalid(format!(
            "The body must be a JSON object, not {}.",
            json_kind(&value)
        )));
    }
    Ok(value)
}

/// An admin API body as any JSON value (a list of credentials is a body of its own); an
/// empty body is `{}`.
pub async fn read_admin_value(req: &mut Request) -> Result<Value, GatewayError> {
    let raw = read_capped(req, ADMIN_BODY_LIMIT).await?;
    if raw.is_empty() {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    serde_json::from_slice(&raw)
        .map_err(|e| GatewayError::invalid(format!("Invalid JSON body: {e}")))
}

/// A whole response body, in one `arrayBuffer()`. The worker crate's
/// `Response::bytes` (and `json`, `text`) pull a body through a stream
/// reader chunk by chunk, which costs more than the rest of a small
/// request's handling.
pub async fn read_response(resp: &worker::Response) -> worker::Result<Vec<u8>> {
    let stream = match resp.body() {
        worker::ResponseBody::Stream(stream) => stream.clone(),
        worker::ResponseBody::Body(bytes) => return Ok(bytes.clone()),
        worker::ResponseBody::Empty => return Ok(Vec::new()),
    };
    let whole = web_sys::Response::new_with_opt_readable_stream(Some(&stream))?;
    let buffer = JsFuture::from(whole.array_buffer()?).await?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

/// The result of a reader's `read()`: `{done, value}`, read with two getters.
#[wasm_bindgen(wasm_bindgen = worker::wasm_bindgen)]
extern "C" {
    type ReadResult;
    #[wasm_bindgen(method, getter)]
    fn done(this: &ReadResult) -> bool;
    #[wasm_bindgen(method, getter)]
    fn value(this: &ReadResult) -> js_sys::Uint8Array;

    /// A promise whose rejection is caught by any JS function.
    type Caught;
    #[wasm_bindgen(method, js_name = catch)]
    fn catch_with(this: &Caught, handler: &JsValue) -> JsValue;
}

/// A body (an upstream answer, a chunked upload) read chunk by chunk through
/// its own reader. The worker crate's `ByteStream` (wasm-streams) costs more
/// per chunk, and releases the reader's lock once the body ended, which
/// workerd makes a visible share of a stream's CPU; an ended body needs no
/// release. A reader dropped before the end cancels the body (`ByteStream`
/// only released its lock, which left the upstream connection open).
pub struct BodyReader {
    reader: Option<web_sys::ReadableStreamDefaultReader>,
}

impl BodyReader {
    pub fn new(body: &web_sys::ReadableStream) -> Self {
        Self {
            reader: Some(body.get_reader().unchecked_into()),
        }
    }

    /// The next chunk; `None` at the end (an aborted body ends, as with `ByteStream`).
    pub async fn next(&mut self) -> Option<Result<Vec<u8>, worker::Error>> {
        let read = self.reader.as_ref()?.read();
        let result = JsFuture::from(read).await;
        match result {
            Ok(result) => {
                let result: ReadResult = result.unchecked_into();
                if result.done() {
                    self.reader = None;
                    return None;
                }
                Some(Ok(result.value().to_vec()))
            }
            Err(e) => {
                // The stream errored: its reader is released with it.
                self.reader = None;
                let e = worker::Error::from(e);
                if e.to_string() == "Error: aborted" {
                    None
                } else {
                    Some(Err(e))
                }
            }
        }
    }
}

impl BodyReader {
    /// Cancels the body: the reader wants no more of it, and the runtime may
    /// discard the rest rather than buffer it. A cancel that fails (the body
    /// already errored) changes nothing for the caller.
    pub async fn cancel(mut self) {
        if let Some(reader) = self.reader.take() {
            let _ = JsFuture::from(reader.cancel()).await;
        }
    }
}

impl Drop for BodyReader {
    fn drop(&mut self) {
        if let Some(reader) = self.reader.take() {
            // Nobody reads the rest (an idle cut-off, a client that left, an answer given
            // up): cancel it, so that the runtime closes the connection rather than keep
            // receiving what the other side still sends. A read still pending ends with it.
            let cancelled = reader.cancel();
            let ignore = Closure::once_into_js(|_: JsValue| {});
            cancelled.unchecked_ref::<Caught>().catch_with(&ignore);
        }
    }
}
