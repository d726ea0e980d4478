//! Duration strings of the config file (CONTRACT.md §1): `"200ms"`, `"2m"`, `"15h"`, `"1.5s"`,
//! `"2d"`, and sums of them such as `"1h30m"`.

use std::time::Duration;

/// Why a duration string was refused. The input is not echoed, since the caller knows the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidDuration {
    /// The string is empty.
    #[error("must not be empty")]
    Empty,
    /// A leading `-`: delays cannot go back in time.
    #[error("must not be negative")]
    Negative,
    /// A part does not start with a decimal number (`"ms"`, `".s"`, `"1e3s"`).
    #[error("expected a number such as 200ms, 1.5s, 2m, 15h or 2d")]
    Number,
    /// A number without a unit, or a unit other than ns, us, ms, s, m, h, d.
    #[error("unknown or missing unit; use ns, us, ms, s, m, h or d")]
    Unit,
    /// More than about 584 years.
    #[error("too large")]
    Overflow,
}

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Parses a config duration: one or more `<decimal number><unit>` parts, no spaces, with the
/// units `ns`, `us`, `ms`, `s`, `m`, `h` and `d` (24 h). Fractions are exact to the nanosecond
/// (digits beyond a nanosecond are dropped); nothing goes through floating point.
pub fn parse_duration(s: &str) -> Result<Duration, InvalidDuration> {
    if s.is_empty() {
        return Err(InvalidDuration::Empty);
    }
    if s.starts_with('-') {
        return Err(InvalidDuration::Negative);
    }
    let mut rest = s.as_bytes();
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let (int, after) = rest.split_at(int_len);
        let (frac, after) = match after.split_first() {
            Some((b'.', tail)) => {
                let n = tail.iter().take_while(|b| b.is_ascii_digit()).count();
                if n == 0 {
                    return Err(InvalidDuration::Number);
                }
                tail.split_at(n)
            }
            _ => (&[][..], after),
        };
        if int.is_empty() {
            return Err(InvalidDuration::Number);
        }
        let unit_len = after.iter().take_while(|b| b.is_ascii_alphabetic()).count();
        let (unit, after) = after.split_at(unit_len);
        let scale = unit_nanos(unit).ok_or(InvalidDuration::Unit)?;
        total = total
            .checked_add(part_nanos(int, frac, scale).ok_or(InvalidDuration::Overflow)?)
            .ok_or(InvalidDuration::Overflow)?;
        rest = after;
    }
    let secs = u64::try_from(total / NANOS_PER_SEC).map_err(|_| InvalidDuration::Overflow)?;
    // The remainder is below 10^9, so it fits.
    Ok(Duration::new(secs, (total % NANOS_PER_SEC) as u32))
}

fn unit_nanos(unit: &[u8]) -> Option<u128> {
    Some(match unit {
        b"ns" => 1,
        b"us" => 1_000,
        b"ms" => 1_000_000,
        b"s" => NANOS_PER_SEC,
        b"m" => 60 * NANOS_PER_SEC,
        b"h" => 3_600 * NANOS_PER_SEC,
        b"d" => 86_400 * NANOS_PER_SEC,
        _ => return None,
    })
}

/// `int.frac × scale` in nanoseconds, `None` on overflow.
fn part_nanos(int: &[u8], frac: &[u8], scale: u128) -> Option<u128> {
    let mut value = digits(int)?.checked_mul(scale)?;
    // Each fraction digit is worth scale / 10^i; stop once that falls below a nanosecond.
    let mut place = scale;
    for &d in frac {
        place /= 10;
        if place == 0 {
            break;
        }
        value = value.checked_add(u128::from(d - b'0') * place)?;
    }
    Some(value)
}

fn digits(ds: &[u8]) -> Option<u128> {
    ds.iter().try_fold(0u128, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u128::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_config_forms() {
        let ok = |s| parse_duration(s).unwrap();
        assert_eq!(ok("200ms"), Duration::from_millis(200));
        assert_eq!(ok("2m"), Duration::from_secs(120));
        assert_eq!(ok("15h"), Duration::from_secs(54_000));
        assert_eq!(ok("0s"), Duration::ZERO);
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("2d"), Duration::from_secs(172_800));
        assert_eq!(ok("1h30m"), Duration::from_secs(5400));
        assert_eq!(ok("0.1s"), Duration::from_millis(100));
        assert_eq!(ok("250us"), Duration::from_micros(250));
        assert_eq!(ok("7ns"), Duration::from_nanos(7));
        assert_eq!(ok("1.0000000019s"), Duration::new(1, 1)); // sub-nanosecond digits dropped
        assert_eq!(ok("007s"), Duration::from_secs(7));
    }

    #[test]
    fn rejects_bad_strings() {
        let err = |s| parse_duration(s).unwrap_err();
        assert_eq!(err(""), InvalidDuration::Empty);
        assert_eq!(err("-1s"), InvalidDuration::Negative);
        assert_eq!(err("5"), InvalidDuration::Unit);
        assert_eq!(err("5 s"), InvalidDuration::Unit);
        assert_eq!(err("5x"), InvalidDuration::Unit);
        assert_eq!(err("5S"), InvalidDuration::Unit);
        assert_eq!(err("5sec"), InvalidDuration::Unit);
        assert_eq!(err("s"), InvalidDuration::Number);
        assert_eq!(err(".5s"), InvalidDuration::Number);
        assert_eq!(err("5.s"), InvalidDuration::Number);
        assert_eq!(err(" 5s"), InvalidDuration::Number);
        assert_eq!(err("+5s"), InvalidDuration::Number);
        assert_eq!(err("1e3s"), InvalidDuration::Unit);
        assert_eq!(err("18446744073709551616s"), InvalidDuration::Overflow);
        assert_eq!(err("213503982334602d"), InvalidDuration::Overflow);
        assert_eq!(
            err("99999999999999999999999999999999999999999999d"),
            InvalidDuration::Overflow
        );
    }

    #[test]
    fn largest_duration_fits() {
        assert_eq!(
            parse_duration("18446744073709551615s").unwrap(),
            Duration::from_secs(u64::MAX)
        );
    }
}
