//! `inquiryPayment` (PROTOCOL.md §4, seed 002): the request a merchant sends when a notification
//! has not arrived, and the answer notifyd builds from the notifications it holds.

use serde::{Deserialize, Serialize};

use super::amount::Amount;
use super::fields::{opt_str, parse_json, split};
use super::result_info::ResultInfo;
use super::{Notification, owned};
use crate::ack::Status;
use crate::ack::codes::{ORDER_NOT_EXIST, SUCCESS, UNKNOWN_EXCEPTION};
use crate::error::ValidationError;

/// A validated `inquiryPayment` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InquiryRequest {
    /// Partner id; the seed marks it required, but some wallets' copies omit it, so it is
    /// optional here and narrows a `paymentRequestId` lookup when present. At most 32 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_id: Option<String>,
    /// Wallet payment id; takes priority over `paymentRequestId`. At most 64 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// Merchant payment request id. At most 64 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_request_id: Option<String>,
    /// `{"customerBelongsTo":"siteName"}`; at most 4096 characters. Not used for the lookup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extend_info: Option<String>,
}

/// What to look a payment up by, after applying the `paymentId`-first priority rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// By the wallet's `paymentId`.
    PaymentId(&'a str),
    /// By the merchant's `paymentRequestId`, within `partnerId` when one was given.
    PaymentRequestId {
        /// The partner the request id belongs to, when the request named one.
        partner_id: Option<&'a str>,
        /// The merchant's payment request id.
        payment_request_id: &'a str,
    },
}

impl InquiryRequest {
    /// Parses and validates a request body.
    pub fn parse(bytes: &mut [u8]) -> Result<Self, ValidationError> {
        let value = parse_json(bytes)?;
        let [partner, pid, prid, extend] = split(
            &value,
            &["partnerId", "paymentId", "paymentRequestId", "extendInfo"],
            "inquiryPayment",
        )?;
        let req = InquiryRequest {
            partner_id: owned(opt_str(partner, "partnerId", 32)?),
            payment_id: owned(opt_str(pid, "paymentId", 64)?),
            payment_request_id: owned(opt_str(prid, "paymentRequestId", 64)?),
            extend_info: owned(opt_str(extend, "extendInfo", 4096)?),
        };
        if req.payment_id.is_none() && req.payment_request_id.is_none() {
            return Err(ValidationError::new(
                "paymentId",
                "paymentId or paymentRequestId is required",
            ));
        }
        Ok(req)
    }

    /// The lookup this request asks for: `paymentId` wins when both ids are given.
    pub fn lookup(&self) -> Lookup<'_> {
        match (&self.payment_id, &self.payment_request_id) {
            (Some(id), _) => Lookup::PaymentId(id),
            (None, Some(rid)) => Lookup::PaymentRequestId {
                partner_id: self.partner_id.as_deref(),
                payment_request_id: rid,
            },
            // parse() guarantees one of the two ids.
            (None, None) => Lookup::PaymentId(""),
        }
    }
}

/// The `inquiryPayment` answer (PROTOCOL.md §4.2), in the field order of the API table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InquiryResponse {
    /// S when the payment is known; U `UNKNOWN_EXCEPTION` (or, where notifyd is told it is
    /// authoritative, F `ORDER_NOT_EXIST`) when it is not; F for a refused request.
    pub result: ResultInfo,
    /// The wallet's payment id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// The merchant's payment request id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_request_id: Option<String>,
    /// The payment amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_amount: Option<Amount>,
    /// When the payment succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_time: Option<String>,
    /// `SUCCESS`, `FAIL` or `CANCELLED` (notifyd holds only final results, never `PROCESSING`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_status: Option<String>,
    /// Why the payment failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_fail_reason: Option<String>,
}

impl InquiryResponse {
    /// An answer that is only a result: a refusal (`PARAM_ILLEGAL`, `INVALID_SIGNATURE`,
    /// `ACCESS_DENIED`) or an unknown payment.
    pub fn result_only(result: ResultInfo) -> Self {
        InquiryResponse {
            result,
            payment_id: None,
            payment_request_id: None,
            payment_amount: None,
            payment_time: None,
            payment_status: None,
            payment_fail_reason: None,
        }
    }

    /// The answer for a payment notifyd holds nothing about: U `UNKNOWN_EXCEPTION`, "retry".
    /// notifyd is not the system of record: the result may still be on its way from the gateway
    /// (queued, retried, or notifyd restarting), or pruned; seed 002 lets a merchant treat F
    /// `ORDER_NOT_EXIST` as a failed payment, which would close a paid order.
    pub fn unknown() -> Self {
        InquiryResponse::result_only(ResultInfo::new(
            Status::U,
            UNKNOWN_EXCEPTION,
            "notifyd holds no result for this payment (yet); retry later",
        ))
    }

    /// The answer for a payment notifyd does not know where it is told it is the system of
    /// record (`[inquiry] authoritative = true`): F `ORDER_NOT_EXIST`.
    pub fn not_found() -> Self {
        InquiryResponse::result_only(ResultInfo::new(
            Status::F,
            ORDER_NOT_EXIST,
            "order does not exist",
        ))
    }

    /// Builds the answer from every notification notifyd holds about one payment, in accept
    /// order. The last payment notification gives the status (`SUCCESS`/`FAIL`; an Alipay+
    /// `paymentResult` S/F maps to the same); a successful `notifyVoid` accepted after it turns
    /// the status into `CANCELLED`. A successful void with no payment notification also answers
    /// `CANCELLED`: notifyd knows the payment was voided, even if it never carried its result.
    /// `None` when nothing found says anything about the payment (no notification, or only
    /// voids that failed): the caller answers [`unknown`](Self::unknown) or
    /// [`not_found`](Self::not_found).
    pub fn answer<'n>(found: impl IntoIterator<Item = &'n Notification>) -> Option<Self> {
        let mut answer: Option<InquiryResponse> = None;
        for n in found {
            match n {
                Notification::NotifyPayment(p) => {
                    answer = Some(InquiryResponse {
                        result: success(),
                        payment_id: Some(p.payment_id.clone()),
                        payment_request_id: Some(p.payment_request_id.clone()),
                        payment_amount: Some(p.payment_amount.clone()),
                        payment_time: p.payment_time.clone(),
                        payment_status: Some(p.payment_status.clone()),
                        payment_fail_reason: p.payment_fail_reason.clone(),
                    });
                }
                Notification::AlipayPlusNotifyPayment(p) => {
                    let ok = p.payment_result.is_success();
                    answer = Some(InquiryResponse {
                        result: success(),
                        payment_id: p.payment_id.clone(),
                        payment_request_id: Some(p.payment_request_id.clone()),
                        payment_amount: Some(p.payment_amount.clone()),
                        payment_time: p.payment_time.clone(),
                        payment_status: Some(if ok { "SUCCESS" } else { "FAIL" }.to_owned()),
                        payment_fail_reason: (!ok).then(|| {
                            p.payment_result
                                .result_message
                                .clone()
                                .unwrap_or_else(|| p.payment_result.result_code.clone())
                        }),
                    });
                }
                Notification::NotifyVoid(v) if v.void_result.is_success() => {
                    let a = answer.get_or_insert_with(|| InquiryResponse {
                        payment_id: Some(v.payment_id.clone()),
                        ..InquiryResponse::unknown()
                    });
                    a.result = success();
                    a.payment_status = Some("CANCELLED".to_owned());
                    a.payment_fail_reason = None;
                }
                Notification::NotifyVoid(_) => {}
            }
        }
        answer
    }

    /// The JSON answer body.
    pub fn encode(&self) -> Vec<u8> {
        crate::encode::to_vec(self)
    }
}

fn success() -> ResultInfo {
    ResultInfo::new(Status::S, SUCCESS, "success")
}
