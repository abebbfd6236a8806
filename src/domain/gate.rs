//! The protocol between the worker and the `ModelGate` Durable Object, and
//! the pure state transition it runs. The DO is a thin shell: it loads a
//! `PoolState`, calls `GateRequest::apply` with the current time, persists
//! the state when it changed, and answers.

use serde::{Deserialize, Serialize};

use super::keypool::{
    Candidate, Choice, KeyHealth, KeyHealthView, KeyStatus, PoolPolicy, PoolState,
};
use super::limits::{Acquire, Concurrency, KeyBudget, LeaseTable, QueueView};
use super::outcome::Outcome;

/// What one upstream attempt came to, reported back to the gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub key_id: String,
    pub outcome: Outcome,
    pub latency_ms: u64,
}

/// The enabled keys the gate chooses from. The worker sends the whole list
/// only when the gate may not have it; otherwise just its digest, so a
/// request's payload does not grow with the pool. The gate never holds
/// secrets and never reads D1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "roster", rename_all = "snake_case")]
pub enum Roster {
    Full {
        digest: String,
        candidates: Vec<Candidate>,
    },
    Known {
        digest: String,
    },
}

/// The rosters a gate remembers, newest first. Isolates whose key snapshots
/// differ for a moment (after an admin edit) each find theirs, instead of
/// evicting each other's on every call. Held in memory only: a gate that
/// restarted asks for the list again.
#[derive(Debug, Default)]
pub struct Rosters {
    recent: Vec<(String, Vec<Candidate>)>,
}

impl Rosters {
    const KEEP: usize = 4;

    /// The candidates for a roster, learning a full one; `None` when only a
    /// digest came and it is not known here. The roster used goes to the
    /// front, so the least recently used one is forgotten first.
    pub fn resolve(&mut self, roster: Roster) -> Option<&[Candidate]> {
        let entry = match roster {
            Roster::Full { digest, candidates } => {
                self.recent.retain(|(d, _)| *d != digest);
                (digest, candidates)
            }
            Roster::Known { digest } => {
                let at = self.recent.iter().position(|(d, _)| *d == digest)?;
                self.recent.remove(at)
            }
        };
        self.recent.insert(0, entry);
        self.recent.truncate(Self::KEEP);
        self.recent.first().map(|(_, c)| c.as_slice())
    }
}

/// A model's key health as its gate knows it: what an isolate's copy of the
/// pool adopts. `epoch` is the gate's incarnation and `version` counts its
/// changes, so a copy never adopts a view older than the one it has.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthView {
    pub epoch: u64,
    pub version: u64,
    pub keys: Vec<KeyStatus>,
}

/// One call to a model's gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum GateRequest {
    /// The health view, for an isolate's copy (its background refresh).
    View,
    /// Records an outcome (a failure, or a success after failures) and
    /// answers with the health view, so the reporting isolate is current.
    Report {
        roster: Roster,
        report: Report,
        policy: PoolPolicy,
    },
    /// Records the previous attempt's outcome (if any) and picks the next key
    /// at the gate, never one in `exclude`: for models with key budgets,
    /// which only one authority can count exactly.
    Next {
        roster: Roster,
        #[serde(default)]
        exclude: Vec<String>,
        #[serde(default)]
        report: Option<Report>,
        policy: PoolPolicy,
        #[serde(default)]
        budget: Option<KeyBudget>,
    },
    /// The tokens a budgeted request used, once it settled.
    Usage { key_id: String, tokens: u64 },
    /// Takes one of the model's `limit.max` slots, waiting in line for at
    /// most `limit.max_wait_ms`. The lease ends on its own after `ttl_ms`.
    Acquire {
        lease_id: String,
        limit: Concurrency,
        ttl_ms: u64,
    },
    /// Gives a slot back (or leaves the line); `cap` is the current limit.
    Release { lease_id: String, cap: u32 },
    /// Extends a lease whose stream is still flowing.
    Renew { lease_id: String, ttl_ms: u64 },
    /// The health of every key, the gate's counters and its queue, for the
    /// admin API.
    Snapshot,
}

impl GateRequest {
    /// The name counted in [`Calls`].
    pub fn name(&self) -> &'static str {
        match self {
            Self::View => "view",
            Self::Report { .. } => "report",
            Self::Next { .. } => "next",
            Self::Usage { .. } => "usage",
            Self::Acquire { .. } => "acquire",
            Self::Release { .. } => "release",
            Self::Renew { .. } => "renew",
            Self::Snapshot => "snapshot",
        }
    }
}

/// The gate's choice for the next attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Chosen {
        key_id: String,
        /// True when the gate wants to hear about a success (the key had
        /// failures to reset); otherwise a success needs no report.
        report_success: bool,
    },
    Exhausted {
        retry_after_ms: u64,
    },
    NoKeys,
    /// Every key that could serve has used its budget.
    OverBudget {
        retry_after_ms: u64,
    },
}

impl Decision {
    /// The decision for a pool's choice; `report_success` when the chosen key
    /// had failures to clear.
    pub fn of(choice: Choice, state: &PoolState) -> Self {
        match choice {
            Choice::Key(key_id) => {
                let report_success = state
                    .keys
                    .get(&key_id)
                    .is_some_and(|h| h.consecutive_failures > 0);
                Self::Chosen {
                    key_id,
                    report_success,
                }
            }
            Choice::Exhausted { retry_after_ms } => Self::Exhausted { retry_after_ms },
            Choice::NoKeys => Self::NoKeys,
            Choice::OverBudget { retry_after_ms } => Self::OverBudget { retry_after_ms },
        }
    }
}

/// How many calls of each kind a gate answered since it started (in memory):
/// what tests read to prove the common path makes none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calls {
    pub view: u64,
    pub report: u64,
    pub next: u64,
    pub usage: u64,
    pub acquire: u64,
    pub release: u64,
    pub renew: u64,
}

impl Calls {
    fn count(&mut self, op: &GateRequest) {
        let slot = match op {
            GateRequest::View => &mut self.view,
            GateRequest::Report { .. } => &mut self.report,
            GateRequest::Next { .. } => &mut self.next,
            GateRequest::Usage { .. } => &mut self.usage,
            GateRequest::Acquire { .. } => &mut self.acquire,
            GateRequest::Release { .. } => &mut self.release,
            GateRequest::Renew { .. } => &mut self.renew,
            GateRequest::Snapshot => return,
        };
        *slot += 1;
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum GateResponse {
    View {
        view: HealthView,
    },
    Next {
        decision: Decision,
        /// The reported key's health after a failure (and the keys of its
        /// project a quota 429 cooled with it), for the D1 mirror.
        #[serde(default)]
        reported: Vec<KeyHealthView>,
    },
    Recorded {
        #[serde(default)]
        reported: Vec<KeyHealthView>,
        view: HealthView,
    },
    Lease {
        lease: Acquire,
    },
    Released,
    Renewed {
        live: bool,
    },
    Counted,
    Snapshot {
        keys: Vec<KeyHealthView>,
        calls: Calls,
        queue: QueueView,
    },
    /// Only a digest came and the gate does not know it: send the list.
    NeedRoster,
}

/// Everything one model's gate holds. The Durable Object is a shell around
/// it: it loads `pool` and the held leases from storage, calls
/// [`Gate::apply`] with the current time, writes what changed, and parks a
/// caller that was queued for a slot.
#[derive(Debug, Default)]
pub struct Gate {
    pub pool: PoolState,
    pub rosters: Rosters,
    pub leases: LeaseTable,
    /// This incarnation of the gate (random, chosen at start).
    pub epoch: u64,
    /// Bumped on every change of `pool`.
    pub version: u64,
    pub calls: Calls,
}

/// What one [`Gate::apply`] changed, for the shell to persist.
#[derive(Debug, Default, PartialEq)]
pub struct Applied {
    pub pool: Changes,
    /// Leases that were taken (id, expiry) and given back.
    pub leased: Vec<(String, u64)>,
    pub unleased: Vec<String>,
    /// Queued callers that now hold a slot: the shell wakes them.
    pub granted: Vec<String>,
}

impl Gate {
    pub fn view(&self, now_ms: u64) -> HealthView {
        HealthView {
            epoch: self.epoch,
            version: self.version,
            keys: self.pool.statuses(now_ms),
        }
    }

    /// Answers one request and says what changed.
    pub fn apply(&mut self, op: GateRequest, now_ms: u64) -> (GateResponse, Applied) {
        self.calls.count(&op);
        let mut applied = Applied::default();
        let answer = match op {
            GateRequest::Acquire { .. }
            | GateRequest::Release { .. }
            | GateRequest::Renew { .. } => self.apply_lease(op, now_ms, &mut applied),
            op => self.apply_pool(op, now_ms, &mut applied),
        };
        (answer, applied)
    }

    /// The requests about key health and choice.
    fn apply_pool(&mut self, op: GateRequest, now_ms: u64, applied: &mut Applied) -> GateResponse {
        match op {
            GateRequest::View => GateResponse::View {
                view: self.view(now_ms),
            },
            GateRequest::Snapshot => {
                // Expired leases leave the count; waiters are granted by
                // their own timers, which know the model's cap.
                self.lease_change(applied, |leases| {
                    leases.reclaim(now_ms);
                    Vec::new()
                });
                GateResponse::Snapshot {
                    keys: self.pool.snapshot(now_ms),
                    calls: self.calls.clone(),
                    queue: self.leases.view(),
                }
            }
            GateRequest::Report {
                roster,
                report,
                policy,
            } => {
                let before = self.pool.clone();
                let Some(candidates) = self.rosters.resolve(roster) else {
                    return GateResponse::NeedRoster;
                };
                self.pool.prune(candidates);
                self.pool.record(
                    &report.key_id,
                    &report.outcome,
                    report.latency_ms,
                    candidates,
                    now_ms,
                    &policy,
                );
                let reported = reported_views(&self.pool, &report, candidates, now_ms);
                applied.pool = self.changed(&before);
                GateResponse::Recorded {
                    reported,
                    view: self.view(now_ms),
                }
            }
            GateRequest::Next {
                roster,
                exclude,
                report,
                policy,
                budget,
            } => {
                let before = self.pool.clone();
                let Some(candidates) = self.rosters.resolve(roster) else {
                    return GateResponse::NeedRoster;
                };
                let state = &mut self.pool;
                state.prune(candidates);
                let reported = report.map_or_else(Vec::new, |r| {
                    state.record(
                        &r.key_id,
                        &r.outcome,
                        r.latency_ms,
                        candidates,
                        now_ms,
                        &policy,
                    );
                    reported_views(state, &r, candidates, now_ms)
                });
                let choice =
                    state.choose_within(candidates, &exclude, now_ms, &policy, budget.as_ref());
                let decision = Decision::of(choice, state);
                applied.pool = self.changed(&before);
                GateResponse::Next { decision, reported }
            }
            GateRequest::Usage { key_id, tokens } => {
                let before = self.pool.clone();
                self.pool.count_tokens(&key_id, tokens, now_ms);
                applied.pool = self.changed(&before);
                GateResponse::Counted
            }
            GateRequest::Acquire { .. }
            | GateRequest::Release { .. }
            | GateRequest::Renew { .. } => self.apply_lease(op, now_ms, applied),
        }
    }

    /// The requests about a concurrency-limited model's slots.
    fn apply_lease(&mut self, op: GateRequest, now_ms: u64, applied: &mut Applied) -> GateResponse {
        match op {
            GateRequest::Acquire {
                lease_id,
                limit,
                ttl_ms,
            } => {
                let mut lease = None;
                self.lease_change(applied, |leases| {
                    let mut granted = leases.expire_and_admit(limit.max, now_ms);
                    lease = Some(leases.acquire(&lease_id, limit, ttl_ms, now_ms));
                    granted.retain(|id| *id != lease_id);
                    granted
                });
                GateResponse::Lease {
                    lease: lease.unwrap_or(Acquire::Refused {
                        retry_after_ms: 1_000,
                    }),
                }
            }
            GateRequest::Release { lease_id, cap } => {
                self.lease_change(applied, |leases| {
                    let mut granted = leases.expire_and_admit(cap, now_ms);
                    granted.extend(leases.release(&lease_id, cap, now_ms));
                    granted
                });
                GateResponse::Released
            }
            GateRequest::Renew { lease_id, ttl_ms } => {
                let mut live = false;
                self.lease_change(applied, |leases| {
                    live = leases.renew(&lease_id, ttl_ms, now_ms);
                    Vec::new()
                });
                GateResponse::Renewed { live }
            }
            other => self.apply_pool(other, now_ms, applied),
        }
    }

    /// Runs a change of the lease table and notes what it took, gave back
    /// and granted.
    fn lease_change(
        &mut self,
        applied: &mut Applied,
        change: impl FnOnce(&mut LeaseTable) -> Vec<String>,
    ) {
        let before = self.leases.held().clone();
        let granted = change(&mut self.leases);
        let after = self.leases.held();
        applied.leased.extend(
            after
                .iter()
                .filter(|(id, until)| before.get(*id) != Some(*until))
                .map(|(id, until)| (id.clone(), *until)),
        );
        applied
            .unleased
            .extend(before.keys().filter(|id| !after.contains_key(*id)).cloned());
        applied.granted.extend(granted);
    }

    fn changed(&mut self, before: &PoolState) -> Changes {
        let changes = Changes::between(before, &self.pool);
        if !changes.is_empty() {
            self.version += 1;
        }
        changes
    }

    /// Wakes queued callers whose time came: expired leases free their
    /// slots, and waiters past their deadline leave the line. Returns the
    /// ids granted; `gave_up` the ids refused, with their Retry-After.
    pub fn tick(&mut self, cap: u32, now_ms: u64) -> Applied {
        let mut applied = Applied::default();
        self.lease_change(&mut applied, |leases| leases.expire_and_admit(cap, now_ms));
        applied
    }
}

/// What one `apply` changed, so the Durable Object writes only that: the
/// cursor and the touched keys, never the whole pool. A request then costs
/// O(1) storage work however many keys there are.
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    pub cursor: Option<u64>,
    pub upserted: Vec<(String, KeyHealth)>,
    pub removed: Vec<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.cursor.is_none() && self.upserted.is_empty() && self.removed.is_empty()
    }

    /// Compares the state before and after a request.
    pub fn between(before: &PoolState, after: &PoolState) -> Self {
        let upserted = after
            .keys
            .iter()
            .filter(|(id, health)| before.keys.get(*id) != Some(*health))
            .map(|(id, health)| (id.clone(), health.clone()))
            .collect();
        let removed = before
            .keys
            .keys()
            .filter(|id| !after.keys.contains_key(*id))
            .cloned()
            .collect();
        Self {
            cursor: (before.cursor != after.cursor).then_some(after.cursor),
            upserted,
            removed,
        }
    }
}

/// The health views of a reported key, for the D1 mirror: the key's own,
/// and after a quota 429 those of the keys of its project it cooled. A
/// client error changed nothing; a success is reported only for a key that
/// had failures, so its view clears the mirror's stale row.
fn reported_views(
    state: &PoolState,
    report: &Report,
    candidates: &[Candidate],
    now_ms: u64,
) -> Vec<KeyHealthView> {
    if matches!(report.outcome, Outcome::ClientError { .. }) {
        return Vec::new();
    }
    let mut views: Vec<KeyHealthView> = state.view_of(&report.key_id, now_ms).into_iter().collect();
    if matches!(report.outcome, Outcome::RateLimited { .. }) {
        views.extend(
            state
                .project_siblings(&report.key_id, candidates)
                .into_iter()
                .filter_map(|id| state.view_of(id, now_ms)),
        );
    }
    views
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs one request on a gate made of `state` and `rosters`.
    trait Run {
        fn apply(self, state: &mut PoolState, rosters: &mut Rosters, now: u64) -> GateResponse;
    }

    impl Run for GateRequest {
        fn apply(self, state: &mut PoolState, rosters: &mut Rosters, now: u64) -> GateResponse {
            let mut gate = Gate {
                pool: std::mem::take(state),
                rosters: std::mem::take(rosters),
                ..Gate::default()
            };
            let (answer, _) = gate.apply(self, now);
            *state = gate.pool;
            *rosters = gate.rosters;
            answer
        }
    }

    fn candidates(ids: &[&str]) -> Vec<Candidate> {
        ids.iter().map(|id| Candidate::new(*id)).collect()
    }

    /// A full roster whose digest is its ids joined, which is unique enough
    /// for tests.
    fn full(ids: &[&str]) -> Roster {
        Roster::Full {
            digest: ids.join(","),
            candidates: candidates(ids),
        }
    }

    fn next(
        state: &mut PoolState,
        exclude: &[&str],
        report: Option<Report>,
        now: u64,
    ) -> GateResponse {
        let op = GateRequest::Next {
            roster: full(&["a", "b", "c"]),
            exclude: exclude.iter().map(|s| (*s).to_owned()).collect(),
            report,
            policy: PoolPolicy::default(),
            budget: None,
        };
        op.apply(state, &mut Rosters::default(), now)
    }

    fn chosen(resp: &GateResponse) -> &str {
        match resp {
            GateResponse::Next {
                decision: Decision::Chosen { key_id, .. },
                ..
            } => key_id,
            other => panic!("expected a choice, got {other:?}"),
        }
    }

    #[test]
    fn failover_round_trip_reports_and_chooses_in_one_call() {
        let mut state = PoolState::default();
        let first = next(&mut state, &[], None, 1_000);
        let first_key = chosen(&first).to_owned();
        let report = Report {
            key_id: first_key.clone(),
            outcome: Outcome::KeyInvalid {
                reason: "API_KEY_INVALID".into(),
            },
            latency_ms: 5,
        };
        let second = next(&mut state, &[&first_key], Some(report), 1_010);
        assert_ne!(chosen(&second), first_key);
        let GateResponse::Next { reported, .. } = &second else {
            panic!("a failure report must return the key's health");
        };
        let [view] = reported.as_slice() else {
            panic!("one key reported: {reported:?}");
        };
        assert_eq!(view.id, first_key);
        assert!(view.disabled.is_some());
        // The invalid key is never chosen again, in any later request.
        for t in 0..10 {
            assert_ne!(chosen(&next(&mut state, &[], None, 2_000 + t)), first_key);
        }
    }

    #[test]
    fn success_report_is_requested_only_after_failures() {
        let mut state = PoolState::default();
        let GateResponse::Next {
            decision: Decision::Chosen { report_success, .. },
            ..
        } = next(&mut state, &[], None, 0)
        else {
            panic!("no choice");
        };
        assert!(!report_success);
    }

    #[test]
    fn requests_round_trip_through_json() {
        let op = GateRequest::Next {
            roster: full(&["a"]),
            exclude: vec!["b".into()],
            report: Some(Report {
                key_id: "b".into(),
                outcome: Outcome::ServerError { status: 503 },
                latency_ms: 3,
            }),
            policy: PoolPolicy::default(),
            budget: Some(KeyBudget {
                rpm: Some(5),
                ..KeyBudget::default()
            }),
        };
        let json = serde_json::to_string(&op).unwrap();
        assert_eq!(serde_json::from_str::<GateRequest>(&json).unwrap(), op);
    }

    #[test]
    fn snapshot_does_not_dirty_state() {
        let mut state = PoolState::default();
        next(&mut state, &[], None, 0);
        let before = state.clone();
        GateRequest::Snapshot.apply(&mut state, &mut Rosters::default(), 1);
        assert!(Changes::between(&before, &state).is_empty());
    }

    #[test]
    fn changes_name_only_the_cursor_and_the_touched_keys() {
        let mut state = PoolState::default();
        next(&mut state, &[], None, 0);
        next(&mut state, &[], None, 1);
        let before = state.clone();
        let resp = next(&mut state, &[], None, 2);
        let changes = Changes::between(&before, &state);
        assert_eq!(changes.cursor, Some(state.cursor));
        let touched: Vec<&str> = changes.upserted.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(touched, vec![chosen(&resp)]);
        assert!(changes.removed.is_empty());

        let before = state.clone();
        let op = GateRequest::Next {
            roster: full(&["a", "b"]),
            exclude: vec![],
            report: None,
            policy: PoolPolicy::default(),
            budget: None,
        };
        op.apply(&mut state, &mut Rosters::default(), 3);
        assert_eq!(
            Changes::between(&before, &state).removed,
            vec!["c".to_owned()]
        );
        assert!(Changes::between(&state, &state).is_empty());
    }

    #[test]
    fn a_success_report_returns_the_recovered_view_for_the_mirror() {
        let mut state = PoolState::default();
        let policy = PoolPolicy {
            server_error_demote_ms: 0,
            ..PoolPolicy::default()
        };
        let report = |outcome| GateRequest::Report {
            roster: full(&["a"]),
            report: Report {
                key_id: "a".into(),
                outcome,
                latency_ms: 1,
            },
            policy: policy.clone(),
        };
        let GateResponse::Recorded {
            reported: failed, ..
        } = report(Outcome::ServerError { status: 500 }).apply(
            &mut state,
            &mut Rosters::default(),
            10,
        )
        else {
            panic!("a failure must be mirrored");
        };
        assert_eq!(failed[0].consecutive_failures, 1);
        let GateResponse::Recorded { reported: ok, .. } =
            report(Outcome::Ok).apply(&mut state, &mut Rosters::default(), 20)
        else {
            panic!("a success after failures must be mirrored");
        };
        assert_eq!(ok[0].consecutive_failures, 0);
        let GateResponse::Recorded { reported, .. } = report(Outcome::ClientError { status: 400 })
            .apply(&mut state, &mut Rosters::default(), 30)
        else {
            panic!("not recorded");
        };
        assert!(reported.is_empty());
    }

    #[test]
    fn a_known_digest_stands_in_for_the_list_and_an_unknown_one_asks_for_it() {
        let mut state = PoolState::default();
        let mut rosters = Rosters::default();
        let next = |roster: Roster| GateRequest::Next {
            roster,
            exclude: vec![],
            report: None,
            policy: PoolPolicy::default(),
            budget: None,
        };
        let known = |d: &str| Roster::Known { digest: d.into() };
        // Nothing learned yet: the gate asks, and changes nothing.
        let before = state.clone();
        assert_eq!(
            next(known("a,b")).apply(&mut state, &mut rosters, 0),
            GateResponse::NeedRoster
        );
        assert!(Changes::between(&before, &state).is_empty());
        // Learned once, then the digest alone is enough.
        assert!(matches!(
            next(full(&["a", "b"])).apply(&mut state, &mut rosters, 1),
            GateResponse::Next { .. }
        ));
        assert!(matches!(
            next(known("a,b")).apply(&mut state, &mut rosters, 2),
            GateResponse::Next { .. }
        ));
        // Several isolates' rosters are remembered at once, up to a bound.
        for ids in [["c", "d"], ["e", "f"], ["g", "h"]] {
            next(full(&ids)).apply(&mut state, &mut rosters, 3);
        }
        assert!(matches!(
            next(known("a,b")).apply(&mut state, &mut rosters, 4),
            GateResponse::Next { .. }
        ));
        next(full(&["i", "j"])).apply(&mut state, &mut rosters, 5);
        assert_eq!(
            next(known("c,d")).apply(&mut state, &mut rosters, 6),
            GateResponse::NeedRoster
        );
    }

    #[test]
    fn a_quota_429_mirrors_the_project_keys_it_cooled() {
        let mut c = candidates(&["a", "b", "c"]);
        c[0].project = Some("p".into());
        c[1].project = Some("p".into());
        let op = GateRequest::Report {
            roster: Roster::Full {
                digest: "p".into(),
                candidates: c,
            },
            report: Report {
                key_id: "a".into(),
                outcome: Outcome::RateLimited {
                    retry_after_ms: Some(60_000),
                    scope: crate::domain::outcome::QuotaScope::PerMinute,
                    quota_id: None,
                },
                latency_ms: 1,
            },
            policy: PoolPolicy::default(),
        };
        let GateResponse::Recorded { reported, .. } =
            op.apply(&mut PoolState::default(), &mut Rosters::default(), 1_000)
        else {
            panic!("not recorded");
        };
        let ids: Vec<&str> = reported.iter().map(|v| v.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert!(reported.iter().all(|v| v.cooling));
    }
}
