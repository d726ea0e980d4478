//! Classifying a receiver's answer into what happens next (PROTOCOL.md §7).

use std::ffi::c_char;
use std::time::Duration;

use notifyd_core::ack::{self, Ack, Action, Outcome, RetryReason, SignatureCheck, SignatureMode};

use crate::handle::{Out, bytes, fill_c_array, text};
use crate::panic::ffi_boundary;
use crate::result::nd_result;

/// How an attempt ended (`nd_outcome.kind`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum nd_outcome_kind {
    /// A complete HTTP answer: `http_status`, `retry_after_ms`, `body` and `signature` apply.
    Http = 0,
    /// No complete answer within the attempt timeout.
    Timeout = 1,
    /// Connect, TLS or I/O failure before a complete answer.
    Transport = 2,
}

/// The caller's verdict on the answer's `Signature` header (`nd_outcome.signature`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum nd_signature_check {
    Verified = 0,
    Missing = 1,
    Invalid = 2,
    NotChecked = 3,
}

/// How strictly answer signatures are required (the profile's `response_signature`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum nd_signature_mode {
    Required = 0,
    Optional = 1,
    Off = 2,
}

/// What to do with the notification.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum nd_action {
    /// Delivered (`S`): stop.
    Done = 0,
    /// Refused for good (`F`): stop and alert.
    PermFail = 1,
    /// Retry on the normal schedule.
    Retry = 2,
    /// The receiver is throttling: retry much later and slow the endpoint down.
    BackoffHard = 3,
}

/// An attempt's outcome, borrowed for the call. `kind` and `signature` hold `nd_outcome_kind` and
/// `nd_signature_check` values; `retry_after_ms` is the parsed `Retry-After` or -1 when absent;
/// `(body, body_len)` is the answer body (NULL allowed when empty).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct nd_outcome {
    pub kind: u32,
    pub http_status: u16,
    pub retry_after_ms: i64,
    pub body: *const u8,
    pub body_len: usize,
    pub signature: u32,
}

/// Room for a `resultCode` (64 characters of up to 4 UTF-8 bytes) plus the NUL.
pub const ND_ACK_CODE_CAP: usize = 257;
/// Room for a `resultMessage` (256 characters of up to 4 UTF-8 bytes) plus the NUL.
pub const ND_ACK_MESSAGE_CAP: usize = 1025;

/// The classification. `reason` (static, never NULL) is empty unless `action` is
/// `ND_ACTION_RETRY`, then a short name (`"timeout"`, `"http_status"`, `"unknown_result"`, ...;
/// `"our_side"` for an F about the sender's credentials or configuration, which holds the
/// endpoint without spending an attempt, and `"doubtful"` for an F retried a few times first).
/// `metric_outcome` (static) is the `outcome` label notifyd uses for the attempt. `code` and
/// `message` are the receiver's `resultCode` and `resultMessage` where the answer had them
/// (NUL-terminated, possibly empty). `retry_after_ms` is the receiver's `Retry-After` for
/// `ND_ACTION_BACKOFF_HARD`, else -1.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct nd_ack {
    pub action: nd_action,
    pub is_final: bool,
    pub unexpected_code: bool,
    pub retry_after_ms: i64,
    pub reason: *const c_char,
    pub metric_outcome: *const c_char,
    pub code: [c_char; ND_ACK_CODE_CAP],
    pub message: [c_char; ND_ACK_MESSAGE_CAP],
}

fn static_c(s: &'static str) -> *const c_char {
    // Every name below is listed with its NUL so it can be handed to C as is.
    match s {
        "" => c"".as_ptr(),
        "ack" => c"ack".as_ptr(),
        "rejected" => c"rejected".as_ptr(),
        "throttled" => c"throttled".as_ptr(),
        "timeout" => c"timeout".as_ptr(),
        "transport_error" => c"transport_error".as_ptr(),
        "retry" => c"retry".as_ptr(),
        "http_status" => c"http_status".as_ptr(),
        "unparseable" => c"unparseable".as_ptr(),
        "missing_result" => c"missing_result".as_ptr(),
        "malformed_result" => c"malformed_result".as_ptr(),
        "signature_missing" => c"signature_missing".as_ptr(),
        "signature_invalid" => c"signature_invalid".as_ptr(),
        "signature_not_checked" => c"signature_not_checked".as_ptr(),
        "unknown_result" => c"unknown_result".as_ptr(),
        "our_side" => c"our_side".as_ptr(),
        "doubtful" => c"doubtful".as_ptr(),
        "proxy_error" => c"proxy_error".as_ptr(),
        _ => c"other".as_ptr(),
    }
}

fn millis(d: Option<Duration>) -> i64 {
    d.map_or(-1, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn to_c(a: &Ack) -> nd_ack {
    let mut out = nd_ack {
        action: match a.action() {
            Action::Done => nd_action::Done,
            Action::PermFail => nd_action::PermFail,
            Action::Retry => nd_action::Retry,
            Action::BackoffHard => nd_action::BackoffHard,
            // For the notification a hold is a retry that spends nothing; `reason` says which.
            Action::Hold => nd_action::Retry,
            Action::RetryUncounted => nd_action::Retry,
        },
        is_final: a.is_final(),
        unexpected_code: false,
        retry_after_ms: -1,
        reason: static_c(""),
        metric_outcome: static_c(a.metric_outcome()),
        code: [0; ND_ACK_CODE_CAP],
        message: [0; ND_ACK_MESSAGE_CAP],
    };
    match a {
        Ack::Delivered {
            code,
            unexpected_code,
        } => {
            out.unexpected_code = *unexpected_code;
            fill_c_array(&mut out.code, code);
        }
        Ack::Failed { code, message } => {
            fill_c_array(&mut out.code, code);
            fill_c_array(&mut out.message, message.as_deref().unwrap_or(""));
        }
        Ack::OurSide { code, message } => {
            out.reason = static_c("our_side");
            fill_c_array(&mut out.code, code);
            fill_c_array(&mut out.message, message.as_deref().unwrap_or(""));
        }
        Ack::Doubtful { code, message, .. } => {
            out.reason = static_c("doubtful");
            fill_c_array(&mut out.code, code);
            fill_c_array(&mut out.message, message.as_deref().unwrap_or(""));
        }
        Ack::Retry { reason } => {
            out.reason = static_c(reason.as_str());
            if let RetryReason::Unknown { code, .. } = reason {
                fill_c_array(&mut out.code, code);
            }
        }
        Ack::Throttled { retry_after } => out.retry_after_ms = millis(*retry_after),
        // classify never returns it (only the daemon's own client knows of proxies), but the
        // mapping is total.
        Ack::LocalFailure { cause } => out.reason = static_c(cause.as_str()),
    }
    out
}

/// Classifies an attempt's outcome for `api` (`"notifyPayment"`, ...) under signature mode
/// `signature_mode` (an `nd_signature_mode` value) and writes the verdict to `*out`.
///
/// `ND_RESULT_UNKNOWN_API`, or `ND_RESULT_INVALID_ARGUMENT` when `kind`, `signature` or
/// `signature_mode` is not one of its constants or `retry_after_ms` is below -1.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nd_ack_classify(
    api: *const u8,
    api_len: usize,
    outcome: *const nd_outcome,
    signature_mode: u32,
    out: *mut nd_ack,
) -> nd_result {
    ffi_boundary! {
        // SAFETY: the caller's api range, outcome and out-pointer, as documented above.
        let (api, outcome, out) = unsafe {
            (
                text(api, api_len)?,
                outcome.as_ref().ok_or(nd_result::NullParameter)?,
                Out::new(out)?,
            )
        };
        let api = notifyd_core::Api::from_name(api).ok_or(nd_result::UnknownApi)?;
        let mode = match signature_mode {
            m if m == nd_signature_mode::Required as u32 => SignatureMode::Required,
            m if m == nd_signature_mode::Optional as u32 => SignatureMode::Optional,
            m if m == nd_signature_mode::Off as u32 => SignatureMode::Off,
            _ => return Err(nd_result::InvalidArgument),
        };
        let signature = match outcome.signature {
            s if s == nd_signature_check::Verified as u32 => SignatureCheck::Verified,
            s if s == nd_signature_check::Missing as u32 => SignatureCheck::Missing,
            s if s == nd_signature_check::Invalid as u32 => SignatureCheck::Invalid,
            s if s == nd_signature_check::NotChecked as u32 => SignatureCheck::NotChecked,
            _ => return Err(nd_result::InvalidArgument),
        };
        let retry_after = match outcome.retry_after_ms {
            -1 => None,
            ms if ms >= 0 => Some(Duration::from_millis(ms.unsigned_abs())),
            _ => return Err(nd_result::InvalidArgument),
        };
        // SAFETY: the outcome's body range is borrowed for the call, as documented above.
        let body = unsafe { bytes(outcome.body, outcome.body_len) }?;
        let o = match outcome.kind {
            k if k == nd_outcome_kind::Http as u32 => Outcome::Http {
                status: outcome.http_status,
                retry_after,
                body,
                signature,
            },
            k if k == nd_outcome_kind::Timeout as u32 => Outcome::Timeout,
            k if k == nd_outcome_kind::Transport as u32 => Outcome::Transport,
            _ => return Err(nd_result::InvalidArgument),
        };
        out.write(to_c(&ack::classify(api, &o, mode)));
        Ok(())
    }
}
