//! Per-endpoint state: ready queue, concurrency limit, throttle pause.
//!
//! Throttling answers (429, REQUEST_TRAFFIC_EXCEED_LIMIT) slow the whole endpoint, not just the
//! one message: the concurrency limit halves and the endpoint pauses for the throttle delay; each
//! run of successes as long as the limit raises it by one again (additive increase,
//! multiplicative decrease), so a recovered receiver gets its full rate back gradually.
//! Retry-later answers (U, timeouts, 5xx, connection failures) halve the limit too, without the
//! pause: a receiver in trouble is tried one notification at a time until it answers for good
//! again, so its retries cannot crowd out the endpoints that work.

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
}

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
        self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
    }

    /// An answer that asks for a retry (U, a timeout, a 5xx, a broken connection): halve the
    /// limit. A receiver in trouble then gets one attempt at a time instead of a burst of
    /// retries, and the CPU and connections it no longer takes go to the healthy endpoints.
    pub fn unhealthy(&mut self) {
        self.limit = (self.limit / 2).max(1);
        self.successes = 0;
    }

    /// A final answer (S or F): count towards raising the limit again.
    pub fn answered(&mut self) {
        if self.limit < self.max {
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
    fn retry_answers_halve_the_limit_without_pausing() {
        let now = Instant::now();
        let mut ep = Endpoint::new(64);
        ep.ready.push_back(NotificationId::from_u128(1));
        for _ in 0..10 {
            ep.unhealthy();
        }
        assert_eq!(ep.limit, 1, "a failing receiver gets one attempt at a time");
        assert!(ep.can_start(now), "but is still attempted");
        ep.in_flight = 1;
        assert!(!ep.can_start(now));
        ep.in_flight = 0;
        ep.answered();
        assert_eq!(ep.limit, 2, "final answers raise it again");
        assert!(!ep.is_idle() || ep.ready.is_empty());
    }
}
