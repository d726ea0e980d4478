//! Crash safety: the real `notifyd` binary is SIGKILLed at random moments under load and started
//! again on the same store; then the receiver's record is checked against what ingest answered.
//!
//! - every notification answered S was delivered at least once;
//! - nothing reached the receiver that was never submitted;
//! - deliveries beyond the attempts the store counts (repeats) are bounded by the attempts that
//!   can be in flight at a kill;
//! - the store opens cleanly after every kill (notifyd gets ready again).
//!
//! The long variant: `cargo test -p notifyd --test reliability_crash -- --ignored --nocapture`.

mod support;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use notifyd_daemon::mock_merchant::{MockMerchant, Respond};
use parking_lot::Mutex;
use rand::Rng;
use support::payment;
use support::process::{Home, call, client, wait_delivered};

/// Attempts in flight in the whole process (`delivery.max_in_flight`): the most a kill can repeat.
const MAX_IN_FLIGHT: usize = 16;
const DRIVERS: usize = 4;

#[derive(Default)]
struct Ledger {
    /// paymentId → submitted (an answer may or may not have come).
    submitted: HashSet<String>,
    /// paymentId → notificationId, for every S answer.
    accepted: HashMap<String, String>,
}

/// Submits unique notifications from several tasks until `stop` or until notifyd stops answering.
async fn drive(
    ingest: SocketAddr,
    url: String,
    prefix: String,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
) {
    let mut tasks = Vec::new();
    for t in 0..DRIVERS {
        let (url, prefix, ledger, stop) =
            (url.clone(), prefix.clone(), ledger.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let client = client();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let pay = format!("{prefix}-T{t}-{n}");
                n += 1;
                let body = serde_json::to_vec(&payment(&url, &pay)).unwrap();
                ledger.lock().submitted.insert(pay.clone());
                let answer = tokio::time::timeout(
                    Duration::from_secs(3),
                    call(&client, "POST", ingest, "/v1/notifications", body),
                )
                .await;
                match answer {
                    Ok(Ok((200, v))) if v["result"]["resultStatus"] == "S" => {
                        let id = v["notificationId"].as_str().unwrap().to_owned();
                        ledger.lock().accepted.insert(pay, id);
                    }
                    Ok(Ok((status, v))) => {
                        assert_ne!(
                            v["result"]["resultStatus"], "S",
                            "S with HTTP {status}: {v}"
                        );
                    }
                    // Killed: no answer, so nothing was promised.
                    Ok(Err(_)) | Err(_) => return,
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// paymentId of a received notifyPayment body.
fn payment_id(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).expect("the receiver got JSON");
    v["paymentId"].as_str().expect("a paymentId").to_owned()
}

struct Figures {
    kills: usize,
    accepted: usize,
    submitted: usize,
    received: usize,
    repeats: u64,
}

async fn crash_cycles(cycles: usize, mode: &str) -> Figures {
    let merchant = MockMerchant::start_with_capacity(
        "127.0.0.1:0".parse().unwrap(),
        mode.parse::<Respond>().unwrap(),
        1_000_000,
    )
    .await
    .unwrap();
    let url = format!("http://{}/n", merchant.addr());
    let home = Home::new(
        r#"kind = "schedule"
schedule = ["0s", "50ms", "100ms", "200ms", "500ms", "1s", "2s", "5s", "10s"]
jitter = 0.0
attempt_timeout = "2s""#,
        &format!(
            "[delivery]\nmax_in_flight = {MAX_IN_FLIGHT}\nendpoint_concurrency = {MAX_IN_FLIGHT}\n"
        ),
    );
    let ingest = home.ingest;
    let ledger = Arc::new(Mutex::new(Ledger::default()));

    let mut kills = 0;
    for cycle in 0..cycles {
        // Every start after a SIGKILL must open the store and recover: that is the first check.
        let mut n = home
            .spawn(&[])
            .await
            .unwrap_or_else(|e| panic!("start after {kills} kills: {e}"));
        let stop = Arc::new(AtomicBool::new(false));
        let driving = tokio::spawn(drive(
            ingest,
            url.clone(),
            format!("C{cycle}"),
            ledger.clone(),
            stop.clone(),
        ));
        let wait = rand::rng().random_range(150..1200);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        assert!(n.alive(), "notifyd died on its own: {}", n.log_tail());
        n.kill9();
        kills += 1;
        stop.store(true, Ordering::Relaxed);
        driving.await.unwrap();
    }

    // All quiet: one last start delivers what is left.
    let n = home.spawn(&[]).await.unwrap();
    let ledger = Arc::try_unwrap(ledger).ok().unwrap().into_inner();
    assert!(!ledger.accepted.is_empty(), "the load never got an S");
    let client = client();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    let mut attempts: HashMap<String, u64> = HashMap::new();
    for (pay, id) in &ledger.accepted {
        let s = wait_delivered(&client, ingest, id, &format!("{pay} {id}"), deadline).await;
        attempts.insert(pay.clone(), s["attempts"].as_u64().unwrap());
    }
    // Duplicates are still recognised after the kills: the idempotency records were durable too.
    for (pay, id) in ledger.accepted.iter().take(100) {
        let body = serde_json::to_vec(&payment(&url, pay)).unwrap();
        let (status, v) = call(&client, "POST", ingest, "/v1/notifications", body)
            .await
            .unwrap();
        assert_eq!(status, 200, "{v}");
        assert_eq!(
            v["duplicate"], true,
            "{pay} accepted again after a kill: {v}"
        );
        assert_eq!(v["notificationId"], id.as_str(), "{v}");
    }
    drop(n);

    let mut received: HashMap<String, u64> = HashMap::new();
    for r in merchant.received() {
        *received.entry(payment_id(&r.body)).or_default() += 1;
    }
    assert_eq!(
        received.values().sum::<u64>(),
        merchant.count(),
        "every request was recorded"
    );
    for pay in received.keys() {
        assert!(
            ledger.submitted.contains(pay),
            "{pay} was delivered but never submitted"
        );
    }
    let mut repeats = 0;
    for (pay, counted) in &attempts {
        let got = received.get(pay).copied().unwrap_or(0);
        assert!(got >= 1, "{pay} was accepted but never delivered");
        assert!(
            got >= *counted,
            "{pay}: the store counts {counted} attempts, the receiver saw {got}"
        );
        repeats += got - counted;
    }
    assert!(
        repeats <= (kills * MAX_IN_FLIGHT) as u64,
        "{repeats} repeats from {kills} kills with at most {MAX_IN_FLIGHT} attempts in flight"
    );
    let f = Figures {
        kills,
        accepted: ledger.accepted.len(),
        submitted: ledger.submitted.len(),
        received: received.len(),
        repeats,
    };
    eprintln!(
        "crash: kills={} submitted={} accepted(S)={} distinct delivered={} lost=0 repeats={}",
        f.kills, f.submitted, f.accepted, f.received, f.repeats
    );
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_nothing_accepted() {
    // Some answers are U, some slow: there are retries and attempts in flight at every kill.
    crash_cycles(5, "U,SLOW:10ms,S,SLOW:30ms,S").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: 30 kills; run with --ignored"]
async fn sigkill_under_load_many_cycles() {
    crash_cycles(30, "U,SLOW:10ms,S,SLOW:30ms,S").await;
}

/// The receiver goes away (every connection dropped, requests in flight cut) and comes back on
/// the same port, several times, while notifyd delivers: each cut attempt is retried, none lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_killed_and_restarted_during_delivery() {
    let mode = || "SLOW:20ms".parse::<Respond>().unwrap();
    let mut merchant =
        MockMerchant::start_with_capacity("127.0.0.1:0".parse().unwrap(), mode(), 1_000_000)
            .await
            .unwrap();
    let maddr = merchant.addr();
    let url = format!("http://{maddr}/n");
    let home = Home::new(
        r#"kind = "schedule"
schedule = ["0s", "200ms", "200ms", "500ms", "1s", "2s", "5s", "10s"]
jitter = 0.0
attempt_timeout = "2s""#,
        "",
    );
    let ingest = home.ingest;
    let mut n = home.spawn(&[]).await.unwrap();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let driving = tokio::spawn(drive(ingest, url, "R".into(), ledger.clone(), stop.clone()));
    let mut received: HashMap<String, u64> = HashMap::new();
    let mut restarts = 0;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(rand::rng().random_range(200..700))).await;
        // From here on requests are recorded but never answered, and are cut by the shutdown:
        // those are the attempts killed mid-delivery. Only answered ones (before the switch, given
        // time to finish) need to be in the tally, which is taken before the receiver is gone.
        merchant.set_mode(Respond::Stall);
        tokio::time::sleep(Duration::from_millis(100)).await;
        for r in merchant.received() {
            *received.entry(payment_id(&r.body)).or_default() += 1;
        }
        merchant.shutdown().await;
        tokio::time::sleep(Duration::from_millis(rand::rng().random_range(50..500))).await;
        merchant = MockMerchant::start_with_capacity(maddr, mode(), 1_000_000)
            .await
            .unwrap();
        restarts += 1;
    }
    stop.store(true, Ordering::Relaxed);
    driving.await.unwrap();
    let ledger = Arc::try_unwrap(ledger).ok().unwrap().into_inner();
    assert!(!ledger.accepted.is_empty(), "the load never got an S");

    let client = client();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    for (pay, id) in &ledger.accepted {
        wait_delivered(&client, ingest, id, &format!("{pay} {id}"), deadline).await;
    }
    assert!(n.alive(), "notifyd died: {}", n.log_tail());
    n.kill9();
    for r in merchant.received() {
        *received.entry(payment_id(&r.body)).or_default() += 1;
    }
    for pay in received.keys() {
        assert!(
            ledger.submitted.contains(pay),
            "{pay} was delivered but never submitted"
        );
    }
    for pay in ledger.accepted.keys() {
        assert!(
            received.contains_key(pay),
            "{pay} was accepted but never delivered"
        );
    }
    let repeats: u64 = received.values().map(|c| c - 1).sum();
    eprintln!(
        "receiver restarts={restarts} accepted(S)={} distinct delivered={} lost=0 repeats={repeats}",
        ledger.accepted.len(),
        received.len()
    );
}
