//! The status page's accepted/delivered charts count one daemon's traffic, not the process's:
//! two daemons in one process, only one of them busy.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{Harness, payment};

async fn rates(h: &Harness) -> Value {
    let (s, st) = h.get_metrics_listener("/status.json").await;
    assert_eq!(s, 200, "{st}");
    st["rates"].clone()
}

fn peak(rates: &Value, key: &str) -> f64 {
    rates["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s[key].as_f64().unwrap())
        .fold(0.0, f64::max)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_daemon_charts_only_its_own_traffic() {
    let busy = Harness::start("S").await;
    let idle = Harness::start("S").await;
    // The charts sample every 5 s and a rate needs two samples: keep the busy one busy until a
    // sample shows both accepts and deliveries (bounded), whatever the phase of its sampler.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut sent = Vec::new();
    let busy_rates = loop {
        let id = busy
            .submit(&payment(
                &busy.merchant_url("/notify"),
                &format!("PAY-RATE-{}", sent.len()),
            ))
            .await;
        sent.push(id);
        let r = rates(&busy).await;
        if peak(&r, "acceptedPerSecond") > 0.0 && peak(&r, "deliveredPerSecond") > 0.0 {
            break r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the busy daemon's charts stayed flat: {r}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for id in &sent {
        busy.wait_state(id, "delivered").await;
    }
    let r = rates(&busy).await;
    assert_eq!(r["acceptedTotal"], sent.len(), "{r}");
    assert_eq!(r["deliveredTotal"], sent.len(), "{r}");

    // The idle daemon has sampled over the same minutes (it started first's moment later) and
    // saw nothing: with process-wide counters it would chart the busy one's traffic.
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    let idle_rates = loop {
        let r = rates(&idle).await;
        if !r["samples"].as_array().unwrap().is_empty() || tokio::time::Instant::now() > until {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        !idle_rates["samples"].as_array().unwrap().is_empty(),
        "{idle_rates}"
    );
    assert_eq!(
        peak(&idle_rates, "acceptedPerSecond"),
        0.0,
        "{idle_rates}\nbusy: {busy_rates}"
    );
    assert_eq!(
        peak(&idle_rates, "deliveredPerSecond"),
        0.0,
        "{idle_rates}\nbusy: {busy_rates}"
    );
    assert_eq!(idle_rates["acceptedTotal"], 0, "{idle_rates}");
    assert_eq!(idle_rates["deliveredTotal"], 0, "{idle_rates}");
    assert_eq!(idle.merchant.count(), 0);
}
