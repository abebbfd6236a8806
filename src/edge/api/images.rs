//! `POST /v1/images/generations` and the links it hands out (`GET /v1/images/files/{id}`).
//! Imagen models answer through `:predict`, all images in one call; Gemini image models
//! through `generateContent`, one call per image. Each call fails over like a chat request;
//! the request is admitted, charged and logged once. Decisions are `domain::images`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use worker::{Headers, Method, Request, Response};

use crate::domain::error::GatewayError;
use crate::domain::gemini::GenerateContentResponse;
use crate::domain::images::{
    self, Image, ImageRequest, ModelKind, ResponseFormat, StoredImage, image_path, kv_key,
    kv_ttl_secs,
};
use crate::domain::quota::{Estimate, Usage};
use crate::domain::route::upstream_model_id;
use crate::domain::translate::thinking::ModelVariant;
use crate::domain::usage;
use crate::edge::access::Caller;
use crate::edge::app::App;
use crate::edge::billing::ticket::{Outcome, admit_call};
use crate::edge::crypto::random_hex;
use crate::edge::http::body::read_capped;
use crate::edge::http::render;
use crate::edge::now_ms;
use crate::edge::snapshot::{self, Snapshot};
use crate::edge::upstream::urls::{self, Version};
use crate::edge::upstream::{self, UpstreamRequest, models};

type HandlerResult = Result<Response, GatewayError>;

/// Output tokens one Gemini image is reserved at in token mode (Google counts 1290).
const TOKENS_PER_IMAGE: u64 = 1_290;

pub async fn generations(
    app: &App,
    caller: &Caller,
    mut req: Request,
    origin: &str,
) -> HandlerResult {
    let snap = snapshot::snapshot(app).await?;
    let raw = read_capped(&mut req, snap.settings.max_body_bytes).await?;
    let mut request = images::parse(&raw)?;
    let client_model = request.model.clone();
    request.model = models::resolve(app, &snap, &request.model, ModelVariant::base_of).await?;
    upstream_model_id(&request.model)?;
    let kind = ModelKind::of(&request.model);
    let prompt_tokens = request.prompt_tokens();
    let n = u64::from(request.n);
    let estimate = || Estimate {
        prompt_tokens,
        max_output_tokens: match kind {
            ModelKind::Imagen => 0,
            ModelKind::Gemini => TOKENS_PER_IMAGE,
        },
        thinking_tokens: 0,
    };
    // Each image costs the model's price: the ticket's multiplier is `n`.
    let mut ticket = admit_call(app, caller, &snap, &request.model, false, estimate, n).await?;
    let mut key_id = String::new();
    let mut reported = Usage::default();
    let mut found: Vec<Image> = Vec::new();
    let calls = match kind {
        ModelKind::Imagen => 1,
        ModelKind::Gemini => request.n,
    };
    for _ in 0..calls {
        let upstream_req = upstream_request(app, &request, kind)?;
        let sent = upstream::send(app, &snap, &upstream_req)
            .await
            .map_err(|e| e.to_error(&client_model));
        let ok = ticket.check(sent)?;
        key_id.clone_from(&ok.key_id);
        match kind {
            ModelKind::Imagen => {
                let upstream::UpstreamBody::Full(bytes) = ok.body else {
                    return Err(ticket.fail(GatewayError::Internal(
                        "a non-stream request got a stream".into(),
                    )));
                };
                found.extend(ticket.check(images::images_from_predict(&bytes))?);
            }
            ModelKind::Gemini => {
                let answer: GenerateContentResponse = ticket.check(ok.json())?;
                if let Some(meta) = &answer.usage_metadata {
                    let used = usage::from_metadata(meta);
                    reported.prompt_tokens += used.prompt_tokens;
                    reported.completion_tokens += used.completion_tokens;
                    reported.reasoning_tokens += used.reasoning_tokens;
                }
                found.extend(images::images_from_answer(&answer));
            }
        }
    }
    if found.is_empty() {
        return Err(ticket.fail(images::no_image()));
    }
    let mut data = Vec::with_capacity(found.len());
    for image in found {
        let item = match request.format {
            ResponseFormat::B64Json => json!({"b64_json": image.b64}),
            ResponseFormat::Url => {
                let stored = store(app, &snap, &image).await;
                json!({"url": format!("{origin}{}", image_path(&ticket.check(stored)?))})
            }
        };
        data.push(item);
    }
    let used = images::usage_per_image(kind, reported, prompt_tokens, request.n);
    ticket.settle(Outcome::served(used, key_id));
    render::json(200, &json!({"created": now_ms() / 1000, "data": data}))
}

fn upstream_request(
    app: &App,
    request: &ImageRequest,
    kind: ModelKind,
) -> Result<UpstreamRequest, GatewayError> {
    let (action, body) = match kind {
        ModelKind::Imagen => ("predict", request.predict_body()),
        ModelKind::Gemini => ("generateContent", request.generate_body()),
    };
    Ok(UpstreamRequest {
        method: Method::Post,
        url: urls::action(
            &app.config.env.gemini_api_base,
            Version::V1Beta,
            &request.model,
            action,
            [],
        )?,
        body: Some(body.to_string()),
        stream: false,
        gate: request.model.clone(),
        code_assist: None,
        pin: None,
        headers: Vec::new(),
    })
}

/// Stores an image in KV for `image_url_ttl_secs` and returns its id.
async fn store(app: &App, snap: &Snapshot, image: &Image) -> Result<String, GatewayError> {
    let bytes = STANDARD.decode(image.b64.as_bytes()).map_err(|e| {
        GatewayError::BadGateway(format!("Upstream sent an image that is not base64: {e}"))
    })?;
    let id = random_hex::<16>()?;
    let ttl = snap.settings.image_url_ttl_secs;
    let meta = StoredImage {
        mime_type: image.mime_type.clone(),
        expires_at_ms: now_ms().saturating_add(ttl.saturating_mul(1_000)),
    };
    let kv = app
        .env
        .kv("CACHE")
        .map_err(|e| GatewayError::Internal(format!("KV binding CACHE: {e}")))?;
    kv.put_bytes(&kv_key(&id), &bytes)
        .and_then(|put| put.metadata(meta))
        .map_err(|e| GatewayError::Internal(format!("image store: {e}")))?
        .expiration_ttl(kv_ttl_secs(ttl))
        .execute()
        .await
        .map_err(|e| GatewayError::Internal(format!("image store: {e}")))?;
    Ok(id)
}

/// `GET /v1/images/files/{id}`: the stored image until it expires, then 404.
pub async fn file(app: &App, id: &str) -> HandlerResult {
    let gone =
        || GatewayError::RouteNotFound("This image link does not exist or has expired.".into());
    let kv = app
        .env
        .kv("CACHE")
        .map_err(|e| GatewayError::Internal(format!("KV binding CACHE: {e}")))?;
    let (bytes, meta) = kv
        .get(&kv_key(id))
        .bytes_with_metadata::<StoredImage>()
        .await
        .map_err(|e| GatewayError::Internal(format!("image read: {e}")))?;
    let (Some(bytes), Some(meta)) = (bytes, meta) else {
        return Err(gone());
    };
    let now = now_ms();
    if meta.expired(now) {
        return Err(gone());
    }
    let headers = Headers::new();
    headers.set("content-type", &meta.mime_type)?;
    let left = meta.expires_at_ms.saturating_sub(now) / 1_000;
    headers.set("cache-control", &format!("private, max-age={left}"))?;
    headers.set("x-content-type-options", "nosniff")?;
    Ok(Response::from_bytes(bytes)?.with_headers(headers))
}
