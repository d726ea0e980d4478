//! `nd_result`: the numbered outcome of every fallible function, its messages, and the one
//! place each core error type maps to a code.
//!
//! Numbers are allocated in blocks by subsystem and are never reused or renumbered; a retired
//! code stays behind as a `// reserved` comment.

use std::ffi::c_char;

use notifyd_core::backoff::InvalidPolicy;
use notifyd_core::signing::{HeaderError, KeyError, VerifyError};

use crate::panic::ffi_boundary_or_default;

/// `"<key>: <rule>\0"` of a core policy error, built at compile time, so that `nd_result_str`
/// words a refused policy exactly as `check-config` does and the two cannot drift apart.
macro_rules! policy_message {
    ($e:expr) => {{
        const KEY: &str = $e.key();
        const RULE: &str = $e.rule();
        const BYTES: [u8; KEY.len() + 2 + RULE.len() + 1] = key_rule_nul(KEY, RULE);
        const TEXT: &str = match std::str::from_utf8(&BYTES) {
            Ok(s) => s,
            Err(_) => panic!("joining two strs with ASCII gives UTF-8"),
        };
        TEXT
    }};
}

/// `key`, `": "`, `rule` and a NUL, into an array of exactly that length.
const fn key_rule_nul<const N: usize>(key: &str, rule: &str) -> [u8; N] {
    let (key, rule) = (key.as_bytes(), rule.as_bytes());
    assert!(N == key.len() + 2 + rule.len() + 1);
    let mut out = [0u8; N];
    let mut i = 0;
    while i < key.len() {
        out[i] = key[i];
        i += 1;
    }
    out[i] = b':';
    out[i + 1] = b' ';
    let mut j = 0;
    while j < rule.len() {
        out[i + 2 + j] = rule[j];
        j += 1;
    }
    out
}

/// The outcome of a fallible call. `ND_RESULT_OK` (0) is success; every other value is an error
/// and means no out-parameter was written (see each function for the documented exceptions).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum nd_result {
    Ok = 0,
    /// A bug in libnotifyd: Rust code panicked. The call had no effect that can be relied on.
    Panic = 1,

    // 1xx: arguments.
    NullParameter = 100,
    InvalidUtf8 = 101,
    /// The caller's buffer is too small; the size needed was written to `*out_len`.
    InsufficientSize = 102,
    /// A number or enum value outside its documented range.
    InvalidArgument = 103,

    // 2xx: notifications and envelopes.
    UnknownApi = 200,
    /// The notification or envelope breaks its API's rules; the message names field and rule.
    InvalidNotification = 201,

    // 3xx: idempotency table.
    /// `confirm`/`release`: the key does not hold that reservation (expired, or never made).
    NotReserved = 300,

    // 4xx: retry policy.
    PolicyEmptySchedule = 400,
    PolicyScheduleTooLong = 401,
    PolicyJitter = 402,
    PolicyInitial = 403,
    PolicyMultiplier = 404,
    PolicyMaxDelay = 405,
    PolicyMaxAttempts = 406,
    PolicyDeadline = 407,
    /// No further attempt: the attempts are used up or the deadline has passed.
    RetriesExhausted = 420,

    // 5xx: signing.
    KeyPemNoBlock = 500,
    KeyPemLabel = 501,
    KeyPemUnterminated = 502,
    KeyPemBase64 = 503,
    KeyDer = 504,
    KeyNotRsa = 505,
    KeySize = 506,
    KeyRejected = 507,
    SignatureHeaderMalformedPair = 520,
    SignatureHeaderDuplicateKey = 521,
    SignatureHeaderMissingAlgorithm = 522,
    SignatureHeaderUnsupportedAlgorithm = 523,
    SignatureHeaderMissingSignature = 524,
    SignatureHeaderEncoding = 525,
    /// The signature is well formed but does not match the content and key.
    BadSignature = 540,
    /// Not an absolute URL with an authority.
    InvalidUrl = 541,

    // 6xx: the ingest client.
    InvalidAddress = 600,
    Connect = 601,
    Timeout = 602,
    Io = 603,
    /// The server's answer is not well-formed HTTP/1.1.
    BadResponse = 604,
    ResponseTooLarge = 605,
}

impl nd_result {
    /// Every code, for lookups by number.
    pub const ALL: &'static [nd_result] = &[
        nd_result::Ok,
        nd_result::Panic,
        nd_result::NullParameter,
        nd_result::InvalidUtf8,
        nd_result::InsufficientSize,
        nd_result::InvalidArgument,
        nd_result::UnknownApi,
        nd_result::InvalidNotification,
        nd_result::NotReserved,
        nd_result::PolicyEmptySchedule,
        nd_result::PolicyScheduleTooLong,
        nd_result::PolicyJitter,
        nd_result::PolicyInitial,
        nd_result::PolicyMultiplier,
        nd_result::PolicyMaxDelay,
        nd_result::PolicyMaxAttempts,
        nd_result::PolicyDeadline,
        nd_result::RetriesExhausted,
        nd_result::KeyPemNoBlock,
        nd_result::KeyPemLabel,
        nd_result::KeyPemUnterminated,
        nd_result::KeyPemBase64,
        nd_result::KeyDer,
        nd_result::KeyNotRsa,
        nd_result::KeySize,
        nd_result::KeyRejected,
        nd_result::SignatureHeaderMalformedPair,
        nd_result::SignatureHeaderDuplicateKey,
        nd_result::SignatureHeaderMissingAlgorithm,
        nd_result::SignatureHeaderUnsupportedAlgorithm,
        nd_result::SignatureHeaderMissingSignature,
        nd_result::SignatureHeaderEncoding,
        nd_result::BadSignature,
        nd_result::InvalidUrl,
        nd_result::InvalidAddress,
        nd_result::Connect,
        nd_result::Timeout,
        nd_result::Io,
        nd_result::BadResponse,
        nd_result::ResponseTooLarge,
    ];

    /// The code with this number, if there is one.
    pub fn from_u32(n: u32) -> Option<nd_result> {
        Self::ALL.iter().copied().find(|r| *r as u32 == n)
    }

    /// The static, NUL-terminated description.
    pub const fn message(self) -> &'static str {
        match self {
            nd_result::Ok => "ok\0",
            nd_result::Panic => "libnotifyd panicked (a bug; please report it)\0",
            nd_result::NullParameter => "a required pointer argument was NULL\0",
            nd_result::InvalidUtf8 => "a string argument is not valid UTF-8\0",
            nd_result::InsufficientSize => {
                "the output buffer is too small; *out_len holds the size needed\0"
            }
            nd_result::InvalidArgument => "an argument is outside its documented range\0",
            nd_result::UnknownApi => {
                "unknown api; expected notifyPayment, notifyVoid or alipayplus.notifyPayment\0"
            }
            nd_result::InvalidNotification => "the notification breaks its API's rules\0",
            nd_result::NotReserved => "the key does not hold that reservation\0",
            nd_result::PolicyEmptySchedule => policy_message!(InvalidPolicy::EmptySchedule),
            nd_result::PolicyScheduleTooLong => policy_message!(InvalidPolicy::ScheduleTooLong),
            nd_result::PolicyJitter => policy_message!(InvalidPolicy::Jitter),
            nd_result::PolicyInitial => policy_message!(InvalidPolicy::Initial),
            nd_result::PolicyMultiplier => policy_message!(InvalidPolicy::Multiplier),
            nd_result::PolicyMaxDelay => policy_message!(InvalidPolicy::MaxDelay),
            nd_result::PolicyMaxAttempts => policy_message!(InvalidPolicy::MaxAttempts),
            nd_result::PolicyDeadline => policy_message!(InvalidPolicy::Deadline),
            nd_result::RetriesExhausted => "no further attempt: attempts or deadline exhausted\0",
            nd_result::KeyPemNoBlock => "key: no PEM block found\0",
            nd_result::KeyPemLabel => {
                "key: wrong PEM label (need PRIVATE KEY for PKCS#8 or PUBLIC KEY for X.509)\0"
            }
            nd_result::KeyPemUnterminated => "key: PEM block has no matching END line\0",
            nd_result::KeyPemBase64 => "key: PEM body is not valid base64\0",
            nd_result::KeyDer => "key: malformed DER\0",
            nd_result::KeyNotRsa => "key: not an RSA key\0",
            nd_result::KeySize => "key: RSA modulus size not supported\0",
            nd_result::KeyRejected => "key: private key rejected\0",
            nd_result::SignatureHeaderMalformedPair => {
                "Signature header: a part is not key=value\0"
            }
            nd_result::SignatureHeaderDuplicateKey => "Signature header: a key appears twice\0",
            nd_result::SignatureHeaderMissingAlgorithm => "Signature header: missing `algorithm`\0",
            nd_result::SignatureHeaderUnsupportedAlgorithm => {
                "Signature header: unsupported algorithm (only RSA256)\0"
            }
            nd_result::SignatureHeaderMissingSignature => {
                "Signature header: missing or empty `signature`\0"
            }
            nd_result::SignatureHeaderEncoding => {
                "Signature header: `signature` is not valid (URL-encoded) base64\0"
            }
            nd_result::BadSignature => "signature does not verify\0",
            nd_result::InvalidUrl => "not an absolute URL with a host\0",
            nd_result::InvalidAddress => "address is not host:port or does not resolve\0",
            nd_result::Connect => "cannot connect to notifyd\0",
            nd_result::Timeout => "notifyd did not answer within the timeout\0",
            nd_result::Io => "I/O error talking to notifyd\0",
            nd_result::BadResponse => "notifyd's answer is not well-formed HTTP/1.1\0",
            nd_result::ResponseTooLarge => "notifyd's answer is larger than 16 MiB\0",
        }
    }

    /// True for failures a caller may retry unchanged: the request may not have reached notifyd,
    /// and notifyd's idempotency makes a repeat safe.
    pub const fn is_retryable(self) -> bool {
        matches!(
            self,
            nd_result::Connect | nd_result::Timeout | nd_result::Io | nd_result::BadResponse
        )
    }
}

pub(crate) fn map_policy_error(e: InvalidPolicy) -> nd_result {
    match e {
        InvalidPolicy::EmptySchedule => nd_result::PolicyEmptySchedule,
        InvalidPolicy::ScheduleTooLong => nd_result::PolicyScheduleTooLong,
        InvalidPolicy::Jitter => nd_result::PolicyJitter,
        InvalidPolicy::Initial => nd_result::PolicyInitial,
        InvalidPolicy::Multiplier => nd_result::PolicyMultiplier,
        InvalidPolicy::MaxDelay => nd_result::PolicyMaxDelay,
        InvalidPolicy::MaxAttempts => nd_result::PolicyMaxAttempts,
        InvalidPolicy::Deadline => nd_result::PolicyDeadline,
    }
}

pub(crate) fn map_key_error(e: &KeyError) -> nd_result {
    match e {
        KeyError::PemNoBlock => nd_result::KeyPemNoBlock,
        KeyError::PemLabel { .. } => nd_result::KeyPemLabel,
        KeyError::PemUnterminated => nd_result::KeyPemUnterminated,
        KeyError::PemBase64 => nd_result::KeyPemBase64,
        KeyError::Der(_) => nd_result::KeyDer,
        KeyError::NotRsa => nd_result::KeyNotRsa,
        KeyError::KeySize { .. } => nd_result::KeySize,
        KeyError::Rejected(_) => nd_result::KeyRejected,
    }
}

pub(crate) fn map_verify_error(e: &VerifyError) -> nd_result {
    match e {
        VerifyError::MalformedHeader(h) => match h {
            HeaderError::MalformedPair { .. } => nd_result::SignatureHeaderMalformedPair,
            HeaderError::DuplicateKey { .. } => nd_result::SignatureHeaderDuplicateKey,
            HeaderError::MissingAlgorithm => nd_result::SignatureHeaderMissingAlgorithm,
            HeaderError::UnsupportedAlgorithm { .. } => {
                nd_result::SignatureHeaderUnsupportedAlgorithm
            }
            HeaderError::MissingSignature => nd_result::SignatureHeaderMissingSignature,
            HeaderError::SignatureEncoding => nd_result::SignatureHeaderEncoding,
        },
        VerifyError::BadSignature => nd_result::BadSignature,
    }
}

/// A static NUL-terminated description of `result` (any number; unknown numbers get
/// "unknown result code"). Never NULL; do not free.
#[unsafe(no_mangle)]
pub extern "C" fn nd_result_str(result: u32) -> *const c_char {
    ffi_boundary_or_default! {
        nd_result::from_u32(result)
            .map_or("unknown result code\0", nd_result::message)
            .as_ptr()
            .cast()
    }
}

/// True when `result` is a transport failure of the ingest client that may be retried unchanged
/// (`ND_RESULT_CONNECT`, `_TIMEOUT`, `_IO`, `_BAD_RESPONSE`).
#[unsafe(no_mangle)]
pub extern "C" fn nd_result_is_retryable(result: u32) -> bool {
    ffi_boundary_or_default! {
        nd_result::from_u32(result).is_some_and(nd_result::is_retryable)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::ffi::CStr;

    use super::*;

    #[test]
    fn numbers_are_pinned_and_unique() {
        // The ABI promise: these never change.
        assert_eq!(nd_result::Ok as u32, 0);
        assert_eq!(nd_result::Panic as u32, 1);
        assert_eq!(nd_result::NullParameter as u32, 100);
        assert_eq!(nd_result::InsufficientSize as u32, 102);
        assert_eq!(nd_result::InvalidNotification as u32, 201);
        assert_eq!(nd_result::RetriesExhausted as u32, 420);
        assert_eq!(nd_result::BadSignature as u32, 540);
        assert_eq!(nd_result::Timeout as u32, 602);
        let numbers: HashSet<u32> = nd_result::ALL.iter().map(|r| *r as u32).collect();
        assert_eq!(numbers.len(), nd_result::ALL.len());
        for r in nd_result::ALL {
            assert_eq!(nd_result::from_u32(*r as u32), Some(*r));
        }
    }

    /// `ALL` is written by hand beside the enum (cbindgen reads the enum as written and does not
    /// expand macros, so one macro cannot make both); the committed header, which
    /// `header_up_to_date` keeps equal to the enum, is the check that `ALL` lists every code.
    #[test]
    fn all_lists_every_code_of_the_header() {
        let header = include_str!("../../include/notifyd.h");
        let in_header: Vec<u32> = header
            .lines()
            .filter_map(|l| l.trim().strip_prefix("ND_RESULT_"))
            .filter_map(|l| l.split_once(" = "))
            .map(|(_, n)| n.trim_end_matches(',').parse().expect("a number"))
            .collect();
        let in_all: Vec<u32> = nd_result::ALL.iter().map(|r| *r as u32).collect();
        assert!(in_header.len() > 30, "header parse found {in_header:?}");
        assert_eq!(in_all, in_header, "nd_result::ALL and the enum differ");
    }

    #[test]
    fn policy_messages_are_cores_words() {
        for (code, e) in [
            (nd_result::PolicyEmptySchedule, InvalidPolicy::EmptySchedule),
            (nd_result::PolicyJitter, InvalidPolicy::Jitter),
            (nd_result::PolicyDeadline, InvalidPolicy::Deadline),
        ] {
            assert_eq!(code.message(), format!("{e}\0"));
            assert_eq!(map_policy_error(e), code);
        }
    }

    #[test]
    fn every_code_has_its_own_message() {
        let mut seen = HashSet::new();
        for r in nd_result::ALL {
            let m = r.message();
            assert!(m.ends_with('\0') && m.len() > 1, "{r:?}");
            assert!(seen.insert(m), "{r:?} repeats a message");
            // SAFETY: nd_result_str returns a static NUL-terminated string.
            let s = unsafe { CStr::from_ptr(nd_result_str(*r as u32)) };
            assert_eq!(s.to_bytes_with_nul(), m.as_bytes());
        }
        // SAFETY: as above.
        let unknown = unsafe { CStr::from_ptr(nd_result_str(9999)) };
        assert_eq!(unknown.to_str().unwrap(), "unknown result code");
    }

    #[test]
    fn only_transport_failures_are_retryable() {
        let retryable: Vec<_> = nd_result::ALL
            .iter()
            .filter(|r| nd_result_is_retryable(**r as u32))
            .collect();
        assert_eq!(
            retryable,
            [
                &nd_result::Connect,
                &nd_result::Timeout,
                &nd_result::Io,
                &nd_result::BadResponse
            ]
        );
        assert!(!nd_result_is_retryable(9999));
    }
}
