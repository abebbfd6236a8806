//! Responses: JSON bodies, SSE headers, and each surface's error shape (built
//! by `domain::render`). Errors are logged once, here, with no secrets.

use serde::Serialize;
use worker::{Headers, Response};

use crate::domain::error::GatewayError;
use crate::domain::render::error_body;
use crate::domain::route::Surface;

/// A JSON response with a status.
pub fn json<T: Serialize>(status: u16, value: &T) -> Result<Response, GatewayError> {
    Ok(Response::from_json(value)?.with_status(status))
}

/// Google's JSON, relayed as it came: a body of bytes with its status and content type
/// (Google's own when it said one).
pub fn google_json(
    status: u16,
    body: Vec<u8>,
    content_type: Option<&str>,
) -> Result<Response, GatewayError> {
    let headers = Headers::new();
    headers.set(
        "content-type",
        content_type.unwrap_or("application/json; charset=UTF-8"),
    )?;
    Ok(Response::from_bytes(body)?
        .with_status(status)
        .with_headers(headers))
}

/// A text response with its content type (Prometheus, CSV).
pub fn text(status: u16, content_type: &str, body: &str) -> Result<Response, GatewayError> {
    let headers = Headers::new();
    headers.set("content-type", content_type)?;
    headers.set("cache-control", "no-store")?;
    Ok(Response::ok(body)?
        .with_status(status)
        .with_headers(headers))
}

/// Renders an error in the surface's own shape, with `Retry-After` when one applies.
pub fn error(surface: Surface, err: &GatewayError) -> worker::Result<Response> {
    let status = err.status();
    if status >= 500 {
        worker::console_error!("[gemgate] {status}: {err}");
    }
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    if let Some(secs) = err.retry_after_secs() {
        headers.set("retry-after", &secs.to_string())?;
    }
    Ok(Response::from_json(&error_body(surface, err))?
        .with_status(status)
        .with_headers(headers))
}

/// Headers of a server-sent event stream.
pub fn sse_headers() -> worker::Result<Headers> {
    let headers = Headers::new();
    headers.set("content-type", "text/event-stream; charset=utf-8")?;
    headers.set("cache-control", "no-cache")?;
    Ok(headers)
}
