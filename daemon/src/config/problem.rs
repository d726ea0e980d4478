//! A configuration problem: the key it concerns and what is wrong with it.

use std::fmt;

/// One thing wrong with the configuration. Displayed `key: message`, e.g.
/// `profiles.acme.retry.jitter: must be at least 0 and less than 1`; the key is empty for
/// problems of the file as a whole (unreadable, not TOML).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path (`ingest.listen`, `profiles.acme.retry.schedule[2]`); empty for the whole file.
    pub key: String,
    /// What is wrong, in words.
    pub message: String,
}

impl Problem {
    /// A problem at `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

impl std::error::Error for Problem {}

/// Collects problems so validation can go on past the first one.
#[derive(Debug, Default)]
pub(crate) struct Problems(pub(crate) Vec<Problem>);

impl Problems {
    pub(crate) fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem::new(key, message));
    }

    /// `Some(value)` when `result` is `Ok`; otherwise records the problem under `key`.
    pub(crate) fn check<T>(&mut self, key: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(message) => {
                self.push(key, message);
                None
            }
        }
    }
}
