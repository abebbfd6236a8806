//! The Responses API (`/v1/responses`): create (JSON and SSE), retrieve and delete. A request
//! is translated into a chat request (`domain::responses`) and from there takes the chat
//! path: the same admission, key choice, failover, settlement and log. Stored responses
//! live in D1 (`store::responses`), scoped to the caller's key.

use worker::{D1Database, Request, Response};

use crate::domain::error::GatewayError;
use crate::domain::gemini::GenerateContentResponse;
use crate::domain::quota::Usage;
use crate::domain::responses::{self, Item, ResponseMeta, ResponseObject, ResponsesSsePipeline};
use crate::domain::route::upstream_model_id;
use crate::domain::translate::chat::{self, ChatContext, ChatOptions};
use crate::domain::translate::thinking::ModelVariant;
use crate::domain::usage;
use crate::edge::access::Caller;
use crate::edge::app::App;
use crate::edge::billing::ticket::{Outcome, metered_send_scaled};
use crate::edge::http::body::read_capped;
use crate::edge::http::render;
use crate::edge::now_ms;
use crate::edge::relay::generate_request;
use crate::edge::relay::sse::{BeforeEnd, Relay, relay};
use crate::edge::snapshot;
use crate::edge::store::responses::{self as store, NewResponse};
use crate::edge::upstream::{media, models};

type HandlerResult = Result<Response, GatewayError>;

const DAY_MS: u64 = 24 * 3600 * 1000;

/// What a stored response needs besides its object: where and for how long.
struct Keep {
    db: D1Database,
    scope: String,
    ttl_ms: u64,
    /// The conversation up to this response's output.
    conversation: Vec<Item>,
}

impl Keep {
    /// Stores `response` with the conversation it ends. A failure is logged, not fatal: the
    /// client still gets its answer, only it cannot be retrieved later.
    async fn store(self, response: &ResponseObject) {
        let mut conversation = self.conversation;
        conversation.extend(response.output.iter().cloned());
        let (Ok(body), Ok(conversation)) = (
            serde_json::to_string(response),
            serde_json::to_string(&conversation),
        ) else {
            return;
        };
        let now = now_ms();
        let row = NewResponse {
            id: &response.id,
            scope: &self.scope,
            created_at: now,
            expires_at: now.saturating_add(self.ttl_ms),
            body: &body,
            conversation: &conversation,
        };
        if let Err(e) = store::insert(&self.db, &row).await {
            worker::console_warn!("[gemgate] response {} not stored: {e}", response.id);
        }
    }
}

pub async fn create(app: &App, caller: &Caller, mut req: Request) -> HandlerResult {
    let snap = snapshot::snapshot(app).await?;
    let raw = read_capped(&mut req, snap.settings.max_body_bytes).await?;
    let mut parsed = responses::parse_request(&raw)?;
    let client_model = parsed.model.clone();
    let scope = caller.scope();
    let db = app.db()?;
    let history = match parsed.previous_response_id.as_deref() {
        None => Vec::new(),
        Some(previous) => {
            let Some((_, conversation)) = store::get(&db, previous, &scope, now_ms()).await? else {
                let shown: String = previous.chars().take(80).collect();
                return Err(GatewayError::invalid_param(
                    format!("Previous response with id '{shown}' not found."),
                    "previous_response_id",
                ));
            };
            responses::conversation_from_json(&conversation)?
        }
    };
    parsed.model = models::resolve(app, &snap, &parsed.model, ModelVariant::base_of).await?;
    let store_it = parsed.store;
    let prepared = responses::prepare(parsed, history)?;
    let options = ChatOptions {
        include_thoughts: snap.settings.include_thoughts || prepared.wants_summary,
        catalog: Some(&snap.settings.catalog),
        compat: Some(&snap.settings.compat),
    };
    let mut chat_prepared = chat::prepare_chat(prepared.chat, &options)?;
    // Thoughts are reasoning items here, never `<think>` text.
    chat_prepared.reply.thoughts_in_content = false;
    if !chat_prepared.remote_media.is_empty() {
        let fetched = media::fetch_all(
            &chat_prepared.remote_media,
            &snap.settings,
            &app.config.env.image_fetch_allow_private,
        )
        .await?;
        chat::fill_remote_media(&mut chat_prepared.body, fetched);
    }
    let model = upstream_model_id(&chat_prepared.upstream_model)?;
    let adjusted = chat_prepared.adjustments.join(", ");
    let stream = chat_prepared.stream;
    let request = generate_request(app, model, &chat_prepared.body, stream)?;
    let tail = random_tail();
    let meta = ResponseMeta {
        id: format!("resp_{tail}"),
        created_at: now_ms() / 1000,
        model: client_model.clone(),
        echo: prepared.echo,
    };
    let ctx = ChatContext {
        id: format!("chatcmpl-{tail}"),
        created: meta.created_at,
        model: client_model.clone(),
        reply: chat_prepared.reply,
    };
    let keep = store_it.then(|| Keep {
        db,
        scope,
        ttl_ms: u64::from(snap.settings.responses_ttl_days).saturating_mul(DAY_MS),
        conversation: prepared.conversation,
    });
    let default_max = snap.settings.default_max_output_tokens;
    let estimate = || usage::estimate(&chat_prepared.body, default_max);
    let (mut ticket, ok) = metered_send_scaled(app, caller, &snap, &request, estimate, 1)
        .await
        .map_err(|e| e.into_error(&client_model))?;
    if stream {
        let pipeline = ResponsesSsePipeline::new(ctx, meta);
        let resp = relay(app, &snap, ticket, ok, Box::new(Kept { pipeline, keep }))?;
        return with_adjusted(resp, &adjusted);
    }
    let key_id = ok.key_id.clone();
    let answer: GenerateContentResponse = ticket.check(ok.json())?;
    let used = answer
        .usage_metadata
        .as_ref()
        .map(usage::from_metadata)
        .unwrap_or_default();
    ticket.settle(Outcome::served(used, key_id));
    let response = responses::from_chat(chat::chat_response(answer, &ctx)?, &meta);
    if let Some(keep) = keep {
        keep.store(&response).await;
    }
    with_adjusted(render::json(200, &response)?, &adjusted)
}

/// Lists every request value moved to what the model accepts, as chat completions do.
fn with_adjusted(resp: Response, adjusted: &str) -> HandlerResult {
    if !adjusted.is_empty() {
        resp.headers().set("x-gemgate-adjusted", adjusted)?;
    }
    Ok(resp)
}

pub async fn retrieve(app: &App, caller: &Caller, id: &str) -> HandlerResult {
    let Some((body, _)) = store::get(&app.db()?, id, &caller.scope(), now_ms()).await? else {
        return Err(responses::not_found(id));
    };
    let headers = worker::Headers::new();
    headers.set("content-type", "application/json")?;
    Ok(Response::ok(body)?.with_headers(headers))
}

pub async fn delete(app: &App, caller: &Caller, id: &str) -> HandlerResult {
    if !store::delete(&app.db()?, id, &caller.scope(), now_ms()).await? {
        return Err(responses::not_found(id));
    }
    render::json(200, &responses::deleted(id))
}

/// The Responses pipeline and where its finished response is kept. The shared relay
/// awaits the store before `response.completed` goes out, so a client that saw it can
/// continue it at once.
struct Kept {
    pipeline: ResponsesSsePipeline,
    keep: Option<Keep>,
}

impl Relay for Kept {
    fn usage(&self) -> Option<Usage> {
        self.pipeline.usage()
    }

    fn push(&mut self, upstream_bytes: &[u8]) -> Vec<u8> {
        self.pipeline.push(upstream_bytes)
    }

    fn end(self: Box<Self>, err: Option<&GatewayError>) -> (Vec<u8>, Option<BeforeEnd>) {
        let Kept { pipeline, keep } = *self;
        if let Some(err) = err {
            return (pipeline.fail(err), None);
        }
        let (out, done) = pipeline.finish();
        let store = keep
            .zip(done)
            .map(|(keep, done)| -> BeforeEnd { Box::pin(async move { keep.store(&done).await }) });
        (out, store)
    }
}

/// 24 random base62 characters, shared by the response id and its items' ids.
fn random_tail() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 24];
    if getrandom::fill(&mut bytes).is_err() {
        bytes[..8].copy_from_slice(&now_ms().to_le_bytes());
    }
    bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}
