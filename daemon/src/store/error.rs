//! The store's error type. Ingest answers any of these on a write with 503 `UNKNOWN_EXCEPTION`.

/// Why a store operation failed. Cloneable because one failed commit answers every op in its batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store's work queue is full; the caller should shed load (429/503) and try later.
    #[error("store queue is full")]
    Full,
    /// The disk or file failed (disk full, I/O error); nothing of the failed commit is visible.
    #[error("store I/O error: {0}")]
    Io(String),
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

impl From<redb::Error> for StoreError {
    fn from(e: redb::Error) -> Self {
        match e {
            redb::Error::Io(io) => StoreError::Io(io.to_string()),
            redb::Error::PreviousIo => {
                StoreError::Io("an earlier I/O error left the database unusable".into())
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
