//! Two notifyd hosts on one PostgreSQL database (`[store] kind = "postgres"`), delivering to one
//! receiver: nothing lost, nothing stored twice, a repeat answered with the first id by either
//! host. A private cluster (Unix socket only) is started for the test binary.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use notifyd_daemon::config::{PostgresConfig, StoreBackend};
use notifyd_daemon::test_pg::Cluster;
use support::{Harness, payment};

fn postgres(cluster: &Cluster, db: &str) -> StoreBackend {
    StoreBackend::Postgres(PostgresConfig {
        url: cluster.database(db).expect("createdb"),
        // The harness's attempt_timeout is 1s; check-config would want more than 11s.
        lease: Duration::from_secs(15),
        pool_size: 4,
    })
}

/// Two hosts on database `db`; `None` (skipped) without PostgreSQL.
async fn two_hosts(cluster: &Cluster, db: &str) -> (Harness, Harness) {
    let backend = postgres(cluster, db);
    let b2 = backend.clone();
    let a = Harness::start_with("S", move |c| c.store.backend = backend).await;
    let b = Harness::start_with("S", move |c| c.store.backend = b2).await;
    (a, b)
}

fn cluster() -> Option<Cluster> {
    match Cluster::start() {
        Ok(c) => Some(c),
        Err(reason) => {
            support::skip(&reason);
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_deliver_everything_once_between_them() {
    let Some(cluster) = cluster() else {
        return;
    };
    let (a, b) = two_hosts(&cluster, "deliver").await;
    let url = a.merchant_url("/v1/payments/notifyPayment");
    let n = 60;
    let mut ids = Vec::new();
    for i in 0..n {
        let host = if i % 2 == 0 { &a } else { &b };
        ids.push(host.submit(&payment(&url, &format!("PAY-{i}"))).await);
    }
    for id in &ids {
        // Either host answers for any notification: the state is in the shared database.
        let s = b.wait_state(id, "delivered").await;
        assert_eq!(s["attempts"], 1, "{s}");
    }
    a.wait_received(n).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = a.merchant.received();
    assert_eq!(got.len() as u64, n, "each notification is sent once");
    let payments: HashSet<String> = got
        .iter()
        .map(|r| {
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            v["paymentId"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(payments.len() as u64, n, "nothing lost, nothing doubled");
    assert_eq!(b.merchant.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_notification_sent_to_both_hosts_is_stored_once_with_one_id() {
    let Some(cluster) = cluster() else {
        return;
    };
    let (a, b) = two_hosts(&cluster, "dup").await;
    let url = a.merchant_url("/v1/payments/notifyPayment");
    for i in 0..20 {
        let env = payment(&url, &format!("PAY-DUP-{i}"));
        let (ra, rb) = tokio::join!(
            a.post("/v1/notifications", &env),
            b.post("/v1/notifications", &env)
        );
        assert_eq!((ra.0, rb.0), (200, 200), "{} {}", ra.1, rb.1);
        let (ia, ib) = (&ra.1["notificationId"], &rb.1["notificationId"]);
        assert!(ia.is_string(), "{}", ra.1);
        assert_eq!(ia, ib, "both hosts answer with the one stored id");
        // A repeat with another amount is inconsistent, whichever host gets it.
        let mut changed = env.clone();
        changed["body"]["paymentAmount"]["value"] = "1".into();
        let (_, rc) = b.post("/v1/notifications", &changed).await;
        assert_eq!(
            rc["result"]["resultCode"], "REPEAT_REQ_INCONSISTENT",
            "{rc}"
        );
    }
    a.wait_received(20).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(a.merchant.count(), 20, "each stored once, delivered once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_stops_hands_its_leases_to_the_other_at_once() {
    let Some(cluster) = cluster() else {
        return;
    };
    let backend = postgres(&cluster, "handover");
    let b2 = backend.clone();
    // The receiver never answers: every attempt times out (1s) and the notification stays
    // pending, leased to whichever host attempts it.
    let mut a = Harness::start_with("STALL", move |c| c.store.backend = backend).await;
    let b = Harness::start_with("S", move |c| c.store.backend = b2).await;
    let id = a.submit(&payment(&a.merchant_url("/n"), "PAY-MOVE")).await;
    a.wait_received(1).await;
    let stopped = tokio::time::Instant::now();
    a.notifyd.take().unwrap().shutdown().await;
    // Released at shutdown: b takes it long before the 15s lease would have run out.
    let s = b
        .wait_for(&id, |s| s["attempts"].as_u64().unwrap_or(0) >= 2)
        .await;
    assert!(stopped.elapsed() < Duration::from_secs(8), "{s}");
    assert!(a.merchant.count() >= 2, "b attempted it too");
}
