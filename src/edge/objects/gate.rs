//! `ModelGate`, one Durable Object per model: a thin shell around
//! `domain::gate`. It holds the round-robin cursor and per-key health,
//! persisted in DO storage so a restart loses nothing. Also the worker-side
//! client for it. It never sees a secret: keys are known by their ids.

use std::cell::RefCell;

use worker::js_sys::{Array, Object, Reflect};
use worker::{
    DurableObject, Env, Error, ListOptions, Request, Response, Result, State, durable_object,
    wasm_bindgen::JsValue,
};

use crate::domain::error::GatewayError;
use crate::domain::gate::{Changes, GateRequest, GateResponse, Rosters};
use crate::domain::keypool::{KeyHealth, PoolState};
use crate::edge::now_ms;

// `#[durable_object]` expands to code that names `wasm_bindgen` directly.
use worker::wasm_bindgen;

#[durable_object]
pub struct ModelGate {
    state: State,
    pool: RefCell<Option<PoolState>>,
    /// Recent key lists, in memory only (a restart asks for them again).
    rosters: RefCell<Rosters>,
}

impl DurableObject for ModelGate {
    fn new(state: State, _env: Env) -> Self {
        Self {
            state,
            pool: RefCell::new(None),
            rosters: RefCell::new(Rosters::default()),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let op: GateRequest = match req.json().await {
            Ok(op) => op,
            Err(e) => return Response::error(format!("bad gate request: {e}"), 400),
        };
        let cached = self.pool.borrow_mut().take();
        let mut pool = match cached {
            Some(pool) => pool,
            None => self.load().await?,
        };
        let before = pool.clone();
        let answer = op.apply(&mut pool, &mut self.rosters.borrow_mut(), now_ms());
        let changes = Changes::between(&before, &pool);
        // Put the state back before awaiting the writes, so a request that
        // interleaves sees the new state, never a stale copy.
        *self.pool.borrow_mut() = Some(pool);
        self.persist(changes).await?;
        Response::from_json(&answer)
    }
}

/// Storage layout: `cursor` holds the round-robin position, `h:<key id>`
/// one key's health, each as a JSON string. A request writes the cursor and
/// the key it touched, never the whole pool.
const CURSOR_KEY: &str = "cursor";
const HEALTH_PREFIX: &str = "h:";

impl ModelGate {
    /// The persisted state; unreadable entries start fresh rather than
    /// wedging the model's gate.
    async fn load(&self) -> Result<PoolState> {
        let storage = self.state.storage();
        let cursor: Option<String> = storage.get(CURSOR_KEY).await?;
        let listed = storage
            .list_with_options(ListOptions::new().prefix(HEALTH_PREFIX))
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
        Ok(pool)
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
