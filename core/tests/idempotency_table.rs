//! Behaviour of the idempotency table: the answers ingest relies on, eviction, and concurrency.

use std::time::Duration;

use notifyd_core::idempotency::{Check, Fingerprint, IdempotencyKey, IdempotencyTable};
use notifyd_core::{NotificationId, UnixMillis};

const HOUR: Duration = Duration::from_secs(3600);

fn id(n: u128) -> NotificationId {
    NotificationId::from_u128(n)
}

fn fp(n: u128) -> Fingerprint {
    Fingerprint(n)
}

/// A key that lands in shard `shard` of a 64-shard table (shards are picked by the top 6 bits).
fn key_in(shard: u128, n: u128) -> IdempotencyKey {
    IdempotencyKey((shard << 122) | n)
}

fn key(n: u128) -> IdempotencyKey {
    key_in(0, n)
}

fn t(ms: u64) -> UnixMillis {
    UnixMillis(ms)
}

#[test]
fn new_then_duplicate_then_inconsistent() {
    let table = IdempotencyTable::new(1000, HOUR);
    assert_eq!(table.check(key(1), fp(7), t(0)), None);
    assert_eq!(
        table.check_and_reserve(key(1), fp(7), id(100), t(0)),
        Check::New
    );
    assert_eq!(
        table.check_and_reserve(key(1), fp(7), id(101), t(5)),
        Check::Duplicate {
            id: id(100),
            pending: true
        }
    );
    assert_eq!(
        table.check_and_reserve(key(1), fp(8), id(102), t(6)),
        Check::Inconsistent { id: id(100) }
    );
    // Neither repeat took the place of the first.
    assert_eq!(
        table.check(key(1), fp(8), t(7)),
        Some(Check::Inconsistent { id: id(100) })
    );
    assert_eq!(table.len(), 1);
    // Another key is unaffected.
    assert_eq!(
        table.check_and_reserve(key(2), fp(7), id(103), t(8)),
        Check::New
    );
}

#[test]
fn confirm_settles_the_reservation() {
    let table = IdempotencyTable::new(1000, HOUR);
    table.check_and_reserve(key(1), fp(1), id(10), t(0));
    assert!(
        !table.confirm(key(1), id(11)),
        "another id must not confirm"
    );
    assert_eq!(
        table.check(key(1), fp(1), t(1)),
        Some(Check::Duplicate {
            id: id(10),
            pending: true
        })
    );
    assert!(table.confirm(key(1), id(10)));
    assert_eq!(
        table.check(key(1), fp(1), t(1)),
        Some(Check::Duplicate {
            id: id(10),
            pending: false
        })
    );
    assert!(!table.confirm(key(2), id(10)), "unknown key");
}

#[test]
fn release_removes_only_its_own_pending_reservation() {
    let table = IdempotencyTable::new(1000, HOUR);
    table.check_and_reserve(key(1), fp(1), id(10), t(0));
    assert!(!table.release(key(1), id(11)));
    assert!(table.check(key(1), fp(1), t(0)).is_some());
    assert!(table.release(key(1), id(10)));
    assert_eq!(table.check(key(1), fp(1), t(0)), None);
    assert!(table.is_empty());
    // A retry of the failed notification is new again, under its new id.
    assert_eq!(
        table.check_and_reserve(key(1), fp(1), id(12), t(1)),
        Check::New
    );
    // A committed record is not a reservation: releasing it would let repeats through.
    table.confirm(key(1), id(12));
    assert!(!table.release(key(1), id(12)));
    assert!(table.check(key(1), fp(1), t(1)).is_some());
}

#[test]
fn entries_expire_after_retention() {
    let table = IdempotencyTable::new(1000, Duration::from_millis(1000));
    table.check_and_reserve(key(1), fp(1), id(10), t(0));
    table.confirm(key(1), id(10));
    assert!(table.check(key(1), fp(1), t(999)).is_some());
    assert_eq!(table.check(key(1), fp(1), t(1000)), None);
    // An expired entry is replaced, even with other key fields.
    assert_eq!(
        table.check_and_reserve(key(1), fp(2), id(20), t(1000)),
        Check::New
    );
    assert_eq!(
        table.check(key(1), fp(2), t(1500)),
        Some(Check::Duplicate {
            id: id(20),
            pending: true
        })
    );
    assert!(!table.confirm(key(1), id(10)), "the old id is gone");
    assert_eq!(table.len(), 1);
}

#[test]
fn evict_expired_counts_and_frees() {
    let table = IdempotencyTable::new(1000, Duration::from_millis(100));
    for n in 0..10 {
        table.check_and_reserve(key_in(n % 4, n), fp(0), id(n), t(n as u64 * 10));
    }
    // Entries inserted at 0..=40 are past retention at 140; 50..=90 are not.
    assert_eq!(table.evict_expired(t(140)), 5);
    assert_eq!(table.len(), 5);
    assert_eq!(table.evict_expired(t(140)), 0);
    assert!(table.check(key_in(1, 5), fp(0), t(140)).is_some());
    assert_eq!(table.evict_expired(t(10_000)), 5);
    assert!(table.is_empty());
}

#[test]
fn full_table_evicts_oldest_first_single_shard() {
    let cap = 8u128;
    let extra = 3u128;
    let table = IdempotencyTable::with_shards(cap as usize, HOUR, 1);
    for n in 0..cap + extra {
        let k = IdempotencyKey(n.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835));
        assert_eq!(
            table.check_and_reserve(k, fp(n), id(n), t(n as u64)),
            Check::New
        );
        table.confirm(k, id(n));
    }
    assert_eq!(table.len(), cap as usize);
    for n in 0..cap + extra {
        let k = IdempotencyKey(n.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835));
        let present = table.check(k, fp(n), t(100)).is_some();
        assert_eq!(present, n >= extra, "entry {n}");
    }
}

#[test]
fn full_table_evicts_oldest_first_across_shards() {
    // Keys go round-robin over the 64 shards, so per-shard FIFO equals global FIFO here.
    let per_shard = 4u128;
    let cap = 64 * per_shard;
    let extra = 64 * 2;
    let table = IdempotencyTable::new(cap as usize, HOUR);
    assert_eq!(table.capacity(), cap as usize);
    for n in 0..cap + extra {
        table.check_and_reserve(key_in(n % 64, n), fp(0), id(n), t(0));
        table.confirm(key_in(n % 64, n), id(n));
    }
    assert_eq!(table.len(), cap as usize);
    for n in 0..cap + extra {
        let present = table.check(key_in(n % 64, n), fp(0), t(0)).is_some();
        assert_eq!(present, n >= extra, "entry {n}");
    }
}

#[test]
fn eviction_skips_pending_reservations() {
    let table = IdempotencyTable::with_shards(3, HOUR, 1);
    for n in 0..3 {
        table.check_and_reserve(key(n), fp(0), id(n), t(0));
    }
    // Key 0 (the oldest) stays pending; 1 and 2 are committed.
    table.confirm(key(1), id(1));
    table.confirm(key(2), id(2));
    table.check_and_reserve(key(3), fp(0), id(3), t(0));
    assert!(table.check(key(0), fp(0), t(0)).is_some(), "pending kept");
    assert_eq!(
        table.check(key(1), fp(0), t(0)),
        None,
        "oldest settled went"
    );
    // The pending entry kept its age: once settled it is the next to go.
    table.confirm(key(0), id(0));
    table.confirm(key(3), id(3));
    table.check_and_reserve(key(4), fp(0), id(4), t(0));
    assert_eq!(table.check(key(0), fp(0), t(0)), None);
    assert!(table.check(key(2), fp(0), t(0)).is_some());
}

#[test]
fn all_pending_shard_grows_past_capacity() {
    let table = IdempotencyTable::with_shards(2, HOUR, 1);
    for n in 0..5 {
        assert_eq!(
            table.check_and_reserve(key(n), fp(0), id(n), t(0)),
            Check::New
        );
    }
    // Every reservation is still answerable: none was dropped to make room.
    assert_eq!(table.len(), 5);
    for n in 0..5 {
        assert!(table.check(key(n), fp(0), t(0)).is_some());
        table.confirm(key(n), id(n));
    }
    // Once settled, the next insertion brings the shard back under its share.
    table.check_and_reserve(key(9), fp(0), id(9), t(0));
    assert!(table.len() <= 5);
    assert!(table.check(key(9), fp(0), t(0)).is_some());
}

#[test]
fn stale_fifo_items_do_not_evict_a_reinserted_key() {
    let table = IdempotencyTable::with_shards(3, HOUR, 1);
    // A is reserved then released: its FIFO item, now first, is stale.
    table.check_and_reserve(key(0xA), fp(0), id(1), t(0));
    table.release(key(0xA), id(1));
    table.check_and_reserve(key(0xB), fp(0), id(2), t(1));
    table.confirm(key(0xB), id(2));
    // A comes back, newer than B.
    table.check_and_reserve(key(0xA), fp(0), id(3), t(2));
    table.confirm(key(0xA), id(3));
    table.check_and_reserve(key(0xC), fp(0), id(4), t(3));
    table.confirm(key(0xC), id(4));
    // Full: D must evict B (the oldest live entry), not A through its stale item.
    table.check_and_reserve(key(0xD), fp(0), id(5), t(4));
    assert_eq!(table.check(key(0xB), fp(0), t(5)), None);
    assert_eq!(
        table.check(key(0xA), fp(0), t(5)),
        Some(Check::Duplicate {
            id: id(3),
            pending: false
        })
    );
    assert_eq!(table.len(), 3);
}

#[test]
fn churn_keeps_live_entries_and_their_age_order() {
    // Every reserve/release cycle leaves a stale FIFO item, so this runs many compactions; none may
    // drop a live entry or reorder the survivors.
    let table = IdempotencyTable::with_shards(4, HOUR, 1);
    for n in [1u128, 2] {
        table.check_and_reserve(key(n), fp(0), id(n), t(0));
        table.confirm(key(n), id(n));
    }
    for round in 0..1000u128 {
        let k = key(100 + round % 3);
        assert_eq!(
            table.check_and_reserve(k, fp(0), id(1000 + round), t(1)),
            Check::New
        );
        assert!(table.release(k, id(1000 + round)));
    }
    assert_eq!(table.len(), 2);
    for n in [3u128, 4, 5] {
        table.check_and_reserve(key(n), fp(0), id(n), t(2));
        table.confirm(key(n), id(n));
    }
    // Capacity 4 and five inserted: the oldest (1) went, 2 stayed.
    assert_eq!(table.len(), 4);
    assert_eq!(table.check(key(1), fp(0), t(2)), None);
    for n in [2u128, 3, 4, 5] {
        assert!(table.check(key(n), fp(0), t(2)).is_some(), "entry {n}");
    }
    // Memory stayed bounded through the churn: a handful of entries, not a thousand FIFO items.
    assert!(table.memory_bytes() < 16 * 1024, "{}", table.memory_bytes());
}

#[test]
fn restore_loads_settled_records_and_keeps_the_earliest() {
    let table = IdempotencyTable::new(1000, Duration::from_millis(1000));
    table.restore(key(1), fp(1), id(20), t(200));
    assert_eq!(
        table.check(key(1), fp(1), t(300)),
        Some(Check::Duplicate {
            id: id(20),
            pending: false
        })
    );
    // A later record under the same key does not displace the first; an earlier one does.
    table.restore(key(1), fp(2), id(30), t(300));
    assert_eq!(
        table.check(key(1), fp(1), t(300)),
        Some(Check::Duplicate {
            id: id(20),
            pending: false
        })
    );
    table.restore(key(1), fp(3), id(10), t(100));
    assert_eq!(
        table.check(key(1), fp(3), t(300)),
        Some(Check::Duplicate {
            id: id(10),
            pending: false
        })
    );
    assert_eq!(table.len(), 1);
    // Restored records expire on their original time.
    assert_eq!(table.check(key(1), fp(3), t(1100)), None);
    assert_eq!(table.evict_expired(t(1100)), 1);
}

#[test]
fn restore_prefers_a_record_accepted_after_the_first_expired() {
    // Retention 1000: a record accepted at 1500 is a fresh notification, not a repeat of the one
    // from 100, and later repeats must get its id, in whichever order the store yields them.
    for order in [[(100, 10), (1500, 15)], [(1500, 15), (100, 10)]] {
        let table = IdempotencyTable::new(1000, Duration::from_millis(1000));
        for (at, n) in order {
            table.restore(key(1), fp(n), id(n), t(at));
        }
        assert_eq!(
            table.check(key(1), fp(15), t(1600)),
            Some(Check::Duplicate {
                id: id(15),
                pending: false
            }),
            "{order:?}"
        );
    }
}

#[test]
fn capacity_is_whole_shards() {
    assert_eq!(IdempotencyTable::new(10, HOUR).capacity(), 64);
    assert_eq!(IdempotencyTable::new(0, HOUR).capacity(), 64);
    assert_eq!(IdempotencyTable::new(1000, HOUR).capacity(), 1024);
    // Three shards become four.
    assert_eq!(IdempotencyTable::with_shards(100, HOUR, 3).capacity(), 100);
    assert_eq!(IdempotencyTable::with_shards(5, HOUR, 0).capacity(), 5);
}

#[test]
fn racing_threads_agree_on_one_winner_per_key() {
    const THREADS: u128 = 4;
    const KEYS: u128 = 2000;
    let table = IdempotencyTable::new(1 << 16, HOUR);
    let results: Vec<Vec<Check>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|tid| {
                let table = &table;
                s.spawn(move || {
                    (0..KEYS)
                        .map(|k| {
                            // Spread keys over the shards; each thread uses its own id per key.
                            let key = IdempotencyKey(
                                k.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835),
                            );
                            table.check_and_reserve(key, fp(k), id(k * THREADS + tid), t(0))
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for k in 0..KEYS {
        let winners: Vec<u128> = (0..THREADS)
            .filter(|&tid| results[tid as usize][k as usize] == Check::New)
            .collect();
        assert_eq!(winners.len(), 1, "key {k}: {winners:?}");
        let winner = id(k * THREADS + winners[0]);
        for tid in 0..THREADS {
            if tid != winners[0] {
                assert_eq!(
                    results[tid as usize][k as usize],
                    Check::Duplicate {
                        id: winner,
                        pending: true
                    },
                    "key {k} thread {tid}"
                );
            }
        }
    }
    assert_eq!(table.len(), KEYS as usize);
}

#[test]
fn table_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<IdempotencyTable>();
}

#[test]
fn evictions_for_room_before_retention_are_counted_and_expiries_are_not() {
    let table = IdempotencyTable::with_shards(2, HOUR, 1);
    for n in 1..=2 {
        table.check_and_reserve(key(n), fp(n), id(n), t(0));
        table.confirm(key(n), id(n));
    }
    assert_eq!(table.evicted_before_expiry(), 0);
    // Full: the third key pushes out the first an hour too soon.
    table.check_and_reserve(key(3), fp(3), id(3), t(10));
    table.confirm(key(3), id(3));
    assert_eq!(table.evicted_before_expiry(), 1);
    // Two hours on, the old ones have expired: making room for new keys costs nothing.
    let later = t(2 * 3_600_000);
    table.check_and_reserve(key(4), fp(4), id(4), later);
    table.check_and_reserve(key(5), fp(5), id(5), later);
    assert_eq!(
        table.evicted_before_expiry(),
        1,
        "expired entries are not counted"
    );
}
