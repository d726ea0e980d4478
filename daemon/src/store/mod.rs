//! Durable state: notifications, their delivery progress, and idempotency records.
//!
//! [`Store`] is the boundary the rest of the daemon uses. Its writes ([`Store::accept`],
//! [`Store::update`], [`Store::redeliver`], [`Store::prune`]) return a [`StoreFuture`] that
//! resolves only once the change is durable; its reads are plain blocking functions that the
//! async code calls through `spawn_blocking`.
//!
//! The operations are chosen so a shared SQL table could implement them as well: every write is
//! a set of row changes by id, and every read is a lookup by id or by an indexed column.
//!
//! The embedded implementation is [`RedbStore`]: one file, `notifyd.redb`, written by a single
//! thread that group-commits (see `commit.rs`): concurrent accepts share one write transaction and
//! one fsync.
//!
//! Cancellation: dropping a [`StoreFuture`] does not withdraw the write. A dropped accept may still
//! become durable; the caller never told the client "accepted", and the client's retry is then
//! recognised as a duplicate by its idempotency key. That is the at-least-once contract.

mod attempts;
mod commit;
mod error;
mod format;
mod inspect;
mod lease;
mod pg;
mod record;
mod redb_store;
mod search;
mod tables;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_hooks;
#[cfg(test)]
mod tests_operator;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use notifyd_core::{NotificationId, UnixMillis};
use tokio::sync::oneshot;

pub use attempts::{AttemptEntry, SignatureNote};
pub use commit::{CommitInfo, StoreStats};
pub use error::StoreError;
pub use inspect::{Inspection, inspect};
pub use lease::{Accepted, Applied, Lease, StoreMode};
pub use pg::{PgStore, SCHEMA_VERSION};
pub use record::{AttemptUpdate, IdempotencyRecord, NotificationRecord, ReceiverIds, State};
pub use redb_store::{CommitObserver, RedbStore, StoreOptions};
pub use search::{SearchFilter, SearchPage};

/// Records per chunk of [`Store::scan_pending`] when the caller has no preference.
pub const PENDING_CHUNK: usize = 4096;

/// How long finished notifications and idempotency records are kept by default (7 days).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// The answer to a redeliver request (`POST /v1/notifications/{id}/redeliver`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedeliverOutcome {
    /// The notification was `dead` or `failed` and is now `pending` again, due at once, with
    /// its attempt count reset. Carries the record as stored after the change.
    Started(Box<NotificationRecord>),
    /// No notification has this id (never accepted, or pruned).
    Unknown,
    /// The notification is in a state that cannot be redelivered (`pending` or `delivered`).
    NotRedeliverable(State),
}

/// Which lookup index leads to the notifications that may share an idempotency key: every key
/// includes `paymentRequestId` where the API has one, and `paymentId` otherwise (notifyVoid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLookup<'a> {
    /// By `paymentRequestId`.
    PaymentRequestId(&'a str),
    /// By `paymentId`.
    PaymentId(&'a str),
}

impl<'a> KeyLookup<'a> {
    /// The index for this record's key, `None` when it carries neither id.
    pub fn for_record(r: &'a NotificationRecord) -> Option<Self> {
        match r.api {
            notifyd_core::Api::NotifyVoid => r.payment_id.as_deref().map(KeyLookup::PaymentId),
            _ => r
                .payment_request_id
                .as_deref()
                .map(KeyLookup::PaymentRequestId),
        }
    }
}

/// What one [`Store::prune`] call removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneStats {
    /// Finished notifications removed (with their bodies and index entries).
    pub notifications: u64,
    /// Idempotency records removed.
    pub idempotency: u64,
    /// True when the limit was reached and older entries remain: call again.
    pub more: bool,
}

/// The durable store behind ingest, delivery and the operator endpoints.
///
/// Object-safe, so the daemon can hold an `Arc<dyn Store>` and pick the backend from config.
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// How this store shares its notifications among hosts.
    fn mode(&self) -> StoreMode;

    /// Makes these records and their idempotency records durable, all or none, in one commit
    /// that may be shared with other callers. Resolves only after the commit (fsync), with one
    /// answer per record, in order: a shared store judges idempotency itself (another host may
    /// have stored the key first) and says so per record.
    fn accept(&self, records: Vec<NotificationRecord>) -> StoreFuture<Vec<Accepted>>;

    /// Writes attempt outcomes back; group-committed like [`Store::accept`]. One answer per
    /// update, in order: an update whose lease is no longer the notification's is refused
    /// ([`Applied::LeaseLost`]). Updates for ids the store no longer holds are ignored.
    fn update(&self, updates: Vec<AttemptUpdate>) -> StoreFuture<Vec<Applied>>;

    /// Claims up to `max` due pending notifications for this host (shared stores). The embedded
    /// store owns everything already (recovery loads it) and claims nothing.
    fn claim(&self, max: usize) -> StoreFuture<Vec<(NotificationRecord, Lease)>> {
        let _ = max;
        StoreFuture::ready(Ok(Vec::new()))
    }

    /// Extends these leases; answers the ids whose lease was lost meanwhile (shared stores).
    fn renew(&self, leases: Vec<(NotificationId, Lease)>) -> StoreFuture<Vec<NotificationId>> {
        let _ = leases;
        StoreFuture::ready(Ok(Vec::new()))
    }

    /// Gives these claims back unfinished (at shutdown), so another host may take them at once.
    fn release(&self, leases: Vec<(NotificationId, Lease)>) -> StoreFuture<()> {
        let _ = leases;
        StoreFuture::ready(Ok(()))
    }

    /// Starts a fresh delivery of a `dead` or `failed` notification: `pending`, attempts 0,
    /// next attempt at `now`, `finished_at` cleared. Idempotency is unaffected.
    fn redeliver(&self, id: NotificationId, now: UnixMillis) -> StoreFuture<RedeliverOutcome>;

    /// Removes finished notifications with `finished_at < older_than` and idempotency records
    /// with `accepted_at < older_than`, at most `limit` of each per call so one call never holds
    /// the writer for long. Pending notifications are never pruned.
    fn prune(&self, older_than: UnixMillis, limit: usize) -> StoreFuture<PruneStats>;

    /// Records an operator's hold of `endpoint` (`held`) or its end, so that it outlives a
    /// restart and, on a shared store, holds on every host (each reads [`Store::holds`]).
    fn set_hold(&self, endpoint: &str, held: bool, now: UnixMillis) -> StoreFuture<()>;

    /// The endpoints operators hold, in no order.
    fn holds(&self) -> StoreFuture<Vec<String>>;

    /// One notification by id.
    fn get(&self, id: NotificationId) -> Result<Option<NotificationRecord>, StoreError>;

    /// `dead` and `failed` notifications, newest first (by `finished_at`, then id).
    fn dead_letters(&self, limit: usize) -> Result<Vec<NotificationRecord>, StoreError>;

    /// Every notification carrying this `paymentId`, in accept order.
    fn find_by_payment_id(&self, payment_id: &str) -> Result<Vec<NotificationRecord>, StoreError>;

    /// Every notification carrying this `paymentRequestId` (and, when given, this `partnerId`),
    /// in accept order.
    fn find_by_payment_request_id(
        &self,
        partner_id: Option<&str>,
        payment_request_id: &str,
    ) -> Result<Vec<NotificationRecord>, StoreError>;

    /// The first notification accepted under idempotency key `key` at or after `since`, found
    /// through the lookup index `by` names, with its fingerprint: the answer to a repeat whose
    /// key the in-memory table has evicted before its retention ran out.
    fn find_idempotency(
        &self,
        key: u128,
        by: KeyLookup<'_>,
        since: UnixMillis,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;

    /// Recovery: every `pending` notification, in id (accept) order, with its attempt count and
    /// next attempt time as last committed. An attempt in flight at a crash was never recorded,
    /// so it is simply made again.
    fn load_pending(&self) -> Result<Vec<NotificationRecord>, StoreError> {
        let mut out = Vec::new();
        self.scan_pending(PENDING_CHUNK, &mut |chunk| out.extend(chunk))?;
        Ok(out)
    }

    /// Every pending notification, oldest first, handed to `sink` in chunks of up to `chunk`
    /// records as they are read, so recovery can enqueue while it reads and never holds every
    /// record at once. Returns how many were read.
    fn scan_pending(
        &self,
        chunk: usize,
        sink: &mut dyn FnMut(Vec<NotificationRecord>),
    ) -> Result<usize, StoreError>;

    /// Recovery: idempotency records accepted at or after `since`.
    fn load_idempotency(&self, since: UnixMillis) -> Result<Vec<IdempotencyRecord>, StoreError>;

    // The operator's toolkit (CONTRACT.md §2.1). Defaults keep other backends compiling; each
    // says what is missing rather than answering wrongly.

    /// As [`Store::update`], with an attempt log entry per attempt written in the same commit.
    fn update_logged(
        &self,
        updates: Vec<AttemptUpdate>,
        log: Vec<AttemptEntry>,
    ) -> StoreFuture<Vec<Applied>> {
        drop(log);
        self.update(updates)
    }

    /// As [`Store::update_logged`], storing in the same commit each hook (a new pending record
    /// with `hook_of` set) whose notification this commit moves from `pending` to `dead` or
    /// `failed`; a hook whose notification it does not move there is dropped. A shared store
    /// stores each hook leased to the writing host under [`Lease::first`]. A store without
    /// hooks refuses rather than drop one.
    fn update_with_hooks(
        &self,
        updates: Vec<AttemptUpdate>,
        log: Vec<AttemptEntry>,
        hooks: Vec<NotificationRecord>,
    ) -> StoreFuture<Vec<Applied>> {
        if hooks.is_empty() {
            return self.update_logged(updates, log);
        }
        StoreFuture::ready(Err(StoreError::Backend(
            "this store keeps no dead-letter hooks".into(),
        )))
    }

    /// A notification's last attempts (at most 20), oldest first.
    fn attempt_log(&self, id: NotificationId) -> Result<Vec<AttemptEntry>, StoreError> {
        let _ = id;
        Ok(Vec::new())
    }

    /// Notifications matching every filter given, newest first, without bodies.
    fn search(&self, filter: &SearchFilter) -> Result<SearchPage, StoreError> {
        let _ = filter;
        Err(StoreError::Backend("this store has no search".into()))
    }

    /// A receiver throttled `endpoint`: no host starts attempts to it for `pause` (shared
    /// stores; the embedded store's one host pauses in its scheduler alone).
    fn pause_endpoint(&self, endpoint: &str, pause: Duration) -> StoreFuture<()> {
        let _ = (endpoint, pause);
        StoreFuture::ready(Ok(()))
    }
}

/// The result of a store write, resolved once the write is durable (or has failed).
///
/// A thin wrapper over a oneshot reply so [`Store`] stays object-safe and a backend that answers
/// at once can do so without a channel.
#[derive(Debug)]
#[must_use = "a store write is only known durable once its future resolves"]
pub struct StoreFuture<T> {
    inner: Inner<T>,
}

#[derive(Debug)]
enum Inner<T> {
    Ready(Option<Result<T, StoreError>>),
    Waiting(oneshot::Receiver<Result<T, StoreError>>),
}

impl<T> StoreFuture<T> {
    /// A future that is already resolved.
    pub fn ready(result: Result<T, StoreError>) -> Self {
        StoreFuture {
            inner: Inner::Ready(Some(result)),
        }
    }

    /// A future resolved by whoever holds the sender; a dropped sender reads as
    /// [`StoreError::Closed`].
    pub fn from_receiver(rx: oneshot::Receiver<Result<T, StoreError>>) -> Self {
        StoreFuture {
            inner: Inner::Waiting(rx),
        }
    }

    /// Blocks the current (non-async) thread until the write resolves.
    pub fn wait(self) -> Result<T, StoreError> {
        match self.inner {
            Inner::Ready(r) => r.unwrap_or(Err(StoreError::Closed)),
            Inner::Waiting(rx) => rx.blocking_recv().unwrap_or(Err(StoreError::Closed)),
        }
    }
}

impl<T> Future for StoreFuture<T> {
    type Output = Result<T, StoreError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Both variants are Unpin, so the pin can be dropped.
        let this = self.get_mut();
        match &mut this.inner {
            Inner::Ready(r) => Poll::Ready(r.take().unwrap_or(Err(StoreError::Closed))),
            Inner::Waiting(rx) => Pin::new(rx)
                .poll(cx)
                .map(|r| r.unwrap_or(Err(StoreError::Closed))),
        }
    }
}

// `StoreFuture` never pins `T` (it is only moved out of a completed result).
impl<T> Unpin for StoreFuture<T> {}
