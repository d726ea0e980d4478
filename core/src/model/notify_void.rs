//! Mini-program wallet v2 `notifyVoid` (PROTOCOL.md §6.1, seed 004).

use serde::{Deserialize, Serialize};
use simd_json::BorrowedValue as Value;

use super::amount::Amount;
use super::fields::{Unknown, opt_str, present, req_str, required, split_open};
use super::result_info::ResultInfo;
use super::{datetime, owned};
use crate::error::ValidationError;

/// The body of a v2 `notifyVoid`, in the field order of the API table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifyVoid {
    /// The outcome of the void: `S` or `F`.
    pub void_result: ResultInfo,
    /// The void request id (merchant's or wallet's); the idempotency key; at most 64 characters.
    pub void_request_id: String,
    /// Wallet's void id; at most 64 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub void_id: Option<String>,
    /// The voided authorization's payment id; at most 64 characters.
    pub payment_id: String,
    /// The voided amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub void_amount: Option<Amount>,
    /// When the void happened (ISO 8601 with offset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub void_time: Option<String>,
    /// Who initiated the void (`MERCHANT` is the only documented value; free text, see
    /// [`VOID_SOURCE_MAX_CHARS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub void_source: Option<String>,
    /// JSON carried as a string; at most 4096 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extend_info: Option<String>,
}

/// Seed 004 gives `voidSource` no length. This bound is notifyd's sanity limit on a free-text
/// field (the size of `extendInfo`'s), not a protocol rule: no real value comes near it.
pub const VOID_SOURCE_MAX_CHARS: usize = 4096;

const FIELDS: [&str; 8] = [
    "voidResult",
    "voidRequestId",
    "voidId",
    "paymentId",
    "voidAmount",
    "voidTime",
    "voidSource",
    "extendInfo",
];

impl NotifyVoid {
    pub(crate) fn parse<'v, 'a>(
        v: &'v Value<'a>,
        unknown: Option<&mut Unknown<'v, 'a>>,
    ) -> Result<Self, ValidationError> {
        let [result, vrid, vid, pid, amount, time, source, extend] =
            split_open(v, &FIELDS, "notifyVoid", unknown)?;
        let void_result = match result {
            Some(r) if present(Some(r)) => {
                ResultInfo::parse_final(r).map_err(|e| e.within("voidResult"))?
            }
            _ => return Err(required("voidResult")),
        };
        let void_request_id = req_str(vrid, "voidRequestId", 64)?.to_owned();
        let void_id = opt_str(vid, "voidId", 64)?;
        let payment_id = req_str(pid, "paymentId", 64)?.to_owned();
        let void_amount = match amount {
            Some(a) if present(Some(a)) => {
                Some(Amount::parse(a).map_err(|e| e.within("voidAmount"))?)
            }
            _ => None,
        };
        let void_time = opt_str(time, "voidTime", 32)?;
        if let Some(t) = void_time {
            datetime::validate(t).map_err(|e| e.within("voidTime"))?;
        }
        let void_source = opt_str(source, "voidSource", VOID_SOURCE_MAX_CHARS)?;
        let extend_info = opt_str(extend, "extendInfo", 4096)?;
        Ok(NotifyVoid {
            void_result,
            void_request_id,
            void_id: owned(void_id),
            payment_id,
            void_amount,
            void_time: owned(void_time),
            void_source: owned(void_source),
            extend_info: owned(extend_info),
        })
    }
}
