//! Signing on the wire (PROTOCOL.md §1): requests signed afresh on every attempt and verified by
//! an independent implementation (`openssl dgst`); response signatures checked per profile mode.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use notifyd_core::signing::{SigningKey, sign_request};
use serde_json::Value;
use support::trust::{Receiver, Seen, json_response, secret, sigvec_dir};
use support::{Harness, payment};

const CLIENT_ID: &str = "TEST_5X00000000000000";

fn private_key_pem() -> Vec<u8> {
    std::fs::read(sigvec_dir().join("test_private_key_pkcs8.pem")).unwrap()
}

fn public_key_file() -> PathBuf {
    sigvec_dir().join("test_public_key_x509.pem")
}

/// A signing profile using the test vector's key (copied with mode 0600, as notifyd demands).
fn signed_profile(dir: &Path, name: &str, extra: &str) -> String {
    let key = secret(dir, &format!("{name}.pem"), &private_key_pem());
    format!(
        "\n[profiles.{name}]\nallow_http = true\nallow_private = [\"127.0.0.0/8\"]\n\
         client_id = \"{CLIENT_ID}\"\nkey_version = 1\nprivate_key_file = \"{}\"\n{extra}\n\
         [profiles.{name}.retry]\nkind = \"schedule\"\nschedule = [\"0s\", \"50ms\", \"50ms\"]\n\
         jitter = 0.0\nattempt_timeout = \"2s\"\n",
        key.display()
    )
}

fn to(url: &str, profile: &str, pay: &str) -> Value {
    let mut env = payment(url, pay);
    env["profile"] = profile.into();
    env
}

/// `%XX` decoding of the `signature=` value, written here rather than borrowed from core so the
/// check does not share the signer's code.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Verifies a request's signature with `openssl dgst` over the content built per §1.3.
fn openssl_verifies(dir: &Path, tag: &str, method_uri: &str, seen: &SeenReq) -> bool {
    let header = &seen.signature;
    assert!(
        header.starts_with("algorithm=RSA256,keyVersion=1,signature=")
            || header.starts_with("algorithm=RSA256, keyVersion=1, signature="),
        "{header}"
    );
    let b64 = percent_decode(header.split("signature=").nth(1).unwrap());
    let mut content = format!("{method_uri}\n{}.{}.", seen.client_id, seen.time).into_bytes();
    content.extend_from_slice(&seen.body);
    let content_file = dir.join(format!("{tag}.content"));
    let b64_file = dir.join(format!("{tag}.b64"));
    let sig_file = dir.join(format!("{tag}.sig"));
    std::fs::write(&content_file, &content).unwrap();
    std::fs::write(&b64_file, b64).unwrap();
    let decoded = Command::new("openssl")
        .args(["base64", "-d", "-A", "-in"])
        .arg(&b64_file)
        .arg("-out")
        .arg(&sig_file)
        .status()
        .unwrap();
    assert!(decoded.success());
    Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(public_key_file())
        .arg("-signature")
        .arg(&sig_file)
        .arg(&content_file)
        .output()
        .unwrap()
        .status
        .success()
}

struct SeenReq {
    signature: String,
    client_id: String,
    time: String,
    body: Vec<u8>,
}

fn text(v: &Option<http::HeaderValue>) -> String {
    v.as_ref().unwrap().to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_attempt_is_signed_afresh_and_openssl_agrees() {
    let h = Harness::start_extra("U,S", |dir| signed_profile(dir, "signed", ""), |_| {}).await;
    let id = h
        .submit(&to(
            &h.merchant_url("/v1/payments/notifyPayment?x=1"),
            "signed",
            "PAY-SIG",
        ))
        .await;
    h.wait_state(&id, "delivered").await;
    let got = h.merchant.received();
    assert_eq!(got.len(), 2);
    let reqs: Vec<SeenReq> = got
        .iter()
        .map(|r| SeenReq {
            signature: text(&r.signature),
            client_id: text(&r.client_id),
            time: text(&r.request_time),
            body: r.body.to_vec(),
        })
        .collect();
    for (i, r) in reqs.iter().enumerate() {
        assert_eq!(r.client_id, CLIENT_ID);
        // RFC 3339 with milliseconds, the default.
        assert_eq!(
            r.time.len(),
            "2019-11-27T04:01:02.123+00:00".len(),
            "{}",
            r.time
        );
        assert_eq!(&r.time[19..20], ".", "{}", r.time);
        assert!(
            openssl_verifies(
                h.dir.path(),
                &format!("a{i}"),
                "POST /v1/payments/notifyPayment?x=1",
                r
            ),
            "attempt {i}: openssl rejects the signature"
        );
        // Tampering is noticed by the same check, so the check itself can fail.
        let mut bad = SeenReq {
            body: r.body.clone(),
            signature: r.signature.clone(),
            client_id: r.client_id.clone(),
            time: r.time.clone(),
        };
        bad.body.push(b' ');
        assert!(!openssl_verifies(
            h.dir.path(),
            &format!("t{i}"),
            "POST /v1/payments/notifyPayment?x=1",
            &bad
        ));
    }
    assert_ne!(
        reqs[0].time, reqs[1].time,
        "a retry carries a new Request-Time"
    );
    assert_ne!(reqs[0].signature, reqs[1].signature, "and a new signature");
    assert_eq!(reqs[0].body, reqs[1].body, "over the same bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epoch_millis_request_time_is_signed_as_sent() {
    let h = Harness::start_extra(
        "S",
        |dir| signed_profile(dir, "antom", "request_time_format = \"epoch_millis\""),
        |_| {},
    )
    .await;
    let id = h
        .submit(&to(&h.merchant_url("/notify"), "antom", "PAY-EPOCH"))
        .await;
    h.wait_state(&id, "delivered").await;
    let r = &h.merchant.received()[0];
    let seen = SeenReq {
        signature: text(&r.signature),
        client_id: text(&r.client_id),
        time: text(&r.request_time),
        body: r.body.to_vec(),
    };
    assert!(
        seen.time.len() == 13 && seen.time.bytes().all(|b| b.is_ascii_digit()),
        "{}",
        seen.time
    );
    assert!(openssl_verifies(h.dir.path(), "e", "POST /notify", &seen));
}

/// A receiver that signs its S answers with the test key: correctly on `/valid`, over other
/// content on `/wrong`, not at all on `/missing`, with an empty `Signature` header on `/empty`.
async fn signing_receiver() -> Receiver {
    let key = Arc::new(SigningKey::from_pkcs8_pem(&private_key_pem()).unwrap());
    Receiver::start(
        None,
        Arc::new(move |seen: &Seen| {
            let body = br#"{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"}}"#;
            let time = "2019-11-27T12:01:02+08:00";
            let signed_over: &[u8] = if seen.path_and_query == "/wrong" {
                b"{}"
            } else {
                body
            };
            let sig = sign_request(
                &key,
                1,
                "POST",
                &seen.path_and_query,
                CLIENT_ID,
                time,
                signed_over,
            );
            let mut headers = vec![
                ("client-id", CLIENT_ID.to_owned()),
                ("response-time", time.to_owned()),
            ];
            match seen.path_and_query.as_str() {
                "/missing" => {}
                "/empty" => headers.push(("signature", String::new())),
                _ => headers.push(("signature", sig)),
            }
            json_response(body, &headers)
        }),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_signatures_are_checked_per_mode() {
    let rx = signing_receiver().await;
    let peer = public_key_file();
    let h = Harness::start_extra(
        "S",
        |dir| {
            signed_profile(
                dir,
                "required",
                &format!(
                    "response_signature = \"required\"\npeer_public_key_file = \"{}\"",
                    peer.display()
                ),
            ) + &signed_profile(
                dir,
                "optional",
                &format!(
                    "response_signature = \"optional\"\npeer_public_key_file = \"{}\"",
                    peer.display()
                ),
            )
        },
        |_| {},
    )
    .await;
    let url = |path: &str| format!("http://{}{path}", rx.addr);

    let valid = h.submit(&to(&url("/valid"), "required", "PAY-VALID")).await;
    let wrong = h.submit(&to(&url("/wrong"), "required", "PAY-WRONG")).await;
    let missing = h
        .submit(&to(&url("/missing"), "required", "PAY-MISSING"))
        .await;
    let optional_missing = h
        .submit(&to(&url("/missing"), "optional", "PAY-OPT-MISSING"))
        .await;
    let optional_wrong = h
        .submit(&to(&url("/wrong"), "optional", "PAY-OPT-WRONG"))
        .await;
    let empty = h.submit(&to(&url("/empty"), "required", "PAY-EMPTY")).await;
    let optional_empty = h
        .submit(&to(&url("/empty"), "optional", "PAY-OPT-EMPTY"))
        .await;

    let s = h.wait_state(&valid, "delivered").await;
    assert_eq!(s["attempts"], 1);
    let s = h.wait_state(&optional_missing, "delivered").await;
    assert_eq!(s["attempts"], 1, "optional: an unsigned answer is accepted");
    let s = h.wait_state(&optional_empty, "delivered").await;
    assert_eq!(
        s["attempts"], 1,
        "optional: an empty Signature header is no signature"
    );

    for (id, reason) in [
        (&wrong, "signature_invalid"),
        (&missing, "signature_missing"),
        (&empty, "signature_missing"),
        (&optional_wrong, "signature_invalid"),
    ] {
        let s = h.wait_state(id, "dead").await;
        assert_eq!(
            s["attempts"], 3,
            "an S without a good signature is retried: {s}"
        );
        assert_eq!(s["lastResult"], format!("retry: {reason}"), "{s}");
    }
}

/// A reload (what SIGHUP does) reaches notifications already queued: their next attempt is
/// signed with the new identity, while nothing in flight is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloaded_keys_sign_the_retries_of_queued_notifications() {
    let slow = |id: &str, dir: &Path| {
        signed_profile(dir, "signed", "")
            .replace(CLIENT_ID, id)
            .replace(
                "schedule = [\"0s\", \"50ms\", \"50ms\"]",
                "schedule = [\"0s\", \"1s\"]",
            )
    };
    let h = Harness::start_extra("U,S", |dir| slow(CLIENT_ID, dir), |_| {}).await;
    let id = h
        .submit(&to(&h.merchant_url("/n"), "signed", "PAY-RELOAD"))
        .await;
    h.wait_received(1).await;
    let reloaded = support::config(h.dir.path(), &slow("ROTATED_CLIENT", h.dir.path()));
    let profiles = notifyd_daemon::profile::build_profiles(&reloaded).unwrap();
    h.notifyd.as_ref().unwrap().app.replace_profiles(profiles);
    h.wait_state(&id, "delivered").await;
    let got = h.merchant.received();
    assert_eq!(got.len(), 2);
    assert_eq!(text(&got[0].client_id), CLIENT_ID);
    assert_eq!(text(&got[1].client_id), "ROTATED_CLIENT");
    let r = &got[1];
    let seen = SeenReq {
        signature: text(&r.signature),
        client_id: text(&r.client_id),
        time: text(&r.request_time),
        body: r.body.to_vec(),
    };
    assert!(openssl_verifies(h.dir.path(), "rot", "POST /n", &seen));
}

/// A fresh RSA key pair written by `openssl` (PKCS#8 private, SPKI public), as a merchant
/// rotating to a new key would make one.
fn openssl_key_pair(dir: &Path, name: &str) -> Option<(Vec<u8>, PathBuf)> {
    let private = dir.join(format!("{name}.key.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    let made = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&private)
        .status()
        .ok()?
        .success()
        && Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&private)
            .arg("-out")
            .arg(&public)
            .status()
            .ok()?
            .success();
    made.then(|| (std::fs::read(&private).unwrap(), public))
}

/// A receiver in the middle of a key rotation: `/vN-old` and `/vN-new` sign with the old (the
/// test vector's) or the new key and name `keyVersion=N`; `/none-new` names no keyVersion.
async fn rotating_receiver(new_key: &[u8]) -> Receiver {
    let old = Arc::new(SigningKey::from_pkcs8_pem(&private_key_pem()).unwrap());
    let new = Arc::new(SigningKey::from_pkcs8_pem(new_key).unwrap());
    Receiver::start(
        None,
        Arc::new(move |seen: &Seen| {
            let body = br#"{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"}}"#;
            let time = "2019-11-27T12:01:02+08:00";
            let path = seen.path_and_query.as_str();
            let (which, key) = path[1..].split_once('-').unwrap();
            let key = if key == "old" { &old } else { &new };
            let version = which.strip_prefix('v').map_or(1, |v| v.parse().unwrap());
            let mut sig = sign_request(key, version, "POST", path, CLIENT_ID, time, body);
            if which == "none" {
                sig = sig.replace("keyVersion=1, ", "");
                assert!(!sig.contains("keyVersion"), "{sig}");
            }
            let headers = [
                ("client-id", CLIENT_ID.to_owned()),
                ("response-time", time.to_owned()),
                ("signature", sig),
            ];
            json_response(body, &headers)
        }),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_verify_with_the_key_of_the_key_version_they_name() {
    let keys = tempfile::tempdir().unwrap();
    let Some((new_private, new_public)) = openssl_key_pair(keys.path(), "rotated") else {
        support::skip("openssl cannot generate an RSA key");
        return;
    };
    let rx = rotating_receiver(&new_private).await;
    let old_public = public_key_file();
    let h = Harness::start_extra(
        "S",
        |dir| {
            let by_version = format!(
                "response_signature = \"required\"\npeer_public_keys = {{ \"1\" = \"{}\", \"2\" = \"{}\" }}",
                old_public.display(),
                new_public.display()
            );
            // The older key by version, the newer one for every other version (or none).
            let with_any = format!(
                "response_signature = \"required\"\npeer_public_key_file = \"{}\"\npeer_public_keys = {{ \"1\" = \"{}\" }}",
                new_public.display(),
                old_public.display()
            );
            signed_profile(dir, "rotating", &by_version) + &signed_profile(dir, "fallback", &with_any)
        },
        |_| {},
    )
    .await;
    let url = |path: &str| format!("http://{}{path}", rx.addr);
    let submit = |path: &'static str, profile: &'static str| {
        let env = to(
            &url(path),
            profile,
            &format!("PAY-{profile}{}", path.replace('/', "-")),
        );
        let h = &h;
        async move { h.submit(&env).await }
    };

    let mut verified = Vec::new();
    for (path, profile) in [
        ("/v1-old", "rotating"),
        ("/v2-new", "rotating"),
        ("/v1-old", "fallback"),
        ("/v2-new", "fallback"),
        ("/v3-new", "fallback"),
        ("/none-new", "fallback"),
    ] {
        verified.push((path, profile, submit(path, profile).await));
    }
    let mut refused = Vec::new();
    for (path, profile, why) in [
        // Signed with the old key but naming the new key's version: the new key does not verify it.
        ("/v2-old", "rotating", "retry: signature_invalid"),
        ("/v1-new", "rotating", "retry: signature_invalid"),
        (
            "/v3-new",
            "rotating",
            "retry: signature_invalid: keyVersion \"3\" has no key in peer_public_keys and there is no peer_public_key_file",
        ),
        (
            "/none-new",
            "rotating",
            "retry: signature_invalid: the answer names no keyVersion and there is no peer_public_key_file",
        ),
        ("/v1-new", "fallback", "retry: signature_invalid"),
    ] {
        refused.push((path, profile, why, submit(path, profile).await));
    }

    for (path, profile, id) in verified {
        let s = h.wait_state(&id, "delivered").await;
        assert_eq!(s["attempts"], 1, "{profile} {path}: {s}");
    }
    for (path, profile, why, id) in refused {
        let s = h.wait_state(&id, "dead").await;
        assert_eq!(s["lastResult"], why, "{profile} {path}: {s}");
    }
}
