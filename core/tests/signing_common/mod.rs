//! Fixture access shared by the `signing_*` integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};

use notifyd_core::signing::{SigningKey, VerifyingKey};

/// `shared/spec/sigvec`, which sits beside the repository checkout (`/work/main/../shared`).
///
/// `NOTIFYD_SIGVEC_DIR` overrides it; otherwise the ancestors of the crate directory are
/// searched, so the same tests run from the main checkout and from a nested worktree. A missing
/// fixture is a failure, never a skip: these tests are the only proof of SDK compatibility.
pub fn sigvec_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("NOTIFYD_SIGVEC_DIR") {
        let dir = PathBuf::from(dir);
        assert!(
            dir.join("vector.json").is_file(),
            "NOTIFYD_SIGVEC_DIR={} has no vector.json",
            dir.display()
        );
        return dir;
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    for ancestor in manifest.ancestors().skip(1) {
        let dir = ancestor.join("shared/spec/sigvec");
        if dir.join("vector.json").is_file() {
            return dir;
        }
    }
    panic!(
        "signature test vectors not found: expected shared/spec/sigvec/vector.json beside the \
         checkout (e.g. {}/../../shared/spec/sigvec) or NOTIFYD_SIGVEC_DIR to point at it",
        manifest.display()
    );
}

pub fn read(name: &str) -> Vec<u8> {
    let path = sigvec_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

pub fn vector() -> serde_json::Value {
    serde_json::from_slice(&read("vector.json")).expect("vector.json is JSON")
}

pub fn vector_str<'a>(v: &'a serde_json::Value, section: &str, field: &str) -> &'a str {
    v[section][field]
        .as_str()
        .unwrap_or_else(|| panic!("vector.json lacks {section}.{field}"))
}

pub const PRIVATE_PEM: &str = "test_private_key_pkcs8.pem";
pub const PUBLIC_PEM: &str = "test_public_key_x509.pem";

pub fn signing_key() -> SigningKey {
    SigningKey::from_pkcs8_pem(&read(PRIVATE_PEM)).expect("test private key loads")
}

pub fn verifying_key() -> VerifyingKey {
    VerifyingKey::from_spki_pem(&read(PUBLIC_PEM)).expect("test public key loads")
}

/// The DER inside a PEM file, decoded independently of the library's PEM reader.
pub fn pem_to_der(pem: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let text = std::str::from_utf8(pem).expect("PEM is ASCII");
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .flat_map(|l| l.trim().chars())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("PEM body is base64")
}
