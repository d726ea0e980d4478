//! The in-memory idempotency table: which keys notifyd has accepted recently, with what fingerprint
//! and under which id.
//!
//! It answers the ingest question "new, repeat or inconsistent repeat?" without a store read, so it
//! sits on the hot path of every accepted notification and is shared by all ingest threads.
//!
//! Design:
//! - **Sharded.** `N` shards (a power of two, 64 by default), each a `parking_lot::Mutex` around a
//!   key index and an age ring. Keys are xxh3-128 outputs and already uniform, so the shard is
//!   chosen by the top bits and the index uses other bits of the key as they are (no second
//!   hash). Keys are assumed to come from [`KeyHasher`](super::KeyHasher) over fields of the
//!   authenticated gateway; a party able to choose colliding inputs freely could lengthen probes.
//! - **One ring per shard holds the entries in insertion order**; the [index](super::index) maps a
//!   key to its ring position. An unknown key costs one cold cache line (its index line), making
//!   room costs one more (the evicted key's index line), and the ring is read and written only at
//!   its two ends, in order, which the CPU prefetches: the accept path of a full table meets two
//!   cache misses, where a hash map of entries beside a FIFO of keys meets four.
//! - **Bounded.** A capacity (split evenly over the shards) and a retention window. An entry older
//!   than the window counts as unknown and is replaced; when a shard is full its oldest entry goes.
//!   Age order is kept per shard, so eviction approximates global FIFO: the entry evicted is the
//!   oldest of its shard, which, with uniform keys, is among the oldest of the table.
//! - **Pending entries are never evicted for room.** A reservation lives only while its store commit
//!   is in flight; evicting it would let a concurrent repeat through as new and store a second copy.
//!   A shard whose every entry is pending therefore grows past its share, so memory is bounded by
//!   `capacity + in-flight reservations`, and the daemon bounds the latter by its ingest concurrency.
//!   Pending entries do expire with the retention window (a reservation that old was leaked by its
//!   caller), and [`confirm`](IdempotencyTable::confirm)/[`release`](IdempotencyTable::release)
//!   tolerate a reservation that is gone.
//! - **Dead ring items.** Removing or replacing an entry leaves its ring item behind, marked dead
//!   and no longer indexed, so it can never evict a newer entry under the same key. The ring is
//!   compacted (and the index rebuilt) when dead items outnumber live ones, which keeps it at most
//!   about twice the live entries and keeps every position within the index's 32 bits.
//!
//! Memory: see [`IdempotencyTable::APPROX_BYTES_PER_ENTRY`].

use std::collections::VecDeque;
use std::time::Duration;

use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::hash::{Fingerprint, IdempotencyKey};
use super::index::{Found, Index};
use crate::id::NotificationId;
use crate::time::UnixMillis;

/// Shards used by [`IdempotencyTable::new`]: enough that two dozen ingest threads rarely meet on one
/// lock, few enough that the per-shard FIFO stays a good approximation of global age order.
pub const DEFAULT_SHARDS: usize = 64;

const MAX_SHARDS: usize = 1 << 12;
// Keeps the ring (at most ~2x the shard plus slack) far below the 2^32 positions the index holds.
const MAX_PER_SHARD: usize = 1 << 30;

/// The answer to "have we seen this key?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Unknown (or expired) key: it is now reserved for the caller's id.
    New,
    /// Same key and same key fields as an earlier notification, which got `id`. `pending` is true
    /// while that first notification's store commit is still in flight.
    Duplicate { id: NotificationId, pending: bool },
    /// Same key, different key fields than the notification that got `id`.
    Inconsistent { id: NotificationId },
}

/// One ring item: an entry, or (`live` false) the remains of a removed or replaced one.
#[derive(Debug, Clone, Copy)]
struct Item {
    key: u128,
    fingerprint: u128,
    id: NotificationId,
    inserted_at: UnixMillis,
    pending: bool,
    live: bool,
}

#[derive(Debug, Default)]
struct Shard {
    index: Index,
    ring: VecDeque<Item>,
    /// Ring position of `ring[0]`; positions count insertions and wrap at 2^32.
    head: u32,
    live: usize,
}

/// What [`Shard::put`] needs of the table around it.
#[derive(Clone, Copy)]
struct Limits<'a> {
    per_shard: usize,
    retention_ms: u64,
    evicted: &'a AtomicU64,
}

/// A shard on its own cache line, so threads working on neighbouring shards do not contend for it.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Padded(Mutex<Shard>);

fn expired(inserted_at: UnixMillis, retention_ms: u64, now: UnixMillis) -> bool {
    inserted_at.0.saturating_add(retention_ms) <= now.0
}

fn judge(e: &Item, fp: Fingerprint) -> Check {
    if e.fingerprint == fp.0 {
        Check::Duplicate {
            id: e.id,
            pending: e.pending,
        }
    } else {
        Check::Inconsistent { id: e.id }
    }
}

impl Shard {
    fn at(&self, pos: u32) -> usize {
        pos.wrapping_sub(self.head) as usize
    }

    /// The live entry of `key`, if any.
    fn find(&self, key: u128) -> Option<Found> {
        self.index.find(key, |pos| {
            self.ring
                .get(self.at(pos))
                .is_some_and(|e| e.key == key && e.live)
        })
    }

    fn entry(&self, at: Found) -> &Item {
        &self.ring[self.at(at.pos)]
    }

    fn entry_mut(&mut self, at: Found) -> &mut Item {
        let i = self.at(at.pos);
        &mut self.ring[i]
    }

    /// Appends `item` to the ring and returns its position.
    fn push(&mut self, item: Item, per_shard: usize) -> u32 {
        let len = self.ring.len();
        if len == self.ring.capacity() {
            // Doubling, but not past the shard's share while below it: a full shard's ring is
            // then its share exactly, not up to twice that (64 bytes per item).
            let doubled = (2 * len).max(4);
            let target = if len < per_shard {
                doubled.min(per_shard)
            } else {
                doubled
            };
            self.ring.reserve_exact(target - len);
        }
        let pos = self.head.wrapping_add(len as u32);
        self.ring.push_back(item);
        self.live += 1;
        pos
    }

    /// Marks the entry found at `at` dead and unindexes it.
    fn kill(&mut self, key: u128, at: Found) {
        self.entry_mut(at).live = false;
        self.index.remove(key, at);
        self.live -= 1;
        self.pop_dead_front();
    }

    fn pop_dead_front(&mut self) {
        while self.ring.front().is_some_and(|e| !e.live) {
            self.ring.pop_front();
            self.head = self.head.wrapping_add(1);
        }
    }

    /// Inserts `key`, or replaces its entry found at `existing` (which [`find`](Self::find) gave
    /// with no removal since), making room first if the shard is full. The caller has checked
    /// that the existing entry may be replaced. An entry evicted for room before its retention ran
    /// out is counted in `evicted`.
    fn put(&mut self, key: u128, item: Item, existing: Option<Found>, limits: Limits<'_>) {
        if let Some(at) = existing {
            // The replaced entry's item stays in the ring, dead, until the front or a compaction
            // reaches it.
            self.entry_mut(at).live = false;
            self.live -= 1;
            let pos = self.push(item, limits.per_shard);
            self.index.repoint(at, pos);
        } else {
            if self.live >= limits.per_shard
                && let Some(at) = self.evict_oldest_settled()
                && !expired(at, limits.retention_ms, item.inserted_at)
            {
                limits.evicted.fetch_add(1, Ordering::Relaxed);
            }
            let pos = self.push(item, limits.per_shard);
            if self.index.needs_growth() {
                self.reindex(2 * self.index.lines());
            } else {
                self.index.insert(key, pos);
            }
        }
        if self.ring.len() > 2 * self.live + 32 {
            self.ring.retain(|e| e.live);
            self.reindex(self.index.lines());
        }
    }

    /// Rebuilds the index from the ring, over `lines` lines.
    fn reindex(&mut self, lines: usize) {
        let mut index = Index::with_lines(lines);
        for (i, e) in self.ring.iter().enumerate() {
            if e.live {
                index.insert(e.key, self.head.wrapping_add(i as u32));
            }
        }
        self.index = index;
    }

    /// Removes the oldest entry that is not pending. Pending items met on the way keep their place.
    /// Returns when the removed entry was inserted, if one was removed.
    fn evict_oldest_settled(&mut self) -> Option<UnixMillis> {
        let i = self.ring.iter().position(|e| e.live && !e.pending)?;
        let e = &mut self.ring[i];
        e.live = false;
        let (key, at) = (e.key, e.inserted_at);
        self.index.remove_pos(key, self.head.wrapping_add(i as u32));
        self.live -= 1;
        self.pop_dead_front();
        Some(at)
    }

    /// Drops expired entries from the front of the ring, stopping at the first live one that has
    /// not expired. Returns how many entries went.
    fn evict_expired_front(&mut self, retention_ms: u64, now: UnixMillis) -> usize {
        let mut n = 0;
        while let Some(e) = self.ring.front() {
            if e.live {
                if !expired(e.inserted_at, retention_ms, now) {
                    break;
                }
                self.index.remove_pos(e.key, self.head);
                self.live -= 1;
                n += 1;
            }
            self.ring.pop_front();
            self.head = self.head.wrapping_add(1);
        }
        n
    }
}

/// The concurrent, bounded idempotency table. `Send + Sync`; share it with an `Arc`.
///
/// Protocol for one ingest: [`check_and_reserve`](Self::check_and_reserve); on `New`, commit to the
/// store, then [`confirm`](Self::confirm) on success or [`release`](Self::release) on failure.
/// At start-up, [`restore`](Self::restore) every committed record, oldest first.
#[derive(Debug)]
pub struct IdempotencyTable {
    shards: Box<[Padded]>,
    shard_bits: u32,
    per_shard: usize,
    retention_ms: u64,
    /// Entries evicted for room before their retention ran out, over the table's life.
    evicted_unexpired: AtomicU64,
}

impl IdempotencyTable {
    /// Upper bound, measured, on heap bytes per entry of a full table in steady churn.
    ///
    /// Where it goes: a 64-byte ring item, and an 8-byte index slot in a 64-byte line of seven,
    /// at a load between 7/16 and 7/8 (the index doubles at 7/8): 64 + 10 to 21 bytes. A ring
    /// grows by doubling but stops at its shard's share, so a full shard's ring holds no slack;
    /// it may grow past its share (to twice, briefly) only with dead items from releases or
    /// replaced keys, or with pending reservations beyond the share.
    ///
    /// Measured at 64 shards by allocation sizes (`tests/idempotency_memory.rs`): 2^20 entries 80,
    /// 802 880 (each shard's index just doubled, the worst case) 84 B/entry; the RSS growth is
    /// printed by `cargo bench -p benches --bench idempotency`. The hashbrown map plus FIFO of
    /// keys this layout replaced measured 116 to 176. [`memory_bytes`] reports the live figure.
    ///
    /// [`memory_bytes`]: Self::memory_bytes
    pub const APPROX_BYTES_PER_ENTRY: usize = 96;

    /// A table for `capacity` entries kept at most `retention`, over [`DEFAULT_SHARDS`] shards.
    /// `capacity` is raised to at least one entry per shard.
    pub fn new(capacity: usize, retention: Duration) -> Self {
        Self::with_shards(capacity, retention, DEFAULT_SHARDS)
    }

    /// As [`new`](Self::new) with `shards` shards (rounded up to a power of two, at most 4096).
    /// One shard gives exact global FIFO eviction.
    pub fn with_shards(capacity: usize, retention: Duration, shards: usize) -> Self {
        let shards = shards.clamp(1, MAX_SHARDS).next_power_of_two();
        let per_shard = capacity.div_ceil(shards).clamp(1, MAX_PER_SHARD);
        IdempotencyTable {
            shards: (0..shards).map(|_| Padded::default()).collect(),
            shard_bits: shards.trailing_zeros(),
            per_shard,
            retention_ms: u64::try_from(retention.as_millis()).unwrap_or(u64::MAX),
            evicted_unexpired: AtomicU64::new(0),
        }
    }

    fn limits(&self) -> Limits<'_> {
        Limits {
            per_shard: self.per_shard,
            retention_ms: self.retention_ms,
            evicted: &self.evicted_unexpired,
        }
    }

    /// Entries evicted for room while their retention still ran: from the first such eviction
    /// on, a miss no longer proves a key unknown within the retention window, and a caller that
    /// must be sure asks its store (the daemon does). Counted over the table's life.
    pub fn evicted_unexpired(&self) -> u64 {
        self.evicted_unexpired.load(Ordering::Relaxed)
    }

    fn shard(&self, key: IdempotencyKey) -> &Mutex<Shard> {
        let i = if self.shard_bits == 0 {
            0
        } else {
            (key.0 >> (128 - self.shard_bits)) as usize
        };
        &self.shards[i].0
    }

    /// Atomically: an unknown key is reserved for `id` (pending) and gives [`Check::New`]; a known
    /// key gives [`Check::Duplicate`] when `fp` matches and [`Check::Inconsistent`] when not.
    /// An entry with `inserted_at + retention <= now` counts as unknown and is replaced.
    pub fn check_and_reserve(
        &self,
        key: IdempotencyKey,
        fp: Fingerprint,
        id: NotificationId,
        now: UnixMillis,
    ) -> Check {
        let mut shard = self.shard(key).lock();
        let existing = shard.find(key.0);
        if let Some(at) = existing {
            let e = shard.entry(at);
            if !expired(e.inserted_at, self.retention_ms, now) {
                return judge(e, fp);
            }
        }
        // Amortised O(1): every ring item is popped at most once.
        shard.evict_expired_front(self.retention_ms, now);
        // Only an expired entry of this very key can have gone with the front: look it up again
        // then, and only then (the unknown key, the common case, is probed once).
        let existing = existing.and_then(|_| shard.find(key.0));
        let item = Item {
            key: key.0,
            fingerprint: fp.0,
            id,
            inserted_at: now,
            pending: true,
            live: true,
        };
        shard.put(key.0, item, existing, self.limits());
        Check::New
    }

    /// The store committed `id`: its reservation becomes a settled entry. Returns false (and does
    /// nothing) when `key` no longer holds `id`, e.g. the reservation expired.
    pub fn confirm(&self, key: IdempotencyKey, id: NotificationId) -> bool {
        let mut shard = self.shard(key).lock();
        match shard.find(key.0) {
            Some(at) if shard.entry(at).id == id => {
                shard.entry_mut(at).pending = false;
                true
            }
            _ => false,
        }
    }

    /// The store did not commit `id`: drop its reservation so a retry of the same notification is
    /// new again. Only a pending entry holding `id` is removed; returns whether one was.
    pub fn release(&self, key: IdempotencyKey, id: NotificationId) -> bool {
        let mut shard = self.shard(key).lock();
        match shard.find(key.0) {
            Some(at) if shard.entry(at).id == id && shard.entry(at).pending => {
                // Its ring item stays, dead, until the front or a compaction reaches it.
                shard.kill(key.0, at);
                true
            }
            _ => false,
        }
    }

    /// Loads a committed record at start-up (settled, not pending). Restore oldest first: age
    /// order in the table is restore order, and a full shard evicts what came first.
    ///
    /// Two records under one key are legitimate when the second was accepted after the first had
    /// expired; the later one then counts. Otherwise the earlier one wins: its id is the one
    /// repeats must be answered with.
    pub fn restore(
        &self,
        key: IdempotencyKey,
        fp: Fingerprint,
        id: NotificationId,
        inserted_at: UnixMillis,
    ) {
        let mut shard = self.shard(key).lock();
        let existing = shard.find(key.0);
        if let Some(at) = existing {
            let e = shard.entry(at);
            let (earlier, later) = if e.inserted_at <= inserted_at {
                (e.inserted_at, inserted_at)
            } else {
                (inserted_at, e.inserted_at)
            };
            // On a tie the entry already there stays.
            let keep_existing = if expired(earlier, self.retention_ms, later) {
                e.inserted_at >= inserted_at
            } else {
                e.inserted_at <= inserted_at
            };
            if keep_existing {
                return;
            }
        }
        let item = Item {
            key: key.0,
            fingerprint: fp.0,
            id,
            inserted_at,
            pending: false,
            live: true,
        };
        shard.put(key.0, item, existing, self.limits());
    }

    /// Read-only lookup: `None` when `key` is unknown or expired, otherwise
    /// `Some(Duplicate | Inconsistent)`; never `Some(Check::New)`.
    pub fn check(&self, key: IdempotencyKey, fp: Fingerprint, now: UnixMillis) -> Option<Check> {
        let shard = self.shard(key).lock();
        shard
            .find(key.0)
            .map(|at| shard.entry(at))
            .filter(|e| !expired(e.inserted_at, self.retention_ms, now))
            .map(|e| judge(e, fp))
    }

    /// Drops entries whose retention has passed and returns how many went. Works from the old end
    /// of each shard and stops at the first entry still within retention, so the cost is the
    /// number removed plus one per shard. An entry inserted out of age order (a restore not done
    /// oldest first, or a caller clock that went back) leaves with its FIFO neighbours; until
    /// then lookups already treat it as unknown.
    pub fn evict_expired(&self, now: UnixMillis) -> usize {
        self.shards
            .iter()
            .map(|s| s.0.lock().evict_expired_front(self.retention_ms, now))
            .sum()
    }

    /// Entries held, pending ones and expired ones not yet evicted included.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.0.lock().live).sum()
    }

    /// Whether the table holds no entry.
    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(|s| s.0.lock().live == 0)
    }

    /// Entries the table keeps before evicting: the requested capacity rounded up to a whole
    /// number per shard.
    pub fn capacity(&self) -> usize {
        self.per_shard * self.shards.len()
    }

    /// The retention window, as given (to the millisecond).
    pub fn retention(&self) -> Duration {
        Duration::from_millis(self.retention_ms)
    }

    /// Heap bytes the table holds now, from the sizes of its allocations (index lines, ring buffers,
    /// shard array). Cheap enough for a metrics gauge; takes each shard lock briefly.
    pub fn memory_bytes(&self) -> usize {
        let shards: usize = self
            .shards
            .iter()
            .map(|s| {
                let s = s.0.lock();
                s.index.bytes() + s.ring.capacity() * size_of::<Item>()
            })
            .sum();
        shards + self.shards.len() * size_of::<Padded>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_as_documented() {
        // APPROX_BYTES_PER_ENTRY's explanation relies on these sizes.
        assert_eq!(size_of::<Item>(), 64);
    }

    #[test]
    fn shard_index_uses_top_bits() {
        let t = IdempotencyTable::with_shards(64, Duration::from_secs(1), 4);
        let top = |k: u128| std::ptr::from_ref(t.shard(IdempotencyKey(k)));
        assert_eq!(top(0), std::ptr::from_ref(&t.shards[0].0));
        assert_eq!(top(u128::MAX), std::ptr::from_ref(&t.shards[3].0));
        assert_eq!(top(1u128 << 126), std::ptr::from_ref(&t.shards[1].0));
        let one = IdempotencyTable::with_shards(1, Duration::from_secs(1), 1);
        assert_eq!(
            std::ptr::from_ref(one.shard(IdempotencyKey(u128::MAX))),
            std::ptr::from_ref(&one.shards[0].0)
        );
    }
}
