//! Canonical encoding: a validated message becomes the bytes every delivery attempt sends.
//!
//! The output is compact JSON in the API table's field order, with every scalar a string and
//! absent optionals omitted. It is produced once, at accept time, and stored; retries resend
//! those bytes as they are (PROTOCOL.md §9: never re-serialise, the signature covers the bytes).

use serde::Serialize;

use crate::model::Notification;

/// Encodes a notification to its canonical bytes.
pub fn encode(n: &Notification) -> Vec<u8> {
    let mut out = Vec::with_capacity(384);
    encode_into(n, &mut out);
    out
}

/// Appends the canonical bytes of `n` to `out` (reuse one buffer on hot paths).
pub fn encode_into(n: &Notification, out: &mut Vec<u8>) {
    match n {
        Notification::NotifyPayment(m) => write(m, out),
        Notification::NotifyVoid(m) => write(m, out),
        Notification::AlipayPlusNotifyPayment(m) => write(m, out),
    }
}

/// Encodes any of core's message types (inquiry answers, results) with the same encoder.
pub fn to_vec<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write(v, &mut out);
    out
}

/// Appends `s` as a JSON string, escaped exactly as the fields of a message are.
pub(crate) fn write_str(s: &str, out: &mut Vec<u8>) {
    write(&s, out);
}

fn write<T: Serialize>(v: &T, out: &mut Vec<u8>) {
    // Core's message types hold only strings and string-keyed structs, which the serializer
    // cannot fail on; an error here would be a bug in a type definition, caught by the tests.
    v.serialize(&mut sonic_rs::Serializer::with_formatter(out, Canonical))
        .expect("core message types always serialize");
}

/// sonic-rs's compact formatter, except that a string with nothing to escape (nearly every
/// string of a notification) is copied as it is.
///
/// sonic-rs escapes a string 32 bytes at a time; for the last, shorter piece its release build
/// loads 32 bytes anyway, reading past the end of the string (valgrind reports it in every
/// gateway that encodes). With its `sanitize` feature, which the workspace enables, it copies
/// that piece to a stack buffer first, which made encoding 66 % slower (benches/README.md).
/// Strings that do need escaping still go to sonic-rs, so the escaping is its own, byte for byte.
#[derive(Clone, Copy)]
struct Canonical;

impl sonic_rs::format::Formatter for Canonical {
    #[inline]
    fn write_string_fast<W>(
        &mut self,
        writer: &mut W,
        value: &str,
        need_quote: bool,
    ) -> std::io::Result<()>
    where
        W: ?Sized + sonic_rs::writer::WriteExt,
    {
        // The bytes sonic-rs escapes: control characters, `"` and `\`. A fold without an early
        // exit, so the compiler can check many bytes at once.
        let plain = value.bytes().fold(true, |plain, b| {
            plain & (b >= 0x20) & (b != b'"') & (b != b'\\')
        });
        if !plain {
            return sonic_rs::format::CompactFormatter.write_string_fast(writer, value, need_quote);
        }
        if need_quote {
            writer.write_all(b"\"")?;
            writer.write_all(value.as_bytes())?;
            writer.write_all(b"\"")
        } else {
            writer.write_all(value.as_bytes())
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::model::{Amount, NotifyPayment};

    fn payment(text: String, optional: Option<String>) -> NotifyPayment {
        NotifyPayment {
            partner_id: text.clone(),
            payment_id: text.clone(),
            payment_request_id: text.clone(),
            payment_amount: Amount {
                currency: "USD".to_owned(),
                value: "1".to_owned(),
            },
            payment_time: optional.clone(),
            payment_status: "FAIL".to_owned(),
            payment_fail_reason: optional.clone(),
            extend_info: Some(text),
        }
    }

    #[test]
    fn escapes_match_the_simd_json_serializer_at_every_position() {
        // Around sonic-rs's 32-byte blocks, each escaped byte at each offset, and plain text.
        for special in ["\"", "\\", "\n", "\u{1}", "\u{1f}", "é", "\u{7f}"] {
            for at in 0..70 {
                let text = format!("{}{special}{}", "a".repeat(at), "b".repeat(70 - at));
                let m = payment(text, Some("x".repeat(at)));
                let n = Notification::NotifyPayment(m.clone());
                assert_eq!(
                    encode(&n),
                    simd_json::serde::to_vec(&m).unwrap(),
                    "{special:?} at {at}"
                );
            }
        }
    }

    proptest! {
        // Stored bytes were written by simd-json's serializer before the encoder moved to
        // sonic-rs for speed; the canonical bytes (and so every signature) must not change.
        #[test]
        fn bytes_match_the_simd_json_serializer(
            text in "(?s).{0,40}|[\\x00-\\x7f]{0,40}",
            optional in proptest::option::of("(?s).{0,8}"),
        ) {
            let n = Notification::NotifyPayment(payment(text, optional));
            let Notification::NotifyPayment(m) = &n else { unreachable!() };
            let reference = simd_json::serde::to_vec(m).unwrap();
            prop_assert_eq!(encode(&n), reference);
        }
    }
}
