//! User keys as the gateway serves them: the stored record and the limits its
//! ledger enforces, the admin's edits (validated field by field, so an error
//! names its field), and what each admission refusal tells the client. The
//! storage rows and the ledger calls are the edge's; no I/O and no clock here.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::GatewayError;
use super::quota::{Denial, UserLimits};

/// A user as D1 stores it (never the secret, only its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserRecord {
    pub id: String,
    pub name: String,
    pub note: String,
    #[serde(skip)]
    pub key_hash: String,
    #[serde(rename = "key")]
    pub key_hint: String,
    pub enabled: bool,
    pub expires_at: Option<u64>,
    pub allowed_models: Vec<String>,
    pub credit_quota: Option<u64>,
    pub rpm: Option<u32>,
    pub rpd: Option<u32>,
    pub tpm: Option<u64>,
    pub max_concurrency: Option<u32>,
    pub credits_used: u64,
    pub created_at: u64,
    pub updated_at: u64,
}

impl UserRecord {
    /// A new, enabled user with no limits, before the creating edit applies.
    pub fn new(id: String, key_hash: String, key_hint: String, now_ms: u64) -> Self {
        Self {
            id,
            name: String::new(),
            note: String::new(),
            key_hash,
            key_hint,
            enabled: true,
            expires_at: None,
            allowed_models: Vec::new(),
            credit_quota: None,
            rpm: None,
            rpd: None,
            tpm: None,
            max_concurrency: None,
            credits_used: 0,
            created_at: now_ms,
            updated_at: now_ms,
        }
    }

    /// What the ledger enforces; `updated_at` orders versions.
    pub fn limits(&self) -> UserLimits {
        UserLimits {
            revision: self.updated_at,
            key_hash: self.key_hash.clone(),
            enabled: self.enabled,
            deleted: false,
            expires_at: self.expires_at,
            allowed_models: self.allowed_models.clone(),
            credit_quota: self.credit_quota,
            rpm: self.rpm,
            rpd: self.rpd,
            tpm: self.tpm,
            max_concurrency: self.max_concurrency,
        }
    }

    /// Why this record refuses a request before its ledger is asked: the
    /// ledger has the final word, this only spares it the obvious cases.
    pub fn refusal(&self, now_ms: u64) -> Option<GatewayError> {
        if !self.enabled {
            return Some(denial_error(Denial::Disabled, None));
        }
        if self.expires_at.is_some_and(|at| at <= now_ms) {
            return Some(denial_error(Denial::Expired, None));
        }
        None
    }
}

/// A revision strictly newer than the last, even within one millisecond.
pub fn next_revision(previous: u64, now_ms: u64) -> u64 {
    now_ms.max(previous + 1)
}

/// Totals over the hourly rollups.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageTotals {
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub reasoning_tokens: u64,
    pub credits: u64,
}

impl UsageTotals {
    pub fn add(&mut self, other: &Self) {
        self.requests += other.requests;
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.reasoning_tokens += other.reasoning_tokens;
        self.credits += other.credits;
    }
}

/// An admin's edit of a user: the fields to change. A field that is `None`
/// is kept; `Some(None)` (from `null`) clears a limit; `Some(Some(v))` sets it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct UserEdit {
    pub name: Option<String>,
    pub note: Option<String>,
    pub enabled: Option<bool>,
    pub expires_at: Option<Option<u64>>,
    pub allowed_models: Option<Vec<String>>,
    pub credit_quota: Option<Option<u64>>,
    pub rpm: Option<Option<u64>>,
    pub rpd: Option<Option<u64>>,
    pub tpm: Option<Option<u64>>,
    pub max_concurrency: Option<Option<u64>>,
}

/// Limits above 2^53 would not survive D1's JS numbers.
const MAX_LIMIT: u64 = 1 << 53;
const MAX_NAME_CHARS: usize = 200;
const MAX_NOTE_CHARS: usize = 2000;
const MAX_GLOBS: usize = 100;
const MAX_GLOB_LEN: usize = 200;

impl UserEdit {
    /// Reads an edit from a JSON body, checking each field so an error names it. A creating
    /// edit must carry a `name`.
    pub fn parse(body: &Value, creating: bool) -> Result<Self, GatewayError> {
        let Value::Object(fields) = body else {
            return Err(GatewayError::invalid("The body must be a JSON object."));
        };
        if creating && !fields.contains_key("name") {
            return Err(GatewayError::invalid_param("`name` is required.", "name"));
        }
        let mut edit = Self::default();
        for (name, value) in fields {
            let bad =
                |why: &str| GatewayError::invalid_param(format!("`{name}` {why}."), name.clone());
            let limit = |value: &Value| -> Result<Option<u64>, GatewayError> {
                match value {
                    Value::Null => Ok(None),
                    v => v
                        .as_u64()
                        .filter(|n| *n <= MAX_LIMIT)
                        .map(Some)
                        .ok_or_else(|| bad("must be a non-negative integer or null")),
                }
            };
            match name.as_str() {
                "name" => {
                    let text = value.as_str().map(str::trim).unwrap_or_default();
                    if text.is_empty() || text.chars().count() > MAX_NAME_CHARS {
                        return Err(bad("must be a non-empty string of at most 200 characters"));
                    }
                    edit.name = Some(text.to_owned());
                }
                "note" => {
                    let text = match value {
                        Value::Null => "",
                        Value::String(s) => s.as_str(),
                        _ => return Err(bad("must be a string")),
                    };
                    if text.chars().count() > MAX_NOTE_CHARS {
                        return Err(bad("must be at most 2000 characters"));
                    }
                    edit.note = Some(text.to_owned());
                }
                "enabled" => {
                    edit.enabled = Some(value.as_bool().ok_or_else(|| bad("must be a boolean"))?);
                }
                "expires_at" => edit.expires_at = Some(limit(value)?),
                "allowed_models" => {
                    let list = match value {
                        Value::Null => Vec::new(),
                        Value::Array(items) => items
                            .iter()
                            .map(|m| {
                                m.as_str()
                                    .map(str::trim)
                                    .filter(|m| !m.is_empty() && m.len() <= MAX_GLOB_LEN)
                                    .map(str::to_owned)
                            })
                            .collect::<Option<Vec<_>>>()
                            .ok_or_else(|| bad("must be a list of non-empty model globs"))?,
                        _ => return Err(bad("must be a list of model globs")),
                    };
                    if list.len() > MAX_GLOBS {
                        return Err(bad("may hold at most 100 globs"));
                    }
                    edit.allowed_models = Some(list);
                }
                "credit_quota" => edit.credit_quota = Some(limit(value)?),
                "rpm" => edit.rpm = Some(limit(value)?),
                "rpd" => edit.rpd = Some(limit(value)?),
                "tpm" => edit.tpm = Some(limit(value)?),
                "max_concurrency" => edit.max_concurrency = Some(limit(value)?),
                _ => return Err(bad("is not a user field")),
            }
        }
        Ok(edit)
    }

    pub fn apply(self, user: &mut UserRecord) {
        let small = |v: Option<u64>| v.map(|v| u32::try_from(v).unwrap_or(u32::MAX));
        if let Some(v) = self.name {
            user.name = v;
        }
        if let Some(v) = self.note {
            user.note = v;
        }
        if let Some(v) = self.enabled {
            user.enabled = v;
        }
        if let Some(v) = self.expires_at {
            user.expires_at = v;
        }
        if let Some(v) = self.allowed_models {
            user.allowed_models = v;
        }
        if let Some(v) = self.credit_quota {
            user.credit_quota = v;
        }
        if let Some(v) = self.rpm {
            user.rpm = small(v);
        }
        if let Some(v) = self.rpd {
            user.rpd = small(v);
        }
        if let Some(v) = self.tpm {
            user.tpm = v;
        }
        if let Some(v) = self.max_concurrency {
            user.max_concurrency = small(v);
        }
    }
}

/// A ledger refusal in client terms: the status, `OpenAI`'s machine-readable
/// `code`, and a message.
pub fn denial_error(denial: Denial, retry_after_ms: Option<u64>) -> GatewayError {
    let (status, code, message) = match denial {
        Denial::InvalidKey => (401, "invalid_api_key", "Invalid API key."),
        Denial::Disabled => (403, "key_disabled", "This API key is disabled."),
        Denial::Expired => (403, "key_expired", "This API key has expired."),
        Denial::ModelNotAllowed => (
            403,
            "model_not_allowed",
            "This API key may not use this model.",
        ),
        Denial::InsufficientQuota => (
            403,
            "insufficient_quota",
            "You exceeded your current quota: this key's credit cannot cover the request.",
        ),
        Denial::RequestsPerMinute => (
            429,
            "rate_limit_exceeded",
            "Rate limit reached for requests per minute.",
        ),
        Denial::RequestsPerDay => (
            429,
            "rate_limit_exceeded",
            "Rate limit reached for requests per day.",
        ),
        Denial::TokensPerMinute => (
            429,
            "rate_limit_exceeded",
            "Rate limit reached for tokens per minute.",
        ),
        Denial::Concurrency => (
            429,
            "rate_limit_exceeded",
            "Too many concurrent requests for this key.",
        ),
    };
    GatewayError::Denied {
        status,
        code,
        message: message.to_owned(),
        retry_after_secs: retry_after_ms.map(|ms| ms.div_ceil(1000).max(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> UserRecord {
        UserRecord::new("u_1".into(), "h".into(), "sk-…abcd".into(), 1_000)
    }

    #[test]
    fn every_denial_has_its_status_type_and_code() {
        let table = [
            (
                Denial::InvalidKey,
                401,
                "authentication_error",
                "invalid_api_key",
            ),
            (Denial::Disabled, 403, "permission_error", "key_disabled"),
            (Denial::Expired, 403, "permission_error", "key_expired"),
            (
                Denial::ModelNotAllowed,
                403,
                "permission_error",
                "model_not_allowed",
            ),
            (
                Denial::InsufficientQuota,
                403,
                "insufficient_quota",
                "insufficient_quota",
            ),
            (
                Denial::RequestsPerMinute,
                429,
                "rate_limit_error",
                "rate_limit_exceeded",
            ),
            (
                Denial::RequestsPerDay,
                429,
                "rate_limit_error",
                "rate_limit_exceeded",
            ),
            (
                Denial::TokensPerMinute,
                429,
                "rate_limit_error",
                "rate_limit_exceeded",
            ),
            (
                Denial::Concurrency,
                429,
                "rate_limit_error",
                "rate_limit_exceeded",
            ),
        ];
        for (denial, status, kind, code) in table {
            let err = denial_error(denial, Some(1_200));
            assert_eq!(err.status(), status, "{denial:?}");
            assert_eq!(err.openai_type(), kind, "{denial:?}");
            assert_eq!(err.openai_code(), Some(code), "{denial:?}");
            assert_eq!(err.retry_after_secs(), Some(2), "rounded up: {denial:?}");
        }
        assert_eq!(
            denial_error(Denial::RequestsPerMinute, Some(10)).retry_after_secs(),
            Some(1)
        );
        assert_eq!(
            denial_error(Denial::Disabled, None).retry_after_secs(),
            None
        );
    }

    #[test]
    fn an_edit_names_the_field_it_refuses() {
        for (body, field) in [
            (json!({"name": ""}), "name"),
            (json!({"name": "x".repeat(201)}), "name"),
            (json!({"note": 3}), "note"),
            (json!({"note": "x".repeat(2001)}), "note"),
            (json!({"enabled": "yes"}), "enabled"),
            (json!({"rpm": -1}), "rpm"),
            (json!({"rpd": 1.5}), "rpd"),
            (json!({"tpm": "10"}), "tpm"),
            (
                json!({"credit_quota": 9_007_199_254_740_993_u64}),
                "credit_quota",
            ),
            (json!({"expires_at": true}), "expires_at"),
            (json!({"max_concurrency": {}}), "max_concurrency"),
            (json!({"allowed_models": "gemini-*"}), "allowed_models"),
            (json!({"allowed_models": ["", "x"]}), "allowed_models"),
            (json!({"allowed_models": vec!["m"; 101]}), "allowed_models"),
            (json!({"shoe_size": 44}), "shoe_size"),
        ] {
            let err = UserEdit::parse(&body, false).unwrap_err();
            assert_eq!(err.status(), 400, "{body}");
            assert_eq!(err.openai_param(), Some(field), "{body}");
        }
        assert_eq!(
            UserEdit::parse(&json!([1]), false).unwrap_err().status(),
            400
        );
        let missing = UserEdit::parse(&json!({"rpm": 3}), true).unwrap_err();
        assert_eq!(missing.openai_param(), Some("name"));
    }

    #[test]
    fn an_edit_sets_clears_and_keeps() {
        let mut u = user();
        u.rpm = Some(5);
        u.note = "keep me".into();
        let edit = UserEdit::parse(
            &json!({"name": "  alice  ", "rpm": null, "rpd": 10_000_000_000_u64, "tpm": 7,
                    "allowed_models": ["gemini-2.5-*"], "enabled": false, "expires_at": 5}),
            true,
        )
        .unwrap();
        edit.apply(&mut u);
        assert_eq!(u.name, "alice");
        assert_eq!(u.note, "keep me", "absent fields are kept");
        assert_eq!(u.rpm, None, "null clears");
        assert_eq!(u.rpd, Some(u32::MAX), "large limits saturate");
        assert_eq!(u.tpm, Some(7));
        assert_eq!(u.allowed_models, ["gemini-2.5-*"]);
        assert!(!u.enabled);
        assert_eq!(u.expires_at, Some(5));
        UserEdit::parse(&json!({"allowed_models": null, "note": null}), false)
            .unwrap()
            .apply(&mut u);
        assert!(u.allowed_models.is_empty() && u.note.is_empty());
    }

    #[test]
    fn a_record_refuses_what_it_already_knows() {
        let mut u = user();
        assert_eq!(u.refusal(5_000), None);
        u.expires_at = Some(5_000);
        assert_eq!(u.refusal(5_000).unwrap().openai_code(), Some("key_expired"));
        u.enabled = false;
        assert_eq!(u.refusal(0).unwrap().openai_code(), Some("key_disabled"));
    }

    #[test]
    fn revisions_always_move_forward() {
        assert_eq!(next_revision(10, 5), 11);
        assert_eq!(next_revision(10, 50), 50);
        assert_eq!(next_revision(50, 50), 51);
    }

    #[test]
    fn the_limits_carry_the_record() {
        let mut u = user();
        u.updated_at = 42;
        u.rpm = Some(3);
        let limits = u.limits();
        assert_eq!(
            (limits.revision, limits.rpm, limits.deleted),
            (42, Some(3), false)
        );
        assert_eq!(
            serde_json::to_value(&u).unwrap()["key"],
            "sk-…abcd",
            "listed by hint, never by hash"
        );
        assert!(serde_json::to_value(&u).unwrap().get("key_hash").is_none());
    }
}
