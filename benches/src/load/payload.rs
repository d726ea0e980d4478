//! The notifications sent: a valid v1 `notifyPayment` per sequence number, its `paymentRequestId` starting
//! with that number so the receiver can tell which one arrived.

/// The `body` of notification `seq` of run `run` (what notifyd delivers, and what the ceiling client posts).
pub fn body(seq: u64, run: u64) -> String {
    format!(
        r#"{{"partnerId":"P0001","paymentId":"PAY{seq}R{run}","paymentRequestId":"{seq}-{run}","paymentAmount":{{"currency":"USD","value":"1000"}},"paymentTime":"2026-11-22T10:00:00+08:00","paymentStatus":"SUCCESS"}}"#
    )
}

/// One ingest envelope, appended to `out`.
pub fn envelope(out: &mut String, seq: u64, run: u64, url: &str) {
    out.push_str(r#"{"api":"notifyPayment","url":""#);
    out.push_str(url);
    out.push_str(r#"","body":"#);
    out.push_str(&body(seq, run));
    out.push('}');
}

/// The request body for `seqs` (one envelope, or a batch when `batch`).
pub fn request(
    seqs: std::ops::Range<u64>,
    run: u64,
    batch: bool,
    url_of: impl Fn(u64) -> String,
) -> String {
    let mut out = String::with_capacity(320 * (seqs.end - seqs.start) as usize + 32);
    if batch {
        out.push_str(r#"{"notifications":["#);
    }
    for (i, seq) in seqs.enumerate() {
        if i > 0 {
            out.push(',');
        }
        envelope(&mut out, seq, run, &url_of(seq));
    }
    if batch {
        out.push_str("]}");
    }
    out
}

const MARK: &[u8] = br#""paymentRequestId":""#;

/// The sequence number of a delivered body, `None` when it is not one of ours.
pub fn sequence_of(body: &[u8]) -> Option<u64> {
    let start = body.windows(MARK.len()).position(|w| w == MARK)? + MARK.len();
    let digits = body[start..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 {
        return None;
    }
    std::str::from_utf8(&body[start..start + digits])
        .ok()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_survives_the_round_trip() {
        let b = body(123_456, 42);
        assert_eq!(sequence_of(b.as_bytes()), Some(123_456));
        assert_eq!(sequence_of(br#"{"paymentRequestId":"x1"}"#), None);
        assert_eq!(sequence_of(b"{}"), None);
        let parsed: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(parsed["paymentRequestId"], "123456-42");
    }

    #[test]
    fn batch_request_is_valid_json_with_every_item() {
        let text = request(5..8, 1, true, |s| {
            format!("http://127.0.0.1:{}/n", 9000 + s)
        });
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let items = v["notifications"].as_array().unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[2]["url"], "http://127.0.0.1:9007/n");
        assert_eq!(items[0]["body"]["paymentRequestId"], "5-1");
    }
}
