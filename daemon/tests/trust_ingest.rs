//! Ingest access: bearer tokens, header and body limits, slow clients, the Unix socket.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use support::trust::secret;
use support::{Harness, payment};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// notifyd with a token file holding two tokens and short client timeouts.
async fn guarded() -> Harness {
    Harness::start_extra(
        "S",
        |dir| {
            let tokens = secret(
                dir,
                "tokens",
                b"# gateways\ngw-one-secret\n\ngw-two-secret\n",
            );
            format!(
                "\n[ingest]\nauth_token_file = \"{}\"\nheader_timeout = \"500ms\"\n\
                 body_timeout = \"500ms\"\n",
                tokens.display()
            )
        },
        |_| {},
    )
    .await
}

async fn post_with(h: &Harness, auth: Option<&str>, body: &Value) -> (u16, Value) {
    let mut req = http::Request::post(format!("http://{}/v1/notifications", h.ingest()));
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let req = req
        .body(Full::new(Bytes::from(serde_json::to_vec(body).unwrap())))
        .unwrap();
    let resp = h.client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_guard_the_api() {
    let h = guarded().await;
    let env = payment(&h.merchant_url("/n"), "PAY-AUTH");
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Bearer gw-one-secreT"),
        Some("Bearer gw-one-secret-and-more"),
        Some("Basic gw-one-secret"),
        Some("Bearer # gateways"),
        Some("Bearer "),
    ] {
        let (status, body) = post_with(&h, auth, &env).await;
        assert_eq!(status, 401, "{auth:?}: {body}");
        assert_eq!(body["result"]["resultStatus"], "F");
        assert_eq!(body["result"]["resultCode"], "ACCESS_DENIED");
    }
    assert_eq!(h.get("/v1/dead-letters").await.0, 401, "queries too");
    assert_eq!(h.get("/healthz").await.0, 200, "probes stay open");
    let (status, body) = post_with(&h, Some("Bearer gw-two-secret"), &env).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post_with(&h, Some("Bearer gw-one-secret"), &env).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["duplicate"], true);
}

/// Sends `head` on a fresh connection and reads until the server closes it. The bound is well
/// under the built-in 10 s header timeout, so only the configured 500 ms can meet it.
async fn exchange(h: &Harness, head: &[u8]) -> String {
    let mut s = TcpStream::connect(h.ingest()).await.unwrap();
    s.write_all(head).await.unwrap();
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the server never closed the connection");
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_are_refused() {
    let h = guarded().await;
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let answer = exchange(&h, head.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
    // An ordinary request still works.
    assert_eq!(h.get("/healthz").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let h = guarded().await;
    let answer = exchange(&h, b"POST /v1/notifications HTTP/1.1\r\nHost: x\r\n").await;
    assert!(
        !answer.contains("200 OK"),
        "nothing was served to a half request: {answer:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_body_gets_408() {
    let h = guarded().await;
    let answer = exchange(
        &h,
        b"POST /v1/notifications HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer gw-one-secret\r\n\
          Content-Length: 500\r\nConnection: close\r\n\r\n{\"api\":",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_has_its_mode_and_group_and_serves_the_api() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // The group of a file we create: one we are allowed to give the socket.
    let own_gid = {
        let d = tempfile::tempdir().unwrap();
        std::fs::metadata(d.path()).unwrap().gid()
    };
    let h = Harness::start_extra(
        "S",
        |dir| {
            format!(
                "\n[ingest]\nunix_socket = \"{}\"\nunix_socket_mode = \"0660\"\n\
                 unix_socket_group = \"{own_gid}\"\n",
                dir.join("ingest.sock").display()
            )
        },
        |_| {},
    )
    .await;
    let path = h.dir.path().join("ingest.sock");
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(meta.gid(), own_gid);
    let leftovers: Vec<_> = std::fs::read_dir(h.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "no staging socket left behind");

    let stream = tokio::net::UnixStream::connect(&path).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let env = payment(&h.merchant_url("/n"), "PAY-UNIX");
    let req = http::Request::post("/v1/notifications")
        .header("host", "localhost")
        .body(Full::new(Bytes::from(serde_json::to_vec(&env).unwrap())))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    let id = body["notificationId"].as_str().unwrap();
    h.wait_state(id, "delivered").await;
}
