//! Properties over random requests: what we sign verifies, and any change to the body breaks it.

mod signing_common;

use std::sync::OnceLock;

use notifyd_core::signing::{SigningKey, VerifyError, VerifyingKey, sign_request, verify_response};
use proptest::prelude::*;

fn keys() -> &'static (SigningKey, VerifyingKey) {
    static KEYS: OnceLock<(SigningKey, VerifyingKey)> = OnceLock::new();
    KEYS.get_or_init(|| {
        (
            signing_common::signing_key(),
            signing_common::verifying_key(),
        )
    })
}

proptest! {
    // RSA signing is slow in debug builds; a few dozen cases cover the encoding paths.
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn signed_requests_verify_and_any_body_flip_breaks_them(
        body in proptest::collection::vec(any::<u8>(), 1..2048),
        uri in "/[a-zA-Z0-9/._~-]{0,40}(\\?[a-z]=[0-9]{1,4})?",
        client_id in "[A-Z0-9_]{1,32}",
        time in "[0-9T:.+-]{1,30}",
        key_version in any::<u32>(),
        at in any::<prop::sample::Index>(),
        mask in 1u8..,
    ) {
        let (sk, vk) = keys();
        let header = sign_request(sk, key_version, "POST", &uri, &client_id, &time, &body);
        let expected_prefix = format!("algorithm=RSA256, keyVersion={key_version}, signature=");
        prop_assert!(header.starts_with(&expected_prefix));
        prop_assert_eq!(
            verify_response(vk, "POST", &uri, &client_id, &time, &body, &header),
            Ok(())
        );

        let mut tampered = body.clone();
        tampered[at.index(body.len())] ^= mask;
        prop_assert_eq!(
            verify_response(vk, "POST", &uri, &client_id, &time, &tampered, &header),
            Err(VerifyError::BadSignature)
        );
    }
}
