//! The retry policy of a profile, validated from `[profiles.NAME.retry]`.

use std::time::Duration;

use super::duration::parse_duration;
use super::file::RetryFile;
use super::problem::Problems;

/// Alipay's own schedule (CONTRACT.md §3): delay before each attempt, counted from the previous one.
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

/// Default jitter: ±10 %.
pub const DEFAULT_JITTER: f64 = 0.1;
/// Default time allowed for one attempt.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);

/// When to attempt a notification again. The daemon turns this into the core's backoff policy.
#[derive(Debug, Clone, PartialEq)]
pub enum RetryConfig {
    /// A fixed list of delays; `dead` after the last one.
    Schedule {
        /// Delay before each attempt, counted from the previous attempt (the first from acceptance).
        delays: Vec<Duration>,
        /// Each delay varies by up to this fraction either way; in [0, 1).
        jitter: f64,
    },
    /// `initial * multiplier^n`, capped; `dead` after `max_attempts` or past `deadline`.
    Exponential {
        /// Delay before the first retry.
        initial: Duration,
        /// Factor between successive delays; finite and at least 1.
        multiplier: f64,
        /// Cap on one delay.
        max_delay: Duration,
        /// Most attempts, the first included; at least 1.
        max_attempts: u32,
        /// No attempt starts later than this after acceptance.
        deadline: Duration,
        /// Each delay varies by up to this fraction either way; in [0, 1).
        jitter: f64,
    },
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig::Schedule {
            delays: ALIPAY_SCHEDULE.to_vec(),
            jitter: DEFAULT_JITTER,
        }
    }
}

/// Validates `file` (found at `key`, e.g. `profiles.acme.retry`) into the policy and the attempt timeout.
/// Problems go to `problems`; the returned values are then defaults and meaningless.
pub(crate) fn validate_retry(
    key: &str,
    file: &RetryFile,
    problems: &mut Problems,
) -> (RetryConfig, Duration) {
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
    if !(0.0..1.0).contains(&jitter) {
        problems.push(format!("{key}.jitter"), "must be in [0, 1)");
    }

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

    let policy = match file.kind.as_deref().unwrap_or("schedule") {
        "schedule" => {
            refuse(&exponential_keys, "schedule", problems);
            let delays = match &file.schedule {
                None => ALIPAY_SCHEDULE.to_vec(),
                Some(list) if list.is_empty() => {
                    problems.push(format!("{key}.schedule"), "must list at least one delay");
                    Vec::new()
                }
                Some(list) => list
                    .iter()
                    .enumerate()
                    .filter_map(|(i, t)| {
                        problems.check(&format!("{key}.schedule[{i}]"), parse_duration(t))
                    })
                    .collect(),
            };
            RetryConfig::Schedule { delays, jitter }
        }
        "exponential" => {
            refuse(
                &[("schedule", file.schedule.is_some())],
                "exponential",
                problems,
            );
            // `None` where the text did not parse: already reported, so not judged again.
            let initial = duration("initial", &file.initial, Duration::from_secs(2), problems);
            let max_delay = duration(
                "max_delay",
                &file.max_delay,
                Duration::from_secs(15 * 3600),
                problems,
            );
            let deadline = duration(
                "deadline",
                &file.deadline,
                Duration::from_secs(25 * 3600),
                problems,
            );
            let multiplier = file.multiplier.unwrap_or(2.0);
            let max_attempts = file.max_attempts.unwrap_or(8);
            if initial == Some(Duration::ZERO) {
                problems.push(format!("{key}.initial"), "must be more than 0");
            }
            if !(multiplier.is_finite() && multiplier >= 1.0) {
                problems.push(format!("{key}.multiplier"), "must be a number >= 1");
            }
            if let (Some(initial), Some(max_delay)) = (initial, max_delay)
                && max_delay < initial
            {
                problems.push(format!("{key}.max_delay"), "must not be less than initial");
            }
            if max_attempts == 0 {
                problems.push(format!("{key}.max_attempts"), "must be at least 1");
            }
            if deadline == Some(Duration::ZERO) {
                problems.push(format!("{key}.deadline"), "must be more than 0");
            }
            let initial = initial.unwrap_or_default();
            let max_delay = max_delay.unwrap_or_default();
            let deadline = deadline.unwrap_or_default();
            RetryConfig::Exponential {
                initial,
                multiplier,
                max_delay,
                max_attempts,
                deadline,
                jitter,
            }
        }
        other => {
            problems.push(
                format!("{key}.kind"),
                format!("unknown kind `{other}`; expected \"schedule\" or \"exponential\""),
            );
            RetryConfig::default()
        }
    };
    (policy, attempt_timeout)
}
