//! Just enough PEM (RFC 7468) to read one key: a crate for this would be larger than the job.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::keys::KeyError;

/// The base64-decoded body of the first PEM block, which must be labelled `label`.
///
/// Text before `-----BEGIN` and after `-----END` is ignored (RFC 7468 allows it, e.g. comments
/// written by key tools); whitespace and CRLF inside the body are ignored. Encapsulated headers
/// (`Proc-Type:` of legacy encrypted keys) are not base64 and are rejected.
pub(crate) fn decode(input: &[u8], label: &'static str) -> Result<Vec<u8>, KeyError> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    const DASHES: &[u8] = b"-----";

    let start = find(input, BEGIN).ok_or(KeyError::PemNoBlock)? + BEGIN.len();
    let after_begin = &input[start..];
    let label_end = find(after_begin, DASHES).ok_or(KeyError::PemNoBlock)?;
    let found = &after_begin[..label_end];
    if found != label.as_bytes() {
        return Err(KeyError::PemLabel {
            expected: label,
            found: String::from_utf8_lossy(found).chars().take(40).collect(),
        });
    }
    let body_and_rest = &after_begin[label_end + DASHES.len()..];

    let mut end_marker = b"-----END ".to_vec();
    end_marker.extend_from_slice(label.as_bytes());
    end_marker.extend_from_slice(DASHES);
    let body_end = find(body_and_rest, &end_marker).ok_or(KeyError::PemUnterminated)?;

    let b64: Vec<u8> = body_and_rest[..body_end]
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let der = STANDARD.decode(&b64).map_err(|_| KeyError::PemBase64)?;
    if der.is_empty() {
        return Err(KeyError::PemBase64);
    }
    Ok(der)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_with_crlf_and_surrounding_text() {
        let pem = b"comment\r\n-----BEGIN PUBLIC KEY-----\r\nQUJD\r\n REVG \n-----END PUBLIC KEY-----\r\ntrailer";
        assert_eq!(decode(pem, "PUBLIC KEY").unwrap(), b"ABCDEF");
    }

    #[test]
    fn rejects_wrong_label() {
        let pem = b"-----BEGIN RSA PRIVATE KEY-----\nQUJD\n-----END RSA PRIVATE KEY-----\n";
        assert_eq!(
            decode(pem, "PRIVATE KEY"),
            Err(KeyError::PemLabel {
                expected: "PRIVATE KEY",
                found: "RSA PRIVATE KEY".into()
            })
        );
    }

    #[test]
    fn rejects_missing_end_mismatched_end_and_bad_base64() {
        assert_eq!(
            decode(b"-----BEGIN PUBLIC KEY-----\nQUJD\n", "PUBLIC KEY"),
            Err(KeyError::PemUnterminated)
        );
        assert_eq!(
            decode(
                b"-----BEGIN PUBLIC KEY-----\nQUJD\n-----END PRIVATE KEY-----",
                "PUBLIC KEY"
            ),
            Err(KeyError::PemUnterminated)
        );
        assert_eq!(
            decode(
                b"-----BEGIN PUBLIC KEY-----\nProc-Type: 4,ENCRYPTED\nQUJD\n-----END PUBLIC KEY-----",
                "PUBLIC KEY"
            ),
            Err(KeyError::PemBase64)
        );
        assert_eq!(
            decode(
                b"-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----",
                "PUBLIC KEY"
            ),
            Err(KeyError::PemBase64)
        );
        assert_eq!(decode(b"QUJD", "PUBLIC KEY"), Err(KeyError::PemNoBlock));
    }
}
