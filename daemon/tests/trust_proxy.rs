//! Deliveries through a profile's HTTP CONNECT proxy (a real one on loopback,
//! `support/proxy.rs`): plain http and TLS end to end through the tunnel, `no_proxy` exceptions,
//! a proxy failure that spends no attempt and is counted as `proxy_error`, and the SSRF guard
//! still judging the receiver behind the proxy.

mod support;

use std::sync::Arc;

use serde_json::Value;
use support::proxy::ConnectProxy;
use support::trust::{Pki, Receiver, ack_s};
use support::{Harness, payment};

fn profile(name: &str, proxy: &str, extra: &str) -> String {
    format!(
        "\n[profiles.{name}]\nallow_http = true\nproxy = \"{proxy}\"\n{extra}\n\
         [profiles.{name}.retry]\nkind = \"schedule\"\nschedule = [\"0s\", \"50ms\", \"50ms\"]\n\
         jitter = 0.0\nattempt_timeout = \"2s\"\n"
    )
}

const LOOPBACK: &str = "allow_private = [\"127.0.0.0/8\"]";

fn to(url: &str, profile: &str, pay: &str) -> Value {
    let mut env = payment(url, pay);
    env["profile"] = profile.into();
    env
}

async fn plain_receiver() -> Receiver {
    Receiver::start(None, Arc::new(|_| ack_s())).await
}

fn metric(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_and_tls_go_through_the_tunnel_to_the_checked_address() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "proxied");
    let cert = pki.server("server", &["localhost"], false);
    let tls = Receiver::start(Some(Pki::server_config(&cert, None)), Arc::new(|_| ack_s())).await;
    let plain = plain_receiver().await;
    let proxy = ConnectProxy::start(0).await;
    let ca = format!("{LOOPBACK}\nca_file = \"{}\"", pki.ca_file.display());
    let h = Harness::start_extra("S", |_| profile("p", &proxy.url(), &ca), |_| {}).await;

    let https = format!(
        "https://localhost:{}/v1/payments/notifyPayment",
        tls.addr.port()
    );
    let http = format!("http://localhost:{}/n", plain.addr.port());
    let a = h.submit(&to(&https, "p", "PAY-PROXY-TLS")).await;
    let b = h.submit(&to(&http, "p", "PAY-PROXY-HTTP")).await;
    for id in [&a, &b] {
        let s = h.wait_state(id, "delivered").await;
        assert_eq!(s["attempts"], 1, "{s}");
    }
    assert_eq!(
        tls.seen().len(),
        1,
        "TLS with the receiver itself, inside the tunnel"
    );
    assert_eq!(tls.seen()[0].path_and_query, "/v1/payments/notifyPayment");
    assert_eq!(plain.seen().len(), 1);
    let targets = proxy.targets();
    // The proxy is asked for the address notifyd resolved and checked, never for the name.
    for port in [tls.addr.port(), plain.addr.port()] {
        assert!(
            targets.contains(&format!("127.0.0.1:{port}")),
            "{port}: {targets:?}"
        );
    }
    assert!(
        targets.iter().all(|t| !t.contains("localhost")),
        "{targets:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_proxy_exceptions_go_direct() {
    let by_name = plain_receiver().await;
    let by_net = plain_receiver().await;
    let proxied = plain_receiver().await;
    let proxy = ConnectProxy::start(0).await;
    let h = Harness::start_extra(
        "S",
        |_| {
            profile(
                "names",
                &proxy.url(),
                &format!("{LOOPBACK}\nno_proxy = [\"LOCALHOST\", \".internal.example\"]"),
            ) + &profile(
                "nets",
                &proxy.url(),
                &format!("{LOOPBACK}\nno_proxy = [\"127.0.0.0/8\"]"),
            ) + &profile(
                "none",
                &proxy.url(),
                &format!("{LOOPBACK}\nno_proxy = [\"local\"]"),
            )
        },
        |_| {},
    )
    .await;
    let url = |rx: &Receiver| format!("http://localhost:{}/n", rx.addr.port());
    let ids = [
        h.submit(&to(&url(&by_name), "names", "PAY-NP-NAME")).await,
        h.submit(&to(&url(&by_net), "nets", "PAY-NP-NET")).await,
        h.submit(&to(&url(&proxied), "none", "PAY-NP-NONE")).await,
    ];
    for id in &ids {
        h.wait_state(id, "delivered").await;
    }
    let targets = proxy.targets();
    assert_eq!(
        targets,
        [format!("127.0.0.1:{}", proxied.addr.port())],
        "only the receiver no exception covers went through the proxy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_failure_spends_no_attempt_and_is_counted_as_ours() {
    let rx = plain_receiver().await;
    // Refuses the first two CONNECTs (403, a proxy ACL), then tunnels.
    let proxy = ConnectProxy::start(2).await;
    let h = Harness::start_extra(
        "S",
        |_| profile("p", &proxy.url(), LOOPBACK) + &profile("down", "http://127.0.0.1:9", LOOPBACK),
        |_| {},
    )
    .await;
    let url = format!("http://localhost:{}/n", rx.addr.port());
    let refused = h.submit(&to(&url, "p", "PAY-PROXY-403")).await;
    let s = h.wait_for(&refused, |s| s["lastResult"].is_string()).await;
    assert_eq!(
        (s["state"].as_str(), s["attempts"].as_u64()),
        (Some("pending"), Some(0)),
        "{s}"
    );
    let last = s["lastResult"].as_str().unwrap();
    assert!(
        last.starts_with(
            "not sent: proxy: the profile's proxy failed (proxy); attempt not counted: "
        ) && last.contains("403 Forbidden"),
        "{s}"
    );
    // Backs off 1 s, then 2 s, on its own; the schedule's three attempts are all still there.
    let s = h.wait_state(&refused, "delivered").await;
    assert_eq!(s["attempts"], 1, "{s}");
    assert_eq!(proxy.targets().len(), 3);
    assert_eq!(rx.seen().len(), 1);

    let down = h.submit(&to(&url, "down", "PAY-PROXY-DOWN")).await;
    let s = h.wait_for(&down, |s| s["lastResult"].is_string()).await;
    assert_eq!(s["attempts"], 0, "{s}");
    assert!(
        s["lastResult"]
            .as_str()
            .unwrap()
            .contains("cannot connect to proxy 127.0.0.1:9"),
        "{s}"
    );

    let metrics = h.scrape().await;
    let outcome = "notifyd_delivery_attempts_total{api=\"notifyPayment\",outcome=\"proxy_error\"}";
    assert!(metric(&metrics, outcome) >= 3.0, "{metrics}");
    assert!(
        metric(&metrics, "notifyd_transport_errors_total{kind=\"proxy\"}") >= 3.0,
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ssrf_guard_still_refuses_a_private_receiver_behind_the_proxy() {
    let rx = plain_receiver().await;
    let proxy = ConnectProxy::start(0).await;
    // No allow_private: localhost is a loopback receiver, refused before any CONNECT, although
    // the proxy itself is on loopback too (the guard is about receivers, not our proxy).
    let h = Harness::start_extra("S", |_| profile("p", &proxy.url(), ""), |_| {}).await;
    let url = format!("http://localhost:{}/n", rx.addr.port());
    let id = h.submit(&to(&url, "p", "PAY-PROXY-SSRF")).await;
    let s = h.wait_state(&id, "failed").await;
    let last = s["lastResult"].as_str().unwrap();
    assert!(last.starts_with("F FORBIDDEN_ADDRESS: "), "{s}");
    assert!(last.contains("loopback"), "{s}");
    assert!(proxy.targets().is_empty(), "{:?}", proxy.targets());
    assert!(rx.seen().is_empty());
}
