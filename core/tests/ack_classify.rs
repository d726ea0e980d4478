//! Table-driven tests of ack classification (PROTOCOL.md §3.3, §5.3, §6.3, §7): every code of
//! the seed tables for every API, every broken body shape, every signature combination.

use std::time::Duration;

use notifyd_core::Api;
use notifyd_core::ack::{
    Ack, Action, Outcome, RetryReason, SignatureCheck, SignatureMode, classify, codes, known_code,
};
use proptest::prelude::*;

fn http(body: &[u8]) -> Outcome<'_> {
    Outcome::Http {
        status: 200,
        retry_after: None,
        body,
        signature: SignatureCheck::Verified,
    }
}

fn answer(status: &str, code: &str) -> Vec<u8> {
    serde_json::json!({"result": {"resultStatus": status, "resultCode": code, "resultMessage": "msg"}})
        .to_string()
        .into_bytes()
}

fn ack_of(api: Api, status: &str, code: &str) -> Ack {
    classify(api, &http(&answer(status, code)), SignatureMode::Required)
}

fn delivered(code: &str) -> Ack {
    Ack::Delivered {
        code: code.into(),
        unexpected_code: code != "SUCCESS",
    }
}

fn failed(code: &str) -> Ack {
    Ack::Failed {
        code: code.into(),
        message: Some("msg".into()),
    }
}

fn our_side(code: &str) -> Ack {
    Ack::OurSide {
        code: code.into(),
        message: Some("msg".into()),
    }
}

fn unknown(status: &str, code: &str) -> Ack {
    Ack::Retry {
        reason: RetryReason::Unknown {
            status: status.into(),
            code: code.into(),
        },
    }
}

fn retry(reason: RetryReason) -> Ack {
    Ack::Retry { reason }
}

const THROTTLED: Ack = Ack::Throttled { retry_after: None };

/// Each API's seed table as PROTOCOL.md reads it: (letter, code, what the dispatcher must do).
/// Written out by hand from the spec so the code tables are checked against it, not against
/// themselves.
fn seed_rows(api: Api) -> Vec<(&'static str, &'static str, Ack)> {
    match api {
        Api::NotifyPayment => vec![
            ("S", "SUCCESS", delivered("SUCCESS")),
            ("U", "UNKNOWN_EXCEPTION", unknown("U", "UNKNOWN_EXCEPTION")),
            ("U", "REQUEST_TRAFFIC_EXCEED_LIMIT", THROTTLED),
            ("U", "REFUND_IN_PROCESS", unknown("U", "REFUND_IN_PROCESS")),
            (
                "F",
                "REPEAT_REQ_INCONSISTENT",
                failed("REPEAT_REQ_INCONSISTENT"),
            ),
            ("F", "PROCESS_FAIL", failed("PROCESS_FAIL")),
            ("F", "PARAM_ILLEGAL", failed("PARAM_ILLEGAL")),
            ("F", "INVALID_API", our_side("INVALID_API")),
            ("F", "ACCESS_DENIED", our_side("ACCESS_DENIED")),
            (
                "F",
                "PARTNER_STATUS_ABNORMAL",
                failed("PARTNER_STATUS_ABNORMAL"),
            ),
            (
                "F",
                "ORDER_NOT_EXIST",
                Ack::Doubtful {
                    code: "ORDER_NOT_EXIST".into(),
                    message: Some("msg".into()),
                    retries: codes::ORDER_NOT_EXIST_RETRIES,
                },
            ),
            ("F", "ORDER_STATUS_INVALID", failed("ORDER_STATUS_INVALID")),
            ("F", "REFUND_WINDOW_EXCEED", failed("REFUND_WINDOW_EXCEED")),
            ("F", "REFUND_AMOUNT_EXCEED", failed("REFUND_AMOUNT_EXCEED")),
            (
                "F",
                "PARTNER_BALANCE_NOT_ENOUGH",
                failed("PARTNER_BALANCE_NOT_ENOUGH"),
            ),
            ("F", "CURRENCY_NOT_SUPPORT", failed("CURRENCY_NOT_SUPPORT")),
            ("F", "EXPIRED_AGENT_TOKEN", failed("EXPIRED_AGENT_TOKEN")),
            ("F", "INVALID_AGENT_TOKEN", failed("INVALID_AGENT_TOKEN")),
        ],
        Api::NotifyVoid => vec![
            ("S", "SUCCESS", delivered("SUCCESS")),
            ("U", "SYSTEM_ERROR", unknown("U", "SYSTEM_ERROR")),
            ("U", "UNKNOWN_EXCEPTION", unknown("U", "UNKNOWN_EXCEPTION")),
            ("F", "REQUEST_TRAFFIC_EXCEED_LIMIT", THROTTLED),
            ("F", "PROCESS_FAIL", failed("PROCESS_FAIL")),
            ("F", "PARAM_ILLEGAL", failed("PARAM_ILLEGAL")),
            ("F", "INVALID_API", our_side("INVALID_API")),
            ("F", "ACCESS_DENIED", our_side("ACCESS_DENIED")),
        ],
        Api::AlipayPlusNotifyPayment => vec![
            ("S", "SUCCESS", delivered("SUCCESS")),
            ("U", "UNKNOWN_EXCEPTION", unknown("U", "UNKNOWN_EXCEPTION")),
            ("U", "REQUEST_TRAFFIC_EXCEED_LIMIT", THROTTLED),
            ("F", "ACCESS_DENIED", our_side("ACCESS_DENIED")),
            ("F", "INVALID_CLIENT", our_side("INVALID_CLIENT")),
            ("F", "INVALID_SIGNATURE", our_side("INVALID_SIGNATURE")),
            ("F", "KEY_NOT_FOUND", our_side("KEY_NOT_FOUND")),
            (
                "F",
                "MEDIA_TYPE_NOT_ACCEPTABLE",
                our_side("MEDIA_TYPE_NOT_ACCEPTABLE"),
            ),
            (
                "F",
                "METHOD_NOT_SUPPORTED",
                our_side("METHOD_NOT_SUPPORTED"),
            ),
            ("F", "NO_INTERFACE_DEF", our_side("NO_INTERFACE_DEF")),
            ("F", "PARAM_ILLEGAL", failed("PARAM_ILLEGAL")),
            ("F", "PROCESS_FAIL", failed("PROCESS_FAIL")),
            (
                "F",
                "REPEAT_REQ_INCONSISTENT",
                failed("REPEAT_REQ_INCONSISTENT"),
            ),
        ],
    }
}

#[test]
fn every_seed_code_of_every_api() {
    for api in Api::ALL {
        for (status, code, want) in seed_rows(api) {
            assert_eq!(ack_of(api, status, code), want, "{api} {status} {code}");
        }
    }
}

#[test]
fn seed_codes_from_other_apis_classify_by_letter_too() {
    // A receiver answering with another API's code still gets a sound answer.
    for api in Api::ALL {
        for other in Api::ALL {
            for (status, code, mut want) in seed_rows(other) {
                // Only a merchant's notifyPayment answer can race the order it is about.
                if code == "ORDER_NOT_EXIST" && api != Api::NotifyPayment {
                    want = failed(code);
                }
                assert_eq!(
                    ack_of(api, status, code),
                    want,
                    "{api} answered {status} {code}"
                );
            }
        }
    }
}

#[test]
fn code_tables_agree_with_the_spec_rows_and_classify() {
    for api in Api::ALL {
        let rows = seed_rows(api);
        let table = codes::table(api);
        assert_eq!(table.len(), rows.len(), "{api}");
        for (status, code, want) in rows {
            let info = known_code(api, code).unwrap_or_else(|| panic!("{api} {code} missing"));
            assert_eq!(info.status.as_str(), status, "{api} {code}");
            assert_eq!(info.action, want.action(), "{api} {code}");
        }
    }
    // The copy-pasted refund rows of seed 000 are flagged; its own rows are not.
    for code in [
        "REFUND_IN_PROCESS",
        "REFUND_WINDOW_EXCEED",
        "REFUND_AMOUNT_EXCEED",
        "PARTNER_BALANCE_NOT_ENOUGH",
        "CURRENCY_NOT_SUPPORT",
    ] {
        assert!(
            known_code(Api::NotifyPayment, code).unwrap().unexpected,
            "{code}"
        );
    }
    assert!(
        !known_code(Api::NotifyPayment, "ORDER_NOT_EXIST")
            .unwrap()
            .unexpected
    );
}

#[test]
fn unknown_codes_follow_their_letter() {
    for api in Api::ALL {
        assert_eq!(ack_of(api, "S", "WHATEVER"), delivered("WHATEVER"));
        assert_eq!(
            ack_of(api, "F", "BRAND_NEW_FAILURE"),
            failed("BRAND_NEW_FAILURE")
        );
        assert_eq!(
            ack_of(api, "U", "BRAND_NEW_UNKNOWN"),
            unknown("U", "BRAND_NEW_UNKNOWN")
        );
        assert_eq!(known_code(api, "BRAND_NEW_FAILURE"), None);
        // Codes are case-sensitive: a lower-case traffic code is just an unknown F code.
        assert_eq!(
            ack_of(api, "F", "request_traffic_exceed_limit"),
            failed("request_traffic_exceed_limit")
        );
    }
}

#[test]
fn u_class_codes_under_f_retry() {
    for api in Api::ALL {
        assert_eq!(
            ack_of(api, "F", "SYSTEM_ERROR"),
            unknown("F", "SYSTEM_ERROR")
        );
        assert_eq!(
            ack_of(api, "F", "UNKNOWN_EXCEPTION"),
            unknown("F", "UNKNOWN_EXCEPTION")
        );
    }
}

#[test]
fn unknown_status_letters_retry() {
    for letter in [
        "A", "R", "", "s", "f", "u", " S", "S ", "SS", "SUCCESS", "É",
    ] {
        for api in Api::ALL {
            assert_eq!(
                ack_of(api, letter, "SUCCESS"),
                unknown(letter, "SUCCESS"),
                "{letter:?}"
            );
        }
    }
}

#[test]
fn traffic_limit_throttles_under_every_letter() {
    for letter in ["F", "U", "S", "X"] {
        assert_eq!(
            ack_of(Api::NotifyPayment, letter, "REQUEST_TRAFFIC_EXCEED_LIMIT"),
            THROTTLED,
            "{letter}"
        );
    }
    // A Retry-After sent alongside a 200 throttle is passed on.
    let body = answer("F", "REQUEST_TRAFFIC_EXCEED_LIMIT");
    let outcome = Outcome::Http {
        status: 200,
        retry_after: Some(Duration::from_secs(30)),
        body: &body,
        signature: SignatureCheck::Verified,
    };
    assert_eq!(
        classify(Api::NotifyVoid, &outcome, SignatureMode::Optional),
        Ack::Throttled {
            retry_after: Some(Duration::from_secs(30))
        }
    );
}

#[test]
fn http_429_throttles_whatever_the_body() {
    for retry_after in [None, Some(Duration::from_secs(120))] {
        for body in [&b""[..], b"<html>busy</html>", &answer("S", "SUCCESS")] {
            for signature in [SignatureCheck::Invalid, SignatureCheck::Missing] {
                let outcome = Outcome::Http {
                    status: 429,
                    retry_after,
                    body,
                    signature,
                };
                let ack = classify(
                    Api::AlipayPlusNotifyPayment,
                    &outcome,
                    SignatureMode::Required,
                );
                assert_eq!(ack, Ack::Throttled { retry_after });
                assert_eq!(ack.metric_outcome(), "throttled");
            }
        }
    }
}

#[test]
fn other_statuses_retry_even_with_a_success_body() {
    let body = answer("S", "SUCCESS");
    for status in [
        100, 201, 202, 204, 301, 302, 400, 401, 403, 404, 408, 500, 502, 503, 504,
    ] {
        let outcome = Outcome::Http {
            status,
            retry_after: None,
            body: &body,
            signature: SignatureCheck::Verified,
        };
        let ack = classify(Api::NotifyPayment, &outcome, SignatureMode::Off);
        assert_eq!(ack, retry(RetryReason::HttpStatus(status)), "{status}");
        assert_eq!(ack.metric_outcome(), "retry");
    }
}

#[test]
fn a_503_with_retry_after_throttles_like_a_429() {
    let after = Some(Duration::from_secs(7));
    for (status, retry_after, want) in [
        (503, after, Ack::Throttled { retry_after: after }),
        (503, None, retry(RetryReason::HttpStatus(503))),
        (502, after, retry(RetryReason::HttpStatus(502))),
    ] {
        let outcome = Outcome::Http {
            status,
            retry_after,
            body: b"",
            signature: SignatureCheck::NotChecked,
        };
        assert_eq!(
            classify(Api::NotifyPayment, &outcome, SignatureMode::Off),
            want,
            "{status} {retry_after:?}"
        );
    }
}

#[test]
fn our_side_codes_hold_under_f_only_and_order_races_only_on_notify_payment() {
    for code in codes::OUR_SIDE {
        for api in Api::ALL {
            assert_eq!(ack_of(api, "F", code), our_side(code), "{api} {code}");
            assert_eq!(ack_of(api, "U", code), unknown("U", code), "{api} {code}");
        }
    }
    assert!(matches!(
        ack_of(Api::NotifyPayment, "F", "ORDER_NOT_EXIST"),
        Ack::Doubtful { retries: 2, .. }
    ));
    assert_eq!(
        ack_of(Api::NotifyVoid, "F", "ORDER_NOT_EXIST"),
        failed("ORDER_NOT_EXIST")
    );
}

#[test]
fn timeouts_and_transport_errors_retry_with_their_own_labels() {
    let t = classify(Api::NotifyVoid, &Outcome::Timeout, SignatureMode::Required);
    assert_eq!(t, retry(RetryReason::Timeout));
    assert_eq!(t.metric_outcome(), "timeout");
    let e = classify(Api::NotifyVoid, &Outcome::Transport, SignatureMode::Off);
    assert_eq!(e, retry(RetryReason::Transport));
    assert_eq!(e.metric_outcome(), "transport_error");
}

#[test]
fn broken_bodies_retry() {
    let cases: &[(&[u8], RetryReason)] = &[
        (b"", RetryReason::Unparseable),
        (b"SUCCESS", RetryReason::Unparseable),
        (b"<html></html>", RetryReason::Unparseable),
        (b"{\"result\":", RetryReason::Unparseable),
        (
            b"[{\"result\":{\"resultStatus\":\"S\"}}]",
            RetryReason::Unparseable,
        ),
        (b"\"S\"", RetryReason::Unparseable),
        (b"null", RetryReason::Unparseable),
        (
            b"{\"result\":{\"resultStatus\":\"S\"}} trailing",
            RetryReason::Unparseable,
        ),
        (b"\xff\xfe{}", RetryReason::Unparseable),
        (b"{}", RetryReason::MissingResult),
        (
            b"{\"Result\":{\"resultStatus\":\"S\"}}",
            RetryReason::MissingResult,
        ),
        (
            b"{\"resultStatus\":\"S\",\"resultCode\":\"SUCCESS\"}",
            RetryReason::MissingResult,
        ),
        (b"{\"result\":null}", RetryReason::MalformedResult),
        (b"{\"result\":\"S\"}", RetryReason::MalformedResult),
        (b"{\"result\":[\"S\"]}", RetryReason::MalformedResult),
        (b"{\"result\":{}}", RetryReason::MalformedResult),
        (
            b"{\"result\":{\"resultCode\":\"SUCCESS\"}}",
            RetryReason::MalformedResult,
        ),
        (
            b"{\"result\":{\"resultStatus\":null}}",
            RetryReason::MalformedResult,
        ),
        (
            b"{\"result\":{\"resultStatus\":1}}",
            RetryReason::MalformedResult,
        ),
        (
            b"{\"result\":{\"resultStatus\":[\"S\"]}}",
            RetryReason::MalformedResult,
        ),
        (
            b"{\"result\":{\"resultStatus\":{\"S\":1}}}",
            RetryReason::MalformedResult,
        ),
    ];
    for (body, reason) in cases {
        let ack = classify(Api::NotifyPayment, &http(body), SignatureMode::Off);
        assert_eq!(
            &ack,
            &retry(reason.clone()),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn lenient_about_the_optional_parts() {
    // No code: S is still delivered (flagged), F is still failed.
    let ack = classify(
        Api::NotifyVoid,
        &http(br#"{"result":{"resultStatus":"S"}}"#),
        SignatureMode::Off,
    );
    assert_eq!(
        ack,
        Ack::Delivered {
            code: String::new(),
            unexpected_code: true
        }
    );
    let ack = classify(
        Api::NotifyVoid,
        &http(br#"{"result":{"resultStatus":"F","resultCode":7,"resultMessage":["x"]}}"#),
        SignatureMode::Off,
    );
    assert_eq!(
        ack,
        Ack::Failed {
            code: String::new(),
            message: None
        }
    );
    // Alipay+ extra members and whitespace are fine.
    let body = br#" { "acquirerId": "A1", "pspId": "P1", "result" : { "resultCode" : "SUCCESS",
        "resultStatus" : "S", "resultMessage" : "success" } } "#;
    assert_eq!(
        classify(
            Api::AlipayPlusNotifyPayment,
            &http(body),
            SignatureMode::Required
        ),
        delivered("SUCCESS")
    );
}

#[test]
fn copied_strings_are_bounded() {
    let long_code = "X".repeat(500);
    let long_msg = "é".repeat(1000);
    let body = serde_json::json!({"result": {"resultStatus": "F", "resultCode": long_code, "resultMessage": long_msg}})
        .to_string();
    let Ack::Failed { code, message } = classify(
        Api::NotifyPayment,
        &http(body.as_bytes()),
        SignatureMode::Off,
    ) else {
        panic!("expected Failed");
    };
    assert_eq!(code, "X".repeat(64));
    assert_eq!(message.unwrap(), "é".repeat(256));

    let body = serde_json::json!({"result": {"resultStatus": "ü".repeat(100), "resultCode": "ü".repeat(100)}})
        .to_string();
    let ack = classify(
        Api::NotifyPayment,
        &http(body.as_bytes()),
        SignatureMode::Off,
    );
    assert_eq!(ack, unknown(&"ü".repeat(64), &"ü".repeat(64)));
}

#[test]
fn signature_mode_by_check_matrix() {
    use SignatureCheck::{Invalid, Missing, NotChecked, Verified};
    use SignatureMode::{Off, Optional, Required};
    let ok = delivered("SUCCESS");
    let table = [
        (Required, Verified, ok.clone()),
        (Required, Missing, retry(RetryReason::SignatureMissing)),
        (Required, Invalid, retry(RetryReason::SignatureInvalid)),
        (
            Required,
            NotChecked,
            retry(RetryReason::SignatureNotChecked),
        ),
        (Optional, Verified, ok.clone()),
        (Optional, Missing, ok.clone()),
        (Optional, Invalid, retry(RetryReason::SignatureInvalid)),
        (Optional, NotChecked, ok.clone()),
        (Off, Verified, ok.clone()),
        (Off, Missing, ok.clone()),
        (Off, Invalid, ok.clone()),
        (Off, NotChecked, ok),
    ];
    let body = answer("S", "SUCCESS");
    for (mode, signature, want) in table {
        let outcome = Outcome::Http {
            status: 200,
            retry_after: None,
            body: &body,
            signature,
        };
        assert_eq!(
            classify(Api::AlipayPlusNotifyPayment, &outcome, mode),
            want,
            "{mode:?} {signature:?}"
        );
    }
    // An unverifiable F is not trusted to stop delivery either.
    let body = answer("F", "PROCESS_FAIL");
    let outcome = Outcome::Http {
        status: 200,
        retry_after: None,
        body: &body,
        signature: Invalid,
    };
    assert_eq!(
        classify(Api::NotifyPayment, &outcome, Optional),
        retry(RetryReason::SignatureInvalid)
    );
}

#[test]
fn actions_and_finality() {
    assert_eq!(delivered("SUCCESS").action(), Action::Done);
    assert!(delivered("SUCCESS").is_final());
    assert!(failed("PROCESS_FAIL").is_final());
    assert!(!THROTTLED.is_final());
    assert!(!unknown("U", "UNKNOWN_EXCEPTION").is_final());
    assert!(!our_side("INVALID_SIGNATURE").is_final());
    assert_eq!(our_side("INVALID_SIGNATURE").action(), Action::Hold);
}

proptest! {
    #[test]
    fn never_panics_and_bounds_every_string(body in prop::collection::vec(any::<u8>(), 0..512)) {
        for api in Api::ALL {
            match classify(api, &http(&body), SignatureMode::Optional) {
                Ack::Delivered { code, .. } => prop_assert!(code.chars().count() <= 64),
                Ack::Failed { code, message }
                | Ack::OurSide { code, message }
                | Ack::Doubtful { code, message, .. } => {
                    prop_assert!(code.chars().count() <= 64);
                    prop_assert!(message.is_none_or(|m| m.chars().count() <= 256));
                }
                Ack::Retry { reason: RetryReason::Unknown { status, code } } => {
                    prop_assert!(status.chars().count() <= 64 && code.chars().count() <= 64);
                }
                Ack::Retry { .. } | Ack::Throttled { .. } => {}
                Ack::LocalFailure { .. } => prop_assert!(false, "an answer is never our failure"),
            }
        }
    }

    #[test]
    fn any_string_result_is_classified_by_its_letter(
        status in "[SFUAR ]{0,3}|\\PC{0,80}",
        code in "[A-Z_]{0,40}|\\PC{0,80}",
    ) {
        let ack = ack_of(Api::NotifyPayment, &status, &code);
        let want = if code == "REQUEST_TRAFFIC_EXCEED_LIMIT" {
            Action::BackoffHard
        } else if status == "S" {
            Action::Done
        } else if status == "F" && codes::OUR_SIDE.contains(&code.as_str()) {
            Action::Hold
        } else if status == "F" && code == "ORDER_NOT_EXIST" {
            Action::Retry
        } else if status == "F" && code != "SYSTEM_ERROR" && code != "UNKNOWN_EXCEPTION" {
            Action::PermFail
        } else {
            Action::Retry
        };
        prop_assert_eq!(ack.action(), want);
    }
}
