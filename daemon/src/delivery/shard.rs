//! One shard: a task that drives its endpoints' [`Scheduler`] and does the I/O it asks for.
//!
//! The scheduler (core) decides everything: per-payment order, due times, endpoint limits,
//! pauses and holds, and what follows each answer. The shard feeds it events with the time,
//! spawns the attempts it hands out, writes each decision to the store, and sleeps until the
//! next message or the scheduler's next timer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use notifyd_core::NotificationId;
use notifyd_core::ack::{Ack, known_code};
use notifyd_core::scheduler::{
    Decision, EndpointState, Enqueue, HoldKind, Learned, Limits, Scheduler, Verdict,
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::ack_ratio::AckRatios;
use super::attempt::{self, Answered, AttemptCtx};
use super::dead_letter;
use super::interner::Interner;
use super::job::{Job, Payload};
use super::report::{EndpointView, Report};
use crate::metrics;
use crate::store::{Applied, AttemptUpdate, Lease, State, StoreMode};

pub(super) enum ShardMsg {
    Enqueue(Job),
    /// Many at once (recovery), in order.
    EnqueueMany(Vec<Job>),
    /// An attempt's answer (its endpoint slot is free).
    Answered(Box<Answered>),
    /// The decision on this notification's answer is durable.
    Recorded(NotificationId),
    /// The store refused the decision: another host's lease took this notification over.
    Lost(NotificationId),
    /// An operator's hold or resume of an endpoint; answers whether it changed.
    Hold(Box<str>, HoldChange, oneshot::Sender<bool>),
    /// A throttle pause another host learned (shared store), lasting this long from now.
    Pause(Box<str>, std::time::Duration),
    /// A configuration reload: holds caused by answers about our side end.
    Reloaded,
    /// Every endpoint of this shard, for `GET /v1/endpoints`.
    Endpoints(oneshot::Sender<Vec<EndpointView>>),
    /// The due time of this shard's most overdue notification, for the metric.
    OldestOverdue(oneshot::Sender<Option<notifyd_core::UnixMillis>>),
    /// The earlier notification this one waits behind, for `waitingFor`.
    WaitingFor(NotificationId, oneshot::Sender<Option<NotificationId>>),
    /// The endpoints held here, each with how many notifications wait at it (what the claimer
    /// must not claim, nor count against its room) and whether an operator holds it.
    HeldEndpoints(oneshot::Sender<Vec<HeldEndpoint>>),
    /// Every shared-store claim this shard holds, to renew.
    Held(oneshot::Sender<Vec<(NotificationId, Lease)>>),
}

/// An endpoint held on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeldEndpoint {
    pub(crate) endpoint: String,
    /// Notifications waiting at it.
    pub(crate) waiting: usize,
    /// Held by an operator (else by this host's answers about our side).
    pub(crate) by_operator: bool,
}

/// What an operator asked of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HoldChange {
    Hold,
    /// Ends a hold of either kind (the operator asked this host).
    Resume,
    /// Ends an operator's hold only (lifted on another host of a shared store): an endpoint
    /// held only by this host's answers stays held. (An operator's hold replaced such a hold,
    /// so its end ends both; the next refused attempt holds the endpoint again.)
    ResumeOperatorHold,
}

pub(super) struct Shard {
    rx: mpsc::UnboundedReceiver<ShardMsg>,
    tx: mpsc::UnboundedSender<ShardMsg>,
    ctx: Arc<AttemptCtx>,
    tracker: TaskTracker,
    stop: CancellationToken,
    pending: Arc<AtomicUsize>,
    sched: Scheduler<Payload>,
    strings: Interner,
    ack_ratios: AckRatios,
    /// Endpoints per state as last added to the `notifyd_endpoints` gauge.
    reported: [usize; 4],
    stopping: bool,
}

pub(super) struct ShardParts {
    pub ctx: Arc<AttemptCtx>,
    pub tracker: TaskTracker,
    pub stop: CancellationToken,
    pub pending: Arc<AtomicUsize>,
    pub limits: Limits,
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
            sched: Scheduler::new(parts.limits),
            strings: Interner::default(),
            ack_ratios: AckRatios::default(),
            reported: [0; 4],
            stopping: false,
        };
        tokio::spawn(shard.run());
        tx
    }

    async fn run(mut self) {
        loop {
            if self.stopping && (self.sched.in_flight() == 0 || self.ctx.abort.is_cancelled()) {
                // Everything left is pending in the store; the next start picks it up.
                return;
            }
            let next_timer = self
                .sched
                .poll_timeout()
                .map(|t| self.ctx.clock.instant_at(t));
            tokio::select! {
                msg = self.rx.recv() => match msg {
                    Some(msg) => self.handle(msg),
                    None => return,
                },
                () = async { tokio::time::sleep_until(next_timer.unwrap_or_else(tokio::time::Instant::now)).await },
                    if next_timer.is_some() => self.sched.handle_timeout(self.ctx.clock.now()),
                () = self.stop.cancelled(), if !self.stopping => {
                    // Stop starting attempts; the ones running finish and report here.
                    self.stopping = true;
                }
                // The grace period ran out: the attempts still running were abandoned.
                () = self.ctx.abort.cancelled(), if self.stopping => return,
            }
            self.start_attempts();
            self.report_states();
        }
    }

    fn handle(&mut self, msg: ShardMsg) {
        match msg {
            ShardMsg::Enqueue(job) => self.enqueue(job),
            ShardMsg::EnqueueMany(jobs) => jobs.into_iter().for_each(|j| self.enqueue(j)),
            ShardMsg::Answered(answered) => self.answered(*answered),
            ShardMsg::Recorded(id) => self.recorded(id),
            ShardMsg::Lost(id) => self.lost(id),
            ShardMsg::Hold(endpoint, change, reply) => {
                let now = self.ctx.clock.now();
                let changed = match change {
                    HoldChange::Hold => self.sched.hold(now, &endpoint),
                    HoldChange::Resume => self.sched.resume(now, &endpoint),
                    HoldChange::ResumeOperatorHold => {
                        self.sched.resume_operator_hold(now, &endpoint)
                    }
                };
                if changed {
                    let verb = match change {
                        HoldChange::Hold => "held",
                        HoldChange::Resume | HoldChange::ResumeOperatorHold => "resumed",
                    };
                    tracing::warn!(endpoint = %endpoint, "Endpoint {verb} by an operator.");
                }
                let _ = reply.send(changed);
            }
            ShardMsg::Pause(endpoint, pause) => {
                let now = self.ctx.clock.now();
                self.sched.pause(now, &endpoint, now.plus(pause));
            }
            ShardMsg::Reloaded => {
                let released = self.sched.release_our_side_holds(self.ctx.clock.now());
                if released > 0 {
                    tracing::info!(
                        endpoints = released,
                        "Configuration reloaded; held endpoints released."
                    );
                }
            }
            ShardMsg::Endpoints(reply) => {
                let now = self.ctx.clock.now();
                let ratios = &self.ack_ratios;
                let views = self.sched.endpoints(now).map(|s| {
                    let ratio = ratios.ratio(s.endpoint, now);
                    EndpointView {
                        ack_ratio_15m: ratio,
                        ..EndpointView::from(s)
                    }
                });
                let _ = reply.send(views.collect());
            }
            ShardMsg::HeldEndpoints(reply) => {
                let held = if self.sched.endpoint_states()[EndpointState::Held.index()] == 0 {
                    Vec::new()
                } else {
                    let now = self.ctx.clock.now();
                    self.sched
                        .endpoints(now)
                        .filter_map(|e| {
                            Some(HeldEndpoint {
                                endpoint: e.endpoint.into(),
                                waiting: e.pending,
                                by_operator: e.hold? == HoldKind::Operator,
                            })
                        })
                        .collect()
                };
                let _ = reply.send(held);
            }
            ShardMsg::OldestOverdue(reply) => {
                let _ = reply.send(self.sched.oldest_overdue(self.ctx.clock.now()));
            }
            ShardMsg::WaitingFor(id, reply) => {
                let _ = reply.send(self.sched.waiting_for(id));
            }
            ShardMsg::Held(reply) => {
                let held = self
                    .sched
                    .payloads()
                    .filter(|(_, p)| p.lease != Lease::LOCAL)
                    .map(|(id, p)| (id, p.lease));
                let _ = reply.send(held.collect());
            }
        }
    }

    fn enqueue(&mut self, job: Job) {
        let Job {
            id,
            endpoint,
            order,
            attempts,
            delivery_started,
            due,
            mut payload,
        } = job;
        payload.url = self.strings.intern(&payload.url);
        let now = self.ctx.clock.now();
        payload.held_since = now;
        let (lease, leased_at) = (payload.lease, payload.leased_at);
        let fresh = self.sched.enqueue(
            now,
            Enqueue {
                id,
                endpoint: &endpoint,
                chain: order,
                due,
                attempts,
                delivery_started,
                payload,
            },
        );
        if !fresh {
            // This host's own claim granted again (its earlier one lapsed while the job waited
            // here, e.g. after a stall): the newer token is the one the store now fences by.
            if let Some(held) = self.sched.payload_mut(id)
                && held.lease.owner == lease.owner
                && held.lease.token < lease.token
            {
                held.lease = lease;
                held.leased_at = leased_at;
            }
            // Already here (an enqueue racing recovery): it was counted once already.
            let remaining = self
                .pending
                .fetch_sub(1, Ordering::Relaxed)
                .saturating_sub(1);
            metrics::pending(remaining);
        }
    }

    fn start_attempts(&mut self) {
        if self.stopping {
            return;
        }
        let now = self.ctx.clock.now();
        let lease = match self.ctx.store.mode() {
            StoreMode::Shared { lease, .. } => Some(lease),
            StoreMode::Local => None,
        };
        let mut late = Vec::new();
        while let Some(start) = self.sched.poll_start(now) {
            let (id, payload) = (start.id, start.payload.clone());
            if let Some(lease) = lease
                && !self.in_term(&payload, now, lease)
            {
                self.sched.withdraw(now, id);
                late.push((id, payload.lease));
                continue;
            }
            metrics::in_flight(1.0);
            let ctx = self.ctx.clone();
            let report = Report::new(self.tx.clone(), id);
            self.tracker.spawn(async move {
                match attempt::run(id, payload, &ctx).await {
                    Some(answered) => report.answered(answered),
                    None => report.abandoned(),
                }
            });
        }
        if !late.is_empty() {
            self.give_back(late);
        }
    }

    /// Whether an attempt of `p` started `now` would end, outcome written, inside the claim
    /// this host holds on it: a stalled host (stopped, starved, or cut off from the database
    /// so its renewals failed) must not send what another host may be sending already.
    fn in_term(&self, p: &Payload, now: notifyd_core::UnixMillis, lease: Duration) -> bool {
        let timeout = self
            .ctx
            .profiles
            .get(&p.profile.name)
            .map_or(p.profile.attempt_timeout, |current| current.attempt_timeout);
        self.ctx
            .leases
            .may_start(now, p.leased_at, p.held_since, lease, timeout)
    }

    /// Hands back claims too close to their end to attempt under: the store makes them due
    /// again, and whichever host claims them next (this one too) holds a fresh lease. If the
    /// release is lost, the lease runs out instead; either way nothing is left behind.
    fn give_back(&mut self, late: Vec<(NotificationId, Lease)>) {
        let remaining = self
            .pending
            .fetch_sub(late.len(), Ordering::Relaxed)
            .saturating_sub(late.len());
        metrics::pending(remaining);
        tracing::warn!(
            notifications = late.len(),
            "Claims too close to their end to attempt under (leases not renewed in time); handed back unattempted."
        );
        let store = self.ctx.store.clone();
        self.tracker.spawn(async move {
            if let Err(e) = store.release(late).await {
                tracing::warn!(error = %e, "Handing back claims failed; they return when their leases run out.");
            }
        });
    }

    /// An answer came: let the scheduler decide, then make the decision durable.
    fn answered(&mut self, a: Answered) {
        metrics::in_flight(-1.0);
        let now = self.ctx.clock.now();
        let Answered {
            id,
            ack,
            mut text,
            profile,
            log,
            receiver_ids,
        } = a;
        let log = log.unwrap_or_else(|| super::attempt_log::lost(id, now));
        let Some(p) = self.sched.payload_mut(id) else {
            return;
        };
        if let Some(profile) = profile {
            p.profile = profile;
        }
        let (api, accepted_at, profile, lease, hook) =
            (p.api, p.accepted_at, p.profile.clone(), p.lease, p.hook);
        let note = Note::of(&ack);
        let acked = matches!(ack, Ack::Delivered { .. });
        let Some(d) = self
            .sched
            .answered(now, id, ack, &profile.retry, rand::random())
        else {
            return;
        };
        let endpoint = self.sched.endpoint_of(id).unwrap_or_default();
        self.ack_ratios.record(endpoint, now, acked);
        if let Learned::Paused(pause) = d.learned {
            self.share_pause(endpoint, pause);
        }
        note.log(id, api, endpoint, &d, &mut text);
        let state = match d.verdict {
            Verdict::Pending => State::Pending,
            Verdict::Delivered => State::Delivered,
            Verdict::Failed => State::Failed,
            Verdict::Dead => State::Dead,
        };
        let finished = d.verdict.is_final();
        let update = AttemptUpdate {
            id,
            lease,
            state,
            attempts: d.attempts,
            last_result: Some(text),
            next_attempt_at: d.next_attempt_at,
            finished_at: finished.then_some(now),
            receiver_ids,
        };
        // A delivery ending dead or failed is reported to the profile's operator URL, unless it
        // is itself such a report.
        let hook_url = match state {
            State::Dead | State::Failed if !hook => profile.dead_letter_url.clone(),
            _ => None,
        };
        let (ctx, tx) = (self.ctx.clone(), self.tx.clone());
        self.tracker.spawn(async move {
            let written = match hook_url {
                Some(url) => dead_letter::record(&ctx, update, log, &profile, &url).await,
                None => attempt::record(&ctx, update, log, Vec::new()).await,
            };
            let msg = match written {
                Some(Applied::LeaseLost) => {
                    // Another host holds it now and makes the attempt again; its outcome, and
                    // the final-state metric, are that host's.
                    tracing::warn!(id = %id, "Lost the lease of a notification mid-attempt; another host delivers it.");
                    metrics::lease_lost();
                    ShardMsg::Lost(id)
                }
                written => {
                    // Not written: the store still says pending and the next start attempts it
                    // again, so it is counted as finished then. Memory follows the decision.
                    if written.is_some() && finished {
                        if hook {
                            metrics::dead_letter_hook(state.as_str());
                        } else {
                            metrics::finished(api, state.as_str(), now.since(accepted_at));
                            if state == State::Delivered {
                                ctx.tally.delivered();
                            }
                        }
                    }
                    ShardMsg::Recorded(id)
                }
            };
            // The shard is gone only when the daemon is exiting; the outcome is in the store.
            let _ = tx.send(msg);
        });
    }

    /// Records a throttle pause for the other hosts of a shared store (a no-op on the embedded
    /// one). Best effort: a pause that cannot be written only means the others learn it from
    /// their own throttle answers.
    fn share_pause(&self, endpoint: &str, pause: std::time::Duration) {
        if !matches!(self.ctx.store.mode(), StoreMode::Shared { .. }) {
            return;
        }
        let write = self.ctx.store.pause_endpoint(endpoint, pause);
        let endpoint = endpoint.to_owned();
        self.tracker.spawn(async move {
            if let Err(e) = write.await {
                tracing::warn!(%endpoint, error = %e, "Could not share an endpoint's throttle pause with the other hosts.");
            }
        });
    }

    fn lost(&mut self, id: NotificationId) {
        if self.sched.lost(self.ctx.clock.now(), id).is_some() {
            let remaining = self
                .pending
                .fetch_sub(1, Ordering::Relaxed)
                .saturating_sub(1);
            metrics::pending(remaining);
        }
    }

    fn recorded(&mut self, id: NotificationId) {
        if self.sched.recorded(self.ctx.clock.now(), id).is_some() {
            let remaining = self
                .pending
                .fetch_sub(1, Ordering::Relaxed)
                .saturating_sub(1);
            metrics::pending(remaining);
        }
    }

    /// Moves the `notifyd_endpoints` gauge by what changed since the last report.
    fn report_states(&mut self) {
        let now = self.sched.endpoint_states();
        if now == self.reported {
            return;
        }
        for state in EndpointState::ALL {
            let i = state.index();
            let delta = now[i] as f64 - self.reported[i] as f64;
            if delta != 0.0 {
                metrics::endpoints(state.as_str(), delta);
            }
        }
        self.reported = now;
    }
}

/// What of an answer is worth a log line once the scheduler has decided, kept before the
/// answer moves into the scheduler.
enum Note {
    Unexpected(String),
    Refused { code: String, our_side: bool },
    Other,
}

impl Note {
    fn of(ack: &Ack) -> Note {
        match ack {
            Ack::Delivered {
                code,
                unexpected_code: true,
            } => Note::Unexpected(code.clone()),
            Ack::Failed { code, .. } | Ack::Doubtful { code, .. } => Note::Refused {
                code: code.clone(),
                our_side: false,
            },
            Ack::OurSide { code, .. } => Note::Refused {
                code: code.clone(),
                our_side: true,
            },
            _ => Note::Other,
        }
    }

    /// Logs what the decision made of the answer, and completes its `lastResult` text.
    fn log(
        &self,
        id: NotificationId,
        api: notifyd_core::Api,
        endpoint: &str,
        d: &Decision,
        text: &mut String,
    ) {
        match d.learned {
            Learned::Held => {
                if let Note::Refused { code, .. } = self {
                    tracing::warn!(%endpoint, %code, "Endpoint held: the receiver refused our credentials or configuration. Its notifications wait without spending attempts; one is sent now and then as a probe, and SIGHUP or POST /v1/endpoints/{{endpoint}}/resume releases it.");
                }
            }
            Learned::Released => {
                tracing::info!(%endpoint, "Endpoint released: the receiver accepts our requests again.");
            }
            Learned::Paused(_) | Learned::Nothing => {}
        }
        match (self, d.verdict) {
            (Note::Refused { our_side: true, .. }, _) => {
                text.push_str(" (endpoint held; attempt not counted)");
            }
            (Note::Refused { .. }, Verdict::Pending) => {
                text.push_str(" (may be transient; retrying)")
            }
            (Note::Refused { code, .. }, Verdict::Failed) => {
                // A code the API's tables do not list points at a receiver built from the wrong page.
                let listed = known_code(api, code).is_some_and(|c| !c.unexpected);
                tracing::warn!(%id, %api, %code, listed, "Receiver refused the notification for good.");
            }
            (Note::Unexpected(code), Verdict::Delivered) => {
                tracing::warn!(%id, %code, "Delivered with an unexpected result code.");
            }
            (_, Verdict::Dead) => {
                tracing::warn!(%id, %api, attempts = d.attempts, "Retries exhausted; notification is dead.");
            }
            _ => {}
        }
    }
}
