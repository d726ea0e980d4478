//! Alipay+ `notifyPayment`, MPP → Alipay+ (PROTOCOL.md §5.1, seed 003).

use serde::{Deserialize, Serialize};
use simd_json::BorrowedValue as Value;

use super::amount::Amount;
use super::fields::{Unknown, opt_str, present, req_str, required, split_open};
use super::result_info::ResultInfo;
use super::{datetime, owned};
use crate::error::ValidationError;

/// The body of an Alipay+ `notifyPayment`, in the field order of the API table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlipayPlusNotifyPayment {
    /// The payment's final result: `S` or `F`, never `U`.
    pub payment_result: ResultInfo,
    /// Assigned by Alipay+; the idempotency key; at most 64 characters.
    pub payment_request_id: String,
    /// MPP's payment id; required when the result is `S`; at most 64 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// Amount in the order's currency, promotions excluded. Always sent (PROTOCOL.md §10, seed 003 #1).
    pub payment_amount: Amount,
    /// Only with `S`, and only when its currency differs from `paymentAmount`'s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay_to_amount: Option<Amount>,
    /// When the payment reached its final state; required with `S`, optional with `F`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_time: Option<String>,
    /// MPP user id; required with `S`; at most 64 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// Key-value JSON string for the ACQP; at most 20000 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_through_info: Option<String>,
    /// The amount declared to customs (added in the API page's version 32, after the fields the
    /// seed lists, and encoded after them). One of Alipay+'s own consistency fields, so a key field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customs_declaration_amount: Option<Amount>,
}

const FIELDS: [&str; 9] = [
    "paymentResult",
    "paymentRequestId",
    "paymentId",
    "paymentAmount",
    "payToAmount",
    "paymentTime",
    "customerId",
    "passThroughInfo",
    "customsDeclarationAmount",
];

impl AlipayPlusNotifyPayment {
    pub(crate) fn parse<'v, 'a>(
        v: &'v Value<'a>,
        unknown: Option<&mut Unknown<'v, 'a>>,
    ) -> Result<Self, ValidationError> {
        let [
            result,
            prid,
            pid,
            amount,
            pay_to,
            time,
            customer,
            pass,
            customs,
        ] = split_open(v, &FIELDS, "alipayplus.notifyPayment", unknown)?;
        let payment_result = match result {
            Some(r) if present(Some(r)) => {
                ResultInfo::parse_final(r).map_err(|e| e.within("paymentResult"))?
            }
            _ => return Err(required("paymentResult")),
        };
        let success = payment_result.is_success();
        let payment_request_id = req_str(prid, "paymentRequestId", 64)?.to_owned();
        let payment_id = opt_str(pid, "paymentId", 64)?;
        if success && payment_id.is_none() {
            return Err(ValidationError::new(
                "paymentId",
                "is required when paymentResult.resultStatus is S",
            ));
        }
        let payment_amount = match amount {
            Some(a) if present(Some(a)) => {
                Amount::parse(a).map_err(|e| e.within("paymentAmount"))?
            }
            _ => return Err(required("paymentAmount")),
        };
        let pay_to_amount = match pay_to {
            Some(a) if present(Some(a)) => {
                let a = Amount::parse(a).map_err(|e| e.within("payToAmount"))?;
                if !success {
                    return Err(ValidationError::new(
                        "payToAmount",
                        "is only allowed when paymentResult.resultStatus is S",
                    ));
                }
                if a.currency == payment_amount.currency {
                    return Err(ValidationError::new(
                        "payToAmount",
                        "must be omitted when its currency equals paymentAmount.currency",
                    ));
                }
                Some(a)
            }
            _ => None,
        };
        let payment_time = opt_str(time, "paymentTime", 32)?;
        match payment_time {
            Some(t) => datetime::validate(t).map_err(|e| e.within("paymentTime"))?,
            None if success => {
                return Err(ValidationError::new(
                    "paymentTime",
                    "is required when paymentResult.resultStatus is S",
                ));
            }
            None => {}
        }
        let customer_id = opt_str(customer, "customerId", 64)?;
        if success && customer_id.is_none() {
            return Err(ValidationError::new(
                "customerId",
                "is required when paymentResult.resultStatus is S",
            ));
        }
        let pass_through_info = opt_str(pass, "passThroughInfo", 20_000)?;
        let customs_declaration_amount = match customs {
            Some(a) if present(Some(a)) => {
                Some(Amount::parse(a).map_err(|e| e.within("customsDeclarationAmount"))?)
            }
            _ => None,
        };
        Ok(AlipayPlusNotifyPayment {
            payment_result,
            payment_request_id,
            payment_id: owned(payment_id),
            payment_amount,
            pay_to_amount,
            payment_time: owned(payment_time),
            customer_id: owned(customer_id),
            pass_through_info: owned(pass_through_info),
            customs_declaration_amount,
        })
    }
}
