//! `GET /health`: whether the gateway has keys and accounts to serve with. Counts only:
//! no secrets, no ids, no auth.

use serde_json::json;
use worker::Response;

use crate::domain::error::GatewayError;
use crate::edge::app::App;
use crate::edge::http::render;
use crate::edge::now_ms;
use crate::edge::store::accounts as account_store;
use crate::edge::store::keys as key_store;

pub async fn health(app: &App) -> Result<Response, GatewayError> {
    let db = app.db()?;
    let (keys, accounts) = futures::try_join!(
        key_store::health_counts(&db, now_ms()),
        account_store::counts(&db)
    )?;
    render::json(
        200,
        &json!({ "status": "ok", "keys": keys, "accounts": accounts }),
    )
}
