//! The store's error type. Ingest answers any of these on a write with 503 `UNKNOWN_EXCEPTION`;
//! the writer of attempt outcomes tries again only while [`StoreError::is_transient`].

use std::io;
use std::sync::Arc;

/// Why a store operation failed. Cloneable because one failed commit answers every op in its
/// batch (hence the `Arc` around the I/O error, which keeps its [`io::ErrorKind`]).
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store's work queue is full; the caller should shed load (429/503) and try later.
    #[error("store queue is full")]
    Full,
    /// The disk or file failed (disk full, I/O error); nothing of the failed commit is visible.
    #[error("store I/O error: {0}")]
    Io(Arc<io::Error>),
    /// Stored bytes could not be decoded, or the database reports corruption.
    #[error("store data is corrupt: {0}")]
    Corrupt(String),
    /// The database could not be opened (already open by another process, wrong format, ...).
    #[error("cannot open store: {0}")]
    Open(String),
    /// The store has shut down and takes no more work.
    #[error("store is closed")]
    Closed,
    /// Any other failure reported by the storage engine.
    #[error("store error: {0}")]
    Backend(String),
}

impl StoreError {
    /// An I/O failure described by `message` (no OS error behind it).
    pub(crate) fn io(message: &str) -> StoreError {
        StoreError::Io(Arc::new(io::Error::other(message.to_owned())))
    }

    /// Whether the same operation may succeed later without anyone changing the store: a full
    /// queue drains, and after an I/O failure the writer reopens the file (a full disk may be
    /// freed). Corrupt data, a closed store or an engine's refusal stay as they are.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Full | StoreError::Io(_))
    }

    /// The kind of the I/O failure, if it is one.
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            StoreError::Io(e) => Some(e.kind()),
            _ => None,
        }
    }
}

impl From<redb::Error> for StoreError {
    fn from(e: redb::Error) -> Self {
        match e {
            redb::Error::Io(io) => StoreError::Io(Arc::new(io)),
            redb::Error::PreviousIo => {
                StoreError::io("an earlier I/O error left the database unusable")
            }
            redb::Error::Corrupted(msg) => StoreError::Corrupt(msg),
            redb::Error::DatabaseClosed => StoreError::Closed,
            other => StoreError::Backend(other.to_string()),
        }
    }
}

/// Converts any of redb's per-operation error types through [`redb::Error`].
pub(crate) fn db<E: Into<redb::Error>>(e: E) -> StoreError {
    StoreError::from(e.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_failures_keep_their_kind_and_are_transient_unlike_corruption() {
        let full_disk =
            StoreError::from(redb::Error::Io(io::Error::from(io::ErrorKind::StorageFull)));
        assert_eq!(full_disk.io_kind(), Some(io::ErrorKind::StorageFull));
        assert!(full_disk.is_transient());
        assert!(StoreError::Full.is_transient());
        for lasting in [
            StoreError::Corrupt("notification 1: short".into()),
            StoreError::Closed,
            StoreError::Backend("value too large".into()),
        ] {
            assert!(!lasting.is_transient(), "{lasting}");
            assert_eq!(lasting.io_kind(), None);
        }
    }
}
