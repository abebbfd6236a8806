//! Reading request bodies under a size cap, so an oversized body is a 413
//! and never an out-of-memory isolate.

use futures::StreamExt;
use serde_json::Value;
use worker::Request;

use crate::domain::error::GatewayError;

/// Reads the whole body, refusing it once it passes `limit` bytes. A
/// `Content-Length` over the limit is refused before reading anything.
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
    let Ok(mut stream) = req.stream() else {
        // No body at all.
        return Ok(Vec::new());
    };
    let mut buf =
        Vec::with_capacity(usize::try_from(declared.unwrap_or(0).min(limit)).unwrap_or(0));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| GatewayError::invalid(format!("could not read the request body: {e}")))?;
        if (buf.len() + chunk.len()) as u64 > limit {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// Admin request bodies are small; this cap is fixed.
const ADMIN_BODY_LIMIT: u64 = 1024 * 1024;

/// An admin API body as JSON; an empty body is `{}`.
pub async fn read_admin_json(req: &mut Request) -> Result<Value, GatewayError> {
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
    let whole = worker::web_sys::Response::new_with_opt_readable_stream(Some(&stream))?;
    let buffer = worker::wasm_bindgen_futures::JsFuture::from(whole.array_buffer()?).await?;
    Ok(worker::js_sys::Uint8Array::new(&buffer).to_vec())
}
