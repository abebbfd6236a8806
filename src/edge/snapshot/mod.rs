//! The per-isolate caches the hot path reads, and their invalidation.
//!
//! The key snapshot (enabled keys with their secrets opened, and the
//! settings, loaded in one D1 batch) lives for a few seconds per isolate, so
//! a warm request reads no D1 at all. Admin writes in this isolate invalidate
//! it at once; other isolates see them within `SNAPSHOT_TTL_MS`. User keys
//! have their own cache (`users`).

pub mod users;

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;

use futures::future::join_all;
use worker::{D1Database, Env};

use crate::domain::config::Settings;
use crate::domain::error::GatewayError;
use crate::domain::gate::Roster;
use crate::domain::keypool::Candidate;
use crate::domain::sealed::{self, Stored};
use crate::domain::sha256::sha256_hex;
use crate::edge::app::App;
use crate::edge::config::secret;
use crate::edge::crypto::SecretBox;
use crate::edge::store::keys::{self as key_store, StoredKey, weight_of};
use crate::edge::store::{batch_of, meta, settings as settings_store};
use crate::edge::{int, internal, now_ms};

const SNAPSHOT_TTL_MS: u64 = 10_000;

/// An enabled upstream key with its opened secret, as the hot path needs it.
#[derive(Debug, Clone)]
pub struct UpstreamKey {
    pub id: String,
    pub secret: String,
    candidate: Candidate,
}

/// What the hot path reads: enabled keys in a stable order, and settings.
pub struct Snapshot {
    pub keys: Vec<UpstreamKey>,
    pub settings: Settings,
    loaded_at: u64,
    /// Digest of the candidate list, so gates that already have the list get only this.
    digest: String,
    /// The gates this snapshot's list was sent to.
    sent: RefCell<HashSet<String>>,
}

impl Snapshot {
    fn new(keys: Vec<UpstreamKey>, settings: Settings, loaded_at: u64) -> Self {
        let digest = serde_json::to_string(&candidates(&keys))
            .map(|json| sha256_hex(json.as_bytes()))
            .unwrap_or_default();
        Self {
            keys,
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
            candidates: candidates(&self.keys),
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

fn candidates(keys: &[UpstreamKey]) -> Vec<Candidate> {
    keys.iter().map(|k| k.candidate.clone()).collect()
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
pub fn forget_key(id: &str) {
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

/// The current snapshot, loading it (one D1 batch) when stale. A cold isolate
/// also imports `GEMINI_API_KEYS` when its value changed since the last import.
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
        if let Some(raw) = secret(&app.env, "GEMINI_API_KEYS") {
            let changed = key_store::import_env_if_changed(
                &db,
                &raw,
                sealer.as_deref(),
                imported_digest.as_deref(),
                now,
            )
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

/// Loads the enabled keys, the settings and the imported-env digest in one
/// D1 batch.
async fn load(
    db: &D1Database,
    sealer: Option<Rc<SecretBox>>,
    now: u64,
) -> Result<(Snapshot, Option<String>), GatewayError> {
    let results = db
        .batch(vec![
            key_store::select_enabled(db),
            settings_store::select(db),
            meta::select(db, meta::ENV_KEYS_DIGEST)?,
        ])
        .await
        .map_err(internal("load keys and settings"))?;
    let [keys, settings, env_digest] = batch_of(results)?;
    let keys = open_all(sealer, key_store::decode_enabled(&keys)?).await;
    let settings = settings_store::decode(&settings)?;
    let digest = meta::decode(&env_digest)?;
    Ok((Snapshot::new(keys, settings, now), digest))
}

/// Keys by id, enabled or not, with their secrets opened (for probes an admin asks for).
pub async fn keys_by_id(app: &App, ids: &[String]) -> Result<Vec<UpstreamKey>, GatewayError> {
    let stored = key_store::stored_by_id(&app.db()?, ids).await?;
    Ok(open_all(sealer(&app.env).await?, stored).await)
}

/// Opens the stored secrets. A key that cannot be opened (wrong or missing
/// `ENCRYPTION_KEY`) is left out and logged by id, so one bad row never
/// takes the whole pool down.
async fn open_all(sealer: Option<Rc<SecretBox>>, stored: Vec<StoredKey>) -> Vec<UpstreamKey> {
    let opened = join_all(stored.into_iter().map(|key| {
        let sealer = sealer.clone();
        async move {
            let result = match (&sealer, sealed::parse(&key.secret)) {
                (_, Stored::Plain(_)) => Ok(key.secret.clone()),
                (Some(sealer), _) => sealer.open(&key.secret).await,
                (None, _) => Err(GatewayError::Internal("ENCRYPTION_KEY is not set".into())),
            };
            match result {
                Ok(secret) => Some(UpstreamKey {
                    candidate: Candidate {
                        id: key.id.clone(),
                        weight: weight_of(key.weight),
                        project: key.project,
                        revision: key.updated_at.map_or(0, int),
                    },
                    id: key.id,
                    secret,
                }),
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

/// The isolate's secret box, when `ENCRYPTION_KEY` is set.
pub async fn sealer(env: &Env) -> Result<Option<Rc<SecretBox>>, GatewayError> {
    match secret(env, "ENCRYPTION_KEY") {
        Some(key) => SecretBox::for_isolate(&key).await.map(Some),
        None => Ok(None),
    }
}
