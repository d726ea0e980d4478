//! Readers for JSON fields that enforce the protocol's general rules as they read:
//! every scalar is a JSON string, optional fields are omitted or `null` and never `""`,
//! lengths are counted in characters, and every object is checked for unknown and repeated keys.
//!
//! Each reader returns a [`ValidationError`] whose path is relative to the object being read;
//! callers add the parent path with [`ValidationError::within`] as the error travels outwards.

use std::cell::RefCell;

use simd_json::BorrowedValue as Value;
use simd_json::{Buffers, StaticNode};

use crate::error::ValidationError;

/// Inputs up to this size parse with the thread's reusable parser buffers; larger ones (batches)
/// get fresh buffers, so one big request does not leave its footprint on every thread.
const REUSED_BUFFERS_MAX_INPUT: usize = 64 * 1024;

thread_local! {
    // The parser's scratch buffers are a few allocations the size of the input; allocating
    // and freeing them on every call was a fifth of the accept path's time.
    static BUFFERS: RefCell<Buffers> = RefCell::new(Buffers::new(4096));
}

/// Parses bytes as JSON with the SIMD parser (the buffer is scratch space for it).
pub(crate) fn parse_json(bytes: &mut [u8]) -> Result<Value<'_>, ValidationError> {
    let parsed = if bytes.len() <= REUSED_BUFFERS_MAX_INPUT {
        BUFFERS.with_borrow_mut(|buffers| simd_json::to_borrowed_value_with_buffers(bytes, buffers))
    } else {
        simd_json::to_borrowed_value(bytes)
    };
    parsed.map_err(|e| ValidationError::new("", format!("must be valid JSON ({e})")))
}

/// Fields of a body that its API does not define, as read: `(key, value)` in the sender's order.
pub(crate) type Unknown<'v, 'a> = Vec<(&'v str, &'v Value<'a>)>;

/// Splits a JSON object into its known fields, in the order of `names`.
/// Unknown keys are refused: notifyd forwards exactly what the API defines, so a misspelt
/// optional field (`paymentFailReson`) is an error the gateway sees now, not a field the merchant
/// never receives. Repeated keys are refused because readers disagree on which one wins.
pub(crate) fn split<'v, 'a, const N: usize>(
    value: &'v Value<'a>,
    names: &[&'static str; N],
    what: &'static str,
) -> Result<[Option<&'v Value<'a>>; N], ValidationError> {
    split_open(value, names, what, None)
}

/// [`split`], except that with `unknown` given the keys the API does not define are collected
/// there (for a profile with `extra_fields = "forward"`) instead of refused.
pub(crate) fn split_open<'v, 'a, const N: usize>(
    value: &'v Value<'a>,
    names: &[&'static str; N],
    what: &'static str,
    mut unknown: Option<&mut Unknown<'v, 'a>>,
) -> Result<[Option<&'v Value<'a>>; N], ValidationError> {
    let Value::Object(obj) = value else {
        return Err(ValidationError::new("", "must be a JSON object"));
    };
    let mut out: [Option<&'v Value<'a>>; N] = [None; N];
    for (key, v) in obj.iter() {
        let key: &str = key;
        match names.iter().position(|n| *n == key) {
            Some(i) if out[i].is_some() => {
                return Err(ValidationError::new(key, "appears more than once"));
            }
            Some(i) => out[i] = Some(v),
            None => match unknown.as_deref_mut() {
                Some(sink) => sink.push((key, v)),
                None => {
                    return Err(ValidationError::new(
                        printable_key(key),
                        format!("is not a field of {what}"),
                    ));
                }
            },
        }
    }
    Ok(out)
}

/// Keys come from the sender; keep the echoed path short and free of control characters.
pub(crate) fn printable_key(key: &str) -> String {
    let mut s: String = key.chars().take(64).filter(|c| !c.is_control()).collect();
    if key.chars().count() > 64 {
        s.push('…');
    }
    s
}

/// An optional string field: absent or `null` gives `None`; `""` and non-strings are refused;
/// at most `max_chars` characters (Unicode scalar values, not bytes).
pub(crate) fn opt_str<'v>(
    v: Option<&'v Value<'_>>,
    name: &'static str,
    max_chars: usize,
) -> Result<Option<&'v str>, ValidationError> {
    match v {
        None | Some(Value::Static(StaticNode::Null)) => Ok(None),
        Some(Value::String(s)) => {
            let s: &str = s;
            if s.is_empty() {
                return Err(ValidationError::new(
                    name,
                    "must not be empty (omit the field or send null)",
                ));
            }
            if exceeds_chars(s, max_chars) {
                return Err(ValidationError::new(
                    name,
                    format!("must be at most {max_chars} characters"),
                ));
            }
            Ok(Some(s))
        }
        Some(_) => Err(ValidationError::new(name, "must be a JSON string")),
    }
}

/// A required string field.
pub(crate) fn req_str<'v>(
    v: Option<&'v Value<'_>>,
    name: &'static str,
    max_chars: usize,
) -> Result<&'v str, ValidationError> {
    opt_str(v, name, max_chars)?.ok_or_else(|| required(name))
}

/// The error for a missing required field.
pub(crate) fn required(name: &'static str) -> ValidationError {
    ValidationError::new(name, "is required")
}

/// Whether a value is present (not absent and not `null`).
pub(crate) fn present(v: Option<&Value<'_>>) -> bool {
    !matches!(v, None | Some(Value::Static(StaticNode::Null)))
}

/// `s.chars().count() > max`, without counting past `max`. Byte length bounds the character
/// count from above, so short ASCII-heavy strings skip the scan.
pub(crate) fn exceeds_chars(s: &str, max: usize) -> bool {
    s.len() > max && s.chars().nth(max).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_limits_count_characters_not_bytes() {
        assert!(!exceeds_chars("ééé", 3)); // 6 bytes, 3 characters
        assert!(exceeds_chars("éééé", 3));
        assert!(!exceeds_chars("", 0));
        assert!(exceeds_chars("a", 0));
    }

    #[test]
    fn split_refuses_unknown_and_repeated_keys() {
        let mut raw = br#"{"a":"1","b":"2","a":"3"}"#.to_vec();
        let v = simd_json::to_borrowed_value(&mut raw).unwrap();
        let e = split(&v, &["a", "b"], "thing").unwrap_err();
        assert_eq!(e.to_string(), "a: appears more than once");
        let mut raw = br#"{"a":"1","zz":"2"}"#.to_vec();
        let v = simd_json::to_borrowed_value(&mut raw).unwrap();
        let e = split(&v, &["a", "b"], "thing").unwrap_err();
        assert_eq!(e.to_string(), "zz: is not a field of thing");
    }
}
