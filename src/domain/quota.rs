//! Per-user credits and rate limits (DESIGN §6): model prices, what a request
//! reserves and what it is finally charged, the day zone, and the ledger state
//! machine that the per-user `UserLedger` Durable Object runs. The DO is a thin
//! shell: it loads a [`Ledger`], calls [`Ledger::apply`] with the current time,
//! persists the ledger when it changed, and answers.
//!
//! Exactness comes from serialization alone: the DO handles one request at a
//! time, so every rule here is plain sequential arithmetic. Nothing here reads
//! a clock, storage, D1 or a secret (only the key's SHA-256 is compared).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::auth::ct_eq;
use super::clock::{fixed_offset_day_bounds_ms, los_angeles_day_bounds_ms, minute_start_ms};

const MINUTE_MS: u64 = 60_000;
/// A request turned away for concurrency may try again this soon: a slot
/// frees when any in-flight request settles, which nothing here can predict.
const CONCURRENCY_RETRY_MS: u64 = 1_000;

/// Default request costs when the cost table has nothing for a model.
const PRO_REQUEST_COST: u64 = 10;
const FLASH_REQUEST_COST: u64 = 2;
const OTHER_REQUEST_COST: u64 = 1;
/// Default credits per token, prompt and output alike.
const DEFAULT_TOKEN_PRICE: u64 = 1;

/// The largest fixed offset accepted (UTC+14:00, Kiribati), in minutes.
const MAX_OFFSET_MINUTES: i32 = 14 * 60;

/// IANA zones without daylight saving time, by their fixed offset in minutes.
const FIXED_ZONES: &[(&str, i32)] = &[
    ("Asia/Shanghai", 480),
    ("Asia/Hong_Kong", 480),
    ("Asia/Taipei", 480),
    ("Asia/Singapore", 480),
    ("Asia/Tokyo", 540),
    ("Asia/Seoul", 540),
    ("Asia/Kolkata", 330),
    ("Asia/Calcutta", 330),
    ("Europe/Moscow", 180),
];

/// A user's limits, as stored in D1 and pushed to the ledger. Newer `revision` wins.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserLimits {
    /// D1 `updated_at`, in ms.
    pub revision: u64,
    /// Lowercase hex SHA-256 of the current secret.
    pub key_hash: String,
    pub enabled: bool,
    #[serde(default)]
    pub deleted: bool,
    /// Ms since the epoch; the key is refused from this instant on.
    #[serde(default)]
    pub expires_at: Option<u64>,
    /// Globs (`*` and `?`); empty allows every model.
    #[serde(default)]
    pub allowed_models: Vec<String>,
    /// `None` is unlimited.
    #[serde(default)]
    pub credit_quota: Option<u64>,
    #[serde(default)]
    pub rpm: Option<u32>,
    #[serde(default)]
    pub rpd: Option<u32>,
    #[serde(default)]
    pub tpm: Option<u64>,
    #[serde(default)]
    pub max_concurrency: Option<u32>,
}

/// What a request costs: a flat price per request, or its tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargingMode {
    #[default]
    Request,
    Token,
}

/// One row of the operator's cost table (first matching `pattern` glob wins).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelCost {
    pub pattern: String,
    #[serde(default)]
    pub request_cost: Option<u64>,
    /// Credits per prompt token.
    #[serde(default)]
    pub prompt_price: Option<u64>,
    /// Credits per output token (candidates + thoughts).
    #[serde(default)]
    pub completion_price: Option<u64>,
}

/// The resolved price of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price {
    pub request: u64,
    pub prompt: u64,
    pub completion: u64,
}

/// The price of `model`: the first row of `table` whose pattern matches it,
/// with every field the row leaves out (or all of them, when no row matches)
/// taken from the defaults: a request costs 10 for Pro-class models (the id
/// contains `pro`), 2 for Flash-class ones (`flash`) and 1 otherwise; a token
/// costs 1 either way.
pub fn price_for(model: &str, table: &[ModelCost]) -> Price {
    let row = table.iter().find(|row| glob_match(&row.pattern, model));
    let id = model.to_ascii_lowercase();
    let default_request = if id.contains("pro") {
        PRO_REQUEST_COST
    } else if id.contains("flash") {
        FLASH_REQUEST_COST
    } else {
        OTHER_REQUEST_COST
    };
    Price {
        request: row.and_then(|r| r.request_cost).unwrap_or(default_request),
        prompt: row
            .and_then(|r| r.prompt_price)
            .unwrap_or(DEFAULT_TOKEN_PRICE),
        completion: row
            .and_then(|r| r.completion_price)
            .unwrap_or(DEFAULT_TOKEN_PRICE),
    }
}

/// Glob match with `*` (any run, including none) and `?` (exactly one char),
/// case-sensitive, over chars rather than bytes.
///
/// Greedy with a single backtrack point: on a mismatch only the most recent
/// `*` is widened, never an earlier one, because an earlier star can absorb
/// nothing that the later one could not. That bounds the work by
/// O(pattern × text) whatever the pattern, where naive recursion is
/// exponential in the number of stars.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // (pattern index just after the last `*`, text index it is matched up to)
    let mut star: Option<(usize, usize)> = None;
    while let Some(&c) = text.get(t) {
        match pattern.get(p) {
            Some('*') => {
                p += 1;
                star = Some((p, t));
            }
            Some(&q) if q == '?' || q == c => {
                p += 1;
                t += 1;
            }
            _ => {
                let Some((after_star, absorbed)) = star else {
                    return false;
                };
                // Let the star absorb one more char and retry from there.
                p = after_star;
                t = absorbed + 1;
                star = Some((after_star, t));
            }
        }
    }
    pattern.iter().skip(p).all(|&c| c == '*')
}

/// Worst-case token estimate for a request, from the edge: the prompt estimate
/// (`ceil(prompt bytes / 4)`, the edge's job), the most output it allows
/// (`max_tokens`, or the configured default) and the thinking budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Estimate {
    pub prompt_tokens: u64,
    pub max_output_tokens: u64,
    pub thinking_tokens: u64,
}

/// What a request reserves: credits, and tokens (which count against TPM).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub credits: u64,
    pub tokens: u64,
}

/// The worst case a request may cost. `multiplier` is 1 normally and 2 for
/// anti-truncation requests; it scales the credits only. The tokens stay the
/// estimate of what Gemini will count, since TPM limits real token traffic
/// and each request settles with its real tokens anyway.
pub fn reservation(
    mode: ChargingMode,
    price: Price,
    estimate: Estimate,
    multiplier: u64,
) -> Reservation {
    let output = estimate
        .max_output_tokens
        .saturating_add(estimate.thinking_tokens);
    let tokens = estimate.prompt_tokens.saturating_add(output);
    let credits = match mode {
        ChargingMode::Request => price.request,
        ChargingMode::Token => token_cost(price, estimate.prompt_tokens, output),
    };
    Reservation {
        credits: credits.saturating_mul(multiplier),
        tokens,
    }
}

/// Real usage, from Gemini's `usageMetadata` (the last one seen, for a cut stream).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    /// `candidatesTokenCount`.
    pub completion_tokens: u64,
    /// `thoughtsTokenCount`.
    pub reasoning_tokens: u64,
}

/// The final charge. Request mode: the request cost × `multiplier` if the
/// request was `served` (the upstream answered with success, even if the
/// stream was cut later), else 0. Token mode: prompt × prompt price +
/// (completion + reasoning) × completion price, × `multiplier`, whatever
/// `served` says, because Google bills the tokens it reported.
pub fn charge(
    mode: ChargingMode,
    price: Price,
    usage: Usage,
    served: bool,
    multiplier: u64,
) -> u64 {
    let cost = match mode {
        ChargingMode::Request if served => price.request,
        ChargingMode::Request => 0,
        ChargingMode::Token => token_cost(
            price,
            usage.prompt_tokens,
            usage
                .completion_tokens
                .saturating_add(usage.reasoning_tokens),
        ),
    };
    cost.saturating_mul(multiplier)
}

fn token_cost(price: Price, prompt_tokens: u64, output_tokens: u64) -> u64 {
    prompt_tokens
        .saturating_mul(price.prompt)
        .saturating_add(output_tokens.saturating_mul(price.completion))
}

/// Where the day window starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayZone {
    Utc,
    /// Minutes east of UTC.
    FixedOffsetMinutes(i32),
    /// `America/Los_Angeles`, with its daylight saving time.
    LosAngeles,
}

impl DayZone {
    /// Parses the setting: `""`, `UTC`, `Etc/UTC`, `GMT` → UTC; an offset such
    /// as `+08:00`, `-05:30`, `+0800`, `UTC+8` or `GMT-3` → a fixed offset;
    /// `America/Los_Angeles` (or `US/Pacific`) → Los Angeles with DST; and a
    /// few IANA zones without DST by name. Names are matched ignoring ASCII
    /// case. Anything else is an error naming what is accepted.
    pub fn parse(s: &str) -> Result<DayZone, String> {
        let s = s.trim();
        let is = |names: &[&str]| names.iter().any(|n| n.eq_ignore_ascii_case(s));
        if s.is_empty() || is(&["UTC", "Etc/UTC", "GMT", "Etc/GMT", "Z"]) {
            return Ok(Self::Utc);
        }
        if is(&["America/Los_Angeles", "US/Pacific"]) {
            return Ok(Self::LosAngeles);
        }
        if let Some(&(_, minutes)) = FIXED_ZONES.iter().find(|(n, _)| n.eq_ignore_ascii_case(s)) {
            return Ok(Self::fixed(minutes));
        }
        let offset = match s.get(..3) {
            Some(p) if p.eq_ignore_ascii_case("UTC") || p.eq_ignore_ascii_case("GMT") => {
                s.get(3..).unwrap_or_default()
            }
            _ => s,
        };
        parse_offset_minutes(offset)
            .map(Self::fixed)
            .ok_or_else(|| {
                let names: Vec<&str> = FIXED_ZONES.iter().map(|(n, _)| *n).collect();
                format!(
                    "unknown day time zone {s:?}: use UTC, an offset such as +08:00 or UTC-5, \
                 America/Los_Angeles, or one of {}",
                    names.join(", ")
                )
            })
    }

    fn fixed(minutes: i32) -> Self {
        if minutes == 0 {
            Self::Utc
        } else {
            Self::FixedOffsetMinutes(minutes)
        }
    }

    /// Start (ms) of the local day containing `now_ms`, and the start of the
    /// next one.
    pub fn day_bounds(self, now_ms: u64) -> (u64, u64) {
        match self {
            Self::Utc => fixed_offset_day_bounds_ms(now_ms, 0),
            Self::FixedOffsetMinutes(minutes) => fixed_offset_day_bounds_ms(now_ms, minutes),
            Self::LosAngeles => los_angeles_day_bounds_ms(now_ms),
        }
    }
}

/// `+H`, `+HH`, `+H:MM`, `+HH:MM` or `+HHMM` (or `-`), at most 14 hours
/// either way.
fn parse_offset_minutes(s: &str) -> Option<i32> {
    let (sign, rest) = if let Some(rest) = s.strip_prefix('+') {
        (1, rest)
    } else {
        (-1, s.strip_prefix('-')?)
    };
    if !rest.bytes().all(|b| b.is_ascii_digit() || b == b':') {
        return None;
    }
    // Every byte is ASCII from here on, so the splits fall on char boundaries.
    let (hours, minutes) = match rest.split_once(':') {
        Some((h, m)) if m.len() == 2 => (h, m),
        None if rest.len() == 4 => rest.split_at(2),
        None if rest.len() <= 2 => (rest, "00"),
        _ => return None,
    };
    if hours.is_empty() || hours.len() > 2 || minutes.contains(':') {
        return None;
    }
    let hours: i32 = hours.parse().ok()?;
    let minutes: i32 = minutes.parse().ok()?;
    let total = hours * 60 + minutes;
    (minutes < 60 && total <= MAX_OFFSET_MINUTES).then_some(sign * total)
}

/// One call to a user's ledger DO.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum LedgerRequest {
    /// Reserve for one request. `limits` is the caller's copy (adopted only
    /// when its revision is newer than the ledger's). `used_baseline` is D1's
    /// `credits_used`, adopted only while the ledger has counted nothing yet.
    Admit {
        limits: UserLimits,
        used_baseline: u64,
        key_hash: String,
        model: String,
        reservation: Reservation,
        lease_id: String,
        lease_ttl_ms: u64,
        #[serde(default)]
        day_zone: String,
    },
    /// Settle a lease: charge `credits`, and count the actual `tokens` instead
    /// of the reserved ones in the minute window the lease was admitted in (if
    /// it is still the current one). An unknown lease (already settled, or
    /// expired) answers `Settled { charged: 0, known: false }`: never a
    /// double charge.
    Settle {
        lease_id: String,
        credits: u64,
        tokens: u64,
    },
    /// Admin pushed new limits (revision rules apply). Also used for delete
    /// (`deleted: true`) and rotate (a new `key_hash`).
    Configure { limits: UserLimits },
    /// Current numbers for `/v1/usage` and headers; changes nothing except
    /// expiring leases.
    Status {
        #[serde(default)]
        day_zone: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum LedgerResponse {
    Admitted {
        lease_id: String,
        limits: RateView,
    },
    Denied {
        denial: Denial,
        retry_after_ms: Option<u64>,
        limits: RateView,
    },
    Settled {
        charged: u64,
        known: bool,
        used: u64,
    },
    Configured {
        revision: u64,
    },
    Status {
        used: u64,
        reserved: u64,
        quota: Option<u64>,
        in_flight: u32,
        limits: RateView,
    },
}

/// Why a request was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Denial {
    InvalidKey,
    Disabled,
    Expired,
    ModelNotAllowed,
    InsufficientQuota,
    RequestsPerMinute,
    RequestsPerDay,
    TokensPerMinute,
    Concurrency,
}

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

/// One admitted request that has not settled yet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub credits: u64,
    pub tokens: u64,
    pub expires_at: u64,
    /// The windows the request was counted in.
    pub minute_start: u64,
    pub day_start: u64,
}

/// The current minute: requests admitted and tokens reserved or used in it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinuteWindow {
    pub start: u64,
    pub requests: u32,
    pub tokens: u64,
}

/// The current local day: requests admitted in it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayWindow {
    pub start: u64,
    pub requests: u32,
}

/// The whole ledger state, serialized into DO storage after every change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Ledger {
    pub limits: Option<UserLimits>,
    /// True once D1's `credits_used` has been taken as the starting point.
    /// From then on the ledger is the authority and D1 only mirrors it.
    pub baseline_adopted: bool,
    /// Credits charged by settled requests.
    pub used: u64,
    /// In-flight requests by lease id.
    pub leases: BTreeMap<String, Lease>,
    pub minute: MinuteWindow,
    pub day: DayWindow,
}

/// The fields of [`LedgerRequest::Admit`].
struct Admit {
    limits: UserLimits,
    used_baseline: u64,
    key_hash: String,
    model: String,
    reservation: Reservation,
    lease_id: String,
    lease_ttl_ms: u64,
    day_zone: String,
}

impl Ledger {
    /// The pure transition. Returns the answer and whether the state changed
    /// (so the shell persists only then).
    pub fn apply(&mut self, req: LedgerRequest, now_ms: u64) -> (LedgerResponse, bool) {
        let before = self.clone();
        let response = match req {
            LedgerRequest::Admit {
                limits,
                used_baseline,
                key_hash,
                model,
                reservation,
                lease_id,
                lease_ttl_ms,
                day_zone,
            } => self.admit(
                Admit {
                    limits,
                    used_baseline,
                    key_hash,
                    model,
                    reservation,
                    lease_id,
                    lease_ttl_ms,
                    day_zone,
                },
                now_ms,
            ),
            LedgerRequest::Settle {
                lease_id,
                credits,
                tokens,
            } => self.settle(&lease_id, credits, tokens, now_ms),
            LedgerRequest::Configure { limits } => {
                self.adopt(limits);
                LedgerResponse::Configured {
                    revision: self.limits.as_ref().map_or(0, |l| l.revision),
                }
            }
            LedgerRequest::Status { day_zone: _ } => {
                // The view covers the minute window only (RPM and TPM), so
                // the day zone is not needed to answer; it is accepted so the
                // edge can send the same settings to every operation.
                self.expire(now_ms);
                LedgerResponse::Status {
                    used: self.used,
                    reserved: self.reserved(),
                    quota: self.limits.as_ref().and_then(|l| l.credit_quota),
                    in_flight: self.in_flight(),
                    limits: self.rate_view(now_ms),
                }
            }
        };
        let changed = *self != before;
        (response, changed)
    }

    /// Credits held by in-flight requests.
    pub fn reserved(&self) -> u64 {
        self.leases
            .values()
            .fold(0, |sum, lease| sum.saturating_add(lease.credits))
    }

    pub fn in_flight(&self) -> u32 {
        u32::try_from(self.leases.len()).unwrap_or(u32::MAX)
    }

    fn admit(&mut self, req: Admit, now: u64) -> LedgerResponse {
        // 1. The newest limits, and D1's count the first time.
        self.adopt(req.limits);
        if !self.baseline_adopted {
            self.used = self.used.max(req.used_baseline);
            self.baseline_adopted = true;
        }

        // 2. The key itself.
        if let Some(denial) = self.key_denial(&req.key_hash, &req.model, now) {
            return self.denied(denial, None, now);
        }
        let Some(limits) = &self.limits else {
            return self.denied(Denial::InvalidKey, None, now);
        };
        let (quota, rpm, rpd, tpm, max_concurrency) = (
            limits.credit_quota,
            limits.rpm,
            limits.rpd,
            limits.tpm,
            limits.max_concurrency,
        );

        // 3–4. Release dead leases, then move to the current windows.
        self.expire(now);
        // An unparsable zone counts days in UTC rather than refusing service:
        // the setting is validated when saved, so this is only a safety net.
        let zone = DayZone::parse(&req.day_zone).unwrap_or(DayZone::Utc);
        let (day_start, day_end) = zone.day_bounds(now);
        self.roll(now, day_start);

        // The same lease id again is the edge retrying a call whose answer it
        // lost: answer as before, without reserving or counting twice.
        if self.leases.contains_key(&req.lease_id) {
            return LedgerResponse::Admitted {
                lease_id: req.lease_id,
                limits: self.rate_view(now),
            };
        }

        // 5. Concurrency.
        if max_concurrency.is_some_and(|max| self.in_flight() >= max) {
            return self.denied(Denial::Concurrency, Some(CONCURRENCY_RETRY_MS), now);
        }

        // 6. Rates. A request larger than the whole TPM is denied as well;
        // it can never fit, but the answer stays the same shape.
        let to_minute_end = self.minute_end(now).saturating_sub(now);
        if rpm.is_some_and(|max| self.minute.requests >= max) {
            return self.denied(Denial::RequestsPerMinute, Some(to_minute_end), now);
        }
        if rpd.is_some_and(|max| self.day.requests >= max) {
            let to_day_end = day_end.saturating_sub(now);
            return self.denied(Denial::RequestsPerDay, Some(to_day_end), now);
        }
        let tokens = self.minute.tokens.saturating_add(req.reservation.tokens);
        if tpm.is_some_and(|max| tokens > max) {
            return self.denied(Denial::TokensPerMinute, Some(to_minute_end), now);
        }

        // 7. Credit. Everything committed (settled and in flight) plus this
        // request must fit, so with quota q and cost c exactly floor(q / c)
        // requests get through however they interleave. A spent balance
        // admits nothing, not even a request that reserves 0 credits.
        if let Some(quota) = quota {
            let committed = self.used.saturating_add(self.reserved());
            if committed >= quota || committed.saturating_add(req.reservation.credits) > quota {
                return self.denied(Denial::InsufficientQuota, None, now);
            }
        }

        // 8. Admit and count.
        self.leases.insert(
            req.lease_id.clone(),
            Lease {
                credits: req.reservation.credits,
                tokens: req.reservation.tokens,
                expires_at: now.saturating_add(req.lease_ttl_ms),
                minute_start: self.minute.start,
                day_start: self.day.start,
            },
        );
        self.minute.requests = self.minute.requests.saturating_add(1);
        self.minute.tokens = tokens;
        self.day.requests = self.day.requests.saturating_add(1);
        LedgerResponse::Admitted {
            lease_id: req.lease_id,
            limits: self.rate_view(now),
        }
    }

    fn settle(&mut self, lease_id: &str, credits: u64, tokens: u64, now: u64) -> LedgerResponse {
        self.expire(now);
        let Some(lease) = self.leases.remove(lease_id) else {
            return LedgerResponse::Settled {
                charged: 0,
                known: false,
                used: self.used,
            };
        };
        self.used = self.used.saturating_add(credits);
        // The reservation held the worst case against TPM; the minute now
        // counts what the request really used. An older minute is gone.
        if lease.minute_start == self.minute.start {
            self.minute.tokens = self
                .minute
                .tokens
                .saturating_sub(lease.tokens)
                .saturating_add(tokens);
        }
        LedgerResponse::Settled {
            charged: credits,
            known: true,
            used: self.used,
        }
    }

    /// Takes `limits` when none are held or they are newer. An equal revision
    /// keeps what is held, so a replayed push changes nothing.
    fn adopt(&mut self, limits: UserLimits) {
        if self
            .limits
            .as_ref()
            .is_none_or(|held| limits.revision > held.revision)
        {
            self.limits = Some(limits);
        }
    }

    /// Rule 2: the key must exist, match, be enabled and unexpired, and allow
    /// the model.
    fn key_denial(&self, key_hash: &str, model: &str, now: u64) -> Option<Denial> {
        let Some(limits) = &self.limits else {
            return Some(Denial::InvalidKey);
        };
        // An empty stored hash would match an empty presented one.
        if limits.deleted || limits.key_hash.is_empty() || !ct_eq(key_hash, &limits.key_hash) {
            return Some(Denial::InvalidKey);
        }
        if !limits.enabled {
            return Some(Denial::Disabled);
        }
        if limits.expires_at.is_some_and(|at| at <= now) {
            return Some(Denial::Expired);
        }
        let allowed = limits.allowed_models.is_empty()
            || limits
                .allowed_models
                .iter()
                .any(|pattern| glob_match(pattern, model));
        (!allowed).then_some(Denial::ModelNotAllowed)
    }

    /// Drops leases whose time is up and so releases their credits. Nothing
    /// is charged for them: a lease only expires when the worker never
    /// settled it (it was evicted or crashed mid-request), and then the client
    /// got no answer it could be asked to pay for. Their tokens stay counted
    /// in the minute, which errs on the side of the limit.
    fn expire(&mut self, now: u64) {
        self.leases.retain(|_, lease| lease.expires_at > now);
    }

    /// Starts a new minute or day when `now` has moved past the current one.
    /// Windows only move forward, so a clock that steps back a little keeps
    /// counting in the newer window instead of resetting it.
    fn roll(&mut self, now: u64, day_start: u64) {
        let minute_start = minute_start_ms(now);
        if minute_start > self.minute.start {
            self.minute = MinuteWindow {
                start: minute_start,
                requests: 0,
                tokens: 0,
            };
        }
        if day_start > self.day.start {
            self.day = DayWindow {
                start: day_start,
                requests: 0,
            };
        }
    }

    /// The end of the minute window that `now` counts in.
    fn minute_end(&self, now: u64) -> u64 {
        minute_start_ms(now)
            .max(self.minute.start)
            .saturating_add(MINUTE_MS)
    }

    /// The headers' numbers at `now`, reading a stale minute as empty without
    /// rolling it (so a status call changes nothing).
    fn rate_view(&self, now: u64) -> RateView {
        let (requests, tokens) = if self.minute.start >= minute_start_ms(now) {
            (self.minute.requests, self.minute.tokens)
        } else {
            (0, 0)
        };
        let reset = self.minute_end(now).saturating_sub(now);
        let limits = self.limits.as_ref();
        let rpm = limits.and_then(|l| l.rpm);
        let tpm = limits.and_then(|l| l.tpm);
        RateView {
            limit_requests: rpm,
            remaining_requests: rpm.map(|max| max.saturating_sub(requests)),
            reset_requests_ms: rpm.map(|_| reset),
            limit_tokens: tpm,
            remaining_tokens: tpm.map(|max| max.saturating_sub(tokens)),
            reset_tokens_ms: tpm.map(|_| reset),
        }
    }

    fn denied(&self, denial: Denial, retry_after_ms: Option<u64>, now: u64) -> LedgerResponse {
        LedgerResponse::Denied {
            denial,
            retry_after_ms,
            limits: self.rate_view(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// 2024-05-06T00:00:00Z, a Monday.
    const T0: u64 = 1_714_953_600_000;
    const HOUR: u64 = 3_600_000;
    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    const TTL: u64 = 600_000;

    fn base_limits() -> UserLimits {
        UserLimits {
            revision: 1,
            key_hash: HASH.into(),
            enabled: true,
            ..UserLimits::default()
        }
    }

    /// A ledger driven the way the edge drives it.
    struct Fixture {
        ledger: Ledger,
        limits: UserLimits,
        zone: String,
        model: String,
    }

    impl Fixture {
        fn new(limits: UserLimits) -> Self {
            Self {
                ledger: Ledger::default(),
                limits,
                zone: "UTC".into(),
                model: "gemini-2.5-flash".into(),
            }
        }

        fn admit_with(&mut self, id: &str, reservation: Reservation, now: u64) -> LedgerResponse {
            let req = LedgerRequest::Admit {
                limits: self.limits.clone(),
                used_baseline: 0,
                key_hash: HASH.into(),
                model: self.model.clone(),
                reservation,
                lease_id: id.into(),
                lease_ttl_ms: TTL,
                day_zone: self.zone.clone(),
            };
            self.ledger.apply(req, now).0
        }

        fn admit(&mut self, id: &str, credits: u64, now: u64) -> LedgerResponse {
            self.admit_with(id, Reservation { credits, tokens: 0 }, now)
        }

        fn settle(&mut self, id: &str, credits: u64, tokens: u64, now: u64) -> LedgerResponse {
            let req = LedgerRequest::Settle {
                lease_id: id.into(),
                credits,
                tokens,
            };
            self.ledger.apply(req, now).0
        }

        fn configure(&mut self, limits: UserLimits, now: u64) -> LedgerResponse {
            self.ledger
                .apply(LedgerRequest::Configure { limits }, now)
                .0
        }

        fn status(&mut self, now: u64) -> LedgerResponse {
            let req = LedgerRequest::Status {
                day_zone: self.zone.clone(),
            };
            self.ledger.apply(req, now).0
        }

        /// (used, reserved, in flight) from a status call.
        fn numbers(&mut self, now: u64) -> (u64, u64, u32) {
            match self.status(now) {
                LedgerResponse::Status {
                    used,
                    reserved,
                    in_flight,
                    ..
                } => (used, reserved, in_flight),
                other => panic!("expected a status, got {other:?}"),
            }
        }
    }

    fn admitted(resp: &LedgerResponse) -> bool {
        matches!(resp, LedgerResponse::Admitted { .. })
    }

    fn denial(resp: &LedgerResponse) -> (Denial, Option<u64>) {
        match resp {
            LedgerResponse::Denied {
                denial,
                retry_after_ms,
                ..
            } => (*denial, *retry_after_ms),
            other => panic!("expected a denial, got {other:?}"),
        }
    }

    fn view(resp: &LedgerResponse) -> &RateView {
        match resp {
            LedgerResponse::Admitted { limits, .. }
            | LedgerResponse::Denied { limits, .. }
            | LedgerResponse::Status { limits, .. } => limits,
            other => panic!("no rate view in {other:?}"),
        }
    }

    fn charged(resp: &LedgerResponse) -> (u64, bool) {
        match resp {
            LedgerResponse::Settled { charged, known, .. } => (*charged, *known),
            other => panic!("expected a settlement, got {other:?}"),
        }
    }

    /// A small deterministic generator for interleavings (xorshift).
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            usize::try_from(self.0 % n as u64).unwrap()
        }
    }

    // ---- prices, reservations, charges ----

    #[test]
    fn default_prices_follow_the_model_class() {
        let p = |m| price_for(m, &[]);
        assert_eq!(
            p("gemini-2.5-pro"),
            Price {
                request: 10,
                prompt: 1,
                completion: 1
            }
        );
        assert_eq!(p("gemini-3-pro-preview").request, 10);
        assert_eq!(p("gemini-2.5-flash").request, 2);
        assert_eq!(p("gemini-2.5-flash-lite").request, 2);
        assert_eq!(p("Gemini-2.5-FLASH").request, 2);
        assert_eq!(p("gemma-3-27b-it").request, 1);
        assert_eq!(p("").request, 1);
    }

    #[test]
    fn first_matching_cost_row_wins_and_its_missing_fields_default() {
        let table = vec![
            ModelCost {
                pattern: "gemini-2.5-flash-lite*".into(),
                request_cost: Some(1),
                ..ModelCost::default()
            },
            ModelCost {
                pattern: "gemini-2.5-*".into(),
                request_cost: Some(5),
                prompt_price: Some(3),
                completion_price: Some(7),
            },
            ModelCost {
                pattern: "*".into(),
                request_cost: Some(100),
                ..ModelCost::default()
            },
        ];
        assert_eq!(
            price_for("gemini-2.5-flash-lite", &table),
            Price {
                request: 1,
                prompt: 1,
                completion: 1
            }
        );
        assert_eq!(
            price_for("gemini-2.5-pro", &table),
            Price {
                request: 5,
                prompt: 3,
                completion: 7
            }
        );
        assert_eq!(price_for("gemma-3", &table).request, 100);
        // A row that sets only token prices keeps the class default per request.
        let tokens_only = vec![ModelCost {
            pattern: "*pro*".into(),
            prompt_price: Some(2),
            ..ModelCost::default()
        }];
        assert_eq!(
            price_for("gemini-2.5-pro", &tokens_only),
            Price {
                request: 10,
                prompt: 2,
                completion: 1
            }
        );
    }

    #[test]
    fn reservation_covers_the_worst_case() {
        let price = Price {
            request: 10,
            prompt: 2,
            completion: 5,
        };
        let estimate = Estimate {
            prompt_tokens: 100,
            max_output_tokens: 1_000,
            thinking_tokens: 500,
        };
        assert_eq!(
            reservation(ChargingMode::Request, price, estimate, 1),
            Reservation {
                credits: 10,
                tokens: 1_600
            }
        );
        assert_eq!(
            reservation(ChargingMode::Token, price, estimate, 1),
            Reservation {
                credits: 200 + 1_500 * 5,
                tokens: 1_600
            }
        );
        // Anti-truncation doubles the credits, not the tokens.
        assert_eq!(
            reservation(ChargingMode::Token, price, estimate, 2),
            Reservation {
                credits: 2 * (200 + 7_500),
                tokens: 1_600
            }
        );
        let huge = Estimate {
            prompt_tokens: u64::MAX,
            max_output_tokens: u64::MAX,
            thinking_tokens: 1,
        };
        assert_eq!(
            reservation(ChargingMode::Token, price, huge, 2),
            Reservation {
                credits: u64::MAX,
                tokens: u64::MAX
            }
        );
    }

    #[test]
    fn charge_follows_the_mode() {
        let price = Price {
            request: 10,
            prompt: 2,
            completion: 5,
        };
        let usage = Usage {
            prompt_tokens: 100,
            completion_tokens: 40,
            reasoning_tokens: 60,
        };
        assert_eq!(charge(ChargingMode::Request, price, usage, true, 1), 10);
        assert_eq!(charge(ChargingMode::Request, price, usage, true, 2), 20);
        assert_eq!(charge(ChargingMode::Request, price, usage, false, 2), 0);
        assert_eq!(charge(ChargingMode::Token, price, usage, true, 1), 700);
        assert_eq!(charge(ChargingMode::Token, price, usage, false, 2), 1_400);
        let huge = Usage {
            prompt_tokens: u64::MAX,
            ..Usage::default()
        };
        assert_eq!(charge(ChargingMode::Token, price, huge, true, 3), u64::MAX);
    }

    // ---- globs ----

    #[test]
    fn glob_match_edge_cases() {
        let cases = [
            ("", "", true),
            ("", "a", false),
            ("*", "", true),
            ("*", "anything", true),
            ("**", "", true),
            ("?", "", false),
            ("?", "a", true),
            ("?", "ab", false),
            ("gemini-*", "gemini-2.5-pro", true),
            ("gemini-*", "gemini", false),
            ("*-pro", "gemini-2.5-pro", true),
            ("*-pro", "gemini-2.5-pro-preview", false),
            ("*pro*", "gemini-2.5-pro-preview", true),
            ("gemini-2.?-flash", "gemini-2.5-flash", true),
            ("gemini-2.?-flash", "gemini-2.55-flash", false),
            ("Gemini-*", "gemini-2.5-pro", false),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXcYb", false),
            ("a*a", "a", false),
            ("*a", "bbba", true),
            ("*ab", "aab", true),
            ("*?", "x", true),
            ("?*?", "x", false),
            ("é?", "éß", true),
            ("gemini-2.5-pro", "gemini-2.5-pro", true),
            ("gemini-2.5-pro", "gemini-2.5-pr", false),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                glob_match(pattern, text),
                expected,
                "{pattern:?} vs {text:?}"
            );
        }
    }

    #[test]
    fn pathological_globs_finish_quickly() {
        // Exponential in the stars under naive backtracking; quadratic at most here.
        let text = "a".repeat(20_000);
        let pattern = format!("{}b", "*a".repeat(30));
        assert!(!glob_match(&pattern, &text));
        let pattern = format!("{}*", "*a".repeat(30));
        assert!(glob_match(&pattern, &text));
        let many_stars = "*".repeat(5_000);
        assert!(glob_match(&format!("{many_stars}a{many_stars}"), &text));
    }

    // ---- format_reset ----

    #[test]
    fn reset_durations_use_openai_format() {
        let cases = [
            (0, "0s"),
            (1, "1ms"),
            (250, "250ms"),
            (999, "999ms"),
            (1_000, "1s"),
            (1_500, "1.5s"),
            (1_250, "1.25s"),
            (1_001, "1.001s"),
            (59_999, "59.999s"),
            (60_000, "1m0s"),
            (360_000, "6m0s"),
            (3_600_000, "1h0m0s"),
            (3_723_000, "1h2m3s"),
            (86_400_000, "24h0m0s"),
        ];
        for (ms, expected) in cases {
            assert_eq!(format_reset(ms), expected, "{ms} ms");
        }
    }

    // ---- day zones ----

    #[test]
    fn day_zone_parses_names_and_offsets() {
        let ok = |s: &str| DayZone::parse(s).unwrap();
        for utc in [
            "", "  ", "UTC", "utc", "Etc/UTC", "GMT", "+00:00", "UTC+0", "-0",
        ] {
            assert_eq!(ok(utc), DayZone::Utc, "{utc:?}");
        }
        assert_eq!(ok("+08:00"), DayZone::FixedOffsetMinutes(480));
        assert_eq!(ok("+0800"), DayZone::FixedOffsetMinutes(480));
        assert_eq!(ok("UTC+8"), DayZone::FixedOffsetMinutes(480));
        assert_eq!(ok("GMT-3"), DayZone::FixedOffsetMinutes(-180));
        assert_eq!(ok("-05:30"), DayZone::FixedOffsetMinutes(-330));
        assert_eq!(ok("+14:00"), DayZone::FixedOffsetMinutes(840));
        assert_eq!(ok("America/Los_Angeles"), DayZone::LosAngeles);
        assert_eq!(ok("US/Pacific"), DayZone::LosAngeles);
        for (name, minutes) in [
            ("Asia/Shanghai", 480),
            ("Asia/Hong_Kong", 480),
            ("Asia/Taipei", 480),
            ("Asia/Singapore", 480),
            ("Asia/Tokyo", 540),
            ("Asia/Seoul", 540),
            ("Asia/Kolkata", 330),
            ("Europe/Moscow", 180),
        ] {
            assert_eq!(ok(name), DayZone::FixedOffsetMinutes(minutes), "{name}");
        }
    }

    #[test]
    fn day_zone_rejects_what_it_cannot_place() {
        for bad in [
            "Europe/London",
            "America/New_York",
            "8",
            "+8:0",
            "+8:000",
            "+15:00",
            "+08:60",
            "+123",
            "++8",
            "+",
            "UTC+",
            "+８",
            "+08:00:00",
            "UTC+8x",
        ] {
            let err = DayZone::parse(bad).expect_err(bad);
            assert!(err.contains("America/Los_Angeles"), "{err}");
        }
    }

    #[test]
    fn day_bounds_follow_the_zone() {
        let now = T0 + 15 * HOUR + 59 * 60_000;
        assert_eq!(DayZone::Utc.day_bounds(now), (T0, T0 + 24 * HOUR));
        // 15:59 UTC is 23:59 in UTC+8: that day began at 16:00 UTC yesterday.
        assert_eq!(
            DayZone::FixedOffsetMinutes(480).day_bounds(now),
            (T0 - 8 * HOUR, T0 + 16 * HOUR)
        );
        assert_eq!(
            DayZone::FixedOffsetMinutes(480)
                .day_bounds(T0 + 16 * HOUR)
                .0,
            T0 + 16 * HOUR
        );
        // May is daylight time in Los Angeles: midnight is 07:00 UTC.
        assert_eq!(
            DayZone::LosAngeles.day_bounds(now),
            (T0 + 7 * HOUR, T0 + 31 * HOUR)
        );
        // 2024-11-03, the day the clocks fall back, lasts 25 hours.
        let fall_back_noon = 1_730_660_400_000;
        let (start, end) = DayZone::LosAngeles.day_bounds(fall_back_noon);
        assert_eq!(end - start, 25 * HOUR);
    }

    // ---- the ledger: exact credit under concurrency ----

    #[test]
    fn fifty_concurrent_admits_fit_the_quota_exactly_in_any_order() {
        let limits = UserLimits {
            credit_quota: Some(40),
            ..base_limits()
        };
        for seed in 1..=40_u64 {
            let mut f = Fixture::new(limits.clone());
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let (mut next, mut ok, mut refused) = (0, 0, 0);
            let mut open: Vec<String> = Vec::new();
            let mut now = T0 + 1;
            // Seed 1 admits all 50 before any settle; the others interleave.
            while next < 50 || !open.is_empty() {
                let settle = next == 50 || (seed > 1 && !open.is_empty() && rng.below(3) == 0);
                if settle {
                    let id = open.swap_remove(rng.below(open.len()));
                    assert_eq!(charged(&f.settle(&id, 2, 0, now)), (2, true));
                } else {
                    let id = format!("lease-{next}");
                    next += 1;
                    let resp = f.admit(&id, 2, now);
                    if admitted(&resp) {
                        ok += 1;
                        open.push(id);
                    } else {
                        assert_eq!(denial(&resp), (Denial::InsufficientQuota, None));
                        refused += 1;
                    }
                }
                let (used, reserved, _) = f.numbers(now);
                assert!(used + reserved <= 40, "seed {seed}: overcommitted");
                now += 1;
            }
            assert_eq!((ok, refused), (20, 30), "seed {seed}");
            assert_eq!(f.numbers(now), (40, 0, 0), "seed {seed}");
        }
    }

    #[test]
    fn token_mode_charges_add_up_and_stop_at_a_spent_balance() {
        let quota = 20_000;
        let limits = UserLimits {
            credit_quota: Some(quota),
            ..base_limits()
        };
        let price = Price {
            request: 0,
            prompt: 1,
            completion: 3,
        };
        let estimate = Estimate {
            prompt_tokens: 100,
            max_output_tokens: 300,
            thinking_tokens: 0,
        };
        let reserve = reservation(ChargingMode::Token, price, estimate, 1);
        assert_eq!(reserve.credits, 1_000);
        for seed in 1..=20_u64 {
            let mut f = Fixture::new(limits.clone());
            let mut rng = Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d));
            let mut open: Vec<String> = Vec::new();
            let (mut expected, mut sum_charged) = (0_u64, 0_u64);
            let mut now = T0;
            for i in 0..200 {
                now += 1;
                if !open.is_empty() && rng.below(2) == 0 {
                    let id = open.swap_remove(rng.below(open.len()));
                    // Real usage varies, and the prompt may exceed its estimate.
                    let usage = Usage {
                        prompt_tokens: 50 + rng.below(100) as u64,
                        completion_tokens: rng.below(250) as u64,
                        reasoning_tokens: rng.below(60) as u64,
                    };
                    let credits = charge(ChargingMode::Token, price, usage, true, 1);
                    expected += credits;
                    let (charged, known) = charged(&f.settle(&id, credits, 0, now));
                    assert!(known);
                    sum_charged += charged;
                    continue;
                }
                let (used, reserved, _) = f.numbers(now);
                let resp = f.admit_with(&format!("l{i}"), reserve, now);
                if admitted(&resp) {
                    assert!(used < quota, "admitted at a spent balance");
                    assert!(used + reserved + reserve.credits <= quota);
                    open.push(format!("l{i}"));
                } else {
                    assert_eq!(denial(&resp).0, Denial::InsufficientQuota);
                    assert!(used + reserved + reserve.credits > quota);
                }
            }
            for id in open.drain(..) {
                let credits = charge(ChargingMode::Token, price, Usage::default(), true, 1);
                expected += credits;
                sum_charged += charged(&f.settle(&id, credits, 0, now)).0;
            }
            let (used, reserved, in_flight) = f.numbers(now);
            assert_eq!(sum_charged, expected, "seed {seed}");
            assert_eq!(used, expected, "seed {seed}");
            assert_eq!((reserved, in_flight), (0, 0));
            if used >= quota {
                assert!(!admitted(&f.admit_with("late", reserve, now)));
            }
        }
    }

    #[test]
    fn a_spent_balance_admits_not_even_a_free_request() {
        let mut f = Fixture::new(UserLimits {
            credit_quota: Some(10),
            ..base_limits()
        });
        assert!(admitted(&f.admit("a", 10, T0)));
        f.settle("a", 12, 0, T0);
        assert_eq!(denial(&f.admit("b", 0, T0)).0, Denial::InsufficientQuota);
        let mut zero = Fixture::new(UserLimits {
            credit_quota: Some(0),
            ..base_limits()
        });
        assert_eq!(denial(&zero.admit("a", 0, T0)).0, Denial::InsufficientQuota);
        // No quota is unlimited.
        let mut open = Fixture::new(base_limits());
        assert!(admitted(&open.admit("a", u64::MAX, T0)));
        assert!(admitted(&open.admit("b", u64::MAX, T0)));
    }

    // ---- rates ----

    #[test]
    fn rpm_denies_until_the_minute_ends() {
        let mut f = Fixture::new(UserLimits {
            rpm: Some(5),
            ..base_limits()
        });
        let start = T0 + 10 * 60_000;
        let mut results = Vec::new();
        for i in 0..12 {
            let now = start + 10_000 + i * 3_000;
            results.push((now, f.admit(&format!("l{i}"), 1, now)));
        }
        let ok = results.iter().filter(|(_, r)| admitted(r)).count();
        assert_eq!(ok, 5);
        for (now, resp) in &results[5..] {
            let expected = start + 60_000 - now;
            assert_eq!(denial(resp), (Denial::RequestsPerMinute, Some(expected)));
            assert_eq!(view(resp).remaining_requests, Some(0));
            assert_eq!(view(resp).reset_requests_ms, Some(expected));
        }
        assert_eq!(view(&results[0].1).remaining_requests, Some(4));
        assert_eq!(view(&results[4].1).remaining_requests, Some(0));
        // The last millisecond of the minute is still in it; the next one is not.
        assert!(!admitted(&f.admit("edge", 1, start + 59_999)));
        let next = f.admit("next", 1, start + 60_000);
        assert!(admitted(&next));
        assert_eq!(view(&next).remaining_requests, Some(4));
        assert_eq!(view(&next).reset_requests_ms, Some(60_000));
    }

    #[test]
    fn rpd_resets_at_local_midnight_in_utc_plus_8() {
        let mut f = Fixture::new(UserLimits {
            rpd: Some(3),
            ..base_limits()
        });
        f.zone = "+08:00".into();
        // 15:00 UTC is 23:00 in UTC+8; midnight there is 16:00 UTC.
        let midnight = T0 + 16 * HOUR;
        assert!(admitted(&f.admit("a", 1, T0 + 15 * HOUR)));
        assert!(admitted(&f.admit("b", 1, T0 + 15 * HOUR + 60_000)));
        assert!(admitted(&f.admit("c", 1, T0 + 15 * HOUR + 120_000)));
        let now = midnight - 90_000;
        assert_eq!(
            denial(&f.admit("d", 1, now)),
            (Denial::RequestsPerDay, Some(90_000))
        );
        assert!(admitted(&f.admit("e", 1, midnight)));
        assert!(admitted(&f.admit("f", 1, midnight + 60_000)));
        // UTC midnight (08:00 in UTC+8) is not a boundary here.
        assert!(admitted(&f.admit("g", 1, T0 + 23 * HOUR + 59 * 60_000)));
        assert_eq!(
            denial(&f.admit("h", 1, T0 + 24 * HOUR + 60_000)),
            (Denial::RequestsPerDay, Some(16 * HOUR - 60_000))
        );
    }

    #[test]
    fn an_unparsable_zone_counts_days_in_utc() {
        let mut f = Fixture::new(UserLimits {
            rpd: Some(1),
            ..base_limits()
        });
        f.zone = "Mars/Olympus_Mons".into();
        assert!(admitted(&f.admit("a", 1, T0 + 23 * HOUR)));
        assert_eq!(
            denial(&f.admit("b", 1, T0 + 23 * HOUR + 60_000)),
            (Denial::RequestsPerDay, Some(HOUR - 60_000))
        );
        assert!(admitted(&f.admit("c", 1, T0 + 24 * HOUR)));
    }

    #[test]
    fn tpm_counts_reserved_tokens_until_settle_replaces_them() {
        let mut f = Fixture::new(UserLimits {
            tpm: Some(1_000),
            ..base_limits()
        });
        let res = |tokens| Reservation { credits: 1, tokens };
        let now = T0 + 5_000;
        let first = f.admit_with("a", res(600), now);
        assert!(admitted(&first));
        assert_eq!(view(&first).remaining_tokens, Some(400));
        assert_eq!(view(&first).limit_tokens, Some(1_000));
        assert_eq!(
            denial(&f.admit_with("b", res(600), now + 1)),
            (Denial::TokensPerMinute, Some(55_000 - 1))
        );
        // The real usage was 100 tokens: 900 are free again.
        f.settle("a", 1, 100, now + 2);
        assert_eq!(view(&f.status(now + 2)).remaining_tokens, Some(900));
        assert!(admitted(&f.admit_with("c", res(600), now + 3)));
        assert!(admitted(&f.admit_with("d", res(300), now + 4)));
        assert_eq!(
            denial(&f.admit_with("e", res(1), now + 5)).0,
            Denial::TokensPerMinute
        );
        // A request larger than the whole TPM is denied even in a fresh minute.
        assert_eq!(
            denial(&f.admit_with("huge", res(1_001), T0 + 60_000)),
            (Denial::TokensPerMinute, Some(60_000))
        );
        // Settling "c" in the next minute must not touch that minute's count.
        f.settle("c", 1, 5, T0 + 60_001);
        assert!(admitted(&f.admit_with("f", res(1_000), T0 + 60_002)));
        assert_eq!(view(&f.status(T0 + 60_003)).remaining_tokens, Some(0));
    }

    #[test]
    fn concurrency_limit_waits_for_a_settle() {
        let mut f = Fixture::new(UserLimits {
            max_concurrency: Some(2),
            ..base_limits()
        });
        assert!(admitted(&f.admit("a", 1, T0)));
        assert!(admitted(&f.admit("b", 1, T0)));
        assert_eq!(
            denial(&f.admit("c", 1, T0)),
            (Denial::Concurrency, Some(1_000))
        );
        f.settle("a", 1, 0, T0 + 1);
        assert!(admitted(&f.admit("c", 1, T0 + 2)));
    }

    #[test]
    fn denied_requests_are_not_counted() {
        let mut f = Fixture::new(UserLimits {
            rpm: Some(2),
            rpd: Some(100),
            credit_quota: Some(1),
            ..base_limits()
        });
        assert!(admitted(&f.admit("a", 1, T0)));
        for i in 0..5 {
            assert_eq!(
                denial(&f.admit(&format!("x{i}"), 1, T0)).0,
                Denial::InsufficientQuota
            );
        }
        assert_eq!(f.ledger.minute.requests, 1);
        assert_eq!(f.ledger.day.requests, 1);
        assert_eq!(f.numbers(T0).1, 1);
    }

    #[test]
    fn rate_view_is_empty_of_limits_that_are_not_set() {
        let mut f = Fixture::new(base_limits());
        let resp = f.admit("a", 1, T0 + 1_500);
        assert_eq!(view(&resp), &RateView::default());
        f.limits = UserLimits {
            revision: 2,
            rpm: Some(10),
            ..base_limits()
        };
        let resp = f.admit("b", 1, T0 + 1_500);
        assert_eq!(
            view(&resp),
            &RateView {
                limit_requests: Some(10),
                remaining_requests: Some(8),
                reset_requests_ms: Some(58_500),
                ..RateView::default()
            }
        );
        // A status in a later minute reads the old one as empty without rolling it.
        let (resp, changed) = f.ledger.apply(
            LedgerRequest::Status {
                day_zone: "UTC".into(),
            },
            T0 + 61_000,
        );
        assert!(!changed);
        assert_eq!(view(&resp).remaining_requests, Some(10));
        assert_eq!(view(&resp).reset_requests_ms, Some(59_000));
    }

    // ---- settle and refunds ----

    #[test]
    fn settle_refunds_the_unused_reservation() {
        let mut f = Fixture::new(UserLimits {
            credit_quota: Some(1_000),
            ..base_limits()
        });
        assert!(admitted(&f.admit("a", 100, T0)));
        assert_eq!(f.numbers(T0), (0, 100, 1));
        let resp = f.settle("a", 30, 0, T0 + 1);
        assert_eq!(
            resp,
            LedgerResponse::Settled {
                charged: 30,
                known: true,
                used: 30
            }
        );
        match f.status(T0 + 2) {
            LedgerResponse::Status {
                used,
                reserved,
                quota,
                in_flight,
                ..
            } => assert_eq!((used, reserved, quota, in_flight), (30, 0, Some(1_000), 0)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_second_settle_is_unknown_and_charges_nothing() {
        let mut f = Fixture::new(base_limits());
        assert!(admitted(&f.admit("a", 5, T0)));
        assert_eq!(charged(&f.settle("a", 5, 0, T0 + 1)), (5, true));
        let (resp, changed) = f.ledger.apply(
            LedgerRequest::Settle {
                lease_id: "a".into(),
                credits: 5,
                tokens: 0,
            },
            T0 + 2,
        );
        assert_eq!(
            resp,
            LedgerResponse::Settled {
                charged: 0,
                known: false,
                used: 5
            }
        );
        assert!(!changed);
        assert_eq!(charged(&f.settle("never", 5, 0, T0 + 3)), (0, false));
        assert_eq!(f.numbers(T0 + 4).0, 5);
    }

    #[test]
    fn an_expired_lease_releases_its_reservation_and_cannot_be_charged() {
        let mut f = Fixture::new(UserLimits {
            credit_quota: Some(100),
            ..base_limits()
        });
        assert!(admitted(&f.admit("a", 100, T0)));
        assert_eq!(
            denial(&f.admit("b", 1, T0 + 1)).0,
            Denial::InsufficientQuota
        );
        // Still held a millisecond before the lease runs out.
        assert_eq!(f.numbers(T0 + TTL - 1), (0, 100, 1));
        let (_, changed) = f.ledger.apply(
            LedgerRequest::Status {
                day_zone: String::new(),
            },
            T0 + TTL,
        );
        assert!(changed, "expiring a lease must be persisted");
        assert_eq!(f.numbers(T0 + TTL), (0, 0, 0));
        assert_eq!(charged(&f.settle("a", 100, 0, T0 + TTL + 1)), (0, false));
        assert!(admitted(&f.admit("c", 100, T0 + TTL + 2)));
    }

    #[test]
    fn an_admit_retried_with_the_same_lease_id_reserves_once() {
        let mut f = Fixture::new(UserLimits {
            credit_quota: Some(10),
            rpm: Some(10),
            ..base_limits()
        });
        assert!(admitted(&f.admit("a", 6, T0)));
        assert!(admitted(&f.admit("a", 6, T0 + 1)));
        assert_eq!(f.numbers(T0 + 1), (0, 6, 1));
        assert_eq!(f.ledger.minute.requests, 1);
    }

    // ---- key lifecycle ----

    #[test]
    fn a_disabled_key_is_refused() {
        let mut f = Fixture::new(UserLimits {
            enabled: false,
            ..base_limits()
        });
        assert_eq!(denial(&f.admit("a", 1, T0)), (Denial::Disabled, None));
        assert!(f.ledger.leases.is_empty());
    }

    #[test]
    fn a_key_expires_exactly_at_its_expiry() {
        let mut f = Fixture::new(UserLimits {
            expires_at: Some(T0 + 1_000),
            ..base_limits()
        });
        assert!(admitted(&f.admit("a", 1, T0 + 999)));
        assert_eq!(
            denial(&f.admit("b", 1, T0 + 1_000)),
            (Denial::Expired, None)
        );
        assert_eq!(
            denial(&f.admit("c", 1, T0 + 5_000)),
            (Denial::Expired, None)
        );
    }

    #[test]
    fn only_allowed_models_are_admitted() {
        let mut f = Fixture::new(UserLimits {
            allowed_models: vec!["gemini-2.5-flash*".into(), "gemini-?-pro".into()],
            ..base_limits()
        });
        for (model, ok) in [
            ("gemini-2.5-flash", true),
            ("gemini-2.5-flash-lite", true),
            ("gemini-3-pro", true),
            ("gemini-2.5-pro", false),
            ("gemini-3-pro-preview", false),
        ] {
            f.model = model.into();
            let resp = f.admit(model, 1, T0);
            if ok {
                assert!(admitted(&resp), "{model}");
            } else {
                assert_eq!(denial(&resp), (Denial::ModelNotAllowed, None), "{model}");
            }
        }
    }

    #[test]
    fn a_rotated_key_refuses_the_old_secret_even_from_stale_callers() {
        let mut f = Fixture::new(base_limits());
        assert!(admitted(&f.admit("a", 1, T0)));
        let rotated = UserLimits {
            revision: 2,
            key_hash: "ab".repeat(32),
            ..base_limits()
        };
        assert_eq!(
            f.configure(rotated.clone(), T0 + 1),
            LedgerResponse::Configured { revision: 2 }
        );
        // An isolate still holding revision 1 presents the old hash with the
        // old limits: they do not roll the rotation back.
        assert_eq!(denial(&f.admit("b", 1, T0 + 2)), (Denial::InvalidKey, None));
        assert_eq!(f.ledger.limits, Some(rotated.clone()));
        // The new secret works.
        let req = LedgerRequest::Admit {
            limits: base_limits(),
            used_baseline: 0,
            key_hash: rotated.key_hash.clone(),
            model: "gemini-2.5-flash".into(),
            reservation: Reservation::default(),
            lease_id: "c".into(),
            lease_ttl_ms: TTL,
            day_zone: "UTC".into(),
        };
        assert!(admitted(&f.ledger.apply(req, T0 + 3).0));
    }

    #[test]
    fn a_deleted_key_is_invalid() {
        let mut f = Fixture::new(base_limits());
        assert!(admitted(&f.admit("a", 3, T0)));
        f.configure(
            UserLimits {
                revision: 5,
                deleted: true,
                ..base_limits()
            },
            T0 + 1,
        );
        assert_eq!(denial(&f.admit("b", 1, T0 + 2)), (Denial::InvalidKey, None));
        // A request already in flight still settles.
        assert_eq!(charged(&f.settle("a", 3, 0, T0 + 3)), (3, true));
    }

    #[test]
    fn an_empty_key_hash_never_matches() {
        let mut f = Fixture::new(UserLimits {
            key_hash: String::new(),
            ..base_limits()
        });
        let req = LedgerRequest::Admit {
            limits: f.limits.clone(),
            used_baseline: 0,
            key_hash: String::new(),
            model: "m".into(),
            reservation: Reservation::default(),
            lease_id: "a".into(),
            lease_ttl_ms: TTL,
            day_zone: String::new(),
        };
        assert_eq!(denial(&f.ledger.apply(req, T0).0).0, Denial::InvalidKey);
    }

    #[test]
    fn older_limits_never_replace_newer_ones() {
        let mut f = Fixture::new(base_limits());
        let newer = UserLimits {
            revision: 10,
            rpm: Some(1),
            ..base_limits()
        };
        f.configure(newer.clone(), T0);
        let older = UserLimits {
            revision: 9,
            rpm: None,
            ..base_limits()
        };
        let (resp, changed) = f
            .ledger
            .apply(LedgerRequest::Configure { limits: older }, T0);
        assert_eq!(resp, LedgerResponse::Configured { revision: 10 });
        assert!(!changed);
        // The same revision again changes nothing either.
        let replay = UserLimits {
            rpm: Some(99),
            ..newer.clone()
        };
        assert!(
            !f.ledger
                .apply(LedgerRequest::Configure { limits: replay }, T0)
                .1
        );
        assert_eq!(f.ledger.limits, Some(newer));
        // Callers carrying the old limits still get the newer rpm of 1.
        assert!(admitted(&f.admit("a", 1, T0)));
        assert_eq!(denial(&f.admit("b", 1, T0)).0, Denial::RequestsPerMinute);
        // A newer copy from a caller is adopted.
        f.limits = UserLimits {
            revision: 11,
            rpm: Some(5),
            ..base_limits()
        };
        assert!(admitted(&f.admit("c", 1, T0)));
    }

    #[test]
    fn d1_baseline_is_adopted_once() {
        let mut ledger = Ledger::default();
        let admit = |id: &str, baseline| LedgerRequest::Admit {
            limits: UserLimits {
                revision: 2,
                credit_quota: Some(100),
                ..base_limits()
            },
            used_baseline: baseline,
            key_hash: HASH.into(),
            model: "m".into(),
            reservation: Reservation {
                credits: 10,
                tokens: 0,
            },
            lease_id: id.into(),
            lease_ttl_ms: TTL,
            day_zone: String::new(),
        };
        // A Configure first does not count as state: the baseline still comes.
        ledger.apply(
            LedgerRequest::Configure {
                limits: base_limits(),
            },
            T0,
        );
        assert!(admitted(&ledger.apply(admit("a", 85), T0).0));
        assert_eq!(ledger.used, 85);
        // Later baselines (D1 lagging or racing) are ignored.
        assert_eq!(
            denial(&ledger.apply(admit("b", 0), T0).0).0,
            Denial::InsufficientQuota
        );
        assert_eq!(ledger.used, 85);
    }

    // ---- persistence and wire ----

    #[test]
    fn status_changes_nothing_when_no_lease_expires() {
        let mut f = Fixture::new(UserLimits {
            rpm: Some(3),
            ..base_limits()
        });
        assert!(admitted(&f.admit("a", 1, T0)));
        let before = f.ledger.clone();
        let (_, changed) = f.ledger.apply(
            LedgerRequest::Status {
                day_zone: "UTC".into(),
            },
            T0 + 10,
        );
        assert!(!changed);
        assert_eq!(f.ledger, before);
        let (_, changed) = f.ledger.apply(
            LedgerRequest::Admit {
                limits: base_limits(),
                used_baseline: 0,
                key_hash: HASH.into(),
                model: "m".into(),
                reservation: Reservation::default(),
                lease_id: "b".into(),
                lease_ttl_ms: TTL,
                day_zone: "UTC".into(),
            },
            T0 + 20,
        );
        assert!(changed);
    }

    #[test]
    fn ledger_state_round_trips_and_old_state_loads() {
        let mut f = Fixture::new(UserLimits {
            tpm: Some(100),
            ..base_limits()
        });
        f.admit_with(
            "a",
            Reservation {
                credits: 3,
                tokens: 7,
            },
            T0,
        );
        let json = serde_json::to_string(&f.ledger).unwrap();
        assert_eq!(serde_json::from_str::<Ledger>(&json).unwrap(), f.ledger);
        assert_eq!(
            serde_json::from_str::<Ledger>("{}").unwrap(),
            Ledger::default()
        );
    }

    #[test]
    fn requests_use_the_op_tag() {
        let admit = LedgerRequest::Admit {
            limits: UserLimits {
                credit_quota: Some(40),
                allowed_models: vec!["gemini-*".into()],
                ..base_limits()
            },
            used_baseline: 3,
            key_hash: HASH.into(),
            model: "gemini-2.5-flash".into(),
            reservation: Reservation {
                credits: 2,
                tokens: 900,
            },
            lease_id: "l-1".into(),
            lease_ttl_ms: 300_000,
            day_zone: "Asia/Shanghai".into(),
        };
        let value = serde_json::to_value(&admit).unwrap();
        assert_eq!(value["op"], "admit");
        assert_eq!(value["reservation"], json!({"credits": 2, "tokens": 900}));
        assert_eq!(value["limits"]["credit_quota"], 40);
        assert_eq!(
            serde_json::from_value::<LedgerRequest>(value).unwrap(),
            admit
        );

        let wire = [
            (
                json!({"op": "settle", "lease_id": "l-1", "credits": 2, "tokens": 10}),
                LedgerRequest::Settle {
                    lease_id: "l-1".into(),
                    credits: 2,
                    tokens: 10,
                },
            ),
            (
                json!({"op": "configure", "limits": {"revision": 4, "key_hash": "ab", "enabled": true}}),
                LedgerRequest::Configure {
                    limits: UserLimits {
                        revision: 4,
                        key_hash: "ab".into(),
                        enabled: true,
                        ..UserLimits::default()
                    },
                },
            ),
            (
                json!({"op": "status", "day_zone": "UTC"}),
                LedgerRequest::Status {
                    day_zone: "UTC".into(),
                },
            ),
        ];
        // Optional limits may be left out by the sender.
        for (json, req) in wire {
            assert_eq!(serde_json::to_value(&req).unwrap()["op"], json["op"]);
            assert_eq!(serde_json::from_value::<LedgerRequest>(json).unwrap(), req);
            let round = serde_json::to_value(&req).unwrap();
            assert_eq!(serde_json::from_value::<LedgerRequest>(round).unwrap(), req);
        }
    }

    #[test]
    fn responses_use_the_result_tag() {
        let denied = LedgerResponse::Denied {
            denial: Denial::InsufficientQuota,
            retry_after_ms: None,
            limits: RateView::default(),
        };
        let value = serde_json::to_value(&denied).unwrap();
        assert_eq!(value["result"], "denied");
        assert_eq!(value["denial"], "insufficient_quota");
        assert_eq!(
            serde_json::from_value::<LedgerResponse>(value).unwrap(),
            denied
        );

        let all = [
            LedgerResponse::Admitted {
                lease_id: "l".into(),
                limits: RateView {
                    limit_requests: Some(5),
                    remaining_requests: Some(4),
                    reset_requests_ms: Some(1_000),
                    limit_tokens: Some(100),
                    remaining_tokens: Some(1),
                    reset_tokens_ms: Some(1_000),
                },
            },
            LedgerResponse::Denied {
                denial: Denial::RequestsPerMinute,
                retry_after_ms: Some(2_500),
                limits: RateView::default(),
            },
            LedgerResponse::Settled {
                charged: 2,
                known: true,
                used: 40,
            },
            LedgerResponse::Configured { revision: 9 },
            LedgerResponse::Status {
                used: 1,
                reserved: 2,
                quota: None,
                in_flight: 1,
                limits: RateView::default(),
            },
        ];
        let tags = ["admitted", "denied", "settled", "configured", "status"];
        for (resp, tag) in all.into_iter().zip(tags) {
            let value = serde_json::to_value(&resp).unwrap();
            assert_eq!(value["result"], tag);
            assert_eq!(
                serde_json::from_value::<LedgerResponse>(value).unwrap(),
                resp
            );
        }
        let names: Vec<String> = [
            Denial::InvalidKey,
            Denial::Disabled,
            Denial::Expired,
            Denial::ModelNotAllowed,
            Denial::RequestsPerMinute,
            Denial::RequestsPerDay,
            Denial::TokensPerMinute,
            Denial::Concurrency,
        ]
        .iter()
        .map(|d| {
            serde_json::to_value(d)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
        assert_eq!(
            names,
            [
                "invalid_key",
                "disabled",
                "expired",
                "model_not_allowed",
                "requests_per_minute",
                "requests_per_day",
                "tokens_per_minute",
                "concurrency"
            ]
        );
        assert_eq!(
            serde_json::to_value(ChargingMode::Token).unwrap(),
            json!("token")
        );
    }
}
