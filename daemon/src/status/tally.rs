//! This daemon's own counts of accepted and delivered notifications, for the page's charts.
//!
//! The Prometheus recorder is one per process, so its counters add up every daemon the process
//! runs (tests and benches run several; an embedding application may too). The page describes
//! one daemon, so it counts for itself: one `Tally` per [`crate::app::App`], shared with its
//! dispatcher's shards, bumped at the same points as the Prometheus counters.

use std::sync::atomic::{AtomicU64, Ordering};

/// Totals since this daemon started.
#[derive(Debug, Default)]
pub struct Tally {
    accepted: AtomicU64,
    delivered: AtomicU64,
}

impl Tally {
    /// One notification stored at ingest (a duplicate is not counted: it stores nothing).
    pub fn accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// One notification's `delivered` outcome written to the store.
    pub fn delivered(&self) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
    }

    /// (accepted, delivered) so far. Each is read on its own: a sample may see a delivery of a
    /// notification whose accept it does not yet see, which the per-second rates do not mind.
    pub fn totals(&self) -> (u64, u64) {
        (
            self.accepted.load(Ordering::Relaxed),
            self.delivered.load(Ordering::Relaxed),
        )
    }
}
