//! User keys: the D1 repository, the per-isolate lookup cache, and the admin API
//! (`/admin/api/users…`). D1 holds the record and only the SHA-256 of each secret; every
//! change is also pushed to the user's `UserLedger`, which is what admission trusts, so a
//! disable, rotate or delete takes effect on the very next request in every isolate.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, Method, Request, Response};

use super::app::{App, internal};
use super::openai::runtime;
use super::{body, int, js_int, ledger, now_ms, render};
use crate::domain::error::GatewayError;
use crate::domain::quota::{LedgerRequest, UserLimits};
use crate::domain::route::Route;
use crate::domain::userkey;

type HandlerResult = Result<Response, GatewayError>;

/// A user as D1 stores it (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserRecord {
    pub id: String,
    pub name: String,
    pub note: String,
    #[serde(skip)]
    pub key_hash: String,
    #[serde(rename = "key")]
    pub key_hint: String,
    pub enabled: bool,
    pub expires_at: Option<u64>,
    pub allowed_models: Vec<String>,
    pub credit_quota: Option<u64>,
    pub rpm: Option<u32>,
    pub rpd: Option<u32>,
    pub tpm: Option<u64>,
    pub max_concurrency: Option<u32>,
    pub credits_used: u64,
    pub created_at: u64,
    pub updated_at: u64,
}

impl UserRecord {
    /// What the ledger enforces; `updated_at` orders versions.
    pub fn limits(&self) -> UserLimits {
        UserLimits {
            revision: self.updated_at,
            key_hash: self.key_hash.clone(),
            enabled: self.enabled,
            deleted: false,
            expires_at: self.expires_at,
            allowed_models: self.allowed_models.clone(),
            credit_quota: self.credit_quota,
            rpm: self.rpm,
            rpd: self.rpd,
            tpm: self.tpm,
            max_concurrency: self.max_concurrency,
        }
    }
}

/// D1 returns numbers as JS numbers (f64).
#[derive(Deserialize)]
struct UserRow {
    id: String,
    name: String,
    note: Option<String>,
    key_hash: String,
    key_hint: String,
    enabled: f64,
    expires_at: Option<f64>,
    allowed_models: Option<String>,
    credit_quota: Option<f64>,
    rpm: Option<f64>,
    rpd: Option<f64>,
    tpm: Option<f64>,
    max_concurrency: Option<f64>,
    credits_used: f64,
    created_at: f64,
    updated_at: f64,
}

fn small(v: Option<f64>) -> Option<u32> {
    v.map(|v| u32::try_from(int(v)).unwrap_or(u32::MAX))
}

impl From<UserRow> for UserRecord {
    fn from(r: UserRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            note: r.note.unwrap_or_default(),
            key_hash: r.key_hash,
            key_hint: r.key_hint,
            enabled: r.enabled != 0.0,
            expires_at: r.expires_at.map(int),
            allowed_models: r
                .allowed_models
                .and_then(|m| serde_json::from_str(&m).ok())
                .unwrap_or_default(),
            credit_quota: r.credit_quota.map(int),
            rpm: small(r.rpm),
            rpd: small(r.rpd),
            tpm: r.tpm.map(int),
            max_concurrency: small(r.max_concurrency),
            credits_used: int(r.credits_used),
            created_at: int(r.created_at),
            updated_at: int(r.updated_at),
        }
    }
}

const COLUMNS: &str = "id, name, note, key_hash, key_hint, enabled, expires_at, allowed_models, \
    credit_quota, rpm, rpd, tpm, max_concurrency, credits_used, created_at, updated_at";

// ---------------------------------------------------------------------------------------------
// lookup cache
// ---------------------------------------------------------------------------------------------

/// How long an isolate trusts its copy of a user (or of "no such key"). The ledger is
/// authoritative for everything that must take effect at once, so this only saves D1 reads.
const CACHE_TTL_MS: u64 = 10_000;
const CACHE_MAX: usize = 10_000;

/// Key hash → (when it was read, the user or "no such key").
type Cache = HashMap<String, (u64, Option<Rc<UserRecord>>)>;

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(HashMap::new());
}

/// Forgets every cached user: an admin write in this isolate is seen at once.
pub fn invalidate() {
    CACHE.with(|c| c.borrow_mut().clear());
}

/// The user owning `token`, if it is a user key.
pub async fn by_token(app: &App, token: &str) -> Result<Option<Rc<UserRecord>>, GatewayError> {
    if !userkey::plausible(token) {
        return Ok(None);
    }
    let hash = userkey::hash(token);
    let now = now_ms();
    let cached = CACHE.with(|c| {
        c.borrow()
            .get(&hash)
            .filter(|(at, _)| now.saturating_sub(*at) < CACHE_TTL_MS)
            .map(|(_, user)| user.clone())
    });
    if let Some(user) = cached {
        return Ok(user);
    }
    let row: Option<UserRow> = app
        .db()?
        .prepare(format!("SELECT {COLUMNS} FROM users WHERE key_hash = ?1"))
        .bind(&[hash.as_str().into()])
        .map_err(internal("bind user lookup"))?
        .first(None)
        .await
        .map_err(internal("user lookup"))?;
    let user = row.map(|r| Rc::new(UserRecord::from(r)));
    CACHE.with(|c| {
        let mut cache = c.borrow_mut();
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(hash, (now, user.clone()));
    });
    Ok(user)
}

async fn get(db: &D1Database, id: &str) -> Result<Option<UserRecord>, GatewayError> {
    let row: Option<UserRow> = db
        .prepare(format!("SELECT {COLUMNS} FROM users WHERE id = ?1"))
        .bind(&[id.into()])
        .map_err(internal("bind user get"))?
        .first(None)
        .await
        .map_err(internal("user get"))?;
    Ok(row.map(UserRecord::from))
}

// ---------------------------------------------------------------------------------------------
// admin API
// ---------------------------------------------------------------------------------------------

/// Admin request bodies are small; this cap is fixed.
const ADMIN_BODY_LIMIT: u64 = 64 * 1024;

pub async fn api(app: &App, mut req: Request, route: Route) -> HandlerResult {
    let method = req.method();
    match (route, method) {
        (Route::AdminUsers, Method::Get) => list(app).await,
        (Route::AdminUsers, Method::Post) => create(app, &mut req).await,
        (Route::AdminUser(id), Method::Get) => {
            let user = found(get(&app.db()?, &id).await?, &id)?;
            let usage = usage_of(&app.db()?, Some(&id)).await?;
            render::json(200, &json!({ "user": view(&user, &usage) })).map_err(runtime)
        }
        (Route::AdminUser(id), Method::Patch) => update(app, &mut req, &id).await,
        (Route::AdminUser(id), Method::Delete) => delete(app, &id).await,
        (Route::AdminUserRotate(id), Method::Post) => rotate(app, &id).await,
        (route, method) => Err(GatewayError::MethodNotAllowed(format!(
            "{method} is not allowed on {route:?}."
        ))),
    }
}

fn found(user: Option<UserRecord>, id: &str) -> Result<UserRecord, GatewayError> {
    user.ok_or_else(|| GatewayError::RouteNotFound(format!("No user with id {id}.")))
}

/// Totals over the hourly rollups.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct UsageTotals {
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub reasoning_tokens: u64,
    pub credits: u64,
}

#[derive(Deserialize)]
struct TotalsRow {
    user_id: String,
    requests: f64,
    prompt_tokens: f64,
    completion_tokens: f64,
    reasoning_tokens: f64,
    credits: f64,
}

impl TotalsRow {
    fn totals(&self) -> UsageTotals {
        UsageTotals {
            requests: int(self.requests),
            prompt_tokens: int(self.prompt_tokens),
            completion_tokens: int(self.completion_tokens),
            reasoning_tokens: int(self.reasoning_tokens),
            credits: int(self.credits),
        }
    }
}

const TOTALS: &str = "SUM(requests) AS requests, SUM(prompt_tokens) AS prompt_tokens, \
    SUM(completion_tokens) AS completion_tokens, SUM(reasoning_tokens) AS reasoning_tokens, \
    SUM(credits) AS credits";

/// Rollup totals per user (all users, or one).
async fn usage_of(
    db: &D1Database,
    user: Option<&str>,
) -> Result<HashMap<String, UsageTotals>, GatewayError> {
    let stmt = match user {
        Some(id) => db
            .prepare(format!(
                "SELECT user_id, {TOTALS} FROM usage_hourly WHERE user_id = ?1 GROUP BY user_id"
            ))
            .bind(&[id.into()])
            .map_err(internal("bind usage"))?,
        None => db.prepare(format!(
            "SELECT user_id, {TOTALS} FROM usage_hourly WHERE user_id != '' GROUP BY user_id"
        )),
    };
    let rows: Vec<TotalsRow> = stmt
        .all()
        .await
        .map_err(internal("usage totals"))?
        .results()
        .map_err(internal("decode usage totals"))?;
    Ok(rows
        .iter()
        .map(|r| (r.user_id.clone(), r.totals()))
        .collect())
}

/// Per-model totals of one user, for `/v1/usage`.
pub async fn usage_by_model(
    db: &D1Database,
    user_id: &str,
) -> Result<Vec<(String, UsageTotals)>, GatewayError> {
    #[derive(Deserialize)]
    struct Row {
        model: String,
        #[serde(flatten)]
        totals: TotalsRow,
    }
    let rows: Vec<Row> = db
        .prepare(format!(
            "SELECT model, user_id, {TOTALS} FROM usage_hourly WHERE user_id = ?1 \
             GROUP BY model ORDER BY model"
        ))
        .bind(&[user_id.into()])
        .map_err(internal("bind model usage"))?
        .all()
        .await
        .map_err(internal("model usage"))?
        .results()
        .map_err(internal("decode model usage"))?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let totals = r.totals.totals();
            (r.model, totals)
        })
        .collect())
}

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

async fn list(app: &App) -> HandlerResult {
    let db = app.db()?;
    let rows: Vec<UserRow> = db
        .prepare(format!(
            "SELECT {COLUMNS} FROM users ORDER BY created_at, id"
        ))
        .all()
        .await
        .map_err(internal("list users"))?
        .results()
        .map_err(internal("decode users"))?;
    let usage = usage_of(&db, None).await?;
    let users: Vec<Value> = rows
        .into_iter()
        .map(|r| view(&UserRecord::from(r), &usage))
        .collect();
    render::json(200, &json!({ "users": users, "total": users.len() })).map_err(runtime)
}

/// The editable fields, checked one by one so errors name the field. `null` clears a limit.
#[derive(Debug, Default)]
#[expect(
    clippy::option_option,
    reason = "absent keeps a field, null clears it, a value sets it"
)]
struct Edit {
    name: Option<String>,
    note: Option<String>,
    enabled: Option<bool>,
    expires_at: Option<Option<u64>>,
    allowed_models: Option<Vec<String>>,
    credit_quota: Option<Option<u64>>,
    rpm: Option<Option<u64>>,
    rpd: Option<Option<u64>>,
    tpm: Option<Option<u64>>,
    max_concurrency: Option<Option<u64>>,
}

const MAX_LIMIT: u64 = 1 << 53;

impl Edit {
    fn parse(body: &Value) -> Result<Self, GatewayError> {
        let Value::Object(fields) = body else {
            return Err(GatewayError::invalid("The body must be a JSON object."));
        };
        let mut edit = Self::default();
        for (name, value) in fields {
            let bad =
                |why: &str| GatewayError::invalid_param(format!("`{name}` {why}."), name.clone());
            let limit = |value: &Value| -> Result<Option<u64>, GatewayError> {
                match value {
                    Value::Null => Ok(None),
                    v => v
                        .as_u64()
                        .filter(|n| *n <= MAX_LIMIT)
                        .map(Some)
                        .ok_or_else(|| bad("must be a non-negative integer or null")),
                }
            };
            match name.as_str() {
                "name" => {
                    let text = value.as_str().map(str::trim).unwrap_or_default();
                    if text.is_empty() || text.chars().count() > 200 {
                        return Err(bad("must be a non-empty string of at most 200 characters"));
                    }
                    edit.name = Some(text.to_owned());
                }
                "note" => {
                    let text = match value {
                        Value::Null => "",
                        Value::String(s) => s.as_str(),
                        _ => return Err(bad("must be a string")),
                    };
                    if text.chars().count() > 2000 {
                        return Err(bad("must be at most 2000 characters"));
                    }
                    edit.note = Some(text.to_owned());
                }
                "enabled" => {
                    edit.enabled = Some(value.as_bool().ok_or_else(|| bad("must be a boolean"))?);
                }
                "expires_at" => edit.expires_at = Some(limit(value)?),
                "allowed_models" => {
                    let list = match value {
                        Value::Null => Vec::new(),
                        Value::Array(items) => items
                            .iter()
                            .map(|m| {
                                m.as_str()
                                    .map(str::trim)
                                    .filter(|m| !m.is_empty() && m.len() <= 200)
                                    .map(str::to_owned)
                            })
                            .collect::<Option<Vec<_>>>()
                            .ok_or_else(|| bad("must be a list of non-empty model globs"))?,
                        _ => return Err(bad("must be a list of model globs")),
                    };
                    if list.len() > 100 {
                        return Err(bad("may hold at most 100 globs"));
                    }
                    edit.allowed_models = Some(list);
                }
                "credit_quota" => edit.credit_quota = Some(limit(value)?),
                "rpm" => edit.rpm = Some(limit(value)?),
                "rpd" => edit.rpd = Some(limit(value)?),
                "tpm" => edit.tpm = Some(limit(value)?),
                "max_concurrency" => edit.max_concurrency = Some(limit(value)?),
                _ => return Err(bad("is not a user field")),
            }
        }
        Ok(edit)
    }

    fn apply(self, user: &mut UserRecord) {
        let small = |v: Option<u64>| v.map(|v| u32::try_from(v).unwrap_or(u32::MAX));
        if let Some(v) = self.name {
            user.name = v;
        }
        if let Some(v) = self.note {
            user.note = v;
        }
        if let Some(v) = self.enabled {
            user.enabled = v;
        }
        if let Some(v) = self.expires_at {
            user.expires_at = v;
        }
        if let Some(v) = self.allowed_models {
            user.allowed_models = v;
        }
        if let Some(v) = self.credit_quota {
            user.credit_quota = v;
        }
        if let Some(v) = self.rpm {
            user.rpm = small(v);
        }
        if let Some(v) = self.rpd {
            user.rpd = small(v);
        }
        if let Some(v) = self.tpm {
            user.tpm = v;
        }
        if let Some(v) = self.max_concurrency {
            user.max_concurrency = small(v);
        }
    }
}

async fn read_json(req: &mut Request) -> Result<Value, GatewayError> {
    let raw = body::read_capped(req, ADMIN_BODY_LIMIT).await?;
    if raw.is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_slice(&raw)
        .map_err(|e| GatewayError::invalid(format!("Invalid JSON body: {e}")))
}

fn random<const N: usize>() -> Result<[u8; N], GatewayError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| GatewayError::Internal(format!("random bytes: {e}")))?;
    Ok(bytes)
}

fn opt(v: Option<u64>) -> JsValue {
    v.map_or(JsValue::NULL, js_int)
}

/// Writes the whole record (insert or update).
async fn save(db: &D1Database, user: &UserRecord, insert: bool) -> Result<(), GatewayError> {
    let sql = if insert {
        format!(
            "INSERT INTO users ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, \
             ?12, ?13, ?14, ?15, ?16)"
        )
    } else {
        "UPDATE users SET name = ?2, note = ?3, key_hash = ?4, key_hint = ?5, enabled = ?6, \
         expires_at = ?7, allowed_models = ?8, credit_quota = ?9, rpm = ?10, rpd = ?11, \
         tpm = ?12, max_concurrency = ?13, credits_used = ?14, created_at = ?15, \
         updated_at = ?16 WHERE id = ?1"
            .to_owned()
    };
    let models = serde_json::to_string(&user.allowed_models).unwrap_or_else(|_| "[]".into());
    db.prepare(sql)
        .bind(&[
            user.id.as_str().into(),
            user.name.as_str().into(),
            user.note.as_str().into(),
            user.key_hash.as_str().into(),
            user.key_hint.as_str().into(),
            js_int(u64::from(user.enabled)),
            opt(user.expires_at),
            models.as_str().into(),
            opt(user.credit_quota),
            opt(user.rpm.map(u64::from)),
            opt(user.rpd.map(u64::from)),
            opt(user.tpm),
            opt(user.max_concurrency.map(u64::from)),
            js_int(user.credits_used),
            js_int(user.created_at),
            js_int(user.updated_at),
        ])
        .map_err(internal("bind user save"))?
        .run()
        .await
        .map_err(internal("save user"))?;
    invalidate();
    Ok(())
}

/// Tells the user's ledger about new limits. D1 already has them, so a failure here only
/// delays them until an isolate reloads the record; it is logged, not fatal.
async fn push(app: &App, id: &str, limits: UserLimits) {
    if let Err(e) = ledger::call(&app.env, id, &LedgerRequest::Configure { limits }).await {
        worker::console_warn!("[gemgate] ledger configure for {id} failed: {e}");
    }
}

/// A revision strictly newer than the last, even within one millisecond.
fn next_revision(previous: u64) -> u64 {
    now_ms().max(previous + 1)
}

async fn create(app: &App, req: &mut Request) -> HandlerResult {
    let body = read_json(req).await?;
    if body.get("name").is_none() {
        return Err(GatewayError::invalid_param("`name` is required.", "name"));
    }
    let edit = Edit::parse(&body)?;
    let secret = userkey::new_secret(&random::<32>()?);
    let now = now_ms();
    let mut user = UserRecord {
        id: userkey::new_user_id(&random::<8>()?),
        name: String::new(),
        note: String::new(),
        key_hash: userkey::hash(&secret),
        key_hint: userkey::hint(&secret),
        enabled: true,
        expires_at: None,
        allowed_models: Vec::new(),
        credit_quota: None,
        rpm: None,
        rpd: None,
        tpm: None,
        max_concurrency: None,
        credits_used: 0,
        created_at: now,
        updated_at: now,
    };
    edit.apply(&mut user);
    let db = app.db()?;
    save(&db, &user, true).await?;
    push(app, &user.id, user.limits()).await;
    render::json(
        201,
        &json!({ "user": view(&user, &HashMap::new()), "key": secret }),
    )
    .map_err(runtime)
}

async fn update(app: &App, req: &mut Request, id: &str) -> HandlerResult {
    let body = read_json(req).await?;
    let edit = Edit::parse(&body)?;
    let db = app.db()?;
    let mut user = found(get(&db, id).await?, id)?;
    edit.apply(&mut user);
    user.updated_at = next_revision(user.updated_at);
    save(&db, &user, false).await?;
    push(app, id, user.limits()).await;
    let usage = usage_of(&db, Some(id)).await?;
    render::json(200, &json!({ "user": view(&user, &usage) })).map_err(runtime)
}

async fn rotate(app: &App, id: &str) -> HandlerResult {
    let db = app.db()?;
    let mut user = found(get(&db, id).await?, id)?;
    let secret = userkey::new_secret(&random::<32>()?);
    user.key_hash = userkey::hash(&secret);
    user.key_hint = userkey::hint(&secret);
    user.updated_at = next_revision(user.updated_at);
    save(&db, &user, false).await?;
    push(app, id, user.limits()).await;
    let usage = usage_of(&db, Some(id)).await?;
    render::json(200, &json!({ "user": view(&user, &usage), "key": secret })).map_err(runtime)
}

async fn delete(app: &App, id: &str) -> HandlerResult {
    let db = app.db()?;
    let user = found(get(&db, id).await?, id)?;
    let mut limits = user.limits();
    limits.deleted = true;
    limits.revision = next_revision(user.updated_at);
    // The ledger first: once it refuses the key, removing the row cannot race a request.
    push(app, id, limits).await;
    db.prepare("DELETE FROM users WHERE id = ?1")
        .bind(&[id.into()])
        .map_err(internal("bind user delete"))?
        .run()
        .await
        .map_err(internal("delete user"))?;
    invalidate();
    render::json(200, &json!({ "deleted": true, "id": id })).map_err(runtime)
}
