//! Durable Objects: thin shells around the domain's state machines (one
//! `ModelGate` per model, one `UserLedger` per user key), and the worker-side
//! client that calls them with one JSON request each.

pub mod gate;
pub mod ledger;
pub mod throttle;
pub mod token;

use worker::js_sys::{Function, Promise, Reflect, Uint8Array};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys;

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
    let (status, answer) = post(env, binding, name, &format!("https://{what}/"), &body)
        .await
        .map_err(|e| fail("fetch", &format!("{e:?}")))?;
    if status != 200 {
        let text = String::from_utf8_lossy(&answer);
        return Err(fail("status", &format!("{status} {text}")));
    }
    let body = answer;
    serde_json::from_slice(&body).map_err(|e| fail("decode", &e))
}

/// `env[binding].getByName(name).fetch(url, {method: "POST", body})`, with
/// the answer's status and whole body. Straight to the JS objects: the
/// worker crate's `Request` would parse the URL again and read `cf` for
/// every call, a visible share of a request that makes one or two of them.
async fn post(
    env: &worker::Env,
    binding: &str,
    name: &str,
    url: &str,
    body: &str,
) -> Result<(u16, Vec<u8>), JsValue> {
    let namespace = Reflect::get(env, &JsValue::from_str(binding))?;
    let get_by_name: Function =
        Reflect::get(&namespace, &JsValue::from_str("getByName"))?.dyn_into()?;
    let stub = get_by_name.call1(&namespace, &JsValue::from_str(name))?;
    let fetch: Function = Reflect::get(&stub, &JsValue::from_str("fetch"))?.dyn_into()?;
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&JsValue::from_str(body));
    let promise: Promise = fetch
        .call2(&stub, &JsValue::from_str(url), &init)?
        .dyn_into()?;
    let answer: web_sys::Response = JsFuture::from(promise).await?.dyn_into()?;
    let buffer = JsFuture::from(answer.array_buffer()?).await?;
    Ok((answer.status(), Uint8Array::new(&buffer).to_vec()))
}
