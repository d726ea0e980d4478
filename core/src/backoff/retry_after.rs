//! The `Retry-After` response header (RFC 9110 §10.2.3): delta-seconds or an HTTP-date.

use std::time::Duration;

use crate::UnixMillis;
use crate::time::{civil_from_days, days_from_civil, days_in_month};

/// Parses a `Retry-After` value received at `now`. Returns the wait it asks for: delta-seconds
/// as given (huge values saturate; [`super::RetryPolicy::throttled_delay`] clamps them), an
/// HTTP-date as the time left until then, and `Some(ZERO)` for a date in the past. Anything
/// unparseable is `None`, as if the header were absent: a receiver's garbage must not stall us.
///
/// All three HTTP-date forms are accepted, as RFC 9110 §5.6.7 requires of recipients:
/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`)
/// and asctime (`Sun Nov  6 08:49:37 1994`).
pub fn parse_retry_after(value: &str, now: UnixMillis) -> Option<Duration> {
    let value = value.trim_matches([' ', '\t']);
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Only digits, so the sole failure left is overflow.
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs));
    }
    let at = http_date(value, now)?;
    Some(Duration::from_millis(at.saturating_sub(now.0)))
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// An HTTP-date in Unix milliseconds, `None` if it is not one.
fn http_date(s: &str, now: UnixMillis) -> Option<u64> {
    if let Some((day, rest)) = s.split_once(", ") {
        if DAYS.contains(&day) {
            return imf_fixdate(rest);
        }
        if LONG_DAYS.contains(&day) {
            return rfc850(rest, now);
        }
        return None;
    }
    asctime(s)
}

/// `06 Nov 1994 08:49:37 GMT`
fn imf_fixdate(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 24 || b[2] != b' ' || b[6] != b' ' || b[11] != b' ' || &b[20..] != b" GMT" {
        return None;
    }
    let day = number(&b[0..2])?;
    let month = month(s.get(3..6)?)?;
    let year = number(&b[7..11])?;
    to_millis(i64::from(year), month, day, &b[12..20])
}

/// `06-Nov-94 08:49:37 GMT`
fn rfc850(s: &str, now: UnixMillis) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 22 || b[2] != b'-' || b[6] != b'-' || b[9] != b' ' || &b[18..] != b" GMT" {
        return None;
    }
    let day = number(&b[0..2])?;
    let month = month(s.get(3..6)?)?;
    let yy = i64::from(number(&b[7..9])?);
    // RFC 9110: a two-digit year more than 50 years ahead means the century before.
    let (this_year, _, _) = civil_from_days((now.0 / 86_400_000) as i64);
    let mut year = this_year - this_year.rem_euclid(100) + yy;
    if year > this_year + 50 {
        year -= 100;
    }
    to_millis(year, month, day, &b[10..18])
}

/// `Sun Nov  6 08:49:37 1994`
fn asctime(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 24 || b[3] != b' ' || b[7] != b' ' || b[10] != b' ' || b[19] != b' ' {
        return None;
    }
    if !DAYS.contains(&s.get(0..3)?) {
        return None;
    }
    let month = month(s.get(4..7)?)?;
    let day = match b[8] {
        b' ' => number(&b[9..10])?,
        _ => number(&b[8..10])?,
    };
    let year = number(&b[20..24])?;
    to_millis(i64::from(year), month, day, &b[11..19])
}

fn month(name: &str) -> Option<u32> {
    MONTHS.iter().position(|m| *m == name).map(|i| i as u32 + 1)
}

/// Fixed-width decimal digits.
fn number(ds: &[u8]) -> Option<u32> {
    ds.iter().try_fold(0u32, |acc, &d| {
        d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
    })
}

/// Date plus `HH:MM:SS` in Unix milliseconds; dates before 1970 are `None`.
fn to_millis(year: i64, month: u32, day: u32, hms: &[u8]) -> Option<u64> {
    if hms.len() != 8 || hms[2] != b':' || hms[5] != b':' {
        return None;
    }
    let (h, m, s) = (
        number(&hms[0..2])?,
        number(&hms[3..5])?,
        number(&hms[6..8])?,
    );
    // 60 allows a leap second.
    if day == 0 || day > days_in_month(year, month) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = u64::try_from(days_from_civil(year, month, day)).ok()?;
    let secs = days * 86_400 + u64::from(h * 3600 + m * 60 + s);
    secs.checked_mul(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    // 1994-11-06T08:49:37Z
    const NOV_6_1994: u64 = 784_111_777_000;

    #[test]
    fn delta_seconds() {
        let now = UnixMillis(NOV_6_1994);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0\t", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        for bad in ["", " ", "-5", "1.5", "+5", "5s", "0x10", "１２"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn http_dates_in_all_three_forms() {
        let now = UnixMillis(NOV_6_1994 - 90_000);
        let want = Some(Duration::from_secs(90));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            want
        );
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now),
            want
        );
        assert_eq!(parse_retry_after("Sun Nov  6 08:49:37 1994", now), want);
    }

    #[test]
    fn past_dates_mean_now() {
        let now = UnixMillis(NOV_6_1994 + 1);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", now),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn rfc850_years_pick_the_right_century() {
        // Seen in 2030, "79" is 2079 (49 years ahead) while "81" is 1981 (51 would be too far).
        let now = UnixMillis(1_893_456_000_000); // 2030-01-01
        let d = parse_retry_after("Monday, 01-Jan-79 00:00:00 GMT", now).unwrap();
        assert_eq!(d.as_secs() / 86_400 / 365, 49);
        assert_eq!(
            parse_retry_after("Thursday, 01-Jan-81 00:00:00 GMT", now),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn rejects_malformed_dates() {
        let now = UnixMillis(0);
        for bad in [
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 31 Nov 1994 08:49:37 GMT",
            "Sun, 29 Feb 1995 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:60:00 GMT",
            "Xyz, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1969 08:49:37 GMT",
            "Sun, 0a Nov 1994 08:49:37 GMT",
            "Sun Nov 06 08:49:37 94",
            "tomorrow",
            "Sun, 06 Nov 1994 08:49:37 GMT trailing",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
        // A leap second is a real instant.
        assert!(parse_retry_after("Sat, 31 Dec 2016 23:59:60 GMT", now).is_some());
    }
}
