//! The retry policy of a profile, validated from `[profiles.NAME.retry]`.
//!
//! The rules of a policy are the core's: the section is parsed here and handed to the core's
//! constructor, whose errors become problems at `profiles.NAME.retry.<key>`, so `check-config`
//! accepts exactly the policies the daemon can run.

use std::collections::HashSet;
use std::time::Duration;

use notifyd_core::backoff::RetryPolicy;
pub use notifyd_core::backoff::{ALIPAY_JITTER as DEFAULT_JITTER, ALIPAY_SCHEDULE};

use super::duration::parse_duration;
use super::file::RetryFile;
use super::problem::Problems;

/// Default time allowed for one attempt.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);

/// Validates `file` (found at `key`, e.g. `profiles.acme.retry`) into the policy and the attempt timeout.
/// Problems go to `problems`; the returned values are then defaults and meaningless.
pub(crate) fn validate_retry(
    key: &str,
    file: &RetryFile,
    problems: &mut Problems,
) -> (RetryPolicy, Duration) {
    let duration = |name: &str, text: &Option<String>, default: Duration, p: &mut Problems| {
        text.as_deref().map_or(Some(default), |t| {
            p.check(&format!("{key}.{name}"), parse_duration(t))
        })
    };
    let attempt_timeout = duration(
        "attempt_timeout",
        &file.attempt_timeout,
        DEFAULT_ATTEMPT_TIMEOUT,
        problems,
    )
    .unwrap_or(DEFAULT_ATTEMPT_TIMEOUT);
    if attempt_timeout.is_zero() {
        problems.push(format!("{key}.attempt_timeout"), "must be more than 0");
    }
    let jitter = file.jitter.unwrap_or(DEFAULT_JITTER);
    // Keys whose text did not parse: already reported, so the core's verdict on the stand-in
    // value is not.
    let mut unparsed = HashSet::new();

    let exponential_keys = [
        ("initial", file.initial.is_some()),
        ("multiplier", file.multiplier.is_some()),
        ("max_delay", file.max_delay.is_some()),
        ("max_attempts", file.max_attempts.is_some()),
        ("deadline", file.deadline.is_some()),
    ];
    let refuse = |names: &[(&str, bool)], kind: &str, p: &mut Problems| {
        for (name, _) in names.iter().filter(|(_, set)| *set) {
            p.push(
                format!("{key}.{name}"),
                format!("not used by kind = \"{kind}\""),
            );
        }
    };

    let built = match file.kind.as_deref().unwrap_or("schedule") {
        "schedule" => {
            refuse(&exponential_keys, "schedule", problems);
            let delays = match &file.schedule {
                None => ALIPAY_SCHEDULE.to_vec(),
                // An entry that does not parse still counts towards the schedule's length.
                Some(list) => list
                    .iter()
                    .enumerate()
                    .map(|(i, t)| {
                        problems
                            .check(&format!("{key}.schedule[{i}]"), parse_duration(t))
                            .unwrap_or_default()
                    })
                    .collect(),
            };
            RetryPolicy::schedule_all_errors(delays, jitter)
        }
        "exponential" => {
            refuse(
                &[("schedule", file.schedule.is_some())],
                "exponential",
                problems,
            );
            let mut parsed = |name: &'static str, text: &Option<String>, default| {
                let value = duration(name, text, default, problems);
                if value.is_none() {
                    unparsed.insert(name);
                }
                value
            };
            let initial = parsed("initial", &file.initial, Duration::from_secs(2));
            let max_delay = parsed("max_delay", &file.max_delay, Duration::from_secs(15 * 3600));
            let deadline = parsed("deadline", &file.deadline, Duration::from_secs(25 * 3600));
            // A stand-in for an unparsed bound is the other bound, so `max_delay` is not
            // judged against a value the file never gave.
            let (initial, max_delay) = match (initial, max_delay) {
                (Some(i), Some(m)) => (i, m),
                (Some(d), None) | (None, Some(d)) => (d, d),
                (None, None) => (Duration::from_secs(1), Duration::from_secs(1)),
            };
            RetryPolicy::exponential_all_errors(
                initial,
                file.multiplier.unwrap_or(2.0),
                max_delay,
                file.max_attempts.unwrap_or(8),
                Some(deadline.unwrap_or(Duration::from_secs(1))),
                jitter,
            )
        }
        other => {
            problems.push(
                format!("{key}.kind"),
                format!("unknown kind `{other}`; expected \"schedule\" or \"exponential\""),
            );
            RetryPolicy::schedule_all_errors(ALIPAY_SCHEDULE.to_vec(), jitter)
        }
    };
    let policy = built.unwrap_or_else(|broken| {
        for e in broken.into_iter().filter(|e| !unparsed.contains(e.key())) {
            problems.push(format!("{key}.{}", e.key()), e.rule());
        }
        RetryPolicy::alipay_default()
    });
    (policy, attempt_timeout)
}
