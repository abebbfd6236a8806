//! The key-pool policy for one model: per-key health, cooldowns, the circuit
//! breaker and key selection. The `ModelGate` Durable Object holds
//! one [`PoolState`] per model and persists it as JSON; this module owns the
//! rules only. It never reads a clock, storage, D1 or a secret: keys are known
//! by their non-secret id and time is passed in as `now_ms`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::clock::next_midnight_los_angeles_ms;
use super::limits::{BudgetUse, KeyBudget};
use super::outcome::{Outcome, QuotaScope};

/// `Retry-After` is never shorter than this when every key is unavailable.
const MIN_RETRY_AFTER_MS: u64 = 1_000;
/// The weight of the newest sample in the latency and success EWMAs.
const EWMA_ALPHA: f64 = 0.2;
/// Adaptive scoring: a key this slow (ms) gets half the share of an instant one.
const ADAPTIVE_LATENCY_REFERENCE_MS: f64 = 1_000.0;
/// Adaptive scoring: a failing key keeps this floor of success so it is still
/// probed now and then, and can prove it has recovered.
const ADAPTIVE_MIN_SUCCESS: f64 = 0.05;
/// Adaptive scoring: scales scores in (0, 1] to integer weights.
const ADAPTIVE_SCALE: f64 = 1_000.0;

/// How the next key is picked among the usable ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Rotate over the candidates in their stable order.
    #[default]
    RoundRobin,
    /// The key with the fewest `uses`, ties broken in round-robin order.
    LeastUsed,
    /// Smooth weighted round-robin (nginx style) over `Candidate::weight`.
    Weighted,
    /// Smooth weighted round-robin over `weight × success² × latency factor`.
    Adaptive,
}

/// The knobs of the policy, derived from the runtime settings.
///
/// A transient failure (a 5xx, a dropped connection, a timeout) only *demotes* a key: for the
/// demotion window it is tried after every key that is not demoted, but it stays in the pool.
/// One blip must never take a key out, or a few hundred requests a second would empty the pool
/// within a second. Only the circuit breaker (that many failures in a row) takes a key out for
/// a while, and even then a request that has already failed on other keys may try it as its
/// last chance rather than fail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PoolPolicy {
    pub strategy: Strategy,
    /// How long a key that answered 5xx is tried after the others.
    #[serde(alias = "server_error_cooldown_ms")]
    pub server_error_demote_ms: u64,
    /// Consecutive server, network or timeout failures that open the circuit;
    /// 0 turns the breaker off.
    pub circuit_breaker_failures: u32,
    pub circuit_open_ms: u64,
    /// The cooldown after a 429 that carried no `RetryInfo`.
    pub rate_limit_default_cooldown_ms: u64,
    /// How long a key whose connection failed or timed out is tried after the others.
    #[serde(alias = "network_cooldown_ms")]
    pub network_demote_ms: u64,
}

impl Default for PoolPolicy {
    fn default() -> Self {
        Self {
            strategy: Strategy::RoundRobin,
            server_error_demote_ms: 30_000,
            circuit_breaker_failures: 5,
            circuit_open_ms: 300_000,
            rate_limit_default_cooldown_ms: 60_000,
            network_demote_ms: 10_000,
        }
    }
}

/// An enabled upstream key, as configured in D1, passed in a stable order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// The non-secret key id (`mask::key_id`).
    pub id: String,
    /// Share of traffic under `weighted` and `adaptive`; 0 makes the key a
    /// standby that serves only when no positively weighted key can.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Keys of one Google Cloud project share its quota.
    #[serde(default)]
    pub project: Option<String>,
    /// Bumped whenever an admin edits the key (D1 `updated_at`). A higher
    /// revision than the health was recorded under gives the key a fresh
    /// start: that is how re-enabling a disabled key reaches every model's
    /// gate, while a stale candidate list can never revive it.
    #[serde(default)]
    pub revision: u64,
    /// Preference: while any candidate of a lower tier is usable, higher
    /// tiers are not chosen (the routing setting's `prefer` puts the
    /// preferred kind of upstream at tier 0, the other at 1).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tier: u8,
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_zero(tier: &u8) -> bool {
    *tier == 0
}

fn default_weight() -> u32 {
    1
}

impl Candidate {
    /// A key of weight 1, in no project, at revision 0.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            weight: default_weight(),
            project: None,
            revision: 0,
            tier: 0,
        }
    }
}

/// What the pool knows about one key for this model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KeyHealth {
    /// A quota cooldown: the key is not chosen before this instant.
    pub cooldown_until_ms: u64,
    /// After a transient failure the key is tried after the others until this instant.
    pub demoted_until_ms: u64,
    /// The circuit breaker is open until this instant: the key is out, except as the last
    /// chance of a request that already failed on other keys.
    pub circuit_until_ms: u64,
    /// Server, network and timeout failures in a row. 429s have their own
    /// cooldowns and do not feed the circuit breaker.
    pub consecutive_failures: u32,
    /// Why the key was taken out of rotation, e.g. `API_KEY_INVALID`.
    pub disabled: Option<String>,
    pub successes: u64,
    pub failures: u64,
    /// Times the key was chosen: a scheduling counter, not an audit count.
    /// New keys, and keys back from a cooldown, start level with the least-used
    /// key, so `least_used` does not flood a key for being new or rested.
    pub uses: u64,
    /// Latency of successful calls; 0 until the first success.
    pub ewma_latency_ms: f64,
    /// 1.0 = always succeeds; new keys start optimistic.
    pub ewma_success: f64,
    pub last_error: Option<String>,
    pub last_used_ms: u64,
    /// The cooldown is a per-day quota waiting for midnight in Los Angeles.
    pub parked_until_day_reset: bool,
    /// Smooth weighted round-robin's running weight.
    pub wrr_current: i64,
    /// The candidate revision this health belongs to.
    pub revision: u64,
    /// The key's use of its budgets for this model (kept only where budgets are set).
    #[serde(skip_serializing_if = "BudgetUse::is_empty")]
    pub budget: BudgetUse,
}

impl Default for KeyHealth {
    fn default() -> Self {
        Self {
            cooldown_until_ms: 0,
            demoted_until_ms: 0,
            circuit_until_ms: 0,
            consecutive_failures: 0,
            disabled: None,
            successes: 0,
            failures: 0,
            uses: 0,
            ewma_latency_ms: 0.0,
            ewma_success: 1.0,
            last_error: None,
            last_used_ms: 0,
            parked_until_day_reset: false,
            wrr_current: 0,
            revision: 0,
            budget: BudgetUse::default(),
        }
    }
}

/// The persisted pool state of one model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PoolState {
    /// Round-robin position: the candidate index right after the last chosen
    /// key. Scanning starts here, so a skipped key's neighbour never gets two
    /// turns in a row at the others' expense.
    pub cursor: u64,
    pub keys: BTreeMap<String, KeyHealth>,
}

/// The answer of [`PoolState::choose`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    /// Use this key id.
    Key(String),
    /// Keys exist but none is usable now. Answer 429 with `Retry-After`.
    Exhausted {
        /// Until the earliest cooldown ends; at least 1000.
        retry_after_ms: u64,
    },
    /// No key is configured. Answer 503.
    NoKeys,
    /// Every key that could serve has used its budget (`model_limits`).
    OverBudget {
        /// Until the first key fits its budget again; at least 1000.
        retry_after_ms: u64,
    },
}

/// The part of a key's health the gate is the authority for, as an isolate's
/// copy of the pool adopts it. Only keys that are not plainly healthy are
/// sent, so a view of a large healthy pool stays small.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyStatus {
    pub id: String,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub revision: u64,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub cooldown_until_ms: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub parked: bool,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub demoted_until_ms: u64,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub circuit_until_ms: u64,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub consecutive_failures: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<String>,
}

#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference (8 bytes is by value on 64-bit only)"
)]
fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

/// One key's health, for the admin page and `/health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyHealthView {
    pub id: String,
    /// Out of rotation now: a quota cooldown or an open circuit.
    pub cooling: bool,
    /// When it is back: the later of the quota cooldown and the circuit.
    pub cooldown_until_ms: u64,
    pub parked_until_day_reset: bool,
    /// The circuit breaker took it out (until `cooldown_until_ms`).
    #[serde(default)]
    pub circuit_open: bool,
    /// Tried after the others until then (0 when not demoted).
    #[serde(default)]
    pub demoted_until_ms: u64,
    pub disabled: Option<String>,
    pub consecutive_failures: u32,
    pub successes: u64,
    pub failures: u64,
    pub uses: u64,
    pub ewma_latency_ms: f64,
    pub ewma_success: f64,
    pub last_error: Option<String>,
    pub last_used_ms: u64,
}

impl PoolState {
    /// Picks a key for one attempt, skipping keys that are in `exclude`
    /// (already tried by this request), disabled, cooling down for a quota, or
    /// whose circuit is open. Demoted keys (a recent transient failure) come
    /// after the others. Counts the use on the chosen key.
    ///
    /// A request that already failed on other keys (`exclude` is not empty)
    /// may take a key whose circuit is open as its last chance: its failures
    /// were transient, and the alternative is certain failure. A fresh request
    /// never does, so a pool whose circuits are all open fails fast.
    pub fn choose(
        &mut self,
        candidates: &[Candidate],
        exclude: &[String],
        now_ms: u64,
        policy: &PoolPolicy,
    ) -> Choice {
        self.choose_within(candidates, exclude, now_ms, policy, None)
    }

    /// [`PoolState::choose`], skipping keys that would exceed `budget`, and
    /// counting the request against the chosen key's budget.
    pub fn choose_within(
        &mut self,
        candidates: &[Candidate],
        exclude: &[String],
        now_ms: u64,
        policy: &PoolPolicy,
        budget: Option<&KeyBudget>,
    ) -> Choice {
        self.ensure_entries(candidates);
        self.choose_ensured(candidates, exclude, now_ms, policy, budget)
    }

    /// [`PoolState::choose_within`] for a caller that has already made sure
    /// every candidate has its entry (an isolate's copy does it once per
    /// key list, not once per request).
    pub fn choose_ensured(
        &mut self,
        candidates: &[Candidate],
        exclude: &[String],
        now_ms: u64,
        policy: &PoolPolicy,
        budget: Option<&KeyBudget>,
    ) -> Choice {
        if candidates.is_empty() {
            return Choice::NoKeys;
        }
        if policy.strategy == Strategy::RoundRobin
            && budget.is_none()
            && let Some(chosen) = self.next_in_rotation(candidates, exclude, now_ms)
        {
            return self.take(candidates, chosen, now_ms, budget);
        }
        let Some(eligible) = self.eligible(candidates, exclude, now_ms, budget) else {
            if let Some(wait) =
                budget.and_then(|b| self.budget_wait(candidates, exclude, now_ms, b))
            {
                return Choice::OverBudget {
                    retry_after_ms: wait.max(MIN_RETRY_AFTER_MS),
                };
            }
            return Choice::Exhausted {
                retry_after_ms: self.retry_after_ms(candidates, now_ms, policy),
            };
        };
        self.welcome_back(candidates, &eligible, now_ms);
        let order = RotationOrder::new(self.cursor, candidates.len());
        let chosen = match policy.strategy {
            Strategy::RoundRobin => order.first(&eligible),
            Strategy::LeastUsed => self.least_used(candidates, &eligible, order),
            Strategy::Weighted => {
                self.smooth_weighted(candidates, &eligible, order, |c, _| i64::from(c.weight))
            }
            Strategy::Adaptive => {
                self.smooth_weighted(candidates, &eligible, order, adaptive_weight)
            }
        };
        self.take(candidates, chosen, now_ms, budget)
    }

    /// Round robin's common case without a pass over the pool: the first
    /// key after the cursor that is usable, not demoted, not just back
    /// from a cooldown, and of the lowest tier any candidate has. That is
    /// exactly the key the full rule picks; when the walk meets none
    /// quickly (most of the pool is out), the full rule decides.
    fn next_in_rotation(
        &self,
        candidates: &[Candidate],
        exclude: &[String],
        now_ms: u64,
    ) -> Option<usize> {
        const WALK: usize = 64;
        let lowest = candidates.iter().map(|c| c.tier).min()?;
        let order = RotationOrder::new(self.cursor, candidates.len());
        for step in 0..candidates.len().min(WALK) {
            let i = (order.start + step) % candidates.len();
            let c = &candidates[i];
            if c.tier != lowest || exclude.contains(&c.id) {
                continue;
            }
            let Some(h) = self.keys.get(&c.id) else {
                return Some(i);
            };
            if h.is_returning(now_ms) {
                // Its welcome back needs the whole pool: the full rule.
                return None;
            }
            if h.disabled.is_none()
                && !h.is_cooling(now_ms)
                && !h.is_circuit_open(now_ms)
                && !h.is_demoted(now_ms)
            {
                return Some(i);
            }
        }
        None
    }

    /// Hands out candidate `chosen`: the cursor moves past it and the use is counted.
    fn take(
        &mut self,
        candidates: &[Candidate],
        chosen: usize,
        now_ms: u64,
        budget: Option<&KeyBudget>,
    ) -> Choice {
        let order = RotationOrder::new(self.cursor, candidates.len());
        self.cursor = order.cursor_after(chosen);
        let id = candidates[chosen].id.clone();
        let health = self.entry(&id);
        health.uses = health.uses.saturating_add(1);
        health.last_used_ms = now_ms;
        if budget.is_some() {
            health.budget.count_request(now_ms);
        }
        Choice::Key(id)
    }

    /// Makes sure every candidate has its entry (see [`PoolState::choose_ensured`]).
    pub fn sync(&mut self, candidates: &[Candidate]) {
        self.ensure_entries(candidates);
    }

    /// When keys that are up (not excluded, disabled, cooling or open) are
    /// all over budget: how long until the first fits again.
    fn budget_wait(
        &self,
        candidates: &[Candidate],
        exclude: &[String],
        now_ms: u64,
        budget: &KeyBudget,
    ) -> Option<u64> {
        candidates
            .iter()
            .filter(|c| !exclude.contains(&c.id))
            .filter_map(|c| self.keys.get(&c.id))
            .filter(|h| h.disabled.is_none() && !h.is_cooling(now_ms) && !h.is_circuit_open(now_ms))
            .filter_map(|h| h.budget.wait_ms(budget, now_ms))
            .min()
    }

    /// Counts the tokens a budgeted request on `key_id` used, once it settled.
    pub fn count_tokens(&mut self, key_id: &str, tokens: u64, now_ms: u64) {
        if let Some(health) = self.keys.get_mut(key_id) {
            health.budget.count_tokens(tokens, now_ms);
        }
    }

    /// The keys whose health is not plainly good now: what an isolate's copy
    /// of the pool needs from the gate.
    pub fn statuses(&self, now_ms: u64) -> Vec<KeyStatus> {
        self.keys
            .iter()
            .filter(|(_, h)| {
                h.is_cooling(now_ms)
                    || h.is_demoted(now_ms)
                    || h.is_circuit_open(now_ms)
                    || h.consecutive_failures > 0
                    || h.disabled.is_some()
            })
            .map(|(id, h)| KeyStatus {
                id: id.clone(),
                revision: h.revision,
                cooldown_until_ms: if h.is_cooling(now_ms) {
                    h.cooldown_until_ms
                } else {
                    0
                },
                parked: h.is_cooling(now_ms) && h.parked_until_day_reset,
                demoted_until_ms: if h.is_demoted(now_ms) {
                    h.demoted_until_ms
                } else {
                    0
                },
                circuit_until_ms: if h.is_circuit_open(now_ms) {
                    h.circuit_until_ms
                } else {
                    0
                },
                consecutive_failures: h.consecutive_failures,
                disabled: h.disabled.clone(),
            })
            .collect()
    }

    /// Takes the gate's word on health for every candidate: a key named in
    /// `statuses` gets its state, any other is healthy. What this copy keeps
    /// of its own is scheduling (cursor, uses, weights) and the latency and
    /// success averages it measured. A status recorded under an older key
    /// revision than the candidate's is ignored (an admin edit the gate has
    /// not seen yet gives the key a fresh start here too). A local cooldown
    /// the gate has lifted ends now, so the key is welcomed back like any.
    pub fn adopt(&mut self, statuses: &[KeyStatus], candidates: &[Candidate], now_ms: u64) {
        self.ensure_entries(candidates);
        self.prune(candidates);
        let by_id: BTreeMap<&str, &KeyStatus> =
            statuses.iter().map(|s| (s.id.as_str(), s)).collect();
        for candidate in candidates {
            let Some(health) = self.keys.get_mut(&candidate.id) else {
                continue;
            };
            match by_id.get(candidate.id.as_str()) {
                Some(status) if status.revision >= candidate.revision => {
                    health.cooldown_until_ms = status.cooldown_until_ms;
                    health.parked_until_day_reset = status.parked;
                    health.demoted_until_ms = status.demoted_until_ms;
                    health.circuit_until_ms = status.circuit_until_ms;
                    health.consecutive_failures = status.consecutive_failures;
                    health.disabled.clone_from(&status.disabled);
                }
                Some(_) => {}
                None => {
                    health.cooldown_until_ms = health.cooldown_until_ms.min(now_ms);
                    health.circuit_until_ms = health.circuit_until_ms.min(now_ms);
                    health.demoted_until_ms = 0;
                    health.consecutive_failures = 0;
                    health.disabled = None;
                }
            }
        }
    }

    /// The candidates the strategy chooses among, in order of preference:
    /// usable keys that are not demoted; else every usable key; else, for a
    /// request that already failed, the keys whose circuit is open. `None`
    /// when not even those remain.
    fn eligible(
        &self,
        candidates: &[Candidate],
        exclude: &[String],
        now_ms: u64,
        budget: Option<&KeyBudget>,
    ) -> Option<Vec<usize>> {
        // One lookup per candidate: a pool of a thousand keys is scanned once.
        let health: Vec<Option<&KeyHealth>> =
            candidates.iter().map(|c| self.keys.get(&c.id)).collect();
        let within_budget =
            |h: &KeyHealth| budget.is_none_or(|b| h.budget.wait_ms(b, now_ms).is_none());
        let available = |i: usize| {
            !exclude.iter().any(|e| *e == candidates[i].id)
                && health[i].is_none_or(|h| {
                    h.disabled.is_none() && !h.is_cooling(now_ms) && within_budget(h)
                })
        };
        let closed = |i: usize| health[i].is_none_or(|h| !h.is_circuit_open(now_ms));
        let usable = preferred(
            candidates,
            (0..candidates.len())
                .filter(|&i| available(i) && closed(i))
                .collect(),
        );
        if !usable.is_empty() {
            let fresh: Vec<usize> = usable
                .iter()
                .copied()
                .filter(|&i| health[i].is_none_or(|h| !h.is_demoted(now_ms)))
                .collect();
            return Some(if fresh.is_empty() { usable } else { fresh });
        }
        if exclude.is_empty() {
            return None;
        }
        let last_chance = preferred(
            candidates,
            (0..candidates.len()).filter(|&i| available(i)).collect(),
        );
        (!last_chance.is_empty()).then_some(last_chance)
    }

    /// Folds the outcome of one attempt on `key_id` into its health (and, for
    /// a 429, into the health of keys sharing its project).
    pub fn record(
        &mut self,
        key_id: &str,
        outcome: &Outcome,
        latency_ms: u64,
        candidates: &[Candidate],
        now_ms: u64,
        policy: &PoolPolicy,
    ) {
        // A success or a client error touches only its own key; a new key's
        // entry starts level with the others either way.
        if !matches!(outcome, Outcome::Ok | Outcome::ClientError { .. })
            || !self.keys.contains_key(key_id)
        {
            self.ensure_entries(candidates);
        }
        let health = self.entry(key_id);
        match outcome {
            Outcome::Ok => health.on_success(latency_ms),
            // The request was at fault: the key's health is untouched.
            Outcome::ClientError { .. } => {}
            Outcome::RateLimited {
                retry_after_ms,
                scope,
                ..
            } => {
                let (until, parked) = rate_limit_until(*retry_after_ms, *scope, now_ms, policy);
                let label = outcome.summary();
                health.on_failure(label.clone());
                health.cool_down(until, parked);
                self.cool_project_siblings(key_id, candidates, until, parked, &label);
            }
            Outcome::KeyInvalid { reason } => {
                health.on_failure(reason.clone());
                health.disabled = Some(reason.clone());
            }
            Outcome::ServerError { .. } => {
                health.on_transient_failure(
                    outcome.summary(),
                    policy.server_error_demote_ms,
                    now_ms,
                    policy,
                );
            }
            Outcome::Network | Outcome::Timeout => {
                health.on_transient_failure(
                    outcome.summary(),
                    policy.network_demote_ms,
                    now_ms,
                    policy,
                );
            }
        }
    }

    /// Drops the health of keys that are no longer configured.
    pub fn prune(&mut self, candidates: &[Candidate]) {
        // A set, so pruning a pool of hundreds of keys stays linear.
        let configured: BTreeSet<&str> = candidates.iter().map(|c| c.id.as_str()).collect();
        self.keys.retain(|id, _| configured.contains(id.as_str()));
    }

    /// Every known key's health, ordered by id. Configured keys are known
    /// once `choose` or `record` has seen them in `candidates`.
    pub fn snapshot(&self, now_ms: u64) -> Vec<KeyHealthView> {
        self.keys
            .iter()
            .map(|(id, health)| health.view(id, now_ms))
            .collect()
    }

    /// One key's health view, if the key is known.
    pub fn view_of(&self, id: &str, now_ms: u64) -> Option<KeyHealthView> {
        self.keys.get(id).map(|health| health.view(id, now_ms))
    }

    /// The keys that share `key_id`'s project, by id.
    pub fn project_siblings<'a>(&self, key_id: &str, candidates: &'a [Candidate]) -> Vec<&'a str> {
        let Some(project) = project_of(candidates, key_id) else {
            return Vec::new();
        };
        candidates
            .iter()
            .filter(|c| c.id != key_id && c.project.as_deref() == Some(project))
            .map(|c| c.id.as_str())
            .collect()
    }

    fn entry(&mut self, key_id: &str) -> &mut KeyHealth {
        self.keys.entry(key_id.to_owned()).or_default()
    }

    /// Creates health for new candidates, level with the least-used known
    /// key, and gives a fresh start to keys an admin edited. One pass when
    /// nothing is new (every request of a large pool).
    fn ensure_entries(&mut self, candidates: &[Candidate]) {
        let stale = |c: &Candidate, keys: &BTreeMap<String, KeyHealth>| {
            keys.get(&c.id).is_none_or(|h| c.revision > h.revision)
        };
        if !candidates.iter().any(|c| stale(c, &self.keys)) {
            return;
        }
        let known_min_uses = candidates
            .iter()
            .filter_map(|c| self.keys.get(&c.id))
            .map(|h| h.uses)
            .min()
            .unwrap_or(0);
        for candidate in candidates {
            let fresh = || KeyHealth {
                uses: known_min_uses,
                revision: candidate.revision,
                ..KeyHealth::default()
            };
            match self.keys.get_mut(&candidate.id) {
                Some(health) if candidate.revision > health.revision => *health = fresh(),
                Some(_) => {}
                None => {
                    self.keys.insert(candidate.id.clone(), fresh());
                }
            }
        }
    }

    /// Clears expired cooldowns and circuits on the eligible keys and lifts the
    /// `uses` of each returning key to the least-used key that stayed in
    /// rotation. Otherwise a key back from a day-long park would take every
    /// request under `least_used` until it caught up, and burn its fresh quota
    /// at once.
    fn welcome_back(&mut self, candidates: &[Candidate], eligible: &[usize], now_ms: u64) {
        let anyone_back = eligible.iter().any(|&i| {
            self.keys
                .get(&candidates[i].id)
                .is_some_and(|h| h.is_returning(now_ms))
        });
        if !anyone_back {
            return;
        }
        let (returning, staying): (Vec<&str>, Vec<&str>) = eligible
            .iter()
            .map(|&i| candidates[i].id.as_str())
            .partition(|id| self.keys.get(*id).is_some_and(|h| h.is_returning(now_ms)));
        let floor = staying
            .iter()
            .filter_map(|id| self.keys.get(*id))
            .map(|h| h.uses)
            .min();
        for id in returning {
            let health = self.entry(id);
            health.uses = health.uses.max(floor.unwrap_or(0));
            if health.cooldown_until_ms <= now_ms {
                health.cooldown_until_ms = 0;
                health.parked_until_day_reset = false;
            }
            if health.circuit_until_ms <= now_ms {
                health.circuit_until_ms = 0;
            }
        }
    }

    /// Until the earliest cooldown or circuit of a non-disabled key ends.
    /// When nothing is cooling (every key disabled or excluded), the 429
    /// default.
    fn retry_after_ms(&self, candidates: &[Candidate], now_ms: u64, policy: &PoolPolicy) -> u64 {
        let earliest = candidates
            .iter()
            .filter_map(|c| self.keys.get(&c.id))
            .filter(|h| h.disabled.is_none())
            .filter_map(|h| h.back_at(now_ms))
            .min();
        earliest
            .map_or(policy.rate_limit_default_cooldown_ms, |until| {
                until - now_ms
            })
            .max(MIN_RETRY_AFTER_MS)
    }

    fn least_used(
        &self,
        candidates: &[Candidate],
        usable: &[usize],
        order: RotationOrder,
    ) -> usize {
        let uses = |i: usize| self.keys.get(&candidates[i].id).map_or(0, |h| h.uses);
        usable
            .iter()
            .copied()
            .min_by_key(|&i| (uses(i), order.distance(i)))
            .unwrap_or(usable[0])
    }

    /// Smooth weighted round-robin: every usable key gains its weight, the
    /// richest is chosen and pays back the total. Over time each key is chosen
    /// in proportion to its weight, interleaved rather than in bursts, and
    /// without any randomness. Only positively weighted keys take part while
    /// one is usable; otherwise the standbys share equally.
    fn smooth_weighted(
        &mut self,
        candidates: &[Candidate],
        usable: &[usize],
        order: RotationOrder,
        weight_of: impl Fn(&Candidate, &KeyHealth) -> i64,
    ) -> usize {
        let default_health = KeyHealth::default();
        let weighted: Vec<(usize, i64)> = usable
            .iter()
            .map(|&i| {
                let health = self.keys.get(&candidates[i].id).unwrap_or(&default_health);
                (i, weight_of(&candidates[i], health).max(0))
            })
            .collect();
        let any_positive = weighted.iter().any(|&(_, w)| w > 0);
        let pool: Vec<(usize, i64)> = if any_positive {
            weighted.into_iter().filter(|&(_, w)| w > 0).collect()
        } else {
            weighted.into_iter().map(|(i, _)| (i, 1)).collect()
        };
        let total: i64 = pool.iter().map(|&(_, w)| w).fold(0, i64::saturating_add);

        let mut best: Option<(usize, i64)> = None;
        for &(i, weight) in &pool {
            let health = self.entry(&candidates[i].id);
            health.wrr_current = health.wrr_current.saturating_add(weight);
            let current = health.wrr_current;
            let better = best.is_none_or(|(b, best_current)| {
                current > best_current
                    || (current == best_current && order.distance(i) < order.distance(b))
            });
            if better {
                best = Some((i, current));
            }
        }
        let chosen = best.map_or(usable[0], |(i, _)| i);
        let health = self.entry(&candidates[chosen].id);
        health.wrr_current = health.wrr_current.saturating_sub(total);
        chosen
    }

    fn cool_project_siblings(
        &mut self,
        key_id: &str,
        candidates: &[Candidate],
        until: u64,
        parked: bool,
        label: &str,
    ) {
        let Some(project) = project_of(candidates, key_id) else {
            return;
        };
        let siblings: Vec<String> = candidates
            .iter()
            .filter(|c| c.id != key_id && c.project.as_deref() == Some(project))
            .map(|c| c.id.clone())
            .collect();
        for sibling in siblings {
            let health = self.entry(&sibling);
            if health.cool_down(until, parked) {
                health.last_error = Some(format!("{label} (shared project)"));
            }
        }
    }
}

impl KeyHealth {
    fn view(&self, id: &str, now_ms: u64) -> KeyHealthView {
        let circuit_open = self.is_circuit_open(now_ms);
        KeyHealthView {
            id: id.to_owned(),
            cooling: self.is_cooling(now_ms) || circuit_open,
            cooldown_until_ms: self.cooldown_until_ms.max(self.circuit_until_ms),
            parked_until_day_reset: self.is_cooling(now_ms) && self.parked_until_day_reset,
            circuit_open,
            demoted_until_ms: if self.is_demoted(now_ms) {
                self.demoted_until_ms
            } else {
                0
            },
            disabled: self.disabled.clone(),
            consecutive_failures: self.consecutive_failures,
            successes: self.successes,
            failures: self.failures,
            uses: self.uses,
            ewma_latency_ms: self.ewma_latency_ms,
            ewma_success: self.ewma_success,
            last_error: self.last_error.clone(),
            last_used_ms: self.last_used_ms,
        }
    }

    fn is_cooling(&self, now_ms: u64) -> bool {
        self.cooldown_until_ms > now_ms
    }

    fn is_circuit_open(&self, now_ms: u64) -> bool {
        self.circuit_until_ms > now_ms
    }

    fn is_demoted(&self, now_ms: u64) -> bool {
        self.demoted_until_ms > now_ms
    }

    /// A cooldown or circuit that has ended and not been cleared yet.
    fn is_returning(&self, now_ms: u64) -> bool {
        let ended = |until: u64| until > 0 && until <= now_ms;
        ended(self.cooldown_until_ms) || ended(self.circuit_until_ms)
    }

    /// When a key that is out (cooling or with an open circuit) is back.
    fn back_at(&self, now_ms: u64) -> Option<u64> {
        let until = self.cooldown_until_ms.max(self.circuit_until_ms);
        (until > now_ms).then_some(until)
    }

    /// A success also lifts `disabled`, the demotion and the circuit: only a
    /// working key succeeds, so this is how a probe brings a key back.
    fn on_success(&mut self, latency_ms: u64) {
        let latency = f64::from(u32::try_from(latency_ms).unwrap_or(u32::MAX));
        self.ewma_latency_ms = if self.successes == 0 {
            latency
        } else {
            ewma(self.ewma_latency_ms, latency)
        };
        self.ewma_success = ewma(self.ewma_success, 1.0);
        self.successes = self.successes.saturating_add(1);
        self.consecutive_failures = 0;
        self.demoted_until_ms = 0;
        self.circuit_until_ms = 0;
        self.disabled = None;
    }

    fn on_failure(&mut self, label: String) {
        self.ewma_success = ewma(self.ewma_success, 0.0);
        self.failures = self.failures.saturating_add(1);
        self.last_error = Some(label);
    }

    /// A 5xx, a network failure or a timeout: the key goes to the back of the
    /// order for `demote_ms`, and its circuit opens once failures pile up.
    /// Another failure after the circuit closes opens it again at once, since
    /// the count only resets on a success.
    fn on_transient_failure(
        &mut self,
        label: String,
        demote_ms: u64,
        now_ms: u64,
        policy: &PoolPolicy,
    ) {
        self.on_failure(label);
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        self.demoted_until_ms = self.demoted_until_ms.max(now_ms.saturating_add(demote_ms));
        let breaker = policy.circuit_breaker_failures;
        if breaker > 0 && self.consecutive_failures >= breaker {
            if let Some(last_error) = &mut self.last_error {
                last_error.push_str(" (circuit open)");
            }
            self.circuit_until_ms = self
                .circuit_until_ms
                .max(now_ms.saturating_add(policy.circuit_open_ms));
        }
    }

    /// Extends the cooldown to `until`; never shortens one, so a late answer to
    /// an old request cannot cut a per-day park short. Returns whether it grew.
    fn cool_down(&mut self, until: u64, parked: bool) -> bool {
        if until <= self.cooldown_until_ms {
            return false;
        }
        self.cooldown_until_ms = until;
        self.parked_until_day_reset = parked;
        true
    }
}

/// The candidate order seen from the round-robin cursor.
#[derive(Debug, Clone, Copy)]
struct RotationOrder {
    start: usize,
    len: usize,
}

impl RotationOrder {
    fn new(cursor: u64, len: usize) -> Self {
        let len_u64 = u64::try_from(len).unwrap_or(u64::MAX);
        let start = usize::try_from(cursor % len_u64.max(1)).unwrap_or(0);
        Self { start, len }
    }

    /// How many steps after the cursor candidate `index` comes.
    fn distance(self, index: usize) -> usize {
        (index + self.len - self.start) % self.len
    }

    fn first(self, usable: &[usize]) -> usize {
        usable
            .iter()
            .copied()
            .min_by_key(|&i| self.distance(i))
            .unwrap_or(usable[0])
    }

    fn cursor_after(self, chosen: usize) -> u64 {
        u64::try_from((chosen + 1) % self.len).unwrap_or(0)
    }
}

/// When a rate-limited key may serve again, and whether that is a per-day
/// park. Google resets per-day quotas at midnight Pacific time, whatever the
/// `RetryInfo` says.
fn rate_limit_until(
    retry_after_ms: Option<u64>,
    scope: QuotaScope,
    now_ms: u64,
    policy: &PoolPolicy,
) -> (u64, bool) {
    match scope {
        QuotaScope::PerDay => (next_midnight_los_angeles_ms(now_ms), true),
        QuotaScope::PerMinute | QuotaScope::Other => {
            let wait = retry_after_ms.unwrap_or(policy.rate_limit_default_cooldown_ms);
            (now_ms.saturating_add(wait), false)
        }
    }
}

fn project_of<'a>(candidates: &'a [Candidate], key_id: &str) -> Option<&'a str> {
    candidates
        .iter()
        .find(|c| c.id == key_id)
        .and_then(|c| c.project.as_deref())
        .filter(|p| !p.is_empty())
}

fn ewma(previous: f64, sample: f64) -> f64 {
    previous + EWMA_ALPHA * (sample - previous)
}

/// `weight × success² × latency factor`, scaled to an integer. Squaring the
/// success rate makes a flaky key lose share fast; the floor keeps it probed.
fn adaptive_weight(candidate: &Candidate, health: &KeyHealth) -> i64 {
    if candidate.weight == 0 {
        return 0;
    }
    let success = health.ewma_success.clamp(ADAPTIVE_MIN_SUCCESS, 1.0);
    let latency = health.ewma_latency_ms.max(0.0);
    let latency_factor = ADAPTIVE_LATENCY_REFERENCE_MS / (ADAPTIVE_LATENCY_REFERENCE_MS + latency);
    let score = f64::from(candidate.weight) * success * success * latency_factor * ADAPTIVE_SCALE;
    saturating_f64_to_i64(score).max(1)
}

#[expect(
    clippy::cast_possible_truncation,
    reason = "float-to-int `as` saturates and maps NaN to 0, which is what we want"
)]
fn saturating_f64_to_i64(value: f64) -> i64 {
    value.round() as i64
}

/// The candidates of the lowest tier among `indices` (all of them when every
/// candidate is of one tier).
fn preferred(candidates: &[Candidate], indices: Vec<usize>) -> Vec<usize> {
    let Some(best) = indices.iter().map(|&i| candidates[i].tier).min() else {
        return indices;
    };
    indices
        .into_iter()
        .filter(|&i| candidates[i].tier == best)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::clock::format_rfc3339;

    /// The round-robin walk must pick exactly what the full rule picks,
    /// whenever it picks at all: checked over many pseudo-random pools.
    #[test]
    fn the_round_robin_walk_agrees_with_the_full_rule() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let now = 1_000_000;
        let mut walked = 0;
        for _ in 0..5_000 {
            let size = 1 + usize::try_from(next(8)).unwrap_or(1);
            let candidates: Vec<Candidate> = (0..size)
                .map(|i| Candidate {
                    tier: u8::try_from(next(2)).unwrap_or(0),
                    ..Candidate::new(format!("k{i}"))
                })
                .collect();
            let mut state = PoolState {
                cursor: next(16),
                ..PoolState::default()
            };
            state.ensure_entries(&candidates);
            for c in &candidates {
                let h = state.keys.get_mut(&c.id).unwrap_or_else(|| unreachable!());
                match next(7) {
                    0 => h.cooldown_until_ms = now + 10,
                    1 => h.demoted_until_ms = now + 10,
                    2 => h.circuit_until_ms = now + 10,
                    3 => h.disabled = Some("x".into()),
                    4 => h.cooldown_until_ms = now - 10,
                    _ => {}
                }
            }
            let exclude: Vec<String> = candidates
                .iter()
                .filter(|_| next(5) == 0)
                .map(|c| c.id.clone())
                .collect();
            let Some(fast) = state.next_in_rotation(&candidates, &exclude, now) else {
                continue;
            };
            walked += 1;
            let eligible = state
                .eligible(&candidates, &exclude, now, None)
                .unwrap_or_else(|| panic!("the walk found a key the full rule has none for"));
            let full = RotationOrder::new(state.cursor, candidates.len()).first(&eligible);
            assert_eq!(fast, full, "cursor {} exclude {exclude:?}", state.cursor);
        }
        assert!(walked > 1_000, "the walk decided only {walked} times");
    }

    const T0: u64 = 1_705_348_800_000; // 2024-01-15T20:00:00Z, 12:00 PST

    fn candidates(ids: &[&str]) -> Vec<Candidate> {
        ids.iter().map(|id| Candidate::new(*id)).collect()
    }

    fn with_projects(pairs: &[(&str, Option<&str>)]) -> Vec<Candidate> {
        pairs
            .iter()
            .map(|(id, project)| Candidate {
                project: project.map(str::to_owned),
                ..Candidate::new(*id)
            })
            .collect()
    }

    fn weighted(pairs: &[(&str, u32)]) -> Vec<Candidate> {
        pairs
            .iter()
            .map(|(id, weight)| Candidate {
                weight: *weight,
                ..Candidate::new(*id)
            })
            .collect()
    }

    fn policy(strategy: Strategy) -> PoolPolicy {
        PoolPolicy {
            strategy,
            ..PoolPolicy::default()
        }
    }

    fn pick(state: &mut PoolState, cands: &[Candidate], now: u64, policy: &PoolPolicy) -> String {
        pick_excluding(state, cands, &[], now, policy)
    }

    fn pick_excluding(
        state: &mut PoolState,
        cands: &[Candidate],
        exclude: &[String],
        now: u64,
        policy: &PoolPolicy,
    ) -> String {
        match state.choose(cands, exclude, now, policy) {
            Choice::Key(id) => id,
            other => panic!("expected a key, got {other:?}"),
        }
    }

    fn picks(
        state: &mut PoolState,
        cands: &[Candidate],
        n: usize,
        now: u64,
        policy: &PoolPolicy,
    ) -> Vec<String> {
        (0..n).map(|_| pick(state, cands, now, policy)).collect()
    }

    fn per_minute(retry_after_ms: Option<u64>) -> Outcome {
        Outcome::RateLimited {
            retry_after_ms,
            scope: QuotaScope::PerMinute,
            quota_id: Some("GenerateRequestsPerMinutePerProjectPerModel-FreeTier".to_owned()),
        }
    }

    fn per_day() -> Outcome {
        Outcome::RateLimited {
            retry_after_ms: Some(38_000),
            scope: QuotaScope::PerDay,
            quota_id: Some("GenerateRequestsPerDayPerProjectPerModel-FreeTier".to_owned()),
        }
    }

    fn view(state: &PoolState, id: &str, now: u64) -> KeyHealthView {
        state
            .snapshot(now)
            .into_iter()
            .find(|v| v.id == id)
            .unwrap()
    }

    #[test]
    fn round_robin_rotates_over_healthy_keys() {
        let cands = candidates(&["a", "b", "c"]);
        let mut state = PoolState::default();
        let p = PoolPolicy::default();
        assert_eq!(
            picks(&mut state, &cands, 6, T0, &p),
            ["a", "b", "c", "a", "b", "c"]
        );
    }

    #[test]
    fn round_robin_skip_gives_no_neighbour_a_double_turn() {
        let cands = candidates(&["a", "b", "c"]);
        let mut state = PoolState::default();
        let p = PoolPolicy::default();
        assert_eq!(pick(&mut state, &cands, T0, &p), "a");
        state.record("b", &per_minute(Some(60_000)), 100, &cands, T0, &p);
        assert_eq!(
            picks(&mut state, &cands, 4, T0 + 1, &p),
            ["c", "a", "c", "a"]
        );
        // b is back after its delay and takes its turn in order.
        assert_eq!(
            picks(&mut state, &cands, 3, T0 + 60_000, &p),
            ["b", "c", "a"]
        );
    }

    #[test]
    fn rate_limited_key_is_skipped_until_retry_delay_passes() {
        let cands = candidates(&["a", "b"]);
        let mut state = PoolState::default();
        let p = PoolPolicy::default();
        state.record("a", &per_minute(Some(38_000)), 100, &cands, T0, &p);
        for t in [T0, T0 + 1_000, T0 + 37_999] {
            assert_eq!(pick(&mut state, &cands, t, &p), "b");
        }
        let v = view(&state, "a", T0);
        assert!(v.cooling);
        assert_eq!(v.cooldown_until_ms, T0 + 38_000);
        assert_eq!(v.last_error.as_deref(), Some("429 per-minute quota"));
        assert_eq!(picks(&mut state, &cands, 2, T0 + 38_000, &p), ["a", "b"]);
    }

    #[test]
    fn rate_limit_without_retry_info_cools_for_the_default() {
        let cands = candidates(&["a"]);
        let mut state = PoolState::default();
        let p = PoolPolicy::default();
        state.record("a", &per_minute(None), 100, &cands, T0, &p);
        assert_eq!(view(&state, "a", T0).cooldown_until_ms, T0 + 60_000);
    }

    #[test]
    fn per_day_quota_parks_key_until_la_midnight() {
        let cands = candidates(&["a", "b"]);
        let mut state = PoolState::default();
        let p = PoolPolicy::default();
        state.record("a", &per_day(), 100, &cands, T0, &p);
        let v = view(&state, "a", T0);
        assert!(v.parked_until_day_reset);
        assert_eq!(
            format_rfc3339(v.cooldown_until_ms),
            "2024-01-16T08:00:00.000Z"
        );
        assert_eq!(v.last_error.as_deref(), Some("429 per-day quota"));

        let midnight = v.cooldown_until_ms;
        assert_eq!(pick(&mut state, &cands, midnight - 1, &p), "b");
        assert_eq!(pick(&mut state, &cands, midnight - 1, &p), "b");
        assert_eq!(pick(&mut state, &cands, midnight, &p), "a");
        assert!(!view(&state, "a", midnight).parked_until_day_reset);
    }

    #[test]
    fn late_short_cooldown_does_not_cut_a_day_park_short() {
        let cands = candidates(&["a"]);
        let mut state = PoolState::default();
        let p = PoolPolicy::default();
        state.record("a", &per_day(), 100, &cands, T0, &p);
        let parked_until = view(&state, "a", T0).cooldown_until_ms;
        state.record("a", &per_minute(Some(5_000)), 100, &cands, T0 + 1, &p);
        state.record(
            "a",
            &Outcome::ServerError { status: 503 },
            100,
            &cands,
            T0 + 2,
            &p,
        );
        let v = view(&state, "a", T0 + 3);
        assert_eq!(v.cooldown_until_ms, parked_until);
        assert!(v.parked_until_day_reset);
    }

    #[test]
    fn invalid_key_is_never_chosen_again() {
        let cands = candidates(&["a", "b", "c"]);
        let mut state = PoolState::default();
        let p = PoolPolicy::default();
        let outcome = Outcome::KeyInvalid {
            reason: "API_KEY_INVALID".to_owned(),
        };
        state.record("b", &outcome, 100, &cands, T0, &p);
        for day in 0..30 {
            let now = T0 + day * 86_400_000;
            assert!(
                picks(&mut state, &cands, 3, now, &p)
                    .iter()
                    .all(|id| id != "b")
            );
        }
        let v = view(&state, "b", T0);
        assert_eq!(v.disabled.as_deref(), Some("API_KEY_INVALID"));
        assert_eq!(v.last_error.as_deref(), Some("API_KEY_INVALID"));
        assert_eq!(v.failures, 1);
    }

    #[test]
    fn disabled_key_returns_after_a_successful_probe() {
        let cands = candidates(&["a"]);
        let mut state = PoolState::default();
        let p = PoolPolicy::default();
        let invalid = Outcome::KeyInvalid {
            reason: "CONSUMER_SUSPENDED".to_owned(),
        };
        state.record("a", &invalid, 100, &cands, T0, &p);
        assert!(matches!(
            state.choose(&cands, &[], T0, &p),
            Choice::Exhausted { .. }
        ));
        state.record("a", &Outcome::Ok, 100, &cands, T0, &p);
        assert_eq!(pick(&mut state, &cands, T0, &p), "a");
    }

    #[test]
    fn same_project_keys_cool_down_together() {
        let cands = with_projects(&[
            ("a", Some("p1")),
            ("b", Some("p1")),
            ("c", Some("p2")),
            ("d", None),
        ]);
        let mut state = PoolState::default();
        let p = PoolPolicy::default();
        state.record("a", &per_minute(Some(20_000)), 100, &cands, T0, &p);
        assert!(view(&state, "b", T0).cooling);
        assert_eq!(view(&state, "b", T0).cooldown_until_ms, T0 + 20_000);
        assert_eq!(
            view(&state, "b", T0).last_error.as_deref(),
            Some("429 per-minute quota (shared project)")
        );
        assert_eq!(
            view(&state, "b", T0).failures,
            0,
            "the sibling did not fail"
        );
        assert!(!view(&state, "c", T0).cooling);
        assert!(!view(&state, "d", T0).cooling);
        assert_eq!(
            picks(&mut state, &cands, 4, T0 + 1, &p),
            ["c", "d", "c", "d"]
        );
    }

    #[test]
    fn same_project_keys_share_a_day_park() {
        let cands = with_projects(&[("a", Some("p1")), ("b", Some("p1"))]);
        let mut state = PoolState::default();
        let p = PoolPolicy::default();
        state.record("b", &per_day(), 100, &cands, T0, &p);
        let a = view(&state, "a", T0);
        assert!(a.parked_until_day_reset);
        assert_eq!(a.cooldown_until_ms, view(&state, "b", T0).cooldown_until_ms);
    }

    #[test]
    fn server_errors_do_not_spread_to_project_siblings() {
        let cands = with_projects(&[("a", Some("p1")), ("b", Some("p1"))]);
        let mut state = PoolState::default();
        let p = PoolPolicy::default();
        state.record(
            "a",
            &Outcome::ServerError { status: 500 },
            100,
            &cands,
            T0,
            &p,
        );
        assert!(!view(&state, "b", T0).cooling);
    }

    #[test]
    fn empty_project_label_is_no_project() {
        let cands = with_projects(&[("a", Some("")), ("b", Some(""))]);
        let mut state = PoolState::default();
        let p = PoolPolicy::default();
        state.record("a", &per_minute(Some(20_000)), 100, &cands, T0, &p);
        assert!(!view(&state, "b", T0).cooling);
    }

    #[test]
    fn excluded_keys_are_never_chosen_twice_in_one_request() {
        let cands = candidates(&["a", "b", "c"]);
        let mut state = PoolState::default();
        for strategy in [
            Strategy::RoundRobin,
            Strategy::LeastUsed,
            Strategy::Weighted,
            Strategy::Adaptive,
        ] {
            let p = policy(strategy);
            let mut tried: Vec<String> = Vec::new();
            for _ in 0..3 {
                let id = pick_excluding(&mut state, &cands, &tried, T0, &p);
                assert!(!tried.contains(&id), "{strategy:?} chose {id} twice");
                tried.push(id);
            }
            assert_eq!(
                state.choose(&cands, &tried, T0, &p),
                Choice::Exhausted {
                    retry_after_ms: 60_000
                },
                "only excluded keys are left: the policy default applies"
            );
        }
    }

    #[test]
    fn all_cooling_returns_exhausted_with_earliest_retry() {
        let cands = candidates(&["a", "b"]);
        let mut state = PoolState::default();
        let p = PoolPolicy::default();
        state.record("a", &per_minute(Some(38_000)), 100, &cands, T0, &p);
        state.record("b", &per_minute(Some(10_000)), 100, &cands, T0, &p);
        assert_eq!(
            state.choose(&cands, &[], T0 + 4_000, &p),
            Choice::Exhausted {
                retry_after_ms: 6_000
            }
        );
    }

    #[test]
    fn transient_failures_never_exhaust_the_pool() {
        let cands = candidates(&["a", "b", "c"]);
        let mut state = PoolState::default();
        let p = PoolPolicy::default();
        state.record("a", &per_minute(Some(38_000)), 100, &cands, T0, &p);
        state.record("b", &Outcome::Network, 100, &cands, T0, &p);
        state.record(
            "c",
            &Outcome::ServerError { status: 503 },
            100,
            &cands,
            T0,
            &p,
        );
        // b and c are demoted, not removed: a fresh request still gets one.
        let first = pick(&mut state, &cands, T0 + 1, &p);
        assert!(first == "b" || first == "c", "{first}");
    }

    #[test]
    fn exhausted_retry_is_at_least_one_second() {
        let cands = candidates(&["a"]);
        let mut state = PoolState::default();
        let p = PoolPolicy::default();
        state.record("a", &per_minute(Some(300)), 100, &cands, T0, &p);
        assert_eq!(
            state.choose(&cands, &[], T0 + 100, &p),
            Choice::Exhausted {
                retry_after_ms: 1_000
            }
        );
    }

    #[test]
    fn disabled_keys_do_not_set_the_retry() {
        let cands = candidates(&["a", "b"]);
        let mut state = PoolState::default();
        let p = PoolPolicy::default();
        let invalid = Outcome::KeyInvalid {
            reason: "API_KEY_INVALID".to_owned(),
        };
        state.record("a", &invalid, 100, &cands, T0, &p);
        state.record("b", &invalid, 100, &cands, T0, &p);
        assert_eq!(
            state.choose(&cands, &[], T0, &p),
            Choice::Exhausted {
                retry_after_ms: 60_000
            }
        );
        state.record("b", &Outcome::Ok, 100, &cands, T0, &p);
        state.record("b", &per_minute(Some(9_000)), 100, &cands, T0, &p);
        assert_eq!(
            state.choose(&cands, &[], T0, &p),
            Choice::Exhausted {
                retry_after_ms: 9_000
            }
        );
    }

    #[test]
    fn no_candidates_means_no_keys() {
        let mut state = PoolState::default();
        assert_eq!(
            state.choose(&[], &[], T0, &PoolPolicy::default()),
            Choice::NoKeys
        );
    }

    #[test]
    fn a_transient_failure_moves_the_key_behind_the_others() {
        let cands = candidates(&["a", "b", "c"]);
        let mut state = PoolState::default();
        let p = PoolPolicy::default();
        assert_eq!(pick(&mut state, &cands, T0, &p), "a");
        state.record(
            "b",
            &Outcome::ServerError { status: 500 },
            100,
            &cands,
            T0,
            &p,
        );
        let v = view(&state, "b", T0);
        assert!(!v.cooling, "a 5xx does not take the key out");
        assert_eq!(v.demoted_until_ms, T0 + 30_000);
        assert_eq!(
            picks(&mut state, &cands, 4, T0 + 1, &p),
            ["c", "a", "c", "a"]
        );
        // Still chosen when the others are not available to this request.
        assert_eq!(
            pick_excluding(&mut state, &cands, &["a".into(), "c".into()], T0 + 2, &p),
            "b"
        );
        // Its place in the rotation comes back once the demotion ends.
        assert_eq!(
            picks(&mut state, &cands, 3, T0 + 30_000, &p),
            ["c", "a", "b"]
        );
    }

    #[test]
    fn demoted_keys_share_the_load_when_every_key_is_demoted() {
        let cands = candidates(&["a", "b", "c"]);
        let mut state = PoolState::default();
        let p = PoolPolicy::default();
        for id in ["a", "b", "c"] {
            state.record(id, &Outcome::Timeout, 100, &cands, T0, &p);
        }
        assert_eq!(
            picks(&mut state, &cands, 6, T0 + 1, &p),
            ["a", "b", "c", "a", "b", "c"]
        );
    }

    #[test]
    fn a_success_lifts_the_demotion() {
        let cands = candidates(&["a", "b"]);
        let mut state = PoolState::default();
        let p = PoolPolicy::default();
        state.record("a", &Outcome::Network, 100, &cands, T0, &p);
        assert_eq!(view(&state, "a", T0).demoted_until_ms, T0 + 10_000);
        state.record("a", &Outcome::Ok, 100, &cands, T0 + 1, &p);
        let v = view(&state, "a", T0 + 1);
        assert_eq!((v.demoted_until_ms, v.consecutive_failures), (0, 0));
    }

    #[test]
    fn circuit_opens_after_consecutive_server_errors() {
        let cands = candidates(&["a"]);
        let mut state = PoolState::default();
        let p = PoolPolicy::default();
        let mut now = T0;
        for n in 1..=4 {
            state.record(
                "a",
                &Outcome::ServerError { status: 503 },
                100,
                &cands,
                now,
                &p,
            );
            let v = view(&state, "a", now);
            assert_eq!(v.consecutive_failures, n);
            assert!(
                !v.cooling && !v.circuit_open,
                "only demoted before the breaker"
            );
            assert_eq!(pick(&mut state, &cands, now + 1, &p), "a");
            now += 1_000;
        }
        state.record("a", &Outcome::Timeout, 100, &cands, now, &p);
        let v = view(&state, "a", now);
        assert!(v.cooling && v.circuit_open);
        assert_eq!(v.cooldown_until_ms, now + 300_000);
        assert_eq!(v.last_error.as_deref(), Some("timeout (circuit open)"));
        // A fresh request fails fast: the only key is out.
        assert_eq!(
            state.choose(&cands, &[], now + 299_000, &p),
            Choice::Exhausted {
                retry_after_ms: 1_000
            }
        );

        // Half open: one more failure re-opens the circuit at once.
        now += 300_000;
        assert_eq!(pick(&mut state, &cands, now, &p), "a");
        state.record("a", &Outcome::Network, 100, &cands, now, &p);
        assert_eq!(view(&state, "a", now).cooldown_until_ms, now + 300_000);
    }

    #[test]
    fn an_open_circuit_is_the_last_chance_of_a_request_that_already_failed() {
        let cands = candidates(&["a", "b", "c"]);
        let mut state = PoolState::default();
        let p = PoolPolicy {
            circuit_breaker_failures: 1,
            ..PoolPolicy::default()
        };
        state.record("a", &Outcome::Network, 100, &cands, T0, &p);
        state.record("b", &per_minute(Some(60_000)), 100, &cands, T0, &p);
        // A fresh request takes the healthy key, never the open circuit.
        assert_eq!(pick(&mut state, &cands, T0 + 1, &p), "c");
        // After c failed in this request, a is its last chance; b's quota cooldown holds.
        assert_eq!(
            pick_excluding(&mut state, &cands, &["c".into()], T0 + 2, &p),
            "a"
        );
        assert!(matches!(
            state.choose(&cands, &["c".into(), "a".into()], T0 + 3, &p),
            Choice::Exhausted { .. }
        ));
        // The circuit is still open for fresh requests.
        assert!(view(&state, "a", T0 + 3).circuit_open);
    }

    #[test]
    fn network_failures_demote_briefly() {
        let cands = candidates(&["a"]);
        let mut state = PoolState::default();
        let p = PoolPolicy::default();
        state.record("a", &Outcome::Network, 100, &cands, T0, &p);
        let v = view(&state, "a", T0);
        assert_eq!((v.cooldown_until_ms, v.demoted_until_ms), (0, T0 + 10_000));
        assert_eq!(v.last_error.as_deref(), Some("network error"));
    }

    #[test]
    fn zero_breaker_threshold_never_opens_the_circuit() {
        let cands = candidates(&["a"]);
        let mut state = PoolState::default();
        let p = PoolPolicy {
            circuit_breaker_failures: 0,
            ..PoolPolicy::default()
        };
        for _ in 0..20 {
            state.record(
                "a",
                &Outcome::ServerError { status: 500 },
                100,
                &cands,
                T0,
                &p,
            );
        }
        let v = view(&state, "a", T0);
        assert!(!v.circuit_open && !v.cooling);
        assert_eq!(pick(&mut state, &cands, T0, &p), "a");
    }

    #[test]
    fn success_resets_failure_count() {
        let cands = candidates(&["a"]);
        let mut state = PoolState::default();
        let p = PoolPolicy::default();
        for _ in 0..4 {
            state.record(
                "a",
                &Outcome::ServerError { status: 500 },
                100,
                &cands,
                T0,
                &p,
            );
        }
        state.record("a", &Outcome::Ok, 100, &cands, T0, &p);
        assert_eq!(view(&state, "a", T0).consecutive_failures, 0);
        for _ in 0..4 {
            state.record(
                "a",
                &Outcome::ServerError { status: 500 },
                100,
                &cands,
                T0,
                &p,
            );
        }
        let v = view(&state, "a", T0);
        assert_eq!(v.consecutive_failures, 4);
        assert!(!v.circuit_open, "the circuit stayed closed");
        assert_eq!((v.successes, v.failures), (1, 8));
    }

    /// The property the pool exists for: with five keys, 30% of calls failing
    /// transiently and at most two faults per request, every request is served
    /// within `max_retries + 1` attempts on distinct keys, whatever the order.
    #[test]
    fn transient_faults_alone_never_fail_a_request() {
        let cands = candidates(&["a", "b", "c", "d", "e"]);
        let mut state = PoolState::default();
        let p = PoolPolicy::default();
        let attempts = 4; // max_retries (3) + 1
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut random = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % 1_000
        };
        let mut now = T0;
        let mut faults = 0;
        for request in 0..5_000 {
            let mut tried: Vec<String> = Vec::new();
            let mut faults_here = 0;
            let served = (0..attempts).any(|_| {
                let Choice::Key(key) = state.choose(&cands, &tried, now, &p) else {
                    return false;
                };
                now += 3;
                let outcome = if faults_here < 2 && random() < 300 {
                    faults_here += 1;
                    match random() % 3 {
                        0 => Outcome::ServerError { status: 500 },
                        1 => Outcome::ServerError { status: 503 },
                        _ => Outcome::Network,
                    }
                } else {
                    Outcome::Ok
                };
                let ok = outcome == Outcome::Ok;
                state.record(&key, &outcome, 50, &cands, now, &p);
                tried.push(key);
                ok
            });
            faults += faults_here;
            assert!(served, "request {request} failed after {tried:?}");
        }
        assert!(faults > 1_000, "the faults must really happen ({faults})");
    }

    #[test]
    fn rate_limits_do_not_feed_the_circuit_breaker() {
        let cands = candidates(&["a"]);
        let mut state = PoolState::default();
        let p = PoolPolicy::default();
        for _ in 0..10 {
            state.record("a", &per_minute(Some(1_000)), 100, &cands, T0, &p);
        }
        assert_eq!(view(&state, "a", T0).consecutive_failures, 0);
        assert_eq!(view(&state, "a", T0).failures, 10);
    }

    #[test]
    fn client_error_leaves_health_untouched() {
        let cands = candidates(&["a"]);
        let mut state = PoolState::default();
        let p = PoolPolicy::default();
        state.record(
            "a",
            &Outcome::ServerError { status: 500 },
            100,
            &cands,
            T0,
            &p,
        );
        let before = state.keys["a"].clone();
        state.record(
            "a",
            &Outcome::ClientError { status: 400 },
            100,
            &cands,
            T0,
            &p,
        );
        assert_eq!(state.keys["a"], before);
    }

    #[test]
    fn success_updates_latency_and_success_averages() {
        let cands = candidates(&["a"]);
        let mut state = PoolState::default();
        let p = PoolPolicy::default();
        state.record("a", &Outcome::Ok, 500, &cands, T0, &p);
        assert!((state.keys["a"].ewma_latency_ms - 500.0).abs() < f64::EPSILON);
        state.record("a", &Outcome::Ok, 1_500, &cands, T0, &p);
        assert!((state.keys["a"].ewma_latency_ms - 700.0).abs() < 1e-9);
        state.record("a", &Outcome::Network, 10, &cands, T0, &p);
        assert!(
            (state.keys["a"].ewma_latency_ms - 700.0).abs() < 1e-9,
            "failures keep latency"
        );
        assert!((state.keys["a"].ewma_success - 0.8).abs() < 1e-9);
    }

    #[test]
    fn chosen_key_counts_its_use_and_time() {
        let cands = candidates(&["a"]);
        let mut state = PoolState::default();
        let p = PoolPolicy::default();
        pick(&mut state, &cands, T0, &p);
        pick(&mut state, &cands, T0 + 5, &p);
        let v = view(&state, "a", T0);
        assert_eq!((v.uses, v.last_used_ms), (2, T0 + 5));
    }

    #[test]
    fn recorded_outcome_for_unknown_key_creates_its_entry() {
        let mut state = PoolState::default();
        state.record("ghost", &Outcome::Ok, 100, &[], T0, &PoolPolicy::default());
        assert_eq!(state.keys["ghost"].successes, 1);
    }

    #[test]
    fn prune_drops_health_of_unconfigured_keys() {
        let mut state = PoolState::default();
        let p = PoolPolicy::default();
        let cands = candidates(&["a", "b", "c"]);
        picks(&mut state, &cands, 3, T0, &p);
        state.prune(&candidates(&["b"]));
        assert_eq!(state.keys.keys().collect::<Vec<_>>(), ["b"]);
    }

    #[test]
    fn least_used_picks_fewest_uses_then_rotation_order() {
        let cands = candidates(&["a", "b", "c"]);
        let mut state = PoolState::default();
        let p = policy(Strategy::LeastUsed);
        assert_eq!(picks(&mut state, &cands, 3, T0, &p), ["a", "b", "c"]);
        // b rests a while; the others keep working.
        state.record("b", &per_minute(Some(10_000)), 100, &cands, T0, &p);
        assert_eq!(
            picks(&mut state, &cands, 4, T0 + 1, &p),
            ["a", "c", "a", "c"]
        );
        // Back from its rest, b is level with the others, not owed four turns.
        let back = picks(&mut state, &cands, 6, T0 + 10_000, &p);
        assert_eq!(back.iter().filter(|id| *id == "b").count(), 2, "{back:?}");
    }

    #[test]
    fn least_used_new_key_starts_level() {
        let mut state = PoolState::default();
        let p = policy(Strategy::LeastUsed);
        picks(&mut state, &candidates(&["a", "b"]), 10, T0, &p);
        let cands = candidates(&["a", "b", "c"]);
        let next = picks(&mut state, &cands, 6, T0, &p);
        assert_eq!(next.iter().filter(|id| *id == "c").count(), 2, "{next:?}");
    }

    #[test]
    fn weighted_interleaves_in_proportion_to_weight() {
        let cands = weighted(&[("a", 5), ("b", 1), ("c", 1)]);
        let mut state = PoolState::default();
        let p = policy(Strategy::Weighted);
        let expected = ["a", "a", "b", "a", "c", "a", "a"];
        assert_eq!(picks(&mut state, &cands, 7, T0, &p), expected);
        assert_eq!(picks(&mut state, &cands, 7, T0, &p), expected);
    }

    #[test]
    fn weighted_zero_weight_key_is_a_standby() {
        let cands = weighted(&[("a", 0), ("b", 2)]);
        let mut state = PoolState::default();
        let p = policy(Strategy::Weighted);
        assert!(
            picks(&mut state, &cands, 5, T0, &p)
                .iter()
                .all(|id| id == "b")
        );
        state.record("b", &per_minute(Some(1_000)), 100, &cands, T0, &p);
        assert_eq!(pick(&mut state, &cands, T0, &p), "a");
    }

    #[test]
    fn adaptive_favours_fast_reliable_keys_without_starving_others() {
        let cands = candidates(&["fast", "slow", "flaky"]);
        let mut state = PoolState::default();
        let p = policy(Strategy::Adaptive);
        for _ in 0..10 {
            state.record("fast", &Outcome::Ok, 200, &cands, T0, &p);
            state.record("slow", &Outcome::Ok, 3_000, &cands, T0, &p);
            state.record("flaky", &Outcome::Ok, 200, &cands, T0, &p);
            state.record(
                "flaky",
                &Outcome::ServerError { status: 500 },
                200,
                &cands,
                T0,
                &p,
            );
            state.record("flaky", &Outcome::Ok, 200, &cands, T0, &p);
        }
        let chosen = picks(&mut state, &cands, 300, T0 + 10_000_000, &p);
        let count = |id: &str| chosen.iter().filter(|c| *c == id).count();
        assert!(
            count("fast") > count("slow"),
            "{} vs {}",
            count("fast"),
            count("slow")
        );
        assert!(count("fast") > count("flaky"));
        assert!(count("slow") > 0 && count("flaky") > 0);
    }

    #[test]
    fn state_round_trips_through_json() {
        let cands = with_projects(&[("a", Some("p")), ("b", Some("p")), ("c", None)]);
        let mut state = PoolState::default();
        let p = policy(Strategy::Weighted);
        picks(&mut state, &cands, 4, T0, &p);
        state.record("a", &Outcome::Ok, 250, &cands, T0, &p);
        state.record("a", &per_day(), 0, &cands, T0, &p);
        state.record(
            "c",
            &Outcome::KeyInvalid {
                reason: "API_KEY_INVALID".to_owned(),
            },
            0,
            &cands,
            T0,
            &p,
        );
        let json = serde_json::to_string(&state).unwrap();
        let back: PoolState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, state);
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
    }

    #[test]
    fn partial_state_json_fills_defaults() {
        let state: PoolState = serde_json::from_str(r#"{"keys":{"a":{"uses":3}}}"#).unwrap();
        assert_eq!(state.cursor, 0);
        assert_eq!(state.keys["a"].uses, 3);
        assert!((state.keys["a"].ewma_success - 1.0).abs() < f64::EPSILON);
        let policy: PoolPolicy = serde_json::from_str(r#"{"strategy":"least_used"}"#).unwrap();
        assert_eq!(policy.strategy, Strategy::LeastUsed);
        assert_eq!(policy.circuit_open_ms, 300_000);
        let candidate: Candidate = serde_json::from_str(r#"{"id":"k"}"#).unwrap();
        assert_eq!((candidate.weight, candidate.project), (1, None));
    }

    #[test]
    fn choice_serializes_for_the_durable_object_boundary() {
        assert_eq!(
            serde_json::to_value(Choice::Key("k".to_owned())).unwrap(),
            serde_json::json!({"key": "k"})
        );
        assert_eq!(
            serde_json::to_value(Choice::Exhausted {
                retry_after_ms: 1_000
            })
            .unwrap(),
            serde_json::json!({"exhausted": {"retry_after_ms": 1_000}})
        );
        assert_eq!(
            serde_json::to_value(Choice::NoKeys).unwrap(),
            serde_json::json!("no_keys")
        );
    }

    #[test]
    fn cursor_survives_a_shrinking_candidate_list() {
        let mut state = PoolState {
            cursor: 7,
            ..PoolState::default()
        };
        let cands = candidates(&["a", "b"]);
        let p = PoolPolicy::default();
        assert_eq!(picks(&mut state, &cands, 3, T0, &p), ["b", "a", "b"]);
    }

    fn revised(id: &str, revision: u64) -> Candidate {
        Candidate {
            revision,
            ..Candidate::new(id)
        }
    }

    fn tiered(pairs: &[(&str, u8)]) -> Vec<Candidate> {
        pairs
            .iter()
            .map(|(id, tier)| Candidate {
                tier: *tier,
                ..Candidate::new(*id)
            })
            .collect()
    }

    #[test]
    fn the_preferred_tier_serves_while_one_of_it_is_usable() {
        let policy = PoolPolicy::default();
        let mut state = PoolState::default();
        let cands = tiered(&[("k1", 1), ("acc_a", 0), ("k2", 1), ("acc_b", 0)]);
        // Round robin stays within tier 0.
        let first = picks(&mut state, &cands, 4, 0, &policy);
        assert!(first.iter().all(|id| id.starts_with("acc_")), "{first:?}");
        assert!(first.contains(&"acc_a".to_owned()) && first.contains(&"acc_b".to_owned()));
        // With both accounts cooling, the keys serve; once one is back, it does.
        state.record("acc_a", &per_minute(Some(10_000)), 5, &cands, 0, &policy);
        state.record("acc_b", &per_minute(Some(20_000)), 5, &cands, 0, &policy);
        let fallback = picks(&mut state, &cands, 2, 1, &policy);
        assert!(
            fallback.iter().all(|id| id.starts_with('k')),
            "{fallback:?}"
        );
        assert_eq!(pick(&mut state, &cands, 10_001, &policy), "acc_a");
        // A request that already tried the preferred ones moves on to the others.
        let exclude = ["acc_a".to_owned()];
        assert!(pick_excluding(&mut state, &cands, &exclude, 10_002, &policy).starts_with('k'));
    }

    #[test]
    fn an_admin_edit_gives_a_disabled_key_a_fresh_start() {
        let policy = PoolPolicy::default();
        let mut state = PoolState::default();
        let before = [revised("a", 10), revised("b", 10)];
        let invalid = Outcome::KeyInvalid {
            reason: "API_KEY_INVALID".into(),
        };
        state.record("a", &invalid, 5, &before, 100, &policy);
        // A stale list (same revision) never revives it.
        for t in 0..4 {
            assert_eq!(
                state.choose(&before, &[], 200 + t, &policy),
                Choice::Key("b".into())
            );
        }
        // Re-enabled by an admin: its revision moved on.
        let after = [revised("a", 20), revised("b", 10)];
        let picks: Vec<Choice> = (0..2)
            .map(|t| state.choose(&after, &[], 300 + t, &policy))
            .collect();
        assert!(picks.contains(&Choice::Key("a".into())), "{picks:?}");
        assert_eq!(state.keys["a"].revision, 20);
        assert!(state.keys["a"].disabled.is_none());
    }
}
