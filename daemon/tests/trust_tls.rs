//! TLS to receivers: a real TLS receiver on loopback with a CA and certificates made here.
//! A good chain is delivered; a wrong host name, an unknown CA and an expired certificate are
//! transport errors (retried, never delivered); mTLS works and is required where configured.

mod support;

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;
use support::trust::{Issued, Pki, Receiver, ack_s};
use support::{Harness, payment};

/// A profile block trusting `ca` (when given), presenting `client` (when given), allowed to
/// reach loopback, with three quick attempts.
fn profile(name: &str, ca: Option<&Path>, client: Option<&Issued>) -> String {
    let mut s = format!("\n[profiles.{name}]\nallow_private = [\"127.0.0.0/8\"]\n");
    if let Some(ca) = ca {
        s += &format!("ca_file = \"{}\"\n", ca.display());
    }
    if let Some(c) = client {
        s += &format!(
            "client_cert_file = \"{}\"\nclient_key_file = \"{}\"\n",
            c.cert.display(),
            c.key.display()
        );
    }
    s += &format!(
        "[profiles.{name}.retry]\nkind = \"schedule\"\nschedule = [\"0s\", \"50ms\", \"50ms\"]\n\
         jitter = 0.0\nattempt_timeout = \"2s\"\n"
    );
    s
}

fn to(url: &str, profile: &str, pay: &str) -> Value {
    let mut env = payment(url, pay);
    env["profile"] = profile.into();
    env
}

async fn receiver(pki: &Pki, cert: &Issued, require_client: bool) -> Receiver {
    let client_ca = require_client.then_some(pki.ca_file.as_path());
    Receiver::start(
        Some(Pki::server_config(cert, client_ca)),
        Arc::new(|_| ack_s()),
    )
    .await
}

/// Waits for a dead notification and checks it died of transport errors of `kind` only.
async fn assert_dead_by_transport(h: &Harness, id: &str, kind: &str) -> Value {
    assert_dead_by_transport_of(h, id, kind, &[]).await
}

/// [`assert_dead_by_transport`], where some attempts may instead end as one of `racing` kinds;
/// at least one attempt must be `kind`.
async fn assert_dead_by_transport_of(h: &Harness, id: &str, kind: &str, racing: &[&str]) -> Value {
    let s = h.wait_state(id, "dead").await;
    assert_eq!(s["attempts"], 3, "{s}");
    let last = s["lastResult"].as_str().unwrap();
    let prefix = |k: &str| format!("retry: transport_error: {k}: ");
    assert!(
        std::iter::once(&kind)
            .chain(racing)
            .any(|k| last.starts_with(&prefix(k))),
        "{:?}: {s}",
        prefix(kind)
    );
    let metrics = h.scrape().await;
    let count = |k: &str| {
        metrics
            .lines()
            .find_map(|l| {
                l.strip_prefix(&format!("notifyd_transport_errors_total{{kind=\"{k}\"}} "))
            })
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let own = count(kind);
    let all = own + racing.iter().map(|k| count(k)).sum::<f64>();
    assert!(own >= 1.0 && all >= 3.0, "{kind} counted: {metrics}");
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_chain_is_delivered_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "good");
    let cert = pki.server("server", &["localhost"], false);
    let rx = receiver(&pki, &cert, false).await;
    let h = Harness::start_extra("S", |_| profile("tls", Some(&pki.ca_file), None), |_| {}).await;
    let url = format!(
        "https://localhost:{}/v1/payments/notifyPayment",
        rx.addr.port()
    );
    let id = h.submit(&to(&url, "tls", "PAY-TLS")).await;
    let s = h.wait_state(&id, "delivered").await;
    assert_eq!(s["attempts"], 1);
    let seen = rx.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path_and_query, "/v1/payments/notifyPayment");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_host_name_is_a_transport_error() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "host");
    let cert = pki.server("server", &["merchant.example"], false);
    let rx = receiver(&pki, &cert, false).await;
    let h = Harness::start_extra("S", |_| profile("tls", Some(&pki.ca_file), None), |_| {}).await;
    let url = format!("https://localhost:{}/n", rx.addr.port());
    let id = h.submit(&to(&url, "tls", "PAY-HOST")).await;
    let s = assert_dead_by_transport(&h, &id, "tls_receiver_certificate").await;
    assert!(
        s["lastResult"].as_str().unwrap().contains("certificate"),
        "{s}"
    );
    assert!(rx.seen().is_empty(), "nothing reached the impostor");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ca_is_a_transport_error() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "stranger");
    let cert = pki.server("server", &["localhost"], false);
    let rx = receiver(&pki, &cert, false).await;
    // The profile trusts only the system's roots.
    let h = Harness::start_extra("S", |_| profile("tls", None, None), |_| {}).await;
    let url = format!("https://localhost:{}/n", rx.addr.port());
    let id = h.submit(&to(&url, "tls", "PAY-CA")).await;
    let s = assert_dead_by_transport(&h, &id, "tls_untrusted_certificate").await;
    assert!(
        s["lastResult"].as_str().unwrap().contains("UnknownIssuer"),
        "{s}"
    );
    assert!(rx.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_certificate_is_a_transport_error() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "old");
    let cert = pki.server("server", &["localhost"], true);
    let rx = receiver(&pki, &cert, false).await;
    let h = Harness::start_extra("S", |_| profile("tls", Some(&pki.ca_file), None), |_| {}).await;
    let url = format!("https://localhost:{}/n", rx.addr.port());
    let id = h.submit(&to(&url, "tls", "PAY-OLD")).await;
    let s = assert_dead_by_transport(&h, &id, "tls_receiver_certificate").await;
    assert!(
        s["lastResult"]
            .as_str()
            .unwrap()
            .contains("certificate expired"),
        "{s}"
    );
    assert!(rx.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_works_and_is_required_where_configured() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "mtls");
    let cert = pki.server("server", &["localhost"], false);
    let client = pki.client("client");
    let rx = receiver(&pki, &cert, true).await;
    let h = Harness::start_extra(
        "S",
        |_| {
            profile("mtls", Some(&pki.ca_file), Some(&client))
                + &profile("nocert", Some(&pki.ca_file), None)
        },
        |_| {},
    )
    .await;
    let url = format!("https://localhost:{}/n", rx.addr.port());

    let without = h.submit(&to(&url, "nocert", "PAY-NOCERT")).await;
    // TLS 1.3: the server refuses the missing certificate after the client's Finished, so the
    // client may already have written its request; the server's close then resets the socket
    // and the reset can overtake its alert (an I/O error instead of the certificate alert).
    assert_dead_by_transport_of(&h, &without, "tls_client_certificate", &["io"]).await;
    assert!(
        rx.seen().is_empty(),
        "no request without a client certificate"
    );
    assert!(rx.handshake_failures() >= 1);

    let with = h.submit(&to(&url, "mtls", "PAY-MTLS")).await;
    let s = h.wait_state(&with, "delivered").await;
    assert_eq!(s["attempts"], 1);
    assert_eq!(rx.seen().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_is_refused_unless_the_profile_allows_it() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "plain");
    let h = Harness::start_extra("S", |_| profile("tls", Some(&pki.ca_file), None), |_| {}).await;
    let (status, body) = h
        .post(
            "/v1/notifications",
            &to(&h.merchant_url("/n"), "tls", "PAY-HTTP"),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["result"]["resultCode"], "PARAM_ILLEGAL");
    assert!(
        body["result"]["resultMessage"]
            .as_str()
            .unwrap()
            .contains("allow_http"),
        "{body}"
    );
}
