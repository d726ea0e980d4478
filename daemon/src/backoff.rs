//! Waits between tries of a local operation that must not give up: accepting connections (out
//! of descriptors) and writing an attempt's outcome (a full disk). The delays come from core's
//! validated exponential policy; unlike a delivery these never run out of attempts, so past the
//! policy's last attempt the delay stays at its cap.

use std::time::Duration;

use notifyd_core::backoff::{InvalidPolicy, MAX_EXPONENTIAL_ATTEMPTS, RetryPolicy};

/// Doubling delays from `initial` up to `max`, then `max` for as long as the failures last.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: RetryPolicy,
    max: Duration,
    failures: u32,
}

impl Backoff {
    /// Delays from `initial`, doubling, at most `max`; no jitter (one waiter per loop).
    pub fn new(initial: Duration, max: Duration) -> Result<Backoff, InvalidPolicy> {
        Ok(Backoff {
            policy: RetryPolicy::exponential(
                initial,
                2.0,
                max,
                MAX_EXPONENTIAL_ATTEMPTS,
                None,
                0.0,
            )?,
            max,
            failures: 0,
        })
    }

    /// An accept loop's: 50 ms, doubling to 1 s, so a listener out of descriptors neither spins
    /// nor stays deaf for long once they are back.
    pub fn accept() -> Backoff {
        Backoff::new(Duration::from_millis(50), Duration::from_secs(1))
            .expect("constant accept backoff is valid")
    }

    /// The outcome writer's: 50 ms, doubling to 5 s.
    pub fn store_write() -> Backoff {
        Backoff::new(Duration::from_millis(50), Duration::from_secs(5))
            .expect("constant store-write backoff is valid")
    }

    /// The wait after one more failure.
    pub fn next_delay(&mut self) -> Duration {
        // The policy's attempt limit would end it; saturating just below keeps the cap.
        self.failures = (self.failures + 1).min(MAX_EXPONENTIAL_ATTEMPTS - 1);
        self.policy
            .next_delay(self.failures, Duration::ZERO, 0.5)
            .unwrap_or(self.max)
    }

    /// A success: the next failure waits the shortest delay again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_stays_there_and_starts_over_after_a_success() {
        let mut b = Backoff::accept();
        let ms = |d: Duration| d.as_millis();
        let first: Vec<u128> = (0..7).map(|_| ms(b.next_delay())).collect();
        assert_eq!(first, [50, 100, 200, 400, 800, 1000, 1000]);
        for _ in 0..5_000 {
            assert_eq!(ms(b.next_delay()), 1000, "never runs out");
        }
        b.reset();
        assert_eq!(ms(b.next_delay()), 50);
    }

    #[test]
    fn an_invalid_range_is_refused() {
        assert!(Backoff::new(Duration::from_secs(2), Duration::from_secs(1)).is_err());
    }
}
