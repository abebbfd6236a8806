//! Classifies every upstream answer once, into the small [`Outcome`] enum the
//! key pool and the retry loop consume. Reads only a status and a body: it
//! never sees the key, performs no I/O and renders nothing for clients.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which quota a 429 hit, read from `QuotaFailure.violations[].quotaId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaScope {
    PerMinute,
    PerDay,
    Other,
}

/// What one upstream attempt came to. Crosses the `ModelGate` Durable Object
/// boundary as JSON, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    RateLimited {
        /// From `RetryInfo.retryDelay`, when Google sent one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
        scope: QuotaScope,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        quota_id: Option<String>,
    },
    /// The key itself is unusable. `reason` is a short identifier such as
    /// `API_KEY_INVALID` or `CONSUMER_SUSPENDED`, never Google's message,
    /// which can quote the key.
    KeyInvalid {
        reason: String,
    },
    /// The request was at fault; the key is fine.
    ClientError {
        status: u16,
    },
    ServerError {
        status: u16,
    },
    /// The fetch failed before any status arrived. Produced by the edge.
    Network,
    /// The upstream did not answer in time: the edge's abort timer, or a 408.
    Timeout,
}

impl Outcome {
    /// Whether the request may be retried on another key (rate limits, bad keys, 5xx, network). Timeouts
    /// are treated like network failures.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::RateLimited { .. }
            | Self::KeyInvalid { .. }
            | Self::ServerError { .. }
            | Self::Network
            | Self::Timeout => true,
            Self::Ok | Self::ClientError { .. } => false,
        }
    }

    /// A stable `snake_case` name, equal to the serde `kind` tag, for logs and
    /// metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::RateLimited { .. } => "rate_limited",
            Self::KeyInvalid { .. } => "key_invalid",
            Self::ClientError { .. } => "client_error",
            Self::ServerError { .. } => "server_error",
            Self::Network => "network",
            Self::Timeout => "timeout",
        }
    }

    /// The HTTP status the outcome came with, where it names one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::RateLimited { .. } => Some(429),
            Self::ClientError { status } | Self::ServerError { status } => Some(*status),
            Self::Ok | Self::KeyInvalid { .. } | Self::Network | Self::Timeout => None,
        }
    }

    /// A short human summary with no secrets, e.g. `429 per-day quota`, used as
    /// a key's `last_error` and in logs.
    pub fn summary(&self) -> String {
        match self {
            Self::Ok => "ok".to_owned(),
            Self::RateLimited { scope, .. } => match scope {
                QuotaScope::PerMinute => "429 per-minute quota".to_owned(),
                QuotaScope::PerDay => "429 per-day quota".to_owned(),
                QuotaScope::Other => "429 rate limited".to_owned(),
            },
            Self::KeyInvalid { reason } => reason.clone(),
            Self::ClientError { status } => format!("{status} client error"),
            Self::ServerError { status } => format!("{status} server error"),
            Self::Network => "network error".to_owned(),
            Self::Timeout => "timeout".to_owned(),
        }
    }
}

/// Classifies an upstream answer by its HTTP status and (error) body.
///
/// The body may be empty, not JSON, a Google error object, or that object
/// wrapped in an array, as `streamGenerateContent` without `alt=sse` sends it.
pub fn classify(status: u16, body: &[u8]) -> Outcome {
    match status {
        200..=299 => Outcome::Ok,
        400..=499 => classify_4xx(status, body),
        // 5xx, and anything a well-behaved upstream never sends (1xx, 3xx):
        // neither is the client's fault, so another key may do better.
        _ => Outcome::ServerError { status },
    }
}

/// Only some 4xx are the request's fault: 429 and the key-related ones are
/// not, and 408 is the upstream giving up on time.
fn classify_4xx(status: u16, body: &[u8]) -> Outcome {
    match status {
        400 => bad_request(&GoogleError::parse(body)),
        401 => Outcome::KeyInvalid {
            reason: GoogleError::parse(body).key_reason("UNAUTHENTICATED"),
        },
        403 => permission_denied(&GoogleError::parse(body)),
        408 => Outcome::Timeout,
        429 => rate_limited(&GoogleError::parse(body)),
        _ => Outcome::ClientError { status },
    }
}

/// The `message` and `status` of a Google error body, so the edge can pass a
/// client error through in the surface's own shape.
pub fn google_error_message(body: &[u8]) -> Option<(String, Option<String>)> {
    let error = GoogleError::parse(body);
    let message = error.message.filter(|m| !m.trim().is_empty())?;
    Some((message, error.status))
}

/// The Google Cloud project an error body names as its consumer
/// (`ErrorInfo.metadata.consumer` = `projects/<number>`), if any.
pub fn project_of_error(body: &[u8]) -> Option<String> {
    GoogleError::parse(body).project
}

fn rate_limited(error: &GoogleError) -> Outcome {
    let quota_id = error.dominant_quota_id();
    let scope = quota_id.as_deref().map_or(QuotaScope::Other, quota_scope);
    Outcome::RateLimited {
        retry_after_ms: error.retry_delay_ms,
        scope,
        quota_id,
    }
}

fn quota_scope(quota_id: &str) -> QuotaScope {
    if quota_id.contains("PerDay") {
        QuotaScope::PerDay
    } else if quota_id.contains("PerMinute") {
        QuotaScope::PerMinute
    } else {
        QuotaScope::Other
    }
}

/// A 400 is the request's fault unless Google says the key is bad: AI Studio
/// answers an invalid or expired key with 400 `INVALID_ARGUMENT`, not 401.
fn bad_request(error: &GoogleError) -> Outcome {
    let message = error.message.as_deref().unwrap_or_default();
    if message.contains("API key expired") {
        return Outcome::KeyInvalid {
            reason: "API_KEY_EXPIRED".to_owned(),
        };
    }
    let reason = error.reason.as_deref();
    if matches!(reason, Some("API_KEY_INVALID" | "API_KEY_EXPIRED"))
        || message.contains("API key not valid")
    {
        return Outcome::KeyInvalid {
            reason: error.key_reason("API_KEY_INVALID"),
        };
    }
    Outcome::ClientError { status: 400 }
}

/// A 403 is about the key (suspended consumer, API disabled or blocked,
/// unregistered caller) unless Google names a resource the key cannot see.
///
/// A file uploaded with another key or a foreign cached content answers 403
/// "You do not have permission to access the File … or it may not exist",
/// without an `ErrorInfo`. Disabling the key for that would let one client's
/// bad file reference disable every key in turn as the retry loop walks the
/// pool, so that case is the client's error.
fn permission_denied(error: &GoogleError) -> Outcome {
    let message = error.message.as_deref().unwrap_or_default();
    let names_a_resource = message.contains("permission to access")
        || message.contains("or it may not exist")
        || message.contains("(or permission denied)");
    if error.reason.is_none() && names_a_resource {
        return Outcome::ClientError { status: 403 };
    }
    Outcome::KeyInvalid {
        reason: error.key_reason("PERMISSION_DENIED"),
    }
}

/// The parts of Google's `{"error":{...}}` that classification reads.
#[derive(Debug, Default)]
struct GoogleError {
    message: Option<String>,
    status: Option<String>,
    /// `ErrorInfo.reason`, e.g. `API_KEY_INVALID`.
    reason: Option<String>,
    /// `RetryInfo.retryDelay`, in milliseconds.
    retry_delay_ms: Option<u64>,
    /// Every `QuotaFailure.violations[].quotaId`.
    quota_ids: Vec<String>,
    /// The project number of `ErrorInfo.metadata.consumer` (`projects/<n>`).
    project: Option<String>,
}

impl GoogleError {
    /// Never fails: anything unreadable yields an empty error.
    fn parse(body: &[u8]) -> Self {
        let Some(error) = error_object(body) else {
            return Self::default();
        };
        let text = |field: &str| error.get(field).and_then(Value::as_str).map(str::to_owned);
        let mut parsed = Self {
            message: text("message"),
            status: text("status"),
            ..Self::default()
        };
        let details = error.get("details").and_then(Value::as_array);
        for detail in details.into_iter().flatten() {
            parsed.read_detail(detail);
        }
        parsed
    }

    fn read_detail(&mut self, detail: &Value) {
        let kind = detail
            .get("@type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if kind.ends_with("google.rpc.RetryInfo") {
            let delay = detail.get("retryDelay").and_then(Value::as_str);
            self.retry_delay_ms = delay.and_then(parse_duration_ms).or(self.retry_delay_ms);
        } else if kind.ends_with("google.rpc.QuotaFailure") {
            let violations = detail.get("violations").and_then(Value::as_array);
            let ids = violations
                .into_iter()
                .flatten()
                .filter_map(|v| v.get("quotaId").and_then(Value::as_str));
            self.quota_ids.extend(ids.map(str::to_owned));
        } else if kind.ends_with("google.rpc.ErrorInfo") {
            if self.reason.is_none() {
                let reason = detail.get("reason").and_then(Value::as_str);
                self.reason = reason.map(str::to_owned);
            }
            let consumer = detail
                .get("metadata")
                .and_then(|m| m.get("consumer"))
                .and_then(Value::as_str);
            if let Some(project) = consumer.and_then(|c| c.strip_prefix("projects/")) {
                let plain = !project.is_empty()
                    && project.len() <= 100
                    && project
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if plain && self.project.is_none() {
                    self.project = Some(project.to_owned());
                }
            }
        }
    }

    /// The violation that decides how long the key must rest: a per-day quota
    /// outlasts a per-minute one, which outlasts anything else.
    fn dominant_quota_id(&self) -> Option<String> {
        let find = |scope| self.quota_ids.iter().find(|id| quota_scope(id) == scope);
        find(QuotaScope::PerDay)
            .or_else(|| find(QuotaScope::PerMinute))
            .or_else(|| self.quota_ids.first())
            .cloned()
    }

    /// A short identifier for why a key is unusable: `ErrorInfo.reason`, else
    /// the canonical status, else `fallback`. Restricted to identifier
    /// characters and capped, so no message text (which can quote the key)
    /// ever ends up in stored state.
    fn key_reason(&self, fallback: &str) -> String {
        [self.reason.as_deref(), self.status.as_deref()]
            .into_iter()
            .flatten()
            .map(sanitize_identifier)
            .find(|r| !r.is_empty())
            .unwrap_or_else(|| fallback.to_owned())
    }
}

const MAX_REASON_CHARS: usize = 64;

fn sanitize_identifier(raw: &str) -> String {
    raw.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(MAX_REASON_CHARS)
        .collect()
}

/// The `error` object of a Google error body, bare or wrapped in an array.
fn error_object(body: &[u8]) -> Option<serde_json::Map<String, Value>> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let envelope = match value {
        Value::Array(items) => items.into_iter().find(|item| item.get("error").is_some())?,
        other => other,
    };
    let Value::Object(mut envelope) = envelope else {
        return None;
    };
    match envelope.remove("error")? {
        Value::Object(error) => Some(error),
        _ => None,
    }
}

/// Parses a protobuf JSON `Duration` ("38s", "1.500s", "0.5s") into whole
/// milliseconds, rounding up so a retry never comes early.
fn parse_duration_ms(raw: &str) -> Option<u64> {
    let seconds = raw.trim().strip_suffix('s')?;
    let (whole, fraction) = seconds.split_once('.').unwrap_or((seconds, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) || !all_digits(fraction) || fraction.len() > 9 {
        return None;
    }
    let whole_ms = if whole.is_empty() {
        0
    } else {
        whole.parse::<u64>().ok()?.saturating_mul(1_000)
    };
    Some(whole_ms.saturating_add(fraction_ms_ceil(fraction)))
}

/// Up to nine fractional-second digits as milliseconds, rounded up.
fn fraction_ms_ceil(fraction: &str) -> u64 {
    let mut nanos: u64 = 0;
    for (position, digit) in fraction.bytes().enumerate() {
        let place = 10u64.pow(8 - u32::try_from(position).unwrap_or(8));
        nanos += u64::from(digit - b'0') * place;
    }
    nanos.div_ceil(1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PER_DAY_429: &str = r#"{
      "error": {
        "code": 429,
        "message": "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.\n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 50, model: gemini-2.5-pro\nPlease retry in 38.123456s.",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
          {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
              {
                "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                "quotaDimensions": {"location": "global", "model": "gemini-2.5-pro"},
                "quotaValue": "50"
              }
            ]
          },
          {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [{"description": "Learn more about Gemini API quotas", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]
          },
          {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "38s"}
        ]
      }
    }"#;

    const PER_MINUTE_429: &str = r#"{"error":{"code":429,"message":"You exceeded your current quota.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier","quotaDimensions":{"location":"global","model":"gemini-2.0-flash"},"quotaValue":"15"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1.500s"}]}}"#;

    const BARE_429: &str = r#"{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}"#;

    const INVALID_KEY_400: &str = r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com"}},{"@type":"type.googleapis.com/google.rpc.LocalizedMessage","locale":"en-US","message":"API key not valid. Please pass a valid API key."}]}}"#;

    const EXPIRED_KEY_400: &str = r#"{"error":{"code":400,"message":"API key expired. Please renew the API key.","status":"INVALID_ARGUMENT"}}"#;

    const BAD_REQUEST_400: &str = r#"{"error":{"code":400,"message":"* GenerateContentRequest.contents: contents is not specified\n","status":"INVALID_ARGUMENT"}}"#;

    const LOCATION_400: &str = r#"{"error":{"code":400,"message":"User location is not supported for the API use.","status":"FAILED_PRECONDITION"}}"#;

    const UNAUTHENTICATED_401: &str = r#"{"error":{"code":401,"message":"Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.","status":"UNAUTHENTICATED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"ACCESS_TOKEN_TYPE_UNSUPPORTED","metadata":{"service":"generativelanguage.googleapis.com","method":"google.ai.generativelanguage.v1beta.GenerativeService.GenerateContent"}}]}}"#;

    const SUSPENDED_403: &str = r#"{"error":{"code":403,"message":"Permission denied: Consumer 'api_key:AIzaSyABCDEFGHIJKLMNOP1234' has been suspended.","status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"CONSUMER_SUSPENDED","domain":"googleapis.com","metadata":{"consumer":"projects/123456789","service":"generativelanguage.googleapis.com"}}]}}"#;

    const SERVICE_DISABLED_403: &str = r#"{"error":{"code":403,"message":"Generative Language API has not been used in project 123456789 before or it is disabled.","status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"SERVICE_DISABLED","domain":"googleapis.com","metadata":{"consumer":"projects/123456789","service":"generativelanguage.googleapis.com"}}]}}"#;

    const UNREGISTERED_403: &str = r#"{"error":{"code":403,"message":"Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.","status":"PERMISSION_DENIED"}}"#;

    const FOREIGN_FILE_403: &str = r#"{"error":{"code":403,"message":"You do not have permission to access the File abc123xyz or it may not exist.","status":"PERMISSION_DENIED"}}"#;

    const NOT_FOUND_404: &str = r#"{"error":{"code":404,"message":"models/gemini-9-pro is not found for API version v1beta, or is not supported for generateContent. Call ListModels to see the list of available models and their supported methods.","status":"NOT_FOUND"}}"#;

    const INTERNAL_500: &str = r#"{"error":{"code":500,"message":"An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting","status":"INTERNAL"}}"#;

    const OVERLOADED_503: &str = r#"{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}"#;

    fn rate_limited(retry: Option<u64>, scope: QuotaScope, quota_id: Option<&str>) -> Outcome {
        Outcome::RateLimited {
            retry_after_ms: retry,
            scope,
            quota_id: quota_id.map(str::to_owned),
        }
    }

    fn key_invalid(reason: &str) -> Outcome {
        Outcome::KeyInvalid {
            reason: reason.to_owned(),
        }
    }

    #[test]
    fn classify_table_covers_every_outcome_class() {
        let cases: Vec<(u16, &str, Outcome)> = vec![
            (200, r#"{"candidates":[]}"#, Outcome::Ok),
            (204, "", Outcome::Ok),
            (
                429,
                PER_DAY_429,
                rate_limited(
                    Some(38_000),
                    QuotaScope::PerDay,
                    Some("GenerateRequestsPerDayPerProjectPerModel-FreeTier"),
                ),
            ),
            (
                429,
                PER_MINUTE_429,
                rate_limited(
                    Some(1_500),
                    QuotaScope::PerMinute,
                    Some("GenerateRequestsPerMinutePerProjectPerModel-FreeTier"),
                ),
            ),
            (429, BARE_429, rate_limited(None, QuotaScope::Other, None)),
            (429, "", rate_limited(None, QuotaScope::Other, None)),
            (400, INVALID_KEY_400, key_invalid("API_KEY_INVALID")),
            (400, EXPIRED_KEY_400, key_invalid("API_KEY_EXPIRED")),
            (400, BAD_REQUEST_400, Outcome::ClientError { status: 400 }),
            (400, LOCATION_400, Outcome::ClientError { status: 400 }),
            (400, "", Outcome::ClientError { status: 400 }),
            (
                401,
                UNAUTHENTICATED_401,
                key_invalid("ACCESS_TOKEN_TYPE_UNSUPPORTED"),
            ),
            (401, "", key_invalid("UNAUTHENTICATED")),
            (403, SUSPENDED_403, key_invalid("CONSUMER_SUSPENDED")),
            (403, SERVICE_DISABLED_403, key_invalid("SERVICE_DISABLED")),
            (403, UNREGISTERED_403, key_invalid("PERMISSION_DENIED")),
            (
                403,
                "<html>Forbidden</html>",
                key_invalid("PERMISSION_DENIED"),
            ),
            (403, FOREIGN_FILE_403, Outcome::ClientError { status: 403 }),
            (404, NOT_FOUND_404, Outcome::ClientError { status: 404 }),
            (
                413,
                "Request Entity Too Large",
                Outcome::ClientError { status: 413 },
            ),
            (408, "", Outcome::Timeout),
            (500, INTERNAL_500, Outcome::ServerError { status: 500 }),
            (503, OVERLOADED_503, Outcome::ServerError { status: 503 }),
            (504, "", Outcome::ServerError { status: 504 }),
            (302, "", Outcome::ServerError { status: 302 }),
        ];
        for (status, body, expected) in cases {
            assert_eq!(
                classify(status, body.as_bytes()),
                expected,
                "status {status}, body {body}"
            );
        }
    }

    #[test]
    fn array_wrapped_error_from_stream_without_sse_is_read() {
        let body = format!("[{PER_MINUTE_429}]");
        assert_eq!(
            classify(429, body.as_bytes()),
            rate_limited(
                Some(1_500),
                QuotaScope::PerMinute,
                Some("GenerateRequestsPerMinutePerProjectPerModel-FreeTier"),
            )
        );
        let body = format!("[{INVALID_KEY_400}]");
        assert_eq!(
            classify(400, body.as_bytes()),
            key_invalid("API_KEY_INVALID")
        );
    }

    #[test]
    fn per_day_violation_wins_over_per_minute() {
        let body = json!({"error": {"code": 429, "details": [{
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
                {"quotaId": "GenerateContentInputTokensPerModelPerMinute-FreeTier"},
                {"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}
            ]
        }]}});
        let Outcome::RateLimited {
            scope, quota_id, ..
        } = classify(429, body.to_string().as_bytes())
        else {
            panic!("not rate limited");
        };
        assert_eq!(scope, QuotaScope::PerDay);
        assert_eq!(
            quota_id.as_deref(),
            Some("GenerateRequestsPerDayPerProjectPerModel-FreeTier")
        );
    }

    #[test]
    fn key_invalid_reason_never_quotes_the_key() {
        let Outcome::KeyInvalid { reason } = classify(403, SUSPENDED_403.as_bytes()) else {
            panic!("not key invalid");
        };
        assert!(!reason.contains("AIza"));
        let body = json!({"error": {"status": "PERMISSION DENIED: AIza-key!", "details": [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "x".repeat(500)}
        ]}});
        let Outcome::KeyInvalid { reason } = classify(403, body.to_string().as_bytes()) else {
            panic!("not key invalid");
        };
        assert_eq!(reason.len(), MAX_REASON_CHARS);
    }

    #[test]
    fn retry_delay_durations_parse_to_ms() {
        assert_eq!(parse_duration_ms("38s"), Some(38_000));
        assert_eq!(parse_duration_ms("1.500s"), Some(1_500));
        assert_eq!(parse_duration_ms("0.5s"), Some(500));
        assert_eq!(parse_duration_ms("38.123456s"), Some(38_124));
        assert_eq!(parse_duration_ms("0.000000001s"), Some(1));
        assert_eq!(parse_duration_ms("0s"), Some(0));
        assert_eq!(parse_duration_ms(".5s"), Some(500));
        assert_eq!(parse_duration_ms("10921s"), Some(10_921_000));
        for bad in [
            "",
            "s",
            ".s",
            "38",
            "-1s",
            "1.2.3s",
            "abc",
            "1.0000000001s",
            "1e3s",
        ] {
            assert_eq!(parse_duration_ms(bad), None, "{bad}");
        }
        assert_eq!(parse_duration_ms("99999999999999999999s"), None);
        assert_eq!(
            parse_duration_ms("18446744073709551615s"),
            Some(u64::MAX),
            "saturates rather than overflowing"
        );
    }

    #[test]
    fn unreadable_bodies_classify_by_status_alone() {
        for body in [
            "",
            "null",
            "[]",
            "[1,2]",
            "{\"error\":\"x\"}",
            "{",
            "\u{feff}",
        ] {
            assert_eq!(
                classify(429, body.as_bytes()),
                rate_limited(None, QuotaScope::Other, None)
            );
            assert_eq!(
                classify(400, body.as_bytes()),
                Outcome::ClientError { status: 400 }
            );
            assert_eq!(google_error_message(body.as_bytes()), None);
        }
    }

    #[test]
    fn google_error_message_reads_message_and_status() {
        assert_eq!(
            google_error_message(NOT_FOUND_404.as_bytes()),
            Some((
                "models/gemini-9-pro is not found for API version v1beta, or is not supported for generateContent. Call ListModels to see the list of available models and their supported methods.".to_owned(),
                Some("NOT_FOUND".to_owned())
            ))
        );
        let wrapped = format!("[{BAD_REQUEST_400}]");
        let (message, status) = google_error_message(wrapped.as_bytes()).unwrap();
        assert!(message.contains("contents is not specified"));
        assert_eq!(status.as_deref(), Some("INVALID_ARGUMENT"));
        assert_eq!(
            google_error_message(br#"{"error":{"message":"m"}}"#),
            Some(("m".to_owned(), None))
        );
    }

    #[test]
    fn only_failures_of_the_upstream_or_key_are_retryable() {
        assert!(!Outcome::Ok.is_retryable());
        assert!(!Outcome::ClientError { status: 400 }.is_retryable());
        assert!(rate_limited(None, QuotaScope::Other, None).is_retryable());
        assert!(key_invalid("API_KEY_INVALID").is_retryable());
        assert!(Outcome::ServerError { status: 503 }.is_retryable());
        assert!(Outcome::Network.is_retryable());
        assert!(Outcome::Timeout.is_retryable());
    }

    #[test]
    fn outcome_serializes_with_kind_tag_and_round_trips() {
        let outcome = rate_limited(Some(38_000), QuotaScope::PerDay, Some("q"));
        let value = serde_json::to_value(&outcome).unwrap();
        assert_eq!(
            value,
            json!({"kind": "rate_limited", "retry_after_ms": 38_000, "scope": "per_day", "quota_id": "q"})
        );
        let all = vec![
            Outcome::Ok,
            outcome,
            rate_limited(None, QuotaScope::Other, None),
            key_invalid("API_KEY_INVALID"),
            Outcome::ClientError { status: 404 },
            Outcome::ServerError { status: 500 },
            Outcome::Network,
            Outcome::Timeout,
        ];
        for outcome in all {
            let value = serde_json::to_value(&outcome).unwrap();
            assert_eq!(value["kind"], outcome.label());
            let back: Outcome = serde_json::from_value(value).unwrap();
            assert_eq!(back, outcome);
        }
        assert_eq!(
            serde_json::to_value(rate_limited(None, QuotaScope::PerMinute, None)).unwrap(),
            json!({"kind": "rate_limited", "scope": "per_minute"})
        );
    }

    #[test]
    fn summaries_are_short_labels() {
        assert_eq!(
            rate_limited(None, QuotaScope::PerDay, None).summary(),
            "429 per-day quota"
        );
        assert_eq!(key_invalid("API_KEY_INVALID").summary(), "API_KEY_INVALID");
        assert_eq!(
            Outcome::ServerError { status: 503 }.summary(),
            "503 server error"
        );
    }

    #[test]
    fn an_error_names_its_project_through_error_info() {
        let body = br#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"quota","details":[
            {"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"RATE_LIMIT_EXCEEDED",
             "domain":"googleapis.com","metadata":{"consumer":"projects/123456","service":"generativelanguage.googleapis.com"}}]}}"#;
        assert_eq!(project_of_error(body).as_deref(), Some("123456"));
        let odd = br#"{"error":{"details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","metadata":{"consumer":"projects/a b"}}]}}"#;
        assert_eq!(project_of_error(odd), None);
        assert_eq!(project_of_error(b"not json"), None);
    }
}
