//! Validating and encoding notifications, and the `nd_envelope` handle (a valid notification
//! with its url and profile, which is what the idempotency key is computed from).

use std::borrow::Cow;
use std::ffi::c_char;

use notifyd_core::{Api, Envelope, Notification, ValidationError};
use simd_json::BorrowedValue as Value;

use crate::handle::{
    BoxCastable, MessageBuf, Out, OutBuf, box_free, box_into_ptr, box_ref, bytes, text,
};
use crate::panic::{ffi_boundary, ffi_boundary_or_default};
use crate::result::nd_result;

/// A valid notification together with its envelope fields (api, url, profile).
///
/// Made by `nd_envelope_parse` or `nd_envelope_new`, released by `nd_envelope_free`. Immutable:
/// its methods take `const nd_envelope *` and may be called from several threads at once.
#[derive(Debug)]
pub struct nd_envelope {
    _private: [u8; 0],
}

impl BoxCastable for nd_envelope {
    type Rust = Envelope;
}

/// A notification's idempotency key and key-field fingerprint (CONTRACT.md §2), each a 128-bit
/// hash stored little-endian. Equal keys name the same notification; a repeat with a different
/// fingerprint is inconsistent.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct nd_idem_key {
    pub key: [u8; 16],
    pub fingerprint: [u8; 16],
}

fn api_from_name(name: &str) -> Result<Api, ValidationError> {
    Api::from_name(name).ok_or_else(|| {
        ValidationError::new(
            "api",
            "must be one of notifyPayment, notifyVoid, alipayplus.notifyPayment",
        )
    })
}

/// Parses `(api, json)` as a notification body of that API.
///
/// # Safety
/// `(api, api_len)` and `(json, json_len)` are valid input ranges.
unsafe fn parse_notification(
    api: *const u8,
    api_len: usize,
    json: *const u8,
    json_len: usize,
    err: &MessageBuf,
) -> Result<Notification, nd_result> {
    // SAFETY: forwarded contract.
    let (api, json) = unsafe { (text(api, api_len)?, bytes(json, json_len)?) };
    let api = api_from_name(api).map_err(|e| err.report(nd_result::UnknownApi, &e))?;
    // The SIMD parser works in place, so it gets its own copy.
    let mut scratch = json.to_vec();
    Notification::parse(api, &mut scratch)
        .map_err(|e| err.report(nd_result::InvalidNotification, &e))
}

/// Validates a notification body (`json`, not NUL-terminated) against the rules of `api`
/// (`"notifyPayment"`, `"notifyVoid"` or `"alipayplus.notifyPayment"`).
///
/// Returns `ND_RESULT_OK`, `ND_RESULT_UNKNOWN_API` or `ND_RESULT_INVALID_NOTIFICATION`. On those two
/// errors, and only then, a message naming the field and the rule
/// (`paymentAmount.value: must be 1 to 16 digits`) is written to `err_buf` as `snprintf` would
/// (truncated, NUL-terminated); `err_buf` may be NULL. All inputs are borrowed for the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nd_notification_validate(
    api: *const u8,
    api_len: usize,
    json: *const u8,
    json_len: usize,
    err_buf: *mut c_char,
    err_cap: usize,
) -> nd_result {
    ffi_boundary! {
        // SAFETY: the caller's ranges and message buffer, as documented above.
        unsafe { parse_notification(api, api_len, json, json_len, &MessageBuf::new(err_buf, err_cap)) }?;
        Ok(())
    }
}

/// Validates like `nd_notification_validate`, then writes the canonical bytes notifyd sends to
/// the receiver (every scalar a JSON string, absent optionals omitted) into `(buf, cap)` and
/// their length into `*out_len`.
///
/// `ND_RESULT_INSUFFICIENT_SIZE`: `*out_len` holds the size needed and `buf` is untouched;
/// `(NULL, 0)` asks for the size only.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nd_notification_encode(
    api: *const u8,
    api_len: usize,
    json: *const u8,
    json_len: usize,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
    err_buf: *mut c_char,
    err_cap: usize,
) -> nd_result {
    ffi_boundary! {
        // SAFETY: the caller's buffer and length pointer, as documented above.
        let out = unsafe { OutBuf::new(buf, cap, out_len) }?;
        // SAFETY: the caller's ranges and message buffer, as documented above.
        let n = unsafe { parse_notification(api, api_len, json, json_len, &MessageBuf::new(err_buf, err_cap)) }?;
        out.fill(&notifyd_core::encode::encode(&n))
    }
}

/// Parses and validates an ingest envelope, `{"api", "url", "profile"?, "body"}` (CONTRACT.md §2),
/// exactly as notifyd's ingest does. On success `*out` receives a new `nd_envelope` that the
/// caller releases with `nd_envelope_free`.
///
/// Errors as `nd_notification_validate` (unknown api names are `ND_RESULT_INVALID_NOTIFICATION`
/// here, with the path `api`); paths are relative to the envelope (`body.paymentId: is required`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nd_envelope_parse(
    json: *const u8,
    json_len: usize,
    out: *mut *mut nd_envelope,
    err_buf: *mut c_char,
    err_cap: usize,
) -> nd_result {
    ffi_boundary! {
        // SAFETY: the caller's out-pointer, input range and message buffer, as documented above.
        let (out, json, err) = unsafe { (Out::new(out)?, bytes(json, json_len)?, MessageBuf::new(err_buf, err_cap)) };
        let mut scratch = json.to_vec();
        let env = Envelope::parse(&mut scratch)
            .map_err(|e| err.report(nd_result::InvalidNotification, &e))?;
        out.write(box_into_ptr(env));
        Ok(())
    }
}

/// Builds an envelope from its parts, with the same rules as `nd_envelope_parse`: `api` as in
/// `nd_notification_validate`, `url` the receiver's absolute http(s) URL, `profile` a notifyd
/// profile name (`(NULL, 0)` means `"default"`), `body` the notification JSON.
/// On success `*out` receives a new `nd_envelope` (release with `nd_envelope_free`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nd_envelope_new(
    api: *const u8,
    api_len: usize,
    url: *const u8,
    url_len: usize,
    profile: *const u8,
    profile_len: usize,
    body: *const u8,
    body_len: usize,
    out: *mut *mut nd_envelope,
    err_buf: *mut c_char,
    err_cap: usize,
) -> nd_result {
    ffi_boundary! {
        // SAFETY: the caller's out-pointer, input ranges and message buffer, as documented above.
        let (err, out, api, url, profile, body) = unsafe {
            (
                MessageBuf::new(err_buf, err_cap),
                Out::new(out)?,
                text(api, api_len)?,
                text(url, url_len)?,
                text(profile, profile_len)?,
                bytes(body, body_len)?,
            )
        };
        let mut scratch = body.to_vec();
        // Built as a JSON value so that core's envelope rules apply unchanged.
        let env = simd_json::to_borrowed_value(&mut scratch)
            .map_err(|e| ValidationError::new("body", format!("must be valid JSON ({e})")))
            .and_then(|body| {
                let mut obj = simd_json::value::borrowed::Object::default();
                obj.insert(Cow::Borrowed("api"), Value::from(api));
                obj.insert(Cow::Borrowed("url"), Value::from(url));
                if !profile.is_empty() {
                    obj.insert(Cow::Borrowed("profile"), Value::from(profile));
                }
                obj.insert(Cow::Borrowed("body"), body);
                Envelope::from_value(&Value::from(obj))
            })
            .map_err(|e| err.report(nd_result::InvalidNotification, &e))?;
        out.write(box_into_ptr(env));
        Ok(())
    }
}

/// Writes the envelope's canonical notification bytes (as `nd_notification_encode`) into
/// `(buf, cap)` and their length into `*out_len`; `ND_RESULT_INSUFFICIENT_SIZE` reports the size
/// needed in `*out_len`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nd_envelope_encode(
    envelope: *const nd_envelope,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> nd_result {
    ffi_boundary! {
        // SAFETY: a live envelope and the caller's buffer, as documented above.
        let (env, out) = unsafe { (box_ref(envelope)?, OutBuf::new(buf, cap, out_len)?) };
        out.fill(&env.encode())
    }
}

/// Writes the envelope's idempotency key and fingerprint to `*out`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nd_envelope_idempotency(
    envelope: *const nd_envelope,
    out: *mut nd_idem_key,
) -> nd_result {
    ffi_boundary! {
        // SAFETY: a live envelope and the caller's out-pointer, as documented above.
        let (env, out) = unsafe { (box_ref(envelope)?, Out::new(out)?) };
        out.write(idempotency_of(env));
        Ok(())
    }
}

pub(crate) fn idempotency_of(env: &Envelope) -> nd_idem_key {
    let (key, fp) = env.idempotency();
    nd_idem_key {
        key: key.0.to_le_bytes(),
        fingerprint: fp.0.to_le_bytes(),
    }
}

/// The envelope's api name as a static NUL-terminated string (`"notifyPayment"`, ...), or NULL
/// when `envelope` is NULL. Do not free.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nd_envelope_api(envelope: *const nd_envelope) -> *const c_char {
    ffi_boundary_or_default! {
        // SAFETY: NULL or a live envelope, as documented above.
        match unsafe { box_ref(envelope) } {
            Ok(env) => match env.api {
                Api::NotifyPayment => c"notifyPayment".as_ptr(),
                Api::NotifyVoid => c"notifyVoid".as_ptr(),
                Api::AlipayPlusNotifyPayment => c"alipayplus.notifyPayment".as_ptr(),
            },
            Err(_) => std::ptr::null(),
        }
    }
}

/// Releases an envelope. NULL is a no-op; using `envelope` afterwards is the caller's bug.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nd_envelope_free(envelope: *mut nd_envelope) {
    ffi_boundary_or_default! {
        // SAFETY: NULL or an envelope from nd_envelope_parse/new not yet freed, as documented.
        unsafe { box_free(envelope) }
    }
}
