//! Checking a signed request that comes to notifyd (a merchant's inquiryPayment, CONTRACT.md
//! §2.2): the sigvec vector's own request must pass, and each broken part must be refused with
//! the code and the header it is about.

mod signing_common;

use std::time::Duration;

use notifyd_core::UnixMillis;
use notifyd_core::signing::VerifyingKey;
use notifyd_core::signing::incoming::{
    Refusal, SignedHeaders, check_signed_request, parse_request_time,
};
use signing_common::{read, vector, vector_str};

const CLIENT: &str = "TEST_5X00000000000000";
const TIME: &str = "2019-11-27T12:01:02.123+08:00";
const URI: &str = "/v1/payments/notifyPayment";
const WINDOW: Duration = Duration::from_secs(300);

fn key() -> VerifyingKey {
    VerifyingKey::from_spki_pem(&read("test_public_key_x509.pem")).unwrap()
}

/// The vector's body: what follows `<client>.<time>.` in the signed content.
fn body() -> Vec<u8> {
    let v = vector();
    let content = vector_str(&v, "request", "content_to_be_signed");
    let prefix = format!("POST {URI}\n{CLIENT}.{TIME}.");
    content.strip_prefix(&prefix).unwrap().as_bytes().to_vec()
}

fn now() -> UnixMillis {
    parse_request_time(TIME).unwrap()
}

fn check(h: &SignedHeaders<'_>, body: &[u8], now: UnixMillis) -> Result<String, Refusal> {
    let key = key();
    let key_of = |id: &str| (id == CLIENT).then(|| key.clone());
    check_signed_request(h, "POST", URI, body, now, WINDOW, &key_of).map(str::to_owned)
}

#[test]
fn the_vector_request_passes_and_each_broken_part_is_refused() {
    let v = vector();
    let sig = vector_str(&v, "request", "Signature_header");
    let good = SignedHeaders {
        client_id: Some(CLIENT),
        request_time: Some(TIME),
        signature: Some(sig),
    };
    assert_eq!(check(&good, &body(), now()).as_deref(), Ok(CLIENT));

    let refused =
        |h: SignedHeaders<'_>, body: &[u8], at: UnixMillis| check(&h, body, at).unwrap_err();
    let r = refused(
        SignedHeaders {
            client_id: None,
            ..good
        },
        &body(),
        now(),
    );
    assert_eq!(
        (r.result_code(), r.to_string().as_str()),
        ("ACCESS_DENIED", "Client-Id: is required")
    );
    let r = refused(
        SignedHeaders {
            client_id: Some("OTHER"),
            ..good
        },
        &body(),
        now(),
    );
    assert_eq!(r, Refusal::UnknownClientId);
    assert_eq!(r.result_code(), "ACCESS_DENIED");
    let r = refused(
        SignedHeaders {
            signature: Some(""),
            ..good
        },
        &body(),
        now(),
    );
    assert_eq!(
        (r.result_code(), r.to_string().as_str()),
        ("INVALID_SIGNATURE", "Signature: is required")
    );
    let r = refused(
        SignedHeaders {
            signature: Some("algorithm=ECC224, signature=AAAA"),
            ..good
        },
        &body(),
        now(),
    );
    assert!(matches!(r, Refusal::MalformedSignature(_)), "{r}");
    assert!(r.to_string().starts_with("Signature header: "), "{r}");
    let r = refused(
        SignedHeaders {
            request_time: None,
            ..good
        },
        &body(),
        now(),
    );
    assert_eq!(r.to_string(), "Request-Time: is required");
    let r = refused(
        SignedHeaders {
            request_time: Some("yesterday"),
            ..good
        },
        &body(),
        now(),
    );
    assert_eq!(r, Refusal::UnreadableRequestTime);

    // One byte of the body, or the time as signed, changed: the signature no longer covers it.
    let mut tampered = body();
    tampered[20] ^= 1;
    assert_eq!(refused(good, &tampered, now()), Refusal::BadSignature);
    let same_instant = "2019-11-27T04:01:02.123Z";
    assert_eq!(parse_request_time(same_instant), Some(now()));
    let r = refused(
        SignedHeaders {
            request_time: Some(same_instant),
            ..good
        },
        &body(),
        now(),
    );
    assert_eq!(
        r,
        Refusal::BadSignature,
        "the time is signed as text, not as an instant"
    );
    assert_eq!(
        r.to_string(),
        "Signature: does not verify over the request with the client's public key"
    );
}

#[test]
fn requests_outside_the_window_are_replays() {
    let v = vector();
    let good = SignedHeaders {
        client_id: Some(CLIENT),
        request_time: Some(TIME),
        signature: Some(vector_str(&v, "request", "Signature_header")),
    };
    let at = |ms: u64| UnixMillis(now().0 + ms);
    assert!(
        check(&good, &body(), at(300_000)).is_ok(),
        "at the window's edge"
    );
    assert!(
        check(&good, &body(), UnixMillis(now().0 - 300_000)).is_ok(),
        "a clock behind"
    );
    for late in [at(300_001), UnixMillis(now().0 - 300_001), at(86_400_000)] {
        let r = check(&good, &body(), late).unwrap_err();
        assert_eq!(r, Refusal::StaleRequestTime { window_secs: 300 });
        assert_eq!(r.result_code(), "INVALID_SIGNATURE");
        assert_eq!(
            r.to_string(),
            "Request-Time: must be within 300 s of notifyd's clock (a request is not accepted again later)"
        );
    }
}

#[test]
fn request_times_in_every_form_the_sdks_send() {
    let instant = Some(UnixMillis(1_574_827_262_000));
    for t in [
        "1574827262000",             // Java/Go SDKs since 2023, Antom
        "2019-11-27T04:01:02+00:00", // Python SDK
        "2019-11-27T04:01:02+0000",  // PHP SDK
        "2019-11-27T12:01:02.000+08:00",
        "2019-11-27T04:01:02Z",
    ] {
        assert_eq!(parse_request_time(t), instant, "{t}");
    }
    for bad in [
        "",
        "157482726200",
        "15748272620000",
        "2019-11-27T04:01:02",
        "now",
    ] {
        assert_eq!(parse_request_time(bad), None, "{bad}");
    }
}
