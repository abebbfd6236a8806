//! `GET /health`: whether the gateway has keys to serve with. Counts only:
//! no secrets, no ids, no auth.

use serde_json::json;
use worker::Response;

use crate::domain::error::GatewayError;
use crate::edge::app::App;
use crate::edge::http::render;
use crate::edge::now_ms;
use crate::edge::store::keys as key_store;

pub async fn health(app: &App) -> Result<Response, GatewayError> {
    let counts = key_store::health_counts(&app.db()?, now_ms()).await?;
    render::json(200, &json!({ "status": "ok", "keys": counts }))
}
