//! `UserLedger`, one Durable Object per user key: the single serialization point for its
//! credit balance, rate windows and in-flight leases (`domain::quota::Ledger`). A DO runs one
//! request at a time, so admission is exact under any concurrency, and it answers in about one
//! DO round trip with no D1 write on the hot path. Also the worker-side client for it.

use std::cell::RefCell;

use worker::{DurableObject, Env, Request, Response, Result, State, durable_object};

use crate::domain::error::GatewayError;
use crate::domain::quota::{Ledger, LedgerRequest, LedgerResponse};
use crate::edge::now_ms;

// `#[durable_object]` expands to code that names `wasm_bindgen` directly.
use worker::wasm_bindgen;

/// The whole ledger is one small JSON document (limits, totals, windows, open leases).
const STATE_KEY: &str = "ledger";

#[durable_object]
pub struct UserLedger {
    state: State,
    ledger: RefCell<Option<Ledger>>,
}

impl DurableObject for UserLedger {
    fn new(state: State, _env: Env) -> Self {
        Self {
            state,
            ledger: RefCell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let op: LedgerRequest = match req.json().await {
            Ok(op) => op,
            Err(e) => return Response::error(format!("bad ledger request: {e}"), 400),
        };
        let cached = self.ledger.borrow_mut().take();
        let mut ledger = match cached {
            Some(ledger) => ledger,
            None => self.load().await?,
        };
        let (answer, changed) = ledger.apply(op, now_ms());
        let json = changed
            .then(|| serde_json::to_string(&ledger))
            .transpose()
            .map_err(|e| worker::Error::RustError(e.to_string()))?;
        // Back in memory before the write is awaited, so an interleaved request sees it.
        *self.ledger.borrow_mut() = Some(ledger);
        if let Some(json) = json {
            self.state.storage().put(STATE_KEY, json).await?;
        }
        Response::from_json(&answer)
    }
}

impl UserLedger {
    /// The persisted ledger; an unreadable one starts empty and is rebuilt from the next
    /// caller's limits and D1's settled total.
    async fn load(&self) -> Result<Ledger> {
        let stored: Option<String> = self.state.storage().get(STATE_KEY).await?;
        Ok(stored
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default())
    }
}

/// Sends one request to the ledger of `user_id`.
pub async fn call(
    env: &Env,
    user_id: &str,
    op: &LedgerRequest,
) -> std::result::Result<LedgerResponse, GatewayError> {
    crate::edge::objects::call(env, "USER_LEDGER", user_id, op, "ledger").await
}
