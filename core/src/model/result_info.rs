//! `Result` (PROTOCOL.md §2.1): `resultStatus`, `resultCode`, `resultMessage`.

use serde::{Deserialize, Serialize};
use simd_json::BorrowedValue as Value;

use super::fields::{opt_str, req_str, split};
use crate::ack::Status;
use crate::error::ValidationError;

/// A protocol `Result` object. Field order is the order the docs and SDKs write it in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultInfo {
    /// e.g. `SUCCESS`; at most 64 characters.
    pub result_code: String,
    /// `S`, `F` or `U`.
    pub result_status: String,
    /// Free text, at most 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_message: Option<String>,
}

impl ResultInfo {
    /// A result with a message, as notifyd answers on its own API.
    pub fn new(status: Status, code: &str, message: &str) -> Self {
        ResultInfo {
            result_code: code.to_owned(),
            result_status: status.as_str().to_owned(),
            result_message: Some(message.to_owned()),
        }
    }

    /// Parses a result that a notification *carries* (`paymentResult`, `voidResult`): a final
    /// outcome, so only `S` or `F` are allowed (PROTOCOL.md §2.1, §5.1, §6.1).
    pub(crate) fn parse_final(v: &Value<'_>) -> Result<ResultInfo, ValidationError> {
        let [status, code, message] = split(
            v,
            &["resultStatus", "resultCode", "resultMessage"],
            "Result",
        )?;
        // No length rule of its own: anything but the two letters breaks the value rule.
        let status = req_str(status, "resultStatus", usize::MAX)?;
        if status != "S" && status != "F" {
            return Err(ValidationError::new("resultStatus", "must be S or F"));
        }
        let code = req_str(code, "resultCode", 64)?;
        // A receiver acts on the letter or on the code, whichever it reads; they must agree
        // (PROTOCOL.md §2.1: SUCCESS is the code of S, and of S only).
        if status == "S" && code != "SUCCESS" {
            return Err(ValidationError::new(
                "resultCode",
                "must be SUCCESS when resultStatus is S",
            ));
        }
        if status == "F" && code == "SUCCESS" {
            return Err(ValidationError::new(
                "resultCode",
                "must not be SUCCESS when resultStatus is F",
            ));
        }
        let message = opt_str(message, "resultMessage", 256)?;
        Ok(ResultInfo {
            result_code: code.to_owned(),
            result_status: status.to_owned(),
            result_message: message.map(str::to_owned),
        })
    }

    /// Whether the status is `S`.
    pub fn is_success(&self) -> bool {
        self.result_status == "S"
    }
}
