//! The properties each fuzz target checks, kept apart from the libFuzzer entry points so the
//! replay test (`cargo test --manifest-path fuzz/Cargo.toml`) runs the same code over the corpus.
#![forbid(unsafe_code)]

use notifyd_core::ack::{
    self, Ack, MAX_CODE_CHARS, MAX_MESSAGE_CHARS, Outcome, SignatureCheck, SignatureMode,
};
use notifyd_core::model::ExtraFieldsPolicy;
use notifyd_core::model::inquiry::InquiryRequest;
use notifyd_core::signing::VerifyingKey;
use notifyd_core::signing::incoming::{SignedHeaders, check_signed_request};
use notifyd_core::signing::{format_signature_header, parse_signature_header};
use notifyd_core::{Api, Envelope, Notification};
use std::io::{self, Read};
use std::time::Duration;

use notifyd_ffi::client::fuzzing::{max_response_bytes, read_response};

/// An accepted envelope's canonical bytes are a valid body of the same API that encodes to
/// the same bytes (retries resend stored bytes, so the encoding must be a fixed point).
pub fn envelope(data: &[u8]) {
    let mut buf = data.to_vec();
    if let Ok(env) = Envelope::parse(&mut buf) {
        check_encoding(env.api, &env.encode());
        let _ = (env.endpoint(), env.order_key(), env.idempotency());
    }
}

/// Every accepted item of a batch holds to [`envelope`]'s property; the item count is bounded.
pub fn batch(data: &[u8]) {
    let mut buf = data.to_vec();
    if let Ok(items) = notifyd_core::envelope::parse_batch(&mut buf, 8) {
        assert!(
            !items.is_empty() && items.len() <= 8,
            "{} items",
            items.len()
        );
        for env in items.into_iter().flatten() {
            check_encoding(env.api, &env.encode());
        }
    }
}

fn check_encoding(api: Api, encoded: &[u8]) {
    let mut again = encoded.to_vec();
    let n = Notification::parse(api, &mut again).unwrap_or_else(|e| {
        panic!(
            "canonical bytes do not parse back: {e}: {}",
            String::from_utf8_lossy(encoded)
        )
    });
    assert_eq!(
        notifyd_core::encode::encode(&n),
        encoded,
        "the encoding is not stable"
    );
}

/// A parsed header formats and parses back to the same signature and key version.
pub fn signature_header(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(h) = parse_signature_header(text)
        && let Some(kv) = h.key_version_number()
    {
        let again = parse_signature_header(&format_signature_header(kv, &h.signature))
            .expect("a formatted header parses");
        assert_eq!(again.signature, h.signature);
        assert_eq!(again.key_version_number(), Some(kv));
    }
}

/// Any answer classifies without panicking, and what is copied out of it stays bounded.
/// Input: 2 bytes status, 1 byte of flags (API, signature mode and check, Retry-After), the body.
pub fn ack_classify(data: &[u8]) {
    let [s0, s1, flags, body @ ..] = data else {
        return;
    };
    let status = u16::from_be_bytes([*s0, *s1]) % 1000;
    let api = Api::ALL[usize::from(flags & 3) % Api::ALL.len()];
    let mode = [
        SignatureMode::Off,
        SignatureMode::Optional,
        SignatureMode::Required,
    ][usize::from((flags >> 2) & 3) % 3];
    let signature = [
        SignatureCheck::NotChecked,
        SignatureCheck::Verified,
        SignatureCheck::Missing,
        SignatureCheck::Invalid,
    ][usize::from((flags >> 4) & 3)];
    let retry_after = (flags & 0x40 != 0).then(|| Duration::from_secs(u64::from(*s1)));
    let outcome = Outcome::Http {
        status,
        retry_after,
        body,
        signature,
    };
    let a = ack::classify(api, &outcome, mode);
    match &a {
        Ack::Delivered { code, .. } => {
            assert_eq!(status, 200, "delivered without a 200");
            assert!(code.chars().count() <= MAX_CODE_CHARS);
        }
        Ack::Failed { code, message }
        | Ack::OurSide { code, message }
        | Ack::Doubtful { code, message, .. } => {
            assert_eq!(status, 200, "failed without a 200");
            assert!(code.chars().count() <= MAX_CODE_CHARS);
            assert!(
                message
                    .as_ref()
                    .is_none_or(|m| m.chars().count() <= MAX_MESSAGE_CHARS)
            );
        }
        Ack::Retry {
            reason: ack::RetryReason::Unknown { status, code },
        } => {
            assert!(code.chars().count() <= MAX_CODE_CHARS);
            assert!(status.chars().count() <= MAX_CODE_CHARS);
        }
        Ack::Retry { .. } | Ack::Throttled { .. } => {}
        Ack::LocalFailure { .. } => panic!("classify never blames our side's transport"),
    }
    // A signature that failed verification never counts as delivered or failed.
    if signature == SignatureCheck::Invalid && mode != SignatureMode::Off {
        assert!(
            !matches!(
                a,
                Ack::Delivered { .. }
                    | Ack::Failed { .. }
                    | Ack::OurSide { .. }
                    | Ack::Doubtful { .. }
            ),
            "{a:?} from an answer with a bad signature"
        );
    }
    if let Ack::Retry { reason } = &a {
        let _ = reason.to_string();
    }
}

/// Any inquiry body parses or is refused without panicking.
pub fn inquiry(data: &[u8]) {
    let mut buf = data.to_vec();
    if let Ok(r) = InquiryRequest::parse(&mut buf) {
        let _ = r.lookup();
    }
}

/// Bodies with fields beyond their API's table, under a forwarding profile: whatever is
/// accepted encodes to bytes that parse back (also as a stored body) to the same bytes and the
/// same fingerprint, so retries resend what was judged.
pub fn extra_fields(data: &[u8]) {
    let forward = |_: &str| ExtraFieldsPolicy::Forward;
    let mut buf = data.to_vec();
    let Ok(env) = Envelope::parse_with(&mut buf, &forward) else {
        return;
    };
    let encoded = env.encode();
    let mut again = format!(
        r#"{{"api":"{}","url":{},"profile":{},"body":"#,
        env.api.as_str(),
        json_string(&env.url),
        json_string(&env.profile)
    )
    .into_bytes();
    again.extend_from_slice(&encoded);
    again.push(b'}');
    let back = Envelope::parse_with(&mut again, &forward).unwrap_or_else(|e| {
        panic!(
            "forwarded bytes do not parse back: {e}: {}",
            String::from_utf8_lossy(&encoded)
        )
    });
    assert_eq!(back.encode(), encoded, "the encoding is not stable");
    assert_eq!(
        back.idempotency(),
        env.idempotency(),
        "the fingerprint moved"
    );
    Notification::parse_stored(env.api, &mut encoded.clone())
        .expect("a stored body with forwarded fields reads back");
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The sigvec test key: a merchant's public key for [`merchant_request`].
const MERCHANT_KEY: &[u8] = include_bytes!("../keys/sigvec_public.pem");

/// A merchant's signed request to notifyd, as `Client-Id\nRequest-Time\nSignature\nbody`:
/// checked without panicking; accepted only for the configured Client-Id; a refusal's text
/// never repeats the signature it was given.
pub fn merchant_request(data: &[u8]) {
    let mut parts = data.splitn(4, |b| *b == b'\n');
    let mut header = || parts.next().and_then(|p| std::str::from_utf8(p).ok());
    let (client_id, request_time, signature) = (header(), header(), header());
    let body = data.splitn(4, |b| *b == b'\n').nth(3).unwrap_or_default();
    let key = VerifyingKey::from_spki_pem(MERCHANT_KEY).expect("the sigvec key parses");
    let key_of = |id: &str| (id == "TEST_5X00000000000000").then(|| key.clone());
    let headers = SignedHeaders {
        client_id,
        request_time,
        signature,
    };
    // The sigvec request's own time, so its seed takes the accepting path.
    let now = notifyd_core::UnixMillis(1_574_827_262_123);
    match check_signed_request(
        &headers,
        "POST",
        "/v1/payments/notifyPayment",
        body,
        now,
        Duration::from_secs(300),
        &key_of,
    ) {
        Ok(id) => assert_eq!(id, "TEST_5X00000000000000"),
        Err(r) => {
            let text = r.to_string();
            let _ = r.result_code();
            if let Some(sig) = signature.filter(|s| s.len() >= 16) {
                assert!(
                    !text.contains(sig),
                    "a refusal repeats the signature: {text}"
                );
            }
        }
    }
}

/// A server's bytes handed out `step` at a time, with an `Interrupted` error before every
/// other read, as a slow network and signals would.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
    interrupt: bool,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.interrupt = !self.interrupt;
        if self.interrupt {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// libnotifyd's HTTP/1.1 response parser (`nd_client_submit` reads notifyd's answer with it):
/// any bytes parse or are refused without panicking, the outcome does not depend on how the
/// reads split them, and a parsed answer has a status of three digits and a bounded body.
/// Input: 1 byte, the read size minus one (1 to 256 bytes per read), then the server's bytes.
pub fn http_response(data: &[u8]) {
    let [step, raw @ ..] = data else {
        return;
    };
    let whole = read_response(&mut &raw[..]);
    let trickled = read_response(&mut Trickle {
        data: raw,
        step: usize::from(*step) + 1,
        interrupt: false,
    });
    assert_eq!(
        whole, trickled,
        "the outcome depends on how reads split the answer"
    );
    if let Ok((status, _, body)) = &whole {
        assert!((100..=999).contains(status), "status {status}");
        assert!(body.len() <= max_response_bytes() && body.len() <= raw.len());
    }
}
