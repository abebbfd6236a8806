//! The numbers behind the `x-ratelimit-*` headers, and the reset durations in `OpenAI`'s
//! format.

use serde::{Deserialize, Serialize};

/// Numbers for the `x-ratelimit-*` headers (`OpenAI`'s names). `None` where no
/// limit is set. Requests follow the RPM limit, tokens the TPM limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateView {
    pub limit_requests: Option<u32>,
    pub remaining_requests: Option<u32>,
    pub reset_requests_ms: Option<u64>,
    pub limit_tokens: Option<u64>,
    pub remaining_tokens: Option<u64>,
    pub reset_tokens_ms: Option<u64>,
}

/// `OpenAI`'s duration format for the reset headers (Go's `Duration` string at
/// millisecond precision): `250ms` under a second, then `1s`, `1.5s`, `6m0s`,
/// `1h2m3s`.
pub fn format_reset(ms: u64) -> String {
    if ms == 0 {
        return "0s".to_owned();
    }
    if ms < 1_000 {
        return format!("{ms}ms");
    }
    let hours = ms / 3_600_000;
    let minutes = ms / 60_000 % 60;
    let seconds = ms / 1_000 % 60;
    let fraction = ms % 1_000;
    let seconds = if fraction > 0 {
        let digits = format!("{fraction:03}");
        format!("{seconds}.{}", digits.trim_end_matches('0'))
    } else {
        seconds.to_string()
    };
    if hours > 0 {
        format!("{hours}h{minutes}m{seconds}s")
    } else if minutes > 0 {
        format!("{minutes}m{seconds}s")
    } else {
        format!("{seconds}s")
    }
}
