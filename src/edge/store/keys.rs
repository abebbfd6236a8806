//! Upstream keys in D1 (`upstream_keys`) and the mirror of their health per
//! model (`key_model_health`). Secrets are stored sealed when a sealer is
//! given; every view this module returns is masked.

use serde::{Deserialize, Serialize};
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, D1Result};

use crate::domain::config::parse_key_list;
use crate::domain::error::GatewayError;
use crate::domain::keypool::KeyHealthView;
use crate::domain::mask::{key_id, mask_secret};
use crate::domain::sealed::{self, Stored};
use crate::domain::sha256::sha256_hex;
use crate::edge::crypto::Keyring;
use crate::edge::store::{changes, meta, select_by_ids};
use crate::edge::{int, internal, js_int, js_opt};

/// An enabled key as stored: its secret still sealed (or plain, without `ENCRYPTION_KEY`).
#[derive(Debug, Clone, Deserialize)]
pub struct StoredKey {
    pub id: String,
    pub secret: String,
    pub weight: Option<f64>,
    pub project: Option<String>,
    /// D1 `updated_at`: the revision the key pool compares.
    pub updated_at: Option<f64>,
}

/// The statement that reads the enabled keys in their stable order, for a batch.
pub fn select_enabled(db: &D1Database) -> D1PreparedStatement {
    db.prepare(
        "SELECT id, secret, weight, project, updated_at FROM upstream_keys \
         WHERE enabled = 1 ORDER BY created_at, id",
    )
}

pub fn decode_enabled(result: &D1Result) -> Result<Vec<StoredKey>, GatewayError> {
    result.results().map_err(internal("decode keys"))
}

/// Keys by id, enabled or not, in the order asked (ids that do not exist are left out).
pub async fn stored_by_id(db: &D1Database, ids: &[String]) -> Result<Vec<StoredKey>, GatewayError> {
    let mut out: Vec<StoredKey> = select_by_ids(
        db,
        "SELECT id, secret, weight, project, updated_at FROM upstream_keys WHERE id IN ({ids})",
        ids,
        "read keys by id",
    )
    .await?;
    out.sort_by_key(|k| ids.iter().position(|id| *id == k.id));
    Ok(out)
}

/// A key's weight as the pool uses it: D1 stores a REAL, the pool takes 1..=1000.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "weights are small positive integers stored as REAL by D1"
)]
pub fn weight_of(w: Option<f64>) -> u32 {
    w.map_or(1, |w| w.clamp(1.0, 1000.0) as u32)
}

/// Labels applied to keys added together.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct KeyMeta {
    pub label: Option<String>,
    pub project: Option<String>,
    pub weight: Option<u32>,
    pub class: Option<String>,
    #[serde(skip)]
    pub source: String,
}

impl KeyMeta {
    pub fn from_source(source: &str) -> Self {
        Self {
            source: source.to_owned(),
            ..Self::default()
        }
    }
}

#[derive(Debug, Default, Serialize)]
pub struct ImportCounts {
    pub added: usize,
    pub existing: usize,
}

/// Adds keys idempotently: ids derive from the secret, so a key already
/// stored is counted, not duplicated. D1 allows 100 bound parameters per
/// statement; the inserts go in batches of 50.
pub async fn import(
    db: &D1Database,
    secrets: &[String],
    meta: &KeyMeta,
    sealer: Option<&Keyring>,
    now_ms: u64,
) -> Result<ImportCounts, GatewayError> {
    if secrets.is_empty() {
        return Ok(ImportCounts::default());
    }
    if sealer.is_none() {
        worker::console_warn!(
            "[gemgate] ENCRYPTION_KEY is not set: upstream keys are stored in plaintext"
        );
    }
    let now = js_int(now_ms);
    let class = meta.class.as_deref().unwrap_or("free");
    let mut statements = Vec::with_capacity(secrets.len());
    for secret in secrets {
        let stored = match sealer {
            Some(sealer) => sealer.seal(secret).await?,
            None => secret.clone(),
        };
        let stmt = db
            .prepare(
                "INSERT OR IGNORE INTO upstream_keys \
                 (id, secret, label, project, weight, class, enabled, source, created_at, \
                 updated_at, masked) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?8, ?8, ?9)",
            )
            .bind(&[
                key_id(secret).into(),
                stored.into(),
                js_opt(meta.label.as_deref()),
                js_opt(meta.project.as_deref()),
                JsValue::from_f64(f64::from(meta.weight.unwrap_or(1))),
                class.into(),
                meta.source.as_str().into(),
                now.clone(),
                mask_secret(secret).into(),
            ])
            .map_err(internal("bind key insert"))?;
        statements.push(stmt);
    }
    let mut counts = ImportCounts::default();
    for chunk in statements.chunks(50) {
        let results = db
            .batch(chunk.to_vec())
            .await
            .map_err(internal("insert keys"))?;
        for r in &results {
            if changes(r) > 0 {
                counts.added += 1;
            } else {
                counts.existing += 1;
            }
        }
    }
    Ok(counts)
}

/// Imports `GEMINI_API_KEYS` unless this exact value was imported before
/// (`stored_digest`), so a cold isolate does not re-encrypt and re-insert
/// hundreds of keys. Idempotent either way. Returns whether it imported.
pub async fn import_env_if_changed(
    db: &D1Database,
    raw: &str,
    sealer: Option<&Keyring>,
    stored_digest: Option<&str>,
    now_ms: u64,
) -> Result<bool, GatewayError> {
    let digest = sha256_hex(raw.trim().as_bytes());
    if stored_digest == Some(digest.as_str()) {
        return Ok(false);
    }
    let secrets = parse_key_list(raw);
    let counts = import(db, &secrets, &KeyMeta::from_source("env"), sealer, now_ms).await?;
    worker::console_log!(
        "[gemgate] GEMINI_API_KEYS: {} key(s) added, {} already stored",
        counts.added,
        counts.existing
    );
    meta::put(db, meta::ENV_KEYS_DIGEST, &digest, now_ms).await?;
    Ok(true)
}

/// A key as the admin API shows it: masked, never the secret.
#[derive(Debug, Serialize)]
pub struct KeyView {
    pub id: String,
    pub masked: String,
    pub label: Option<String>,
    pub project: Option<String>,
    pub weight: u32,
    pub class: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub source: String,
    pub created_at: u64,
    pub health: Vec<HealthView>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct HealthView {
    pub model: String,
    pub cooling: bool,
    pub cooldown_until: u64,
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
    pub updated_at: u64,
}

#[derive(Deserialize)]
struct KeyRow {
    id: String,
    secret: String,
    masked: Option<String>,
    label: Option<String>,
    project: Option<String>,
    weight: Option<f64>,
    class: String,
    enabled: f64,
    disabled_reason: Option<String>,
    source: String,
    created_at: f64,
}

#[derive(Deserialize)]
struct HealthRow {
    key_id: String,
    model: String,
    cooldown_until: f64,
    consecutive_failures: f64,
    last_error: Option<String>,
    updated_at: f64,
}

/// Every key, masked, with its last known health per model.
pub async fn list(db: &D1Database, now_ms: u64) -> Result<Vec<KeyView>, GatewayError> {
    let results = db
        .batch(vec![
            db.prepare(
                "SELECT id, secret, masked, label, project, weight, class, enabled, \
                 disabled_reason, source, created_at FROM upstream_keys \
                 WHERE archived_at IS NULL ORDER BY created_at, id",
            ),
            db.prepare(
                "SELECT key_id, model, cooldown_until, consecutive_failures, last_error, updated_at \
                 FROM key_model_health ORDER BY model",
            ),
        ])
        .await
        .map_err(internal("list keys"))?;
    let [keys, health] = crate::edge::store::batch_of(results)?;
    let keys: Vec<KeyRow> = keys.results().map_err(internal("decode keys"))?;
    let health: Vec<HealthRow> = health.results().map_err(internal("decode health"))?;
    Ok(keys
        .into_iter()
        .map(|k| KeyView {
            health: health
                .iter()
                .filter(|h| h.key_id == k.id)
                .map(|h| HealthView {
                    model: h.model.clone(),
                    cooling: int(h.cooldown_until) > now_ms,
                    cooldown_until: int(h.cooldown_until),
                    consecutive_failures: u32::try_from(int(h.consecutive_failures))
                        .unwrap_or(u32::MAX),
                    last_error: h.last_error.clone(),
                    updated_at: int(h.updated_at),
                })
                .collect(),
            masked: listed_mask(&k.secret, k.masked.as_deref()),
            id: k.id,
            label: k.label,
            project: k.project,
            weight: weight_of(k.weight),
            class: k.class,
            enabled: k.enabled != 0.0,
            disabled_reason: k.disabled_reason,
            source: k.source,
            created_at: int(k.created_at),
        })
        .collect())
}

/// One key, masked, with its health.
pub async fn get(db: &D1Database, id: &str, now_ms: u64) -> Result<Option<KeyView>, GatewayError> {
    Ok(list(db, now_ms).await?.into_iter().find(|k| k.id == id))
}

/// The masked form stored at insert, or for rows written before it was
/// stored, one made from the plaintext; a sealed value is never shown.
pub fn listed_mask(stored: &str, masked: Option<&str>) -> String {
    match (masked, sealed::parse(stored)) {
        (Some(m), _) => m.to_owned(),
        (None, Stored::Plain(plain)) => mask_secret(plain),
        (None, _) => "(encrypted)".to_owned(),
    }
}

/// Labels a key with the project Google named for it, when it has none.
/// The revision (`updated_at`) stays: a learned label is not an admin edit,
/// and must not give the key that just failed a fresh start. `true` when
/// the label was set.
pub async fn learn_project(
    db: &D1Database,
    id: &str,
    project: &str,
    _now_ms: u64,
) -> Result<bool, GatewayError> {
    let result = db
        .prepare(
            "UPDATE upstream_keys SET project = ?2              WHERE id = ?1 AND (project IS NULL OR project = '')",
        )
        .bind(&[id.into(), project.into()])
        .map_err(internal("bind key project"))?
        .run()
        .await
        .map_err(internal("learn key project"))?;
    Ok(changes(&result) > 0)
}

/// The fields an admin may change on a key; `None` keeps a field.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPatch {
    pub enabled: Option<bool>,
    pub label: Option<String>,
    pub project: Option<String>,
    pub weight: Option<u32>,
}

/// Applies a patch; `false` when no key has that id. Enabling clears the
/// disabled reason; every change bumps the key's revision (`updated_at`).
pub async fn update(
    db: &D1Database,
    id: &str,
    patch: &KeyPatch,
    now_ms: u64,
) -> Result<bool, GatewayError> {
    let result = db
        .prepare(
            "UPDATE upstream_keys SET \
             enabled = COALESCE(?2, enabled), \
             disabled_reason = CASE WHEN ?2 = 1 THEN NULL WHEN ?2 = 0 THEN 'disabled by admin' ELSE disabled_reason END, \
             label = COALESCE(?3, label), project = COALESCE(?4, project), \
             weight = COALESCE(?5, weight), updated_at = ?6 WHERE id = ?1",
        )
        .bind(&[
            id.into(),
            patch.enabled.map_or(JsValue::NULL, |e| JsValue::from_f64(f64::from(u8::from(e)))),
            js_opt(patch.label.as_deref()),
            js_opt(patch.project.as_deref()),
            patch.weight.map_or(JsValue::NULL, |w| JsValue::from_f64(f64::from(w.clamp(1, 1000)))),
            js_int(now_ms),
        ])
        .map_err(internal("bind key update"))?
        .run()
        .await
        .map_err(internal("update key"))?;
    Ok(changes(&result) > 0)
}

/// Deletes keys (and their health rows) by id; returns how many keys went.
pub async fn delete(db: &D1Database, ids: &[String]) -> Result<usize, GatewayError> {
    let mut statements = Vec::with_capacity(ids.len() * 2);
    for id in ids {
        statements.push(
            db.prepare("DELETE FROM key_model_health WHERE key_id = ?1")
                .bind(&[id.as_str().into()])
                .map_err(internal("bind delete"))?,
        );
        statements.push(
            db.prepare("DELETE FROM upstream_keys WHERE id = ?1")
                .bind(&[id.as_str().into()])
                .map_err(internal("bind delete"))?,
        );
    }
    let results = db
        .batch(statements)
        .await
        .map_err(internal("delete keys"))?;
    Ok(results.iter().skip(1).step_by(2).map(changes).sum())
}

/// Deletes every key and its health; returns how many keys went.
pub async fn delete_all(db: &D1Database) -> Result<usize, GatewayError> {
    let results = db
        .batch(vec![
            db.prepare("DELETE FROM key_model_health"),
            db.prepare("DELETE FROM upstream_keys"),
        ])
        .await
        .map_err(internal("delete all keys"))?;
    Ok(results.get(1).map_or(0, changes))
}

/// Marks a key disabled with the reason, as a `KeyInvalid` outcome demands.
pub async fn disable(
    db: &D1Database,
    id: &str,
    reason: &str,
    now_ms: u64,
) -> Result<(), GatewayError> {
    let now = js_int(now_ms);
    db.prepare(
        "UPDATE upstream_keys SET enabled = 0, disabled_reason = ?2, disabled_at = ?3, \
         updated_at = ?3 WHERE id = ?1",
    )
    .bind(&[id.into(), reason.into(), now])
    .map_err(internal("bind disable"))?
    .run()
    .await
    .map_err(internal("disable key"))?;
    Ok(())
}

/// Mirrors one key's health for one model, for the admin API and `/health`.
pub async fn record_health(
    db: &D1Database,
    model: &str,
    view: &KeyHealthView,
    now_ms: u64,
) -> Result<(), GatewayError> {
    db.prepare(
        "INSERT INTO key_model_health \
         (key_id, model, cooldown_until, consecutive_failures, last_error, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (key_id, model) DO UPDATE SET cooldown_until = ?3, \
         consecutive_failures = ?4, last_error = ?5, updated_at = ?6",
    )
    .bind(&health_binds(model, view, now_ms))
    .map_err(internal("bind health"))?
    .run()
    .await
    .map_err(internal("record health"))?;
    Ok(())
}

/// The six values a health mirror row is written with, for keys and
/// accounts alike: id, model, cooldown end, failures in a row, last error, time.
pub fn health_binds(model: &str, view: &KeyHealthView, now_ms: u64) -> [JsValue; 6] {
    [
        view.id.as_str().into(),
        model.into(),
        js_int(view.cooldown_until_ms),
        JsValue::from_f64(f64::from(view.consecutive_failures)),
        js_opt(view.last_error.as_deref()),
        js_int(now_ms),
    ]
}

/// Health mirror rows whose cooldown ended before `cutoff_ms` and that were not
/// touched since carry no information; returns how many went.
pub async fn prune_health(db: &D1Database, cutoff_ms: u64) -> Result<usize, GatewayError> {
    let result = db
        .prepare("DELETE FROM key_model_health WHERE cooldown_until < ?1 AND updated_at < ?1")
        .bind(&[js_int(cutoff_ms)])
        .map_err(internal("bind prune"))?
        .run()
        .await
        .map_err(internal("prune health"))?;
    Ok(changes(&result))
}

/// Key counts for `/health`: no secrets, no ids.
#[derive(Debug, Serialize)]
pub struct HealthCounts {
    pub total: u64,
    pub enabled: u64,
    /// Enabled keys not cooling down on any model.
    pub healthy: u64,
}

pub async fn health_counts(db: &D1Database, now_ms: u64) -> Result<HealthCounts, GatewayError> {
    #[derive(Deserialize)]
    struct Row {
        total: f64,
        enabled: Option<f64>,
        cooling: f64,
    }
    let row: Option<Row> = db
        .prepare(
            "SELECT COUNT(*) AS total, SUM(enabled) AS enabled, \
             (SELECT COUNT(DISTINCT h.key_id) FROM key_model_health h \
              JOIN upstream_keys k ON k.id = h.key_id \
              WHERE k.enabled = 1 AND h.cooldown_until > ?1) AS cooling \
             FROM upstream_keys WHERE archived_at IS NULL",
        )
        .bind(&[js_int(now_ms)])
        .map_err(internal("bind health counts"))?
        .first(None)
        .await
        .map_err(internal("health counts"))?;
    let Some(row) = row else {
        return Ok(HealthCounts {
            total: 0,
            enabled: 0,
            healthy: 0,
        });
    };
    let enabled = int(row.enabled.unwrap_or(0.0));
    Ok(HealthCounts {
        total: int(row.total),
        enabled,
        healthy: enabled.saturating_sub(int(row.cooling)),
    })
}
