//! Time windows: the day zone setting (UTC, fixed offsets, Los Angeles with its daylight
//! saving time) and where its day starts, and the minute and day windows the rate limits
//! count in. The day arithmetic itself is in `clock`; nothing here reads a clock.

use serde::{Deserialize, Serialize};

use crate::domain::clock::{fixed_offset_day_bounds_ms, los_angeles_day_bounds_ms};

pub(super) const MINUTE_MS: u64 = 60_000;

/// The largest fixed offset accepted (UTC+14:00, Kiribati), in minutes.
const MAX_OFFSET_MINUTES: i32 = 14 * 60;

/// IANA zones without daylight saving time, by their fixed offset in minutes.
const FIXED_ZONES: &[(&str, i32)] = &[
    ("Asia/Shanghai", 480),
    ("Asia/Hong_Kong", 480),
    ("Asia/Taipei", 480),
    ("Asia/Singapore", 480),
    ("Asia/Tokyo", 540),
    ("Asia/Seoul", 540),
    ("Asia/Kolkata", 330),
    ("Asia/Calcutta", 330),
    ("Europe/Moscow", 180),
];

/// Where the day window starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayZone {
    Utc,
    /// Minutes east of UTC.
    FixedOffsetMinutes(i32),
    /// `America/Los_Angeles`, with its daylight saving time.
    LosAngeles,
}

impl DayZone {
    /// Parses the setting: `""`, `UTC`, `Etc/UTC`, `GMT` → UTC; an offset such
    /// as `+08:00`, `-05:30`, `+0800`, `UTC+8` or `GMT-3` → a fixed offset;
    /// `America/Los_Angeles` (or `US/Pacific`) → Los Angeles with DST; and a
    /// few IANA zones without DST by name. Names are matched ignoring ASCII
    /// case. Anything else is an error naming what is accepted.
    pub fn parse(s: &str) -> Result<DayZone, String> {
        let s = s.trim();
        let is = |names: &[&str]| names.iter().any(|n| n.eq_ignore_ascii_case(s));
        if s.is_empty() || is(&["UTC", "Etc/UTC", "GMT", "Etc/GMT", "Z"]) {
            return Ok(Self::Utc);
        }
        if is(&["America/Los_Angeles", "US/Pacific"]) {
            return Ok(Self::LosAngeles);
        }
        if let Some(&(_, minutes)) = FIXED_ZONES.iter().find(|(n, _)| n.eq_ignore_ascii_case(s)) {
            return Ok(Self::fixed(minutes));
        }
        let offset = match s.get(..3) {
            Some(p) if p.eq_ignore_ascii_case("UTC") || p.eq_ignore_ascii_case("GMT") => {
                s.get(3..).unwrap_or_default()
            }
            _ => s,
        };
        parse_offset_minutes(offset)
            .map(Self::fixed)
            .ok_or_else(|| {
                let names: Vec<&str> = FIXED_ZONES.iter().map(|(n, _)| *n).collect();
                format!(
                    "unknown day time zone {s:?}: use UTC, an offset such as +08:00 or UTC-5, \
                 America/Los_Angeles, or one of {}",
                    names.join(", ")
                )
            })
    }

    fn fixed(minutes: i32) -> Self {
        if minutes == 0 {
            Self::Utc
        } else {
            Self::FixedOffsetMinutes(minutes)
        }
    }

    /// Start (ms) of the local day containing `now_ms`, and the start of the
    /// next one.
    pub fn day_bounds(self, now_ms: u64) -> (u64, u64) {
        match self {
            Self::Utc => fixed_offset_day_bounds_ms(now_ms, 0),
            Self::FixedOffsetMinutes(minutes) => fixed_offset_day_bounds_ms(now_ms, minutes),
            Self::LosAngeles => los_angeles_day_bounds_ms(now_ms),
        }
    }
}

/// `+H`, `+HH`, `+H:MM`, `+HH:MM` or `+HHMM` (or `-`), at most 14 hours
/// either way.
fn parse_offset_minutes(s: &str) -> Option<i32> {
    let (sign, rest) = if let Some(rest) = s.strip_prefix('+') {
        (1, rest)
    } else {
        (-1, s.strip_prefix('-')?)
    };
    if !rest.bytes().all(|b| b.is_ascii_digit() || b == b':') {
        return None;
    }
    // Every byte is ASCII from here on, so the splits fall on char boundaries.
    let (hours, minutes) = match rest.split_once(':') {
        Some((h, m)) if m.len() == 2 => (h, m),
        None if rest.len() == 4 => rest.split_at(2),
        None if rest.len() <= 2 => (rest, "00"),
        _ => return None,
    };
    if hours.is_empty() || hours.len() > 2 || minutes.contains(':') {
        return None;
    }
    let hours: i32 = hours.parse().ok()?;
    let minutes: i32 = minutes.parse().ok()?;
    let total = hours * 60 + minutes;
    (minutes < 60 && total <= MAX_OFFSET_MINUTES).then_some(sign * total)
}

/// The current minute: requests admitted and tokens reserved or used in it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinuteWindow {
    pub start: u64,
    pub requests: u32,
    pub tokens: u64,
}

/// The current local day: requests admitted in it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayWindow {
    pub start: u64,
    pub requests: u32,
}
