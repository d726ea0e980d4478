//! The operator's view through the real `notifyd` binary, one test body run on each store kind:
//! search, the attempt log, inquiry, bulk redelivery (dry run and real) and `/status.json` answer alike
//! on the embedded store and on PostgreSQL (a private cluster the test starts).

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use notifyd_daemon::mock_merchant::{MockMerchant, Respond};
use notifyd_daemon::test_pg::Cluster;
use serde_json::{Value, json};
use support::payment;
use support::process::{Home, call, client};

const RETRY: &str = r#"kind = "schedule"
schedule = ["0s", "100ms"]
jitter = 0.0
attempt_timeout = "1s""#;

struct Host {
    _home: Home,
    notifyd: support::process::Notifyd,
    http: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<bytes::Bytes>,
    >,
}

impl Host {
    /// The binary on a fresh home; on database `url` when given, else on its own redb file.
    async fn start(url: Option<String>) -> Host {
        let home = Home::new(RETRY, "");
        if let Some(url) = url {
            let text = std::fs::read_to_string(&home.config).unwrap();
            // The lease must outlast attempt_timeout + 10 s (check-config).
            let store = format!("[store]\nkind = \"postgres\"\nurl = \"{url}\"\nlease = \"15s\"\n");
            std::fs::write(&home.config, text.replacen("[store]\n", &store, 1)).unwrap();
        }
        let notifyd = home.spawn(&[]).await.expect("notifyd starts");
        Host {
            _home: home,
            notifyd,
            http: client(),
        }
    }

    async fn call(&self, method: &str, addr: SocketAddr, path: &str, body: &Value) -> Value {
        let body = if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(body).unwrap()
        };
        let (status, v) = call(&self.http, method, addr, path, body).await.unwrap();
        assert_eq!(status, 200, "{method} {path}: {v}");
        v
    }

    async fn get(&self, path: &str) -> Value {
        self.call("GET", self.notifyd.ingest, path, &Value::Null)
            .await
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call("POST", self.notifyd.ingest, path, &body).await
    }

    async fn wait_for(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.get(&format!("/v1/notifications/{id}")).await;
            if done(&s) {
                return s;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{id} never got there: {s}\n{}",
                self.notifyd.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn ids(page: &Value) -> Vec<String> {
    page["notifications"]
        .as_array()
        .unwrap_or_else(|| panic!("no notifications: {page}"))
        .iter()
        .map(|n| n["notificationId"].as_str().unwrap().to_owned())
        .collect()
}

/// Four notifications the receiver refuses for good (`failed`) and one to a closed port
/// (`dead`), then every operator read and a bulk redelivery.
async fn operator_body(url: Option<String>) {
    let merchant = MockMerchant::start("127.0.0.1:0".parse().unwrap(), Respond::Fail)
        .await
        .unwrap();
    let host = Host::start(url).await;
    let to = format!("http://{}/notify", merchant.addr());
    let mut failed = Vec::new();
    for n in 0..4 {
        let answer = host
            .post("/v1/notifications", payment(&to, &format!("PAY-O{n}")))
            .await;
        failed.push(answer["notificationId"].as_str().unwrap().to_owned());
    }
    let down = host
        .post(
            "/v1/notifications",
            payment("http://127.0.0.1:9/notify", "PAY-DOWN"),
        )
        .await["notificationId"]
        .as_str()
        .unwrap()
        .to_owned();
    for id in &failed {
        host.wait_for(id, |s| s["state"] == "failed").await;
    }
    host.wait_for(&down, |s| s["state"] == "dead").await;

    // Search: newest first, each filter, and pages that cover everything once.
    let mut newest_first: Vec<String> = failed.iter().cloned().chain([down.clone()]).collect();
    newest_first.reverse();
    assert_eq!(ids(&host.get("/v1/notifications").await), newest_first);
    assert_eq!(
        ids(&host.get("/v1/notifications?paymentId=PAY-O2").await),
        [failed[2].clone()]
    );
    assert_eq!(
        ids(&host
            .get("/v1/notifications?paymentRequestId=REQ-PAY-O1&partnerId=P0001")
            .await),
        [failed[1].clone()]
    );
    assert_eq!(
        ids(&host.get("/v1/notifications?state=dead").await),
        std::slice::from_ref(&down)
    );
    let endpoint = merchant.addr().to_string();
    let at = host
        .get(&format!(
            "/v1/notifications?endpoint={endpoint}&state=failed"
        ))
        .await;
    assert_eq!(ids(&at).len(), 4, "{at}");
    let page = host.get("/v1/notifications?limit=3").await;
    assert_eq!(ids(&page), newest_first[..3]);
    let cursor = page["nextCursor"].as_str().expect("a next page").to_owned();
    let rest = host
        .get(&format!("/v1/notifications?limit=3&cursor={cursor}"))
        .await;
    assert_eq!(ids(&rest), newest_first[3..]);
    assert_eq!(rest["nextCursor"], json!(null));

    // The attempt log of each.
    let one = host.get(&format!("/v1/notifications/{}", failed[0])).await;
    let log = one["attemptLog"].as_array().expect("attemptLog");
    assert_eq!(log.len(), 1, "{one}");
    assert_eq!(log[0]["httpStatus"], 200, "{one}");
    assert!(
        log[0]["result"].as_str().unwrap().starts_with("F "),
        "{one}"
    );
    let dead = host.get(&format!("/v1/notifications/{down}")).await;
    let log = dead["attemptLog"].as_array().expect("attemptLog");
    assert_eq!(log.len(), 2, "both attempts of the schedule: {dead}");
    assert_eq!(log[0]["httpStatus"], json!(null), "no answer: {dead}");

    // Inquiry answers from the store, by either id, narrowed by the partner named.
    const INQUIRY: &str = "/v1/payments/inquiryPayment";
    for ask in [
        json!({"paymentId": "PAY-O1"}),
        json!({"partnerId": "P0001", "paymentRequestId": "REQ-PAY-O1"}),
    ] {
        let a = host.post(INQUIRY, ask.clone()).await;
        assert_eq!(a["result"]["resultStatus"], "S", "{ask}: {a}");
        assert_eq!(a["paymentId"], "PAY-O1", "{ask}: {a}");
        assert_eq!(a["paymentStatus"], "SUCCESS", "{ask}: {a}");
    }
    let other = host
        .post(
            INQUIRY,
            json!({"partnerId": "OTHER", "paymentRequestId": "REQ-PAY-O1"}),
        )
        .await;
    assert_eq!(
        other["result"]["resultCode"], "UNKNOWN_EXCEPTION",
        "{other}"
    );

    // The status page counts them.
    let status = host
        .call("GET", host.notifyd.metrics, "/status.json", &Value::Null)
        .await;
    assert_eq!(status["health"]["storeReadable"], true, "{status}");
    assert_eq!(status["losing"]["failed"]["lastDay"], 4, "{status}");
    assert_eq!(status["losing"]["dead"]["lastDay"], 1, "{status}");

    // Bulk redelivery: a dry run counts and sends nothing, the real one starts them over.
    let dry = host
        .post("/v1/redeliver", json!({"state": "failed", "dryRun": true}))
        .await;
    assert_eq!(
        (&dry["matched"], &dry["redelivered"]),
        (&json!(4), &json!(0))
    );
    assert_eq!(merchant.count(), 4, "a dry run sends nothing");
    let done = host
        .post(
            "/v1/redeliver",
            json!({"endpoint": endpoint, "dryRun": false}),
        )
        .await;
    assert_eq!(
        (&done["matched"], &done["redelivered"]),
        (&json!(4), &json!(4))
    );
    for id in &failed {
        let s = host
            .wait_for(id, |s| {
                s["state"] == "failed" && s["attemptLog"].as_array().is_some_and(|l| l.len() == 2)
            })
            .await;
        assert_eq!(s["attempts"], 1, "a fresh delivery, the log kept: {s}");
    }
    assert_eq!(merchant.count(), 8);
    assert_eq!(
        ids(&host.get("/v1/notifications?state=dead").await),
        [down],
        "the dead one on another endpoint was not matched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_reads_and_redelivery_on_the_embedded_store() {
    operator_body(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_reads_and_redelivery_on_postgresql() {
    let cluster = match Cluster::start() {
        Ok(c) => c,
        Err(reason) => return support::skip(&reason),
    };
    operator_body(Some(cluster.database("operator").expect("createdb"))).await;
}
