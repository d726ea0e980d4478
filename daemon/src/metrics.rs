//! Metric names, help texts and label values: the one place they are written (CONTRACT.md §4).
//! No label carries a URL, an id or a message: every label value below is from a fixed set.

use std::time::Duration;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use notifyd_core::Api;

/// Ingest requests by `api` and `outcome`.
pub const INGEST_REQUESTS: &str = "notifyd_ingest_requests_total";
/// Delivery attempts by `api` and `outcome`.
pub const DELIVERY_ATTEMPTS: &str = "notifyd_delivery_attempts_total";
/// Notifications reaching a final state, by `api` and `state`.
pub const FINISHED: &str = "notifyd_notifications_finished_total";
/// Accepted → final answer, by `api`.
pub const DELIVERY_LATENCY: &str = "notifyd_delivery_latency_seconds";
/// One attempt's duration, by `api`.
pub const ATTEMPT_DURATION: &str = "notifyd_attempt_duration_seconds";
/// Notifications waiting for delivery.
pub const PENDING: &str = "notifyd_pending_notifications";
/// Attempts running now.
pub const IN_FLIGHT: &str = "notifyd_in_flight_attempts";
/// Store commit (fsync) duration.
pub const STORE_COMMIT: &str = "notifyd_store_commit_seconds";
/// Notifications per store commit.
pub const STORE_BATCH: &str = "notifyd_store_commit_batch_size";

/// Registers help texts once at start-up.
pub fn describe() {
    describe_counter!(INGEST_REQUESTS, "Ingest requests by API and outcome.");
    describe_counter!(DELIVERY_ATTEMPTS, "Delivery attempts by API and outcome.");
    describe_counter!(
        FINISHED,
        "Notifications that reached a final state, by API and state."
    );
    describe_histogram!(
        DELIVERY_LATENCY,
        Unit::Seconds,
        "Time from accept to the final answer."
    );
    describe_histogram!(
        ATTEMPT_DURATION,
        Unit::Seconds,
        "Duration of one delivery attempt."
    );
    describe_gauge!(PENDING, "Notifications accepted and not yet final.");
    describe_gauge!(IN_FLIGHT, "Delivery attempts in flight.");
    describe_histogram!(
        STORE_COMMIT,
        Unit::Seconds,
        "Duration of one store commit, fsync included."
    );
    describe_histogram!(STORE_BATCH, "Operations carried by one store commit.");
}

/// Histogram buckets (seconds) per family: sub-millisecond ingest and attempts up to the hours
/// a retry schedule spans.
pub fn buckets() -> Vec<(&'static str, Vec<f64>)> {
    let attempt = vec![
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0,
        30.0,
    ];
    let latency = vec![
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
        120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0, 43200.0, 86400.0, 172800.0,
    ];
    let commit = vec![
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    ];
    let batch = vec![
        1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
    ];
    vec![
        (ATTEMPT_DURATION, attempt),
        (DELIVERY_LATENCY, latency),
        (STORE_COMMIT, commit),
        (STORE_BATCH, batch),
    ]
}

/// Ingest outcome label values (CONTRACT.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestOutcome {
    /// Stored and answered S.
    Accepted,
    /// A repeat with the same key fields.
    Duplicate,
    /// A repeat with different key fields.
    Inconsistent,
    /// Refused by validation.
    Invalid,
    /// Refused because the pending queue is full.
    Throttled,
    /// Refused for a missing or wrong token.
    Unauthorized,
    /// The store could not commit, or notifyd is stopping.
    Error,
}

impl IngestOutcome {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            IngestOutcome::Accepted => "accepted",
            IngestOutcome::Duplicate => "duplicate",
            IngestOutcome::Inconsistent => "inconsistent",
            IngestOutcome::Invalid => "invalid",
            IngestOutcome::Throttled => "throttled",
            IngestOutcome::Unauthorized => "unauthorized",
            IngestOutcome::Error => "error",
        }
    }
}

/// Counts one ingest request. `api` is `unknown` when the envelope did not name a valid one.
pub fn ingest(api: Option<Api>, outcome: IngestOutcome) {
    counter!(INGEST_REQUESTS, "api" => api.map_or("unknown", Api::as_str), "outcome" => outcome.as_str())
        .increment(1);
}

/// Counts one attempt and its duration; `outcome` is one of [`notifyd_core::ack::Ack::metric_outcome`].
pub fn attempt(api: Api, outcome: &'static str, took: Duration) {
    counter!(DELIVERY_ATTEMPTS, "api" => api.as_str(), "outcome" => outcome).increment(1);
    histogram!(ATTEMPT_DURATION, "api" => api.as_str()).record(took.as_secs_f64());
}

/// Counts a notification reaching `state` after `latency` since accept.
pub fn finished(api: Api, state: &'static str, latency: Duration) {
    counter!(FINISHED, "api" => api.as_str(), "state" => state).increment(1);
    histogram!(DELIVERY_LATENCY, "api" => api.as_str()).record(latency.as_secs_f64());
}

/// Sets the pending gauge.
pub fn pending(n: usize) {
    gauge!(PENDING).set(n as f64);
}

/// Moves the in-flight gauge.
pub fn in_flight(delta: f64) {
    gauge!(IN_FLIGHT).increment(delta);
}

/// Records one store commit.
pub fn store_commit(took: Duration, ops: usize) {
    histogram!(STORE_COMMIT).record(took.as_secs_f64());
    histogram!(STORE_BATCH).record(ops as f64);
}
