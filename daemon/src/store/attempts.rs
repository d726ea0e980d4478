//! The attempt log: what each of a notification's last attempts got back (CONTRACT.md §2.1,
//! `attemptLog`).
//!
//! Its own table, `attempts`, keyed by (id, sequence number), so the notification record
//! (record.rs) stays the small value an attempt rewrites and the log is only ever appended to.
//! The sequence number keeps counting across redeliveries, so "the last 20" spans them. An entry
//! is written in the same transaction as the attempt's outcome (`Op::UpdateLogged`), and the
//! oldest beyond [`MAX_ENTRIES`] is deleted in that transaction too, so a notification never holds
//! more than 20. Pruning a notification removes its whole range.
//!
//! Value layout, version 1 (integers little-endian; `str` = LEB128 length + bytes):
//!
//! ```text
//! u8 version (=1) | u8 flags (bit 0: http status present; bits 1..2: signature)
//! u64 at | varint duration_ms | [u16 http status] | str result | str response body (≤ 2 KiB)
//! ```

use bytes::Bytes;
use notifyd_core::{NotificationId, UnixMillis};
use redb::{ReadableTable, Table, TableDefinition};

use super::error::{StoreError, db};

pub(super) const ATTEMPTS: TableDefinition<'_, (u128, u32), &[u8]> =
    TableDefinition::new("attempts");

/// Entries kept per notification.
pub const MAX_ENTRIES: u32 = 20;
/// Longest response body kept per entry: enough for any seed answer (a `result` object and a
/// few fields), bounded so a receiver answering megabytes cannot grow the store per attempt.
pub const MAX_BODY_BYTES: usize = 2048;

const FORMAT_V1: u8 = 1;
const F_HTTP_STATUS: u8 = 1;

/// What the answer's `Signature` header came to (CONTRACT.md §2.1 `signature`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureNote {
    Ok,
    Missing,
    Invalid,
    NotChecked,
}

impl SignatureNote {
    /// The contract's word for it.
    pub const fn as_str(self) -> &'static str {
        match self {
            SignatureNote::Ok => "ok",
            SignatureNote::Missing => "missing",
            SignatureNote::Invalid => "invalid",
            SignatureNote::NotChecked => "not_checked",
        }
    }

    const fn tag(self) -> u8 {
        match self {
            SignatureNote::NotChecked => 0,
            SignatureNote::Ok => 1,
            SignatureNote::Missing => 2,
            SignatureNote::Invalid => 3,
        }
    }

    const fn from_tag(tag: u8) -> SignatureNote {
        match tag & 3 {
            1 => SignatureNote::Ok,
            2 => SignatureNote::Missing,
            3 => SignatureNote::Invalid,
            _ => SignatureNote::NotChecked,
        }
    }
}

/// One attempt as the operator reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptEntry {
    pub id: NotificationId,
    /// When the attempt started.
    pub at: UnixMillis,
    pub duration_ms: u32,
    /// `None` on a timeout or transport error (no HTTP answer).
    pub http_status: Option<u16>,
    /// `S SUCCESS`, `U UNKNOWN_EXCEPTION`, `timeout`, `transport_error: ...`.
    pub result: String,
    pub signature: SignatureNote,
    /// The first 2 KiB (`MAX_BODY_BYTES`) of the answer's body.
    pub response_body: Bytes,
}

impl AttemptEntry {
    /// Encodes everything but the id (the key's) into `out`; the body is cut to its bound here,
    /// so no caller can store more.
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        let flags = self.http_status.map_or(0, |_| F_HTTP_STATUS) | (self.signature.tag() << 1);
        out.extend_from_slice(&[FORMAT_V1, flags]);
        out.extend_from_slice(&self.at.0.to_le_bytes());
        put_varint(out, u64::from(self.duration_ms));
        if let Some(s) = self.http_status {
            out.extend_from_slice(&s.to_le_bytes());
        }
        put_bytes(out, self.result.as_bytes());
        let body = &self.response_body[..self.response_body.len().min(MAX_BODY_BYTES)];
        put_bytes(out, body);
    }

    pub(super) fn decode(id: NotificationId, bytes: &[u8]) -> Result<AttemptEntry, StoreError> {
        let corrupt = || StoreError::Corrupt(format!("attempt log of {id}: truncated or unknown"));
        let mut r = bytes;
        let [version, flags] = take::<2>(&mut r).ok_or_else(corrupt)?;
        if version != FORMAT_V1 {
            return Err(corrupt());
        }
        let at = UnixMillis(u64::from_le_bytes(take(&mut r).ok_or_else(corrupt)?));
        let duration_ms = varint(&mut r)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(corrupt)?;
        let http_status = if flags & F_HTTP_STATUS != 0 {
            Some(u16::from_le_bytes(take(&mut r).ok_or_else(corrupt)?))
        } else {
            None
        };
        let result = bytes_field(&mut r).ok_or_else(corrupt)?;
        let result = String::from_utf8(result.to_vec()).map_err(|_| corrupt())?;
        let body = Bytes::copy_from_slice(bytes_field(&mut r).ok_or_else(corrupt)?);
        if !r.is_empty() {
            return Err(corrupt());
        }
        Ok(AttemptEntry {
            id,
            at,
            duration_ms,
            http_status,
            result,
            signature: SignatureNote::from_tag(flags >> 1),
            response_body: body,
        })
    }
}

/// Appends `e` after the notification's latest entry and drops the entries beyond the bound.
pub(super) fn append(
    table: &mut Table<'_, (u128, u32), &'static [u8]>,
    e: &AttemptEntry,
    scratch: &mut Vec<u8>,
) -> Result<(), StoreError> {
    let id = e.id.as_u128();
    let last = table
        .range((id, 0)..=(id, u32::MAX))
        .map_err(db)?
        .next_back()
        .transpose()
        .map_err(db)?
        .map(|(k, _)| k.value().1);
    let seq = last.map_or(0, |s| s.saturating_add(1));
    scratch.clear();
    e.encode(scratch);
    table.insert((id, seq), scratch.as_slice()).map_err(db)?;
    // At most one entry falls out per append, except after the bound was lowered.
    if seq >= MAX_ENTRIES {
        let keep_from = seq + 1 - MAX_ENTRIES;
        table
            .retain_in((id, 0)..(id, keep_from), |_, _| false)
            .map_err(db)?;
    }
    Ok(())
}

/// Removes every entry of a notification (pruning).
pub(super) fn remove_all(
    table: &mut Table<'_, (u128, u32), &'static [u8]>,
    id: u128,
) -> Result<(), StoreError> {
    table
        .retain_in((id, 0)..=(id, u32::MAX), |_, _| false)
        .map_err(db)
}

/// The notification's entries, oldest first.
pub(super) fn read(
    table: &impl ReadableTable<(u128, u32), &'static [u8]>,
    id: NotificationId,
) -> Result<Vec<AttemptEntry>, StoreError> {
    let raw = id.as_u128();
    let mut out = Vec::new();
    for entry in table.range((raw, 0)..=(raw, u32::MAX)).map_err(db)? {
        let (_, v) = entry.map_err(db)?;
        out.push(AttemptEntry::decode(id, v.value())?);
    }
    Ok(out)
}

fn take<const N: usize>(r: &mut &[u8]) -> Option<[u8; N]> {
    let (head, rest) = r.split_first_chunk::<N>()?;
    *r = rest;
    Some(*head)
}

fn varint(r: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let [b] = take::<1>(r)?;
        v |= u64::from(b & 0x7f).checked_shl(shift)?;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn bytes_field<'a>(r: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = usize::try_from(varint(r)?).ok()?;
    if len > r.len() {
        return None;
    }
    let (s, rest) = r.split_at(len);
    *r = rest;
    Some(s)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(status: Option<u16>, body: &[u8]) -> AttemptEntry {
        AttemptEntry {
            id: NotificationId::from_u128(99),
            at: UnixMillis(1_700_000_000_123),
            duration_ms: 4321,
            http_status: status,
            result: "transport_error: connection refused".into(),
            signature: SignatureNote::Invalid,
            response_body: Bytes::copy_from_slice(body),
        }
    }

    #[test]
    fn round_trips_and_cuts_the_body_at_2_kib() {
        for e in [entry(None, b""), entry(Some(200), b"{\"result\":{}}")] {
            let mut buf = Vec::new();
            e.encode(&mut buf);
            assert_eq!(AttemptEntry::decode(e.id, &buf).unwrap(), e);
        }
        let big = entry(Some(500), &[b'x'; 5000]);
        let mut buf = Vec::new();
        big.encode(&mut buf);
        let back = AttemptEntry::decode(big.id, &buf).unwrap();
        assert_eq!(back.response_body.len(), MAX_BODY_BYTES);
    }

    #[test]
    fn every_truncation_is_corrupt_not_a_panic() {
        let e = entry(Some(503), b"busy");
        let mut buf = Vec::new();
        e.encode(&mut buf);
        for len in 0..buf.len() {
            assert!(matches!(
                AttemptEntry::decode(e.id, &buf[..len]),
                Err(StoreError::Corrupt(_))
            ));
        }
    }
}
