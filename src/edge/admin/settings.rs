//! `GET` and `PUT`/`PATCH /admin/api/settings`: the runtime settings, edited
//! field by field (`Settings::apply_patch` validates and names a bad field).

use worker::{Request, Response};

use crate::domain::error::GatewayError;
use crate::edge::app::App;
use crate::edge::http::{body, render};
use crate::edge::store::settings as settings_store;
use crate::edge::{now_ms, snapshot};

pub async fn get(app: &App) -> Result<Response, GatewayError> {
    render::json(200, &settings_store::load(&app.db()?).await?)
}

/// `GET /admin/api/settings/defaults`: what each setting is when unset.
pub fn defaults() -> Result<Response, GatewayError> {
    render::json(200, &crate::domain::config::Settings::default())
}

pub async fn update(app: &App, req: &mut Request) -> Result<Response, GatewayError> {
    let patch = body::read_admin_json(req).await?;
    let db = app.db()?;
    let mut current = settings_store::load(&db).await?;
    current.apply_patch(&patch)?;
    settings_store::save(&db, &current, now_ms()).await?;
    snapshot::invalidate();
    render::json(200, &current)
}
