//! The idempotency table's accept and repeat paths, against `DashMap` doing the same work.
//!
//! - `miss`: a new key, reserved then confirmed, in a table kept at capacity (every insert evicts
//!   the oldest entry). The `DashMap` baseline inserts and removes the key inserted `CAP` earlier.
//! - `hit`: a repeat of a key already held (the duplicate answer).
//!
//! Each runs on 1 and 2 threads; with 2 the time reported is wall time over all operations, i.e.
//! the inverse of aggregate throughput. Before the benchmarks, the binary prints the memory per
//! entry of a table and a `DashMap` holding 2^20 entries, from RSS and from allocation sizes.

use std::hash::{BuildHasherDefault, Hasher};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use dashmap::DashMap;
use notifyd_core::idempotency::{Check, Fingerprint, IdempotencyKey, IdempotencyTable};
use notifyd_core::{NotificationId, UnixMillis};

const CAP: u64 = 1 << 20;
const NOW: UnixMillis = UnixMillis(0);

/// Counter -> uniform 128-bit key, as xxh3 would give.
fn key(n: u64) -> u128 {
    u128::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835) ^ 0xABCD
}

/// A pseudo-random index of one of the `CAP` keys present from the start.
fn present(n: u64) -> u64 {
    n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - CAP.trailing_zeros())
}

/// What `IdempotencyTable` uses, so the `DashMap` baseline can be compared without SipHash too.
#[derive(Default)]
struct KeyBits(u64);

impl Hasher for KeyBits {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write_u128(&mut self, i: u128) {
        self.0 = i as u64;
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u128 keys")
    }
}

trait Subject: Sync {
    fn miss(&self, n: u64);
    fn hit(&self, n: u64);
}

impl Subject for IdempotencyTable {
    fn miss(&self, n: u64) {
        let k = IdempotencyKey(key(n));
        let id = NotificationId::from_u128(u128::from(n));
        let c = self.check_and_reserve(k, Fingerprint(u128::from(n)), id, NOW);
        debug_assert_eq!(c, Check::New);
        self.confirm(k, id);
    }

    fn hit(&self, n: u64) {
        let i = present(n);
        let c = self.check_and_reserve(
            IdempotencyKey(key(i)),
            Fingerprint(u128::from(i)),
            NotificationId::from_u128(u128::MAX),
            NOW,
        );
        black_box(c);
    }
}

impl<S: std::hash::BuildHasher + Clone + Send + Sync> Subject for DashMap<u128, (u128, u128), S> {
    fn miss(&self, n: u64) {
        let k = key(n);
        self.entry(k).or_insert((u128::from(n), u128::from(n)));
        // The confirm step: a second lookup under the lock, as the table does.
        if let Some(mut v) = self.get_mut(&k) {
            v.1 |= 1 << 127;
        }
        if n >= CAP {
            self.remove(&key(n - CAP));
        }
    }

    fn hit(&self, n: u64) {
        let i = present(n);
        let fp = u128::from(i);
        let c = match self.entry(key(i)) {
            dashmap::Entry::Occupied(o) => o.get().0 == fp,
            dashmap::Entry::Vacant(v) => {
                v.insert((fp, 0));
                false
            }
        };
        black_box(c);
    }
}

/// A table holding the `CAP` first keys. `capacity` above `CAP` keeps every one of them present
/// (uniform keys do not fill the shards evenly); equal to `CAP` keeps it evicting on every miss.
fn filled_table(capacity: u64) -> IdempotencyTable {
    let t = IdempotencyTable::new(capacity as usize, Duration::from_secs(3600));
    for n in 0..CAP {
        t.miss(n);
    }
    t
}

fn filled_dashmap<S: std::hash::BuildHasher + Clone + Default + Send + Sync>()
-> DashMap<u128, (u128, u128), S> {
    let m = DashMap::with_hasher(S::default());
    for n in 0..CAP {
        m.miss(n);
    }
    m
}

/// Runs `iters` operations split over `threads` scoped threads, each on its own key range.
fn run(subject: &dyn Subject, next: &AtomicU64, hit: bool, threads: u64, iters: u64) -> Duration {
    let base = next.fetch_add(iters, Ordering::Relaxed);
    let per = iters.div_ceil(threads);
    let op = |n| {
        if hit { subject.hit(n) } else { subject.miss(n) }
    };
    if threads == 1 {
        let start = Instant::now();
        for n in base..base + iters {
            op(n);
        }
        return start.elapsed();
    }
    std::thread::scope(|s| {
        let start = Instant::now();
        for t in 0..threads {
            let lo = base + t * per;
            let hi = (lo + per).min(base + iters);
            s.spawn(move || {
                for n in lo..hi {
                    op(n);
                }
            });
        }
        // Leaving the scope joins the threads; time up to then.
        start
    })
    .elapsed()
}

fn bench(c: &mut Criterion) {
    for (group, hit) in [("idempotency/miss", false), ("idempotency/hit", true)] {
        // Fresh subjects per group: the miss runs replace every prefilled key.
        let table = filled_table(if hit { 2 * CAP } else { CAP });
        let sip: DashMap<u128, (u128, u128)> = filled_dashmap();
        let ident: DashMap<u128, (u128, u128), BuildHasherDefault<KeyBits>> = filled_dashmap();
        let subjects: [(&str, &dyn Subject); 3] = [
            ("table", &table),
            ("dashmap_sip", &sip),
            ("dashmap_identity", &ident),
        ];
        let mut g = c.benchmark_group(group);
        g.throughput(Throughput::Elements(1));
        for (name, subject) in subjects {
            // Miss keys continue after the prefill; hit counters only pick indices.
            let next = AtomicU64::new(CAP);
            for threads in [1u64, 2] {
                g.bench_function(BenchmarkId::new(name, format!("{threads}t")), |b| {
                    b.iter_custom(|iters| run(subject, &next, hit, threads, iters))
                });
            }
        }
        g.finish();
    }
}

fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn report_memory() {
    let before = rss_bytes();
    let table = filled_table(CAP);
    let after = rss_bytes();
    let len = table.len();
    eprintln!(
        "idempotency table, {len} entries (capacity {}): RSS {} B/entry, allocations {} B/entry",
        table.capacity(),
        (after - before) / len,
        table.memory_bytes() / len
    );
    drop(table);
    let before = rss_bytes();
    let map: DashMap<u128, (u128, u128), BuildHasherDefault<KeyBits>> = DashMap::default();
    for n in 0..CAP {
        map.insert(key(n), (0, 0));
    }
    let after = rss_bytes();
    eprintln!(
        "DashMap<u128, (u128, u128)>, {} entries: RSS {} B/entry (no eviction order kept)",
        map.len(),
        after.saturating_sub(before) / map.len()
    );
}

criterion_group!(benches, bench);

fn main() {
    report_memory();
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
