//! `notifyd ctl` (the real binary) against the in-process daemon: every command, human and
//! JSON output, the token, the Unix socket, and the exit codes scripts test.

mod support;

use std::process::Command;

use serde_json::Value;
use support::{Harness, payment};

/// notifyd with a token and a Unix socket, the merchant answering `mode`.
async fn daemon(mode: &str) -> Harness {
    Harness::start_extra(
        mode,
        |dir| {
            use std::os::unix::fs::PermissionsExt;
            let token = dir.join("token");
            std::fs::write(&token, "# operators\nops-secret\n").unwrap();
            std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
            format!(
                "\n[ingest]\nauth_token_file = \"{}\"\nunix_socket = \"{}\"\n",
                dir.join("token").display(),
                dir.join("ingest.sock").display()
            )
        },
        |_| {},
    )
    .await
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|_| panic!("not JSON: {}", self.stdout))
    }
}

/// Runs `notifyd ctl --url ... --token-file ... ARGS` off the test's runtime.
async fn ctl(h: &Harness, args: &[&str]) -> Out {
    let mut full = vec![
        "ctl".to_owned(),
        "--url".to_owned(),
        format!("http://{}", h.ingest()),
        "--token-file".to_owned(),
        h.dir.path().join("token").display().to_string(),
    ];
    full.extend(args.iter().map(|s| s.to_string()));
    run(full).await
}

async fn run(args: Vec<String>) -> Out {
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_notifyd"))
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_3am_walkthrough_works_from_the_command_line() {
    let h = daemon("F").await;
    let url = h.merchant_url("/notify");
    let id = {
        let (status, body, _) = h
            .request_with_token(
                "POST",
                "/v1/notifications",
                &payment(&url, "PAY-3AM"),
                "ops-secret",
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["notificationId"].as_str().unwrap().to_owned()
    };
    // Find it by payment.
    let ls = loop {
        let ls = ctl(&h, &["ls", "paymentId=PAY-3AM", "state=failed"]).await;
        if ls.stdout.contains(&id) {
            break ls;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(ls.code, 0, "{}", ls.stderr);
    assert!(ls.stdout.starts_with("ID "), "{}", ls.stdout);
    assert!(ls.stdout.contains("failed"), "{}", ls.stdout);
    let js = ctl(&h, &["--json", "ls", "paymentId=PAY-3AM"]).await;
    assert_eq!(js.json()["notifications"][0]["notificationId"], id.as_str());

    // Read its attempts.
    let show = ctl(&h, &["show", &id]).await;
    assert_eq!(show.code, 0, "{}", show.stderr);
    assert!(show.stdout.contains("F PROCESS_FAIL"), "{}", show.stdout);
    assert!(
        show.stdout.contains("attempts (oldest first)"),
        "{}",
        show.stdout
    );
    let js = ctl(&h, &["show", &id, "--json"]).await;
    assert_eq!(js.json()["attemptLog"][0]["httpStatus"], 200);

    // Hold the merchant, redeliver, see nothing sent, resume.
    let endpoint = h.merchant.addr().to_string();
    let hold = ctl(&h, &["hold", &endpoint]).await;
    assert_eq!(hold.code, 0, "{}", hold.stderr);
    assert!(hold.stdout.contains("endpoint held"), "{}", hold.stdout);
    let eps = ctl(&h, &["endpoints"]).await;
    assert!(eps.stdout.contains("held"), "{}", eps.stdout);
    assert!(eps.stdout.contains("ACK 15M"), "{}", eps.stdout);
    let dry = ctl(
        &h,
        &["redeliver", "--filter", "paymentId=PAY-3AM", "--dry-run"],
    )
    .await;
    assert_eq!(
        (dry.code, dry.stdout.as_str()),
        (0, "matched 1, would redeliver 1\n")
    );
    let sent = h.merchant.count();
    let one = ctl(&h, &["redeliver", &id]).await;
    assert_eq!(one.code, 0, "{}", one.stderr);
    assert!(
        one.stdout.starts_with("redelivery started"),
        "{}",
        one.stdout
    );
    let again = ctl(&h, &["redeliver", &id]).await;
    assert_eq!(again.code, 1, "a pending one is refused: {}", again.stderr);
    assert!(
        again.stderr.contains("ORDER_STATUS_INVALID"),
        "{}",
        again.stderr
    );
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(h.merchant.count(), sent, "held: nothing sent");
    let status = ctl(&h, &["status", "--json"]).await;
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert_eq!(status.json()["endpoints"]["held"], 1, "{}", status.stdout);
    assert_eq!(status.json()["pending"], 1, "{}", status.stdout);
    let resume = ctl(&h, &["resume", &endpoint]).await;
    assert_eq!(resume.code, 0, "{}", resume.stderr);
    h.wait_received(sent + 1).await;

    // The Unix socket serves the same commands.
    let sock = run(vec![
        "ctl".into(),
        "--socket".into(),
        h.dir.path().join("ingest.sock").display().to_string(),
        "--token-file".into(),
        h.dir.path().join("token").display().to_string(),
        "status".into(),
    ])
    .await;
    assert_eq!(sock.code, 0, "{}", sock.stderr);
    assert!(
        sock.stdout.starts_with("ready        yes"),
        "{}",
        sock.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_tell_not_found_refused_usage_and_unreachable_apart() {
    let h = daemon("S").await;
    let missing = ctl(&h, &["show", "01ARZ3NDEKTSV4RRFFQ69G5FAV"]).await;
    assert_eq!(missing.code, 1, "not found: {}", missing.stderr);
    let bad = ctl(&h, &["ls", "state=lost"]).await;
    assert_eq!(bad.code, 64, "a filter the daemon refuses: {}", bad.stderr);
    assert!(bad.stderr.contains("state:"), "{}", bad.stderr);
    let usage = ctl(&h, &["ls", "justaword"]).await;
    assert_eq!(usage.code, 64, "{}", usage.stderr);
    let usage = ctl(&h, &["redeliver"]).await;
    assert_eq!(
        usage.code, 64,
        "an id or a filter is required: {}",
        usage.stderr
    );
    let no_token = run(vec![
        "ctl".into(),
        "--url".into(),
        format!("http://{}", h.ingest()),
        "endpoints".into(),
    ])
    .await;
    assert_eq!(no_token.code, 1, "refused: {}", no_token.stderr);
    assert!(
        no_token.stderr.contains("ACCESS_DENIED"),
        "{}",
        no_token.stderr
    );
    let port = support::process::free_port();
    let down = run(vec![
        "ctl".into(),
        "--url".into(),
        format!("http://127.0.0.1:{port}"),
        "status".into(),
    ])
    .await;
    assert_eq!(down.code, 69, "unreachable: {}", down.stderr);
    assert!(down.stderr.contains("unreachable"), "{}", down.stderr);
}
