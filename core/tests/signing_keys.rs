//! Key loading: PEM and DER forms, strict SubjectPublicKeyInfo checks, and Debug output that
//! never shows key material.

mod signing_common;

use notifyd_core::signing::{KeyError, SigningKey, VerifyingKey};
use signing_common::{PRIVATE_PEM, PUBLIC_PEM, pem_to_der, read, signing_key, verifying_key};

#[test]
fn der_and_pem_forms_load_the_same_keys() {
    let spki = pem_to_der(&read(PUBLIC_PEM));
    assert_eq!(VerifyingKey::from_spki_der(&spki).unwrap(), verifying_key());

    let pkcs8 = pem_to_der(&read(PRIVATE_PEM));
    let from_der = SigningKey::from_pkcs8_der(&pkcs8).unwrap();
    assert_eq!(from_der.sign(b"x"), signing_key().sign(b"x"));
    assert_eq!(from_der.signature_len(), 256);
}

#[test]
fn pem_with_crlf_and_leading_text_loads() {
    let pem = String::from_utf8(read(PUBLIC_PEM)).unwrap();
    let crlf = format!("written by a test\r\n{}", pem.replace('\n', "\r\n"));
    assert_eq!(
        VerifyingKey::from_spki_pem(crlf.as_bytes()).unwrap(),
        verifying_key()
    );
}

#[test]
fn each_loader_wants_its_own_pem_label() {
    assert!(matches!(
        SigningKey::from_pkcs8_pem(&read(PUBLIC_PEM)),
        Err(KeyError::PemLabel {
            expected: "PRIVATE KEY",
            ..
        })
    ));
    assert!(matches!(
        VerifyingKey::from_spki_pem(&read(PRIVATE_PEM)),
        Err(KeyError::PemLabel {
            expected: "PUBLIC KEY",
            ..
        })
    ));
    // A PKCS#1 file gets a hint on how to convert it.
    let pkcs1 = String::from_utf8(read(PRIVATE_PEM))
        .unwrap()
        .replace("PRIVATE KEY", "RSA PRIVATE KEY");
    let err = SigningKey::from_pkcs8_pem(pkcs1.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("openssl pkcs8 -topk8"), "{err}");
}

#[test]
fn spki_der_is_not_a_private_key_and_vice_versa() {
    let spki = pem_to_der(&read(PUBLIC_PEM));
    let pkcs8 = pem_to_der(&read(PRIVATE_PEM));
    assert!(matches!(
        SigningKey::from_pkcs8_der(&spki),
        Err(KeyError::Rejected(_))
    ));
    assert!(VerifyingKey::from_spki_der(&pkcs8).is_err());
}

#[test]
fn spki_structure_is_checked_strictly() {
    let good = pem_to_der(&read(PUBLIC_PEM));
    // 30 82 01 22 | 30 0d | 06 09 <2a 86 48 86 f7 0d 01 01 01> | 05 00 | 03 82 01 0f 00 ...
    assert_eq!(
        &good[..8],
        &[0x30, 0x82, 0x01, 0x22, 0x30, 0x0d, 0x06, 0x09]
    );
    assert_eq!(good[16], 0x01, "last OID byte");
    assert_eq!(&good[19..24], &[0x03, 0x82, 0x01, 0x0f, 0x00]);

    let mut other_oid = good.clone();
    other_oid[16] = 0x0b; // sha256WithRSAEncryption is a signature OID, not a key OID
    assert_eq!(
        VerifyingKey::from_spki_der(&other_oid),
        Err(KeyError::NotRsa)
    );

    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(
        VerifyingKey::from_spki_der(&trailing),
        Err(KeyError::Der("trailing data"))
    );

    let mut unused_bits = good.clone();
    unused_bits[23] = 0x01;
    assert_eq!(
        VerifyingKey::from_spki_der(&unused_bits),
        Err(KeyError::Der("BIT STRING has unused bits"))
    );

    let mut params = good.clone();
    params[17] = 0x04; // OCTET STRING instead of NULL
    assert!(matches!(
        VerifyingKey::from_spki_der(&params),
        Err(KeyError::Der(_))
    ));

    for cut in [0, 1, 4, 20, good.len() - 1] {
        assert!(
            VerifyingKey::from_spki_der(&good[..cut]).is_err(),
            "truncated at {cut}"
        );
    }
}

#[test]
fn debug_shows_no_key_material() {
    assert_eq!(
        format!("{:?}", signing_key()),
        r#"SigningKey { algorithm: "RSA256", modulus_bytes: 256, .. }"#
    );
    assert_eq!(
        format!("{:?}", verifying_key()),
        r#"VerifyingKey { algorithm: "RSA256", modulus_bits: 2048, .. }"#
    );
}

#[test]
fn key_errors_do_not_echo_input() {
    let pem = String::from_utf8(read(PRIVATE_PEM)).unwrap();
    let corrupt = pem.replacen("MII", "M!I", 1);
    let err = SigningKey::from_pkcs8_pem(corrupt.as_bytes()).unwrap_err();
    assert_eq!(err, KeyError::PemBase64);
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("MII") && !shown.contains("M!I"), "{shown}");
}
