//! The operator's view of one notification (CONTRACT.md §2.1): `attemptLog` and `waitingFor`,
//! and `ackRatio15m` of `GET /v1/endpoints`, against the in-process daemon.

mod support;

use support::{Harness, payment};

#[tokio::test]
async fn the_attempt_log_shows_each_answer_in_order() {
    let h = Harness::start("U,S").await;
    let id = h
        .submit(&payment(&h.merchant_url("/notify"), "PAY-LOG"))
        .await;
    let s = h.wait_state(&id, "delivered").await;
    let log = s["attemptLog"].as_array().expect("attemptLog is a list");
    assert_eq!(log.len(), 2, "{s}");
    assert_eq!(log[0]["result"], "U UNKNOWN_EXCEPTION", "{s}");
    assert_eq!(log[1]["result"], "S SUCCESS", "{s}");
    for e in log {
        assert_eq!(e["httpStatus"], 200, "{e}");
        assert_eq!(e["signature"], "not_checked", "{e}");
        assert!(e["durationMs"].is_u64(), "{e}");
        assert!(e["at"].as_str().unwrap().ends_with("+00:00"), "{e}");
    }
    assert!(
        log[0]["responseBody"]
            .as_str()
            .unwrap()
            .contains("UNKNOWN_EXCEPTION"),
        "{s}"
    );
    assert_eq!(log[1]["responseBody"], "", "a plain S keeps no body: {s}");
    assert!(log[0]["at"].as_str() < log[1]["at"].as_str());
    assert!(
        s.get("waitingFor").is_none(),
        "only a waiting one has it: {s}"
    );

    // ackRatio15m: one S out of two answers.
    let (_, list) = h.get("/v1/endpoints").await;
    assert_eq!(list["endpoints"][0]["ackRatio15m"], 0.5, "{list}");
}

#[tokio::test]
async fn a_transport_error_has_no_http_status() {
    let h = Harness::start("S").await;
    // Nothing listens on port 9 of loopback.
    let id = h
        .submit(&payment("http://127.0.0.1:9/notify", "PAY-DOWN"))
        .await;
    let s = h.wait_state(&id, "dead").await;
    let log = s["attemptLog"].as_array().unwrap();
    assert_eq!(log.len(), 3, "{s}");
    for e in log {
        assert!(e.get("httpStatus").is_none(), "{e}");
        assert!(
            e["result"]
                .as_str()
                .unwrap()
                .starts_with("transport_error: "),
            "{e}"
        );
        assert_eq!(e["responseBody"], "", "{e}");
    }
    let (_, list) = h.get("/v1/endpoints").await;
    assert_eq!(list["endpoints"][0]["ackRatio15m"], 0.0, "{list}");
}

#[tokio::test]
async fn a_later_notification_of_a_payment_says_what_it_waits_for() {
    let h = Harness::start("S").await;
    let endpoint = h.merchant.addr().to_string();
    let (status, _) = h.hold(&endpoint, true).await;
    assert_eq!(status, 200);
    let url = h.merchant_url("/notify");
    let first = h.submit(&payment(&url, "PAY-ORDER")).await;
    let second = h.submit(&support::void(&url, "PAY-ORDER", "S")).await;
    let s1 = h.status(&first).await;
    let s2 = h.status(&second).await;
    assert!(
        s1.get("waitingFor").is_none(),
        "the first waits for nobody: {s1}"
    );
    assert_eq!(s2["waitingFor"], first.as_str(), "{s2}");
    assert_eq!(s2["attemptLog"], serde_json::json!([]), "{s2}");
    h.hold(&endpoint, false).await;
    let s2 = h.wait_state(&second, "delivered").await;
    assert!(s2.get("waitingFor").is_none(), "{s2}");
}
