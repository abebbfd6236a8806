//! Response rendering: JSON bodies, and each surface's own error shape.
//! Errors are logged once, here, with no secrets.

use serde::Serialize;
use serde_json::json;
use worker::{Headers, Response, Result};

use crate::domain::error::GatewayError;
use crate::domain::route::Surface;

/// A JSON response with a status.
pub fn json<T: Serialize>(status: u16, value: &T) -> Result<Response> {
    Ok(Response::from_json(value)?.with_status(status))
}

/// Renders an error in the surface's own shape:
/// `OpenAI` `{error:{message,type,param,code}}`, Gemini `{error:{code,message,status}}`.
pub fn error(surface: Surface, err: &GatewayError) -> Result<Response> {
    let status = err.status();
    if status >= 500 {
        worker::console_error!("[gemgate] {status}: {err}");
    }
    let body = match surface {
        Surface::OpenAi | Surface::Admin => openai_error_body(err),
        Surface::Gemini => gemini_error_body(err),
    };
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    if let Some(secs) = err.retry_after_secs() {
        headers.set("retry-after", &secs.to_string())?;
    }
    Ok(Response::from_json(&body)?
        .with_status(status)
        .with_headers(headers))
}

pub fn openai_error_body(err: &GatewayError) -> serde_json::Value {
    json!({
        "error": {
            "message": err.client_message(),
            "type": err.openai_type(),
            "param": err.openai_param(),
            "code": err.openai_code(),
        }
    })
}

pub fn gemini_error_body(err: &GatewayError) -> serde_json::Value {
    json!({
        "error": {
            "code": err.status(),
            "message": err.client_message(),
            "status": err.google_status(),
        }
    })
}
