//! Every rule of the field tables (PROTOCOL.md §2–§6), from the seed fixtures outwards:
//! each invalid case with the exact message a gateway will read.

use notifyd_core::model::{ExtraFieldsPolicy, InquiryRequest, Notification};
use notifyd_core::{Api, Envelope};
use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(&path).expect(&path)).expect("fixture is JSON")
}

fn base(api: Api) -> Value {
    match api {
        Api::NotifyPayment => fixture("notify_payment.json"),
        Api::NotifyVoid => fixture("notify_void.json"),
        Api::AlipayPlusNotifyPayment => fixture("alipayplus_notify_payment.json"),
    }
}

fn parse(api: Api, body: &Value) -> Result<Notification, String> {
    let mut bytes = serde_json::to_vec(body).unwrap();
    Notification::parse(api, &mut bytes).map_err(|e| e.to_string())
}

/// Sets (or with `None`, removes) the field at a dotted path.
fn with(mut v: Value, path: &str, new: Option<Value>) -> Value {
    let mut cur = &mut v;
    let parts: Vec<&str> = path.split('.').collect();
    for p in &parts[..parts.len() - 1] {
        cur = cur.get_mut(*p).expect(path);
    }
    let obj = cur.as_object_mut().expect(path);
    match new {
        Some(n) => obj.insert(parts[parts.len() - 1].to_owned(), n),
        None => obj.remove(parts[parts.len() - 1]),
    };
    v
}

fn expect_err(api: Api, body: Value, msg: &str) {
    assert_eq!(
        parse(api, &body).err().as_deref(),
        Some(msg),
        "body: {body}"
    );
}

#[test]
fn seed_fixtures_are_valid() {
    for api in Api::ALL {
        let n = parse(api, &base(api)).unwrap();
        assert_eq!(n.api(), api);
    }
}

#[test]
fn notify_payment_encoding_is_the_signed_vector_body() {
    // The sigvec body was produced from the field table in table order; our canonical encoding
    // must give the very bytes that were signed.
    let raw = std::fs::read(format!(
        "{}/tests/fixtures/notify_payment.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let expected = raw.strip_suffix(b"\n").unwrap().to_vec();
    let n = Notification::parse(Api::NotifyPayment, &mut raw.clone()).unwrap();
    assert_eq!(
        String::from_utf8(notifyd_core::encode::encode(&n)).unwrap(),
        String::from_utf8(expected).unwrap()
    );
}

#[test]
fn encoding_is_canonical_whatever_the_input_order_and_spacing() {
    let n = parse(
        Api::AlipayPlusNotifyPayment,
        &base(Api::AlipayPlusNotifyPayment),
    )
    .unwrap();
    let out = String::from_utf8(notifyd_core::encode::encode(&n)).unwrap();
    assert_eq!(
        out,
        r#"{"paymentResult":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"},"paymentRequestId":"20200101234567890132","paymentId":"202001012345678901322222","paymentAmount":{"currency":"JPY","value":"100"},"payToAmount":{"currency":"KRW","value":"1000"},"paymentTime":"2020-01-01T12:01:01+08:30","customerId":"1234567"}"#
    );
    let v = parse(Api::NotifyVoid, &base(Api::NotifyVoid)).unwrap();
    let out = String::from_utf8(notifyd_core::encode::encode(&v)).unwrap();
    assert_eq!(
        out,
        r#"{"voidResult":{"resultCode":"SUCCESS","resultStatus":"S"},"voidRequestId":"201231231313123124","voidId":"20191127190741010007013213190","paymentId":"20191127190741010007013213121","voidAmount":{"currency":"USD","value":"1000"},"voidTime":"2021-06-08T12:12:12+08:00"}"#
    );
}

#[test]
fn null_optionals_are_omitted_on_the_wire() {
    let body = with(base(Api::NotifyVoid), "voidId", Some(Value::Null));
    let body = with(body, "voidAmount", Some(Value::Null));
    let n = parse(Api::NotifyVoid, &body).unwrap();
    let out = String::from_utf8(notifyd_core::encode::encode(&n)).unwrap();
    assert!(
        !out.contains("voidId") && !out.contains("voidAmount") && !out.contains("null"),
        "{out}"
    );
}

#[test]
fn strings_with_escapes_and_unicode_survive_encoding() {
    let tricky = "a\"b\\c\n\u{0001}é€😀/";
    let body = with(base(Api::NotifyPayment), "extendInfo", Some(json!(tricky)));
    let n = parse(Api::NotifyPayment, &body).unwrap();
    let mut out = notifyd_core::encode::encode(&n);
    let back: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(back["extendInfo"], tricky);
    assert_eq!(
        Notification::parse(Api::NotifyPayment, &mut out).unwrap(),
        n
    );
}

/// (api, dotted field path, max characters, body adjustments needed for the field to be allowed)
type Adjustments = Vec<(&'static str, Value)>;

fn length_limits() -> Vec<(Api, &'static str, usize, Adjustments)> {
    let fail = vec![("paymentStatus", json!("FAIL"))];
    vec![
        (Api::NotifyPayment, "partnerId", 32, vec![]),
        (Api::NotifyPayment, "paymentId", 64, vec![]),
        (Api::NotifyPayment, "paymentRequestId", 64, vec![]),
        (Api::NotifyPayment, "paymentFailReason", 256, fail),
        (Api::NotifyPayment, "extendInfo", 4096, vec![]),
        (Api::NotifyVoid, "voidRequestId", 64, vec![]),
        (Api::NotifyVoid, "voidId", 64, vec![]),
        (Api::NotifyVoid, "paymentId", 64, vec![]),
        (Api::NotifyVoid, "voidSource", 4096, vec![]),
        (Api::NotifyVoid, "extendInfo", 4096, vec![]),
        (
            Api::NotifyVoid,
            "voidResult.resultCode",
            64,
            vec![("voidResult.resultStatus", json!("F"))],
        ),
        (Api::NotifyVoid, "voidResult.resultMessage", 256, vec![]),
        (Api::AlipayPlusNotifyPayment, "paymentRequestId", 64, vec![]),
        (Api::AlipayPlusNotifyPayment, "paymentId", 64, vec![]),
        (Api::AlipayPlusNotifyPayment, "customerId", 64, vec![]),
        (
            Api::AlipayPlusNotifyPayment,
            "passThroughInfo",
            20_000,
            vec![],
        ),
        (
            Api::AlipayPlusNotifyPayment,
            "paymentResult.resultCode",
            64,
            // Only an F carries a code other than SUCCESS; payToAmount is S-only.
            vec![
                ("paymentResult.resultStatus", json!("F")),
                ("payToAmount", Value::Null),
            ],
        ),
        (
            Api::AlipayPlusNotifyPayment,
            "paymentResult.resultMessage",
            256,
            vec![],
        ),
    ]
}

#[test]
fn every_maximum_length_is_exact_and_counted_in_characters() {
    for (api, path, max, adjust) in length_limits() {
        let mut b = base(api);
        for (k, v) in &adjust {
            b = with(b, k, Some(v.clone()));
        }
        for ch in ["a", "é", "😀"] {
            let at = with(b.clone(), path, Some(json!(ch.repeat(max))));
            assert!(
                parse(api, &at).is_ok(),
                "{api} {path}: {max} x {ch:?} must pass"
            );
            let over = with(b.clone(), path, Some(json!(ch.repeat(max + 1))));
            assert_eq!(
                parse(api, &over).err(),
                Some(format!("{path}: must be at most {max} characters")),
                "{api} {path} with {ch:?}"
            );
        }
    }
}

#[test]
fn required_fields() {
    let cases = [
        (
            Api::NotifyPayment,
            vec![
                "partnerId",
                "paymentId",
                "paymentRequestId",
                "paymentAmount",
                "paymentStatus",
            ],
        ),
        (
            Api::NotifyVoid,
            vec!["voidResult", "voidRequestId", "paymentId"],
        ),
        (
            Api::AlipayPlusNotifyPayment,
            vec!["paymentResult", "paymentRequestId", "paymentAmount"],
        ),
    ];
    for (api, fields) in cases {
        for f in fields {
            expect_err(api, with(base(api), f, None), &format!("{f}: is required"));
            expect_err(
                api,
                with(base(api), f, Some(Value::Null)),
                &format!("{f}: is required"),
            );
        }
    }
    for f in ["paymentAmount.currency", "paymentAmount.value"] {
        expect_err(
            Api::NotifyPayment,
            with(base(Api::NotifyPayment), f, None),
            &format!("{f}: is required"),
        );
    }
    expect_err(
        Api::NotifyVoid,
        with(base(Api::NotifyVoid), "voidResult.resultStatus", None),
        "voidResult.resultStatus: is required",
    );
}

#[test]
fn alipayplus_conditional_fields_follow_the_result() {
    let api = Api::AlipayPlusNotifyPayment;
    for f in ["paymentId", "paymentTime", "customerId"] {
        expect_err(
            api,
            with(base(api), f, None),
            &format!("{f}: is required when paymentResult.resultStatus is S"),
        );
    }
    let failed = with(
        base(api),
        "paymentResult",
        Some(json!({"resultStatus": "F", "resultCode": "USER_BALANCE_NOT_ENOUGH"})),
    );
    expect_err(
        api,
        failed.clone(),
        "payToAmount: is only allowed when paymentResult.resultStatus is S",
    );
    let failed = with(failed, "payToAmount", None);
    let failed = with(
        with(with(failed, "paymentId", None), "paymentTime", None),
        "customerId",
        None,
    );
    assert!(
        parse(api, &failed).is_ok(),
        "F needs none of the S-only fields"
    );
    let same_currency = with(
        base(api),
        "payToAmount",
        Some(json!({"currency": "JPY", "value": "100"})),
    );
    expect_err(
        api,
        same_currency,
        "payToAmount: must be omitted when its currency equals paymentAmount.currency",
    );
    expect_err(
        api,
        with(base(api), "paymentResult.resultStatus", Some(json!("U"))),
        "paymentResult.resultStatus: must be S or F",
    );
}

#[test]
fn allowed_values() {
    for bad in [
        "Éxito",
        "FALLO",
        "success",
        "PROCESSING",
        "CANCELLED",
        "SUCCESSFUL",
    ] {
        expect_err(
            Api::NotifyPayment,
            with(base(Api::NotifyPayment), "paymentStatus", Some(json!(bad))),
            "paymentStatus: must be SUCCESS or FAIL",
        );
    }
    expect_err(
        Api::NotifyPayment,
        with(
            base(Api::NotifyPayment),
            "paymentFailReason",
            Some(json!("no funds")),
        ),
        "paymentFailReason: is only allowed when paymentStatus is FAIL",
    );
    for bad in ["U", "A", "R", "s", "SF", "SUCCESS"] {
        expect_err(
            Api::NotifyVoid,
            with(
                base(Api::NotifyVoid),
                "voidResult.resultStatus",
                Some(json!(bad)),
            ),
            "voidResult.resultStatus: must be S or F",
        );
    }
}

#[test]
fn amounts() {
    let api = Api::NotifyPayment;
    let amount = |c: &str, v: &str| {
        with(
            base(api),
            "paymentAmount",
            Some(json!({"currency": c, "value": v})),
        )
    };
    for ok in [
        ("USD", "1"),
        ("JPY", "9999999999999999"),
        ("IQD", "150000"),
        ("CLF", "1"),
        ("USD", "100"),
    ] {
        assert!(parse(api, &amount(ok.0, ok.1)).is_ok(), "{ok:?}");
    }
    for (v, msg) in [
        (
            "12345678901234567",
            "paymentAmount.value: must be at most 16 characters",
        ),
        ("1.00", "paymentAmount.value: must be 1 to 16 digits"),
        ("-1", "paymentAmount.value: must be 1 to 16 digits"),
        ("1e3", "paymentAmount.value: must be 1 to 16 digits"),
        (" 1", "paymentAmount.value: must be 1 to 16 digits"),
        ("１２", "paymentAmount.value: must be 1 to 16 digits"),
        ("0", "paymentAmount.value: must be greater than zero"),
        ("0000", "paymentAmount.value: must be greater than zero"),
        (
            "0100",
            "paymentAmount.value: must not have leading zeros (write 100, not 0100)",
        ),
        (
            "01",
            "paymentAmount.value: must not have leading zeros (write 100, not 0100)",
        ),
        (
            "",
            "paymentAmount.value: must not be empty (omit the field or send null)",
        ),
    ] {
        expect_err(api, amount("USD", v), msg);
    }
    for c in ["XAU", "XTS", "XXX", "usd", "ABC"] {
        expect_err(
            api,
            amount(c, "100"),
            "paymentAmount.currency: must be an ISO 4217 currency code that has a minor unit",
        );
    }
    expect_err(
        api,
        amount("USDT", "100"),
        "paymentAmount.currency: must be at most 3 characters",
    );
    expect_err(
        api,
        with(base(api), "paymentAmount.value", Some(json!(100))),
        "paymentAmount.value: must be a JSON string",
    );
    expect_err(
        api,
        with(base(api), "paymentAmount", Some(json!("100 USD"))),
        "paymentAmount: must be a JSON object",
    );
    expect_err(
        api,
        with(base(api), "paymentAmount.cents", Some(json!("1"))),
        "paymentAmount.cents: is not a field of Amount",
    );
}

#[test]
fn every_scalar_is_a_json_string_and_never_empty() {
    let api = Api::NotifyPayment;
    for (v, rule) in [
        (json!(123), "must be a JSON string"),
        (json!(true), "must be a JSON string"),
        (json!(["x"]), "must be a JSON string"),
        (json!({"x": "y"}), "must be a JSON string"),
        (json!(""), "must not be empty (omit the field or send null)"),
    ] {
        expect_err(
            api,
            with(base(api), "paymentId", Some(v.clone())),
            &format!("paymentId: {rule}"),
        );
        expect_err(
            api,
            with(base(api), "extendInfo", Some(v)),
            &format!("extendInfo: {rule}"),
        );
    }
}

#[test]
fn datetimes() {
    let api = Api::NotifyPayment;
    for ok in [
        "2019-11-27T12:01:01+08:30",
        "2019-04-04T12:08:56.253+05:30",
        "2025-02-20T08:51:49.09Z",
        // PHP DATE_ISO8601 (basic offset) and Java OffsetDateTime.toString() at :00 seconds.
        "2019-11-27T12:01:01+0800",
        "2019-11-27T12:01+08:00",
        "2019-11-27T12:01+0800",
    ] {
        let n = parse(api, &with(base(api), "paymentTime", Some(json!(ok))))
            .unwrap_or_else(|e| panic!("{ok}: {e}"));
        let sent: Value = serde_json::from_slice(&notifyd_core::encode::encode(&n)).unwrap();
        assert_eq!(sent["paymentTime"], ok, "forwarded as sent, not normalised");
    }
    for bad in [
        "2019-11-27T12:01:01",
        "2019-11-27 12:01:01+08:00",
        "1574827262123",
        "2019-02-30T00:00:00Z",
        "2019-11-27T12:01:01+08",
        "2019-11-27T12:01.5+08:00",
    ] {
        expect_err(
            api,
            with(base(api), "paymentTime", Some(json!(bad))),
            "paymentTime: must be an ISO 8601 date-time with an explicit offset, like 2019-11-27T12:01:01+08:30",
        );
    }
    expect_err(
        api,
        with(
            base(api),
            "paymentTime",
            Some(json!("2019-11-27T12:01:01.1234567890123Z")),
        ),
        "paymentTime: must be at most 32 characters",
    );
    expect_err(
        Api::NotifyVoid,
        with(base(Api::NotifyVoid), "voidTime", Some(json!("yesterday"))),
        "voidTime: must be an ISO 8601 date-time with an explicit offset, like 2019-11-27T12:01:01+08:30",
    );
}

#[test]
fn fields_the_api_does_not_define_are_refused() {
    expect_err(
        Api::NotifyPayment,
        with(base(Api::NotifyPayment), "refundId", Some(json!("x"))),
        "refundId: is not a field of notifyPayment",
    );
    expect_err(
        Api::NotifyVoid,
        with(
            base(Api::NotifyVoid),
            "paymentStatus",
            Some(json!("SUCCESS")),
        ),
        "paymentStatus: is not a field of notifyVoid",
    );
    expect_err(
        Api::AlipayPlusNotifyPayment,
        with(
            base(Api::AlipayPlusNotifyPayment),
            "acquirerId",
            Some(json!("A1")),
        ),
        "acquirerId: is not a field of alipayplus.notifyPayment",
    );
}

#[test]
fn results_carried_agree_in_status_and_code() {
    // PROTOCOL.md §2.1: SUCCESS is S's code and S has no other; a receiver reading either
    // half must read the same outcome.
    let api = Api::AlipayPlusNotifyPayment;
    expect_err(
        api,
        with(
            base(api),
            "paymentResult.resultCode",
            Some(json!("RISK_REJECT")),
        ),
        "paymentResult.resultCode: must be SUCCESS when resultStatus is S",
    );
    let f_success = with(
        with(base(api), "paymentResult.resultStatus", Some(json!("F"))),
        "payToAmount",
        None,
    );
    expect_err(
        api,
        f_success,
        "paymentResult.resultCode: must not be SUCCESS when resultStatus is F",
    );
    let void = Api::NotifyVoid;
    expect_err(
        void,
        with(base(void), "voidResult.resultStatus", Some(json!("F"))),
        "voidResult.resultCode: must not be SUCCESS when resultStatus is F",
    );
    let failed = with(
        base(void),
        "voidResult",
        Some(json!({"resultStatus": "F", "resultCode": "PROCESS_FAIL"})),
    );
    assert!(parse(void, &failed).is_ok());
}

#[test]
fn alipayplus_customs_declaration_amount_is_an_amount() {
    let api = Api::AlipayPlusNotifyPayment;
    let with_customs = with(
        base(api),
        "customsDeclarationAmount",
        Some(json!({"currency": "JPY", "value": "80"})),
    );
    let n = parse(api, &with_customs).unwrap();
    let sent = String::from_utf8(notifyd_core::encode::encode(&n)).unwrap();
    assert!(
        sent.ends_with(
            r#""customerId":"1234567","customsDeclarationAmount":{"currency":"JPY","value":"80"}}"#
        ),
        "{sent}"
    );
    expect_err(
        api,
        with(
            base(api),
            "customsDeclarationAmount",
            Some(json!({"currency": "JPY", "value": "080"})),
        ),
        "customsDeclarationAmount.value: must not have leading zeros (write 100, not 0100)",
    );
    expect_err(
        api,
        with(base(api), "customsDeclarationAmount", Some(json!("80 JPY"))),
        "customsDeclarationAmount: must be a JSON object",
    );
}

fn forwarding(v: Value) -> Result<Envelope, String> {
    let mut bytes = serde_json::to_vec(&v).unwrap();
    Envelope::parse_with(&mut bytes, &|p| {
        if p == "fwd" {
            ExtraFieldsPolicy::Forward
        } else {
            ExtraFieldsPolicy::Refuse
        }
    })
    .map_err(|e| e.to_string())
}

fn fwd_base() -> Value {
    with(env_base(), "profile", Some(json!("fwd")))
}

#[test]
fn forwarded_fields_are_encoded_after_the_known_ones_by_name() {
    let v = with(
        with(fwd_base(), "body.zeta", Some(json!("last"))),
        "body.acquirerInfo",
        Some(json!({"pspId": "P9", "acquirerId": "A1", "gone": null})),
    );
    let v = with(v, "body.nothing", Some(Value::Null));
    let e = forwarding(v).unwrap();
    let sent = String::from_utf8(e.encode()).unwrap();
    let known = String::from_utf8(notifyd_core::encode::encode(&e.notification)).unwrap();
    assert_eq!(
        sent,
        format!(
            r#"{},"acquirerInfo":{{"acquirerId":"A1","pspId":"P9"}},"zeta":"last"}}"#,
            &known[..known.len() - 1]
        )
    );
    // The stored bytes parse back, under the forwarding profile, to the same bytes.
    let again = forwarding(json!({"api": "notifyPayment", "profile": "fwd",
        "url": "https://merchant.example.com/v1/payments/notifyPayment",
        "body": serde_json::from_str::<Value>(&sent).unwrap()}))
    .unwrap();
    assert_eq!(String::from_utf8(again.encode()).unwrap(), sent);
    // Another profile still refuses them.
    assert_eq!(
        forwarding(with(env_base(), "body.zeta", Some(json!("x")))).unwrap_err(),
        "body.zeta: is not a field of notifyPayment"
    );
}

#[test]
fn forwarded_fields_keep_their_rules() {
    let cases = [
        (
            json!(1),
            "body.n: must be a JSON string or an object of strings (a field its API's table does not define is forwarded only in these shapes)",
        ),
        (
            json!(["a"]),
            "body.n: must be a JSON string or an object of strings (a field its API's table does not define is forwarded only in these shapes)",
        ),
        (
            json!(""),
            "body.n: must not be empty (omit the field or send null)",
        ),
        (
            json!({}),
            "body.n: must not be empty (omit the field or send null)",
        ),
        (
            json!({"a": 1}),
            "body.n.a: must be a JSON string (a forwarded object holds strings only)",
        ),
        (
            json!({"a": {"b": "c"}}),
            "body.n.a: must be a JSON string (a forwarded object holds strings only)",
        ),
        (
            json!({"a": ""}),
            "body.n.a: must not be empty (omit the field or send null)",
        ),
        (
            json!({"a b": "c"}),
            "body.n.a b: a forwarded field's name must be 1 to 64 ASCII letters, digits or _",
        ),
        (
            json!("x".repeat(4097)),
            "body.n: must be at most 4096 characters",
        ),
    ];
    for (value, msg) in cases {
        assert_eq!(
            forwarding(with(fwd_base(), "body.n", Some(value.clone())))
                .err()
                .as_deref(),
            Some(msg),
            "{value}"
        );
    }
    let many: serde_json::Map<String, Value> =
        (0..17).map(|i| (format!("m{i}"), json!("v"))).collect();
    assert_eq!(
        forwarding(with(
            fwd_base(),
            "body.n",
            Some(Value::Object(many.clone()))
        ))
        .unwrap_err(),
        "body.n: a forwarded object holds at most 16 members"
    );
    let mut too_many = fwd_base();
    for (k, v) in &many {
        too_many = with(too_many, &format!("body.{k}"), Some(v.clone()));
    }
    assert_eq!(
        forwarding(too_many).unwrap_err(),
        "body: at most 16 fields beyond the API's table are forwarded"
    );
    let mut too_big = fwd_base();
    for i in 0..5 {
        too_big = with(
            too_big,
            &format!("body.big{i}"),
            Some(json!("x".repeat(4000))),
        );
    }
    assert_eq!(
        forwarding(too_big).unwrap_err(),
        "body: the fields beyond the API's table must total at most 16384 bytes"
    );
    assert_eq!(
        forwarding(with(fwd_base(), "body.a-b", Some(json!("x")))).unwrap_err(),
        "body.a-b: a forwarded field's name must be 1 to 64 ASCII letters, digits or _"
    );
    // Known fields keep every rule under a forwarding profile.
    assert_eq!(
        forwarding(with(
            fwd_base(),
            "body.paymentAmount.value",
            Some(json!("0100"))
        ))
        .unwrap_err(),
        "body.paymentAmount.value: must not have leading zeros (write 100, not 0100)"
    );
}

#[test]
fn repeated_keys_and_non_objects_are_refused() {
    let mut raw = br#"{"partnerId":"P1","partnerId":"P2","paymentId":"1","paymentRequestId":"2","paymentAmount":{"currency":"USD","value":"1"},"paymentStatus":"SUCCESS"}"#.to_vec();
    assert_eq!(
        Notification::parse(Api::NotifyPayment, &mut raw)
            .unwrap_err()
            .to_string(),
        "partnerId: appears more than once"
    );
    for raw in [&b"[]"[..], b"\"x\"", b"null", b"{", b""] {
        let err = Notification::parse(Api::NotifyPayment, &mut raw.to_vec()).unwrap_err();
        assert!(err.path().is_empty(), "{err}");
    }
}

fn envelope(v: Value) -> Result<Envelope, String> {
    let mut bytes = serde_json::to_vec(&v).unwrap();
    Envelope::parse(&mut bytes).map_err(|e| e.to_string())
}

fn env_base() -> Value {
    json!({"api": "notifyPayment", "url": "https://merchant.example.com/v1/payments/notifyPayment", "body": base(Api::NotifyPayment)})
}

#[test]
fn envelope_paths_name_the_body() {
    let e = envelope(with(
        env_base(),
        "body.paymentAmount.value",
        Some(json!("1.5")),
    ))
    .unwrap_err();
    assert_eq!(e, "body.paymentAmount.value: must be 1 to 16 digits");
    let ok = envelope(env_base()).unwrap();
    assert_eq!(ok.profile, "default");
    assert_eq!(ok.endpoint(), "merchant.example.com");
    assert_eq!(
        ok.order_key(),
        "merchant.example.com|201911271907410100070000009999xxxx"
    );
}

#[test]
fn envelope_rules() {
    let cases = [
        (
            with(env_base(), "api", Some(json!("inquiryPayment"))),
            "api: must be one of notifyPayment, notifyVoid, alipayplus.notifyPayment",
        ),
        (with(env_base(), "api", None), "api: is required"),
        (with(env_base(), "url", None), "url: is required"),
        (
            with(env_base(), "url", Some(json!("ftp://x.example/a"))),
            "url: must be an absolute http or https URL",
        ),
        (
            with(env_base(), "url", Some(json!("/v1/payments/notifyPayment"))),
            "url: must be an absolute http or https URL",
        ),
        (
            with(
                env_base(),
                "url",
                Some(json!("https://user:pw@merchant.example.com/n")),
            ),
            "url: must not carry user info",
        ),
        (
            with(
                env_base(),
                "url",
                Some(json!("https://merchant.example.com/n#frag")),
            ),
            "url: must not carry a fragment",
        ),
        (
            with(
                env_base(),
                "url",
                Some(json!(format!("https://m.example/{}", "a".repeat(2048)))),
            ),
            "url: must be at most 2048 characters",
        ),
        (
            with(env_base(), "profile", Some(json!("a b"))),
            "profile: must be letters, digits, '_', '-' or '.'",
        ),
        (with(env_base(), "body", None), "body: is required"),
        (
            with(env_base(), "body", Some(json!("{}"))),
            "body: must be a JSON object",
        ),
        (
            with(env_base(), "extra", Some(json!(1))),
            "extra: is not a field of the envelope",
        ),
    ];
    for (v, msg) in cases {
        assert_eq!(envelope(v).err().as_deref(), Some(msg));
    }
    let http = envelope(with(
        env_base(),
        "url",
        Some(json!("http://127.0.0.1:8471/notify")),
    ))
    .unwrap();
    assert!(http.is_plain_http());
    assert_eq!(http.endpoint(), "127.0.0.1:8471");
}

#[test]
fn batch_items_are_judged_on_their_own() {
    let bad = with(env_base(), "body.paymentId", None);
    let mut raw =
        serde_json::to_vec(&json!({"notifications": [env_base(), bad, env_base()]})).unwrap();
    let items = notifyd_core::envelope::parse_batch(&mut raw, 1000).unwrap();
    assert_eq!(items.len(), 3);
    assert!(items[0].is_ok() && items[2].is_ok());
    assert_eq!(
        items[1].as_ref().unwrap_err().to_string(),
        "body.paymentId: is required"
    );

    for (v, msg) in [
        (
            json!({"notifications": []}),
            "notifications: must hold 1 to 2 notifications",
        ),
        (
            json!({"notifications": [env_base(), env_base(), env_base()]}),
            "notifications: must hold 1 to 2 notifications",
        ),
        (
            json!({"notifications": {}}),
            "notifications: must be a JSON array",
        ),
        (json!({"items": []}), "items: is not a field of the batch"),
    ] {
        let mut raw = serde_json::to_vec(&v).unwrap();
        assert_eq!(
            notifyd_core::envelope::parse_batch(&mut raw, 2)
                .unwrap_err()
                .to_string(),
            msg
        );
    }
}

#[test]
fn inquiry_requests() {
    use notifyd_core::model::inquiry::Lookup;
    let parse_inq = |v: Value| {
        let mut b = serde_json::to_vec(&v).unwrap();
        InquiryRequest::parse(&mut b).map_err(|e| e.to_string())
    };
    let a = parse_inq(fixture("inquiry_by_payment_request_id.json")).unwrap();
    assert_eq!(
        a.lookup(),
        Lookup::PaymentRequestId {
            partner_id: Some("20200101234567890132xxxx"),
            payment_request_id: "1022172000000000001xxxx"
        }
    );
    let b = parse_inq(fixture("inquiry_by_payment_id.json")).unwrap();
    assert_eq!(b.lookup(), Lookup::PaymentId("1022172000000000001xxxx"));
    let both = parse_inq(json!({"paymentId": "P", "paymentRequestId": "R"})).unwrap();
    assert_eq!(
        both.lookup(),
        Lookup::PaymentId("P"),
        "paymentId takes priority"
    );
    assert_eq!(
        parse_inq(json!({"partnerId": "X"})).unwrap_err(),
        "paymentId: paymentId or paymentRequestId is required"
    );
    assert_eq!(
        parse_inq(json!({"paymentId": ""})).unwrap_err(),
        "paymentId: must not be empty (omit the field or send null)"
    );
}
