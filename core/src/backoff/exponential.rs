//! Exponential backoff with a cap, an attempt limit and an optional deadline (CONTRACT.md §1).

use std::time::Duration;

use super::{InvalidPolicy, MAX_EXPONENTIAL_ATTEMPTS, valid_jitter};

/// `initial × multiplier^(k-1)` after `k` failed attempts, capped at `max_delay`. Built through
/// [`super::RetryPolicy::exponential`].
#[derive(Debug, Clone, PartialEq)]
pub struct Exponential {
    initial: Duration,
    multiplier: f64,
    max_delay: Duration,
    max_attempts: u32,
    deadline: Option<Duration>,
    jitter: f64,
}

impl Exponential {
    /// Fails with every rule broken, in a fixed order (never an empty list).
    pub(super) fn new(
        initial: Duration,
        multiplier: f64,
        max_delay: Duration,
        max_attempts: u32,
        deadline: Option<Duration>,
        jitter: f64,
    ) -> Result<Self, Vec<InvalidPolicy>> {
        let broken: Vec<InvalidPolicy> = [
            (initial.is_zero(), InvalidPolicy::Initial),
            // `!(x >= 1.0)` also catches NaN.
            (
                !(multiplier.is_finite() && multiplier >= 1.0),
                InvalidPolicy::Multiplier,
            ),
            (max_delay < initial, InvalidPolicy::MaxDelay),
            (
                !(1..=MAX_EXPONENTIAL_ATTEMPTS).contains(&max_attempts),
                InvalidPolicy::MaxAttempts,
            ),
            (
                deadline.is_some_and(|d| d.is_zero()),
                InvalidPolicy::Deadline,
            ),
            (!valid_jitter(jitter), InvalidPolicy::Jitter),
        ]
        .into_iter()
        .filter_map(|(bad, e)| bad.then_some(e))
        .collect();
        if !broken.is_empty() {
            return Err(broken);
        }
        Ok(Exponential {
            initial,
            multiplier,
            max_delay,
            max_attempts,
            deadline,
            jitter,
        })
    }

    /// The delay after the first failed attempt.
    pub fn initial(&self) -> Duration {
        self.initial
    }

    /// The growth factor per attempt.
    pub fn multiplier(&self) -> f64 {
        self.multiplier
    }

    /// The cap on the un-jittered delay.
    pub fn max_delay(&self) -> Duration {
        self.max_delay
    }

    /// The most attempts, the first included.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// No attempt starts later than this after the first one.
    pub fn deadline(&self) -> Option<Duration> {
        self.deadline
    }

    /// The jitter fraction.
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    pub(super) fn base_delay(&self, attempts_made: u32) -> Duration {
        let Some(exponent) = attempts_made.checked_sub(1) else {
            return Duration::ZERO; // the first attempt goes out at once
        };
        // powi takes i32; past 2^31 doublings the cap has long been reached anyway.
        let exponent = i32::try_from(exponent).unwrap_or(i32::MAX);
        let secs = self.initial.as_secs_f64() * self.multiplier.powi(exponent);
        // Infinity and overflow both mean "beyond the cap".
        Duration::try_from_secs_f64(secs)
            .unwrap_or(Duration::MAX)
            .min(self.max_delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn validates() {
        let ok = |i, m, x, a, d, j| Exponential::new(i, m, x, a, d, j).map_err(|e| e[0]);
        assert!(ok(secs(2), 2.0, secs(54_000), 8, Some(secs(90_000)), 0.1).is_ok());
        assert_eq!(
            ok(Duration::ZERO, 2.0, secs(9), 8, None, 0.1),
            Err(InvalidPolicy::Initial)
        );
        for m in [0.5, 0.999, f64::NAN, f64::INFINITY, -2.0] {
            assert_eq!(
                ok(secs(1), m, secs(9), 8, None, 0.1),
                Err(InvalidPolicy::Multiplier),
                "{m}"
            );
        }
        assert!(ok(secs(1), 1.0, secs(1), 8, None, 0.1).is_ok());
        assert_eq!(
            ok(secs(2), 2.0, secs(1), 8, None, 0.1),
            Err(InvalidPolicy::MaxDelay)
        );
        assert_eq!(
            ok(secs(1), 2.0, secs(9), 0, None, 0.1),
            Err(InvalidPolicy::MaxAttempts)
        );
        assert_eq!(
            ok(secs(1), 2.0, secs(9), 1001, None, 0.1),
            Err(InvalidPolicy::MaxAttempts)
        );
        assert!(ok(secs(1), 2.0, secs(9), 1000, None, 0.1).is_ok());
        assert_eq!(
            ok(secs(1), 2.0, secs(9), 8, Some(Duration::ZERO), 0.1),
            Err(InvalidPolicy::Deadline)
        );
        assert_eq!(
            ok(secs(1), 2.0, secs(9), 8, None, 1.0),
            Err(InvalidPolicy::Jitter)
        );
        assert_eq!(
            Exponential::new(Duration::ZERO, 0.5, secs(9), 0, Some(Duration::ZERO), 1.0),
            Err(vec![
                InvalidPolicy::Initial,
                InvalidPolicy::Multiplier,
                InvalidPolicy::MaxAttempts,
                InvalidPolicy::Deadline,
                InvalidPolicy::Jitter,
            ])
        );
    }

    #[test]
    fn grows_then_caps() {
        let e = Exponential::new(secs(2), 2.0, secs(15), 1000, None, 0.0).unwrap();
        let got: Vec<_> = (0..6).map(|k| e.base_delay(k)).collect();
        assert_eq!(got, [0, 2, 4, 8, 15, 15].map(secs));
        // Huge exponents saturate at the cap instead of overflowing.
        assert_eq!(e.base_delay(999), secs(15));
        let big = Exponential::new(secs(1), 1e300, Duration::MAX, 1000, None, 0.0).unwrap();
        assert_eq!(big.base_delay(5), Duration::MAX);
    }
}
