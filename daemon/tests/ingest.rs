//! The ingest API (CONTRACT.md §2): every answer code, duplicates, batches (inquiryPayment has
//! its own file, `inquiry.rs`).

mod support;

use std::time::Duration;

use serde_json::json;
use support::{Harness, payment, void};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_input_names_the_field_and_changes_nothing() {
    let h = Harness::start("S").await;
    let mut env = payment(&h.merchant_url("/n"), "PAY-V");
    env["body"]["paymentAmount"]["value"] = json!("1.00");
    let (status, body) = h.post("/v1/notifications", &env).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["result"],
        json!({"resultStatus": "F", "resultCode": "PARAM_ILLEGAL", "resultMessage": "body.paymentAmount.value: must be 1 to 16 digits"})
    );
    // Not stored: the corrected notification is new, not inconsistent.
    env["body"]["paymentAmount"]["value"] = json!("100");
    h.submit(&env).await;

    for (bad, msg) in [
        (json!({"api": "notifyPayment"}), "url: is required"),
        (json!("not an object"), "must be a JSON object"),
    ] {
        let (status, body) = h.post("/v1/notifications", &bad).await;
        assert_eq!(
            (status, body["result"]["resultMessage"].as_str()),
            (400, Some(msg))
        );
    }
    let mut unknown_profile = payment(&h.merchant_url("/n"), "PAY-V2");
    unknown_profile["profile"] = json!("nope");
    let (status, body) = h.post("/v1/notifications", &unknown_profile).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["result"]["resultMessage"],
        "profile: no profile named \"nope\" is configured"
    );
    let mut strict = payment(&h.merchant_url("/n"), "PAY-V3");
    strict["profile"] = json!("strict");
    let (status, body) = h.post("/v1/notifications", &strict).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["result"]["resultMessage"],
        "url: plain http:// is not allowed by profile \"strict\" (allow_http = false)"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        h.merchant.count(),
        1,
        "only the valid notification went out"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413() {
    let h = Harness::start_with("S", |c| c.ingest.max_body_bytes = 1024.try_into().unwrap()).await;
    let mut env = payment(&h.merchant_url("/n"), "PAY-BIG");
    env["body"]["extendInfo"] = json!("x".repeat(2000));
    let (status, body) = h.post("/v1/notifications", &env).await;
    assert_eq!(status, 413);
    assert_eq!(body["result"]["resultCode"], "PARAM_ILLEGAL");
    assert_eq!(
        body["result"]["resultMessage"],
        "body: must be at most 1024 bytes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeats_are_duplicates_or_inconsistent() {
    let h = Harness::start("S").await;
    let env = payment(&h.merchant_url("/n"), "PAY-DUP");
    let id = h.submit(&env).await;
    let (status, body) = h.post("/v1/notifications", &env).await;
    assert_eq!(status, 200);
    assert_eq!(body["duplicate"], true);
    assert_eq!(body["notificationId"], id.as_str());
    let mut changed = env.clone();
    changed["body"]["paymentStatus"] = json!("FAIL");
    let (status, body) = h.post("/v1/notifications", &changed).await;
    assert_eq!(status, 409);
    assert_eq!(body["result"]["resultCode"], "REPEAT_REQ_INCONSISTENT");
    assert_eq!(body["result"]["resultStatus"], "F");
    h.wait_state(&id, "delivered").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(h.merchant.count(), 1, "repeats are never delivered again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_copies_are_stored_once() {
    let h = std::sync::Arc::new(Harness::start("S").await);
    let env = payment(&h.merchant_url("/n"), "PAY-RACE");
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (h, env) = (h.clone(), env.clone());
        tasks.push(tokio::spawn(async move {
            h.post("/v1/notifications", &env).await
        }));
    }
    let mut ids = std::collections::HashSet::new();
    let mut fresh = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 200, "{body}");
        ids.insert(body["notificationId"].as_str().unwrap().to_owned());
        if body.get("duplicate").is_none() {
            fresh += 1;
        }
    }
    assert_eq!(
        (ids.len(), fresh),
        (1, 1),
        "one notification, one first answer"
    );
    h.wait_received(1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(h.merchant.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_judge_each_item() {
    let h = Harness::start("S").await;
    let url = h.merchant_url("/n");
    let mut bad = payment(&url, "PAY-B2");
    bad["body"]["paymentStatus"] = json!("PAID");
    let items = json!({"notifications": [payment(&url, "PAY-B1"), bad, payment(&url, "PAY-B1"), void(&url, "PAY-B1", "S")]});
    let (status, body) = h.post("/v1/notifications/batch", &items).await;
    assert_eq!(status, 200, "{body}");
    let r = body["results"].as_array().unwrap();
    assert_eq!(r.len(), 4);
    assert_eq!(r[0]["result"]["resultStatus"], "S");
    assert_eq!(
        r[1]["result"]["resultMessage"],
        "body.paymentStatus: must be SUCCESS or FAIL"
    );
    assert_eq!(r[1]["status"], 400);
    assert_eq!(
        r[2]["duplicate"], true,
        "a repeat inside the batch: {}",
        r[2]
    );
    assert_eq!(r[2]["notificationId"], r[0]["notificationId"]);
    assert_eq!(r[3]["result"]["resultStatus"], "S");
    h.wait_state(r[3]["notificationId"].as_str().unwrap(), "delivered")
        .await;
    assert_eq!(h.merchant.count(), 2);

    let (status, body) = h
        .post("/v1/notifications/batch", &json!({"notifications": []}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["result"]["resultMessage"],
        "notifications: must hold 1 to 1000 notifications"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_answers_429_with_retry_after() {
    let h = Harness::start_with("STALL", |c| c.ingest.max_pending = 1.try_into().unwrap()).await;
    h.submit(&payment(&h.merchant_url("/n"), "PAY-Q1")).await;
    let (status, body, headers) = h
        .request(
            "POST",
            "/v1/notifications",
            Some(&payment(&h.merchant_url("/n"), "PAY-Q2")),
        )
        .await;
    assert_eq!(status, 429);
    assert_eq!(body["result"]["resultStatus"], "U");
    assert_eq!(body["result"]["resultCode"], "REQUEST_TRAFFIC_EXCEED_LIMIT");
    assert!(headers.get("retry-after").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ids_and_routes() {
    let h = Harness::start("S").await;
    let (status, _) = h.get("/v1/notifications/01ARZ3NDEKTSV4RRFFQ69G5FAV").await;
    assert_eq!(status, 404);
    let (status, _) = h.get("/v1/notifications/not-an-id").await;
    assert_eq!(status, 404);
    let (status, _) = h.get("/v1/nothing").await;
    assert_eq!(status, 405);
    let (status, body) = h.get("/readyz").await;
    assert_eq!(
        (status, body["result"]["resultStatus"].as_str()),
        (200, Some("S"))
    );
    let (status, _) = h.get("/v1/dead-letters?limit=0").await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_listeners_answer_readyz_alike() {
    let h = Harness::start("S").await;
    assert_eq!(
        h.get("/readyz").await,
        h.get_metrics_listener("/readyz").await
    );
    h.notifyd.as_ref().unwrap().app.set_stopping();
    let ingest = h.get("/readyz").await;
    assert_eq!(ingest.0, 503);
    assert_eq!(ingest.1["result"]["resultMessage"], "shutting down");
    assert_eq!(ingest, h.get_metrics_listener("/readyz").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_answers_503_and_keeps_nothing() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let fail = Arc::new(AtomicUsize::new(0));
    let mut h = Harness::start("S").await;
    // Restart the daemon on the same store with the fault hook armed.
    h.notifyd.take().unwrap().shutdown().await;
    let opts = notifyd_daemon::store::StoreOptions {
        fail_next_commits: Some(fail.clone()),
        ..Default::default()
    };
    h.notifyd = Some(
        notifyd_daemon::run::start_with(&h.config, opts)
            .await
            .unwrap(),
    );

    let env = payment(&h.merchant_url("/n"), "PAY-DISK");
    fail.store(1, Ordering::SeqCst);
    let (status, body) = h.post("/v1/notifications", &env).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["result"]["resultStatus"], "U");
    assert_eq!(body["result"]["resultCode"], "UNKNOWN_EXCEPTION");
    assert!(
        body.get("notificationId").is_none(),
        "no id for what was not stored"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(h.merchant.count(), 0, "nothing not durable is delivered");

    // The key was released: the gateway's retry is a new, accepted notification.
    let (status, body) = h.post("/v1/notifications", &env).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("duplicate").is_none());
    h.wait_state(body["notificationId"].as_str().unwrap(), "delivered")
        .await;
}
