//! Per-request accounting: who is calling, admission (a reservation in the
//! user's `UserLedger`, in parallel with the first gate call), settlement
//! with the real usage (`Ticket`, which settles itself when dropped), stream
//! metering, and the batched request log. The arithmetic is `domain::quota`;
//! this module moves its inputs and outputs.

pub mod log;
pub mod meter;
pub mod ticket;

use std::rc::Rc;

use worker::Response;

use crate::domain::auth::matches_any;
use crate::domain::error::GatewayError;
use crate::domain::quota::{self, RateView};
use crate::domain::users::UserRecord;
use crate::edge::app::App;
use crate::edge::now_ms;
use crate::edge::snapshot::users as user_cache;

/// Who is calling: a static `ACCESS_TOKENS` token (unlimited) or a user key.
#[derive(Debug, Clone)]
pub enum Caller {
    Static,
    User(Rc<UserRecord>),
}

impl Caller {
    pub fn user(&self) -> Option<&Rc<UserRecord>> {
        match self {
            Self::Static => None,
            Self::User(user) => Some(user),
        }
    }
}

/// The caller for a client token: a static token, or a user key found by its hash. Keys the
/// record already marks unusable are refused here; the ledger has the final word at admission.
pub async fn authenticate(app: &App, token: &str) -> Result<Caller, GatewayError> {
    if matches_any(token, &app.config.access_tokens) {
        return Ok(Caller::Static);
    }
    let Some(user) = user_cache::by_token(app, token).await? else {
        return Err(GatewayError::Unauthorized("Invalid API key.".into()));
    };
    match user.refusal(now_ms()) {
        Some(err) => Err(err),
        None => Ok(Caller::User(user)),
    }
}

/// Adds `x-ratelimit-*` headers (`OpenAI`'s names) for the limits a user key has.
pub fn apply_rate_headers(resp: &mut Response, rate: &RateView) {
    let headers = resp.headers_mut();
    let set = |name: &str, value: String| {
        // Headers of a response we built are mutable; a failure costs only the hint.
        let _ = headers.set(name, &value);
    };
    if let Some(limit) = rate.limit_requests {
        set("x-ratelimit-limit-requests", limit.to_string());
    }
    if let Some(remaining) = rate.remaining_requests {
        set("x-ratelimit-remaining-requests", remaining.to_string());
    }
    if let Some(reset) = rate.reset_requests_ms {
        set("x-ratelimit-reset-requests", quota::format_reset(reset));
    }
    if let Some(limit) = rate.limit_tokens {
        set("x-ratelimit-limit-tokens", limit.to_string());
    }
    if let Some(remaining) = rate.remaining_tokens {
        set("x-ratelimit-remaining-tokens", remaining.to_string());
    }
    if let Some(reset) = rate.reset_tokens_ms {
        set("x-ratelimit-reset-tokens", quota::format_reset(reset));
    }
}
