//! The per-isolate caches the hot path reads, and their invalidation.
//!
//! The key snapshot (enabled keys with their secrets opened, and the
//! settings, loaded in one D1 batch) lives for a few seconds per isolate, so
//! a warm request reads no D1 at all. Admin writes in this isolate invalidate
//! it at once; other isolates see them within `SNAPSHOT_TTL_MS`. User keys
//! have their own cache (`users`).

pub mod users;

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use futures::future::join_all;
use worker::{D1Database, Env};

use crate::domain::accounts::routing::Kind;
use crate::domain::config::Settings;
use crate::domain::error::GatewayError;
use crate::domain::gate::Roster;
use crate::domain::keypool::Candidate;
use crate::domain::sealed::{self, Stored};
use crate::domain::sha256::sha256_hex;
use crate::edge::app::App;
use crate::edge::config::secret;
use crate::edge::crypto::Keyring;
use crate::edge::store::accounts::{self as account_store, StoredAccount};
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

/// A usable Gemini CLI account with its secrets opened, as the hot path needs it.
#[derive(Debug, Clone)]
pub struct UpstreamAccount {
    pub id: String,
    pub email: String,
    pub refresh_token: String,
    pub client_id: String,
    pub client_secret: String,
    pub project: String,
    candidate: Candidate,
}

impl UpstreamAccount {
    pub fn new(
        id: String,
        email: String,
        refresh_token: String,
        client_id: String,
        client_secret: String,
        project: String,
    ) -> Self {
        Self {
            candidate: Candidate::new(id.clone()),
            id,
            email,
            refresh_token,
            client_id,
            client_secret,
            project,
        }
    }
}

/// One gate's candidates and their digest.
struct GateRoster {
    digest: String,
    candidates: Rc<[Candidate]>,
    /// The accounts among the candidates, and whether any key is.
    accounts: Vec<String>,
    has_keys: bool,
}

/// What the hot path reads: enabled keys and usable accounts in a stable
/// order, and settings.
pub struct Snapshot {
    pub keys: Vec<UpstreamKey>,
    pub accounts: Vec<UpstreamAccount>,
    pub settings: Settings,
    loaded_at: u64,
    /// Each gate's roster (which kinds serve its model is a setting), built on first use.
    rosters: RefCell<HashMap<String, Rc<GateRoster>>>,
    /// The gates this snapshot's list was sent to.
    sent: RefCell<HashSet<String>>,
    /// Key id → its place in `keys`, so a large pool finds a secret at once.
    key_index: HashMap<String, usize>,
}

impl Snapshot {
    fn new(
        keys: Vec<UpstreamKey>,
        accounts: Vec<UpstreamAccount>,
        settings: Settings,
        loaded_at: u64,
    ) -> Self {
        let key_index = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.id.clone(), i))
            .collect();
        Self {
            keys,
            accounts,
            settings,
            loaded_at,
            rosters: RefCell::new(HashMap::new()),
            sent: RefCell::new(HashSet::new()),
            key_index,
        }
    }

    /// The candidates of `gate` (a model): keys and accounts as the routing
    /// setting allows for it, the preferred kind at tier 0.
    fn gate_roster(&self, gate: &str) -> Rc<GateRoster> {
        if let Some(found) = self.rosters.borrow().get(gate) {
            return found.clone();
        }
        let route = self.settings.routing.route(gate, false);
        let tier = |kind: Kind| u8::from(route.prefer != kind);
        let mut candidates = Vec::new();
        if route.keys {
            candidates.extend(self.keys.iter().map(|k| Candidate {
                tier: tier(Kind::Key),
                ..k.candidate.clone()
            }));
        }
        if route.accounts {
            candidates.extend(self.accounts.iter().map(|a| Candidate {
                tier: tier(Kind::Account),
                ..a.candidate.clone()
            }));
        }
        let digest = serde_json::to_string(&candidates)
            .map(|json| sha256_hex(json.as_bytes()))
            .unwrap_or_default();
        let accounts: Vec<String> = candidates
            .iter()
            .filter(|c| crate::domain::accounts::record::is_account(&c.id))
            .map(|c| c.id.clone())
            .collect();
        let has_keys = accounts.len() < candidates.len();
        let roster = Rc::new(GateRoster {
            digest,
            candidates: candidates.into(),
            accounts,
            has_keys,
        });
        self.rosters
            .borrow_mut()
            .insert(gate.to_owned(), roster.clone());
        roster
    }

    /// The roster for a call to `gate`: the digest alone once the gate was
    /// sent the list by this snapshot, else the list.
    pub fn roster_for(&self, gate: &str) -> Roster {
        if self.sent.borrow().contains(gate) {
            Roster::Known {
                digest: self.gate_roster(gate).digest.clone(),
            }
        } else {
            self.full_roster(gate)
        }
    }

    pub fn full_roster(&self, gate: &str) -> Roster {
        let roster = self.gate_roster(gate);
        Roster::Full {
            digest: roster.digest.clone(),
            candidates: roster.candidates.to_vec(),
        }
    }

    /// The candidates of `gate`, in their stable order.
    pub fn candidates(&self, gate: &str) -> Rc<[Candidate]> {
        self.gate_roster(gate).candidates.clone()
    }

    /// The accounts in `gate`'s roster: what a request that must not use an
    /// account (an embedding, a model list) excludes.
    pub fn accounts_in(&self, gate: &str) -> Vec<String> {
        self.gate_roster(gate).accounts.clone()
    }

    /// Whether any key is in `gate`'s roster.
    pub fn has_keys_for(&self, gate: &str) -> bool {
        self.gate_roster(gate).has_keys
    }

    /// Records that `gate` has this snapshot's list.
    pub fn mark_sent(&self, gate: &str) {
        if !self.sent.borrow().contains(gate) {
            self.sent.borrow_mut().insert(gate.to_owned());
        }
    }

    /// The project label of a key, if it has one.
    pub fn project_of(&self, id: &str) -> Option<&str> {
        self.key(id)
            .and_then(|k| k.candidate.project.as_deref())
            .filter(|p| !p.is_empty())
    }

    pub fn secret(&self, id: &str) -> Option<&str> {
        self.key(id).map(|k| k.secret.as_str())
    }

    fn key(&self, id: &str) -> Option<&UpstreamKey> {
        self.key_index.get(id).and_then(|&i| self.keys.get(i))
    }

    pub fn account(&self, id: &str) -> Option<&UpstreamAccount> {
        self.accounts.iter().find(|a| a.id == id)
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

/// Removes a key or an account from this isolate's snapshot at once (it
/// was found invalid, or needs the operator); D1 is updated off the hot path.
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
        let accounts: Vec<UpstreamAccount> = current
            .accounts
            .iter()
            .filter(|a| a.id != id)
            .cloned()
            .collect();
        let next = Snapshot::new(keys, accounts, current.settings.clone(), current.loaded_at);
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
    sealer: Option<Rc<Keyring>>,
    now: u64,
) -> Result<(Snapshot, Option<String>), GatewayError> {
    let results = db
        .batch(vec![
            key_store::select_enabled(db),
            settings_store::select(db),
            meta::select(db, meta::ENV_KEYS_DIGEST)?,
            account_store::select_usable(db),
        ])
        .await
        .map_err(internal("load keys and settings"))?;
    let [keys, settings, env_digest, accounts] = batch_of(results)?;
    let keys = open_all(sealer.clone(), key_store::decode_enabled(&keys)?).await;
    let accounts = open_accounts(sealer, account_store::decode_stored(&accounts)?).await;
    let settings = settings_store::decode(&settings)?;
    let digest = meta::decode(&env_digest)?;
    Ok((Snapshot::new(keys, accounts, settings, now), digest))
}

/// Keys by id, enabled or not, with their secrets opened (for probes an admin asks for).
pub async fn keys_by_id(app: &App, ids: &[String]) -> Result<Vec<UpstreamKey>, GatewayError> {
    let stored = key_store::stored_by_id(&app.db()?, ids).await?;
    Ok(open_all(sealer(&app.env).await?, stored).await)
}

/// Opens the stored secrets. A key that cannot be opened (wrong or missing
/// `ENCRYPTION_KEY`) is left out and logged by id, so one bad row never
/// takes the whole pool down.
async fn open_all(sealer: Option<Rc<Keyring>>, stored: Vec<StoredKey>) -> Vec<UpstreamKey> {
    let opened = join_all(stored.into_iter().map(|key| {
        let sealer = sealer.clone();
        async move {
            let result = open_secret(sealer.as_deref(), &key.secret).await;
            match result {
                Ok(secret) => Some(UpstreamKey {
                    candidate: Candidate {
                        id: key.id.clone(),
                        weight: weight_of(key.weight),
                        project: key.project,
                        revision: key.updated_at.map_or(0, int),
                        tier: 0,
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

/// Opens one stored secret: sealed ones need the keyring (which tries the
/// key they name, or each key for an old `v1` value), plain ones (stored
/// without `ENCRYPTION_KEY`) are taken as they are.
pub async fn open_secret(sealer: Option<&Keyring>, stored: &str) -> Result<String, GatewayError> {
    match (sealer, sealed::parse(stored)) {
        (Some(ring), _) => ring.open(stored).await,
        (None, Stored::Plain(_)) => Ok(stored.to_owned()),
        (None, _) => Err(GatewayError::Internal("ENCRYPTION_KEY is not set".into())),
    }
}

/// Opens an account's refresh token and client secret.
pub async fn open_account(
    sealer: Option<&Keyring>,
    account: StoredAccount,
) -> Result<UpstreamAccount, GatewayError> {
    let refresh_token = open_secret(sealer, &account.refresh_token).await?;
    let client_secret = open_secret(sealer, &account.client_secret).await?;
    Ok(UpstreamAccount {
        candidate: Candidate {
            id: account.id.clone(),
            weight: 1,
            project: None,
            revision: int(account.updated_at),
            tier: 0,
        },
        id: account.id,
        email: account.email,
        refresh_token,
        client_id: account.client_id,
        client_secret,
        project: account.project_id.unwrap_or_default(),
    })
}

/// Opens the accounts' secrets, leaving out (and logging by id) any that cannot be opened.
async fn open_accounts(
    sealer: Option<Rc<Keyring>>,
    stored: Vec<StoredAccount>,
) -> Vec<UpstreamAccount> {
    let opened = join_all(stored.into_iter().map(|account| {
        let sealer = sealer.clone();
        async move {
            let id = account.id.clone();
            open_account(sealer.as_deref(), account)
                .await
                .inspect_err(|e| worker::console_error!("[gemgate] cannot open account {id}: {e}"))
                .ok()
        }
    }))
    .await;
    opened.into_iter().flatten().collect()
}

/// The isolate's keyring, when `ENCRYPTION_KEY` is set: that key, and
/// `ENCRYPTION_KEY_PREVIOUS` during a rotation (ignored without the first).
pub async fn sealer(env: &Env) -> Result<Option<Rc<Keyring>>, GatewayError> {
    match secret(env, "ENCRYPTION_KEY") {
        Some(key) => {
            let previous = secret(env, "ENCRYPTION_KEY_PREVIOUS");
            Keyring::for_isolate(&key, previous.as_deref())
                .await
                .map(Some)
        }
        None => Ok(None),
    }
}
