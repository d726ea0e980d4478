//! What the receiver's answer means (PROTOCOL.md §7): delivered, failed for good, retry, or
//! slow down.
//!
//! [`classify`] is the one decision; everything the daemon does after an attempt follows from
//! the [`Ack`] it returns. The receiver is untrusted, so the strings copied out of its answer
//! are bounded ([`MAX_CODE_CHARS`], [`MAX_MESSAGE_CHARS`]).

mod classify;
pub mod codes;
mod receiver_ids;

use std::fmt;
use std::time::Duration;

pub use classify::classify;
pub use codes::{Action, CodeInfo, ORDER_NOT_EXIST_RETRIES, Status, is_our_side, known_code};
pub use receiver_ids::{MAX_RECEIVER_ID_CHARS, ReceiverIds, receiver_ids};

/// Longest `resultCode` kept from an answer (the data dictionary's limit, PROTOCOL.md §2.1).
pub const MAX_CODE_CHARS: usize = 64;
/// Longest `resultMessage` kept from an answer (PROTOCOL.md §2.1).
pub const MAX_MESSAGE_CHARS: usize = 256;

/// The result of checking the answer's `Signature` header (PROTOCOL.md §1.4), done by the caller
/// on the raw bytes before classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureCheck {
    /// A signature was present and verified against the peer's public key.
    Verified,
    /// No signature header.
    Missing,
    /// A signature was present and did not verify (or could not be parsed).
    Invalid,
    /// The caller did not check, e.g. the profile has no peer key.
    NotChecked,
}

/// How strictly a profile treats answer signatures (`response_signature`, CONTRACT.md §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SignatureMode {
    /// Every answer must carry a signature that verifies.
    Required,
    /// A signature, when present, must verify.
    #[default]
    Optional,
    /// Signatures are ignored.
    Off,
}

/// How an attempt ended, as the transport saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// No complete answer within the attempt timeout.
    Timeout,
    /// Connect, TLS or I/O failure before a complete answer.
    Transport,
    /// A complete HTTP answer.
    Http {
        /// The status code.
        status: u16,
        /// The `Retry-After` header, already parsed ([`crate::backoff::parse_retry_after`]).
        retry_after: Option<Duration>,
        /// The body as received (the caller bounds how much it reads).
        body: &'a [u8],
        /// The caller's verdict on the `Signature` header.
        signature: SignatureCheck,
    },
}

/// What an answer means for the notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ack {
    /// `S`: the receiver has it. Stop.
    Delivered {
        /// The `resultCode` (bounded); normally `SUCCESS`.
        code: String,
        /// The code was not `SUCCESS`: still delivered (§7 step 4), but worth a log line.
        unexpected_code: bool,
    },
    /// `F`: the receiver refuses it for good. Stop and alert; never resend a changed payload.
    Failed {
        /// The `resultCode` (bounded).
        code: String,
        /// The `resultMessage`, if it was a string (bounded).
        message: Option<String>,
    },
    /// `F` with a code about our side of the exchange (credentials, key, API or endpoint
    /// configuration: [`is_our_side`]), not about this payment. Failing the notification would
    /// fail every other one queued for the receiver too, so the endpoint is held instead (the
    /// scheduler's `held` state) and the notification waits without spending an attempt.
    OurSide {
        /// The `resultCode` (bounded).
        code: String,
        /// The `resultMessage`, if it was a string (bounded).
        message: Option<String>,
    },
    /// `F` that may not be the receiver's last word: a merchant that has not committed the order
    /// yet (`ORDER_NOT_EXIST` on notifyPayment), or an address refused on one DNS answer that may
    /// be transient. Retried on the normal schedule at most `retries` more times, then failed.
    Doubtful {
        /// The `resultCode` (bounded).
        code: String,
        /// The `resultMessage`, if it was a string (bounded).
        message: Option<String>,
        /// Further attempts this refusal is worth before it counts as final.
        retries: u8,
    },
    /// Try again on the normal schedule.
    Retry {
        /// Why.
        reason: RetryReason,
    },
    /// The receiver is throttling (or is unavailable and said for how long): retry after
    /// [`crate::backoff::RetryPolicy::throttled_delay`] and slow the whole endpoint down.
    Throttled {
        /// The server's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
    },
    /// The attempt never reached the receiver through a failure of ours (the profile's proxy
    /// could not be reached or refused the tunnel). The merchant is not at fault: no attempt
    /// is spent, no deadline is used while it lasts, and the endpoint learns nothing from it;
    /// the notification is tried again after a short backoff of its own
    /// ([`crate::scheduler::FIRST_LOCAL_RETRY`], doubling up to
    /// [`crate::scheduler::MAX_LOCAL_RETRY`]).
    LocalFailure {
        /// What failed.
        cause: LocalCause,
    },
}

/// What of ours failed in an [`Ack::LocalFailure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LocalCause {
    /// The profile's HTTP CONNECT proxy: unreachable, or it refused the tunnel.
    Proxy,
}

impl LocalCause {
    /// A short stable name for logs and `lastResult`.
    pub const fn as_str(self) -> &'static str {
        match self {
            LocalCause::Proxy => "proxy_error",
        }
    }
}

/// Why an answer leads to a retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryReason {
    /// No answer within the attempt timeout.
    Timeout,
    /// The connection failed.
    Transport,
    /// An HTTP status other than 200 (and 429, or 503 with `Retry-After`, which throttle). Every
    /// other non-200 retries, 4xx included: PROTOCOL.md §7 treats "other responses" like U.
    HttpStatus(u16),
    /// The body is not a JSON object.
    Unparseable,
    /// The body has no `result` member.
    MissingResult,
    /// `result` is not an object, or its `resultStatus` is missing or not a string.
    MalformedResult,
    /// The profile requires a signature and the answer had none.
    SignatureMissing,
    /// The answer's signature did not verify.
    SignatureInvalid,
    /// The profile requires a signature but the caller did not check it; fail closed.
    SignatureNotChecked,
    /// `U`, an unknown status letter, or a U-class code (`SYSTEM_ERROR`, `UNKNOWN_EXCEPTION`)
    /// under `F`. Both strings bounded.
    Unknown {
        /// The `resultStatus` as sent.
        status: String,
        /// The `resultCode` as sent (empty when absent).
        code: String,
    },
}

impl RetryReason {
    /// A short stable name for logs.
    pub const fn as_str(&self) -> &'static str {
        match self {
            RetryReason::Timeout => "timeout",
            RetryReason::Transport => "transport_error",
            RetryReason::HttpStatus(_) => "http_status",
            RetryReason::Unparseable => "unparseable",
            RetryReason::MissingResult => "missing_result",
            RetryReason::MalformedResult => "malformed_result",
            RetryReason::SignatureMissing => "signature_missing",
            RetryReason::SignatureInvalid => "signature_invalid",
            RetryReason::SignatureNotChecked => "signature_not_checked",
            RetryReason::Unknown { .. } => "unknown_result",
        }
    }
}

impl fmt::Display for RetryReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetryReason::HttpStatus(s) => write!(f, "HTTP status {s}"),
            RetryReason::Unknown { status, code } => {
                write!(f, "result status {status:?} code {code:?}")
            }
            other => f.write_str(other.as_str()),
        }
    }
}

impl Ack {
    /// The `outcome` label of `notifyd_delivery_attempts_total` (CONTRACT.md §4).
    pub const fn metric_outcome(&self) -> &'static str {
        match self {
            Ack::Delivered { .. } => "ack",
            Ack::Failed { .. } | Ack::OurSide { .. } | Ack::Doubtful { .. } => "rejected",
            Ack::Throttled { .. } => "throttled",
            Ack::Retry {
                reason: RetryReason::Timeout,
            } => "timeout",
            Ack::Retry {
                reason: RetryReason::Transport,
            } => "transport_error",
            Ack::Retry { .. } => "retry",
            Ack::LocalFailure {
                cause: LocalCause::Proxy,
            } => "proxy_error",
        }
    }

    /// True when no further attempt follows (delivered or failed).
    pub const fn is_final(&self) -> bool {
        matches!(self, Ack::Delivered { .. } | Ack::Failed { .. })
    }

    /// The action vocabulary of PROTOCOL.md for this answer.
    pub const fn action(&self) -> Action {
        match self {
            Ack::Delivered { .. } => Action::Done,
            Ack::Failed { .. } => Action::PermFail,
            Ack::OurSide { .. } => Action::Hold,
            Ack::Retry { .. } | Ack::Doubtful { .. } => Action::Retry,
            Ack::Throttled { .. } => Action::BackoffHard,
            Ack::LocalFailure { .. } => Action::RetryUncounted,
        }
    }
}

/// `s` cut to at most `max` chars, on a char boundary.
fn bounded(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((end, _)) => s[..end].to_owned(),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_cuts_on_char_boundaries() {
        assert_eq!(bounded("abc", 2), "ab");
        assert_eq!(bounded("abc", 3), "abc");
        assert_eq!(bounded("ééé", 2), "éé");
        assert_eq!(bounded("", 5), "");
    }

    #[test]
    fn metric_labels_match_the_contract() {
        let retry = |reason| Ack::Retry { reason };
        assert_eq!(retry(RetryReason::Timeout).metric_outcome(), "timeout");
        assert_eq!(
            retry(RetryReason::Transport).metric_outcome(),
            "transport_error"
        );
        assert_eq!(
            retry(RetryReason::HttpStatus(503)).metric_outcome(),
            "retry"
        );
        assert_eq!(
            retry(RetryReason::SignatureInvalid).metric_outcome(),
            "retry"
        );
        let delivered = Ack::Delivered {
            code: "SUCCESS".into(),
            unexpected_code: false,
        };
        assert_eq!(delivered.metric_outcome(), "ack");
        let failed = Ack::Failed {
            code: "PROCESS_FAIL".into(),
            message: None,
        };
        assert_eq!(failed.metric_outcome(), "rejected");
        assert_eq!(
            Ack::Throttled { retry_after: None }.metric_outcome(),
            "throttled"
        );
        let proxy = Ack::LocalFailure {
            cause: LocalCause::Proxy,
        };
        assert_eq!(proxy.metric_outcome(), "proxy_error");
        assert!(!proxy.is_final());
    }
}
