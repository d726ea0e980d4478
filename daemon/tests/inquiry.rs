//! inquiryPayment (CONTRACT.md §2, §2.2) against the real daemon on loopback: what the operator's
//! ingest listener answers, and the merchant-facing listener with real keys in both directions:
//! requests signed by `openssl dgst` and verified by notifyd, answers signed by notifyd and
//! verified by `openssl dgst`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use notifyd_core::UnixMillis;
use notifyd_core::signing::{format_signature_header, parse_signature_header};
use serde_json::{Value, json};
use support::trust::{secret, sigvec_dir};
use support::{Harness, payment, void};

const INQUIRY: &str = "/v1/payments/inquiryPayment";
const MERCHANT: &str = "2022091234567890";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_void_counts_whichever_id_the_merchant_asks_by() {
    // Review finding 3, reproduced: asked by paymentRequestId notifyd said SUCCESS for a
    // payment it answered CANCELLED by paymentId.
    let h = Harness::start("S").await;
    let url = h.merchant_url("/n");
    h.submit(&payment(&url, "PAY-V")).await;
    let by_request = json!({"partnerId": "P0001", "paymentRequestId": "REQ-PAY-V"});
    let (status, a) = h.post(INQUIRY, &by_request).await;
    assert_eq!(
        (status, a["paymentStatus"].as_str()),
        (200, Some("SUCCESS"))
    );
    assert_eq!(a["paymentId"], "PAY-V");
    assert_eq!(
        a["paymentAmount"],
        json!({"currency": "USD", "value": "10000"})
    );

    h.submit(&void(&url, "PAY-V", "F")).await;
    let (_, a) = h.post(INQUIRY, &by_request).await;
    assert_eq!(
        a["paymentStatus"], "SUCCESS",
        "a failed void changes nothing"
    );

    let mut voided = void(&url, "PAY-V", "S");
    voided["body"]["voidRequestId"] = json!("VOID-2");
    h.submit(&voided).await;
    for ask in [
        json!({"paymentId": "PAY-V"}),
        json!({"paymentRequestId": "REQ-PAY-V"}),
        by_request.clone(),
        json!({"paymentId": "PAY-V", "paymentRequestId": "unknown"}),
    ] {
        let (status, a) = h.post(INQUIRY, &ask).await;
        assert_eq!(status, 200);
        assert_eq!(a["result"]["resultStatus"], "S", "{ask}");
        assert_eq!(a["paymentStatus"], "CANCELLED", "{ask}");
    }
    // The partner named narrows either lookup.
    for ask in [
        json!({"partnerId": "OTHER", "paymentRequestId": "REQ-PAY-V"}),
        json!({"partnerId": "OTHER", "paymentId": "PAY-V"}),
    ] {
        let (_, a) = h.post(INQUIRY, &ask).await;
        assert_eq!(a["result"]["resultCode"], "UNKNOWN_EXCEPTION", "{ask}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_payment_is_unknown_unless_notifyd_is_authoritative() {
    let h = Harness::start("S").await;
    let (status, a) = h.post(INQUIRY, &json!({"paymentId": "NOPE"})).await;
    assert_eq!(status, 200, "a business answer");
    assert_eq!(
        (
            a["result"]["resultStatus"].as_str(),
            a["result"]["resultCode"].as_str()
        ),
        (Some("U"), Some("UNKNOWN_EXCEPTION")),
        "{a}"
    );
    assert!(a.get("paymentStatus").is_none());

    let h = Harness::start_with("S", |c| c.inquiry.authoritative = true).await;
    let (status, a) = h.post(INQUIRY, &json!({"paymentId": "NOPE"})).await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            a["result"]["resultStatus"].as_str(),
            a["result"]["resultCode"].as_str()
        ),
        (Some("F"), Some("ORDER_NOT_EXIST"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_inquiries_are_business_answers_with_http_200() {
    let h = Harness::start("S").await;
    for (ask, msg) in [
        (
            json!({"partnerId": "P0001"}),
            "paymentId: paymentId or paymentRequestId is required",
        ),
        (
            json!({"paymentId": ""}),
            "paymentId: must not be empty (omit the field or send null)",
        ),
        (
            json!({"paymentId": "P", "x": "1"}),
            "x: is not a field of inquiryPayment",
        ),
    ] {
        let (status, a) = h.post(INQUIRY, &ask).await;
        assert_eq!(status, 200, "{ask}");
        assert_eq!(
            a["result"],
            json!({"resultStatus": "F", "resultCode": "PARAM_ILLEGAL", "resultMessage": msg})
        );
    }
}

// ---- the merchant-facing listener -------------------------------------------------------

fn openssl_missing() -> bool {
    let missing = Command::new("openssl").arg("version").output().is_err();
    if missing {
        support::skip("openssl is not installed");
    }
    missing
}

/// notifyd's own answer-signing key, made by openssl: PKCS#8 private and SPKI public PEM.
fn notifyd_keys(dir: &Path) -> (PathBuf, PathBuf) {
    let private = dir.join("notifyd.pem");
    let public = dir.join("notifyd.pub");
    let ok = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&private)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    secret(dir, "notifyd.pem", &std::fs::read(&private).unwrap());
    let ok = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    (private, public)
}

/// The inquiry profile (`strict`), the listener and one merchant holding the sigvec key.
fn merchant_config(private: &Path) -> String {
    format!(
        "client_id = \"NOTIFYD_WALLET\"\nkey_version = 3\nprivate_key_file = \"{}\"\n\
         [inquiry]\nlisten = \"127.0.0.1:0\"\nprofile = \"strict\"\n\
         [merchants.shop1]\nclient_id = \"{MERCHANT}\"\npublic_key_file = \"{}\"\n\
         partner_ids = [\"P0001\"]\n",
        private.display(),
        sigvec_dir().join("test_public_key_x509.pem").display(),
    )
}

/// RSASSA-PKCS1-v1_5/SHA-256 over `content` by `openssl dgst`, with the merchant's (sigvec) key.
fn openssl_sign(dir: &Path, content: &[u8]) -> Vec<u8> {
    let content_file = dir.join("req.content");
    std::fs::write(&content_file, content).unwrap();
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(sigvec_dir().join("test_private_key_pkcs8.pem"))
        .arg(&content_file)
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

fn openssl_verifies(dir: &Path, public: &Path, content: &[u8], signature: &[u8]) -> bool {
    let (c, s) = (dir.join("resp.content"), dir.join("resp.sig"));
    std::fs::write(&c, content).unwrap();
    std::fs::write(&s, signature).unwrap();
    Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(public)
        .arg("-signature")
        .arg(&s)
        .arg(&c)
        .output()
        .unwrap()
        .status
        .success()
}

fn now_text() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    UnixMillis(ms).rfc3339_millis().to_string()
}

struct Answer {
    status: u16,
    body: Value,
    raw: Vec<u8>,
    headers: http::HeaderMap,
}

/// How a merchant calls: headers as given (`None` leaves one out), body bytes as given.
async fn call(h: &Harness, headers: &[(&str, Option<String>)], body: &[u8]) -> Answer {
    let addr = h
        .notifyd
        .as_ref()
        .unwrap()
        .inquiry
        .expect("inquiry listener");
    let mut req = http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}{INQUIRY}"))
        .header("content-type", "application/json; charset=UTF-8");
    for (name, value) in headers {
        if let Some(v) = value {
            req = req.header(*name, v);
        }
    }
    let resp = h
        .client
        .request(req.body(Full::new(Bytes::copy_from_slice(body))).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let raw = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Answer {
        status,
        body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
        raw,
        headers,
    }
}

/// Request headers by name; `None` leaves one out.
type Headers = Vec<(&'static str, Option<String>)>;

/// A merchant's signed request: `Signature` by openssl over the protocol's content.
fn signed(dir: &Path, client: &str, time: &str, body: &[u8]) -> Headers {
    let mut content = format!("POST {INQUIRY}\n{client}.{time}.").into_bytes();
    content.extend_from_slice(body);
    let sig = format_signature_header(1, &openssl_sign(dir, &content));
    vec![
        ("client-id", Some(client.to_owned())),
        ("request-time", Some(time.to_owned())),
        ("signature", Some(sig)),
    ]
}

/// Checks the answer's signature headers with openssl and returns its `Client-Id`.
fn verified(dir: &Path, public: &Path, a: &Answer) -> String {
    let text = |n: &str| a.headers[n].to_str().unwrap().to_owned();
    let (client, time, sig) = (text("client-id"), text("response-time"), text("signature"));
    let header = parse_signature_header(&sig).unwrap();
    assert_eq!(
        header.key_version.as_deref(),
        Some("3"),
        "the profile's key_version"
    );
    let mut content = format!("POST {INQUIRY}\n{client}.{time}.").into_bytes();
    content.extend_from_slice(&a.raw);
    assert!(
        openssl_verifies(dir, public, &content, &header.signature),
        "openssl rejects notifyd's answer signature"
    );
    let mut tampered = content.clone();
    *tampered.last_mut().unwrap() ^= 1;
    assert!(!openssl_verifies(dir, public, &tampered, &header.signature));
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merchants_ask_signed_and_get_signed_answers_about_their_partners_only() {
    if openssl_missing() {
        return;
    }
    let keys = tempfile::tempdir().unwrap();
    let (private, public) = notifyd_keys(keys.path());
    let h = Harness::start_extra("S", |_| merchant_config(&private), |_| {}).await;
    let dir = h.dir.path().to_owned();
    let url = h.merchant_url("/n");
    h.submit(&payment(&url, "PAY-M")).await;
    h.submit(&void(&url, "PAY-M", "S")).await;
    let mut other = payment(&url, "PAY-OTHER");
    other["body"]["partnerId"] = json!("P0002");
    h.submit(&other).await;

    // The seed's sample A: by the merchant's own paymentRequestId, and the void counts.
    let body = br#"{"partnerId":"P0001","paymentRequestId":"REQ-PAY-M"}"#;
    let a = call(&h, &signed(&dir, MERCHANT, &now_text(), body), body).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body["result"]["resultStatus"], "S", "{}", a.body);
    assert_eq!(a.body["paymentStatus"], "CANCELLED");
    assert_eq!(
        verified(&dir, &public, &a),
        MERCHANT,
        "the merchant's own Client-Id"
    );

    // Another partner's payment is answered as unknown, signed.
    let body = br#"{"paymentId":"PAY-OTHER"}"#;
    let a = call(&h, &signed(&dir, MERCHANT, &now_text(), body), body).await;
    assert_eq!(
        a.body["result"]["resultCode"], "UNKNOWN_EXCEPTION",
        "{}",
        a.body
    );
    assert!(a.body.get("paymentStatus").is_none());
    verified(&dir, &public, &a);

    // A bad body still gets a signed business answer.
    let body = br#"{"partnerId":"P0001"}"#;
    let a = call(&h, &signed(&dir, MERCHANT, &now_text(), body), body).await;
    assert_eq!(
        (a.status, a.body["result"]["resultCode"].as_str()),
        (200, Some("PARAM_ILLEGAL"))
    );
    verified(&dir, &public, &a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_or_replayed_requests_are_refused_signed() {
    if openssl_missing() {
        return;
    }
    let keys = tempfile::tempdir().unwrap();
    let (private, public) = notifyd_keys(keys.path());
    let h = Harness::start_extra("S", |_| merchant_config(&private), |_| {}).await;
    let dir = h.dir.path().to_owned();
    h.submit(&payment(&h.merchant_url("/n"), "PAY-R")).await;
    let body = br#"{"paymentId":"PAY-R"}"#;
    let good = signed(&dir, MERCHANT, &now_text(), body);
    assert_eq!(call(&h, &good, body).await.body["paymentStatus"], "SUCCESS");

    let without = |name: &str| -> Headers {
        good.iter()
            .map(|(n, v)| (*n, if *n == name { None } else { v.clone() }))
            .collect()
    };
    let stale_time = UnixMillis(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
            - 600_000,
    )
    .rfc3339_millis()
    .to_string();
    let tampered = br#"{"paymentId":"PAY-S"}"#;
    let cases: Vec<(Headers, &[u8], &str, &str)> = vec![
        (
            without("signature"),
            body,
            "INVALID_SIGNATURE",
            "Signature: is required",
        ),
        (
            without("client-id"),
            body,
            "ACCESS_DENIED",
            "Client-Id: is required",
        ),
        (
            without("request-time"),
            body,
            "INVALID_SIGNATURE",
            "Request-Time: is required",
        ),
        (
            signed(&dir, "SOMEONE_ELSE", &now_text(), body),
            body,
            "ACCESS_DENIED",
            "Client-Id: is not a client allowed to call this API",
        ),
        (
            good.clone(),
            tampered,
            "INVALID_SIGNATURE",
            "Signature: does not verify over the request with the client's public key",
        ),
        (
            signed(&dir, MERCHANT, &stale_time, body),
            body,
            "INVALID_SIGNATURE",
            "Request-Time: must be within 300 s of notifyd's clock (a request is not accepted again later)",
        ),
    ];
    for (headers, body, code, message) in cases {
        let a = call(&h, &headers, body).await;
        assert_eq!(a.status, 200, "{message}");
        assert_eq!(
            a.body,
            json!({"result": {"resultCode": code, "resultStatus": "F", "resultMessage": message}})
        );
        let client = verified(&dir, &public, &a);
        let merchant_asked = headers
            .iter()
            .any(|(n, v)| *n == "client-id" && v.as_deref() == Some(MERCHANT));
        assert_eq!(
            client,
            if merchant_asked {
                MERCHANT
            } else {
                "NOTIFYD_WALLET"
            },
            "only a configured merchant's Client-Id is echoed"
        );
    }

    // The ingest API is not served here: a merchant cannot submit notifications.
    let addr = h.notifyd.as_ref().unwrap().inquiry.unwrap();
    let req = http::Request::post(format!("http://{addr}/v1/notifications"))
        .body(Full::new(Bytes::from(
            serde_json::to_vec(&payment("http://x/n", "P")).unwrap(),
        )))
        .unwrap();
    assert_eq!(h.client.request(req).await.unwrap().status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merchants_and_keys_reload_like_profiles() {
    if openssl_missing() {
        return;
    }
    let keys = tempfile::tempdir().unwrap();
    let (private, _) = notifyd_keys(keys.path());
    let h = Harness::start_extra("S", |_| merchant_config(&private), |_| {}).await;
    let dir = h.dir.path().to_owned();
    h.submit(&payment(&h.merchant_url("/n"), "PAY-H")).await;
    let body = br#"{"paymentId":"PAY-H"}"#;
    let code = |a: Answer| a.body["result"]["resultCode"].as_str().unwrap().to_owned();
    assert_eq!(
        code(call(&h, &signed(&dir, MERCHANT, &now_text(), body), body).await),
        "SUCCESS"
    );

    // The merchant onboarded under a new Client-Id: what SIGHUP does, with a config re-read.
    let mut reloaded = h.config.clone();
    reloaded.merchants.get_mut("shop1").unwrap().client_id = "NEW_ID".into();
    let app = &h.notifyd.as_ref().unwrap().app;
    app.replace_inquiry(notifyd_daemon::inquiry::InquirySettings::build(&reloaded).unwrap());
    assert_eq!(
        code(call(&h, &signed(&dir, MERCHANT, &now_text(), body), body).await),
        "ACCESS_DENIED"
    );
    assert_eq!(
        code(call(&h, &signed(&dir, "NEW_ID", &now_text(), body), body).await),
        "SUCCESS"
    );
}
