//! The SSRF guard: forbidden literals refused at ingest, forbidden addresses found after DNS fail
//! the notification for good, and only the networks a profile names are let through.

mod support;

use serde_json::Value;
use support::{Harness, payment};

fn to(url: &str, profile: &str, pay: &str) -> Value {
    let mut env = payment(url, pay);
    env["profile"] = profile.into();
    env
}

/// Posts and expects a 400 PARAM_ILLEGAL; returns the message.
async fn refused(h: &Harness, env: &Value) -> String {
    let (status, body) = h.post("/v1/notifications", env).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["result"]["resultStatus"], "F", "{body}");
    assert_eq!(body["result"]["resultCode"], "PARAM_ILLEGAL", "{body}");
    body["result"]["resultMessage"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_literals_are_refused_at_ingest() {
    let h = Harness::start("S").await;
    let msg = refused(&h, &to("https://127.0.0.1:8443/n", "strict", "P1")).await;
    assert_eq!(
        msg,
        "url: 127.0.0.1 is a loopback address; not allowed by profile \"strict\" (allow_private)"
    );
    for (url, class) in [
        ("https://10.0.0.5/n", "private"),
        ("https://192.168.1.20/n", "private"),
        ("https://169.254.169.254/latest/meta-data", "cloud-metadata"),
        ("https://100.64.1.1/n", "CGNAT"),
        ("https://0.0.0.0/n", "unspecified"),
        ("https://224.0.0.1/n", "multicast"),
        ("https://[::1]/n", "loopback"),
        ("https://[fe80::1]/n", "link-local"),
        ("https://[fd00::5]/n", "private"),
        ("https://[::ffff:127.0.0.1]/n", "loopback"),
        ("https://[::ffff:a9fe:a9fe]/n", "cloud-metadata"),
    ] {
        let msg = refused(&h, &to(url, "strict", url)).await;
        assert!(
            msg.contains(&format!("is a {class} address")),
            "{url}: {msg}"
        );
    }
    assert_eq!(h.merchant.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_info_and_overlong_urls_are_refused_at_ingest() {
    let h = Harness::start("S").await;
    let msg = refused(
        &h,
        &to("https://user:pw@merchant.example/n", "strict", "P1"),
    )
    .await;
    assert!(
        msg.starts_with("url: ") && msg.contains("user info"),
        "{msg}"
    );
    let long = format!("https://merchant.example/{}", "a".repeat(2048));
    let msg = refused(&h, &to(&long, "strict", "P2")).await;
    assert!(msg.starts_with("url: "), "{msg}");
    // 2048 characters exactly is still fine.
    let edge = format!(
        "https://merchant.example/{}",
        "a".repeat(2048 - "https://merchant.example/".len())
    );
    let (status, body) = h
        .post("/v1/notifications", &to(&edge, "strict", "P3"))
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_resolving_to_a_forbidden_address_is_retried_once_then_fails() {
    let h = Harness::start_extra(
        "S",
        |_| {
            "[profiles.strict.retry]\nkind = \"schedule\"\nschedule = [\"0s\", \"100ms\", \"100ms\", \"100ms\"]\njitter = 0.0\n"
                .to_owned()
        },
        |_| {},
    )
    .await;
    // `localhost` passes ingest (a name, not a literal) and is caught after DNS. One DNS answer
    // may be a transient split-horizon or rebinding answer: asked once more, then final.
    let url = format!("https://localhost:{}/n", h.merchant.addr().port());
    let id = h.submit(&to(&url, "strict", "PAY-DNS")).await;
    let s = h.wait_state(&id, "failed").await;
    assert_eq!(s["attempts"], 2, "retried exactly once: {s}");
    let last = s["lastResult"].as_str().unwrap();
    assert!(
        last.starts_with("F FORBIDDEN_ADDRESS: ")
            && last.contains("is a loopback address; not allowed by profile \"strict\""),
        "{s}"
    );
    assert_eq!(h.merchant.count(), 0, "no connection was made");
    let (_, dl) = h.get("/v1/dead-letters").await;
    assert_eq!(dl["notifications"][0]["notificationId"], id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_named_networks_are_let_through() {
    let h = Harness::start_extra(
        "S",
        |_| {
            "\n[profiles.one]\nallow_http = true\nallow_private = [\"127.0.0.1\"]\n\
             [profiles.one.retry]\nkind = \"schedule\"\nschedule = [\"0s\"]\njitter = 0.0\n"
                .to_owned()
        },
        |_| {},
    )
    .await;
    let port = h.merchant.addr().port();
    // `localhost` may also resolve to ::1, which is dropped: 127.0.0.1 alone is tried.
    let id = h
        .submit(&to(&format!("http://localhost:{port}/n"), "one", "PAY-1"))
        .await;
    h.wait_state(&id, "delivered").await;
    let msg = refused(
        &h,
        &to(&format!("http://127.0.0.2:{port}/n"), "one", "PAY-2"),
    )
    .await;
    assert!(msg.contains("not allowed by profile \"one\""), "{msg}");
    assert_eq!(h.merchant.count(), 1);
}
