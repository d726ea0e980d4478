//! One shard: the single owner of its endpoints' queues, per-payment order and timers.
//!
//! Life of a notification in a shard: it joins the back of its payment's order queue; when it is
//! the head it gets a timer for its due time; when the timer fires it joins its endpoint's ready
//! queue; when the endpoint has a free slot (and is not paused) an attempt task starts; the
//! attempt reports back with the next due time (timer again) or a final state (the next
//! notification of the same payment becomes the head).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use notifyd_core::{NotificationId, UnixMillis};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::attempt::{self, AttemptCtx, Done};
use super::endpoint::{Endpoint, Signal};
use super::interner::Interner;
use super::job::Job;
use super::order::PaymentOrder;
use crate::metrics;

pub(super) enum ShardMsg {
    Enqueue(Job),
    /// Many at once (recovery), in order.
    EnqueueMany(Vec<Job>),
    /// The receiver answered (the endpoint's slot is free), and what that says of its health.
    Answered(Arc<str>, Signal),
    /// The outcome is durable.
    Done(Box<Done>),
}

#[derive(Debug, Clone)]
enum Timer {
    Due(NotificationId),
    Wake(Arc<str>),
}

pub(super) struct Shard {
    rx: mpsc::UnboundedReceiver<ShardMsg>,
    tx: mpsc::UnboundedSender<ShardMsg>,
    ctx: Arc<AttemptCtx>,
    tracker: TaskTracker,
    stop: CancellationToken,
    pending: Arc<AtomicUsize>,
    endpoint_concurrency: usize,
    max_in_flight: usize,
    in_flight: usize,
    /// Boxed: the map's slots stay small, and up to half of them are empty after it grows.
    jobs: HashMap<NotificationId, Box<Job>, Fast>,
    order: PaymentOrder,
    strings: Interner,
    endpoints: HashMap<Arc<str>, Endpoint, Fast>,
    timers: BTreeMap<(UnixMillis, u64), Timer>,
    timer_seq: u64,
    /// Endpoints with ready work that could not start because the shard was at its cap.
    starved: HashSet<Arc<str>, Fast>,
    stopping: bool,
}

/// The shard's maps are keyed by ids and endpoints it picked itself, not by anything an attacker
/// chooses freely enough to flood one bucket, so a fast hasher is enough.
type Fast = foldhash::fast::RandomState;

pub(super) struct ShardParts {
    pub ctx: Arc<AttemptCtx>,
    pub tracker: TaskTracker,
    pub stop: CancellationToken,
    pub pending: Arc<AtomicUsize>,
    pub endpoint_concurrency: usize,
    pub max_in_flight: usize,
}

impl Shard {
    pub fn spawn(parts: ShardParts) -> mpsc::UnboundedSender<ShardMsg> {
        let (tx, rx) = mpsc::unbounded_channel();
        let shard = Shard {
            rx,
            tx: tx.clone(),
            ctx: parts.ctx,
            tracker: parts.tracker,
            stop: parts.stop,
            pending: parts.pending,
            endpoint_concurrency: parts.endpoint_concurrency,
            max_in_flight: parts.max_in_flight.max(1),
            in_flight: 0,
            jobs: HashMap::default(),
            order: PaymentOrder::default(),
            strings: Interner::default(),
            endpoints: HashMap::default(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            starved: HashSet::default(),
            stopping: false,
        };
        tokio::spawn(shard.run());
        tx
    }

    async fn run(mut self) {
        loop {
            if self.stopping && (self.in_flight == 0 || self.ctx.abort.is_cancelled()) {
                // Everything left is pending in the store; the next start picks it up.
                return;
            }
            let next_timer = self
                .timers
                .keys()
                .next()
                .map(|(due, _)| self.ctx.clock.instant_at(*due));
            tokio::select! {
                msg = self.rx.recv() => match msg {
                    Some(ShardMsg::Enqueue(job)) => self.enqueue(job),
                    Some(ShardMsg::EnqueueMany(jobs)) => jobs.into_iter().for_each(|j| self.enqueue(j)),
                    Some(ShardMsg::Answered(ep, signal)) => self.answered(&ep, signal),
                    Some(ShardMsg::Done(done)) => self.done(*done),
                    None => return,
                },
                () = async { tokio::time::sleep_until(next_timer.unwrap_or_else(tokio::time::Instant::now)).await },
                    if next_timer.is_some() => self.fire_timers(),
                () = self.stop.cancelled(), if !self.stopping => {
                    // Stop starting attempts; the ones running finish and report here.
                    self.stopping = true;
                }
                // The grace period ran out: the attempts still running were abandoned.
                () = self.ctx.abort.cancelled(), if self.stopping => return,
            }
        }
    }

    fn enqueue(&mut self, mut job: Job) {
        job.url = self.strings.intern(&job.url);
        job.endpoint = self.strings.intern(&job.endpoint);
        let is_head = self.order.push(job.order, job.id);
        let (id, due) = (job.id, job.due);
        let endpoint = job.endpoint.clone();
        self.jobs.insert(id, Box::new(job));
        if !is_head {
            return;
        }
        if due > self.ctx.clock.now() {
            self.add_timer(due, Timer::Due(id));
            return;
        }
        // Already due (most of a backlog after a restart): straight to the endpoint's queue,
        // without a timer round trip.
        self.make_ready(endpoint.clone(), id);
        self.dispatch(&endpoint);
    }

    fn make_ready(&mut self, endpoint: Arc<str>, id: NotificationId) {
        let cap = self.endpoint_concurrency;
        self.endpoints
            .entry(endpoint)
            .or_insert_with(|| Endpoint::new(cap))
            .ready
            .push_back(id);
    }

    fn add_timer(&mut self, due: UnixMillis, t: Timer) {
        self.timer_seq += 1;
        self.timers.insert((due, self.timer_seq), t);
    }

    fn fire_timers(&mut self) {
        let now = self.ctx.clock.now();
        let mut touched = Vec::new();
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            match entry.remove() {
                Timer::Due(id) => {
                    if let Some(ep) = self.jobs.get(&id).map(|j| j.endpoint.clone()) {
                        self.make_ready(ep.clone(), id);
                        touched.push(ep);
                    }
                }
                Timer::Wake(ep) => touched.push(ep),
            }
        }
        for ep in touched {
            self.dispatch(&ep);
        }
    }

    fn dispatch(&mut self, key: &Arc<str>) {
        if self.stopping {
            return;
        }
        let now = tokio::time::Instant::now();
        let Some(ep) = self.endpoints.get_mut(key) else {
            return;
        };
        while ep.can_start(now) {
            if self.in_flight >= self.max_in_flight {
                self.starved.insert(key.clone());
                return;
            }
            let Some(id) = ep.ready.pop_front() else {
                break;
            };
            let Some(job) = self.jobs.get(&id).map(|j| Job::clone(j)) else {
                continue;
            };
            ep.in_flight += 1;
            self.in_flight += 1;
            metrics::in_flight(1.0);
            let ctx = self.ctx.clone();
            let tx = self.tx.clone();
            let endpoint = key.clone();
            self.tracker.spawn(async move {
                let answered_tx = tx.clone();
                let answered = move |signal| {
                    let _ = answered_tx.send(ShardMsg::Answered(endpoint, signal));
                };
                if let Some(done) = attempt::run(job, ctx, answered).await {
                    // The shard is gone only when the daemon is exiting; the outcome is in the store.
                    let _ = tx.send(ShardMsg::Done(Box::new(done)));
                }
            });
        }
    }

    /// An answer came: free the endpoint's slot, adjust its limit, start what is ready.
    fn answered(&mut self, key: &Arc<str>, signal: Signal) {
        metrics::in_flight(-1.0);
        if let Some(ep) = self.endpoints.get_mut(key) {
            ep.in_flight -= 1;
            match signal {
                Signal::Throttle(delay) => {
                    let until = self.ctx.clock.now().plus(delay);
                    ep.throttle(self.ctx.clock.instant_at(until));
                    self.add_timer(until, Timer::Wake(key.clone()));
                }
                Signal::Unhealthy => ep.unhealthy(),
                Signal::Healthy => ep.answered(),
            }
        }
        self.dispatch(key);
        if self.endpoints.get(key).is_some_and(Endpoint::is_idle) {
            self.endpoints.remove(key);
        }
    }

    /// The outcome is durable: finish the notification or schedule its retry.
    fn done(&mut self, done: Done) {
        self.in_flight -= 1;
        let Done { job, finished } = done;
        match finished {
            Some(_) => {
                self.jobs.remove(&job.id);
                let remaining = self
                    .pending
                    .fetch_sub(1, Ordering::Relaxed)
                    .saturating_sub(1);
                metrics::pending(remaining);
                self.release_order(&job);
            }
            None => {
                self.add_timer(job.due, Timer::Due(job.id));
                self.jobs.insert(job.id, Box::new(job));
            }
        }
        if self.in_flight < self.max_in_flight && !self.starved.is_empty() {
            for ep in std::mem::take(&mut self.starved) {
                self.dispatch(&ep);
            }
        }
    }

    /// A notification is final: the next one of the same payment becomes the head.
    fn release_order(&mut self, job: &Job) {
        if let Some(next) = self.order.finish(job.order, job.id)
            && let Some(due) = self.jobs.get(&next).map(|j| j.due)
        {
            self.add_timer(due, Timer::Due(next));
        }
    }
}
