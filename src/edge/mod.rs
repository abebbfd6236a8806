//! The runtime half: thin glue between requests, D1, KV, Durable Objects and
//! upstream fetches. Policy lives in `crate::domain`; this module only moves
//! bytes and state between the two.

pub mod admin;
pub mod app;
pub mod body;
pub mod cron;
pub mod crypto;
pub mod gate;
pub mod gemini;
pub mod keys;
pub mod media;
pub mod models;
pub mod openai;
pub mod render;
pub mod router;
pub mod settings;
pub mod upstream;

/// Milliseconds since the Unix epoch, the only clock the gateway reads.
pub fn now_ms() -> u64 {
    worker::Date::now().as_millis()
}

/// A D1 bind value for an integer such as a timestamp in ms.
#[expect(
    clippy::cast_precision_loss,
    reason = "timestamps and counters stay far below 2^53, where f64 is exact"
)]
pub fn js_int(v: u64) -> worker::wasm_bindgen::JsValue {
    worker::wasm_bindgen::JsValue::from_f64(v as f64)
}
