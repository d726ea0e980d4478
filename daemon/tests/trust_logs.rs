//! Secrets never reach the logs: the real binary at `trace` level (every crate's events, hyper's
//! and rustls's included) signs, retries, refuses a wrong ingest token and reloads its keys,
//! and its whole log is then searched for the private key, the ingest tokens and every signature
//! it sent.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use notifyd_daemon::mock_merchant::{MockMerchant, Respond};
use serde_json::Value;
use support::payment;
use support::process::{Home, client};
use support::trust::{secret, sigvec_dir};

const TOKEN: &str = "gateway-token-7f3a9c1e5b2d4086";
const WRONG_TOKEN: &str = "not-the-token-0b1c2d3e4f5a6978";

async fn submit(home: &Home, token: &str, envelope: &Value) -> (u16, Value) {
    request(
        home,
        token,
        "POST",
        "/v1/notifications",
        envelope.to_string(),
    )
    .await
}

async fn request(home: &Home, token: &str, method: &str, path: &str, body: String) -> (u16, Value) {
    let req = http::Request::builder()
        .method(method)
        .uri(format!("http://{}{path}", home.ingest))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let resp = client().request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Every line of the key's base64 body: any one of them in a log is a leak.
fn key_lines(pem: &str) -> Vec<&str> {
    pem.lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_tokens_and_signatures_never_reach_the_log() {
    let pem = std::fs::read_to_string(sigvec_dir().join("test_private_key_pkcs8.pem")).unwrap();
    let merchant = MockMerchant::start(
        "127.0.0.1:0".parse().unwrap(),
        "U,S".parse::<Respond>().unwrap(),
    )
    .await
    .unwrap();
    let home = Home::new(
        "kind = \"schedule\"\nschedule = [\"0s\", \"50ms\", \"50ms\"]\njitter = 0.0\nattempt_timeout = \"2s\"",
        "",
    );
    let key = secret(home.dir.path(), "signing.pem", pem.as_bytes());
    let tokens = secret(home.dir.path(), "tokens", format!("{TOKEN}\n").as_bytes());
    // Trace level for every crate, and a signing key plus a token file for the default profile
    // and the ingest API.
    let text = std::fs::read_to_string(&home.config)
        .unwrap()
        .replace("level = \"warn\"", "level = \"trace\"")
        .replace(
            "[ingest]\n",
            &format!("[ingest]\nauth_token_file = \"{}\"\n", tokens.display()),
        )
        .replace(
            "[profiles.default]\n",
            &format!(
                "[profiles.default]\nclient_id = \"TEST_5X00000000000000\"\nkey_version = 1\n\
                 private_key_file = \"{}\"\n",
                key.display()
            ),
        );
    std::fs::write(&home.config, text).unwrap();
    let notifyd = home.spawn(&[]).await.unwrap();

    let url = format!("http://{}/n", merchant.addr());
    let (status, _) = submit(&home, WRONG_TOKEN, &payment(&url, "PAY-LOG-0")).await;
    assert_eq!(status, 401, "a wrong token is refused");
    let (status, accepted) = submit(&home, TOKEN, &payment(&url, "PAY-LOG-1")).await;
    assert_eq!(status, 200, "{accepted}");
    let id = accepted["notificationId"].as_str().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let path = format!("/v1/notifications/{id}");
        let (status, s) = request(&home, TOKEN, "GET", &path, String::new()).await;
        assert_eq!(status, 200, "{s}");
        if s["state"] == "delivered" {
            break;
        }
        assert!(
            s["state"] == "pending" && tokio::time::Instant::now() < deadline,
            "{s}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A reload reads the key and the tokens again.
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &notifyd.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _) = submit(&home, TOKEN, &payment(&url, "PAY-LOG-2")).await;
    assert_eq!(status, 200, "still serving after the reload");
    drop(notifyd);

    let log = std::fs::read_to_string(&home.log).unwrap();
    // The search means something only if the log holds the events around the secrets.
    assert!(log.contains("Ready"), "no startup line in the log:\n{log}");
    assert!(log.contains("TRACE"), "trace level is not in force:\n{log}");
    assert!(
        log.to_lowercase().contains("reload"),
        "no reload line:\n{log}"
    );
    let signatures: Vec<String> = merchant
        .received()
        .iter()
        .filter_map(|r| r.signature.as_ref())
        .map(|h| h.to_str().unwrap().to_owned())
        .collect();
    assert!(signatures.len() >= 2, "signed attempts: U then S");
    for sig in &signatures {
        let value = sig.split("signature=").nth(1).unwrap();
        assert!(!log.contains(value), "a request signature is in the log");
    }
    for line in key_lines(&pem) {
        assert!(
            !log.contains(line),
            "a line of the private key is in the log"
        );
    }
    assert!(!log.contains(TOKEN), "the ingest token is in the log");
    assert!(
        !log.contains(WRONG_TOKEN),
        "a presented token is in the log"
    );
}
