//! `daemon/openapi.json` against the daemon it describes:
//!
//! - every route the routers serve is in the document and every documented operation is served
//!   (the routers' source read for the first half, real requests for the second);
//! - the answers of a real scenario (accept, repeat, refusals, get, search, attempts, endpoints,
//!   hold, redeliver, inquiry, the merchant listener, `/status.json`, ...) validate against the
//!   document's schemas, status codes, media types and required headers;
//! - schemathesis, run against the real binary on all three listeners: no 5xx, no answer that
//!   the document does not describe.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use support::Harness;
use support::trust::{secret, sigvec_dir};

const TOKEN: &str = "openapi-test-token";
const MERCHANT: &str = "SHOP1";
/// Methods probed on every documented path: the ones not documented there must not be served.
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The committed document.
fn document() -> Value {
    let path = manifest().join("openapi.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()))
}

/// Which listener an answer came from: the merchant listener's one operation is kept under
/// `components.pathItems` (its path is also the ingest listener's inquiry).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Listener {
    Ingest,
    Metrics,
    Merchant,
}

/// An HTTP answer as the document describes answers.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn code(&self) -> String {
        self.json()["result"]["resultCode"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The routers' own answer to a path or method they do not serve.
    fn unrouted(&self) -> bool {
        (self.status == 404 && self.code() == "NO_INTERFACE_DEF")
            || (self.status == 405 && self.code() == "METHOD_NOT_SUPPORTED")
    }
}

async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::copy_from_slice(body))).unwrap();
    let resp = client
        .request(req)
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body,
    }
}

/// The document, and checks of answers against it.
struct Spec {
    doc: Value,
}

impl Spec {
    fn load() -> Spec {
        Spec { doc: document() }
    }

    /// Follows a local `$ref` (`#/components/...`), if `v` is one.
    fn resolve<'a>(&'a self, v: &'a Value) -> &'a Value {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => self
                .doc
                .pointer(r.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("dangling $ref {r}")),
            None => v,
        }
    }

    fn operation(&self, listener: Listener, method: &str, template: &str) -> &Value {
        let item = match listener {
            Listener::Merchant => &self.doc["components"]["pathItems"]["merchantInquiryPayment"],
            _ => &self.doc["paths"][template],
        };
        let op = &item[method.to_ascii_lowercase()];
        assert!(
            op.is_object(),
            "{method} {template} ({listener:?}) is not in openapi.json"
        );
        op
    }

    /// Panics unless the answer is one the document gives for this operation: a documented
    /// status, its media type, its required headers and a body that validates.
    fn check(&self, listener: Listener, method: &str, template: &str, a: &Answer) {
        let what = format!("{method} {template} ({listener:?}) answered {}", a.status);
        let op = self.operation(listener, method, template);
        let response = op["responses"]
            .get(a.status.to_string())
            .map(|r| self.resolve(r))
            .unwrap_or_else(|| {
                panic!(
                    "{what}, a status openapi.json does not give: {}",
                    String::from_utf8_lossy(&a.body)
                )
            });
        if let Some(headers) = response["headers"].as_object() {
            for (name, h) in headers {
                let h = self.resolve(h);
                if h["required"] == true {
                    let value = a
                        .headers
                        .get(name.as_str())
                        .unwrap_or_else(|| panic!("{what} without its required header {name}"));
                    let value = json!(value.to_str().unwrap());
                    self.validate(&h["schema"], &value, &format!("{what}, header {name}"));
                }
            }
        }
        let media = a
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .unwrap_or_default()
            .trim()
            .to_owned();
        let content = &response["content"][&media];
        assert!(
            content.is_object(),
            "{what} as {media:?}, a media type openapi.json does not give for it"
        );
        let body = if media == "application/json" {
            serde_json::from_slice(&a.body).unwrap_or_else(|e| panic!("{what}: not JSON: {e}"))
        } else {
            Value::String(String::from_utf8(a.body.to_vec()).unwrap())
        };
        self.validate(&content["schema"], &body, &what);
    }

    /// Validates `instance` against `schema`, whose `$ref`s point into the document's
    /// components; `format` (date-time) is checked too.
    fn validate(&self, schema: &Value, instance: &Value, what: &str) {
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": self.doc["components"],
            "allOf": [schema],
        });
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("{what}: the document's schema does not compile: {e}"));
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{what}: the body breaks openapi.json:\n  {}\nbody: {instance}",
            errors.join("\n  ")
        );
    }

    /// Whether a documented operation of `l` answers `method` on the concrete `path` (a
    /// template's parameter matches any one segment: `/v1/notifications/batch` is also
    /// `GET /v1/notifications/{notificationId}`).
    fn serves(&self, l: Listener, method: &str, path: &str) -> bool {
        let fits = |template: &str| {
            let (t, p): (Vec<&str>, Vec<&str>) =
                (template.split('/').collect(), path.split('/').collect());
            t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| t.starts_with('{') || t == p)
        };
        self.operations()
            .iter()
            .any(|(ol, m, t)| *ol == l && m == method && fits(t))
    }

    /// Every documented operation as (listener, method, path template); health on both.
    fn operations(&self) -> Vec<(Listener, String, String)> {
        let mut ops = Vec::new();
        for (path, item) in self.doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let tags: Vec<&str> = op["tags"]
                    .as_array()
                    .map(|t| t.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let mut on = Vec::new();
                if tags.iter().any(|t| matches!(*t, "metrics" | "status-page")) {
                    on.push(Listener::Metrics);
                } else if tags.contains(&"health") {
                    on.extend([Listener::Ingest, Listener::Metrics]);
                } else {
                    on.push(Listener::Ingest);
                }
                for l in on {
                    ops.push((l, method.to_ascii_uppercase(), path.clone()));
                }
            }
        }
        let merchant = self.doc["components"]["pathItems"]["merchantInquiryPayment"]
            .as_object()
            .unwrap();
        for method in merchant
            .keys()
            .filter(|k| METHODS.iter().any(|m| m.eq_ignore_ascii_case(k)))
        {
            ops.push((
                Listener::Merchant,
                method.to_ascii_uppercase(),
                "/v1/payments/inquiryPayment".to_owned(),
            ));
        }
        ops
    }
}

/// `/v1/notifications/{notificationId}` → `/v1/notifications/{}`.
fn normalized(template: &str) -> String {
    template
        .split('/')
        .map(|s| if s.starts_with('{') { "{}" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

/// The routes written in a router's source: `(&Method::GET, "/path")`,
/// `(&Method::POST, ["v1", "notifications", id, "redeliver"])` (a bare name is a parameter),
/// and the GET-only `"/path" =>` arms of the metrics listener's matches.
fn routes_in(source: &str) -> Vec<(String, String)> {
    let mut routes = Vec::new();
    for arm in source.split("(&Method::").skip(1) {
        let Some((method, rest)) = arm.split_once(',') else {
            continue;
        };
        let rest = rest.trim_start();
        let path = if let Some(lit) = rest.strip_prefix('"') {
            lit.split('"').next().unwrap().to_owned()
        } else if let Some(list) = rest.strip_prefix('[') {
            let inner = list.split(']').next().unwrap();
            let segments: Vec<String> = inner
                .split(',')
                .map(str::trim)
                .map(|s| match s.strip_prefix('"') {
                    Some(lit) => lit.trim_end_matches('"').to_owned(),
                    None => "{}".to_owned(),
                })
                .collect();
            format!("/{}", segments.join("/"))
        } else {
            continue;
        };
        routes.push((method.trim().to_owned(), path));
    }
    for line in source.lines() {
        let line = line.trim_start();
        if let Some(lit) = line.strip_prefix("\"/")
            && let Some((path, rest)) = lit.split_once('"')
            && rest.trim_start().starts_with("=>")
        {
            routes.push(("GET".to_owned(), format!("/{path}")));
        }
    }
    routes
}

fn source(rel: &str) -> String {
    std::fs::read_to_string(manifest().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn every_route_in_the_routers_is_documented_and_nothing_else() {
    let spec = Spec::load();
    let mut served: Vec<(String, String)> = [
        "src/ingest/routes.rs",
        "src/exporter.rs",
        "src/status/mod.rs",
    ]
    .iter()
    .flat_map(|f| routes_in(&source(f)))
    .map(|(m, p)| (m, normalized(&p)))
    .collect();
    served.sort();
    served.dedup();
    // The reading of the routers must find them, or this test would pass on nothing.
    assert!(
        served.len() >= 17,
        "too few routes read from the routers: {served:?}"
    );
    let mut documented: Vec<(String, String)> = spec
        .operations()
        .into_iter()
        .filter(|(l, _, p)| *l != Listener::Merchant && !p.starts_with("/status/api/"))
        .map(|(_, m, p)| (m, normalized(&p)))
        .collect();
    documented.sort();
    documented.dedup();
    let missing: Vec<_> = served.iter().filter(|r| !documented.contains(r)).collect();
    let extra: Vec<_> = documented.iter().filter(|r| !served.contains(r)).collect();
    assert!(
        missing.is_empty(),
        "served but not in openapi.json: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "in openapi.json but in no router: {extra:?}"
    );
    let inquiry = source("src/inquiry/listener.rs");
    assert!(
        inquiry.contains("pub const PATH: &str = \"/v1/payments/inquiryPayment\";"),
        "the merchant listener's path changed: update components.pathItems.merchantInquiryPayment"
    );
}

/// A profile that signs (the inquiry listener's), the listener, one merchant, and ingest
/// behind a token with a small body limit (for a 413).
fn extra_config(dir: &Path) -> String {
    let key = secret(
        dir,
        "wallet.pem",
        &std::fs::read(sigvec_dir().join("test_private_key_pkcs8.pem")).unwrap(),
    );
    let token = secret(dir, "token", format!("{TOKEN}\n").as_bytes());
    format!(
        "client_id = \"WALLET\"\n\
         key_version = 1\nprivate_key_file = \"{}\"\n\
         [inquiry]\nlisten = \"127.0.0.1:0\"\nprofile = \"strict\"\n\
         [merchants.shop1]\nclient_id = \"{MERCHANT}\"\npublic_key_file = \"{}\"\n\
         partner_ids = [\"P0001\"]\n\
         [ingest]\nauth_token_file = \"{}\"\nmax_body_bytes = 16384\n",
        key.display(),
        sigvec_dir().join("test_public_key_x509.pem").display(),
        token.display(),
    )
}

/// Sample values for a template's parameters.
fn fill(template: &str, id: &str, endpoint: &str) -> String {
    template
        .replace("{notificationId}", id)
        .replace("{endpoint}", endpoint)
}

struct Scenario {
    h: Harness,
    spec: Spec,
}

impl Scenario {
    fn addr(&self, l: Listener) -> SocketAddr {
        let n = self.h.notifyd.as_ref().unwrap();
        match l {
            Listener::Ingest => n.ingest,
            Listener::Metrics => n.metrics,
            Listener::Merchant => n.inquiry.unwrap(),
        }
    }

    /// `method path` with the token and a `{}` body, unchecked: to see whether it is routed.
    async fn probe(&self, l: Listener, method: &str, path: &str) -> Answer {
        let auth = format!("Bearer {TOKEN}");
        call(
            self.addr(l),
            method,
            path,
            &[("authorization", &auth)],
            b"{}",
        )
        .await
    }

    /// Polls (bounded) until the notification is in `state`, checking every answer.
    async fn wait(&self, id: &str, state: &str) {
        let template = "/v1/notifications/{notificationId}";
        let path = fill(template, id, "");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let a = self
                .checked(Listener::Ingest, "GET", template, &path, &Value::Null)
                .await;
            if a.json()["state"] == state {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{id} never got {state}: {:?}",
                a.body
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// One request with the token, checked against the document; returns the answer.
    async fn checked(
        &self,
        l: Listener,
        method: &str,
        template: &str,
        path: &str,
        body: &Value,
    ) -> Answer {
        let bytes = if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(body).unwrap()
        };
        let auth = format!("Bearer {TOKEN}");
        let a = call(
            self.addr(l),
            method,
            path,
            &[("authorization", &auth)],
            &bytes,
        )
        .await;
        self.spec.check(l, method, template, &a);
        a
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_scenario_answers_as_the_document_says() {
    let h = Harness::start_extra("S", extra_config, |_| {}).await;
    let s = Scenario {
        h,
        spec: Spec::load(),
    };
    use Listener::{Ingest, Merchant, Metrics};
    let url = s.h.merchant_url("/notify");
    let dead_url = format!("http://127.0.0.1:{}/gone", support::process::free_port());
    let note = |p: &str| support::payment(&url, p);

    // Ingest: accepted, duplicate, inconsistent, invalid, too large, unauthorized.
    let n = "/v1/notifications";
    let first = s.checked(Ingest, "POST", n, n, &note("PAY-1")).await;
    assert_eq!(first.status, 200);
    let id = first.json()["notificationId"].as_str().unwrap().to_owned();
    let dup = s.checked(Ingest, "POST", n, n, &note("PAY-1")).await;
    assert_eq!(dup.json()["duplicate"], true);
    let mut changed = note("PAY-1");
    changed["body"]["paymentAmount"]["value"] = json!("20000");
    assert_eq!(s.checked(Ingest, "POST", n, n, &changed).await.status, 409);
    let mut bad = note("PAY-2");
    bad["body"]["paymentAmount"]["value"] = json!("0100");
    assert_eq!(s.checked(Ingest, "POST", n, n, &bad).await.status, 400);
    let mut big = note("PAY-3");
    big["body"]["extendInfo"] = json!("x".repeat(20_000));
    assert_eq!(s.checked(Ingest, "POST", n, n, &big).await.status, 413);
    let anon = call(s.addr(Ingest), "POST", n, &[], b"{}").await;
    s.spec.check(Ingest, "POST", n, &anon);
    assert_eq!(anon.status, 401);
    let gone = support::payment(&dead_url, "PAY-DEAD");
    let b = "/v1/notifications/batch";
    let batch = s
        .checked(
            Ingest,
            "POST",
            b,
            b,
            &json!({"notifications": [gone, note("PAY-1"), bad]}),
        )
        .await;
    let results = batch.json()["results"].clone();
    assert_eq!(results[0]["status"], 200, "{results}");
    assert_eq!(results[1]["duplicate"], true, "{results}");
    assert_eq!(results[2]["status"], 400, "{results}");
    let dead_id = results[0]["notificationId"].as_str().unwrap().to_owned();

    // The operator's reads once one is delivered and one is dead (with transport errors).
    s.wait(&id, "delivered").await;
    s.wait(&dead_id, "dead").await;
    let one = "/v1/notifications/{notificationId}";
    let got = s
        .checked(Ingest, "GET", one, &fill(one, &id, ""), &Value::Null)
        .await;
    assert_eq!(got.json()["attemptLog"][0]["httpStatus"], 200);
    let got = s
        .checked(Ingest, "GET", one, &fill(one, &dead_id, ""), &Value::Null)
        .await;
    assert_eq!(got.json()["attemptLog"].as_array().unwrap().len(), 3);
    let unknown = fill(one, "01M8TMAERWK7KX043XGJZ9RBN4", "");
    assert_eq!(
        s.checked(Ingest, "GET", one, &unknown, &Value::Null)
            .await
            .status,
        404
    );
    let found = s
        .checked(
            Ingest,
            "GET",
            n,
            "/v1/notifications?paymentId=PAY-1&limit=5",
            &Value::Null,
        )
        .await;
    assert_eq!(found.json()["notifications"].as_array().unwrap().len(), 1);
    let paged = s
        .checked(Ingest, "GET", n, "/v1/notifications?limit=1", &Value::Null)
        .await;
    assert!(paged.json()["nextCursor"].is_string());
    let refused = s
        .checked(
            Ingest,
            "GET",
            n,
            "/v1/notifications?paymentID=x",
            &Value::Null,
        )
        .await;
    assert_eq!(refused.status, 400);
    let d = "/v1/dead-letters";
    let dead = s.checked(Ingest, "GET", d, d, &Value::Null).await;
    assert_eq!(
        dead.json()["notifications"][0]["notificationId"],
        dead_id.as_str()
    );
    assert_eq!(
        s.checked(Ingest, "GET", d, "/v1/dead-letters?limit=0", &Value::Null)
            .await
            .status,
        400
    );
    let e = "/v1/endpoints";
    let eps = s.checked(Ingest, "GET", e, e, &Value::Null).await;
    assert_eq!(eps.json()["endpoints"].as_array().unwrap().len(), 2);
    let endpoint = s.h.merchant.addr().to_string();
    for op in ["hold", "resume"] {
        let t = format!("/v1/endpoints/{{endpoint}}/{op}");
        let a = s
            .checked(Ingest, "POST", &t, &fill(&t, "", &endpoint), &Value::Null)
            .await;
        assert_eq!(a.json()["changed"], true);
    }

    // Redelivery: bulk (dry), one that cannot be redelivered, one that can.
    let r = "/v1/redeliver";
    let dry = s
        .checked(
            Ingest,
            "POST",
            r,
            r,
            &json!({"state": "dead", "dryRun": true}),
        )
        .await;
    assert_eq!(dry.json()["matched"], 1);
    assert_eq!(
        s.checked(Ingest, "POST", r, r, &json!({"limit": "5"}))
            .await
            .status,
        400
    );
    let again = "/v1/notifications/{notificationId}/redeliver";
    assert_eq!(
        s.checked(Ingest, "POST", again, &fill(again, &id, ""), &Value::Null)
            .await
            .status,
        409
    );

    // The status page's data and its forwarded calls, before the dead letter is redelivered.
    let st = "/status.json";
    let snap = s.checked(Metrics, "GET", st, st, &Value::Null).await.json();
    assert_eq!(
        snap["deadLetters"][0]["notificationId"],
        dead_id.as_str(),
        "{snap}"
    );
    assert_eq!(snap["losing"]["dead"]["lastHour"], 1, "{snap}");
    let fwd = "/status/api/v1/notifications/{notificationId}";
    let a = s
        .checked(Metrics, "GET", fwd, &fill(fwd, &dead_id, ""), &Value::Null)
        .await;
    assert!(a.json()["attemptLog"][0].get("responseBody").is_none());
    let fwd = "/status/api/v1/notifications/{notificationId}/redeliver";
    let a = s
        .checked(Metrics, "POST", fwd, &fill(fwd, &dead_id, ""), &Value::Null)
        .await;
    assert_eq!(a.json()["state"], "pending");

    // Inquiry, the operator's and a merchant's (refused: unsigned, but signed back).
    let i = "/v1/payments/inquiryPayment";
    let ask = json!({"partnerId": "P0001", "paymentRequestId": "REQ-PAY-1"});
    let a = s.checked(Ingest, "POST", i, i, &ask).await;
    assert_eq!(a.json()["paymentStatus"], "SUCCESS");
    let a = s
        .checked(Ingest, "POST", i, i, &json!({"partnerId": "P0001"}))
        .await;
    assert_eq!(a.json()["result"]["resultCode"], "PARAM_ILLEGAL");
    let a = call(
        s.addr(Merchant),
        "POST",
        i,
        &[
            ("client-id", MERCHANT),
            ("request-time", "2024-01-01T00:00:00Z"),
        ],
        &serde_json::to_vec(&ask).unwrap(),
    )
    .await;
    s.spec.check(Merchant, "POST", i, &a);
    assert_eq!(a.json()["result"]["resultStatus"], "F");

    // The plain ones.
    for (l, p) in [
        (Ingest, "/healthz"),
        (Ingest, "/readyz"),
        (Metrics, "/healthz"),
        (Metrics, "/readyz"),
        (Metrics, "/metrics"),
        (Metrics, "/"),
        (Metrics, "/status/page.js"),
        (Metrics, "/status/page.css"),
    ] {
        assert_eq!(
            s.checked(l, "GET", p, p, &Value::Null).await.status,
            200,
            "{p}"
        );
    }

    probe_routes(&s, &id, &endpoint).await;
}

/// Every documented operation is served, no undocumented method on a documented path is, and
/// the status page forwards exactly the ingest calls documented under `/status/api`.
async fn probe_routes(s: &Scenario, id: &str, endpoint: &str) {
    for (l, method, template) in s.spec.operations() {
        let path = fill(&template, id, endpoint);
        let a = s.probe(l, &method, &path).await;
        assert!(
            !a.unrouted(),
            "documented but not served: {method} {path} ({l:?}): {} {:?}",
            a.status,
            a.body
        );
        for other in METHODS.iter().filter(|m| **m != method) {
            if s.spec.serves(l, other, &path) {
                continue;
            }
            let a = s.probe(l, other, &path).await;
            assert!(
                a.unrouted(),
                "served but not documented: {other} {path} ({l:?}): {} {:?}",
                a.status,
                a.body
            );
        }
    }
    for (l, method, template) in s.spec.operations() {
        if l != Listener::Ingest || !template.starts_with("/v1/") {
            continue;
        }
        let forwarded = format!("/status/api{template}");
        let documented = s.spec.doc["paths"][&forwarded][method.to_ascii_lowercase()].is_object();
        let path = fill(&forwarded, id, endpoint);
        let a = s.probe(Listener::Metrics, &method, &path).await;
        assert_eq!(
            a.unrouted(),
            !documented,
            "forwarded by the status page, or not: {method} {path}: {} {:?}",
            a.status,
            a.body
        );
    }
}

/// The schemathesis CLI: `NOTIFYD_SCHEMATHESIS` (what .ci/run installs), else `st` on PATH.
fn schemathesis() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NOTIFYD_SCHEMATHESIS") {
        return Some(PathBuf::from(p));
    }
    let found = Command::new("st").arg("--version").output();
    found
        .is_ok_and(|o| o.status.success())
        .then(|| PathBuf::from("st"))
}

/// The real binary on all three listeners, with ingest behind a token and a signing profile.
fn binary_config(dir: &Path, ports: [u16; 3]) -> PathBuf {
    let extra = extra_config(dir)
        .replace(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"127.0.0.1:{}\"", ports[2]),
        )
        .replace(
            "[ingest]\n",
            &format!("[ingest]\nlisten = \"127.0.0.1:{}\"\n", ports[0]),
        );
    let text = format!(
        "[store]\npath = \"{}\"\n[metrics]\nlisten = \"127.0.0.1:{}\"\n[log]\nlevel = \"warn\"\n\
         [shutdown]\ngrace = \"1s\"\n\
         [profiles.default]\nallow_http = true\nallow_private = [\"127.0.0.0/8\"]\n\
         [profiles.default.retry]\nkind = \"schedule\"\nschedule = [\"0s\", \"100ms\", \"100ms\"]\n\
         jitter = 0.0\nattempt_timeout = \"1s\"\n[profiles.strict]\n{extra}",
        dir.join("store").display(),
        ports[1],
    );
    let path = dir.join("notifyd.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_5xx_and_no_answer_off_the_document() {
    let Some(st) = schemathesis() else {
        support::skip("schemathesis is not installed (NOTIFYD_SCHEMATHESIS or st on PATH)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ports = [
        support::process::free_port(),
        support::process::free_port(),
        support::process::free_port(),
    ];
    let config = binary_config(dir.path(), ports);
    let addr = |p: u16| -> SocketAddr { format!("127.0.0.1:{p}").parse().unwrap() };
    let log = dir.path().join("notifyd.log");
    let mut notifyd =
        support::process::Notifyd::spawn(&config, addr(ports[0]), addr(ports[1]), &log, &[])
            .await
            .unwrap();
    // Something to find: a delivered notification and a dead one, so the reads have content.
    let merchant = notifyd_daemon::mock_merchant::MockMerchant::start(
        "127.0.0.1:0".parse().unwrap(),
        "S".parse().unwrap(),
    )
    .await
    .unwrap();
    let auth = format!("Bearer {TOKEN}");
    for (url, p) in [
        (format!("http://{}/n", merchant.addr()), "SEEN"),
        (
            format!("http://127.0.0.1:{}/gone", support::process::free_port()),
            "LOST",
        ),
    ] {
        let e = support::payment(&url, p);
        let a = call(
            addr(ports[0]),
            "POST",
            "/v1/notifications",
            &[("authorization", &auth)],
            &serde_json::to_vec(&e).unwrap(),
        )
        .await;
        assert_eq!(a.status, 200, "{:?}", a.body);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut doc = document();
    let merchant_doc = {
        let mut d = doc.clone();
        d["paths"] = json!({"/v1/payments/inquiryPayment": doc["components"]["pathItems"]["merchantInquiryPayment"]});
        d
    };
    doc["servers"] = json!([]);
    let full = dir.path().join("openapi.json");
    std::fs::write(&full, serde_json::to_vec(&doc).unwrap()).unwrap();
    let merchant_spec = dir.path().join("merchant.json");
    std::fs::write(&merchant_spec, serde_json::to_vec(&merchant_doc).unwrap()).unwrap();
    let header = format!("Authorization: Bearer {TOKEN}");
    let runs: [(&str, &Path, u16, &[&str]); 3] = [
        (
            "ingest",
            &full,
            ports[0],
            &["--exclude-tag-regex", "^(metrics|status-page)$"],
        ),
        (
            "metrics",
            &full,
            ports[1],
            &["--include-tag-regex", "^(metrics|status-page|health)$"],
        ),
        ("merchant inquiry", &merchant_spec, ports[2], &[]),
    ];
    for (name, spec, port, filter) in runs {
        let run = || {
            Command::new(&st)
                .current_dir(dir.path())
                .env("NO_COLOR", "1")
                .arg("run")
                .arg(spec)
                .args(["--url", &format!("http://127.0.0.1:{port}"), "-H", &header])
                .args(filter)
                .args([
                    "--checks",
                    "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance",
                    // Bounded: well under a minute for all three runs on two shared cores;
                    // the seed makes a failure reproducible.
                    "--max-examples",
                    "20",
                    "--phases",
                    "examples,coverage,fuzzing",
                    "--seed",
                    "1",
                    "--workers",
                    "2",
                    "--request-timeout",
                    "10",
                ])
                .output()
                .unwrap_or_else(|e| panic!("{}: {e}", st.display()))
        };
        let mut out = run();
        // schemathesis itself sometimes crashes in its generator ("Runtime Error", marked 🚫;
        // seen twice in some twenty runs while this test was written): that says nothing
        // about notifyd, so it gets one more run. A failed check (❌) never does.
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() && text.contains("🚫") && !text.contains("❌") {
            eprintln!("schemathesis crashed on the {name} listener; running it again:\n{text}");
            out = run();
        }
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "schemathesis on the {name} listener found problems:\n{text}\n{}\nnotifyd log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            notifyd.log_tail()
        );
        assert!(
            text.contains("passed"),
            "schemathesis ran nothing on {name}:\n{text}"
        );
    }
    assert!(
        notifyd.alive(),
        "notifyd died under schemathesis: {}",
        notifyd.log_tail()
    );
}
