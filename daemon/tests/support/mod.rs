//! Test harness: a real notifyd (the library's `run::start`) on loopback with a real store in a
//! temporary directory, the mock merchant as receiver, and a small HTTP client.
#![allow(dead_code)]

pub mod process;
pub mod proxy;
mod skip;
pub mod trust;

#[allow(unused_imports)] // each test binary uses a different subset
pub use skip::skip;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use notifyd_daemon::config::{Config, Overrides};
use notifyd_daemon::mock_merchant::{MockMerchant, Respond};
use notifyd_daemon::run::{self, Running};
use serde_json::{Value, json};

/// A config for tests: short retry schedule, plain http to loopback allowed, ports chosen by the OS.
pub fn config(dir: &std::path::Path, extra: &str) -> Config {
    let text = format!(
        r#"
[store]
path = "{}"
[shutdown]
grace = "2s"
[profiles.default]
allow_http = true
allow_private = ["127.0.0.0/8"]
[profiles.default.retry]
kind = "schedule"
schedule = ["0s", "100ms", "100ms"]
jitter = 0.0
attempt_timeout = "1s"
[profiles.strict]
{extra}
"#,
        dir.display()
    );
    let mut c = Config::from_toml(&text, &Overrides::default()).unwrap_or_else(|p| panic!("{p:?}"));
    c.ingest.listen = "127.0.0.1:0".parse().unwrap();
    c.metrics.listen = "127.0.0.1:0".parse().unwrap();
    c
}

/// notifyd plus a merchant.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub config: Config,
    pub notifyd: Option<Running>,
    pub merchant: MockMerchant,
    pub client: Client<HttpConnector, Full<Bytes>>,
}

impl Harness {
    pub async fn start(mode: &str) -> Harness {
        Harness::start_with(mode, |_| {}).await
    }

    pub async fn start_with(mode: &str, tweak: impl FnOnce(&mut Config)) -> Harness {
        Harness::start_extra(mode, |_| String::new(), tweak).await
    }

    /// As [`Harness::start_with`], with `extra(dir)` appended to the config text right after the
    /// `[profiles.strict]` header: keys for that profile, then any further sections. `dir` is
    /// the harness's temporary directory, for key and certificate files.
    pub async fn start_extra(
        mode: &str,
        extra: impl FnOnce(&std::path::Path) -> String,
        tweak: impl FnOnce(&mut Config),
    ) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let extra = extra(dir.path());
        let mut config = config(dir.path(), &extra);
        tweak(&mut config);
        let merchant = MockMerchant::start(
            "127.0.0.1:0".parse().unwrap(),
            mode.parse::<Respond>().unwrap(),
        )
        .await
        .unwrap();
        let notifyd = run::start(&config).await.unwrap();
        let client = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
        Harness {
            dir,
            config,
            notifyd: Some(notifyd),
            merchant,
            client,
        }
    }

    pub fn ingest(&self) -> SocketAddr {
        self.notifyd.as_ref().unwrap().ingest
    }

    pub fn merchant_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.merchant.addr())
    }

    /// Stops notifyd (graceful) and starts it again on the same store.
    pub async fn restart(&mut self) -> bool {
        let drained = self.notifyd.take().unwrap().shutdown().await;
        self.notifyd = Some(run::start(&self.config).await.unwrap());
        drained
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value, http::HeaderMap) {
        self.request_at(self.ingest(), method, path, body).await
    }

    /// A GET on the metrics listener (health and readiness; `/metrics` is [`Harness::scrape`]).
    pub async fn get_metrics_listener(&self, path: &str) -> (u16, Value) {
        let addr = self.notifyd.as_ref().unwrap().metrics;
        let (s, v, _) = self.request_at(addr, "GET", path, None).await;
        (s, v)
    }

    async fn request_at(
        &self,
        addr: SocketAddr,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value, http::HeaderMap) {
        let uri = format!("http://{addr}{path}");
        let bytes = body
            .map(|b| serde_json::to_vec(b).unwrap())
            .unwrap_or_default();
        let req = http::Request::builder()
            .method(method)
            .uri(uri)
            .body(Full::new(Bytes::from(bytes)))
            .unwrap();
        let resp = self.client.request(req).await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        (status, json, headers)
    }

    /// As [`Harness::request`], with a bearer token.
    pub async fn request_with_token(
        &self,
        method: &str,
        path: &str,
        body: &Value,
        token: &str,
    ) -> (u16, Value, http::HeaderMap) {
        let req = http::Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.ingest()))
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(Bytes::from(serde_json::to_vec(body).unwrap())))
            .unwrap();
        let resp = self.client.request(req).await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&body).unwrap_or(Value::Null),
            headers,
        )
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let (s, v, _) = self.request("POST", path, Some(body)).await;
        (s, v)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let (s, v, _) = self.request("GET", path, None).await;
        (s, v)
    }

    /// An operator's hold (`true`) or resume of `endpoint` (`host:port`).
    pub async fn hold(&self, endpoint: &str, hold: bool) -> (u16, Value) {
        let verb = if hold { "hold" } else { "resume" };
        self.post(
            &format!("/v1/endpoints/{endpoint}/{verb}"),
            &serde_json::json!({}),
        )
        .await
    }

    /// Posts one envelope and returns the notification id, asserting it was accepted.
    pub async fn submit(&self, envelope: &Value) -> String {
        let (status, body) = self.post("/v1/notifications", envelope).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["result"]["resultStatus"], "S", "{body}");
        body["notificationId"].as_str().unwrap().to_owned()
    }

    pub async fn status(&self, id: &str) -> Value {
        let (status, body) = self.get(&format!("/v1/notifications/{id}")).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Waits (bounded) until the notification reaches `state`.
    pub async fn wait_state(&self, id: &str, state: &str) -> Value {
        self.wait_for(id, |s| s["state"] == state).await
    }

    /// Waits (bounded) until the notification's status satisfies `done`.
    pub async fn wait_for(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.status(id).await;
            if done(&s) {
                return s;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{id} never got there: {s}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The Prometheus exposition from the metrics listener; asserts 200 and the text format.
    pub async fn scrape(&self) -> String {
        let addr = self.notifyd.as_ref().unwrap().metrics;
        let client =
            Client::builder(TokioExecutor::new()).build_http::<http_body_util::Empty<Bytes>>();
        let resp = client
            .get(format!("http://{addr}/metrics").parse().unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(body.to_vec()).unwrap()
    }

    /// Waits (bounded) until the merchant has received `n` requests.
    pub async fn wait_received(&self, n: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.merchant.count() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "merchant got {} of {n}",
                self.merchant.count()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Shuts notifyd down (drain within its grace, store closed) before the temporary directory
/// goes, so a test that ends with notifyd running leaves no tasks writing into a removed store.
/// Needs the multi-threaded runtime the tests use (it blocks one worker); while a test panics it
/// only drops, as a second panic would abort the run.
impl Drop for Harness {
    fn drop(&mut self) {
        let Some(running) = self.notifyd.take() else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if std::thread::panicking()
            || rt.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread
        {
            return;
        }
        tokio::task::block_in_place(|| rt.block_on(running.shutdown()));
    }
}

/// A valid notifyPayment envelope for `payment`, to `url`.
pub fn payment(url: &str, payment: &str) -> Value {
    json!({
        "api": "notifyPayment",
        "url": url,
        "body": {
            "partnerId": "P0001",
            "paymentId": payment,
            "paymentRequestId": format!("REQ-{payment}"),
            "paymentAmount": {"currency": "USD", "value": "10000"},
            "paymentTime": "2019-11-27T12:01:01+08:30",
            "paymentStatus": "SUCCESS"
        }
    })
}

/// A valid notifyVoid envelope for `payment`, to `url`.
pub fn void(url: &str, payment: &str, result: &str) -> Value {
    json!({
        "api": "notifyVoid",
        "url": url,
        "body": {
            "voidResult": {"resultStatus": result, "resultCode": if result == "S" { "SUCCESS" } else { "PROCESS_FAIL" }},
            "voidRequestId": format!("VOID-{payment}"),
            "paymentId": payment,
            "voidAmount": {"currency": "USD", "value": "10000"}
        }
    })
}
