//! Scheduled maintenance: which jobs there are, what a run records, and the
//! pure decisions the jobs make (which upstreams to probe, which keys to
//! archive). The cron handler (`edge::cron`) runs them with the scheduled
//! time as its clock, so a test can fire a run "four days later".

use serde::Serialize;
use serde_json::{Map, Value};

/// The jobs, in the order a run performs them. Names are the contract of
/// `GET /admin/api/jobs` and of the `job_runs` table.
pub const JOBS: [&str; 7] = [
    "import",
    "probe",
    "archive",
    "tokens",
    "retention",
    "reseal",
    "files",
];

/// Runs of each job kept in `job_runs`.
pub const RUNS_KEPT: u32 = 50;

/// Probes one run may make: each is an upstream call plus a gate call, well
/// under Workers' 50 subrequests of a free-plan invocation with the other jobs.
pub const PROBES_PER_RUN: usize = 10;

/// A key disabled as invalid is probed again at most this often: Google
/// revives a key only when its owner acts (billing, a restored project), so
/// once a day finds it the same day without spamming a dead key.
pub const INVALID_RECHECK_MS: u64 = 24 * 3600 * 1000;

const DAY_MS: u64 = 24 * 3600 * 1000;

/// What one run of one job did.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct JobRun {
    pub job: String,
    pub started_at: u64,
    pub duration_ms: u64,
    pub ok: bool,
    /// What it did, as counts (`{"probed": 3, "recovered": 1}`).
    pub counts: Map<String, Value>,
    pub error: Option<String>,
}

/// Builds a run's counts from name/number pairs.
pub fn counts<const N: usize>(pairs: [(&str, u64); N]) -> Map<String, Value> {
    pairs
        .into_iter()
        .map(|(name, n)| (name.to_owned(), Value::from(n)))
        .collect()
}

/// A key's health for one model, as the D1 mirror has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cooling {
    pub upstream_id: String,
    pub model: String,
    pub cooldown_until: u64,
    pub consecutive_failures: u32,
}

/// A key disabled because Google called it invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub id: String,
    pub disabled_at: u64,
    pub probed_at: Option<u64>,
}

/// One probe the run will make: an upstream on a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeTarget {
    /// A cooldown that has ended with failures still on record: one cheap
    /// call on that model tells whether it is back.
    Cooled { upstream_id: String, model: String },
    /// A key disabled as invalid, due its slow re-check.
    Invalid { id: String },
}

/// What to probe this run, at most `budget`: cooldowns that ended, or
/// failures still on record, first (oldest end first; they heal), then invalid keys due their daily
/// re-check (longest unprobed first). A cooldown still running is never
/// probed (the failover loop would skip the upstream anyway, and a probe
/// then only spends quota), and a failed probe cools the upstream again, so
/// the same pair is not probed every run.
pub fn probe_plan(
    cooling: &[Cooling],
    invalid: &[Invalid],
    now_ms: u64,
    budget: usize,
) -> Vec<ProbeTarget> {
    let mut ended: Vec<&Cooling> = cooling
        .iter()
        .filter(|c| {
            (c.consecutive_failures > 0 || c.cooldown_until > 0) && c.cooldown_until <= now_ms
        })
        .collect();
    ended.sort_by(|a, b| {
        (a.cooldown_until, &a.upstream_id, &a.model).cmp(&(
            b.cooldown_until,
            &b.upstream_id,
            &b.model,
        ))
    });
    let last_look = |k: &Invalid| k.probed_at.unwrap_or(0).max(k.disabled_at);
    let mut due: Vec<&Invalid> = invalid
        .iter()
        .filter(|k| now_ms.saturating_sub(last_look(k)) >= INVALID_RECHECK_MS)
        .collect();
    due.sort_by(|a, b| (last_look(a), &a.id).cmp(&(last_look(b), &b.id)));
    ended
        .into_iter()
        .map(|c| ProbeTarget::Cooled {
            upstream_id: c.upstream_id.clone(),
            model: c.model.clone(),
        })
        .chain(
            due.into_iter()
                .map(|k| ProbeTarget::Invalid { id: k.id.clone() }),
        )
        .take(budget)
        .collect()
}

/// The newest `disabled_at` a key may have and still be archived now:
/// invalid for longer than `days`. `None` when archiving is off (`days` 0).
pub fn archive_cutoff(now_ms: u64, days: u32) -> Option<u64> {
    (days > 0).then(|| now_ms.saturating_sub(u64::from(days) * DAY_MS))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 10 * DAY_MS;

    fn cooling(id: &str, model: &str, until: u64, failures: u32) -> Cooling {
        Cooling {
            upstream_id: id.into(),
            model: model.into(),
            cooldown_until: until,
            consecutive_failures: failures,
        }
    }

    fn invalid(id: &str, disabled_at: u64, probed_at: Option<u64>) -> Invalid {
        Invalid {
            id: id.into(),
            disabled_at,
            probed_at,
        }
    }

    #[test]
    fn only_ended_cooldowns_and_recorded_failures_are_probed_oldest_first() {
        let rows = [
            cooling("k1", "m", NOW + 1, 2),
            cooling("k2", "m", NOW - 5, 1),
            cooling("k3", "m", NOW - 50, 3),
            cooling("k4", "m", 0, 0),
            cooling("k5", "m", NOW - 7, 0),
        ];
        assert_eq!(
            probe_plan(&rows, &[], NOW, 10),
            vec![
                ProbeTarget::Cooled {
                    upstream_id: "k3".into(),
                    model: "m".into()
                },
                ProbeTarget::Cooled {
                    upstream_id: "k5".into(),
                    model: "m".into()
                },
                ProbeTarget::Cooled {
                    upstream_id: "k2".into(),
                    model: "m".into()
                },
            ]
        );
    }

    #[test]
    fn invalid_keys_are_rechecked_once_a_day_and_never_before() {
        let keys = [
            invalid("fresh", NOW - 3_600_000, None),
            invalid("old", NOW - 2 * DAY_MS, None),
            invalid("probed-recently", NOW - 5 * DAY_MS, Some(NOW - 60_000)),
            invalid("probed-long-ago", NOW - 5 * DAY_MS, Some(NOW - 3 * DAY_MS)),
        ];
        assert_eq!(
            probe_plan(&[], &keys, NOW, 10),
            vec![
                ProbeTarget::Invalid {
                    id: "probed-long-ago".into()
                },
                ProbeTarget::Invalid { id: "old".into() },
            ]
        );
    }

    #[test]
    fn the_budget_bounds_a_run_and_cooldowns_go_first() {
        let rows: Vec<Cooling> = (0..20)
            .map(|i| cooling(&format!("k{i:02}"), "m", NOW - 100 + i, 1))
            .collect();
        let keys = [invalid("dead", 0, None)];
        let plan = probe_plan(&rows, &keys, NOW, PROBES_PER_RUN);
        assert_eq!(plan.len(), PROBES_PER_RUN);
        assert!(plan.iter().all(|p| matches!(p, ProbeTarget::Cooled { .. })));
        // The next run (after these were probed and cooled again or cleared)
        // reaches the rest: the plan is a cursor by itself.
        let rest = probe_plan(&rows[11..], &keys, NOW, PROBES_PER_RUN);
        assert_eq!(rest.len(), PROBES_PER_RUN);
        assert_eq!(
            rest.last(),
            Some(&ProbeTarget::Invalid { id: "dead".into() })
        );
    }

    #[test]
    fn archiving_counts_whole_days_and_zero_turns_it_off() {
        assert_eq!(archive_cutoff(NOW, 3), Some(NOW - 3 * DAY_MS));
        assert_eq!(archive_cutoff(NOW, 0), None);
        assert_eq!(archive_cutoff(DAY_MS, 3), Some(0));
    }

    #[test]
    fn counts_keep_their_names() {
        let c = counts([("probed", 2), ("recovered", 1)]);
        assert_eq!(
            Value::Object(c),
            serde_json::json!({"probed": 2, "recovered": 1})
        );
    }
}
