//! The group-commit thread: the only writer of the redb file.
//!
//! Callers send [`Op`]s over a bounded crossbeam channel, each with a oneshot for its answer. The
//! thread blocks for the first op, then drains whatever else is already queued (up to
//! `max_batch_ops` ops or `max_batch_bytes` of payload), applies them all in one write
//! transaction with `Durability::Immediate`, commits (one fsync) and answers every op. Under load
//! the batch grows by itself: while one fsync runs, the next batch queues up.
//!
//! A failed commit answers *every* op of the batch with the error and leaves nothing of it
//! visible; the thread keeps serving. redb latches a real I/O failure ("previous I/O error") for
//! the life of the `Database` handle, so after one the thread reopens the file before the next
//! batch (redb repairs it on open); if that fails too, the batch gets the error and the reopen is
//! tried again with the next one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use notifyd_core::{NotificationId, UnixMillis};
use redb::{Durability, WriteTransaction};
use tokio::sync::oneshot;

use super::attempts::AttemptEntry;
use super::error::{StoreError, db};
use super::record::{AttemptUpdate, NotificationRecord, State};
use super::redb_store::{CommitObserver, DbSlot};
use super::tables::WriteTables;
use super::{Accepted, Applied, Lease, PruneStats, RedeliverOutcome};

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// One unit of work for the writer thread.
pub(super) enum Op {
    Accept(Vec<NotificationRecord>, Reply<Vec<Accepted>>),
    Update(Vec<AttemptUpdate>, Reply<Vec<Applied>>),
    /// Updates with their attempt log entries: one transaction, so the log never shows an
    /// attempt whose outcome was not recorded, nor misses one that was. With the dead-letter
    /// hooks of the updates that end a delivery `dead` or `failed`, stored in that same
    /// transaction so a crash cannot keep the outcome and lose its hook.
    UpdateLogged(
        Vec<AttemptUpdate>,
        Vec<AttemptEntry>,
        Vec<NotificationRecord>,
        Reply<Vec<Applied>>,
    ),
    Redeliver(NotificationId, UnixMillis, Reply<RedeliverOutcome>),
    Prune(UnixMillis, usize, Reply<PruneStats>),
    /// An operator's hold of an endpoint (true, since the time given) or its end.
    SetHold(String, bool, UnixMillis, Reply<()>),
    /// Finish what is queued before it, then exit.
    Shutdown,
}

impl Op {
    /// Roughly the bytes this op adds to a transaction, for the batch byte budget.
    fn cost(&self) -> usize {
        match self {
            Op::Accept(rs, _) => rs.iter().map(|r| r.body.len() + 256).sum(),
            Op::Update(us, _) => us.len() * 128,
            Op::UpdateLogged(us, log, hooks, _) => {
                us.len() * 128
                    + log
                        .iter()
                        .map(|e| e.response_body.len() + 64)
                        .sum::<usize>()
                    + hooks.iter().map(|h| h.body.len() + 256).sum::<usize>()
            }
            Op::Redeliver(..) | Op::Prune(..) | Op::SetHold(..) | Op::Shutdown => 128,
        }
    }
}

/// What an op produced inside the transaction, sent once the commit is known.
enum Outcome {
    Unit,
    Accept(Vec<Accepted>),
    Update(Vec<Applied>),
    Redeliver(Result<RedeliverOutcome, StoreError>),
    Prune(Result<PruneStats, StoreError>),
}

/// Counters for the writer, readable at any time (the daemon turns them into metrics).
#[derive(Debug, Default)]
pub struct StoreStats {
    /// Successful commits (fsyncs).
    pub commits: AtomicU64,
    /// Commits that failed; every op in them was answered with the error.
    pub failed_commits: AtomicU64,
    /// Ops in successful commits.
    pub ops: AtomicU64,
    /// Notifications accepted in successful commits.
    pub records: AtomicU64,
    /// Duration of the latest commit (apply + fsync), in microseconds.
    pub last_commit_micros: AtomicU64,
    /// Ops in the latest commit.
    pub last_batch_ops: AtomicU64,
}

/// One commit, as reported to the [`CommitObserver`] (e.g. for `notifyd_store_commit_seconds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitInfo {
    /// Ops in the batch.
    pub ops: usize,
    /// Time from the start of the transaction to the end of the commit.
    pub duration: Duration,
    /// Whether the commit succeeded.
    pub ok: bool,
}

pub(super) struct Writer {
    pub(super) rx: Receiver<Op>,
    pub(super) slot: Arc<DbSlot>,
    pub(super) stats: Arc<StoreStats>,
    pub(super) max_batch_ops: usize,
    pub(super) max_batch_bytes: usize,
    pub(super) fail_next_commits: Option<Arc<AtomicUsize>>,
    pub(super) slow_commits_ms: Option<Arc<AtomicU64>>,
    pub(super) observer: Option<CommitObserver>,
}

impl Writer {
    pub(super) fn run(self) {
        loop {
            // All senders gone means the store was dropped without a Shutdown: nothing to do.
            let Ok(first) = self.rx.recv() else { return };
            if matches!(first, Op::Shutdown) {
                return;
            }
            let mut bytes = first.cost();
            let mut batch = vec![first];
            let mut stop = false;
            while batch.len() < self.max_batch_ops && bytes < self.max_batch_bytes {
                match self.rx.try_recv() {
                    Ok(Op::Shutdown) => {
                        stop = true;
                        break;
                    }
                    Ok(op) => {
                        bytes += op.cost();
                        batch.push(op);
                    }
                    Err(_) => break,
                }
            }
            self.commit_batch(batch);
            if stop {
                return;
            }
        }
    }

    fn commit_batch(&self, batch: Vec<Op>) {
        let started = Instant::now();
        let result = self.apply_and_commit(&batch);
        let duration = started.elapsed();
        let ok = result.is_ok();
        if ok {
            let records: usize = batch
                .iter()
                .map(|op| match op {
                    Op::Accept(rs, _) => rs.len(),
                    _ => 0,
                })
                .sum();
            self.stats.commits.fetch_add(1, Ordering::Relaxed);
            self.stats
                .ops
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            self.stats
                .records
                .fetch_add(records as u64, Ordering::Relaxed);
        } else {
            self.stats.failed_commits.fetch_add(1, Ordering::Relaxed);
        }
        self.stats.last_commit_micros.store(
            u64::try_from(duration.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.stats
            .last_batch_ops
            .store(batch.len() as u64, Ordering::Relaxed);
        if let Some(observe) = &self.observer {
            observe(&CommitInfo {
                ops: batch.len(),
                duration,
                ok,
            });
        }
        match result {
            Ok(outcomes) => {
                for (op, outcome) in batch.into_iter().zip(outcomes) {
                    answer(op, Ok(outcome));
                }
            }
            Err(e) => {
                // Each caller logs what its op's failure meant (ingest's 503, an outcome written
                // again later), with this error; logging it here as well would say it twice.
                tracing::debug!(error = %e, ops = batch.len(), "Store commit failed.");
                for op in batch {
                    answer(op, Err(e.clone()));
                }
            }
        }
    }

    fn apply_and_commit(&self, batch: &[Op]) -> Result<Vec<Outcome>, StoreError> {
        let database = self.slot.writer_handle()?;
        let mut txn = database.begin_write().map_err(|e| self.io_failure(db(e)))?;
        txn.set_durability(Durability::Immediate).map_err(db)?;
        let outcomes = apply_all(&txn, batch).map_err(|e| self.io_failure(e))?;
        if let Some(ms) = &self.slow_commits_ms {
            std::thread::sleep(std::time::Duration::from_millis(ms.load(Ordering::Acquire)));
        }
        if self.take_injected_fault() {
            txn.abort().map_err(db)?;
            return Err(StoreError::io("injected commit failure"));
        }
        txn.commit().map_err(|e| self.io_failure(db(e)))?;
        Ok(outcomes)
    }

    /// Marks the database for reopening when an error means redb has latched an I/O failure.
    fn io_failure(&self, e: StoreError) -> StoreError {
        if matches!(e, StoreError::Io(_)) {
            self.slot.mark_broken();
        }
        e
    }

    fn take_injected_fault(&self) -> bool {
        self.fail_next_commits.as_ref().is_some_and(|n| {
            n.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| v.checked_sub(1))
                .is_ok()
        })
    }
}

/// Applies every op of a batch. An error here aborts the whole batch (the transaction is dropped
/// uncommitted); an op-level problem (e.g. a corrupt record to redeliver) is that op's outcome.
fn apply_all(txn: &WriteTransaction, batch: &[Op]) -> Result<Vec<Outcome>, StoreError> {
    let mut t = WriteTables::open(txn)?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for op in batch {
        let outcome = match op {
            Op::Accept(records, _) => {
                for r in records {
                    t.insert_new(r)?;
                }
                // This host's idempotency table judged every record before it came here.
                Outcome::Accept(vec![Accepted::Stored(Some(Lease::LOCAL)); records.len()])
            }
            Op::Update(updates, _) => {
                let mut applied = Vec::with_capacity(updates.len());
                for u in updates {
                    applied.push(apply_update(&mut t, u)?.0);
                }
                Outcome::Update(applied)
            }
            Op::UpdateLogged(updates, log, hooks, _) => {
                let mut applied = Vec::with_capacity(updates.len());
                let mut lost = Vec::new();
                for u in updates {
                    let (a, ended) = apply_update(&mut t, u)?;
                    if a == Applied::LeaseLost {
                        lost.push(u.id);
                    }
                    // Only the update that moves a delivery from pending to its dead end stores
                    // the hook: the same outcome written twice (a retried write) fires once.
                    if ended {
                        for h in hooks.iter().filter(|h| h.hook_of == Some(u.id)) {
                            t.insert_new(h)?;
                        }
                    }
                    applied.push(a);
                }
                // An attempt whose outcome was refused is the new owner's to log, not ours.
                for e in log.iter().filter(|e| !lost.contains(&e.id)) {
                    t.append_attempt(e)?;
                }
                Outcome::Update(applied)
            }
            Op::Redeliver(id, now, _) => {
                Outcome::Redeliver(op_level(redeliver(&mut t, *id, *now))?)
            }
            Op::Prune(before, limit, _) => Outcome::Prune(Ok(prune(&mut t, *before, *limit)?)),
            Op::SetHold(endpoint, held, at, _) => {
                t.set_hold(endpoint, held.then_some(*at))?;
                Outcome::Unit
            }
            Op::Shutdown => Outcome::Unit,
        };
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// Splits an op's error into "this op failed" (corrupt data, nothing written yet) and "the batch
/// failed" (anything from the engine).
fn op_level<T>(r: Result<T, StoreError>) -> Result<Result<T, StoreError>, StoreError> {
    match r {
        Err(e @ StoreError::Corrupt(_)) => Ok(Err(e)),
        Err(e) => Err(e),
        Ok(v) => Ok(Ok(v)),
    }
}

/// Applies one update; the flag says whether it ended a pending delivery `dead` or `failed`.
fn apply_update(t: &mut WriteTables<'_>, u: &AttemptUpdate) -> Result<(Applied, bool), StoreError> {
    // One host owns everything this store holds; a lease from anywhere else is not its.
    if u.lease != Lease::LOCAL {
        return Ok((Applied::LeaseLost, false));
    }
    let old = match t.load_meta(u.id) {
        Ok(Some(old)) => old,
        // Pruned or never stored: the update has nothing left to describe.
        Ok(None) => return Ok((Applied::Done, false)),
        Err(StoreError::Corrupt(msg)) => {
            tracing::warn!(id = %u.id, error = %msg, "Skipped the update of an unreadable record.");
            return Ok((Applied::Done, false));
        }
        Err(e) => return Err(e),
    };
    let mut new = old.clone();
    new.apply(u);
    t.replace_meta(&old, &new)?;
    let ended = old.state == State::Pending && new.state.is_dead_letter();
    Ok((Applied::Done, ended))
}

fn redeliver(
    t: &mut WriteTables<'_>,
    id: NotificationId,
    now: UnixMillis,
) -> Result<RedeliverOutcome, StoreError> {
    let Some(old) = t.load_meta(id)? else {
        return Ok(RedeliverOutcome::Unknown);
    };
    if !old.state.is_dead_letter() {
        return Ok(RedeliverOutcome::NotRedeliverable(old.state));
    }
    let mut new = old.clone();
    new.state = State::Pending;
    new.attempts = 0;
    new.next_attempt_at = Some(now);
    new.finished_at = None;
    new.delivery_started_at = Some(now);
    t.replace_meta(&old, &new)?;
    new.body = t.load_body(id)?;
    Ok(RedeliverOutcome::Started(Box::new(new)))
}

fn prune(
    t: &mut WriteTables<'_>,
    before: UnixMillis,
    limit: usize,
) -> Result<PruneStats, StoreError> {
    let mut stats = PruneStats::default();
    let finished = t.finished_before(before, limit)?;
    stats.more |= finished.len() == limit;
    for (at, id) in finished {
        // A corrupt record is still pruned; only its lookup-index entries cannot be found.
        let meta = t.load_meta(NotificationId::from_u128(id)).unwrap_or(None);
        t.remove_finished(at, id, meta.as_ref())?;
        stats.notifications += 1;
    }
    let keys = t.idempotency_before(before, limit)?;
    stats.more |= keys.len() == limit;
    for (at, key) in keys {
        t.remove_idempotency(at, key)?;
        stats.idempotency += 1;
    }
    Ok(stats)
}

fn answer(op: Op, outcome: Result<Outcome, StoreError>) {
    // A send fails only when the caller stopped waiting; the write stands regardless.
    match (op, outcome) {
        (Op::Accept(_, tx), Ok(Outcome::Accept(r))) => {
            let _ = tx.send(Ok(r));
        }
        (Op::Update(_, tx) | Op::UpdateLogged(_, _, _, tx), Ok(Outcome::Update(r))) => {
            let _ = tx.send(Ok(r));
        }
        (Op::Redeliver(_, _, tx), Ok(Outcome::Redeliver(r))) => {
            let _ = tx.send(r);
        }
        (Op::Prune(_, _, tx), Ok(Outcome::Prune(r))) => {
            let _ = tx.send(r);
        }
        (Op::Accept(_, tx), Err(e)) => {
            let _ = tx.send(Err(e));
        }
        (Op::Update(_, tx) | Op::UpdateLogged(_, _, _, tx), Err(e)) => {
            let _ = tx.send(Err(e));
        }
        (Op::Redeliver(_, _, tx), Err(e)) => {
            let _ = tx.send(Err(e));
        }
        (Op::Prune(_, _, tx), Err(e)) => {
            let _ = tx.send(Err(e));
        }
        (Op::SetHold(_, _, _, tx), outcome) => {
            let _ = tx.send(outcome.map(drop));
        }
        // Outcomes are built from the same op, so a mismatch cannot occur; the sender is
        // dropped, which the caller reads as `Closed`.
        (_, Ok(_)) | (Op::Shutdown, Err(_)) => {}
    }
}
