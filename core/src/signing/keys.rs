//! RSA keys: the merchant's PKCS#8 private key and the counterparty's X.509 public key
//! (PROTOCOL.md §1.3), in PEM or DER.

use ring::rand::SystemRandom;
use ring::signature::{
    RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair, UnparsedPublicKey,
};

use super::{pem, spki};

/// Why a key could not be loaded. Never carries key bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// No `-----BEGIN ...-----` line.
    #[error("no PEM block found")]
    PemNoBlock,
    /// The PEM block is of another kind, e.g. `RSA PRIVATE KEY` (PKCS#1) instead of PKCS#8.
    #[error(
        "PEM label is `{found}`, expected `{expected}` (convert PKCS#1 keys with \
         `openssl pkcs8 -topk8 -nocrypt` or `openssl rsa -pubout`)"
    )]
    PemLabel {
        /// The label this loader needs.
        expected: &'static str,
        /// The label found (cut to 40 characters).
        found: String,
    },
    /// No matching `-----END ...-----` line.
    #[error("PEM block has no matching END line")]
    PemUnterminated,
    /// The PEM body is not base64 (or is empty, or has encapsulated headers).
    #[error("PEM body is not valid base64")]
    PemBase64,
    /// The SubjectPublicKeyInfo DER is malformed.
    #[error("malformed SubjectPublicKeyInfo: {0}")]
    Der(&'static str),
    /// The public key's algorithm is not rsaEncryption.
    #[error("public key is not rsaEncryption (OID 1.2.840.113549.1.1.1)")]
    NotRsa,
    /// The RSA modulus is too small or too large to verify with.
    #[error("RSA modulus of {bits} bits is outside 2048..=8192")]
    KeySize {
        /// The modulus size found.
        bits: usize,
    },
    /// ring refused the PKCS#8 private key (its reason, e.g. `InvalidEncoding`, `TooSmall`).
    #[error("private key rejected: {0}")]
    Rejected(String),
}

/// The merchant's RSA private key, for RSASSA-PKCS1-v1_5 with SHA-256.
///
/// ring accepts 2048- to 4096-bit keys. Cheap to share behind an `Arc`; `Send + Sync`.
pub struct SigningKey {
    pair: RsaKeyPair,
    // The one place core holds an OS randomness handle: ring's signing API demands one. For
    // PKCS#1 v1.5 ring 0.17 does not draw from it (the padding is deterministic and the private
    // operation is constant-time rather than blinded), so signatures are reproducible.
    rng: SystemRandom,
}

impl SigningKey {
    /// From `-----BEGIN PRIVATE KEY-----` (unencrypted PKCS#8) PEM text.
    pub fn from_pkcs8_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let mut der = pem::decode(pem, "PRIVATE KEY")?;
        let key = Self::from_pkcs8_der(&der);
        // Best effort: the optimiser may still leave copies, but don't keep the obvious one.
        der.fill(0);
        std::hint::black_box(&der);
        key
    }

    /// From unencrypted PKCS#8 DER.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        let pair = RsaKeyPair::from_pkcs8(der).map_err(|e| KeyError::Rejected(e.to_string()))?;
        Ok(SigningKey {
            pair,
            rng: SystemRandom::new(),
        })
    }

    /// The raw RSASSA-PKCS1-v1_5/SHA-256 signature of `content` (as long as the modulus).
    /// Deterministic: the same key and content always give the same bytes.
    pub fn sign(&self, content: &[u8]) -> Vec<u8> {
        let mut sig = vec![0; self.pair.public().modulus_len()];
        // ring fails only on a wrong output length (sized above) or an RNG failure, which
        // PKCS#1 v1.5 never consults; a panic here would be a ring contract change.
        self.pair
            .sign(&RSA_PKCS1_SHA256, &self.rng, content, &mut sig)
            .expect("RSA PKCS#1 v1.5 signing with a correctly sized buffer");
        sig
    }

    /// The matching public key, e.g. to check a configuration or self-test a signature.
    pub fn verifying_key(&self) -> VerifyingKey {
        let rsa_der = self.pair.public().as_ref().to_vec();
        let modulus_bits =
            spki::check_rsa_public_key(&rsa_der).unwrap_or(self.pair.public().modulus_len() * 8);
        VerifyingKey {
            rsa_der,
            modulus_bits,
        }
    }

    /// Length of the modulus, and so of every signature, in bytes.
    pub fn signature_len(&self) -> usize {
        self.pair.public().modulus_len()
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &"RSA256")
            .field("modulus_bytes", &self.signature_len())
            .finish_non_exhaustive()
    }
}

/// The counterparty's RSA public key, for verifying RSASSA-PKCS1-v1_5/SHA-256 signatures.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    /// PKCS#1 `RSAPublicKey` DER, already checked by [`spki`].
    rsa_der: Vec<u8>,
    modulus_bits: usize,
}

impl VerifyingKey {
    /// From `-----BEGIN PUBLIC KEY-----` (X.509 SubjectPublicKeyInfo) PEM text.
    pub fn from_spki_pem(pem: &[u8]) -> Result<Self, KeyError> {
        Self::from_spki_der(&pem::decode(pem, "PUBLIC KEY")?)
    }

    /// From X.509 SubjectPublicKeyInfo DER (rsaEncryption, 2048 to 8192 bits).
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        let (rsa_der, modulus_bits) = spki::rsa_public_key(der)?;
        Ok(VerifyingKey {
            rsa_der: rsa_der.to_vec(),
            modulus_bits,
        })
    }

    /// Whether `signature` is a valid RSASSA-PKCS1-v1_5/SHA-256 signature of `content`.
    pub fn verify(&self, content: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &self.rsa_der)
            .verify(content, signature)
            .is_ok()
    }

    /// Size of the RSA modulus in bits.
    pub fn modulus_bits(&self) -> usize {
        self.modulus_bits
    }
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("algorithm", &"RSA256")
            .field("modulus_bits", &self.modulus_bits)
            .finish_non_exhaustive()
    }
}
