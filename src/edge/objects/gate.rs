//! `ModelGate`, one Durable Object per model: a thin shell around
//! `domain::gate`. It holds the round-robin cursor and per-key health,
//! persisted in DO storage so a restart loses nothing. Also the worker-side
//! client for it. It never sees a secret: keys are known by their ids.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use worker::js_sys::{Array, Object, Reflect};
use worker::{
    DurableObject, Env, Error, ListOptions, Request, Response, Result, State, durable_object,
    wasm_bindgen::JsValue,
};

use crate::domain::error::GatewayError;

use futures::channel::oneshot;
use futures::future::{Either, select};
use worker::Delay;

use crate::domain::gate::{Applied, Changes, Gate, GateRequest, GateResponse};
use crate::domain::keypool::{KeyHealth, PoolState};
use crate::domain::limits::{Acquire, Concurrency, LeaseTable};
use crate::edge::app::Background;
use crate::edge::crypto::{random_hex, random_u64};
use crate::edge::now_ms;

// `#[durable_object]` expands to code that names `wasm_bindgen` directly.
use worker::wasm_bindgen;

#[durable_object]
pub struct ModelGate {
    state: State,
    /// Loaded from storage on the first request after a start.
    gate: RefCell<Option<Gate>>,
    /// Callers queued for a slot, woken when the table grants them one.
    waiters: RefCell<HashMap<String, oneshot::Sender<()>>>,
}

impl DurableObject for ModelGate {
    fn new(state: State, _env: Env) -> Self {
        Self {
            state,
            gate: RefCell::new(None),
            waiters: RefCell::new(HashMap::new()),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let op: GateRequest = match req.json().await {
            Ok(op) => op,
            Err(e) => return Response::error(format!("bad gate request: {e}"), 400),
        };
        if self.gate.borrow().is_none() {
            let loaded = self.load().await?;
            // Another request may have loaded it while this one awaited.
            let mut slot = self.gate.borrow_mut();
            if slot.is_none() {
                *slot = Some(loaded);
            }
        }
        let queued = match &op {
            GateRequest::Acquire {
                lease_id, limit, ..
            } => Some((lease_id.clone(), *limit)),
            _ => None,
        };
        let (answer, applied) = {
            let mut slot = self.gate.borrow_mut();
            let Some(gate) = slot.as_mut() else {
                return Response::error("gate not loaded", 500);
            };
            gate.apply(op, now_ms())
        };
        // The state is already updated in memory, so a request that
        // interleaves with these writes sees it, never a stale copy.
        self.settle(applied).await?;
        match (answer, queued) {
            (
                GateResponse::Lease {
                    lease: Acquire::Queued,
                },
                Some((lease_id, limit)),
            ) => {
                let lease = self.wait_in_line(&lease_id, limit).await?;
                Response::from_json(&GateResponse::Lease { lease })
            }
            (answer, _) => Response::from_json(&answer),
        }
    }
}

impl ModelGate {
    /// Parks a queued caller until the table grants it a slot or its wait
    /// runs out. Bounded: every turn waits for the next deadline in the
    /// table, and the caller's own deadline ends the loop.
    async fn wait_in_line(&self, lease_id: &str, limit: Concurrency) -> Result<Acquire> {
        let (tx, mut rx) = oneshot::channel::<()>();
        self.waiters.borrow_mut().insert(lease_id.to_owned(), tx);
        let deadline = now_ms().saturating_add(limit.max_wait_ms);
        let outcome = loop {
            // Granted while this caller was not yet parked (its state was
            // being written): nobody will wake it, so look first.
            if self.with_gate(|g| g.leases.is_held(lease_id)) == Some(true) {
                break Acquire::Granted;
            }
            let now = now_ms();
            let next = self
                .with_gate(|g| g.leases.next_deadline())
                .flatten()
                .unwrap_or(deadline)
                .min(deadline);
            let pause = Delay::from(Duration::from_millis(next.saturating_sub(now).max(1)));
            if let Either::Left(_) = select(&mut rx, Box::pin(pause)).await {
                break Acquire::Granted;
            }
            let now = now_ms();
            let applied = self
                .with_gate(|g| g.tick(limit.max, now))
                .unwrap_or_default();
            self.settle(applied).await?;
            if self.with_gate(|g| g.leases.is_held(lease_id)) == Some(true) {
                break Acquire::Granted;
            }
            if now >= deadline {
                let refused = self
                    .with_gate(|g| g.leases.give_up(lease_id, now))
                    .flatten();
                break match refused {
                    Some(retry_after_ms) => Acquire::Refused { retry_after_ms },
                    // Granted between the timer and the check.
                    None => Acquire::Granted,
                };
            }
        };
        self.waiters.borrow_mut().remove(lease_id);
        Ok(outcome)
    }

    fn with_gate<T>(&self, f: impl FnOnce(&mut Gate) -> T) -> Option<T> {
        self.gate.borrow_mut().as_mut().map(f)
    }

    /// Wakes the callers that were granted a slot and writes what changed.
    async fn settle(&self, applied: Applied) -> Result<()> {
        for id in &applied.granted {
            if let Some(tx) = self.waiters.borrow_mut().remove(id) {
                let _ = tx.send(());
            }
        }
        self.persist(applied.pool).await?;
        self.persist_leases(&applied.leased, &applied.unleased)
            .await
    }
}

/// Storage layout: `cursor` holds the round-robin position, `h:<key id>`
/// one key's health, each as a JSON string. A request writes the cursor and
/// the key it touched, never the whole pool.
const CURSOR_KEY: &str = "cursor";
const HEALTH_PREFIX: &str = "h:";
/// `l:<lease id>` holds a lease's expiry, so a restarted gate still counts
/// the slots of requests that were running, until they expire.
const LEASE_PREFIX: &str = "l:";

impl ModelGate {
    /// The persisted state; unreadable entries start fresh rather than
    /// wedging the model's gate.
    async fn load(&self) -> Result<Gate> {
        let storage = self.state.storage();
        let cursor: Option<String> = storage.get(CURSOR_KEY).await?;
        let listed = storage
            .list_with_options(ListOptions::new().prefix(HEALTH_PREFIX))
            .await?;
        let leases = storage
            .list_with_options(ListOptions::new().prefix(LEASE_PREFIX))
            .await?;
        let mut pool = PoolState {
            cursor: cursor.and_then(|c| c.parse().ok()).unwrap_or_default(),
            ..PoolState::default()
        };
        for entry in listed.entries() {
            let Ok(pair) = entry.map(|v| Array::from(&v)) else {
                continue;
            };
            let (Some(key), Some(json)) = (
                Array::get(&pair, 0).as_string(),
                Array::get(&pair, 1).as_string(),
            ) else {
                continue;
            };
            let Some(id) = key.strip_prefix(HEALTH_PREFIX) else {
                continue;
            };
            if let Ok(health) = serde_json::from_str::<KeyHealth>(&json) {
                pool.keys.insert(id.to_owned(), health);
            }
        }
        let mut held = BTreeMap::new();
        for (key, value) in string_pairs(&leases) {
            if let (Some(id), Ok(until)) = (key.strip_prefix(LEASE_PREFIX), value.parse::<u64>()) {
                held.insert(id.to_owned(), until);
            }
        }
        Ok(Gate {
            pool,
            leases: LeaseTable::with_held(held),
            // Random, so a view from before a restart is never taken for a newer one.
            epoch: random_u64(),
            ..Gate::default()
        })
    }

    async fn persist_leases(&self, leased: &[(String, u64)], unleased: &[String]) -> Result<()> {
        let storage = self.state.storage();
        if !leased.is_empty() {
            let writes = Object::new();
            for (id, until) in leased {
                Reflect::set(
                    &writes,
                    &JsValue::from_str(&format!("{LEASE_PREFIX}{id}")),
                    &JsValue::from_str(&until.to_string()),
                )
                .map_err(|e| Error::RustError(format!("lease write: {e:?}")))?;
            }
            storage.put_multiple_raw(writes).await?;
        }
        if !unleased.is_empty() {
            let keys: Vec<String> = unleased
                .iter()
                .map(|id| format!("{LEASE_PREFIX}{id}"))
                .collect();
            storage.delete_multiple(keys).await?;
        }
        Ok(())
    }

    async fn persist(&self, changes: Changes) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let storage = self.state.storage();
        // A plain object of key → JSON string: storage writes them as one batch.
        let writes = Object::new();
        let set = |key: &str, json: &str| {
            Reflect::set(&writes, &JsValue::from_str(key), &JsValue::from_str(json))
                .map(|_| ())
                .map_err(|e| Error::RustError(format!("gate write: {e:?}")))
        };
        if let Some(cursor) = changes.cursor {
            set(CURSOR_KEY, &cursor.to_string())?;
        }
        for (id, health) in &changes.upserted {
            let json =
                serde_json::to_string(health).map_err(|e| Error::RustError(e.to_string()))?;
            set(&format!("{HEALTH_PREFIX}{id}"), &json)?;
        }
        if Object::keys(&writes).length() > 0 {
            storage.put_multiple_raw(writes).await?;
        }
        if !changes.removed.is_empty() {
            let keys: Vec<String> = changes
                .removed
                .iter()
                .map(|id| format!("{HEALTH_PREFIX}{id}"))
                .collect();
            storage.delete_multiple(keys).await?;
        }
        Ok(())
    }
}

/// Sends one request to the gate of `model`.
pub async fn call(
    env: &Env,
    model: &str,
    op: &GateRequest,
) -> std::result::Result<GateResponse, GatewayError> {
    crate::edge::objects::call(env, "MODEL_GATE", model, op, "gate").await
}

/// The (key, string value) pairs of a storage listing.
fn string_pairs(listed: &worker::js_sys::Map) -> Vec<(String, String)> {
    listed
        .entries()
        .into_iter()
        .filter_map(|entry| {
            let pair = Array::from(&entry.ok()?);
            Some((pair.get(0).as_string()?, pair.get(1).as_string()?))
        })
        .collect()
}

/// A slot of a concurrency-limited model, held by one request. The holder
/// gives it back when its request ends ([`release`]); if that never happens
/// (the isolate died), the gate takes it back at `expires`.
#[derive(Debug, Clone)]
pub struct Lease {
    pub model: String,
    pub id: String,
    pub limit: Concurrency,
    pub ttl_ms: u64,
}

/// Takes a slot of `model`, waiting in line for at most `limit.max_wait_ms`.
/// A refusal is the client's 429, with the time the next slot should free.
/// If the caller goes away while it waits (the future is dropped), the
/// place in line, or the slot granted meanwhile, is given back in the
/// background; the lease's expiry is the backstop.
pub async fn acquire(
    env: &Env,
    background: &Background,
    model: &str,
    limit: Concurrency,
    ttl_ms: u64,
) -> std::result::Result<Lease, GatewayError> {
    let id = random_hex::<12>()?;
    let op = GateRequest::Acquire {
        lease_id: id.clone(),
        limit,
        ttl_ms,
    };
    let mut pending = Pending {
        env: env.clone(),
        background: background.clone(),
        lease: Some(Lease {
            model: model.to_owned(),
            id: id.clone(),
            limit,
            ttl_ms,
        }),
    };
    let answer = call(env, model, &op).await;
    if !matches!(
        answer,
        Ok(GateResponse::Lease {
            lease: Acquire::Granted
        })
    ) {
        // Refused, or failed: nothing to give back (a failed call may have
        // left a place in line; it expires with its deadline).
        pending.lease = None;
    }
    match answer? {
        GateResponse::Lease {
            lease: Acquire::Granted,
        } => pending
            .lease
            .take()
            .ok_or_else(|| GatewayError::Internal("lease lost".into())),
        GateResponse::Lease {
            lease: Acquire::Refused { retry_after_ms },
        } => Err(GatewayError::RateLimited {
            message: format!(
                "`{model}` is at its concurrency limit ({} at once, setting `model_limits`) and no slot freed within {} ms; retry later.",
                limit.max, limit.max_wait_ms
            ),
            retry_after_secs: Some(retry_after_ms.div_ceil(1000).max(1)),
        }),
        other => Err(GatewayError::Internal(format!(
            "gate answered Acquire with {other:?}"
        ))),
    }
}

/// A lease being acquired: given back if its future is dropped.
struct Pending {
    env: Env,
    background: Background,
    lease: Option<Lease>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            let env = self.env.clone();
            self.background
                .spawn(async move { release(&env, &lease).await });
        }
    }
}

/// Gives a slot back.
pub async fn release(env: &Env, lease: &Lease) {
    let op = GateRequest::Release {
        lease_id: lease.id.clone(),
        cap: lease.limit.max,
    };
    if let Err(e) = call(env, &lease.model, &op).await {
        worker::console_warn!("[gemgate] lease release failed (it will expire): {e}");
    }
}

/// Keeps a slot while its stream flows: renews it every third of its
/// lifetime. Never ends by itself; the caller drops it when the stream ends.
pub async fn keep_alive(env: &Env, lease: &Lease) {
    let period = Duration::from_millis((lease.ttl_ms / 3).max(1_000));
    loop {
        Delay::from(period).await;
        let op = GateRequest::Renew {
            lease_id: lease.id.clone(),
            ttl_ms: lease.ttl_ms,
        };
        if let Err(e) = call(env, &lease.model, &op).await {
            worker::console_warn!("[gemgate] lease renewal failed: {e}");
        }
    }
}

/// Counts the tokens a request used against its key's per-minute budget.
pub async fn count_usage(env: &Env, model: &str, key_id: &str, tokens: u64) {
    let op = GateRequest::Usage {
        key_id: key_id.to_owned(),
        tokens,
    };
    if let Err(e) = call(env, model, &op).await {
        worker::console_warn!("[gemgate] token count failed: {e}");
    }
}
