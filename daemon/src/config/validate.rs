//! [`FileConfig`] plus overrides to [`Config`], checking every value and collecting every problem.

use std::net::SocketAddr;
use std::num::{NonZeroU64, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

use super::duration::parse_duration;
use super::file::FileConfig;
use super::inquiry::{validate_inquiry, validate_merchants};
use super::problem::Problems;
use super::profile::{DEFAULT_PROFILE, Profile, check_secret_file, validate_profile};
use super::{
    Config, DEFAULT_DATA_DIR, DeliveryConfig, IngestConfig, LEASE_MARGIN, LogConfig, LogFormat,
    MetricsConfig, Overrides, PostgresConfig, ShutdownConfig, StoreBackend, StoreConfig,
};

/// The contract caps a batch at 1000 envelopes (CONTRACT.md §2); the file may only lower it.
const MAX_BATCH_LIMIT: u64 = 1000;
/// hyper's smallest read buffer; a request head must fit in it.
const MIN_HEADER_BYTES: usize = 8192;

/// Validates `file` with `overrides` applied. When `problems` gains entries the result is meaningless.
pub(crate) fn validate(file: FileConfig, overrides: &Overrides, problems: &mut Problems) -> Config {
    let store = &file.store;
    let store = StoreConfig {
        path: overrides
            .data_dir
            .clone()
            .or_else(|| store.path.clone())
            .or_else(|| overrides.state_directory.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
        retention: positive_duration(problems, "store.retention", &store.retention),
        idempotency_capacity: nonzero_u64(
            problems,
            "store.idempotency_capacity",
            store.idempotency_capacity,
        ),
        cache_size: store.cache_size,
        backend: validate_backend(store, problems),
    };
    if store.cache_size < 1 << 20 {
        problems.push("store.cache_size", "must be at least 1048576 (1 MiB)");
    }
    if store.path.as_os_str().is_empty() {
        problems.push("store.path", "must not be empty");
    }

    let ingest = &file.ingest;
    let unix_socket_mode = match u32::from_str_radix(&ingest.unix_socket_mode, 8) {
        Ok(mode) if mode <= 0o777 && !ingest.unix_socket_mode.is_empty() => mode,
        _ => {
            problems.push(
                "ingest.unix_socket_mode",
                format!(
                    "`{}` is not octal permission bits such as \"0660\"",
                    ingest.unix_socket_mode
                ),
            );
            0o660
        }
    };
    if let Some(token) = &ingest.auth_token_file {
        check_secret_file("ingest.auth_token_file", token, problems);
    }
    if ingest.max_batch > MAX_BATCH_LIMIT {
        problems.push(
            "ingest.max_batch",
            format!("must be 1 to {MAX_BATCH_LIMIT}"),
        );
    }
    let ingest = IngestConfig {
        listen: overrides
            .listen
            .unwrap_or_else(|| socket_addr(problems, "ingest.listen", &ingest.listen)),
        unix_socket: ingest.unix_socket.clone(),
        unix_socket_mode,
        max_body_bytes: nonzero_usize(problems, "ingest.max_body_bytes", ingest.max_body_bytes),
        max_batch: nonzero_usize(problems, "ingest.max_batch", ingest.max_batch),
        max_pending: nonzero_u64(problems, "ingest.max_pending", ingest.max_pending),
        auth_token_file: ingest.auth_token_file.clone(),
        unix_socket_group: ingest
            .unix_socket_group
            .as_deref()
            .and_then(|g| problems.check("ingest.unix_socket_group", group_id(g))),
        max_header_bytes: usize::try_from(ingest.max_header_bytes)
            .ok()
            .filter(|&n| n >= MIN_HEADER_BYTES)
            .unwrap_or_else(|| {
                problems.push(
                    "ingest.max_header_bytes",
                    format!("must be at least {MIN_HEADER_BYTES}"),
                );
                MIN_HEADER_BYTES
            }),
        max_connections: nonzero_usize(problems, "ingest.max_connections", ingest.max_connections),
        header_timeout: positive_duration(
            problems,
            "ingest.header_timeout",
            &ingest.header_timeout,
        ),
        body_timeout: positive_duration(problems, "ingest.body_timeout", &ingest.body_timeout),
    };

    let metrics = MetricsConfig {
        listen: overrides
            .metrics_listen
            .unwrap_or_else(|| socket_addr(problems, "metrics.listen", &file.metrics.listen)),
    };
    if ingest.listen == metrics.listen && ingest.listen.port() != 0 {
        problems.push("metrics.listen", "must differ from ingest.listen");
    }

    let delivery = &file.delivery;
    let delivery = DeliveryConfig {
        shards: usize::try_from(delivery.shards).unwrap_or_else(|_| {
            problems.push("delivery.shards", "is too large");
            0
        }),
        endpoint_concurrency: nonzero_usize(
            problems,
            "delivery.endpoint_concurrency",
            delivery.endpoint_concurrency,
        ),
        max_in_flight: nonzero_usize(problems, "delivery.max_in_flight", delivery.max_in_flight),
        pool_idle_timeout: duration(
            problems,
            "delivery.pool_idle_timeout",
            &delivery.pool_idle_timeout,
        ),
    };

    let shutdown = ShutdownConfig {
        grace: duration(problems, "shutdown.grace", &file.shutdown.grace),
    };

    let format = match file.log.format.as_str() {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => {
            problems.push(
                "log.format",
                format!("unknown value `{other}`; expected \"text\" or \"json\""),
            );
            LogFormat::Text
        }
    };
    if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&file.log.level) {
        problems.push(
            "log.level",
            format!("not a log filter such as \"info\": {e}"),
        );
    }
    let log = LogConfig {
        format,
        level: file.log.level.clone(),
    };

    let mut profiles: std::collections::BTreeMap<String, Profile> = file
        .profiles
        .iter()
        .map(|(name, profile)| (name.clone(), validate_profile(name, profile, problems)))
        .collect();
    profiles.entry(DEFAULT_PROFILE.to_owned()).or_default();

    let inquiry = validate_inquiry(
        &file.inquiry,
        &profiles,
        store.retention,
        &[
            ("ingest.listen", ingest.listen),
            ("metrics.listen", metrics.listen),
        ],
        problems,
    );
    let merchants = validate_merchants(&file.merchants, problems);
    check_lease(&store, &profiles, problems);

    Config {
        store,
        ingest,
        metrics,
        delivery,
        shutdown,
        log,
        profiles,
        inquiry,
        merchants,
    }
}

fn validate_backend(store: &super::file::StoreFile, problems: &mut Problems) -> StoreBackend {
    match store.kind.as_str() {
        "embedded" => StoreBackend::Embedded,
        "postgres" => {
            let url = match store.url.as_deref() {
                Some(url) if !url.trim().is_empty() => {
                    match url.parse::<tokio_postgres::Config>() {
                        Ok(_) => url.to_owned(),
                        // The driver's message never quotes the string back, so no password leaks.
                        Err(e) => {
                            problems.push(
                                "store.url",
                                format!("not a PostgreSQL connection string: {e}"),
                            );
                            String::new()
                        }
                    }
                }
                _ => {
                    problems.push("store.url", "required when store.kind = \"postgres\"");
                    String::new()
                }
            };
            let pool_size = match usize::try_from(store.pool_size) {
                Ok(n @ 1..=1000) => n,
                _ => {
                    problems.push("store.pool_size", "must be 1 to 1000");
                    1
                }
            };
            StoreBackend::Postgres(PostgresConfig {
                url,
                lease: positive_duration(problems, "store.lease", &store.lease),
                pool_size,
            })
        }
        other => {
            problems.push(
                "store.kind",
                format!("`{other}` is neither \"embedded\" nor \"postgres\""),
            );
            StoreBackend::Embedded
        }
    }
}

/// A lease that could run out during an attempt would let a second host start the same attempt
/// while the first still runs (POSTGRES.md §3, rule 1).
fn check_lease(
    store: &StoreConfig,
    profiles: &std::collections::BTreeMap<String, Profile>,
    problems: &mut Problems,
) {
    let StoreBackend::Postgres(pg) = &store.backend else {
        return;
    };
    if pg.lease.is_zero() {
        return; // already reported by positive_duration
    }
    for (name, profile) in profiles {
        let needed = profile.attempt_timeout + LEASE_MARGIN;
        if pg.lease <= needed {
            problems.push(
                "store.lease",
                format!(
                    "{}s must be longer than profile `{name}`'s attempt_timeout ({}s) plus {}s",
                    pg.lease.as_secs_f64(),
                    profile.attempt_timeout.as_secs_f64(),
                    LEASE_MARGIN.as_secs()
                ),
            );
        }
    }
}

/// A group name (looked up in /etc/group) or number. Groups only known to NSS (LDAP, sssd) must be
/// given by number: resolving them needs libc, and this crate has no unsafe code.
fn group_id(group: &str) -> Result<u32, String> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    let groups = std::fs::read_to_string("/etc/group")
        .map_err(|e| format!("cannot read /etc/group to find `{group}`: {e}"))?;
    groups
        .lines()
        .filter_map(|line| {
            let mut f = line.split(':');
            Some((f.next()?, f.nth(1)?))
        })
        .find(|(name, _)| *name == group)
        .and_then(|(_, gid)| gid.parse().ok())
        .ok_or_else(|| format!("no group `{group}` in /etc/group; give its number instead"))
}

fn duration(problems: &mut Problems, key: &str, text: &str) -> Duration {
    problems
        .check(key, parse_duration(text))
        .unwrap_or_default()
}

fn positive_duration(problems: &mut Problems, key: &str, text: &str) -> Duration {
    let value = problems.check(key, parse_duration(text));
    if value == Some(Duration::ZERO) {
        problems.push(key, "must be more than 0");
    }
    value.unwrap_or_default()
}

fn socket_addr(problems: &mut Problems, key: &str, text: &str) -> SocketAddr {
    problems
        .check(
            key,
            text.parse().map_err(|_| {
                format!("`{text}` is not a socket address such as \"127.0.0.1:8470\"")
            }),
        )
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)))
}

fn nonzero_u64(problems: &mut Problems, key: &str, value: u64) -> NonZeroU64 {
    NonZeroU64::new(value).unwrap_or_else(|| {
        problems.push(key, "must be at least 1");
        NonZeroU64::MIN
    })
}

fn nonzero_usize(problems: &mut Problems, key: &str, value: u64) -> NonZeroUsize {
    match usize::try_from(value).ok().and_then(NonZeroUsize::new) {
        Some(n) => n,
        None if value == 0 => {
            problems.push(key, "must be at least 1");
            NonZeroUsize::MIN
        }
        None => {
            problems.push(key, "is too large");
            NonZeroUsize::MIN
        }
    }
}
