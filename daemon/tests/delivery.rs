//! Delivery against a real receiver on loopback: every ack class, retries, dead letters,
//! redelivery, throttling, per-payment order (CONTRACT.md §3).

mod support;

use std::time::Duration;

use notifyd_core::Envelope;
use notifyd_daemon::mock_merchant::Respond;
use support::{Harness, payment, void};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s_answer_delivers_the_canonical_bytes_once() {
    let h = Harness::start("S").await;
    let env = payment(&h.merchant_url("/v1/payments/notifyPayment"), "PAY-S");
    let id = h.submit(&env).await;
    let s = h.wait_state(&id, "delivered").await;
    assert_eq!(s["attempts"], 1);
    assert_eq!(s["lastResult"], "S SUCCESS");
    assert!(
        s["finishedAt"].is_string() && s["nextAttemptAt"].is_null(),
        "{s}"
    );
    let got = h.merchant.received();
    assert_eq!(got.len(), 1);
    let expected = Envelope::parse(&mut serde_json::to_vec(&env).unwrap())
        .unwrap()
        .encode();
    assert_eq!(
        got[0].body.as_ref(),
        expected.as_slice(),
        "the body is the canonical encoding"
    );
    assert_eq!(got[0].path(), "/v1/payments/notifyPayment");
    assert_eq!(got[0].method, http::Method::POST);
    assert_eq!(
        got[0].content_type.as_ref().and_then(|v| v.to_str().ok()),
        Some("application/json; charset=UTF-8")
    );
    assert!(
        got[0].signature.is_none(),
        "unsigned profile sends no Signature"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f_answer_fails_for_good_and_is_a_dead_letter() {
    let h = Harness::start("F").await;
    let id = h.submit(&payment(&h.merchant_url("/n"), "PAY-F")).await;
    let s = h.wait_state(&id, "failed").await;
    assert_eq!(s["attempts"], 1, "a permanent F is never retried");
    assert!(
        s["lastResult"]
            .as_str()
            .unwrap()
            .starts_with("F PROCESS_FAIL"),
        "{s}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.merchant.count(), 1);
    let (status, dl) = h.get("/v1/dead-letters?limit=10").await;
    assert_eq!(status, 200);
    assert_eq!(dl["notifications"][0]["notificationId"], id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_resend_identical_bytes_until_s() {
    let h = Harness::start("U,SYSTEM_ERROR,S").await;
    let id = h.submit(&payment(&h.merchant_url("/n"), "PAY-R")).await;
    let s = h.wait_state(&id, "delivered").await;
    assert_eq!(s["attempts"], 3);
    let got = h.merchant.received();
    assert_eq!(got.len(), 3);
    assert!(
        got.iter().all(|r| r.body == got[0].body),
        "every attempt sends the same bytes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_answers_are_retried_then_dead_then_redelivered() {
    // 500, garbage, and U: none is an answer; the 3-attempt schedule runs out.
    let h = Harness::start("500,GARBAGE,U").await;
    let id = h.submit(&payment(&h.merchant_url("/n"), "PAY-D")).await;
    let s = h.wait_state(&id, "dead").await;
    assert_eq!(s["attempts"], 3);
    assert_eq!(h.merchant.count(), 3);
    let (_, dl) = h.get("/v1/dead-letters").await;
    assert_eq!(dl["notifications"][0]["state"], "dead");

    h.merchant.set_mode("S".parse::<Respond>().unwrap());
    let (status, body) = h
        .post(
            &format!("/v1/notifications/{id}/redeliver"),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let s = h.wait_state(&id, "delivered").await;
    assert_eq!(s["attempts"], 1, "a redelivery starts a fresh schedule");
    assert_eq!(h.merchant.count(), 4);

    let (status, body) = h
        .post(
            &format!("/v1/notifications/{id}/redeliver"),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(
        status, 409,
        "a delivered notification is not redelivered: {body}"
    );
    let (status, _) = h
        .post(
            "/v1/notifications/01ARZ3NDEKTSV4RRFFQ69G5FAV/redeliver",
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_errors_and_timeouts_are_retried() {
    // Nothing listens on 127.0.0.1:9 (discard): connection refused.
    let h = Harness::start("STALL").await;
    let refused = h.submit(&payment("http://127.0.0.1:9/n", "PAY-T1")).await;
    let s = h.wait_state(&refused, "dead").await;
    assert!(
        s["lastResult"].as_str().unwrap().starts_with(
            "retry: transport_error: connect_refused: the receiver refused the connection: "
        ),
        "{s}"
    );
    // STALL never answers: each attempt hits the 1 s attempt timeout.
    let stalled = h.submit(&payment(&h.merchant_url("/n"), "PAY-T2")).await;
    let s = h.wait_for(&stalled, |s| s["attempts"] == 1).await;
    assert_eq!(s["lastResult"], "retry: timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_pauses_the_endpoint_briefly_and_the_notification_keeps_its_backoff() {
    let h = Harness::start("THROTTLE").await;
    let first = h.submit(&payment(&h.merchant_url("/n"), "PAY-TH1")).await;
    let s = h.wait_for(&first, |s| s["attempts"] == 1).await;
    assert_eq!(s["state"], "pending");
    assert_eq!(s["lastResult"], "throttled by the receiver");
    // BACKOFF_HARD for the notification: at least 60 s before its next attempt (PROTOCOL.md §8).
    let accepted = s["acceptedAt"].as_str().unwrap().to_owned();
    let next = s["nextAttemptAt"].as_str().unwrap().to_owned();
    let secs = |t: &str| notifyd_core::model::datetime::to_unix_millis(t).unwrap().0 / 1000;
    assert!(secs(&next) >= secs(&accepted) + 59, "{accepted} → {next}");
    // Metrics are per process, and tests in this file run in parallel: at least this one.
    let metrics = h.scrape().await;
    let paused = metrics
        .lines()
        .find_map(|l| l.strip_prefix("notifyd_endpoints{state=\"paused\"} "))
        .and_then(|v| v.parse::<f64>().ok());
    assert!(paused >= Some(1.0), "{metrics}");
    // Another payment to the same endpoint is due now, but the endpoint pauses for 1 s first.
    h.merchant.set_mode("S".parse::<Respond>().unwrap());
    let second = h.submit(&payment(&h.merchant_url("/n"), "PAY-TH2")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        h.merchant.count(),
        1,
        "nothing is sent to a throttling endpoint during its pause"
    );
    // The pause ends long before the throttled notification's own 60 s.
    h.wait_state(&second, "delivered").await;
    let s = h.status(&first).await;
    assert_eq!(
        (s["state"].as_str(), s["attempts"].as_u64()),
        (Some("pending"), Some(1)),
        "{s}"
    );
    // A different endpoint is not affected.
    let other = format!("http://localhost:{}/n", h.merchant.addr().port());
    let third = h.submit(&payment(&other, "PAY-TH3")).await;
    h.wait_state(&third, "delivered").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_429_throttles_too() {
    let h = Harness::start("429").await;
    let id = h.submit(&payment(&h.merchant_url("/n"), "PAY-429")).await;
    let s = h.wait_for(&id, |s| s["attempts"] == 1).await;
    assert_eq!(s["state"], "pending");
    assert_eq!(s["lastResult"], "throttled by the receiver");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_payment_is_delivered_in_accept_order() {
    // The payment notification meets U once; the void for the same payment must wait for it.
    let h = Harness::start("U,S,S").await;
    let url = h.merchant_url("/n");
    let pay = h.submit(&payment(&url, "PAY-O")).await;
    let vd = h.submit(&void(&url, "PAY-O", "S")).await;
    h.wait_state(&vd, "delivered").await;
    h.wait_state(&pay, "delivered").await;
    let apis: Vec<bool> = h
        .merchant
        .received()
        .iter()
        .map(|r| r.body.starts_with(b"{\"partnerId\""))
        .collect();
    assert_eq!(
        apis,
        vec![true, true, false],
        "payment, payment again, then the void"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn different_payments_do_not_wait_for_each_other() {
    let h = Harness::start("STALL").await;
    let url = h.merchant_url("/n");
    let _stuck = h.submit(&payment(&url, "PAY-A")).await;
    h.wait_received(1).await;
    h.merchant.set_mode("S".parse::<Respond>().unwrap());
    let other = h.submit(&payment(&url, "PAY-B")).await;
    h.wait_state(&other, "delivered").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_schedule_entry_delays_the_first_attempt() {
    let h = Harness::start_with("S", |c| {
        if let Some(p) = c.profiles.get_mut("default") {
            p.retry = notifyd_core::backoff::RetryPolicy::schedule(
                vec![Duration::from_millis(700), Duration::from_millis(100)],
                0.0,
            )
            .unwrap();
        }
    })
    .await;
    let id = h.submit(&payment(&h.merchant_url("/n"), "PAY-LATER")).await;
    let s = h.status(&id).await;
    let at = |k: &str| {
        notifyd_core::model::datetime::to_unix_millis(s[k].as_str().unwrap())
            .unwrap()
            .0
    };
    assert_eq!(at("nextAttemptAt") - at("acceptedAt"), 700, "{s}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.merchant.count(), 0, "not before its first delay");
    h.wait_state(&id, "delivered").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_hold_outlives_a_restart_until_resumed() {
    let mut h = Harness::start("S").await;
    let endpoint = h.merchant.addr().to_string();
    let (status, _) = h.hold(&endpoint, true).await;
    assert_eq!(status, 200);
    let id = h
        .submit(&payment(&h.merchant_url("/n"), "PAY-HOLD-R"))
        .await;
    h.restart().await;
    let (_, list) = h.get("/v1/endpoints").await;
    let e = &list["endpoints"][0];
    assert_eq!(
        (
            e["endpoint"].as_str(),
            e["state"].as_str(),
            e["pending"].as_u64()
        ),
        (Some(endpoint.as_str()), Some("held"), Some(1)),
        "{list}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        h.merchant.count(),
        0,
        "held again before recovery queued it"
    );
    let (status, _) = h.hold(&endpoint, false).await;
    assert_eq!(status, 200);
    h.wait_state(&id, "delivered").await;
    // The resume is kept too: a second restart holds nothing.
    h.restart().await;
    let (_, list) = h.get("/v1/endpoints").await;
    assert!(
        list["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["state"] != "held"),
        "{list}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_hold_stops_an_endpoint_without_spending_attempts_until_resume() {
    let h = Harness::start("S").await;
    let endpoint = h.merchant.addr().to_string();
    let (status, body) = h.hold(&endpoint, true).await;
    assert_eq!(
        (status, body["changed"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    let id = h.submit(&payment(&h.merchant_url("/n"), "PAY-HOLD")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.merchant.count(), 0, "nothing is sent to a held endpoint");
    let s = h.status(&id).await;
    assert_eq!(
        (s["state"].as_str(), s["attempts"].as_u64()),
        (Some("pending"), Some(0))
    );
    let (status, list) = h.get("/v1/endpoints").await;
    assert_eq!(status, 200, "{list}");
    let e = &list["endpoints"][0];
    assert_eq!(e["endpoint"], endpoint.as_str(), "{list}");
    assert_eq!(e["state"], "held", "{list}");
    assert_eq!(
        (e["pending"].as_u64(), e["heldByOperator"].as_bool()),
        (Some(1), Some(true))
    );

    let (status, body) = h.hold(&endpoint, false).await;
    assert_eq!(
        (status, body["changed"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    let s = h.wait_state(&id, "delivered").await;
    assert_eq!(s["attempts"], 1, "the hold spent no attempt");
    let (_, list) = h.get("/v1/endpoints").await;
    assert_eq!(list["endpoints"][0]["state"], "ok", "{list}");
    assert!(list["endpoints"][0]["lastSuccessAt"].is_string(), "{list}");
}
