//! Runtime settings (stored in D1 as JSON, edited from the admin page), the
//! environment variables users and tests rely on, and the parsers for the secret
//! lists. Reads nothing itself: the edge passes in stored JSON and an env
//! lookup. Holds no secrets beyond what the caller hands to the list parsers.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::accounts::routing::Routing;
use super::catalog::Catalog;
use super::compat::Compat;
use super::error::GatewayError;
use super::images::ChatImageOutput;
use super::keypool::PoolPolicy;
use super::limits::{self, ModelLimit};
use super::quota::{ChargingMode, DayZone, ModelCost};

/// Env var names. Tests, scripts and deployments rely on them: keep them stable.
pub const GEMINI_API_BASE: &str = "GEMINI_API_BASE";
pub const CODE_ASSIST_API_BASE: &str = "CODE_ASSIST_API_BASE";
pub const GOOGLE_OAUTH_TOKEN_URL: &str = "GOOGLE_OAUTH_TOKEN_URL";
pub const GOOGLE_OAUTH_AUTH_URL: &str = "GOOGLE_OAUTH_AUTH_URL";
pub const GOOGLE_USERINFO_URL: &str = "GOOGLE_USERINFO_URL";
pub const GEMINI_API_KEYS: &str = "GEMINI_API_KEYS";
pub const ACCESS_TOKENS: &str = "ACCESS_TOKENS";
/// `host:port` authorities an `image_url` may point at although they are private or loopback
/// (the operator's own services; the test mock). Separated by commas or whitespace.
pub const IMAGE_FETCH_ALLOW_PRIVATE: &str = "IMAGE_FETCH_ALLOW_PRIVATE";

pub const DEFAULT_GEMINI_API_BASE: &str = "https://generativelanguage.googleapis.com";
pub const DEFAULT_CODE_ASSIST_API_BASE: &str = "https://cloudcode-pa.googleapis.com";
pub const DEFAULT_GOOGLE_OAUTH_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
pub const DEFAULT_GOOGLE_OAUTH_AUTH_URL: &str = "https://accounts.google.com/o/oauth2/v2/auth";
pub const DEFAULT_GOOGLE_USERINFO_URL: &str = "https://www.googleapis.com/oauth2/v2/userinfo";

const KIB: u64 = 1_024;
const MIB: u64 = 1_024 * KIB;
const DAY_MS: u64 = 86_400_000;

/// Global runtime settings. Every field has a documented default, so a
/// partial (or older) stored JSON still loads; unknown stored fields are
/// ignored on load, so a rollback does not break on a newer row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Extra upstream attempts on other keys after a retryable failure (3).
    pub max_retries: u32,
    /// The key-pool knobs (strategy, cooldowns, circuit breaker), stored
    /// flat beside the other settings.
    #[serde(flatten)]
    pub pool: PoolPolicy,
    /// Abort an upstream fetch after this long (120 s).
    pub upstream_timeout_ms: u64,
    /// Larger request bodies get 413 (20 MiB).
    pub max_body_bytes: u64,
    /// How long the upstream model list stays cached (600 s).
    pub models_cache_ttl_secs: u64,
    /// Request-log rows older than this are deleted by cron (30 days).
    pub log_retention_days: u32,
    /// Return thoughts as `reasoning_content` by default (false).
    pub include_thoughts: bool,
    /// Largest `image_url` the worker fetches, per image (10 MiB).
    pub image_fetch_max_bytes: u64,
    /// Deadline for fetching one `image_url`, connect to last byte (10 s).
    pub image_fetch_timeout_ms: u64,
    /// How long a generated image's URL (`response_format: url`) serves it (3600 s; 1–604800).
    pub image_url_ttl_secs: u64,
    /// How chat completions return an image model's images: Markdown data URLs in `content`
    /// (default) or `image_url` parts in the message's `images`.
    pub chat_image_output: ChatImageOutput,
    /// How user keys are charged: a cost per request (default) or per token.
    pub charging_mode: ChargingMode,
    /// Per-model costs, first matching glob wins; unmatched models cost 10 (Pro-class),
    /// 2 (Flash-class) or 1 credit per request, and 1 credit per token.
    pub model_costs: Vec<ModelCost>,
    /// Where a user's day (`rpd`) starts: `UTC`, `+08:00`, `Asia/Shanghai`, … (UTC).
    pub quota_timezone: String,
    /// Output tokens reserved in token mode when a request sets no `max_tokens` (8192).
    pub default_max_output_tokens: u64,
    /// Hourly usage rollups older than this are deleted by cron (400 days).
    pub rollup_retention_days: u32,
    /// How long a stored Responses API response can be retrieved and continued
    /// (`previous_response_id`) before cron deletes it (30 days; 1–3650).
    pub responses_ttl_days: u32,
    /// Model-name suffixes listed in `/v1/models` after each model that thinks, e.g.
    /// `["-search", "-nothinking"]` (none by default; suffixes work whether listed or not).
    pub model_variants: Vec<String>,
    /// How long an admin console session lasts, in hours (12; 1–720). A change applies to
    /// sessions started after it.
    pub admin_session_hours: u32,
    /// Wrong admin passwords, from all clients together, per 15 minutes before every admin
    /// login waits (50; 0 turns the global limit off). Each client also has its own limit of 5.
    pub admin_login_global_limit: u32,
    /// Aliases, disabled models, thinking defaults and the default model, stored flat.
    #[serde(flatten)]
    pub catalog: Catalog,
    /// Which kind of upstream (API keys, Gemini CLI accounts) serves which model, and the
    /// models Code Assist serves, stored flat.
    #[serde(flatten)]
    pub routing: Routing,
    /// Per-model concurrency caps and per-key budgets, first matching glob wins (none).
    /// A model without a row is scheduled inside each isolate, with no Durable Object
    /// call before its upstream fetch.
    pub model_limits: Vec<ModelLimit>,
    /// How often (at most) an isolate refreshes a model's key health from its gate in
    /// the background (2000 ms; 100–60000).
    pub health_refresh_ms: u64,
    /// Keys disabled as invalid for longer than this many days leave the pool for the
    /// archive, where the console can restore or purge them (3; 0 never archives).
    pub archive_invalid_after_days: u32,
    /// Fake streaming, anti-truncation and the compatibility switches, stored flat.
    #[serde(flatten)]
    pub compat: Compat,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_retries: 3,
            pool: PoolPolicy::default(),
            upstream_timeout_ms: 120_000,
            max_body_bytes: 20 * MIB,
            models_cache_ttl_secs: 600,
            log_retention_days: 30,
            include_thoughts: false,
            image_fetch_max_bytes: 10 * MIB,
            image_fetch_timeout_ms: 10_000,
            image_url_ttl_secs: 3_600,
            chat_image_output: ChatImageOutput::Markdown,
            charging_mode: ChargingMode::Request,
            model_costs: Vec::new(),
            quota_timezone: "UTC".to_owned(),
            default_max_output_tokens: 8_192,
            rollup_retention_days: 400,
            responses_ttl_days: 30,
            model_variants: Vec::new(),
            admin_session_hours: 12,
            admin_login_global_limit: 50,
            catalog: Catalog::default(),
            routing: Routing::default(),
            model_limits: Vec::new(),
            health_refresh_ms: 2_000,
            archive_invalid_after_days: 3,
            compat: Compat::default(),
        }
    }
}

impl Settings {
    /// Checks every field against its allowed range, naming the first bad one.
    pub fn validate(&self) -> Result<(), GatewayError> {
        check("max_retries", u64::from(self.max_retries), 0, 10)?;
        let pool = &self.pool;
        check(
            "server_error_demote_ms",
            pool.server_error_demote_ms,
            0,
            DAY_MS,
        )?;
        check(
            "circuit_breaker_failures",
            u64::from(pool.circuit_breaker_failures),
            0,
            1_000,
        )?;
        check("circuit_open_ms", pool.circuit_open_ms, 0, DAY_MS)?;
        check(
            "rate_limit_default_cooldown_ms",
            pool.rate_limit_default_cooldown_ms,
            0,
            DAY_MS,
        )?;
        check("network_demote_ms", pool.network_demote_ms, 0, DAY_MS)?;
        check(
            "upstream_timeout_ms",
            self.upstream_timeout_ms,
            1_000,
            600_000,
        )?;
        check("max_body_bytes", self.max_body_bytes, KIB, 100 * MIB)?;
        check(
            "models_cache_ttl_secs",
            self.models_cache_ttl_secs,
            0,
            86_400,
        )?;
        check(
            "image_fetch_max_bytes",
            self.image_fetch_max_bytes,
            KIB,
            20 * MIB,
        )?;
        check(
            "image_fetch_timeout_ms",
            self.image_fetch_timeout_ms,
            500,
            60_000,
        )?;
        check("image_url_ttl_secs", self.image_url_ttl_secs, 1, 7 * 86_400)?;
        check(
            "default_max_output_tokens",
            self.default_max_output_tokens,
            1,
            1_000_000,
        )?;
        check(
            "rollup_retention_days",
            u64::from(self.rollup_retention_days),
            1,
            3_650,
        )?;
        check(
            "responses_ttl_days",
            u64::from(self.responses_ttl_days),
            1,
            3_650,
        )?;
        check(
            "admin_session_hours",
            u64::from(self.admin_session_hours),
            1,
            720,
        )?;
        check(
            "admin_login_global_limit",
            u64::from(self.admin_login_global_limit),
            0,
            100_000,
        )?;
        check("health_refresh_ms", self.health_refresh_ms, 100, 60_000)?;
        check(
            "archive_invalid_after_days",
            u64::from(self.archive_invalid_after_days),
            0,
            3_650,
        )?;
        limits::validate(&self.model_limits)?;
        self.validate_lists()?;
        self.catalog.validate()?;
        self.routing.validate()?;
        self.compat.validate()?;
        check(
            "log_retention_days",
            u64::from(self.log_retention_days),
            1,
            3_650,
        )?;
        Ok(())
    }

    /// The settings that are lists or names: the quota day zone, model variants and costs.
    fn validate_lists(&self) -> Result<(), GatewayError> {
        DayZone::parse(&self.quota_timezone).map_err(|why| {
            GatewayError::invalid_param(format!("`quota_timezone`: {why}"), "quota_timezone")
        })?;
        if self.model_variants.len() > 20 {
            return Err(GatewayError::invalid_param(
                "`model_variants` may hold at most 20 suffixes.",
                "model_variants",
            ));
        }
        if let Some(bad) = self
            .model_variants
            .iter()
            .find(|v| !crate::domain::translate::models::is_variant_suffix(v))
        {
            return Err(GatewayError::invalid_param(
                format!(
                    "`model_variants`: `{bad}` is not a combination of -search, -code, -urlcontext and one of -nothinking, -non-thinking, -maxthinking, -thinking-<budget>, -max, -high, -medium, -low, -minimal."
                ),
                "model_variants",
            ));
        }
        if self.model_costs.len() > 200 {
            return Err(GatewayError::invalid_param(
                "`model_costs` may hold at most 200 rows.",
                "model_costs",
            ));
        }
        if let Some(row) = self
            .model_costs
            .iter()
            .find(|row| row.pattern.trim().is_empty() || row.pattern.len() > 200)
        {
            return Err(GatewayError::invalid_param(
                format!(
                    "`model_costs` patterns must be non-empty globs of at most 200 characters, got `{}`.",
                    row.pattern
                ),
                "model_costs",
            ));
        }
        Ok(())
    }

    /// Applies an admin edit: a JSON object of the fields to change, where
    /// `null` resets a field to its default. Unknown fields, wrong types and
    /// out-of-range values are rejected with the field named, and then
    /// `self` is left unchanged.
    pub fn apply_patch(&mut self, patch: &Value) -> Result<(), GatewayError> {
        let Value::Object(patch) = patch else {
            return Err(GatewayError::invalid(
                "Settings patch must be a JSON object.",
            ));
        };
        let defaults = to_object(&Self::default())?;
        let mut merged = to_object(self)?;
        for (name, value) in patch {
            let name = &canonical_name(name);
            let Some(default) = defaults.get(name) else {
                return Err(GatewayError::invalid_param(
                    format!("Unknown setting `{name}`."),
                    name.clone(),
                ));
            };
            let value = if value.is_null() { default } else { value };
            if nests_arrays(value) {
                // serde would fill a row's struct from an array, by position.
                return Err(GatewayError::invalid_param(
                    format!("Invalid value for `{name}`: each row is a JSON object, not an array."),
                    name.clone(),
                ));
            }
            check_type(name, value)?;
            merged.insert(name.clone(), value.clone());
        }
        let next: Self = serde_json::from_value(Value::Object(merged))
            .map_err(|e| GatewayError::invalid(format!("Invalid settings: {e}")))?;
        next.validate()?;
        *self = next;
        Ok(())
    }

    /// The key-pool knobs of these settings.
    pub fn policy(&self) -> PoolPolicy {
        self.pool.clone()
    }
}

/// Settings renamed since they were first published, old name → new name. A patch (or a
/// stored document, through serde aliases) that uses the old name still works.
const RENAMED: &[(&str, &str)] = &[
    ("server_error_cooldown_ms", "server_error_demote_ms"),
    ("network_cooldown_ms", "network_demote_ms"),
];

fn canonical_name(name: &str) -> String {
    RENAMED
        .iter()
        .find(|(old, _)| *old == name)
        .map_or(name, |(_, new)| new)
        .to_owned()
}

/// A whole-number setting within `min..=max`, or a 400 naming it.
pub(super) fn check(name: &str, value: u64, min: u64, max: u64) -> Result<(), GatewayError> {
    if (min..=max).contains(&value) {
        return Ok(());
    }
    Err(GatewayError::invalid_param(
        format!("`{name}` must be between {min} and {max}, got {value}."),
        name,
    ))
}

/// Whether an array sits directly inside an array anywhere in `value`. No setting takes a
/// list of lists, so such a value is a row written as an array.
fn nests_arrays(value: &Value) -> bool {
    match value {
        Value::Array(items) => items
            .iter()
            .any(|item| item.is_array() || nests_arrays(item)),
        Value::Object(map) => map.values().any(nests_arrays),
        _ => false,
    }
}

/// Deserializes `{name: value}` alone, so a type error names its field
/// (`serde_json`'s own message gives only a line and column).
fn check_type(name: &str, value: &Value) -> Result<(), GatewayError> {
    let mut single = Map::new();
    single.insert(name.to_owned(), value.clone());
    serde_json::from_value::<Settings>(Value::Object(single))
        .map(|_| ())
        .map_err(|e| GatewayError::invalid_param(format!("Invalid value for `{name}`: {e}"), name))
}

fn to_object(settings: &Settings) -> Result<Map<String, Value>, GatewayError> {
    match serde_json::to_value(settings) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(GatewayError::Internal(
            "settings did not serialize to an object".to_owned(),
        )),
        Err(e) => Err(GatewayError::Internal(format!(
            "settings serialization: {e}"
        ))),
    }
}

/// Upstream endpoints from the environment, without trailing
/// slashes so paths can be appended with a leading `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvConfig {
    pub gemini_api_base: String,
    pub code_assist_api_base: String,
    pub oauth_token_url: String,
    pub oauth_auth_url: String,
    pub userinfo_url: String,
    /// [`IMAGE_FETCH_ALLOW_PRIVATE`], parsed.
    pub image_fetch_allow_private: Vec<String>,
}

impl EnvConfig {
    /// Reads each var through `get`; a missing or blank var takes its default.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let read = |name: &str, default: &str| {
            let value = get(name).unwrap_or_default();
            let value = value.trim().trim_end_matches('/');
            if value.is_empty() {
                default.to_owned()
            } else {
                value.to_owned()
            }
        };
        Self {
            gemini_api_base: read(GEMINI_API_BASE, DEFAULT_GEMINI_API_BASE),
            code_assist_api_base: read(CODE_ASSIST_API_BASE, DEFAULT_CODE_ASSIST_API_BASE),
            oauth_token_url: read(GOOGLE_OAUTH_TOKEN_URL, DEFAULT_GOOGLE_OAUTH_TOKEN_URL),
            oauth_auth_url: read(GOOGLE_OAUTH_AUTH_URL, DEFAULT_GOOGLE_OAUTH_AUTH_URL),
            userinfo_url: read(GOOGLE_USERINFO_URL, DEFAULT_GOOGLE_USERINFO_URL),
            image_fetch_allow_private: get(IMAGE_FETCH_ALLOW_PRIVATE)
                .map(|raw| {
                    raw.split(|c: char| c == ',' || c.is_whitespace())
                        .filter(|s| !s.is_empty())
                        .map(str::to_ascii_lowercase)
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

impl Default for EnvConfig {
    fn default() -> Self {
        Self::from_lookup(|_| None)
    }
}

/// The keys of a JSON array (`{"keys": [..]}`): each element is one key, trimmed, and never
/// split. An element that still holds whitespace or a control character inside, or is empty,
/// is a 400 naming its position; duplicates are dropped, first-seen order kept.
pub fn parse_key_array(list: &[String]) -> Result<Vec<String>, GatewayError> {
    let mut seen = std::collections::HashSet::with_capacity(list.len());
    let mut keys = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let key = item.trim();
        if key.is_empty() || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(GatewayError::invalid_param(
                format!(
                    "keys[{i}] must be one key: a non-empty string without spaces, line breaks or control characters (send several keys as several array elements)."
                ),
                "keys",
            ));
        }
        if seen.insert(key) {
            keys.push(key.to_owned());
        }
    }
    Ok(keys)
}

/// Parses `GEMINI_API_KEYS` (or the admin bulk paste): keys separated by
/// commas, newlines or any whitespace, or a JSON array of strings. Trims,
/// drops empties and duplicates, and keeps the first-seen order.
pub fn parse_key_list(raw: &str) -> Vec<String> {
    let trimmed = raw.trim();
    let items: Vec<String> = match serde_json::from_str::<Vec<Value>>(trimmed) {
        Ok(array) if trimmed.starts_with('[') => array
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => trimmed
            .split(|c: char| c == ',' || c.is_whitespace())
            .map(strip_quotes)
            .map(str::to_owned)
            .collect(),
    };
    // A set beside the list: a paste of 100,000 keys stays linear.
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    let mut keys: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let item = item.trim();
        if !item.is_empty() && seen.insert(item.to_owned()) {
            keys.push(item.to_owned());
        }
    }
    keys
}

/// Parses `ACCESS_TOKENS`: tokens separated by commas or newlines. Trims and
/// drops empties.
pub fn parse_token_list(raw: &str) -> Vec<String> {
    raw.split([',', '\n'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// People paste keys as `"k1", "k2"` or as not-quite-JSON arrays; API keys
/// never contain quotes or brackets, so those are stripped from the ends.
fn strip_quotes(item: &str) -> &str {
    item.trim()
        .trim_matches(|c| matches!(c, '"' | '\'' | '[' | ']'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_array_element_is_one_key_never_split() {
        let list = |xs: &[&str]| xs.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            parse_key_array(&list(&[" ok-a\n", "ok-b", "ok-a"])).unwrap(),
            ["ok-a", "ok-b"]
        );
        for bad in ["ok-x\r\ny", "ok x", "", "  ", "ok-\u{0}x"] {
            let err = parse_key_array(&list(&["ok-a", bad])).expect_err(bad);
            assert!(format!("{err:?}").contains("keys[1]"), "{err:?}");
        }
    }
    use crate::domain::keypool::Strategy;
    use serde_json::json;
    use std::collections::HashMap;

    #[test]
    fn defaults_match_the_documented_values() {
        let s = Settings::default();
        assert_eq!(s.max_retries, 3);
        assert_eq!(s.pool.strategy, Strategy::RoundRobin);
        assert_eq!(s.pool.server_error_demote_ms, 30_000);
        assert_eq!(s.pool.circuit_breaker_failures, 5);
        assert_eq!(s.pool.circuit_open_ms, 300_000);
        assert_eq!(s.pool.rate_limit_default_cooldown_ms, 60_000);
        assert_eq!(s.pool.network_demote_ms, 10_000);
        assert_eq!(s.upstream_timeout_ms, 120_000);
        assert_eq!(s.max_body_bytes, 20 * 1024 * 1024);
        assert_eq!(s.models_cache_ttl_secs, 600);
        assert_eq!(s.log_retention_days, 30);
        assert_eq!(s.responses_ttl_days, 30);
        assert!(!s.include_thoughts);
        assert!(s.validate().is_ok());
        assert_eq!(s.policy(), PoolPolicy::default());
    }

    #[test]
    fn partial_stored_json_fills_defaults_and_ignores_unknown_fields() {
        let s: Settings =
            serde_json::from_str(r#"{"max_retries":5,"strategy":"adaptive","from_the_future":1}"#)
                .unwrap();
        assert_eq!(s.max_retries, 5);
        assert_eq!(s.pool.strategy, Strategy::Adaptive);
        assert_eq!(s.upstream_timeout_ms, 120_000);
        let empty: Settings = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, Settings::default());
    }

    #[test]
    fn settings_round_trip_through_json() {
        let s = Settings {
            pool: PoolPolicy {
                strategy: Strategy::LeastUsed,
                ..PoolPolicy::default()
            },
            include_thoughts: true,
            ..Settings::default()
        };
        let json = serde_json::to_value(&s).unwrap();
        // The pool knobs are stored flat beside the other settings.
        assert_eq!(json["strategy"], "least_used");
        assert!(json.get("pool").is_none());
        let back: Settings = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn image_settings_have_defaults_and_ranges() {
        let mut s = Settings::default();
        assert_eq!(s.image_url_ttl_secs, 3_600);
        assert_eq!(s.chat_image_output, ChatImageOutput::Markdown);
        s.apply_patch(&json!({"image_url_ttl_secs": 1, "chat_image_output": "parts"}))
            .unwrap();
        assert_eq!(s.image_url_ttl_secs, 1);
        assert_eq!(s.chat_image_output, ChatImageOutput::Parts);
        for bad in [
            json!({"image_url_ttl_secs": 0}),
            json!({"image_url_ttl_secs": 604_801}),
            json!({"chat_image_output": "html"}),
        ] {
            assert!(s.apply_patch(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn patch_changes_only_the_named_fields() {
        let mut s = Settings::default();
        s.apply_patch(&json!({"max_retries": 0, "strategy": "weighted", "include_thoughts": true}))
            .unwrap();
        assert_eq!(s.max_retries, 0);
        assert_eq!(s.pool.strategy, Strategy::Weighted);
        assert!(s.include_thoughts);
        assert_eq!(s.upstream_timeout_ms, 120_000);
        assert_eq!(s.policy().strategy, Strategy::Weighted);
    }

    #[test]
    fn renamed_settings_keep_their_old_names_in_patches_and_stored_json() {
        let mut s = Settings::default();
        s.apply_patch(&json!({"server_error_cooldown_ms": 5_000, "network_cooldown_ms": 7_000}))
            .unwrap();
        assert_eq!(s.pool.server_error_demote_ms, 5_000);
        assert_eq!(s.pool.network_demote_ms, 7_000);
        let stored: Settings =
            serde_json::from_str(r#"{"server_error_cooldown_ms":1000,"network_cooldown_ms":2000}"#)
                .unwrap();
        assert_eq!(stored.pool.server_error_demote_ms, 1_000);
        assert_eq!(stored.pool.network_demote_ms, 2_000);
        let json = serde_json::to_value(&stored).unwrap();
        assert!(json.get("server_error_cooldown_ms").is_none(), "{json}");
    }

    #[test]
    fn null_in_a_patch_resets_the_field() {
        let mut s = Settings {
            max_retries: 7,
            ..Settings::default()
        };
        s.apply_patch(&json!({"max_retries": null})).unwrap();
        assert_eq!(s.max_retries, 3);
    }

    #[test]
    fn patch_rejects_unknown_fields_by_name() {
        let mut s = Settings::default();
        let err = s
            .apply_patch(&json!({"max_retries": 4, "max_retry": 4}))
            .unwrap_err();
        assert_eq!(err.status(), 400);
        assert_eq!(err.openai_param(), Some("max_retry"));
        assert!(err.client_message().contains("max_retry"));
        assert_eq!(s, Settings::default(), "a rejected patch changes nothing");
    }

    #[test]
    fn patch_rejects_wrong_types_by_name() {
        let mut s = Settings::default();
        for (patch, field) in [
            (json!({"max_retries": "3"}), "max_retries"),
            (json!({"max_retries": -1}), "max_retries"),
            (json!({"strategy": "random"}), "strategy"),
            (json!({"include_thoughts": 1}), "include_thoughts"),
        ] {
            let err = s.apply_patch(&patch).unwrap_err();
            assert_eq!(err.openai_param(), Some(field), "{patch}");
        }
        assert_eq!(s, Settings::default());
    }

    #[test]
    fn patch_rejects_out_of_range_values_by_name() {
        let mut s = Settings::default();
        for (patch, field) in [
            (json!({"max_retries": 11}), "max_retries"),
            (json!({"max_body_bytes": 1023}), "max_body_bytes"),
            (
                json!({"max_body_bytes": 100 * 1024 * 1024 + 1}),
                "max_body_bytes",
            ),
            (json!({"upstream_timeout_ms": 999}), "upstream_timeout_ms"),
            (
                json!({"upstream_timeout_ms": 600_001}),
                "upstream_timeout_ms",
            ),
            (json!({"log_retention_days": 0}), "log_retention_days"),
            (json!({"responses_ttl_days": 0}), "responses_ttl_days"),
            (json!({"responses_ttl_days": 3651}), "responses_ttl_days"),
            (json!({"circuit_open_ms": 86_400_001}), "circuit_open_ms"),
        ] {
            let err = s.apply_patch(&patch).unwrap_err();
            assert_eq!(err.openai_param(), Some(field), "{patch}");
        }
        assert_eq!(s, Settings::default());
    }

    #[test]
    fn range_edges_are_accepted() {
        let mut s = Settings::default();
        s.apply_patch(&json!({
            "max_retries": 10,
            "max_body_bytes": 1024,
            "upstream_timeout_ms": 1000
        }))
        .unwrap();
        s.apply_patch(&json!({"max_body_bytes": 104_857_600, "upstream_timeout_ms": 600_000}))
            .unwrap();
        assert_eq!(s.max_body_bytes, 100 * 1024 * 1024);
    }

    /// Found by the hostile e2e table: serde fills a row's struct from an array by position,
    /// so `[["gemini-x*", 5]]` became a concurrency limit of 5 on `gemini-x*`.
    #[test]
    fn rows_written_as_arrays_are_refused_by_name() {
        let mut s = Settings::default();
        for (patch, field) in [
            (json!({"model_limits": [["gemini-x*", 5]]}), "model_limits"),
            (
                json!({"model_costs": [["gemini-x*", 1, 2, 3]]}),
                "model_costs",
            ),
            (
                json!({"prompt_injection": [["*", "system", "hi"]]}),
                "prompt_injection",
            ),
            (
                json!({"default_safety_settings": [["HARM_CATEGORY_HARASSMENT", "OFF"]]}),
                "default_safety_settings",
            ),
            (
                json!({"thinking_defaults": [["gemini-*"]]}),
                "thinking_defaults",
            ),
            (
                json!({"thinking_defaults": [{"pattern": "x", "n": [[1]]}]}),
                "thinking_defaults",
            ),
        ] {
            let err = s.apply_patch(&patch).unwrap_err();
            assert_eq!(err.openai_param(), Some(field), "{patch}");
            assert!(err.client_message().contains("not an array"), "{patch}");
        }
        assert_eq!(s, Settings::default());
        // Lists of strings and of objects are what they always were.
        s.apply_patch(&json!({
            "disabled_models": ["gemini-1.0-*"],
            "model_limits": [{"pattern": "gemini-x*", "max_concurrency": 5}]
        }))
        .unwrap();
        assert_eq!(s.model_limits.len(), 1);
    }

    #[test]
    fn patch_must_be_an_object() {
        let mut s = Settings::default();
        assert_eq!(s.apply_patch(&json!([1])).unwrap_err().status(), 400);
        assert!(s.apply_patch(&json!({})).is_ok());
    }

    #[test]
    fn env_config_uses_defaults_when_unset_or_blank() {
        let env = EnvConfig::from_lookup(|name| (name == GEMINI_API_BASE).then(|| "  ".to_owned()));
        assert_eq!(
            env.gemini_api_base,
            "https://generativelanguage.googleapis.com"
        );
        assert_eq!(
            env.code_assist_api_base,
            "https://cloudcode-pa.googleapis.com"
        );
        assert_eq!(env.oauth_token_url, "https://oauth2.googleapis.com/token");
        assert_eq!(
            env.oauth_auth_url,
            "https://accounts.google.com/o/oauth2/v2/auth"
        );
        assert_eq!(
            env.userinfo_url,
            "https://www.googleapis.com/oauth2/v2/userinfo"
        );
        assert_eq!(env, EnvConfig::default());
    }

    #[test]
    fn env_config_overrides_and_trims_trailing_slashes() {
        let vars: HashMap<&str, &str> = [
            ("GEMINI_API_BASE", "http://127.0.0.1:8787/mock/ "),
            ("CODE_ASSIST_API_BASE", "http://mock//"),
            ("GOOGLE_OAUTH_TOKEN_URL", "http://mock/token"),
            ("GOOGLE_OAUTH_AUTH_URL", "http://mock/auth/"),
            ("GOOGLE_USERINFO_URL", "http://mock/userinfo"),
        ]
        .into_iter()
        .collect();
        let env = EnvConfig::from_lookup(|name| vars.get(name).map(|v| (*v).to_owned()));
        assert_eq!(env.gemini_api_base, "http://127.0.0.1:8787/mock");
        assert_eq!(env.code_assist_api_base, "http://mock");
        assert_eq!(env.oauth_token_url, "http://mock/token");
        assert_eq!(env.oauth_auth_url, "http://mock/auth");
        assert_eq!(env.userinfo_url, "http://mock/userinfo");
    }

    #[test]
    fn key_list_splits_on_commas_newlines_and_whitespace() {
        assert_eq!(
            parse_key_list(" k1,k2\nk3\r\nk4 k5\tk6 ,, \n"),
            ["k1", "k2", "k3", "k4", "k5", "k6"]
        );
    }

    #[test]
    fn key_list_accepts_a_json_array() {
        assert_eq!(
            parse_key_list(r#" ["k1", " k2 ", "", "k1", 7, null, "k3"] "#),
            ["k1", "k2", "k3"]
        );
    }

    #[test]
    fn key_list_dedups_preserving_first_seen_order() {
        assert_eq!(parse_key_list("b,a,b,c,a"), ["b", "a", "c"]);
    }

    #[test]
    fn key_list_tolerates_quoted_and_broken_json_pastes() {
        assert_eq!(parse_key_list(r#""k1", "k2""#), ["k1", "k2"]);
        assert_eq!(parse_key_list(r#"["k1", "k2""#), ["k1", "k2"]);
        assert_eq!(parse_key_list("['k1','k2']"), ["k1", "k2"]);
    }

    #[test]
    fn key_list_of_nothing_is_empty() {
        assert!(parse_key_list("").is_empty());
        assert!(parse_key_list(" \n, ,").is_empty());
        assert!(parse_key_list("[]").is_empty());
    }

    #[test]
    fn token_list_splits_on_commas_and_newlines_only() {
        assert_eq!(
            parse_token_list("tok-1, tok-2\r\ntok 3\n\n,"),
            ["tok-1", "tok-2", "tok 3"]
        );
        assert!(parse_token_list("").is_empty());
    }
}
