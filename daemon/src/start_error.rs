//! Why notifyd could not start, and the exit code that says so to systemd and scripts.

use crate::cli::{EX_UNAVAILABLE, EX_USAGE};

/// A start-up failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// Pending notifications name profiles the configuration no longer has. Sending them under
    /// another profile would sign them with another key (or not at all) and verify answers by
    /// another rule, so notifyd refuses to start until the profiles are back.
    #[error(
        "pending notifications name profiles that are not configured: {}; add the profiles back to the configuration (their notifications are kept in the store)",
        list(.0)
    )]
    MissingProfiles(Vec<(String, u64)>),
    /// Something the host must provide is missing or broken: a listener address, the store,
    /// a key file.
    #[error("{0}")]
    Unavailable(String),
}

fn list(missing: &[(String, u64)]) -> String {
    missing
        .iter()
        .map(|(p, n)| format!("\"{p}\" ({n} pending)"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl StartError {
    /// The process exit code: 64 for what the configuration must fix, 69 for the rest.
    pub fn exit_code(&self) -> u8 {
        match self {
            StartError::MissingProfiles(_) => EX_USAGE,
            StartError::Unavailable(_) => EX_UNAVAILABLE,
        }
    }
}

impl From<String> for StartError {
    fn from(e: String) -> Self {
        StartError::Unavailable(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_profile_names_each_profile_and_count_and_exits_64() {
        let e = StartError::MissingProfiles(vec![("old".into(), 3), ("gone".into(), 1)]);
        let text = e.to_string();
        assert!(text.contains("\"old\" (3 pending)"), "{text}");
        assert!(text.contains("\"gone\" (1 pending)"), "{text}");
        assert_eq!(e.exit_code(), 64);
        assert_eq!(StartError::from("x".to_owned()).exit_code(), 69);
    }
}
