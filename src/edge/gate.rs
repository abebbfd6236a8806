//! `ModelGate`, one Durable Object per model: a thin shell around
//! `domain::gate`. It holds the round-robin cursor and per-key health,
//! persisted in DO storage so a restart loses nothing. Also the worker-side
//! client for it.

use std::cell::RefCell;

use worker::{
    DurableObject, Env, Method, Request, RequestInit, Response, Result, State, durable_object,
    wasm_bindgen::JsValue,
};

use super::now_ms;
use crate::domain::error::GatewayError;
use crate::domain::gate::{GateRequest, GateResponse};
use crate::domain::keypool::PoolState;

// `#[durable_object]` expands to code that names `wasm_bindgen` directly.
use worker::wasm_bindgen;

const STATE_KEY: &str = "pool";

#[durable_object]
pub struct ModelGate {
    state: State,
    pool: RefCell<Option<PoolState>>,
}

impl DurableObject for ModelGate {
    fn new(state: State, _env: Env) -> Self {
        Self {
            state,
            pool: RefCell::new(None),
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
        let (answer, changed) = op.apply(&mut pool, now_ms());
        // Put the state back before anything else awaits, so a request that
        // interleaves sees the new state, never a stale copy.
        let json = if changed {
            serde_json::to_string(&pool).ok()
        } else {
            None
        };
        *self.pool.borrow_mut() = Some(pool);
        if let Some(json) = json {
            // A JSON string is one value for storage to write, where a
            // serialized struct would be a tree of JS objects.
            self.state
                .storage()
                .put_raw(STATE_KEY, JsValue::from_str(&json))
                .await?;
        }
        Response::from_json(&answer)
    }
}

impl ModelGate {
    /// The persisted state; an unreadable one starts fresh rather than
    /// wedging the model's gate.
    async fn load(&self) -> Result<PoolState> {
        let stored: Option<String> = self.state.storage().get(STATE_KEY).await?;
        Ok(stored
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default())
    }
}

/// Sends one request to the gate of `model`.
pub async fn call(
    env: &Env,
    model: &str,
    op: &GateRequest,
) -> std::result::Result<GateResponse, GatewayError> {
    let fail =
        |what: &str, e: &dyn std::fmt::Display| GatewayError::Internal(format!("gate {what}: {e}"));
    let body = serde_json::to_string(op).map_err(|e| fail("encode", &e))?;
    let stub = env
        .durable_object("MODEL_GATE")
        .and_then(|ns| ns.get_by_name(model))
        .map_err(|e| fail("binding", &e))?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_body(Some(JsValue::from_str(&body)));
    let req =
        Request::new_with_init("https://model-gate/", &init).map_err(|e| fail("request", &e))?;
    let mut resp = stub
        .fetch_with_request(req)
        .await
        .map_err(|e| fail("fetch", &e))?;
    if resp.status_code() != 200 {
        let text = resp.text().await.unwrap_or_default();
        return Err(fail("status", &format!("{} {text}", resp.status_code())));
    }
    resp.json().await.map_err(|e| fail("decode", &e))
}
