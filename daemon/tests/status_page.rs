//! The status page (CONTRACT.md §6): its HTML, `/status.json`, the action proxy, and the page
//! itself driven in headless Chromium.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use support::trust::{secret, sigvec_dir};
use support::{Harness, payment, skip};

const TOKEN: &str = "status-page-token";

/// notifyd behind an ingest token, with a merchant answering `mode`.
async fn guarded(mode: &str) -> Harness {
    Harness::start_extra(
        mode,
        |dir| {
            let tokens = secret(dir, "tokens", format!("{TOKEN}\n").as_bytes());
            format!("\n[ingest]\nauth_token_file = \"{}\"\n", tokens.display())
        },
        |_| {},
    )
    .await
}

fn metrics(h: &Harness) -> std::net::SocketAddr {
    h.notifyd.as_ref().unwrap().metrics
}

/// One request; `to_metrics` picks the listener. Answers status, headers and body text.
async fn call(
    h: &Harness,
    to_metrics: bool,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&Value>,
) -> (u16, http::HeaderMap, String) {
    let addr = if to_metrics { metrics(h) } else { h.ingest() };
    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    if let Some(t) = auth {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let bytes = body
        .map(|b| serde_json::to_vec(b).unwrap())
        .unwrap_or_default();
    let resp = h
        .client
        .request(req.body(Full::new(Bytes::from(bytes))).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

async fn json(
    h: &Harness,
    to_metrics: bool,
    method: &str,
    path: &str,
    auth: Option<&str>,
) -> (u16, Value) {
    let (s, _, b) = call(h, to_metrics, method, path, auth, None).await;
    (s, serde_json::from_str(&b).unwrap_or(Value::Null))
}

/// Submits a payment with the token and waits for it to fail at the merchant (mode "F").
async fn failed_notification(h: &Harness, payment_id: &str) -> String {
    failed(h, &payment(&h.merchant_url("/notify"), payment_id))
        .await
        .0
}

/// Submits `env` with the token and waits for it to end `failed`: its id and record.
async fn failed(h: &Harness, env: &Value) -> (String, Value) {
    let (s, _, b) = call(
        h,
        false,
        "POST",
        "/v1/notifications",
        Some(TOKEN),
        Some(env),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let id = serde_json::from_str::<Value>(&b).unwrap()["notificationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let path = format!("/v1/notifications/{id}");
        let (_, n) = json(h, false, "GET", &path, Some(TOKEN)).await;
        if n["state"] == "failed" {
            return (id, n);
        }
        assert!(tokio::time::Instant::now() < deadline, "never failed: {n}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn assert_none_held(h: &Harness) {
    let (_, eps) = json(h, false, "GET", "/v1/endpoints", Some(TOKEN)).await;
    let list = eps["endpoints"].as_array().unwrap();
    assert!(list.iter().all(|e| e["state"] != "held"), "{eps}");
}

fn keys(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                out.push(k.clone());
                keys(v, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_assets_come_from_notifyd_alone() {
    let h = Harness::start("S").await;
    let (s, headers, page) = call(&h, true, "GET", "/", None, None).await;
    assert_eq!(s, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    assert!(
        page.contains("<main") && page.contains("aria-live"),
        "{page}"
    );
    let mut all = page.clone();
    for asset in ["/status/page.js", "/status/page.css"] {
        let (s, _, text) = call(&h, true, "GET", asset, None, None).await;
        assert_eq!(s, 200, "{asset}");
        assert!(page.contains(asset), "the page does not load {asset}");
        all.push_str(&text);
    }
    // The only absolute URL allowed is the SVG namespace, which is a name and never fetched.
    let external: Vec<&str> = all
        .match_indices("//")
        .filter(|(i, _)| all[..*i].ends_with("http:") || all[..*i].ends_with("https:"))
        .map(|(i, _)| &all[i.saturating_sub(6)..(i + 30).min(all.len())])
        .filter(|u| !u.contains("//www.w3.org/2000/svg"))
        .collect();
    assert!(external.is_empty(), "external URLs: {external:?}");
    assert!(!all.contains("url("), "CSS must not fetch anything");
    // The page is read with GET; anything else under it is refused.
    let (s, _, _) = call(&h, true, "POST", "/", None, None).await;
    assert_eq!(s, 405);
    let (s, _, _) = call(&h, true, "GET", "/status/nothing.js", None, None).await;
    assert_eq!(s, 404);
    // The metrics listener's own paths are untouched.
    let (s, _, _) = call(&h, true, "GET", "/metrics", None, None).await;
    assert_eq!(s, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_json_counts_a_failed_notification_and_shows_no_body() {
    let h = guarded("F").await;
    let id = failed_notification(&h, "PAY-STATUS-1").await;
    // A commit is visible to readers (the failed state) a moment before the writer reports it
    // to its observers (the p99 sample): wait, bounded, for the outcome's commit to be counted.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let (s, st) = loop {
        let (s, st) = json(&h, true, "GET", "/status.json", None).await;
        if st["health"]["storeCommitsSampled"].as_u64() >= Some(2)
            || tokio::time::Instant::now() >= deadline
        {
            break (s, st);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(s, 200, "{st}");
    let health = &st["health"];
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(health["ready"], true);
    assert!(health["uptimeSeconds"].is_u64());
    assert!(
        health["storeCommitP99Seconds"]
            .as_f64()
            .is_some_and(|p| p >= 0.0),
        "{health}"
    );
    assert!(
        health["storeCommitsSampled"].as_u64().unwrap() >= 2,
        "{health}"
    );
    let free = health["diskFreeBytes"].as_u64().unwrap();
    assert!(
        free > 0 && free <= health["diskTotalBytes"].as_u64().unwrap(),
        "{health}"
    );
    let losing = &st["losing"];
    assert_eq!(losing["pending"], 0, "{losing}");
    assert_eq!(losing["failed"]["lastHour"], 1, "{losing}");
    assert_eq!(losing["failed"]["lastDay"], 1, "{losing}");
    assert_eq!(losing["dead"]["lastHour"], 0, "{losing}");
    assert_eq!(losing["countsCapped"], false);
    assert!(losing["oldestOverdue"]["state"].is_string(), "{losing}");
    assert_eq!(st["rates"]["sampleSeconds"], 5);
    assert!(st["rates"]["samples"].is_array());
    let dead = st["deadLetters"].as_array().unwrap();
    assert_eq!(dead.len(), 1, "{st}");
    assert_eq!(dead[0]["notificationId"], id.as_str());
    assert_eq!(dead[0]["state"], "failed");
    let endpoint = format!("{}", h.merchant.addr());
    let eps = st["endpoints"].as_array().unwrap();
    let ep = eps
        .iter()
        .find(|e| e["endpoint"] == endpoint.as_str())
        .unwrap_or_else(|| panic!("{st}"));
    assert!(ep["lastError"].is_string(), "{ep}");
    assert!(ep["concurrencyLimit"].as_u64().unwrap() >= 1);
    let mut names = Vec::new();
    keys(&st, &mut names);
    for never in ["body", "responseBody", "signature", "privateKey", "token"] {
        assert!(!names.iter().any(|k| k == never), "{never} in {st}");
    }
    assert!(
        !st.to_string().contains("PAY-STATUS-1"),
        "payment data leaked: {st}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_acts_only_with_the_ingest_token() {
    let h = guarded("F").await;
    let id = failed_notification(&h, "PAY-STATUS-2").await;
    let endpoint = format!("{}", h.merchant.addr());
    let redeliver = format!("/status/api/v1/notifications/{id}/redeliver");
    let hold = format!("/status/api/v1/endpoints/{endpoint}/hold");
    for auth in [None, Some("wrong")] {
        let (s, b) = json(&h, true, "POST", &redeliver, auth).await;
        assert_eq!(s, 401, "{b}");
        let (s, b) = json(&h, true, "POST", &hold, auth).await;
        assert_eq!(s, 401, "{b}");
        let (s, _) = json(
            &h,
            true,
            "GET",
            &format!("/status/api/v1/notifications/{id}"),
            auth,
        )
        .await;
        assert_eq!(s, 401);
    }
    let (_, n) = json(
        &h,
        false,
        "GET",
        &format!("/v1/notifications/{id}"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(n["state"], "failed", "refused calls changed nothing");
    assert_none_held(&h).await;

    // Only the page's calls go through: not ingest itself, not bulk redelivery.
    let (s, _) = json(
        &h,
        true,
        "POST",
        "/status/api/v1/notifications",
        Some(TOKEN),
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = json(&h, true, "POST", "/status/api/v1/redeliver", Some(TOKEN)).await;
    assert_eq!(s, 404);

    let (s, b) = json(&h, true, "POST", &hold, Some(TOKEN)).await;
    assert_eq!((s, &b["changed"]), (200, &Value::Bool(true)), "{b}");
    let (_, eps) = json(&h, false, "GET", "/v1/endpoints", Some(TOKEN)).await;
    let ep = eps["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["endpoint"] == endpoint.as_str())
        .cloned();
    assert_eq!(ep.unwrap()["state"], "held", "{eps}");
    let (s, b) = json(
        &h,
        true,
        "POST",
        &format!("/status/api/v1/endpoints/{endpoint}/resume"),
        Some(TOKEN),
    )
    .await;
    assert_eq!((s, &b["changed"]), (200, &Value::Bool(true)), "{b}");

    let before = h.merchant.count();
    let (s, b) = json(&h, true, "POST", &redeliver, Some(TOKEN)).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["state"], "pending", "{b}");
    h.wait_received(before + 1).await;

    // A foreign page cannot make the browser act for it, token or not.
    let (s, _, _) = {
        let req = http::Request::post(format!("http://{}{redeliver}", metrics(&h)))
            .header("origin", "http://evil.example")
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = h.client.request(req).await.unwrap();
        (resp.status().as_u16(), (), ())
    };
    assert_eq!(s, 403);

    // What the proxy reads on the page's behalf carries no body.
    let (s, n) = json(
        &h,
        true,
        "GET",
        &format!("/status/api/v1/notifications/{id}"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(s, 200, "{n}");
    assert!(n.get("body").is_none());
}

/// Where test artifacts go: `target/status-page/`.
fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("status-page");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn found(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| PathBuf::from(d).join(tool))
        .find(|p| p.is_file())
}

/// The browser run's notifyd: the token, and a `strict` profile that signs with the test key,
/// so a real signature exists that the page must never show.
async fn signing_and_guarded(mode: &str) -> Harness {
    Harness::start_extra(
        mode,
        |dir| {
            let key = std::fs::read(sigvec_dir().join("test_private_key_pkcs8.pem")).unwrap();
            let key = secret(dir, "signing.pem", &key);
            let tokens = secret(dir, "tokens", format!("{TOKEN}\n").as_bytes());
            format!(
                "allow_http = true\nallow_private = [\"127.0.0.0/8\"]\n\
                 client_id = \"TEST_5X00000000000000\"\nkey_version = 1\nprivate_key_file = \"{}\"\n\
                 [profiles.strict.retry]\nkind = \"schedule\"\nschedule = [\"0s\", \"100ms\", \"100ms\"]\n\
                 jitter = 0.0\nattempt_timeout = \"1s\"\n\
                 [ingest]\nauth_token_file = \"{}\"\n",
                key.display(),
                tokens.display()
            )
        },
        |_| {},
    )
    .await
}

/// A body value only the notification holds: the page shows ids and states, never this.
const AMOUNT: &str = "7314159265";

/// A signed payment (merchant "U" then "F": two attempts), once it has failed.
async fn failed_signed(h: &Harness, payment_id: &str) -> (String, Value) {
    let mut env = payment(&h.merchant_url("/notify"), payment_id);
    env["profile"] = "strict".into();
    env["body"]["paymentAmount"]["value"] = AMOUNT.into();
    failed(h, &env).await
}

/// An attempt as the page shows it with the browser in UTC: time to the second, HTTP status,
/// result as the store read it.
fn shown(attempt: &Value) -> (String, String, String) {
    let at = attempt["at"].as_str().unwrap();
    (
        format!("{} {}", &at[..10], &at[11..19]),
        attempt["httpStatus"].to_string(),
        attempt["result"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_works_in_headless_chromium() {
    let Some(node) = found("node") else {
        return skip("node (Debian package nodejs) drives the browser");
    };
    let Some(chromium) = found("chromium").or_else(|| found("chromium-browser")) else {
        return skip("chromium (Debian package chromium) is the browser");
    };
    let mut h = signing_and_guarded("U,F").await;
    // The restart below must come back on the port the page was loaded from.
    h.config.metrics.listen = metrics(&h);
    let (id, record) = failed_signed(&h, "PAY-BROWSER-1").await;
    let log = record["attemptLog"].as_array().unwrap();
    assert_eq!(log.len(), 2, "{record}");
    let mut secrets = vec![TOKEN.to_owned(), AMOUNT.to_owned()];
    let pem = std::fs::read_to_string(sigvec_dir().join("test_private_key_pkcs8.pem")).unwrap();
    secrets.extend(pem.lines().skip(1).take(3).map(str::to_owned));
    for r in h.merchant.received() {
        let sig = r
            .signature
            .expect("the strict profile signs")
            .to_str()
            .unwrap()
            .to_owned();
        secrets.push(sig.rsplit("signature=").next().unwrap().to_owned());
    }
    let before = h.merchant.count();
    let out = artifacts();
    let marker = out.join("restart-now");
    let _ = std::fs::remove_file(&marker);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/status_browser/drive.js");
    let base = format!("http://{}", metrics(&h));
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(node);
    cmd.arg(script)
        .env("CHROMIUM", chromium)
        // The page shows local time; in UTC it can be compared with the API's.
        .env("TZ", "UTC")
        .env("BASE", &base)
        .env("TOKEN", TOKEN)
        .env("DEAD_ID", &id)
        .env("PAYMENT_ID", "PAY-BROWSER-1")
        .env("PAYMENT_REQUEST_ID", "REQ-PAY-BROWSER-1")
        .env("ENDPOINT", h.merchant.addr().to_string())
        .env("SECRETS", serde_json::to_string(&secrets).unwrap())
        .env("OUT", &out)
        .env("PROFILE", profile.path());
    let driver = tokio::task::spawn_blocking(move || cmd.output());
    // When the driver asks, notifyd goes away for longer than one refresh and comes back on the
    // same store and port: the page must say "unreachable", then recover by itself.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(150);
    while !marker.exists() && !driver.is_finished() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if marker.exists() {
        h.notifyd.take().unwrap().shutdown().await;
        tokio::time::sleep(Duration::from_secs(7)).await;
        h.notifyd = Some(notifyd_daemon::run::start(&h.config).await.unwrap());
    }
    // The driver bounds each of its waits; this bounds the whole run.
    let run = tokio::time::timeout(Duration::from_secs(180), driver)
        .await
        .expect("the browser run took over 3 minutes")
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "driver failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap_or("null"))
        .unwrap_or_else(|e| panic!("{e}: {stdout}"));
    // Kept beside the screenshots: what the browser saw, for the reviewer.
    std::fs::write(out.join("report.json"), format!("{report:#}")).unwrap();
    assert_eq!(report["consoleErrors"], Value::Array(vec![]), "{report}");
    // Failed loads are only the API answers the run provokes (the refusals, 401) and the
    // refused connections of the restart.
    for e in report["networkErrors"].as_array().unwrap() {
        let e = e.as_str().unwrap();
        let outage = e.contains("/status.json") && e.contains("net::ERR_CONNECTION");
        assert!(
            e.contains("/status/api/v1/") || outage,
            "the page itself failed to load something: {e}"
        );
    }
    assert_eq!(
        report["readOnly"], true,
        "actions shown without a token: {report}"
    );
    assert_eq!(report["refusedWithoutToken"], true, "{report}");
    assert_eq!(
        report["foundBy"],
        serde_json::json!(["paymentId", "paymentRequestId"])
    );
    // The attempt log as the page shows it, row for row against the API's.
    let rows: Vec<(String, String, String)> = report["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let cell = |i: usize| r[i].as_str().unwrap_or_default().to_owned();
            (cell(0), cell(2), cell(3))
        })
        .collect();
    assert_eq!(rows, log.iter().map(shown).collect::<Vec<_>>(), "{report}");
    assert_eq!(report["leaks"], Value::Array(vec![]), "{report}");
    assert_eq!(report["held"], true, "{report}");
    assert_eq!(report["redelivered"], true, "{report}");
    assert_eq!(report["sawUnreachable"], true, "{report}");
    assert_eq!(report["recovered"], true, "{report}");

    // Keyboard: focus goes top to bottom through the sections, every stop visible, and lands
    // where a screen reader user needs it (the opened notification; the row, across redraws).
    let order: Vec<&str> = report["tabOrder"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["what"].as_str().unwrap_or("(nothing)"))
        .collect();
    assert_eq!(
        order.first(),
        Some(&"Health"),
        "the section links come first: {order:?}"
    );
    let at = |what: &str| {
        order
            .iter()
            .position(|w| *w == what)
            .unwrap_or_else(|| panic!("Tab never reached {what}: {order:?}"))
    };
    let endpoint = h.merchant.addr().to_string();
    let expected = [
        format!("Hold {endpoint}"),
        format!("Redeliver {id}"),
        "search-by".into(),
        "search-q".into(),
        "Search".into(),
        "token".into(),
    ];
    let positions: Vec<usize> = expected.iter().map(|w| at(w)).collect();
    assert!(positions.is_sorted(), "Tab order {order:?}");
    for f in report["tabOrder"].as_array().unwrap() {
        assert_eq!(f["visible"], true, "focus on something unseen: {f}");
    }
    assert_eq!(report["detailFocused"], true, "{report}");
    assert_eq!(
        report["focusKept"], true,
        "a refresh took the focus: {report}"
    );
    assert!(
        report["focusAfterRedeliver"].is_object(),
        "focus fell to the page after redelivering: {report}"
    );
    for (view, problems) in report["a11yProblems"].as_object().unwrap() {
        assert_eq!(problems, &Value::Array(vec![]), "{view}: {problems}");
    }

    for shot in [
        "phone.png",
        "phone-detail.png",
        "desktop.png",
        "unreachable.png",
    ] {
        let len = std::fs::metadata(out.join(shot))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(len > 10_000, "{shot}: {len} bytes");
    }
    // The page's redeliver reached the merchant again, and the endpoint is not left held.
    h.wait_received(before + 1).await;
    assert_none_held(&h).await;
}
