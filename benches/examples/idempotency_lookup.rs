//! What the idempotency store fallback costs: once the in-memory table has evicted a key before
//! its retention ran out, every new notification is looked up in the store
//! (`Store::find_idempotency`) before it is committed. This fills an embedded store with `N`
//! notifications (default 1 000 000, accepted in batches of 1 000 as ingest would) and times
//! lookups of keys that are there and keys that are not:
//! `cargo run --release -p benches --example idempotency_lookup [N] [LOOKUPS]`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use notifyd_core::{Api, NotificationId, UnixMillis};
use notifyd_daemon::store::{KeyLookup, NotificationRecord, RedbStore, State, Store, StoreOptions};

fn record(n: u64) -> NotificationRecord {
    NotificationRecord {
        id: NotificationId::new(UnixMillis(1_000 + n), u128::from(n)),
        api: Api::NotifyPayment,
        profile: "default".into(),
        url: "https://merchant.example.com/notify".into(),
        body: Bytes::from(format!(
            "{{\"partnerId\":\"P0001\",\"paymentId\":\"PAY{n:016}\",\"paymentRequestId\":\"REQ{n:016}\"}}"
        )),
        idem_key: 0xABC0_0000 + u128::from(n),
        fingerprint: u128::from(n) * 31,
        order_key: format!("merchant.example.com|PAY{n:016}"),
        payment_id: Some(format!("PAY{n:016}")),
        payment_request_id: Some(format!("REQ{n:016}")),
        partner_id: Some("P0001".into()),
        state: State::Delivered,
        attempts: 1,
        last_result: None,
        accepted_at: UnixMillis(1_000 + n),
        next_attempt_at: None,
        finished_at: Some(UnixMillis(2_000 + n)),
        delivery_started_at: Some(UnixMillis(1_000 + n)),
        receiver_ids: Default::default(),
        hook_of: None,
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let lookups: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = RedbStore::open(dir.path(), StoreOptions::default()).expect("store");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let filled = Instant::now();
    for start in (0..n).step_by(1000) {
        let batch = (start..(start + 1000).min(n)).map(record).collect();
        rt.block_on(store.accept(batch)).expect("accept");
    }
    eprintln!("filled {n} in {:.1} s", filled.elapsed().as_secs_f64());
    let time = |hit: bool| -> Duration {
        let started = Instant::now();
        for i in 0..lookups {
            // Spread over the whole store, so the page cache is not one hot leaf.
            let k = (i * 7919) % n;
            let (key, rid) = if hit {
                (0xABC0_0000 + u128::from(k), format!("REQ{k:016}"))
            } else {
                (1, format!("NEW{k:016}"))
            };
            let found = store
                .find_idempotency(key, KeyLookup::PaymentRequestId(&rid), UnixMillis(0))
                .expect("lookup");
            assert_eq!(found.is_some(), hit);
        }
        started.elapsed() / u32::try_from(lookups).unwrap_or(u32::MAX)
    };
    let miss = time(false);
    let hit = time(true);
    eprintln!(
        "store of {n}: lookup of a new key {:.2} us, of a stored key {:.2} us",
        miss.as_secs_f64() * 1e6,
        hit.as_secs_f64() * 1e6
    );
}
