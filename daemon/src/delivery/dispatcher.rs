//! The delivery handle: routes jobs to shards, counts pending work, drains on shutdown.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use notifyd_core::scheduler::Limits;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::attempt::AttemptCtx;
use super::job::Job;
use super::report::EndpointView;
use super::shard::{HeldEndpoint, HoldChange, Shard, ShardMsg, ShardParts};
use crate::clock::Clock;
use crate::metrics;
use crate::profile::{Profile, Profiles};
use crate::store::Store;

/// Sizing of the worker pools.
#[derive(Debug, Clone, Copy)]
pub struct DispatcherOptions {
    /// Number of shards (0: one per core).
    pub shards: usize,
    /// Concurrent attempts per endpoint (`host:port`) while it is healthy.
    pub endpoint_concurrency: usize,
    /// Concurrent attempts in total, shared out evenly: each shard may run
    /// `ceil(max_in_flight / shards)` (an attempt counts until its outcome is written). A shard
    /// owns whole endpoints, so a cap shared across shards would make shards wait on each other.
    pub max_in_flight: usize,
}

/// Cheap to clone; all clones drive the same shards.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    shards: Arc<[mpsc::UnboundedSender<ShardMsg>]>,
    pending: Arc<AtomicUsize>,
    tracker: TaskTracker,
    stop: CancellationToken,
    abort: CancellationToken,
    ctx: Arc<AttemptCtx>,
}

impl std::fmt::Debug for ShardMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShardMsg")
    }
}

impl Dispatcher {
    /// Starts the shards on the current tokio runtime, with `profiles` in force.
    pub fn start(
        opts: DispatcherOptions,
        store: Arc<dyn Store>,
        clock: Clock,
        profiles: HashMap<String, Arc<Profile>>,
    ) -> Dispatcher {
        let n = if opts.shards == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            opts.shards
        };
        let abort = CancellationToken::new();
        let (hooks, mut stored_hooks) = mpsc::unbounded_channel();
        let ctx = Arc::new(AttemptCtx {
            store,
            clock,
            profiles: Profiles::new(profiles),
            abort: abort.clone(),
            leases: Default::default(),
            hooks,
            tally: Arc::default(),
        });
        let tracker = TaskTracker::new();
        let stop = CancellationToken::new();
        let pending = Arc::new(AtomicUsize::new(0));
        let per_shard = opts.max_in_flight.div_ceil(n).max(1);
        let shards = (0..n)
            .map(|_| {
                Shard::spawn(ShardParts {
                    ctx: ctx.clone(),
                    tracker: tracker.clone(),
                    stop: stop.clone(),
                    pending: pending.clone(),
                    limits: Limits {
                        endpoint_concurrency: opts.endpoint_concurrency.max(1),
                        max_in_flight: per_shard,
                    },
                })
            })
            .collect();
        let dispatcher = Dispatcher {
            shards,
            pending,
            tracker,
            stop,
            abort,
            ctx,
        };
        // Stored dead-letter hooks, to the shard of their endpoint (another shard's, usually).
        let router = dispatcher.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    job = stored_hooks.recv() => match job {
                        Some(job) => router.enqueue(job),
                        None => return,
                    },
                    () = router.stop.cancelled() => return,
                }
            }
        });
        dispatcher
    }

    /// This daemon's own counts, which its shards add deliveries to.
    pub fn tally(&self) -> Arc<crate::status::Tally> {
        self.ctx.tally.clone()
    }

    /// Hands a notification to its endpoint's shard. Never blocks: admission is bounded at
    /// ingest (`max_pending`), not here.
    pub fn enqueue(&self, job: Job) {
        let shard = self.shard_of(&job);
        let n = self.pending.fetch_add(1, Ordering::Relaxed) + 1;
        metrics::pending(n);
        if self.shards[shard].send(ShardMsg::Enqueue(job)).is_err() {
            // Only after shutdown; the notification stays pending in the store.
            self.pending.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Hands many jobs to their shards with one message per shard (recovery). Jobs of one
    /// payment keep their relative order.
    pub fn enqueue_many(&self, jobs: Vec<Job>) {
        let mut per_shard: Vec<Vec<Job>> = (0..self.shards.len()).map(|_| Vec::new()).collect();
        for job in jobs {
            per_shard[self.shard_of(&job)].push(job);
        }
        for (shard, jobs) in per_shard.into_iter().enumerate() {
            if jobs.is_empty() {
                continue;
            }
            let count = jobs.len();
            let n = self.pending.fetch_add(count, Ordering::Relaxed) + count;
            metrics::pending(n);
            if self.shards[shard]
                .send(ShardMsg::EnqueueMany(jobs))
                .is_err()
            {
                self.pending.fetch_sub(count, Ordering::Relaxed);
            }
        }
    }

    /// Endpoints are hashed to shards, so an endpoint's queue and throttle live in one place.
    fn shard_of(&self, job: &Job) -> usize {
        self.shard_of_endpoint(&job.endpoint)
    }

    fn shard_of_endpoint(&self, endpoint: &str) -> usize {
        let h = xxhash_rust::xxh3::xxh3_64(endpoint.as_bytes());
        (h % self.shards.len() as u64) as usize
    }

    /// The profile named `name` in force, if configured (ingest, redeliver and recovery look
    /// envelopes' and records' profiles up here).
    pub fn profile(&self, name: &str) -> Option<Arc<Profile>> {
        self.ctx.profiles.get(name)
    }

    /// Puts `profiles` in force (SIGHUP), for new notifications and for the next attempts of
    /// queued ones alike, and releases endpoints held because a receiver refused our credentials
    /// or configuration: the reload may be the fix. Operators' holds stay.
    pub fn replace_profiles(&self, profiles: HashMap<String, Arc<Profile>>) {
        self.ctx.profiles.replace(profiles);
        for shard in self.shards.iter() {
            let _ = shard.send(ShardMsg::Reloaded);
        }
    }

    /// Holds `endpoint` (`host:port`) for an operator: no attempts, none of its notifications'
    /// attempts or deadline spent, until [`Dispatcher::resume`]. True when it was not already
    /// held by an operator; false too once the dispatcher has shut down.
    pub async fn hold(&self, endpoint: &str) -> bool {
        self.change_hold(endpoint, HoldChange::Hold).await
    }

    /// Ends a hold of `endpoint`, of either kind; its due notifications go at once. True when it
    /// was held.
    pub async fn resume(&self, endpoint: &str) -> bool {
        self.change_hold(endpoint, HoldChange::Resume).await
    }

    /// Ends an operator's hold of `endpoint` lifted on another host of a shared store; a hold
    /// this host's own answers caused stays. True when it ended one.
    pub async fn resume_operator_hold(&self, endpoint: &str) -> bool {
        self.change_hold(endpoint, HoldChange::ResumeOperatorHold)
            .await
    }

    async fn change_hold(&self, endpoint: &str, change: HoldChange) -> bool {
        let (tx, rx) = oneshot::channel();
        let shard = &self.shards[self.shard_of_endpoint(endpoint)];
        if shard
            .send(ShardMsg::Hold(endpoint.into(), change, tx))
            .is_err()
        {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    /// A throttle pause another host learned (shared store): no attempt to `endpoint` starts
    /// for `pause` from now. This host's limit for it is left as it is.
    pub fn pause(&self, endpoint: &str, pause: std::time::Duration) {
        let shard = &self.shards[self.shard_of_endpoint(endpoint)];
        let _ = shard.send(ShardMsg::Pause(endpoint.into(), pause));
    }

    /// Every endpoint the shards know, worst state first, then by name.
    pub async fn endpoints(&self) -> Vec<EndpointView> {
        let mut all = self.ask_every_shard(ShardMsg::Endpoints).await;
        all.sort_by(|a, b| a.worse_first(b));
        all
    }

    /// Sends every shard the question `ask` makes and gathers their answers, all shards asked
    /// before any is waited for. A shard gone (the daemon exiting) answers nothing.
    async fn ask_every_shard<T>(
        &self,
        ask: impl Fn(oneshot::Sender<Vec<T>>) -> ShardMsg,
    ) -> Vec<T> {
        let mut replies = Vec::with_capacity(self.shards.len());
        for shard in self.shards.iter() {
            let (tx, rx) = oneshot::channel();
            if shard.send(ask(tx)).is_ok() {
                replies.push(rx);
            }
        }
        let mut all = Vec::new();
        for rx in replies {
            all.extend(rx.await.unwrap_or_default());
        }
        all
    }

    /// The endpoints held on this host, by an operator or by answers about our side.
    pub(crate) async fn held_endpoints(&self) -> Vec<HeldEndpoint> {
        self.ask_every_shard(ShardMsg::HeldEndpoints).await
    }

    /// Every shared-store claim the shards hold: what this host must keep renewing, and nothing
    /// else (a claim it let go of must run out, so another host takes it).
    pub(crate) async fn held_leases(
        &self,
    ) -> Vec<(notifyd_core::NotificationId, crate::store::Lease)> {
        self.ask_every_shard(ShardMsg::Held).await
    }

    /// The due time of the most overdue notification not yet started, over every shard.
    pub async fn oldest_overdue(
        &self,
        _now: notifyd_core::UnixMillis,
    ) -> Option<notifyd_core::UnixMillis> {
        let mut replies = Vec::with_capacity(self.shards.len());
        for shard in self.shards.iter() {
            let (tx, rx) = oneshot::channel();
            if shard.send(ShardMsg::OldestOverdue(tx)).is_ok() {
                replies.push(rx);
            }
        }
        let mut oldest = None;
        for rx in replies {
            if let Ok(Some(due)) = rx.await {
                oldest = Some(oldest.map_or(due, |o: notifyd_core::UnixMillis| o.min(due)));
            }
        }
        oldest
    }

    /// The earlier notification of its payment that `id` (delivered to `endpoint`) waits
    /// behind, if it waits.
    pub async fn waiting_for(
        &self,
        endpoint: &str,
        id: notifyd_core::NotificationId,
    ) -> Option<notifyd_core::NotificationId> {
        let (tx, rx) = oneshot::channel();
        let shard = &self.shards[self.shard_of_endpoint(endpoint)];
        shard.send(ShardMsg::WaitingFor(id, tx)).ok()?;
        rx.await.ok().flatten()
    }

    /// Every lease this host holds on a shared store was renewed: asked at `asked`, answered
    /// at `done`.
    pub(crate) fn leases_renewed(
        &self,
        asked: notifyd_core::UnixMillis,
        done: notifyd_core::UnixMillis,
        lease: Duration,
    ) {
        self.ctx.leases.renewed(asked, done, lease);
    }

    /// Notifications accepted and not yet final.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// Stops starting attempts and waits up to `grace` for the running ones (and their store
    /// writes) to finish. Returns false when the grace period ran out first: the attempts still
    /// waiting for an answer are then abandoned; their notifications are still pending in the
    /// store and are attempted again at the next start.
    pub async fn shutdown(&self, grace: Duration) -> bool {
        self.stop.cancel();
        self.tracker.close();
        let drained = tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok();
        if !drained {
            self.abort.cancel();
            self.tracker.wait().await;
        }
        drained
    }
}
