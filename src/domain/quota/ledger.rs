//! The ledger state machine the per-user Durable Object runs: a user's limits, the requests
//! and responses of the DO, leases, and [`Ledger::apply`], the pure transition (key checks,
//! concurrency, rates, credit, settlement). Only the key's SHA-256 is compared, never a
//! secret.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::glob::glob_match;
use super::headers::RateView;
use super::prices::Reservation;
use super::zones::{DayWindow, DayZone, MINUTE_MS, MinuteWindow};
use crate::domain::auth::ct_eq;
use crate::domain::clock::minute_start_ms;

/// A request turned away for concurrency may try again this soon: a slot
/// frees when any in-flight request settles, which nothing here can predict.
const CONCURRENCY_RETRY_MS: u64 = 1_000;

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
