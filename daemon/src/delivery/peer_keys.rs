//! The receiver's public keys of a profile, chosen by the `keyVersion` its answers name, so
//! answers signed with the old and with the new key both verify while a merchant rotates.

use std::collections::HashMap;

use notifyd_core::signing::VerifyingKey;

/// `peer_public_key_file` (any version) and `peer_public_keys` (by version), loaded.
#[derive(Debug, Default)]
pub struct PeerKeys {
    any: Option<VerifyingKey>,
    by_version: HashMap<u32, VerifyingKey>,
}

impl PeerKeys {
    /// `any` verifies answers whose `keyVersion` is absent or has no key in `by_version`.
    pub fn new(any: Option<VerifyingKey>, by_version: HashMap<u32, VerifyingKey>) -> PeerKeys {
        PeerKeys { any, by_version }
    }

    /// True when the profile has no key at all (answers are then not checked).
    pub fn is_empty(&self) -> bool {
        self.any.is_none() && self.by_version.is_empty()
    }

    /// The key for an answer whose `Signature` header names `key_version`; the error says, for
    /// `lastResult`, why there is none.
    pub fn select(&self, key_version: Option<&str>) -> Result<&VerifyingKey, String> {
        let own = key_version
            .filter(|v| v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse::<u32>().ok())
            .and_then(|v| self.by_version.get(&v));
        own.or(self.any.as_ref()).ok_or_else(|| match key_version {
            Some(v) => {
                // The receiver's text: bounded before it reaches the store.
                let mut v = v.to_owned();
                crate::text::truncate_chars(&mut v, 16);
                format!(
                    "keyVersion {v:?} has no key in peer_public_keys and there is no \
                     peer_public_key_file"
                )
            }
            None => {
                "the answer names no keyVersion and there is no peer_public_key_file".to_owned()
            }
        })
    }
}
