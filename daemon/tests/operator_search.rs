//! Operator search and bulk redelivery (CONTRACT.md §2.1) against the in-process daemon.

mod support;

use serde_json::json;
use support::{Harness, payment};

#[tokio::test]
async fn search_filters_pages_and_names_a_bad_filter() {
    let h = Harness::start("F").await;
    let url = h.merchant_url("/notify");
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(h.submit(&payment(&url, &format!("PAY-S{n}"))).await);
    }
    let down = h
        .submit(&payment("http://127.0.0.1:9/notify", "PAY-DOWN"))
        .await;
    for id in &ids {
        h.wait_state(id, "failed").await;
    }
    h.wait_state(&down, "dead").await;

    let (status, all) = h.get("/v1/notifications").await;
    assert_eq!(status, 200, "{all}");
    let listed: Vec<&str> = all["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["notificationId"].as_str().unwrap())
        .collect();
    let mut newest_first: Vec<&str> = ids.iter().map(String::as_str).collect();
    newest_first.push(&down);
    newest_first.reverse();
    assert_eq!(listed, newest_first, "newest first");
    assert_eq!(all["nextCursor"], json!(null));

    let (_, one) = h.get("/v1/notifications?paymentId=PAY-S3").await;
    assert_eq!(one["notifications"][0]["notificationId"], ids[3].as_str());
    assert_eq!(one["notifications"].as_array().unwrap().len(), 1);
    let (_, by_req) = h
        .get("/v1/notifications?paymentRequestId=REQ-PAY-S1&partnerId=P0001")
        .await;
    assert_eq!(
        by_req["notifications"][0]["notificationId"],
        ids[1].as_str()
    );

    let (_, dead) = h.get("/v1/notifications?state=dead").await;
    assert_eq!(dead["notifications"].as_array().unwrap().len(), 1, "{dead}");
    assert_eq!(dead["notifications"][0]["notificationId"], down.as_str());
    let endpoint = h.merchant.addr().to_string();
    let (_, at) = h
        .get(&format!(
            "/v1/notifications?endpoint={endpoint}&state=failed"
        ))
        .await;
    assert_eq!(at["notifications"].as_array().unwrap().len(), 5, "{at}");
    let (_, future) = h.get("/v1/notifications?since=2999-01-01T00:00:00Z").await;
    assert_eq!(future["notifications"], json!([]));

    // Pages of 2: 3 pages, each id once.
    let mut seen = Vec::new();
    let mut path = "/v1/notifications?limit=2".to_owned();
    loop {
        let (status, page) = h.get(&path).await;
        assert_eq!(status, 200, "{page}");
        for n in page["notifications"].as_array().unwrap() {
            seen.push(n["notificationId"].as_str().unwrap().to_owned());
        }
        match page["nextCursor"].as_str() {
            Some(c) => path = format!("/v1/notifications?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, newest_first);

    let (status, bad) = h.get("/v1/notifications?state=lost").await;
    assert_eq!(status, 400, "{bad}");
    assert_eq!(bad["result"]["resultCode"], "PARAM_ILLEGAL");
    assert!(
        bad["result"]["resultMessage"]
            .as_str()
            .unwrap()
            .starts_with("state:"),
        "{bad}"
    );
    let (status, bad) = h.get("/v1/notifications?paymentid=x").await;
    assert_eq!(
        status, 400,
        "a misspelt filter is refused, not ignored: {bad}"
    );
}

#[tokio::test]
async fn bulk_redeliver_counts_dry_and_restarts_only_dead_and_failed() {
    let h = Harness::start("F").await;
    let url = h.merchant_url("/notify");
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(h.submit(&payment(&url, &format!("PAY-B{n}"))).await);
    }
    for id in &ids {
        h.wait_state(id, "failed").await;
    }
    let other = h.submit(&payment(&url, "PAY-OTHER")).await;
    h.wait_state(&other, "failed").await;
    h.wait_received(4).await;

    let (status, dry) = h
        .post(
            "/v1/redeliver",
            &json!({"paymentRequestId": "REQ-PAY-B1", "dryRun": true}),
        )
        .await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(
        (dry["matched"].clone(), dry["redelivered"].clone()),
        (json!(1), json!(0))
    );
    let (_, dry) = h
        .post("/v1/redeliver", &json!({"state": "failed", "dryRun": true}))
        .await;
    assert_eq!(dry["matched"], 4, "{dry}");
    assert_eq!(h.merchant.count(), 4, "a dry run sends nothing");
    let (_, pending) = h
        .post(
            "/v1/redeliver",
            &json!({"state": "pending", "dryRun": true}),
        )
        .await;
    assert_eq!(
        pending["matched"], 0,
        "pending ones are never redelivered: {pending}"
    );

    let endpoint = h.merchant.addr().to_string();
    let (status, done) = h
        .post(
            "/v1/redeliver",
            &json!({"endpoint": endpoint, "since": "2000-01-01T00:00:00Z", "dryRun": false}),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        (done["matched"].clone(), done["redelivered"].clone()),
        (json!(4), json!(4))
    );
    h.wait_received(8).await;
    for id in ids.iter().chain([&other]) {
        let s = h
            .wait_for(id, |s| {
                s["state"] == "failed" && s["attemptLog"].as_array().unwrap().len() == 2
            })
            .await;
        assert_eq!(s["attempts"], 1, "{s}");
    }

    let (status, bad) = h
        .post("/v1/redeliver", &json!({"paymentId": "P", "dryrun": true}))
        .await;
    assert_eq!(status, 400, "{bad}");
    assert!(
        bad["result"]["resultMessage"]
            .as_str()
            .unwrap()
            .starts_with("dryrun: not a filter"),
        "{bad}"
    );
}
