//! Durations as the config file writes them: a decimal number and a unit, `"200ms"`, `"1.5s"`, `"2m"`,
//! `"15h"`, `"7d"`.

use std::time::Duration;

/// Parses a config duration with core's parser (the one the C library uses too), turning its
/// error into words fit to follow a key path (`profiles.acme.retry.deadline: ...`). Surrounding
/// whitespace is forgiven.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    notifyd_core::backoff::parse_duration(text).map_err(|e| format!("`{text}`: {e}"))
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
