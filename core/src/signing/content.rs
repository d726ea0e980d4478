//! The exact bytes that get signed (PROTOCOL.md §1.3) and the `Request-URI` part of them.

use std::borrow::Cow;

/// `<METHOD> <URI>\n<Client-Id>.<Time>.<Body>`, byte for byte.
///
/// `time` is `Request-Time` when signing or verifying a request (including an incoming
/// notification) and `Response-Time` when verifying a response; it is an opaque string and must
/// be the exact header text (PROTOCOL.md §1.5). `body` must be the exact bytes on the wire:
/// re-serialising JSON breaks the signature.
pub fn content_to_sign(
    method: &str,
    request_uri: &str,
    client_id: &str,
    time: &str,
    body: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        method.len() + request_uri.len() + client_id.len() + time.len() + body.len() + 4,
    );
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(request_uri.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(client_id.as_bytes());
    out.push(b'.');
    out.extend_from_slice(time.as_bytes());
    out.push(b'.');
    out.extend_from_slice(body);
    out
}

/// The `Request-URI` of an absolute URL: path plus `?query`, always starting with `/`.
///
/// `https://host:8443/v1/payments/notifyPayment?a=1#x` gives `/v1/payments/notifyPayment?a=1`
/// (the fragment is never sent, so it is never signed); `https://host` gives `/` and
/// `https://host?a=1` gives `/?a=1`, which is what an HTTP client puts on the request line.
/// Percent-escapes are kept as written: the receiver signs the bytes it sees on the request line.
///
/// Returns `None` when `url` is not `scheme://authority...` with a non-empty authority.
pub fn request_uri(url: &str) -> Option<Cow<'_, str>> {
    let (scheme, rest) = url.split_once("://")?;
    let mut chars = scheme.chars();
    let scheme_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return None;
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if authority_end == 0 {
        return None;
    }
    let target = &rest[authority_end..];
    let target = target.split_once('#').map_or(target, |(t, _)| t);
    Some(if target.is_empty() {
        Cow::Borrowed("/")
    } else if target.starts_with('?') {
        Cow::Owned(format!("/{target}"))
    } else {
        Cow::Borrowed(target)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_layout_is_exact() {
        let c = content_to_sign("POST", "/v1/x", "CID", "2019-01-01T00:00:00+08:00", b"{}");
        assert_eq!(c, b"POST /v1/x\nCID.2019-01-01T00:00:00+08:00.{}");
    }

    #[test]
    fn body_bytes_are_not_touched() {
        let body = b"{\r\n\"a\" : 1 }\xff";
        let c = content_to_sign("POST", "/", "c", "1", body);
        assert!(c.ends_with(body));
    }

    #[test]
    fn request_uri_cases() {
        let cases = [
            (
                "https://h/v1/payments/notifyPayment",
                Some("/v1/payments/notifyPayment"),
            ),
            ("https://h:8443/a/b?x=1&y=%2F#frag", Some("/a/b?x=1&y=%2F")),
            ("https://h", Some("/")),
            ("https://h/", Some("/")),
            ("https://h#frag", Some("/")),
            ("https://h?q=1", Some("/?q=1")),
            ("http://user@h:80/p", Some("/p")),
            ("/v1/relative", None),
            ("h/v1", None),
            ("https:///path", None),
            ("1ttp://h/p", None),
        ];
        for (url, want) in cases {
            assert_eq!(request_uri(url).as_deref(), want, "{url}");
        }
    }
}
