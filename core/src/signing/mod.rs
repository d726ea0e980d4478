//! Request signing and response verification (PROTOCOL.md §1.3–§1.8).
//!
//! ```text
//! content   = "<METHOD> <Request-URI>\n<Client-Id>.<Time>.<Body>"
//! Signature: algorithm=RSA256, keyVersion=1, signature=urlencode(base64(RSASSA-PKCS1-v1_5-SHA256(content)))
//! ```
//!
//! Sans-IO: callers pass the exact header strings and body bytes. `Time` is treated as opaque
//! text (never re-formatted) because the peer signs the bytes it sent. Only RSA256 is supported;
//! headers naming any other algorithm (ECC224 included) are rejected.
//!
//! Randomness: [`SigningKey`] holds ring's `SystemRandom` because ring's API requires one; it is
//! the only OS-RNG handle in core, and PKCS#1 v1.5 signing does not draw from it.

mod content;
mod header;
pub mod incoming;
mod keys;
mod pem;
mod spki;

pub use content::{content_to_sign, request_uri};
pub use header::{
    ALGORITHM_RSA256, HeaderError, SignatureHeader, format_signature_header, parse_signature_header,
};
pub use keys::{KeyError, SigningKey, VerifyingKey};

/// Why a signed message was not accepted. Distinguishes a header we cannot read from a
/// signature that does not match; neither carries key material or signature text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The `Signature` header is unreadable or names an unsupported algorithm.
    #[error("malformed Signature header: {0}")]
    MalformedHeader(#[from] HeaderError),
    /// The header is well formed but the signature does not match the content and key.
    #[error("signature does not verify")]
    BadSignature,
}

/// Signs an outgoing request and returns the `Signature` header value.
///
/// `request_time` must be the exact `Request-Time` header text sent with it, and `body` the
/// exact bytes sent. A retry needs a fresh time and therefore a fresh signature.
pub fn sign_request(
    key: &SigningKey,
    key_version: u32,
    method: &str,
    request_uri: &str,
    client_id: &str,
    request_time: &str,
    body: &[u8],
) -> String {
    let content = content_to_sign(method, request_uri, client_id, request_time, body);
    format_signature_header(key_version, &key.sign(&content))
}

/// Verifies a response's `Signature` header (PROTOCOL.md §1.4).
///
/// `method` and `request_uri` are those of the request being answered; `client_id` and
/// `response_time` are the response's header values (use the header `Client-Id`, not the
/// configured one, when they differ). For an incoming notification pass its own
/// `Request-Time` as `response_time`: the content layout is identical.
pub fn verify_response(
    key: &VerifyingKey,
    method: &str,
    request_uri: &str,
    client_id: &str,
    response_time: &str,
    body: &[u8],
    signature_header: &str,
) -> Result<(), VerifyError> {
    let header = parse_signature_header(signature_header)?;
    let content = content_to_sign(method, request_uri, client_id, response_time, body);
    if key.verify(&content, &header.signature) {
        Ok(())
    } else {
        Err(VerifyError::BadSignature)
    }
}

/// How a signer writes `Request-Time` (PROTOCOL.md §1.5): receivers parse one form or the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RequestTimeFormat {
    /// `2019-11-27T04:01:02.123+00:00` (Alipay+, mini-program).
    #[default]
    Rfc3339Millis,
    /// `1574827262123` (Antom and its SDKs).
    EpochMillis,
}

impl RequestTimeFormat {
    /// The `Request-Time` text for `at`, which the signature then covers byte for byte.
    pub fn format(self, at: crate::UnixMillis) -> String {
        match self {
            RequestTimeFormat::Rfc3339Millis => at.rfc3339_millis().to_string(),
            RequestTimeFormat::EpochMillis => at.0.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RequestTimeFormat;
    use crate::UnixMillis;

    #[test]
    fn request_time_is_written_in_either_form_of_the_same_instant() {
        let at = UnixMillis(1_574_827_262_123);
        assert_eq!(
            RequestTimeFormat::Rfc3339Millis.format(at),
            "2019-11-27T04:01:02.123+00:00"
        );
        assert_eq!(RequestTimeFormat::EpochMillis.format(at), "1574827262123");
    }
}
