//! File descriptor exhaustion and a flood of ingest connections: the real binary under
//! `prlimit --nofile=64:64` is sent far more connections than it can hold. It must not crash,
//! must say why in its log, must not answer S for what it did not store, and must serve (and
//! deliver) normally once the flood is over.

mod support;

use std::time::Duration;

use notifyd_daemon::mock_merchant::{MockMerchant, Respond};
use support::payment;
use support::process::{Home, call, client, fd_count, wait_delivered};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_past_the_fd_limit_is_survived() {
    if std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_err()
    {
        support::skip("prlimit (util-linux) is not installed");
        return;
    }
    let merchant = MockMerchant::start("127.0.0.1:0".parse().unwrap(), Respond::Success)
        .await
        .unwrap();
    let url = format!("http://{}/n", merchant.addr());
    let home = Home::new(
        r#"kind = "schedule"
schedule = ["0s", "200ms", "500ms", "1s", "1s", "1s", "1s", "1s", "1s", "1s", "1s", "1s", "1s"]
jitter = 0.0
attempt_timeout = "2s""#,
        "",
    );
    let ingest = home.ingest;
    let mut n = home
        .spawn(&["prlimit", "--nofile=64:64", "--"])
        .await
        .unwrap();
    let pid = n.pid().to_string();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    assert!(
        limits
            .lines()
            .any(|l| l.starts_with("Max open files") && l.contains(" 64 ")),
        "the limit applies to notifyd itself: {limits}"
    );
    eprintln!("fds at start: {}", fd_count(&pid));

    // The flood: 150 idle connections held open, while notifications keep coming.
    let mut flood = Vec::new();
    for _ in 0..150 {
        if let Ok(Ok(s)) = tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(ingest),
        )
        .await
        {
            flood.push(s);
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fds_in_flood = fd_count(&pid);
    let c = client();
    let mut accepted = Vec::new();
    let mut refused = 0;
    for i in 0..10 {
        let body = serde_json::to_vec(&payment(&url, &format!("PAY-FD-{i}"))).unwrap();
        match tokio::time::timeout(
            Duration::from_secs(1),
            call(&c, "POST", ingest, "/v1/notifications", body),
        )
        .await
        {
            Ok(Ok((200, v))) if v["result"]["resultStatus"] == "S" => {
                accepted.push(v["notificationId"].as_str().unwrap().to_owned());
            }
            Ok(Ok((status, v))) => {
                assert_ne!(v["result"]["resultStatus"], "S", "S with HTTP {status}");
                refused += 1;
            }
            _ => refused += 1,
        }
    }
    assert!(n.alive(), "notifyd died in the flood: {}", n.log_tail());
    drop(flood);
    drop(c);
    let t0 = std::time::Instant::now();

    // After the flood: alive, ready, accepting and delivering again.
    n.wait_ready(Duration::from_secs(15)).await.unwrap();
    let c = client();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let body = serde_json::to_vec(&payment(&url, "PAY-FD-AFTER")).unwrap();
        match call(&c, "POST", ingest, "/v1/notifications", body).await {
            Ok((200, v)) if v["result"]["resultStatus"] == "S" => {
                accepted.push(v["notificationId"].as_str().unwrap().to_owned());
                break;
            }
            other => assert!(
                tokio::time::Instant::now() < deadline,
                "ingest never came back: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("ready and accepting {:?} after the flood", t0.elapsed());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for id in &accepted {
        wait_delivered(&c, ingest, id, id, deadline).await;
    }
    eprintln!("delivered {:?} after the flood", t0.elapsed());
    let text = std::fs::read_to_string(&home.log).unwrap();
    assert!(
        text.contains("Too many open files"),
        "the log says why connections were refused: {}",
        n.log_tail()
    );
    assert!(n.alive());
    eprintln!(
        "fds: {fds_in_flood} open (limit 64) in the flood; {} accepted, {refused} refused or unanswered during the flood",
        accepted.len()
    );
}
