//! `GET /health`: whether the gateway can serve, in one look. Per model in
//! use, how many keys and accounts are usable now, and an overall `ok`,
//! `degraded` or `down` (503). Counts only: no secrets, no ids, no auth.

use serde_json::json;
use worker::Response;

use crate::domain::error::GatewayError;
use crate::domain::ops;
use crate::edge::app::App;
use crate::edge::http::render;
use crate::edge::now_ms;
use crate::edge::store::accounts as account_store;
use crate::edge::store::keys as key_store;
use crate::edge::upstream::readiness;

pub async fn health(app: &App) -> Result<Response, GatewayError> {
    let db = app.db()?;
    let now = now_ms();
    let (keys, accounts, models) = futures::try_join!(
        key_store::health_counts(&db, now),
        account_store::counts(&db),
        readiness::model_health(app, now),
    )?;
    let status = ops::verdict(&models);
    let mut resp = render::json(
        status.http_status(),
        &json!({ "status": status, "keys": keys, "accounts": accounts, "models": models }),
    )?;
    resp.headers_mut().set("cache-control", "no-store")?;
    Ok(resp)
}
