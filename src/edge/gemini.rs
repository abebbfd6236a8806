//! The Gemini-native surface: requests and responses pass through as they
//! are; only the client's token is swapped for an upstream key, and the key
//! pool's failover applies. Streams are forwarded chunk by chunk.

use futures::{StreamExt, stream};
use worker::{Headers, Method, Request, Response, Url};

use super::app::App;
use super::billing::{self, Meter, Outcome};
use super::keys::{self, Snapshot};
use super::models::LIST_GATE;
use super::openai::metered_send;
use super::openai::runtime;
use super::upstream::{self, UpstreamBody, UpstreamError, UpstreamOk, UpstreamRequest};
use super::{body, models};
use crate::domain::config::Settings;
use crate::domain::error::GatewayError;
use crate::domain::gemini;
use crate::domain::quota::Estimate;
use crate::domain::route::NativeAction;
use crate::domain::usage;
use serde::Deserialize;

type HandlerResult = Result<Response, GatewayError>;

/// `v1` when the client called under `/v1/`, else `v1beta`: the API version
/// is part of the contract and passes through too.
fn api_version(url: &Url) -> &'static str {
    if url.path().starts_with("/v1/") {
        "v1"
    } else {
        "v1beta"
    }
}

/// The client's query string minus its credential.
fn forwarded_query(url: &Url) -> String {
    let pairs: Vec<String> = url
        .query_pairs()
        .filter(|(k, _)| k != "key")
        .map(|(k, v)| format!("{}={}", models::encode_query(&k), models::encode_query(&v)))
        .collect();
    if pairs.is_empty() {
        String::new()
    } else {
        format!("?{}", pairs.join("&"))
    }
}

pub async fn list_models(app: &App, url: &Url) -> HandlerResult {
    let snap = keys::snapshot(app).await?;
    let target = format!(
        "{}/{}/models{}",
        app.config.env.gemini_api_base,
        api_version(url),
        forwarded_query(url)
    );
    pass(app, &snap, Method::Get, target, None, false, LIST_GATE).await
}

pub async fn get_model(app: &App, url: &Url, id: &str) -> HandlerResult {
    let snap = keys::snapshot(app).await?;
    let target = format!(
        "{}/{}/models/{id}",
        app.config.env.gemini_api_base,
        api_version(url)
    );
    pass(app, &snap, Method::Get, target, None, false, LIST_GATE).await
}

pub async fn action(
    app: &App,
    mut req: Request,
    url: &Url,
    model: &str,
    action: NativeAction,
) -> HandlerResult {
    let snap = keys::snapshot(app).await?;
    let raw = body::read_capped(&mut req, snap.settings.max_body_bytes).await?;
    // Refuse what Google would refuse anyway, without spending a key on it.
    let parsed: serde_json::Value = serde_json::from_slice(&raw)
        .map_err(|e| GatewayError::invalid(format!("Invalid JSON payload received. {e}")))?;
    if !parsed.is_object() {
        return Err(GatewayError::invalid(
            "Invalid JSON payload received. The request body must be a JSON object.",
        ));
    }
    let stream = action == NativeAction::StreamGenerateContent;
    let target = format!(
        "{}/{}/models/{model}:{}{}",
        app.config.env.gemini_api_base,
        api_version(url),
        action.as_str(),
        forwarded_query(url)
    );
    let body_len = raw.len();
    let body = String::from_utf8(raw)
        .map_err(|_| GatewayError::invalid("The request body is not valid UTF-8."))?;
    let request = UpstreamRequest {
        method: Method::Post,
        url: target,
        body: Some(body),
        stream,
        gate: model.to_owned(),
    };
    if action == NativeAction::CountTokens {
        // Counting spends no generation: authenticated, but neither reserved nor logged.
        return answer(upstream::send(app, &snap, &request).await, None);
    }
    let estimate = || estimate(&parsed, &snap.settings, body_len);
    let (ticket, result) = metered_send(app, &snap, &request, estimate).await;
    match (ticket, result) {
        (Some(ticket), Ok(ok)) => {
            let meter = match &ok.body {
                UpstreamBody::Full(bytes) => {
                    ticket.settle(
                        app,
                        Outcome {
                            usage: billing::usage_of_body(bytes),
                            served: true,
                            status: 200,
                            key_id: ok.key_id.clone(),
                        },
                    );
                    None
                }
                UpstreamBody::Stream { .. } => Some(ticket.settle_when_done(
                    app,
                    ok.key_id.clone(),
                    snap.settings.upstream_timeout_ms,
                )),
            };
            answer(Ok(ok), meter)
        }
        (ticket, Err(e)) => {
            if let Some(ticket) = ticket {
                let status = match &e {
                    UpstreamError::Client { status, .. } => *status,
                    UpstreamError::Gateway(err) => err.status(),
                };
                ticket.settle(
                    app,
                    Outcome {
                        status,
                        ..Outcome::default()
                    },
                );
            }
            answer(Err(e), None)
        }
        (None, Ok(_)) => Err(GatewayError::Internal("admitted without a ticket".into())),
    }
}

/// The worst case a native request can cost, for its reservation.
fn estimate(parsed: &serde_json::Value, settings: &Settings, body_len: usize) -> Estimate {
    match gemini::GenerateContentRequest::deserialize(parsed) {
        Ok(req) => Estimate {
            prompt_tokens: usage::estimate_prompt_tokens(&req),
            max_output_tokens: usage::max_output_tokens(&req, settings.default_max_output_tokens),
            thinking_tokens: usage::thinking_budget(&req),
        },
        // Embedding requests and anything else: a token per 4 bytes of the body.
        Err(_) => Estimate {
            prompt_tokens: (body_len as u64).div_ceil(4),
            ..Estimate::default()
        },
    }
}

/// Sends with failover and relays the upstream answer unchanged.
async fn pass(
    app: &App,
    snap: &Snapshot,
    method: Method,
    url: String,
    body: Option<String>,
    stream: bool,
    gate: &str,
) -> HandlerResult {
    let request = UpstreamRequest {
        method,
        url,
        body,
        stream,
        gate: gate.to_owned(),
    };
    answer(upstream::send(app, snap, &request).await, None)
}

/// Relays an upstream answer: a success unchanged (metered when a meter is given), a client
/// error with Google's own body.
fn answer(result: Result<UpstreamOk, UpstreamError>, meter: Option<Meter>) -> HandlerResult {
    match result {
        Ok(ok) => relay(ok, meter).map_err(runtime),
        Err(UpstreamError::Client { status, body }) => {
            let headers = Headers::new();
            headers
                .set("content-type", "application/json; charset=UTF-8")
                .map_err(runtime)?;
            Ok(Response::from_bytes(body)
                .map_err(runtime)?
                .with_status(status)
                .with_headers(headers))
        }
        Err(UpstreamError::Gateway(e)) => Err(e),
    }
}

fn relay(ok: UpstreamOk, meter: Option<Meter>) -> worker::Result<Response> {
    let headers = Headers::new();
    headers.set(
        "content-type",
        ok.content_type
            .as_deref()
            .unwrap_or("application/json; charset=UTF-8"),
    )?;
    let resp = match ok.body {
        UpstreamBody::Full(bytes) => Response::from_bytes(bytes)?,
        UpstreamBody::Stream { first, rest } => {
            // A stalled or broken upstream ends the relayed stream abruptly,
            // as the connection to Google itself would have.
            // The meter lives in the stream, so it settles when the stream is done or dropped.
            let mut meter = meter;
            let body = stream::once(async move { Ok(first) })
                .chain(rest.map(|chunk| chunk.map_err(worker::Error::from)))
                .map(move |chunk| {
                    if let (Ok(bytes), Some(meter)) = (&chunk, meter.as_mut()) {
                        meter.observe(bytes);
                    }
                    chunk
                });
            Response::from_stream(body)?
        }
    };
    Ok(resp.with_status(ok.status).with_headers(headers))
}
