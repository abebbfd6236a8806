//! `LoginThrottle`, one Durable Object for the whole gateway: a thin shell
//! around `domain::throttle`. It runs one guess at a time, so a burst of
//! wrong passwords is counted exactly, and keeps each client's recent
//! failures in its storage (`c:<client>`), so a restart forgets nothing.

use std::cell::RefCell;

use worker::js_sys::Array;
use worker::{DurableObject, Env, ListOptions, Request, Response, Result, State, durable_object};

use crate::domain::error::GatewayError;
use crate::domain::throttle::{Attempt, Throttle, Verdict};
use crate::edge::now_ms;

// `#[durable_object]` expands to code that names `wasm_bindgen` directly.
use worker::wasm_bindgen;

const PREFIX: &str = "c:";
/// The one object's name.
const NAME: &str = "admin-login";

#[durable_object]
pub struct LoginThrottle {
    state: State,
    throttle: RefCell<Option<Throttle>>,
}

impl DurableObject for LoginThrottle {
    fn new(state: State, _env: Env) -> Self {
        Self {
            state,
            throttle: RefCell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let attempt: Attempt = match req.json().await {
            Ok(attempt) => attempt,
            Err(e) => return Response::error(format!("bad throttle request: {e}"), 400),
        };
        let cached = self.throttle.borrow_mut().take();
        let mut throttle = match cached {
            Some(throttle) => throttle,
            None => self.load().await?,
        };
        let (verdict, changed) = throttle.attempt(&attempt, now_ms());
        let writes: Vec<(String, Vec<u64>)> = changed
            .into_iter()
            .map(|client| {
                let failures = throttle.failures_of(&client).to_vec();
                (client, failures)
            })
            .collect();
        // Back in memory before the writes are awaited, so an interleaved guess sees it.
        *self.throttle.borrow_mut() = Some(throttle);
        let storage = self.state.storage();
        for (client, failures) in writes {
            let key = format!("{PREFIX}{client}");
            if failures.is_empty() {
                storage.delete(&key).await?;
            } else {
                let json = serde_json::to_string(&failures)
                    .map_err(|e| worker::Error::RustError(e.to_string()))?;
                storage.put(&key, json).await?;
            }
        }
        Response::from_json(&verdict)
    }
}

impl LoginThrottle {
    /// The stored failures; an unreadable entry is dropped rather than wedging logins.
    async fn load(&self) -> Result<Throttle> {
        let listed = self
            .state
            .storage()
            .list_with_options(ListOptions::new().prefix(PREFIX))
            .await?;
        let mut entries = Vec::new();
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
            let (Some(client), Ok(failures)) = (
                key.strip_prefix(PREFIX),
                serde_json::from_str::<Vec<u64>>(&json),
            ) else {
                continue;
            };
            entries.push((client.to_owned(), failures));
        }
        Ok(Throttle::from_entries(entries))
    }
}

/// Asks the throttle about one guess.
pub async fn call(env: &Env, attempt: &Attempt) -> std::result::Result<Verdict, GatewayError> {
    crate::edge::objects::call(env, "LOGIN_THROTTLE", NAME, attempt, "throttle").await
}
