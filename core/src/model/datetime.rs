//! `Datetime` (PROTOCOL.md §2.3): ISO 8601 / RFC 3339 with an explicit offset, at most 32 characters.

use crate::error::ValidationError;
use crate::time::{UnixMillis, days_from_civil, days_in_month};

/// The rule text for a malformed date-time.
pub(crate) const RULE: &str =
    "must be an ISO 8601 date-time with an explicit offset, like 2019-11-27T12:01:01+08:30";

/// Checks `YYYY-MM-DDThh:mm[:ss[.fraction]](Z|±hh:mm|±hhmm)` with real calendar dates, and at
/// most 32 characters. These are the ISO 8601 forms gateways' standard libraries write: Java's
/// `OffsetDateTime.toString()` drops `:00` seconds (`2019-11-27T12:01+08:00`), PHP's
/// `DATE_ISO8601` writes a basic offset (`+0800`). The value is forwarded as sent; only its
/// instant is read. Any offset is accepted (`+08:30` appears in the seeds and is valid); offsets
/// are not checked against a zone list.
pub fn validate(s: &str) -> Result<(), ValidationError> {
    if s.chars().count() > 32 {
        return Err(ValidationError::new("", "must be at most 32 characters"));
    }
    parse(s)
        .map(|_| ())
        .ok_or_else(|| ValidationError::new("", RULE))
}

/// Parses a valid date-time into the instant it names. `None` when it breaks [`validate`]'s rule
/// or lies before 1970.
pub fn to_unix_millis(s: &str) -> Option<UnixMillis> {
    let ms = parse(s)?;
    u64::try_from(ms).ok().map(UnixMillis)
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')))
}

fn parse(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    // The shortest accepted form, 2019-11-27T12:01Z.
    if b.len() < 17 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| digits(b.get(r)?);
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute) = (num(11..13)?, num(14..16)?);
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(i64::from(year), month) {
        return None;
    }
    let mut i = 16;
    let mut second = 0;
    let mut millis = 0i64;
    if b[i] == b':' {
        second = num(17..19)?;
        i = 19;
        if b.get(i) == Some(&b'.') {
            let start = i + 1;
            i = start;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let fraction = &b[start..i];
            if fraction.is_empty() || fraction.len() > 9 {
                return None;
            }
            millis = fraction
                .iter()
                .chain(std::iter::repeat(&b'0'))
                .take(3)
                .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'));
        }
    }
    // 60 admits a leap second, as RFC 3339 does.
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let offset_minutes = offset(b.get(i..)?)?;
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second)
        - offset_minutes * 60;
    Some(secs * 1000 + millis)
}

/// `Z`, `±hh:mm` (extended) or `±hhmm` (basic), in minutes east of UTC.
fn offset(b: &[u8]) -> Option<i64> {
    let (sign, h, m) = match b {
        [b'Z'] => return Some(0),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] | [sign @ (b'+' | b'-'), h1, h2, m1, m2] => {
            (*sign, digits(&[*h1, *h2])?, digits(&[*m1, *m2])?)
        }
        _ => return None,
    };
    if h > 23 || m > 59 {
        return None;
    }
    let minutes = i64::from(h * 60 + m);
    Some(if sign == b'-' { -minutes } else { minutes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_forms_seen_in_the_docs() {
        for ok in [
            "2019-11-27T12:01:01+08:30",
            "2021-06-08T12:12:12+08:00",
            "2019-04-04T12:08:56.253+05:30",
            "2025-02-20T08:51:49.09Z",
            "2020-02-29T23:59:60-00:00",
            "2019-11-27T12:01:01.123456+14:00",
            "2019-11-27T12:01:01+0800",
            "2019-11-27T12:01+08:00",
            "2019-11-27T12:01Z",
            "2019-11-27T12:01-0330",
        ] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_full_date_time_with_offset() {
        for bad in [
            "2019-11-27T12:01:01",        // no offset
            "2019-11-27 12:01:01+08:00",  // space
            "2019-11-27T12:01:01+08",     // hour-only offset
            "2019-11-27T12:01:01+08:0",   // short offset
            "2019-11-27T12:01.5+08:00",   // fraction without seconds
            "2019-11-27T12+08:00",        // no minutes
            "2019-11-27T12:01:+08:00",    // empty seconds
            "2019-02-29T12:01:01+08:00",  // not a leap year
            "2019-13-01T12:01:01+08:00",  // month
            "2019-11-27T24:00:00+08:00",  // hour
            "2019-11-27T12:01:01.+08:00", // empty fraction
            "2019-11-27T12:01:01+24:00",  // offset hour
            "1574827262123",              // epoch millis
            "2019-11-27",
            "",
        ] {
            assert!(validate(bad).is_err(), "{bad}");
        }
        let long = "2019-11-27T12:01:01.1234567890123Z"; // 34 characters
        assert_eq!(
            validate(long).unwrap_err().rule(),
            "must be at most 32 characters"
        );
    }

    #[test]
    fn converts_to_the_instant() {
        assert_eq!(
            to_unix_millis("2019-11-27T12:01:02.123+08:00"),
            Some(UnixMillis(1_574_827_262_123))
        );
        assert_eq!(
            to_unix_millis("2019-11-27T04:01:02.123Z"),
            Some(UnixMillis(1_574_827_262_123))
        );
        assert_eq!(
            to_unix_millis("2019-11-27T04:31:02.123+00:30"),
            Some(UnixMillis(1_574_827_262_123))
        );
        assert_eq!(
            to_unix_millis("2019-11-27T12:01:02.123+0800"),
            Some(UnixMillis(1_574_827_262_123))
        );
        assert_eq!(
            to_unix_millis("2019-11-27T12:01+08:00"),
            Some(UnixMillis(1_574_827_260_000))
        );
    }
}
