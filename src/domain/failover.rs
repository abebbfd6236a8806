//! The failover decisions of one client request: which gate decision means
//! "try this key", "stop" or "answer this error"; whether an attempt's
//! outcome moves on to another key (`Outcome::is_retryable`, nowhere else);
//! and the error the client gets when every attempt failed. The edge's loop
//! only performs the calls these decisions ask for. No I/O, no clock.

use super::error::GatewayError;
use super::gate::{Decision, Report};
use super::outcome::{Outcome, google_error_message};

/// What the loop does after asking the gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Call upstream with this key. `report_success`: the gate wants to hear
    /// about a success (the key had failures to clear).
    Try {
        key_id: String,
        report_success: bool,
    },
    /// No key is left after earlier failures: answer [`Failover::into_error`].
    GiveUp,
    /// Nothing was tried and nothing can be: answer this.
    Fail(GatewayError),
}

/// What the loop does with an attempt's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Hand the answer to the client (a success, or the request's own fault).
    Answer,
    /// The key or the upstream failed: try another key.
    Retry,
}

/// The failover state of one request.
#[derive(Debug, Default)]
pub struct Failover {
    tried: Vec<String>,
    /// The last failure, for the gate's next call (reported before choosing).
    pending: Option<Report>,
    min_retry_after_ms: Option<u64>,
    rate_limited: bool,
    last: Option<(Outcome, String)>,
}

impl Failover {
    /// Keys this request already tried: never offered again.
    pub fn tried(&self) -> &[String] {
        &self.tried
    }

    /// The failure to report with the next gate call, taken once.
    pub fn take_report(&mut self) -> Option<Report> {
        self.pending.take()
    }

    /// Reads the gate's decision.
    pub fn step(&self, decision: Decision) -> Step {
        let failed_before = self.last.is_some();
        match decision {
            Decision::Chosen {
                key_id,
                report_success,
            } => Step::Try {
                key_id,
                report_success,
            },
            Decision::Exhausted { .. } | Decision::NoKeys | Decision::OverBudget { .. }
                if failed_before =>
            {
                Step::GiveUp
            }
            Decision::OverBudget { retry_after_ms } => Step::Fail(GatewayError::RateLimited {
                message: "Every upstream key has used its budget for this model (setting `model_limits`); retry later.".into(),
                retry_after_secs: Some(retry_after_ms.div_ceil(1000).max(1)),
            }),
            Decision::Exhausted { retry_after_ms } => Step::Fail(GatewayError::RateLimited {
                message: "All upstream keys are cooling down; retry later.".into(),
                retry_after_secs: Some(retry_after_ms.div_ceil(1000).max(1)),
            }),
            Decision::NoKeys => Step::Fail(GatewayError::NoKeysConfigured),
        }
    }

    /// Folds in one attempt. A retryable outcome is remembered (for the next
    /// gate call and the final error) and its key is never tried again by
    /// this request; `detail` gives the scrubbed upstream message, asked for
    /// only then.
    pub fn judge(
        &mut self,
        key_id: &str,
        outcome: &Outcome,
        latency_ms: u64,
        detail: impl FnOnce() -> String,
    ) -> Verdict {
        if !outcome.is_retryable() {
            return Verdict::Answer;
        }
        let detail = detail();
        if let Outcome::RateLimited { retry_after_ms, .. } = outcome {
            self.rate_limited = true;
            let ms = retry_after_ms.unwrap_or(60_000);
            self.min_retry_after_ms = Some(self.min_retry_after_ms.map_or(ms, |m| m.min(ms)));
        }
        self.last = Some((outcome.clone(), detail));
        self.tried.push(key_id.to_owned());
        self.pending = Some(Report {
            key_id: key_id.to_owned(),
            outcome: outcome.clone(),
            latency_ms,
        });
        Verdict::Retry
    }

    /// The message of the last failed attempt.
    pub fn last_detail(&self) -> Option<&str> {
        self.last.as_ref().map(|(_, detail)| detail.as_str())
    }

    /// The error a client gets once no attempt succeeded.
    pub fn into_error(self) -> GatewayError {
        if self.rate_limited {
            return GatewayError::RateLimited {
                message: "All upstream keys are rate limited; retry later.".into(),
                retry_after_secs: Some(self.min_retry_after_ms.unwrap_or(60_000).div_ceil(1000)),
            };
        }
        match self.last {
            Some((Outcome::Timeout, _)) => {
                GatewayError::UpstreamTimeout("The upstream did not answer in time.".into())
            }
            Some((Outcome::ServerError { status: 503 }, detail)) => GatewayError::Upstream {
                status: 503,
                message: detail,
                google_status: Some("UNAVAILABLE".into()),
            },
            Some((_, detail)) => GatewayError::BadGateway(detail),
            None => GatewayError::BadGateway("No upstream attempt was made.".into()),
        }
    }
}

/// The message logged and kept for a failed attempt: Google's own when its
/// error body has one, else the outcome's summary. (Scrub it of the key
/// before it goes anywhere.)
pub fn failure_detail(outcome: &Outcome, body: Option<&[u8]>) -> String {
    body.and_then(google_error_message).map_or_else(
        || format!("upstream answered {}", outcome.summary()),
        |(message, _)| message,
    )
}

/// An upstream refusal that is the request's own fault (a 4xx the key is not
/// to blame for), in the gateway's error terms: a 404 is the client's model,
/// anything else keeps Google's status and message.
pub fn client_error(status: u16, body: &[u8], model: &str) -> GatewayError {
    if status == 404 {
        return GatewayError::ModelNotFound(model.to_owned());
    }
    let (message, google_status) = google_error_message(body)
        .unwrap_or_else(|| (format!("Upstream rejected the request ({status})."), None));
    GatewayError::Upstream {
        status,
        message,
        google_status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::outcome::QuotaScope;

    fn chosen(id: &str) -> Decision {
        Decision::Chosen {
            key_id: id.into(),
            report_success: false,
        }
    }

    fn minute(ms: u64) -> Outcome {
        Outcome::RateLimited {
            retry_after_ms: Some(ms),
            scope: QuotaScope::PerMinute,
            quota_id: None,
        }
    }

    #[test]
    fn decisions_before_and_after_a_failure() {
        let mut f = Failover::default();
        assert_eq!(
            f.step(chosen("a")),
            Step::Try {
                key_id: "a".into(),
                report_success: false
            }
        );
        assert_eq!(
            f.step(Decision::Exhausted {
                retry_after_ms: 1_500
            }),
            Step::Fail(GatewayError::RateLimited {
                message: "All upstream keys are cooling down; retry later.".into(),
                retry_after_secs: Some(2),
            })
        );
        assert_eq!(
            f.step(Decision::NoKeys),
            Step::Fail(GatewayError::NoKeysConfigured)
        );
        f.judge("a", &Outcome::Network, 5, || "network".into());
        for decision in [Decision::NoKeys, Decision::Exhausted { retry_after_ms: 9 }] {
            assert_eq!(f.step(decision), Step::GiveUp);
        }
    }

    #[test]
    fn only_retryable_outcomes_move_on_and_each_is_reported_once() {
        let mut f = Failover::default();
        for outcome in [Outcome::Ok, Outcome::ClientError { status: 400 }] {
            let verdict = f.judge("a", &outcome, 1, || unreachable!("no detail for an answer"));
            assert_eq!(verdict, Verdict::Answer);
        }
        assert!(f.tried().is_empty() && f.take_report().is_none());
        for (key, outcome) in [
            ("a", Outcome::ServerError { status: 500 }),
            ("b", Outcome::Timeout),
            ("c", minute(3_000)),
            (
                "d",
                Outcome::KeyInvalid {
                    reason: "API_KEY_INVALID".into(),
                },
            ),
        ] {
            assert_eq!(
                f.judge(key, &outcome, 7, || format!("{key} failed")),
                Verdict::Retry
            );
            assert_eq!(f.last_detail(), Some(format!("{key} failed").as_str()));
            let report = f.take_report().unwrap();
            assert_eq!((report.key_id.as_str(), report.outcome), (key, outcome));
            assert!(f.take_report().is_none());
        }
        assert_eq!(f.tried(), ["a", "b", "c", "d"]);
    }

    #[test]
    fn the_final_error_names_the_worst_news() {
        let fail = |outcomes: &[Outcome]| {
            let mut f = Failover::default();
            for (i, o) in outcomes.iter().enumerate() {
                f.judge(&format!("k{i}"), o, 1, || format!("detail {i}"));
            }
            f.into_error()
        };
        // Any rate limit makes it a 429 with the shortest delay.
        assert_eq!(
            fail(&[minute(7_000), Outcome::Network, minute(2_100)]),
            GatewayError::RateLimited {
                message: "All upstream keys are rate limited; retry later.".into(),
                retry_after_secs: Some(3),
            }
        );
        assert_eq!(fail(&[Outcome::Timeout]).status(), 504);
        let unavailable = fail(&[Outcome::ServerError { status: 503 }]);
        assert_eq!(
            (unavailable.status(), unavailable.google_status()),
            (503, "UNAVAILABLE")
        );
        assert_eq!(
            fail(&[Outcome::ServerError { status: 500 }]),
            GatewayError::BadGateway("detail 0".into())
        );
        assert_eq!(fail(&[]).status(), 502);
    }

    #[test]
    fn client_errors_keep_googles_words_and_404_names_the_model() {
        assert_eq!(
            client_error(404, b"", "gemini-x"),
            GatewayError::ModelNotFound("gemini-x".into())
        );
        let body = br#"{"error":{"code":400,"message":"bad field","status":"INVALID_ARGUMENT"}}"#;
        assert_eq!(
            client_error(400, body, "m"),
            GatewayError::Upstream {
                status: 400,
                message: "bad field".into(),
                google_status: Some("INVALID_ARGUMENT".into()),
            }
        );
        assert_eq!(
            client_error(413, b"<html>", "m").client_message(),
            "Upstream rejected the request (413)."
        );
    }

    #[test]
    fn failure_detail_prefers_googles_message() {
        let body = br#"{"error":{"code":500,"message":"Internal error encountered."}}"#;
        assert_eq!(
            failure_detail(&Outcome::ServerError { status: 500 }, Some(body)),
            "Internal error encountered."
        );
        assert_eq!(
            failure_detail(&Outcome::Network, None),
            "upstream answered network error"
        );
    }
}
