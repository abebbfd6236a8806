//! The OpenAI-compatible surface: chat completions (JSON and SSE),
//! embeddings and models. Translation is `domain::translate`; this file only
//! wires bodies, upstream calls and responses together.

use std::rc::Rc;

use worker::{Method, Request, Response};

use crate::domain::compat::Modes;
use crate::domain::error::GatewayError;
use crate::domain::gemini::{BatchEmbedContentsResponse, GenerateContentResponse};
use crate::domain::images;
use crate::domain::quota::{Estimate, Usage};
use crate::domain::route::upstream_model_id;
use crate::domain::translate::chat::{self, ChatContext, ChatOptions};
use crate::domain::translate::continuation::{COST_MULTIPLIER, Plan};
use crate::domain::translate::embeddings;
use crate::domain::translate::fake_stream as fake_stream_mode;
use crate::domain::translate::models::{model_list, model_object};
use crate::domain::translate::stream::ChatSsePipeline;
use crate::domain::translate::thinking::ModelVariant;
use crate::domain::usage;
use crate::edge::access::Caller;
use crate::edge::app::App;
use crate::edge::billing::ticket::{Outcome, admit, metered_send_scaled};
use crate::edge::http::body::read_capped;
use crate::edge::http::render;
use crate::edge::now_ms;
use crate::edge::relay::continuation::{self, ContinuedChat};
use crate::edge::relay::fake_stream::{self, Continued};
use crate::edge::relay::generate_request;
use crate::edge::relay::sse::{new_id, sse_response};
use crate::edge::snapshot::{self, Snapshot};
use crate::edge::upstream::urls::{self, Version};
use crate::edge::upstream::{self, UpstreamRequest, media, models};

type HandlerResult = Result<Response, GatewayError>;

/// Lists every request value moved to what the model accepts (`reasoning_effort=medium->high`).
pub const ADJUSTED_HEADER: &str = "x-gemgate-adjusted";

pub async fn chat(app: &App, caller: &Caller, mut req: Request) -> HandlerResult {
    let snap = snapshot::snapshot(app).await?;
    let raw = read_capped(&mut req, snap.settings.max_body_bytes).await?;
    let mut parsed = chat::parse_chat_request(&raw)?;
    let client_model = parsed.model.clone();
    // Mode prefixes (`anti-trunc/`, `fake-stream/`) go before the model resolves; chunks
    // still name the model as the client sent it.
    let wanted = resolve_model(app, &snap, &req, &mut parsed.model).await?;
    let compat = &snap.settings.compat;
    let options = ChatOptions {
        include_thoughts: snap.settings.include_thoughts,
        catalog: Some(&snap.settings.catalog),
        compat: Some(&snap.settings.compat),
    };
    let mut prepared = chat::prepare_chat(parsed, &options)?;
    prepared.reply.image_parts = images::shape_chat(
        snap.settings.chat_image_output,
        &prepared.upstream_model,
        &mut prepared.body.generation_config,
    );
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
    let anti_truncation = wanted
        .anti_truncation
        .then(|| Plan::for_request(compat, &prepared.body))
        .flatten();
    if let Some(plan) = &anti_truncation {
        plan.instruct(
            &mut prepared.body,
            compat.system_as_user(&prepared.upstream_model),
        );
    }
    let model = upstream_model_id(&prepared.upstream_model)?;
    // A fake stream asks upstream for the whole answer at once.
    let fake = prepared.stream && wanted.fake_stream;
    let mut request = generate_request(app, model, &prepared.body, prepared.stream && !fake)?;
    // A context cache (`extra_body.google.cached_content`) is read on the key that holds it.
    let cache = prepared.body.cached_content.as_deref();
    upstream::pins::pin_translated(app, &snap, caller.user_id(), cache, &mut request).await?;
    let ctx = ChatContext {
        id: new_id("chatcmpl-"),
        created: now_ms() / 1000,
        model: client_model.clone(),
        reply: prepared.reply,
    };
    let adjusted = prepared.adjustments.join(", ");
    let default_max = snap.settings.default_max_output_tokens;
    let estimate = || usage::estimate(&prepared.body, default_max);
    if fake {
        let usage = prepared.include_usage;
        let continued = anti_truncation.map(|plan| Continued {
            plan,
            body: prepared.body.clone(),
            model: model.to_owned(),
        });
        let resp =
            fake_stream::chat(app, caller, &snap, request, ctx, usage, estimate, continued).await?;
        return with_adjusted(resp, &adjusted);
    }
    // Anti-truncation costs a user key twice the model's price.
    let multiplier = anti_truncation.as_ref().map_or(1, |_| COST_MULTIPLIER);
    let (mut ticket, ok) = metered_send_scaled(app, caller, &snap, &request, estimate, multiplier)
        .await
        .map_err(|e| e.into_error(&client_model))?;
    let resp = if let Some(plan) = anti_truncation {
        let chat = ContinuedChat {
            plan,
            model: model.to_owned(),
            body: prepared.body,
            ctx,
            stream: prepared.stream,
            include_usage: prepared.include_usage,
        };
        continuation::respond(app, Rc::clone(&snap), ticket, ok, chat).await?
    } else if prepared.stream {
        let pipeline = ChatSsePipeline::new(ctx, prepared.include_usage);
        sse_response(app, &snap, ticket, ok, pipeline)?
    } else {
        let key_id = ok.key_id.clone();
        let answer: GenerateContentResponse = ticket.check(ok.json())?;
        let used = answer
            .usage_metadata
            .as_ref()
            .map(usage::from_metadata)
            .unwrap_or_default();
        ticket.settle(Outcome::served(used, key_id));
        render::json(200, &chat::chat_response(answer, &ctx)?)?
    };
    with_adjusted(resp, &adjusted)
}

/// The response with `x-gemgate-adjusted` when something was adjusted.
fn with_adjusted(resp: Response, adjusted: &str) -> HandlerResult {
    if !adjusted.is_empty() {
        resp.headers().set(ADJUSTED_HEADER, adjusted)?;
    }
    Ok(resp)
}

/// Resolves the model a chat request names, without its mode prefixes, in place, and
/// returns the modes it asked for: by prefix, by the fake-stream header, or by the
/// settings' globs.
async fn resolve_model(
    app: &App,
    snap: &Snapshot,
    req: &Request,
    model: &mut String,
) -> Result<Modes, GatewayError> {
    let compat = &snap.settings.compat;
    let header = req.headers().get(fake_stream_mode::HEADER)?;
    let (bare, asked) = compat.strip_prefixes(model);
    let resolved = models::resolve(app, snap, bare, ModelVariant::base_of).await?;
    let wanted = fake_stream_mode::modes(compat, asked, header.as_deref(), [bare, &*resolved]);
    *model = resolved;
    Ok(wanted)
}

pub async fn embeddings(app: &App, caller: &Caller, mut req: Request) -> HandlerResult {
    let snap = snapshot::snapshot(app).await?;
    let raw = read_capped(&mut req, snap.settings.max_body_bytes).await?;
    let mut parsed = embeddings::parse_embeddings_request(&raw)?;
    let client_model = parsed.model.clone();
    parsed.model = models::resolve(app, &snap, &parsed.model, ModelVariant::base_of).await?;
    let prepared = embeddings::prepare_embeddings(parsed)?;
    let model = upstream_model_id(&prepared.upstream_model)?;
    let url = urls::action(
        &app.config.env.gemini_api_base,
        Version::V1Beta,
        model,
        "batchEmbedContents",
        [],
    )?;
    let estimate = || Estimate {
        prompt_tokens: prepared.prompt_tokens_estimate(),
        ..Estimate::default()
    };
    let mut ticket = admit(app, caller, &snap.settings, model, estimate, false).await?;
    // Google takes 100 requests per call; larger inputs become several calls,
    // each with its own failover, concatenated in input order.
    let mut all = BatchEmbedContentsResponse::default();
    let mut key_id = String::new();
    for batch in prepared.upstream_batches() {
        let request = UpstreamRequest {
            method: Method::Post,
            url: url.clone(),
            body: Some(to_json(&batch)?),
            stream: false,
            gate: model.to_owned(),
            code_assist: None,
            pin: None,
            headers: Vec::new(),
        };
        let sent = upstream::send(app, &snap, &request)
            .await
            .map_err(|e| e.into_error(&client_model));
        let ok = ticket.check(sent)?;
        key_id.clone_from(&ok.key_id);
        let resp: BatchEmbedContentsResponse = ticket.check(ok.json())?;
        if resp.embeddings.len() != batch.requests.len() {
            return Err(ticket.fail(GatewayError::BadGateway(format!(
                "Upstream returned {} embeddings for {} inputs.",
                resp.embeddings.len(),
                batch.requests.len()
            ))));
        }
        all.embeddings.extend(resp.embeddings);
    }
    let estimate = prepared.prompt_tokens_estimate();
    let used = Usage {
        prompt_tokens: estimate,
        ..Usage::default()
    };
    ticket.settle(Outcome::served(used, key_id));
    let out = embeddings::embeddings_response(all, &client_model, prepared.encoding, estimate);
    render::json(200, &out)
}

pub async fn list_models(app: &App, caller: &Caller) -> HandlerResult {
    let snap = snapshot::snapshot(app).await?;
    let list = snap
        .settings
        .catalog
        .listing(&models::pool_list(app, &snap).await?);
    let mut out = model_list(&list, now_ms() / 1000, &snap.settings.model_variants);
    // A key limited to some models is shown only those, so chat apps offer what works.
    if let Some(user) = caller.user()
        && !user.allowed_models.is_empty()
    {
        out.data.retain(|m| {
            user.allowed_models
                .iter()
                .any(|glob| crate::domain::quota::glob_match(glob, &m.id))
        });
    }
    render::json(200, &out)
}

pub async fn get_model(app: &App, id: &str) -> HandlerResult {
    let snap = snapshot::snapshot(app).await?;
    // An alias, or a suffix variant (`gemini-2.5-flash-search`), is its model under the
    // asked name.
    let target = models::resolve(app, &snap, id, ModelVariant::base_of).await?;
    let base = ModelVariant::base_of(&target);
    let model = models::one(app, &snap, &base)
        .await
        .map_err(|e| e.into_error(id))?;
    let mut out = model_object(&model, now_ms() / 1000);
    id.clone_into(&mut out.id);
    render::json(200, &out)
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, GatewayError> {
    serde_json::to_string(v)
        .map_err(|e| GatewayError::Internal(format!("encode upstream body: {e}")))
}
