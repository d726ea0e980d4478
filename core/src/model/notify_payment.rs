//! Mini-program wallet v1 `notifyPayment` (PROTOCOL.md §3.1, seed 000).

use serde::{Deserialize, Serialize};
use simd_json::BorrowedValue as Value;

use super::amount::Amount;
use super::fields::{Unknown, opt_str, present, req_str, required, split_open};
use super::{datetime, owned};
use crate::error::ValidationError;

/// The body of a v1 `notifyPayment`, in the field order of the API table (the order it is encoded in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifyPayment {
    /// Partner id allocated by the wallet; at most 32 characters.
    pub partner_id: String,
    /// Wallet's unique payment id; at most 64 characters.
    pub payment_id: String,
    /// Merchant's unique payment request id; at most 64 characters.
    pub payment_request_id: String,
    /// The order amount.
    pub payment_amount: Amount,
    /// When the payment succeeded (ISO 8601 with offset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_time: Option<String>,
    /// `SUCCESS` or `FAIL`.
    pub payment_status: String,
    /// Why the payment failed; only with `FAIL`; at most 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_fail_reason: Option<String>,
    /// JSON carried as a string, e.g. `{"customerBelongsTo":"siteName"}`; at most 4096 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extend_info: Option<String>,
}

const FIELDS: [&str; 8] = [
    "partnerId",
    "paymentId",
    "paymentRequestId",
    "paymentAmount",
    "paymentTime",
    "paymentStatus",
    "paymentFailReason",
    "extendInfo",
];

impl NotifyPayment {
    pub(crate) fn parse<'v, 'a>(
        v: &'v Value<'a>,
        unknown: Option<&mut Unknown<'v, 'a>>,
    ) -> Result<Self, ValidationError> {
        let [partner, pid, prid, amount, time, status, reason, extend] =
            split_open(v, &FIELDS, "notifyPayment", unknown)?;
        let partner_id = req_str(partner, "partnerId", 32)?.to_owned();
        let payment_id = req_str(pid, "paymentId", 64)?.to_owned();
        let payment_request_id = req_str(prid, "paymentRequestId", 64)?.to_owned();
        let payment_amount = match amount {
            Some(a) if present(Some(a)) => {
                Amount::parse(a).map_err(|e| e.within("paymentAmount"))?
            }
            _ => return Err(required("paymentAmount")),
        };
        let payment_time = opt_str(time, "paymentTime", 32)?;
        if let Some(t) = payment_time {
            datetime::validate(t).map_err(|e| e.within("paymentTime"))?;
        }
        // No length rule of its own: anything but the two values breaks the value rule.
        let payment_status = req_str(status, "paymentStatus", usize::MAX)?;
        if payment_status != "SUCCESS" && payment_status != "FAIL" {
            return Err(ValidationError::new(
                "paymentStatus",
                "must be SUCCESS or FAIL",
            ));
        }
        let payment_fail_reason = opt_str(reason, "paymentFailReason", 256)?;
        if payment_fail_reason.is_some() && payment_status != "FAIL" {
            return Err(ValidationError::new(
                "paymentFailReason",
                "is only allowed when paymentStatus is FAIL",
            ));
        }
        let extend_info = opt_str(extend, "extendInfo", 4096)?;
        Ok(NotifyPayment {
            partner_id,
            payment_id,
            payment_request_id,
            payment_amount,
            payment_time: owned(payment_time),
            payment_status: payment_status.to_owned(),
            payment_fail_reason: owned(payment_fail_reason),
            extend_info: owned(extend_info),
        })
    }
}
