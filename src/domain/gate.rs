//! The protocol between the worker and the `ModelGate` Durable Object, and
//! the pure state transition it runs. The DO is a thin shell: it loads a
//! `PoolState`, calls `GateRequest::apply` with the current time, persists
//! the state when it changed, and answers.

use serde::{Deserialize, Serialize};

use super::keypool::{Candidate, Choice, KeyHealth, KeyHealthView, PoolPolicy, PoolState};
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

/// One call to a model's gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum GateRequest {
    /// Records the previous attempt's outcome (if any) and picks the next key,
    /// never one in `exclude`. One round trip per attempt.
    Next {
        roster: Roster,
        #[serde(default)]
        exclude: Vec<String>,
        #[serde(default)]
        report: Option<Report>,
        policy: PoolPolicy,
    },
    /// Records an outcome without choosing (the last attempt, or a success).
    Report {
        roster: Roster,
        report: Report,
        policy: PoolPolicy,
    },
    /// The health of every key, for the admin API.
    Snapshot,
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum GateResponse {
    Next {
        decision: Decision,
        /// The reported key's health after a failure, for the D1 mirror.
        reported: Option<KeyHealthView>,
    },
    Recorded {
        reported: Option<KeyHealthView>,
    },
    Snapshot {
        keys: Vec<KeyHealthView>,
    },
    /// Only a digest came and the gate does not know it: send the list.
    NeedRoster,
}

impl GateRequest {
    /// Applies the request to the state and answers it. What changed is
    /// found by [`Changes::between`].
    pub fn apply(self, state: &mut PoolState, rosters: &mut Rosters, now_ms: u64) -> GateResponse {
        match self {
            Self::Next {
                roster,
                exclude,
                report,
                policy,
            } => {
                let Some(candidates) = rosters.resolve(roster) else {
                    return GateResponse::NeedRoster;
                };
                state.prune(candidates);
                let reported = report.and_then(|r| {
                    state.record(
                        &r.key_id,
                        &r.outcome,
                        r.latency_ms,
                        candidates,
                        now_ms,
                        &policy,
                    );
                    reported_view(state, &r, now_ms)
                });
                let decision = match state.choose(candidates, &exclude, now_ms, &policy) {
                    Choice::Key(key_id) => {
                        let report_success = state
                            .keys
                            .get(&key_id)
                            .is_some_and(|h| h.consecutive_failures > 0);
                        Decision::Chosen {
                            key_id,
                            report_success,
                        }
                    }
                    Choice::Exhausted { retry_after_ms } => Decision::Exhausted { retry_after_ms },
                    Choice::NoKeys => Decision::NoKeys,
                };
                GateResponse::Next { decision, reported }
            }
            Self::Report {
                roster,
                report,
                policy,
            } => {
                let Some(candidates) = rosters.resolve(roster) else {
                    return GateResponse::NeedRoster;
                };
                state.record(
                    &report.key_id,
                    &report.outcome,
                    report.latency_ms,
                    candidates,
                    now_ms,
                    &policy,
                );
                let reported = reported_view(state, &report, now_ms);
                GateResponse::Recorded { reported }
            }
            Self::Snapshot => GateResponse::Snapshot {
                keys: state.snapshot(now_ms),
            },
        }
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

/// The health view of a reported key, for the D1 mirror. A client error
/// changed nothing; a success is reported only for a key that had failures,
/// so its view clears the mirror's stale row.
fn reported_view(state: &PoolState, report: &Report, now_ms: u64) -> Option<KeyHealthView> {
    if matches!(report.outcome, Outcome::ClientError { .. }) {
        return None;
    }
    state
        .snapshot(now_ms)
        .into_iter()
        .find(|v| v.id == report.key_id)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let GateResponse::Next {
            reported: Some(view),
            ..
        } = &second
        else {
            panic!("a failure report must return the key's health");
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
            reported: Some(failed),
        } = report(Outcome::ServerError { status: 500 }).apply(
            &mut state,
            &mut Rosters::default(),
            10,
        )
        else {
            panic!("a failure must be mirrored");
        };
        assert_eq!(failed.consecutive_failures, 1);
        let GateResponse::Recorded { reported: Some(ok) } =
            report(Outcome::Ok).apply(&mut state, &mut Rosters::default(), 20)
        else {
            panic!("a success after failures must be mirrored");
        };
        assert_eq!(ok.consecutive_failures, 0);
        let GateResponse::Recorded { reported } = report(Outcome::ClientError { status: 400 })
            .apply(&mut state, &mut Rosters::default(), 30)
        else {
            panic!("not recorded");
        };
        assert!(reported.is_none());
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
}
