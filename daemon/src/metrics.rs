//! Metric names, help texts and label values: the one place they are written (CONTRACT.md §4).
//! No label carries a URL, an id or a message: every label value below is from a fixed set.
//! This is the only module allowed the raw `counter!`/`gauge!`/`histogram!` macros (clippy.toml).
#![allow(clippy::disallowed_macros)]

use std::time::Duration;

use std::sync::OnceLock;

use metrics::{
    Counter, Gauge, Histogram, Unit, counter, describe_counter, describe_gauge, describe_histogram,
    gauge, histogram,
};
use notifyd_core::Api;

/// Ingest requests by `api` and `outcome`.
pub const INGEST_REQUESTS: &str = "notifyd_ingest_requests_total";
/// Delivery attempts by `api` and `outcome`.
pub const DELIVERY_ATTEMPTS: &str = "notifyd_delivery_attempts_total";
/// Attempts that got no answer for a connect, TLS, proxy or I/O failure, by `kind`.
pub const TRANSPORT_ERRORS: &str = "notifyd_transport_errors_total";
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
/// Endpoints by `state`.
pub const ENDPOINTS: &str = "notifyd_endpoints";
/// Outcome writes refused because another host's lease took the notification over.
pub const LEASE_LOST: &str = "notifyd_lease_lost_total";
/// Idempotency keys dropped from memory before their retention ran out.
pub const IDEMPOTENCY_EVICTED: &str = "notifyd_idempotency_evicted_total";

/// How long the most overdue pending notification has been due (0 when none).
pub const OLDEST_OVERDUE: &str = "notifyd_oldest_overdue_seconds";
/// Stored notifications whose body no longer parses when read back.
pub const UNREADABLE_RECORDS: &str = "notifyd_store_unreadable_records_total";

/// Dead-letter hooks by `result`: `queued` when one is stored with the outcome it reports, then
/// how it ended (`delivered`, `failed`, `dead`).
pub const DEAD_LETTER_HOOKS: &str = "notifyd_dead_letter_hooks_total";

/// Running build (`version` label; value always 1), so dashboards can mark deploys.
pub const BUILD_INFO: &str = "notifyd_build_info";

/// What kind of series a family is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Bucketed observations.
    Histogram,
}

/// One exported family: its name, kind, unit and help text.
#[derive(Debug, Clone, Copy)]
pub struct Family {
    /// The Prometheus name.
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: Kind,
    /// Seconds for durations, none for counts.
    pub unit: Option<Unit>,
    /// The `# HELP` text.
    pub help: &'static str,
}

/// Every family notifyd exports (the dashboard test checks its queries against these).
pub const FAMILIES: [Family; 17] = [
    Family {
        name: INGEST_REQUESTS,
        kind: Kind::Counter,
        unit: None,
        help: "Ingest requests by API and outcome; api=unknown when the envelope named none.",
    },
    Family {
        name: DELIVERY_ATTEMPTS,
        kind: Kind::Counter,
        unit: None,
        help: "Delivery attempts by API and outcome.",
    },
    Family {
        name: TRANSPORT_ERRORS,
        kind: Kind::Counter,
        unit: None,
        help: "Attempts without an answer for a connect, TLS, proxy or I/O failure, by kind (whose fault: see README Metrics).",
    },
    Family {
        name: FINISHED,
        kind: Kind::Counter,
        unit: None,
        help: "Notifications that reached a final state, by API and state.",
    },
    Family {
        name: DELIVERY_LATENCY,
        kind: Kind::Histogram,
        unit: Some(Unit::Seconds),
        help: "Time from accept to the final answer.",
    },
    Family {
        name: ATTEMPT_DURATION,
        kind: Kind::Histogram,
        unit: Some(Unit::Seconds),
        help: "Duration of one delivery attempt.",
    },
    Family {
        name: PENDING,
        kind: Kind::Gauge,
        unit: None,
        help: "Notifications accepted and not yet final.",
    },
    Family {
        name: IN_FLIGHT,
        kind: Kind::Gauge,
        unit: None,
        help: "Delivery attempts in flight.",
    },
    Family {
        name: STORE_COMMIT,
        kind: Kind::Histogram,
        unit: Some(Unit::Seconds),
        help: "Duration of one store commit, fsync included.",
    },
    Family {
        name: STORE_BATCH,
        kind: Kind::Histogram,
        unit: None,
        help: "Operations carried by one store commit.",
    },
    Family {
        name: ENDPOINTS,
        kind: Kind::Gauge,
        unit: None,
        help: "Endpoints by state: ok, degraded (below its concurrency), paused (throttled), held.",
    },
    Family {
        name: OLDEST_OVERDUE,
        kind: Kind::Gauge,
        unit: Some(Unit::Seconds),
        help: "How long the most overdue pending notification has been due; 0 when none is.",
    },
    Family {
        name: IDEMPOTENCY_EVICTED,
        kind: Kind::Counter,
        unit: None,
        help: "Idempotency keys evicted from memory before their retention ran out; repeats of them are judged from the store.",
    },
    Family {
        name: LEASE_LOST,
        kind: Kind::Counter,
        unit: None,
        help: "Attempts whose outcome the store refused because another host's lease took the notification over (shared store).",
    },
    Family {
        name: UNREADABLE_RECORDS,
        kind: Kind::Counter,
        unit: None,
        help: "Stored notifications whose body no longer parsed when read back (left out of inquiry answers).",
    },
    Family {
        name: DEAD_LETTER_HOOKS,
        kind: Kind::Counter,
        unit: None,
        help: "Dead-letter hooks: queued with the outcome they report, then delivered, failed or dead.",
    },
    Family {
        name: BUILD_INFO,
        kind: Kind::Gauge,
        unit: None,
        help: "Always 1; the version label names the running build.",
    },
];

/// `api` label value for requests whose envelope named no valid API.
pub const UNKNOWN_API: &str = "unknown";

/// Attempt outcome label values, as [`notifyd_core::ack::Ack::metric_outcome`] returns them.
pub const ATTEMPT_OUTCOMES: [&str; 7] = [
    "ack",
    "rejected",
    "retry",
    "throttled",
    "timeout",
    "transport_error",
    "proxy_error",
];

/// Final-state label values of [`FINISHED`].
pub const FINISHED_STATES: [&str; 3] = ["delivered", "failed", "dead"];

/// `result` label values of [`DEAD_LETTER_HOOKS`].
pub const HOOK_RESULTS: [&str; 4] = ["queued", "delivered", "failed", "dead"];

/// Registers help texts and creates every labelled series at zero, so dashboards and alerts see
/// each series before the first event (an absent series reads as "no data", not as 0).
pub fn register() {
    for f in FAMILIES {
        match (f.kind, f.unit) {
            (Kind::Counter, Some(u)) => describe_counter!(f.name, u, f.help),
            (Kind::Counter, None) => describe_counter!(f.name, f.help),
            (Kind::Gauge, Some(u)) => describe_gauge!(f.name, u, f.help),
            (Kind::Gauge, None) => describe_gauge!(f.name, f.help),
            (Kind::Histogram, Some(u)) => describe_histogram!(f.name, u, f.help),
            (Kind::Histogram, None) => describe_histogram!(f.name, f.help),
        }
    }
    let apis = Api::ALL.map(Api::as_str);
    for api in apis.iter().copied().chain([UNKNOWN_API]) {
        for outcome in IngestOutcome::ALL {
            counter!(INGEST_REQUESTS, "api" => api, "outcome" => outcome.as_str()).increment(0);
        }
    }
    for api in apis {
        for outcome in ATTEMPT_OUTCOMES {
            counter!(DELIVERY_ATTEMPTS, "api" => api, "outcome" => outcome).increment(0);
        }
        for state in FINISHED_STATES {
            counter!(FINISHED, "api" => api, "state" => state).increment(0);
        }
        let _ = histogram!(ATTEMPT_DURATION, "api" => api);
        let _ = histogram!(DELIVERY_LATENCY, "api" => api);
    }
    for kind in crate::delivery::TransportKind::ALL {
        counter!(TRANSPORT_ERRORS, "kind" => kind.as_str()).increment(0);
    }
    gauge!(PENDING).increment(0.0);
    counter!(LEASE_LOST).increment(0);
    gauge!(IN_FLIGHT).increment(0.0);
    for state in notifyd_core::scheduler::EndpointState::ALL {
        gauge!(ENDPOINTS, "state" => state.as_str()).increment(0.0);
    }
    let _ = histogram!(STORE_COMMIT);
    let _ = histogram!(STORE_BATCH);
    gauge!(OLDEST_OVERDUE).set(0.0);
    counter!(IDEMPOTENCY_EVICTED).absolute(0);
    counter!(UNREADABLE_RECORDS).increment(0);
    for result in HOOK_RESULTS {
        counter!(DEAD_LETTER_HOOKS, "result" => result).increment(0);
    }
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    let _ = HANDLES.set(Handles::new());
}

/// The series written per notification, looked up once: a macro call with labels builds its key
/// (a label vector) and finds it in the recorder's registry on every event, several times per
/// delivered notification. Made by [`register`], so they belong to the recorder installed then;
/// before that (or for a label value outside the fixed sets) the events take the macro path.
struct Handles {
    /// By `[api index][IngestOutcome index]`; api index 3 is `unknown`.
    ingest: Vec<Vec<Counter>>,
    /// By `[api index][ATTEMPT_OUTCOMES index]`.
    attempts: Vec<Vec<Counter>>,
    attempt_duration: Vec<Histogram>,
    /// By `[api index][FINISHED_STATES index]`.
    finished: Vec<Vec<Counter>>,
    delivery_latency: Vec<Histogram>,
    pending: Gauge,
    in_flight: Gauge,
    store_commit: Histogram,
    store_batch: Histogram,
}

static HANDLES: OnceLock<Handles> = OnceLock::new();

impl Handles {
    fn new() -> Handles {
        let apis = Api::ALL.map(Api::as_str);
        let ingest = apis
            .iter()
            .copied()
            .chain([UNKNOWN_API])
            .map(|api| {
                IngestOutcome::ALL
                    .iter()
                    .map(|o| counter!(INGEST_REQUESTS, "api" => api, "outcome" => o.as_str()))
                    .collect()
            })
            .collect();
        Handles {
            ingest,
            attempts: apis
                .iter()
                .map(|&api| {
                    ATTEMPT_OUTCOMES
                        .iter()
                        .map(|&o| counter!(DELIVERY_ATTEMPTS, "api" => api, "outcome" => o))
                        .collect()
                })
                .collect(),
            attempt_duration: apis
                .iter()
                .map(|&api| histogram!(ATTEMPT_DURATION, "api" => api))
                .collect(),
            finished: apis
                .iter()
                .map(|&api| {
                    FINISHED_STATES
                        .iter()
                        .map(|&st| counter!(FINISHED, "api" => api, "state" => st))
                        .collect()
                })
                .collect(),
            delivery_latency: apis
                .iter()
                .map(|&api| histogram!(DELIVERY_LATENCY, "api" => api))
                .collect(),
            pending: gauge!(PENDING),
            in_flight: gauge!(IN_FLIGHT),
            store_commit: histogram!(STORE_COMMIT),
            store_batch: histogram!(STORE_BATCH),
        }
    }
}

fn api_index(api: Api) -> usize {
    Api::ALL.iter().position(|a| *a == api).unwrap_or(0)
}

fn index_of(values: &[&str], value: &str) -> Option<usize> {
    values.iter().position(|v| *v == value)
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
    /// Every outcome, for pre-registration.
    pub const ALL: [IngestOutcome; 7] = [
        IngestOutcome::Accepted,
        IngestOutcome::Duplicate,
        IngestOutcome::Inconsistent,
        IngestOutcome::Invalid,
        IngestOutcome::Throttled,
        IngestOutcome::Unauthorized,
        IngestOutcome::Error,
    ];

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
    if let Some(h) = HANDLES.get() {
        let a = api.map_or(Api::ALL.len(), api_index);
        let o = IngestOutcome::ALL
            .iter()
            .position(|x| *x == outcome)
            .unwrap_or(0);
        h.ingest[a][o].increment(1);
        return;
    }
    counter!(INGEST_REQUESTS, "api" => api.map_or(UNKNOWN_API, Api::as_str), "outcome" => outcome.as_str())
        .increment(1);
}

/// Counts one attempt and its duration; `outcome` is one of [`notifyd_core::ack::Ack::metric_outcome`].
pub fn attempt(api: Api, outcome: &'static str, took: Duration) {
    if let (Some(h), Some(o)) = (HANDLES.get(), index_of(&ATTEMPT_OUTCOMES, outcome)) {
        let a = api_index(api);
        h.attempts[a][o].increment(1);
        h.attempt_duration[a].record(took.as_secs_f64());
        return;
    }
    counter!(DELIVERY_ATTEMPTS, "api" => api.as_str(), "outcome" => outcome).increment(1);
    histogram!(ATTEMPT_DURATION, "api" => api.as_str()).record(took.as_secs_f64());
}

/// Counts an attempt without an answer; `kind` is a `TransportKind::as_str`.
pub fn transport_error(kind: &'static str) {
    counter!(TRANSPORT_ERRORS, "kind" => kind).increment(1);
}

/// Counts a notification reaching `state` after `latency` since accept.
pub fn finished(api: Api, state: &'static str, latency: Duration) {
    if let (Some(h), Some(st)) = (HANDLES.get(), index_of(&FINISHED_STATES, state)) {
        let a = api_index(api);
        h.finished[a][st].increment(1);
        h.delivery_latency[a].record(latency.as_secs_f64());
        return;
    }
    counter!(FINISHED, "api" => api.as_str(), "state" => state).increment(1);
    histogram!(DELIVERY_LATENCY, "api" => api.as_str()).record(latency.as_secs_f64());
}

/// A dead-letter hook was stored (`queued`) or ended (its final state); one of [`HOOK_RESULTS`].
pub fn dead_letter_hook(result: &'static str) {
    counter!(DEAD_LETTER_HOOKS, "result" => result).increment(1);
}

/// An attempt's outcome write was refused: another host holds the notification now.
pub fn lease_lost() {
    counter!(LEASE_LOST).increment(1);
}

/// Sets the pending gauge.
pub fn pending(n: usize) {
    match HANDLES.get() {
        Some(h) => h.pending.set(n as f64),
        None => gauge!(PENDING).set(n as f64),
    }
}

/// Moves the count of endpoints in `state` (one of `EndpointState::as_str`) by `delta`.
pub fn endpoints(state: &'static str, delta: f64) {
    gauge!(ENDPOINTS, "state" => state).increment(delta);
}

/// Moves the in-flight gauge.
pub fn in_flight(delta: f64) {
    match HANDLES.get() {
        Some(h) => h.in_flight.increment(delta),
        None => gauge!(IN_FLIGHT).increment(delta),
    }
}

/// The figures read at scrape time rather than on every event: the most overdue notification
/// (asked of the shards) and the idempotency table's early evictions.
pub async fn refresh(app: &crate::app::App) {
    let now = app.clock.now();
    let overdue = app
        .dispatcher
        .oldest_overdue(now)
        .await
        .map_or(0.0, |due| now.since(due).as_secs_f64());
    gauge!(OLDEST_OVERDUE).set(overdue);
    counter!(IDEMPOTENCY_EVICTED).absolute(app.idempotency.evicted_unexpired());
}

/// Counts a stored notification that could not be read back.
pub fn unreadable_record() {
    counter!(UNREADABLE_RECORDS).increment(1);
}

/// Records one store commit.
pub fn store_commit(took: Duration, ops: usize) {
    if let Some(h) = HANDLES.get() {
        h.store_commit.record(took.as_secs_f64());
        h.store_batch.record(ops as f64);
        return;
    }
    histogram!(STORE_COMMIT).record(took.as_secs_f64());
    histogram!(STORE_BATCH).record(ops as f64);
}
