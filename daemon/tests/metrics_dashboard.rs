//! The Grafana dashboard (systemd/grafana-dashboard.json) only queries metrics notifyd exports,
//! and covers what operators watch: throughput, ack classes, latency percentiles, pending,
//! dead letters, store commit time, backlog age, endpoint states, transport errors, evictions,
//! lost leases and dead-letter hooks.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use notifyd_daemon::metrics as m;
use serde_json::Value;
use support::Harness;

fn dashboard() -> Value {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd/grafana-dashboard.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Every PromQL string: panel targets' `expr` and template variables' queries.
fn queries(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, v) in o {
                match (k.as_str(), v) {
                    ("expr" | "definition", Value::String(s)) => out.push(s.clone()),
                    ("query", Value::String(s)) if s.contains("notifyd_") => out.push(s.clone()),
                    _ => queries(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| queries(v, out)),
        _ => {}
    }
}

/// The `notifyd_…` identifiers a query names.
fn metric_names(query: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = query;
    while let Some(at) = rest.find("notifyd_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// Family name → type, from a live scrape's `# TYPE` lines.
async fn exported() -> BTreeMap<String, String> {
    let h = Harness::start("S").await;
    let text = h.scrape().await;
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| {
            let (name, kind) = l.split_once(' ').unwrap();
            (name.to_owned(), kind.to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_names_an_exported_metric() {
    let families = exported().await;
    for f in m::FAMILIES {
        assert!(
            families.contains_key(f.name),
            "{} is not exported before traffic",
            f.name
        );
    }
    let mut qs = Vec::new();
    queries(&dashboard(), &mut qs);
    assert!(qs.len() >= 10, "too few queries found: {qs:?}");
    let mut used = BTreeSet::new();
    for q in &qs {
        let names = metric_names(q);
        assert!(!names.is_empty() || !q.contains("notifyd"), "{q}");
        for name in names {
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| {
                    name.strip_suffix(suffix)
                        .filter(|base| families.get(*base).is_some_and(|k| k == "histogram"))
                })
                .unwrap_or(&name)
                .to_owned();
            assert!(
                families.contains_key(&family),
                "dashboard query names {name}, which notifyd does not export: {q}"
            );
            used.insert(family);
        }
    }
    for needed in [
        m::INGEST_REQUESTS,
        m::DELIVERY_ATTEMPTS,
        m::FINISHED,
        m::DELIVERY_LATENCY,
        m::ATTEMPT_DURATION,
        m::PENDING,
        m::STORE_COMMIT,
        // Added since the board was first made (issue 16): each has a panel.
        m::OLDEST_OVERDUE,
        m::ENDPOINTS,
        m::IDEMPOTENCY_EVICTED,
        m::TRANSPORT_ERRORS,
        m::LEASE_LOST,
        m::DEAD_LETTER_HOOKS,
    ] {
        assert!(used.contains(needed), "the dashboard never shows {needed}");
    }
    let has = |pred: &dyn Fn(&str) -> bool| qs.iter().any(|q| pred(q));
    assert!(
        has(&|q| q.contains("histogram_quantile(0.99") && q.contains(m::DELIVERY_LATENCY)),
        "no p99 delivery latency"
    );
    assert!(
        has(&|q| q.contains(m::FINISHED) && q.contains(r#"state="dead""#)),
        "no dead-letter panel"
    );
    assert!(
        has(&|q| q.contains(m::DELIVERY_ATTEMPTS) && q.contains("by (outcome)")),
        "no ack-class breakdown"
    );
}

#[test]
fn metric_names_are_found_in_queries() {
    assert_eq!(
        metric_names("sum(rate(notifyd_a_total{x=\"y\"}[5m])) / notifyd_b"),
        ["notifyd_a_total", "notifyd_b"]
    );
}
