//! Google's Files API and context caches through the pool. Each file or cache
//! lives in the project of the key that made it, so the gateway pins it to
//! that key (`store::pins`) and scopes it to the caller: the resumable upload
//! is started on a key the rotation picks and continued on the same key
//! through a session of the gateway's own; every later call that names the
//! resource goes to its key (`domain::files` decides which).

use std::time::Duration;

use futures::future::{Either, select};
use serde_json::{Map, Value, json};
use worker::wasm_bindgen::JsCast;
use worker::wasm_bindgen_futures::JsFuture;
use worker::{AbortController, Delay, Headers, Method, Request, Response, Url, js_sys, web_sys};

use crate::domain::error::GatewayError;
use crate::domain::files::{self, Collection, FILES_GATE, UploadCommand};
use crate::domain::mask::scrub;
use crate::edge::access::Caller;
use crate::edge::app::App;
use crate::edge::crypto::random_hex;
use crate::edge::http::body::{read_capped, read_response};
use crate::edge::http::render;
use crate::edge::now_ms;
use crate::edge::snapshot::{self, Snapshot};
use crate::edge::store::pins::{self, NewPin, NewUpload};
use crate::edge::upstream::{self, UpstreamBody, UpstreamError, UpstreamOk, UpstreamRequest, urls};

type HandlerResult = Result<Response, GatewayError>;

/// Upload headers a start request passes on to Google.
const START_HEADERS: [&str; 3] = [
    "x-goog-upload-header-content-length",
    "x-goog-upload-header-content-type",
    "x-goog-upload-file-name",
];

/// An upload's bytes may take longer than a model's first byte.
const MIN_UPLOAD_TIMEOUT_MS: u64 = 300_000;

/// The client's query pairs minus its credential.
fn forwarded(url: &Url) -> Vec<(String, String)> {
    url.query_pairs()
        .filter(|(k, _)| k != "key" && k != "upload_id" && k != "upload_protocol")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn pairs(query: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    query.iter().map(|(k, v)| (k.as_str(), v.as_str()))
}

/// `POST /upload/v1beta/files`: a start, or (with `upload_id`) the bytes of a started upload.
pub async fn upload(app: &App, caller: &Caller, mut req: Request, url: &Url) -> HandlerResult {
    let command = req.headers().get("x-goog-upload-command")?;
    let command = UploadCommand::parse(command.as_deref())?;
    let session = url
        .query_pairs()
        .find(|(k, _)| k == "upload_id")
        .map(|(_, v)| v.into_owned());
    match (session, command.is_start()) {
        (None, true) => start(app, caller, &mut req, url).await,
        (Some(id), false) => continue_upload(app, caller, req, &id, command).await,
        (None, false) => Err(GatewayError::invalid_param(
            "An upload without `upload_id` must be a start (`x-goog-upload-command: start`).",
            "upload_id",
        )),
        (Some(_), true) => Err(GatewayError::invalid_param(
            "A start takes no `upload_id`: it hands one out.",
            "upload_id",
        )),
    }
}

/// Starts the upload on a key the rotation picks (failing over like any call), keeps
/// Google's upload URL under a session id of ours, and gives the client our URL.
async fn start(app: &App, caller: &Caller, req: &mut Request, url: &Url) -> HandlerResult {
    let protocol = req.headers().get("x-goog-upload-protocol")?;
    if !protocol.is_some_and(|p| p.eq_ignore_ascii_case("resumable")) {
        return Err(GatewayError::invalid(
            "Only the resumable upload protocol is supported: send `x-goog-upload-protocol: resumable`.",
        ));
    }
    let snap = snapshot::snapshot(app).await?;
    let body = read_capped(req, snap.settings.max_body_bytes).await?;
    let body = String::from_utf8(body)
        .map_err(|_| GatewayError::invalid("The upload's metadata is not valid UTF-8 JSON."))?;
    let has_metadata = !body.trim().is_empty();
    if has_metadata {
        serde_json::from_str::<Map<String, Value>>(&body)
            .map_err(|e| GatewayError::invalid(format!("Invalid JSON payload received. {e}")))?;
    }
    let mut headers = vec![
        ("x-goog-upload-protocol", "resumable".to_owned()),
        ("x-goog-upload-command", "start".to_owned()),
    ];
    for name in START_HEADERS {
        if let Some(value) = req.headers().get(name)? {
            headers.push((name, value));
        }
    }
    let query = forwarded(url);
    let request = UpstreamRequest {
        method: Method::Post,
        url: urls::upload(&app.config.env.gemini_api_base, pairs(&query))?,
        body: has_metadata.then_some(body),
        stream: false,
        gate: FILES_GATE.to_owned(),
        code_assist: None,
        pin: None,
        headers,
    };
    let ok = match upstream::send(app, &snap, &request).await {
        Ok(ok) => ok,
        Err(e) => return google_answer(Err(e)),
    };
    let Some(target) = header_of(&ok, "x-goog-upload-url").map(str::to_owned) else {
        return Err(GatewayError::BadGateway(
            "The upstream started the upload without an upload URL.".into(),
        ));
    };
    let id = random_hex::<16>()?;
    let sealed = match snapshot::sealer(&app.env).await? {
        Some(ring) => ring.seal(&target).await?,
        None => target,
    };
    let now = now_ms();
    pins::put_upload(
        &app.db()?,
        &NewUpload {
            id: &id,
            scope: &caller.scope(),
            key_id: &ok.key_id,
            target: &sealed,
            now_ms: now,
            expires_at: now + files::UPLOAD_SESSION_TTL_MS,
        },
    )
    .await?;
    let ours = files::upload_url(&url.origin().ascii_serialization(), &id);
    let headers = Headers::new();
    for (name, value) in &ok.upload_headers {
        let value = match *name {
            "x-goog-upload-url" | "x-goog-upload-control-url" => ours.as_str(),
            _ => value.as_str(),
        };
        headers.set(name, value)?;
    }
    let body = match ok.body {
        UpstreamBody::Full(bytes) => bytes,
        UpstreamBody::Stream { .. } => Vec::new(),
    };
    if let Some(content_type) = &ok.content_type {
        headers.set("content-type", content_type)?;
    }
    Ok(Response::from_bytes(body)?
        .with_status(ok.status)
        .with_headers(headers))
}

fn header_of<'a>(ok: &'a UpstreamOk, name: &str) -> Option<&'a str> {
    ok.upload_headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

/// The bytes (or a query or cancel) of an upload this caller started, passed to
/// Google on the key that started it, the body streamed through. The final answer's
/// file is pinned to that key.
async fn continue_upload(
    app: &App,
    caller: &Caller,
    req: Request,
    session: &str,
    command: UploadCommand,
) -> HandlerResult {
    if !files::valid_session(session) {
        return Err(files::not_found("this upload session"));
    }
    let db = app.db()?;
    let scope = caller.scope();
    let Some((key_id, target)) = pins::get_upload(&db, session, &scope, now_ms()).await? else {
        return Err(files::not_found("this upload session"));
    };
    let snap = snapshot::snapshot(app).await?;
    let Some(secret) = snap.secret(&key_id).map(str::to_owned) else {
        return Err(files::key_gone("this upload"));
    };
    let target = match snapshot::sealer(&app.env).await? {
        Some(ring) => ring.open(&target).await?,
        None => target,
    };
    let headers = Headers::new();
    headers.set("x-goog-api-key", &secret)?;
    for name in [
        "x-goog-upload-command",
        "x-goog-upload-offset",
        "content-type",
    ] {
        if let Some(value) = req.headers().get(name)? {
            headers.set(name, &value)?;
        }
    }
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_headers(&headers.0);
    if let UploadCommand::Upload { .. } = command
        && let Some(body) = req.inner().body()
    {
        init.set_body(&body);
    }
    let timeout = snap.settings.upstream_timeout_ms.max(MIN_UPLOAD_TIMEOUT_MS);
    let (answer, body) = fetch_upload(app, &target, &init, timeout, &key_id, &secret).await?;
    let status = answer.status_code();
    let body = upstream::scrub_body(body, &secret);
    let upload_status = answer.headers().get("x-goog-upload-status")?;
    let out = relayed_upload_headers(&answer)?;
    let finished = (200..300).contains(&status)
        && (upload_status.as_deref() == Some("final") || command == UploadCommand::Cancel);
    if finished {
        if let Some(file) = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("file").cloned())
        {
            pin(app, &scope, &key_id, Collection::Files, &file).await?;
        }
        pins::delete_upload(&db, session).await?;
    }
    Ok(Response::from_bytes(body)?
        .with_status(status)
        .with_headers(out))
}

/// Sends an upload request to Google's upload URL and reads the answer, the
/// whole exchange under a deadline (an answer whose body stalls after its
/// headers times out too); a timeout closes the connection.
async fn fetch_upload(
    app: &App,
    target: &str,
    init: &web_sys::RequestInit,
    timeout_ms: u64,
    key_id: &str,
    secret: &str,
) -> Result<(worker::Response, Vec<u8>), GatewayError> {
    let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let controller = AbortController::default();
    let signal = controller.signal();
    init.set_signal(Some(&signal));
    let exchange = async {
        let answer = JsFuture::from(global.fetch_with_str_and_init(target, init))
            .await
            .map_err(|e| {
                worker::console_warn!(
                    "[gemgate] req={} upload to key {key_id} failed: {}",
                    app.request_id,
                    scrub(&format!("{e:?}"), secret)
                );
                GatewayError::BadGateway(
                    "The upload to the upstream failed; resume it or start again.".into(),
                )
            })?;
        let answer: worker::Response = answer
            .dyn_into::<web_sys::Response>()
            .map_err(|_| GatewayError::Internal("fetch answered a non-Response".into()))?
            .into();
        let body = read_response(&answer).await.map_err(|_| {
            GatewayError::BadGateway("The upstream's answer to the upload broke off.".into())
        })?;
        Ok((answer, body))
    };
    let timer = Delay::from(Duration::from_millis(timeout_ms));
    match select(Box::pin(exchange), Box::pin(timer)).await {
        Either::Left((answer, _)) => answer,
        Either::Right(_) => {
            controller.abort();
            Err(GatewayError::UpstreamTimeout(
                "The upstream did not take the upload in time.".into(),
            ))
        }
    }
}

/// The headers of Google's answer to upload bytes that the client gets: its upload
/// status and progress, and the content type.
fn relayed_upload_headers(answer: &worker::Response) -> Result<Headers, GatewayError> {
    let out = Headers::new();
    for name in [
        "x-goog-upload-status",
        "x-goog-upload-chunk-granularity",
        "x-goog-upload-size-received",
    ] {
        if let Some(value) = answer.headers().get(name)? {
            out.set(name, &value)?;
        }
    }
    out.set(
        "content-type",
        &answer
            .headers()
            .get("content-type")?
            .unwrap_or_else(|| "application/json; charset=UTF-8".into()),
    )?;
    Ok(out)
}

/// Pins what Google returned to `key_id` in `scope`, with its expiry.
async fn pin(
    app: &App,
    scope: &str,
    key_id: &str,
    collection: Collection,
    resource: &Value,
) -> Result<(), GatewayError> {
    let Some(name) = files::resource_name(collection, resource) else {
        worker::console_warn!(
            "[gemgate] req={} upstream returned a {} without a name; not pinned",
            app.request_id,
            collection.as_str()
        );
        return Ok(());
    };
    let now = now_ms();
    pins::put(
        &app.db()?,
        &NewPin {
            name: &name,
            scope,
            key_id,
            resource: &resource.to_string(),
            now_ms: now,
            expires_at: files::expiry_ms(collection, resource, now),
        },
    )
    .await
}

/// The snapshot and the key of a resource of the caller's: 404 when the caller has none
/// by that name, a clear 400 when its key left the pool.
async fn pinned(
    app: &App,
    caller: &Caller,
    name: &str,
) -> Result<(std::rc::Rc<Snapshot>, String), GatewayError> {
    let pin = pins::get(&app.db()?, name, &caller.scope(), now_ms())
        .await?
        .ok_or_else(|| files::not_found(name))?;
    let snap = snapshot::snapshot(app).await?;
    if snap.secret(&pin.key_id).is_none() {
        return Err(files::key_gone(name));
    }
    Ok((snap, pin.key_id))
}

/// One call on the key that holds `name`.
fn pinned_request(
    app: &App,
    method: Method,
    name: &str,
    query: &[(String, String)],
    body: Option<String>,
    key_id: String,
) -> Result<UpstreamRequest, GatewayError> {
    Ok(UpstreamRequest {
        method,
        url: urls::resource(&app.config.env.gemini_api_base, name, pairs(query))?,
        body,
        stream: false,
        gate: FILES_GATE.to_owned(),
        code_assist: None,
        pin: Some(key_id),
        headers: Vec::new(),
    })
}

/// Google no longer has it (expired, deleted elsewhere): a 403 or 404 naming it.
fn gone_upstream(result: &Result<UpstreamOk, UpstreamError>) -> bool {
    matches!(
        result,
        Err(UpstreamError::Client {
            status: 403 | 404,
            ..
        })
    )
}

/// `GET /v1beta/{collection}/{id}`: Google's current view, from the key that holds it.
pub async fn get(app: &App, caller: &Caller, collection: Collection, id: &str) -> HandlerResult {
    let name = collection.name(id);
    let (snap, key_id) = pinned(app, caller, &name).await?;
    let request = pinned_request(app, Method::Get, &name, &[], None, key_id.clone())?;
    let result = upstream::send(app, &snap, &request).await;
    refresh(app, caller, collection, &name, &key_id, &result).await?;
    google_answer(result)
}

/// Keeps the pin in step with what Google said: a fresh resource re-pinned (a new
/// state or expiry), a vanished one forgotten (and the caller told it is not found).
async fn refresh(
    app: &App,
    caller: &Caller,
    collection: Collection,
    name: &str,
    key_id: &str,
    result: &Result<UpstreamOk, UpstreamError>,
) -> Result<(), GatewayError> {
    let scope = caller.scope();
    if gone_upstream(result) {
        pins::delete(&app.db()?, name, &scope).await?;
        return Err(files::not_found(name));
    }
    if let Ok(UpstreamOk {
        body: UpstreamBody::Full(bytes),
        ..
    }) = result
        && let Ok(resource) = serde_json::from_slice::<Value>(bytes)
    {
        pin(app, &scope, key_id, collection, &resource).await?;
    }
    Ok(())
}

/// `DELETE /v1beta/{collection}/{id}`: deleted upstream, then forgotten.
pub async fn delete(app: &App, caller: &Caller, collection: Collection, id: &str) -> HandlerResult {
    let name = collection.name(id);
    let (snap, key_id) = pinned(app, caller, &name).await?;
    let request = pinned_request(app, Method::Delete, &name, &[], None, key_id)?;
    let result = upstream::send(app, &snap, &request).await;
    if result.is_ok() || gone_upstream(&result) {
        pins::delete(&app.db()?, &name, &caller.scope()).await?;
    }
    if gone_upstream(&result) {
        return Err(files::not_found(&name));
    }
    google_answer(result)
}

/// `GET /v1beta/{collection}`: the caller's own, as Google last described them, by name.
pub async fn list(app: &App, caller: &Caller, url: &Url, collection: Collection) -> HandlerResult {
    let query = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let size = files::page_size(query("pageSize").as_deref())?;
    let after = files::page_token(collection, query("pageToken").as_deref())?;
    let mut rows = pins::list(
        &app.db()?,
        collection,
        &caller.scope(),
        &after,
        size + 1,
        now_ms(),
    )
    .await?;
    let more = rows.len() > size;
    rows.truncate(size);
    let mut page = Map::new();
    if !rows.is_empty() {
        let items: Vec<Value> = rows
            .iter()
            .filter_map(|(_, resource)| serde_json::from_str(resource).ok())
            .collect();
        page.insert(collection.list_field().into(), Value::Array(items));
    }
    if more && let Some((last, _)) = rows.last() {
        page.insert("nextPageToken".into(), json!(last));
    }
    render::json(200, &page)
}

/// `POST /v1beta/cachedContents`: made on the key that holds the files it names (or one
/// the rotation picks), and pinned to it.
pub async fn create_cache(
    app: &App,
    caller: &Caller,
    mut req: Request,
    url: &Url,
) -> HandlerResult {
    let snap = snapshot::snapshot(app).await?;
    let raw = read_capped(&mut req, snap.settings.max_body_bytes).await?;
    let parsed: Value = serde_json::from_slice(&raw)
        .map_err(|e| GatewayError::invalid(format!("Invalid JSON payload received. {e}")))?;
    if !parsed.is_object() {
        return Err(GatewayError::invalid(
            "Invalid JSON payload received. The request body must be a JSON object.",
        ));
    }
    let pin_key = upstream::pins::pin_for(app, &snap, caller.user_id(), &raw, &parsed).await?;
    let body = String::from_utf8(raw)
        .map_err(|_| GatewayError::invalid("The request body is not valid UTF-8."))?;
    let query = forwarded(url);
    let request = UpstreamRequest {
        method: Method::Post,
        url: urls::resource(
            &app.config.env.gemini_api_base,
            Collection::CachedContents.as_str(),
            pairs(&query),
        )?,
        body: Some(body),
        stream: false,
        gate: FILES_GATE.to_owned(),
        code_assist: None,
        pin: pin_key,
        headers: Vec::new(),
    };
    let result = upstream::send(app, &snap, &request).await;
    if let Ok(UpstreamOk {
        body: UpstreamBody::Full(bytes),
        key_id,
        ..
    }) = &result
        && let Ok(cache) = serde_json::from_slice::<Value>(bytes)
    {
        pin(
            app,
            &caller.scope(),
            key_id,
            Collection::CachedContents,
            &cache,
        )
        .await?;
    }
    google_answer(result)
}

/// `PATCH /v1beta/cachedContents/{id}`: a new TTL or expiry, on the key that holds it.
pub async fn update_cache(
    app: &App,
    caller: &Caller,
    mut req: Request,
    url: &Url,
    id: &str,
) -> HandlerResult {
    let name = Collection::CachedContents.name(id);
    let (snap, key_id) = pinned(app, caller, &name).await?;
    let raw = read_capped(&mut req, snap.settings.max_body_bytes).await?;
    serde_json::from_slice::<Map<String, Value>>(&raw)
        .map_err(|e| GatewayError::invalid(format!("Invalid JSON payload received. {e}")))?;
    let body = String::from_utf8(raw)
        .map_err(|_| GatewayError::invalid("The request body is not valid UTF-8."))?;
    let request = pinned_request(
        app,
        Method::Patch,
        &name,
        &forwarded(url),
        Some(body),
        key_id.clone(),
    )?;
    let result = upstream::send(app, &snap, &request).await;
    refresh(
        app,
        caller,
        Collection::CachedContents,
        &name,
        &key_id,
        &result,
    )
    .await?;
    google_answer(result)
}

/// Relays a JSON answer as Google gave it (a refusal with Google's own body).
fn google_answer(result: Result<UpstreamOk, UpstreamError>) -> HandlerResult {
    match result {
        Ok(ok) => {
            let body = match ok.body {
                UpstreamBody::Full(bytes) => bytes,
                UpstreamBody::Stream { .. } => Vec::new(),
            };
            render::google_json(ok.status, body, ok.content_type.as_deref())
        }
        Err(UpstreamError::Client { status, body }) => render::google_json(status, body, None),
        Err(UpstreamError::Gateway(e)) => Err(e),
    }
}
