//! `GET /status.json`: everything the page shows, from the daemon's own state and store.
//!
//! The schema is documented in README ("Status page"); no field holds a body, a key or a
//! signature, because the metrics listener asks for no token.

use std::sync::Arc;

use notifyd_core::UnixMillis;
use serde_json::{Value, json};

use super::history::{Overdue, SAMPLE_EVERY, Status};
use crate::app::App;
use crate::ingest::{endpoints, query};
use crate::store::State;

/// Dead letters shown on the page.
const LATEST_DEAD: usize = 20;
/// Dead letters read to count the last hour and day; past it the counts say "at least".
pub const COUNT_DEAD_MAX: usize = 1000;

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 24 * HOUR_MS;

fn time(t: UnixMillis) -> Value {
    json!(t.rfc3339_millis().to_string())
}

pub async fn build(status: &Arc<Status>, app: &Arc<App>) -> Value {
    let now = app.clock.now();
    let (p99, commits) = status.commit_p99();
    let path = status.store_path.clone();
    let disk = tokio::task::spawn_blocking(move || {
        Some((
            fs4::available_space(&path).ok()?,
            fs4::total_space(&path).ok()?,
        ))
    })
    .await
    .ok()
    .flatten();
    let store = app.store.clone();
    let dead = tokio::task::spawn_blocking(move || store.dead_letters(COUNT_DEAD_MAX)).await;
    let (dead, store_ok) = match dead {
        Ok(Ok(list)) => (list, true),
        _ => (Vec::new(), false),
    };
    let count = |state: State, within: u64| {
        dead.iter()
            .filter(|r| r.state == state)
            .filter(|r| {
                r.finished_at
                    .is_some_and(|f| now.0.saturating_sub(f.0) <= within)
            })
            .count()
    };
    let overdue = match status.overdue() {
        Overdue::Since(at) => json!({"state": "overdue", "since": time(at),
            "seconds": now.0.saturating_sub(at.0) as f64 / 1000.0}),
        Overdue::None => json!({"state": "none"}),
        Overdue::Unknown => json!({"state": "unknown"}),
    };
    let samples = status.samples();
    let rates: Vec<Value> = samples
        .windows(2)
        .map(|w| {
            let secs = (w[1].at.0.saturating_sub(w[0].at.0) as f64 / 1000.0).max(0.001);
            let per_second = |a: u64, b: u64| b.saturating_sub(a) as f64 / secs;
            json!({
                "at": time(w[1].at),
                "acceptedPerSecond": per_second(w[0].accepted, w[1].accepted),
                "deliveredPerSecond": per_second(w[0].delivered, w[1].delivered),
            })
        })
        .collect();
    let endpoint_list = app.dispatcher.endpoints().await;
    let (accepted_total, delivered_total) = app.tally.totals();
    json!({
        "generatedAt": time(now),
        "health": {
            "version": env!("CARGO_PKG_VERSION"),
            "uptimeSeconds": status.started.elapsed().as_secs(),
            "ready": app.is_ready() && !app.is_stopping(),
            "stopping": app.is_stopping(),
            "storeReadable": store_ok,
            "storeCommitP99Seconds": p99,
            "storeCommitsSampled": commits,
            "diskFreeBytes": disk.map(|d| d.0),
            "diskTotalBytes": disk.map(|d| d.1),
        },
        "losing": {
            "pending": app.dispatcher.pending(),
            "oldestOverdue": overdue,
            "dead": {"lastHour": count(State::Dead, HOUR_MS), "lastDay": count(State::Dead, DAY_MS)},
            "failed": {"lastHour": count(State::Failed, HOUR_MS), "lastDay": count(State::Failed, DAY_MS)},
            "countsCapped": dead.len() == COUNT_DEAD_MAX,
        },
        "rates": {
            "sampleSeconds": SAMPLE_EVERY.as_secs(),
            "acceptedTotal": accepted_total,
            "deliveredTotal": delivered_total,
            "samples": rates,
        },
        "endpoints": endpoint_list.iter().map(endpoints::view).collect::<Vec<_>>(),
        "deadLetters": dead.iter().take(LATEST_DEAD).map(query::view).collect::<Vec<_>>(),
    })
}
