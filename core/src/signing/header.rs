//! The `Signature` header: `algorithm=RSA256, keyVersion=1, signature=<urlencoded base64>`.

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// The only algorithm accepted (PROTOCOL.md §10: ECC224 is documented but no SDK implements it).
pub const ALGORITHM_RSA256: &str = "RSA256";

/// Java `URLEncoder` / Python `quote_plus` keep exactly these unescaped, so `+ / =` become
/// `%2B %2F %3D` and our header is byte-identical to the SDKs'.
const FORM_URLENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'*');

/// Standard alphabet; padding optional on input because some senders strip it (§1.6 notes
/// Java's own parser loses it) and the RSA check, not the padding, is what authenticates.
const LENIENT_STANDARD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A parsed `Signature` header.
#[derive(Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    /// The algorithm as sent (any case of `RSA256`; anything else is rejected by the parser).
    pub algorithm: String,
    /// `keyVersion` as sent, if present. Docs use `0` and `1`; the SDKs default to `1`.
    pub key_version: Option<String>,
    /// The raw signature bytes, after URL- and base64-decoding.
    pub signature: Vec<u8>,
}

impl SignatureHeader {
    /// `keyVersion` as a number, when present and decimal.
    pub fn key_version_number(&self) -> Option<u32> {
        self.key_version.as_deref()?.parse().ok()
    }
}

// Hand-written so logs show the shape, not the signature bytes.
impl std::fmt::Debug for SignatureHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureHeader")
            .field("algorithm", &self.algorithm)
            .field("key_version", &self.key_version)
            .field("signature_len", &self.signature.len())
            .finish()
    }
}

/// Why a `Signature` header could not be parsed. Never carries the signature text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Part number `index` (0-based, comma-separated) is not `key=value`, or its key is empty
    /// or not a plain word.
    #[error("Signature header: part {index} is not key=value")]
    MalformedPair {
        /// 0-based position of the bad part.
        index: usize,
    },
    /// A known key appears twice; which one wins would be a guess.
    #[error("Signature header: duplicate `{key}`")]
    DuplicateKey {
        /// The repeated key, in canonical spelling.
        key: &'static str,
    },
    /// No `algorithm=` pair.
    #[error("Signature header: missing `algorithm`")]
    MissingAlgorithm,
    /// An algorithm other than RSA256 (for example ECC224).
    #[error("Signature header: unsupported algorithm `{algorithm}` (only RSA256 is supported)")]
    UnsupportedAlgorithm {
        /// The algorithm as sent when it looks like a name (up to 16 of `[A-Za-z0-9_-]`),
        /// otherwise `<not an algorithm name>`.
        algorithm: String,
    },
    /// No `signature=` pair, or an empty value.
    #[error("Signature header: missing or empty `signature`")]
    MissingSignature,
    /// The signature value is not (URL-encoded) standard base64.
    #[error("Signature header: `signature` is not valid (URL-encoded) base64")]
    SignatureEncoding,
}

/// `algorithm=RSA256, keyVersion=<v>, signature=<urlencode(base64(raw))>`.
///
/// The documented form, with a space after each comma; every SDK parser we know accepts it.
pub fn format_signature_header(key_version: u32, raw_signature: &[u8]) -> String {
    let b64 = STANDARD.encode(raw_signature);
    let encoded = utf8_percent_encode(&b64, FORM_URLENCODE);
    format!("algorithm={ALGORITHM_RSA256}, keyVersion={key_version}, signature={encoded}")
}

/// Parses a `Signature` header value (the text after `Signature:`).
///
/// Accepts `, ` and `,` separators, keys in any case, `algorithm` in any case, and a signature
/// that is URL-encoded or raw base64. A raw `+` is kept as `+` (it is a base64 digit, never an
/// encoded space) and each pair is split on its first `=` so base64 padding survives.
/// Unknown keys are ignored; duplicated known keys are rejected.
pub fn parse_signature_header(value: &str) -> Result<SignatureHeader, HeaderError> {
    let mut algorithm = None;
    let mut key_version = None;
    let mut signature = None;

    for (index, part) in value.split(',').enumerate() {
        let part = part.trim();
        if part.is_empty() {
            // Tolerates a trailing comma; an all-empty header still fails on the missing keys.
            continue;
        }
        let (key, val) = part
            .split_once('=')
            .ok_or(HeaderError::MalformedPair { index })?;
        let (key, val) = (key.trim(), val.trim());
        // A key with spaces or punctuation means the separators are not what we think, and
        // guessing would risk reading signature text as something else.
        if key.is_empty() || !key.bytes().all(is_token_byte) {
            return Err(HeaderError::MalformedPair { index });
        }
        let (slot, name) = if key.eq_ignore_ascii_case("algorithm") {
            (&mut algorithm, "algorithm")
        } else if key.eq_ignore_ascii_case("keyVersion") {
            (&mut key_version, "keyVersion")
        } else if key.eq_ignore_ascii_case("signature") {
            (&mut signature, "signature")
        } else {
            continue;
        };
        if slot.replace(val).is_some() {
            return Err(HeaderError::DuplicateKey { key: name });
        }
    }

    let algorithm = algorithm.ok_or(HeaderError::MissingAlgorithm)?;
    if !algorithm.eq_ignore_ascii_case(ALGORITHM_RSA256) {
        // Echo only what looks like a name: after a wrong separator the "algorithm" could
        // run on into the signature, which must not reach logs.
        let plausible = algorithm.len() <= 16 && algorithm.bytes().all(is_token_byte);
        return Err(HeaderError::UnsupportedAlgorithm {
            algorithm: if plausible {
                algorithm.to_owned()
            } else {
                "<not an algorithm name>".to_owned()
            },
        });
    }
    let signature = signature
        .filter(|s| !s.is_empty())
        .ok_or(HeaderError::MissingSignature)?;
    // percent_decode leaves `+` alone, so raw base64 passes through unchanged.
    let b64: Vec<u8> = percent_decode_str(signature).collect();
    let raw = LENIENT_STANDARD
        .decode(&b64)
        .map_err(|_| HeaderError::SignatureEncoding)?;
    if raw.is_empty() {
        return Err(HeaderError::MissingSignature);
    }
    Ok(SignatureHeader {
        algorithm: algorithm.to_owned(),
        key_version: key_version.map(str::to_owned),
        signature: raw,
    })
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_exactly_the_base64_specials() {
        // 0xfb 0xff 0xbf -> "+/+/" in base64; one byte -> "==" padding.
        let h = format_signature_header(7, &[0xfb, 0xff, 0xbf, 0x01]);
        assert_eq!(
            h,
            "algorithm=RSA256, keyVersion=7, signature=%2B%2F%2B%2FAQ%3D%3D"
        );
    }

    #[test]
    fn round_trip() {
        let raw: Vec<u8> = (0..=255u8).collect();
        let parsed = parse_signature_header(&format_signature_header(1, &raw)).unwrap();
        assert_eq!(parsed.signature, raw);
        assert_eq!(parsed.key_version_number(), Some(1));
        assert_eq!(parsed.algorithm, "RSA256");
    }

    #[test]
    fn debug_hides_signature() {
        let parsed = parse_signature_header("algorithm=RSA256,signature=QUJDREVG").unwrap();
        let dbg = format!("{parsed:?}");
        assert!(!dbg.contains("65"), "{dbg}");
        assert!(dbg.contains("signature_len: 6"), "{dbg}");
    }
}
