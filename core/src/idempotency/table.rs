//! The in-memory idempotency table: which keys notifyd has accepted recently, with what fingerprint
//! and under which id.
//!
//! It answers the ingest question "new, repeat or inconsistent repeat?" without a store read, so it
//! sits on the hot path of every accepted notification and is shared by all ingest threads.
//!
//! Design:
//! - **Sharded.** `N` shards (a power of two, 64 by default), each a `parking_lot::Mutex` around a
//!   `hashbrown` map and a FIFO of insertions. Keys are xxh3-128 outputs and already uniform, so the
//!   shard is chosen by the top bits and the map hashes with the low 64 bits as they are (no second
//!   hash). The bits that pick the shard, the bucket and hashbrown's 7-bit tag do not overlap.
//!   Keys are assumed to come from [`KeyHasher`](super::KeyHasher) over fields of the authenticated
//!   gateway; a party able to choose colliding inputs freely could lengthen probe chains.
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
//! - **Stale FIFO items.** Removing or replacing an entry leaves its FIFO item behind. Each entry
//!   carries a per-shard sequence number that its FIFO item repeats; an item whose number does not
//!   match the live entry is stale and skipped, so it can never evict a newer entry under the same
//!   key. The FIFO is compacted when stale items outnumber live ones, which keeps it at most about
//!   twice the map and keeps a stale item from outliving 2^32 insertions (the sequence wraps).
//!
//! Memory: see [`IdempotencyTable::APPROX_BYTES_PER_ENTRY`].

use std::collections::VecDeque;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Duration;

use hashbrown::HashMap;
use hashbrown::hash_map::Entry as MapEntry;
use parking_lot::Mutex;

use super::hash::{Fingerprint, IdempotencyKey};
use crate::id::NotificationId;
use crate::time::UnixMillis;

/// Shards used by [`IdempotencyTable::new`]: enough that two dozen ingest threads rarely meet on one
/// lock, few enough that the per-shard FIFO stays a good approximation of global age order.
pub const DEFAULT_SHARDS: usize = 64;

const MAX_SHARDS: usize = 1 << 12;
// Keeps the FIFO (at most ~2x the shard plus slack) far below the 2^32 wrap of the sequence number.
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

#[derive(Debug, Clone, Copy)]
struct Entry {
    fingerprint: u128,
    id: NotificationId,
    inserted_at: UnixMillis,
    seq: u32,
    pending: bool,
}

/// One FIFO item. The key is split in two `u64`s so the item is 8-aligned: 24 bytes instead of 32.
#[derive(Debug, Clone, Copy)]
struct Slot {
    key_lo: u64,
    key_hi: u64,
    seq: u32,
}

impl Slot {
    fn key(&self) -> u128 {
        (u128::from(self.key_hi) << 64) | u128::from(self.key_lo)
    }
}

/// Hashes a `u128` key to its low 64 bits. The keys are already uniform hashes; hashing them again
/// would only cost time.
#[derive(Debug, Default, Clone, Copy)]
struct KeyBits(u64);

impl Hasher for KeyBits {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u128(&mut self, i: u128) {
        self.0 = i as u64;
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u128` keys reach this hasher, through `write_u128`; this fallback just keeps the
        // Hasher contract (FNV-1a) should another type ever be hashed with it.
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3);
        }
    }
}

type Map = HashMap<u128, Entry, BuildHasherDefault<KeyBits>>;

#[derive(Debug, Default)]
struct Shard {
    map: Map,
    fifo: VecDeque<Slot>,
    next_seq: u32,
    /// Entries evicted for room before their retention ran out: a repeat of one of those keys
    /// would now be taken for a new notification, so an operator must see the count.
    evicted_early: u64,
}

/// A shard on its own cache line, so threads working on neighbouring shards do not contend for it.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Padded(Mutex<Shard>);

fn expired(inserted_at: UnixMillis, retention_ms: u64, now: UnixMillis) -> bool {
    inserted_at.0.saturating_add(retention_ms) <= now.0
}

fn judge(e: &Entry, fp: Fingerprint) -> Check {
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
    /// The live entry a FIFO item stands for, if it is not stale.
    fn is_live(map: &Map, slot: &Slot) -> bool {
        map.get(&slot.key()).is_some_and(|e| e.seq == slot.seq)
    }

    /// Inserts or replaces `key`, making room first if the shard is full. The caller has checked
    /// that any existing entry under `key` may be replaced.
    fn put(&mut self, key: u128, mut entry: Entry, per_shard: usize, retention_ms: u64) {
        if !self.map.contains_key(&key)
            && self.map.len() >= per_shard
            && let Some(evicted_at) = self.evict_oldest_settled()
            && !expired(evicted_at, retention_ms, entry.inserted_at)
        {
            self.evicted_early += 1;
        }
        entry.seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        // A replaced entry's FIFO item turns stale here: its seq no longer matches.
        self.map.insert(key, entry);
        self.fifo.push_back(Slot {
            key_lo: key as u64,
            key_hi: (key >> 64) as u64,
            seq: entry.seq,
        });
        if self.fifo.len() > 2 * self.map.len() + 32 {
            let Shard { map, fifo, .. } = self;
            fifo.retain(|s| Shard::is_live(map, s));
        }
    }

    /// Removes the oldest entry that is not pending. Pending items met on the way keep their place.
    /// Returns the removed entry's insert time.
    fn evict_oldest_settled(&mut self) -> Option<UnixMillis> {
        // Allocates only when pending entries sit at the front, which is rare: reservations are
        // the youngest entries.
        let mut parked = Vec::new();
        let mut evicted = None;
        while let Some(slot) = self.fifo.pop_front() {
            if let MapEntry::Occupied(o) = self.map.entry(slot.key())
                && o.get().seq == slot.seq
            {
                if o.get().pending {
                    parked.push(slot);
                    continue;
                }
                evicted = Some(o.remove().inserted_at);
                break;
            }
        }
        for slot in parked.into_iter().rev() {
            self.fifo.push_front(slot);
        }
        evicted
    }

    /// Drops expired entries from the front of the FIFO, stopping at the first live one that has
    /// not expired. Returns how many entries went.
    fn evict_expired_front(&mut self, retention_ms: u64, now: UnixMillis) -> usize {
        let mut n = 0;
        while let Some(slot) = self.fifo.front().copied() {
            match self.map.entry(slot.key()) {
                MapEntry::Occupied(o) if o.get().seq == slot.seq => {
                    if !expired(o.get().inserted_at, retention_ms, now) {
                        break;
                    }
                    o.remove();
                    n += 1;
                }
                _ => {}
            }
            self.fifo.pop_front();
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
}

impl IdempotencyTable {
    /// Upper bound, measured, on heap bytes per entry of a full table in steady churn.
    ///
    /// Measured at 2^20 entries (64 shards): 154 B/entry by allocation sizes
    /// (`tests/idempotency_memory.rs`) and 157 to 159 B/entry by RSS growth (printed by
    /// `cargo bench -p benches --bench idempotency`, where a `DashMap<u128, (u128, u128)>`, which
    /// keeps no age order, measures 96).
    ///
    /// Where it goes: a 64-byte map bucket plus one control byte, a 24-byte FIFO item, and the
    /// slack of power-of-two growth, so the figure depends on the capacity. hashbrown fills at most
    /// 7/8 of its buckets, and evictions leave tombstones that make a map filled close to 7/8 double
    /// once. Measured in steady churn at 64 shards: 600 k entries 155, 800 k 116, 917 504 (the
    /// doubling case) 176, 2^20 154, 1.2 M 155, 1.5 M 124 B/entry. [`memory_bytes`] reports the
    /// live figure.
    ///
    /// [`memory_bytes`]: Self::memory_bytes
    pub const APPROX_BYTES_PER_ENTRY: usize = 180;

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
        }
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
        if let Some(e) = shard.map.get(&key.0)
            && !expired(e.inserted_at, self.retention_ms, now)
        {
            return judge(e, fp);
        }
        // Amortised O(1): every FIFO item is popped at most once.
        shard.evict_expired_front(self.retention_ms, now);
        let entry = Entry {
            fingerprint: fp.0,
            id,
            inserted_at: now,
            seq: 0,
            pending: true,
        };
        shard.put(key.0, entry, self.per_shard, self.retention_ms);
        Check::New
    }

    /// The store committed `id`: its reservation becomes a settled entry. Returns false (and does
    /// nothing) when `key` no longer holds `id`, e.g. the reservation expired.
    pub fn confirm(&self, key: IdempotencyKey, id: NotificationId) -> bool {
        match self.shard(key).lock().map.get_mut(&key.0) {
            Some(e) if e.id == id => {
                e.pending = false;
                true
            }
            _ => false,
        }
    }

    /// The store did not commit `id`: drop its reservation so a retry of the same notification is
    /// new again. Only a pending entry holding `id` is removed; returns whether one was.
    pub fn release(&self, key: IdempotencyKey, id: NotificationId) -> bool {
        let mut shard = self.shard(key).lock();
        match shard.map.entry(key.0) {
            MapEntry::Occupied(o) if o.get().id == id && o.get().pending => {
                // Its FIFO item is now stale and will be skipped or compacted away.
                o.remove();
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
        if let Some(e) = shard.map.get(&key.0) {
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
        let entry = Entry {
            fingerprint: fp.0,
            id,
            inserted_at,
            seq: 0,
            pending: false,
        };
        shard.put(key.0, entry, self.per_shard, self.retention_ms);
    }

    /// Entries evicted for room before their retention ran out, since the table was made
    /// (`notifyd_idempotency_evicted_total`). Each is a key whose repeat would no longer be
    /// recognised: a sign the table is too small for the accept rate times the retention.
    pub fn evicted_before_expiry(&self) -> u64 {
        self.shards.iter().map(|s| s.0.lock().evicted_early).sum()
    }

    /// Read-only lookup: `None` when `key` is unknown or expired, otherwise
    /// `Some(Duplicate | Inconsistent)`; never `Some(Check::New)`.
    pub fn check(&self, key: IdempotencyKey, fp: Fingerprint, now: UnixMillis) -> Option<Check> {
        let shard = self.shard(key).lock();
        shard
            .map
            .get(&key.0)
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
        self.shards.iter().map(|s| s.0.lock().map.len()).sum()
    }

    /// Whether the table holds no entry.
    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(|s| s.0.lock().map.is_empty())
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

    /// Heap bytes the table holds now, from the sizes of its allocations (map tables, FIFO buffers,
    /// shard array). Cheap enough for a metrics gauge; takes each shard lock briefly.
    pub fn memory_bytes(&self) -> usize {
        let shards: usize = self
            .shards
            .iter()
            .map(|s| {
                let s = s.0.lock();
                s.map.allocation_size() + s.fifo.capacity() * size_of::<Slot>()
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
        assert_eq!(size_of::<(u128, Entry)>(), 64);
        assert_eq!(size_of::<Slot>(), 24);
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
