//! `/admin/api/users`: user keys. D1 holds the record and only the SHA-256 of
//! each secret; every change is also pushed to the user's `UserLedger`,
//! which is what admission trusts, so a disable, rotate or delete takes
//! effect on the very next request in every isolate.

use std::collections::HashMap;

use serde_json::{Value, json};
use worker::{Request, Response};

use crate::domain::error::GatewayError;
use crate::domain::quota::{LedgerRequest, UserLimits};
use crate::domain::userkey;
use crate::domain::users::{UsageTotals, UserEdit, UserRecord, next_revision};
use crate::edge::app::App;
use crate::edge::http::{body, render};
use crate::edge::now_ms;
use crate::edge::objects::ledger;
use crate::edge::snapshot::users as user_cache;
use crate::edge::store::users as user_store;

type HandlerResult = Result<Response, GatewayError>;

fn found(user: Option<UserRecord>, id: &str) -> Result<UserRecord, GatewayError> {
    user.ok_or_else(|| GatewayError::RouteNotFound(format!("No user with id {id}.")))
}

/// A user as the admin API shows it: the record (never the secret) and its usage totals.
fn view(user: &UserRecord, usage: &HashMap<String, UsageTotals>) -> Value {
    let mut value = serde_json::to_value(user).unwrap_or(Value::Null);
    let totals = usage.get(&user.id).copied().unwrap_or_default();
    if let Value::Object(map) = &mut value {
        map.insert(
            "usage".into(),
            serde_json::to_value(totals).unwrap_or(Value::Null),
        );
    }
    value
}

pub async fn list(app: &App) -> HandlerResult {
    let db = app.db()?;
    let users = user_store::list(&db).await?;
    let usage = user_store::usage_totals(&db, None).await?;
    let users: Vec<Value> = users.iter().map(|u| view(u, &usage)).collect();
    render::json(200, &json!({ "users": users, "total": users.len() }))
}

pub async fn get(app: &App, id: &str) -> HandlerResult {
    let db = app.db()?;
    let user = found(user_store::get(&db, id).await?, id)?;
    let usage = user_store::usage_totals(&db, Some(id)).await?;
    render::json(200, &json!({ "user": view(&user, &usage) }))
}

pub async fn create(app: &App, req: &mut Request) -> HandlerResult {
    let edit = UserEdit::parse(&body::read_admin_json(req).await?, true)?;
    let secret = userkey::new_secret(&random::<32>()?);
    let mut user = UserRecord::new(
        userkey::new_user_id(&random::<8>()?),
        userkey::hash(&secret),
        userkey::hint(&secret),
        now_ms(),
    );
    edit.apply(&mut user);
    save(app, &user, true).await?;
    render::json(
        201,
        &json!({ "user": view(&user, &HashMap::new()), "key": secret }),
    )
}

pub async fn update(app: &App, req: &mut Request, id: &str) -> HandlerResult {
    let edit = UserEdit::parse(&body::read_admin_json(req).await?, false)?;
    let db = app.db()?;
    let mut user = found(user_store::get(&db, id).await?, id)?;
    edit.apply(&mut user);
    user.updated_at = next_revision(user.updated_at, now_ms());
    save(app, &user, false).await?;
    let usage = user_store::usage_totals(&db, Some(id)).await?;
    render::json(200, &json!({ "user": view(&user, &usage) }))
}

pub async fn rotate(app: &App, id: &str) -> HandlerResult {
    let db = app.db()?;
    let mut user = found(user_store::get(&db, id).await?, id)?;
    let secret = userkey::new_secret(&random::<32>()?);
    user.key_hash = userkey::hash(&secret);
    user.key_hint = userkey::hint(&secret);
    user.updated_at = next_revision(user.updated_at, now_ms());
    save(app, &user, false).await?;
    let usage = user_store::usage_totals(&db, Some(id)).await?;
    render::json(200, &json!({ "user": view(&user, &usage), "key": secret }))
}

pub async fn delete(app: &App, id: &str) -> HandlerResult {
    let db = app.db()?;
    let user = found(user_store::get(&db, id).await?, id)?;
    let mut limits = user.limits();
    limits.deleted = true;
    limits.revision = next_revision(user.updated_at, now_ms());
    // The ledger first: once it refuses the key, removing the row cannot race a request.
    push(app, id, limits).await;
    user_store::delete(&db, id).await?;
    user_cache::invalidate();
    render::json(200, &json!({ "deleted": true, "id": id }))
}

/// Writes the record, forgets this isolate's cached copy, and tells the ledger.
async fn save(app: &App, user: &UserRecord, insert: bool) -> Result<(), GatewayError> {
    user_store::save(&app.db()?, user, insert).await?;
    user_cache::invalidate();
    push(app, &user.id, user.limits()).await;
    Ok(())
}

/// Tells the user's ledger about new limits. D1 already has them, so a failure here only
/// delays them until an isolate reloads the record; it is logged, not fatal.
async fn push(app: &App, id: &str, limits: UserLimits) {
    if let Err(e) = ledger::call(&app.env, id, &LedgerRequest::Configure { limits }).await {
        worker::console_warn!("[gemgate] ledger configure for {id} failed: {e}");
    }
}

fn random<const N: usize>() -> Result<[u8; N], GatewayError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| GatewayError::Internal(format!("random bytes: {e}")))?;
    Ok(bytes)
}
