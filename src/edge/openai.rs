//! The OpenAI-compatible surface: chat completions (JSON and SSE),
//! embeddings, models, and health. Translation is `domain::translate`; this
//! file only wires bodies, upstream calls and responses together.

use std::cell::RefCell;

use futures::{StreamExt, future::ready, stream};
use worker::{Headers, Method, Request, Response};

use super::app::App;
use super::billing::{self, Caller, Meter, Outcome, Ticket};
use super::keys;
use super::upstream::{
    self, BodyStream, StreamBreak, UpstreamBody, UpstreamError, UpstreamOk, UpstreamRequest,
};
use super::{body, media, models, now_ms, render};
use crate::domain::error::GatewayError;
use crate::domain::gemini::{BatchEmbedContentsResponse, GenerateContentResponse};
use crate::domain::outcome::google_error_message;
use crate::domain::quota::{Estimate, Usage};
use crate::domain::route::check_model_id;
use crate::domain::translate::chat::{self, ChatContext, ChatOptions};
use crate::domain::translate::embeddings;
use crate::domain::translate::stream::ChatSsePipeline;
use crate::domain::translate::thinking::ModelVariant;
use crate::domain::usage;

type HandlerResult = Result<Response, GatewayError>;

pub async fn chat(app: &App, mut req: Request) -> HandlerResult {
    let snap = keys::snapshot(app).await?;
    let raw = body::read_capped(&mut req, snap.settings.max_body_bytes).await?;
    let parsed = chat::parse_chat_request(&raw)?;
    let client_model = parsed.model.clone();
    let options = ChatOptions {
        include_thoughts: snap.settings.include_thoughts,
    };
    let mut prepared = chat::prepare_chat(parsed, &options)?;
    if !prepared.ignored.is_empty() {
        worker::console_debug!(
            "[gemgate] chat request fields ignored: {}",
            prepared.ignored.join(", ")
        );
    }
    if !prepared.remote_media.is_empty() {
        let fetched = media::fetch_all(
            &prepared.remote_media,
            &snap.settings,
            &app.config.env.image_fetch_allow_private,
        )
        .await?;
        chat::fill_remote_media(&mut prepared.body, fetched);
    }
    let model = upstream_model(&prepared.upstream_model)?;
    let action = if prepared.stream {
        "streamGenerateContent?alt=sse"
    } else {
        "generateContent"
    };
    let request = UpstreamRequest {
        method: Method::Post,
        url: format!(
            "{}/v1beta/models/{model}:{action}",
            app.config.env.gemini_api_base
        ),
        body: Some(to_json(&prepared.body)?),
        stream: prepared.stream,
        gate: model.to_owned(),
    };
    let ctx = ChatContext {
        id: new_id("chatcmpl-"),
        created: now_ms() / 1000,
        model: client_model.clone(),
        reply: prepared.reply,
    };
    let adjusted = prepared.adjustments.join(", ");
    let estimate = || Estimate {
        prompt_tokens: usage::estimate_prompt_tokens(&prepared.body),
        max_output_tokens: usage::max_output_tokens(
            &prepared.body,
            snap.settings.default_max_output_tokens,
        ),
        thinking_tokens: usage::thinking_budget(&prepared.body),
    };
    let (ticket, result) = metered_send(app, &snap, &request, estimate).await;
    let ok = match result {
        Ok(ok) => ok,
        Err(e) => {
            let err = openai_upstream_error(e, &client_model);
            if let Some(ticket) = ticket {
                ticket.settle(app, failed(&err));
            }
            return Err(err);
        }
    };
    let ticket =
        ticket.ok_or_else(|| GatewayError::Internal("admitted without a ticket".into()))?;
    let resp = if prepared.stream {
        let meter =
            ticket.settle_when_done(app, ok.key_id.clone(), snap.settings.upstream_timeout_ms);
        sse_response(ok, ChatSsePipeline::new(ctx, prepared.include_usage), meter)
            .map_err(runtime)?
    } else {
        let key_id = ok.key_id.clone();
        let resp: GenerateContentResponse = ok.json()?;
        ticket.settle(
            app,
            Outcome {
                usage: resp
                    .usage_metadata
                    .as_ref()
                    .map(usage::from_metadata)
                    .unwrap_or_default(),
                served: true,
                status: 200,
                key_id,
            },
        );
        let completion = chat::chat_response(resp, &ctx)?;
        render::json(200, &completion).map_err(runtime)?
    };
    if !adjusted.is_empty() {
        resp.headers()
            .set(ADJUSTED_HEADER, &adjusted)
            .map_err(runtime)?;
    }
    Ok(resp)
}

/// Lists every request value moved to what the model accepts (`reasoning_effort=medium->high`).
pub const ADJUSTED_HEADER: &str = "x-gemgate-adjusted";

/// Sends with failover after admitting the caller, the two in parallel. The ticket is `None`
/// only when admission refused (the error says why).
pub async fn metered_send(
    app: &App,
    snap: &keys::Snapshot,
    request: &UpstreamRequest,
    estimate: impl FnOnce() -> Estimate,
) -> (Option<Ticket>, Result<UpstreamOk, UpstreamError>) {
    let ticket = RefCell::new(None);
    let admission = async {
        let admitted =
            billing::admit(app, &snap.settings, &request.gate, estimate, request.stream).await?;
        *ticket.borrow_mut() = Some(admitted);
        Ok(())
    };
    let result = upstream::send_admitted(app, snap, request, admission).await;
    (ticket.into_inner(), result)
}

/// The settlement of a request whose upstream call failed: nothing was served.
pub fn failed(err: &GatewayError) -> Outcome {
    Outcome {
        status: err.status(),
        ..Outcome::default()
    }
}

/// The state of a translated stream: the pipeline until it finished, the
/// upstream body, the first chunk already read during failover, and the meter
/// that settles the request when the pump is dropped.
struct Pump {
    pipeline: Option<ChatSsePipeline>,
    rest: Option<BodyStream>,
    first: Option<Vec<u8>>,
    meter: Meter,
}

/// Streams the translated SSE to the client, chunk by chunk as upstream
/// chunks arrive; nothing is buffered whole.
fn sse_response(
    ok: UpstreamOk,
    pipeline: ChatSsePipeline,
    meter: Meter,
) -> worker::Result<Response> {
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
        let pipeline = p.pipeline.as_mut()?;
        if let Some(first) = p.first.take() {
            p.meter.observe(&first);
            let out = pipeline.push(&first);
            return Some((out, p));
        }
        let next = match p.rest.as_mut() {
            Some(rest) => rest.next().await,
            None => None,
        };
        match next {
            Some(Ok(bytes)) => {
                p.meter.observe(&bytes);
                let out = pipeline.push(&bytes);
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
                Some((pipeline.fail(&err), p))
            }
            None => {
                let pipeline = p.pipeline.take()?;
                Some((pipeline.finish(), p))
            }
        }
    })
    .filter(|chunk| ready(!chunk.is_empty()))
    .map(Ok::<Vec<u8>, worker::Error>);
    let headers = Headers::new();
    headers.set("content-type", "text/event-stream; charset=utf-8")?;
    headers.set("cache-control", "no-cache")?;
    Ok(Response::from_stream(body)?.with_headers(headers))
}

pub async fn embeddings(app: &App, mut req: Request) -> HandlerResult {
    let snap = keys::snapshot(app).await?;
    let raw = body::read_capped(&mut req, snap.settings.max_body_bytes).await?;
    let parsed = embeddings::parse_embeddings_request(&raw)?;
    let client_model = parsed.model.clone();
    let prepared = embeddings::prepare_embeddings(parsed)?;
    let model = upstream_model(&prepared.upstream_model)?;
    let url = format!(
        "{}/v1beta/models/{model}:batchEmbedContents",
        app.config.env.gemini_api_base
    );
    // Google takes 100 requests per call; larger inputs become several calls,
    // each with its own failover, concatenated in input order.
    let estimate = || Estimate {
        prompt_tokens: prepared.prompt_tokens_estimate(),
        ..Estimate::default()
    };
    let ticket = billing::admit(app, &snap.settings, model, estimate, false).await?;
    let mut all = BatchEmbedContentsResponse::default();
    let mut key_id = String::new();
    for batch in prepared.upstream_batches() {
        let request = UpstreamRequest {
            method: Method::Post,
            url: url.clone(),
            body: Some(to_json(&batch)?),
            stream: false,
            gate: model.to_owned(),
        };
        let ok = match upstream::send(app, &snap, &request).await {
            Ok(ok) => ok,
            Err(e) => {
                let err = openai_upstream_error(e, &client_model);
                ticket.settle(app, failed(&err));
                return Err(err);
            }
        };
        key_id.clone_from(&ok.key_id);
        let resp: BatchEmbedContentsResponse = ok.json()?;
        if resp.embeddings.len() != batch.requests.len() {
            return Err(GatewayError::BadGateway(format!(
                "Upstream returned {} embeddings for {} inputs.",
                resp.embeddings.len(),
                batch.requests.len()
            )));
        }
        all.embeddings.extend(resp.embeddings);
    }
    let estimate = prepared.prompt_tokens_estimate();
    ticket.settle(
        app,
        Outcome {
            usage: Usage {
                prompt_tokens: estimate,
                ..Usage::default()
            },
            served: true,
            status: 200,
            key_id,
        },
    );
    let out = embeddings::embeddings_response(all, &client_model, prepared.encoding, estimate);
    render::json(200, &out).map_err(runtime)
}

pub async fn list_models(app: &App) -> HandlerResult {
    let snap = keys::snapshot(app).await?;
    let list = models::cached_list(app, &snap).await?;
    let mut out = crate::domain::translate::models::model_list(
        &list,
        now_ms() / 1000,
        &snap.settings.model_variants,
    );
    // A key limited to some models is shown only those, so chat apps offer what works.
    if let Some(Caller::User(user)) = app.caller.borrow().as_ref()
        && !user.allowed_models.is_empty()
    {
        out.data.retain(|m| {
            user.allowed_models
                .iter()
                .any(|glob| crate::domain::quota::glob_match(glob, &m.id))
        });
    }
    render::json(200, &out).map_err(runtime)
}

pub async fn get_model(app: &App, id: &str) -> HandlerResult {
    let snap = keys::snapshot(app).await?;
    // A suffix variant (`gemini-2.5-flash-search`) is its base model under the asked name.
    let base = ModelVariant::parse(id).base;
    let model = models::one(app, &snap, &base)
        .await
        .map_err(|e| openai_upstream_error(e, id))?;
    let mut out = crate::domain::translate::models::model_object(&model, now_ms() / 1000);
    id.clone_into(&mut out.id);
    render::json(200, &out).map_err(runtime)
}

pub async fn health(app: &App) -> HandlerResult {
    let db = app.db()?;
    let counts = keys::health_counts(&db, now_ms()).await?;
    render::json(
        200,
        &serde_json::json!({
            "status": "ok",
            "keys": counts,
        }),
    )
    .map_err(runtime)
}

/// Validates the model id that goes into the upstream URL: a body's `model`
/// is as untrusted as a path.
fn upstream_model(model: &str) -> Result<&str, GatewayError> {
    check_model_id(model)
        .map(|()| model)
        .map_err(|why| GatewayError::invalid_param(format!("Invalid model name: {why}."), "model"))
}

/// An upstream refusal in the `OpenAI` surface's terms.
fn openai_upstream_error(err: UpstreamError, model: &str) -> GatewayError {
    match err {
        UpstreamError::Gateway(e) => e,
        UpstreamError::Client { status: 404, .. } => GatewayError::ModelNotFound(model.to_owned()),
        UpstreamError::Client { status, body } => {
            let (message, google_status) = google_error_message(&body)
                .unwrap_or_else(|| (format!("Upstream rejected the request ({status})."), None));
            GatewayError::Upstream {
                status,
                message,
                google_status,
            }
        }
    }
}

pub fn to_json<T: serde::Serialize>(v: &T) -> Result<String, GatewayError> {
    serde_json::to_string(v)
        .map_err(|e| GatewayError::Internal(format!("encode upstream body: {e}")))
}

#[expect(
    clippy::needless_pass_by_value,
    reason = "used as `map_err(runtime)`, which passes the error by value"
)]
pub fn runtime(e: worker::Error) -> GatewayError {
    GatewayError::Internal(format!("runtime: {e}"))
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
