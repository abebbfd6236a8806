//! What an account is to the rest of the gateway: its id (from its email, so
//! a re-import keeps it), its status as the admin API names it, and how a
//! Code Assist answer counts for the pool.

use serde::Serialize;

use super::onboard::{Attention, attention_from_error};
use crate::domain::clock::parse_rfc3339_ms;
use crate::domain::outcome::{Outcome, classify};
use crate::domain::sha256::{sha256, to_hex};

/// Every account id starts with this, so an upstream id says its kind.
pub const ID_PREFIX: &str = "acc_";

/// The account id for an email: stable, non-secret, and never equal to a key id
/// (those are 16 bare hex digits).
pub fn account_id(email: &str) -> String {
    let digest = sha256(email.trim().to_ascii_lowercase().as_bytes());
    format!("{ID_PREFIX}{}", to_hex(&digest[..6]))
}

/// Whether an upstream id names an account.
pub fn is_account(id: &str) -> bool {
    id.starts_with(ID_PREFIX)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Active,
    NeedsAttention,
    Disabled,
}

impl Status {
    /// The operator's switch wins; then a refusal only the operator can fix.
    pub fn of(enabled: bool, attention: Option<&str>) -> Self {
        if !enabled {
            Self::Disabled
        } else if attention.is_some_and(|a| !a.is_empty()) {
            Self::NeedsAttention
        } else {
            Self::Active
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::NeedsAttention => "needs_attention",
            Self::Disabled => "disabled",
        }
    }
}

/// How one Code Assist answer counts: the pool's outcome, and the refusal
/// that takes the account out until the operator acts, if it was one.
///
/// A 429 that names when the quota comes back (`quotaResetTimeStamp`, or
/// `quotaResetDelay`) cools the (account, model) until then; otherwise the
/// usual `RetryInfo` rules apply. A refusal of the account is reported as
/// `KeyInvalid`, so this model's gate stops choosing it at once; the edge
/// also marks the account in D1, which takes it out of every gate.
pub fn code_assist_outcome(status: u16, body: &[u8], now_ms: u64) -> (Outcome, Option<Attention>) {
    if let Some(attention) = (status == 403 || status == 400)
        .then(|| attention_from_error(status, body))
        .flatten()
    {
        let outcome = Outcome::KeyInvalid {
            reason: attention.reason().to_ascii_uppercase(),
        };
        return (outcome, Some(attention));
    }
    let mut outcome = classify(status, body);
    if let Outcome::RateLimited { retry_after_ms, .. } = &mut outcome
        && let Some(reset) = quota_reset_ms(body, now_ms)
    {
        *retry_after_ms = Some(reset);
    }
    // Code Assist answers an expired or revoked access token with 401: the
    // edge refreshes the token and tries again, so this is no verdict on the
    // account yet.
    if status == 401 {
        outcome = Outcome::Network;
    }
    (outcome, None)
}

/// How long until the quota of a Code Assist 429 comes back, from its
/// `ErrorInfo.metadata`: the reset instant, else the reset delay.
fn quota_reset_ms(body: &[u8], now_ms: u64) -> Option<u64> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let details = value.pointer("/error/details")?.as_array()?;
    let metadata = details
        .iter()
        .find(|d| {
            d.get("@type").and_then(|t| t.as_str())
                == Some("type.googleapis.com/google.rpc.ErrorInfo")
        })?
        .get("metadata")?;
    if let Some(at) = metadata
        .get("quotaResetTimeStamp")
        .and_then(|v| v.as_str())
        .and_then(parse_rfc3339_ms)
    {
        return Some(at.saturating_sub(now_ms).max(1_000));
    }
    let delay = metadata.get("quotaResetDelay")?.as_str()?;
    parse_delay_ms(delay)
}

/// `"3h2m1.5s"`, `"38s"`, `"1.500s"`, `"250ms"` as milliseconds, rounded up.
fn parse_delay_ms(text: &str) -> Option<u64> {
    let mut total = 0.0_f64;
    let mut number = String::new();
    let mut chars = text.trim().chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let value: f64 = number.parse().ok()?;
        number.clear();
        let unit = match c {
            'h' => 3_600_000.0,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                1.0
            }
            'm' => 60_000.0,
            's' => 1_000.0,
            _ => return None,
        };
        total += value * unit;
        any = true;
    }
    if !number.is_empty() || !any || !total.is_finite() {
        return None;
    }
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a positive delay in ms, far below 2^53"
    )]
    Some(total.ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::outcome::QuotaScope;

    #[test]
    fn ids_come_from_the_email_and_never_look_like_a_key_id() {
        let id = account_id("Alice@Example.com ");
        assert_eq!(id, account_id("alice@example.com"));
        assert!(is_account(&id));
        assert_eq!(id.len(), ID_PREFIX.len() + 12);
        assert_ne!(id, account_id("bob@example.com"));
        assert!(!is_account("0123456789abcdef"));
    }

    #[test]
    fn the_switch_wins_over_attention() {
        assert_eq!(Status::of(true, None), Status::Active);
        assert_eq!(Status::of(true, Some("")), Status::Active);
        assert_eq!(Status::of(true, Some("revoked")), Status::NeedsAttention);
        assert_eq!(Status::of(false, Some("revoked")), Status::Disabled);
        let names = [Status::Active, Status::NeedsAttention, Status::Disabled].map(Status::as_str);
        assert_eq!(names, ["active", "needs_attention", "disabled"]);
    }

    #[test]
    fn a_quota_reset_instant_sets_the_cooldown() {
        let body = br#"{"error":{"code":429,"message":"You have exhausted your capacity on this model.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"QUOTA_EXHAUSTED","domain":"cloudcode-pa.googleapis.com","metadata":{"quotaResetDelay":"3h0m0s","quotaResetTimeStamp":"2026-01-01T08:00:00Z","model":"gemini-2.5-pro"}},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"10800s"}]}}"#;
        let now = parse_rfc3339_ms("2026-01-01T07:00:00Z").unwrap();
        let (outcome, attention) = code_assist_outcome(429, body, now);
        assert!(attention.is_none());
        let Outcome::RateLimited { retry_after_ms, .. } = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(retry_after_ms, Some(3_600_000));
    }

    #[test]
    fn a_quota_reset_delay_is_read_when_no_instant_is_given() {
        let body = br#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"x","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"RATE_LIMIT_EXCEEDED","metadata":{"quotaResetDelay":"1m2.5s"}}]}}"#;
        let (outcome, _) = code_assist_outcome(429, body, 0);
        assert_eq!(
            outcome,
            Outcome::RateLimited {
                retry_after_ms: Some(62_500),
                scope: QuotaScope::Other,
                quota_id: None
            }
        );
        assert_eq!(parse_delay_ms("250ms"), Some(250));
        assert_eq!(parse_delay_ms("1.500s"), Some(1_500));
        assert_eq!(parse_delay_ms("soon"), None);
        assert_eq!(parse_delay_ms("12"), None);
    }

    #[test]
    fn a_refusal_of_the_account_is_attention_not_a_retry() {
        let body = br#"{"error":{"code":403,"message":"This client is no longer supported for Gemini Code Assist for individuals.","status":"PERMISSION_DENIED"}}"#;
        let (outcome, attention) = code_assist_outcome(403, body, 0);
        assert_eq!(
            attention.as_ref().map(Attention::reason),
            Some("client_unsupported")
        );
        assert!(matches!(outcome, Outcome::KeyInvalid { .. }));
    }

    #[test]
    fn a_401_is_a_stale_token_and_a_bad_request_stays_the_clients() {
        let body = br#"{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}"#;
        assert_eq!(code_assist_outcome(401, body, 0).0, Outcome::Network);
        let bad = br#"{"error":{"code":400,"message":"Invalid JSON payload received.","status":"INVALID_ARGUMENT"}}"#;
        assert_eq!(
            code_assist_outcome(400, bad, 0),
            (Outcome::ClientError { status: 400 }, None)
        );
    }
}
