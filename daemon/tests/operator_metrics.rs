//! The operator's metrics (CONTRACT.md §4): `notifyd_oldest_overdue_seconds`,
//! `notifyd_idempotency_evicted_total` and `notifyd_endpoints{state}`, scraped from the
//! in-process daemon.

mod support;

use std::num::NonZeroU64;
use std::time::Duration;

use support::{Harness, payment};

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{series} missing:\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oldest_overdue_grows_while_an_endpoint_is_held_and_falls_to_zero() {
    let h = Harness::start("S").await;
    assert_eq!(
        value(&h.scrape().await, "notifyd_oldest_overdue_seconds"),
        0.0
    );
    let endpoint = h.merchant.addr().to_string();
    h.hold(&endpoint, true).await;
    let text = h.scrape().await;
    assert_eq!(
        value(&text, "notifyd_endpoints{state=\"held\"}"),
        1.0,
        "{text}"
    );
    let id = h.submit(&payment(&h.merchant_url("/n"), "PAY-LATE")).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let overdue = value(&h.scrape().await, "notifyd_oldest_overdue_seconds");
    assert!((1.0..30.0).contains(&overdue), "overdue {overdue}");
    h.hold(&endpoint, false).await;
    h.wait_state(&id, "delivered").await;
    let text = h.scrape().await;
    assert_eq!(value(&text, "notifyd_oldest_overdue_seconds"), 0.0);
    assert_eq!(
        value(&text, "notifyd_endpoints{state=\"held\"}"),
        0.0,
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_evicted_for_room_are_counted() {
    let h = Harness::start_with("S", |c| {
        // One key per shard of the table (64): the 65th distinct key evicts one early.
        c.store.idempotency_capacity = NonZeroU64::new(1).unwrap();
    })
    .await;
    assert_eq!(
        value(&h.scrape().await, "notifyd_idempotency_evicted_total"),
        0.0
    );
    let url = h.merchant_url("/n");
    for n in 0..100 {
        h.submit(&payment(&url, &format!("PAY-E{n}"))).await;
    }
    // 100 keys into 64 one-entry shards: at least 36 evicted, all well within retention.
    let evicted = value(&h.scrape().await, "notifyd_idempotency_evicted_total");
    assert!(evicted >= 36.0, "evicted {evicted}");
}
