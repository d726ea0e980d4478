//! CONTRACT.md §2: which changes make a repeat inconsistent, which make it a different
//! notification, and which are the same notification.

use notifyd_core::Envelope;
use serde_json::{Value, json};

fn env(v: &Value) -> Envelope {
    Envelope::parse(&mut serde_json::to_vec(v).unwrap()).unwrap()
}

fn set(mut v: Value, path: &str, new: Value) -> Value {
    let mut cur = &mut v;
    let parts: Vec<&str> = path.split('.').collect();
    for p in &parts[..parts.len() - 1] {
        cur = cur.get_mut(*p).unwrap();
    }
    cur[parts[parts.len() - 1]] = new;
    v
}

fn payment() -> Value {
    json!({"api":"notifyPayment","url":"https://m.example/notify","body":{
        "partnerId":"P1","paymentId":"PAY1","paymentRequestId":"REQ1",
        "paymentAmount":{"currency":"USD","value":"100"},"paymentStatus":"SUCCESS",
        "paymentTime":"2019-11-27T12:01:01+08:30"}})
}

fn alipay() -> Value {
    json!({"api":"alipayplus.notifyPayment","url":"https://a.example/n","body":{
        "paymentResult":{"resultStatus":"S","resultCode":"SUCCESS"},"paymentRequestId":"R1","paymentId":"P1",
        "paymentAmount":{"currency":"JPY","value":"100"},"payToAmount":{"currency":"KRW","value":"1000"},
        "paymentTime":"2020-01-01T12:01:01+08:30","customerId":"C1"}})
}

fn void() -> Value {
    json!({"api":"notifyVoid","url":"https://m.example/void","body":{
        "voidResult":{"resultStatus":"S","resultCode":"SUCCESS"},"voidRequestId":"V1","paymentId":"PAY1",
        "voidAmount":{"currency":"USD","value":"100"}}})
}

/// (same key, same fingerprint) for a changed copy.
fn compare(base: &Value, changed: &Value) -> (bool, bool) {
    let (k1, f1) = env(base).idempotency();
    let (k2, f2) = env(changed).idempotency();
    (k1 == k2, f1 == f2)
}

#[test]
fn key_fields_change_the_fingerprint_not_the_key() {
    let cases = [
        (
            payment(),
            vec![
                ("url", json!("https://other.example/notify")),
                ("body.paymentId", json!("PAY2")),
                ("body.paymentAmount.value", json!("101")),
                ("body.paymentAmount.currency", json!("EUR")),
                ("body.paymentStatus", json!("FAIL")),
            ],
        ),
        (
            alipay(),
            vec![
                ("url", json!("https://b.example/n")),
                ("body.paymentAmount.value", json!("101")),
                ("body.paymentResult.resultCode", json!("SUCCESS2")),
                ("body.paymentResult.resultMessage", json!("ok")),
                ("body.paymentId", json!("P2")),
                ("body.payToAmount.value", json!("1001")),
                ("body.customerId", json!("C2")),
            ],
        ),
        (
            void(),
            vec![
                ("url", json!("https://m.example/void2")),
                ("body.voidResult.resultStatus", json!("F")),
                ("body.voidAmount.value", json!("99")),
            ],
        ),
    ];
    for (base, changes) in cases {
        for (path, v) in changes {
            assert_eq!(
                compare(&base, &set(base.clone(), path, v)),
                (true, false),
                "{path}"
            );
        }
    }
}

#[test]
fn key_parts_make_a_different_notification() {
    let cases = [
        (
            payment(),
            vec![
                ("profile", json!("other")),
                ("body.partnerId", json!("P2")),
                ("body.paymentRequestId", json!("REQ2")),
            ],
        ),
        (
            alipay(),
            vec![
                ("profile", json!("other")),
                ("body.paymentRequestId", json!("R2")),
            ],
        ),
        (
            void(),
            vec![
                ("profile", json!("other")),
                ("body.paymentId", json!("PAY2")),
                ("body.voidRequestId", json!("V2")),
            ],
        ),
    ];
    for (base, changes) in cases {
        for (path, v) in changes {
            assert!(!compare(&base, &set(base.clone(), path, v)).0, "{path}");
        }
    }
}

#[test]
fn other_fields_do_not_matter() {
    assert_eq!(
        compare(
            &payment(),
            &set(
                payment(),
                "body.paymentTime",
                json!("2019-11-27T12:01:02+08:30")
            )
        ),
        (true, true)
    );
    assert_eq!(
        compare(&payment(), &set(payment(), "body.extendInfo", json!("{}"))),
        (true, true)
    );
    assert_eq!(
        compare(&void(), &set(void(), "body.voidId", json!("X"))),
        (true, true)
    );
    let explicit_default = set(payment(), "profile", json!("default"));
    assert_eq!(
        compare(&payment(), &explicit_default),
        (true, true),
        "absent profile is the default profile"
    );
}

#[test]
fn the_same_ids_under_another_api_are_another_notification() {
    let a = env(&alipay());
    let mut p = alipay();
    p["api"] = json!("notifyPayment");
    p["body"] = payment()["body"].clone();
    p["body"]["paymentRequestId"] = json!("R1");
    assert_ne!(a.idempotency().0, env(&p).idempotency().0);
}
