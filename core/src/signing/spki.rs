//! A strict DER walk from X.509 SubjectPublicKeyInfo to the PKCS#1 `RSAPublicKey` ring wants.
//!
//! ```text
//! SubjectPublicKeyInfo ::= SEQUENCE {
//!     algorithm         SEQUENCE { OID rsaEncryption, NULL },
//!     subjectPublicKey  BIT STRING (0 unused bits) -- DER of RSAPublicKey
//! }
//! RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
//! ```
//!
//! ring only checks the RSAPublicKey when it verifies, so a broken key would make every
//! verification fail quietly. Checking here turns that into a load-time error.

use super::keys::KeyError;

const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_NULL: u8 = 0x05;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;

/// 1.2.840.113549.1.1.1, DER content bytes.
const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// The limits of ring's `RSA_PKCS1_2048_8192_SHA256`, checked early for a clear error.
pub(crate) const MIN_MODULUS_BITS: usize = 2048;
pub(crate) const MAX_MODULUS_BITS: usize = 8192;
const MAX_EXPONENT_BITS: usize = 33;

/// The validated `RSAPublicKey` DER inside `spki`, and its modulus size in bits.
pub(crate) fn rsa_public_key(spki: &[u8]) -> Result<(&[u8], usize), KeyError> {
    let mut input = spki;
    let mut spki_body = expect(&mut input, TAG_SEQUENCE)?;
    end(input)?;

    let mut alg = expect(&mut spki_body, TAG_SEQUENCE)?;
    if expect(&mut alg, TAG_OID)? != OID_RSA_ENCRYPTION {
        return Err(KeyError::NotRsa);
    }
    // RFC 3279 says parameters MUST be NULL; RFC 4055 notes some encoders omit them.
    if !alg.is_empty() && !expect(&mut alg, TAG_NULL)?.is_empty() {
        return Err(KeyError::Der("rsaEncryption parameters must be NULL"));
    }
    end(alg)?;

    let bits = expect(&mut spki_body, TAG_BIT_STRING)?;
    end(spki_body)?;
    let (&unused, rsa_key) = bits
        .split_first()
        .ok_or(KeyError::Der("empty BIT STRING"))?;
    if unused != 0 {
        return Err(KeyError::Der("BIT STRING has unused bits"));
    }

    Ok((rsa_key, check_rsa_public_key(rsa_key)?))
}

/// Checks a PKCS#1 `RSAPublicKey` against ring's verification limits; returns the modulus bits.
pub(crate) fn check_rsa_public_key(rsa_key: &[u8]) -> Result<usize, KeyError> {
    let mut outer = rsa_key;
    let mut seq = expect(&mut outer, TAG_SEQUENCE)?;
    end(outer)?;
    let n = positive_integer(&mut seq)?;
    let e = positive_integer(&mut seq)?;
    end(seq)?;

    let n_bits = bit_len(n);
    if !(MIN_MODULUS_BITS..=MAX_MODULUS_BITS).contains(&n_bits) {
        return Err(KeyError::KeySize { bits: n_bits });
    }
    let e_odd = e.last().is_some_and(|b| b & 1 == 1);
    let e_bits = bit_len(e);
    if !e_odd || !(2..=MAX_EXPONENT_BITS).contains(&e_bits) {
        return Err(KeyError::Der(
            "public exponent must be odd, >= 3 and < 2^33",
        ));
    }
    Ok(n_bits)
}

/// Reads one TLV with the given tag and returns its contents.
fn expect<'a>(input: &mut &'a [u8], tag: u8) -> Result<&'a [u8], KeyError> {
    let (&found, rest) = input.split_first().ok_or(KeyError::Der("truncated"))?;
    if found != tag {
        return Err(KeyError::Der("unexpected tag"));
    }
    let (&first, mut rest) = rest.split_first().ok_or(KeyError::Der("truncated"))?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        // 0x80 is BER's indefinite length; more than 4 length bytes is no key we could use.
        if n == 0 || n > 4 || rest.len() < n {
            return Err(KeyError::Der("bad length"));
        }
        let (len_bytes, after) = rest.split_at(n);
        rest = after;
        if len_bytes[0] == 0 {
            return Err(KeyError::Der("non-minimal length"));
        }
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        if len < 0x80 {
            return Err(KeyError::Der("non-minimal length"));
        }
        len
    };
    if rest.len() < len {
        return Err(KeyError::Der("truncated"));
    }
    let (contents, after) = rest.split_at(len);
    *input = after;
    Ok(contents)
}

fn end(input: &[u8]) -> Result<(), KeyError> {
    if input.is_empty() {
        Ok(())
    } else {
        Err(KeyError::Der("trailing data"))
    }
}

/// A minimally encoded, positive INTEGER, returned without its sign byte.
fn positive_integer<'a>(input: &mut &'a [u8]) -> Result<&'a [u8], KeyError> {
    let v = expect(input, TAG_INTEGER)?;
    match v {
        [] => Err(KeyError::Der("empty INTEGER")),
        [b, ..] if b & 0x80 != 0 => Err(KeyError::Der("negative INTEGER")),
        [0, b, ..] if b & 0x80 == 0 => Err(KeyError::Der("non-minimal INTEGER")),
        [0] => Err(KeyError::Der("zero INTEGER")),
        [0, rest @ ..] => Ok(rest),
        _ => Ok(v),
    }
}

/// Bit length of a big-endian unsigned integer with no leading zero byte.
fn bit_len(v: &[u8]) -> usize {
    match v.first() {
        None => 0,
        Some(&b) => (v.len() - 1) * 8 + (8 - b.leading_zeros() as usize),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = contents.len();
        if len < 0x80 {
            out.push(len as u8);
        } else if len < 0x100 {
            out.extend_from_slice(&[0x81, len as u8]);
        } else {
            out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
        }
        out.extend_from_slice(contents);
        out
    }

    /// A structurally valid SPKI for an `n_bytes`-byte modulus with the top bit set, e = 65537.
    fn spki(n_bytes: usize, oid: &[u8], exponent: &[u8]) -> Vec<u8> {
        let mut n = vec![0x00, 0xc5];
        n.resize(n_bytes + 1, 0x33);
        let rsa = tlv(
            TAG_SEQUENCE,
            &[tlv(TAG_INTEGER, &n), tlv(TAG_INTEGER, exponent)].concat(),
        );
        let alg = tlv(
            TAG_SEQUENCE,
            &[tlv(TAG_OID, oid), vec![TAG_NULL, 0]].concat(),
        );
        let bits = tlv(TAG_BIT_STRING, &[&[0u8][..], &rsa].concat());
        tlv(TAG_SEQUENCE, &[alg, bits].concat())
    }

    #[test]
    fn accepts_2048_bit_key() {
        let der = spki(256, OID_RSA_ENCRYPTION, &[1, 0, 1]);
        let (_, bits) = rsa_public_key(&der).unwrap();
        assert_eq!(bits, 2048);
    }

    #[test]
    fn rejects_small_key_other_oid_and_bad_exponent() {
        assert_eq!(
            rsa_public_key(&spki(128, OID_RSA_ENCRYPTION, &[1, 0, 1])),
            Err(KeyError::KeySize { bits: 1024 })
        );
        // id-ecPublicKey 1.2.840.10045.2.1
        let ec = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
        assert_eq!(
            rsa_public_key(&spki(256, &ec, &[1, 0, 1])),
            Err(KeyError::NotRsa)
        );
        assert!(rsa_public_key(&spki(256, OID_RSA_ENCRYPTION, &[2])).is_err());
        assert!(rsa_public_key(&spki(256, OID_RSA_ENCRYPTION, &[1])).is_err());
    }

    #[test]
    fn rejects_non_minimal_lengths_and_integers() {
        assert_eq!(bit_len(&[0x01, 0x00]), 9);
        let mut input: &[u8] = &[TAG_INTEGER, 0x81, 0x01, 0x05];
        assert!(expect(&mut input, TAG_INTEGER).is_err());
        let mut input: &[u8] = &[TAG_INTEGER, 0x80, 0x05, 0x00, 0x00];
        assert!(expect(&mut input, TAG_INTEGER).is_err());
        let mut input: &[u8] = &[TAG_INTEGER, 0x02, 0x00, 0x05];
        assert!(positive_integer(&mut input).is_err());
        let mut input: &[u8] = &[TAG_INTEGER, 0x01, 0x85];
        assert!(positive_integer(&mut input).is_err());
        let mut input: &[u8] = &[TAG_INTEGER, 0x02, 0x00, 0x85];
        assert_eq!(positive_integer(&mut input), Ok(&[0x85u8][..]));
    }
}
