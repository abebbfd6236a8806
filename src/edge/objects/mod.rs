//! Durable Objects: thin shells around the domain's state machines (one
//! `ModelGate` per model, one `UserLedger` per user key), and the worker-side
//! client that calls them with one JSON request each.

pub mod gate;
pub mod ledger;
pub mod throttle;
pub mod token;

use crate::domain::error::GatewayError;

/// Sends one JSON request to the Durable Object `name` of namespace `binding` and decodes its
/// JSON answer. `what` names the object in errors (`gate`, `ledger`).
pub async fn call<Req, Resp>(
    env: &worker::Env,
    binding: &str,
    name: &str,
    op: &Req,
    what: &str,
) -> Result<Resp, GatewayError>
where
    Req: serde::Serialize,
    Resp: serde::de::DeserializeOwned,
{
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
    let resp = stub
        .fetch_with_request(req)
        .await
        .map_err(|e| fail("fetch", &e))?;
    let body = crate::edge::http::body::read_response(&resp)
        .await
        .map_err(|e| fail("read", &e))?;
    if resp.status_code() != 200 {
        let text = String::from_utf8_lossy(&body);
        return Err(fail("status", &format!("{} {text}", resp.status_code())));
    }
    serde_json::from_slice(&body).map_err(|e| fail("decode", &e))
}
