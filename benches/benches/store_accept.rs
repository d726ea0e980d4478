//! The store alone: single-record accepts from 64 concurrent callers into a `RedbStore` on disk,
//! each resolved only once its group commit is durable (fsync). The time reported is wall time
//! per accept over all callers, the inverse of the store's accept throughput; the figure is
//! bounded by fsyncs per second times records per commit, which the binary prints at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group};
use notifyd_core::{Api, NotificationId, UnixMillis};
use notifyd_daemon::store::{NotificationRecord, RedbStore, State, Store, StoreOptions};

const CALLERS: u64 = 64;
/// A notifyPayment's canonical body is about this long.
const BODY_BYTES: usize = 600;

fn record(n: u64, body: &Bytes) -> NotificationRecord {
    let payment = format!("pay-{n}");
    NotificationRecord {
        id: NotificationId::from_u128(u128::from(n) + 1),
        api: Api::NotifyPayment,
        profile: "default".into(),
        url: "https://merchant.example.com/notify".into(),
        body: body.clone(),
        idem_key: 0xABC0_0000 + u128::from(n),
        fingerprint: u128::from(n) * 31,
        order_key: format!("merchant.example.com|{payment}"),
        payment_id: Some(payment.clone()),
        payment_request_id: Some(format!("req-{payment}")),
        partner_id: Some("P0001".into()),
        state: State::Pending,
        attempts: 0,
        last_result: None,
        accepted_at: UnixMillis(1_000 + n),
        next_attempt_at: Some(UnixMillis(1_000 + n)),
        finished_at: None,
        delivery_started_at: Some(UnixMillis(1_000 + n)),
        receiver_ids: Default::default(),
        hook_of: None,
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RedbStore::open(dir.path(), StoreOptions::default()).unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let body = Bytes::from(vec![b'x'; BODY_BYTES]);
    let next = Arc::new(AtomicU64::new(0));
    let mut g = c.benchmark_group("store_accept");
    g.throughput(Throughput::Elements(1));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("64_callers_600_byte_bodies", |b| {
        b.iter_custom(|iters| {
            let per_caller = iters.div_ceil(CALLERS);
            let started = Instant::now();
            rt.block_on(async {
                let callers: Vec<_> = (0..CALLERS)
                    .map(|_| {
                        let (store, body, next) = (store.clone(), body.clone(), next.clone());
                        tokio::spawn(async move {
                            for _ in 0..per_caller {
                                let n = next.fetch_add(1, Ordering::Relaxed);
                                store.accept(vec![record(n, &body)]).await.unwrap();
                            }
                        })
                    })
                    .collect();
                for c in callers {
                    c.await.unwrap();
                }
            });
            // Rounded up to whole callers: scale back to the `iters` criterion asked for.
            started
                .elapsed()
                .mul_f64(iters as f64 / (per_caller * CALLERS) as f64)
        })
    });
    g.finish();
    let stats = store.stats();
    let (commits, records) = (
        stats.commits.load(Ordering::Relaxed),
        stats.records.load(Ordering::Relaxed),
    );
    let file_bytes = std::fs::metadata(store.path()).map_or(0, |m| m.len());
    eprintln!(
        "store_accept: {records} records in {commits} commits ({:.1} a commit); file {:.0} bytes a record",
        records as f64 / commits.max(1) as f64,
        file_bytes as f64 / records.max(1) as f64,
    );
}

criterion_group!(benches, bench);

fn main() {
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
