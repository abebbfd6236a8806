//! The Anthropic Messages surface: `POST /v1/messages` (JSON and SSE) and
//! `POST /v1/messages/count_tokens`. Translation is `domain::translate::anthropic`; a
//! message is admitted, rotated, failed over, charged and logged as a chat completion is.

use worker::{Method, Request, Response};

use crate::domain::error::GatewayError;
use crate::domain::gemini::GenerateContentResponse;
use crate::domain::openai::ChatCompletionRequest;
use crate::domain::route::{AnthropicRoute, upstream_model_id};
use crate::domain::translate::anthropic::{
    self, MessagesContext, MessagesPlan, MessagesSsePipeline,
};
use crate::domain::translate::chat::{self, ChatOptions, PreparedChat};
use crate::domain::translate::thinking::ModelVariant;
use crate::domain::usage;
use crate::edge::access::Caller;
use crate::edge::app::App;
use crate::edge::billing::ticket::{Outcome, metered_send};
use crate::edge::http::body::read_capped;
use crate::edge::http::render;
use crate::edge::relay::generate_request;
use crate::edge::relay::sse::{new_id, sse_response};
use crate::edge::snapshot::{self, Snapshot};
use crate::edge::upstream::urls::{self, Version};
use crate::edge::upstream::{self, UpstreamRequest, media, models};

type HandlerResult = Result<Response, GatewayError>;

/// Serves both routes: they share the parsing, the alias lookup and the translation (one
/// future instead of two, which the wasm's size budget notices).
pub async fn serve(
    app: &App,
    caller: &Caller,
    mut req: Request,
    route: AnthropicRoute,
) -> HandlerResult {
    let count_only = route == AnthropicRoute::CountTokens;
    let snap = snapshot::snapshot(app).await?;
    let raw = read_capped(&mut req, snap.settings.max_body_bytes).await?;
    let (parsed, plan) = anthropic::to_chat_request(&raw, count_only)?;
    let client_model = parsed.model.clone();
    let prepared = prepare(app, &snap, parsed, &plan).await?;
    let model = upstream_model_id(&prepared.upstream_model)?;
    if count_only {
        return count_tokens(app, &snap, model, &prepared, &client_model).await;
    }
    let request = generate_request(app, model, &prepared.body, prepared.stream)?;
    let ctx = MessagesContext {
        id: new_id("msg_"),
        model: client_model.clone(),
        names: prepared.reply.names.clone(),
        stop_sequences: plan.stop_sequences,
    };
    let default_max = snap.settings.default_max_output_tokens;
    let estimate = || usage::estimate(&prepared.body, default_max);
    let (mut ticket, ok) = metered_send(app, caller, &snap, &request, estimate)
        .await
        .map_err(|e| e.into_error(&client_model))?;
    if prepared.stream {
        return sse_response(app, &snap, ticket, ok, MessagesSsePipeline::new(ctx));
    }
    let key_id = ok.key_id.clone();
    let answer: GenerateContentResponse = ticket.check(ok.json())?;
    let used = answer
        .usage_metadata
        .as_ref()
        .map(usage::from_metadata)
        .unwrap_or_default();
    ticket.settle(Outcome::served(used, key_id));
    render::json(200, &anthropic::messages_response(&answer, &ctx))
}

/// Counts through Gemini's `countTokens` with the whole generate request, so the system
/// and the tools count; never an estimate. Like the native route, it spends no
/// generation: authenticated, but neither reserved nor charged.
async fn count_tokens(
    app: &App,
    snap: &Snapshot,
    model: &str,
    prepared: &PreparedChat,
    client_model: &str,
) -> HandlerResult {
    let body = anthropic::count_tokens_body(model, &prepared.body)?;
    let request = UpstreamRequest {
        method: Method::Post,
        url: urls::action(
            &app.config.env.gemini_api_base,
            Version::V1Beta,
            model,
            "countTokens",
            [],
        )?,
        body: Some(body),
        stream: false,
        gate: model.to_owned(),
        code_assist: None,
        pin: None,
        headers: Vec::new(),
    };
    let ok = upstream::send(app, snap, &request)
        .await
        .map_err(|e| e.into_error(client_model))?;
    let answer: serde_json::Value = ok.json()?;
    let counted = anthropic::count_tokens_response(&answer).ok_or_else(|| {
        GatewayError::BadGateway("The upstream countTokens answer was not an object.".into())
    })?;
    render::json(200, &counted)
}

/// Resolves the model through the alias table, translates the request as a chat, fetches
/// remote media through the guard, and puts the thought signatures back.
async fn prepare(
    app: &App,
    snap: &Snapshot,
    mut parsed: ChatCompletionRequest,
    plan: &MessagesPlan,
) -> Result<PreparedChat, GatewayError> {
    parsed.model = models::resolve(app, snap, &parsed.model, ModelVariant::base_of).await?;
    let options = ChatOptions {
        include_thoughts: false,
        catalog: Some(&snap.settings.catalog),
        compat: Some(&snap.settings.compat),
    };
    let mut prepared = chat::prepare_chat(parsed, &options)?;
    if !prepared.remote_media.is_empty() {
        let fetched = media::fetch_all(
            &prepared.remote_media,
            &snap.settings,
            &app.config.env.image_fetch_allow_private,
        )
        .await?;
        chat::fill_remote_media(&mut prepared.body, fetched);
    }
    anthropic::apply_signatures(&mut prepared.body, &plan.signatures);
    Ok(prepared)
}
