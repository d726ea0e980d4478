//! The notification APIs notifyd dispatches, by their contract names.

use std::fmt;

/// One of the three notification APIs of CONTRACT.md §2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Api {
    /// Mini-program wallet v1 `POST /v1/payments/notifyPayment` (seed 000).
    NotifyPayment,
    /// Mini-program wallet v2 `POST /v2/payments/notifyVoid` (seed 004).
    NotifyVoid,
    /// Alipay+ `POST /aps/api/v1/payments/notifyPayment` (seed 003).
    AlipayPlusNotifyPayment,
}

impl Api {
    /// Every API, in a fixed order (used for metric label pre-registration and tests).
    pub const ALL: [Api; 3] = [
        Api::NotifyPayment,
        Api::NotifyVoid,
        Api::AlipayPlusNotifyPayment,
    ];

    /// The name used in the ingest envelope's `api` field and in metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Api::NotifyPayment => "notifyPayment",
            Api::NotifyVoid => "notifyVoid",
            Api::AlipayPlusNotifyPayment => "alipayplus.notifyPayment",
        }
    }

    /// Parses the envelope's `api` value; names are case-sensitive as in the contract.
    pub fn from_name(name: &str) -> Option<Api> {
        match name {
            "notifyPayment" => Some(Api::NotifyPayment),
            "notifyVoid" => Some(Api::NotifyVoid),
            "alipayplus.notifyPayment" => Some(Api::AlipayPlusNotifyPayment),
            _ => None,
        }
    }

    /// A stable one-byte tag, used where the API must be part of a hash or a stored record.
    pub const fn tag(self) -> u8 {
        match self {
            Api::NotifyPayment => 1,
            Api::NotifyVoid => 2,
            Api::AlipayPlusNotifyPayment => 3,
        }
    }

    /// Inverse of [`Api::tag`].
    pub const fn from_tag(tag: u8) -> Option<Api> {
        match tag {
            1 => Some(Api::NotifyPayment),
            2 => Some(Api::NotifyVoid),
            3 => Some(Api::AlipayPlusNotifyPayment),
            _ => None,
        }
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tags_round_trip() {
        for api in Api::ALL {
            assert_eq!(Api::from_name(api.as_str()), Some(api));
            assert_eq!(Api::from_tag(api.tag()), Some(api));
        }
        assert_eq!(Api::from_name("NotifyPayment"), None);
        assert_eq!(Api::from_name("inquiryPayment"), None);
        assert_eq!(Api::from_tag(0), None);
    }
}
