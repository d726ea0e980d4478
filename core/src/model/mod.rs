//! The protocol's messages as typed values, and the validation that builds them.
//!
//! Parsing *is* validation: a [`Notification`] exists only if its body keeps every rule of its
//! API's field table (PROTOCOL.md §3, §5, §6). The struct field order is the encoding order.
//!
//! Fields the API does not define are refused (`PARAM_ILLEGAL`, "is not a field of …") rather than
//! dropped: dropping would silently change what the gateway asked to send. A profile may instead
//! forward them ([`extra`]): then they must keep that module's rules, and they travel beside the
//! message (in the [`Envelope`](crate::Envelope)), not inside its typed fields.

pub mod alipayplus;
pub mod amount;
pub mod datetime;
pub mod extra;
pub(crate) mod fields;
pub mod inquiry;
pub mod notify_payment;
pub mod notify_void;
pub mod result_info;

use simd_json::BorrowedValue as Value;

pub use alipayplus::AlipayPlusNotifyPayment;
pub use amount::Amount;
pub use extra::{ExtraFields, ExtraFieldsPolicy, ExtraValue};
pub use inquiry::{InquiryRequest, InquiryResponse};
pub use notify_payment::NotifyPayment;
pub use notify_void::NotifyVoid;
pub use result_info::ResultInfo;

use crate::api::Api;
use crate::error::ValidationError;

/// A validated notification of one of the three APIs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// Mini-program v1 `notifyPayment`.
    NotifyPayment(NotifyPayment),
    /// Mini-program v2 `notifyVoid`.
    NotifyVoid(NotifyVoid),
    /// Alipay+ `notifyPayment`.
    AlipayPlusNotifyPayment(AlipayPlusNotifyPayment),
}

impl Notification {
    /// Validates a parsed JSON body as a message of `api`; fields the API does not define are
    /// refused. Error paths are relative to the body.
    pub fn from_value(api: Api, body: &Value<'_>) -> Result<Self, ValidationError> {
        Notification::from_value_with(api, body, ExtraFieldsPolicy::Refuse).map(|(n, _)| n)
    }

    /// Validates a parsed JSON body as a message of `api`, treating the fields its table does not
    /// define as `policy` says; forwarded ones come back beside the message.
    pub fn from_value_with(
        api: Api,
        body: &Value<'_>,
        policy: ExtraFieldsPolicy,
    ) -> Result<(Self, ExtraFields), ValidationError> {
        let mut unknown = Vec::new();
        let sink = (policy == ExtraFieldsPolicy::Forward).then_some(&mut unknown);
        let n = match api {
            Api::NotifyPayment => NotifyPayment::parse(body, sink).map(Notification::NotifyPayment),
            Api::NotifyVoid => NotifyVoid::parse(body, sink).map(Notification::NotifyVoid),
            Api::AlipayPlusNotifyPayment => AlipayPlusNotifyPayment::parse(body, sink)
                .map(Notification::AlipayPlusNotifyPayment),
        }?;
        Ok((n, ExtraFields::from_unknown(&unknown)?))
    }

    /// Parses and validates raw body bytes of `api` (the buffer is used as scratch by the SIMD parser).
    pub fn parse(api: Api, bytes: &mut [u8]) -> Result<Self, ValidationError> {
        let value = fields::parse_json(bytes)?;
        Notification::from_value(api, &value)
    }

    /// Reads a body notifyd stored itself (inquiry, the operator API): it was validated at accept
    /// time under its profile's policy, so forwarded fields are read past, not refused.
    pub fn parse_stored(api: Api, bytes: &mut [u8]) -> Result<Self, ValidationError> {
        let value = fields::parse_json(bytes)?;
        Notification::from_value_with(api, &value, ExtraFieldsPolicy::Forward).map(|(n, _)| n)
    }

    /// Which API this message belongs to.
    pub fn api(&self) -> Api {
        match self {
            Notification::NotifyPayment(_) => Api::NotifyPayment,
            Notification::NotifyVoid(_) => Api::NotifyVoid,
            Notification::AlipayPlusNotifyPayment(_) => Api::AlipayPlusNotifyPayment,
        }
    }

    /// The payment this message is about, for per-payment ordering and inquiry: `paymentId`, or
    /// `paymentRequestId` where there is no `paymentId` (CONTRACT.md §3).
    pub fn payment_key(&self) -> &str {
        match self {
            Notification::NotifyPayment(n) => &n.payment_id,
            Notification::NotifyVoid(n) => &n.payment_id,
            Notification::AlipayPlusNotifyPayment(n) => {
                n.payment_id.as_deref().unwrap_or(&n.payment_request_id)
            }
        }
    }

    /// `paymentId`, where the message has one.
    pub fn payment_id(&self) -> Option<&str> {
        match self {
            Notification::NotifyPayment(n) => Some(&n.payment_id),
            Notification::NotifyVoid(n) => Some(&n.payment_id),
            Notification::AlipayPlusNotifyPayment(n) => n.payment_id.as_deref(),
        }
    }

    /// `paymentRequestId`, where the message has one (`notifyVoid` has none).
    pub fn payment_request_id(&self) -> Option<&str> {
        match self {
            Notification::NotifyPayment(n) => Some(&n.payment_request_id),
            Notification::NotifyVoid(_) => None,
            Notification::AlipayPlusNotifyPayment(n) => Some(&n.payment_request_id),
        }
    }

    /// `partnerId`, where the message has one (only mini-program v1 `notifyPayment`).
    pub fn partner_id(&self) -> Option<&str> {
        match self {
            Notification::NotifyPayment(n) => Some(&n.partner_id),
            _ => None,
        }
    }
}

pub(crate) fn owned(s: Option<&str>) -> Option<String> {
    s.map(str::to_owned)
}
