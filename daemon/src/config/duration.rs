//! Durations as the config file writes them: a decimal number and a unit, `"200ms"`, `"1.5s"`, `"2m"`,
//! `"15h"`, `"7d"`.

use std::time::Duration;

/// Parses `"<number><unit>"` with unit `ms`, `s`, `m`, `h` or `d` and an optional decimal fraction.
///
/// Exact decimal arithmetic (no floats) so `"0.1s"` is exactly 100 ms. The error says what is wrong in words
/// fit to follow a key path (`profiles.acme.retry.deadline: ...`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    if number.is_empty() {
        return Err(format!("`{text}` is not a duration such as \"1.5s\""));
    }
    let unit_nanos: u128 = match unit {
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3_600 * 1_000_000_000,
        "d" => 86_400 * 1_000_000_000,
        "" => {
            return Err(format!(
                "`{text}` has no unit; write e.g. \"200ms\", \"2m\", \"15h\", \"7d\""
            ));
        }
        _ => {
            return Err(format!(
                "`{text}` has an unknown unit `{unit}`; use ms, s, m, h or d"
            ));
        }
    };
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    let well_formed = !whole.is_empty()
        && (number.len() == whole.len() || !fraction.is_empty())
        && !fraction.contains('.');
    if !well_formed {
        return Err(format!("`{text}` is not a duration such as \"1.5s\""));
    }
    if fraction.len() > 9 {
        return Err(format!("`{text}` has more than 9 decimal places"));
    }
    let too_long = || format!("`{text}` is too long");
    let whole: u128 = whole.parse().map_err(|_| too_long())?;
    let fraction_value: u128 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().map_err(|_| too_long())?
    };
    let scale = 10u128.pow(fraction.len() as u32);
    let nanos = whole
        .checked_mul(unit_nanos)
        .and_then(|n| n.checked_add(fraction_value * unit_nanos / scale))
        .ok_or_else(too_long)?;
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| too_long())?;
    // The remainder of a division by 1e9 always fits.
    let subsec = (nanos % 1_000_000_000) as u32;
    Ok(Duration::new(secs, subsec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_fractions() {
        assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0.1s"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("15h"), Ok(Duration::from_secs(15 * 3600)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("0.5ms"), Ok(Duration::from_micros(500)));
    }

    #[test]
    fn rejects_malformed_text() {
        for bad in [
            "",
            "10",
            "s",
            "-1s",
            "1.s",
            ".5s",
            "1..5s",
            "1.2.3s",
            "5 minutes",
            "1w",
            "1e3ms",
            "1,5s",
            "0.1234567891s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn rejects_overflow() {
        assert!(parse_duration("99999999999999999999999999999d").is_err());
        assert!(parse_duration("300000000000000d").is_err());
    }
}
