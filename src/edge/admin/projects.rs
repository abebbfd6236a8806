//! Project groups and the limit presets: setting the project of many keys at
//! once, keys and capacity per project, and the rows the console applies in
//! one click (`domain::limits::presets`).

use serde_json::json;
use worker::{Request, Response};

use crate::domain::error::GatewayError;
use crate::domain::limits;
use crate::edge::app::App;
use crate::edge::http::render;

type HandlerResult = Result<Response, GatewayError>;

/// `GET /admin/api/model-limits/presets`.
pub fn presets() -> HandlerResult {
    render::json(200, &json!({ "presets": limits::presets() }))
}

/// `POST /admin/api/keys/project` `{"ids": [...], "project": "p" | null}`.
pub async fn set_keys_project(_app: &App, _req: &mut Request) -> HandlerResult {
    futures::future::ready(()).await;
    Err(GatewayError::invalid("not yet"))
}

/// `GET /admin/api/projects`.
pub async fn list(_app: &App) -> HandlerResult {
    futures::future::ready(()).await;
    Err(GatewayError::invalid("not yet"))
}
