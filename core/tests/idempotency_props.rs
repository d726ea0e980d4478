//! Property tests: the table against a plain model, over random single-threaded operation sequences.
//!
//! With one shard the table's eviction order is exact FIFO, so the model can mirror it in full
//! (retention, capacity eviction that skips pending entries, release, confirm, restore) and every
//! answer and the size must agree. With many shards, eviction for room is per shard, so that case
//! uses a capacity no sequence can reach and compares only the answers.

use std::collections::HashMap;
use std::time::Duration;

use notifyd_core::idempotency::{Check, Fingerprint, IdempotencyKey, IdempotencyTable};
use notifyd_core::{NotificationId, UnixMillis};
use proptest::prelude::*;

const RETENTION_MS: u64 = 100;

#[derive(Debug, Clone)]
enum Op {
    Reserve {
        key: u8,
        fp: u8,
    },
    Check {
        key: u8,
        fp: u8,
    },
    /// `own`: use the id the model holds for the key (else a foreign one).
    Confirm {
        key: u8,
        own: bool,
    },
    Release {
        key: u8,
        own: bool,
    },
    Restore {
        key: u8,
        fp: u8,
    },
    Advance {
        ms: u64,
    },
    EvictExpired,
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u8..8;
    let fp = 0u8..2;
    prop_oneof![
        4 => (key.clone(), fp.clone()).prop_map(|(key, fp)| Op::Reserve { key, fp }),
        2 => (key.clone(), fp.clone()).prop_map(|(key, fp)| Op::Check { key, fp }),
        2 => (key.clone(), any::<bool>()).prop_map(|(key, own)| Op::Confirm { key, own }),
        1 => (key.clone(), any::<bool>()).prop_map(|(key, own)| Op::Release { key, own }),
        1 => (key, fp).prop_map(|(key, fp)| Op::Restore { key, fp }),
        1 => (0u64..60).prop_map(|ms| Op::Advance { ms }),
        1 => Just(Op::EvictExpired),
    ]
}

#[derive(Debug, Clone, Copy)]
struct ModelEntry {
    fp: u8,
    id: u128,
    at: u64,
    pending: bool,
}

/// Entries plus their insertion order. Time only moves forward and entries are inserted at `now`,
/// so the expired entries are always a prefix of `order`.
#[derive(Debug, Default)]
struct Model {
    entries: HashMap<u8, ModelEntry>,
    order: Vec<u8>,
    /// `None`: capacity never reached, eviction for room not modelled.
    cap: Option<usize>,
}

impl Model {
    fn expired(e: &ModelEntry, now: u64) -> bool {
        e.at + RETENTION_MS <= now
    }

    fn judge(e: &ModelEntry, fp: u8) -> Check {
        if e.fp == fp {
            Check::Duplicate {
                id: NotificationId::from_u128(e.id),
                pending: e.pending,
            }
        } else {
            Check::Inconsistent {
                id: NotificationId::from_u128(e.id),
            }
        }
    }

    fn remove(&mut self, key: u8) {
        self.entries.remove(&key);
        self.order.retain(|&k| k != key);
    }

    fn evict_expired(&mut self, now: u64) -> usize {
        let gone: Vec<u8> = self
            .order
            .iter()
            .copied()
            .filter(|k| Self::expired(&self.entries[k], now))
            .collect();
        for &k in &gone {
            self.remove(k);
        }
        gone.len()
    }

    fn insert(&mut self, key: u8, e: ModelEntry) {
        if let Some(cap) = self.cap
            && !self.entries.contains_key(&key)
            && self.entries.len() >= cap
            && let Some(victim) = self
                .order
                .iter()
                .copied()
                .find(|k| !self.entries[k].pending)
        {
            self.remove(victim);
        }
        self.remove(key);
        self.entries.insert(key, e);
        self.order.push(key);
    }
}

fn table_key(k: u8, spread: bool) -> IdempotencyKey {
    let k = u128::from(k);
    IdempotencyKey(if spread {
        // Different shards and buckets for different model keys.
        k.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835) ^ 0x5555
    } else {
        k
    })
}

fn run(ops: Vec<Op>, table: IdempotencyTable, mut model: Model, spread: bool) {
    let exact = model.cap.is_some();
    let mut now = 0u64;
    let mut next_id = 1u128;
    let foreign = NotificationId::from_u128(u128::MAX);
    for (i, op) in ops.into_iter().enumerate() {
        let at = UnixMillis(now);
        match op {
            Op::Reserve { key, fp } => {
                let id = next_id;
                next_id += 1;
                let got = table.check_and_reserve(
                    table_key(key, spread),
                    Fingerprint(fp.into()),
                    NotificationId::from_u128(id),
                    at,
                );
                let want = match model.entries.get(&key) {
                    Some(e) if !Model::expired(e, now) => Model::judge(e, fp),
                    _ => {
                        model.evict_expired(now);
                        let e = ModelEntry {
                            fp,
                            id,
                            at: now,
                            pending: true,
                        };
                        model.insert(key, e);
                        Check::New
                    }
                };
                assert_same(i, &got, &want);
                // The property the ingest path depends on, stated on its own.
                if let Some(e) = model.entries.get(&key) {
                    match got {
                        Check::Duplicate { .. } => assert_eq!(e.fp, fp, "op {i}"),
                        Check::Inconsistent { .. } => assert_ne!(e.fp, fp, "op {i}"),
                        Check::New => {}
                    }
                }
            }
            Op::Check { key, fp } => {
                let got = table.check(table_key(key, spread), Fingerprint(fp.into()), at);
                let want = model
                    .entries
                    .get(&key)
                    .filter(|e| !Model::expired(e, now))
                    .map(|e| Model::judge(e, fp));
                assert_same(i, &got, &want);
            }
            Op::Confirm { key, own } => {
                let held = model.entries.get(&key).map(|e| e.id);
                let id = match (own, held) {
                    (true, Some(id)) => NotificationId::from_u128(id),
                    _ => foreign,
                };
                let got = table.confirm(table_key(key, spread), id);
                let want = held.is_some_and(|h| NotificationId::from_u128(h) == id);
                if want && let Some(e) = model.entries.get_mut(&key) {
                    e.pending = false;
                }
                assert_same(i, &got, &want);
            }
            Op::Release { key, own } => {
                let held = model.entries.get(&key).copied();
                let id = match (own, held) {
                    (true, Some(e)) => NotificationId::from_u128(e.id),
                    _ => foreign,
                };
                let got = table.release(table_key(key, spread), id);
                let want = held.is_some_and(|e| e.pending && NotificationId::from_u128(e.id) == id);
                if want {
                    model.remove(key);
                }
                assert_same(i, &got, &want);
            }
            Op::Restore { key, fp } => {
                let id = next_id;
                next_id += 1;
                table.restore(
                    table_key(key, spread),
                    Fingerprint(fp.into()),
                    NotificationId::from_u128(id),
                    at,
                );
                // Restoring at `now`: a present entry is at least as old and wins unless it had
                // expired by the time this record was accepted.
                if model
                    .entries
                    .get(&key)
                    .is_none_or(|e| Model::expired(e, now))
                {
                    let e = ModelEntry {
                        fp,
                        id,
                        at: now,
                        pending: false,
                    };
                    model.insert(key, e);
                }
            }
            Op::Advance { ms } => now += ms,
            Op::EvictExpired => {
                let got = table.evict_expired(at);
                let want = model.evict_expired(now);
                if exact {
                    assert_same(i, &got, &want);
                }
            }
        }
        if exact {
            assert_eq!(table.len(), model.entries.len(), "len after op {i}");
        }
    }
}

fn assert_same<T: PartialEq + std::fmt::Debug>(i: usize, got: &T, want: &T) {
    assert_eq!(got, want, "op {i}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn single_shard_matches_fifo_model(cap in 1usize..6, ops in prop::collection::vec(op(), 1..120)) {
        let table = IdempotencyTable::with_shards(cap, Duration::from_millis(RETENTION_MS), 1);
        let model = Model { cap: Some(cap), ..Model::default() };
        run(ops, table, model, false);
    }

    #[test]
    fn sharded_answers_match_model(ops in prop::collection::vec(op(), 1..120)) {
        // 8 model keys can never fill 64 shards of 16: no eviction for room.
        let table = IdempotencyTable::new(1024, Duration::from_millis(RETENTION_MS));
        run(ops, table, Model::default(), true);
    }
}
