//! Calendar arithmetic on `now_ms` (milliseconds since the Unix epoch, UTC):
//! Google's daily quota reset at midnight `America/Los_Angeles`, window starts,
//! and RFC 3339 formatting. It never reads a clock; callers pass time in.
//!
//! The civil-date conversions are Howard Hinnant's `days_from_civil` /
//! `civil_from_days`, written out because the crate list has no `chrono`.

const MS_PER_SECOND: i64 = 1_000;
const MS_PER_MINUTE: i64 = 60 * MS_PER_SECOND;
const MS_PER_HOUR: i64 = 60 * MS_PER_MINUTE;
const MS_PER_DAY: i64 = 24 * MS_PER_HOUR;

/// Pacific Standard Time is UTC-8, Pacific Daylight Time UTC-7.
const PST_OFFSET_MS: i64 = -8 * MS_PER_HOUR;
const PDT_OFFSET_MS: i64 = -7 * MS_PER_HOUR;

/// 9999-12-31T23:59:59.999Z. Later instants are clamped, which keeps every
/// intermediate value far from overflow whatever a caller passes in.
const MAX_SUPPORTED_MS: i64 = 253_402_300_799_999;

/// A calendar date in the proleptic Gregorian calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CivilDate {
    year: i64,
    month: u32,
    day: u32,
}

/// The next 00:00 in `America/Los_Angeles` strictly after `now_ms`, in ms since
/// the epoch. Google resets per-day quotas then, so a key parked on a per-day
/// 429 becomes usable again at this instant.
///
/// Uses the US DST rules in force since 2007: daylight time from the second
/// Sunday of March at 02:00 local to the first Sunday of November at 02:00
/// local. Midnight never falls in a DST gap or overlap, so it is unambiguous.
pub fn next_midnight_los_angeles_ms(now_ms: u64) -> u64 {
    let now = clamp_ms(now_ms);
    let local = now + los_angeles_offset_ms(now);
    let tomorrow = local.div_euclid(MS_PER_DAY) + 1;
    to_u64(los_angeles_midnight_utc_ms(tomorrow))
}

/// The start (00:00 UTC) of the UTC day containing `now_ms`.
pub fn utc_day_start_ms(now_ms: u64) -> u64 {
    now_ms - now_ms % 86_400_000
}

/// The start of the UTC minute containing `now_ms`.
pub fn minute_start_ms(now_ms: u64) -> u64 {
    now_ms - now_ms % 60_000
}

/// The local day containing `now_ms` in a zone at a fixed offset from UTC
/// (`offset_minutes` east of Greenwich): the UTC instants of its 00:00 and of
/// the next day's. Starts before the epoch are clamped to 0.
pub fn fixed_offset_day_bounds_ms(now_ms: u64, offset_minutes: i32) -> (u64, u64) {
    let offset = i64::from(offset_minutes) * MS_PER_MINUTE;
    let local_day = (clamp_ms(now_ms) + offset).div_euclid(MS_PER_DAY);
    let start = local_day * MS_PER_DAY - offset;
    (to_u64(start), to_u64(start + MS_PER_DAY))
}

/// The `America/Los_Angeles` day containing `now_ms`: the UTC instants of its
/// 00:00 and of the next day's. A day is 23 or 25 hours long when the clocks
/// change, which is why this is not a fixed offset.
pub fn los_angeles_day_bounds_ms(now_ms: u64) -> (u64, u64) {
    let now = clamp_ms(now_ms);
    let today = (now + los_angeles_offset_ms(now)).div_euclid(MS_PER_DAY);
    (
        to_u64(los_angeles_midnight_utc_ms(today)),
        to_u64(los_angeles_midnight_utc_ms(today + 1)),
    )
}

/// `ms` as an RFC 3339 UTC timestamp with milliseconds,
/// e.g. `2024-03-10T10:00:00.000Z`: how the admin API writes times.
pub fn format_rfc3339(ms: u64) -> String {
    let ms = clamp_ms(ms);
    let date = civil_from_days(ms.div_euclid(MS_PER_DAY));
    let of_day = ms.rem_euclid(MS_PER_DAY);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        date.year,
        date.month,
        date.day,
        of_day / MS_PER_HOUR,
        of_day % MS_PER_HOUR / MS_PER_MINUTE,
        of_day % MS_PER_MINUTE / MS_PER_SECOND,
        of_day % MS_PER_SECOND,
    )
}

fn clamp_ms(ms: u64) -> i64 {
    i64::try_from(ms).map_or(MAX_SUPPORTED_MS, |v| v.min(MAX_SUPPORTED_MS))
}

fn to_u64(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0)
}

/// The UTC offset of Los Angeles at the instant `utc_ms`.
fn los_angeles_offset_ms(utc_ms: i64) -> i64 {
    let year = civil_from_days(utc_ms.div_euclid(MS_PER_DAY)).year;
    let (start, end) = dst_bounds_utc_ms(year);
    if (start..end).contains(&utc_ms) {
        PDT_OFFSET_MS
    } else {
        PST_OFFSET_MS
    }
}

/// The UTC instants at which daylight time starts and ends in `year`.
/// Both fall in March and November, so the UTC year and the local year agree.
fn dst_bounds_utc_ms(year: i64) -> (i64, i64) {
    let start_day = nth_sunday(year, 3, 2);
    let end_day = nth_sunday(year, 11, 1);
    // 02:00 PST is 10:00 UTC; 02:00 PDT is 09:00 UTC.
    let start = start_day * MS_PER_DAY + 2 * MS_PER_HOUR - PST_OFFSET_MS;
    let end = end_day * MS_PER_DAY + 2 * MS_PER_HOUR - PDT_OFFSET_MS;
    (start, end)
}

/// The UTC instant of 00:00 Los Angeles time on the local day `local_day`
/// (days since 1970-01-01). Daylight time is tried first: if that reading of
/// midnight falls inside DST it is the right one, otherwise it is standard time.
fn los_angeles_midnight_utc_ms(local_day: i64) -> i64 {
    let local_midnight = local_day * MS_PER_DAY;
    let as_daylight = local_midnight - PDT_OFFSET_MS;
    if los_angeles_offset_ms(as_daylight) == PDT_OFFSET_MS {
        as_daylight
    } else {
        local_midnight - PST_OFFSET_MS
    }
}

/// Days since 1970-01-01 of the `n`th Sunday (1-based) of `month` in `year`.
fn nth_sunday(year: i64, month: u32, n: i64) -> i64 {
    let first = days_from_civil(CivilDate {
        year,
        month,
        day: 1,
    });
    let until_sunday = (7 - weekday(first)) % 7;
    first + until_sunday + 7 * (n - 1)
}

/// Day of the week, 0 = Sunday. 1970-01-01 was a Thursday.
fn weekday(days: i64) -> i64 {
    (days + 4).rem_euclid(7)
}

/// `YYYY-MM-DD` as the ms of its 00:00 UTC, for date-range queries; `None` when malformed.
pub fn parse_date_ms(text: &str) -> Option<u64> {
    let mut parts = text.trim().splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: u32 = parts.next()?.parse().ok()?;
    let day: u32 = parts.next()?.parse().ok()?;
    if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let date = CivilDate { year, month, day };
    let days = days_from_civil(date);
    // 2024-02-31 would roll over into March; such a date does not exist.
    (civil_from_days(days) == date).then(|| to_u64(days * MS_PER_DAY))
}

/// Days since 1970-01-01 of a civil date.
/// An RFC 3339 timestamp (`2024-03-10T10:00:00Z`, with optional fraction and
/// a `Z` or `±HH:MM` offset) as ms since the epoch; a bare `YYYY-MM-DD` is its
/// midnight UTC. `None` for anything else or before 1970.
pub fn parse_rfc3339_ms(text: &str) -> Option<u64> {
    let text = text.trim();
    let Some((date, rest)) = text.split_once(['T', 't', ' ']) else {
        return parse_date_ms(text);
    };
    let day_ms = i64::try_from(parse_date_ms(date)?).ok()?;
    let (clock, offset_ms) = if let Some(clock) = rest.strip_suffix(['Z', 'z']) {
        (clock, 0)
    } else {
        let at = rest.rfind(['+', '-'])?;
        let (clock, offset) = rest.split_at(at);
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let (h, m) = offset[1..].split_once(':')?;
        let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
        if h > 23 || m > 59 {
            return None;
        }
        (clock, sign * (h * MS_PER_HOUR + m * MS_PER_MINUTE))
    };
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut fields = hms.splitn(3, ':');
    let mut field = |max: i64| -> Option<i64> {
        let v: i64 = fields.next()?.parse().ok()?;
        (0..=max).contains(&v).then_some(v)
    };
    let (h, m, sec) = (field(23)?, field(59)?, field(60)?);
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let millis: i64 = format!("{fraction:0<3}")[..3].parse().ok()?;
    let ms =
        day_ms + h * MS_PER_HOUR + m * MS_PER_MINUTE + sec * MS_PER_SECOND + millis - offset_ms;
    u64::try_from(ms).ok()
}

fn days_from_civil(date: CivilDate) -> i64 {
    let month = i64::from(date.month);
    let year = if month <= 2 { date.year - 1 } else { date.year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let shifted_month = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * shifted_month + 2) / 5 + i64::from(date.day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The civil date of `days` since 1970-01-01.
fn civil_from_days(days: i64) -> CivilDate {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    CivilDate {
        year,
        // Both are in range by construction (1..=12 and 1..=31).
        month: u32::try_from(month).unwrap_or(1),
        day: u32::try_from(day).unwrap_or(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_and_reads_offsets() {
        let t = 1_705_348_800_123;
        assert_eq!(parse_rfc3339_ms(&format_rfc3339(t)), Some(t));
        assert_eq!(
            parse_rfc3339_ms("2024-01-15T20:00:00Z"),
            Some(1_705_348_800_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2024-01-16T04:00:00+08:00"),
            Some(1_705_348_800_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2024-01-15T12:00:00.5-08:00"),
            Some(1_705_348_800_500)
        );
        assert_eq!(parse_rfc3339_ms("2024-01-15"), Some(1_705_276_800_000));
        for bad in [
            "",
            "yesterday",
            "2024-01-15T25:00:00Z",
            "2024-01-15T20:00:00",
            "2024-02-30T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "2024-01-15T20:00:00.x1Z",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn dates_parse_to_utc_midnight_and_impossible_ones_fail() {
        assert_eq!(parse_date_ms("1970-01-01"), Some(0));
        assert_eq!(parse_date_ms("2024-03-10"), Some(1_710_028_800_000));
        for bad in [
            "2024-02-31",
            "2024-13-01",
            "24-01-01",
            "2024/01/01",
            "",
            "2024-01",
        ] {
            assert_eq!(parse_date_ms(bad), None, "{bad}");
        }
    }

    fn utc(year: i64, month: u32, day: u32, hour: i64, minute: i64, second: i64) -> u64 {
        let days = days_from_civil(CivilDate { year, month, day });
        let ms = days * MS_PER_DAY + hour * MS_PER_HOUR + minute * MS_PER_MINUTE + second * 1_000;
        u64::try_from(ms).unwrap()
    }

    fn next_la_midnight(now: u64) -> String {
        format_rfc3339(next_midnight_los_angeles_ms(now))
    }

    #[test]
    fn civil_conversions_match_known_dates() {
        assert_eq!(
            days_from_civil(CivilDate {
                year: 1970,
                month: 1,
                day: 1
            }),
            0
        );
        assert_eq!(
            days_from_civil(CivilDate {
                year: 2000,
                month: 1,
                day: 1
            }),
            10_957
        );
        assert_eq!(
            days_from_civil(CivilDate {
                year: 2000,
                month: 3,
                day: 1
            }),
            11_017
        );
        assert_eq!(
            days_from_civil(CivilDate {
                year: 1969,
                month: 12,
                day: 31
            }),
            -1
        );
        assert_eq!(
            civil_from_days(19_782),
            CivilDate {
                year: 2024,
                month: 2,
                day: 29
            }
        );
    }

    #[test]
    fn civil_conversions_round_trip_over_centuries() {
        for days in -800_000..800_000 {
            assert_eq!(days_from_civil(civil_from_days(days)), days);
        }
    }

    #[test]
    fn dst_transition_dates_follow_2007_rules() {
        let day = |y, m, d| {
            days_from_civil(CivilDate {
                year: y,
                month: m,
                day: d,
            })
        };
        assert_eq!(nth_sunday(2007, 3, 2), day(2007, 3, 11));
        assert_eq!(nth_sunday(2007, 11, 1), day(2007, 11, 4));
        assert_eq!(nth_sunday(2024, 3, 2), day(2024, 3, 10));
        assert_eq!(nth_sunday(2024, 11, 1), day(2024, 11, 3));
        assert_eq!(nth_sunday(2025, 3, 2), day(2025, 3, 9));
        assert_eq!(nth_sunday(2025, 11, 1), day(2025, 11, 2));
        // March 2026 starts on a Sunday: the second Sunday is the 8th.
        assert_eq!(nth_sunday(2026, 3, 2), day(2026, 3, 8));
    }

    #[test]
    fn winter_midnight_is_08_utc() {
        assert_eq!(
            next_la_midnight(utc(2024, 1, 15, 20, 0, 0)),
            "2024-01-16T08:00:00.000Z"
        );
    }

    #[test]
    fn summer_midnight_is_07_utc() {
        assert_eq!(
            next_la_midnight(utc(2024, 7, 15, 20, 0, 0)),
            "2024-07-16T07:00:00.000Z"
        );
    }

    #[test]
    fn la_date_is_used_when_utc_has_already_rolled_over() {
        // 03:00 UTC on July 1st is still June 30th, 20:00 in Los Angeles.
        assert_eq!(
            next_la_midnight(utc(2024, 7, 1, 3, 0, 0)),
            "2024-07-01T07:00:00.000Z"
        );
    }

    #[test]
    fn just_before_midnight_resets_a_millisecond_later() {
        let midnight = utc(2024, 1, 15, 8, 0, 0);
        assert_eq!(next_midnight_los_angeles_ms(midnight - 1), midnight);
    }

    #[test]
    fn exactly_midnight_waits_for_the_next_one() {
        let midnight = utc(2024, 1, 15, 8, 0, 0);
        assert_eq!(
            next_midnight_los_angeles_ms(midnight),
            midnight + 86_400_000
        );
        assert_eq!(
            next_midnight_los_angeles_ms(midnight + 1),
            midnight + 86_400_000
        );
    }

    #[test]
    fn day_before_spring_forward_resets_at_standard_midnight() {
        // Saturday 2024-03-09 12:00 PST; the next midnight is still PST.
        assert_eq!(
            next_la_midnight(utc(2024, 3, 9, 20, 0, 0)),
            "2024-03-10T08:00:00.000Z"
        );
    }

    #[test]
    fn spring_forward_day_resets_at_daylight_midnight() {
        // 01:59:59 PST, a second before clocks jump to 03:00 PDT.
        assert_eq!(
            next_la_midnight(utc(2024, 3, 10, 9, 59, 59)),
            "2024-03-11T07:00:00.000Z"
        );
        // 03:00 PDT, right after the jump.
        assert_eq!(
            next_la_midnight(utc(2024, 3, 10, 10, 0, 0)),
            "2024-03-11T07:00:00.000Z"
        );
        // The spring-forward day is 23 hours long.
        let start = next_midnight_los_angeles_ms(utc(2024, 3, 9, 20, 0, 0));
        let end = next_midnight_los_angeles_ms(start);
        assert_eq!(end - start, 23 * 3_600_000);
    }

    #[test]
    fn day_before_fall_back_resets_at_daylight_midnight() {
        assert_eq!(
            next_la_midnight(utc(2024, 11, 2, 19, 0, 0)),
            "2024-11-03T07:00:00.000Z"
        );
    }

    #[test]
    fn fall_back_day_resets_at_standard_midnight() {
        // 01:30 PDT, the first time round.
        assert_eq!(
            next_la_midnight(utc(2024, 11, 3, 8, 30, 0)),
            "2024-11-04T08:00:00.000Z"
        );
        // 01:30 PST, the second time round.
        assert_eq!(
            next_la_midnight(utc(2024, 11, 3, 9, 30, 0)),
            "2024-11-04T08:00:00.000Z"
        );
        // The fall-back day is 25 hours long.
        let start = next_midnight_los_angeles_ms(utc(2024, 11, 2, 19, 0, 0));
        let end = next_midnight_los_angeles_ms(start);
        assert_eq!(end - start, 25 * 3_600_000);
    }

    #[test]
    fn leap_day_is_a_day_of_its_own() {
        assert_eq!(
            next_la_midnight(utc(2024, 2, 28, 20, 0, 0)),
            "2024-02-29T08:00:00.000Z"
        );
        assert_eq!(
            next_la_midnight(utc(2024, 2, 29, 20, 0, 0)),
            "2024-03-01T08:00:00.000Z"
        );
        assert_eq!(
            next_la_midnight(utc(2023, 2, 28, 20, 0, 0)),
            "2023-03-01T08:00:00.000Z"
        );
        assert_eq!(
            next_la_midnight(utc(2100, 2, 28, 20, 0, 0)),
            "2100-03-01T08:00:00.000Z"
        );
    }

    #[test]
    fn new_year_rolls_the_year() {
        assert_eq!(
            next_la_midnight(utc(2024, 12, 31, 20, 0, 0)),
            "2025-01-01T08:00:00.000Z"
        );
        // 2025-01-01 05:00 UTC is still New Year's Eve in Los Angeles.
        assert_eq!(
            next_la_midnight(utc(2025, 1, 1, 5, 0, 0)),
            "2025-01-01T08:00:00.000Z"
        );
    }

    #[test]
    fn every_hour_for_years_resets_within_a_day_on_the_hour() {
        let start = utc(2023, 1, 1, 0, 0, 0);
        let end = utc(2027, 1, 1, 0, 0, 0);
        let mut now = start;
        while now < end {
            let next = next_midnight_los_angeles_ms(now);
            assert!(next > now);
            assert!(next - now <= 25 * 3_600_000);
            let hour_utc = next % 86_400_000 / 3_600_000;
            assert!(hour_utc == 7 || hour_utc == 8, "{}", format_rfc3339(next));
            now += 3_600_000;
        }
    }

    #[test]
    fn window_starts_truncate() {
        let t = utc(2024, 5, 6, 13, 45, 30) + 123;
        assert_eq!(
            format_rfc3339(utc_day_start_ms(t)),
            "2024-05-06T00:00:00.000Z"
        );
        assert_eq!(
            format_rfc3339(minute_start_ms(t)),
            "2024-05-06T13:45:00.000Z"
        );
        assert_eq!(minute_start_ms(0), 0);
        assert_eq!(utc_day_start_ms(86_399_999), 0);
    }

    #[test]
    fn fixed_offset_day_starts_at_local_midnight() {
        // 15:59 UTC is 23:59 in UTC+8; 16:00 UTC is the next local day.
        let (start, end) = fixed_offset_day_bounds_ms(utc(2024, 5, 6, 15, 59, 0), 480);
        assert_eq!(format_rfc3339(start), "2024-05-05T16:00:00.000Z");
        assert_eq!(format_rfc3339(end), "2024-05-06T16:00:00.000Z");
        let (start, _) = fixed_offset_day_bounds_ms(utc(2024, 5, 6, 16, 0, 0), 480);
        assert_eq!(format_rfc3339(start), "2024-05-06T16:00:00.000Z");
        // West of Greenwich, at a half hour: local midnight is 05:30 UTC.
        let (start, end) = fixed_offset_day_bounds_ms(utc(2024, 5, 6, 5, 29, 59), -330);
        assert_eq!(format_rfc3339(start), "2024-05-05T05:30:00.000Z");
        assert_eq!(end - start, 86_400_000);
        assert_eq!(
            fixed_offset_day_bounds_ms(utc(2024, 5, 6, 12, 0, 0), 0),
            (utc(2024, 5, 6, 0, 0, 0), utc(2024, 5, 7, 0, 0, 0))
        );
        // A local day that began before the epoch is clamped, not wrapped.
        assert_eq!(fixed_offset_day_bounds_ms(0, 480).0, 0);
    }

    #[test]
    fn los_angeles_day_bounds_follow_dst() {
        let (start, end) = los_angeles_day_bounds_ms(utc(2024, 1, 15, 20, 0, 0));
        assert_eq!(format_rfc3339(start), "2024-01-15T08:00:00.000Z");
        assert_eq!(format_rfc3339(end), "2024-01-16T08:00:00.000Z");
        // 03:00 UTC on July 1st is still June 30th in Los Angeles.
        let (start, end) = los_angeles_day_bounds_ms(utc(2024, 7, 1, 3, 0, 0));
        assert_eq!(format_rfc3339(start), "2024-06-30T07:00:00.000Z");
        assert_eq!(format_rfc3339(end), "2024-07-01T07:00:00.000Z");
        let (start, end) = los_angeles_day_bounds_ms(utc(2024, 3, 10, 12, 0, 0));
        assert_eq!(end - start, 23 * 3_600_000);
        let (start, end) = los_angeles_day_bounds_ms(utc(2024, 11, 3, 12, 0, 0));
        assert_eq!(end - start, 25 * 3_600_000);
        // Exactly at midnight the new day has begun.
        let midnight = utc(2024, 1, 15, 8, 0, 0);
        assert_eq!(los_angeles_day_bounds_ms(midnight).0, midnight);
        assert_eq!(los_angeles_day_bounds_ms(midnight - 1).1, midnight);
    }

    #[test]
    fn los_angeles_day_end_is_the_next_midnight_every_hour_for_years() {
        let mut now = utc(2023, 1, 1, 0, 0, 0);
        while now < utc(2027, 1, 1, 0, 0, 0) {
            let (start, end) = los_angeles_day_bounds_ms(now);
            assert!(start <= now && now < end);
            assert_eq!(end, next_midnight_los_angeles_ms(now));
            now += 3_600_000 + 7;
        }
    }

    #[test]
    fn rfc3339_formats_epoch_and_milliseconds() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_rfc3339(1_710_064_800_042),
            "2024-03-10T10:00:00.042Z"
        );
        assert_eq!(format_rfc3339(u64::MAX), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn absurd_future_times_do_not_overflow() {
        assert!(next_midnight_los_angeles_ms(u64::MAX) > 0);
    }
}
