//! What the status page remembers between requests: recent counter samples and commit times.
//!
//! Kept in memory on purpose: the page must work with no Prometheus around (a gateway host at
//! 3 a.m.), and a restart forgetting the last ten minutes of rates is acceptable. Everything
//! that must survive a restart (dead letters, pending) is read from the store instead.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use notifyd_core::UnixMillis;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::app::App;

/// How often counters are sampled; the page refreshes at the same pace.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// Ten minutes of samples: enough to see a trend, small enough to draw on a phone.
const SAMPLES: usize = 120;
/// Commit times kept for the p99: recent enough to reflect the disk now.
const COMMITS: usize = 1024;
/// The shards are asked for the oldest overdue every this many samples.
const OVERDUE_EVERY: u32 = 3;
/// One sample of this daemon's own counts (totals since it started, see [`super::Tally`]).
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub at: UnixMillis,
    pub accepted: u64,
    pub delivered: u64,
}

/// The oldest overdue pending notification, as last looked for.
#[derive(Debug, Clone, Copy)]
pub enum Overdue {
    /// Not looked for yet.
    Unknown,
    /// Nothing pending is past its due time.
    None,
    /// The earliest due time among pending notifications, when it is in the past.
    Since(UnixMillis),
}

/// The status page's state, one per running daemon.
#[derive(Debug)]
pub struct Status {
    pub started: Instant,
    pub store_path: PathBuf,
    samples: Mutex<VecDeque<Sample>>,
    commits: Mutex<VecDeque<f64>>,
    overdue: Mutex<Overdue>,
}

impl Status {
    pub fn new(store_path: &Path) -> Arc<Status> {
        Arc::new(Status {
            started: Instant::now(),
            store_path: store_path.to_owned(),
            samples: Mutex::new(VecDeque::with_capacity(SAMPLES)),
            commits: Mutex::new(VecDeque::with_capacity(COMMITS)),
            overdue: Mutex::new(Overdue::Unknown),
        })
    }

    /// Called by the store's commit observer, on the writer thread: must stay cheap.
    pub fn commit(&self, took: Duration) {
        let mut c = self.commits.lock();
        if c.len() == COMMITS {
            c.pop_front();
        }
        c.push_back(took.as_secs_f64());
    }

    /// p99 of the recent commits, in seconds, with how many it was taken over.
    pub fn commit_p99(&self) -> (Option<f64>, usize) {
        let mut v: Vec<f64> = self.commits.lock().iter().copied().collect();
        if v.is_empty() {
            return (None, 0);
        }
        v.sort_by(f64::total_cmp);
        let rank = (v.len() * 99).div_ceil(100).max(1) - 1;
        (Some(v[rank]), v.len())
    }

    pub fn samples(&self) -> Vec<Sample> {
        self.samples.lock().iter().copied().collect()
    }

    pub fn overdue(&self) -> Overdue {
        *self.overdue.lock()
    }

    fn push(&self, s: Sample) {
        let mut q = self.samples.lock();
        if q.len() == SAMPLES {
            q.pop_front();
        }
        q.push_back(s);
    }

    /// Samples the counters every 5 s (`SAMPLE_EVERY`) until `stop`.
    pub async fn sample(self: Arc<Status>, app: Arc<App>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut n: u32 = 0;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = stop.cancelled() => return,
            }
            let (accepted, delivered) = app.tally.totals();
            self.push(Sample {
                at: app.clock.now(),
                accepted,
                delivered,
            });
            if n.is_multiple_of(OVERDUE_EVERY) {
                let found = find_overdue(&app).await;
                *self.overdue.lock() = found;
            }
            n = n.wrapping_add(1);
        }
    }
}

/// The scheduler's own figure: the earliest due time among pending notifications not started
/// (held, paused or waiting for a slot), asked of every shard; no store read, so no cap.
async fn find_overdue(app: &Arc<App>) -> Overdue {
    let now = app.clock.now();
    match app.dispatcher.oldest_overdue(now).await {
        Some(at) => Overdue::Since(at),
        None => Overdue::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p99_of_commits_is_the_slow_tail() {
        let s = Status::new(Path::new("."));
        assert_eq!(s.commit_p99().0, None);
        for ms in 1..=100 {
            s.commit(Duration::from_millis(ms));
        }
        let (p99, n) = s.commit_p99();
        assert_eq!(n, 100);
        assert!((p99.unwrap() - 0.099).abs() < 1e-9, "{p99:?}");
    }
}
