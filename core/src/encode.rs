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

fn write<T: Serialize>(v: &T, out: &mut Vec<u8>) {
    // Core's message types hold only strings and string-keyed structs, which the serializer
    // cannot fail on; an error here would be a bug in a type definition, caught by the tests.
    simd_json::serde::to_writer(out, v).expect("core message types always serialize");
}
