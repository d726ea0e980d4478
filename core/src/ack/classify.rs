//! The decision procedure of PROTOCOL.md §7, in one exhaustive function.

use simd_json::BorrowedValue;

use super::codes::{
    ORDER_NOT_EXIST, ORDER_NOT_EXIST_RETRIES, REQUEST_TRAFFIC_EXCEED_LIMIT, SUCCESS, SYSTEM_ERROR,
    UNKNOWN_EXCEPTION, is_our_side,
};
use super::{
    Ack, MAX_CODE_CHARS, MAX_MESSAGE_CHARS, Outcome, RetryReason, SignatureCheck, SignatureMode,
    bounded,
};
use crate::Api;

/// Classifies one attempt's outcome (PROTOCOL.md §7, CONTRACT.md §3), in this order:
///
/// 1. timeout or transport error → retry; HTTP 429 → throttled, whatever the body; HTTP 503
///    with a `Retry-After` → throttled too (the receiver said when to come back, RFC 9110
///    §15.6.4); any other status but 200 → retry;
/// 2. the body must be a JSON object whose `result` is an object with a string `resultStatus`,
///    else retry;
/// 3. the signature, per `mode`: `Off` ignores it; `Invalid` → retry; under `Required`,
///    `Missing` or `NotChecked` → retry (an unchecked answer is not a verified one);
/// 4. `resultCode` `REQUEST_TRAFFIC_EXCEED_LIMIT` under any letter → throttled (the v1 tables
///    say U, the common list F);
/// 5. `S` → delivered, flagged when the code is not `SUCCESS`;
/// 6. `F` → failed, for every code, listed or not; except:
///    - `SYSTEM_ERROR` and `UNKNOWN_EXCEPTION`, which the tables only ever pair with U. An F
///      carrying them is a receiver that got its letters wrong about an error that is not its
///      final word, so it retries;
///    - a code about our side ([`is_our_side`]: signature, key, client, API configuration) →
///      [`Ack::OurSide`], which holds the endpoint instead of failing the payment;
///    - `ORDER_NOT_EXIST` on notifyPayment (the merchant may not have committed the order yet,
///      PROTOCOL.md §3.3) → [`Ack::Doubtful`] with [`ORDER_NOT_EXIST_RETRIES`] more attempts;
/// 7. `U` or any other letter (`A`, `R`, `s`, `""`) → retry.
///
/// A missing or non-string `resultCode` reads as `""`.
pub fn classify(api: Api, outcome: &Outcome<'_>, mode: SignatureMode) -> Ack {
    let (retry_after, body, signature) = match *outcome {
        Outcome::Timeout => return retry(RetryReason::Timeout),
        Outcome::Transport => return retry(RetryReason::Transport),
        Outcome::Http {
            status: 429,
            retry_after,
            ..
        } => return Ack::Throttled { retry_after },
        Outcome::Http {
            status: 503,
            retry_after: Some(after),
            ..
        } => {
            return Ack::Throttled {
                retry_after: Some(after),
            };
        }
        Outcome::Http { status, .. } if status != 200 => {
            return retry(RetryReason::HttpStatus(status));
        }
        Outcome::Http {
            retry_after,
            body,
            signature,
            ..
        } => (retry_after, body, signature),
    };

    // simd-json parses in place, so it needs its own copy; acks are a few hundred bytes.
    let mut scratch = body.to_vec();
    let Ok(BorrowedValue::Object(doc)) = simd_json::to_borrowed_value(&mut scratch) else {
        return retry(RetryReason::Unparseable);
    };
    let Some(result) = doc.get("result") else {
        return retry(RetryReason::MissingResult);
    };
    let BorrowedValue::Object(result) = result else {
        return retry(RetryReason::MalformedResult);
    };
    let Some(BorrowedValue::String(status)) = result.get("resultStatus") else {
        return retry(RetryReason::MalformedResult);
    };

    if let Some(reason) = signature_problem(mode, signature) {
        return retry(reason);
    }

    let code = match result.get("resultCode") {
        Some(BorrowedValue::String(code)) => code.as_ref(),
        _ => "",
    };
    if code == REQUEST_TRAFFIC_EXCEED_LIMIT {
        return Ack::Throttled { retry_after };
    }
    match status.as_ref() {
        "S" => Ack::Delivered {
            code: bounded(code, MAX_CODE_CHARS),
            unexpected_code: code != SUCCESS,
        },
        "F" if code != SYSTEM_ERROR && code != UNKNOWN_EXCEPTION => {
            let message = match result.get("resultMessage") {
                Some(BorrowedValue::String(m)) => Some(bounded(m, MAX_MESSAGE_CHARS)),
                _ => None,
            };
            let bounded_code = bounded(code, MAX_CODE_CHARS);
            if is_our_side(code) {
                Ack::OurSide {
                    code: bounded_code,
                    message,
                }
            } else if api == Api::NotifyPayment && code == ORDER_NOT_EXIST {
                Ack::Doubtful {
                    code: bounded_code,
                    message,
                    retries: ORDER_NOT_EXIST_RETRIES,
                }
            } else {
                Ack::Failed {
                    code: bounded_code,
                    message,
                }
            }
        }
        other => retry(RetryReason::Unknown {
            status: bounded(other, MAX_CODE_CHARS),
            code: bounded(code, MAX_CODE_CHARS),
        }),
    }
}

fn retry(reason: RetryReason) -> Ack {
    Ack::Retry { reason }
}

/// The signature rule of PROTOCOL.md §7 step 2, per profile mode.
fn signature_problem(mode: SignatureMode, check: SignatureCheck) -> Option<RetryReason> {
    match (mode, check) {
        (SignatureMode::Off, _) => None,
        (_, SignatureCheck::Invalid) => Some(RetryReason::SignatureInvalid),
        (SignatureMode::Required, SignatureCheck::Missing) => Some(RetryReason::SignatureMissing),
        (SignatureMode::Required, SignatureCheck::NotChecked) => {
            Some(RetryReason::SignatureNotChecked)
        }
        (SignatureMode::Required | SignatureMode::Optional, SignatureCheck::Verified)
        | (SignatureMode::Optional, SignatureCheck::Missing | SignatureCheck::NotChecked) => None,
    }
}
