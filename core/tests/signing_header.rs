//! `Signature` header parsing: every spelling PROTOCOL.md §1.1/§1.6 says appears on the wire.

use notifyd_core::signing::{HeaderError, format_signature_header, parse_signature_header};

/// Raw bytes whose base64 is `+/+/AQ==`: all three characters that URL-encoding changes.
const RAW: [u8; 4] = [0xfb, 0xff, 0xbf, 0x01];
const B64: &str = "+/+/AQ==";
const ENCODED: &str = "%2B%2F%2B%2FAQ%3D%3D";

fn sig(header: &str) -> Vec<u8> {
    parse_signature_header(header)
        .unwrap_or_else(|e| panic!("{header:?}: {e}"))
        .signature
}

#[test]
fn doc_and_sdk_spellings_decode_to_the_same_bytes() {
    let spellings = [
        format!("algorithm=RSA256, keyVersion=1, signature={ENCODED}"),
        format!("algorithm=RSA256,keyVersion=1,signature={ENCODED}"),
        format!("algorithm=RSA256,keyVersion=1,signature={B64}"),
        format!("algorithm=RSA256, keyVersion=1, signature={B64}"),
        format!("  algorithm = RSA256 ,\tkeyVersion=1 , signature = {B64}  "),
        format!("ALGORITHM=RSA256, KEYVERSION=1, SIGNATURE={ENCODED}"),
        format!("Algorithm=rsa256, keyversion=1, Signature={B64}"),
        format!("signature={ENCODED}, keyVersion=1, algorithm=Rsa256"),
        // Lower-case hex escapes are legal URL-encoding.
        "algorithm=RSA256, keyVersion=1, signature=%2b%2f%2b%2fAQ%3d%3d".to_owned(),
        // Padding stripped, as Java's split("=") does to a raw signature.
        "algorithm=RSA256, keyVersion=1, signature=+/+/AQ".to_owned(),
    ];
    for h in &spellings {
        assert_eq!(sig(h), RAW, "{h}");
    }
}

#[test]
fn formatted_header_round_trips() {
    let h = format_signature_header(1, &RAW);
    assert_eq!(
        h,
        format!("algorithm=RSA256, keyVersion=1, signature={ENCODED}")
    );
    let parsed = parse_signature_header(&h).unwrap();
    assert_eq!(parsed.algorithm, "RSA256");
    assert_eq!(parsed.key_version.as_deref(), Some("1"));
    assert_eq!(parsed.key_version_number(), Some(1));
    assert_eq!(parsed.signature, RAW);
}

#[test]
fn algorithm_and_key_version_are_kept_as_sent() {
    let parsed = parse_signature_header(&format!("algorithm=rsa256,signature={B64}")).unwrap();
    assert_eq!(parsed.algorithm, "rsa256");
    assert_eq!(parsed.key_version, None);
    let parsed =
        parse_signature_header(&format!("algorithm=RSA256,keyVersion=0,signature={B64}")).unwrap();
    assert_eq!(parsed.key_version_number(), Some(0));
}

#[test]
fn unknown_pairs_and_a_trailing_comma_are_ignored() {
    let h = format!("algorithm=RSA256, charset=UTF-8, keyVersion=2, x=y=z, signature={ENCODED},");
    let parsed = parse_signature_header(&h).unwrap();
    assert_eq!(parsed.signature, RAW);
    assert_eq!(parsed.key_version_number(), Some(2));
}

#[test]
fn other_algorithms_are_rejected_by_name() {
    for alg in ["ECC224", "ecc224", "RSA", "RSA2", "RSA512", ""] {
        let err = parse_signature_header(&format!("algorithm={alg}, signature={B64}")).unwrap_err();
        assert_eq!(
            err,
            HeaderError::UnsupportedAlgorithm {
                algorithm: alg.to_owned()
            }
        );
    }
    let err = parse_signature_header(&format!("algorithm=ECC224, signature={B64}")).unwrap_err();
    assert!(err.to_string().contains("ECC224"), "{err}");
    assert!(err.to_string().contains("RSA256"), "{err}");
}

#[test]
fn missing_or_empty_parts_are_rejected() {
    assert_eq!(
        parse_signature_header("algorithm=RSA256, keyVersion=1"),
        Err(HeaderError::MissingSignature)
    );
    assert_eq!(
        parse_signature_header("algorithm=RSA256, keyVersion=1, signature="),
        Err(HeaderError::MissingSignature)
    );
    assert_eq!(
        parse_signature_header("algorithm=RSA256, signature=%3D%3D"),
        Err(HeaderError::SignatureEncoding)
    );
    assert_eq!(
        parse_signature_header(&format!("keyVersion=1, signature={B64}")),
        Err(HeaderError::MissingAlgorithm)
    );
    assert_eq!(
        parse_signature_header(""),
        Err(HeaderError::MissingAlgorithm)
    );
}

#[test]
fn garbage_is_rejected() {
    let cases: [(&str, HeaderError); 8] = [
        ("garbage", HeaderError::MalformedPair { index: 0 }),
        // `;` is not a separator, so the tail is read as the algorithm and is not echoed.
        (
            "algorithm=RSA256; signature=AQ==",
            HeaderError::UnsupportedAlgorithm {
                algorithm: "<not an algorithm name>".to_owned(),
            },
        ),
        (
            "algorithm=RSA256, signature AQ==",
            HeaderError::MalformedPair { index: 1 },
        ),
        (
            "algorithm=RSA256, =AQ==",
            HeaderError::MalformedPair { index: 1 },
        ),
        (
            "algorithm=RSA256, sig nature=AQ==",
            HeaderError::MalformedPair { index: 1 },
        ),
        (
            "algorithm=RSA256, signature=not base64!",
            HeaderError::SignatureEncoding,
        ),
        // base64url is not the wire alphabet (PROTOCOL.md §1.8).
        (
            "algorithm=RSA256, signature=-_-_AQ==",
            HeaderError::SignatureEncoding,
        ),
        // Double URL-encoding leaves `%2B` after one decode, which is not base64.
        (
            "algorithm=RSA256, signature=%252B%252FAQ%253D%253D",
            HeaderError::SignatureEncoding,
        ),
    ];
    for (h, want) in cases {
        assert_eq!(parse_signature_header(h), Err(want), "{h}");
    }
}

#[test]
fn a_plus_is_a_base64_digit_not_a_space() {
    // If '+' were form-decoded to ' ' this would fail to decode or give other bytes.
    assert_eq!(sig("algorithm=RSA256,signature=++++"), [0xfb, 0xef, 0xbe]);
}

#[test]
fn duplicate_known_keys_are_rejected() {
    assert_eq!(
        parse_signature_header(&format!(
            "algorithm=RSA256, signature={B64}, signature=AAAA"
        )),
        Err(HeaderError::DuplicateKey { key: "signature" })
    );
    assert_eq!(
        parse_signature_header(&format!(
            "algorithm=RSA256, Algorithm=ECC224, signature={B64}"
        )),
        Err(HeaderError::DuplicateKey { key: "algorithm" })
    );
}

#[test]
fn errors_never_echo_the_signature() {
    let secretish = "c2lnbmF0dXJlLXRleHQtdGhhdC1tdXN0LW5vdC1sZWFr";
    let headers = [
        format!("algorithm=ECC224, signature={secretish}"),
        format!("algorithm=RSA256; signature={secretish}"),
        format!("algorithm={secretish}"),
        format!("algorithm=RSA256, signature={secretish}!"),
        format!("algorithm=RSA256, signature={secretish}, signature={secretish}"),
        format!("signature={secretish}"),
    ];
    for h in &headers {
        let err = parse_signature_header(h).unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(&secretish[..12]), "{shown}");
    }
}
