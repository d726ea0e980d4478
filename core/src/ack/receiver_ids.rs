//! The ids an Alipay+ receiver names itself by in its answer (`acquirerId`, `pspId`, PROTOCOL.md
//! §5.2: "store it"), for reconciliation with Alipay+.

use simd_json::BorrowedValue;

/// Longest id kept (PROTOCOL.md §5.2 gives both 64).
pub const MAX_RECEIVER_ID_CHARS: usize = 64;

/// `acquirerId` and `pspId` of one answer, each kept only when it is a sane string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiverIds {
    pub acquirer_id: Option<String>,
    pub psp_id: Option<String>,
}

/// The ids in an answer body, or `None` when it names neither. The receiver is untrusted and the
/// ids end up in the store and in operators' API answers, so an id is kept only when it is a
/// JSON string of 1 to [`MAX_RECEIVER_ID_CHARS`] characters without control characters; anything
/// else (a number, an object, 10 kB of text, a newline) is dropped rather than cut, because a
/// cut id would look valid and reconcile with nothing.
pub fn receiver_ids(body: &[u8]) -> Option<ReceiverIds> {
    // simd-json parses in place; acks are a few hundred bytes.
    let mut scratch = body.to_vec();
    let Ok(BorrowedValue::Object(doc)) = simd_json::to_borrowed_value(&mut scratch) else {
        return None;
    };
    let sane = |name: &str| match doc.get(name) {
        Some(BorrowedValue::String(s))
            if !s.is_empty()
                && s.chars().count() <= MAX_RECEIVER_ID_CHARS
                && !s.chars().any(char::is_control) =>
        {
            Some(s.to_string())
        }
        _ => None,
    };
    let ids = ReceiverIds {
        acquirer_id: sane("acquirerId"),
        psp_id: sane("pspId"),
    };
    (ids.acquirer_id.is_some() || ids.psp_id.is_some()).then_some(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_sane_strings_only() {
        let ids = receiver_ids(
            br#"{"result":{"resultStatus":"S"},"acquirerId":"2188120000000000","pspId":"1022188000000000001"}"#,
        )
        .unwrap();
        assert_eq!(ids.acquirer_id.as_deref(), Some("2188120000000000"));
        assert_eq!(ids.psp_id.as_deref(), Some("1022188000000000001"));

        let long = "x".repeat(65);
        let body = format!(r#"{{"acquirerId":"{long}","pspId":"P\nQ"}}"#);
        assert_eq!(
            receiver_ids(body.as_bytes()),
            None,
            "too long, control char"
        );
        let at_limit = "é".repeat(64);
        let body = format!(r#"{{"acquirerId":"{at_limit}","pspId":7}}"#);
        let ids = receiver_ids(body.as_bytes()).unwrap();
        assert_eq!(
            ids.acquirer_id.as_deref(),
            Some(at_limit.as_str()),
            "64 chars, not bytes"
        );
        assert_eq!(ids.psp_id, None, "a number is not an id");
        assert_eq!(receiver_ids(br#"{"acquirerId":""}"#), None);
        assert_eq!(receiver_ids(b"not json"), None);
        assert_eq!(receiver_ids(br#"["acquirerId"]"#), None);
    }
}
