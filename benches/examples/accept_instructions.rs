//! CPU work per accepted record in the embedded store, for load-independent A/B comparisons
//! (the machine is shared, so wall-clock figures are noisy): accepts `N` records in commits of
//! `BATCH`, as ingest's group commit would, into a fresh `RedbStore`. Run it under callgrind
//! twice with different `N` and divide the difference in instructions by the difference in
//! records, which cancels start-up:
//!
//! ```sh
//! cargo build --release -p benches --example accept_instructions
//! for n in 2000 12000; do valgrind --tool=callgrind --callgrind-out-file=cg.$n \
//!   target/release/examples/accept_instructions $n; done
//! ```

use bytes::Bytes;
use notifyd_core::{Api, NotificationId, UnixMillis};
use notifyd_daemon::store::{NotificationRecord, RedbStore, State, Store, StoreOptions};

/// Records per commit: what one fsync carries at a few thousand accepts a second.
const BATCH: u64 = 64;

/// A pending notifyPayment with a 600-byte body; 1 000 endpoints and 50 partners, as in the
/// search benchmark, so the index trees are as wide as a real store's.
fn pending(n: u64, body: &Bytes) -> NotificationRecord {
    let host = format!("shop-{}.example.com", n % 1000);
    let payment = format!("PAY{n:016}");
    NotificationRecord {
        id: NotificationId::new(UnixMillis(1_700_000_000_000 + n), u128::from(n)),
        api: Api::NotifyPayment,
        profile: "default".into(),
        url: format!("https://{host}/notify"),
        body: body.clone(),
        idem_key: 0x5EED_0000 + u128::from(n),
        fingerprint: u128::from(n) * 31,
        order_key: format!("{host}|{payment}"),
        payment_request_id: Some(format!("REQ{n:016}")),
        payment_id: Some(payment),
        partner_id: Some(format!("P{:04}", n % 50)),
        state: State::Pending,
        attempts: 0,
        last_result: None,
        accepted_at: UnixMillis(1_700_000_000_000 + n),
        next_attempt_at: Some(UnixMillis(1_700_000_000_000 + n)),
        finished_at: None,
        delivery_started_at: Some(UnixMillis(1_700_000_000_000 + n)),
        receiver_ids: Default::default(),
        hook_of: None,
    }
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map_or(10_000, |a| a.parse().expect("N is a number"));
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path(), StoreOptions::default()).unwrap();
    let body = Bytes::from(vec![b'x'; 600]);
    let mut next = 0;
    while next < n {
        let end = (next + BATCH).min(n);
        let batch = (next..end).map(|i| pending(i, &body)).collect();
        store.accept(batch).wait().unwrap();
        next = end;
    }
    let bytes = std::fs::metadata(store.path()).map_or(0, |m| m.len());
    eprintln!("{n} records accepted; file {bytes} bytes");
}
