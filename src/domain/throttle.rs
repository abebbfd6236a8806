//! Throttling admin password guesses: at most `PER_CLIENT_LIMIT` failures per
//! client (an IPv4 address, or an IPv6 /64) and a global limit per sliding
//! window. The `LoginThrottle` Durable Object runs [`Throttle::attempt`] one
//! call at a time, so the count is exact under any concurrency. Time is an
//! argument; nothing here reads a clock.

use std::collections::BTreeMap;
use std::net::Ipv6Addr;

use serde::{Deserialize, Serialize};

/// Failures are remembered this long.
pub const WINDOW_MS: u64 = 15 * 60 * 1000;
/// Failures one client may make per window.
pub const PER_CLIENT_LIMIT: usize = 5;
/// Clients remembered at most; the one with the oldest failure goes first.
/// Bounds the object's memory when the global limit is off.
const MAX_CLIENTS: usize = 5_000;

/// The throttle's request: one guess, whose verdict the worker computed in
/// constant time. When the throttle refuses, the verdict is never used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub client: String,
    pub correct: bool,
    /// `admin_login_global_limit`: failures of all clients per window; 0 = off.
    pub global_limit: u32,
}

/// The throttle's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// The password was right: the client's failures are forgotten.
    Allowed,
    /// The password was wrong, and that failure now counts.
    Denied,
    /// Too many failures: the guess was not considered. Retry after this long
    /// (when the oldest failure that blocks leaves the window).
    Throttled { retry_after_ms: u64 },
}

/// Recent failures per client, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throttle {
    failures: BTreeMap<String, Vec<u64>>,
}

impl Throttle {
    pub fn from_entries(entries: impl IntoIterator<Item = (String, Vec<u64>)>) -> Self {
        Self {
            failures: entries.into_iter().collect(),
        }
    }

    /// The failures remembered for `client` (what the Durable Object stores).
    pub fn failures_of(&self, client: &str) -> &[u64] {
        self.failures.get(client).map_or(&[], Vec::as_slice)
    }

    /// Judges one guess. Returns the verdict and the clients whose entry
    /// changed (for storage).
    pub fn attempt(&mut self, attempt: &Attempt, now_ms: u64) -> (Verdict, Vec<String>) {
        let mut changed = self.expire(now_ms);
        let retry = |oldest: u64| (oldest + WINDOW_MS).saturating_sub(now_ms).max(1_000);
        let mine = self.failures_of(&attempt.client);
        if mine.len() >= PER_CLIENT_LIMIT {
            let retry_after_ms = retry(mine[mine.len() - PER_CLIENT_LIMIT]);
            return (Verdict::Throttled { retry_after_ms }, changed);
        }
        let limit = usize::try_from(attempt.global_limit).unwrap_or(usize::MAX);
        let mut all: Vec<u64> = self.failures.values().flatten().copied().collect();
        if limit > 0 && all.len() >= limit {
            all.sort_unstable();
            let retry_after_ms = retry(all[all.len() - limit]);
            return (Verdict::Throttled { retry_after_ms }, changed);
        }
        changed.push(attempt.client.clone());
        if attempt.correct {
            self.failures.remove(&attempt.client);
            return (Verdict::Allowed, changed);
        }
        self.failures
            .entry(attempt.client.clone())
            .or_default()
            .push(now_ms);
        changed.extend(self.evict());
        (Verdict::Denied, changed)
    }

    /// Forgets failures that left the window; returns the clients it touched.
    fn expire(&mut self, now_ms: u64) -> Vec<String> {
        let cutoff = now_ms.saturating_sub(WINDOW_MS);
        let mut touched = Vec::new();
        self.failures.retain(|client, times| {
            let before = times.len();
            times.retain(|&t| t > cutoff);
            if times.len() != before {
                touched.push(client.clone());
            }
            !times.is_empty()
        });
        touched
    }

    fn evict(&mut self) -> Vec<String> {
        let mut evicted = Vec::new();
        while self.failures.len() > MAX_CLIENTS {
            let oldest = self
                .failures
                .iter()
                .min_by_key(|(_, times)| times.first().copied().unwrap_or(0))
                .map(|(client, _)| client.clone());
            let Some(oldest) = oldest else { break };
            self.failures.remove(&oldest);
            evicted.push(oldest);
        }
        evicted
    }
}

/// The throttling key of a client address: an IPv4 address as is, an IPv6
/// address by its /64 (one subscriber usually owns a whole /64), anything
/// else (or nothing) as `unknown`.
pub fn client_key(ip: Option<&str>) -> String {
    let Some(ip) = ip.map(str::trim).filter(|ip| !ip.is_empty()) else {
        return "unknown".to_owned();
    };
    if let Ok(v4) = ip.parse::<std::net::Ipv4Addr>() {
        return v4.to_string();
    }
    match ip.parse::<Ipv6Addr>() {
        Ok(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4.to_string();
            }
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Err(_) => "unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_765_000_000_000;

    fn guess(client: &str, correct: bool) -> Attempt {
        Attempt {
            client: client.into(),
            correct,
            global_limit: 50,
        }
    }

    #[test]
    fn five_failures_then_even_the_right_password_waits() {
        let mut t = Throttle::default();
        for i in 0..5 {
            assert_eq!(
                t.attempt(&guess("1.2.3.4", false), T0 + i).0,
                Verdict::Denied
            );
        }
        assert_eq!(
            t.attempt(&guess("1.2.3.4", true), T0 + 10).0,
            Verdict::Throttled {
                retry_after_ms: WINDOW_MS - 10
            }
        );
        // Refused guesses do not count: the window still ends with the first failure.
        assert_eq!(
            t.attempt(&guess("1.2.3.4", true), T0 + WINDOW_MS - 1).0,
            Verdict::Throttled {
                retry_after_ms: 1_000
            }
        );
        // Once the first failure left the window, four remain: the right password passes.
        assert_eq!(
            t.attempt(&guess("1.2.3.4", true), T0 + WINDOW_MS).0,
            Verdict::Allowed
        );
        // Another client was never held back.
        assert_eq!(
            t.attempt(&guess("5.6.7.8", true), T0 + 11).0,
            Verdict::Allowed
        );
    }

    #[test]
    fn a_success_clears_only_its_own_client() {
        let mut t = Throttle::default();
        for i in 0..4 {
            t.attempt(&guess("a", false), T0 + i);
            t.attempt(&guess("b", false), T0 + i);
        }
        assert_eq!(t.attempt(&guess("a", true), T0 + 5).0, Verdict::Allowed);
        assert!(t.failures_of("a").is_empty());
        assert_eq!(t.failures_of("b").len(), 4);
    }

    #[test]
    fn the_global_limit_holds_across_clients_and_zero_turns_it_off() {
        let mut t = Throttle::default();
        let limited = |client: &str, limit| Attempt {
            client: client.into(),
            correct: false,
            global_limit: limit,
        };
        for i in 0..10 {
            let client = format!("10.0.0.{i}");
            assert_eq!(t.attempt(&limited(&client, 10), T0 + i).0, Verdict::Denied);
        }
        assert_eq!(
            t.attempt(&limited("10.0.1.1", 10), T0 + 20).0,
            Verdict::Throttled {
                retry_after_ms: WINDOW_MS - 20
            }
        );
        assert_eq!(
            t.attempt(&limited("10.0.1.1", 0), T0 + 21).0,
            Verdict::Denied
        );
    }

    #[test]
    fn storage_learns_which_clients_changed() {
        let mut t = Throttle::default();
        let (_, changed) = t.attempt(&guess("a", false), T0);
        assert_eq!(changed, ["a"]);
        let (_, changed) = t.attempt(&guess("b", false), T0 + WINDOW_MS);
        assert_eq!(changed, ["a", "b"], "a's failure expired");
        assert!(t.failures_of("a").is_empty());
        let back = Throttle::from_entries([("b".to_owned(), t.failures_of("b").to_vec())]);
        assert_eq!(back, t);
    }

    #[test]
    fn ipv6_clients_are_grouped_by_their_64() {
        assert_eq!(
            client_key(Some("2001:db8:1:2:aaaa::1")),
            client_key(Some("2001:db8:1:2:ffff:ffff:ffff:ffff"))
        );
        assert_ne!(
            client_key(Some("2001:db8:1:2::1")),
            client_key(Some("2001:db8:1:3::1"))
        );
        assert_eq!(client_key(Some(" 203.0.113.9 ")), "203.0.113.9");
        assert_eq!(client_key(Some("::ffff:203.0.113.9")), "203.0.113.9");
        assert_eq!(client_key(Some("garbage")), "unknown");
        assert_eq!(client_key(None), "unknown");
    }

    #[test]
    fn memory_is_bounded() {
        let mut t = Throttle::default();
        let attempt = |i: usize| Attempt {
            client: format!("c{i}"),
            correct: false,
            global_limit: 0,
        };
        for i in 0..MAX_CLIENTS + 10 {
            t.attempt(&attempt(i), T0 + i as u64);
        }
        assert_eq!(t.failures.len(), MAX_CLIENTS);
        assert!(t.failures_of("c0").is_empty(), "the oldest went first");
    }
}
