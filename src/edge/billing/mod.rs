//! Per-request accounting: admission (a reservation in the user's
//! `UserLedger`, in parallel with the first gate call), settlement
//! with the real usage (`Ticket`, which settles itself when dropped), stream
//! metering, and the batched request log. The arithmetic is `domain::quota`;
//! this module moves its inputs and outputs.

pub mod log;
pub mod meter;
pub mod ticket;

use worker::Response;

use crate::domain::quota::{self, RateView};

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
