//! Notification ids: 128-bit, time-ordered (ULID layout), printed as 26 Crockford base32 characters.
//!
//! The time prefix makes ids sort by accept time, so the store can list "newest first" by key order
//! and an operator can read roughly when a notification was accepted from its id alone.

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
