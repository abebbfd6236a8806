//! The runtime half: thin glue between requests, D1, KV, Durable Objects and
//! upstream fetches. Policy lives in `crate::domain`; this module only moves
//! bytes and state between the two.
//!
//! The edge is layered one way; a module may use only the layers below it
//! (`make boundary` checks this, and that handlers never use each other):
//!
//! | layer | modules | holds |
//! |---|---|---|
//! | 1 | `http`, `crypto`, `config`, `google` | request bodies, responses (streamed ones through the runtime's pipe), Web Crypto, the isolate's env, Google's OAuth endpoints |
//! | 2 | `app` | the per-request context |
//! | 3 | `store`, `objects` | D1 repositories; Durable Object shells and their clients |
//! | 4 | `snapshot` | the per-isolate caches (keys, settings, users) and their invalidation |
//! | 5 | `upstream`, `access` | the failover loop, the one place that builds upstream URLs; who is calling (client tokens, admin sessions and passwords) |
//! | 6 | `billing` | admission, settlement, metering, the request log |
//! | 7 | `relay` | answers that are more than one upstream call relayed: anti-truncation's continuations, and fake streams (a stream answered from one non-stream call, with heartbeats) |
//! | 8 | `api`, `admin`, `cron` | handlers, which never use each other |
//! | 9 | `router` | the fetch entry |
//!
//! Modules refer to each other as `crate::edge::<module>`, never `super::`,
//! so the rule can be checked with a grep.

pub mod access;
pub mod admin;
pub mod api;
pub mod app;
pub mod billing;
pub mod config;
pub mod cron;
pub mod crypto;
pub mod google;
pub mod http;
pub mod objects;
pub mod relay;
pub mod router;
pub mod snapshot;
pub mod store;
pub mod upstream;

use crate::domain::error::GatewayError;

/// Milliseconds since the Unix epoch, the only clock the gateway reads.
/// `Date.now()`, one static call: `worker::Date::now()` builds a `Date` object
/// first, and the clock is read several times per request and per stream chunk.
pub fn now_ms() -> u64 {
    int(worker::js_sys::Date::now())
}

/// An integer D1 returned: JS numbers come back as `f64`.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "D1 returns integers as JS numbers; ours are non-negative and below 2^53"
)]
pub fn int(v: f64) -> u64 {
    v.max(0.0) as u64
}

/// A D1 bind value for an integer such as a timestamp in ms.
#[expect(
    clippy::cast_precision_loss,
    reason = "timestamps and counters stay far below 2^53, where f64 is exact"
)]
pub fn js_int(v: u64) -> worker::wasm_bindgen::JsValue {
    worker::wasm_bindgen::JsValue::from_f64(v as f64)
}

/// A D1 bind value for an optional string (`NULL` when absent).
pub fn js_opt(v: Option<&str>) -> worker::wasm_bindgen::JsValue {
    v.map_or(worker::wasm_bindgen::JsValue::NULL, Into::into)
}

/// Maps a runtime error to an internal gateway error that names what failed
/// (logged, never shown to clients).
pub fn internal(what: &str) -> impl FnOnce(worker::Error) -> GatewayError + '_ {
    move |e| GatewayError::Internal(format!("{what}: {e}"))
}

/// A runtime failure with no better context is an internal error: logged by
/// the renderer, shown to clients as "Internal server error".
impl From<worker::Error> for GatewayError {
    fn from(e: worker::Error) -> Self {
        Self::Internal(format!("runtime: {e}"))
    }
}
