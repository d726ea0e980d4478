//! The key index of one table shard: idempotency key → position of its entry in the shard's age
//! ring, laid out so that one probe reads one cache line.
//!
//! A line holds seven 8-byte slots and an overflow count. A slot is a 32-bit tag taken from the
//! key and the 32-bit ring position of the entry; a key's home line is chosen by other bits of the
//! key. On a lookup a slot whose tag matches is only a candidate, which the caller confirms
//! against the full key in the ring, so an unknown key (the ingest's common case) is answered from
//! its home line alone, and an entry is removed by its position without reading the ring at all.
//! That is why the table does not use a general hash map: hashbrown keeps its control bytes and
//! its buckets apart, two cold cache lines per probe, and removing the oldest entry for room
//! costs two more.
//!
//! Collisions: a full line sends inserts on to the next (linear probing by line) and counts each
//! entry that passed it in its overflow count; a lookup stops at the first line whose count is
//! zero. Removal decrements the counts on its path, so no tombstones are left behind (F14's
//! scheme). The index grows by doubling before the lines are 7/8 full on average.

/// Slots per line: seven 8-byte slots and the 8-byte overflow count fill 64 bytes.
const SLOTS: usize = 7;

#[derive(Debug, Clone, Copy, Default)]
#[repr(align(64))]
struct Line {
    /// `tag << 32 | position`; 0 is an empty slot (every tag has its low bit set).
    slots: [u64; SLOTS],
    /// Entries stored past this line whose probe went through it.
    overflow: u64,
}

/// Where an indexed entry sits: its line and slot in the index, its position in the ring.
#[derive(Debug, Clone, Copy)]
pub(super) struct Found {
    line: usize,
    slot: usize,
    pub(super) pos: u32,
}

#[derive(Debug)]
pub(super) struct Index {
    lines: Vec<Line>,
    len: usize,
}

impl Default for Index {
    fn default() -> Self {
        Index::with_lines(1)
    }
}

/// The slot bits a key's entries carry: 32 key bits that neither pick the shard (the top bits)
/// nor the home line (the low bits), with the low bit forced so no tag is 0.
fn tag(key: u128) -> u64 {
    u64::from((key >> 64) as u32 | 1) << 32
}

const TAG_MASK: u64 = 0xffff_ffff_0000_0000;

impl Index {
    /// An empty index of `lines` lines, a power of two.
    pub(super) fn with_lines(lines: usize) -> Self {
        debug_assert!(lines.is_power_of_two());
        Index {
            lines: vec![Line::default(); lines],
            len: 0,
        }
    }

    fn home(&self, key: u128) -> usize {
        (key as u64 as usize) & (self.lines.len() - 1)
    }

    fn next(&self, line: usize) -> usize {
        (line + 1) & (self.lines.len() - 1)
    }

    /// The entry of `key`: the first candidate whose position `is_key` accepts.
    pub(super) fn find(&self, key: u128, is_key: impl Fn(u32) -> bool) -> Option<Found> {
        let tag = tag(key);
        let mut line = self.home(key);
        // Bounded by the line count: a probe never needs more than a full turn.
        for _ in 0..self.lines.len() {
            let l = &self.lines[line];
            for (slot, &s) in l.slots.iter().enumerate() {
                if s & TAG_MASK == tag && is_key(s as u32) {
                    let pos = s as u32;
                    return Some(Found { line, slot, pos });
                }
            }
            if l.overflow == 0 {
                break;
            }
            line = self.next(line);
        }
        None
    }

    /// Whether one more entry would fill the lines past 7/8 on average.
    pub(super) fn needs_growth(&self) -> bool {
        (self.len + 1) * 8 > self.lines.len() * SLOTS * 7
    }

    /// Lines of the index.
    pub(super) fn lines(&self) -> usize {
        self.lines.len()
    }

    /// Heap bytes of the index.
    pub(super) fn bytes(&self) -> usize {
        self.lines.capacity() * size_of::<Line>()
    }

    /// Indexes `key` at `pos`; the caller has checked that `key` is absent and that the index has
    /// room ([`needs_growth`](Self::needs_growth)).
    pub(super) fn insert(&mut self, key: u128, pos: u32) {
        let s = tag(key) | u64::from(pos);
        let mut line = self.home(key);
        loop {
            let l = &mut self.lines[line];
            if let Some(free) = l.slots.iter_mut().find(|s| **s == 0) {
                *free = s;
                self.len += 1;
                return;
            }
            l.overflow += 1;
            line = self.next(line);
        }
    }

    /// Points a found entry at a new ring position (its key replaced by a newer entry).
    pub(super) fn repoint(&mut self, at: Found, pos: u32) {
        let s = &mut self.lines[at.line].slots[at.slot];
        *s = (*s & TAG_MASK) | u64::from(pos);
    }

    /// Removes a found entry of `key`.
    pub(super) fn remove(&mut self, key: u128, at: Found) {
        let mut line = self.home(key);
        while line != at.line {
            self.lines[line].overflow -= 1;
            line = self.next(line);
        }
        self.lines[at.line].slots[at.slot] = 0;
        self.len -= 1;
    }

    /// Removes the entry of `key` at ring position `pos`, which must be indexed.
    pub(super) fn remove_pos(&mut self, key: u128, pos: u32) {
        let at = self
            .find(key, |p| p == pos)
            .expect("a live ring entry is indexed");
        self.remove(key, at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_one_cache_line() {
        assert_eq!(size_of::<Line>(), 64);
        assert_eq!(align_of::<Line>(), 64);
    }

    #[test]
    fn overflowing_lines_stay_findable_and_removal_leaves_no_trace() {
        // Ten keys with one home line of seven slots: three overflow into the next line.
        let mut ix = Index::with_lines(2);
        let key = |n: u128| (n << 64) | 2; // low bits even: home line 0; distinct tags
        for n in 0..10 {
            ix.insert(key(n), n as u32);
        }
        assert_eq!(ix.lines[0].overflow, 3);
        for n in 0..10 {
            let f = ix.find(key(n), |p| p == n as u32).expect("indexed");
            assert_eq!(f.pos, n as u32);
        }
        for n in (0..10).rev() {
            ix.remove_pos(key(n), n as u32);
        }
        assert_eq!(ix.len, 0);
        assert!(
            ix.lines
                .iter()
                .all(|l| l.overflow == 0 && l.slots == [0; 7])
        );
        assert!(ix.find(key(3), |_| true).is_none());
    }
}
