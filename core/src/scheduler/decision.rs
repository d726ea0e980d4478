//! What follows an answer for the notification: its next state, due time and attempt count
//! (PROTOCOL.md §7 and §8). Pure: the scheduler supplies the elapsed time it counts.

use std::time::Duration;

use crate::ack::Ack;
use crate::backoff::RetryPolicy;

/// Where a notification stands after an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// It will be attempted again (`pending`).
    Pending,
    /// `S`: the receiver has it.
    Delivered,
    /// A permanent `F`.
    Failed,
    /// Attempts or deadline used up without a final answer.
    Dead,
}

impl Verdict {
    /// True for the states a notification never leaves on its own.
    pub const fn is_final(self) -> bool {
        !matches!(self, Verdict::Pending)
    }
}

/// What one notification carries from answer to answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Progress {
    /// Attempts spent (an answer about our side spends none).
    pub attempts: u32,
    /// The deadline extension granted by the first throttle (see [`crate::backoff`]).
    pub throttle_extension: Option<Duration>,
    /// Retries already granted to doubtful refusals ([`Ack::Doubtful`]).
    pub doubts: u8,
    /// Local failures ([`Ack::LocalFailure`]) in a row: their backoff doubles with each.
    pub local_failures: u8,
}

/// The wait after the first local failure ([`Ack::LocalFailure`]) in a row.
pub const FIRST_LOCAL_RETRY: Duration = Duration::from_secs(1);
/// The longest wait after local failures in a row: a proxy back up is used within a minute.
pub const MAX_LOCAL_RETRY: Duration = Duration::from_secs(60);

/// The next step: the verdict and, when pending, the delay until the next attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Next {
    pub verdict: Verdict,
    pub delay: Option<Duration>,
}

/// Decides what follows `ack` for a notification with `progress`, `elapsed` into its current
/// delivery (held time excluded), and updates `progress`. `rand01` drives the jitter.
pub(super) fn decide(
    ack: &Ack,
    progress: &mut Progress,
    elapsed: Duration,
    policy: &RetryPolicy,
    rand01: f64,
) -> Next {
    let pending = |delay| Next {
        verdict: Verdict::Pending,
        delay: Some(delay),
    };
    let last = |verdict| Next {
        verdict,
        delay: None,
    };
    match ack {
        Ack::OurSide { .. } => {
            // Not the payment's fault: due again as soon as its endpoint lets it go.
            return pending(Duration::ZERO);
        }
        Ack::LocalFailure { .. } => {
            // Not the receiver's either, and the endpoint is not held for it (the proxy serves
            // every endpoint), so each notification backs off on its own.
            let doublings = u32::from(progress.local_failures.min(16));
            progress.local_failures = progress.local_failures.saturating_add(1);
            return pending((FIRST_LOCAL_RETRY * (1 << doublings)).min(MAX_LOCAL_RETRY));
        }
        _ => progress.local_failures = 0,
    }
    progress.attempts = progress.attempts.saturating_add(1);
    let counted = elapsed.saturating_sub(progress.throttle_extension.unwrap_or_default());
    match ack {
        Ack::Delivered { .. } => last(Verdict::Delivered),
        Ack::Failed { .. } => last(Verdict::Failed),
        Ack::Doubtful { retries, .. } => {
            if progress.doubts >= *retries {
                return last(Verdict::Failed);
            }
            match policy.next_delay(progress.attempts, counted, rand01) {
                Some(delay) => {
                    progress.doubts += 1;
                    pending(delay)
                }
                None => last(Verdict::Failed),
            }
        }
        Ack::Retry { .. } => match policy.next_delay(progress.attempts, counted, rand01) {
            Some(delay) => pending(delay),
            None => last(Verdict::Dead),
        },
        Ack::Throttled { retry_after } => match policy.throttled_next(
            progress.attempts,
            elapsed,
            rand01,
            *retry_after,
            progress.throttle_extension,
        ) {
            Some(t) => {
                progress.throttle_extension = Some(t.extension);
                pending(t.delay)
            }
            None => last(Verdict::Dead),
        },
        Ack::OurSide { .. } | Ack::LocalFailure { .. } => unreachable!("handled above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ack::RetryReason;

    const MIN: Duration = Duration::from_secs(60);

    fn fresh() -> Progress {
        Progress {
            attempts: 0,
            throttle_extension: None,
            doubts: 0,
            local_failures: 0,
        }
    }

    fn doubtful(retries: u8) -> Ack {
        Ack::Doubtful {
            code: "ORDER_NOT_EXIST".into(),
            message: None,
            retries,
        }
    }

    #[test]
    fn a_doubtful_refusal_gets_its_retries_on_the_schedule_then_fails() {
        let policy = RetryPolicy::alipay_default();
        let mut p = fresh();
        let first = decide(&doubtful(2), &mut p, Duration::ZERO, &policy, 0.5);
        assert_eq!(
            first,
            Next {
                verdict: Verdict::Pending,
                delay: Some(2 * MIN)
            }
        );
        let second = decide(&doubtful(2), &mut p, 2 * MIN, &policy, 0.5);
        assert_eq!(second.delay, Some(10 * MIN), "the schedule's next entry");
        let third = decide(&doubtful(2), &mut p, 12 * MIN, &policy, 0.5);
        assert_eq!(third.verdict, Verdict::Failed);
        assert_eq!(p.attempts, 3, "each refusal spent an attempt");
    }

    #[test]
    fn a_doubtful_refusal_fails_when_the_schedule_runs_out_first() {
        let policy = RetryPolicy::schedule(vec![Duration::ZERO], 0.0).unwrap();
        let mut p = fresh();
        let next = decide(&doubtful(1), &mut p, Duration::ZERO, &policy, 0.5);
        assert_eq!(
            next.verdict,
            Verdict::Failed,
            "failed, not dead: it was an F"
        );
    }

    #[test]
    fn an_answer_about_our_side_spends_nothing() {
        let policy = RetryPolicy::alipay_default();
        let mut p = fresh();
        let ack = Ack::OurSide {
            code: "INVALID_SIGNATURE".into(),
            message: None,
        };
        let next = decide(&ack, &mut p, 5 * MIN, &policy, 0.5);
        assert_eq!(
            next,
            Next {
                verdict: Verdict::Pending,
                delay: Some(Duration::ZERO)
            }
        );
        assert_eq!(p, fresh());
    }

    #[test]
    fn a_local_failure_spends_nothing_and_backs_off_on_its_own() {
        let policy = RetryPolicy::alipay_default();
        let mut p = fresh();
        let proxy = Ack::LocalFailure {
            cause: crate::ack::LocalCause::Proxy,
        };
        let delays: Vec<_> = (0..8)
            .map(|_| decide(&proxy, &mut p, Duration::ZERO, &policy, 0.5).delay)
            .collect();
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(
            delays,
            [
                secs(1),
                secs(2),
                secs(4),
                secs(8),
                secs(16),
                secs(32),
                secs(60),
                secs(60)
            ]
        );
        assert_eq!(p.attempts, 0, "no attempt spent");
        let retry = Ack::Retry {
            reason: RetryReason::Timeout,
        };
        decide(&retry, &mut p, Duration::ZERO, &policy, 0.5);
        assert_eq!(
            (p.attempts, p.local_failures),
            (1, 0),
            "a real answer resets it"
        );
        let next = decide(&proxy, &mut p, Duration::ZERO, &policy, 0.5);
        assert_eq!(next.delay, secs(1));
    }

    #[test]
    fn the_deadline_counts_the_elapsed_time_given() {
        // 10 s, 20 s, 40 s ...; deadline 60 s.
        let policy = RetryPolicy::exponential(
            Duration::from_secs(10),
            2.0,
            Duration::from_secs(100),
            20,
            Some(Duration::from_secs(60)),
            0.0,
        )
        .unwrap();
        let retry = Ack::Retry {
            reason: RetryReason::Timeout,
        };
        let mut p = fresh();
        p.attempts = 2;
        let early = decide(
            &retry,
            &mut p.clone(),
            Duration::from_secs(15),
            &policy,
            0.5,
        );
        assert_eq!(
            early.delay,
            Some(Duration::from_secs(40)),
            "15 s + 40 s fits in 60 s"
        );
        let late = decide(&retry, &mut p, Duration::from_secs(30), &policy, 0.5);
        assert_eq!(late.verdict, Verdict::Dead, "30 s + 40 s does not");
    }
}
