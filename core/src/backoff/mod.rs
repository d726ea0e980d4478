//! How long to wait before the next delivery attempt (PROTOCOL.md §8, CONTRACT.md §1 and §3).
//!
//! A [`RetryPolicy`] is a validated value: once built it cannot describe an endless or negative
//! schedule, so the daemon never re-checks it. It is a pure function of the attempt count, the time
//! spent so far and a random number the caller draws, which keeps every decision reproducible.
//!
//! # Throttled answers
//!
//! PROTOCOL.md §8 says a throttled answer (`REQUEST_TRAFFIC_EXCEED_LIMIT` or HTTP 429) waits
//! `max(4 × scheduled, 60 s)`, "consumes an attempt but extends the 24 h window at most once".
//! [`RetryPolicy::throttled_next`] does all of that; the caller only persists the
//! [`Throttle::extension`] it returns and, from then on, passes `elapsed − extension` as `elapsed`
//! to [`RetryPolicy::next_delay`] and the extension back to later `throttled_next` calls:
//!
//! ```
//! # use std::time::Duration;
//! # use notifyd_core::backoff::RetryPolicy;
//! let policy = RetryPolicy::alipay_default();
//! let mut extension = None; // persisted with the notification
//! // Attempt 2 (2 min after the first) was throttled without a Retry-After.
//! let t = policy
//!     .throttled_next(2, Duration::from_secs(120), 0.5, None, extension)
//!     .expect("attempts left");
//! assert_eq!(t.delay, Duration::from_secs(40 * 60)); // 4 × the scheduled 10 min
//! extension = Some(t.extension);
//! // Later ordinary retries count time against the extended window.
//! let elapsed = Duration::from_secs(3 * 3600);
//! let counted = elapsed.saturating_sub(extension.unwrap_or_default());
//! let next = policy.next_delay(3, counted, 0.5);
//! assert_eq!(next, Some(Duration::from_secs(10 * 60)));
//! ```
//!
//! A schedule policy has no deadline: its window is its attempt count, and a throttled attempt
//! uses one of those attempts, so the extension only matters for exponential policies with a
//! deadline. It is still returned so the caller's bookkeeping is the same for both kinds.

mod duration;
mod exponential;
mod retry_after;
mod schedule;

use std::time::Duration;

pub use duration::{InvalidDuration, parse_duration};
pub use exponential::Exponential;
pub use retry_after::parse_retry_after;
pub use schedule::Schedule;

/// Shortest delay after a throttled answer (PROTOCOL.md §8).
pub const THROTTLE_MIN_DELAY: Duration = Duration::from_secs(60);
/// Longest delay after a throttled answer, and the longest `Retry-After` honoured (PROTOCOL.md §8).
pub const THROTTLE_MAX_DELAY: Duration = Duration::from_secs(15 * 3600);
/// Shortest `Retry-After` honoured; shorter values are raised to it.
pub const RETRY_AFTER_MIN: Duration = Duration::from_secs(1);
/// Most entries a schedule may have; keeps a typo from becoming a retry storm.
pub const MAX_SCHEDULE_ENTRIES: usize = 100;
/// Most attempts an exponential policy may make.
pub const MAX_EXPONENTIAL_ATTEMPTS: u32 = 1000;
/// Alipay's house schedule (PROTOCOL.md §8, CONTRACT.md §3): the delay before each attempt,
/// counted from the previous one.
pub const ALIPAY_SCHEDULE: [Duration; 8] = [
    Duration::from_secs(0),
    Duration::from_secs(2 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(3600),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(6 * 3600),
    Duration::from_secs(15 * 3600),
];
/// The jitter of Alipay's house schedule: ±10 %.
pub const ALIPAY_JITTER: f64 = 0.1;

/// When to retry a failed delivery. Build it with [`RetryPolicy::alipay_default`],
/// [`RetryPolicy::schedule`] or [`RetryPolicy::exponential`]; the inner types have private fields,
/// so every policy in circulation has passed validation.
#[derive(Debug, Clone, PartialEq)]
pub enum RetryPolicy {
    /// A fixed list of delays, one per attempt (the default).
    Schedule(Schedule),
    /// Exponentially growing delays with a cap, an attempt limit and an optional deadline.
    Exponential(Exponential),
}

/// Why a retry policy was refused. [`InvalidPolicy::key`] names the config key at fault, so
/// `check-config` can print `retry.<key>: <rule>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}", self.key(), self.rule())]
pub enum InvalidPolicy {
    /// The schedule has no entries.
    EmptySchedule,
    /// The schedule has more than [`MAX_SCHEDULE_ENTRIES`] entries.
    ScheduleTooLong,
    /// Jitter is NaN, negative, or 1 or more.
    Jitter,
    /// The initial delay is zero.
    Initial,
    /// The multiplier is NaN, infinite or below 1.
    Multiplier,
    /// The cap is below the initial delay.
    MaxDelay,
    /// The attempt limit is 0 or above [`MAX_EXPONENTIAL_ATTEMPTS`].
    MaxAttempts,
    /// The deadline is zero.
    Deadline,
}

impl InvalidPolicy {
    /// The `[profiles.*.retry]` key this error is about.
    pub const fn key(self) -> &'static str {
        match self {
            InvalidPolicy::EmptySchedule | InvalidPolicy::ScheduleTooLong => "schedule",
            InvalidPolicy::Jitter => "jitter",
            InvalidPolicy::Initial => "initial",
            InvalidPolicy::Multiplier => "multiplier",
            InvalidPolicy::MaxDelay => "max_delay",
            InvalidPolicy::MaxAttempts => "max_attempts",
            InvalidPolicy::Deadline => "deadline",
        }
    }

    /// The rule broken, in words fit to follow the key (`jitter: <rule>`).
    pub const fn rule(self) -> &'static str {
        match self {
            InvalidPolicy::EmptySchedule => "must have at least one entry",
            InvalidPolicy::ScheduleTooLong => "must have at most 100 entries",
            InvalidPolicy::Jitter => "must be at least 0 and less than 1",
            InvalidPolicy::Initial | InvalidPolicy::Deadline => "must be greater than 0",
            InvalidPolicy::Multiplier => "must be a finite number of at least 1",
            InvalidPolicy::MaxDelay => "must be at least the initial delay",
            InvalidPolicy::MaxAttempts => "must be 1 to 1000",
        }
    }
}

/// The wait after a throttled answer and the deadline extension now in force
/// (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    /// How long to wait before the next attempt; also how long to pause the endpoint.
    pub delay: Duration,
    /// How much later than the policy's deadline the window now closes. Persist it and pass it
    /// back; it is granted on the first throttled answer only.
    pub extension: Duration,
}

impl RetryPolicy {
    /// Alipay's house schedule (PROTOCOL.md §8, CONTRACT.md §3): attempts at +0, +2 min, +10 min,
    /// +10 min, +1 h, +2 h, +6 h and +15 h after the previous one, ±10 % jitter.
    pub fn alipay_default() -> Self {
        RetryPolicy::Schedule(
            Schedule::new(ALIPAY_SCHEDULE.to_vec(), ALIPAY_JITTER)
                .expect("the built-in schedule is valid"),
        )
    }

    /// A fixed schedule: `delays[0]` before attempt 1, then `delays[k]` between attempt `k` and
    /// attempt `k + 1`. So `delays.len()` is the number of attempts.
    pub fn schedule(delays: Vec<Duration>, jitter: f64) -> Result<Self, InvalidPolicy> {
        Self::schedule_all_errors(delays, jitter).map_err(first)
    }

    /// [`RetryPolicy::schedule`] that names every rule broken, not only the first, so a
    /// configuration check can list them all at once. The list is never empty.
    pub fn schedule_all_errors(
        delays: Vec<Duration>,
        jitter: f64,
    ) -> Result<Self, Vec<InvalidPolicy>> {
        Schedule::new(delays, jitter).map(RetryPolicy::Schedule)
    }

    /// Exponential backoff: `initial × multiplier^(k-1)` after `k` failed attempts, at most
    /// `max_delay`, at most `max_attempts` attempts, and no attempt starting after `deadline`
    /// (measured from the first attempt).
    pub fn exponential(
        initial: Duration,
        multiplier: f64,
        max_delay: Duration,
        max_attempts: u32,
        deadline: Option<Duration>,
        jitter: f64,
    ) -> Result<Self, InvalidPolicy> {
        Self::exponential_all_errors(
            initial,
            multiplier,
            max_delay,
            max_attempts,
            deadline,
            jitter,
        )
        .map_err(first)
    }

    /// [`RetryPolicy::exponential`] that names every rule broken, not only the first, so a
    /// configuration check can list them all at once. The list is never empty.
    pub fn exponential_all_errors(
        initial: Duration,
        multiplier: f64,
        max_delay: Duration,
        max_attempts: u32,
        deadline: Option<Duration>,
        jitter: f64,
    ) -> Result<Self, Vec<InvalidPolicy>> {
        Exponential::new(
            initial,
            multiplier,
            max_delay,
            max_attempts,
            deadline,
            jitter,
        )
        .map(RetryPolicy::Exponential)
    }

    /// The most attempts a notification gets, the first one included.
    pub fn max_attempts(&self) -> u32 {
        match self {
            RetryPolicy::Schedule(s) => s.max_attempts(),
            RetryPolicy::Exponential(e) => e.max_attempts(),
        }
    }

    /// The time after the first attempt past which no attempt starts. A schedule has none: its
    /// attempt count bounds it.
    pub fn deadline(&self) -> Option<Duration> {
        match self {
            RetryPolicy::Schedule(_) => None,
            RetryPolicy::Exponential(e) => e.deadline(),
        }
    }

    /// The jitter fraction (0.1 = ±10 %).
    pub fn jitter(&self) -> f64 {
        match self {
            RetryPolicy::Schedule(s) => s.jitter(),
            RetryPolicy::Exponential(e) => e.jitter(),
        }
    }

    /// Delay before attempt number `attempts_made + 1`, after `attempts_made` attempts have
    /// failed and `elapsed` has passed since the first attempt started (minus any throttle
    /// extension, see the module docs). `None` means exhausted: the attempts are used up, or the
    /// next attempt would start after the deadline.
    ///
    /// `rand01` in `[0, 1)` drives the jitter: `delay × (1 + jitter × (2 × rand01 − 1))`. Values
    /// outside that range are clamped and NaN counts as 0.5 (no jitter), so a bad random source
    /// cannot push a delay out of bounds.
    ///
    /// `attempts_made == 0` asks for the delay before the first attempt: `delays[0]` for a
    /// schedule, zero for exponential.
    pub fn next_delay(
        &self,
        attempts_made: u32,
        elapsed: Duration,
        rand01: f64,
    ) -> Option<Duration> {
        if attempts_made >= self.max_attempts() {
            return None;
        }
        let delay = jittered(self.base_delay(attempts_made), self.jitter(), rand01);
        match self.deadline() {
            Some(deadline) if elapsed.saturating_add(delay) > deadline => None,
            _ => Some(delay),
        }
    }

    /// The un-jittered delay before attempt `attempts_made + 1`; callers check the count first.
    fn base_delay(&self, attempts_made: u32) -> Duration {
        match self {
            RetryPolicy::Schedule(s) => s.base_delay(attempts_made),
            RetryPolicy::Exponential(e) => e.base_delay(attempts_made),
        }
    }

    /// Delay after a throttled answer (BACKOFF_HARD, PROTOCOL.md §8): `max(4 × scheduled, 60 s)`,
    /// capped at 15 h. A server `Retry-After` is clamped into `[1 s, 15 h]` and wins when it is
    /// longer; it can never shorten the wait, since the endpoint has just said it is overloaded.
    pub fn throttled_delay(&self, scheduled: Duration, retry_after: Option<Duration>) -> Duration {
        let ours = scheduled
            .saturating_mul(4)
            .max(THROTTLE_MIN_DELAY)
            .min(THROTTLE_MAX_DELAY);
        match retry_after {
            Some(theirs) => ours.max(theirs.clamp(RETRY_AFTER_MIN, THROTTLE_MAX_DELAY)),
            None => ours,
        }
    }

    /// What follows a throttled answer to attempt `attempts_made`: the BACKOFF_HARD delay and the
    /// deadline extension in force, or `None` when the notification is exhausted.
    ///
    /// `elapsed` is the real time since the first attempt; `extension` is what an earlier call
    /// returned (`None` if the notification was never throttled). The throttled attempt counts
    /// like any other. The first throttled answer moves the deadline out by exactly the extra
    /// wait, so it never costs the notification its remaining attempts; later ones must fit in
    /// the window as extended then.
    pub fn throttled_next(
        &self,
        attempts_made: u32,
        elapsed: Duration,
        rand01: f64,
        retry_after: Option<Duration>,
        extension: Option<Duration>,
    ) -> Option<Throttle> {
        let counted = elapsed.saturating_sub(extension.unwrap_or_default());
        let scheduled = self.next_delay(attempts_made, counted, rand01)?;
        let delay = self.throttled_delay(scheduled, retry_after);
        let extension = match extension {
            Some(granted) => {
                if let Some(deadline) = self.deadline()
                    && counted.saturating_add(delay) > deadline
                {
                    return None;
                }
                granted
            }
            None => delay.saturating_sub(scheduled),
        };
        Some(Throttle { delay, extension })
    }
}

/// The error the single-error constructors report: the first rule broken.
fn first(broken: Vec<InvalidPolicy>) -> InvalidPolicy {
    // The constructors fail only with a non-empty list.
    broken[0]
}

/// Checks a jitter fraction: finite, in `[0, 1)`.
fn valid_jitter(jitter: f64) -> bool {
    (0.0..1.0).contains(&jitter)
}

/// `base × (1 + jitter × (2 × rand01 − 1))`, saturating, never negative.
fn jittered(base: Duration, jitter: f64, rand01: f64) -> Duration {
    if jitter == 0.0 || base.is_zero() {
        return base;
    }
    let r = if rand01.is_nan() {
        0.5
    } else {
        rand01.clamp(0.0, 1.0)
    };
    let factor = 1.0 + jitter * (2.0 * r - 1.0);
    Duration::try_from_secs_f64(base.as_secs_f64() * factor).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);
    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn alipay_default_is_the_house_schedule() {
        let p = RetryPolicy::alipay_default();
        assert_eq!(p.max_attempts(), 8);
        assert_eq!(p.deadline(), None);
        let expected = [
            Duration::ZERO,
            2 * MIN,
            10 * MIN,
            10 * MIN,
            HOUR,
            2 * HOUR,
            6 * HOUR,
            15 * HOUR,
        ];
        for (k, want) in expected.into_iter().enumerate() {
            // rand01 = 0.5 is the jitter midpoint: the nominal delay.
            assert_eq!(
                p.next_delay(k as u32, Duration::ZERO, 0.5),
                Some(want),
                "attempt {}",
                k + 1
            );
        }
        assert_eq!(p.next_delay(8, Duration::ZERO, 0.5), None);
        // ±10 %: the extremes of rand01 give 0.9× and just under 1.1×.
        assert_eq!(
            p.next_delay(1, Duration::ZERO, 0.0),
            Some(108 * Duration::from_secs(1))
        );
        let high = p.next_delay(1, Duration::ZERO, 0.999_999).unwrap();
        assert!(
            high > Duration::from_secs(131) && high < Duration::from_secs(132),
            "{high:?}"
        );
    }

    #[test]
    fn bad_random_numbers_stay_in_bounds() {
        let p = RetryPolicy::alipay_default();
        assert_eq!(p.next_delay(1, Duration::ZERO, f64::NAN), Some(2 * MIN));
        assert_eq!(
            p.next_delay(1, Duration::ZERO, -5.0),
            Some(108 * Duration::from_secs(1))
        );
        assert_eq!(
            p.next_delay(1, Duration::ZERO, 7.0),
            Some(132 * Duration::from_secs(1))
        );
    }

    #[test]
    fn throttled_delay_follows_backoff_hard() {
        let p = RetryPolicy::alipay_default();
        assert_eq!(
            p.throttled_delay(Duration::ZERO, None),
            60 * Duration::from_secs(1)
        );
        assert_eq!(p.throttled_delay(2 * MIN, None), 8 * MIN);
        assert_eq!(p.throttled_delay(6 * HOUR, None), 15 * HOUR);
        assert_eq!(p.throttled_delay(Duration::MAX, None), 15 * HOUR);
        // Retry-After wins only when longer, and is clamped into [1 s, 15 h].
        assert_eq!(p.throttled_delay(2 * MIN, Some(HOUR)), HOUR);
        assert_eq!(p.throttled_delay(2 * MIN, Some(MIN)), 8 * MIN);
        assert_eq!(p.throttled_delay(2 * MIN, Some(100 * HOUR)), 15 * HOUR);
        assert_eq!(p.throttled_delay(Duration::ZERO, Some(Duration::ZERO)), MIN);
    }

    #[test]
    fn throttle_extends_the_deadline_once() {
        // 10 s, 20 s, 40 s, ... capped at 100 s; deadline 300 s after the first attempt.
        let p = RetryPolicy::exponential(
            Duration::from_secs(10),
            2.0,
            Duration::from_secs(100),
            20,
            Some(Duration::from_secs(300)),
            0.0,
        )
        .unwrap();
        // First throttle at 250 s: scheduled 40 s fits (290 s), the throttled 160 s would not,
        // but the one extension moves the window out by the 120 s difference.
        let t = p
            .throttled_next(3, Duration::from_secs(250), 0.5, None, None)
            .unwrap();
        assert_eq!(t.delay, Duration::from_secs(160));
        assert_eq!(t.extension, Duration::from_secs(120));
        // A second throttle no longer extends it: at 330 s real (210 s counted) the scheduled
        // 80 s would fit, but the throttled 320 s does not, and nothing moves the window again.
        assert_eq!(
            p.throttled_next(4, Duration::from_secs(330), 0.5, None, Some(t.extension)),
            None
        );
        // Had it been the first throttle, the extension would have made room.
        assert!(
            p.throttled_next(4, Duration::from_secs(210), 0.5, None, None)
                .is_some()
        );
        // Ordinary retries count time against the extended window.
        assert_eq!(
            p.next_delay(4, Duration::from_secs(330 - 120), 0.5),
            Some(Duration::from_secs(80))
        );
        assert_eq!(p.next_delay(4, Duration::from_secs(410 - 120), 0.5), None);
    }

    #[test]
    fn throttle_consumes_an_attempt() {
        let p = RetryPolicy::alipay_default();
        assert!(p.throttled_next(7, HOUR, 0.5, None, None).is_some());
        assert_eq!(p.throttled_next(8, HOUR, 0.5, None, None), None);
    }

    #[test]
    fn errors_name_their_key() {
        assert_eq!(InvalidPolicy::Jitter.key(), "jitter");
        assert_eq!(
            InvalidPolicy::ScheduleTooLong.to_string(),
            "schedule: must have at most 100 entries"
        );
        assert!(
            InvalidPolicy::Multiplier
                .to_string()
                .starts_with("multiplier: ")
        );
    }
}
