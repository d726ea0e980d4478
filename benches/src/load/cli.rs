//! Command line: one subcommand per scenario; every flag overrides that scenario's preset.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Load driver for notifyd: ingest traffic in, deliveries counted at an in-process receiver, a bare-client
/// ceiling measured in the same run.
#[derive(Debug, Parser)]
#[command(name = "notifyd-load", version)]
pub struct Cli {
    /// The scenario to run.
    #[command(subcommand)]
    pub scenario: Scenario,
}

/// The scenarios of issue 7 (presets) and a free-form run.
#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// 1: durable batch ingest as fast as it goes to fast endpoints (`--endpoints 1000` spreads it).
    Throughput(Common),
    /// 2: single ingest at a fixed 5000/s: p99 ingest and p99 accepted→delivered.
    Latency(Common),
    /// 3: 200 endpoints answering S after 100 ms.
    Slow(Common),
    /// 4: N pending with the receiver down: memory per pending notification, then restart-to-ready time.
    Backlog(Common),
    /// 5: half the endpoints answer U (fast retries): the healthy half's delivered/s vs an all-healthy run.
    Storm(Common),
    /// Nothing preset: every figure from the flags.
    Custom(Common),
    /// Opens a stopped notifyd's store (e.g. one kept by `backlog --keep`) through the notifyd library
    /// and times the two recovery reads, with the RSS each adds: how restart time and memory split
    /// between the store (and redb's page cache) and the rest.
    RecoveryProbe(Probe),
}

/// Flags of `recovery-probe`.
#[derive(Debug, Clone, Args)]
pub struct Probe {
    /// The store directory (`[store] path`, e.g. /tmp/notifyd-load-XXXX/data). notifyd must not be running on it.
    pub data: PathBuf,
    /// redb page cache in MiB (default: redb's own, 1 GiB, which is what notifyd uses).
    #[arg(long)]
    pub cache_mib: Option<usize>,
    /// Write the summary as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

impl Scenario {
    /// The scenario's name in reports.
    pub fn name(&self) -> &'static str {
        match self {
            Scenario::Throughput(_) => "throughput",
            Scenario::Latency(_) => "latency",
            Scenario::Slow(_) => "slow",
            Scenario::Backlog(_) => "backlog",
            Scenario::Storm(_) => "storm",
            Scenario::Custom(_) => "custom",
            Scenario::RecoveryProbe(_) => "recovery-probe",
        }
    }

    /// Its load flags (`None` for `recovery-probe`, which drives no load).
    pub fn common(&self) -> Option<&Common> {
        match self {
            Scenario::Throughput(c)
            | Scenario::Latency(c)
            | Scenario::Slow(c)
            | Scenario::Backlog(c)
            | Scenario::Storm(c)
            | Scenario::Custom(c) => Some(c),
            Scenario::RecoveryProbe(_) => None,
        }
    }
}

/// Flags shared by every scenario; unset ones take the scenario's preset.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// The notifyd binary to start (a temp config and data dir are written for it).
    #[arg(long, default_value = "target/release/notifyd")]
    pub notifyd: PathBuf,
    /// Drive an already running notifyd at this base URL (e.g. http://127.0.0.1:8470) instead of starting one.
    #[arg(long)]
    pub target: Option<String>,
    /// With --target: its metrics base URL, for the finished counter.
    #[arg(long)]
    pub metrics_url: Option<String>,
    /// Deliver to this URL (e.g. an nginx answering the ack) instead of the in-process receiver;
    /// deliveries are then counted from notifyd's finished counter and accepted→delivered is not measured.
    #[arg(long)]
    pub receiver_url: Option<String>,
    /// Who answers the deliveries: `builtin` (the in-process receiver, hyper as the ceiling) or `nginx`
    /// (a Debian nginx started here answering the ack, wrk posting the same body to it as the ceiling).
    #[arg(long, default_value = "builtin", value_parser = ["builtin", "nginx"])]
    pub receiver: String,
    /// With `--receiver nginx`: the nginx binary.
    #[arg(long, default_value = "/usr/sbin/nginx")]
    pub nginx: PathBuf,
    /// With `--receiver nginx`: the wrk binary.
    #[arg(long, default_value = "wrk")]
    pub wrk: PathBuf,
    /// Distinct receiver endpoints (host:port pairs, each its own endpoint key in notifyd).
    #[arg(long)]
    pub endpoints: Option<usize>,
    // The help as an attribute, not a doc comment: rustdoc reads `<ms>` as an HTML tag, and
    // backticks would show in `--help` as typed.
    #[arg(long, help = "Receiver answer: S, U or SLOW:<ms>ms.")]
    pub respond: Option<String>,
    /// Envelopes per ingest request; 1 uses POST /v1/notifications, more use /batch.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Concurrent gateway connections.
    #[arg(long)]
    pub connections: Option<usize>,
    /// Notifications per second across all connections; 0 = as fast as it goes.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Stop ingest after this many seconds.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Stop ingest after this many notifications.
    #[arg(long)]
    pub count: Option<u64>,
    /// How long to wait after ingest for deliveries to catch up, in seconds.
    #[arg(long)]
    pub drain: Option<f64>,
    /// Concurrency of the bare-client ceiling run (default: what notifyd may have in flight for these
    /// endpoints; with `--receiver nginx`, wrk's connections, default 8).
    #[arg(long)]
    pub ceiling_concurrency: Option<usize>,
    /// Skip the ceiling run.
    #[arg(long)]
    pub no_ceiling: bool,
    /// notifyd delivery shards (0 = one per core).
    #[arg(long)]
    pub shards: Option<u64>,
    /// notifyd `delivery.endpoint_concurrency` (its default: 64).
    #[arg(long)]
    pub endpoint_concurrency: Option<u64>,
    /// Write the summary as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Keep notifyd's data dir and log (printed) instead of deleting them.
    #[arg(long)]
    pub keep: bool,
}

/// Parses `SLOW:100ms` style delays (ms or s).
pub fn parse_delay(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Some(ms) = text.strip_suffix("ms") {
        return ms
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| format!("bad delay `{text}`"));
    }
    if let Some(s) = text.strip_suffix('s') {
        return s
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| format!("bad delay `{text}`"));
    }
    Err(format!("bad delay `{text}`; write 100ms or 1.5s"))
}
