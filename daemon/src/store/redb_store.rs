//! [`RedbStore`]: the embedded [`Store`] on one redb file.
//!
//! Writes go to the group-commit thread (`commit.rs`). Reads open their own read transaction on
//! the calling thread: redb readers see the last committed snapshot and never wait for the writer.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::{Sender, TrySendError};
use notifyd_core::{NotificationId, UnixMillis};
use redb::{Database, ReadOnlyTable, ReadTransaction, ReadableDatabase};
use tokio::sync::oneshot;

use super::attempts::{ATTEMPTS, AttemptEntry};
use super::commit::{CommitInfo, Op, StoreStats, Writer};
use super::error::{StoreError, db};
use super::record::{AttemptUpdate, IdempotencyRecord, NotificationRecord, decode_meta};
use super::search::{SearchFilter, SearchPage};
use super::tables::{
    BODIES, BY_PAYMENT_ID, BY_PAYMENT_REQUEST_ID, DEAD_LETTERS, IDEMPOTENCY_LOG, NOTIFICATIONS,
    PENDING, WriteTables,
};
use super::{
    Accepted, Applied, KeyLookup, PruneStats, RedeliverOutcome, Store, StoreFuture, StoreMode,
};

/// The database file's name inside the store directory.
pub const FILE_NAME: &str = "notifyd.redb";

/// Called after every commit attempt, on the writer thread; keep it cheap (a histogram record).
pub type CommitObserver = Arc<dyn Fn(&CommitInfo) + Send + Sync>;

/// Tuning and test hooks for [`RedbStore::open`].
#[derive(Clone)]
pub struct StoreOptions {
    /// redb's page cache in bytes; `None` keeps redb's default.
    pub cache_size: Option<usize>,
    /// Ops that may wait for the writer; beyond it writes fail fast with [`StoreError::Full`]
    /// rather than block an async caller.
    pub queue_capacity: usize,
    /// Most ops in one commit.
    pub max_batch_ops: usize,
    /// Most payload bytes in one commit (approximate), so one fsync's latency stays bounded.
    pub max_batch_bytes: usize,
    /// Fault injection: while non-zero, each commit is aborted instead (and the count decreased),
    /// as a failed fsync would be. Tests use it; production leaves it `None`.
    pub fail_next_commits: Option<Arc<AtomicUsize>>,
    /// Fault injection: each commit waits this many milliseconds before its fsync, as a stalled
    /// disk would (0: no wait). Tests use it; production leaves it `None`.
    pub slow_commits_ms: Option<Arc<AtomicU64>>,
    /// Fault injection: [`Store::scan_pending`] waits this many milliseconds before handing over
    /// each chunk, as a slow disk would at recovery (0: no wait). Tests use it to reach the
    /// moment between listening and ready; production leaves it `None`.
    pub slow_scan_ms: Option<Arc<AtomicU64>>,
    /// Reports each commit's size and duration (for `notifyd_store_commit_seconds`).
    pub commit_observer: Option<CommitObserver>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            cache_size: None,
            queue_capacity: 65_536,
            max_batch_ops: 4096,
            max_batch_bytes: 16 << 20,
            fail_next_commits: None,
            slow_commits_ms: None,
            slow_scan_ms: None,
            commit_observer: None,
        }
    }
}

impl fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreOptions")
            .field("cache_size", &self.cache_size)
            .field("queue_capacity", &self.queue_capacity)
            .field("max_batch_ops", &self.max_batch_ops)
            .field("max_batch_bytes", &self.max_batch_bytes)
            .field("fail_next_commits", &self.fail_next_commits)
            .field("slow_commits_ms", &self.slow_commits_ms)
            .field("slow_scan_ms", &self.slow_scan_ms)
            .field("commit_observer", &self.commit_observer.is_some())
            .finish()
    }
}

/// The open database, replaceable so the writer can reopen it after redb latched an I/O error.
pub(super) struct DbSlot {
    path: PathBuf,
    cache_size: Option<usize>,
    current: RwLock<Option<Arc<Database>>>,
    broken: AtomicBool,
}

impl DbSlot {
    fn reader(&self) -> Result<Arc<Database>, StoreError> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        current
            .clone()
            .ok_or_else(|| StoreError::io("store is being reopened after an I/O error"))
    }

    /// The handle for the next write transaction, reopening the file first if it is broken.
    pub(super) fn writer_handle(&self) -> Result<Arc<Database>, StoreError> {
        if self.broken.load(Ordering::Acquire) {
            self.reopen()?;
        }
        self.reader()
    }

    pub(super) fn mark_broken(&self) {
        self.broken.store(true, Ordering::Release);
    }

    fn reopen(&self) -> Result<(), StoreError> {
        let old = self
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(old) = old {
            // redb locks the file per handle: the old one must be gone before the new open.
            // Readers hold their clone only for one read call.
            while Arc::strong_count(&old) > 1 {
                std::thread::sleep(Duration::from_millis(1));
            }
            drop(old);
        }
        let fresh = open_database(&self.path, self.cache_size)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(fresh));
        self.broken.store(false, Ordering::Release);
        tracing::warn!(path = %self.path.display(), "Store reopened after an I/O error.");
        Ok(())
    }
}

fn open_database(path: &Path, cache_size: Option<usize>) -> Result<Database, StoreError> {
    let mut builder = Database::builder();
    if let Some(bytes) = cache_size {
        builder.set_cache_size(bytes);
    }
    let database = builder.create(path).map_err(|e| match db(e) {
        StoreError::Backend(msg) => StoreError::Open(format!("{}: {msg}", path.display())),
        other => other,
    })?;
    let txn = database.begin_write().map_err(db)?;
    // Before anything is created or migrated: a refused store is left as it was.
    super::format::check_and_record(&txn, &path.display().to_string())?;
    // Create every table up front so readers never meet a missing one.
    drop(WriteTables::open(&txn)?);
    let moved = super::tables::migrate(&txn)?;
    let indexed = super::search::backfill(&txn)?;
    txn.commit().map_err(db)?;
    if indexed > 0 {
        tracing::info!(records = indexed, "Built the search indexes.");
    }
    if moved > 0 {
        tracing::info!(
            entries = moved,
            "Moved idempotency records to the time-ordered log."
        );
    }
    Ok(database)
}

/// The embedded store: `dir/notifyd.redb`, one writer thread, readers on any thread.
pub struct RedbStore {
    tx: Sender<Op>,
    slot: Arc<DbSlot>,
    stats: Arc<StoreStats>,
    writer: Mutex<Option<JoinHandle<()>>>,
    slow_scan_ms: Option<Arc<AtomicU64>>,
}

impl fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.slot.path)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl RedbStore {
    /// Opens (creating `dir` and the file if needed) and starts the writer thread. A file left by
    /// a crash is repaired by redb during the open.
    pub fn open(dir: &Path, opts: StoreOptions) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Open(format!("{}: {e}", dir.display())))?;
        let path = dir.join(FILE_NAME);
        let database = open_database(&path, opts.cache_size)?;
        let slot = Arc::new(DbSlot {
            path,
            cache_size: opts.cache_size,
            current: RwLock::new(Some(Arc::new(database))),
            broken: AtomicBool::new(false),
        });
        let stats = Arc::new(StoreStats::default());
        let (tx, rx) = crossbeam_channel::bounded(opts.queue_capacity.max(1));
        let writer = Writer {
            rx,
            slot: Arc::clone(&slot),
            stats: Arc::clone(&stats),
            max_batch_ops: opts.max_batch_ops.max(1),
            max_batch_bytes: opts.max_batch_bytes.max(1),
            fail_next_commits: opts.fail_next_commits,
            slow_commits_ms: opts.slow_commits_ms,
            observer: opts.commit_observer,
        };
        let slow_scan_ms = opts.slow_scan_ms;
        let handle = std::thread::Builder::new()
            .name("notifyd-store".into())
            .spawn(move || writer.run())
            .map_err(|e| StoreError::Open(format!("cannot start the store thread: {e}")))?;
        Ok(RedbStore {
            tx,
            slot,
            stats,
            writer: Mutex::new(Some(handle)),
            slow_scan_ms,
        })
    }

    /// Commit counters (commits, ops, latest batch size and duration).
    pub fn stats(&self) -> &Arc<StoreStats> {
        &self.stats
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.slot.path
    }

    /// The live database handle, for tests that plant bytes the store itself never writes.
    #[cfg(test)]
    pub(super) fn slot_for_tests(&self) -> Result<Arc<Database>, StoreError> {
        self.slot.reader()
    }

    fn submit<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Op,
    ) -> StoreFuture<T> {
        let (reply, rx) = oneshot::channel();
        match self.tx.try_send(make(reply)) {
            Ok(()) => StoreFuture::from_receiver(rx),
            Err(TrySendError::Full(_)) => StoreFuture::ready(Err(StoreError::Full)),
            Err(TrySendError::Disconnected(_)) => StoreFuture::ready(Err(StoreError::Closed)),
        }
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&ReadTables) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let database = self.slot.reader()?;
        let tables = ReadTables::open(&database)?;
        f(&tables)
    }
}

impl Drop for RedbStore {
    fn drop(&mut self) {
        // Queued writes are committed before the thread exits, so nothing acknowledged is lost
        // and the file is closed cleanly (no repair on the next open).
        let _ = self.tx.send(Op::Shutdown);
        let handle = self
            .writer
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

/// A read snapshot with the record tables open (the index tables are opened per query).
struct ReadTables {
    txn: ReadTransaction,
    notifications: ReadOnlyTable<u128, &'static [u8]>,
    bodies: ReadOnlyTable<u128, &'static [u8]>,
}

impl ReadTables {
    fn open(database: &Database) -> Result<Self, StoreError> {
        let txn = database.begin_read().map_err(db)?;
        let notifications = txn.open_table(NOTIFICATIONS).map_err(db)?;
        let bodies = txn.open_table(BODIES).map_err(db)?;
        Ok(ReadTables {
            txn,
            notifications,
            bodies,
        })
    }

    fn record(&self, id: u128) -> Result<Option<NotificationRecord>, StoreError> {
        let Some(meta) = self.notifications.get(id).map_err(db)? else {
            return Ok(None);
        };
        let body = self
            .bodies
            .get(id)
            .map_err(db)?
            .map_or_else(Bytes::new, |b| Bytes::copy_from_slice(b.value()));
        decode_meta(NotificationId::from_u128(id), meta.value(), body).map(Some)
    }

    /// Records for these ids, skipping ids whose record is gone (index entries are removed in
    /// the same transaction, so that only happens for records overwritten while corrupt).
    fn records(
        &self,
        ids: impl IntoIterator<Item = u128>,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        let mut out = Vec::new();
        for id in ids {
            if let Some(r) = self.record(id)? {
                out.push(r);
            }
        }
        Ok(out)
    }

    fn ids_for(
        &self,
        index: redb::MultimapTableDefinition<'_, &str, u128>,
        key: &str,
    ) -> Result<Vec<u128>, StoreError> {
        let table = self.txn.open_multimap_table(index).map_err(db)?;
        let mut ids = Vec::new();
        for id in table.get(key).map_err(db)? {
            ids.push(id.map_err(db)?.value());
        }
        Ok(ids)
    }
}

/// Ids are handed out strictly increasing in accept order (`IdGenerator`), so id order is accept
/// order, also within one millisecond and across a clock step back, where `accepted_at` is not.
fn in_accept_order(mut records: Vec<NotificationRecord>) -> Vec<NotificationRecord> {
    records.sort_by_key(|r| r.id);
    records
}

impl Store for RedbStore {
    fn mode(&self) -> StoreMode {
        StoreMode::Local
    }

    fn accept(&self, records: Vec<NotificationRecord>) -> StoreFuture<Vec<Accepted>> {
        if records.is_empty() {
            return StoreFuture::ready(Ok(Vec::new()));
        }
        self.submit(|reply| Op::Accept(records, reply))
    }

    fn update(&self, updates: Vec<AttemptUpdate>) -> StoreFuture<Vec<Applied>> {
        if updates.is_empty() {
            return StoreFuture::ready(Ok(Vec::new()));
        }
        self.submit(|reply| Op::Update(updates, reply))
    }

    fn redeliver(&self, id: NotificationId, now: UnixMillis) -> StoreFuture<RedeliverOutcome> {
        self.submit(|reply| Op::Redeliver(id, now, reply))
    }

    fn prune(&self, older_than: UnixMillis, limit: usize) -> StoreFuture<PruneStats> {
        self.submit(|reply| Op::Prune(older_than, limit.max(1), reply))
    }

    fn set_hold(&self, endpoint: &str, held: bool, now: UnixMillis) -> StoreFuture<()> {
        let endpoint = endpoint.to_owned();
        self.submit(|reply| Op::SetHold(endpoint, held, now, reply))
    }

    fn holds(&self) -> StoreFuture<Vec<String>> {
        StoreFuture::ready(self.read(|t| {
            let holds = super::tables::read_holds(&t.txn)?;
            Ok(holds.into_iter().map(|(endpoint, _)| endpoint).collect())
        }))
    }

    fn get(&self, id: NotificationId) -> Result<Option<NotificationRecord>, StoreError> {
        self.read(|t| t.record(id.as_u128()))
    }

    fn dead_letters(&self, limit: usize) -> Result<Vec<NotificationRecord>, StoreError> {
        self.read(|t| {
            let index = t.txn.open_table(DEAD_LETTERS).map_err(db)?;
            let mut ids = Vec::with_capacity(limit.min(1024));
            for entry in index.range::<(u64, u128)>(..).map_err(db)?.rev() {
                if ids.len() == limit {
                    break;
                }
                ids.push(entry.map_err(db)?.0.value().1);
            }
            t.records(ids)
        })
    }

    fn find_by_payment_id(&self, payment_id: &str) -> Result<Vec<NotificationRecord>, StoreError> {
        self.read(|t| {
            let ids = t.ids_for(BY_PAYMENT_ID, payment_id)?;
            t.records(ids).map(in_accept_order)
        })
    }

    fn find_by_payment_request_id(
        &self,
        partner_id: Option<&str>,
        payment_request_id: &str,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        self.read(|t| {
            let ids = t.ids_for(BY_PAYMENT_REQUEST_ID, payment_request_id)?;
            let mut records = t.records(ids)?;
            if let Some(partner) = partner_id {
                records.retain(|r| r.partner_id.as_deref() == Some(partner));
            }
            Ok(in_accept_order(records))
        })
    }

    fn find_idempotency(
        &self,
        key: u128,
        by: KeyLookup<'_>,
        since: UnixMillis,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.read(|t| {
            let ids = match by {
                KeyLookup::PaymentRequestId(v) => t.ids_for(BY_PAYMENT_REQUEST_ID, v)?,
                KeyLookup::PaymentId(v) => t.ids_for(BY_PAYMENT_ID, v)?,
            };
            let mut first: Option<IdempotencyRecord> = None;
            // Metadata only: bodies are not needed to judge a repeat.
            for id in ids {
                let Some(meta) = t.notifications.get(id).map_err(db)? else {
                    continue;
                };
                let r = decode_meta(NotificationId::from_u128(id), meta.value(), Bytes::new())?;
                if r.idem_key == key
                    && r.accepted_at >= since
                    && first.as_ref().is_none_or(|f| r.id < f.id)
                {
                    first = Some(IdempotencyRecord {
                        key,
                        fingerprint: r.fingerprint,
                        id: r.id,
                        accepted_at: r.accepted_at,
                    });
                }
            }
            Ok(first)
        })
    }

    fn scan_pending(
        &self,
        chunk: usize,
        sink: &mut dyn FnMut(Vec<NotificationRecord>),
    ) -> Result<usize, StoreError> {
        let chunk = chunk.max(1);
        let slow = self.slow_scan_ms.clone();
        let sink = &mut |records: Vec<NotificationRecord>| {
            if let Some(ms) = &slow {
                std::thread::sleep(Duration::from_millis(ms.load(Ordering::Acquire)));
            }
            sink(records);
        };
        // A merge join over tables sorted by id: one sequential pass over each instead of two
        // B-tree lookups per pending record (recovery of 1 M pending was point-lookup bound).
        // Pending records are the recent ones, so the passes start at the oldest pending id.
        self.read(|t| {
            let index = t.txn.open_table(PENDING).map_err(db)?;
            let mut ids = Vec::new();
            for entry in index.range::<u128>(..).map_err(db)? {
                ids.push(entry.map_err(db)?.0.value());
            }
            let Some(&first) = ids.first() else {
                return Ok(0);
            };
            let mut metas = t.notifications.range(first..).map_err(db)?;
            let mut bodies = t.bodies.range(first..).map_err(db)?;
            // The body read past the id being looked for, kept for the ids after it.
            let mut ahead: Option<(u128, Bytes)> = None;
            let mut read = 0;
            let mut out = Vec::with_capacity(chunk.min(ids.len()));
            for id in ids {
                // Records of finished notifications between pending ones are skipped.
                let meta = loop {
                    match metas.next().transpose().map_err(db)? {
                        Some((k, v)) if k.value() == id => break Some(v),
                        Some((k, _)) if k.value() < id => continue,
                        _ => break None,
                    }
                };
                let Some(meta) = meta else {
                    // An index entry without a record (only for a record overwritten while
                    // corrupt): skip it and resume the pass just after it.
                    metas = t.notifications.range(id.saturating_add(1)..).map_err(db)?;
                    continue;
                };
                let mut body = Bytes::new();
                loop {
                    let (k, v) = match ahead.take() {
                        Some(kv) => kv,
                        None => match bodies.next().transpose().map_err(db)? {
                            // Bodies of finished notifications are passed over uncopied.
                            Some((k, _)) if k.value() < id => continue,
                            Some((k, v)) => (k.value(), Bytes::copy_from_slice(v.value())),
                            None => break,
                        },
                    };
                    if k == id {
                        body = v;
                        break;
                    }
                    if k > id {
                        ahead = Some((k, v));
                        break;
                    }
                }
                out.push(decode_meta(
                    NotificationId::from_u128(id),
                    meta.value(),
                    body,
                )?);
                read += 1;
                if out.len() == chunk {
                    sink(std::mem::replace(&mut out, Vec::with_capacity(chunk)));
                }
            }
            if !out.is_empty() {
                sink(out);
            }
            Ok(read)
        })
    }

    fn load_idempotency(&self, since: UnixMillis) -> Result<Vec<IdempotencyRecord>, StoreError> {
        // One sequential pass from `since`: the log is already in the oldest-first order the
        // in-memory table's eviction expects.
        self.read(|t| {
            let log = t.txn.open_table(IDEMPOTENCY_LOG).map_err(db)?;
            let mut out = Vec::new();
            for entry in log.range((since.0, 0u128)..).map_err(db)? {
                let (k, v) = entry.map_err(db)?;
                let (accepted_at, key) = k.value();
                let (fingerprint, id) = v.value();
                out.push(IdempotencyRecord {
                    key,
                    fingerprint,
                    id: NotificationId::from_u128(id),
                    accepted_at: UnixMillis(accepted_at),
                });
            }
            Ok(out)
        })
    }

    fn update_logged(
        &self,
        updates: Vec<AttemptUpdate>,
        log: Vec<AttemptEntry>,
    ) -> StoreFuture<Vec<Applied>> {
        self.update_with_hooks(updates, log, Vec::new())
    }

    fn update_with_hooks(
        &self,
        updates: Vec<AttemptUpdate>,
        log: Vec<AttemptEntry>,
        hooks: Vec<NotificationRecord>,
    ) -> StoreFuture<Vec<Applied>> {
        if updates.is_empty() && log.is_empty() {
            return StoreFuture::ready(Ok(Vec::new()));
        }
        self.submit(|reply| Op::UpdateLogged(updates, log, hooks, reply))
    }

    fn attempt_log(&self, id: NotificationId) -> Result<Vec<AttemptEntry>, StoreError> {
        self.read(|t| {
            let table = t.txn.open_table(ATTEMPTS).map_err(db)?;
            super::attempts::read(&table, id)
        })
    }

    fn search(&self, filter: &SearchFilter) -> Result<SearchPage, StoreError> {
        self.read(|t| super::search::run(&t.txn, filter))
    }
}
