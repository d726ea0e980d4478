//! `nd_idem_table`: the shared, thread-safe idempotency table of notifyd-core.

use std::ffi::c_char;
use std::time::Duration;

use notifyd_core::idempotency::{Check, Fingerprint, IdempotencyKey, IdempotencyTable};
use notifyd_core::{NotificationId, UnixMillis};

use crate::handle::{ArcCastable, Out, arc_free, arc_into_ptr, arc_ref, fill_c_array};
use crate::notification::nd_idem_key;
use crate::panic::{ffi_boundary, ffi_boundary_or_default};
use crate::result::nd_result;

/// A bounded table of recently seen idempotency keys: new, repeat, or inconsistent repeat?
///
/// Thread-safe: every method takes `const nd_idem_table *` and may be called concurrently from
/// any number of threads (the table is sharded behind locks). Made by `nd_idem_table_new`,
/// released once by `nd_idem_table_free` after all threads are done with it.
#[derive(Debug)]
pub struct nd_idem_table {
    _private: [u8; 0],
}

impl ArcCastable for nd_idem_table {
    type Rust = IdempotencyTable;
}

const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<IdempotencyTable>();
};

/// The table's answer.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum nd_idem_verdict {
    /// `nd_idem_table_check` only: the key is unknown or expired.
    Unknown = 0,
    /// `nd_idem_table_reserve` only: the key was unknown and is now reserved under `id`.
    New = 1,
    /// Same key and same key fields as the notification that holds `id`.
    Duplicate = 2,
    /// Same key, different key fields than the notification that holds `id`.
    Inconsistent = 3,
}

/// Room for a notification id in text form (26 characters) plus the NUL.
pub const ND_ID_STR_CAP: usize = 27;

/// The outcome of a lookup. `id_hi`/`id_lo` are the id's high and low 64 bits (pass them to
/// `nd_idem_table_confirm`/`_release`), `id_str` its 26-character text form; all zero for
/// `ND_IDEM_VERDICT_UNKNOWN`. `pending` is true while the holder's reservation is unconfirmed.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct nd_idem_check {
    pub verdict: nd_idem_verdict,
    pub pending: bool,
    pub id_hi: u64,
    pub id_lo: u64,
    pub id_str: [c_char; ND_ID_STR_CAP],
}

impl nd_idem_check {
    fn new(verdict: nd_idem_verdict, id: Option<NotificationId>, pending: bool) -> Self {
        let mut out = nd_idem_check {
            verdict,
            pending,
            id_hi: 0,
            id_lo: 0,
            id_str: [0; ND_ID_STR_CAP],
        };
        if let Some(id) = id {
            let v = id.as_u128();
            out.id_hi = (v >> 64) as u64;
            out.id_lo = v as u64;
            fill_c_array(&mut out.id_str, &id.to_string());
        }
        out
    }

    fn from_check(check: Check, reserved: NotificationId) -> Self {
        match check {
            Check::New => Self::new(nd_idem_verdict::New, Some(reserved), true),
            Check::Duplicate { id, pending } => {
                Self::new(nd_idem_verdict::Duplicate, Some(id), pending)
            }
            Check::Inconsistent { id } => Self::new(nd_idem_verdict::Inconsistent, Some(id), false),
        }
    }
}

fn key_of(k: &nd_idem_key) -> (IdempotencyKey, Fingerprint) {
    (
        IdempotencyKey(u128::from_le_bytes(k.key)),
        Fingerprint(u128::from_le_bytes(k.fingerprint)),
    )
}

/// Creates a table holding up to `capacity` keys (rounded up to a multiple of its 64 shards) for
/// `retention_ms` milliseconds each. Both must be non-zero (`ND_RESULT_INVALID_ARGUMENT`).
/// On success `*out` receives the table; release it with `nd_idem_table_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nd_idem_table_new(
    capacity: usize,
    retention_ms: u64,
    out: *mut *const nd_idem_table,
) -> nd_result {
    ffi_boundary! {
        // SAFETY: the caller's out-pointer, as documented above.
        let out = unsafe { Out::new(out) }?;
        if capacity == 0 || retention_ms == 0 {
            return Err(nd_result::InvalidArgument);
        }
        let table = IdempotencyTable::new(capacity, Duration::from_millis(retention_ms));
        out.write(arc_into_ptr(table));
        Ok(())
    }
}

/// Atomically looks `key` up and, when it is unknown (or older than the retention), reserves it
/// under a fresh id: `ND_IDEM_VERDICT_NEW` with that id and `pending` true. Otherwise the verdict
/// is `_DUPLICATE` (same fingerprint) or `_INCONSISTENT`, with the holder's id.
/// `now_ms` is the caller's clock in Unix milliseconds. After `_NEW`, call
/// `nd_idem_table_confirm` once the notification is safely handed over, or
/// `nd_idem_table_release` if it was not, so a retry counts as new again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nd_idem_table_reserve(
    table: *const nd_idem_table,
    key: *const nd_idem_key,
    now_ms: u64,
    out: *mut nd_idem_check,
) -> nd_result {
    ffi_boundary! {
        // SAFETY: a live table, a readable key and the caller's out-pointer, as documented.
        let (table, key, out) = unsafe {
            (arc_ref(table)?, key.as_ref().ok_or(nd_result::NullParameter)?, Out::new(out)?)
        };
        let (k, fp) = key_of(key);
        let now = UnixMillis(now_ms);
        let id = NotificationId::new(now, rand::random());
        let check = table.check_and_reserve(k, fp, id, now);
        out.write(nd_idem_check::from_check(check, id));
        Ok(())
    }
}

/// Read-only lookup: `ND_IDEM_VERDICT_UNKNOWN` when `key` is unknown or expired at `now_ms`,
/// otherwise `_DUPLICATE` or `_INCONSISTENT` with the holder's id. Reserves nothing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nd_idem_table_check(
    table: *const nd_idem_table,
    key: *const nd_idem_key,
    now_ms: u64,
    out: *mut nd_idem_check,
) -> nd_result {
    ffi_boundary! {
        // SAFETY: a live table, a readable key and the caller's out-pointer, as documented.
        let (table, key, out) = unsafe {
            (arc_ref(table)?, key.as_ref().ok_or(nd_result::NullParameter)?, Out::new(out)?)
        };
        let (k, fp) = key_of(key);
        let answer = match table.check(k, fp, UnixMillis(now_ms)) {
            None => nd_idem_check::new(nd_idem_verdict::Unknown, None, false),
            Some(check) => nd_idem_check::from_check(check, NotificationId::from_u128(0)),
        };
        out.write(answer);
        Ok(())
    }
}

/// Confirm or release: settles `key`'s reservation under id `(id_hi, id_lo)` with `op`;
/// `ND_RESULT_NOT_RESERVED` when `op` finds no such reservation.
///
/// # Safety
/// `table` a live table and `key` readable, as the public functions document.
unsafe fn settle(
    table: *const nd_idem_table,
    key: *const nd_idem_key,
    id_hi: u64,
    id_lo: u64,
    op: fn(&IdempotencyTable, IdempotencyKey, NotificationId) -> bool,
) -> Result<(), nd_result> {
    // SAFETY: forwarded contract.
    let (table, key) = unsafe {
        (
            arc_ref(table)?,
            key.as_ref().ok_or(nd_result::NullParameter)?,
        )
    };
    let id = NotificationId::from_u128((u128::from(id_hi) << 64) | u128::from(id_lo));
    if op(table, key_of(key).0, id) {
        Ok(())
    } else {
        Err(nd_result::NotReserved)
    }
}

/// Marks the reservation of `key` under id `(id_hi, id_lo)` as settled. `ND_RESULT_NOT_RESERVED`
/// when the key no longer holds that id (it expired, or was never reserved).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nd_idem_table_confirm(
    table: *const nd_idem_table,
    key: *const nd_idem_key,
    id_hi: u64,
    id_lo: u64,
) -> nd_result {
    ffi_boundary! {
        // SAFETY: forwarded contract, as documented above.
        unsafe { settle(table, key, id_hi, id_lo, IdempotencyTable::confirm) }
    }
}

/// Drops the pending reservation of `key` under id `(id_hi, id_lo)`, so the same notification
/// counts as new again. `ND_RESULT_NOT_RESERVED` when there is no such pending reservation.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nd_idem_table_release(
    table: *const nd_idem_table,
    key: *const nd_idem_key,
    id_hi: u64,
    id_lo: u64,
) -> nd_result {
    ffi_boundary! {
        // SAFETY: forwarded contract, as documented above.
        unsafe { settle(table, key, id_hi, id_lo, IdempotencyTable::release) }
    }
}

/// Entries held (pending ones and expired ones not yet evicted included); 0 when `table` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nd_idem_table_len(table: *const nd_idem_table) -> usize {
    ffi_boundary_or_default! {
        // SAFETY: NULL or a live table, as documented above.
        unsafe { arc_ref(table) }.map_or(0, IdempotencyTable::len)
    }
}

/// Releases the table. NULL is a no-op. No other thread may be using it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nd_idem_table_free(table: *const nd_idem_table) {
    ffi_boundary_or_default! {
        // SAFETY: NULL or a table from nd_idem_table_new not yet freed, as documented.
        unsafe { arc_free(table) }
    }
}
