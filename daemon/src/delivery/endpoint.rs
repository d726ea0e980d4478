//! Per-endpoint state: ready queue, concurrency limit, throttle pause.
//!
//! Throttling answers (429, REQUEST_TRAFFIC_EXCEED_LIMIT) slow the whole endpoint, not just the
//! one message: the concurrency limit halves and the endpoint pauses for the throttle delay; each
//! run of successes as long as the limit raises it by one again (additive increase,
//! multiplicative decrease), so a recovered receiver gets its full rate back gradually.
//! Retry-later answers (U, timeouts, 5xx, connection failures) halve the limit too, without the
//! pause, once they are the majority of the endpoint's recent answers (a share weighted towards
//! the last 16 or so), and each final answer after that raises it by one: a receiver that answers
//! nothing but retries is tried one notification at a time, so its retries cannot crowd out the
//! endpoints that work. A receiver with a steady minority of U answers (a flaky merchant at 20 %,
//! say) keeps its full concurrency, so its throughput does not collapse with its round-trip time.

use std::collections::VecDeque;

use notifyd_core::NotificationId;
use tokio::time::Instant;

/// What an attempt's answer says about its endpoint's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Signal {
    /// A final answer, S or F: the receiver is working.
    Healthy,
    /// A retry-later outcome: the receiver is struggling or unreachable.
    Unhealthy,
    /// The receiver asked to slow down for this long.
    Throttle(std::time::Duration),
}

#[derive(Debug)]
pub(super) struct Endpoint {
    /// Due notifications waiting for a free slot, oldest first.
    pub ready: VecDeque<NotificationId>,
    /// Attempts running now.
    pub in_flight: usize,
    /// Current concurrency limit (1..=max).
    pub limit: usize,
    max: usize,
    /// No new attempts before this instant.
    pub paused_until: Option<Instant>,
    successes: usize,
    /// The last decrease came from retry answers, not from a throttle: recover by one per final
    /// answer instead of one per run of them.
    fast_recovery: bool,
    /// Weighted share of retry-later answers among the recent ones, 0 to 1.
    retry_share: f64,
}

/// Weight of the latest answer in `retry_share`: about the last 16 answers count.
const SHARE_WEIGHT: f64 = 1.0 / 16.0;
/// Retry-later answers squeeze the limit only above this share.
const SQUEEZE_ABOVE: f64 = 0.5;

impl Endpoint {
    pub fn new(max: usize) -> Endpoint {
        let max = max.max(1);
        Endpoint {
            ready: VecDeque::new(),
            in_flight: 0,
            limit: max,
            max,
            paused_until: None,
            successes: 0,
            fast_recovery: false,
            retry_share: 0.0,
        }
    }

    /// Whether another attempt may start now.
    pub fn can_start(&mut self, now: Instant) -> bool {
        if let Some(until) = self.paused_until {
            if now < until {
                return false;
            }
            self.paused_until = None;
        }
        self.in_flight < self.limit && !self.ready.is_empty()
    }

    /// The receiver is throttling: halve the limit and pause until `until`.
    pub fn throttle(&mut self, until: Instant) {
        self.limit = (self.limit / 2).max(1);
        self.successes = 0;
        self.fast_recovery = false;
        self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
    }

    /// An answer that asks for a retry (U, a timeout, a 5xx, a broken connection): once such
    /// answers are most of the recent ones, halve the limit. A receiver in trouble then gets one
    /// attempt at a time instead of a burst of retries, and the CPU and connections it no longer
    /// takes go to the healthy endpoints.
    pub fn unhealthy(&mut self) {
        self.retry_share += (1.0 - self.retry_share) * SHARE_WEIGHT;
        if self.retry_share > SQUEEZE_ABOVE {
            self.limit = (self.limit / 2).max(1);
            self.successes = 0;
            self.fast_recovery = true;
        }
    }

    /// A final answer (S or F): count towards raising the limit again.
    pub fn answered(&mut self) {
        self.retry_share -= self.retry_share * SHARE_WEIGHT;
        if self.limit < self.max && self.fast_recovery {
            self.limit += 1;
        } else if self.limit < self.max {
            self.successes += 1;
            if self.successes >= self.limit {
                self.limit += 1;
                self.successes = 0;
            }
        }
    }

    /// Nothing queued, nothing running, not paused: the shard may forget this endpoint.
    pub fn is_idle(&self) -> bool {
        self.ready.is_empty()
            && self.in_flight == 0
            && self.paused_until.is_none()
            && self.limit == self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn throttling_halves_and_successes_restore() {
        let now = Instant::now();
        let mut ep = Endpoint::new(8);
        ep.ready.push_back(NotificationId::from_u128(1));
        assert!(ep.can_start(now));
        ep.throttle(now + Duration::from_secs(60));
        assert_eq!(ep.limit, 4);
        assert!(!ep.can_start(now), "paused");
        assert!(ep.can_start(now + Duration::from_secs(61)), "pause over");
        ep.throttle(now);
        ep.throttle(now);
        ep.throttle(now);
        assert_eq!(ep.limit, 1, "never below one");
        for _ in 0..1 {
            ep.answered();
        }
        assert_eq!(ep.limit, 2);
        for _ in 0..2 {
            ep.answered();
        }
        assert_eq!(ep.limit, 3);
        for _ in 0..100 {
            ep.answered();
        }
        assert_eq!(ep.limit, 8, "capped at the configured maximum");
    }

    #[test]
    fn a_receiver_answering_only_retries_is_squeezed_to_one_attempt_at_a_time() {
        let now = Instant::now();
        let mut ep = Endpoint::new(64);
        ep.ready.push_back(NotificationId::from_u128(1));
        for _ in 0..10 {
            ep.unhealthy();
        }
        assert_eq!(ep.limit, 64, "a few retry answers are not yet a majority");
        for _ in 0..10 {
            ep.unhealthy();
        }
        assert_eq!(ep.limit, 1, "a failing receiver gets one attempt at a time");
        assert!(ep.can_start(now), "but is still attempted");
        ep.in_flight = 1;
        assert!(!ep.can_start(now));
        ep.in_flight = 0;
        ep.answered();
        assert_eq!(ep.limit, 2, "final answers raise it again, no pause");
        for _ in 0..62 {
            ep.answered();
        }
        assert_eq!(ep.limit, 64, "by one per answer, up to the maximum");
    }

    #[test]
    fn a_steady_minority_of_retry_answers_keeps_full_concurrency() {
        for every in [3, 5, 10] {
            // One retry answer in `every`: 33 %, 20 %, 10 %.
            let mut ep = Endpoint::new(64);
            for n in 0..1000 {
                if n % every == 0 {
                    ep.unhealthy();
                } else {
                    ep.answered();
                }
            }
            assert!(ep.limit >= 32, "one in {every}: limit {}", ep.limit);
        }
    }

    #[test]
    fn a_majority_of_retry_answers_keeps_the_limit_low() {
        let mut ep = Endpoint::new(64);
        for n in 0..1000 {
            // Two retry answers in three.
            if n % 3 == 2 {
                ep.answered();
            } else {
                ep.unhealthy();
            }
        }
        assert!(ep.limit <= 4, "limit {}", ep.limit);
    }
}
