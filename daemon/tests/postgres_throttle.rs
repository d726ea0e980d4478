//! A throttle pause one host learns holds on every host of the database (CONTRACT.md §7), while
//! each host keeps its own concurrency limit (AIMD); so does an operator's hold asked of one
//! host, past a restart. Two notifyd hosts on a private PostgreSQL, receivers on loopback.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use notifyd_daemon::config::{PostgresConfig, StoreBackend};
use notifyd_daemon::test_pg::Cluster;
use serde_json::Value;
use support::trust::{Receiver, ack_s};
use support::{Harness, payment, void};

const PAUSE: Duration = Duration::from_secs(4);

fn endpoint_of(list: &Value, endpoint: &str) -> Value {
    list["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["endpoint"] == endpoint)
        .cloned()
        .unwrap_or_else(|| panic!("{endpoint} not listed: {list}"))
}

/// A private cluster and the store config of a fresh database on it (None: no PostgreSQL
/// here).
fn on_postgresql(database: &str) -> Option<(Cluster, StoreBackend)> {
    let cluster = match Cluster::start() {
        Ok(c) => c,
        Err(reason) => {
            support::skip(&reason);
            return None;
        }
    };
    let backend = StoreBackend::Postgres(PostgresConfig {
        url: cluster.database(database).expect("createdb"),
        lease: Duration::from_secs(15),
        pool_size: 4,
    });
    Some((cluster, backend))
}

/// Two notifyd hosts on a fresh database of a private cluster (None: no PostgreSQL here).
async fn two_hosts(database: &str) -> Option<(Cluster, Harness, Harness)> {
    let (cluster, backend) = on_postgresql(database)?;
    let b2 = backend.clone();
    let a = Harness::start_with("S", move |c| c.store.backend = backend).await;
    let b = Harness::start_with("S", move |c| c.store.backend = b2).await;
    Some((cluster, a, b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttle_answer_on_one_host_pauses_the_endpoint_on_the_other() {
    let Some((_cluster, a, b)) = two_hosts("throttle").await else {
        return;
    };

    // The first request is throttled with Retry-After; every later one is acknowledged. The
    // arrival time of each is kept.
    let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let seen = arrivals.clone();
    let receiver = Receiver::start(
        None,
        Arc::new(move |_| {
            let mut seen = seen.lock().unwrap();
            seen.push(Instant::now());
            if seen.len() == 1 {
                http::Response::builder()
                    .status(429)
                    .header("retry-after", PAUSE.as_secs().to_string())
                    .body(http_body_util::Full::new(bytes::Bytes::new()))
                    .unwrap()
            } else {
                ack_s()
            }
        }),
    )
    .await;
    let url = format!("http://{}/notify", receiver.addr);
    let endpoint = receiver.addr.to_string();

    a.submit(&payment(&url, "PAY-T0")).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while arrivals.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the first attempt never came");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let throttled_at = arrivals.lock().unwrap()[0];
    // b learns the pause within a claim cycle (500 ms ± 20 %): its endpoint list shows it then,
    // though b has sent nothing there yet.
    let deadline = throttled_at + Duration::from_secs(3);
    loop {
        let (_, list) = b.get("/v1/endpoints").await;
        let known = list["endpoints"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["endpoint"] == endpoint.as_str());
        if known.is_some_and(|e| e["state"] == "paused") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "b never learned the pause: {list}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut later = Vec::new();
    for n in 1..=4 {
        later.push(b.submit(&payment(&url, &format!("PAY-T{n}"))).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        arrivals.lock().unwrap().len(),
        1,
        "b started nothing during a's pause"
    );
    // Paused on both, each with its own limit: only a was throttled, so only a's was cut.
    let (_, on_a) = a.get("/v1/endpoints").await;
    let (_, on_b) = b.get("/v1/endpoints").await;
    let (on_a, on_b) = (endpoint_of(&on_a, &endpoint), endpoint_of(&on_b, &endpoint));
    assert_eq!(on_b["state"], "paused", "{on_b}");
    assert!(
        on_a["concurrencyLimit"].as_u64() < on_b["concurrencyLimit"].as_u64(),
        "AIMD stays per host: a {on_a}, b {on_b}"
    );

    // The throttled one itself retries a minute later (its own backoff): not waited for.
    for id in &later {
        b.wait_state(id, "delivered").await;
    }
    let arrivals = arrivals.lock().unwrap().clone();
    assert_eq!(arrivals.len(), 5, "one throttled attempt, then b's four");
    for t in &arrivals[1..] {
        // The pause is recorded on the database's clock just after the answer: allow 0.5 s.
        assert!(
            t.duration_since(throttled_at) >= PAUSE - Duration::from_millis(500),
            "an attempt {:?} into the {PAUSE:?} pause",
            t.duration_since(throttled_at)
        );
    }
}

/// Waits until `host` lists `endpoint` in `state`; answers its view.
async fn wait_endpoint(host: &Harness, endpoint: &str, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, list) = host.get("/v1/endpoints").await;
        let known = list["endpoints"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["endpoint"] == endpoint)
            .cloned();
        if let Some(e) = known.filter(|e| e["state"] == state) {
            return e;
        }
        assert!(
            Instant::now() < deadline,
            "{endpoint} never {state}: {list}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_hold_asked_of_one_host_holds_on_every_host_and_after_a_restart() {
    let Some((_cluster, a, mut b)) = two_hosts("holds").await else {
        return;
    };
    // Both hosts deliver to a's receiver.
    let endpoint = a.merchant.addr().to_string();
    let url = a.merchant_url("/n");

    let (status, body) = a.hold(&endpoint, true).await;
    assert_eq!(
        (status, body["changed"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    let on_b = wait_endpoint(&b, &endpoint, "held").await;
    assert_eq!(on_b["heldByOperator"], true, "{on_b}");
    // Each host leases what it accepts: b's own shards hold these, under a's hold.
    let mut ids = Vec::new();
    for n in 0..6 {
        let host = if n % 2 == 0 { &a } else { &b };
        ids.push(host.submit(&payment(&url, &format!("PAY-H{n}"))).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        a.merchant.count(),
        0,
        "neither host sends to a held endpoint"
    );

    // A host started later holds it before it claims anything.
    b.restart().await;
    let on_b = wait_endpoint(&b, &endpoint, "held").await;
    assert_eq!(on_b["heldByOperator"], true, "{on_b}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(a.merchant.count(), 0, "still held after b's restart");

    // Resumed on the other host than the one that held it: both send again.
    let (status, body) = b.hold(&endpoint, false).await;
    assert_eq!(
        (status, body["changed"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    for id in &ids {
        let s = a.wait_state(id, "delivered").await;
        assert_eq!(s["attempts"], 1, "the hold spent no attempt: {s}");
    }
    wait_endpoint(&a, &endpoint, "ok").await;

    // Held on a and resumed on b at once, before a's claimer read the hold: a still resumes
    // (its claimer compares the record with what a's shards hold, not with its last read).
    for _ in 0..3 {
        a.hold(&endpoint, true).await;
        b.hold(&endpoint, false).await;
        wait_endpoint(&a, &endpoint, "ok").await;
        wait_endpoint(&b, &endpoint, "ok").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_endpoints_backlog_does_not_keep_a_host_from_claiming_other_work() {
    // One host, room for 2 x 2 claimed notifications. A held merchant's six, leased by the
    // host at accept, wait in its shards; a void of another merchant, claimable only once its
    // payment is final, must still be claimed.
    let Some((_cluster, backend)) = on_postgresql("held_backlog") else {
        return;
    };
    let a = Harness::start_with("S", move |c| {
        c.store.backend = backend;
        c.delivery.max_in_flight = std::num::NonZeroUsize::new(2).unwrap();
    })
    .await;
    let held = notifyd_daemon::mock_merchant::MockMerchant::start(
        "127.0.0.1:0".parse().unwrap(),
        notifyd_daemon::mock_merchant::Respond::Success,
    )
    .await
    .unwrap();
    let endpoint = held.addr().to_string();
    let (status, _) = a.hold(&endpoint, true).await;
    assert_eq!(status, 200);
    for n in 0..6 {
        a.submit(&payment(
            &format!("http://{endpoint}/n"),
            &format!("PAY-HB{n}"),
        ))
        .await;
    }
    let url = a.merchant_url("/n");
    let paid = a.submit(&payment(&url, "PAY-OTHER")).await;
    let voided = a.submit(&void(&url, "PAY-OTHER", "S")).await;
    a.wait_state(&paid, "delivered").await;
    a.wait_state(&voided, "delivered").await;
    assert_eq!(held.count(), 0, "the held merchant got nothing");
}
