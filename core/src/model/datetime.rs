//! `Datetime` (PROTOCOL.md §2.3): ISO 8601 / RFC 3339 with an explicit offset, at most 32 characters.

use crate::error::ValidationError;
use crate::time::{UnixMillis, days_from_civil, days_in_month};

/// The rule text for a malformed date-time.
pub(crate) const RULE: &str =
    "must be an ISO 8601 date-time with an explicit offset, like 2019-11-27T12:01:01+08:30";

/// Checks `YYYY-MM-DDThh:mm:ss[.fraction](Z|±hh:mm)` with real calendar dates, and at most
/// 32 characters. Any offset is accepted (`+08:30` appears in the seeds and is valid); offsets are
/// not checked against a zone list.
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

fn parse(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(r)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(
            part.iter()
                .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')),
        )
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(i64::from(year), month) {
        return None;
    }
    // 60 admits a leap second, as RFC 3339 does.
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &b[start..i];
        if digits.is_empty() || digits.len() > 9 {
            return None;
        }
        millis = digits
            .iter()
            .chain(std::iter::repeat(&b'0'))
            .take(3)
            .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'));
    }
    let offset_minutes = match &b[i..] {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let oh = i64::from((h1 - b'0') * 10 + (h2 - b'0'));
            let om = i64::from((m1 - b'0') * 10 + (m2 - b'0'));
            if oh > 23 || om > 59 {
                return None;
            }
            if *sign == b'-' {
                -(oh * 60 + om)
            } else {
                oh * 60 + om
            }
        }
        _ => return None,
    };
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second)
        - offset_minutes * 60;
    Some(secs * 1000 + millis)
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
        ] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_full_date_time_with_offset() {
        for bad in [
            "2019-11-27T12:01:01",        // no offset
            "2019-11-27 12:01:01+08:00",  // space
            "2019-11-27T12:01:01+0800",   // basic offset
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
    }
}
