//! One endpoint (`host:port`): its ready queue, concurrency limit, throttle pause and hold.
//!
//! Concurrency is additive-increase, multiplicative-decrease. Retry-later answers (U, timeouts,
//! 5xx, connection failures) halve the limit once they are the majority of the endpoint's recent
//! answers (a share weighted towards the last 16 or so), and each final answer after that raises
//! it by one: a receiver that answers nothing but retries is tried one notification at a time, so
//! its retries cannot crowd out the endpoints that work, while a receiver with a steady minority
//! of U answers (a flaky merchant at 20 %, say) keeps its full concurrency.
//!
//! A throttle (PROTOCOL.md §8) halves the limit at once and pauses the endpoint briefly: for the
//! receiver's `Retry-After` when it gave one (at most [`MAX_RETRY_AFTER_PAUSE`]), else for
//! [`FIRST_THROTTLE_PAUSE`] doubling with each consecutive throttle up to [`MAX_THROTTLE_PAUSE`];
//! the next final answer resets the escalation. After a throttle the limit recovers by one per run
//! of final answers as long as the limit, more slowly than after retry answers: the receiver
//! asked for less traffic. The throttled notification's own, much longer delay is its business
//! and never the endpoint's.
//!
//! A hold stops attempts without spending anyone's attempts or deadline. An operator's hold stays
//! until resumed. A hold caused by an answer about our side ([`crate::ack::Ack::OurSide`]) lets
//! one probe attempt through every [`FIRST_PROBE_INTERVAL`], doubling up to
//! [`MAX_PROBE_INTERVAL`], and ends on the first final answer about a payment (S, or an F that
//! is about the payment and so proves the receiver took our request as ours).

use std::collections::VecDeque;
use std::time::Duration;

use crate::ack::Ack;
use crate::{NotificationId, UnixMillis};

/// Weight of the latest answer in `retry_share`: about the last 16 answers count.
const SHARE_WEIGHT: f64 = 1.0 / 16.0;
/// Retry-later answers squeeze the limit only above this share.
const SQUEEZE_ABOVE: f64 = 0.5;
/// Pause after a first throttle without `Retry-After`.
pub const FIRST_THROTTLE_PAUSE: Duration = Duration::from_secs(1);
/// Longest pause consecutive throttles without `Retry-After` escalate to.
pub const MAX_THROTTLE_PAUSE: Duration = Duration::from_secs(60);
/// Longest `Retry-After` the endpoint pauses for; a longer one pauses this long.
pub const MAX_RETRY_AFTER_PAUSE: Duration = Duration::from_secs(5 * 60);
/// First wait before probing an endpoint held by an answer about our side.
pub const FIRST_PROBE_INTERVAL: Duration = Duration::from_secs(60);
/// Longest wait between probes of a held endpoint.
pub const MAX_PROBE_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// What an endpoint is doing, worst first (CONTRACT.md §2.1, §4 `notifyd_endpoints{state}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EndpointState {
    /// Held: no attempts but probes (an answer about our side) or none at all (an operator).
    Held,
    /// Paused by a throttle until `paused_until`.
    Paused,
    /// Running below its configured concurrency.
    Degraded,
    /// Running at its configured concurrency.
    Ok,
}

impl EndpointState {
    /// Every state, in the order of [`EndpointState::index`].
    pub const ALL: [EndpointState; 4] = [
        EndpointState::Ok,
        EndpointState::Degraded,
        EndpointState::Paused,
        EndpointState::Held,
    ];

    /// The contract's name (`ok`, `degraded`, `paused`, `held`).
    pub const fn as_str(self) -> &'static str {
        match self {
            EndpointState::Ok => "ok",
            EndpointState::Degraded => "degraded",
            EndpointState::Paused => "paused",
            EndpointState::Held => "held",
        }
    }

    /// Position in [`EndpointState::ALL`].
    pub const fn index(self) -> usize {
        match self {
            EndpointState::Ok => 0,
            EndpointState::Degraded => 1,
            EndpointState::Paused => 2,
            EndpointState::Held => 3,
        }
    }
}

/// Who holds an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldKind {
    /// `POST /v1/endpoints/{endpoint}/hold`: no attempts at all until resumed.
    Operator,
    /// An answer about our side: a probe now and then, released by a final answer, a resume or
    /// a configuration reload.
    OurSide,
}

#[derive(Debug, Clone, Copy)]
struct Hold {
    kind: HoldKind,
    since: UnixMillis,
    probe_at: UnixMillis,
    probe_every: Duration,
}

/// What an answer changed at its endpoint, for the caller's logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learned {
    /// Nothing worth a log line.
    Nothing,
    /// The endpoint is now held (the answer was about our side).
    Held,
    /// A hold caused by an answer about our side ended: the receiver answered about a payment.
    Released,
    /// The endpoint pauses this long (a throttle).
    Paused(Duration),
}

#[derive(Debug)]
pub(super) struct Endpoint {
    pub name: Box<str>,
    /// Due notifications waiting for a slot, oldest first.
    pub ready: VecDeque<NotificationId>,
    pub in_flight: usize,
    /// Notifications for this endpoint not yet final.
    pub pending: usize,
    /// In the scheduler's queue of endpoints that may start an attempt.
    pub listed: bool,
    /// The state last counted in the scheduler's per-state totals.
    pub counted: EndpointState,
    limit: usize,
    max: usize,
    successes: usize,
    /// The last decrease came from retry answers, not from a throttle: recover by one per final
    /// answer instead of one per run of them.
    fast_recovery: bool,
    /// Weighted share of retry-later answers among the recent ones, 0 to 1.
    retry_share: f64,
    paused_until: Option<UnixMillis>,
    /// Throttles since the last final answer.
    throttles: u32,
    hold: Option<Hold>,
    /// Time spent held in holds that have ended; a notification's deadline does not count it.
    held_before: Duration,
    pub last_success_at: Option<UnixMillis>,
    pub last_error: Option<(UnixMillis, Ack)>,
}

impl Endpoint {
    pub fn new(name: &str, max: usize) -> Endpoint {
        let max = max.max(1);
        Endpoint {
            name: name.into(),
            ready: VecDeque::new(),
            in_flight: 0,
            pending: 0,
            listed: false,
            counted: EndpointState::Ok,
            limit: max,
            max,
            successes: 0,
            fast_recovery: false,
            retry_share: 0.0,
            paused_until: None,
            throttles: 0,
            hold: None,
            held_before: Duration::ZERO,
            last_success_at: None,
            last_error: None,
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn paused_until(&self, now: UnixMillis) -> Option<UnixMillis> {
        self.paused_until.filter(|&t| t > now)
    }

    pub fn hold_kind(&self) -> Option<HoldKind> {
        self.hold.map(|h| h.kind)
    }

    pub fn state(&self, now: UnixMillis) -> EndpointState {
        if self.hold.is_some() {
            EndpointState::Held
        } else if self.paused_until(now).is_some() {
            EndpointState::Paused
        } else if self.limit < self.max {
            EndpointState::Degraded
        } else {
            EndpointState::Ok
        }
    }

    /// Whether a ready notification may start now, and if so whether it is a probe of a hold.
    pub fn admit(&mut self, now: UnixMillis) -> Option<Admit> {
        if self.ready.is_empty() {
            return None;
        }
        if let Some(until) = self.paused_until {
            if now < until {
                return None;
            }
            self.paused_until = None;
        }
        match self.hold {
            Some(Hold {
                kind: HoldKind::Operator,
                ..
            }) => None,
            Some(h) => (now >= h.probe_at && self.in_flight == 0).then_some(Admit::Probe),
            None => (self.in_flight < self.limit).then_some(Admit::Normal),
        }
    }

    /// A probe starts: the next one waits twice as long. Returns when it is due.
    pub fn probe_started(&mut self, now: UnixMillis) -> Option<UnixMillis> {
        let h = self.hold.as_mut()?;
        h.probe_every = (h.probe_every * 2).min(MAX_PROBE_INTERVAL);
        h.probe_at = now.plus(h.probe_every);
        Some(h.probe_at)
    }

    /// Total time this endpoint has been held, up to `now`.
    pub fn held_total(&self, now: UnixMillis) -> Duration {
        self.held_before + self.hold.map_or(Duration::ZERO, |h| now.since(h.since))
    }

    /// Holds the endpoint. An operator's hold replaces a hold caused by an answer (no probes
    /// then); an answer never weakens an operator's hold. Returns the first probe time, if any.
    pub fn hold(&mut self, kind: HoldKind, now: UnixMillis) -> Option<UnixMillis> {
        match (&mut self.hold, kind) {
            (Some(h), HoldKind::Operator) => {
                h.kind = HoldKind::Operator;
                None
            }
            (Some(_), HoldKind::OurSide) => None,
            (None, _) => {
                let probe_at = now.plus(FIRST_PROBE_INTERVAL);
                self.hold = Some(Hold {
                    kind,
                    since: now,
                    probe_at,
                    probe_every: FIRST_PROBE_INTERVAL,
                });
                (kind == HoldKind::OurSide).then_some(probe_at)
            }
        }
    }

    /// Ends the hold (of either kind). True when there was one.
    pub fn release(&mut self, now: UnixMillis) -> bool {
        match self.hold.take() {
            Some(h) => {
                self.held_before += now.since(h.since);
                true
            }
            None => false,
        }
    }

    /// Learns from an answer that just freed one of this endpoint's slots. Returns what changed
    /// and, for a pause, when it ends.
    pub fn learn(&mut self, ack: &Ack, now: UnixMillis) -> Learned {
        self.in_flight -= 1;
        match ack {
            Ack::Delivered { .. } | Ack::Failed { .. } => {
                self.healthy();
                self.throttles = 0;
                if matches!(ack, Ack::Delivered { .. }) {
                    self.last_success_at = Some(now);
                }
                if self.hold_kind() == Some(HoldKind::OurSide) && self.release(now) {
                    return Learned::Released;
                }
                Learned::Nothing
            }
            // A refusal about the payment that may still change: the receiver answered, which
            // is all the limit needs to know.
            Ack::Doubtful { .. } => {
                self.healthy();
                Learned::Nothing
            }
            Ack::OurSide { .. } => match self.hold(HoldKind::OurSide, now) {
                Some(_) => Learned::Held,
                None => Learned::Nothing,
            },
            Ack::Retry { .. } => {
                self.unhealthy();
                Learned::Nothing
            }
            Ack::Throttled { retry_after } => {
                let pause = self.throttle(*retry_after, now);
                Learned::Paused(pause)
            }
            // Nothing reached the receiver: nothing to learn about it.
            Ack::LocalFailure { .. } => Learned::Nothing,
        }
    }

    /// Halves the limit and pauses briefly (see the module docs). Returns the pause.
    fn throttle(&mut self, retry_after: Option<Duration>, now: UnixMillis) -> Duration {
        self.limit = (self.limit / 2).max(1);
        self.successes = 0;
        self.fast_recovery = false;
        self.throttles = self.throttles.saturating_add(1);
        let pause = match retry_after {
            Some(theirs) => theirs.min(MAX_RETRY_AFTER_PAUSE),
            None => {
                let doublings = (self.throttles - 1).min(16);
                (FIRST_THROTTLE_PAUSE * (1 << doublings)).min(MAX_THROTTLE_PAUSE)
            }
        };
        self.pause_until(now.plus(pause));
        pause
    }

    /// Pauses until `until` at least, leaving the limit as it is. True when that extended it.
    pub fn pause_until(&mut self, until: UnixMillis) -> bool {
        if self.paused_until.is_some_and(|p| p >= until) {
            return false;
        }
        self.paused_until = Some(until);
        true
    }

    /// A retry-later answer: once such answers are most of the recent ones, halve the limit. A
    /// receiver in trouble then gets one attempt at a time instead of a burst of retries.
    fn unhealthy(&mut self) {
        self.retry_share += (1.0 - self.retry_share) * SHARE_WEIGHT;
        if self.retry_share > SQUEEZE_ABOVE {
            self.limit = (self.limit / 2).max(1);
            self.successes = 0;
            self.fast_recovery = true;
        }
    }

    /// A final answer: count towards raising the limit again.
    fn healthy(&mut self) {
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
}

/// How an attempt may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admit {
    Normal,
    /// The one attempt a held endpoint lets through now and then.
    Probe,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ack::RetryReason;

    const T0: UnixMillis = UnixMillis(1_000_000);

    fn delivered() -> Ack {
        Ack::Delivered {
            code: "SUCCESS".into(),
            unexpected_code: false,
        }
    }

    fn retry() -> Ack {
        Ack::Retry {
            reason: RetryReason::Timeout,
        }
    }

    /// One answer, as if its attempt had been running.
    fn answer(ep: &mut Endpoint, ack: &Ack) -> Learned {
        ep.in_flight += 1;
        ep.learn(ack, T0)
    }

    #[test]
    fn a_receiver_answering_only_retries_is_squeezed_to_one_attempt_at_a_time() {
        let mut ep = Endpoint::new("h:443", 64);
        ep.ready.push_back(NotificationId::from_u128(1));
        for _ in 0..10 {
            answer(&mut ep, &retry());
        }
        assert_eq!(ep.limit, 64, "a few retry answers are not yet a majority");
        for _ in 0..10 {
            answer(&mut ep, &retry());
        }
        assert_eq!(ep.limit, 1, "a failing receiver gets one attempt at a time");
        assert_eq!(ep.admit(T0), Some(Admit::Normal), "but is still attempted");
        ep.in_flight = 1;
        assert_eq!(ep.admit(T0), None);
        ep.in_flight = 0;
        answer(&mut ep, &delivered());
        assert_eq!(ep.limit, 2, "final answers raise it again, no pause");
        for _ in 0..62 {
            answer(&mut ep, &delivered());
        }
        assert_eq!(ep.limit, 64, "by one per answer, up to the maximum");
    }

    #[test]
    fn a_steady_minority_of_retry_answers_keeps_full_concurrency() {
        for every in [3, 5, 10] {
            // One retry answer in `every`: 33 %, 20 %, 10 %.
            let mut ep = Endpoint::new("h:443", 64);
            for n in 0..1000 {
                let ack = if n % every == 0 { retry() } else { delivered() };
                answer(&mut ep, &ack);
            }
            assert!(ep.limit >= 32, "one in {every}: limit {}", ep.limit);
        }
    }

    #[test]
    fn a_majority_of_retry_answers_keeps_the_limit_low() {
        let mut ep = Endpoint::new("h:443", 64);
        for n in 0..1000 {
            // Two retry answers in three.
            let ack = if n % 3 == 2 { delivered() } else { retry() };
            answer(&mut ep, &ack);
        }
        assert!(ep.limit <= 4, "limit {}", ep.limit);
    }

    #[test]
    fn a_throttle_recovers_by_one_per_run_of_final_answers() {
        let mut ep = Endpoint::new("h:443", 8);
        let throttled = Ack::Throttled { retry_after: None };
        for _ in 0..4 {
            answer(&mut ep, &throttled);
        }
        assert_eq!(ep.limit, 1, "never below one");
        answer(&mut ep, &delivered());
        assert_eq!(ep.limit, 2);
        answer(&mut ep, &delivered());
        assert_eq!(ep.limit, 2, "a run as long as the limit");
        answer(&mut ep, &delivered());
        assert_eq!(ep.limit, 3);
        for _ in 0..100 {
            answer(&mut ep, &delivered());
        }
        assert_eq!(ep.limit, 8, "capped at the configured maximum");
    }
}
