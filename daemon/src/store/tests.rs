//! Behaviour of [`RedbStore`] through the [`Store`] trait: durability across reopen, index
//! upkeep, group commit, and failed commits.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use bytes::Bytes;
use notifyd_core::{Api, NotificationId, UnixMillis};
use redb::TableHandle;

use super::*;

/// The store tests' notification ids: time-ordered by `n`.
pub(super) fn id(n: u64) -> NotificationId {
    NotificationId::new(UnixMillis(1_000 + n), u128::from(n))
}

/// The store tests' pending record; the other store tests vary it by struct update, so a new
/// record field is one line here.
pub(super) fn record(n: u64, payment_id: &str) -> NotificationRecord {
    NotificationRecord {
        id: id(n),
        api: Api::NotifyPayment,
        profile: "default".into(),
        url: "https://merchant.example.com/notify".into(),
        body: Bytes::from(format!("{{\"paymentId\":\"{payment_id}\",\"n\":\"{n}\"}}")),
        idem_key: 0xABC0_0000 + u128::from(n),
        fingerprint: u128::from(n) * 31,
        order_key: format!("merchant.example.com|{payment_id}"),
        payment_id: Some(payment_id.into()),
        payment_request_id: Some(format!("req-{payment_id}")),
        partner_id: Some("P0001".into()),
        state: State::Pending,
        attempts: 0,
        last_result: None,
        accepted_at: UnixMillis(1_000 + n),
        next_attempt_at: Some(UnixMillis(1_000 + n)),
        finished_at: None,
        delivery_started_at: Some(UnixMillis(1_000 + n)),
        receiver_ids: Default::default(),
        hook_of: None,
    }
}

fn finish(n: u64, state: State, at: u64) -> AttemptUpdate {
    AttemptUpdate {
        lease: crate::store::Lease::LOCAL,
        id: id(n),
        state,
        attempts: 3,
        last_result: Some(format!("{} after 3", state.as_str())),
        next_attempt_at: None,
        finished_at: Some(UnixMillis(at)),
        receiver_ids: None,
    }
}

fn open(dir: &Path) -> RedbStore {
    RedbStore::open(dir, StoreOptions::default()).expect("store opens")
}

fn ids(records: &[NotificationRecord]) -> Vec<NotificationId> {
    records.iter().map(|r| r.id).collect()
}

#[tokio::test]
async fn accepted_records_survive_reopen_with_progress_and_idempotency() {
    let dir = tempfile::tempdir().unwrap();
    let a = record(1, "p1");
    let mut b = record(2, "p2");
    b.payment_request_id = None;
    b.partner_id = None;
    b.api = Api::NotifyVoid;
    {
        let store = open(dir.path());
        store.accept(vec![a.clone(), b.clone()]).await.unwrap();
        assert_eq!(store.get(a.id).unwrap().as_ref(), Some(&a));
        store
            .update(vec![AttemptUpdate {
                lease: crate::store::Lease::LOCAL,
                id: b.id,
                state: State::Pending,
                attempts: 2,
                last_result: Some("U SYSTEM_ERROR".into()),
                next_attempt_at: Some(UnixMillis(99_000)),
                finished_at: None,
                receiver_ids: None,
            }])
            .await
            .unwrap();
    }
    let store = open(dir.path());
    assert_eq!(store.get(a.id).unwrap(), Some(a.clone()));
    assert_eq!(store.get(id(77)).unwrap(), None);
    let pending = store.load_pending().unwrap();
    assert_eq!(ids(&pending), vec![a.id, b.id]);
    let b2 = &pending[1];
    assert_eq!(b2.attempts, 2);
    assert_eq!(b2.next_attempt_at, Some(UnixMillis(99_000)));
    assert_eq!(b2.last_result.as_deref(), Some("U SYSTEM_ERROR"));
    assert_eq!(b2.body, b.body);
    let idem = store.load_idempotency(UnixMillis(0)).unwrap();
    assert_eq!(idem, vec![a.idempotency(), b.idempotency()]);
    assert_eq!(
        store.load_idempotency(UnixMillis(1_002)).unwrap(),
        vec![b.idempotency()]
    );
}

#[tokio::test]
async fn updates_move_records_between_pending_and_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let records: Vec<_> = (1..=4).map(|n| record(n, &format!("p{n}"))).collect();
    store.accept(records).await.unwrap();
    store
        .update(vec![
            finish(1, State::Delivered, 5_000),
            finish(2, State::Dead, 6_000),
            finish(3, State::Failed, 7_000),
            // Unknown ids are ignored, not an error.
            finish(50, State::Dead, 7_000),
        ])
        .await
        .unwrap();
    assert_eq!(ids(&store.load_pending().unwrap()), vec![id(4)]);
    let dead = store.dead_letters(10).unwrap();
    assert_eq!(ids(&dead), vec![id(3), id(2)], "newest first");
    assert_eq!(dead[0].state, State::Failed);
    assert_eq!(dead[0].finished_at, Some(UnixMillis(7_000)));
    assert_eq!(ids(&store.dead_letters(1).unwrap()), vec![id(3)]);
    let delivered = store.get(id(1)).unwrap().unwrap();
    assert_eq!(delivered.state, State::Delivered);
    assert_eq!(delivered.attempts, 3);

    // A second finish of the same record must not leave its old dead-letter key behind.
    store
        .update(vec![finish(2, State::Dead, 8_000)])
        .await
        .unwrap();
    assert_eq!(ids(&store.dead_letters(10).unwrap()), vec![id(2), id(3)]);
}

#[tokio::test]
async fn redeliver_restarts_only_dead_or_failed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .accept(vec![record(1, "p1"), record(2, "p2"), record(3, "p3")])
        .await
        .unwrap();
    store
        .update(vec![
            finish(1, State::Dead, 5_000),
            finish(2, State::Delivered, 5_000),
        ])
        .await
        .unwrap();

    let now = UnixMillis(9_000);
    let RedeliverOutcome::Started(r) = store.redeliver(id(1), now).await.unwrap() else {
        panic!("dead notification must be redeliverable");
    };
    assert_eq!((r.state, r.attempts), (State::Pending, 0));
    assert_eq!((r.next_attempt_at, r.finished_at), (Some(now), None));
    assert_eq!(
        r.delivery_started_at,
        Some(now),
        "a redelivery starts a new delivery: its deadline counts from now"
    );
    assert_eq!(r.body, record(1, "p1").body);
    assert_eq!(store.get(id(1)).unwrap(), Some(*r));
    assert!(store.dead_letters(10).unwrap().is_empty());
    assert_eq!(ids(&store.load_pending().unwrap()), vec![id(1), id(3)]);

    assert_eq!(
        store.redeliver(id(2), now).await.unwrap(),
        RedeliverOutcome::NotRedeliverable(State::Delivered)
    );
    assert_eq!(
        store.redeliver(id(3), now).await.unwrap(),
        RedeliverOutcome::NotRedeliverable(State::Pending)
    );
    assert_eq!(
        store.redeliver(id(40), now).await.unwrap(),
        RedeliverOutcome::Unknown
    );
}

#[tokio::test]
async fn payment_lookups_return_every_notification_in_accept_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let pay = record(1, "pay-1");
    let mut void = record(3, "pay-1");
    void.api = Api::NotifyVoid;
    void.payment_request_id = None;
    let other_partner = {
        let mut r = record(2, "pay-2");
        r.payment_request_id = Some("req-pay-1".into());
        r.partner_id = Some("P0002".into());
        r
    };
    // Accepted out of order across two commits: results must still come back by accept time.
    store.accept(vec![void.clone()]).await.unwrap();
    store
        .accept(vec![pay.clone(), other_partner.clone()])
        .await
        .unwrap();

    assert_eq!(
        ids(&store.find_by_payment_id("pay-1").unwrap()),
        vec![pay.id, void.id]
    );
    assert!(store.find_by_payment_id("nope").unwrap().is_empty());
    assert_eq!(
        ids(&store
            .find_by_payment_request_id(Some("P0001"), "req-pay-1")
            .unwrap()),
        vec![pay.id]
    );
    assert_eq!(
        ids(&store.find_by_payment_request_id(None, "req-pay-1").unwrap()),
        vec![pay.id, other_partner.id]
    );
}

#[tokio::test]
async fn prune_removes_only_old_finished_records_and_old_idempotency() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // Accepted at 1_001..=1_004.
    let records: Vec<_> = (1..=4).map(|n| record(n, &format!("p{n}"))).collect();
    let mut late = record(9, "p9");
    late.accepted_at = UnixMillis(50_000);
    store.accept(records).await.unwrap();
    store.accept(vec![late.clone()]).await.unwrap();
    store
        .update(vec![
            finish(1, State::Delivered, 10_000), // old: pruned
            finish(2, State::Dead, 19_999),      // old: pruned
            finish(3, State::Failed, 20_000),    // at the cutoff: kept
        ])
        .await
        .unwrap();
    // 4 stays pending although accepted long ago: live work is never pruned.

    let stats = store.prune(UnixMillis(20_000), 100).await.unwrap();
    assert_eq!(
        stats,
        PruneStats {
            notifications: 2,
            idempotency: 4,
            more: false
        }
    );
    assert_eq!(store.get(id(1)).unwrap(), None);
    assert_eq!(store.get(id(2)).unwrap(), None);
    assert!(store.find_by_payment_id("p1").unwrap().is_empty());
    assert!(
        store
            .find_by_payment_request_id(None, "req-p2")
            .unwrap()
            .is_empty()
    );
    assert_eq!(ids(&store.dead_letters(10).unwrap()), vec![id(3)]);
    assert_eq!(ids(&store.load_pending().unwrap()), vec![id(4), id(9)]);
    assert_eq!(
        store.load_idempotency(UnixMillis(0)).unwrap(),
        vec![late.idempotency()]
    );

    let stats = store.prune(UnixMillis(60_000), 1).await.unwrap();
    assert_eq!((stats.notifications, stats.idempotency), (1, 1));
    assert!(stats.more, "a full page reports that more may remain");
    assert_eq!(store.get(id(3)).unwrap(), None);
}

#[test]
fn group_commit_shares_one_commit_among_queued_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::new(true);
    let store = RedbStore::open(
        dir.path(),
        StoreOptions {
            commit_observer: Some(gate.observer()),
            ..StoreOptions::default()
        },
    )
    .unwrap();
    // Hold the writer inside its first commit so the next ops pile up deterministically.
    let first = store.accept(vec![record(0, "p0")]);
    gate.wait_entered();
    let queued: Vec<_> = (1..=200)
        .map(|n| store.accept(vec![record(n, &format!("p{n}"))]))
        .collect();
    gate.release();
    first.wait().unwrap();
    for f in queued {
        f.wait().unwrap();
    }
    let stats = store.stats();
    assert_eq!(stats.ops.load(Ordering::Relaxed), 201);
    assert_eq!(stats.commits.load(Ordering::Relaxed), 2);
    assert_eq!(stats.last_batch_ops.load(Ordering::Relaxed), 200);
    assert_eq!(store.load_pending().unwrap().len(), 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_tokio_accepts_are_batched() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    let barrier = Arc::new(tokio::sync::Barrier::new(200));
    let tasks: Vec<_> = (0..200)
        .map(|n| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                store.accept(vec![record(n, &format!("p{n}"))]).await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let commits = store.stats().commits.load(Ordering::Relaxed);
    let ops = store.stats().ops.load(Ordering::Relaxed);
    assert_eq!(ops, 200);
    assert!(commits < ops, "{commits} commits for {ops} ops");
    assert_eq!(store.load_pending().unwrap().len(), 200);
}

#[test]
fn failed_commit_fails_every_op_of_its_batch_and_the_next_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let fail = Arc::new(AtomicUsize::new(0));
    let gate = Gate::new(false);
    {
        let store = RedbStore::open(
            dir.path(),
            StoreOptions {
                fail_next_commits: Some(Arc::clone(&fail)),
                commit_observer: Some(gate.observer()),
                ..StoreOptions::default()
            },
        )
        .unwrap();
        store.accept(vec![record(0, "p0")]).wait().unwrap();
        // Hold the writer inside the next commit so the ops below share the one after it.
        gate.arm();
        let holder = store.update(vec![finish(0, State::Delivered, 2_000)]);
        gate.wait_entered();
        let batch: Vec<_> = (1..=5)
            .map(|n| store.accept(vec![record(n, "same-payment"), record(n + 100, "x")]))
            .collect();
        let redeliver = store.redeliver(id(0), UnixMillis(3_000));
        fail.store(1, Ordering::SeqCst);
        gate.release();
        holder.wait().unwrap();
        for f in batch {
            assert!(matches!(f.wait(), Err(StoreError::Io(_))));
        }
        assert!(matches!(redeliver.wait(), Err(StoreError::Io(_))));
        assert_eq!(store.stats().failed_commits.load(Ordering::Relaxed), 1);
        for n in [1, 5, 101] {
            assert_eq!(store.get(id(n)).unwrap(), None);
        }
        assert!(store.find_by_payment_id("same-payment").unwrap().is_empty());
        // The writer carries on.
        store.accept(vec![record(7, "p7")]).wait().unwrap();
        assert_eq!(store.get(id(0)).unwrap().unwrap().state, State::Delivered);
    }
    let store = open(dir.path());
    assert_eq!(ids(&store.load_pending().unwrap()), vec![id(7)]);
    assert_eq!(store.get(id(3)).unwrap(), None);
    let keys: Vec<_> = store
        .load_idempotency(UnixMillis(0))
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(keys, vec![id(0), id(7)]);
}

#[tokio::test]
async fn corrupt_record_is_reported_not_panicked_and_spares_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .accept(vec![record(1, "p1"), record(2, "p2")])
        .await
        .unwrap();
    store
        .update(vec![finish(1, State::Dead, 5_000)])
        .await
        .unwrap();
    {
        let database = store.slot_for_tests().unwrap();
        let txn = redb::Database::begin_write(&database).unwrap();
        txn.open_table(tables::NOTIFICATIONS)
            .unwrap()
            .insert(id(1).as_u128(), [1u8, 1, 9].as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    assert!(matches!(store.get(id(1)), Err(StoreError::Corrupt(_))));
    // The bad record's own op fails; the other op in the same transaction still commits.
    let redeliver = store.redeliver(id(1), UnixMillis(9_000));
    let update = store.update(vec![finish(2, State::Delivered, 6_000)]);
    assert!(matches!(redeliver.await, Err(StoreError::Corrupt(_))));
    update.await.unwrap();
    assert_eq!(store.get(id(2)).unwrap().unwrap().state, State::Delivered);
    // Pruning still clears the unreadable record.
    let stats = store.prune(UnixMillis(10_000), 10).await.unwrap();
    assert_eq!(stats.notifications, 2);
    assert_eq!(store.get(id(1)).unwrap(), None);
}

#[test]
fn disk_full_fails_the_commit_and_the_store_recovers_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let Some(_mount) = Tmpfs::mount(dir.path(), "2m") else {
        return;
    };
    // Take most of the space so the store runs out quickly, and give it back later.
    let filler = dir.path().join("filler");
    std::fs::write(&filler, vec![0u8; 1 << 20]).unwrap();
    let store = open(&dir.path().join("data"));
    let mut acked = Vec::new();
    let mut failed = None;
    for n in 0..200 {
        let mut r = record(n, &format!("p{n}"));
        r.body = Bytes::from(vec![b'x'; 16 * 1024]);
        match store.accept(vec![r]).wait() {
            Ok(_) => acked.push(id(n)),
            Err(e) => {
                assert!(matches!(e, StoreError::Io(_)), "{e}");
                failed = Some(n);
                break;
            }
        }
    }
    let failed = failed.expect("a 2 MiB tmpfs must fill up");
    assert!(!acked.is_empty());
    std::fs::remove_file(&filler).unwrap();
    // The first commit after the failure reopens the file (redb latched the I/O error).
    store.accept(vec![record(500, "p500")]).wait().unwrap();
    drop(store);
    let store = open(&dir.path().join("data"));
    for i in &acked {
        assert!(store.get(*i).unwrap().is_some(), "acknowledged {i:?} lost");
    }
    assert_eq!(store.get(id(failed)).unwrap(), None);
    assert!(store.get(id(500)).unwrap().is_some());
}

/// Holds the writer thread inside a commit (via the commit observer) until released.
struct Gate {
    armed: Arc<std::sync::atomic::AtomicBool>,
    entered_rx: mpsc::Receiver<()>,
    entered_tx: mpsc::SyncSender<()>,
    release_tx: mpsc::SyncSender<()>,
    release_rx: Arc<std::sync::Mutex<mpsc::Receiver<()>>>,
}

impl Gate {
    fn new(armed: bool) -> Self {
        let (entered_tx, entered_rx) = mpsc::sync_channel(16);
        let (release_tx, release_rx) = mpsc::sync_channel(16);
        Gate {
            armed: Arc::new(std::sync::atomic::AtomicBool::new(armed)),
            entered_rx,
            entered_tx,
            release_tx,
            release_rx: Arc::new(std::sync::Mutex::new(release_rx)),
        }
    }

    /// Holds the next commit; the gate disarms after holding one.
    fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    fn observer(&self) -> CommitObserver {
        let armed = Arc::clone(&self.armed);
        let entered = self.entered_tx.clone();
        let release = Arc::clone(&self.release_rx);
        Arc::new(move |_info: &CommitInfo| {
            if armed.swap(false, Ordering::SeqCst) {
                entered.send(()).unwrap();
                release.lock().unwrap().recv().unwrap();
            }
        })
    }

    fn wait_entered(&self) {
        self.entered_rx.recv().unwrap();
    }

    fn release(&self) {
        self.release_tx.send(()).unwrap();
    }
}

/// A size-limited tmpfs mounted over a test directory, unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs(dir.to_owned())),
            Ok(o) => {
                eprintln!(
                    "skipping: cannot mount a tmpfs ({})",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipping: cannot run mount ({e})");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[tokio::test]
async fn recovery_reads_pending_records_among_finished_ones_with_their_own_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .accept((0..40).map(|n| record(n, &format!("pay-{n}"))).collect())
        .await
        .unwrap();
    // Finish every third one, and the first and last, so the merge join must skip records and
    // bodies at the start, in the middle and at the end.
    let finished: Vec<u64> = (0..40)
        .filter(|n| n % 3 == 0 || *n == 1 || *n == 39)
        .collect();
    store
        .update(
            finished
                .iter()
                .map(|n| finish(*n, State::Delivered, 5_000))
                .collect(),
        )
        .await
        .unwrap();
    drop(store);
    let store = open(dir.path());
    let pending = store.load_pending().unwrap();
    let expected: Vec<u64> = (0..40).filter(|n| !finished.contains(n)).collect();
    assert_eq!(
        ids(&pending),
        expected.iter().map(|n| id(*n)).collect::<Vec<_>>()
    );
    for (r, n) in pending.iter().zip(&expected) {
        assert_eq!(
            r.body,
            record(*n, &format!("pay-{n}")).body,
            "record {n} carries its own body"
        );
        assert_eq!(r.state, State::Pending);
    }
    let idem = store.load_idempotency(UnixMillis(0)).unwrap();
    assert_eq!(idem.len(), 40);
    assert!(
        idem.windows(2)
            .all(|w| w[0].accepted_at <= w[1].accepted_at),
        "oldest first"
    );
    assert!(
        store
            .load_idempotency(UnixMillis(1_020))
            .unwrap()
            .iter()
            .all(|r| r.accepted_at.0 >= 1_020)
    );
}

#[test]
fn pending_records_are_scanned_in_chunks_in_accept_order_skipping_finished_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .accept((1..=10).map(|n| record(n, &format!("p{n}"))).collect())
        .wait()
        .unwrap();
    store
        .update(vec![
            finish(2, State::Delivered, 5_000),
            finish(7, State::Dead, 5_000),
        ])
        .wait()
        .unwrap();
    let mut chunks = Vec::new();
    let read = store
        .scan_pending(3, &mut |chunk| chunks.push(ids(&chunk)))
        .unwrap();
    assert_eq!(read, 8);
    assert_eq!(
        chunks,
        vec![
            vec![id(1), id(3), id(4)],
            vec![id(5), id(6), id(8)],
            vec![id(9), id(10)],
        ]
    );
    let bodies: Vec<_> = store
        .load_pending()
        .unwrap()
        .into_iter()
        .map(|r| r.body)
        .collect();
    assert_eq!(
        bodies[1],
        record(3, "p3").body,
        "each record comes with its own body"
    );
}

#[test]
fn idempotency_records_of_the_old_layout_move_to_the_log_at_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let database = redb::Database::create(dir.path().join("notifyd.redb")).unwrap();
        let txn = database.begin_write().unwrap();
        // (key, fingerprint, id, accepted_at), deliberately not in time order by key.
        super::tables::write_old_idempotency(
            &txn,
            &[
                (9, 90, 900, 3_000),
                (1, 10, 100, 1_000),
                (5, 50, 500, 2_000),
            ],
        )
        .unwrap();
        txn.commit().unwrap();
    }
    let store = open(dir.path());
    let got: Vec<_> = store
        .load_idempotency(UnixMillis(1_500))
        .unwrap()
        .into_iter()
        .map(|r| (r.key, r.fingerprint, r.id.as_u128(), r.accepted_at.0))
        .collect();
    assert_eq!(got, vec![(5, 50, 500, 2_000), (9, 90, 900, 3_000)]);
    drop(store);
    // Moved once: the old tables are gone, and a second open finds the same entries.
    let database = redb::Database::create(dir.path().join("notifyd.redb")).unwrap();
    let names: Vec<String> = {
        let txn = database.begin_write().unwrap();
        let names = txn
            .list_tables()
            .unwrap()
            .map(|t| t.name().to_owned())
            .collect();
        txn.abort().unwrap();
        names
    };
    drop(database);
    assert!(
        !names
            .iter()
            .any(|n| n == "idempotency" || n == "idempotency_by_time"),
        "{names:?}"
    );
    let store = open(dir.path());
    assert_eq!(store.load_idempotency(UnixMillis(0)).unwrap().len(), 3);
}

#[tokio::test]
async fn the_embedded_store_owns_what_it_holds_and_refuses_a_foreign_lease() {
    use crate::store::{Accepted, Applied, Lease, StoreMode};
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert_eq!(store.mode(), StoreMode::Local);
    let answers = store
        .accept(vec![record(1, "p1"), record(2, "p2")])
        .await
        .unwrap();
    assert_eq!(answers, vec![Accepted::Stored(Some(Lease::LOCAL)); 2]);
    assert!(
        store.claim(10).await.unwrap().is_empty(),
        "nothing to claim"
    );
    let mut stale = finish(1, State::Delivered, 5_000);
    stale.lease = Lease { owner: 3, token: 9 };
    let applied = store
        .update(vec![stale, finish(2, State::Delivered, 5_000)])
        .await
        .unwrap();
    assert_eq!(applied, vec![Applied::LeaseLost, Applied::Done]);
    assert_eq!(
        store.get(id(1)).unwrap().unwrap().state,
        State::Pending,
        "a refused write changes nothing"
    );
    assert_eq!(store.get(id(2)).unwrap().unwrap().state, State::Delivered);
}

#[tokio::test]
async fn a_record_accepted_again_under_its_id_replaces_the_old_one_with_every_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.accept(vec![record(1, "p1")]).await.unwrap();
    let mut again = record(1, "p9");
    again.partner_id = Some("P0009".into());
    again.state = State::Dead;
    again.next_attempt_at = None;
    again.finished_at = Some(UnixMillis(9_000));
    store.accept(vec![again.clone()]).await.unwrap();

    assert_eq!(
        store.get(id(1)).unwrap().unwrap().payment_id,
        again.payment_id
    );
    assert!(
        store.find_by_payment_id("p1").unwrap().is_empty(),
        "old lookup entry left"
    );
    assert_eq!(ids(&store.find_by_payment_id("p9").unwrap()), vec![id(1)]);
    assert!(
        store.load_pending().unwrap().is_empty(),
        "old pending entry left"
    );
    assert_eq!(ids(&store.dead_letters(10).unwrap()), vec![id(1)]);
    let by_partner = |p: &str| {
        store
            .search(&SearchFilter {
                partner_id: Some(p.into()),
                limit: 10,
                ..SearchFilter::default()
            })
            .unwrap()
            .records
    };
    assert!(by_partner("P0001").is_empty(), "old search entry left");
    assert_eq!(ids(&by_partner("P0009")), vec![id(1)]);
    let by_state = |s: State| {
        store
            .search(&SearchFilter {
                state: Some(s),
                limit: 10,
                ..SearchFilter::default()
            })
            .unwrap()
            .records
    };
    assert!(by_state(State::Pending).is_empty());
    assert_eq!(ids(&by_state(State::Dead)), vec![id(1)]);
}

/// Writes the `format` record of the store in `dir` as another release would have.
fn stamp_format(dir: &std::path::Path, version: u32, min_reader: u32) {
    let database = redb::Database::create(dir.join("notifyd.redb")).unwrap();
    let txn = database.begin_write().unwrap();
    super::format::write(&txn, version, min_reader);
    txn.commit().unwrap();
}

#[tokio::test]
async fn a_store_laid_out_by_a_newer_release_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.accept(vec![record(1, "p1")]).await.unwrap();
    drop(store);
    let newer = super::format::VERSION + 1;
    stamp_format(dir.path(), newer, newer);
    let err = RedbStore::open(dir.path(), StoreOptions::default()).expect_err("refused");
    let says = err.to_string();
    assert!(
        says.contains("newer notifyd") && says.contains(&format!("format {newer}")),
        "{says}"
    );
    let err = crate::store::inspect(dir.path(), None).expect_err("inspect refuses too");
    assert!(err.to_string().contains("newer notifyd"), "{err}");
    // A newer release that says this one may still read its store: opened, numbers kept.
    stamp_format(dir.path(), newer, super::format::VERSION);
    let store = open(dir.path());
    assert_eq!(store.get(id(1)).unwrap().unwrap().state, State::Pending);
    drop(store);
    let database = redb::Database::create(dir.path().join("notifyd.redb")).unwrap();
    let txn = database.begin_write().unwrap();
    assert_eq!(
        super::format::read(&txn),
        (Some(newer), Some(super::format::VERSION)),
        "the newer release's numbers stay: this one does not claim the store back"
    );
}
