//! `nd_client`: a blocking client that hands envelopes to a running notifyd (CONTRACT.md §2)
//! over TCP or its Unix socket.

mod http;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use http::fuzzing;

use std::ffi::c_char;
use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::time::Duration;

use simd_json::prelude::*;

use crate::handle::{ArcCastable, Out, arc_free, arc_into_ptr, arc_ref, bytes, fill_c_array, text};
use crate::idempotency::ND_ID_STR_CAP;
use crate::panic::{ffi_boundary, ffi_boundary_or_default};
use crate::result::nd_result;
use http::{Client, Error, Target};

/// A connection recipe for one notifyd: address, optional bearer token, timeout. Each submit
/// opens its own connection, so one client may be used by any number of threads at once.
/// Released by `nd_client_free`.
#[derive(Debug)]
pub struct nd_client {
    _private: [u8; 0],
}

impl ArcCastable for nd_client {
    type Rust = Client;
}

/// Room for notifyd's `resultCode` plus the NUL.
pub const ND_SUBMIT_CODE_CAP: usize = 65;
/// Room for notifyd's `resultMessage` plus the NUL; longer messages are cut.
pub const ND_SUBMIT_MESSAGE_CAP: usize = 513;

/// notifyd's answer to a submit. `http_status` is 200, 400, 401, 409, 413, 429 or 503 (CONTRACT.md
/// §2); the strings are NUL-terminated and empty when the answer lacked them. `result_status` is
/// `"S"`, `"F"` or `"U"`. For a single submit, `notification_id` is the accepted (or first, when
/// `duplicate`) id. For a batch, `batch_items` counts the per-item results and `batch_accepted`
/// those with status `S`. `retry_after_s` is the `Retry-After` header in seconds, or -1.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct nd_submit_result {
    pub http_status: u16,
    pub duplicate: bool,
    pub retry_after_s: i64,
    pub batch_items: u32,
    pub batch_accepted: u32,
    pub result_status: [c_char; 2],
    pub result_code: [c_char; ND_SUBMIT_CODE_CAP],
    pub result_message: [c_char; ND_SUBMIT_MESSAGE_CAP],
    pub notification_id: [c_char; ND_ID_STR_CAP],
}

fn map_client_error(e: Error) -> nd_result {
    match e {
        Error::Connect => nd_result::Connect,
        Error::Timeout => nd_result::Timeout,
        Error::Io => nd_result::Io,
        Error::BadResponse => nd_result::BadResponse,
        Error::TooLarge => nd_result::ResponseTooLarge,
    }
}

/// # Safety
/// `(token, token_len)` is a valid input range.
unsafe fn token_of(token: *const u8, token_len: usize) -> Result<Option<String>, nd_result> {
    // SAFETY: forwarded contract.
    let t = unsafe { text(token, token_len) }?;
    if t.bytes().any(|b| b.is_ascii_control()) {
        return Err(nd_result::InvalidArgument);
    }
    Ok((!t.is_empty()).then(|| t.to_owned()))
}

fn timeout_of(timeout_ms: u32) -> Result<Duration, nd_result> {
    if timeout_ms == 0 {
        return Err(nd_result::InvalidArgument);
    }
    Ok(Duration::from_millis(u64::from(timeout_ms)))
}

/// The half of the `nd_client_new_*` constructors that does not depend on the transport:
/// `target` turns the address text into where each submit connects.
///
/// # Safety
/// As the public constructors.
unsafe fn new_client(
    addr: *const u8,
    addr_len: usize,
    token: *const u8,
    token_len: usize,
    timeout_ms: u32,
    out: *mut *const nd_client,
    target: impl FnOnce(&str) -> Result<Target, nd_result>,
) -> Result<(), nd_result> {
    // SAFETY: forwarded contract.
    let (addr, token, out) = unsafe {
        (
            text(addr, addr_len)?,
            token_of(token, token_len)?,
            Out::new(out)?,
        )
    };
    let timeout = timeout_of(timeout_ms)?;
    let target = target(addr)?;
    out.write(arc_into_ptr(Client {
        target,
        timeout,
        token,
    }));
    Ok(())
}

/// A client for notifyd's TCP ingest listener at `addr` (`"host:port"`, resolved now), sending
/// `token` as `Authorization: Bearer` unless it is `(NULL, 0)`, and giving each submit
/// `timeout_ms` (> 0) from connect to the last byte of the answer.
/// Errors: `ND_RESULT_INVALID_ADDRESS`, `ND_RESULT_INVALID_ARGUMENT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nd_client_new_tcp(
    addr: *const u8,
    addr_len: usize,
    token: *const u8,
    token_len: usize,
    timeout_ms: u32,
    out: *mut *const nd_client,
) -> nd_result {
    ffi_boundary! {
        // SAFETY: the caller's ranges and out-pointer, as documented above.
        unsafe { new_client(addr, addr_len, token, token_len, timeout_ms, out, |addr| {
            let addrs: Vec<_> = addr.to_socket_addrs().map_err(|_| nd_result::InvalidAddress)?.collect();
            if addrs.is_empty() {
                return Err(nd_result::InvalidAddress);
            }
            Ok(Target::Tcp(addrs, addr.to_owned()))
        }) }
    }
}

/// A client for notifyd's Unix-socket listener at `path` (`[ingest] unix_socket`); otherwise as
/// `nd_client_new_tcp`. The path is not checked until the first submit.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nd_client_new_unix(
    path: *const u8,
    path_len: usize,
    token: *const u8,
    token_len: usize,
    timeout_ms: u32,
    out: *mut *const nd_client,
) -> nd_result {
    ffi_boundary! {
        // SAFETY: the caller's ranges and out-pointer, as documented above.
        unsafe { new_client(path, path_len, token, token_len, timeout_ms, out, |path| {
            if path.is_empty() || path.contains('\0') {
                return Err(nd_result::InvalidAddress);
            }
            Ok(Target::Unix(PathBuf::from(path)))
        }) }
    }
}

fn summarise(status: u16, retry_after: Option<u64>, body: &[u8]) -> nd_submit_result {
    let mut out = nd_submit_result {
        http_status: status,
        duplicate: false,
        retry_after_s: retry_after.map_or(-1, |s| i64::try_from(s).unwrap_or(i64::MAX)),
        batch_items: 0,
        batch_accepted: 0,
        result_status: [0; 2],
        result_code: [0; ND_SUBMIT_CODE_CAP],
        result_message: [0; ND_SUBMIT_MESSAGE_CAP],
        notification_id: [0; ND_ID_STR_CAP],
    };
    let mut scratch = body.to_vec();
    // A body that is not JSON (a proxy's error page) leaves the fields empty; the status stands.
    let Ok(v) = simd_json::to_borrowed_value(&mut scratch) else {
        return out;
    };
    if let Some(r) = v.get("result") {
        fill_c_array(
            &mut out.result_status,
            r.get_str("resultStatus").unwrap_or(""),
        );
        fill_c_array(&mut out.result_code, r.get_str("resultCode").unwrap_or(""));
        fill_c_array(
            &mut out.result_message,
            r.get_str("resultMessage").unwrap_or(""),
        );
    }
    fill_c_array(
        &mut out.notification_id,
        v.get_str("notificationId").unwrap_or(""),
    );
    out.duplicate = v.get_bool("duplicate").unwrap_or(false);
    if let Some(items) = v.get_array("results") {
        out.batch_items = u32::try_from(items.len()).unwrap_or(u32::MAX);
        let accepted = items
            .iter()
            .filter(|i| i.get("result").and_then(|r| r.get_str("resultStatus")) == Some("S"))
            .count();
        out.batch_accepted = u32::try_from(accepted).unwrap_or(u32::MAX);
    }
    out
}

/// # Safety
/// As the public submit functions.
#[allow(clippy::too_many_arguments)]
unsafe fn submit(
    client: *const nd_client,
    path: &str,
    json: *const u8,
    json_len: usize,
    out: *mut nd_submit_result,
    body_buf: *mut u8,
    body_cap: usize,
    body_len: *mut usize,
) -> Result<(), nd_result> {
    if body_buf.is_null() && body_cap != 0 {
        return Err(nd_result::NullParameter);
    }
    // SAFETY: forwarded contract.
    let (client, json, out) = unsafe { (arc_ref(client)?, bytes(json, json_len)?, Out::new(out)?) };
    let response = client.post(path, json).map_err(map_client_error)?;
    out.write(summarise(
        response.status,
        response.retry_after,
        &response.body,
    ));
    let n = response.body.len().min(body_cap);
    if n > 0 {
        // SAFETY: `body_buf` is non-NULL (checked above) and valid for `body_cap >= n` bytes.
        unsafe { std::ptr::copy_nonoverlapping(response.body.as_ptr(), body_buf, n) };
    }
    if !body_len.is_null() {
        // SAFETY: a non-NULL `body_len` is valid for writing, per the contract.
        unsafe { body_len.write(response.body.len()) };
    }
    Ok(())
}

/// POSTs one envelope (`{"api","url","profile"?,"body"}` JSON) to `/v1/notifications` and waits
/// for the answer. Any answer notifyd gives, 4xx and 5xx included, is `ND_RESULT_OK` with its
/// summary in `*out`; errors are transport failures (`ND_RESULT_CONNECT`, `_TIMEOUT`, `_IO`,
/// `_BAD_RESPONSE`, `_RESPONSE_TOO_LARGE`; `nd_result_is_retryable` tells which to retry).
///
/// The raw answer body is optional: its first `body_cap` bytes go to `body_buf` and its full
/// length to `*body_len` (either may be NULL/0). A short buffer truncates rather than fails,
/// because the submission has already taken effect.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nd_client_submit(
    client: *const nd_client,
    json: *const u8,
    json_len: usize,
    out: *mut nd_submit_result,
    body_buf: *mut u8,
    body_cap: usize,
    body_len: *mut usize,
) -> nd_result {
    ffi_boundary! {
        // SAFETY: the caller's arguments, as documented above.
        unsafe { submit(client, "/v1/notifications", json, json_len, out, body_buf, body_cap, body_len) }
    }
}

/// As `nd_client_submit` for a batch, `{"notifications":[envelope, ...]}` (1 to 1000 items), sent
/// to `/v1/notifications/batch`. `*out` summarises the batch (`batch_items`, `batch_accepted`);
/// the body holds each item's result in order.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nd_client_submit_batch(
    client: *const nd_client,
    json: *const u8,
    json_len: usize,
    out: *mut nd_submit_result,
    body_buf: *mut u8,
    body_cap: usize,
    body_len: *mut usize,
) -> nd_result {
    ffi_boundary! {
        // SAFETY: the caller's arguments, as documented above.
        unsafe { submit(client, "/v1/notifications/batch", json, json_len, out, body_buf, body_cap, body_len) }
    }
}

/// Releases the client. NULL is a no-op. No submit may be in progress on it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nd_client_free(client: *const nd_client) {
    ffi_boundary_or_default! {
        // SAFETY: NULL or a client from nd_client_new_* not yet freed.
        unsafe { arc_free(client) }
    }
}
