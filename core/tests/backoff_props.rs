//! Property tests for `RetryPolicy` (STYLE.md practice 4): whatever the config and the random
//! numbers, delays stay inside their jitter band and cap, attempts stay inside their count and
//! deadline, and invalid configs never get built.

use std::time::Duration;

use notifyd_core::backoff::{InvalidPolicy, RetryPolicy};
use proptest::prelude::*;

/// Float rounding in the jitter arithmetic may land a hair outside the exact band.
const SLACK: Duration = Duration::from_micros(1);

fn band(d: Duration, jitter: f64) -> (Duration, Duration) {
    let lo = Duration::from_secs_f64(d.as_secs_f64() * (1.0 - jitter)).saturating_sub(SLACK);
    let hi = Duration::from_secs_f64(d.as_secs_f64() * (1.0 + jitter)) + SLACK;
    (lo, hi)
}

fn delays() -> impl Strategy<Value = Vec<Duration>> {
    prop::collection::vec(
        (0u64..=200_000_000).prop_map(Duration::from_millis),
        1..=100,
    )
}

fn exponential() -> impl Strategy<Value = (RetryPolicy, Duration, f64)> {
    (
        1u64..=60_000,
        1.0f64..10.0,
        0u64..=100_000_000,
        1u32..=1000,
        prop::option::of(1u64..=200_000_000),
        0.0f64..1.0,
    )
        .prop_map(
            |(initial_ms, mult, extra_ms, attempts, deadline_ms, jitter)| {
                let initial = Duration::from_millis(initial_ms);
                let max_delay = initial + Duration::from_millis(extra_ms);
                let deadline = deadline_ms.map(Duration::from_millis);
                let p =
                    RetryPolicy::exponential(initial, mult, max_delay, attempts, deadline, jitter)
                        .expect("generated inside the valid ranges");
                (p, max_delay, jitter)
            },
        )
}

/// Runs a notification that fails every time: the delays the policy offers, in order.
fn offered(p: &RetryPolicy, rands: &[f64]) -> Vec<Duration> {
    let mut out = Vec::new();
    let mut elapsed = Duration::ZERO;
    // Attempt 1 is always made; then ask after each failure.
    for k in 1u32.. {
        let r = rands[k as usize % rands.len()];
        match p.next_delay(k, elapsed, r) {
            Some(d) => {
                elapsed += d;
                out.push(d);
            }
            None => break,
        }
    }
    out
}

proptest! {
    #[test]
    fn schedule_delays_stay_in_their_jitter_band(
        ds in delays(),
        jitter in 0.0f64..1.0,
        r in 0.0f64..1.0,
    ) {
        let p = RetryPolicy::schedule(ds.clone(), jitter).unwrap();
        prop_assert_eq!(p.max_attempts() as usize, ds.len());
        for (k, &d) in ds.iter().enumerate() {
            let got = p.next_delay(k as u32, Duration::ZERO, r).expect("within the count");
            let (lo, hi) = band(d, jitter);
            prop_assert!(lo <= got && got <= hi, "attempt {}: {:?} not in [{:?}, {:?}]", k + 1, got, lo, hi);
        }
        prop_assert_eq!(p.next_delay(ds.len() as u32, Duration::ZERO, r), None);
    }

    #[test]
    fn exponential_delays_stay_under_the_jittered_cap(
        (p, max_delay, jitter) in exponential(),
        k in 1u32..1200,
        r in 0.0f64..1.0,
    ) {
        if let Some(d) = p.next_delay(k, Duration::ZERO, r) {
            let (_, hi) = band(max_delay, jitter);
            prop_assert!(d <= hi, "{:?} above {:?}", d, hi);
            prop_assert!(k < p.max_attempts());
        }
    }

    #[test]
    fn exponential_delays_never_shrink_at_the_jitter_midpoint(
        (p, _max, _jitter) in exponential(),
        k in 1u32..50,
    ) {
        // At the jitter midpoint the delays are the bare sequence, which never decreases.
        if let (Some(a), Some(b)) = (
            p.next_delay(k, Duration::ZERO, 0.5),
            p.next_delay(k + 1, Duration::ZERO, 0.5),
        ) {
            prop_assert!(a <= b + SLACK, "{:?} then {:?}", a, b);
        }
    }

    #[test]
    fn offered_attempts_respect_count_and_deadline(
        (p, _max, _jitter) in exponential(),
        rands in prop::collection::vec(0.0f64..1.0, 1..16),
    ) {
        let run = offered(&p, &rands);
        prop_assert!(run.len() < p.max_attempts() as usize, "{} retries for {} attempts", run.len(), p.max_attempts());
        if let Some(deadline) = p.deadline() {
            let total: Duration = run.iter().sum();
            prop_assert!(total <= deadline, "{:?} past {:?}", total, deadline);
        } else {
            prop_assert_eq!(run.len() + 1, p.max_attempts() as usize);
        }
    }

    #[test]
    fn schedule_offers_exactly_its_entries(ds in delays(), jitter in 0.0f64..1.0, r in 0.0f64..1.0) {
        let p = RetryPolicy::schedule(ds.clone(), jitter).unwrap();
        // Attempt 1 plus one retry per remaining entry.
        prop_assert_eq!(offered(&p, &[r]).len() + 1, ds.len());
    }

    #[test]
    fn throttled_delay_is_bounded(
        scheduled_ms in 0u64..=200_000_000,
        retry_after in prop::option::of(0u64..=1_000_000),
    ) {
        let p = RetryPolicy::alipay_default();
        let scheduled = Duration::from_millis(scheduled_ms);
        let d = p.throttled_delay(scheduled, retry_after.map(Duration::from_secs));
        prop_assert!(d >= Duration::from_secs(60));
        prop_assert!(d <= Duration::from_secs(15 * 3600));
        prop_assert!(d >= (scheduled * 4).min(Duration::from_secs(15 * 3600)));
        if let Some(ra) = retry_after {
            prop_assert!(d >= Duration::from_secs(ra).min(Duration::from_secs(15 * 3600)));
        }
    }

    #[test]
    fn throttling_never_exceeds_the_count_or_the_once_extended_deadline(
        (p, _max, _jitter) in exponential(),
        throttled in prop::collection::vec(any::<bool>(), 1..64),
        r in 0.0f64..1.0,
    ) {
        let mut elapsed = Duration::ZERO;
        let mut extension = None;
        let mut attempts = 1u32;
        loop {
            let is_throttled = throttled[attempts as usize % throttled.len()];
            let delay = if is_throttled {
                match p.throttled_next(attempts, elapsed, r, None, extension) {
                    Some(t) => {
                        prop_assert!(extension.is_none_or(|e| e == t.extension), "extended twice");
                        extension = Some(t.extension);
                        t.delay
                    }
                    None => break,
                }
            } else {
                let counted = elapsed.saturating_sub(extension.unwrap_or_default());
                match p.next_delay(attempts, counted, r) {
                    Some(d) => d,
                    None => break,
                }
            };
            elapsed += delay;
            attempts += 1;
        }
        prop_assert!(attempts <= p.max_attempts());
        if let Some(deadline) = p.deadline() {
            prop_assert!(elapsed <= deadline + extension.unwrap_or_default());
        }
    }

    #[test]
    fn invalid_jitter_is_rejected(jitter in prop_oneof![
        Just(f64::NAN), Just(f64::INFINITY), Just(f64::NEG_INFINITY), Just(1.0),
        1.0f64..1e9, -1e9f64..-1e-12,
    ]) {
        prop_assert_eq!(RetryPolicy::schedule(vec![Duration::ZERO], jitter), Err(InvalidPolicy::Jitter));
        let s = Duration::from_secs(1);
        prop_assert_eq!(RetryPolicy::exponential(s, 2.0, s, 3, None, jitter), Err(InvalidPolicy::Jitter));
    }

    #[test]
    fn invalid_multiplier_is_rejected(m in prop_oneof![
        Just(f64::NAN), Just(f64::INFINITY), Just(0.5), Just(0.0), -1e9f64..0.999_999,
    ]) {
        let s = Duration::from_secs(1);
        prop_assert_eq!(RetryPolicy::exponential(s, m, s, 3, None, 0.1), Err(InvalidPolicy::Multiplier));
    }

    #[test]
    fn max_delay_below_initial_is_rejected(initial in 2u64..1_000_000, less in 1u64..1_000_000) {
        let initial = Duration::from_millis(initial);
        let max = initial.saturating_sub(Duration::from_millis(less));
        prop_assert_eq!(
            RetryPolicy::exponential(initial, 2.0, max, 3, None, 0.1),
            Err(InvalidPolicy::MaxDelay)
        );
    }

    #[test]
    fn attempt_limits_outside_1_to_1000_are_rejected(n in prop_oneof![Just(0u32), 1001u32..]) {
        let s = Duration::from_secs(1);
        prop_assert_eq!(RetryPolicy::exponential(s, 2.0, s, n, None, 0.1), Err(InvalidPolicy::MaxAttempts));
    }

    #[test]
    fn oversized_schedules_are_rejected(n in 101usize..500) {
        prop_assert_eq!(
            RetryPolicy::schedule(vec![Duration::ZERO; n], 0.1),
            Err(InvalidPolicy::ScheduleTooLong)
        );
    }

    #[test]
    fn parse_duration_round_trips_millis(ms in any::<u64>()) {
        let d = Duration::from_millis(ms);
        prop_assert_eq!(notifyd_core::backoff::parse_duration(&format!("{ms}ms")), Ok(d));
    }

    #[test]
    fn parse_duration_never_panics(s in "\\PC{0,24}") {
        let _ = notifyd_core::backoff::parse_duration(&s);
    }

    #[test]
    fn parse_retry_after_never_panics(s in "\\PC{0,40}", now in any::<u64>()) {
        let _ = notifyd_core::backoff::parse_retry_after(&s, notifyd_core::UnixMillis(now));
    }
}
