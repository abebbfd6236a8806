//! Tests of prices, globs, reset formats, day zones, and the ledger (credit under concurrency,
//! rates, settlement, the key lifecycle, persistence and the wire format).

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
