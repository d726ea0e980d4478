//! Failures of several notifyd hosts on one PostgreSQL database (CONTRACT.md §7, issue 15):
//! real `notifyd` processes on a private PostgreSQL, delivering to one loopback receiver that
//! records every delivery, which host sent it (each signs with its own `client_id`) and when.
//!
//! - kill -9 of one host at a time under load: nothing accepted is lost, and a notification
//!   reaches the receiver twice only if the copy before was sent by a host killed right after;
//! - a host stopped (SIGSTOP) past its lease: its late writes are refused, it starts nothing
//!   after it resumes, another host delivers, nothing is recorded twice;
//! - PostgreSQL stopped (fast and immediate) under load: ingest answers only U while it is down,
//!   and every S survives and is delivered after;
//! - the same notifications sent to two hosts at once: stored once, one id in both answers;
//! - payment/void pairs spread over hosts, receiver answering U at random: no void first;
//! - three hosts starting at once on an empty database: one schema, all ready.

mod pg_fleet;
mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use notifyd_daemon::mock_merchant::{Outcome, Respond};
use pg_fleet::{Fleet, HostConfig, Load, accepted, cluster};
use rand::Rng;
use support::process::{call, client};
use support::{payment, void};

/// Short attempts, so the shortest lease check-config allows (attempt timeout + 10s) is short.
const QUICK: HostConfig = HostConfig {
    lease: "11s",
    retry: r#"kind = "schedule"
schedule = ["0s", "100ms", "200ms", "300ms", "500ms", "500ms", "1s", "1s", "1s", "2s", "2s", "5s", "5s", "5s", "5s"]
jitter = 0.0
attempt_timeout = "500ms""#,
    concurrency: 16,
};

/// How long after its arrival a copy sent just before a kill may still be read by the receiver
/// (the request was in the socket when the sender died).
const IN_TRANSIT: Duration = Duration::from_millis(200);

async fn kill_cycles(hosts: usize, kills: usize) {
    let Some(mut fleet) = Fleet::running(hosts, "S", QUICK).await else {
        return;
    };
    let ingest = fleet.slots.iter().map(|s| s.ingest).collect();
    let load = Load::start(ingest, &fleet.target, "K", 4);
    let mut killed: Vec<(String, Instant)> = Vec::new();
    for k in 0..kills {
        let wait = rand::rng().random_range(400..1000);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let slot = &mut fleet.slots[k % hosts];
        slot.kill9();
        // Taken once the process is reaped: everything it sent left before this instant.
        killed.push((slot.name.clone(), Instant::now()));
        slot.start().await;
    }
    let answers = load.stop().await;
    let accepted = accepted(&answers);
    let got = fleet.all_delivered(&accepted).await;
    let submitted: HashSet<&str> = answers.iter().map(|a| a.payment.as_str()).collect();
    let mut repeats = 0;
    for (pay, copies) in &got {
        assert!(
            submitted.contains(pay.as_str()),
            "{pay} was never submitted"
        );
        for pair in copies.windows(2) {
            let (first, next) = (&pair[0], &pair[1]);
            repeats += 1;
            // The receiver answers S every time, so a copy is followed by another only when
            // its sender died before recording that S: killed after sending it, and before
            // the next copy (which another lease made).
            let excused = killed.iter().any(|(host, at)| {
                *host == first.host && *at + IN_TRANSIT > first.at && *at < next.at
            });
            assert!(
                excused,
                "{pay} delivered twice and {} was not killed in between: {copies:?}, kills {killed:?}",
                first.host
            );
        }
    }
    eprintln!(
        "{hosts} hosts: kills={} submitted={} accepted(S)={} delivered={} lost=0 repeats={repeats}",
        killed.len(),
        submitted.len(),
        accepted.len(),
        got.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_of_one_of_two_hosts_at_a_time_loses_nothing_and_repeats_only_in_flight() {
    kill_cycles(2, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_of_one_of_three_hosts_at_a_time_loses_nothing_and_repeats_only_in_flight() {
    kill_cycles(3, 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_stopped_past_its_lease_writes_nothing_and_starts_nothing_late() {
    let Some(cluster) = cluster() else {
        return;
    };
    // One attempt at a time per host, each answered after 1.5s: when host 0 is stopped right
    // after its first request arrives, that attempt is in flight and the rest wait behind it,
    // leased to host 0.
    let mut fleet = Fleet::new(
        cluster,
        2,
        "SLOW:1500ms",
        HostConfig {
            lease: "14s",
            retry: r#"kind = "schedule"
schedule = ["0s", "100ms", "200ms", "500ms", "1s", "2s", "5s"]
jitter = 0.0
attempt_timeout = "3s""#,
            concurrency: 1,
        },
    )
    .await;
    fleet.slots[0].start().await;
    let mut ids = Vec::new();
    for i in 0..8 {
        let env = payment(&fleet.target, &format!("STOP-{i}"));
        ids.push(fleet.submit(0, &env).await);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while fleet.receiver.count() == 0 {
        assert!(Instant::now() < deadline, "host 0 never attempted");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    fleet.slots[0].signal("-STOP");
    fleet.slots[0].paused = true;
    fleet.receiver.set_mode(Respond::Success);
    fleet.slots[1].start().await;

    // Host 1 takes everything over once host 0's leases run out, and delivers it.
    let deadline = Instant::now() + Duration::from_secs(40);
    for (i, id) in ids.iter().enumerate() {
        let s = fleet
            .wait_delivered(id, &format!("STOP-{i}"), deadline)
            .await;
        assert_eq!(s["attempts"], 1, "only host 1's attempt is recorded: {s}");
    }
    let resumed = Instant::now();
    fleet.slots[0].signal("-CONT");
    fleet.slots[0].paused = false;
    // Its in-flight attempt ends (answered or timed out); its write is refused, and nothing of
    // what waited behind it is attempted: those claims ran out while it was stopped.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let lost = fleet.slots[0].metric("notifyd_lease_lost_total").await;
        let pending = fleet.slots[0].metric("notifyd_pending_notifications").await;
        if lost >= 1.0 && pending == 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "host 0 after SIGCONT: lease lost {lost}, pending {pending}: {}",
            fleet.slots[0].log_tail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = fleet.deliveries();
    let from_0: Vec<_> = got
        .values()
        .flatten()
        .filter(|d| d.host == "HOST-0")
        .collect();
    assert_eq!(from_0.len(), 1, "host 0 sent only its first: {from_0:?}");
    assert!(from_0[0].at < resumed);
    for i in 0..ids.len() {
        let copies = &got[&format!("STOP-{i}")];
        assert!(
            copies.iter().any(|d| d.host == "HOST-1"),
            "host 1 delivered STOP-{i}: {copies:?}"
        );
    }
    let db = fleet.db().await;
    let outcomes: i64 = db
        .query_one("SELECT count(*) FROM nd_outcome", &[])
        .await
        .unwrap()
        .get(0);
    let queued: i64 = db
        .query_one("SELECT count(*) FROM nd_queue", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        (outcomes, queued),
        (ids.len() as i64, 0),
        "one outcome each"
    );
    for (i, id) in ids.iter().enumerate() {
        let s = fleet
            .wait_delivered(id, &format!("STOP-{i}"), deadline)
            .await;
        assert_eq!(s["attempts"], 1, "host 0's late write was refused: {s}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_under_load_gets_only_u_answers_and_keeps_every_s() {
    let Some(mut fleet) = Fleet::running(2, "S", QUICK).await else {
        return;
    };
    let ingest = fleet.slots.iter().map(|s| s.ingest).collect();
    let load = Load::start(ingest, &fleet.target, "PG", 4);
    let mut down = Vec::new();
    for mode in ["fast", "immediate"] {
        // Load before, during and after each outage; the lengths only shape it.
        tokio::time::sleep(Duration::from_millis(700)).await;
        fleet.cluster.stop(mode).expect("pg_ctl stop");
        let from = Instant::now();
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let until = Instant::now();
        fleet.cluster.start_again().expect("pg_ctl start");
        down.push((mode, from, until));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let answers = load.stop().await;
    for (mode, from, until) in &down {
        let inside: Vec<_> = answers
            .iter()
            .filter(|a| a.sent > *from && a.answered < *until)
            .collect();
        assert!(
            !inside.is_empty(),
            "no request while PostgreSQL was down ({mode})"
        );
        for a in inside {
            let (status, v) = a
                .reply
                .as_ref()
                .expect("an answer while the database is down");
            assert_eq!(
                (*status, &v["result"]["resultStatus"]),
                (503, &"U".into()),
                "{}: answered while PostgreSQL was down ({mode}): {v}",
                a.payment
            );
        }
    }
    fleet.all_delivered(&accepted(&answers)).await;
    for slot in &mut fleet.slots {
        let alive = slot.proc.as_mut().is_some_and(|n| n.alive());
        assert!(alive, "{} died: {}", slot.name, slot.log_tail());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_notifications_sent_to_two_host_processes_are_stored_once() {
    let Some(fleet) = Fleet::running(2, "S", QUICK).await else {
        return;
    };
    let (a, b) = (fleet.slots[0].ingest, fleet.slots[1].ingest);
    let c = client();
    let n = 30;
    let mut ids = Vec::new();
    for i in 0..n {
        let body = serde_json::to_vec(&payment(&fleet.target, &format!("DUP-{i}"))).unwrap();
        let (ra, rb) = tokio::join!(
            call(&c, "POST", a, "/v1/notifications", body.clone()),
            call(&c, "POST", b, "/v1/notifications", body)
        );
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert_eq!((ra.0, rb.0), (200, 200), "{} {}", ra.1, rb.1);
        assert_eq!(ra.1["result"]["resultStatus"], "S", "{}", ra.1);
        assert_eq!(rb.1["result"]["resultStatus"], "S", "{}", rb.1);
        let id = ra.1["notificationId"].as_str().expect("an id").to_owned();
        assert_eq!(
            rb.1["notificationId"],
            id.as_str(),
            "one id in both answers"
        );
        ids.push(id);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for (i, id) in ids.iter().enumerate() {
        fleet
            .wait_delivered(id, &format!("DUP-{i}"), deadline)
            .await;
    }
    let db = fleet.db().await;
    let stored: i64 = db
        .query_one("SELECT count(*) FROM nd_notification", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, n, "one stored per key");
    let got = fleet.deliveries();
    for i in 0..n {
        let copies = &got[&format!("DUP-{i}")];
        assert_eq!(copies.len(), 1, "DUP-{i} delivered once: {copies:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_void_pairs_over_three_hosts_with_a_flaky_receiver_keep_their_order() {
    let Some(fleet) = Fleet::running(3, "FAIL_RATE:0.4", QUICK).await else {
        return;
    };
    let pairs = 30;
    let mut ids = Vec::new();
    for i in 0..pairs {
        let pay = format!("PV-{i}");
        let p = payment(&fleet.target, &pay);
        let v = void(&fleet.target, &pay, "S");
        // The payment to one host, its void to the next.
        for (host, env) in [(i % 3, p), ((i + 1) % 3, v)] {
            ids.push((pay.clone(), fleet.submit(host, &env).await));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(40);
    for (pay, id) in &ids {
        fleet.wait_delivered(id, pay, deadline).await;
    }
    assert!(
        fleet.receiver.outcome_count(Outcome::Unknown) > 0,
        "the receiver never answered U"
    );
    for (pay, copies) in fleet.deliveries() {
        let last_payment = copies
            .iter()
            .filter(|d| d.api == "payment")
            .map(|d| d.at)
            .max()
            .expect("the payment was delivered");
        let first_void = copies
            .iter()
            .filter(|d| d.api == "void")
            .map(|d| d.at)
            .min()
            .expect("the void was delivered");
        // The payment's last copy is the one answered S (no host died here).
        assert!(
            first_void > last_payment,
            "{pay}: the void went before its payment was final: {copies:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hosts_starting_at_once_on_an_empty_database_make_one_schema() {
    let Some(cluster) = cluster() else {
        return;
    };
    let mut fleet = Fleet::new(cluster, 3, "S", QUICK).await;
    // All three race to migrate; each waits for /readyz.
    fleet.start_all().await;
    let db = fleet.db().await;
    let versions: Vec<i32> = db
        .query("SELECT version FROM nd_schema ORDER BY version", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let expected: Vec<i32> = (1..=notifyd_daemon::store::SCHEMA_VERSION).collect();
    assert_eq!(versions, expected, "each migration applied once");
    let hosts: i64 = db
        .query_one("SELECT count(*) FROM nd_host", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(hosts, 3);
    // And each of them works.
    for i in 0..fleet.slots.len() {
        let id = fleet
            .submit(i, &payment(&fleet.target, &format!("MIG-{i}")))
            .await;
        let deadline = Instant::now() + Duration::from_secs(20);
        fleet
            .wait_delivered(&id, &format!("MIG-{i}"), deadline)
            .await;
    }
}

/// A rolling upgrade: a host of an older release (`NOTIFYD_OLD_BIN`, built from an earlier
/// commit) keeps delivering, and starts again, after a host of this release migrated the
/// schema under it; nothing accepted by either is lost. Not in CI (it needs the old build):
/// `NOTIFYD_OLD_BIN=/path/to/old/notifyd cargo test -p notifyd --test postgres_faults
/// rolling -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs NOTIFYD_OLD_BIN, a build of an older release"]
async fn rolling_upgrade_an_older_host_runs_on_the_migrated_schema_and_loses_nothing() {
    let Some(old) = std::env::var_os("NOTIFYD_OLD_BIN") else {
        eprintln!("SKIPPED: set NOTIFYD_OLD_BIN to an older notifyd build");
        return;
    };
    let Some(cluster) = cluster() else {
        return;
    };
    let mut fleet = Fleet::new(cluster, 2, "S", QUICK).await;
    fleet.slots[0].binary = Some(old.into());
    // The old release alone makes its schema; this release's host migrates it while the old
    // one runs.
    fleet.slots[0].start().await;
    fleet.slots[1].start().await;
    let ingest = fleet.slots.iter().map(|s| s.ingest).collect();
    let load = Load::start(ingest, &fleet.target, "R", 4);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The old host starts again on the newer schema (it refused to before v4 said it may).
    fleet.slots[0].kill9();
    fleet.slots[0].start().await;
    let restarted = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let answers = load.stop().await;
    let accepted = accepted(&answers);
    let got = fleet.all_delivered(&accepted).await;
    let by_host = |host: &str| got.values().flatten().filter(|d| d.host == host).count();
    eprintln!(
        "rolling upgrade: accepted {} delivered {} (old host sent {}, new host {})",
        accepted.len(),
        got.len(),
        by_host("HOST-0"),
        by_host("HOST-1")
    );
    assert!(
        by_host("HOST-0") > 0 && by_host("HOST-1") > 0,
        "both hosts delivered"
    );
    assert!(
        got.values()
            .flatten()
            .any(|d| d.host == "HOST-0" && d.at > restarted),
        "the old host delivered after its restart on the migrated schema"
    );
}
