//! The daemon's life: start, recover, serve, reload on SIGHUP, drain on SIGTERM.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use notifyd_core::idempotency::{Fingerprint, IdempotencyKey, IdempotencyTable};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::app::{App, IngestLimits};
use crate::clock::Clock;
use crate::config::{Config, StoreBackend};
use crate::delivery::{Dispatcher, DispatcherOptions, Job};
use crate::ingest::server;
use crate::inquiry::InquirySettings;
use crate::profile::{LoadError, build_profiles};
use crate::start_error::StartError;
use crate::store::{NotificationRecord, PENDING_CHUNK, PgStore, RedbStore, Store, StoreOptions};
use crate::{exporter, metrics};

/// How often finished notifications and old idempotency records are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// A started daemon: its listeners' addresses and a handle to stop it (tests embed this).
#[derive(Debug)]
pub struct Running {
    /// Ingest TCP address actually bound (useful with port 0).
    pub ingest: SocketAddr,
    /// Metrics address actually bound.
    pub metrics: SocketAddr,
    /// Merchant-facing inquiry address actually bound, when `[inquiry] listen` is set.
    pub inquiry: Option<SocketAddr>,
    /// The shared state.
    pub app: Arc<App>,
    stop: CancellationToken,
    grace: Duration,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The PostgreSQL store when it is the store: its leases are given back at shutdown.
    shared: Option<Arc<PgStore>>,
}

impl Running {
    /// Stops intake, drains in-flight attempts within the grace period, closes listeners.
    /// Returns whether every in-flight attempt finished in time.
    pub async fn shutdown(self) -> bool {
        self.app.set_stopping();
        let drained = self.app.dispatcher.shutdown(self.grace).await;
        self.stop.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
        if let Some(pg) = self.shared {
            // What is still held (attempts cut off by the grace, queued retries) goes back at
            // once instead of after the lease, so other hosts take it over without a gap.
            match pg.release_all().await {
                Ok(n) => tracing::info!(released = n, "Released this host's leases."),
                Err(e) => {
                    tracing::warn!(error = %e, "Releasing leases failed; they expire on their own.")
                }
            }
        }
        // The store closes (its writer thread joined, the file unlocked) when the last task
        // holding it lets go; wait for that, briefly, so a restart in the same process can open it.
        let store = self.app.store.clone();
        drop(self.app);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while Arc::strong_count(&store) > 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Ours is the last handle: dropping it here joins the writer thread and closes the file.
        let _ = tokio::task::spawn_blocking(move || drop(store)).await;
        drained
    }
}

/// The error of a listener that could not be bound, keyed by its configuration key.
fn listen_error(what: &'static str, addr: SocketAddr) -> impl FnOnce(std::io::Error) -> StartError {
    move |source| StartError::Listen {
        what,
        addr: addr.to_string(),
        source,
    }
}

/// Starts notifyd: store, recovery, delivery, listeners. Resolves once it is ready.
pub async fn start(config: &Config) -> Result<Running, StartError> {
    start_with(config, StoreOptions::default()).await
}

/// [`start`] with store options (tuning, or fault injection in tests).
pub async fn start_with(
    config: &Config,
    store_options: StoreOptions,
) -> Result<Running, StartError> {
    let handle = exporter::prometheus();
    let clock = Clock::new();
    let status = crate::status::Status::new(&config.store.path);
    let commits = status.clone();
    let observer: crate::store::CommitObserver = Arc::new(move |c: &crate::store::CommitInfo| {
        metrics::store_commit(c.duration, c.ops);
        commits.commit(c.duration);
    });
    let (store, shared): (Arc<dyn Store>, Option<Arc<PgStore>>) = match &config.store.backend {
        StoreBackend::Embedded => (open_embedded(config, store_options, observer).await?, None),
        StoreBackend::Postgres(pg) => {
            let (pg, name) = (pg.clone(), host_name());
            let store = tokio::task::spawn_blocking(move || PgStore::open(&pg, &name))
                .await
                .map_err(|_| StartError::Panicked("opening the store"))?
                .map_err(|source| StartError::SharedStore { source })?;
            let store = Arc::new(store);
            (store.clone(), Some(store))
        }
    };
    let profiles = build_profiles(config)?;
    let retention = config.store.retention;
    let idempotency = IdempotencyTable::new(
        usize::try_from(config.store.idempotency_capacity.get()).unwrap_or(usize::MAX),
        retention,
    );
    let dispatcher = Dispatcher::start(
        DispatcherOptions {
            shards: config.delivery.shard_count().get(),
            endpoint_concurrency: config.delivery.endpoint_concurrency.get(),
            max_in_flight: config.delivery.max_in_flight.get(),
        },
        store.clone(),
        clock,
        profiles,
    );
    let tokens = match &config.ingest.auth_token_file {
        Some(f) => std::fs::read_to_string(f)
            .map_err(|source| StartError::TokenFile {
                path: f.clone(),
                source,
            })?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| l.as_bytes().to_vec())
            .collect(),
        None => Vec::new(),
    };
    let app = Arc::new(App::new(
        store.clone(),
        idempotency,
        dispatcher,
        clock,
        IngestLimits {
            max_body_bytes: config.ingest.max_body_bytes.get(),
            max_batch: config.ingest.max_batch.get(),
            max_pending: usize::try_from(config.ingest.max_pending.get()).unwrap_or(usize::MAX),
            body_timeout: config.ingest.body_timeout,
        },
        tokens,
    ));
    app.replace_inquiry(InquirySettings::build(config)?);

    // Listeners come up before recovery so /healthz answers and /readyz says 503 meanwhile.
    let stop = CancellationToken::new();
    let ingest = crate::systemd::ingest_listener(config.ingest.listen)
        .await
        .map_err(listen_error("ingest.listen", config.ingest.listen))?;
    let metrics_listener = TcpListener::bind(config.metrics.listen)
        .await
        .map_err(listen_error("metrics.listen", config.metrics.listen))?;
    let ingest_addr = ingest
        .local_addr()
        .map_err(listen_error("ingest.listen", config.ingest.listen))?;
    let metrics_addr = metrics_listener
        .local_addr()
        .map_err(listen_error("metrics.listen", config.metrics.listen))?;
    let mut tasks = vec![
        tokio::spawn(server::serve(
            ingest,
            "ingest",
            app.clone(),
            server::ConnLimits::from(&config.ingest),
            stop.clone(),
        )),
        tokio::spawn(status.clone().sample(app.clone(), stop.clone())),
        tokio::spawn({
            let app = app.clone();
            server::serve_with(
                metrics_listener,
                "metrics",
                move |req| exporter::handle(app.clone(), handle.clone(), status.clone(), req),
                exporter::LIMITS,
                stop.clone(),
            )
        }),
    ];
    let inquiry_addr = match config.inquiry.listen {
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(listen_error("inquiry.listen", addr))?;
            let bound = listener
                .local_addr()
                .map_err(listen_error("inquiry.listen", addr))?;
            let for_merchants = app.clone();
            tasks.push(tokio::spawn(server::serve_with(
                listener,
                "inquiry",
                move |req| crate::inquiry::listener::handle(for_merchants.clone(), req),
                server::ConnLimits::from(&config.ingest),
                stop.clone(),
            )));
            Some(bound)
        }
        None => None,
    };
    if let Some(path) = &config.ingest.unix_socket {
        let listener = server::bind_unix(path, &config.ingest)?;
        tasks.push(tokio::spawn(server::serve(
            listener,
            "ingest Unix socket",
            app.clone(),
            server::ConnLimits::from(&config.ingest),
            stop.clone(),
        )));
    }

    let mut running = Running {
        ingest: ingest_addr,
        metrics: metrics_addr,
        inquiry: inquiry_addr,
        app,
        stop,
        grace: config.shutdown.grace,
        tasks,
        shared: shared.clone(),
    };
    // A shared store's pending work is claimed under leases as shards have room, never loaded
    // wholesale: other hosts deliver it too.
    let recovered = match (restore_holds(&running.app).await, &shared) {
        (Err(e), _) => Err(e),
        (Ok(()), None) => recover(&running.app, retention).await,
        (Ok(()), Some(pg)) => {
            let (app, stop) = (running.app.clone(), running.stop.clone());
            let backlog = 2 * config.delivery.max_in_flight.get();
            running
                .tasks
                .push(tokio::spawn(crate::delivery::claimer::claim_loop(
                    app,
                    pg.clone(),
                    backlog,
                    stop.clone(),
                )));
            let lease = match &config.store.backend {
                StoreBackend::Postgres(c) => c.lease,
                StoreBackend::Embedded => Duration::from_secs(60),
            };
            // A reload may lengthen it: check-config still keeps the lease 10s longer, and the
            // shards check each attempt against its own profile's timeout.
            let longest_attempt = config
                .profiles
                .values()
                .map(|p| p.attempt_timeout)
                .max()
                .unwrap_or_default();
            running
                .tasks
                .push(tokio::spawn(crate::delivery::claimer::renew_loop(
                    running.app.clone(),
                    pg.clone(),
                    lease,
                    longest_attempt,
                    stop,
                )));
            Ok(())
        }
    };
    drop(shared);
    if let Err(e) = recovered {
        // Nothing may go on delivering for a daemon that did not start, and the store must be
        // closed (its file lock released) before the error is returned.
        running.grace = Duration::ZERO;
        running.shutdown().await;
        return Err(e);
    }
    let app = &running.app;
    // Finished notifications answer inquiries for as long as `[inquiry] retention` asks; the
    // idempotency log then ages out with them, which only costs disk (duplicates are judged by
    // the table, within `store.retention`).
    let keep = config
        .inquiry
        .retention
        .map_or(retention, |r| r.max(retention));
    running.tasks.push(tokio::spawn(prune_loop(
        app.clone(),
        keep,
        running.stop.clone(),
    )));
    app.set_ready();
    tracing::info!(ingest = %ingest_addr, metrics = %metrics_addr, pending = app.dispatcher.pending(), "Ready.");
    Ok(running)
}

async fn open_embedded(
    config: &Config,
    store_options: StoreOptions,
    observer: crate::store::CommitObserver,
) -> Result<Arc<dyn Store>, StartError> {
    let path: PathBuf = config.store.path.clone();
    let cache_size = usize::try_from(config.store.cache_size).unwrap_or(usize::MAX);
    let store = tokio::task::spawn_blocking(move || {
        RedbStore::open(
            &path,
            StoreOptions {
                commit_observer: Some(observer),
                cache_size: store_options.cache_size.or(Some(cache_size)),
                ..store_options
            },
        )
    })
    .await
    .map_err(|_| StartError::Panicked("opening the store"))?
    .map_err(|source| StartError::Store {
        path: config.store.path.clone(),
        source,
    })?;
    Ok(Arc::new(store))
}

/// The label of this process's `nd_host` row, for the DBA: host name and pid.
fn host_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}:{}", host.trim(), std::process::id())
}

/// Holds the endpoints operators hold (the store keeps them), before any notification is
/// queued: a restart in a merchant's maintenance window must not send to it.
async fn restore_holds(app: &App) -> Result<(), StartError> {
    // Ingest already listens: a resume asked meanwhile is either read here or waits for this.
    let _serial = app.holds.lock().await;
    let held = app.store.holds().await.map_err(StartError::Recovery)?;
    for endpoint in &held {
        app.dispatcher.hold(endpoint).await;
    }
    if !held.is_empty() {
        tracing::warn!(endpoints = ?held, "Endpoints held by an operator; nothing is sent to them until resumed.");
    }
    Ok(())
}

/// Loads what the store holds: idempotency records (so repeats are still recognised) and every
/// pending notification, with its attempt count and due time. An attempt in flight at a crash
/// left its notification pending and due, so it is simply made again.
///
/// A pending notification whose profile is no longer configured stops the start
/// ([`StartError::MissingProfiles`]): it is never sent under another profile's key and rules.
async fn recover(app: &Arc<App>, retention: Duration) -> Result<(), StartError> {
    let started = std::time::Instant::now();
    let since = notifyd_core::UnixMillis(
        app.clock
            .now()
            .0
            .saturating_sub(retention.as_millis() as u64),
    );
    // The two reads run on their own threads (the idempotency table is filled right there), and
    // pending records are queued for delivery chunk by chunk while the rest is still being read:
    // restart time is the longest of the three, not their sum. (Jobs are held in memory, in
    // their shards, as they would be had they been accepted in this process.)
    let for_idem = app.clone();
    let idem = tokio::task::spawn_blocking(move || {
        let records = for_idem.store.load_idempotency(since)?;
        for r in &records {
            for_idem.idempotency.restore(
                IdempotencyKey(r.key),
                Fingerprint(r.fingerprint),
                r.id,
                r.accepted_at,
            );
        }
        Ok::<_, crate::store::StoreError>(records.len())
    });
    let store = app.store.clone();
    let (tx, mut chunks) = tokio::sync::mpsc::channel::<Vec<NotificationRecord>>(4);
    let pending = tokio::task::spawn_blocking(move || {
        store.scan_pending(PENDING_CHUNK, &mut |chunk| {
            // Fails only if recovery stopped listening, which it does only on its way out.
            let _ = tx.blocking_send(chunk);
        })
    });
    let now = app.clock.now();
    let mut missing: HashMap<String, u64> = HashMap::new();
    while let Some(chunk) = chunks.recv().await {
        let jobs = chunk
            .iter()
            .filter_map(|rec| match app.profile(&rec.profile) {
                Some(profile) => Some(Job::from_record(rec, profile, now)),
                None => {
                    *missing.entry(rec.profile.clone()).or_default() += 1;
                    None
                }
            })
            .collect();
        // Once the start is doomed, queue nothing more: the scan goes on only to count.
        if missing.is_empty() {
            app.dispatcher.enqueue_many(jobs);
        }
    }
    let count = pending
        .await
        .map_err(|_| StartError::Panicked("reading pending notifications"))?
        .map_err(StartError::Recovery)?;
    let idempotency_records = idem
        .await
        .map_err(|_| StartError::Panicked("reading idempotency records"))?
        .map_err(StartError::Recovery)?;
    if !missing.is_empty() {
        let mut missing: Vec<(String, u64)> = missing.into_iter().collect();
        missing.sort();
        return Err(StartError::MissingProfiles(missing));
    }
    tracing::info!(
        pending = count,
        idempotency_records,
        took_ms = started.elapsed().as_millis() as u64,
        "Recovered the store."
    );
    Ok(())
}

async fn prune_loop(app: Arc<App>, retention: Duration, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(PRUNE_EVERY) => {}
            () = stop.cancelled() => return,
        }
        let now = app.clock.now();
        app.idempotency.evict_expired(now);
        let older = notifyd_core::UnixMillis(now.0.saturating_sub(retention.as_millis() as u64));
        loop {
            match app.store.prune(older, 10_000).await {
                Ok(stats) if stats.more => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "Pruning failed; will try again.");
                    break;
                }
            }
        }
    }
}

/// Runs until SIGTERM/SIGINT; SIGHUP reloads profiles and keys through `reload`.
pub async fn serve_until_signal(
    config: Config,
    reload: impl Fn() -> Result<Config, String>,
) -> Result<(), StartError> {
    let running = start(&config).await?;
    let handler = |kind| {
        signal(kind).map_err(|source| StartError::Runtime {
            what: "installing signal handlers",
            source,
        })
    };
    let mut term = handler(SignalKind::terminate())?;
    let mut int = handler(SignalKind::interrupt())?;
    let mut hup = handler(SignalKind::hangup())?;
    // READY=1 only once the signal handlers are in: a stop right after it must drain, not kill.
    let systemd = crate::systemd::Notifier::from_env();
    systemd.ready(running.app.dispatcher.pending());
    let watchdog = crate::systemd::spawn_watchdog(&systemd, &running.app);
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                systemd.reloading();
                let built = |c: Config| Ok::<_, LoadError>((build_profiles(&c)?, InquirySettings::build(&c)?));
                match reload().and_then(|c| built(c).map_err(|e| e.to_string())) {
                    Ok((p, inquiry)) => {
                        running.app.replace_profiles(p);
                        running.app.replace_inquiry(inquiry);
                        tracing::info!("Reloaded profiles, merchants and keys.");
                    }
                    Err(e) => tracing::error!(error = %e, "Reload failed; keeping the running profiles."),
                }
                systemd.reloaded(running.app.dispatcher.pending());
            }
        }
    }
    systemd.stopping();
    if let Some(w) = &watchdog {
        w.abort();
    }
    tracing::info!(
        pending = running.app.dispatcher.pending(),
        "Stopping: intake closed, draining attempts."
    );
    if !running.shutdown().await {
        tracing::warn!(
            "Grace period ran out; unfinished attempts stay pending and are made again at the next start."
        );
    }
    tracing::info!("Stopped.");
    Ok(())
}
