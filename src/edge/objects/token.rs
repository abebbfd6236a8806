//! `AccountToken`, one Durable Object per account: the account's access
//! token, refreshed single-flight. However many requests in however many
//! isolates need a token at once, one refresh runs and every waiter gets its
//! answer. The token is held in memory only (a restarted object refreshes
//! once); it is never written to storage, D1 or a log.

use std::cell::RefCell;
use std::rc::Rc;

use futures::FutureExt;
use futures::future::{LocalBoxFuture, Shared};
use serde::{Deserialize, Serialize};
use worker::{DurableObject, Env, Request, Response, Result, State, durable_object};

use crate::domain::accounts::oauth::{TokenFailure, refresh_form, usable_until};
use crate::domain::error::GatewayError;
use crate::domain::sha256::sha256_hex;
use crate::edge::google;
use crate::edge::now_ms;

// `#[durable_object]` expands to code that names `wasm_bindgen` directly.
use worker::wasm_bindgen;

/// A request for the account's access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRequest {
    pub refresh_token: String,
    pub client_id: String,
    pub client_secret: String,
    pub token_url: String,
    /// A token the caller saw refused (401): refresh unless the cached one is newer.
    #[serde(default)]
    pub stale: Option<String>,
    /// Refresh when the cached token is usable for less than this.
    #[serde(default)]
    pub min_ttl_ms: u64,
}

/// The answer: a token and until when it may be used, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum TokenAnswer {
    Token {
        access_token: String,
        usable_until_ms: u64,
        /// True when this call caused (or joined) a refresh.
        refreshed: bool,
    },
    /// The grant is gone: the account needs the operator.
    Refused { message: String },
    /// Google or the network failed: try later.
    Unavailable { message: String },
}

#[derive(Clone)]
struct Cached {
    access_token: String,
    usable_until_ms: u64,
    /// Which refresh token it was made from (a re-import replaces it).
    grant: String,
}

type Flight = Shared<LocalBoxFuture<'static, TokenAnswer>>;

#[durable_object]
pub struct AccountToken {
    cached: Rc<RefCell<Option<Cached>>>,
    flight: Rc<RefCell<Option<(String, Flight)>>>,
}

impl DurableObject for AccountToken {
    fn new(_state: State, _env: Env) -> Self {
        Self {
            cached: Rc::new(RefCell::new(None)),
            flight: Rc::new(RefCell::new(None)),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let ask: TokenRequest = match req.json().await {
            Ok(ask) => ask,
            Err(e) => return Response::error(format!("bad token request: {e}"), 400),
        };
        Response::from_json(&self.answer(ask).await)
    }
}

impl AccountToken {
    async fn answer(&self, ask: TokenRequest) -> TokenAnswer {
        let grant = sha256_hex(ask.refresh_token.as_bytes());
        let now = now_ms();
        let cached = self.cached.borrow().clone();
        if let Some(c) = cached.filter(|c| {
            c.grant == grant
                && c.usable_until_ms > now.saturating_add(ask.min_ttl_ms)
                && ask.stale.as_deref() != Some(c.access_token.as_str())
        }) {
            return TokenAnswer::Token {
                access_token: c.access_token,
                usable_until_ms: c.usable_until_ms,
                refreshed: false,
            };
        }
        // Join the refresh in flight for this grant, or start one.
        let joined = self
            .flight
            .borrow()
            .as_ref()
            .filter(|(g, _)| *g == grant)
            .map(|(_, f)| f.clone());
        let flight = joined.unwrap_or_else(|| {
            let flight = refresh(ask, grant.clone(), self.cached.clone()).shared();
            *self.flight.borrow_mut() = Some((grant.clone(), flight.clone()));
            flight
        });
        let answer = flight.await;
        // The first waiter to come back clears the flight; later callers see the cache.
        let mut slot = self.flight.borrow_mut();
        if slot.as_ref().is_some_and(|(g, _)| *g == grant) {
            *slot = None;
        }
        answer
    }
}

fn refresh(
    ask: TokenRequest,
    grant: String,
    cache: Rc<RefCell<Option<Cached>>>,
) -> LocalBoxFuture<'static, TokenAnswer> {
    async move {
        let form = refresh_form(&ask.refresh_token, &ask.client_id, &ask.client_secret);
        let started = now_ms();
        match google::token(&ask.token_url, &form).await {
            Ok(token) => {
                let usable_until_ms = usable_until(started, token.expires_in);
                *cache.borrow_mut() = Some(Cached {
                    access_token: token.access_token.clone(),
                    usable_until_ms,
                    grant,
                });
                TokenAnswer::Token {
                    access_token: token.access_token,
                    usable_until_ms,
                    refreshed: true,
                }
            }
            Err(TokenFailure::Permanent(message)) => {
                cache.borrow_mut().take();
                TokenAnswer::Refused { message }
            }
            Err(TokenFailure::Transient(message)) => TokenAnswer::Unavailable { message },
        }
    }
    .boxed_local()
}

/// Asks the account's object for its token.
pub async fn get(
    env: &Env,
    account_id: &str,
    ask: &TokenRequest,
) -> std::result::Result<TokenAnswer, GatewayError> {
    crate::edge::objects::call(env, "ACCOUNT_TOKEN", account_id, ask, "token").await
}
