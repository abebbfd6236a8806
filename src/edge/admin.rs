//! The admin API (`/admin/api/...`, Bearer `ADMIN_PASSWORD`) and the admin
//! page, served from the `ASSETS` binding with security headers.

use serde::Deserialize;
use serde_json::{Value, json};
use worker::wasm_bindgen::JsValue;
use worker::{Headers, Method, Request, Response, ResponseBuilder};

use super::app::{App, internal};
use super::keys::{self, KeyMeta};
use super::openai::runtime;
use super::{body, render, settings};
use crate::domain::config::parse_key_list;
use crate::domain::error::GatewayError;
use crate::domain::route::Route;

type HandlerResult = Result<Response, GatewayError>;

/// Admin request bodies are small; this cap is fixed.
const ADMIN_BODY_LIMIT: u64 = 1024 * 1024;
/// Upstream key ids and secrets never exceed this in practice.
const MAX_KEY_LEN: usize = 256;

pub async fn api(app: &App, mut req: Request, route: Route) -> HandlerResult {
    let method = req.method();
    match (route, method) {
        (Route::AdminKeys, Method::Get) => list_keys(app).await,
        (Route::AdminKeys, Method::Post) => add_keys(app, &mut req).await,
        (Route::AdminKeys, Method::Delete) => delete_keys(app, &mut req).await,
        (Route::AdminKey(id), Method::Get) => get_key(app, &id).await,
        (Route::AdminKey(id), Method::Patch) => patch_key(app, &mut req, &id).await,
        (Route::AdminKey(id), Method::Delete) => delete_one(app, &id).await,
        (Route::AdminSettings, Method::Get) => {
            let s = settings::load(&app.db()?).await?;
            render::json(200, &s).map_err(runtime)
        }
        (Route::AdminSettings, Method::Put | Method::Patch) => patch_settings(app, &mut req).await,
        (route, method) => Err(GatewayError::MethodNotAllowed(format!(
            "{method} is not allowed on {route:?}."
        ))),
    }
}

async fn read_json(req: &mut Request) -> Result<Value, GatewayError> {
    let raw = body::read_capped(req, ADMIN_BODY_LIMIT).await?;
    if raw.is_empty() {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    serde_json::from_slice(&raw)
        .map_err(|e| GatewayError::invalid(format!("Invalid JSON body: {e}")))
}

async fn list_keys(app: &App) -> HandlerResult {
    let keys = keys::list(&app.db()?).await?;
    let enabled = keys.iter().filter(|k| k.enabled).count();
    render::json(
        200,
        &json!({ "keys": keys, "total": keys.len(), "enabled": enabled }),
    )
    .map_err(runtime)
}

async fn get_key(app: &App, id: &str) -> HandlerResult {
    let keys = keys::list(&app.db()?).await?;
    let Some(key) = keys.into_iter().find(|k| k.id == id) else {
        return Err(GatewayError::RouteNotFound(format!("No key with id {id}.")));
    };
    render::json(200, &key).map_err(runtime)
}

#[derive(Deserialize)]
struct AddKeys {
    keys: KeysInput,
    #[serde(flatten)]
    meta: KeyMeta,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum KeysInput {
    List(Vec<String>),
    Text(String),
}

/// `POST /admin/api/keys`: `{"keys": [..]}` or `{"keys": "k1\nk2 ..."}`,
/// added idempotently. Answers with counts only, never the keys.
async fn add_keys(app: &App, req: &mut Request) -> HandlerResult {
    let body = read_json(req).await?;
    let input: AddKeys = serde_json::from_value(body).map_err(|e| {
        GatewayError::invalid_param(
            format!("Expected {{\"keys\": [..]}} or {{\"keys\": \"k1\\nk2\"}}: {e}"),
            "keys",
        )
    })?;
    let candidates = match input.keys {
        KeysInput::Text(text) => parse_key_list(&text),
        KeysInput::List(list) => parse_key_list(&list.join("\n")),
    };
    let (valid, invalid): (Vec<String>, Vec<String>) = candidates
        .into_iter()
        .partition(|k| k.len() <= MAX_KEY_LEN && k.chars().all(|c| c.is_ascii_graphic()));
    if let Some(class) = input.meta.class.as_deref()
        && class != "free"
        && class != "paid"
    {
        return Err(GatewayError::invalid_param(
            "class must be `free` or `paid`.",
            "class",
        ));
    }
    let meta = KeyMeta {
        source: "admin".into(),
        ..input.meta
    };
    let sealer = keys::sealer(&app.env).await?;
    let counts = keys::import(&app.db()?, &valid, &meta, sealer.as_deref()).await?;
    render::json(
        200,
        &json!({
            "added": counts.added,
            "existing": counts.existing,
            "invalid": invalid.len(),
            "received": valid.len() + invalid.len(),
        }),
    )
    .map_err(runtime)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyPatch {
    enabled: Option<bool>,
    label: Option<String>,
    project: Option<String>,
    weight: Option<u32>,
}

async fn patch_key(app: &App, req: &mut Request, id: &str) -> HandlerResult {
    let body = read_json(req).await?;
    let patch: KeyPatch = serde_json::from_value(body)
        .map_err(|e| GatewayError::invalid(format!("Invalid key update: {e}")))?;
    let db = app.db()?;
    let now = super::js_int(super::now_ms());
    let result = db
        .prepare(
            "UPDATE upstream_keys SET \
             enabled = COALESCE(?2, enabled), \
             disabled_reason = CASE WHEN ?2 = 1 THEN NULL WHEN ?2 = 0 THEN 'disabled by admin' ELSE disabled_reason END, \
             label = COALESCE(?3, label), project = COALESCE(?4, project), \
             weight = COALESCE(?5, weight), updated_at = ?6 WHERE id = ?1",
        )
        .bind(&[
            id.into(),
            patch.enabled.map_or(JsValue::NULL, |e| JsValue::from_f64(f64::from(u8::from(e)))),
            keys::opt(patch.label.as_deref()),
            keys::opt(patch.project.as_deref()),
            patch.weight.map_or(JsValue::NULL, |w| JsValue::from_f64(f64::from(w.clamp(1, 1000)))),
            now,
        ])
        .map_err(internal("bind key update"))?
        .run()
        .await
        .map_err(internal("update key"))?;
    if result
        .meta()
        .ok()
        .flatten()
        .and_then(|m| m.changes)
        .unwrap_or(0)
        == 0
    {
        return Err(GatewayError::RouteNotFound(format!("No key with id {id}.")));
    }
    keys::invalidate();
    get_key(app, id).await
}

async fn delete_one(app: &App, id: &str) -> HandlerResult {
    let deleted = delete_ids(app, &[id.to_owned()]).await?;
    if deleted == 0 {
        return Err(GatewayError::RouteNotFound(format!("No key with id {id}.")));
    }
    render::json(200, &json!({ "deleted": deleted })).map_err(runtime)
}

/// `DELETE /admin/api/keys` with `{"ids": [..]}`, or `{"all": true}`.
async fn delete_keys(app: &App, req: &mut Request) -> HandlerResult {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Delete {
        #[serde(default)]
        ids: Vec<String>,
        #[serde(default)]
        all: bool,
    }
    let body = read_json(req).await?;
    let del: Delete = serde_json::from_value(body).map_err(|e| {
        GatewayError::invalid(format!(
            "Expected {{\"ids\": [..]}} or {{\"all\": true}}: {e}"
        ))
    })?;
    let deleted = if del.all {
        let db = app.db()?;
        let results = db
            .batch(vec![
                db.prepare("DELETE FROM key_model_health"),
                db.prepare("DELETE FROM upstream_keys"),
            ])
            .await
            .map_err(internal("delete all keys"))?;
        keys::invalidate();
        results
            .get(1)
            .and_then(|r| r.meta().ok().flatten())
            .and_then(|m| m.changes)
            .unwrap_or(0)
    } else if del.ids.is_empty() {
        return Err(GatewayError::invalid_param(
            "Give `ids` or `all: true`.",
            "ids",
        ));
    } else {
        delete_ids(app, &del.ids).await?
    };
    render::json(200, &json!({ "deleted": deleted })).map_err(runtime)
}

async fn delete_ids(app: &App, ids: &[String]) -> Result<usize, GatewayError> {
    let db = app.db()?;
    let mut statements = Vec::new();
    for id in ids {
        statements.push(
            db.prepare("DELETE FROM key_model_health WHERE key_id = ?1")
                .bind(&[id.as_str().into()])
                .map_err(internal("bind delete"))?,
        );
        statements.push(
            db.prepare("DELETE FROM upstream_keys WHERE id = ?1")
                .bind(&[id.as_str().into()])
                .map_err(internal("bind delete"))?,
        );
    }
    let results = db
        .batch(statements)
        .await
        .map_err(internal("delete keys"))?;
    keys::invalidate();
    Ok(results
        .iter()
        .skip(1)
        .step_by(2)
        .filter_map(|r| r.meta().ok().flatten().and_then(|m| m.changes))
        .sum())
}

async fn patch_settings(app: &App, req: &mut Request) -> HandlerResult {
    let patch = read_json(req).await?;
    let db = app.db()?;
    let mut current = settings::load(&db).await?;
    current.apply_patch(&patch)?;
    settings::save(&db, &current).await?;
    render::json(200, &current).map_err(runtime)
}

/// Serves the admin page (and the self-service usage page) from `ASSETS`, adding CSP and
/// security headers.
pub async fn page(app: &App, req: Request) -> HandlerResult {
    let assets = app
        .env
        .assets("ASSETS")
        .map_err(|e| GatewayError::Internal(format!("ASSETS binding: {e}")))?;
    let url = req.url().map_err(runtime)?;
    let path = match url.path() {
        "/admin" | "/admin/" => "/admin/index.html".to_owned(),
        "/usage" | "/usage/" => "/usage.html".to_owned(),
        p => p.to_owned(),
    };
    let mut target = url.clone();
    target.set_path(&path);
    let asset = assets
        .fetch(target.to_string(), None)
        .await
        .map_err(runtime)?;
    // The assets response's headers are immutable: copy them into new ones.
    let headers = Headers::new();
    for (name, value) in asset.headers().entries() {
        headers.append(&name, &value).map_err(runtime)?;
    }
    for (name, value) in [
        (
            "content-security-policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
    ] {
        headers.set(name, value).map_err(runtime)?;
    }
    let status = asset.status_code();
    let (_, body) = asset.into_parts();
    Ok(ResponseBuilder::new()
        .with_status(status)
        .with_headers(headers)
        .body(body))
}
