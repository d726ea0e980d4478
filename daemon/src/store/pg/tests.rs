//! The PostgreSQL store against a real server (a private cluster per test binary, a database per
//! test). Skipped when PostgreSQL is not installed, failed instead under `NOTIFYD_CI`.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use notifyd_core::UnixMillis;

use super::PgStore;
use crate::config::PostgresConfig;
use crate::store::{Accepted, Applied, AttemptUpdate, Lease, NotificationRecord, State, Store};
use crate::test_pg::Cluster;

/// The cluster the running tests share. A static would never be dropped, leaving the server
/// running after the test binary exits: the last test holding it stops it instead.
fn cluster() -> Option<Arc<Cluster>> {
    static SLOT: Mutex<Weak<Cluster>> = Mutex::new(Weak::new());
    let mut slot = SLOT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(running) = slot.upgrade() {
        return Some(running);
    }
    match Cluster::start() {
        Ok(c) => {
            let c = Arc::new(c);
            *slot = Arc::downgrade(&c);
            Some(c)
        }
        Err(reason) => {
            assert!(
                std::env::var_os("NOTIFYD_CI").is_none(),
                "PostgreSQL is missing under CI: {reason}"
            );
            eprintln!("SKIPPED: {reason}");
            None
        }
    }
}

/// A fresh database, and the cluster to keep alive while it is used; `None` when the test
/// must skip.
pub(super) fn database(name: &str) -> Option<(Arc<Cluster>, String)> {
    let cluster = cluster()?;
    let url = cluster.database(name).expect("createdb");
    Some((cluster, url))
}

pub(super) fn config(url: &str, lease: Duration) -> PostgresConfig {
    PostgresConfig {
        url: url.to_owned(),
        lease,
        pool_size: 4,
    }
}

pub(super) fn open(url: &str, lease: Duration) -> PgStore {
    PgStore::open(&config(url, lease), "test").expect("the store opens")
}

/// Runs one SQL query on its own connection and answers the first column of every row, as text.
pub(super) fn sql(url: &str, query: &str) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(conn);
        client
            .simple_query(query)
            .await
            .expect(query)
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => {
                    Some(r.get(0).unwrap_or("").to_owned())
                }
                _ => None,
            })
            .collect()
    })
}

pub(super) use crate::store::tests::id;

/// The embedded store tests' record, with no delivery start (as a fresh accept has none).
pub(super) fn record(n: u64, payment_id: &str) -> NotificationRecord {
    NotificationRecord {
        delivery_started_at: None,
        ..crate::store::tests::record(n, payment_id)
    }
}

pub(super) fn outcome(n: u64, lease: Lease, state: State) -> AttemptUpdate {
    AttemptUpdate {
        receiver_ids: None,
        id: id(n),
        lease,
        state,
        attempts: 1,
        last_result: Some(format!("{} once", state.as_str())),
        next_attempt_at: (state == State::Pending).then_some(UnixMillis(2_000)),
        finished_at: state.is_finished().then_some(UnixMillis(5_000)),
    }
}

pub(super) fn stored_lease(answer: Accepted) -> Lease {
    match answer {
        Accepted::Stored(Some(lease)) => lease,
        other => panic!("expected a stored, self-claimed notification, got {other:?}"),
    }
}

pub(super) const LONG: Duration = Duration::from_secs(60);

/// `nd_schema`'s versions once this release migrated: one row per migration, 1 to the newest.
pub(super) fn every_version() -> Vec<String> {
    (1..=super::SCHEMA_VERSION).map(|v| v.to_string()).collect()
}

#[test]
fn three_hosts_migrate_an_empty_database_at_once_into_one_schema() {
    let Some((_cluster, url)) = database("migrate_race") else {
        return;
    };
    let barrier = Arc::new(std::sync::Barrier::new(3));
    let hosts: Vec<_> = (0..3)
        .map(|_| {
            let (url, barrier) = (url.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                PgStore::open(&config(&url, LONG), "racer").map(|s| s.host())
            })
        })
        .collect();
    let mut ids: Vec<u32> = hosts
        .into_iter()
        .map(|h| h.join().unwrap().expect("every host opens"))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 3, "each host has its own number");
    assert_eq!(
        sql(&url, "SELECT version FROM nd_schema ORDER BY version"),
        every_version()
    );
    // Opening again is a no-op.
    drop(open(&url, LONG));
    assert_eq!(
        sql(&url, "SELECT count(*) FROM nd_schema"),
        [super::SCHEMA_VERSION.to_string()]
    );
}

#[test]
fn a_newer_schema_that_declares_this_release_compatible_opens_for_a_rolling_upgrade() {
    let Some((_cluster, url)) = database("schema_compatible") else {
        return;
    };
    drop(open(&url, LONG));
    // What this release's own newest migration says of the one before it.
    assert_eq!(
        sql(
            &url,
            "SELECT min_compatible FROM nd_schema ORDER BY version DESC LIMIT 1"
        ),
        ["3"],
        "v3 hosts may keep running on v4"
    );
    let next = super::SCHEMA_VERSION + 1;
    sql(
        &url,
        &format!(
            "INSERT INTO nd_schema (version, min_compatible) VALUES ({next}, {})",
            super::SCHEMA_VERSION
        ),
    );
    let store = open(&url, LONG);
    store.accept(vec![record(1, "p1")]).wait().unwrap();
}

#[test]
fn a_schema_newer_than_this_release_understands_is_refused() {
    let Some((_cluster, url)) = database("schema_newer") else {
        return;
    };
    drop(open(&url, LONG));
    // The very next version: the refusal holds from one past this release's.
    let next = super::SCHEMA_VERSION + 1;
    sql(
        &url,
        &format!("INSERT INTO nd_schema (version, min_compatible) VALUES ({next}, {next})"),
    );
    let err = PgStore::open(&config(&url, LONG), "old").expect_err("a newer schema is refused");
    let says = err.to_string();
    assert!(says.contains(&format!("version {next}")), "{says}");
    assert!(
        says.contains(&format!("up to {}", super::SCHEMA_VERSION)),
        "{says}"
    );
}

#[test]
fn accepts_store_once_per_key_and_answer_duplicate_or_inconsistent() {
    let Some((_cluster, url)) = database("accept_dup") else {
        return;
    };
    let store = open(&url, LONG);
    let answers = store
        .accept(vec![record(1, "p1"), record(2, "p2")])
        .wait()
        .unwrap();
    assert_eq!(answers.len(), 2);
    for a in answers {
        let lease = stored_lease(a);
        assert_eq!(lease.owner, store.host());
    }
    // Same key and fingerprint, new id: duplicate of the first. Same key, other fields: inconsistent.
    let mut again = record(1, "p1");
    again.id = id(11);
    let mut changed = record(2, "p2");
    changed.id = id(12);
    changed.fingerprint = 7;
    // Within one batch too: the second of two new records under one key is a duplicate.
    let fresh = record(3, "p3");
    let mut twin = record(3, "p3");
    twin.id = id(13);
    let answers = store
        .accept(vec![again, changed, fresh, twin])
        .wait()
        .unwrap();
    assert_eq!(answers[0], Accepted::Duplicate(id(1)));
    assert_eq!(answers[1], Accepted::Inconsistent(id(2)));
    assert!(matches!(answers[2], Accepted::Stored(Some(_))));
    assert_eq!(answers[3], Accepted::Duplicate(id(3)));
    assert_eq!(sql(&url, "SELECT count(*) FROM nd_notification"), ["3"]);

    let got = store.get(id(1)).unwrap().expect("stored");
    assert_eq!(got, record(1, "p1"));
    assert_eq!(store.get(id(11)).unwrap(), None);
    let by_payment = store.find_by_payment_id("p2").unwrap();
    assert_eq!(by_payment.len(), 1);
    let by_request = store
        .find_by_payment_request_id(Some("P0001"), "req-p3")
        .unwrap();
    assert_eq!(by_request[0].id, id(3));
    assert!(
        store
            .find_by_payment_request_id(Some("other"), "req-p3")
            .unwrap()
            .is_empty()
    );
    let idem = store
        .find_idempotency(
            record(1, "p1").idem_key,
            crate::store::KeyLookup::PaymentId("p1"),
            UnixMillis(0),
        )
        .unwrap()
        .expect("the key is known");
    assert_eq!(
        (idem.id, idem.fingerprint),
        (id(1), record(1, "p1").fingerprint)
    );
}

#[test]
fn two_hosts_accepting_one_key_at_once_store_it_once_with_one_id() {
    let Some((_cluster, url)) = database("accept_race") else {
        return;
    };
    let a = Arc::new(open(&url, LONG));
    let b = Arc::new(open(&url, LONG));
    let n = 200u64;
    let send = |store: Arc<PgStore>, offset: u64| {
        std::thread::spawn(move || {
            let records: Vec<_> = (0..n)
                .map(|i| {
                    let mut r = record(i, &format!("pay{i}"));
                    r.id = id(offset + i);
                    r
                })
                .collect();
            store.accept(records).wait().unwrap()
        })
    };
    let (ta, tb) = (send(a.clone(), 0), send(b.clone(), 10_000));
    let (ra, rb) = (ta.join().unwrap(), tb.join().unwrap());
    for i in 0..n as usize {
        let winner = |answer: Accepted, own: u64| match answer {
            Accepted::Stored(_) => id(own),
            Accepted::Duplicate(other) => other,
            Accepted::Inconsistent(_) => panic!("same fields, judged inconsistent"),
        };
        let i64_ = i as u64;
        assert_eq!(winner(ra[i], i64_), winner(rb[i], 10_000 + i64_), "key {i}");
    }
    assert_eq!(
        sql(&url, "SELECT count(*) FROM nd_notification"),
        [n.to_string()]
    );
}

#[test]
fn an_outcome_is_refused_once_another_host_took_the_lease_over() {
    let Some((_cluster, url)) = database("fence") else {
        return;
    };
    let short = Duration::from_millis(300);
    let a = open(&url, short);
    let b = open(&url, short);
    let lease_a = stored_lease(a.accept(vec![record(1, "p1")]).wait().unwrap()[0]);
    assert!(b.claim(10).wait().unwrap().is_empty(), "held by a");
    std::thread::sleep(Duration::from_millis(500));
    let claimed = b.claim(10).wait().unwrap();
    assert_eq!(claimed.len(), 1, "a's lease ran out");
    let (rec, lease_b) = claimed.into_iter().next().unwrap();
    assert_eq!(rec.id, id(1));
    assert_eq!(lease_b.owner, b.host());
    assert_ne!(lease_b.token, lease_a.token);

    assert_eq!(a.renew(vec![(id(1), lease_a)]).wait().unwrap(), [id(1)]);
    let stale = a
        .update(vec![outcome(1, lease_a, State::Delivered)])
        .wait()
        .unwrap();
    assert_eq!(stale, [Applied::LeaseLost]);
    assert_eq!(a.get(id(1)).unwrap().unwrap().state, State::Pending);
    let current = b
        .update(vec![outcome(1, lease_b, State::Delivered)])
        .wait()
        .unwrap();
    assert_eq!(current, [Applied::Done]);
    let done = a.get(id(1)).unwrap().unwrap();
    assert_eq!(
        (done.state, done.finished_at),
        (State::Delivered, Some(UnixMillis(5_000)))
    );
    assert_eq!(
        sql(&url, "SELECT count(*) FROM nd_queue"),
        ["0"],
        "finished rows leave the hot table"
    );
}

#[test]
fn a_nul_in_a_field_or_an_answer_fails_neither_its_batch_nor_itself() {
    // PostgreSQL's text refuses NUL; unhandled, one such value failed every accept or outcome
    // of its batch, and the outcomes' notifications were sent again after their leases.
    let Some((_cluster, url)) = database("nul") else {
        return;
    };
    let store = open(&url, LONG);
    let accepted = store
        .accept(vec![record(1, "p1"), record(2, "p2\0x")])
        .wait()
        .unwrap();
    let leases: Vec<Lease> = accepted.into_iter().map(stored_lease).collect();
    let mut answer = outcome(1, leases[0], State::Failed);
    answer.last_result = Some("F PROCESS_FAIL: bad\0byte".into());
    let applied = store
        .update(vec![answer, outcome(2, leases[1], State::Delivered)])
        .wait()
        .unwrap();
    assert_eq!(applied, [Applied::Done, Applied::Done]);
    let one = store.get(id(1)).unwrap().unwrap();
    assert_eq!(one.state, State::Failed);
    assert_eq!(
        one.last_result.as_deref(),
        Some("F PROCESS_FAIL: bad\u{FFFD}byte")
    );
    let two = store.get(id(2)).unwrap().unwrap();
    assert_eq!(two.state, State::Delivered);
    assert_eq!(two.payment_id.as_deref(), Some("p2\u{FFFD}x"));
}

#[test]
fn a_finished_outcome_written_again_after_its_answer_was_lost_is_done_not_a_lost_lease() {
    // The retry after a COMMIT whose answer never came (connection dropped, server restarted)
    // finds its row gone from the queue: that is this outcome, stored, not another host's.
    let Some((_cluster, url)) = database("landed") else {
        return;
    };
    let store = open(&url, LONG);
    let lease = stored_lease(store.accept(vec![record(1, "p1")]).wait().unwrap()[0]);
    let update = outcome(1, lease, State::Delivered);
    assert_eq!(
        store.update(vec![update.clone()]).wait().unwrap(),
        [Applied::Done]
    );
    assert_eq!(store.update(vec![update]).wait().unwrap(), [Applied::Done]);
    let mut other = outcome(1, lease, State::Delivered);
    other.attempts = 2;
    assert_eq!(
        store.update(vec![other]).wait().unwrap(),
        [Applied::LeaseLost],
        "an outcome the store does not hold is still refused"
    );
}

#[test]
fn the_same_outcome_stored_by_the_host_that_took_the_claim_over_is_a_lost_lease_here() {
    // Host a is stopped mid-attempt past its lease; b claims and delivers at its first attempt.
    // a's answer (also S at its first attempt) finds an outcome alike in every column it
    // writes: it is b's, so a's lease was lost, and a must not count a delivery of its own.
    let Some((_cluster, url)) = database("landed_other") else {
        return;
    };
    let (a, b) = (open(&url, LONG), open(&url, LONG));
    let lease = stored_lease(a.accept(vec![record(1, "p1")]).wait().unwrap()[0]);
    sql(&url, "UPDATE nd_queue SET due_at = 0");
    let taken = b.claim(10).wait().unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(
        b.update(vec![outcome(1, taken[0].1, State::Delivered)])
            .wait()
            .unwrap(),
        [Applied::Done]
    );
    assert_eq!(
        a.update(vec![outcome(1, lease, State::Delivered)])
            .wait()
            .unwrap(),
        [Applied::LeaseLost]
    );
    // b's own repeat (its COMMIT answer lost) is still done.
    assert_eq!(
        b.update(vec![outcome(1, taken[0].1, State::Delivered)])
            .wait()
            .unwrap(),
        [Applied::Done]
    );
}

#[test]
fn a_late_write_of_the_claim_before_a_redelivery_is_refused_by_the_claim_after_it() {
    // The host's dead-letter write is retried after its COMMIT answer was lost; meanwhile the
    // operator redelivered it and the same host claimed it again. Were the token counted
    // afresh, the stale write would pass the new claim's fence and end it unattempted.
    let Some((_cluster, url)) = database("redeliver_token") else {
        return;
    };
    let store = open(&url, LONG);
    let first = stored_lease(store.accept(vec![record(1, "p1")]).wait().unwrap()[0]);
    let dead = outcome(1, first, State::Dead);
    assert_eq!(
        store.update(vec![dead.clone()]).wait().unwrap(),
        [Applied::Done]
    );
    assert!(matches!(
        store.redeliver(id(1), UnixMillis(9_000)).wait().unwrap(),
        crate::store::RedeliverOutcome::Started(_)
    ));
    let again = store.claim(10).wait().unwrap();
    assert_eq!(again.len(), 1);
    assert_ne!(again[0].1, first, "a new claim, not the one that ended it");
    assert_eq!(
        store.update(vec![dead]).wait().unwrap(),
        [Applied::LeaseLost]
    );
    assert_eq!(store.get(id(1)).unwrap().unwrap().state, State::Pending);
}

#[test]
fn only_the_head_of_a_payment_is_claimable_and_leases_renew_and_release() {
    let Some((_cluster, url)) = database("order") else {
        return;
    };
    let a = open(&url, LONG);
    let b = open(&url, LONG);
    let answers = a
        .accept(vec![record(1, "p"), record(2, "p"), record(3, "q")])
        .wait()
        .unwrap();
    let first = stored_lease(answers[0]);
    assert_eq!(
        answers[1],
        Accepted::Stored(None),
        "behind notification 1 of its payment"
    );
    let third = stored_lease(answers[2]);
    assert!(b.claim(10).wait().unwrap().is_empty());

    // A retry keeps the lease; renewal keeps it; release hands it to whoever claims.
    let retried = a
        .update(vec![outcome(3, third, State::Pending)])
        .wait()
        .unwrap();
    assert_eq!(retried, [Applied::Done]);
    assert!(a.renew(vec![(id(3), third)]).wait().unwrap().is_empty());
    a.release(vec![(id(3), third)]).wait().unwrap();
    let taken = b.claim(10).wait().unwrap();
    assert_eq!(taken.iter().map(|(r, _)| r.id).collect::<Vec<_>>(), [id(3)]);
    assert_eq!(taken[0].0.attempts, 1, "the retry was recorded");

    // A later accept of the same payment waits behind its pending rows too.
    let later = a.accept(vec![record(4, "p")]).wait().unwrap();
    assert_eq!(
        later,
        [Accepted::Stored(None)],
        "behind 1 and 2, accepted earlier"
    );

    // Notification 2 becomes claimable only once 1 is final.
    assert_eq!(
        a.update(vec![outcome(1, first, State::Failed)])
            .wait()
            .unwrap(),
        [Applied::Done]
    );
    let next = b.claim(10).wait().unwrap();
    assert_eq!(next.iter().map(|(r, _)| r.id).collect::<Vec<_>>(), [id(2)]);
}

#[test]
fn dead_letters_redeliver_and_prune_removes_only_finished_notifications() {
    let Some((_cluster, url)) = database("redeliver") else {
        return;
    };
    let store = open(&url, LONG);
    let answers = store
        .accept(vec![record(1, "p1"), record(2, "p2")])
        .wait()
        .unwrap();
    let lease = stored_lease(answers[0]);
    store
        .update(vec![outcome(1, lease, State::Dead)])
        .wait()
        .unwrap();
    let dead = store.dead_letters(10).unwrap();
    assert_eq!(dead.iter().map(|r| r.id).collect::<Vec<_>>(), [id(1)]);

    match store.redeliver(id(1), UnixMillis(9_000)).wait().unwrap() {
        crate::store::RedeliverOutcome::Started(r) => {
            assert_eq!((r.state, r.attempts), (State::Pending, 0));
        }
        other => panic!("expected a redelivery, got {other:?}"),
    }
    assert!(store.dead_letters(10).unwrap().is_empty());
    assert_eq!(
        store.redeliver(id(2), UnixMillis(9_000)).wait().unwrap(),
        crate::store::RedeliverOutcome::NotRedeliverable(State::Pending)
    );
    let claimed = store.claim(10).wait().unwrap();
    assert_eq!(
        claimed.iter().map(|(r, _)| r.id).collect::<Vec<_>>(),
        [id(1)]
    );
    let lease = claimed[0].1;
    store
        .update(vec![outcome(1, lease, State::Delivered)])
        .wait()
        .unwrap();

    // Notification 1 finished at 5000; 2 is pending and stays whatever its age.
    let stats = store.prune(UnixMillis(6_000), 10).wait().unwrap();
    assert_eq!(stats.notifications, 1);
    assert_eq!(stats.idempotency, 2, "keys accepted before 6000");
    assert_eq!(store.get(id(1)).unwrap(), None);
    assert_eq!(store.get(id(2)).unwrap().unwrap().state, State::Pending);
    let none = store.prune(UnixMillis(6_000), 10).wait().unwrap();
    assert_eq!((none.notifications, none.more), (0, false));
}

/// Store-level figures on a durable (fsync on) cluster: accepts from 8 concurrent callers in
/// batches of 50 (group-committed into shared transactions), then claims of 500 and their
/// finishing outcomes. Not an end-to-end delivery figure. Run with `--ignored --nocapture`.
#[test]
#[ignore = "a measurement, minutes on a shared machine"]
fn store_throughput() {
    let Ok(cluster) = Cluster::start_with(true) else {
        eprintln!("SKIPPED: no PostgreSQL");
        return;
    };
    let url = cluster.database("throughput").expect("createdb");
    let store = Arc::new(open(&url, LONG));
    let (callers, batches, per) = (8u64, 50u64, 50u64);
    let started = std::time::Instant::now();
    let threads: Vec<_> = (0..callers)
        .map(|c| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                for b in 0..batches {
                    let records: Vec<_> = (0..per)
                        .map(|i| {
                            let n = 1 + (c * batches + b) * per + i;
                            let mut r = record(n, &format!("pay{n}"));
                            // Due later: the claim phase below takes them, not the self-claim.
                            r.next_attempt_at = Some(UnixMillis(u64::MAX / 4));
                            r
                        })
                        .collect();
                    let t = std::time::Instant::now();
                    store.accept(records).wait().unwrap();
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let accepted = callers * batches * per;
    let took = started.elapsed();
    latencies.sort();
    let p = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize];
    eprintln!(
        "accept: {accepted} in {took:?} = {:.0}/s; per 50-record call p50 {:?} p99 {:?}",
        accepted as f64 / took.as_secs_f64(),
        p(0.5),
        p(0.99)
    );
    sql(&url, "UPDATE nd_queue SET due_at = 0");
    let started = std::time::Instant::now();
    let mut finished = 0u64;
    loop {
        let claimed = store.claim(500).wait().unwrap();
        if claimed.is_empty() {
            break;
        }
        let updates: Vec<_> = claimed
            .iter()
            .map(|(r, lease)| AttemptUpdate {
                receiver_ids: None,
                id: r.id,
                lease: *lease,
                state: State::Delivered,
                attempts: 1,
                last_result: Some("S SUCCESS".into()),
                next_attempt_at: None,
                finished_at: Some(UnixMillis(5_000)),
            })
            .collect();
        let applied = store.update(updates).wait().unwrap();
        assert!(applied.iter().all(|a| *a == Applied::Done));
        finished += applied.len() as u64;
    }
    let took = started.elapsed();
    assert_eq!(finished, accepted);
    eprintln!(
        "claim 500 + finish: {finished} in {took:?} = {:.0}/s",
        finished as f64 / took.as_secs_f64()
    );
}
