//! Notification ids: 128-bit, time-ordered (ULID layout), printed as 26 Crockford base32 characters.
//!
//! The time prefix makes ids sort by accept time, so the store can list "newest first" by key order
//! and an operator can read roughly when a notification was accepted from its id alone.
//!
//! Within one millisecond the random bits alone would order ids by chance, so a payment and its
//! void accepted together could be replayed void first after a restart. [`IdGenerator`] makes
//! the ids one process hands out strictly increasing (ULID's monotonic mode): id order is accept
//! order, and recovery and inquiry rely on it.

use std::fmt;
use std::str::FromStr;

use crate::time::UnixMillis;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The id notifyd gives an accepted notification (`notificationId` in the ingest answer).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NotificationId(u128);

impl NotificationId {
    /// Builds an id from the accept time and caller-supplied randomness (core reads no clock and no RNG).
    /// Only the low 80 bits of `random` are used.
    pub fn new(accepted_at: UnixMillis, random: u128) -> Self {
        let ms = u128::from(accepted_at.0 & 0xFFFF_FFFF_FFFF);
        NotificationId((ms << 80) | (random & ((1u128 << 80) - 1)))
    }

    /// The raw value, for storage keys (big-endian bytes keep time order).
    pub const fn as_u128(self) -> u128 {
        self.0
    }

    /// Rebuilds an id from [`NotificationId::as_u128`].
    pub const fn from_u128(v: u128) -> Self {
        NotificationId(v)
    }

    /// The accept time encoded in the id.
    pub const fn accepted_at(self) -> UnixMillis {
        UnixMillis((self.0 >> 80) as u64)
    }
}

/// Hands out strictly increasing ids, even for many accepts in one millisecond or a clock that
/// stepped back.
///
/// A fresh id normally takes the time and randomness given. When that id would not be greater
/// than the last one handed out (same millisecond, or the clock went back), the last id plus one
/// is used instead: it keeps the earlier time prefix and increments the random part, which has
/// 80 bits, so no realistic burst runs out of room within a millisecond.
#[derive(Debug, Default)]
pub struct IdGenerator {
    last: parking_lot::Mutex<u128>,
}

impl IdGenerator {
    /// A generator that has handed out nothing yet.
    pub fn new() -> Self {
        IdGenerator::default()
    }

    /// The next id: greater than every id this generator returned before.
    pub fn next(&self, now: UnixMillis, random: u128) -> NotificationId {
        let fresh = NotificationId::new(now, random).0;
        let mut last = self.last.lock();
        let id = if fresh > *last {
            fresh
        } else {
            last.saturating_add(1)
        };
        *last = id;
        NotificationId(id)
    }
}

impl fmt::Display for NotificationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [0u8; 26];
        let mut v = self.0;
        for slot in out.iter_mut().rev() {
            *slot = ALPHABET[(v & 31) as usize];
            v >>= 5;
        }
        // The alphabet is ASCII, so this cannot fail.
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for NotificationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NotificationId({self})")
    }
}

/// The text was not a 26-character Crockford base32 id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a notification id: expected 26 Crockford base32 characters")]
pub struct ParseIdError;

impl FromStr for NotificationId {
    type Err = ParseIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = s.as_bytes();
        // 26 * 5 = 130 bits: the first character may carry only 3 bits.
        if bytes.len() != 26 || bytes[0] > b'7' {
            return Err(ParseIdError);
        }
        let mut v: u128 = 0;
        for &b in bytes {
            let d = match b.to_ascii_uppercase() {
                c @ b'0'..=b'9' => c - b'0',
                b'O' => 0,
                b'I' | b'L' => 1,
                c => match ALPHABET.iter().position(|&a| a == c) {
                    Some(p) => p as u8,
                    None => return Err(ParseIdError),
                },
            };
            v = (v << 5) | u128::from(d);
        }
        Ok(NotificationId(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_parse_round_trip_and_time_order() {
        let a = NotificationId::new(UnixMillis(1_700_000_000_000), 0xFFFF_FFFF_FFFF_FFFF_FFFF);
        let b = NotificationId::new(UnixMillis(1_700_000_000_001), 0);
        assert!(a < b);
        assert!(
            a.to_string() < b.to_string(),
            "text order must follow time order"
        );
        for id in [
            a,
            b,
            NotificationId::from_u128(0),
            NotificationId::from_u128(u128::MAX),
        ] {
            let s = id.to_string();
            assert_eq!(s.len(), 26);
            assert_eq!(s.parse::<NotificationId>(), Ok(id));
        }
        assert_eq!(a.accepted_at(), UnixMillis(1_700_000_000_000));
    }

    #[test]
    fn generated_ids_increase_within_a_millisecond_and_across_a_clock_step_back() {
        let ids = IdGenerator::new();
        let now = UnixMillis(1_700_000_000_000);
        // Randomness chosen so that plain `new` would order these backwards.
        let a = ids.next(now, 900);
        let b = ids.next(now, 5);
        let c = ids.next(UnixMillis(now.0 - 10), 0);
        let d = ids.next(UnixMillis(now.0 + 1), 0);
        assert!(a < b && b < c && c < d, "{a:?} {b:?} {c:?} {d:?}");
        assert_eq!(b.accepted_at(), now, "a same-millisecond id keeps its time");
        assert_eq!(
            c.accepted_at(),
            now,
            "a step back never moves the time prefix backwards"
        );
        assert_eq!(d, NotificationId::new(UnixMillis(now.0 + 1), 0));
    }

    #[test]
    fn generated_ids_are_unique_across_threads() {
        let ids = std::sync::Arc::new(IdGenerator::new());
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let ids = ids.clone();
                std::thread::spawn(move || {
                    (0..1000u128)
                        .map(|i| ids.next(UnixMillis(5), t * 7 + i % 3))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<_> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "every id handed out once");
    }

    #[test]
    fn rejects_bad_text() {
        for bad in [
            "",
            "0123",
            "8ZZZZZZZZZZZZZZZZZZZZZZZZZ",
            "0000000000000000000000000U",
            "00000000000000000000000000X",
        ] {
            assert_eq!(bad.parse::<NotificationId>(), Err(ParseIdError), "{bad}");
        }
        assert!(
            "01hzzzzzzzzzzzzzzzzzzzzzzz"
                .parse::<NotificationId>()
                .is_ok(),
            "lower case is accepted"
        );
    }
}
