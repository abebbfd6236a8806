//! Gemini CLI accounts in D1 (`accounts`), the mirror of their health per
//! model (`account_model_health`) and the OAuth wizard's pending sign-ins
//! (`oauth_states`). Refresh tokens and client secrets arrive here already
//! sealed (or plain without `ENCRYPTION_KEY`); every view this module
//! returns leaves them out.

use serde::{Deserialize, Serialize};
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, D1Result};

use crate::domain::accounts::onboard::{Attention, Ready};
use crate::domain::accounts::record::Status;
use crate::domain::error::GatewayError;
use crate::domain::keypool::KeyHealthView;
use crate::edge::store::changes;
use crate::edge::{int, internal, js_int, js_opt};

/// An account as stored, secrets still sealed: what refreshing and onboarding need.
#[derive(Debug, Clone, Deserialize)]
pub struct StoredAccount {
    pub id: String,
    pub email: String,
    pub refresh_token: String,
    pub client_id: String,
    pub client_secret: String,
    pub project_id: Option<String>,
    pub project_pinned: f64,
    pub tier: Option<String>,
    pub enabled: f64,
    pub attention: Option<String>,
    pub updated_at: f64,
}

impl StoredAccount {
    /// The project the operator set, which onboarding must use.
    pub fn pinned_project(&self) -> Option<&str> {
        (self.project_pinned > 0.0)
            .then_some(self.project_id.as_deref())
            .flatten()
    }
}

const STORED_COLUMNS: &str = "id, email, refresh_token, client_id, client_secret, project_id, \
     project_pinned, tier, enabled, attention, updated_at";

/// The statement that reads the accounts that can serve, in a stable order, for a batch.
pub fn select_usable(db: &D1Database) -> D1PreparedStatement {
    db.prepare(format!(
        "SELECT {STORED_COLUMNS} FROM accounts WHERE enabled = 1 AND attention IS NULL \
         AND project_id IS NOT NULL AND project_id <> '' ORDER BY created_at, id"
    ))
}

pub fn decode_stored(result: &D1Result) -> Result<Vec<StoredAccount>, GatewayError> {
    result.results().map_err(internal("decode accounts"))
}

/// One account with its sealed secrets.
pub async fn stored(db: &D1Database, id: &str) -> Result<Option<StoredAccount>, GatewayError> {
    db.prepare(format!(
        "SELECT {STORED_COLUMNS} FROM accounts WHERE id = ?1"
    ))
    .bind(&[id.into()])
    .map_err(internal("bind account"))?
    .first(None)
    .await
    .map_err(internal("read account"))
}

/// What a validated credential brings to D1.
pub struct NewAccount<'a> {
    pub id: &'a str,
    pub email: &'a str,
    /// Sealed.
    pub refresh_token: &'a str,
    pub client_id: &'a str,
    /// Sealed.
    pub client_secret: &'a str,
    /// The operator's project, if given with the import.
    pub project: Option<&'a str>,
    pub source: &'a str,
    pub source_digest: Option<&'a str>,
}

/// What storing an imported credential came to.
pub struct Upserted {
    /// No account had this email before.
    pub new: bool,
    /// The project the operator pinned (with this import or before).
    pub pinned: Option<String>,
}

/// Adds an account, or refreshes the credential of the one with this email
/// (a re-import is how an operator fixes a revoked grant). A project given
/// with the import becomes the account's pinned project. The lookup and the
/// write go in one batch: one round trip, and a transaction.
pub async fn upsert(
    db: &D1Database,
    new: &NewAccount<'_>,
    now_ms: u64,
) -> Result<Upserted, GatewayError> {
    #[derive(Deserialize)]
    struct Row {
        project_id: Option<String>,
        project_pinned: f64,
    }
    let lookup = db
        .prepare("SELECT 1 AS one FROM accounts WHERE email = ?1")
        .bind(&[new.email.into()])
        .map_err(internal("bind account lookup"))?;
    let now = js_int(now_ms);
    let write = db
        .prepare(
            "INSERT INTO accounts (id, email, refresh_token, client_id, client_secret, project_id, \
         project_pinned, source, source_digest, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10) \
         ON CONFLICT (email) DO UPDATE SET refresh_token = ?3, client_id = ?4, \
         client_secret = ?5, project_id = COALESCE(?6, project_id), \
         project_pinned = MAX(project_pinned, ?7), \
         source_digest = COALESCE(?9, source_digest), updated_at = ?10 \
         RETURNING project_id, project_pinned",
        )
        .bind(&[
            new.id.into(),
            new.email.into(),
            new.refresh_token.into(),
            new.client_id.into(),
            new.client_secret.into(),
            js_opt(new.project),
            JsValue::from_f64(if new.project.is_some() { 1.0 } else { 0.0 }),
            new.source.into(),
            js_opt(new.source_digest),
            now,
        ])
        .map_err(internal("bind account upsert"))?;
    let results = db
        .batch(vec![lookup, write])
        .await
        .map_err(internal("store account"))?;
    let [existing, written] = crate::edge::store::batch_of(results)?;
    let existed = !existing
        .results::<serde_json::Value>()
        .map_err(internal("decode account lookup"))?
        .is_empty();
    let row = written
        .results::<Row>()
        .map_err(internal("decode account upsert"))?
        .into_iter()
        .next()
        .ok_or_else(|| GatewayError::Internal("account upsert returned no row".into()))?;
    Ok(Upserted {
        new: !existed,
        pinned: (row.project_pinned > 0.0)
            .then_some(row.project_id)
            .flatten(),
    })
}

/// Whether a `GCLI_CREDS_*` credential with this digest was imported already.
pub async fn has_source_digest(db: &D1Database, digest: &str) -> Result<bool, GatewayError> {
    Ok(db
        .prepare("SELECT 1 AS one FROM accounts WHERE source_digest = ?1")
        .bind(&[digest.into()])
        .map_err(internal("bind digest lookup"))?
        .first::<serde_json::Value>(None)
        .await
        .map_err(internal("look up digest"))?
        .is_some())
}

/// Onboarding passed: the project and tier are kept and any attention cleared.
pub async fn set_ready(
    db: &D1Database,
    id: &str,
    ready: &Ready,
    now_ms: u64,
) -> Result<(), GatewayError> {
    db.prepare(
        "UPDATE accounts SET project_id = ?2, tier = ?3, tier_name = ?4, attention = NULL, \
         attention_url = NULL, attention_message = NULL, last_error = NULL, onboarded_at = ?5, \
         updated_at = ?5 WHERE id = ?1",
    )
    .bind(&[
        id.into(),
        ready.project_id.as_str().into(),
        ready.tier.as_str().into(),
        js_opt(ready.tier_name.as_deref()),
        js_int(now_ms),
    ])
    .map_err(internal("bind account ready"))?
    .run()
    .await
    .map_err(internal("store account ready"))?;
    Ok(())
}

/// Google refused the account in a way only the operator can fix.
pub async fn set_attention(
    db: &D1Database,
    id: &str,
    attention: &Attention,
    now_ms: u64,
) -> Result<(), GatewayError> {
    db.prepare(
        "UPDATE accounts SET attention = ?2, attention_url = ?3, attention_message = ?4, \
         updated_at = ?5 WHERE id = ?1",
    )
    .bind(&[
        id.into(),
        attention.reason().into(),
        js_opt(attention.url()),
        attention.message().into(),
        js_int(now_ms),
    ])
    .map_err(internal("bind account attention"))?
    .run()
    .await
    .map_err(internal("store account attention"))?;
    Ok(())
}

/// The last error seen on the account (already free of secrets).
pub async fn set_last_error(db: &D1Database, id: &str, error: &str) -> Result<(), GatewayError> {
    db.prepare("UPDATE accounts SET last_error = ?2 WHERE id = ?1")
        .bind(&[id.into(), error.into()])
        .map_err(internal("bind account error"))?
        .run()
        .await
        .map_err(internal("store account error"))?;
    Ok(())
}

/// When the account last served a request.
pub async fn touch(db: &D1Database, id: &str, now_ms: u64) -> Result<(), GatewayError> {
    db.prepare("UPDATE accounts SET last_used_at = ?2 WHERE id = ?1")
        .bind(&[id.into(), js_int(now_ms)])
        .map_err(internal("bind account use"))?
        .run()
        .await
        .map_err(internal("store account use"))?;
    Ok(())
}

/// The operator's edits: the project (`Some(None)` clears it) and the switch.
/// Returns whether the account exists.
pub async fn update(
    db: &D1Database,
    id: &str,
    project: Option<Option<&str>>,
    enabled: Option<bool>,
    now_ms: u64,
) -> Result<bool, GatewayError> {
    let mut sets = vec!["updated_at = ?2".to_owned()];
    let mut params: Vec<JsValue> = vec![id.into(), js_int(now_ms)];
    if let Some(project) = project {
        params.push(js_opt(project));
        sets.push(format!("project_id = ?{}", params.len()));
        sets.push(format!(
            "project_pinned = CASE WHEN ?{} IS NULL THEN 0 ELSE 1 END",
            params.len()
        ));
    }
    if let Some(enabled) = enabled {
        params.push(JsValue::from_f64(if enabled { 1.0 } else { 0.0 }));
        sets.push(format!("enabled = ?{}", params.len()));
    }
    let result = db
        .prepare(format!(
            "UPDATE accounts SET {} WHERE id = ?1",
            sets.join(", ")
        ))
        .bind(&params)
        .map_err(internal("bind account update"))?
        .run()
        .await
        .map_err(internal("update account"))?;
    Ok(changes(&result) > 0)
}

pub async fn delete(db: &D1Database, id: &str) -> Result<bool, GatewayError> {
    let results = db
        .batch(vec![
            db.prepare("DELETE FROM account_model_health WHERE account_id = ?1")
                .bind(&[id.into()])
                .map_err(internal("bind health delete"))?,
            db.prepare("DELETE FROM accounts WHERE id = ?1")
                .bind(&[id.into()])
                .map_err(internal("bind account delete"))?,
        ])
        .await
        .map_err(internal("delete account"))?;
    Ok(results.last().is_some_and(|r| changes(r) > 0))
}

/// A cooldown of the account on one model, for the admin views.
#[derive(Debug, Serialize)]
pub struct Cooldown {
    pub model: String,
    pub until_ms: u64,
    pub reason: Option<String>,
}

/// An account as the admin API shows it: never a token or a secret.
#[derive(Debug, Serialize)]
pub struct AccountView {
    pub id: String,
    pub email: String,
    pub status: Status,
    pub enabled: bool,
    pub reason: Option<String>,
    pub url: Option<String>,
    pub message: Option<String>,
    pub project_id: Option<String>,
    pub project_pinned: bool,
    pub tier: Option<String>,
    pub tier_name: Option<String>,
    pub source: String,
    pub last_error: Option<String>,
    pub last_used_ms: Option<u64>,
    pub onboarded_ms: Option<u64>,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub cooldowns: Vec<Cooldown>,
}

#[derive(Deserialize)]
struct ViewRow {
    id: String,
    email: String,
    enabled: f64,
    attention: Option<String>,
    attention_url: Option<String>,
    attention_message: Option<String>,
    project_id: Option<String>,
    project_pinned: f64,
    tier: Option<String>,
    tier_name: Option<String>,
    source: String,
    last_error: Option<String>,
    last_used_at: Option<f64>,
    onboarded_at: Option<f64>,
    created_at: f64,
    updated_at: f64,
}

#[derive(Deserialize)]
struct HealthRow {
    account_id: String,
    model: String,
    cooldown_until: f64,
    last_error: Option<String>,
}

const VIEW_COLUMNS: &str = "id, email, enabled, attention, attention_url, attention_message, \
     project_id, project_pinned, tier, tier_name, source, last_error, last_used_at, onboarded_at, \
     created_at, updated_at";

/// Accounts (all, or the ones with these ids), sorted by email, with the
/// cooldowns still running at `now_ms`.
pub async fn views(
    db: &D1Database,
    only: Option<&[String]>,
    now_ms: u64,
) -> Result<Vec<AccountView>, GatewayError> {
    let results = db
        .batch(vec![
            db.prepare(format!(
                "SELECT {VIEW_COLUMNS} FROM accounts ORDER BY email"
            )),
            db.prepare(
                "SELECT account_id, model, cooldown_until, last_error FROM account_model_health \
                 WHERE cooldown_until > ?1 ORDER BY model",
            )
            .bind(&[js_int(now_ms)])
            .map_err(internal("bind account health"))?,
        ])
        .await
        .map_err(internal("list accounts"))?;
    let [rows, health] = crate::edge::store::batch_of(results)?;
    let rows: Vec<ViewRow> = rows.results().map_err(internal("decode accounts"))?;
    let health: Vec<HealthRow> = health
        .results()
        .map_err(internal("decode account health"))?;
    Ok(rows
        .into_iter()
        .filter(|r| only.is_none_or(|ids| ids.contains(&r.id)))
        .map(|r| {
            let cooldowns = health
                .iter()
                .filter(|h| h.account_id == r.id)
                .map(|h| Cooldown {
                    model: h.model.clone(),
                    until_ms: int(h.cooldown_until),
                    reason: h.last_error.clone(),
                })
                .collect();
            let enabled = r.enabled > 0.0;
            AccountView {
                status: Status::of(enabled, r.attention.as_deref()),
                id: r.id,
                email: r.email,
                enabled,
                reason: r.attention,
                url: r.attention_url,
                message: r.attention_message,
                project_id: r.project_id,
                project_pinned: r.project_pinned > 0.0,
                tier: r.tier,
                tier_name: r.tier_name,
                source: r.source,
                last_error: r.last_error,
                last_used_ms: r.last_used_at.map(int),
                onboarded_ms: r.onboarded_at.map(int),
                created_ms: int(r.created_at),
                updated_ms: int(r.updated_at),
                cooldowns,
            }
        })
        .collect())
}

/// Every account with its sealed secrets, for the export.
pub async fn all_stored(db: &D1Database) -> Result<Vec<StoredAccount>, GatewayError> {
    db.prepare(format!(
        "SELECT {STORED_COLUMNS} FROM accounts ORDER BY email"
    ))
    .all()
    .await
    .map_err(internal("read accounts"))?
    .results()
    .map_err(internal("decode accounts"))
}

/// Mirrors an account's health on one model after a failure.
pub async fn record_health(
    db: &D1Database,
    model: &str,
    view: &KeyHealthView,
    now_ms: u64,
) -> Result<(), GatewayError> {
    db.prepare(
        "INSERT INTO account_model_health \
         (account_id, model, cooldown_until, consecutive_failures, last_error, updated_at) \
         SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM accounts WHERE id = ?1) \
         ON CONFLICT (account_id, model) DO UPDATE SET cooldown_until = ?3, \
         consecutive_failures = ?4, last_error = ?5, updated_at = ?6",
    )
    .bind(&crate::edge::store::keys::health_binds(model, view, now_ms))
    .map_err(internal("bind account health"))?
    .run()
    .await
    .map_err(internal("record account health"))?;
    Ok(())
}

/// How many accounts are in each status.
#[derive(Debug, Default, Serialize)]
pub struct Counts {
    pub total: u64,
    pub active: u64,
    pub needs_attention: u64,
    pub disabled: u64,
}

pub async fn counts(db: &D1Database) -> Result<Counts, GatewayError> {
    #[derive(Deserialize)]
    struct Row {
        total: f64,
        disabled: f64,
        attention: f64,
    }
    let row: Option<Row> = db
        .prepare(
            "SELECT COUNT(*) AS total, \
             COALESCE(SUM(CASE WHEN enabled = 0 THEN 1 ELSE 0 END), 0) AS disabled, \
             COALESCE(SUM(CASE WHEN enabled = 1 AND attention IS NOT NULL THEN 1 ELSE 0 END), 0) \
             AS attention FROM accounts",
        )
        .first(None)
        .await
        .map_err(internal("count accounts"))?;
    let Some(row) = row else {
        return Ok(Counts::default());
    };
    let (total, disabled, attention) = (int(row.total), int(row.disabled), int(row.attention));
    Ok(Counts {
        total,
        active: total.saturating_sub(disabled + attention),
        needs_attention: attention,
        disabled,
    })
}

// ---------------------------------------------------------------- the wizard

/// Records a started sign-in with its sealed PKCE verifier.
pub async fn begin_sign_in(
    db: &D1Database,
    state_id: &str,
    sealed_verifier: &str,
    now_ms: u64,
) -> Result<(), GatewayError> {
    db.prepare("INSERT INTO oauth_states (id, verifier, created_at) VALUES (?1, ?2, ?3)")
        .bind(&[state_id.into(), sealed_verifier.into(), js_int(now_ms)])
        .map_err(internal("bind sign-in"))?
        .run()
        .await
        .map_err(internal("store sign-in"))?;
    Ok(())
}

/// Takes a sign-in once: the sealed verifier, or `None` when the state is
/// unknown or was used already. Atomic, so two pastes of one address cannot
/// both pass.
pub async fn take_sign_in(
    db: &D1Database,
    state_id: &str,
    now_ms: u64,
) -> Result<Option<String>, GatewayError> {
    #[derive(Deserialize)]
    struct Row {
        verifier: String,
    }
    let row: Option<Row> = db
        .prepare(
            "UPDATE oauth_states SET used_at = ?2 WHERE id = ?1 AND used_at IS NULL \
             RETURNING verifier",
        )
        .bind(&[state_id.into(), js_int(now_ms)])
        .map_err(internal("bind sign-in take"))?
        .first(None)
        .await
        .map_err(internal("take sign-in"))?;
    Ok(row.map(|r| r.verifier))
}

/// Forgets sign-ins started before `cutoff_ms`; returns how many went.
pub async fn prune_sign_ins(db: &D1Database, cutoff_ms: u64) -> Result<usize, GatewayError> {
    let result = db
        .prepare("DELETE FROM oauth_states WHERE created_at < ?1")
        .bind(&[js_int(cutoff_ms)])
        .map_err(internal("bind sign-in prune"))?
        .run()
        .await
        .map_err(internal("prune sign-ins"))?;
    Ok(changes(&result))
}
