//! Why notifyd could not start, and the exit code that says so to systemd and scripts.

use std::path::PathBuf;

use crate::cli::{EX_OSERR, EX_SOFTWARE, EX_UNAVAILABLE, EX_USAGE};
use crate::profile::LoadError;
use crate::store::StoreError;

/// A start-up failure. Each message names what failed (the configuration key, the address or
/// the file) and why, as the log line "notifyd could not start." carries it.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Pending notifications name profiles the configuration no longer has. Sending them under
    /// another profile would sign them with another key (or not at all) and verify answers by
    /// another rule, so notifyd refuses to start until the profiles are back.
    #[error(
        "pending notifications name profiles that are not configured: {}; add the profiles back to the configuration (their notifications are kept in the store)",
        list(.0)
    )]
    MissingProfiles(Vec<(String, u64)>),
    /// The store could not be opened (locked by another process, unreadable, not a store).
    #[error("store {}: {source}", path.display())]
    Store { path: PathBuf, source: StoreError },
    /// The shared (PostgreSQL) store could not be opened: unreachable, refused, or a schema
    /// newer than this build understands.
    #[error("store (PostgreSQL): {source}")]
    SharedStore { source: StoreError },
    /// Recovery could not read the store.
    #[error("recovering the store: {0}")]
    Recovery(StoreError),
    /// A listener could not be bound or set up. `what` is its configuration key
    /// (`ingest.listen`, `ingest.unix_socket_mode`, ...), `addr` its address or path.
    #[error("{what} {addr}: {source}")]
    Listen {
        what: &'static str,
        addr: String,
        source: std::io::Error,
    },
    /// A key or certificate file of a profile or merchant.
    #[error(transparent)]
    Key(#[from] LoadError),
    /// `ingest.auth_token_file` could not be read.
    #[error("ingest.auth_token_file {}: {source}", path.display())]
    TokenFile {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The operating system refused the runtime something it needs (signal handlers).
    #[error("{what}: {source}")]
    Runtime {
        what: &'static str,
        source: std::io::Error,
    },
    /// A start-up task panicked (a bug; the panic's message is logged above this).
    #[error("{0} panicked")]
    Panicked(&'static str),
}

fn list(missing: &[(String, u64)]) -> String {
    missing
        .iter()
        .map(|(p, n)| format!("\"{p}\" ({n} pending)"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl StartError {
    /// The process exit code (sysexits): 64 for what the configuration must fix, 69 for what
    /// the host must provide (the store, a readable file), 71 for what the operating system
    /// refused (an address, a socket, signal handlers), 70 for a bug.
    pub fn exit_code(&self) -> u8 {
        match self {
            StartError::MissingProfiles(_) => EX_USAGE,
            StartError::Key(e) if e.is_config() => EX_USAGE,
            StartError::Key(_)
            | StartError::Store { .. }
            | StartError::SharedStore { .. }
            | StartError::Recovery(_)
            | StartError::TokenFile { .. } => EX_UNAVAILABLE,
            StartError::Listen { .. } | StartError::Runtime { .. } => EX_OSERR,
            StartError::Panicked(_) => EX_SOFTWARE,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    #[test]
    fn a_missing_profile_names_each_profile_and_count_and_exits_64() {
        let e = StartError::MissingProfiles(vec![("old".into(), 3), ("gone".into(), 1)]);
        let text = e.to_string();
        assert!(text.contains("\"old\" (3 pending)"), "{text}");
        assert!(text.contains("\"gone\" (1 pending)"), "{text}");
        assert_eq!(e.exit_code(), 64);
    }

    #[test]
    fn a_listener_names_its_key_and_address_and_exits_71() {
        let e = StartError::Listen {
            what: "metrics.listen",
            addr: "127.0.0.1:9470".into(),
            source: io::Error::from(io::ErrorKind::AddrInUse),
        };
        assert_eq!(
            e.to_string(),
            "metrics.listen 127.0.0.1:9470: address in use"
        );
        assert_eq!(e.exit_code(), 71);
    }

    #[test]
    fn a_key_that_does_not_parse_is_the_configurations_but_an_unreadable_one_the_hosts() {
        let path = PathBuf::from("/etc/notifyd/keys/acme.pem");
        let key = "profiles.acme.private_key_file".to_owned();
        let bad = StartError::Key(LoadError::Key {
            key: key.clone(),
            path: path.clone(),
            source: notifyd_core::signing::KeyError::PemNoBlock,
        });
        assert_eq!(
            bad.to_string(),
            "profiles.acme.private_key_file /etc/notifyd/keys/acme.pem: no PEM block found"
        );
        assert_eq!(bad.exit_code(), 64);
        let unreadable = StartError::Key(LoadError::Read {
            key,
            path,
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        });
        assert_eq!(unreadable.exit_code(), 69);
    }
}
