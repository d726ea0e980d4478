//! Configuration: the TOML file (CONTRACT.md §1), command-line overrides and built-in defaults, validated
//! into typed settings before anything starts.
//!
//! [`file`](mod@file) documents every key as written; [`Config`] is what the daemon uses. Loading reports every
//! problem at once, each with its key path, so an operator fixes a file in one pass (`notifyd check-config`).

mod cidr;
mod dead_letter;
pub mod duration;
pub mod file;
mod inquiry;
mod parse;
mod problem;
mod profile;
mod proxy;
mod retry;
mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::num::{NonZeroU64, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use cidr::Cidr;
pub use duration::parse_duration;
pub use inquiry::{InquiryConfig, Merchant};
pub use problem::Problem;
pub use profile::{ClientCert, DEFAULT_PROFILE, Profile, Signing};
pub use proxy::{NoProxy, ProxyConfig};
pub use retry::{ALIPAY_SCHEDULE, DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_JITTER};

/// Store directory when neither the file, `--data-dir` nor `$STATE_DIRECTORY` gives one.
pub const DEFAULT_DATA_DIR: &str = "./notifyd-data";

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `[store]`
    pub store: StoreConfig,
    /// `[ingest]`
    pub ingest: IngestConfig,
    /// `[metrics]`
    pub metrics: MetricsConfig,
    /// `[delivery]`
    pub delivery: DeliveryConfig,
    /// `[shutdown]`
    pub shutdown: ShutdownConfig,
    /// `[log]`
    pub log: LogConfig,
    /// `[profiles.NAME]`, by name; always holds [`DEFAULT_PROFILE`].
    pub profiles: BTreeMap<String, Profile>,
    /// `[inquiry]`
    pub inquiry: InquiryConfig,
    /// `[merchants.NAME]`, by name.
    pub merchants: BTreeMap<String, Merchant>,
}

/// `[store]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// Directory of the embedded store.
    pub path: PathBuf,
    /// How long finished notifications stay queryable.
    pub retention: Duration,
    /// Idempotency keys remembered for duplicate detection.
    pub idempotency_capacity: NonZeroU64,
    /// Bytes of the store's page cache.
    pub cache_size: u64,
    /// Which store holds the notifications.
    pub backend: StoreBackend,
}

/// `store.kind`: where notifications are kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StoreBackend {
    /// The redb file under `store.path`, owned by this one host.
    #[default]
    Embedded,
    /// A PostgreSQL database shared by several hosts.
    Postgres(PostgresConfig),
}

/// `[store]` with `kind = "postgres"`.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresConfig {
    /// libpq URL or key=value connection string (may hold a password: never logged).
    pub url: String,
    /// How long a claim lasts unless renewed.
    pub lease: Duration,
    /// Connections of the pool.
    pub pool_size: usize,
}

// The URL may carry a password; config is logged at debug level.
impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &"<redacted>")
            .field("lease", &self.lease)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

/// What a lease must exceed the longest attempt_timeout by: a commit of the outcome, and a
/// renewal missed on a slow database, must both fit before another host may take over.
pub const LEASE_MARGIN: Duration = Duration::from_secs(10);

/// `[ingest]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestConfig {
    /// TCP address of the ingest API.
    pub listen: SocketAddr,
    /// Unix socket also serving the ingest API.
    pub unix_socket: Option<PathBuf>,
    /// Permission bits of the Unix socket (at most 0o777).
    pub unix_socket_mode: u32,
    /// Largest request body accepted (413 beyond).
    pub max_body_bytes: NonZeroUsize,
    /// Most envelopes in one batch (at most 1000).
    pub max_batch: NonZeroUsize,
    /// Most notifications pending delivery (429 beyond).
    pub max_pending: NonZeroU64,
    /// File holding the ingest bearer token; no auth when `None`.
    pub auth_token_file: Option<PathBuf>,
    /// Group id given to the Unix socket; the daemon's own when `None`.
    pub unix_socket_group: Option<u32>,
    /// Largest request head accepted (at least 8192).
    pub max_header_bytes: usize,
    /// Most connections served at once per listener.
    pub max_connections: NonZeroUsize,
    /// Time allowed for a request's headers (and for an idle keep-alive connection).
    pub header_timeout: Duration,
    /// Time allowed for a request's body.
    pub body_timeout: Duration,
}

/// `[metrics]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// TCP address of `/metrics`, `/healthz`, `/readyz`.
    pub listen: SocketAddr,
}

/// `[delivery]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryConfig {
    /// Delivery shards as configured; 0 means one per core, see [`DeliveryConfig::shard_count`].
    pub shards: usize,
    /// Most attempts in flight to one endpoint.
    pub endpoint_concurrency: NonZeroUsize,
    /// Most attempts in flight in the process.
    pub max_in_flight: NonZeroUsize,
    /// How long an idle pooled connection is kept.
    pub pool_idle_timeout: Duration,
}

impl DeliveryConfig {
    /// The number of shards to run: `shards`, or the available parallelism when it is 0.
    pub fn shard_count(&self) -> NonZeroUsize {
        NonZeroUsize::new(self.shards)
            .unwrap_or_else(|| std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN))
    }
}

/// `[shutdown]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownConfig {
    /// How long in-flight attempts may finish after SIGTERM/SIGINT.
    pub grace: Duration,
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Line format.
    pub format: LogFormat,
    /// A `tracing_subscriber::EnvFilter` directive string, already checked to parse.
    pub level: String,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable.
    Text,
    /// One JSON object a line.
    Json,
}

/// Values from outside the file, read once by `main` and passed in (the process environment is never
/// read here, so tests stay independent of it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `$STATE_DIRECTORY`: the store path when the file gives none.
    pub state_directory: Option<PathBuf>,
    /// `--data-dir`: the store path, over the file.
    pub data_dir: Option<PathBuf>,
    /// `--listen`: the ingest address, over the file.
    pub listen: Option<SocketAddr>,
    /// `--metrics-listen`: the metrics address, over the file.
    pub metrics_listen: Option<SocketAddr>,
}

impl Config {
    /// Loads `path` (built-in defaults when `None`) without overrides.
    pub fn load(path: Option<&Path>) -> Result<Config, Vec<Problem>> {
        Self::load_with(path, &Overrides::default())
    }

    /// Loads `path` (built-in defaults when `None`), applies `overrides` and validates. The error lists
    /// every problem found.
    pub fn load_with(path: Option<&Path>, overrides: &Overrides) -> Result<Config, Vec<Problem>> {
        let text = match path {
            None => String::new(),
            Some(path) => std::fs::read_to_string(path).map_err(|e| {
                vec![Problem::new(
                    "",
                    format!("cannot read config file {}: {e}", path.display()),
                )]
            })?,
        };
        Self::from_toml(&text, overrides)
    }

    /// Parses and validates TOML `text`, applying `overrides`.
    pub fn from_toml(text: &str, overrides: &Overrides) -> Result<Config, Vec<Problem>> {
        let mut problems = problem::Problems::default();
        let file = parse::parse_file(text, &mut problems);
        let config = validate::validate(file, overrides, &mut problems);
        if problems.0.is_empty() {
            Ok(config)
        } else {
            Err(problems.0)
        }
    }

    /// The profile named `name`, if configured.
    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.get(name)
    }

    /// How long finished notifications are kept: `store.retention`, or `[inquiry] retention`
    /// when that is longer (records kept for inquiry outlive delivery's retention).
    pub fn finished_retention(&self) -> Duration {
        self.inquiry
            .retention
            .map_or(self.store.retention, |r| r.max(self.store.retention))
    }
}

#[cfg(test)]
mod tests;
