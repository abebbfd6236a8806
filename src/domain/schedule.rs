//! An isolate's own copy of one model's key pool: where a request chooses
//! its key when the model has no budgets, with no call to the model's gate.
//!
//! The gate stays the authority for health. This copy adopts the gate's
//! [`HealthView`] whenever one comes back (the answer to a failure report,
//! or a background refresh at most every `health_refresh_ms`), and keeps
//! only what is local by nature: the rotation cursor (starting at a random
//! offset, so isolates do not march in step), the use counts and weights of
//! the strategies, and the latency and success averages it measured itself.
//!
//! The staleness this allows is bounded. A key that cooled through another
//! isolate can still be chosen here until this copy adopts a view that says
//! so: the next refresh, asked at most `health_refresh_ms` after the last
//! one by the first request after that, and answered a gate round trip
//! later. And a call that reaches a cooled key fails, is recorded here at
//! once and reported, and the answer is a fresh view; so at worst a cooled
//! key gets **one failed call per isolate**, plus the calls that other
//! requests of the same isolate had already sent to it concurrently.

use std::rc::Rc;

use super::gate::{Decision, HealthView, Report};
use super::keypool::{Candidate, PoolPolicy, PoolState};

#[derive(Debug, Clone, Default)]
pub struct LocalPool {
    pool: PoolState,
    /// The (epoch, version) of the view adopted last; `None` before the first.
    adopted: Option<(u64, u64)>,
    /// When the last refresh was asked for.
    asked_at_ms: u64,
    refreshing: bool,
    /// The key list every entry was made for; while the same list comes
    /// (one snapshot's), choosing needs no pass over it.
    synced: Option<Rc<[Candidate]>>,
}

impl LocalPool {
    /// A copy whose rotation starts at `seed` (random per isolate).
    pub fn new(seed: u64) -> Self {
        Self {
            pool: PoolState {
                cursor: seed,
                ..PoolState::default()
            },
            ..Self::default()
        }
    }

    /// Whether a view of the gate was ever adopted. Until then a request
    /// waits for one (once per isolate and model).
    pub fn has_view(&self) -> bool {
        self.adopted.is_some()
    }

    /// Picks a key for one attempt, as the gate would.
    pub fn choose(
        &mut self,
        candidates: &Rc<[Candidate]>,
        exclude: &[String],
        now_ms: u64,
        policy: &PoolPolicy,
    ) -> Decision {
        if !self
            .synced
            .as_ref()
            .is_some_and(|s| Rc::ptr_eq(s, candidates))
        {
            self.pool.sync(candidates);
            self.synced = Some(Rc::clone(candidates));
        }
        let choice = self
            .pool
            .choose_ensured(candidates, exclude, now_ms, policy, None);
        Decision::of(choice, &self.pool)
    }

    /// Folds an attempt's outcome into this copy at once, so the isolate's
    /// other requests see a failure before the gate has answered. Returns
    /// whether the key had failures before it: a success then clears them,
    /// and the gate must hear about it too. Deciding this when the success
    /// arrives, not when its key was chosen, matters under concurrency: a
    /// request that chose a clean key may succeed after another request's
    /// failure on it, and a success the gate never hears about lets it count
    /// failures with successes between them as "in a row" and open the key's
    /// circuit.
    pub fn record(
        &mut self,
        report: &Report,
        candidates: &[Candidate],
        now_ms: u64,
        policy: &PoolPolicy,
    ) -> bool {
        let had_failures = self
            .pool
            .keys
            .get(&report.key_id)
            .is_some_and(|h| h.consecutive_failures > 0);
        self.pool.record(
            &report.key_id,
            &report.outcome,
            report.latency_ms,
            candidates,
            now_ms,
            policy,
        );
        had_failures
    }

    /// Takes the gate's view, unless a newer one of the same gate
    /// incarnation was adopted already (answers can arrive out of order).
    /// Returns whether it was adopted.
    pub fn adopt(&mut self, view: &HealthView, candidates: &[Candidate], now_ms: u64) -> bool {
        self.refreshing = false;
        if let Some((epoch, version)) = self.adopted
            && epoch == view.epoch
            && version > view.version
        {
            return false;
        }
        self.pool.adopt(&view.keys, candidates, now_ms);
        // Adopting may reset entries; the next choice syncs again.
        self.synced = None;
        self.adopted = Some((view.epoch, view.version));
        true
    }

    /// Whether to ask the gate for a view in the background now: at most
    /// one refresh in flight, and at most one per `refresh_ms`. Marks it
    /// asked.
    pub fn refresh_due(&mut self, now_ms: u64, refresh_ms: u64) -> bool {
        if self.refreshing || now_ms.saturating_sub(self.asked_at_ms) < refresh_ms {
            return false;
        }
        self.refreshing = true;
        self.asked_at_ms = now_ms;
        true
    }

    /// A refresh that failed: the next request may ask again after the interval.
    pub fn refresh_failed(&mut self) {
        self.refreshing = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::outcome::{Outcome, QuotaScope};

    fn candidates(ids: &[&str]) -> Rc<[Candidate]> {
        ids.iter().map(|id| Candidate::new(*id)).collect()
    }

    fn key(decision: &Decision) -> &str {
        match decision {
            Decision::Chosen { key_id, .. } => key_id,
            other => panic!("no key: {other:?}"),
        }
    }

    fn rate_limited(key: &str) -> Report {
        Report {
            key_id: key.into(),
            outcome: Outcome::RateLimited {
                retry_after_ms: Some(600_000),
                scope: QuotaScope::PerMinute,
                quota_id: None,
            },
            latency_ms: 1,
        }
    }

    fn report(key: &str, outcome: Outcome) -> Report {
        Report {
            key_id: key.into(),
            outcome,
            latency_ms: 1,
        }
    }

    #[test]
    fn a_success_after_a_concurrent_failure_is_one_the_gate_must_hear_about() {
        let c = candidates(&["a"]);
        let policy = PoolPolicy::default();
        let mut pool = LocalPool::new(0);
        // Request 1 chooses the clean key: at that moment nothing is to clear.
        let Decision::Chosen { report_success, .. } = pool.choose(&c, &[], 1, &policy) else {
            panic!("no key");
        };
        assert!(!report_success);
        // Request 2 fails on it meanwhile; then request 1 succeeds.
        assert!(!pool.record(
            &report("a", Outcome::ServerError { status: 500 }),
            &c,
            2,
            &policy
        ));
        assert!(
            pool.record(&report("a", Outcome::Ok), &c, 3, &policy),
            "the success clears a failure: the gate must hear about it"
        );
        // Cleared: the next success has nothing to report.
        assert!(!pool.record(&report("a", Outcome::Ok), &c, 4, &policy));
    }

    #[test]
    fn round_robin_is_exact_and_starts_at_the_seed() {
        let c = candidates(&["a", "b", "c"]);
        let policy = PoolPolicy::default();
        let mut pool = LocalPool::new(1);
        let picks: Vec<String> = (0..6)
            .map(|t| key(&pool.choose(&c, &[], t, &policy)).to_owned())
            .collect();
        assert_eq!(picks, ["b", "c", "a", "b", "c", "a"]);
    }

    #[test]
    fn a_gate_view_cools_a_key_and_a_later_one_brings_it_back() {
        let c = candidates(&["a", "b"]);
        let policy = PoolPolicy::default();
        // Another isolate cooled `a`: the gate's view says so.
        let mut gate = PoolState::default();
        gate.record("a", &rate_limited("a").outcome, 1, &c, 1_000, &policy);
        let view = HealthView {
            epoch: 7,
            version: 1,
            keys: gate.statuses(1_000),
        };
        let mut pool = LocalPool::new(0);
        assert!(pool.adopt(&view, &c, 1_000));
        for t in 0..4 {
            assert_eq!(key(&pool.choose(&c, &[], 1_001 + t, &policy)), "b");
        }
        // An older view of the same gate never undoes a newer one.
        let stale = HealthView {
            epoch: 7,
            version: 0,
            keys: vec![],
        };
        assert!(!pool.adopt(&stale, &c, 1_010));
        assert_eq!(key(&pool.choose(&c, &[], 1_011, &policy)), "b");
        // The gate lifted the cooldown (an admin, a probe): `a` is back.
        let lifted = HealthView {
            epoch: 7,
            version: 2,
            keys: vec![],
        };
        assert!(pool.adopt(&lifted, &c, 1_020));
        let picks: Vec<String> = (0..2)
            .map(|t| key(&pool.choose(&c, &[], 1_021 + t, &policy)).to_owned())
            .collect();
        assert!(picks.contains(&"a".to_owned()), "{picks:?}");
    }

    #[test]
    fn a_local_failure_counts_at_once() {
        let c = candidates(&["a", "b"]);
        let policy = PoolPolicy::default();
        let mut pool = LocalPool::new(0);
        pool.record(&rate_limited("a"), &c, 0, &policy);
        for t in 0..4 {
            assert_eq!(key(&pool.choose(&c, &[], 1 + t, &policy)), "b");
        }
    }

    #[test]
    fn a_newer_key_revision_outranks_the_gate_view() {
        let policy = PoolPolicy::default();
        let old = candidates(&["a"]);
        let mut gate = PoolState::default();
        gate.record(
            "a",
            &Outcome::KeyInvalid {
                reason: "API_KEY_INVALID".into(),
            },
            1,
            &old,
            0,
            &policy,
        );
        // An admin re-enabled `a` (revision 5); the gate has not seen it yet.
        let mut fresh = Candidate::new("a");
        fresh.revision = 5;
        let renewed: Rc<[Candidate]> = vec![fresh].into();
        let view = HealthView {
            epoch: 1,
            version: 3,
            keys: gate.statuses(10),
        };
        let mut pool = LocalPool::new(0);
        pool.adopt(&view, &renewed, 10);
        assert_eq!(key(&pool.choose(&renewed, &[], 11, &policy)), "a");
    }

    #[test]
    fn refreshes_are_spaced_and_never_overlap() {
        let mut pool = LocalPool::new(0);
        assert!(pool.refresh_due(10_000, 2_000));
        assert!(!pool.refresh_due(13_000, 2_000), "one in flight at a time");
        pool.adopt(&HealthView::default(), &[], 13_000);
        assert!(!pool.refresh_due(11_000, 2_000));
        assert!(pool.refresh_due(12_000, 2_000));
        pool.refresh_failed();
        assert!(!pool.refresh_due(13_000, 2_000));
        assert!(pool.refresh_due(14_000, 2_000));
    }
}
