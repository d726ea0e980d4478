//! The self-generated vector in shared/spec/sigvec (PROTOCOL.md §1.7), reproduced byte for byte.

mod signing_common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use notifyd_core::signing::{
    VerifyError, VerifyingKey, content_to_sign, format_signature_header, sign_request,
    verify_response,
};
use signing_common::{read, signing_key, vector, vector_str, verifying_key};

const METHOD: &str = "POST";
const URI: &str = "/v1/payments/notifyPayment";
const CLIENT_ID: &str = "TEST_5X00000000000000";
const REQUEST_TIME: &str = "2019-11-27T12:01:02.123+08:00";
const RESPONSE_TIME: &str = "2019-11-27T12:01:02+08:00";

/// Splits `<prefix><body>` where `prefix` is the part built from headers.
fn body_of<'a>(content: &'a str, method: &str, time: &str) -> &'a [u8] {
    let prefix = format!("{method} {URI}\n{CLIENT_ID}.{time}.");
    content
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("vector content does not start with {prefix:?}"))
        .as_bytes()
}

#[test]
fn content_to_sign_rebuilds_the_request_vector() {
    let v = vector();
    let content = vector_str(&v, "request", "content_to_be_signed");
    let body = body_of(content, METHOD, REQUEST_TIME);
    let built = content_to_sign(METHOD, URI, CLIENT_ID, REQUEST_TIME, body);
    assert_eq!(built, content.as_bytes());
    assert_eq!(built, read("req_content.bin"));
    assert_eq!(
        hex(&built[..80]),
        vector_str(&v, "request", "content_hex_first_80")
    );
}

#[test]
fn request_signature_and_header_match_the_vector() {
    let v = vector();
    let content = vector_str(&v, "request", "content_to_be_signed");
    let raw = signing_key().sign(content.as_bytes());
    assert_eq!(raw.len(), 256);
    assert_eq!(
        STANDARD.encode(&raw),
        vector_str(&v, "request", "base64_signature")
    );
    assert_eq!(
        String::from_utf8(read("req_sig.b64")).unwrap().trim(),
        STANDARD.encode(&raw)
    );
    assert_eq!(
        format_signature_header(1, &raw),
        vector_str(&v, "request", "Signature_header")
    );

    let body = body_of(content, METHOD, REQUEST_TIME);
    let header = sign_request(
        &signing_key(),
        1,
        METHOD,
        URI,
        CLIENT_ID,
        REQUEST_TIME,
        body,
    );
    assert_eq!(header, vector_str(&v, "request", "Signature_header"));
}

#[test]
fn response_vector_verifies_and_tampering_fails() {
    let v = vector();
    let content = vector_str(&v, "response", "content_to_be_validated");
    let header = vector_str(&v, "response", "Signature_header");
    let body = body_of(content, METHOD, RESPONSE_TIME);
    let key = verifying_key();
    assert_eq!(key.modulus_bits(), 2048);

    assert_eq!(
        verify_response(&key, METHOD, URI, CLIENT_ID, RESPONSE_TIME, body, header),
        Ok(())
    );
    // The same signature sent raw (not URL-encoded) is accepted too.
    let raw_header = format!(
        "algorithm=RSA256,keyVersion=1,signature={}",
        vector_str(&v, "response", "base64_signature")
    );
    assert_eq!(
        verify_response(
            &key,
            METHOD,
            URI,
            CLIENT_ID,
            RESPONSE_TIME,
            body,
            &raw_header
        ),
        Ok(())
    );

    for i in 0..body.len() {
        let mut tampered = body.to_vec();
        tampered[i] ^= 0x01;
        assert_eq!(
            verify_response(
                &key,
                METHOD,
                URI,
                CLIENT_ID,
                RESPONSE_TIME,
                &tampered,
                header
            ),
            Err(VerifyError::BadSignature),
            "flipped body byte {i}"
        );
    }
    // Each header-derived part is covered by the signature as well.
    let bad = [
        verify_response(&key, "GET", URI, CLIENT_ID, RESPONSE_TIME, body, header),
        verify_response(
            &key,
            METHOD,
            "/v1/payments/notifyPaymenT",
            CLIENT_ID,
            RESPONSE_TIME,
            body,
            header,
        ),
        verify_response(
            &key,
            METHOD,
            URI,
            "TEST_5X00000000000001",
            RESPONSE_TIME,
            body,
            header,
        ),
        verify_response(&key, METHOD, URI, CLIENT_ID, REQUEST_TIME, body, header),
    ];
    for r in bad {
        assert_eq!(r, Err(VerifyError::BadSignature));
    }
}

#[test]
fn request_vector_verifies_with_the_public_key() {
    let v = vector();
    let content = vector_str(&v, "request", "content_to_be_signed");
    let raw = STANDARD
        .decode(vector_str(&v, "request", "base64_signature"))
        .unwrap();
    assert!(verifying_key().verify(content.as_bytes(), &raw));
    assert_eq!(signing_key().verifying_key(), verifying_key());
}

#[test]
fn wrong_key_fails() {
    let v = vector();
    let content = vector_str(&v, "response", "content_to_be_validated");
    let header = vector_str(&v, "response", "Signature_header");
    let body = body_of(content, METHOD, RESPONSE_TIME);

    // Same structure, different modulus: a valid-looking key that did not sign this.
    let mut der = signing_common::pem_to_der(&read(signing_common::PUBLIC_PEM));
    let mid = der.len() / 2;
    der[mid] ^= 0x5a;
    let other = VerifyingKey::from_spki_der(&der).expect("mutated modulus still parses");
    assert_ne!(other, verifying_key());
    assert_eq!(
        verify_response(&other, METHOD, URI, CLIENT_ID, RESPONSE_TIME, body, header),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn malformed_header_is_not_a_bad_signature() {
    let v = vector();
    let content = vector_str(&v, "response", "content_to_be_validated");
    let body = body_of(content, METHOD, RESPONSE_TIME);
    let ecc = "algorithm=ECC224, keyVersion=1, signature=AAAA";
    let err = verify_response(
        &verifying_key(),
        METHOD,
        URI,
        CLIENT_ID,
        RESPONSE_TIME,
        body,
        ecc,
    )
    .unwrap_err();
    assert!(matches!(err, VerifyError::MalformedHeader(_)), "{err:?}");
    assert!(err.to_string().contains("ECC224"), "{err}");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
