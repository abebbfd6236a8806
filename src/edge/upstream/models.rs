//! The upstream model list, cached per isolate and in KV (a cache only:
//! losing it costs one upstream call), and single-model lookups.

use std::cell::RefCell;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use worker::Method;

use crate::domain::accounts::routing::with_code_assist;
use crate::domain::error::GatewayError;
use crate::domain::gemini::{ListModelsResponse, Model};
use crate::edge::app::App;
use crate::edge::now_ms;
use crate::edge::snapshot::Snapshot;
use crate::edge::upstream::urls::{self, Version};
use crate::edge::upstream::{self, UpstreamError, UpstreamRequest};

/// The gate whose keys list models; it shares no health with real models.
pub const LIST_GATE: &str = "~models";

/// KV keyspace `models:v1`: the full upstream list, with a TTL from settings.
struct ModelListKey;

impl ModelListKey {
    const KEY: &'static str = "models:v1";
    /// KV's own minimum TTL.
    const MIN_TTL_SECS: u64 = 60;
}

#[derive(Serialize, Deserialize)]
struct CachedList {
    fetched_at: u64,
    models: Vec<Model>,
}

thread_local! {
    static LIST: RefCell<Option<Rc<CachedList>>> = const { RefCell::new(None) };
}

/// Upstream pages are capped; this bounds the walk even if a page token loops.
const MAX_PAGES: usize = 20;

pub async fn cached_list(app: &App, snap: &Snapshot) -> Result<Vec<Model>, GatewayError> {
    let ttl_ms = snap.settings.models_cache_ttl_secs.saturating_mul(1000);
    let now = now_ms();
    let fresh = |c: &CachedList| now.saturating_sub(c.fetched_at) < ttl_ms;
    if let Some(hit) = LIST.with(|l| l.borrow().clone()).filter(|c| fresh(c)) {
        return Ok(hit.models.clone());
    }
    let kv = app.env.kv("CACHE").ok();
    if let Some(kv) = &kv
        && let Ok(Some(hit)) = kv.get(ModelListKey::KEY).json::<CachedList>().await
        && fresh(&hit)
    {
        let models = hit.models.clone();
        LIST.with(|l| *l.borrow_mut() = Some(Rc::new(hit)));
        return Ok(models);
    }
    let models = fetch_all(app, snap).await?;
    let cached = CachedList {
        fetched_at: now,
        models: models.clone(),
    };
    if let Some(kv) = kv {
        let ttl = snap
            .settings
            .models_cache_ttl_secs
            .max(ModelListKey::MIN_TTL_SECS);
        if let Ok(put) = kv.put(ModelListKey::KEY, &cached) {
            let put = put.expiration_ttl(ttl);
            app.background.spawn(async move {
                if let Err(e) = put.execute().await {
                    worker::console_warn!("[gemgate] models cache write failed: {e}");
                }
            });
        }
    }
    LIST.with(|l| *l.borrow_mut() = Some(Rc::new(cached)));
    Ok(models)
}

/// What the pool can serve: the keys' upstream list, plus the Code Assist
/// models when accounts exist. With accounts only (or the keys' list
/// unreadable while accounts serve), the Code Assist models alone.
pub async fn pool_list(app: &App, snap: &Snapshot) -> Result<Vec<Model>, GatewayError> {
    if snap.accounts.is_empty() {
        return cached_list(app, snap).await;
    }
    let from_keys = if snap.keys.is_empty() {
        Vec::new()
    } else {
        cached_list(app, snap).await.unwrap_or_else(|e| {
            worker::console_warn!("[gemgate] model list from keys unavailable: {e}");
            Vec::new()
        })
    };
    Ok(with_code_assist(
        &from_keys,
        &snap.settings.routing.code_assist_models,
    ))
}

async fn fetch_all(app: &App, snap: &Snapshot) -> Result<Vec<Model>, GatewayError> {
    let base = &app.config.env.gemini_api_base;
    let mut models = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut query = vec![("pageSize", "1000")];
        if let Some(t) = &token {
            query.push(("pageToken", t));
        }
        let url = urls::models(base, Version::V1Beta, query)?;
        let page: ListModelsResponse = get_json(app, snap, url).await.map_err(|e| match e {
            UpstreamError::Gateway(e) => e,
            UpstreamError::Client { status, .. } => {
                GatewayError::BadGateway(format!("Upstream refused to list models ({status})."))
            }
        })?;
        models.extend(page.models);
        match page.next_page_token.filter(|t| !t.is_empty()) {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    Ok(models)
}

/// The model a client's name stands for (aliases, disabled models and the default model of
/// the catalog). `base` strips the name's gateway suffixes, where the surface has them. The
/// upstream list is read only when a default model is set; if it cannot be read, every name
/// counts as known.
pub async fn resolve(
    app: &App,
    snap: &Snapshot,
    requested: &str,
    base: impl Fn(&str) -> String,
) -> Result<String, GatewayError> {
    let catalog = &snap.settings.catalog;
    if catalog.default_model.is_none() {
        return catalog.resolve(requested, base, None);
    }
    match cached_list(app, snap).await {
        Ok(list) => {
            let known = |id: &str| list.iter().any(|m| m.name.as_str() == id);
            catalog.resolve(requested, base, Some(&known))
        }
        Err(e) => {
            worker::console_warn!("[gemgate] model list unavailable for default_model: {e}");
            catalog.resolve(requested, base, None)
        }
    }
}

/// One model: from the cached list when there, else asked upstream.
pub async fn one(app: &App, snap: &Snapshot, id: &str) -> Result<Model, UpstreamError> {
    if let Some(hit) = LIST.with(|l| l.borrow().clone())
        && let Some(m) = hit.models.iter().find(|m| m.name.as_str() == id)
    {
        return Ok(m.clone());
    }
    let url = urls::model(&app.config.env.gemini_api_base, Version::V1Beta, id)?;
    get_json(app, snap, url).await
}

async fn get_json<T: serde::de::DeserializeOwned>(
    app: &App,
    snap: &Snapshot,
    url: String,
) -> Result<T, UpstreamError> {
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
    Ok(upstream::send(app, snap, &request).await?.json()?)
}
