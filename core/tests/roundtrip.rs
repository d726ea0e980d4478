//! Property: for every valid message x, parse(encode(x)) == x, and the encoding is stable
//! (encode(parse(encode(x))) is byte-identical), which is what lets retries resend stored bytes.

use notifyd_core::Api;
use notifyd_core::encode::encode;
use notifyd_core::model::*;
use proptest::prelude::*;

fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("(?s).{{1,{max}}}")).unwrap()
}

fn opt_text(max: usize) -> impl Strategy<Value = Option<String>> {
    proptest::option::of(text(max))
}

fn amount() -> impl Strategy<Value = Amount> {
    (
        prop::sample::select(vec!["USD", "JPY", "KRW", "IQD", "CLF", "EUR", "IDR", "PHP"]),
        "[1-9][0-9]{0,15}",
    )
        .prop_map(|(c, v)| Amount {
            currency: c.to_owned(),
            value: v,
        })
}

fn datetime() -> impl Strategy<Value = String> {
    (
        1970u32..2100,
        1u32..=12,
        1u32..=28,
        0u32..24,
        0u32..60,
        0u32..60,
        proptest::option::of(0u32..1000),
        -23i32..=23,
        0u32..60,
        (prop::bool::ANY, prop::bool::ANY),
    )
        .prop_map(|(y, mo, d, h, mi, s, ms, oh, om, (basic, no_seconds))| {
            // Java drops ":00" seconds, PHP writes "+0800": both must come back as sent.
            let seconds = if no_seconds && ms.is_none() {
                String::new()
            } else {
                format!(
                    ":{s:02}{}",
                    ms.map(|m| format!(".{m:03}")).unwrap_or_default()
                )
            };
            let sign = if oh < 0 { '-' } else { '+' };
            let colon = if basic { "" } else { ":" };
            format!(
                "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}{seconds}{sign}{:02}{colon}{om:02}",
                oh.abs()
            )
        })
}

fn final_result() -> impl Strategy<Value = ResultInfo> {
    (
        prop::sample::select(vec!["S", "F"]),
        text(64),
        opt_text(256),
    )
        .prop_map(|(s, c, m)| ResultInfo {
            // S goes with SUCCESS and only S does.
            result_code: match s {
                "S" => "SUCCESS".to_owned(),
                _ if c == "SUCCESS" => "PROCESS_FAIL".to_owned(),
                _ => c,
            },
            result_status: s.to_owned(),
            result_message: m,
        })
}

fn notify_payment() -> impl Strategy<Value = Notification> {
    (
        (
            text(32),
            text(64),
            text(64),
            amount(),
            proptest::option::of(datetime()),
        ),
        (prop::bool::ANY, opt_text(256), opt_text(4096)),
    )
        .prop_map(|((partner, pid, prid, amt, time), (ok, reason, extend))| {
            Notification::NotifyPayment(NotifyPayment {
                partner_id: partner,
                payment_id: pid,
                payment_request_id: prid,
                payment_amount: amt,
                payment_time: time,
                payment_status: if ok { "SUCCESS" } else { "FAIL" }.to_owned(),
                payment_fail_reason: if ok { None } else { reason },
                extend_info: extend,
            })
        })
}

fn notify_void() -> impl Strategy<Value = Notification> {
    (
        (final_result(), text(64), opt_text(64), text(64)),
        (
            proptest::option::of(amount()),
            proptest::option::of(datetime()),
            opt_text(64),
            opt_text(4096),
        ),
    )
        .prop_map(|((r, vrid, vid, pid), (amt, time, src, ext))| {
            Notification::NotifyVoid(NotifyVoid {
                void_result: r,
                void_request_id: vrid,
                void_id: vid,
                payment_id: pid,
                void_amount: amt,
                void_time: time,
                void_source: src,
                extend_info: ext,
            })
        })
}

fn alipayplus() -> impl Strategy<Value = Notification> {
    (
        (
            final_result(),
            text(64),
            text(64),
            amount(),
            proptest::option::of(amount()),
        ),
        (
            datetime(),
            text(64),
            opt_text(20_000),
            prop::bool::ANY,
            proptest::option::of(amount()),
        ),
    )
        .prop_map(
            |((r, prid, pid, amt, pay_to), (time, cust, pass, send_optional_on_f, customs))| {
                let ok = r.is_success();
                let pay_to = pay_to.filter(|p| ok && p.currency != amt.currency);
                let keep = ok || send_optional_on_f;
                Notification::AlipayPlusNotifyPayment(AlipayPlusNotifyPayment {
                    payment_result: r,
                    payment_request_id: prid,
                    payment_id: keep.then_some(pid),
                    payment_amount: amt,
                    pay_to_amount: pay_to,
                    payment_time: keep.then_some(time),
                    customer_id: keep.then_some(cust),
                    pass_through_info: pass,
                    customs_declaration_amount: customs,
                })
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parse_of_encode_is_identity(n in prop_oneof![notify_payment(), notify_void(), alipayplus()]) {
        let bytes = encode(&n);
        let back = Notification::parse(n.api(), &mut bytes.clone());
        prop_assert_eq!(back.as_ref(), Ok(&n));
        prop_assert_eq!(encode(&back.unwrap()), bytes);
    }

    #[test]
    fn encoding_is_valid_json_with_only_string_scalars(n in prop_oneof![notify_payment(), notify_void(), alipayplus()]) {
        let v: serde_json::Value = serde_json::from_slice(&encode(&n)).unwrap();
        fn all_strings(v: &serde_json::Value) -> bool {
            match v {
                serde_json::Value::String(s) => !s.is_empty(),
                serde_json::Value::Object(m) => m.values().all(all_strings),
                _ => false,
            }
        }
        prop_assert!(all_strings(&v), "{}", v);
        prop_assert!(Api::ALL.contains(&n.api()));
    }
}
