//! The ceiling: a bare hyper client posting the same bodies straight to the same receiver endpoints, with
//! the concurrency notifyd itself may use, as fast as it can.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::http::{self, Client};
use super::payload;

/// What the bare client achieved.
#[derive(Debug, Clone, Copy)]
pub struct Ceiling {
    /// Requests answered 200.
    pub delivered: u64,
    /// Their wall time.
    pub elapsed: Duration,
}

impl Ceiling {
    /// Deliveries per second.
    pub fn per_sec(&self) -> f64 {
        self.delivered as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Posts `count` bodies (at most for `limit`) to `urls` round-robin with `concurrency` tasks.
pub async fn run(
    urls: Arc<Vec<String>>,
    concurrency: usize,
    count: u64,
    limit: Duration,
    run_id: u64,
    client: Client,
) -> Ceiling {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency.max(1) {
        let (urls, next, client) = (Arc::clone(&urls), Arc::clone(&next), client.clone());
        tasks.push(tokio::spawn(async move {
            let mut ok = 0u64;
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= count || started.elapsed() >= limit {
                    break;
                }
                let url = &urls[(seq % urls.len() as u64) as usize];
                let body = Bytes::from(payload::body(seq, run_id));
                if let Ok((200, _)) = http::post(&client, url, body).await {
                    ok += 1;
                }
            }
            ok
        }));
    }
    let mut delivered = 0;
    for t in tasks {
        delivered += t.await.unwrap_or(0);
    }
    Ceiling {
        delivered,
        elapsed: started.elapsed(),
    }
}
