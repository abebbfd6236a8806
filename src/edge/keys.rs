//! Upstream keys in D1, plus the per-isolate snapshot the hot path reads.
//!
//! The snapshot (enabled keys and settings, loaded in one D1 batch) lives for
//! a few seconds per isolate, so a warm request reads no D1 at all. Admin
//! writes in this isolate invalidate it at once; other isolates see them
//! within `SNAPSHOT_TTL_MS`.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use worker::D1Database;
use worker::wasm_bindgen::JsValue;

use futures::future::join_all;
use worker::Env;

use super::app::{App, internal};
use super::crypto::SecretBox;
use super::settings::{SELECT_GLOBAL, SettingsRow};
use super::{int, js_int, now_ms};
use crate::domain::config::{Settings, parse_key_list};
use crate::domain::error::GatewayError;
use crate::domain::gate::Roster;
use crate::domain::keypool::Candidate;
use crate::domain::mask::{key_id, mask_secret};
use crate::domain::sealed::{self, Stored};
use crate::domain::sha256::sha256_hex;

const SNAPSHOT_TTL_MS: u64 = 10_000;

/// An enabled upstream key with its secret, as the hot path needs it.
#[derive(Debug, Clone, Deserialize)]
pub struct UpstreamKey {
    pub id: String,
    pub secret: String,
    pub weight: Option<f64>,
    pub project: Option<String>,
    /// D1 `updated_at`: the revision the key pool compares.
    pub updated_at: Option<f64>,
}

/// What the hot path reads: enabled keys in a stable order, and settings.
pub struct Snapshot {
    pub keys: Vec<UpstreamKey>,
    pub candidates: Vec<Candidate>,
    pub settings: Settings,
    loaded_at: u64,
    /// Digest of `candidates`, so gates that already have the list get only this.
    digest: String,
    /// The gates this snapshot's list was sent to.
    sent: RefCell<HashSet<String>>,
}

impl Snapshot {
    fn new(keys: Vec<UpstreamKey>, settings: Settings, loaded_at: u64) -> Self {
        let candidates = candidates_of(&keys);
        let digest = serde_json::to_string(&candidates)
            .map(|json| sha256_hex(json.as_bytes()))
            .unwrap_or_default();
        Self {
            keys,
            candidates,
            settings,
            loaded_at,
            digest,
            sent: RefCell::new(HashSet::new()),
        }
    }

    /// The roster for a call to `gate`: the digest alone once the gate was
    /// sent the list by this snapshot, else the list.
    pub fn roster_for(&self, gate: &str) -> Roster {
        if self.sent.borrow().contains(gate) {
            Roster::Known {
                digest: self.digest.clone(),
            }
        } else {
            self.full_roster()
        }
    }

    pub fn full_roster(&self) -> Roster {
        Roster::Full {
            digest: self.digest.clone(),
            candidates: self.candidates.clone(),
        }
    }

    /// Records that `gate` has this snapshot's list.
    pub fn mark_sent(&self, gate: &str) {
        if !self.sent.borrow().contains(gate) {
            self.sent.borrow_mut().insert(gate.to_owned());
        }
    }

    pub fn secret(&self, id: &str) -> Option<&str> {
        self.keys
            .iter()
            .find(|k| k.id == id)
            .map(|k| k.secret.as_str())
    }
}

thread_local! {
    static SNAPSHOT: RefCell<Option<Rc<Snapshot>>> = const { RefCell::new(None) };
    static ENV_IMPORTED: Cell<bool> = const { Cell::new(false) };
}

/// Drops this isolate's snapshot, after an admin write.
pub fn invalidate() {
    SNAPSHOT.with(|s| s.borrow_mut().take());
}

/// Removes a key from this isolate's snapshot at once (it was found invalid);
/// D1 is updated off the hot path.
pub fn forget_in_snapshot(id: &str) {
    SNAPSHOT.with(|cell| {
        let mut slot = cell.borrow_mut();
        let Some(current) = slot.as_ref() else {
            return;
        };
        let keys: Vec<UpstreamKey> = current
            .keys
            .iter()
            .filter(|k| k.id != id)
            .cloned()
            .collect();
        let next = Snapshot::new(keys, current.settings.clone(), current.loaded_at);
        *slot = Some(Rc::new(next));
    });
}

fn candidates_of(keys: &[UpstreamKey]) -> Vec<Candidate> {
    keys.iter()
        .map(|k| Candidate {
            id: k.id.clone(),
            weight: weight_of(k.weight),
            project: k.project.clone(),
            revision: k.updated_at.map_or(0, int),
        })
        .collect()
}

#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "weights are small positive integers stored as REAL by D1"
)]
fn weight_of(w: Option<f64>) -> u32 {
    w.map_or(1, |w| w.clamp(1.0, 1000.0) as u32)
}

/// The current snapshot, loading it (one D1 batch) when stale.
pub async fn snapshot(app: &App) -> Result<Rc<Snapshot>, GatewayError> {
    let now = now_ms();
    let cached = SNAPSHOT.with(|s| s.borrow().clone());
    if let Some(snap) = cached.filter(|s| now.saturating_sub(s.loaded_at) < SNAPSHOT_TTL_MS) {
        return Ok(snap);
    }
    let db = app.db()?;
    let sealer = sealer(&app.env).await?;
    let (mut loaded, imported_digest) = load(&db, sealer.clone(), now).await?;
    if !ENV_IMPORTED.with(Cell::get) {
        if let Some(raw) = app.env_keys() {
            let changed =
                import_env_if_changed(&db, &raw, sealer.as_deref(), imported_digest.as_deref())
                    .await?;
            if changed {
                loaded = load(&db, sealer, now).await?.0;
            }
        }
        ENV_IMPORTED.with(|c| c.set(true));
    }
    let snap = Rc::new(loaded);
    SNAPSHOT.with(|s| *s.borrow_mut() = Some(snap.clone()));
    Ok(snap)
}

/// Decrypts the stored secrets. A key that cannot be opened (wrong or
/// missing `ENCRYPTION_KEY`) is left out and logged by id, so one bad row
/// never takes the whole pool down.
async fn open_all(sealer: Option<Rc<SecretBox>>, stored: Vec<UpstreamKey>) -> Vec<UpstreamKey> {
    let opened = join_all(stored.into_iter().map(|mut key| {
        let sealer = sealer.clone();
        async move {
            let result = match (&sealer, sealed::parse(&key.secret)) {
                (_, Stored::Plain(_)) => Ok(key.secret.clone()),
                (Some(sealer), _) => sealer.open(&key.secret).await,
                (None, _) => Err(GatewayError::Internal("ENCRYPTION_KEY is not set".into())),
            };
            match result {
                Ok(plain) => {
                    key.secret = plain;
                    Some(key)
                }
                Err(e) => {
                    worker::console_error!("[gemgate] cannot open key {}: {e}", key.id);
                    None
                }
            }
        }
    }))
    .await;
    opened.into_iter().flatten().collect()
}

/// Loads the enabled keys, the settings and the imported-env digest in one
/// D1 batch.
async fn load(
    db: &D1Database,
    sealer: Option<Rc<SecretBox>>,
    now: u64,
) -> Result<(Snapshot, Option<String>), GatewayError> {
    let results = db
        .batch(vec![
            db.prepare(
                "SELECT id, secret, weight, project, updated_at FROM upstream_keys \
                 WHERE enabled = 1 ORDER BY created_at, id",
            ),
            db.prepare(SELECT_GLOBAL),
            db.prepare(SELECT_ENV_DIGEST),
        ])
        .await
        .map_err(internal("load keys and settings"))?;
    let [keys, settings, env_digest] = results.as_slice() else {
        return Err(GatewayError::Internal(
            "D1 batch returned the wrong count".into(),
        ));
    };
    let stored: Vec<UpstreamKey> = keys.results().map_err(internal("decode keys"))?;
    let keys = open_all(sealer, stored).await;
    let rows: Vec<SettingsRow> = settings.results().map_err(internal("decode settings"))?;
    let settings = super::settings::from_row(rows.first());
    let digests: Vec<SettingsRow> = env_digest.results().map_err(internal("decode digest"))?;
    let digest = digests.into_iter().next().map(SettingsRow::into_value);
    Ok((Snapshot::new(keys, settings, now), digest))
}

/// Where the digest of the last imported `GEMINI_API_KEYS` is kept.
const ENV_DIGEST: &str = "env_keys_digest";
const SELECT_ENV_DIGEST: &str = "SELECT value FROM meta WHERE name = 'env_keys_digest'";

/// Imports `GEMINI_API_KEYS` unless this exact value was imported before
/// (`stored_digest`), so a cold isolate does not re-encrypt and re-insert
/// hundreds of keys. Idempotent either way: key ids derive from the secret.
/// Returns whether it imported.
pub async fn import_env_if_changed(
    db: &D1Database,
    raw: &str,
    sealer: Option<&SecretBox>,
    stored_digest: Option<&str>,
) -> Result<bool, GatewayError> {
    let digest = sha256_hex(raw.trim().as_bytes());
    if stored_digest == Some(digest.as_str()) {
        return Ok(false);
    }
    let secrets = parse_key_list(raw);
    let counts = import(db, &secrets, &KeyMeta::from_source("env"), sealer).await?;
    worker::console_log!(
        "[gemgate] GEMINI_API_KEYS: {} key(s) added, {} already stored",
        counts.added,
        counts.existing
    );
    db.prepare(
        "INSERT INTO meta (name, value, updated_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (name) DO UPDATE SET value = ?2, updated_at = ?3",
    )
    .bind(&[ENV_DIGEST.into(), digest.into(), js_int(now_ms())])
    .map_err(internal("bind env digest"))?
    .run()
    .await
    .map_err(internal("record env digest"))?;
    Ok(true)
}

/// The digest of the last imported `GEMINI_API_KEYS`, for the cron job.
pub async fn imported_env_digest(db: &D1Database) -> Result<Option<String>, GatewayError> {
    let row: Option<SettingsRow> = db
        .prepare(SELECT_ENV_DIGEST)
        .first(None)
        .await
        .map_err(internal("read env digest"))?;
    Ok(row.map(SettingsRow::into_value))
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

/// D1 allows 100 bound parameters per statement; a batch keeps one round trip.
pub async fn import(
    db: &D1Database,
    secrets: &[String],
    meta: &KeyMeta,
    sealer: Option<&SecretBox>,
) -> Result<ImportCounts, GatewayError> {
    if secrets.is_empty() {
        return Ok(ImportCounts::default());
    }
    if sealer.is_none() {
        worker::console_warn!(
            "[gemgate] ENCRYPTION_KEY is not set: upstream keys are stored in plaintext"
        );
    }
    let now = js_int(now_ms());
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
                opt(meta.label.as_deref()),
                opt(meta.project.as_deref()),
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
        for r in results {
            let changed = r.meta().ok().flatten().and_then(|m| m.changes).unwrap_or(0);
            if changed > 0 {
                counts.added += 1;
            } else {
                counts.existing += 1;
            }
        }
    }
    invalidate();
    Ok(counts)
}

pub fn opt(v: Option<&str>) -> JsValue {
    v.map_or(JsValue::NULL, JsValue::from_str)
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
pub async fn list(db: &D1Database) -> Result<Vec<KeyView>, GatewayError> {
    let results = db
        .batch(vec![
            db.prepare(
                "SELECT id, secret, masked, label, project, weight, class, enabled, \
                 disabled_reason, source, created_at FROM upstream_keys ORDER BY created_at, id",
            ),
            db.prepare(
                "SELECT key_id, model, cooldown_until, consecutive_failures, last_error, updated_at \
                 FROM key_model_health ORDER BY model",
            ),
        ])
        .await
        .map_err(internal("list keys"))?;
    let [keys, health] = results.as_slice() else {
        return Err(GatewayError::Internal(
            "D1 batch returned the wrong count".into(),
        ));
    };
    let keys: Vec<KeyRow> = keys.results().map_err(internal("decode keys"))?;
    let health: Vec<HealthRow> = health.results().map_err(internal("decode health"))?;
    let now = now_ms();
    Ok(keys
        .into_iter()
        .map(|k| KeyView {
            health: health
                .iter()
                .filter(|h| h.key_id == k.id)
                .map(|h| HealthView {
                    model: h.model.clone(),
                    cooling: int(h.cooldown_until) > now,
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

/// The masked form stored at insert, or for rows written before it was
/// stored, one made from the plaintext; a sealed value is never shown.
fn listed_mask(stored: &str, masked: Option<&str>) -> String {
    match (masked, sealed::parse(stored)) {
        (Some(m), _) => m.to_owned(),
        (None, Stored::Plain(plain)) => mask_secret(plain),
        (None, _) => "(encrypted)".to_owned(),
    }
}

/// The isolate's secret box, when `ENCRYPTION_KEY` is set.
pub async fn sealer(env: &Env) -> Result<Option<Rc<SecretBox>>, GatewayError> {
    match super::app::secret(env, "ENCRYPTION_KEY") {
        Some(key) => SecretBox::for_isolate(&key).await.map(Some),
        None => Ok(None),
    }
}

/// Marks a key disabled with the reason, as a `KeyInvalid` outcome demands.
pub async fn disable(db: &D1Database, id: &str, reason: &str) -> Result<(), GatewayError> {
    let now = js_int(now_ms());
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

/// Mirrors one key's health for one model, for the admin API.
pub async fn record_health(
    db: &D1Database,
    key_id: &str,
    model: &str,
    cooldown_until: u64,
    consecutive_failures: u32,
    last_error: Option<&str>,
) -> Result<(), GatewayError> {
    db.prepare(
        "INSERT INTO key_model_health \
         (key_id, model, cooldown_until, consecutive_failures, last_error, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (key_id, model) DO UPDATE SET cooldown_until = ?3, \
         consecutive_failures = ?4, last_error = ?5, updated_at = ?6",
    )
    .bind(&[
        key_id.into(),
        model.into(),
        js_int(cooldown_until),
        JsValue::from_f64(f64::from(consecutive_failures)),
        opt(last_error),
        js_int(now_ms()),
    ])
    .map_err(internal("bind health"))?
    .run()
    .await
    .map_err(internal("record health"))?;
    Ok(())
}

/// Key counts for `/health`: no secrets, no ids.
#[derive(Debug, Serialize)]
pub struct HealthCounts {
    pub total: u64,
    pub enabled: u64,
    /// Enabled keys not cooling down on any model.
    pub healthy: u64,
}

pub async fn health_counts(db: &D1Database, now: u64) -> Result<HealthCounts, GatewayError> {
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
             FROM upstream_keys",
        )
        .bind(&[js_int(now)])
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
