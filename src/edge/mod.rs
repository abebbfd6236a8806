//! The runtime half: thin glue between requests, D1, KV, Durable Objects and
//! upstream fetches. Policy lives in `crate::domain`; this module only moves
//! bytes and state between the two.

pub mod admin;
pub mod app;
pub mod billing;
pub mod body;
pub mod cron;
pub mod crypto;
pub mod gate;
pub mod gemini;
pub mod keys;
pub mod ledger;
pub mod media;
pub mod models;
pub mod openai;
pub mod render;
pub mod router;
pub mod settings;
pub mod upstream;
pub mod users;

/// Milliseconds since the Unix epoch, the only clock the gateway reads.
pub fn now_ms() -> u64 {
    worker::Date::now().as_millis()
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

/// Sends one JSON request to the Durable Object `name` of namespace `binding` and decodes its
/// JSON answer. `what` names the object in errors (`gate`, `ledger`).
pub async fn call_object<Req, Resp>(
    env: &worker::Env,
    binding: &str,
    name: &str,
    op: &Req,
    what: &str,
) -> Result<Resp, crate::domain::error::GatewayError>
where
    Req: serde::Serialize,
    Resp: serde::de::DeserializeOwned,
{
    use crate::domain::error::GatewayError;
    let fail = |step: &str, e: &dyn std::fmt::Display| {
        GatewayError::Internal(format!("{what} {step}: {e}"))
    };
    let body = serde_json::to_string(op).map_err(|e| fail("encode", &e))?;
    let stub = env
        .durable_object(binding)
        .and_then(|ns| ns.get_by_name(name))
        .map_err(|e| fail("binding", &e))?;
    let mut init = worker::RequestInit::new();
    init.with_method(worker::Method::Post)
        .with_body(Some(worker::wasm_bindgen::JsValue::from_str(&body)));
    let req = worker::Request::new_with_init(&format!("https://{what}/"), &init)
        .map_err(|e| fail("request", &e))?;
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

/// A D1 bind value for an integer such as a timestamp in ms.
#[expect(
    clippy::cast_precision_loss,
    reason = "timestamps and counters stay far below 2^53, where f64 is exact"
)]
pub fn js_int(v: u64) -> worker::wasm_bindgen::JsValue {
    worker::wasm_bindgen::JsValue::from_f64(v as f64)
}
