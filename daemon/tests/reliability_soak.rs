//! Soak: the real binary at a steady ingest rate (batches over loopback) against a receiver that
//! answers U to 20 % of attempts, sampling notifyd's RSS and open fds every 10 s. At the end every
//! accepted notification must be delivered exactly once with S (no crash, so no repeats of an S),
//! none dead, and fds flat. Run it through `benches/soak.sh` (release build; SOAK_SECS, SOAK_RATE).

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use notifyd_daemon::mock_merchant::{MockMerchant, Outcome, Respond};
use support::payment;
use support::process::{Home, call, client, fd_count, rss_kib};

const BATCH: u64 = 50;
const SENDERS: u64 = 4;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn pending(metrics: SocketAddr) -> Option<u64> {
    let req = http::Request::get(format!("http://{metrics}/metrics"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .ok()?;
    let resp = client().request(req).await.ok()?;
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .ok()?
        .to_bytes();
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| l.strip_prefix("notifyd_pending_notifications "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "soak: minutes long; run benches/soak.sh"]
async fn soak_steady_rate_with_failing_receiver() {
    let secs = env_u64("SOAK_SECS", 600);
    let rate = env_u64("SOAK_RATE", 5000);
    let merchant = MockMerchant::start_with_capacity(
        "127.0.0.1:0".parse().unwrap(),
        "FAIL_RATE:0.2".parse::<Respond>().unwrap(),
        0,
    )
    .await
    .unwrap();
    let url = format!("http://{}/n", merchant.addr());
    // 0.2^14 of 3 M notifications: none should run out of attempts.
    let home = Home::new(
        r#"kind = "schedule"
schedule = ["0s", "100ms", "200ms", "500ms", "1s", "1s", "2s", "2s", "5s", "5s", "10s", "10s", "30s", "30s"]
jitter = 0.1
attempt_timeout = "5s""#,
        "",
    );
    let ingest = home.ingest;
    let mut n = home.spawn(&[]).await.unwrap();
    let pid = n.pid().to_string();

    let accepted = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let end = started + Duration::from_secs(secs);
    let mut senders = Vec::new();
    for s in 0..SENDERS {
        let (url, accepted, refused) = (url.clone(), accepted.clone(), refused.clone());
        senders.push(tokio::spawn(async move {
            let c = client();
            let per_sender = (rate / SENDERS).max(1);
            let mut tick =
                tokio::time::interval(Duration::from_micros(1_000_000 * BATCH / per_sender));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut seq = 0u64;
            while Instant::now() < end {
                tick.tick().await;
                let items: Vec<_> = (0..BATCH)
                    .map(|i| payment(&url, &format!("SOAK-{s}-{}", seq + i)))
                    .collect();
                seq += BATCH;
                let body =
                    serde_json::to_vec(&serde_json::json!({ "notifications": items })).unwrap();
                match call(&c, "POST", ingest, "/v1/notifications/batch", body).await {
                    Ok((200, v)) => {
                        for r in v["results"].as_array().into_iter().flatten() {
                            if r["result"]["resultStatus"] == "S" {
                                accepted.fetch_add(1, Ordering::Relaxed);
                            } else {
                                refused.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    _ => {
                        refused.fetch_add(BATCH, Ordering::Relaxed);
                    }
                }
            }
        }));
    }

    let mut samples = Vec::new();
    while Instant::now() < end {
        tokio::time::sleep(
            Duration::from_secs(10).min(end.saturating_duration_since(Instant::now())),
        )
        .await;
        let (rss, fds) = (rss_kib(&pid).unwrap_or(0), fd_count(&pid));
        let p = pending(home.metrics).await.unwrap_or(0);
        eprintln!(
            "soak t={:>4}s accepted={} rate={:.0}/s pending={p} rss={rss} KiB fds={fds}",
            started.elapsed().as_secs(),
            accepted.load(Ordering::Relaxed),
            accepted.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64(),
        );
        samples.push((rss, fds));
        assert!(n.alive(), "notifyd died: {}", n.log_tail());
    }
    for s in senders {
        s.await.unwrap();
    }
    let load_secs = started.elapsed().as_secs_f64();
    let accepted = accepted.load(Ordering::Relaxed);

    // Drain: everything pending gets delivered.
    let drain = Instant::now();
    loop {
        if pending(home.metrics).await == Some(0) {
            break;
        }
        assert!(
            drain.elapsed() < Duration::from_secs(300),
            "the backlog never drained"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let (status, dl) = call(
        &client(),
        "GET",
        ingest,
        "/v1/dead-letters?limit=10",
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        dl["notifications"].as_array().map(Vec::len),
        Some(0),
        "dead letters: {dl}"
    );
    let delivered = merchant.outcome_count(Outcome::Success);
    assert_eq!(
        delivered, accepted,
        "every accepted notification was answered S exactly once"
    );
    let (rss_end, fds_end) = (rss_kib(&pid).unwrap_or(0), fd_count(&pid));
    n.kill9();

    // Drift: the second half against the first (after a warm-up sample).
    let half = samples.len() / 2;
    let max = |s: &[(u64, usize)]| s.iter().map(|x| x.0).max().unwrap_or(0);
    let warm = usize::from(samples.len() > 4);
    let (first, second) = (
        max(&samples[warm..half.max(warm + 1)]),
        max(&samples[half..]),
    );
    let fds_max = samples.iter().map(|x| x.1).max().unwrap_or(0);
    let fds_min = samples.iter().map(|x| x.1).min().unwrap_or(0);
    eprintln!(
        "SOAK RESULT: {load_secs:.0} s, target {rate}/s, achieved {:.0}/s, accepted {accepted}, refused {}, \
         attempts {}, delivered S {delivered}, dead 0, drained in {:.0} s; RSS max first half {first} KiB, \
         second half {second} KiB (drift {:+} KiB), at end {rss_end} KiB; fds {fds_min}..{fds_max}, at end {fds_end}",
        accepted as f64 / load_secs,
        refused.load(Ordering::Relaxed),
        merchant.count(),
        drain.elapsed().as_secs_f64(),
        second as i64 - first as i64,
    );
    assert!(fds_max <= fds_min + 128, "fds grew: {fds_min}..{fds_max}");
}
