//! The redb tables and the write-side rules that keep their indexes consistent with the records.
//!
//! | table | key → value | why |
//! |---|---|---|
//! | `notifications` | id → meta (record.rs layout) | the record, small, rewritten per attempt |
//! | `bodies` | id → payload bytes | written once at accept |
//! | `pending` | id → () | recovery scans only live work |
//! | `finished` | (finished_at, id) → () | pruning by age |
//! | `dead_letters` | (finished_at, id) → () | newest-first listing without skipping delivered ones |
//! | `idempotency_log` | (accepted_at, key) → (fingerprint, id) | duplicates after a restart; prune by age |
//! | `by_payment_id` | paymentId ⇒ ids (multimap) | `inquiryPayment` |
//! | `by_payment_request_id` | paymentRequestId ⇒ ids (multimap) | `inquiryPayment` without paymentId |
//! | `attempts` | (id, seq) → entry | the attempt log (attempts.rs) |
//! | `by_partner_id`, `by_endpoint`, `by_state` | (key, id) → () | operator search (search.rs) |
//! | `holds` | endpoint → held since | operators' holds, which outlive a restart |
//!
//! Every change to a record goes through [`WriteTables`], which removes the old record's index
//! entries and inserts the new one's in the same transaction.
//!
//! Idempotency entries are a log in time order, not a map by key: an accept appends at the end of
//! the tree instead of rewriting a random leaf (the key is a hash), which was the costliest insert
//! of an accept. Nothing reads them by key: the in-memory table answers repeats, and recovery
//! replays the log through `IdempotencyTable::restore`, which settles two entries of one key.
//! Stores written before the log have `idempotency` + `idempotency_by_time`; [`migrate`] moves
//! them over once, at open.

use bytes::Bytes;
use notifyd_core::{NotificationId, UnixMillis};
use redb::{
    MultimapTable, MultimapTableDefinition, ReadTransaction, ReadableTable, Table, TableDefinition,
    TableHandle, WriteTransaction,
};

use super::attempts::{self, ATTEMPTS, AttemptEntry};
use super::error::{StoreError, db};
use super::record::{NotificationRecord, decode_meta, encode_meta};
use super::search::IndexTables;

pub(super) const NOTIFICATIONS: TableDefinition<'_, u128, &[u8]> =
    TableDefinition::new("notifications");
pub(super) const BODIES: TableDefinition<'_, u128, &[u8]> = TableDefinition::new("bodies");
pub(super) const PENDING: TableDefinition<'_, u128, ()> = TableDefinition::new("pending");
pub(super) const FINISHED: TableDefinition<'_, (u64, u128), ()> = TableDefinition::new("finished");
pub(super) const DEAD_LETTERS: TableDefinition<'_, (u64, u128), ()> =
    TableDefinition::new("dead_letters");
pub(super) const IDEMPOTENCY_LOG: TableDefinition<'_, (u64, u128), (u128, u128)> =
    TableDefinition::new("idempotency_log");
/// The layout before `idempotency_log`, read only by [`migrate`].
const OLD_IDEMPOTENCY: TableDefinition<'_, u128, (u128, u128, u64)> =
    TableDefinition::new("idempotency");
const OLD_IDEMPOTENCY_BY_TIME: TableDefinition<'_, (u64, u128), ()> =
    TableDefinition::new("idempotency_by_time");
/// Opened only by a hold's own transaction and at start, not by every commit.
const HOLDS: TableDefinition<'_, &str, u64> = TableDefinition::new("holds");
pub(super) const BY_PAYMENT_ID: MultimapTableDefinition<'_, &str, u128> =
    MultimapTableDefinition::new("by_payment_id");
pub(super) const BY_PAYMENT_REQUEST_ID: MultimapTableDefinition<'_, &str, u128> =
    MultimapTableDefinition::new("by_payment_request_id");

/// Every table, opened for writing inside one transaction.
pub(super) struct WriteTables<'txn> {
    txn: &'txn WriteTransaction,
    notifications: Table<'txn, u128, &'static [u8]>,
    bodies: Table<'txn, u128, &'static [u8]>,
    pending: Table<'txn, u128, ()>,
    finished: Table<'txn, (u64, u128), ()>,
    dead_letters: Table<'txn, (u64, u128), ()>,
    idempotency_log: Table<'txn, (u64, u128), (u128, u128)>,
    by_payment_id: MultimapTable<'txn, &'static str, u128>,
    by_payment_request_id: MultimapTable<'txn, &'static str, u128>,
    attempts: Table<'txn, (u128, u32), &'static [u8]>,
    search: IndexTables<'txn>,
    scratch: Vec<u8>,
}

impl<'txn> WriteTables<'txn> {
    /// Opens (creating on first use) every table.
    pub(super) fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        Ok(WriteTables {
            txn,
            notifications: txn.open_table(NOTIFICATIONS).map_err(db)?,
            bodies: txn.open_table(BODIES).map_err(db)?,
            pending: txn.open_table(PENDING).map_err(db)?,
            finished: txn.open_table(FINISHED).map_err(db)?,
            dead_letters: txn.open_table(DEAD_LETTERS).map_err(db)?,
            idempotency_log: txn.open_table(IDEMPOTENCY_LOG).map_err(db)?,
            by_payment_id: txn.open_multimap_table(BY_PAYMENT_ID).map_err(db)?,
            by_payment_request_id: txn.open_multimap_table(BY_PAYMENT_REQUEST_ID).map_err(db)?,
            attempts: txn.open_table(ATTEMPTS).map_err(db)?,
            search: IndexTables::open(txn)?,
            scratch: Vec::with_capacity(256),
        })
    }

    /// The record's meta without its body (attempt updates never need the payload).
    pub(super) fn load_meta(
        &self,
        id: NotificationId,
    ) -> Result<Option<NotificationRecord>, StoreError> {
        let Some(meta) = self.notifications.get(id.as_u128()).map_err(db)? else {
            return Ok(None);
        };
        decode_meta(id, meta.value(), Bytes::new()).map(Some)
    }

    pub(super) fn load_body(&self, id: NotificationId) -> Result<Bytes, StoreError> {
        let body = self.bodies.get(id.as_u128()).map_err(db)?;
        Ok(body.map_or_else(Bytes::new, |b| Bytes::copy_from_slice(b.value())))
    }

    /// Stores a newly accepted record, its body, its indexes and its idempotency entry. A record
    /// already under this id is replaced, indexes included.
    pub(super) fn insert_new(&mut self, r: &NotificationRecord) -> Result<(), StoreError> {
        // The meta insert hands back what it replaced, so a fresh id (every accept but a test's
        // or a repair's) costs no lookup before it. An error aborts the whole transaction, so
        // writing before the old copy is read changes nothing on failure.
        self.scratch.clear();
        encode_meta(r, &mut self.scratch);
        let old = self
            .notifications
            .insert(r.id.as_u128(), self.scratch.as_slice())
            .map_err(db)?
            .map(|old| decode_meta(r.id, old.value(), Bytes::new()));
        match old {
            Some(Ok(old)) => {
                self.remove_state_index(&old)?;
                self.remove_lookup_index(&old)?;
                self.search.remove(&old)?;
            }
            None => {}
            // An unreadable old copy is simply overwritten; its stale index entries point at an
            // id that now holds this record, and readers re-check what they load.
            Some(Err(StoreError::Corrupt(_))) => {}
            Some(Err(e)) => return Err(e),
        }
        self.bodies
            .insert(r.id.as_u128(), r.body.as_ref())
            .map_err(db)?;
        self.insert_state_index(r)?;
        self.insert_lookup_index(r)?;
        self.search.insert(r)?;
        // A dead-letter hook is never accepted at ingest, so it has no key a repeat could
        // match; its id-derived key would only crowd one shard of the table at restart.
        if r.hook_of.is_some() {
            return Ok(());
        }
        self.put_idempotency(r)
    }

    /// Replaces a stored record's meta (same id, body untouched), moving its state indexes.
    pub(super) fn replace_meta(
        &mut self,
        old: &NotificationRecord,
        new: &NotificationRecord,
    ) -> Result<(), StoreError> {
        self.remove_state_index(old)?;
        self.write_meta(new)?;
        self.search.moved(old, new)?;
        self.insert_state_index(new)
    }

    /// Holds `endpoint` since `since`, or (None) ends its hold.
    pub(super) fn set_hold(
        &mut self,
        endpoint: &str,
        since: Option<UnixMillis>,
    ) -> Result<(), StoreError> {
        let mut holds = self.txn.open_table(HOLDS).map_err(db)?;
        match since {
            Some(at) => holds.insert(endpoint, at.0).map_err(db)?,
            None => holds.remove(endpoint).map_err(db)?,
        };
        Ok(())
    }

    /// Appends an attempt log entry (keeping the last [`attempts::MAX_ENTRIES`]).
    pub(super) fn append_attempt(&mut self, e: &AttemptEntry) -> Result<(), StoreError> {
        attempts::append(&mut self.attempts, e, &mut self.scratch)
    }

    /// Removes a finished record with everything that points at it. `meta` is `None` when the
    /// record is already gone or unreadable; only the entries known from the key are removed then.
    pub(super) fn remove_finished(
        &mut self,
        finished_at: u64,
        id: u128,
        meta: Option<&NotificationRecord>,
    ) -> Result<(), StoreError> {
        match meta {
            Some(r) => {
                self.remove_lookup_index(r)?;
                self.search.remove(r)?;
            }
            None => self.search.remove_state_only(id)?,
        }
        attempts::remove_all(&mut self.attempts, id)?;
        self.notifications.remove(id).map_err(db)?;
        self.bodies.remove(id).map_err(db)?;
        self.finished.remove((finished_at, id)).map_err(db)?;
        self.dead_letters.remove((finished_at, id)).map_err(db)?;
        Ok(())
    }

    /// Up to `limit` (finished_at, id) keys with `finished_at < before`, oldest first.
    pub(super) fn finished_before(
        &self,
        before: UnixMillis,
        limit: usize,
    ) -> Result<Vec<(u64, u128)>, StoreError> {
        let mut out = Vec::new();
        for entry in self.finished.range(..(before.0, 0u128)).map_err(db)? {
            if out.len() == limit {
                break;
            }
            let (k, _) = entry.map_err(db)?;
            out.push(k.value());
        }
        Ok(out)
    }

    /// Up to `limit` (accepted_at, key) idempotency entries with `accepted_at < before`.
    pub(super) fn idempotency_before(
        &self,
        before: UnixMillis,
        limit: usize,
    ) -> Result<Vec<(u64, u128)>, StoreError> {
        let mut out = Vec::new();
        for entry in self
            .idempotency_log
            .range(..(before.0, 0u128))
            .map_err(db)?
        {
            if out.len() == limit {
                break;
            }
            let (k, _) = entry.map_err(db)?;
            out.push(k.value());
        }
        Ok(out)
    }

    pub(super) fn remove_idempotency(
        &mut self,
        accepted_at: u64,
        key: u128,
    ) -> Result<(), StoreError> {
        self.idempotency_log
            .remove((accepted_at, key))
            .map_err(db)?;
        Ok(())
    }

    fn write_meta(&mut self, r: &NotificationRecord) -> Result<(), StoreError> {
        self.scratch.clear();
        encode_meta(r, &mut self.scratch);
        self.notifications
            .insert(r.id.as_u128(), self.scratch.as_slice())
            .map_err(db)?;
        Ok(())
    }

    fn put_idempotency(&mut self, r: &NotificationRecord) -> Result<(), StoreError> {
        self.idempotency_log
            .insert(
                (r.accepted_at.0, r.idem_key),
                (r.fingerprint, r.id.as_u128()),
            )
            .map_err(db)?;
        Ok(())
    }

    fn insert_state_index(&mut self, r: &NotificationRecord) -> Result<(), StoreError> {
        let id = r.id.as_u128();
        match finished_key(r) {
            None => {
                self.pending.insert(id, ()).map_err(db)?;
            }
            Some(key) => {
                self.finished.insert(key, ()).map_err(db)?;
                if r.state.is_dead_letter() {
                    self.dead_letters.insert(key, ()).map_err(db)?;
                }
            }
        }
        Ok(())
    }

    fn remove_state_index(&mut self, r: &NotificationRecord) -> Result<(), StoreError> {
        let id = r.id.as_u128();
        match finished_key(r) {
            None => {
                self.pending.remove(id).map_err(db)?;
            }
            Some(key) => {
                self.finished.remove(key).map_err(db)?;
                self.dead_letters.remove(key).map_err(db)?;
            }
        }
        Ok(())
    }

    fn insert_lookup_index(&mut self, r: &NotificationRecord) -> Result<(), StoreError> {
        let id = r.id.as_u128();
        if let Some(p) = &r.payment_id {
            self.by_payment_id.insert(p.as_str(), id).map_err(db)?;
        }
        if let Some(p) = &r.payment_request_id {
            self.by_payment_request_id
                .insert(p.as_str(), id)
                .map_err(db)?;
        }
        Ok(())
    }

    fn remove_lookup_index(&mut self, r: &NotificationRecord) -> Result<(), StoreError> {
        let id = r.id.as_u128();
        if let Some(p) = &r.payment_id {
            self.by_payment_id.remove(p.as_str(), id).map_err(db)?;
        }
        if let Some(p) = &r.payment_request_id {
            self.by_payment_request_id
                .remove(p.as_str(), id)
                .map_err(db)?;
        }
        Ok(())
    }
}

/// The `finished`/`dead_letters` key of a finished record, `None` while it is pending.
/// `NotificationRecord::apply` guarantees finished records carry `finished_at`; the fallback
/// covers records written by other code paths.
fn finished_key(r: &NotificationRecord) -> Option<(u64, u128)> {
    r.state.is_finished().then(|| {
        let at = r.finished_at.unwrap_or(r.accepted_at);
        (at.0, r.id.as_u128())
    })
}

/// Every endpoint an operator holds, with when the hold began (none in a store that never
/// recorded one: the table is created by the first hold).
pub(super) fn read_holds(txn: &ReadTransaction) -> Result<Vec<(String, UnixMillis)>, StoreError> {
    let table = match txn.open_table(HOLDS) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(db(e)),
    };
    let mut holds = Vec::new();
    for entry in table.iter().map_err(db)? {
        let (k, v) = entry.map_err(db)?;
        holds.push((k.value().to_owned(), UnixMillis(v.value())));
    }
    Ok(holds)
}

/// Moves idempotency entries of the pre-log layout into `idempotency_log` and deletes the old
/// tables, inside the caller's transaction (so a crash midway leaves the old layout intact).
/// Returns how many entries moved; 0 when there was nothing to do.
pub(super) fn migrate(txn: &WriteTransaction) -> Result<u64, StoreError> {
    let exists = txn
        .list_tables()
        .map_err(db)?
        .any(|t| t.name() == OLD_IDEMPOTENCY.name());
    if !exists {
        return Ok(0);
    }
    let mut moved = 0;
    {
        let old = txn.open_table(OLD_IDEMPOTENCY).map_err(db)?;
        let mut log = txn.open_table(IDEMPOTENCY_LOG).map_err(db)?;
        for entry in old.range::<u128>(..).map_err(db)? {
            let (key, v) = entry.map_err(db)?;
            let (fingerprint, id, accepted_at) = v.value();
            log.insert((accepted_at, key.value()), (fingerprint, id))
                .map_err(db)?;
            moved += 1;
        }
    }
    txn.delete_table(OLD_IDEMPOTENCY).map_err(db)?;
    txn.delete_table(OLD_IDEMPOTENCY_BY_TIME).map_err(db)?;
    Ok(moved)
}

#[cfg(test)]
pub(super) fn write_old_idempotency(
    txn: &WriteTransaction,
    entries: &[(u128, u128, u128, u64)],
) -> Result<(), StoreError> {
    let mut old = txn.open_table(OLD_IDEMPOTENCY).map_err(db)?;
    let mut by_time = txn.open_table(OLD_IDEMPOTENCY_BY_TIME).map_err(db)?;
    for &(key, fingerprint, id, at) in entries {
        old.insert(key, (fingerprint, id, at)).map_err(db)?;
        by_time.insert((at, key), ()).map_err(db)?;
    }
    Ok(())
}
