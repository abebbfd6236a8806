//! Per-model limits (the `model_limits` setting): a concurrency cap with a
//! FIFO queue, and per-key request and token budgets. These are the only
//! scheduling decisions that need one authority per model (the `ModelGate`):
//! a model without them is scheduled inside each isolate. This module holds
//! the rows, their lookup and validation, Google's free-tier preset, the
//! lease table the gate runs, and a key's budget windows. No I/O, no clock.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::clock::next_midnight_los_angeles_ms;
use super::error::GatewayError;
use super::quota::glob_match;

/// The longest a request may wait in a model's queue.
pub const MAX_WAIT_CAP_MS: u64 = 600_000;
/// A lease outlives its request's longest legitimate silence by this much
/// before the gate takes the slot back on its own.
pub const LEASE_SLACK_MS: u64 = 5_000;
const MINUTE_MS: u64 = 60_000;

/// One row of `model_limits`: the first row whose glob matches a model
/// applies to it. A field left out (or `null`) sets no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelLimit {
    pub pattern: String,
    /// Requests of this model in flight at once, across every isolate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    /// How long a request waits for a slot before it gets 429 (0 = no wait).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_wait_ms: Option<u64>,
    /// Requests per minute per key (a sliding 60 s window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_rpm: Option<u32>,
    /// Requests per key per day, the day ending at midnight in Los Angeles
    /// (when Google resets per-day quotas).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_rpd: Option<u32>,
    /// Tokens (prompt + output) per minute per key (a sliding 60 s window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_tpm: Option<u64>,
}

/// A model's concurrency cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Concurrency {
    pub max: u32,
    pub max_wait_ms: u64,
}

/// A model's per-key budgets; a `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyBudget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpd: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
}

impl KeyBudget {
    pub fn is_set(&self) -> bool {
        self.rpm.is_some() || self.rpd.is_some() || self.tpm.is_some()
    }
}

/// What applies to one model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    pub concurrency: Option<Concurrency>,
    pub budget: Option<KeyBudget>,
}

impl Applied {
    /// Whether the model is scheduled inside the isolate, with no call to its
    /// gate before the upstream fetch.
    pub fn is_local(&self) -> bool {
        self.concurrency.is_none() && self.budget.is_none()
    }
}

/// The limits of `model`: the first matching row's, or none.
pub fn limits_for(rows: &[ModelLimit], model: &str) -> Applied {
    let Some(row) = rows.iter().find(|r| glob_match(&r.pattern, model)) else {
        return Applied::default();
    };
    let budget = KeyBudget {
        rpm: row.key_rpm,
        rpd: row.key_rpd,
        tpm: row.key_tpm,
    };
    Applied {
        concurrency: row.max_concurrency.map(|max| Concurrency {
            max,
            max_wait_ms: row.max_wait_ms.unwrap_or(0),
        }),
        budget: budget.is_set().then_some(budget),
    }
}

/// Checks the rows, naming the first bad one.
pub fn validate(rows: &[ModelLimit]) -> Result<(), GatewayError> {
    const FIELD: &str = "model_limits";
    let bad = |message: String| Err(GatewayError::invalid_param(message, FIELD));
    if rows.len() > 200 {
        return bad("`model_limits` may hold at most 200 rows.".into());
    }
    for row in rows {
        let name = &row.pattern;
        if name.trim().is_empty() || name.len() > 200 {
            return bad(format!(
                "`model_limits` patterns must be non-empty globs of at most 200 characters, got `{name}`."
            ));
        }
        if row
            .max_concurrency
            .is_some_and(|n| !(1..=10_000).contains(&n))
        {
            return bad(format!(
                "`model_limits` `{name}`: `max_concurrency` must be between 1 and 10000."
            ));
        }
        if row.max_wait_ms.is_some_and(|ms| ms > MAX_WAIT_CAP_MS) {
            return bad(format!(
                "`model_limits` `{name}`: `max_wait_ms` must be at most {MAX_WAIT_CAP_MS}."
            ));
        }
        if row.max_wait_ms.is_some() && row.max_concurrency.is_none() {
            return bad(format!(
                "`model_limits` `{name}`: `max_wait_ms` needs `max_concurrency`."
            ));
        }
        if row.key_rpm == Some(0) || row.key_rpd == Some(0) || row.key_tpm == Some(0) {
            return bad(format!(
                "`model_limits` `{name}`: a budget of 0 would refuse every request; leave it out for no limit."
            ));
        }
        if row.key_rpm.is_some_and(|n| n > 100_000) || row.key_rpd.is_some_and(|n| n > 100_000_000)
        {
            return bad(format!("`model_limits` `{name}`: budget out of range."));
        }
    }
    Ok(())
}

/// A named set of rows the console applies in one click.
#[derive(Debug, Clone, Serialize)]
pub struct Preset {
    pub id: &'static str,
    pub name: &'static str,
    pub source: &'static str,
    pub limits: Vec<ModelLimit>,
}

/// Google's published free-tier limits per key (per project, strictly: keys
/// of one project share them, which project groups account for). As
/// published on ai.google.dev/gemini-api/docs/rate-limits in 2025; Google
/// changes them, so the console shows them before applying.
pub fn presets() -> Vec<Preset> {
    let row = |pattern: &str, rpm: u32, tpm: u64, rpd: u32| ModelLimit {
        pattern: pattern.to_owned(),
        key_rpm: Some(rpm),
        key_tpm: Some(tpm),
        key_rpd: Some(rpd),
        ..ModelLimit::default()
    };
    vec![Preset {
        id: "google-free-tier",
        name: "Google AI Studio free tier (2025)",
        source: "https://ai.google.dev/gemini-api/docs/rate-limits",
        limits: vec![
            row("gemini-2.5-pro*", 5, 250_000, 100),
            row("gemini-2.5-flash-lite*", 15, 250_000, 1_000),
            row("gemini-2.5-flash*", 10, 250_000, 250),
            row("gemini-2.0-flash-lite*", 30, 1_000_000, 200),
            row("gemini-2.0-flash*", 15, 1_000_000, 200),
            row("gemma-3*", 30, 15_000, 14_400),
            row("gemini-embedding*", 100, 30_000, 1_000),
        ],
    }]
}

// ---- leases ------------------------------------------------------------

/// What an acquire came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "lease", rename_all = "snake_case")]
pub enum Acquire {
    /// The slot is the caller's until released or expired.
    Granted,
    /// Every slot is taken; the caller waits at this place in the queue.
    Queued,
    /// Nothing will free in time (no waiting allowed).
    Refused { retry_after_ms: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Waiter {
    id: String,
    since_ms: u64,
    deadline_ms: u64,
    ttl_ms: u64,
}

/// The slots of one model and the queue for them. The gate's shell holds
/// one, persists `held`, and parks each queued caller until the table
/// grants it or its deadline passes.
#[derive(Debug, Clone, Default)]
pub struct LeaseTable {
    /// Lease id → when it expires on its own.
    held: BTreeMap<String, u64>,
    waiting: VecDeque<Waiter>,
    stats: QueueStats,
}

/// What the dashboard shows of a model's queue, since the gate started.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueStats {
    pub granted: u64,
    pub queued: u64,
    pub rejected: u64,
    pub expired: u64,
    /// The waits of the last granted requests (ms), newest last.
    #[serde(skip)]
    recent_waits: VecDeque<u64>,
}

const RECENT_WAITS: usize = 256;

/// The queue's state for the dashboard.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueView {
    pub in_flight: usize,
    pub queued: usize,
    pub granted: u64,
    pub waited: u64,
    pub rejected: u64,
    pub expired: u64,
    pub wait_p50_ms: u64,
    pub wait_p95_ms: u64,
    pub wait_max_ms: u64,
}

impl LeaseTable {
    /// A table holding the leases that were persisted.
    pub fn with_held(held: BTreeMap<String, u64>) -> Self {
        Self {
            held,
            ..Self::default()
        }
    }

    pub fn held(&self) -> &BTreeMap<String, u64> {
        &self.held
    }

    /// Takes a slot for `id`, or queues it behind the earlier waiters, or
    /// refuses it when it may not wait. Expired leases are reclaimed first.
    pub fn acquire(&mut self, id: &str, limit: Concurrency, ttl_ms: u64, now_ms: u64) -> Acquire {
        self.expire(now_ms);
        if self.held.contains_key(id) {
            return Acquire::Granted;
        }
        let cap = usize::try_from(limit.max).unwrap_or(usize::MAX);
        if self.waiting.is_empty() && self.held.len() < cap {
            self.held
                .insert(id.to_owned(), now_ms.saturating_add(ttl_ms));
            self.note_wait(0);
            return Acquire::Granted;
        }
        if limit.max_wait_ms == 0 {
            self.stats.rejected += 1;
            return Acquire::Refused {
                retry_after_ms: self.next_free_ms(now_ms),
            };
        }
        self.stats.queued += 1;
        self.waiting.push_back(Waiter {
            id: id.to_owned(),
            since_ms: now_ms,
            deadline_ms: now_ms.saturating_add(limit.max_wait_ms),
            ttl_ms,
        });
        Acquire::Queued
    }

    /// Frees `id`'s slot (or takes it out of the queue) and grants freed
    /// slots to the waiters at the front: the ids now holding a lease.
    pub fn release(&mut self, id: &str, cap: u32, now_ms: u64) -> Vec<String> {
        self.held.remove(id);
        self.waiting.retain(|w| w.id != id);
        self.admit(cap, now_ms)
    }

    /// Extends a live lease (a long stream that is still flowing).
    pub fn renew(&mut self, id: &str, ttl_ms: u64, now_ms: u64) -> bool {
        match self.held.get_mut(id) {
            Some(until) => {
                *until = (*until).max(now_ms.saturating_add(ttl_ms));
                true
            }
            None => false,
        }
    }

    /// A queued caller whose deadline passed gives up its place: the
    /// `Retry-After` it is told. `None` when it was granted meanwhile.
    pub fn give_up(&mut self, id: &str, now_ms: u64) -> Option<u64> {
        let at = self.waiting.iter().position(|w| w.id == id)?;
        self.waiting.remove(at);
        self.stats.rejected += 1;
        Some(self.next_free_ms(now_ms))
    }

    /// Reclaims leases whose holders never released them (the isolate died,
    /// the release was lost) and grants their slots: the ids granted.
    pub fn expire_and_admit(&mut self, cap: u32, now_ms: u64) -> Vec<String> {
        self.expire(now_ms);
        self.admit(cap, now_ms)
    }

    /// The earliest instant something in the table changes on its own: a
    /// lease expiring or a waiter's deadline. The shell sets its timer there.
    pub fn next_deadline(&self) -> Option<u64> {
        let expiry = self.held.values().copied().min();
        let deadline = self.waiting.iter().map(|w| w.deadline_ms).min();
        match (expiry, deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn is_waiting(&self, id: &str) -> bool {
        self.waiting.iter().any(|w| w.id == id)
    }

    pub fn is_held(&self, id: &str) -> bool {
        self.held.contains_key(id)
    }

    pub fn view(&self) -> QueueView {
        let mut waits: Vec<u64> = self.stats.recent_waits.iter().copied().collect();
        waits.sort_unstable();
        let at = |q: usize| {
            if waits.is_empty() {
                0
            } else {
                waits[(waits.len() - 1) * q / 100]
            }
        };
        QueueView {
            in_flight: self.held.len(),
            queued: self.waiting.len(),
            granted: self.stats.granted,
            waited: self.stats.queued,
            rejected: self.stats.rejected,
            expired: self.stats.expired,
            wait_p50_ms: at(50),
            wait_p95_ms: at(95),
            wait_max_ms: waits.last().copied().unwrap_or(0),
        }
    }

    fn expire(&mut self, now_ms: u64) {
        let before = self.held.len();
        self.held.retain(|_, until| *until > now_ms);
        self.stats.expired += (before - self.held.len()) as u64;
    }

    fn admit(&mut self, cap: u32, now_ms: u64) -> Vec<String> {
        let cap = usize::try_from(cap).unwrap_or(usize::MAX);
        let mut granted = Vec::new();
        while self.held.len() < cap {
            let Some(waiter) = self.waiting.pop_front() else {
                break;
            };
            if waiter.deadline_ms < now_ms {
                self.stats.rejected += 1;
                continue;
            }
            self.held
                .insert(waiter.id.clone(), now_ms.saturating_add(waiter.ttl_ms));
            self.note_wait(now_ms.saturating_sub(waiter.since_ms));
            granted.push(waiter.id);
        }
        granted
    }

    fn note_wait(&mut self, waited_ms: u64) {
        self.stats.granted += 1;
        if self.stats.recent_waits.len() == RECENT_WAITS {
            self.stats.recent_waits.pop_front();
        }
        self.stats.recent_waits.push_back(waited_ms);
    }

    /// When the next slot frees at the latest: the earliest lease expiry
    /// (a release usually comes much sooner). At least one second.
    fn next_free_ms(&self, now_ms: u64) -> u64 {
        self.held
            .values()
            .min()
            .map_or(1_000, |until| until.saturating_sub(now_ms))
            .clamp(1_000, MINUTE_MS)
    }
}

// ---- budgets -----------------------------------------------------------

/// One key's use of its budgets for one model, kept by the gate with the
/// key's health (so it survives a restart).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BudgetUse {
    /// When each request of the last minute was sent.
    #[serde(skip_serializing_if = "VecDeque::is_empty")]
    pub minute: VecDeque<u64>,
    /// (when, tokens) of the requests of the last minute that settled.
    #[serde(skip_serializing_if = "VecDeque::is_empty")]
    pub tokens: VecDeque<(u64, u64)>,
    /// Requests counted since the day began, and when that day ends.
    #[serde(skip_serializing_if = "is_zero")]
    pub day_count: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub day_ends_ms: u64,
}

// On wasm32 a u64 is wider than a pointer, so the lint only fires on 64-bit targets.
#[cfg_attr(
    target_pointer_width = "64",
    expect(
        clippy::trivially_copy_pass_by_ref,
        reason = "serde's skip_serializing_if passes a reference"
    )
)]
fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl BudgetUse {
    pub fn is_empty(&self) -> bool {
        self.minute.is_empty() && self.tokens.is_empty() && self.day_count == 0
    }

    /// Forgets what fell out of the windows.
    fn roll(&mut self, now_ms: u64) {
        let gone = |t: u64| t.saturating_add(MINUTE_MS) <= now_ms;
        while self.minute.front().is_some_and(|&t| gone(t)) {
            self.minute.pop_front();
        }
        while self.tokens.front().is_some_and(|&(t, _)| gone(t)) {
            self.tokens.pop_front();
        }
        if now_ms >= self.day_ends_ms {
            self.day_count = 0;
            self.day_ends_ms = 0;
        }
    }

    /// `None` when one more request fits the budget now; otherwise how long
    /// until it would.
    pub fn wait_ms(&mut self, budget: &KeyBudget, now_ms: u64) -> Option<u64> {
        self.roll(now_ms);
        let mut wait: Option<u64> = None;
        let mut later = |ms: u64| wait = Some(wait.map_or(ms, |w| w.max(ms)));
        if let Some(rpm) = budget.rpm {
            let rpm = usize::try_from(rpm).unwrap_or(usize::MAX);
            if self.minute.len() >= rpm {
                // The request that must leave the window for one more to fit.
                let leaving = self.minute[self.minute.len() - rpm];
                later(leaving + MINUTE_MS - now_ms);
            }
        }
        if let Some(rpd) = budget.rpd
            && self.day_count >= u64::from(rpd)
        {
            later(self.day_ends_ms.saturating_sub(now_ms));
        }
        if let Some(tpm) = budget.tpm {
            let mut used: u64 = self.tokens.iter().map(|&(_, n)| n).sum();
            if used >= tpm {
                // Wait until enough tokens leave the window.
                for &(t, n) in &self.tokens {
                    used -= n;
                    if used < tpm {
                        later(t + MINUTE_MS - now_ms);
                        break;
                    }
                }
            }
        }
        wait
    }

    /// Counts one request sent now.
    pub fn count_request(&mut self, now_ms: u64) {
        self.roll(now_ms);
        self.minute.push_back(now_ms);
        if self.day_ends_ms == 0 {
            self.day_ends_ms = next_midnight_los_angeles_ms(now_ms);
        }
        self.day_count += 1;
        // Bounded: nothing older than a minute is kept, and a budget never
        // needs more than its own size of timestamps.
        while self.minute.len() > 100_000 {
            self.minute.pop_front();
        }
    }

    /// Counts the tokens of a request that settled now.
    pub fn count_tokens(&mut self, tokens: u64, now_ms: u64) {
        self.roll(now_ms);
        if tokens > 0 {
            self.tokens.push_back((now_ms, tokens));
        }
        while self.tokens.len() > 100_000 {
            self.tokens.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pattern: &str) -> ModelLimit {
        ModelLimit {
            pattern: pattern.into(),
            ..ModelLimit::default()
        }
    }

    #[test]
    fn the_first_matching_row_wins_and_no_row_means_local() {
        let rows = vec![
            ModelLimit {
                max_concurrency: Some(2),
                max_wait_ms: Some(1_000),
                ..row("gemini-2.5-pro*")
            },
            ModelLimit {
                key_rpm: Some(5),
                ..row("gemini-*")
            },
        ];
        let pro = limits_for(&rows, "gemini-2.5-pro");
        assert_eq!(
            pro.concurrency,
            Some(Concurrency {
                max: 2,
                max_wait_ms: 1_000
            })
        );
        assert_eq!(pro.budget, None);
        let flash = limits_for(&rows, "gemini-2.5-flash");
        assert_eq!(flash.budget.and_then(|b| b.rpm), Some(5));
        assert!(!flash.is_local());
        assert!(limits_for(&rows, "gemma-3-27b-it").is_local());
        assert!(limits_for(&[], "gemini-2.5-flash").is_local());
    }

    #[test]
    fn bad_rows_are_refused_by_name() {
        for bad in [
            row(""),
            ModelLimit {
                max_concurrency: Some(0),
                ..row("a")
            },
            ModelLimit {
                max_wait_ms: Some(10),
                ..row("a")
            },
            ModelLimit {
                key_rpm: Some(0),
                ..row("a")
            },
        ] {
            let err = validate(std::slice::from_ref(&bad)).unwrap_err();
            assert!(err.client_message().contains("model_limits"), "{bad:?}");
        }
        assert!(validate(&presets()[0].limits).is_ok());
        let parsed: Result<ModelLimit, _> =
            serde_json::from_str(r#"{"pattern":"a","max_concurency":2}"#);
        assert!(parsed.is_err(), "a misspelt field must not pass silently");
    }

    fn cap(max: u32, wait: u64) -> Concurrency {
        Concurrency {
            max,
            max_wait_ms: wait,
        }
    }

    #[test]
    fn leases_are_granted_up_to_the_cap_then_queued_in_arrival_order() {
        let mut t = LeaseTable::default();
        let c = cap(2, 1_000);
        assert_eq!(t.acquire("a", c, 10_000, 0), Acquire::Granted);
        assert_eq!(t.acquire("b", c, 10_000, 1), Acquire::Granted);
        assert_eq!(t.acquire("c", c, 10_000, 2), Acquire::Queued);
        assert_eq!(t.acquire("d", c, 10_000, 3), Acquire::Queued);
        assert_eq!(t.release("b", 2, 10), vec!["c".to_owned()]);
        assert_eq!(t.release("a", 2, 20), vec!["d".to_owned()]);
        let view = t.view();
        assert_eq!((view.in_flight, view.queued, view.granted), (2, 0, 4));
        assert_eq!(view.wait_max_ms, 17);
    }

    #[test]
    fn a_newcomer_never_jumps_the_queue() {
        let mut t = LeaseTable::default();
        let c = cap(1, 1_000);
        t.acquire("a", c, 10_000, 0);
        t.acquire("b", c, 10_000, 1);
        // The slot frees while b waits: it goes to b, not to the newcomer.
        assert_eq!(t.release("a", 1, 2), vec!["b".to_owned()]);
        assert_eq!(t.acquire("c", c, 10_000, 3), Acquire::Queued);
    }

    #[test]
    fn a_waiter_past_its_deadline_gives_up_and_no_wait_means_refused() {
        let mut t = LeaseTable::default();
        t.acquire("a", cap(1, 500), 10_000, 0);
        assert_eq!(t.acquire("b", cap(1, 500), 10_000, 0), Acquire::Queued);
        assert_eq!(t.give_up("b", 500), Some(9_500));
        assert!(!t.is_waiting("b"));
        assert!(matches!(
            t.acquire("c", cap(1, 0), 10_000, 600),
            Acquire::Refused { .. }
        ));
        assert_eq!(t.view().rejected, 2);
    }

    #[test]
    fn leases_nobody_releases_expire_and_their_slots_go_to_the_queue() {
        let mut t = LeaseTable::default();
        let c = cap(2, 60_000);
        t.acquire("dead-1", c, 5_000, 0);
        t.acquire("dead-2", c, 5_000, 0);
        t.acquire("w", c, 5_000, 1_000);
        assert_eq!(t.next_deadline(), Some(5_000));
        assert!(t.expire_and_admit(2, 4_999).is_empty());
        assert_eq!(t.expire_and_admit(2, 5_000), vec!["w".to_owned()]);
        assert_eq!(t.view().in_flight, 1);
        assert_eq!(t.view().expired, 2);
        // A renewed lease lives on.
        assert!(t.renew("w", 5_000, 9_000));
        assert!(t.expire_and_admit(2, 11_000).is_empty());
        assert!(t.is_held("w"));
    }

    #[test]
    fn a_persisted_table_keeps_its_leases() {
        let mut held = BTreeMap::new();
        held.insert("x".to_owned(), 100);
        let mut t = LeaseTable::with_held(held);
        assert!(matches!(
            t.acquire("y", cap(1, 0), 10, 50),
            Acquire::Refused { .. }
        ));
        assert_eq!(t.acquire("y", cap(1, 0), 10, 100), Acquire::Granted);
    }

    #[test]
    fn the_minute_budget_counts_exactly_and_names_the_wait() {
        let budget = KeyBudget {
            rpm: Some(5),
            ..KeyBudget::default()
        };
        let mut used = BudgetUse::default();
        for t in 0..5 {
            assert_eq!(used.wait_ms(&budget, 1_000 + t * 100), None);
            used.count_request(1_000 + t * 100);
        }
        assert_eq!(used.wait_ms(&budget, 2_000), Some(60_000 - 1_000));
        // The first request leaves the window a minute after it was sent.
        assert_eq!(used.wait_ms(&budget, 61_000), None);
    }

    #[test]
    fn the_day_budget_waits_for_midnight_in_los_angeles() {
        let budget = KeyBudget {
            rpd: Some(2),
            ..KeyBudget::default()
        };
        let now = 1_750_000_000_000;
        let mut used = BudgetUse::default();
        used.count_request(now);
        used.count_request(now + 1);
        let wait = used.wait_ms(&budget, now + 2).unwrap();
        assert_eq!(now + 2 + wait, next_midnight_los_angeles_ms(now));
        assert_eq!(used.wait_ms(&budget, now + 2 + wait), None);
    }

    #[test]
    fn the_token_budget_counts_settled_tokens() {
        let budget = KeyBudget {
            tpm: Some(1_000),
            ..KeyBudget::default()
        };
        let mut used = BudgetUse::default();
        used.count_tokens(600, 0);
        assert_eq!(used.wait_ms(&budget, 10), None);
        used.count_tokens(600, 20_000);
        // 1200 ≥ 1000: fits again once the first 600 leave the window.
        assert_eq!(used.wait_ms(&budget, 30_000), Some(30_000));
        assert_eq!(used.wait_ms(&budget, 60_000), None);
    }
}
