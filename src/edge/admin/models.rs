//! `/admin/api/models`: the upstream list with what the catalog and the cost
//! table say about each model, and per-model edits (enabled, aliases, cost,
//! thinking default), saved into the runtime settings.

use serde_json::json;
use worker::{Request, Response};

use crate::domain::catalog::{ModelPatch, view, views};
use crate::domain::error::GatewayError;
use crate::domain::gemini::{Model, ModelName};
use crate::edge::app::App;
use crate::edge::http::{body, render};
use crate::edge::store::settings as settings_store;
use crate::edge::upstream::models;
use crate::edge::{now_ms, snapshot};

type HandlerResult = Result<Response, GatewayError>;

pub async fn list(app: &App) -> HandlerResult {
    let snap = snapshot::snapshot(app).await?;
    let list = models::cached_list(app, &snap).await?;
    let settings = &snap.settings;
    render::json(
        200,
        &json!({
            "models": views(&list, &settings.catalog, &settings.model_costs),
            "default_model": settings.catalog.default_model,
        }),
    )
}

pub async fn update(app: &App, req: &mut Request, id: &str) -> HandlerResult {
    let patch: ModelPatch = serde_json::from_value(body::read_admin_json(req).await?)
        .map_err(|e| GatewayError::invalid(format!("Invalid model update: {e}")))?;
    let db = app.db()?;
    let mut settings = settings_store::load(&db).await?;
    patch.apply(id, &mut settings.catalog, &mut settings.model_costs)?;
    settings.validate()?;
    settings_store::save(&db, &settings, now_ms()).await?;
    snapshot::invalidate();
    let snap = snapshot::snapshot(app).await?;
    // A model the upstream list does not have (or a list that cannot be read) is still shown.
    let listed = models::cached_list(app, &snap)
        .await
        .ok()
        .and_then(|list| list.into_iter().find(|m| m.name.as_str() == id));
    let model = match listed {
        Some(model) => model,
        None => bare_model(id)?,
    };
    let settings = &snap.settings;
    render::json(
        200,
        &json!({ "model": view(&model, &settings.catalog, &settings.model_costs) }),
    )
}

fn bare_model(id: &str) -> Result<Model, GatewayError> {
    serde_json::from_value(json!({ "name": ModelName::parse(id)?.resource() }))
        .map_err(|e| GatewayError::Internal(format!("model view: {e}")))
}
