//! The PostgreSQL store (`[store] kind = "postgres"`): one database shared by several hosts.
//!
//! Layout and reasoning: POSTGRES.md. Pending notifications live in the hot `nd_queue` table
//! only while pending; the notification itself is written once (`nd_notification`), and a
//! finished one's `nd_queue` row is replaced by an `nd_outcome` row in the same statement.
//! Each pending row is held by at most one host at a time under a lease (`lease_owner`,
//! `lease_token`, `due_at` = end of the lease); every outcome write is fenced by owner and
//! token, so a host that stalled past its lease writes nothing.
//!
//! Writes go through two group-commit lanes (`lane.rs`), each with its own connection: one
//! transaction for whatever accepts (or outcomes) queued up meanwhile. Claims, renewals, reads
//! and maintenance use a small pool. All of it runs on a dedicated runtime of one worker thread,
//! so the trait's blocking reads can wait on it from any thread (they are called from
//! `spawn_blocking`, where a nested `block_on` of the caller's runtime is not allowed).
//!
//! Where the schema (v4) departs from POSTGRES.md, and why:
//! - *Attempt log.* The design keeps attempt history out of the database (logs and metrics);
//!   CONTRACT.md §2.1 wants the last 20 per notification from the API. It is `nd_attempt`, one
//!   row per notification (an array of attempts.rs's entries), never a row per attempt and never
//!   in `nd_queue`: a notification delivered at once costs one small insert (WAL: benches row 9).
//! - *Pauses.* `nd_endpoint` is keyed by the endpoint's name (as the shards know it), not a hash,
//!   and claims take no `$paused` list: the first pause of an episode moves the endpoint's due
//!   unleased rows to its end instead, and each host's shards enforce the pauses they read once
//!   per claim cycle. Pauses travel as time left on the database's clock (`pause.rs`).
//! - *Pruning leader.* A transaction-scoped `pg_try_advisory_xact_lock` per batch rather than a
//!   leader holding a session lock: nothing to hand over when a host dies, and no lock left on a
//!   pooled connection.
//! - *Redeliver* leaves the row unleased and due; the claimers take it (no NOTIFY yet).
//! - *Dead-letter hooks* (schema v3, `hooks.rs`): a hook is a notification row with `hook_of`
//!   set, inserted in the outcome transaction that ends its notification, leased to the writer.
//! - *Finishing claim* (schema v4): `nd_outcome` keeps the owner and token of the claim that
//!   wrote it. A retried final write is done only if it finds its own claim there; the same
//!   state and attempts written by the host that took the claim over is a lost lease. A
//!   redelivery continues the token from it, so the claim after is never the claim before.
//! - *Operators' holds* (schema v4, `pause.rs`): `nd_endpoint.held_at`, read by every host's
//!   claimer each cycle; claims skip held endpoints' rows (and those the claiming host holds
//!   because of its own answers), so a long hold cannot fill the hosts' backlogs.

mod accept;
mod claim;
mod columns;
mod connect;
mod hooks;
mod lane;
mod operator;
mod pause;
mod read;
mod schema;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_hooks;
#[cfg(test)]
mod tests_hosts;
#[cfg(test)]
mod tests_operator;
#[cfg(test)]
mod tests_wal;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use notifyd_core::{NotificationId, UnixMillis};
use tokio::runtime::Runtime;
use uuid::Uuid;

use super::{
    Accepted, Applied, AttemptEntry, AttemptUpdate, IdempotencyRecord, KeyLookup, Lease,
    NotificationRecord, PruneStats, RedeliverOutcome, SearchFilter, SearchPage, Store, StoreError,
    StoreFuture, StoreMode,
};
use crate::config::PostgresConfig;

pub use schema::VERSION as SCHEMA_VERSION;

/// Most records in one accept or outcome transaction.
const MAX_BATCH_ROWS: usize = 2000;

/// The PostgreSQL store. Cheap to share behind an `Arc`.
pub struct PgStore {
    inner: Arc<Shared>,
    // Option so Drop can shut it down without blocking (dropping a runtime from async code panics).
    runtime: Option<Runtime>,
    accepts: lane::Lane<NotificationRecord, Accepted>,
    outcomes: lane::Lane<claim::Outcome, Applied>,
}

/// What every task of the store needs.
pub(crate) struct Shared {
    pub(crate) pool: Pool,
    /// This host's number (`nd_host.id`): the owner of its leases.
    pub(crate) host: u32,
    pub(crate) lease: Duration,
}

impl Shared {
    fn lease_millis(&self) -> i64 {
        i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX)
    }

    fn owner(&self) -> i32 {
        // Host ids come from an int identity column, so they fit.
        i32::try_from(self.host).unwrap_or(i32::MAX)
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("host", &self.inner.host)
            .field("lease", &self.inner.lease)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects, creates or migrates the schema, and registers this process as a host.
    /// `name` labels the host row (hostname and pid, for the DBA).
    pub fn open(config: &PostgresConfig, name: &str) -> Result<PgStore, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("notifyd-pg")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Open(format!("starting the PostgreSQL runtime: {e}")))?;
        let pg = connect::parse(&config.url)?;
        let tls = connect::tls(&pg)?;
        let (pg2, tls2, name) = (pg.clone(), tls.clone(), name.to_owned());
        let (lease, pool_size) = (config.lease, config.pool_size);
        let (inner, accept_client, outcome_client) = block(&runtime, async move {
            let (pg, tls) = (pg2, tls2);
            let mut admin = connect::client(&pg, &tls).await?;
            schema::migrate(&mut admin).await?;
            let host: i32 = admin
                .query_one(
                    "INSERT INTO nd_host (name) VALUES ($1) RETURNING id",
                    &[&name],
                )
                .await
                .map_err(|e| pg_err("registering this host in nd_host", e))?
                .get(0);
            let pool = connect::pool(pg.clone(), tls.clone(), pool_size)?;
            let accept_client = connect::client(&pg, &tls).await?;
            let outcome_client = connect::client(&pg, &tls).await?;
            let inner = Arc::new(Shared {
                pool,
                host: u32::try_from(host)
                    .map_err(|_| StoreError::Corrupt(format!("nd_host gave id {host}")))?,
                lease,
            });
            Ok::<_, StoreError>((inner, accept_client, outcome_client))
        })??;
        let reconnect = connect::Reconnect::new(pg, tls);
        let accepts = lane::Lane::start(
            runtime.handle(),
            "accept",
            accept_client,
            reconnect.clone(),
            Arc::new(accept::Accept(inner.clone())),
        );
        let outcomes = lane::Lane::start(
            runtime.handle(),
            "outcome",
            outcome_client,
            reconnect,
            Arc::new(claim::Outcomes(inner.clone())),
        );
        Ok(PgStore {
            inner,
            runtime: Some(runtime),
            accepts,
            outcomes,
        })
    }

    /// This host's number, the owner of its leases.
    pub fn host(&self) -> u32 {
        self.inner.host
    }

    /// Gives back every lease this host holds (at shutdown).
    pub fn release_all(&self) -> StoreFuture<u64> {
        let inner = self.inner.clone();
        self.spawn(async move { claim::release_all(&inner).await })
    }

    /// [`Store::claim`], skipping the due work of the endpoints this host holds (`held`) as
    /// well as of those an operator holds.
    pub fn claim_except(
        &self,
        max: usize,
        held: Vec<String>,
    ) -> StoreFuture<Vec<(NotificationRecord, Lease)>> {
        let inner = self.inner.clone();
        self.spawn(async move { claim::claim(&inner, max, &held).await })
    }

    /// The throttle pauses running now (any host's), each with how long it has left.
    pub fn paused_endpoints(&self) -> StoreFuture<Vec<(String, Duration)>> {
        let inner = self.inner.clone();
        self.spawn(async move { pause::paused(&inner).await })
    }

    fn runtime(&self) -> &Runtime {
        self.runtime.as_ref().expect("the runtime lives until drop")
    }

    /// Runs `fut` on the store's runtime and waits for it on this (non-async) thread.
    fn wait<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        block(self.runtime(), fut)?
    }

    /// Runs `fut` on the store's runtime and answers through a [`StoreFuture`].
    fn spawn<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> StoreFuture<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.runtime().spawn(async move {
            let _ = tx.send(fut.await);
        });
        StoreFuture::from_receiver(rx)
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Waits for `fut` on `rt` from any thread, async or not: through a std channel, since both
/// `Runtime::block_on` and `blocking_recv` panic on a thread that runs async code.
fn block<T: Send + 'static>(
    rt: &Runtime,
    fut: impl Future<Output = T> + Send + 'static,
) -> Result<T, StoreError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    rt.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv().map_err(|_| StoreError::Closed)
}

/// Names what failed and why, with PostgreSQL's own message (and code) when it sent one.
pub(crate) fn pg_err(what: &str, e: tokio_postgres::Error) -> StoreError {
    let detail = match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    };
    if e.is_closed() {
        StoreError::io(&format!("{what}: connection to PostgreSQL lost: {detail}"))
    } else if e.as_db_error().is_some_and(|db| passing(db.code().code())) {
        // Transient, so a caller tries again: an outcome given up on would stay leased to this
        // host with nobody attempting it.
        StoreError::io(&format!("{what}: {detail}"))
    } else {
        StoreError::Backend(format!("{what}: {detail}"))
    }
}

/// SQLSTATEs that say "not now" rather than "never": the connection's class (08), the server
/// shutting down, crashed or still starting (57P01-57P03, seen on every restart), insufficient
/// resources (class 53: disk full, out of memory, too many connections), a statement cancelled
/// or timed out (57014), a lock not available (55P03), and a transaction chosen to fail a
/// serialization or deadlock (40001, 40P01). Giving up on an outcome for one of these would
/// have its notification sent again after the lease, while the database is under pressure.
fn passing(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "57014" | "55P03" | "40001" | "40P01"
        )
}

/// Text as a `text` column takes it: PostgreSQL refuses NUL in text (SQLSTATE 22021), and one
/// such value would fail the whole batch it travels in (every accept or outcome beside it), so
/// a NUL (from a receiver's answer, or a sender's field) is stored as U+FFFD instead.
pub(crate) fn text(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\0') {
        std::borrow::Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

pub(crate) fn uid(id: NotificationId) -> Uuid {
    Uuid::from_u128(id.as_u128())
}

pub(crate) fn nid(id: Uuid) -> NotificationId {
    NotificationId::from_u128(id.as_u128())
}

pub(crate) fn millis(t: UnixMillis) -> i64 {
    i64::try_from(t.0).unwrap_or(i64::MAX)
}

pub(crate) fn unix(t: i64) -> UnixMillis {
    UnixMillis(u64::try_from(t).unwrap_or(0))
}

/// The per-payment order key as stored: xxh3, like the shards' own order hash.
pub(crate) fn order_hash(order_key: &str) -> i64 {
    i64::from_ne_bytes(xxhash_rust::xxh3::xxh3_64(order_key.as_bytes()).to_ne_bytes())
}

impl Store for PgStore {
    fn mode(&self) -> StoreMode {
        StoreMode::Shared {
            host: self.inner.host,
            lease: self.inner.lease,
        }
    }

    fn accept(&self, records: Vec<NotificationRecord>) -> StoreFuture<Vec<Accepted>> {
        self.accepts.submit(records)
    }

    fn update(&self, updates: Vec<AttemptUpdate>) -> StoreFuture<Vec<Applied>> {
        self.outcomes
            .submit(claim::Outcome::pair(updates, Vec::new(), Vec::new()))
    }

    fn update_logged(
        &self,
        updates: Vec<AttemptUpdate>,
        log: Vec<AttemptEntry>,
    ) -> StoreFuture<Vec<Applied>> {
        self.outcomes
            .submit(claim::Outcome::pair(updates, log, Vec::new()))
    }

    fn update_with_hooks(
        &self,
        updates: Vec<AttemptUpdate>,
        log: Vec<AttemptEntry>,
        hooks: Vec<NotificationRecord>,
    ) -> StoreFuture<Vec<Applied>> {
        self.outcomes
            .submit(claim::Outcome::pair(updates, log, hooks))
    }

    fn attempt_log(&self, id: NotificationId) -> Result<Vec<AttemptEntry>, StoreError> {
        let inner = self.inner.clone();
        self.wait(async move { operator::attempt_log(&inner, id).await })
    }

    fn search(&self, filter: &SearchFilter) -> Result<SearchPage, StoreError> {
        let inner = self.inner.clone();
        let filter = filter.clone();
        self.wait(async move { operator::search(&inner, &filter).await })
    }

    fn set_hold(&self, endpoint: &str, held: bool, _now: UnixMillis) -> StoreFuture<()> {
        // The database's clock stamps the hold, as it does pauses and leases.
        let inner = self.inner.clone();
        let endpoint = endpoint.to_owned();
        self.spawn(async move { pause::set_hold(&inner, &endpoint, held).await })
    }

    fn holds(&self) -> StoreFuture<Vec<String>> {
        let inner = self.inner.clone();
        self.spawn(async move { pause::holds(&inner).await })
    }

    fn pause_endpoint(&self, endpoint: &str, pause: Duration) -> StoreFuture<()> {
        let inner = self.inner.clone();
        let endpoint = endpoint.to_owned();
        self.spawn(async move { pause::pause(&inner, &endpoint, pause).await })
    }

    fn claim(&self, max: usize) -> StoreFuture<Vec<(NotificationRecord, Lease)>> {
        self.claim_except(max, Vec::new())
    }

    fn renew(&self, leases: Vec<(NotificationId, Lease)>) -> StoreFuture<Vec<NotificationId>> {
        let inner = self.inner.clone();
        self.spawn(async move { claim::renew(&inner, leases).await })
    }

    fn release(&self, leases: Vec<(NotificationId, Lease)>) -> StoreFuture<()> {
        let inner = self.inner.clone();
        self.spawn(async move { claim::release(&inner, leases).await })
    }

    fn redeliver(&self, id: NotificationId, now: UnixMillis) -> StoreFuture<RedeliverOutcome> {
        let inner = self.inner.clone();
        self.spawn(async move { read::redeliver(&inner, id, now).await })
    }

    fn prune(&self, older_than: UnixMillis, limit: usize) -> StoreFuture<PruneStats> {
        let inner = self.inner.clone();
        self.spawn(async move { read::prune(&inner, older_than, limit).await })
    }

    fn get(&self, id: NotificationId) -> Result<Option<NotificationRecord>, StoreError> {
        let inner = self.inner.clone();
        self.wait(async move { Ok(read::by_ids(&inner, &[uid(id)]).await?.pop()) })
    }

    fn dead_letters(&self, limit: usize) -> Result<Vec<NotificationRecord>, StoreError> {
        let inner = self.inner.clone();
        self.wait(async move { read::dead_letters(&inner, limit).await })
    }

    fn find_by_payment_id(&self, payment_id: &str) -> Result<Vec<NotificationRecord>, StoreError> {
        let inner = self.inner.clone();
        let payment_id = payment_id.to_owned();
        self.wait(async move { read::by_payment_id(&inner, &payment_id).await })
    }

    fn find_by_payment_request_id(
        &self,
        partner_id: Option<&str>,
        payment_request_id: &str,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        let inner = self.inner.clone();
        let partner_id = partner_id.map(str::to_owned);
        let request = payment_request_id.to_owned();
        self.wait(async move {
            read::by_payment_request_id(&inner, partner_id.as_deref(), &request).await
        })
    }

    fn find_idempotency(
        &self,
        key: u128,
        by: KeyLookup<'_>,
        since: UnixMillis,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        // The key is the primary key's second column (indexed on its own): no need for `by`,
        // which only tells the embedded store which of its indexes to walk.
        let _ = by;
        let inner = self.inner.clone();
        self.wait(async move { read::idempotency(&inner, key, since).await })
    }

    fn scan_pending(
        &self,
        _chunk: usize,
        _sink: &mut dyn FnMut(Vec<NotificationRecord>),
    ) -> Result<usize, StoreError> {
        // Shared: pending work is claimed under leases, never loaded wholesale at start.
        Ok(0)
    }

    fn load_idempotency(&self, _since: UnixMillis) -> Result<Vec<IdempotencyRecord>, StoreError> {
        // Shared: the database's unique key judges repeats; the in-memory table fills as it goes.
        Ok(Vec::new())
    }
}
