//! The edges of accepting: a gateway that hangs up mid-commit, repeats that arrive while notifyd
//! recovers, accept order within one millisecond, a profile removed under pending notifications.
//! Each test failed against the code before its fix (see the issue notes).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use notifyd_core::backoff::RetryPolicy;
use notifyd_daemon::run;
use notifyd_daemon::start_error::StartError;
use notifyd_daemon::store::StoreOptions;
use serde_json::{Value, json};
use support::{Harness, payment, void};
use tokio::io::AsyncWriteExt;

/// Sets a profile's retry schedule (no jitter) for the next start.
fn schedule(h: &mut Harness, profile: &str, delays_ms: &[u64]) {
    h.config.profiles.get_mut(profile).unwrap().retry = RetryPolicy::schedule(
        delays_ms
            .iter()
            .map(|ms| Duration::from_millis(*ms))
            .collect(),
        0.0,
    )
    .unwrap();
}

/// `[profiles.strict]` that can reach the loopback merchant.
fn strict_loopback(_: &std::path::Path) -> String {
    "allow_http = true\nallow_private = [\"127.0.0.0/8\"]\n".to_owned()
}

/// Restarts the harness's notifyd on the same store with commits that each wait `slow`
/// milliseconds before their fsync (changeable while it runs).
async fn restart_with_slow_commits(h: &mut Harness, slow: &Arc<AtomicU64>) {
    restart_with(
        h,
        StoreOptions {
            slow_commits_ms: Some(slow.clone()),
            ..Default::default()
        },
    )
    .await;
}

/// Restarts the harness's notifyd on the same store with these store options.
async fn restart_with(h: &mut Harness, opts: StoreOptions) {
    h.notifyd.take().unwrap().shutdown().await;
    h.notifyd = Some(run::start_with(&h.config, opts).await.unwrap());
}

fn batch_of(h: &Harness, prefix: &str, n: usize) -> Value {
    let url = h.merchant_url("/n");
    json!({"notifications": (0..n).map(|i| payment(&url, &format!("{prefix}-{i}"))).collect::<Vec<_>>()})
}

/// Writes one request on a raw socket and closes it `linger` later, before any answer (the
/// tests' store commits take longer than that).
async fn post_and_hang_up(addr: std::net::SocketAddr, path: &str, body: &Value, linger: Duration) {
    let body = serde_json::to_vec(body).unwrap();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: notifyd\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&body).await.unwrap();
    tokio::time::sleep(linger).await;
    s.shutdown().await.unwrap();
    drop(s);
}

/// Every item of a batch answer: (status letter, duplicate?, id).
fn items(answer: &Value) -> Vec<(String, bool, String)> {
    answer["results"]
        .as_array()
        .unwrap_or_else(|| panic!("not a batch answer: {answer}"))
        .iter()
        .map(|r| {
            (
                r["result"]["resultStatus"]
                    .as_str()
                    .unwrap_or("?")
                    .to_owned(),
                r["duplicate"] == true,
                r["notificationId"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_hangs_up_mid_commit_strands_nothing_and_its_resend_is_a_duplicate() {
    let slow = Arc::new(AtomicU64::new(400));
    let mut h = Harness::start("S").await;
    restart_with_slow_commits(&mut h, &slow).await;
    const BATCHES: usize = 5;
    const PER: usize = 20;
    // Raw sockets that close while their commit runs (the request is read and committing after
    // 100 ms; the commit takes 400), then a hyper client whose caller gives up (its future
    // dropped) just as well.
    let hangups = (0..BATCHES - 1).map(|b| {
        let body = batch_of(&h, &format!("RAW{b}"), PER);
        let addr = h.ingest();
        async move {
            post_and_hang_up(
                addr,
                "/v1/notifications/batch",
                &body,
                Duration::from_millis(100),
            )
            .await
        }
    });
    futures_join_all(hangups).await;
    let dropped = batch_of(&h, "DROPPED", PER);
    let gave_up = tokio::time::timeout(
        Duration::from_millis(100),
        h.post("/v1/notifications/batch", &dropped),
    )
    .await;
    assert!(
        gave_up.is_err(),
        "the commit was meant to outlast the client"
    );
    slow.store(0, Ordering::Release);

    // Every re-send is answered at once: a duplicate with the first id for what the store took
    // (before the fix: U after a 5 s wait, and the stored copy was never delivered), a new
    // notification for what it never got.
    let mut all = (0..BATCHES - 1)
        .map(|b| batch_of(&h, &format!("RAW{b}"), PER))
        .collect::<Vec<_>>();
    all.push(dropped);
    let mut duplicates = 0;
    // A bound for a wedged key (each item would wait out its 30 s), not a speed target.
    tokio::time::timeout(Duration::from_secs(20), async {
        for batch in &all {
            let (status, answer) = h.post("/v1/notifications/batch", batch).await;
            assert_eq!(status, 200, "{answer}");
            for (letter, duplicate, id) in items(&answer) {
                assert_eq!(letter, "S", "{answer}");
                assert!(!id.is_empty(), "{answer}");
                duplicates += usize::from(duplicate);
            }
        }
    })
    .await
    .expect("re-sends waited for commits that had already ended: their keys are wedged");
    assert!(
        duplicates > 0,
        "no commit outlived its client: the test proved nothing"
    );
    // Every item is delivered exactly once, the ones whose client hung up included.
    h.wait_received((BATCHES * PER) as u64).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(h.merchant.count(), (BATCHES * PER) as u64, "no second copy");
    assert!(h.notifyd.as_ref().unwrap().app.inflight.is_empty());
}

async fn futures_join_all<F: std::future::Future<Output = ()>>(fs: impl Iterator<Item = F>) {
    let handles: Vec<_> = fs.collect();
    for f in handles {
        f.await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeat_during_the_first_copys_commit_waits_for_it_and_gets_its_id() {
    let slow = Arc::new(AtomicU64::new(400));
    let mut h = Harness::start("S").await;
    restart_with_slow_commits(&mut h, &slow).await;
    let env = payment(&h.merchant_url("/n"), "PAY-TWICE");
    let (first, second) = tokio::join!(h.post("/v1/notifications", &env), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        h.post("/v1/notifications", &env).await
    });
    assert_eq!(first.0, 200, "{}", first.1);
    assert_eq!(second.0, 200, "{}", second.1);
    assert_eq!(second.1["duplicate"], true, "{}", second.1);
    assert_eq!(first.1["notificationId"], second.1["notificationId"]);
    h.wait_received(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeliver_completes_even_when_its_client_hangs_up() {
    let mut h = Harness::start("F").await;
    let id = h
        .submit(&payment(&h.merchant_url("/n"), "PAY-REDELIVER"))
        .await;
    h.wait_state(&id, "failed").await;
    h.merchant.set_mode("S".parse().unwrap());
    let slow = Arc::new(AtomicU64::new(300));
    restart_with_slow_commits(&mut h, &slow).await;
    post_and_hang_up(
        h.ingest(),
        &format!("/v1/notifications/{id}/redeliver"),
        &json!({}),
        Duration::from_millis(100),
    )
    .await;
    // Before the fix the record said pending and no shard held it: never delivered.
    h.wait_state(&id, "delivered").await;
}

/// A free loopback port (bound, read, released) for a daemon whose address must be known before
/// its start resolves.
fn free_port() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_judged_before_recovery_is_done() {
    let mut h = Harness::start("U").await;
    let url = h.merchant_url("/n");
    // Pending notifications (the receiver says U; the schedule leaves them waiting).
    schedule(&mut h, "default", &[0, 3_600_000]);
    let pay = payment(&url, "PAY-RECOVER");
    let id = {
        h.restart().await;
        h.submit(&pay).await
    };
    h.wait_for(&id, |s| s["attempts"] == 1).await;

    h.notifyd.take().unwrap().shutdown().await;
    let addr = free_port();
    h.config.ingest.listen = addr;
    let slow = Arc::new(AtomicU64::new(1500));
    let config = h.config.clone();
    let starting = tokio::spawn(async move {
        run::start_with(
            &config,
            StoreOptions {
                slow_scan_ms: Some(slow),
                ..Default::default()
            },
        )
        .await
    });
    // The listener is up while recovery reads the store.
    let client = &h.client;
    let post = |body: Value, path: &'static str| async move {
        let req = http::Request::builder()
            .method("POST")
            .uri(format!("http://{addr}{path}"))
            .body(http_body_util::Full::new(bytes::Bytes::from(
                serde_json::to_vec(&body).unwrap(),
            )))
            .unwrap();
        let resp = loop {
            match client.request(req.clone()).await {
                Ok(r) => break r,
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        };
        let status = resp.status().as_u16();
        let retry_after = resp.headers().get("retry-after").cloned();
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        (
            status,
            serde_json::from_slice::<Value>(&body).unwrap(),
            retry_after,
        )
    };
    let mut changed = pay.clone();
    changed["body"]["paymentAmount"]["value"] = json!("20000");
    for (body, path) in [
        (changed.clone(), "/v1/notifications"),
        (
            json!({"notifications": [changed.clone()]}),
            "/v1/notifications/batch",
        ),
        (void(&url, "PAY-RECOVER", "S"), "/v1/notifications"),
        (
            json!({}),
            "/v1/notifications/01ARZ3NDEKTSV4RRFFQ69G5FAV/redeliver",
        ),
        (json!({"dryRun": true}), "/v1/redeliver"),
    ] {
        let (status, answer, retry_after) = post(body, path).await;
        assert!(
            !starting.is_finished(),
            "recovery ended before the probe: slow it down more"
        );
        assert_eq!(status, 503, "{path}: {answer}");
        assert_eq!(answer["result"]["resultStatus"], "U", "{answer}");
        assert_eq!(
            answer["result"]["resultCode"], "UNKNOWN_EXCEPTION",
            "{answer}"
        );
        assert!(retry_after.is_some(), "{path}: Retry-After is set");
    }
    h.notifyd = Some(starting.await.unwrap().unwrap());
    // Once ready, the changed repeat is what it is: inconsistent.
    let (status, answer) = h.post("/v1/notifications", &changed).await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["notificationId"], json!(id));
    let (status, answer) = h.post("/v1/notifications", &pay).await;
    assert_eq!(
        (status, &answer["duplicate"]),
        (200, &json!(true)),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_and_voids_accepted_together_are_replayed_in_accept_order() {
    // The first attempt is due 2 s after accept: time to stop notifyd with everything pending.
    let mut h = Harness::start("S").await;
    schedule(&mut h, "default", &[2_000, 0, 0]);
    h.restart().await;
    let url = h.merchant_url("/n");
    const PAIRS: usize = 40;
    // One batch: each payment and its void are accepted within the same millisecond or so.
    let batch = json!({"notifications": (0..PAIRS).flat_map(|i| {
        let p = format!("PAY-ORDER-{i}");
        [payment(&url, &p), void(&url, &p, "S")]
    }).collect::<Vec<_>>()});
    let (status, answer) = h.post("/v1/notifications/batch", &batch).await;
    assert_eq!(status, 200, "{answer}");
    let ids: Vec<String> = items(&answer).into_iter().map(|(_, _, id)| id).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "ids follow accept order");
    // Replayed from the store, in the store's order.
    h.restart().await;
    assert_eq!(h.merchant.count(), 0, "stopped before any attempt was due");
    h.wait_received((2 * PAIRS) as u64).await;
    let received = h.merchant.received();
    for i in 0..PAIRS {
        let p = format!("PAY-ORDER-{i}");
        let at = |needle: &str| {
            received
                .iter()
                .position(|r| {
                    let body = String::from_utf8_lossy(&r.body);
                    body.contains(&format!("\"{p}\"")) && body.contains(needle)
                })
                .unwrap_or_else(|| panic!("{p} {needle} never arrived"))
        };
        assert!(
            at("paymentStatus") < at("voidRequestId"),
            "{p}: the void went out before its payment"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_profile_with_pending_notifications_stops_the_start() {
    let mut h = Harness::start_extra("U", strict_loopback, |_| {}).await;
    schedule(&mut h, "strict", &[3_600_000]);
    h.restart().await;
    for i in 0..3 {
        let mut env = payment(&h.merchant_url("/n"), &format!("PAY-STRICT-{i}"));
        env["profile"] = json!("strict");
        h.submit(&env).await;
    }
    h.notifyd.take().unwrap().shutdown().await;
    let mut without = h.config.clone();
    without.profiles.remove("strict");
    let err = run::start(&without).await.unwrap_err();
    assert!(
        matches!(&err, StartError::MissingProfiles(m) if m == &[("strict".to_owned(), 3)]),
        "{err}"
    );
    assert_eq!(err.exit_code(), 64);
    // With the profile back, they are all there.
    h.notifyd = Some(run::start(&h.config).await.unwrap());
    assert_eq!(h.notifyd.as_ref().unwrap().app.dispatcher.pending(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeliver_under_a_removed_profile_changes_nothing() {
    let h = Harness::start_extra("F", strict_loopback, |_| {}).await;
    let mut env = payment(&h.merchant_url("/n"), "PAY-GONE");
    env["profile"] = json!("strict");
    let id = h.submit(&env).await;
    h.wait_state(&id, "failed").await;
    // A reload that drops the profile.
    let mut without = h.config.clone();
    without.profiles.remove("strict");
    let profiles = notifyd_daemon::profile::build_profiles(&without).unwrap();
    h.notifyd.as_ref().unwrap().app.replace_profiles(profiles);
    let (status, answer) = h
        .post(&format!("/v1/notifications/{id}/redeliver"), &json!({}))
        .await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["result"]["resultMessage"]
            .as_str()
            .unwrap()
            .contains("\"strict\""),
        "{answer}"
    );
    assert_eq!(
        h.status(&id).await["state"],
        "failed",
        "the store is unchanged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeat_within_retention_is_recognised_after_the_table_evicted_its_key() {
    // 64 keys in memory (one per shard), far fewer than the notifications accepted.
    let mut h = Harness::start_with("S", |c| {
        c.store.idempotency_capacity = std::num::NonZeroU64::new(64).unwrap();
    })
    .await;
    let url = h.merchant_url("/n");
    let first = payment(&url, "PAY-EVICTED-0");
    let first_id = h.submit(&first).await;
    let batch = json!({"notifications": (1..300).map(|i| payment(&url, &format!("PAY-EVICTED-{i}"))).collect::<Vec<_>>()});
    let (status, answer) = h.post("/v1/notifications/batch", &batch).await;
    assert_eq!(status, 200, "{answer}");
    let metrics = h.scrape().await;
    let evicted: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("notifyd_idempotency_evicted_total "))
        .expect("the eviction counter is exported")
        .parse()
        .unwrap();
    assert!(evicted > 0.0, "{metrics}");

    let mut changed = first.clone();
    changed["body"]["paymentAmount"]["value"] = json!("99999");
    for round in ["live", "after a restart"] {
        let (status, answer) = h.post("/v1/notifications", &changed).await;
        assert_eq!(status, 409, "{round}: {answer}");
        assert_eq!(answer["notificationId"], json!(first_id), "{round}");
        let (status, answer) = h.post("/v1/notifications", &first).await;
        assert_eq!(
            (status, &answer["duplicate"]),
            (200, &json!(true)),
            "{round}: {answer}"
        );
        assert_eq!(answer["notificationId"], json!(first_id), "{round}");
        // A batch goes the same way.
        let (_, answer) = h
            .post(
                "/v1/notifications/batch",
                &json!({"notifications": [changed.clone()]}),
            )
            .await;
        assert_eq!(answer["results"][0]["status"], 409, "{round}: {answer}");
        h.restart().await;
    }
    // Nothing was stored twice: 300 notifications, 300 deliveries.
    h.wait_received(300).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(h.merchant.count(), 300);
}
