//! The 128-bit hashes that name a notification for deduplication.
//!
//! Both hashes are persisted (the store keeps them beside each record and the table is rebuilt from
//! them at start-up), so the scheme must give the same value in every process, version and platform.
//! That rules out `std::hash` (unspecified, and `RandomState` is seeded per process) and any
//! native-endian encoding: every integer below is written little-endian, and xxh3-128 with its default
//! secret is a published, fixed function.
//!
//! Encoding, byte for byte, of what is fed to xxh3-128:
//!
//! ```text
//! domain:u8  { 0x01 len:u64le bytes | 0x00 }*
//! ```
//!
//! The length prefix keeps `("ab","c")` apart from `("a","bc")`; the tag byte keeps an absent optional
//! apart from an empty one, with no reserved length value to collide with. A change to this encoding
//! changes every stored key: the pinned values in the tests are there to catch that.

use std::fmt;

use xxhash_rust::xxh3::{Xxh3Default, xxh3_128};

const TAG_ABSENT: u8 = 0x00;
const TAG_PART: u8 = 0x01;

/// Encoded bytes kept inline before the hasher switches to streaming. A key or fingerprint of a
/// seed-sized notification is 60 to 250 bytes; hashing it in one call is a few times cheaper than
/// a dozen streaming updates of a few bytes each, and gives the same value.
const INLINE: usize = 256;

/// Identifies a notification for deduplication: the hash of its api tag, profile and the
/// idempotency-key fields CONTRACT.md §2 names for its api.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct IdempotencyKey(pub u128);

/// Summarises the key fields of a notification (url, amounts, status, ...): a repeat whose
/// fingerprint differs from the first one's is `REPEAT_REQ_INCONSISTENT`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Fingerprint(pub u128);

/// Incremental, stable 128-bit hash over a sequence of length-prefixed parts.
///
/// ```
/// use notifyd_core::idempotency::KeyHasher;
/// let mut h = KeyHasher::new(1);
/// h.part(b"default").part(b"P0001").absent();
/// let key = h.finish();
/// # let _ = key;
/// ```
pub struct KeyHasher {
    /// The encoding so far, while it fits.
    inline: [u8; INLINE],
    len: usize,
    /// Takes over once the encoding outgrows `inline` (boxed: it is rare and 0.5 KiB).
    streaming: Option<Box<Xxh3Default>>,
}

impl KeyHasher {
    /// Starts a hash in `domain`, so that equal parts hashed for different purposes (a key and a
    /// fingerprint, or two apis) never give equal values.
    pub fn new(domain: u8) -> Self {
        let mut h = KeyHasher {
            inline: [0; INLINE],
            len: 0,
            streaming: None,
        };
        h.push(&[domain], &[]);
        h
    }

    /// Appends `head` then `bytes` to the encoding. One call per part keeps the per-call cost
    /// (bounds checks, the copy of a short slice) paid once, which is most of what hashing a
    /// notification's short fields costs.
    #[inline]
    fn push(&mut self, head: &[u8], bytes: &[u8]) {
        let (at, end) = (self.len, self.len + head.len() + bytes.len());
        if self.streaming.is_none() && end <= INLINE {
            self.inline[at..at + head.len()].copy_from_slice(head);
            self.inline[at + head.len()..end].copy_from_slice(bytes);
            self.len = end;
        } else {
            self.push_streaming(head, bytes);
        }
    }

    #[cold]
    fn push_streaming(&mut self, head: &[u8], bytes: &[u8]) {
        let inline = &self.inline[..self.len];
        let state = self.streaming.get_or_insert_with(|| {
            let mut state = Box::new(Xxh3Default::new());
            state.update(inline);
            state
        });
        state.update(head);
        state.update(bytes);
    }

    /// Appends a present part.
    #[inline]
    pub fn part(&mut self, bytes: &[u8]) -> &mut Self {
        let mut head = [TAG_PART; 9];
        // usize -> u64 is lossless on every platform Rust supports.
        head[1..].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
        self.push(&head, bytes);
        self
    }

    /// Appends an optional part that is missing; distinct from `part(b"")`.
    #[inline]
    pub fn absent(&mut self) -> &mut Self {
        self.push(&[TAG_ABSENT], &[]);
        self
    }

    /// Appends `Some` as a part and `None` as [`KeyHasher::absent`].
    #[inline]
    pub fn opt_part(&mut self, bytes: Option<&[u8]>) -> &mut Self {
        match bytes {
            Some(b) => self.part(b),
            None => self.absent(),
        }
    }

    /// The 128-bit hash of everything appended so far. The hasher can keep going afterwards.
    pub fn finish(&self) -> u128 {
        match &self.streaming {
            Some(state) => state.digest128(),
            None => xxh3_128(&self.inline[..self.len]),
        }
    }
}

impl fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The state is opaque; printing it would only suggest it means something.
        f.debug_struct("KeyHasher").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(domain: u8, parts: &[Option<&[u8]>]) -> u128 {
        let mut h = KeyHasher::new(domain);
        for p in parts {
            h.opt_part(*p);
        }
        h.finish()
    }

    #[test]
    fn streaming_equals_documented_encoding() {
        // The module doc is the persisted format; check the code against it byte for byte.
        let mut bytes = vec![7u8];
        bytes.push(1);
        bytes.extend_from_slice(&5u64.to_le_bytes());
        bytes.extend_from_slice(b"hello");
        bytes.push(0);
        bytes.push(1);
        bytes.extend_from_slice(&0u64.to_le_bytes());
        assert_eq!(
            hash(7, &[Some(b"hello"), None, Some(b"")]),
            xxh3_128(&bytes)
        );
    }

    #[test]
    fn pinned_values() {
        // If these change, every persisted key and fingerprint changes with them: a store written
        // by the previous version would stop deduplicating. Change only with a migration.
        assert_eq!(
            hash(1, &[Some(b"default"), Some(b"P0001"), Some(b"req-1")]),
            PINNED_KEY
        );
        assert_eq!(hash(0, &[]), PINNED_EMPTY);
    }

    const PINNED_KEY: u128 = 0x985c_7a73_d689_25ea_e7cf_3659_c965_c659;
    const PINNED_EMPTY: u128 = 0xa6cd_5e93_9200_0f6a_c44b_dff4_074e_ecdb;

    #[test]
    fn boundaries_and_absence_are_distinct() {
        let ab_c = hash(1, &[Some(b"ab"), Some(b"c")]);
        let a_bc = hash(1, &[Some(b"a"), Some(b"bc")]);
        let abc = hash(1, &[Some(b"abc")]);
        let absent = hash(1, &[None]);
        let empty = hash(1, &[Some(b"")]);
        let nothing = hash(1, &[]);
        let all = [ab_c, a_bc, abc, absent, empty, nothing];
        for (i, x) in all.iter().enumerate() {
            for y in &all[i + 1..] {
                assert_ne!(x, y);
            }
        }
    }

    #[test]
    fn every_split_around_the_inline_limit_hashes_the_encoding() {
        // Parts that end just before, at and after the switch to streaming, and a hash finished
        // before more parts come, must all equal the one-shot hash of the documented encoding.
        for first in [
            0,
            1,
            INLINE - 20,
            INLINE - 11,
            INLINE - 10,
            INLINE - 9,
            INLINE,
            600,
        ] {
            let a = vec![0x3Cu8; first];
            let b = b"tail part";
            let mut h = KeyHasher::new(9);
            h.part(&a);
            let mut bytes = vec![9u8, 1];
            bytes.extend_from_slice(&(first as u64).to_le_bytes());
            bytes.extend_from_slice(&a);
            assert_eq!(h.finish(), xxh3_128(&bytes), "{first}");
            h.absent().part(b);
            bytes.push(0);
            bytes.push(1);
            bytes.extend_from_slice(&(b.len() as u64).to_le_bytes());
            bytes.extend_from_slice(b);
            assert_eq!(h.finish(), xxh3_128(&bytes), "{first}");
        }
    }

    #[test]
    fn domain_separates() {
        assert_ne!(hash(1, &[Some(b"x")]), hash(2, &[Some(b"x")]));
    }

    #[test]
    fn long_parts_cross_the_streaming_buffer() {
        // Streaming xxh3 switches algorithm past 240 bytes and buffers in 256-byte blocks; the
        // result must still equal the one-shot hash of the same encoding.
        let big = vec![0xA5u8; 1000];
        let mut bytes = vec![3u8, 1];
        bytes.extend_from_slice(&1000u64.to_le_bytes());
        bytes.extend_from_slice(&big);
        assert_eq!(hash(3, &[Some(&big)]), xxh3_128(&bytes));
    }
}
