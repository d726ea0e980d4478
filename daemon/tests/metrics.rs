//! `GET /metrics` after real traffic: the figures match what happened, every series is from a
//! bounded label set, and `promtool check metrics` accepts the text.
//!
//! One test only: the Prometheus recorder is process-global, so counters add up across the tests
//! of a binary and exact figures need a binary of their own.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::process::{Command, Stdio};

use notifyd_core::Api;
use notifyd_core::scheduler::EndpointState;
use notifyd_daemon::delivery::TransportKind;
use notifyd_daemon::metrics::{
    self as m, ATTEMPT_OUTCOMES, FAMILIES, FINISHED_STATES, HOOK_RESULTS, IngestOutcome,
};
use notifyd_daemon::mock_merchant::Respond;
use serde_json::json;
use support::{Harness, payment, void};

/// One sample line: family-qualified name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("name and value");
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').expect("label pair");
                    (k.to_owned(), v.trim_matches('"').to_owned())
                })
                .collect();
            Sample {
                name: name.to_owned(),
                labels,
                value: value.parse().unwrap_or_else(|_| panic!("value of {line}")),
            }
        })
        .collect()
}

/// The value of the one series named `name` with exactly these labels (0 when absent fails).
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    samples
        .iter()
        .find(|s| s.name == name && s.labels == want)
        .unwrap_or_else(|| panic!("no series {name}{labels:?}"))
        .value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_happened() {
    let h = Harness::start("S").await;

    // Before any traffic every bounded series is already there, at zero.
    let before = parse(&h.scrape().await);
    for api in Api::ALL.map(Api::as_str) {
        for outcome in ATTEMPT_OUTCOMES {
            let v = value(
                &before,
                m::DELIVERY_ATTEMPTS,
                &[("api", api), ("outcome", outcome)],
            );
            assert_eq!(v, 0.0, "{api} {outcome}");
        }
        for state in FINISHED_STATES {
            assert_eq!(
                value(&before, m::FINISHED, &[("api", api), ("state", state)]),
                0.0
            );
        }
    }
    for outcome in IngestOutcome::ALL {
        let v = value(
            &before,
            m::INGEST_REQUESTS,
            &[("api", "unknown"), ("outcome", outcome.as_str())],
        );
        assert_eq!(v, 0.0);
    }
    assert_eq!(
        value(&before, &format!("{}_count", m::STORE_COMMIT), &[]),
        0.0
    );

    // Three payments delivered first time.
    let url = h.merchant_url("/n");
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(h.submit(&payment(&url, &format!("PAY-OK-{i}"))).await);
    }
    for id in &ids {
        h.wait_state(id, "delivered").await;
    }
    // A repeat, a repeat with different fields, and a body that is not an envelope.
    let first = payment(&url, "PAY-OK-0");
    let (status, body) = h.post("/v1/notifications", &first).await;
    assert_eq!((status, body["duplicate"].clone()), (200, json!(true)));
    let mut changed = first.clone();
    changed["body"]["paymentStatus"] = json!("FAIL");
    assert_eq!(h.post("/v1/notifications", &changed).await.0, 409);
    let (status, _) = h.post("/v1/notifications", &json!({"nothing": 1})).await;
    assert_eq!(status, 400);

    // A void the receiver refuses for good.
    h.merchant.set_mode("F".parse::<Respond>().unwrap());
    let refused = h.submit(&void(&url, "PAY-V", "S")).await;
    h.wait_state(&refused, "failed").await;

    // A payment that never gets an answer: 3 attempts (the test schedule), then dead.
    h.merchant.set_mode("500".parse::<Respond>().unwrap());
    let dead = h.submit(&payment(&url, "PAY-DEAD")).await;
    h.wait_state(&dead, "dead").await;

    let text = h.scrape().await;
    let s = parse(&text);
    let pay = Api::NotifyPayment.as_str();
    let vd = Api::NotifyVoid.as_str();
    let ingest = |api, outcome| {
        value(
            &s,
            m::INGEST_REQUESTS,
            &[("api", api), ("outcome", outcome)],
        )
    };
    assert_eq!(ingest(pay, "accepted"), 4.0);
    assert_eq!(ingest(pay, "duplicate"), 1.0);
    assert_eq!(ingest(pay, "inconsistent"), 1.0);
    assert_eq!(ingest(vd, "accepted"), 1.0);
    assert_eq!(ingest("unknown", "invalid"), 1.0);
    assert_eq!(ingest(pay, "invalid"), 0.0);

    let attempts = |api, outcome| {
        value(
            &s,
            m::DELIVERY_ATTEMPTS,
            &[("api", api), ("outcome", outcome)],
        )
    };
    assert_eq!(attempts(pay, "ack"), 3.0);
    assert_eq!(attempts(pay, "retry"), 3.0);
    assert_eq!(attempts(vd, "rejected"), 1.0);
    assert_eq!(attempts(vd, "ack"), 0.0);

    let finished = |api, state| value(&s, m::FINISHED, &[("api", api), ("state", state)]);
    assert_eq!(finished(pay, "delivered"), 3.0);
    assert_eq!(finished(pay, "dead"), 1.0);
    assert_eq!(finished(vd, "failed"), 1.0);
    assert_eq!(finished(vd, "delivered"), 0.0);

    // Histograms: one latency per final state, one duration per attempt, +Inf equal to count.
    let count = |family: &str, api: &str| value(&s, &format!("{family}_count"), &[("api", api)]);
    assert_eq!(count(m::DELIVERY_LATENCY, pay), 4.0);
    assert_eq!(count(m::DELIVERY_LATENCY, vd), 1.0);
    assert_eq!(count(m::ATTEMPT_DURATION, pay), 6.0);
    assert_eq!(count(m::ATTEMPT_DURATION, vd), 1.0);
    let inf = value(
        &s,
        &format!("{}_bucket", m::ATTEMPT_DURATION),
        &[("api", pay), ("le", "+Inf")],
    );
    assert_eq!(inf, 6.0);
    // The dead notification waited two 100 ms retry delays: above the 0.1 s bucket, not in it.
    let fast = value(
        &s,
        &format!("{}_bucket", m::DELIVERY_LATENCY),
        &[("api", pay), ("le", "0.1")],
    );
    assert!(fast <= 3.0, "{fast}");
    assert!(value(&s, &format!("{}_count", m::STORE_COMMIT), &[]) >= 1.0);
    assert!(value(&s, &format!("{}_sum", m::STORE_COMMIT), &[]) > 0.0);

    assert_eq!(value(&s, m::PENDING, &[]), 0.0);
    assert_eq!(value(&s, m::IN_FLIGHT, &[]), 0.0);
    // One endpoint, healthy again after its answers.
    assert_eq!(value(&s, m::ENDPOINTS, &[("state", "ok")]), 1.0);
    assert_eq!(value(&s, m::ENDPOINTS, &[("state", "held")]), 0.0);
    assert_eq!(
        value(&s, m::BUILD_INFO, &[("version", env!("CARGO_PKG_VERSION"))]),
        1.0
    );

    // Every family has its help text, and no label value comes from outside its fixed set.
    for f in FAMILIES {
        assert!(
            text.contains(&format!("# HELP {} ", f.name)),
            "{} has no HELP",
            f.name
        );
    }
    let apis: BTreeSet<&str> = Api::ALL
        .map(Api::as_str)
        .into_iter()
        .chain(["unknown"])
        .collect();
    let outcomes: BTreeSet<&str> = IngestOutcome::ALL
        .map(IngestOutcome::as_str)
        .into_iter()
        .chain(ATTEMPT_OUTCOMES)
        .collect();
    for sample in s.iter().filter(|s| s.name.starts_with("notifyd_")) {
        for (k, v) in &sample.labels {
            let bounded = match k.as_str() {
                "api" => apis.contains(v.as_str()),
                "outcome" => outcomes.contains(v.as_str()),
                "state" if sample.name == m::ENDPOINTS => EndpointState::ALL
                    .map(EndpointState::as_str)
                    .contains(&v.as_str()),
                "state" => FINISHED_STATES.contains(&v.as_str()),
                "le" => v == "+Inf" || v.parse::<f64>().is_ok(),
                "version" => v == env!("CARGO_PKG_VERSION"),
                "kind" => TransportKind::ALL
                    .map(TransportKind::as_str)
                    .contains(&v.as_str()),
                "result" => HOOK_RESULTS.contains(&v.as_str()),
                _ => false,
            };
            assert!(
                bounded,
                "{}: label {k}={v} is not from a fixed set",
                sample.name
            );
        }
    }

    promtool_check(&text);
}

/// `promtool check metrics` on the scrape; skipped (with the reason) only where promtool is absent.
fn promtool_check(text: &str) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            support::skip(
                "promtool check: promtool not found (apt-get install -y prometheus provides it)",
            );
            return;
        }
        Err(e) => panic!("promtool: {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- scrape ---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
