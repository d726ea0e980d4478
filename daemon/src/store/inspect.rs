//! `notifyd inspect`: reads a stopped daemon's embedded store without changing it.
//!
//! redb's read-only open takes a shared lock on the file; the daemon holds it exclusively, so
//! while it runs the open fails and [`StoreError::Open`] says so, instead of reading pages a live
//! writer may be rewriting.

use std::path::Path;

use bytes::Bytes;
use notifyd_core::{NotificationId, UnixMillis};
use redb::{ReadOnlyDatabase, ReadableDatabase, ReadableTable, ReadableTableMetadata};

use super::attempts::{self, ATTEMPTS, AttemptEntry};
use super::error::{StoreError, db};
use super::record::{NotificationRecord, State, decode_meta};
use super::redb_store::FILE_NAME;
use super::search::BY_STATE;
use super::tables::{NOTIFICATIONS, PENDING};

/// What `inspect` found.
#[derive(Debug)]
pub struct Inspection {
    /// Notifications per state, in [`State`] order: pending, delivered, failed, dead.
    pub counts: [(State, u64); 4],
    /// The oldest pending notification.
    pub oldest_pending: Option<NotificationRecord>,
    /// The notification asked for, with its attempt log.
    pub one: Option<(NotificationRecord, Vec<AttemptEntry>)>,
    /// Endpoints an operator holds, with when the hold began: held again at the next start.
    pub holds: Vec<(String, UnixMillis)>,
}

/// Opens `dir/notifyd.redb` read-only and reads the summary (and `id`, when given).
pub fn inspect(dir: &Path, id: Option<NotificationId>) -> Result<Inspection, StoreError> {
    let path = dir.join(FILE_NAME);
    if !path.exists() {
        return Err(StoreError::Open(format!(
            "{}: no store here",
            path.display()
        )));
    }
    let database = ReadOnlyDatabase::open(&path).map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Open(format!(
            "{}: the store is in use (is notifyd running? stop it first, or use notifyd ctl)",
            path.display()
        )),
        other => StoreError::Open(format!("{}: {other}", path.display())),
    })?;
    let txn = database.begin_read().map_err(db)?;
    super::format::check(&txn, &path.display().to_string())?;
    let notifications = txn.open_table(NOTIFICATIONS).map_err(db)?;
    let meta = |raw: u128| -> Result<Option<NotificationRecord>, StoreError> {
        match notifications.get(raw).map_err(db)? {
            Some(v) => {
                decode_meta(NotificationId::from_u128(raw), v.value(), Bytes::new()).map(Some)
            }
            None => Ok(None),
        }
    };
    let by_state = txn.open_table(BY_STATE).map_err(db)?;
    let states = [State::Pending, State::Delivered, State::Failed, State::Dead];
    let mut counts = states.map(|s| (s, 0u64));
    for (i, c) in counts.iter_mut().enumerate() {
        // by_state keys are (state key, id) with state keys 1..=4 in this order (search.rs).
        let key = (i + 1) as u8;
        c.1 = by_state
            .range((key, 0u128)..=(key, u128::MAX))
            .map_err(db)?
            .count() as u64;
    }
    if by_state.is_empty().map_err(db)? {
        // A store not yet opened by a version with the search indexes: count the pending table.
        counts[0].1 = txn.open_table(PENDING).map_err(db)?.len().map_err(db)?;
    }
    let pending = txn.open_table(PENDING).map_err(db)?;
    let oldest_pending = match pending.first().map_err(db)? {
        Some((k, _)) => meta(k.value())?,
        None => None,
    };
    let one = match id {
        Some(id) => match meta(id.as_u128())? {
            Some(r) => {
                let log = attempts::read(&txn.open_table(ATTEMPTS).map_err(db)?, id)?;
                Some((r, log))
            }
            None => None,
        },
        None => None,
    };
    let holds = super::tables::read_holds(&txn)?;
    Ok(Inspection {
        counts,
        oldest_pending,
        one,
        holds,
    })
}
