//! Every result code of the seed tables, and what each one means for each API
//! (PROTOCOL.md §3.3, §4.3, §5.3, §5.4, §6.3).
//!
//! [`super::classify`] decides by status letter and a few named codes, not by this table, so a
//! code nobody listed still gets a sound answer. The table is for the operator: the daemon's log
//! line for a final refusal says, through [`known_code`], whether this API's table lists the code
//! (`listed=false` for a refund code on notifyPayment points at a receiver built from the wrong
//! page).

use crate::Api;

pub const SUCCESS: &str = "SUCCESS";
pub const UNKNOWN_EXCEPTION: &str = "UNKNOWN_EXCEPTION";
pub const SYSTEM_ERROR: &str = "SYSTEM_ERROR";
pub const REQUEST_TRAFFIC_EXCEED_LIMIT: &str = "REQUEST_TRAFFIC_EXCEED_LIMIT";
pub const REPEAT_REQ_INCONSISTENT: &str = "REPEAT_REQ_INCONSISTENT";
pub const PROCESS_FAIL: &str = "PROCESS_FAIL";
pub const PARAM_ILLEGAL: &str = "PARAM_ILLEGAL";
pub const INVALID_API: &str = "INVALID_API";
pub const ACCESS_DENIED: &str = "ACCESS_DENIED";
pub const ORDER_NOT_EXIST: &str = "ORDER_NOT_EXIST";
pub const ORDER_STATUS_INVALID: &str = "ORDER_STATUS_INVALID";
pub const PARTNER_STATUS_ABNORMAL: &str = "PARTNER_STATUS_ABNORMAL";
pub const REFUND_IN_PROCESS: &str = "REFUND_IN_PROCESS";
pub const REFUND_WINDOW_EXCEED: &str = "REFUND_WINDOW_EXCEED";
pub const REFUND_AMOUNT_EXCEED: &str = "REFUND_AMOUNT_EXCEED";
pub const PARTNER_BALANCE_NOT_ENOUGH: &str = "PARTNER_BALANCE_NOT_ENOUGH";
pub const CURRENCY_NOT_SUPPORT: &str = "CURRENCY_NOT_SUPPORT";
pub const EXPIRED_AGENT_TOKEN: &str = "EXPIRED_AGENT_TOKEN";
pub const INVALID_AGENT_TOKEN: &str = "INVALID_AGENT_TOKEN";
pub const INVALID_CLIENT: &str = "INVALID_CLIENT";
pub const INVALID_SIGNATURE: &str = "INVALID_SIGNATURE";
pub const KEY_NOT_FOUND: &str = "KEY_NOT_FOUND";
pub const MEDIA_TYPE_NOT_ACCEPTABLE: &str = "MEDIA_TYPE_NOT_ACCEPTABLE";
pub const METHOD_NOT_SUPPORTED: &str = "METHOD_NOT_SUPPORTED";
pub const NO_INTERFACE_DEF: &str = "NO_INTERFACE_DEF";

/// F codes that describe our side of the exchange (who we are, how we sign, which API we call),
/// never the payment: every notification to that receiver would get the same answer, so they
/// hold the endpoint rather than fail notifications one by one (PROTOCOL.md §5.3, CONTRACT.md §3).
pub const OUR_SIDE: [&str; 8] = [
    INVALID_SIGNATURE,
    KEY_NOT_FOUND,
    INVALID_CLIENT,
    ACCESS_DENIED,
    NO_INTERFACE_DEF,
    INVALID_API,
    MEDIA_TYPE_NOT_ACCEPTABLE,
    METHOD_NOT_SUPPORTED,
];

/// Whether an F with `code` is about our side ([`OUR_SIDE`]). Case-sensitive, as on the wire.
pub fn is_our_side(code: &str) -> bool {
    OUR_SIDE.contains(&code)
}

/// Further attempts a merchant's `ORDER_NOT_EXIST` on notifyPayment gets before it is final: the
/// merchant may answer before it has committed the order the payment is for (PROTOCOL.md §3.3).
pub const ORDER_NOT_EXIST_RETRIES: u8 = 2;

// Payment result codes the dispatcher *sends* in Alipay+ `paymentResult` (§5.4).
pub const BUSINESS_NOT_SUPPORT: &str = "BUSINESS_NOT_SUPPORT";
pub const EXPIRED_CODE: &str = "EXPIRED_CODE";
pub const INVALID_CONTRACT: &str = "INVALID_CONTRACT";
pub const INVALID_TOKEN: &str = "INVALID_TOKEN";
pub const MERCHANT_NOT_REGISTERED: &str = "MERCHANT_NOT_REGISTERED";
pub const ORDER_IS_CLOSED: &str = "ORDER_IS_CLOSED";
pub const PAYMENT_AMOUNT_EXCEED_LIMIT: &str = "PAYMENT_AMOUNT_EXCEED_LIMIT";
pub const PAYMENT_COUNT_EXCEED_LIMIT: &str = "PAYMENT_COUNT_EXCEED_LIMIT";
pub const REGULATION_RESTRICTION: &str = "REGULATION_RESTRICTION";
pub const RISK_REJECT: &str = "RISK_REJECT";
pub const UNAVAILABLE_PAYMENT_METHOD: &str = "UNAVAILABLE_PAYMENT_METHOD";
pub const USER_AMOUNT_EXCEED_LIMIT: &str = "USER_AMOUNT_EXCEED_LIMIT";
pub const USER_BALANCE_NOT_ENOUGH: &str = "USER_BALANCE_NOT_ENOUGH";
pub const USER_NOT_EXIST: &str = "USER_NOT_EXIST";
pub const USER_PAYMENT_VERIFICATION_FAILED: &str = "USER_PAYMENT_VERIFICATION_FAILED";
pub const USER_STATUS_ABNORMAL: &str = "USER_STATUS_ABNORMAL";

/// A `resultStatus` letter as the tables list it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// `S`: success.
    S,
    /// `F`: failed.
    F,
    /// `U`: unknown.
    U,
}

impl Status {
    /// The wire letter.
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::S => "S",
            Status::F => "F",
            Status::U => "U",
        }
    }
}

/// What the dispatcher does with an answer (the action vocabulary of PROTOCOL.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Acknowledged: mark delivered.
    Done,
    /// Permanent failure: stop, alert.
    PermFail,
    /// Retry on the normal schedule.
    Retry,
    /// The receiver is throttling: retry much later and slow the endpoint down.
    BackoffHard,
    /// The answer is about our side, not the payment: hold the endpoint, keep the notification
    /// pending without spending an attempt.
    Hold,
    /// Nothing reached the receiver through a failure of ours: retry soon without spending an
    /// attempt, and leave the endpoint alone.
    RetryUncounted,
}

/// One row of a result-code table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeInfo {
    /// The `resultCode`.
    pub code: &'static str,
    /// The status letter the table pairs it with.
    pub status: Status,
    /// What the dispatcher does with it.
    pub action: Action,
    /// True when this API should never answer with it: a copy-paste row from another API's
    /// page, or a code only another API's table lists. Worth a log line, not a different action.
    pub unexpected: bool,
}

const fn row(code: &'static str, status: Status, action: Action) -> CodeInfo {
    CodeInfo {
        code,
        status,
        action,
        unexpected: false,
    }
}

const fn stray(code: &'static str, status: Status, action: Action) -> CodeInfo {
    CodeInfo {
        code,
        status,
        action,
        unexpected: true,
    }
}

use Action::{BackoffHard, Done, Hold, PermFail, Retry};
use Status::{F, S, U};

/// Mini-program v1 notifyPayment, seed 000 as read by PROTOCOL.md §3.3 (refund codes are
/// copy-paste from `/v1/payments/refund`; handled by letter but flagged).
const NOTIFY_PAYMENT: &[CodeInfo] = &[
    row(SUCCESS, S, Done),
    row(UNKNOWN_EXCEPTION, U, Retry),
    row(REQUEST_TRAFFIC_EXCEED_LIMIT, U, BackoffHard),
    stray(REFUND_IN_PROCESS, U, Retry),
    row(REPEAT_REQ_INCONSISTENT, F, PermFail),
    row(PROCESS_FAIL, F, PermFail),
    row(PARAM_ILLEGAL, F, PermFail),
    row(INVALID_API, F, Hold),
    row(ACCESS_DENIED, F, Hold),
    row(PARTNER_STATUS_ABNORMAL, F, PermFail),
    row(ORDER_NOT_EXIST, F, Retry),
    row(ORDER_STATUS_INVALID, F, PermFail),
    stray(REFUND_WINDOW_EXCEED, F, PermFail),
    stray(REFUND_AMOUNT_EXCEED, F, PermFail),
    stray(PARTNER_BALANCE_NOT_ENOUGH, F, PermFail),
    stray(CURRENCY_NOT_SUPPORT, F, PermFail),
    row(EXPIRED_AGENT_TOKEN, F, PermFail),
    row(INVALID_AGENT_TOKEN, F, PermFail),
];

/// Mini-program v2 notifyVoid, seed 004 completed by PROTOCOL.md §6.3. The common error-code
/// list gives REQUEST_TRAFFIC_EXCEED_LIMIT the letter F.
const NOTIFY_VOID: &[CodeInfo] = &[
    row(SUCCESS, S, Done),
    row(SYSTEM_ERROR, U, Retry),
    row(UNKNOWN_EXCEPTION, U, Retry),
    row(REQUEST_TRAFFIC_EXCEED_LIMIT, F, BackoffHard),
    row(PROCESS_FAIL, F, PermFail),
    row(PARAM_ILLEGAL, F, PermFail),
    row(INVALID_API, F, Hold),
    row(ACCESS_DENIED, F, Hold),
];

/// Alipay+ notifyPayment response codes, seed 003 and PROTOCOL.md §5.3.
const ALIPAY_PLUS_NOTIFY_PAYMENT: &[CodeInfo] = &[
    row(SUCCESS, S, Done),
    row(UNKNOWN_EXCEPTION, U, Retry),
    row(REQUEST_TRAFFIC_EXCEED_LIMIT, U, BackoffHard),
    row(ACCESS_DENIED, F, Hold),
    row(INVALID_CLIENT, F, Hold),
    row(INVALID_SIGNATURE, F, Hold),
    row(KEY_NOT_FOUND, F, Hold),
    row(MEDIA_TYPE_NOT_ACCEPTABLE, F, Hold),
    row(METHOD_NOT_SUPPORTED, F, Hold),
    row(NO_INTERFACE_DEF, F, Hold),
    row(PARAM_ILLEGAL, F, PermFail),
    row(PROCESS_FAIL, F, PermFail),
    row(REPEAT_REQ_INCONSISTENT, F, PermFail),
];

/// Codes the dispatcher may put in an Alipay+ `paymentResult` (§5.4), with their letter. These
/// are values we send, never answers we expect back.
pub const PAYMENT_RESULT_CODES: &[(&str, Status)] = &[
    (SUCCESS, S),
    (BUSINESS_NOT_SUPPORT, F),
    (CURRENCY_NOT_SUPPORT, F),
    (EXPIRED_CODE, F),
    (INVALID_CONTRACT, F),
    (INVALID_TOKEN, F),
    (MERCHANT_NOT_REGISTERED, F),
    (ORDER_IS_CLOSED, F),
    (PAYMENT_AMOUNT_EXCEED_LIMIT, F),
    (PAYMENT_COUNT_EXCEED_LIMIT, F),
    (PROCESS_FAIL, F),
    (REGULATION_RESTRICTION, F),
    (RISK_REJECT, F),
    (UNAVAILABLE_PAYMENT_METHOD, F),
    (USER_AMOUNT_EXCEED_LIMIT, F),
    (USER_BALANCE_NOT_ENOUGH, F),
    (USER_NOT_EXIST, F),
    (USER_PAYMENT_VERIFICATION_FAILED, F),
    (USER_STATUS_ABNORMAL, F),
];

/// The response-code table of `api`, in seed order.
pub fn table(api: Api) -> &'static [CodeInfo] {
    match api {
        Api::NotifyPayment => NOTIFY_PAYMENT,
        Api::NotifyVoid => NOTIFY_VOID,
        Api::AlipayPlusNotifyPayment => ALIPAY_PLUS_NOTIFY_PAYMENT,
    }
}

/// What the seed tables say about `code` in an answer from `api`. A code only another API's
/// table lists comes back with `unexpected: true` (and that table's letter); a code no table
/// lists is `None`. Case-sensitive, as on the wire.
pub fn known_code(api: Api, code: &str) -> Option<CodeInfo> {
    if let Some(info) = table(api).iter().find(|c| c.code == code) {
        return Some(*info);
    }
    Api::ALL
        .iter()
        .flat_map(|&other| table(other))
        .find(|c| c.code == code)
        .map(|c| CodeInfo {
            unexpected: true,
            ..*c
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_codes_are_expected_unless_copy_pasted() {
        let info = known_code(Api::NotifyPayment, ORDER_NOT_EXIST).unwrap();
        assert_eq!(
            (info.status, info.action, info.unexpected),
            (F, Retry, false)
        );
        let info = known_code(Api::NotifyPayment, REFUND_WINDOW_EXCEED).unwrap();
        assert_eq!((info.action, info.unexpected), (PermFail, true));
        let info = known_code(Api::NotifyPayment, REFUND_IN_PROCESS).unwrap();
        assert_eq!(
            (info.status, info.action, info.unexpected),
            (U, Retry, true)
        );
    }

    #[test]
    fn other_apis_codes_are_unexpected() {
        let info = known_code(Api::NotifyPayment, SYSTEM_ERROR).unwrap();
        assert_eq!(
            (info.status, info.action, info.unexpected),
            (U, Retry, true)
        );
        let info = known_code(Api::NotifyVoid, INVALID_SIGNATURE).unwrap();
        assert_eq!((info.action, info.unexpected), (Hold, true));
        let info = known_code(Api::AlipayPlusNotifyPayment, EXPIRED_AGENT_TOKEN).unwrap();
        assert!(info.unexpected);
        assert_eq!(known_code(Api::NotifyVoid, "NO_SUCH_CODE"), None);
        assert_eq!(known_code(Api::NotifyVoid, "success"), None);
        // Payment result codes are ours to send, not answers.
        assert_eq!(known_code(Api::AlipayPlusNotifyPayment, RISK_REJECT), None);
    }

    #[test]
    fn traffic_limit_keys_on_the_code_not_the_letter() {
        for api in Api::ALL {
            let info = known_code(api, REQUEST_TRAFFIC_EXCEED_LIMIT).unwrap();
            assert_eq!(
                (info.action, info.unexpected),
                (BackoffHard, false),
                "{api}"
            );
        }
        assert_eq!(
            known_code(Api::NotifyVoid, REQUEST_TRAFFIC_EXCEED_LIMIT)
                .unwrap()
                .status,
            F
        );
    }

    #[test]
    fn tables_have_no_duplicates_and_codes_fit_64_chars() {
        for api in Api::ALL {
            let t = table(api);
            for (i, a) in t.iter().enumerate() {
                assert!(a.code.len() <= 64);
                assert!(
                    t[i + 1..].iter().all(|b| b.code != a.code),
                    "{api}: {}",
                    a.code
                );
            }
        }
    }
}
