//! A fixed list of delays, one per attempt: Alipay's house schedule and its config form.

use std::time::Duration;

use super::{InvalidPolicy, MAX_SCHEDULE_ENTRIES, valid_jitter};

/// Delays before each attempt: `delays[0]` before the first, `delays[k]` between attempt `k` and
/// attempt `k + 1`. Built through [`super::RetryPolicy::schedule`].
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    delays: Vec<Duration>,
    jitter: f64,
}

impl Schedule {
    /// Fails with every rule broken, in a fixed order (never an empty list).
    pub(super) fn new(delays: Vec<Duration>, jitter: f64) -> Result<Self, Vec<InvalidPolicy>> {
        let broken: Vec<InvalidPolicy> = [
            (delays.is_empty(), InvalidPolicy::EmptySchedule),
            (
                delays.len() > MAX_SCHEDULE_ENTRIES,
                InvalidPolicy::ScheduleTooLong,
            ),
            (!valid_jitter(jitter), InvalidPolicy::Jitter),
        ]
        .into_iter()
        .filter_map(|(bad, e)| bad.then_some(e))
        .collect();
        if broken.is_empty() {
            Ok(Schedule { delays, jitter })
        } else {
            Err(broken)
        }
    }

    /// The nominal (un-jittered) delays, one per attempt.
    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }

    /// The jitter fraction.
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// One attempt per entry; the length is bounded by [`MAX_SCHEDULE_ENTRIES`].
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.delays.len()).unwrap_or(u32::MAX)
    }

    pub(super) fn base_delay(&self, attempts_made: u32) -> Duration {
        usize::try_from(attempts_made)
            .ok()
            .and_then(|k| self.delays.get(k))
            .copied()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates() {
        assert_eq!(
            Schedule::new(vec![], 0.1),
            Err(vec![InvalidPolicy::EmptySchedule])
        );
        assert_eq!(
            Schedule::new(vec![Duration::ZERO; 101], 0.1),
            Err(vec![InvalidPolicy::ScheduleTooLong])
        );
        assert!(Schedule::new(vec![Duration::ZERO; 100], 0.1).is_ok());
        for bad in [1.0, -0.01, f64::NAN, f64::INFINITY] {
            assert_eq!(
                Schedule::new(vec![Duration::ZERO], bad),
                Err(vec![InvalidPolicy::Jitter]),
                "{bad}"
            );
        }
        assert!(Schedule::new(vec![Duration::ZERO], 0.0).is_ok());
        assert!(Schedule::new(vec![Duration::ZERO], 0.999).is_ok());
        // Every rule broken is named, so a config check can list them all at once.
        assert_eq!(
            Schedule::new(vec![], 1.5),
            Err(vec![InvalidPolicy::EmptySchedule, InvalidPolicy::Jitter])
        );
    }

    #[test]
    fn one_attempt_per_entry() {
        let s = Schedule::new(vec![Duration::from_secs(1), Duration::from_secs(5)], 0.0).unwrap();
        assert_eq!(s.max_attempts(), 2);
        assert_eq!(s.base_delay(0), Duration::from_secs(1));
        assert_eq!(s.base_delay(1), Duration::from_secs(5));
    }
}
