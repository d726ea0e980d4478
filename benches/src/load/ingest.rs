//! The gateways: C concurrent connections posting unique notifications, single or batched, at a fixed rate
//! or as fast as notifyd answers, until a count or a duration.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;

use super::http::{self, Client};
use super::payload;

/// One ingest phase.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Ingest base URLs (several hosts): request k goes to `targets[k % len]`.
    pub targets: Arc<Vec<String>>,
    /// Delivery URLs; notification `seq` goes to `urls[seq % len]`.
    pub urls: Arc<Vec<String>>,
    /// Envelopes per request (1 = single ingest).
    pub batch: usize,
    /// Concurrent connections.
    pub connections: usize,
    /// Notifications per second, `None` = as fast as it goes.
    pub rate: Option<f64>,
    /// At most this many notifications.
    pub count: u64,
    /// For at most this long.
    pub duration: Duration,
    /// Makes payment ids unique across runs against one store.
    pub run: u64,
    /// Sequence numbers start here.
    pub first_seq: u64,
}

/// What the gateways saw.
#[derive(Debug)]
pub struct Outcome {
    /// Items answered `S` (new or duplicate).
    pub accepted: u64,
    /// Items answered otherwise (429, 4xx, 5xx) or lost to transport errors.
    pub refused: u64,
    /// The first few refusals, for the report.
    pub refusal_samples: Vec<String>,
    /// Request latency, microseconds (send → whole answer read).
    pub latency_us: Histogram<u64>,
    /// (sequence number, answer time in nanos since the epoch) of each accepted item.
    pub answers: Vec<(u64, u64)>,
    /// From the first send to the last answer.
    pub elapsed: Duration,
    /// Bytes of one delivered body (the payload notifyd stores and sends).
    pub payload_bytes: usize,
}

struct Worker {
    accepted: u64,
    refused: u64,
    samples: Vec<String>,
    latency: Histogram<u64>,
    answers: Vec<(u64, u64)>,
}

/// Runs the phase; `epoch` is the time base shared with the receiver.
pub async fn run(plan: Plan, client: Client, epoch: Instant) -> Outcome {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let plan = Arc::new(plan);
    let mut workers = Vec::with_capacity(plan.connections);
    for _ in 0..plan.connections {
        let (plan, client, next) = (Arc::clone(&plan), client.clone(), Arc::clone(&next));
        workers.push(tokio::spawn(worker(plan, client, next, started, epoch)));
    }
    let mut outcome = Outcome {
        accepted: 0,
        refused: 0,
        refusal_samples: Vec::new(),
        latency_us: histogram(),
        answers: Vec::new(),
        elapsed: Duration::ZERO,
        payload_bytes: payload::body(plan.first_seq, plan.run).len(),
    };
    for w in workers {
        let Ok(w) = w.await else { continue };
        outcome.accepted += w.accepted;
        outcome.refused += w.refused;
        if outcome.refusal_samples.len() < 5 {
            outcome.refusal_samples.extend(w.samples);
        }
        let _ = outcome.latency_us.add(&w.latency);
        outcome.answers.extend(w.answers);
    }
    outcome.elapsed = started.elapsed();
    outcome
}

/// 1 µs to 60 s at 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("static bounds are valid")
}

async fn worker(
    plan: Arc<Plan>,
    client: Client,
    next: Arc<AtomicU64>,
    started: Instant,
    epoch: Instant,
) -> Worker {
    let mut w = Worker {
        accepted: 0,
        refused: 0,
        samples: Vec::new(),
        latency: histogram(),
        answers: Vec::new(),
    };
    let single = plan.batch <= 1;
    let path = if single {
        "/v1/notifications"
    } else {
        "/v1/notifications/batch"
    };
    let ingest_urls: Vec<String> = plan.targets.iter().map(|t| format!("{t}{path}")).collect();
    let urls = Arc::clone(&plan.urls);
    loop {
        let offset = next.fetch_add(plan.batch.max(1) as u64, Ordering::Relaxed);
        if offset >= plan.count || started.elapsed() >= plan.duration {
            break;
        }
        let n = (plan.count - offset).min(plan.batch.max(1) as u64);
        if let Some(rate) = plan.rate {
            let due = started + Duration::from_secs_f64(offset as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
            if started.elapsed() >= plan.duration {
                break;
            }
        }
        let first = plan.first_seq + offset;
        let body = payload::request(first..first + n, plan.run, !single, |seq| {
            urls[(seq % urls.len() as u64) as usize].clone()
        });
        let url = &ingest_urls[(offset / plan.batch.max(1) as u64) as usize % ingest_urls.len()];
        let sent = Instant::now();
        let answer = http::post(&client, url, Bytes::from(body)).await;
        let at = epoch.elapsed().as_nanos() as u64;
        let _ = w.latency.record((sent.elapsed().as_micros() as u64).max(1));
        match answer {
            Ok((200, text)) if single => {
                if contains(&text, br#""resultStatus":"S""#) {
                    w.accepted += 1;
                    w.answers.push((first, at));
                } else {
                    refuse(&mut w, 1, &text);
                }
            }
            Ok((200, text)) => judge_batch(&mut w, first, n, at, &text),
            Ok((status, text)) => refuse(
                &mut w,
                n,
                format!("HTTP {status}: {}", String::from_utf8_lossy(&text)).as_bytes(),
            ),
            Err(e) => refuse(&mut w, n, e.as_bytes()),
        }
    }
    w
}

fn judge_batch(w: &mut Worker, first: u64, n: u64, at: u64, text: &[u8]) {
    let parsed: Result<serde_json::Value, _> = serde_json::from_slice(text);
    let Some(results) = parsed
        .ok()
        .and_then(|v| v.get("results")?.as_array().cloned())
    else {
        refuse(w, n, text);
        return;
    };
    for (i, item) in results.iter().enumerate().take(n as usize) {
        if item["result"]["resultStatus"] == "S" {
            w.accepted += 1;
            w.answers.push((first + i as u64, at));
        } else {
            refuse(w, 1, item.to_string().as_bytes());
        }
    }
    if (results.len() as u64) < n {
        refuse(
            w,
            n - results.len() as u64,
            b"batch answer has fewer results than items",
        );
    }
}

fn refuse(w: &mut Worker, n: u64, why: &[u8]) {
    w.refused += n;
    if w.samples.len() < 2 {
        let text = String::from_utf8_lossy(why);
        w.samples.push(text.chars().take(200).collect());
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
