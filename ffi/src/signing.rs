//! Request signing and response verification (PROTOCOL.md §1.3–§1.8): the string to sign, the
//! `Signature` header, RSA keys.

use notifyd_core::signing::{self, SigningKey, VerifyingKey};

use crate::handle::{ArcCastable, Out, OutBuf, arc_free, arc_into_ptr, arc_ref, bytes, text};
use crate::panic::ffi_boundary;
use crate::result::{map_key_error, map_verify_error, nd_result};

/// The merchant's RSA private key (PKCS#8). Immutable and thread-safe: its methods take
/// `const nd_signing_key *` and may run concurrently. Released by `nd_signing_key_free`.
#[derive(Debug)]
pub struct nd_signing_key {
    _private: [u8; 0],
}

impl ArcCastable for nd_signing_key {
    type Rust = SigningKey;
}

/// The counterparty's RSA public key (X.509 SubjectPublicKeyInfo). Immutable and thread-safe.
/// Released by `nd_verifying_key_free`.
#[derive(Debug)]
pub struct nd_verifying_key {
    _private: [u8; 0],
}

impl ArcCastable for nd_verifying_key {
    type Rust = VerifyingKey;
}

/// The parts of a signed message, borrowed for the call: the HTTP method (`"POST"`), the
/// Request-URI (`"/v1/payments/notifyPayment"`, see `nd_request_uri`), the `Client-Id`, the exact
/// `Request-Time` (or `Response-Time`) header text, and the exact body bytes. Every text is UTF-8
/// and none needs a NUL; `(NULL, 0)` is an empty part.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct nd_sign_parts {
    pub method: *const u8,
    pub method_len: usize,
    pub request_uri: *const u8,
    pub request_uri_len: usize,
    pub client_id: *const u8,
    pub client_id_len: usize,
    pub time: *const u8,
    pub time_len: usize,
    pub body: *const u8,
    pub body_len: usize,
}

struct Parts<'a> {
    method: &'a str,
    uri: &'a str,
    client_id: &'a str,
    time: &'a str,
    body: &'a [u8],
}

/// # Safety
/// `p` is NULL or points to an `nd_sign_parts` whose ranges are valid for the call.
unsafe fn parts<'a>(p: *const nd_sign_parts) -> Result<Parts<'a>, nd_result> {
    // SAFETY: per the contract.
    let p = unsafe { p.as_ref() }.ok_or(nd_result::NullParameter)?;
    // SAFETY: per the contract, each range is valid for the call.
    unsafe {
        Ok(Parts {
            method: text(p.method, p.method_len)?,
            uri: text(p.request_uri, p.request_uri_len)?,
            client_id: text(p.client_id, p.client_id_len)?,
            time: text(p.time, p.time_len)?,
            body: bytes(p.body, p.body_len)?,
        })
    }
}

/// Writes the exact bytes that get signed, `<METHOD> <Request-URI>\n<Client-Id>.<Time>.<Body>`,
/// into `(buf, cap)` and their length into `*out_len` (`ND_RESULT_INSUFFICIENT_SIZE`: size needed).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nd_sign_content(
    parts: *const nd_sign_parts,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> nd_result {
    ffi_boundary! {
        // SAFETY: the caller's parts and buffer, as documented above.
        let (p, out) = unsafe { (self::parts(parts)?, OutBuf::new(buf, cap, out_len)?) };
        out.fill(&signing::content_to_sign(p.method, p.uri, p.client_id, p.time, p.body))
    }
}

/// Writes the Request-URI of an absolute URL (path and `?query`, always starting with `/`; the
/// fragment dropped) into `(buf, cap)` and its length into `*out_len`. `ND_RESULT_INVALID_URL`
/// when `url` is not `scheme://authority...`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nd_request_uri(
    url: *const u8,
    url_len: usize,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> nd_result {
    ffi_boundary! {
        // SAFETY: the caller's range and buffer, as documented above.
        let (url, out) = unsafe { (text(url, url_len)?, OutBuf::new(buf, cap, out_len)?) };
        let uri = signing::request_uri(url).ok_or(nd_result::InvalidUrl)?;
        out.fill(uri.as_bytes())
    }
}

/// Loads an unencrypted PKCS#8 `-----BEGIN PRIVATE KEY-----` PEM. On success `*out` receives the
/// key. Errors: `ND_RESULT_KEY_*`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nd_signing_key_from_pem(
    pem: *const u8,
    pem_len: usize,
    out: *mut *const nd_signing_key,
) -> nd_result {
    ffi_boundary! {
        // SAFETY: the caller's range and out-pointer, as documented above.
        let (pem, out) = unsafe { (bytes(pem, pem_len)?, Out::new(out)?) };
        let key = SigningKey::from_pkcs8_pem(pem).map_err(|e| map_key_error(&e))?;
        out.write(arc_into_ptr(key));
        Ok(())
    }
}

/// Signs `parts` and writes the `Signature` header value
/// (`algorithm=RSA256, keyVersion=<key_version>, signature=...`, not NUL-terminated) into
/// `(buf, cap)`, its length into `*out_len`. 512 bytes fit a 2048-bit key's header.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nd_signing_key_sign(
    key: *const nd_signing_key,
    key_version: u32,
    parts: *const nd_sign_parts,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> nd_result {
    ffi_boundary! {
        // SAFETY: a live key, the caller's parts and buffer, as documented above.
        let (key, p, out) = unsafe { (arc_ref(key)?, self::parts(parts)?, OutBuf::new(buf, cap, out_len)?) };
        let header = signing::sign_request(key, key_version, p.method, p.uri, p.client_id, p.time, p.body);
        out.fill(header.as_bytes())
    }
}

/// Releases the key. NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nd_signing_key_free(key: *const nd_signing_key) {
    crate::panic::ffi_boundary_or_default! {
        // SAFETY: NULL or a key from nd_signing_key_from_pem not yet freed.
        unsafe { arc_free(key) }
    }
}

/// Loads a `-----BEGIN PUBLIC KEY-----` (X.509 SubjectPublicKeyInfo) RSA PEM. On success `*out`
/// receives the key. Errors: `ND_RESULT_KEY_*`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nd_verifying_key_from_pem(
    pem: *const u8,
    pem_len: usize,
    out: *mut *const nd_verifying_key,
) -> nd_result {
    ffi_boundary! {
        // SAFETY: the caller's range and out-pointer, as documented above.
        let (pem, out) = unsafe { (bytes(pem, pem_len)?, Out::new(out)?) };
        let key = VerifyingKey::from_spki_pem(pem).map_err(|e| map_key_error(&e))?;
        out.write(arc_into_ptr(key));
        Ok(())
    }
}

/// Verifies a `Signature` header value against `parts` (for a response: the request's method and
/// Request-URI, the response's `Client-Id` and `Response-Time`, the response body).
/// `ND_RESULT_OK` when it verifies, `ND_RESULT_BAD_SIGNATURE` when it does not, and
/// `ND_RESULT_SIGNATURE_HEADER_*` when the header cannot be read.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nd_verifying_key_verify(
    key: *const nd_verifying_key,
    parts: *const nd_sign_parts,
    header: *const u8,
    header_len: usize,
) -> nd_result {
    ffi_boundary! {
        // SAFETY: a live key, the caller's parts and header range, as documented above.
        let (key, p, header) = unsafe { (arc_ref(key)?, self::parts(parts)?, text(header, header_len)?) };
        signing::verify_response(key, p.method, p.uri, p.client_id, p.time, p.body, header)
            .map_err(|e| map_verify_error(&e))
    }
}

/// Releases the key. NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nd_verifying_key_free(key: *const nd_verifying_key) {
    crate::panic::ffi_boundary_or_default! {
        // SAFETY: NULL or a key from nd_verifying_key_from_pem not yet freed.
        unsafe { arc_free(key) }
    }
}
