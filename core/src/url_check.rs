//! The envelope's URL rule, checked by hand.
//!
//! It used to parse the URL with `http::Uri` and look at the parts; that copied every URL into a
//! `Bytes` and was about a tenth of the accept path. This scan accepts and refuses exactly what
//! that did with `http` 1.5 (the differential tests below hold it to that, against `http::Uri`
//! itself), so a URL accepted before is accepted now with the same error text when it is not.

use crate::error::ValidationError;

const NOT_ABSOLUTE: &str = "must be an absolute http or https URL";

/// `http::Uri`'s length limit (`u16::MAX - 1`); the envelope's own limit is far below it.
const MAX_LEN: usize = 65_534;
/// Colons `http::Uri` allows in an authority before refusing it (an IPv6 literal has 7).
const MAX_COLONS: u32 = 8;

/// The rule every notification URL follows (and the daemon's other outbound URLs, such as a
/// profile's `dead_letter_url`): an absolute http(s) URL with a host, no user info, no fragment. Whether plain http and which
/// addresses are allowed is the profile's decision, made by the daemon.
pub fn check_url(url: &str) -> Result<(), ValidationError> {
    let err = |rule: &'static str| Err(ValidationError::new("", rule));
    let b = url.as_bytes();
    if b.len() > MAX_LEN {
        return err(NOT_ABSOLUTE);
    }
    // Any other scheme, or none, is refused; `http::Uri` matches these two case-insensitively.
    let rest = if b.len() >= 7 && b[..7].eq_ignore_ascii_case(b"http://") {
        &b[7..]
    } else if b.len() >= 8 && b[..8].eq_ignore_ascii_case(b"https://") {
        &b[8..]
    } else {
        return err(NOT_ABSOLUTE);
    };
    let Some(end) = authority_end(rest) else {
        return err(NOT_ABSOLUTE);
    };
    if end == 0 || !path_and_query_ok(&rest[end..]) {
        return err(NOT_ABSOLUTE);
    }
    let authority = &rest[..end];
    if authority.contains(&b'@') {
        return err("must not carry user info");
    }
    // Without user info the host is everything before the port; a bracketed IPv6 literal is
    // never empty, so only a leading ':' leaves no host.
    if authority[0] == b':' {
        return err("must name a host");
    }
    if b.contains(&b'#') {
        return err("must not carry a fragment");
    }
    Ok(())
}

/// Where the authority ends (the first '/', '?' or '#'), or `None` when `http::Uri` would refuse
/// it: a character outside the URI set, a '%' outside user info and IPv6 brackets, misplaced
/// brackets, more than one port colon, or nothing after an '@'.
fn authority_end(s: &[u8]) -> Option<usize> {
    if s.is_empty() {
        return None;
    }
    let mut colons = 0u32;
    let mut open_bracket = false;
    let mut close_bracket = false;
    let mut percent = false;
    let mut at_sign = None;
    let mut end = s.len();
    for (i, &b) in s.iter().enumerate() {
        match b {
            b'/' | b'?' | b'#' => {
                end = i;
                break;
            }
            b'%' => percent = true,
            b':' => {
                if colons >= MAX_COLONS {
                    return None;
                }
                colons += 1;
            }
            b'[' => {
                if percent || open_bracket {
                    return None;
                }
                open_bracket = true;
            }
            b']' => {
                if !open_bracket || close_bracket {
                    return None;
                }
                close_bracket = true;
                // Those colons and '%' were the IPv6 literal's.
                colons = 0;
                percent = false;
            }
            b'@' => {
                at_sign = Some(i);
                // Those were the user info's.
                colons = 0;
                percent = false;
            }
            _ if is_authority_char(b) => {}
            _ => return None,
        }
    }
    let refused = open_bracket != close_bracket
        || colons > 1
        || (end > 0 && at_sign == Some(end - 1))
        || percent;
    (!refused).then_some(end)
}

/// The bytes `http::Uri` takes in an authority besides the delimiters handled above.
fn is_authority_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!$&'()*+,-.;=_~".contains(&b)
}

/// Whether what follows the authority is a path and query `http::Uri` takes. Empty is fine (the
/// path becomes "/"); otherwise it starts with '/', '?' or '#' (the authority ended there). The
/// fragment's content is not checked, as `http::Uri` does not check it.
fn path_and_query_ok(s: &[u8]) -> bool {
    let mut bytes = s.iter();
    for &b in bytes.by_ref() {
        match b {
            b'?' => break,
            b'#' => return true,
            _ if path_char(b) => {}
            _ => return false,
        }
    }
    for &b in bytes {
        match b {
            b'#' => return true,
            _ if query_char(b) => {}
            _ => return false,
        }
    }
    true
}

/// Path bytes `http::Uri` accepts, including `"`, `{` and `}` that clients send unencoded. Bytes
/// from 0x80 up are parts of UTF-8 characters, always whole here since the URL is a `str`.
fn path_char(b: u8) -> bool {
    matches!(b, 0x21 | 0x22 | 0x24..=0x3B | 0x3D | 0x40..=0x5F | 0x61..=0x7E | 0x80..=0xFF)
}

/// Query bytes `http::Uri` accepts.
fn query_char(b: u8) -> bool {
    matches!(b, 0x21 | 0x24..=0x3B | 0x3D | 0x3F..=0x7E | 0x80..=0xFF)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The check as it was, on `http::Uri`: the reference the scan must agree with.
    fn check_url_with_http(url: &str) -> Result<(), ValidationError> {
        let err = |rule: &'static str| Err(ValidationError::new("", rule));
        let uri: http::Uri = match url.parse() {
            Ok(u) => u,
            Err(_) => return err(NOT_ABSOLUTE),
        };
        match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("https") || s.eq_ignore_ascii_case("http") => {}
            _ => return err(NOT_ABSOLUTE),
        }
        let Some(authority) = uri.authority() else {
            return err(NOT_ABSOLUTE);
        };
        if authority.as_str().contains('@') {
            return err("must not carry user info");
        }
        if authority.host().is_empty() {
            return err("must name a host");
        }
        if url.contains('#') {
            return err("must not carry a fragment");
        }
        Ok(())
    }

    fn outcome(r: Result<(), ValidationError>) -> String {
        match r {
            Ok(()) => "ok".to_owned(),
            Err(e) => e.to_string(),
        }
    }

    const CASES: &[(&str, &str)] = &[
        (
            "https://merchant.example.com/v1/payments/notifyPayment",
            "ok",
        ),
        ("http://merchant.example.com/notify", "ok"),
        ("HTTPS://Merchant.Example.com/x", "ok"),
        ("hTtP://h", "ok"),
        ("https://h", "ok"),
        ("https://h:8443/p?q=1&r=2", "ok"),
        ("https://h?q", "ok"),
        ("https://127.0.0.1:80/", "ok"),
        ("https://[::1]:8443/p", "ok"),
        ("https://[fe80::1%25eth0]/", "ok"),
        ("https://h/a\"{b}|c~", "ok"),
        ("https://h/é/ü?ß=1", "ok"),
        ("https://h/p?a=`b`&c=[d]", "ok"),
        ("https://h/a`b", "must be an absolute http or https URL"),
        ("https://h:", "ok"),
        ("https://h:abc/", "ok"),
        ("https://", "must be an absolute http or https URL"),
        ("https:///path", "must be an absolute http or https URL"),
        ("https://?q", "must be an absolute http or https URL"),
        ("https://#f", "must be an absolute http or https URL"),
        ("ftp://h/", "must be an absolute http or https URL"),
        ("httpx://h/", "must be an absolute http or https URL"),
        ("http:/h", "must be an absolute http or https URL"),
        ("//h/p", "must be an absolute http or https URL"),
        ("/p", "must be an absolute http or https URL"),
        ("h/p", "must be an absolute http or https URL"),
        (
            "merchant.example.com",
            "must be an absolute http or https URL",
        ),
        ("", "must be an absolute http or https URL"),
        ("*", "must be an absolute http or https URL"),
        ("https://h h/", "must be an absolute http or https URL"),
        ("https://h/a b", "must be an absolute http or https URL"),
        ("https://h/p?a b", "must be an absolute http or https URL"),
        ("https://h/p\\q", "ok"),
        ("https://hé/", "must be an absolute http or https URL"),
        ("https://h%41/", "must be an absolute http or https URL"),
        ("https://h:1:2/", "must be an absolute http or https URL"),
        ("https://[::1/", "must be an absolute http or https URL"),
        ("https://::1]/", "must be an absolute http or https URL"),
        ("https://[[::1]]/", "must be an absolute http or https URL"),
        (
            "https://a:b:c:d:e:f:g:h:i:j/",
            "must be an absolute http or https URL",
        ),
        ("https://u@/", "must be an absolute http or https URL"),
        ("https://user@h/", "must not carry user info"),
        ("https://user:pw@h:1/", "must not carry user info"),
        ("https://u%40x@h/", "must not carry user info"),
        ("https://:80/", "must name a host"),
        ("https://:/", "must name a host"),
        ("https://h/#frag", "must not carry a fragment"),
        ("https://h#", "must not carry a fragment"),
        ("https://h/p?q#f g", "must not carry a fragment"),
        ("https://h/p#f\u{1}", "must not carry a fragment"),
        ("https://h/p\t", "must be an absolute http or https URL"),
    ];

    #[test]
    fn agrees_with_http_uri_on_the_edge_cases() {
        for (url, want) in CASES {
            assert_eq!(outcome(check_url(url)), *want, "{url:?}");
            assert_eq!(
                outcome(check_url_with_http(url)),
                *want,
                "reference disagrees on {url:?}"
            );
        }
    }

    #[test]
    fn agrees_with_http_uri_on_every_single_byte() {
        for b in (0u8..=0x7f).map(char::from).chain(['é', '\u{80}', '😀']) {
            for url in [
                format!("https://h{b}/"),
                format!("https://h/{b}"),
                format!("https://h/?{b}"),
                format!("https://{b}/"),
                format!("https://h:{b}/"),
                format!("http{b}//h/"),
            ] {
                assert_eq!(
                    outcome(check_url(&url)),
                    outcome(check_url_with_http(&url)),
                    "{url:?}"
                );
            }
        }
    }

    proptest! {
        #[test]
        fn agrees_with_http_uri(
            scheme in "(?i:https?://|https?:/|ftp://|)",
            rest in "[a-z0-9:/?#@%\\[\\]. \"{}`|\\\\~é!$&'()*+,;=_-]{0,24}",
        ) {
            let url = format!("{scheme}{rest}");
            prop_assert_eq!(outcome(check_url(&url)), outcome(check_url_with_http(&url)), "{:?}", url);
        }
    }
}
