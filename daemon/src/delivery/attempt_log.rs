//! An attempt as its log entry (CONTRACT.md §2.1 `attemptLog`): what the operator reads at
//! 3 a.m. to tell "the merchant answered U" from "we never reached it".

use bytes::Bytes;
use notifyd_core::ack::{Ack, RetryReason, SignatureCheck};
use notifyd_core::{NotificationId, UnixMillis};

use super::client::{Answer, SendError};
use crate::store::{AttemptEntry, SignatureNote};

/// Builds the entry of one attempt that started at `at` and ended at `now`.
pub(super) fn entry(
    id: NotificationId,
    at: UnixMillis,
    now: UnixMillis,
    sent: &Result<Answer, SendError>,
    ack: &Ack,
    signature: SignatureCheck,
) -> AttemptEntry {
    let (http_status, body) = match sent {
        Ok(answer) => (
            Some(answer.status),
            answer.body.clone().unwrap_or_else(Bytes::new),
        ),
        Err(_) => (None, Bytes::new()),
    };
    let result = match sent {
        Err(SendError::Timeout) => "timeout".to_owned(),
        Err(SendError::Transport(msg)) => format!("transport_error: {msg}"),
        Err(SendError::Forbidden(f)) => format!("forbidden_address: {f}"),
        Ok(_) => result_words(ack),
    };
    AttemptEntry {
        id,
        at,
        duration_ms: u32::try_from(now.since(at).as_millis()).unwrap_or(u32::MAX),
        http_status,
        result,
        signature: note(signature),
        // A plain `S SUCCESS` says all its body would (measured: 46 bytes per attempt without
        // it, 126 with a seed's S body, and most notifications are one S attempt). Any other
        // answer keeps its body, which the store cuts to 2 KiB.
        response_body: if plain_success(ack) {
            Bytes::new()
        } else {
            body
        },
    }
}

/// An attempt task that ended without an answer (it panicked): logged as the transport error
/// it is retried as.
pub(super) fn lost(id: NotificationId, now: UnixMillis) -> AttemptEntry {
    AttemptEntry {
        id,
        at: now,
        duration_ms: 0,
        http_status: None,
        result: "transport_error: the attempt ended without an answer".into(),
        signature: SignatureNote::NotChecked,
        response_body: Bytes::new(),
    }
}

fn plain_success(ack: &Ack) -> bool {
    matches!(
        ack,
        Ack::Delivered {
            unexpected_code: false,
            ..
        }
    )
}

/// The answer's `resultStatus resultCode` where it had one, else why it was not an answer.
fn result_words(ack: &Ack) -> String {
    match ack {
        Ack::Delivered { code, .. } => format!("S {code}"),
        Ack::Failed { code, .. } | Ack::OurSide { code, .. } | Ack::Doubtful { code, .. } => {
            format!("F {code}")
        }
        Ack::Retry {
            reason: RetryReason::Unknown { status, code },
        } => format!("{status} {code}").trim_end().to_owned(),
        Ack::Retry { reason } => reason.to_string(),
        Ack::Throttled { .. } => "throttled".to_owned(),
        // Never sent (the proxy failed): `entry` words it from the send error instead.
        Ack::LocalFailure { .. } => "not_sent".to_owned(),
    }
}

fn note(s: SignatureCheck) -> SignatureNote {
    match s {
        SignatureCheck::Verified => SignatureNote::Ok,
        SignatureCheck::Missing => SignatureNote::Missing,
        SignatureCheck::Invalid => SignatureNote::Invalid,
        SignatureCheck::NotChecked => SignatureNote::NotChecked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_words_are_the_contracts() {
        let s = Ack::Delivered {
            code: "SUCCESS".into(),
            unexpected_code: false,
        };
        assert_eq!(result_words(&s), "S SUCCESS");
        let u = Ack::Retry {
            reason: RetryReason::Unknown {
                status: "U".into(),
                code: "UNKNOWN_EXCEPTION".into(),
            },
        };
        assert_eq!(result_words(&u), "U UNKNOWN_EXCEPTION");
        let timeout = entry(
            NotificationId::from_u128(1),
            UnixMillis(1000),
            UnixMillis(1250),
            &Err(SendError::Timeout),
            &Ack::Retry {
                reason: RetryReason::Timeout,
            },
            SignatureCheck::NotChecked,
        );
        assert_eq!(timeout.result, "timeout");
        assert_eq!(timeout.http_status, None);
        assert_eq!(timeout.duration_ms, 250);
    }
}
