//! The Gemini-native surface: requests and responses pass through as they
//! are; only the client's token is swapped for an upstream key, and the key
//! pool's failover applies. Streams are forwarded chunk by chunk.

use futures::{StreamExt, stream};
use worker::{Headers, Method, Request, Response, Url};

use crate::domain::accounts::envelope::code_assist_can_serve;
use crate::domain::accounts::routing::with_code_assist;
use crate::domain::error::GatewayError;
use crate::domain::gemini::{ListModelsResponse, Model, ModelName};
use crate::domain::route::{GeminiRoute, NativeAction, check_model_id};
use crate::domain::translate::fake_stream as fake_stream_mode;
use crate::domain::translate::switches::native_generate_body;
use crate::domain::usage::{estimate_native, usage_in};
use crate::edge::access::Caller;
use crate::edge::app::App;
use crate::edge::billing::meter::{Meter, Metering};
use crate::edge::billing::ticket::{Outcome, metered_send};
use crate::edge::http::body::read_capped;
use crate::edge::http::render;
use crate::edge::http::stream::piped;
use crate::edge::relay::fake_stream;
use crate::edge::snapshot::{self, Snapshot};
use crate::edge::upstream::accounts;
use crate::edge::upstream::models::{self, LIST_GATE};
use crate::edge::upstream::urls::{self, Version};
use crate::edge::upstream::{self, UpstreamBody, UpstreamError, UpstreamOk, UpstreamRequest};

type HandlerResult = Result<Response, GatewayError>;

pub async fn serve(
    app: &App,
    caller: &Caller,
    req: Request,
    url: &Url,
    route: GeminiRoute,
) -> HandlerResult {
    match route {
        GeminiRoute::ListModels => list_models(app, url).await,
        GeminiRoute::GetModel(id) => get_model(app, url, &id).await,
        GeminiRoute::Action { model, action } => {
            model_action(app, caller, req, url, &model, action).await
        }
    }
}

/// `v1` when the client called under `/v1/`, else `v1beta`: the API version
/// is part of the contract and passes through too.
fn version(url: &Url) -> Version {
    if url.path().starts_with("/v1/") {
        Version::V1
    } else {
        Version::V1Beta
    }
}

/// The client's query pairs minus its credential.
fn forwarded(url: &Url) -> Vec<(String, String)> {
    url.query_pairs()
        .filter(|(k, _)| k != "key")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn pairs(query: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    query.iter().map(|(k, v)| (k.as_str(), v.as_str()))
}

/// The upstream's page of models as the catalog shows them: disabled models gone, aliases
/// listed after their model. A page that does not parse is relayed as it came.
async fn list_models(app: &App, url: &Url) -> HandlerResult {
    let snap = snapshot::snapshot(app).await?;
    let query = forwarded(url);
    let code_assist = &snap.settings.routing.code_assist_models;
    // With accounts only, the list is the Code Assist models'.
    if snap.keys.is_empty() && !snap.accounts.is_empty() {
        let page = ListModelsResponse {
            models: snap
                .settings
                .catalog
                .listing(&with_code_assist(&[], code_assist)),
            next_page_token: None,
        };
        return render::json(200, &page);
    }
    let target = urls::models(&app.config.env.gemini_api_base, version(url), pairs(&query))?;
    let answered = list_call(app, &snap, target).await;
    let Some(mut page) = parsed::<ListModelsResponse>(&answered) else {
        return answer(app, answered, None);
    };
    // The Code Assist models join the last page, when accounts exist.
    let last_page = page.next_page_token.as_deref().is_none_or(str::is_empty);
    if !snap.accounts.is_empty() && last_page {
        page.models = with_code_assist(&page.models, code_assist);
    }
    page.models = snap.settings.catalog.listing(&page.models);
    render::json(200, &page)
}

/// One model; an alias answers as its model under the alias's name, a disabled one is 404.
async fn get_model(app: &App, url: &Url, id: &str) -> HandlerResult {
    let snap = snapshot::snapshot(app).await?;
    let target = snap.settings.catalog.resolve(id, str::to_owned, None)?;
    let upstream_url = urls::model(&app.config.env.gemini_api_base, version(url), &target)?;
    let answered = list_call(app, &snap, upstream_url).await;
    let Some(mut model) = parsed::<Model>(&answered).filter(|_| target != id) else {
        return answer(app, answered, None);
    };
    model.name = ModelName::parse(id)?;
    render::json(200, &model)
}

/// The body of a successful, complete answer, when it parses as `T`.
fn parsed<T: serde::de::DeserializeOwned>(
    answered: &Result<UpstreamOk, UpstreamError>,
) -> Option<T> {
    match answered {
        Ok(UpstreamOk {
            body: UpstreamBody::Full(bytes),
            ..
        }) => serde_json::from_slice(bytes).ok(),
        _ => None,
    }
}

/// A model-list call with failover over the list gate.
async fn list_call(app: &App, snap: &Snapshot, url: String) -> Result<UpstreamOk, UpstreamError> {
    let request = UpstreamRequest {
        method: Method::Get,
        url,
        body: None,
        stream: false,
        gate: LIST_GATE.to_owned(),
        code_assist: None,
        pin: None,
        headers: Vec::new(),
    };
    upstream::send(app, snap, &request).await
}

async fn model_action(
    app: &App,
    caller: &Caller,
    mut req: Request,
    url: &Url,
    model: &str,
    action: NativeAction,
) -> HandlerResult {
    let snap = snapshot::snapshot(app).await?;
    let fake_header = req.headers().get(fake_stream_mode::HEADER)?;
    let (bare, asked) = snap.settings.compat.strip_prefixes(model);
    check_model_id(bare).map_err(|why| {
        GatewayError::invalid_param(format!("Invalid model name in path: {why}."), "model")
    })?;
    let model = &models::resolve(app, &snap, bare, str::to_owned).await?;
    let fake = action == NativeAction::StreamGenerateContent
        && fake_stream_mode::modes(
            &snap.settings.compat,
            asked,
            fake_header.as_deref(),
            [bare, model.as_str()],
        )
        .fake_stream;
    let (raw, parsed) = native_body(&mut req, &snap, model, action).await?;
    // A body naming a file or cache goes to the key that holds it.
    let pin = upstream::pins::pin_for(app, &snap, caller.user_id(), &raw, &parsed).await?;
    // A fake stream asks upstream for the whole answer at once (and so without `alt`).
    let stream = action == NativeAction::StreamGenerateContent && !fake;
    let query = forwarded(url);
    let sse = query.iter().any(|(k, v)| k == "alt" && v == "sse");
    let (action, query) = if fake {
        let query = query.into_iter().filter(|(k, _)| k != "alt").collect();
        (NativeAction::GenerateContent, query)
    } else {
        (action, query)
    };
    let target = urls::action(
        &app.config.env.gemini_api_base,
        version(url),
        model,
        action.as_str(),
        pairs(&query),
    )?;
    let body_len = raw.len();
    let body = String::from_utf8(raw)
        .map_err(|_| GatewayError::invalid("The request body is not valid UTF-8."))?;
    let code_assist = code_assist_call(action, sse, &parsed, model);
    let request = UpstreamRequest {
        method: Method::Post,
        url: target,
        body: Some(body),
        stream,
        gate: model.to_owned(),
        code_assist,
        pin,
        headers: Vec::new(),
    };
    if action == NativeAction::CountTokens {
        // Counting spends no generation: authenticated, but neither reserved nor logged.
        return answer(app, upstream::send(app, &snap, &request).await, None);
    }
    let default_max = snap.settings.default_max_output_tokens;
    let estimate = || estimate_native(&parsed, body_len, default_max);
    if fake {
        return fake_stream::native(app, caller, &snap, request, sse, estimate).await;
    }
    let (ticket, ok) = match metered_send(app, caller, &snap, &request, estimate).await {
        Ok(admitted) => admitted,
        Err(e) => return answer(app, Err(e), None),
    };
    let meter = match &ok.body {
        UpstreamBody::Full(bytes) => {
            ticket.settle(Outcome::served(usage_in(bytes), ok.key_id.clone()));
            None
        }
        UpstreamBody::Stream { .. } => Some(ticket.settle_when_done(
            app,
            ok.key_id.clone(),
            snap.settings.upstream_timeout_ms,
            Metering::Scan,
        )),
    };
    answer(app, Ok(ok), meter)
}

/// The body of a model action: refused as Google would refuse it (not JSON, not an
/// object) without spending a key; for generation, passed on as the client wrote it but
/// for the operator's thinking default, the compatibility switches and the default
/// safety settings (see `native_generate_body`). Returns the bytes to send and the
/// parsed body.
async fn native_body(
    req: &mut Request,
    snap: &Snapshot,
    model: &str,
    action: NativeAction,
) -> Result<(Vec<u8>, serde_json::Value), GatewayError> {
    let raw = read_capped(req, snap.settings.max_body_bytes).await?;
    let mut parsed: serde_json::Value = serde_json::from_slice(&raw)
        .map_err(|e| GatewayError::invalid(format!("Invalid JSON payload received. {e}")))?;
    if !parsed.is_object() {
        return Err(GatewayError::invalid(
            "Invalid JSON payload received. The request body must be a JSON object.",
        ));
    }
    let generates = matches!(
        action,
        NativeAction::GenerateContent | NativeAction::StreamGenerateContent
    );
    let raw = if generates {
        native_generate_body(
            raw,
            &mut parsed,
            model,
            &snap.settings.catalog,
            &snap.settings.compat,
        )?
    } else {
        raw
    };
    Ok((raw, parsed))
}

/// An account serves generation and counting; a stream only as SSE (Code Assist's one
/// stream format), and one candidate at a time.
fn code_assist_call(
    action: NativeAction,
    sse: bool,
    parsed: &serde_json::Value,
    model: &str,
) -> Option<accounts::CodeAssistCall> {
    match action {
        NativeAction::GenerateContent => Some(accounts::Method::Generate),
        NativeAction::StreamGenerateContent if sse => Some(accounts::Method::Stream),
        NativeAction::CountTokens => Some(accounts::Method::CountTokens),
        _ => None,
    }
    .filter(|_| code_assist_can_serve(parsed))
    .map(|method| accounts::CodeAssistCall {
        method,
        model: model.to_owned(),
    })
}

/// Relays an upstream answer: a success unchanged (metered when a meter is given), a client
/// error with Google's own body.
fn answer(
    app: &App,
    result: Result<UpstreamOk, UpstreamError>,
    meter: Option<Meter>,
) -> HandlerResult {
    match result {
        Ok(ok) => relay(app, ok, meter),
        Err(UpstreamError::Client { status, body }) => render::google_json(status, body, None),
        Err(UpstreamError::Gateway(e)) => Err(e),
    }
}

fn relay(app: &App, ok: UpstreamOk, meter: Option<Meter>) -> HandlerResult {
    let headers = Headers::new();
    headers.set(
        "content-type",
        ok.content_type
            .as_deref()
            .unwrap_or("application/json; charset=UTF-8"),
    )?;
    let resp = match ok.body {
        UpstreamBody::Full(bytes) => Response::from_bytes(bytes)?.with_headers(headers),
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
            let (resp, pump) = piped(body, headers)?;
            app.background.spawn(pump);
            resp
        }
    };
    Ok(resp.with_status(ok.status))
}
