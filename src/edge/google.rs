//! Google's OAuth endpoints, as plain fetches under a deadline: the token
//! endpoint (a refresh, or the wizard's code exchange) and userinfo. What an
//! answer means is the domain's (`accounts::oauth`); nothing here is logged,
//! since every request and answer carries a secret. Knows no other edge module.

use std::time::Duration;

use futures::future::{Either, select};
use serde::Deserialize;
use worker::{
    AbortController, Delay, Fetch, Headers, Method, Request, RequestInit, wasm_bindgen::JsValue,
};

use crate::domain::accounts::oauth::{TokenAnswer, TokenFailure, token_failure};

/// No token or userinfo call may take longer than this.
const DEADLINE: Duration = Duration::from_secs(20);

/// A fetch under [`DEADLINE`]: the status and the body, or why none came.
async fn fetch(request: Request) -> Result<(u16, Vec<u8>), String> {
    let controller = AbortController::default();
    let signal = controller.signal();
    let fetch = Fetch::Request(request);
    // The deadline covers the body too: an answer whose body stalls after
    // its headers times out like one that never came.
    let exchange = Box::pin(async {
        let mut resp = fetch
            .send_with_signal(&signal)
            .await
            .map_err(|e| format!("network: {e}"))?;
        let body = resp.bytes().await.map_err(|e| format!("network: {e}"))?;
        Ok((resp.status_code(), body))
    });
    let timer = Box::pin(Delay::from(DEADLINE));
    match select(exchange, timer).await {
        Either::Left((answer, _)) => answer,
        Either::Right(_) => {
            controller.abort();
            Err("timed out".into())
        }
    }
}

/// POSTs a form to the token endpoint: a refresh or a code exchange.
pub async fn token(url: &str, form: &str) -> Result<TokenAnswer, TokenFailure> {
    let build = || -> worker::Result<Request> {
        let headers = Headers::new();
        headers.set("content-type", "application/x-www-form-urlencoded")?;
        headers.set("accept", "application/json")?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(headers)
            .with_body(Some(JsValue::from_str(form)));
        Request::new_with_init(url, &init)
    };
    let request = build().map_err(|e| TokenFailure::Transient(format!("token request: {e}")))?;
    let (status, body) = fetch(request).await.map_err(TokenFailure::Transient)?;
    if !(200..300).contains(&status) {
        return Err(token_failure(status, &body));
    }
    serde_json::from_slice::<TokenAnswer>(&body).map_err(|e| {
        TokenFailure::Transient(format!("token endpoint answered unreadable JSON: {e}"))
    })
}

#[derive(Debug, Deserialize)]
pub struct UserInfo {
    pub email: Option<String>,
}

/// The account's email, from userinfo with a fresh access token.
pub async fn email(url: &str, access_token: &str) -> Result<String, String> {
    let build = || -> worker::Result<Request> {
        let headers = Headers::new();
        headers.set("authorization", &format!("Bearer {access_token}"))?;
        let mut init = RequestInit::new();
        init.with_method(Method::Get).with_headers(headers);
        Request::new_with_init(url, &init)
    };
    let request = build().map_err(|e| format!("userinfo request: {e}"))?;
    let (status, body) = fetch(request).await?;
    if !(200..300).contains(&status) {
        return Err(format!("userinfo answered {status}"));
    }
    let info: UserInfo = serde_json::from_slice(&body)
        .map_err(|e| format!("userinfo answered unreadable JSON: {e}"))?;
    info.email
        .filter(|e| e.contains('@'))
        .ok_or_else(|| "userinfo gave no email (the grant lacks the userinfo.email scope)".into())
}

/// A JSON call to Code Assist (`{base}/v1internal:{method}` or an operation
/// path) with an access token and gemini-cli's headers: the status and body.
pub async fn code_assist(
    url: &str,
    access_token: &str,
    body: Option<&str>,
) -> Result<(u16, Vec<u8>), String> {
    let build = || -> worker::Result<Request> {
        let headers = code_assist_headers(access_token)?;
        let mut init = RequestInit::new();
        match body {
            Some(body) => {
                init.with_method(Method::Post)
                    .with_body(Some(JsValue::from_str(body)));
            }
            None => {
                init.with_method(Method::Get);
            }
        }
        init.with_headers(headers);
        Request::new_with_init(url, &init)
    };
    let request = build().map_err(|e| format!("code assist request: {e}"))?;
    fetch(request).await
}

/// The version of gemini-cli whose headers the gateway sends.
pub const GEMINI_CLI_VERSION: &str = "0.21.0";

/// The headers gemini-cli sends to Code Assist.
pub fn code_assist_headers(access_token: &str) -> worker::Result<Headers> {
    let headers = Headers::new();
    headers.set("authorization", &format!("Bearer {access_token}"))?;
    headers.set("content-type", "application/json")?;
    headers.set(
        "user-agent",
        &format!("GeminiCLI/{GEMINI_CLI_VERSION} (linux; x64)"),
    )?;
    headers.set("x-goog-api-client", "gl-node/22.17.0")?;
    Ok(headers)
}
