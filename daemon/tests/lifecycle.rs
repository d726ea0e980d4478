//! Shutdown and restart: nothing accepted is lost, nothing is marked delivered without an S,
//! attempts cut off by a shutdown are made again, duplicates are still recognised.

mod support;

use std::sync::Arc;
use std::time::Duration;

use notifyd_daemon::mock_merchant::Respond;
use support::{Harness, payment};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_mid_attempt_leaves_it_pending_and_restart_delivers_it() {
    let mut h = Harness::start_with("STALL", |c| {
        c.shutdown.grace = Duration::from_millis(200);
        if let Some(p) = c.profiles.get_mut("default") {
            p.attempt_timeout = Duration::from_secs(30);
        }
    })
    .await;
    let env = payment(&h.merchant_url("/n"), "PAY-SD");
    let id = h.submit(&env).await;
    h.wait_received(1).await;

    // Shut down while the attempt hangs; intake is refused meanwhile.
    let running = h.notifyd.take().unwrap();
    let app = running.app.clone();
    let ingest = running.ingest;
    let stopping = tokio::spawn(running.shutdown());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(app.is_stopping());
    drop(app);
    let late = {
        let client = h.client.clone();
        let body = serde_json::to_vec(&payment(&h.merchant_url("/n"), "PAY-LATE")).unwrap();
        let req = http::Request::post(format!("http://{ingest}/v1/notifications"))
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .unwrap();
        client.request(req).await.map(|r| r.status().as_u16())
    };
    assert_eq!(
        late.ok(),
        Some(503),
        "a stopping notifyd refuses new notifications"
    );
    assert!(
        !stopping.await.unwrap(),
        "the hung attempt outlived the grace period"
    );

    // The record is still pending: no answer, no delivery claimed.
    h.merchant.set_mode("S".parse::<Respond>().unwrap());
    h.notifyd = Some(notifyd_daemon::run::start(&h.config).await.unwrap());
    let s = h.wait_state(&id, "delivered").await;
    assert_eq!(
        s["attempts"], 1,
        "the cut-off attempt was never recorded, and is made again: {s}"
    );
    assert_eq!(h.merchant.count(), 2);
    assert!(
        h.merchant
            .received()
            .iter()
            .all(|r| r.body == h.merchant.received()[0].body)
    );

    // Duplicates are recognised across the restart.
    let (status, body) = h.post("/v1/notifications", &env).await;
    assert_eq!(status, 200);
    assert_eq!(body["duplicate"], true);
    assert_eq!(body["notificationId"], id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_attempt_counts_and_due_times() {
    let mut h = Harness::start_with("U", |c| {
        if let Some(p) = c.profiles.get_mut("default") {
            p.retry = notifyd_core::backoff::RetryPolicy::schedule(
                vec![
                    Duration::ZERO,
                    Duration::from_millis(800),
                    Duration::from_millis(100),
                ],
                0.0,
            )
            .unwrap();
        }
    })
    .await;
    let id = h.submit(&payment(&h.merchant_url("/n"), "PAY-RS")).await;
    let before = h.wait_for(&id, |s| s["attempts"] == 1).await;
    assert_eq!(before["state"], "pending");
    assert!(h.restart().await, "nothing was in flight");
    let after = h.status(&id).await;
    assert_eq!(after["attempts"], 1);
    assert_eq!(
        after["nextAttemptAt"], before["nextAttemptAt"],
        "due time survives the restart"
    );
    h.merchant.set_mode("S".parse::<Respond>().unwrap());
    let s = h.wait_state(&id, "delivered").await;
    assert_eq!(s["attempts"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_pending_notifications_survive_a_restart() {
    let mut h = Harness::start_with("STALL", |c| {
        c.shutdown.grace = Duration::from_millis(100);
        c.delivery.endpoint_concurrency = 2.try_into().unwrap();
    })
    .await;
    let h_url = h.merchant_url("/n");
    let mut ids = Vec::new();
    for i in 0..50 {
        ids.push(h.submit(&payment(&h_url, &format!("PAY-M{i}"))).await);
    }
    h.restart().await;
    h.merchant.set_mode("S".parse::<Respond>().unwrap());
    let h = Arc::new(h);
    for id in &ids {
        h.wait_state(id, "delivered").await;
    }
    let delivered: std::collections::HashSet<_> = h
        .merchant
        .received()
        .iter()
        .map(|r| r.body.clone())
        .collect();
    assert_eq!(
        delivered.len(),
        50,
        "every accepted notification reached the merchant"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_payment_order_survives_a_restart() {
    // The payment's first attempt hangs; its void (same payment) and a second payment's
    // notification queue behind or beside it. After a restart the store's pending records are
    // replayed: the void must still wait for the payment.
    let mut h = Harness::start_with("STALL", |c| {
        c.shutdown.grace = Duration::from_millis(100);
    })
    .await;
    let url = h.merchant_url("/n");
    let pay = h.submit(&payment(&url, "PAY-ORD")).await;
    h.wait_received(1).await;
    let vd = h.submit(&support::void(&url, "PAY-ORD", "S")).await;
    let other = h.submit(&payment(&url, "PAY-OTHER")).await;
    h.wait_received(2).await;
    h.restart().await;
    h.merchant.set_mode("S".parse::<Respond>().unwrap());
    for id in [&pay, &vd, &other] {
        h.wait_state(id, "delivered").await;
    }
    let order: Vec<&str> = h
        .merchant
        .received()
        .iter()
        .map(|r| {
            let body = std::str::from_utf8(&r.body).unwrap();
            if body.contains("voidRequestId") {
                "void"
            } else if body.contains("PAY-ORD") {
                "payment"
            } else {
                "other"
            }
        })
        .collect();
    let last_payment = order.iter().rposition(|k| *k == "payment").unwrap();
    let void_at = order.iter().position(|k| *k == "void").unwrap();
    assert!(
        last_payment < void_at,
        "the void went out before its payment was answered: {order:?}"
    );
    assert_eq!(
        order.iter().filter(|k| **k == "void").count(),
        1,
        "{order:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_metrics_address_stops_the_start_naming_the_key_and_exits_71() {
    let dir = tempfile::tempdir().unwrap();
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = support::config(dir.path(), "");
    config.metrics.listen = taken.local_addr().unwrap();
    let err = notifyd_daemon::run::start(&config).await.unwrap_err();
    assert!(
        matches!(
            &err,
            notifyd_daemon::start_error::StartError::Listen {
                what: "metrics.listen",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with(&format!("metrics.listen {}: ", config.metrics.listen)),
        "{err}"
    );
    assert_eq!(err.exit_code(), 71);
}
