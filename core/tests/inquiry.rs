//! inquiryPayment answers built from held notifications (CONTRACT.md §2).

use notifyd_core::Api;
use notifyd_core::model::{InquiryResponse, Notification};
use serde_json::{Value, json};

fn n(api: Api, v: Value) -> Notification {
    Notification::parse(api, &mut serde_json::to_vec(&v).unwrap()).unwrap()
}

fn payment(status: &str) -> Notification {
    let mut v = json!({"partnerId":"P1","paymentId":"PAY1","paymentRequestId":"REQ1",
        "paymentAmount":{"currency":"USD","value":"10000"},"paymentStatus":status});
    if status == "SUCCESS" {
        v["paymentTime"] = json!("2019-11-27T12:01:01+08:30");
    } else {
        v["paymentFailReason"] = json!("insufficient funds");
    }
    n(Api::NotifyPayment, v)
}

fn void(status: &str) -> Notification {
    n(
        Api::NotifyVoid,
        json!({"voidResult":{"resultStatus":status,"resultCode":if status == "S" {"SUCCESS"} else {"PROCESS_FAIL"}},"voidRequestId":"V1","paymentId":"PAY1"}),
    )
}

fn answer(found: &[Notification]) -> Value {
    let a = InquiryResponse::answer(found).unwrap_or_else(InquiryResponse::unknown);
    serde_json::from_slice(&a.encode()).unwrap()
}

#[test]
fn unknown_payment_is_unknown_not_order_not_exist() {
    // Seed 002: F ORDER_NOT_EXIST "can be treated as payment failure"; notifyd holding nothing
    // (yet) must say U, retry, unless told it is authoritative.
    assert_eq!(InquiryResponse::answer(&[]), None);
    let a = answer(&[]);
    assert_eq!(a["result"]["resultStatus"], "U");
    assert_eq!(a["result"]["resultCode"], "UNKNOWN_EXCEPTION");
    assert!(a.get("paymentStatus").is_none());
    let f: Value = serde_json::from_slice(&InquiryResponse::not_found().encode()).unwrap();
    assert_eq!(f["result"]["resultStatus"], "F");
    assert_eq!(f["result"]["resultCode"], "ORDER_NOT_EXIST");
    assert_eq!(
        InquiryResponse::answer(&[void("F")]),
        None,
        "a failed void says nothing"
    );
}

#[test]
fn payment_status_comes_from_the_notification() {
    let a = answer(&[payment("SUCCESS")]);
    assert_eq!(
        a["result"],
        json!({"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"})
    );
    assert_eq!(a["paymentStatus"], "SUCCESS");
    assert_eq!(a["paymentId"], "PAY1");
    assert_eq!(a["paymentRequestId"], "REQ1");
    assert_eq!(
        a["paymentAmount"],
        json!({"currency":"USD","value":"10000"})
    );
    assert_eq!(a["paymentTime"], "2019-11-27T12:01:01+08:30");
    let f = answer(&[payment("FAIL")]);
    assert_eq!(f["paymentStatus"], "FAIL");
    assert_eq!(f["paymentFailReason"], "insufficient funds");
}

#[test]
fn a_later_successful_void_cancels() {
    assert_eq!(
        answer(&[payment("SUCCESS"), void("S")])["paymentStatus"],
        "CANCELLED"
    );
    assert_eq!(
        answer(&[payment("SUCCESS"), void("F")])["paymentStatus"],
        "SUCCESS",
        "a failed void changes nothing"
    );
    assert_eq!(
        answer(&[void("S"), payment("SUCCESS")])["paymentStatus"],
        "SUCCESS",
        "only a later void cancels"
    );
    let only_void = answer(&[void("S")]);
    assert_eq!(only_void["paymentStatus"], "CANCELLED");
    assert_eq!(only_void["result"]["resultStatus"], "S");
}

#[test]
fn alipayplus_results_map_to_payment_status() {
    let s = n(
        Api::AlipayPlusNotifyPayment,
        json!({"paymentResult":{"resultStatus":"S","resultCode":"SUCCESS"},
        "paymentRequestId":"R","paymentId":"P","paymentAmount":{"currency":"JPY","value":"100"},
        "paymentTime":"2020-01-01T12:01:01+08:30","customerId":"C"}),
    );
    assert_eq!(answer(&[s])["paymentStatus"], "SUCCESS");
    let f = n(
        Api::AlipayPlusNotifyPayment,
        json!({"paymentResult":{"resultStatus":"F","resultCode":"USER_BALANCE_NOT_ENOUGH"},
        "paymentRequestId":"R","paymentAmount":{"currency":"JPY","value":"100"}}),
    );
    let a = answer(&[f]);
    assert_eq!(a["paymentStatus"], "FAIL");
    assert_eq!(a["paymentFailReason"], "USER_BALANCE_NOT_ENOUGH");
}
