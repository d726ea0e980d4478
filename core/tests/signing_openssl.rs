//! Cross-checks against OpenSSL, an independent RSASSA-PKCS1-v1_5/SHA-256 implementation:
//! `openssl dgst -sha256 -sign` must produce our bytes and `-verify` must accept them.

mod signing_common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use notifyd_core::signing::{
    SigningKey, VerifyingKey, content_to_sign, parse_signature_header, sign_request,
};
use signing_common::{PRIVATE_PEM, PUBLIC_PEM, signing_key, sigvec_dir, verifying_key};

const OPENSSL: &str = "/usr/bin/openssl";

/// A directory under `std::env::temp_dir()` removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "notifyd-signing-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn openssl(args: &[&dyn AsRef<std::ffi::OsStr>]) -> std::process::Output {
    assert!(
        Path::new(OPENSSL).is_file(),
        "{OPENSSL} is required for the OpenSSL cross-check"
    );
    let mut cmd = Command::new(OPENSSL);
    for a in args {
        cmd.arg(a);
    }
    cmd.output().expect("running openssl")
}

fn openssl_sign(key_pem: &Path, content: &Path) -> Vec<u8> {
    let out = openssl(&[&"dgst", &"-sha256", &"-sign", &key_pem, &content]);
    assert!(
        out.status.success(),
        "openssl sign: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn openssl_verifies(pub_pem: &Path, sig: &Path, content: &Path) -> bool {
    let out = openssl(&[
        &"dgst",
        &"-sha256",
        &"-verify",
        &pub_pem,
        &"-signature",
        &sig,
        &content,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // openssl exits non-zero and prints "Verification failure" on a bad signature.
    out.status.success() && stdout.contains("Verified OK")
}

fn sample_contents() -> Vec<Vec<u8>> {
    vec![
        content_to_sign(
            "POST",
            "/aps/api/v1/payments/notifyPayment",
            "SANDBOX_5YC47N2ZQHJ004124",
            "1685599933871",
            br#"{"paymentRequestId":"x","paymentResult":{"resultStatus":"S"}}"#,
        ),
        content_to_sign("POST", "/", "c", "t", b""),
        // Non-ASCII and binary bytes in the body are signed as-is.
        content_to_sign(
            "POST",
            "/v2/payments/notifyVoid?a=1",
            "C",
            "2026-01-01T00:00:00Z",
            "\u{4f60}\u{597d}\0\r\n".as_bytes(),
        ),
    ]
}

#[test]
fn openssl_signatures_equal_ours_with_the_vector_key() {
    let scratch = Scratch::new();
    let key_pem = sigvec_dir().join(PRIVATE_PEM);
    let pub_pem = sigvec_dir().join(PUBLIC_PEM);
    let key = signing_key();
    for (i, content) in sample_contents().iter().enumerate() {
        let content_path = scratch.write(&format!("content{i}"), content);
        let ours = key.sign(content);
        assert_eq!(openssl_sign(&key_pem, &content_path), ours, "content {i}");

        let sig_path = scratch.write(&format!("sig{i}"), &ours);
        assert!(
            openssl_verifies(&pub_pem, &sig_path, &content_path),
            "content {i}"
        );

        let mut bad = ours.clone();
        bad[0] ^= 1;
        let bad_path = scratch.write(&format!("bad{i}"), &bad);
        assert!(
            !openssl_verifies(&pub_pem, &bad_path, &content_path),
            "tampered {i}"
        );
    }
}

/// Fresh keys exercise our PEM reader and DER walk on input we did not hand-pick, including a
/// 3072-bit modulus, and give a genuinely different key for the wrong-key check.
#[test]
fn fresh_openssl_keys_interoperate() {
    let scratch = Scratch::new();
    for bits in ["2048", "3072"] {
        let key_pem = scratch.path(&format!("key{bits}.pem"));
        let pub_pem = scratch.path(&format!("pub{bits}.pem"));
        let bits_opt = format!("rsa_keygen_bits:{bits}");
        let out = openssl(&[
            &"genpkey",
            &"-algorithm",
            &"RSA",
            &"-pkeyopt",
            &bits_opt,
            &"-out",
            &key_pem,
        ]);
        assert!(
            out.status.success(),
            "genpkey: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = openssl(&[&"pkey", &"-in", &key_pem, &"-pubout", &"-out", &pub_pem]);
        assert!(
            out.status.success(),
            "pkey -pubout: {}",
            String::from_utf8_lossy(&out.stderr)
        );

        let key = SigningKey::from_pkcs8_pem(&std::fs::read(&key_pem).unwrap()).unwrap();
        let public = VerifyingKey::from_spki_pem(&std::fs::read(&pub_pem).unwrap()).unwrap();
        assert_eq!(public.modulus_bits().to_string(), bits);
        assert_eq!(key.verifying_key(), public);

        let body =
            br#"{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"}}"#;
        let header = sign_request(
            &key,
            1,
            "POST",
            "/v1/payments/notifyPayment",
            "CID",
            "1700000000000",
            body,
        );
        let raw = parse_signature_header(&header).unwrap().signature;
        let content = content_to_sign(
            "POST",
            "/v1/payments/notifyPayment",
            "CID",
            "1700000000000",
            body,
        );

        let content_path = scratch.write("content", &content);
        assert_eq!(openssl_sign(&key_pem, &content_path), raw, "{bits}-bit");
        let sig_path = scratch.write("sig", &raw);
        assert!(
            openssl_verifies(&pub_pem, &sig_path, &content_path),
            "{bits}-bit"
        );

        assert!(public.verify(&content, &raw));
        // The vector key did not make this signature, and this key did not make the vector's.
        assert!(!verifying_key().verify(&content, &raw));
        assert!(!public.verify(&content, &signing_key().sign(&content)));
    }
}
