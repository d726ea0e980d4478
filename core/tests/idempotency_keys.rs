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
                ("body.paymentId", json!("P2")),
                ("body.payToAmount.value", json!("1001")),
                ("body.customerId", json!("C2")),
                (
                    "body.customsDeclarationAmount",
                    json!({"currency":"JPY","value":"90"}),
                ),
            ],
        ),
        (
            void(),
            vec![
                ("url", json!("https://m.example/void2")),
                (
                    "body.voidResult",
                    json!({"resultStatus":"F","resultCode":"PROCESS_FAIL"}),
                ),
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

#[test]
fn result_codes_are_key_fields() {
    let failed = set(
        void(),
        "body.voidResult",
        json!({"resultStatus":"F","resultCode":"PROCESS_FAIL"}),
    );
    let other_code = set(
        failed.clone(),
        "body.voidResult.resultCode",
        json!("ORDER_STATUS_INVALID"),
    );
    assert_eq!(compare(&failed, &other_code), (true, false));
}

#[test]
fn result_messages_are_wording_not_key_fields() {
    // Review finding 13: "success" and "Success" are one result; a gateway retry that rewords
    // the message must be a duplicate, not REPEAT_REQ_INCONSISTENT.
    let worded = set(
        alipay(),
        "body.paymentResult.resultMessage",
        json!("success"),
    );
    let reworded = set(
        alipay(),
        "body.paymentResult.resultMessage",
        json!("Success"),
    );
    assert_eq!(compare(&worded, &reworded), (true, true));
    assert_eq!(compare(&alipay(), &worded), (true, true));
    let v = set(void(), "body.voidResult.resultMessage", json!("voided"));
    assert_eq!(compare(&void(), &v), (true, true));
}

/// The fingerprint of a notifyVoid as the first version computed it, written out from the
/// encoding documented in `idempotency/hash.rs`: domain, then url, status, code, message
/// (absent or a part), amount currency and value.
fn first_version_void_fingerprint(e: &Envelope) -> u128 {
    use notifyd_core::idempotency::KeyHasher;
    use notifyd_core::model::Notification;
    let Notification::NotifyVoid(n) = &e.notification else {
        panic!("a void")
    };
    let mut h = KeyHasher::new(0x20 | notifyd_core::Api::NotifyVoid.tag());
    h.part(e.url.as_bytes())
        .part(n.void_result.result_status.as_bytes())
        .part(n.void_result.result_code.as_bytes())
        .opt_part(n.void_result.result_message.as_deref().map(str::as_bytes));
    let a = n.void_amount.as_ref().unwrap();
    h.part(a.currency.as_bytes()).part(a.value.as_bytes());
    h.finish()
}

#[test]
fn stores_written_before_the_message_left_the_key_fields_still_deduplicate() {
    // Without a message the fingerprint is what the first version stored.
    let plain = env(&void());
    assert_eq!(
        plain.idempotency().1.0,
        first_version_void_fingerprint(&plain)
    );
    assert_eq!(plain.legacy_fingerprint(), None);
    // With one it differs, and the first version's value is offered for the comparison.
    let worded = env(&set(
        void(),
        "body.voidResult.resultMessage",
        json!("voided"),
    ));
    let old = first_version_void_fingerprint(&worded);
    assert_ne!(worded.idempotency().1.0, old);
    assert_eq!(worded.legacy_fingerprint().map(|f| f.0), Some(old));
}

#[test]
fn fields_added_later_leave_old_fingerprints_alone_when_absent() {
    let with_customs = set(
        alipay(),
        "body.customsDeclarationAmount",
        json!({"currency":"JPY","value":"90"}),
    );
    assert_eq!(compare(&alipay(), &with_customs), (true, false));
    assert_eq!(env(&with_customs).legacy_fingerprint(), None);
}

fn forwarding(v: &Value) -> Envelope {
    Envelope::parse_with(&mut serde_json::to_vec(v).unwrap(), &|_| {
        notifyd_core::model::ExtraFieldsPolicy::Forward
    })
    .unwrap()
}

#[test]
fn forwarded_fields_are_key_fields() {
    let base = forwarding(&payment());
    assert_eq!(
        base.idempotency(),
        env(&payment()).idempotency(),
        "no forwarded field, the same fingerprint as a refusing profile's"
    );
    let one = set(payment(), "body.acquirerId", json!("A1"));
    let other = set(payment(), "body.acquirerId", json!("A2"));
    let obj = set(payment(), "body.acquirerId", json!({"id": "A1"}));
    let (k0, f0) = base.idempotency();
    let (k1, f1) = forwarding(&one).idempotency();
    let (k2, f2) = forwarding(&other).idempotency();
    let (_, f3) = forwarding(&obj).idempotency();
    assert_eq!((k0, k1), (k1, k2), "same notification");
    assert!(
        f0 != f1 && f1 != f2 && f1 != f3,
        "a changed forwarded field is inconsistent"
    );
    let reordered = forwarding(&set(
        set(payment(), "body.b", json!({"y": "2", "x": "1"})),
        "body.a",
        json!("1"),
    ));
    let ordered = forwarding(&set(
        set(payment(), "body.a", json!("1")),
        "body.b",
        json!({"x": "1", "y": "2"}),
    ));
    assert_eq!(reordered.idempotency(), ordered.idempotency());
    assert_eq!(reordered.encode(), ordered.encode());
}
