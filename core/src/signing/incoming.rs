//! Checking a signed request that comes *to* notifyd (a merchant's `inquiryPayment`,
//! CONTRACT.md §2.2): who sends it (`Client-Id`), when (`Request-Time`, within a window, so a
//! captured request cannot be replayed later) and whether its `Signature` verifies over
//! `<METHOD> <Request-URI>\n<Client-Id>.<Request-Time>.<body>` with that client's key.
//!
//! Sans-IO: the caller passes the header values as received, the exact body bytes, its clock's
//! `now` and a lookup from Client-Id to key.

use std::fmt;
use std::time::Duration;

use super::VerifyingKey;
use super::content::content_to_sign;
use super::header::{HeaderError, parse_signature_header};
use crate::ack::codes;
use crate::model::datetime;
use crate::time::UnixMillis;

/// The three protocol headers of a request, as received (`None` when absent).
#[derive(Debug, Clone, Copy, Default)]
pub struct SignedHeaders<'a> {
    /// `Client-Id`.
    pub client_id: Option<&'a str>,
    /// `Request-Time`.
    pub request_time: Option<&'a str>,
    /// `Signature`.
    pub signature: Option<&'a str>,
}

/// Why a signed request was refused. The text names the header and the rule; it never carries
/// signature bytes or key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No (or an empty) `Client-Id`.
    MissingClientId,
    /// A `Client-Id` no configured client has.
    UnknownClientId,
    /// No (or an empty) `Request-Time`.
    MissingRequestTime,
    /// A `Request-Time` that is neither ISO 8601 with an offset nor epoch milliseconds.
    UnreadableRequestTime,
    /// A `Request-Time` further from notifyd's clock than the window allows.
    StaleRequestTime {
        /// The window, in whole seconds.
        window_secs: u64,
    },
    /// No (or an empty) `Signature`.
    MissingSignature,
    /// A `Signature` header that cannot be read.
    MalformedSignature(HeaderError),
    /// A well-formed signature that does not verify with the client's key.
    BadSignature,
}

impl Refusal {
    /// The protocol result code the refusal is answered with (F, HTTP 200): who is asking is
    /// `ACCESS_DENIED`'s question, whether the request is authentic `INVALID_SIGNATURE`'s.
    pub const fn result_code(&self) -> &'static str {
        match self {
            Refusal::MissingClientId | Refusal::UnknownClientId => codes::ACCESS_DENIED,
            _ => codes::INVALID_SIGNATURE,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::MissingClientId => f.write_str("Client-Id: is required"),
            Refusal::UnknownClientId => {
                f.write_str("Client-Id: is not a client allowed to call this API")
            }
            Refusal::MissingRequestTime => f.write_str("Request-Time: is required"),
            Refusal::UnreadableRequestTime => f.write_str(
                "Request-Time: must be an ISO 8601 date-time with an offset or epoch milliseconds",
            ),
            Refusal::StaleRequestTime { window_secs } => write!(
                f,
                "Request-Time: must be within {window_secs} s of notifyd's clock (a request \
                 is not accepted again later)"
            ),
            Refusal::MissingSignature => f.write_str("Signature: is required"),
            Refusal::MalformedSignature(e) => write!(f, "{e}"),
            Refusal::BadSignature => f.write_str(
                "Signature: does not verify over the request with the client's public key",
            ),
        }
    }
}

impl std::error::Error for Refusal {}

/// A `Request-Time` as an instant: ISO 8601 with an offset (the mini-program and Alipay+ form,
/// and the lenient forms [`datetime::validate`] takes) or 13-digit epoch milliseconds (Antom and
/// the Java/Go SDKs since 2023).
pub fn parse_request_time(text: &str) -> Option<UnixMillis> {
    if text.len() == 13 && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok().map(UnixMillis);
    }
    if text.chars().count() > 32 {
        return None;
    }
    datetime::to_unix_millis(text)
}

/// Checks a signed request and returns its Client-Id.
///
/// Order: identity, then time, then the RSA check (the costly part runs last, only for a known
/// client with a fresh time). `request_uri` is the path and query as on the request line.
pub fn check_signed_request<'h>(
    headers: &SignedHeaders<'h>,
    method: &str,
    request_uri: &str,
    body: &[u8],
    now: UnixMillis,
    window: Duration,
    key_of: &dyn Fn(&str) -> Option<VerifyingKey>,
) -> Result<&'h str, Refusal> {
    let non_empty = |v: Option<&'h str>| v.map(str::trim).filter(|v| !v.is_empty());
    let client_id = non_empty(headers.client_id).ok_or(Refusal::MissingClientId)?;
    let key = key_of(client_id).ok_or(Refusal::UnknownClientId)?;
    // The time is signed as sent, untrimmed; only its instant is read leniently.
    let time_text = headers
        .request_time
        .filter(|t| !t.trim().is_empty())
        .ok_or(Refusal::MissingRequestTime)?;
    let sent = parse_request_time(time_text.trim()).ok_or(Refusal::UnreadableRequestTime)?;
    let skew = now.0.abs_diff(sent.0);
    if u128::from(skew) > window.as_millis() {
        return Err(Refusal::StaleRequestTime {
            window_secs: window.as_secs(),
        });
    }
    let signature = non_empty(headers.signature).ok_or(Refusal::MissingSignature)?;
    let header = parse_signature_header(signature).map_err(Refusal::MalformedSignature)?;
    let content = content_to_sign(method, request_uri, client_id, time_text, body);
    if key.verify(&content, &header.signature) {
        Ok(client_id)
    } else {
        Err(Refusal::BadSignature)
    }
}
