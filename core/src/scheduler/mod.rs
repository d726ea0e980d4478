//! The delivery engine as plain state: which notification to attempt next, and what follows an
//! answer (CONTRACT.md §3, PROTOCOL.md §7 and §8).
//!
//! A [`Scheduler`] holds pending notifications with their payload `T` (whatever the caller needs
//! to send one) and is driven by calls that each take `now`; it never reads a clock, sleeps or
//! spawns. The caller's loop, in the manner of quinn-proto's `Connection`:
//!
//! 1. feed it events: [`Scheduler::enqueue`], [`Scheduler::answered`] when an attempt's answer is
//!    classified, [`Scheduler::recorded`] once the resulting state is durable, [`Scheduler::hold`]
//!    and [`Scheduler::resume`] from an operator, [`Scheduler::handle_timeout`] when
//!    [`Scheduler::poll_timeout`] has passed;
//! 2. start every attempt [`Scheduler::poll_start`] hands out;
//! 3. sleep until the next event or [`Scheduler::poll_timeout`].
//!
//! What it guarantees:
//! - **Order**: notifications with the same chain key (one payment to one host) are attempted one
//!   at a time, in enqueue order; a later one starts only after the earlier one is final.
//! - **Once**: an id it already holds is ignored by `enqueue`, so a double enqueue cannot leave a
//!   second copy behind that would block its chain.
//! - **Bounds**: per endpoint, at most its current concurrency limit in flight (additive
//!   increase, multiplicative decrease, with a short pause on a throttle: the rules are in
//!   `endpoint.rs`); in all, at most `max_in_flight` attempts started and not yet recorded.
//! - **Holds cost nothing**: while an endpoint is held its notifications spend neither attempts
//!   nor deadline; nor do they while our own side fails them ([`Ack::LocalFailure`]).
//!
//! An answer frees its endpoint slot at once, before the store write, so a slow commit never
//! holds a connection slot; the notification's next step (its retry timer, or releasing its
//! chain) waits for [`Scheduler::recorded`].

mod decision;
mod endpoint;
mod order;
mod timers;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::time::Duration;

use hashbrown::HashMap;

use crate::ack::Ack;
use crate::backoff::RetryPolicy;
use crate::{NotificationId, UnixMillis};

use decision::{Progress, decide};
use endpoint::{Admit, Endpoint};
use order::Chains;
use timers::{Timer, Timers};

pub use decision::{FIRST_LOCAL_RETRY, MAX_LOCAL_RETRY, Verdict};
pub use endpoint::{
    EndpointState, FIRST_PROBE_INTERVAL, FIRST_THROTTLE_PAUSE, HoldKind, Learned,
    MAX_PROBE_INTERVAL, MAX_RETRY_AFTER_PAUSE, MAX_THROTTLE_PAUSE,
};

/// Concurrency bounds of one scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most attempts in flight per endpoint when it is healthy (at least 1).
    pub endpoint_concurrency: usize,
    /// Most attempts started and not yet recorded, over all endpoints (at least 1).
    pub max_in_flight: usize,
}

/// A notification handed to [`Scheduler::enqueue`].
#[derive(Debug)]
pub struct Enqueue<'a, T> {
    pub id: NotificationId,
    /// `host:port`: the endpoint whose limits and holds apply.
    pub endpoint: &'a str,
    /// Order chain key: equal for notifications of one payment to one host.
    pub chain: u64,
    /// When its next attempt is due.
    pub due: UnixMillis,
    /// Attempts already spent in the current delivery.
    pub attempts: u32,
    /// When the current delivery (the first, or a redelivery) started, if it has: the retry
    /// deadline counts from here. `None` until its first attempt starts.
    pub delivery_started: Option<UnixMillis>,
    /// What the caller needs to make an attempt.
    pub payload: T,
}

/// An attempt to make now.
#[derive(Debug)]
pub struct Start<'a, T> {
    pub id: NotificationId,
    /// The probe of a held endpoint: its answer decides whether the hold ends.
    pub probe: bool,
    pub payload: &'a T,
}

/// What an answer means for its notification, for the caller to make durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    /// Attempts spent in the current delivery, this one included unless it spent none.
    pub attempts: u32,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<UnixMillis>,
    /// What the endpoint made of the answer.
    pub learned: Learned,
}

/// One endpoint as an operator sees it (`GET /v1/endpoints`, CONTRACT.md §2.1).
#[derive(Debug, Clone, Copy)]
pub struct EndpointSnapshot<'a> {
    pub endpoint: &'a str,
    pub state: EndpointState,
    pub hold: Option<HoldKind>,
    pub paused_until: Option<UnixMillis>,
    pub concurrency_limit: usize,
    pub pending: usize,
    pub in_flight: usize,
    pub last_success_at: Option<UnixMillis>,
    /// The latest answer that was not an `S`, and when it came.
    pub last_error: Option<(UnixMillis, &'a Ack)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Behind an earlier notification of its chain.
    Waiting,
    /// Head of its chain, waiting for its due time.
    Scheduled,
    /// Due, in its endpoint's ready queue.
    Ready,
    InFlight,
    /// Answered; its verdict is being made durable.
    Recording(Verdict),
}

#[derive(Debug)]
struct Entry<T> {
    payload: T,
    chain: u64,
    due: UnixMillis,
    delivery_started: Option<UnixMillis>,
    /// The endpoint's total held time when the delivery started: held time since then is not
    /// counted against the deadline.
    held_base: Duration,
    /// When its latest attempt started.
    attempt_started: UnixMillis,
    /// Set by a local failure ([`Ack::LocalFailure`]) to the start of the attempt it spoilt: the
    /// time from there to the next attempt's start is ours, not the receiver's, and is added to
    /// `lost` when that attempt starts.
    lost_since: Option<UnixMillis>,
    /// Time lost to local failures in this delivery, not counted against the deadline.
    lost: Duration,
    progress: Progress,
    endpoint: u32,
    phase: Phase,
}

/// The sans-IO delivery scheduler (see the module docs).
#[derive(Debug)]
pub struct Scheduler<T> {
    limits: Limits,
    /// Boxed: the map's slots stay small, and up to half of them are empty after it grows.
    entries: HashMap<NotificationId, Box<Entry<T>>>,
    chains: Chains,
    /// Endpoints are kept for the scheduler's lifetime: an operator lists every endpoint known,
    /// and there are as many as receivers, not as notifications.
    endpoints: Vec<Endpoint>,
    by_name: HashMap<Box<str>, u32>,
    timers: Timers,
    /// Endpoints that may be able to start an attempt, served round robin.
    runnable: VecDeque<u32>,
    /// Attempts started and not yet recorded.
    in_flight: usize,
    /// Endpoints per state, by [`EndpointState::index`].
    states: [usize; 4],
}

impl<T> Scheduler<T> {
    pub fn new(limits: Limits) -> Scheduler<T> {
        Scheduler {
            limits: Limits {
                endpoint_concurrency: limits.endpoint_concurrency.max(1),
                max_in_flight: limits.max_in_flight.max(1),
            },
            entries: HashMap::new(),
            chains: Chains::default(),
            endpoints: Vec::new(),
            by_name: HashMap::new(),
            timers: Timers::default(),
            runnable: VecDeque::new(),
            in_flight: 0,
            states: [0; 4],
        }
    }

    /// Takes a notification. False (and nothing changes) when `n.id` is already held.
    pub fn enqueue(&mut self, now: UnixMillis, n: Enqueue<'_, T>) -> bool {
        if self.entries.contains_key(&n.id) {
            return false;
        }
        let endpoint = self.endpoint_index(n.endpoint);
        let ep = &mut self.endpoints[endpoint as usize];
        ep.pending += 1;
        let held_base = ep.held_total(now);
        let head = self.chains.push(n.chain, n.id);
        self.entries.insert(
            n.id,
            Box::new(Entry {
                payload: n.payload,
                chain: n.chain,
                due: n.due,
                delivery_started: n.delivery_started,
                held_base,
                attempt_started: now,
                lost_since: None,
                lost: Duration::ZERO,
                progress: Progress {
                    attempts: n.attempts,
                    throttle_extension: None,
                    doubts: 0,
                    local_failures: 0,
                },
                endpoint,
                phase: Phase::Waiting,
            }),
        );
        if head {
            self.schedule(now, n.id);
        }
        true
    }

    /// The next attempt to start, if any may start now. Call until `None` after every event.
    pub fn poll_start(&mut self, now: UnixMillis) -> Option<Start<'_, T>> {
        while self.in_flight < self.limits.max_in_flight {
            let index = self.runnable.pop_front()?;
            let ep = &mut self.endpoints[index as usize];
            ep.listed = false;
            let Some(admit) = ep.admit(now) else {
                continue;
            };
            let id = ep.ready.pop_front()?;
            let Some(entry) = self.entries.get_mut(&id) else {
                self.touch(index, now);
                continue;
            };
            ep.in_flight += 1;
            self.in_flight += 1;
            entry.phase = Phase::InFlight;
            if entry.delivery_started.is_none() {
                entry.delivery_started = Some(now);
                entry.held_base = ep.held_total(now);
            }
            entry.attempt_started = now;
            if let Some(since) = entry.lost_since.take() {
                entry.lost += now.since(since);
            }
            if admit == Admit::Probe
                && let Some(next) = ep.probe_started(now)
            {
                self.timers.add(next, Timer::Wake(index));
            }
            self.touch(index, now);
            let entry = &self.entries[&id];
            return Some(Start {
                id,
                probe: admit == Admit::Probe,
                payload: &entry.payload,
            });
        }
        None
    }

    /// The answer to an attempt of `id`, classified: frees its endpoint slot, teaches the
    /// endpoint, and decides what follows. `policy` is the notification's retry policy as it
    /// stands now; `rand01` in `[0, 1)` drives the jitter. `None` when `id` has no attempt in
    /// flight (the answer is ignored).
    pub fn answered(
        &mut self,
        now: UnixMillis,
        id: NotificationId,
        ack: Ack,
        policy: &RetryPolicy,
        rand01: f64,
    ) -> Option<Decision> {
        let entry = self.entries.get_mut(&id)?;
        if entry.phase != Phase::InFlight {
            return None;
        }
        let index = entry.endpoint;
        let ep = &mut self.endpoints[index as usize];
        let started = entry.delivery_started.unwrap_or(now);
        let held = ep.held_total(now).saturating_sub(entry.held_base);
        let elapsed = now
            .since(started)
            .saturating_sub(held)
            .saturating_sub(entry.lost);
        if matches!(ack, Ack::LocalFailure { .. }) {
            entry.lost_since.get_or_insert(entry.attempt_started);
        }
        let next = decide(&ack, &mut entry.progress, elapsed, policy, rand01);
        if let Some(delay) = next.delay {
            entry.due = now.plus(delay);
        }
        entry.phase = Phase::Recording(next.verdict);
        let learned = ep.learn(&ack, now);
        match learned {
            Learned::Paused(pause) => self.timers.add(now.plus(pause), Timer::Wake(index)),
            Learned::Held => {
                self.timers
                    .add(now.plus(FIRST_PROBE_INTERVAL), Timer::Wake(index));
            }
            Learned::Nothing | Learned::Released => {}
        }
        if !matches!(ack, Ack::Delivered { .. }) {
            ep.last_error = Some((now, ack));
        }
        let decision = Decision {
            verdict: next.verdict,
            attempts: entry.progress.attempts,
            next_attempt_at: next.delay.map(|_| entry.due),
            learned,
        };
        self.touch(index, now);
        Some(decision)
    }

    /// The decision [`Scheduler::answered`] returned for `id` is durable. A pending notification
    /// now waits for its due time; a final one leaves, its payload is returned, and the next
    /// notification of its chain may go.
    pub fn recorded(&mut self, now: UnixMillis, id: NotificationId) -> Option<T> {
        let Phase::Recording(verdict) = self.entries.get(&id)?.phase else {
            return None;
        };
        self.in_flight -= 1;
        if !verdict.is_final() {
            self.schedule(now, id);
            return None;
        }
        self.leave(now, id)
    }

    /// The decision [`Scheduler::answered`] returned for `id` could not be written: the store
    /// says another owner (a host that took the notification over when this one's lease ran
    /// out) holds it now. It leaves as a final one would, its payload is returned, and the next
    /// notification of its chain may go: its owner's store keeps their order from here on.
    pub fn lost(&mut self, now: UnixMillis, id: NotificationId) -> Option<T> {
        if !matches!(self.entries.get(&id)?.phase, Phase::Recording(_)) {
            return None;
        }
        self.in_flight -= 1;
        self.leave(now, id)
    }

    /// `id` was handed out by [`Scheduler::poll_start`] but will not be attempted after all (a
    /// shared store's claim on it would run out before the attempt could finish): it leaves
    /// unattempted, its slots are free again, and the next of its chain may go. Its owner hands
    /// it back to the store, so this host keeps no order for it from here on (letting the next
    /// of its chain go is safe because a shared store leases a later notification of a payment
    /// only once no earlier one is queued, so a host never holds both). A withdrawn probe of a
    /// held endpoint still counts as that probe. `None` when `id` has no attempt just handed
    /// out.
    pub fn withdraw(&mut self, now: UnixMillis, id: NotificationId) -> Option<T> {
        let entry = self.entries.get(&id)?;
        if entry.phase != Phase::InFlight {
            return None;
        }
        let index = entry.endpoint;
        self.endpoints[index as usize].in_flight -= 1;
        self.in_flight -= 1;
        let payload = self.leave(now, id);
        self.touch(index, now);
        payload
    }

    /// Removes `id` for good: its endpoint counts one less, and its chain's next may go.
    fn leave(&mut self, now: UnixMillis, id: NotificationId) -> Option<T> {
        let entry = self.entries.remove(&id)?;
        self.endpoints[entry.endpoint as usize].pending -= 1;
        if let Some(next) = self.chains.finish(entry.chain, id) {
            self.schedule(now, next);
        }
        Some(entry.payload)
    }

    /// Fires the timers due at `now`: notifications come due, paused endpoints wake up.
    pub fn handle_timeout(&mut self, now: UnixMillis) {
        while let Some(timer) = self.timers.pop_due(now) {
            match timer {
                Timer::Due(id) => {
                    if self
                        .entries
                        .get(&id)
                        .is_some_and(|e| e.phase == Phase::Scheduled)
                    {
                        self.make_ready(now, id);
                    }
                }
                Timer::Wake(index) => self.touch(index, now),
            }
        }
    }

    /// When [`Scheduler::handle_timeout`] has something to do next.
    pub fn poll_timeout(&self) -> Option<UnixMillis> {
        self.timers.next()
    }

    /// An operator's hold: no attempts to `endpoint` until [`Scheduler::resume`]. Works for an
    /// endpoint with nothing queued yet. True when it was not held by an operator already.
    pub fn hold(&mut self, now: UnixMillis, endpoint: &str) -> bool {
        let index = self.endpoint_index(endpoint);
        let ep = &mut self.endpoints[index as usize];
        let was = ep.hold_kind();
        ep.hold(HoldKind::Operator, now);
        self.touch(index, now);
        was != Some(HoldKind::Operator)
    }

    /// A throttle pause learned elsewhere (another host sharing the store was throttled by this
    /// endpoint): no attempt to it starts before `until`. The limit is not touched: each host
    /// learns its own from its own answers. True when it extended the endpoint's pause.
    pub fn pause(&mut self, now: UnixMillis, endpoint: &str, until: UnixMillis) -> bool {
        if until <= now {
            return false;
        }
        let index = self.endpoint_index(endpoint);
        if !self.endpoints[index as usize].pause_until(until) {
            return false;
        }
        self.timers.add(until, Timer::Wake(index));
        self.touch(index, now);
        true
    }

    /// Ends a hold of either kind; due notifications may go at once. True when it was held.
    pub fn resume(&mut self, now: UnixMillis, endpoint: &str) -> bool {
        let Some(&index) = self.by_name.get(endpoint) else {
            return false;
        };
        let released = self.endpoints[index as usize].release(now);
        self.touch(index, now);
        released
    }

    /// Ends an operator's hold only (one lifted on another host sharing the store): a hold this
    /// host's own answers caused stays, with its probes. True when it ended one.
    pub fn resume_operator_hold(&mut self, now: UnixMillis, endpoint: &str) -> bool {
        let Some(&index) = self.by_name.get(endpoint) else {
            return false;
        };
        let ep = &mut self.endpoints[index as usize];
        if ep.hold_kind() != Some(HoldKind::Operator) || !ep.release(now) {
            return false;
        }
        self.touch(index, now);
        true
    }

    /// Ends every hold caused by an answer about our side (a configuration reload may have fixed
    /// what the receiver refused); operators' holds stay. Returns how many ended.
    pub fn release_our_side_holds(&mut self, now: UnixMillis) -> usize {
        let mut released = 0;
        for index in 0..self.endpoints.len() as u32 {
            let ep = &mut self.endpoints[index as usize];
            if ep.hold_kind() == Some(HoldKind::OurSide) && ep.release(now) {
                released += 1;
                self.touch(index, now);
            }
        }
        released
    }

    /// Every notification it holds, in no order.
    pub fn payloads(&self) -> impl Iterator<Item = (NotificationId, &T)> {
        self.entries.iter().map(|(id, e)| (*id, &e.payload))
    }

    /// The payload of a notification it holds.
    pub fn payload_mut(&mut self, id: NotificationId) -> Option<&mut T> {
        self.entries.get_mut(&id).map(|e| &mut e.payload)
    }

    /// The endpoint of a notification it holds.
    pub fn endpoint_of(&self, id: NotificationId) -> Option<&str> {
        let entry = self.entries.get(&id)?;
        Some(&self.endpoints[entry.endpoint as usize].name)
    }

    /// The earlier notification `id` waits behind, when it waits for its chain.
    pub fn waiting_for(&self, id: NotificationId) -> Option<NotificationId> {
        let entry = self.entries.get(&id)?;
        self.chains.waiting_for(entry.chain, id)
    }

    /// The due time of the most overdue notification not yet started, if one is overdue at `now`
    /// (`notifyd_oldest_overdue_seconds`). O(endpoints): each endpoint's ready queue is in the
    /// order its notifications came due, so its front is its oldest; a due timer not yet
    /// handled counts too. A paused or held endpoint's queue is exactly what this should show.
    pub fn oldest_overdue(&self, now: UnixMillis) -> Option<UnixMillis> {
        let ready = self.endpoints.iter().filter_map(|ep| {
            let id = ep.ready.front()?;
            let e = self.entries.get(id)?;
            (e.phase == Phase::Ready).then_some(e.due)
        });
        let timer = self.timers.next().filter(|t| *t <= now);
        ready.chain(timer).filter(|t| *t <= now).min()
    }

    /// Notifications held (pending, in flight or being recorded).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when it holds no notification.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Attempts started and not yet recorded.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// How many endpoints are in each state, indexed by [`EndpointState::index`]. Exact as of
    /// the last call that took `now`.
    pub fn endpoint_states(&self) -> [usize; 4] {
        self.states
    }

    /// Every endpoint it knows, in the order it learnt of them.
    pub fn endpoints(&self, now: UnixMillis) -> impl Iterator<Item = EndpointSnapshot<'_>> {
        self.endpoints.iter().map(move |ep| EndpointSnapshot {
            endpoint: &ep.name,
            state: ep.state(now),
            hold: ep.hold_kind(),
            paused_until: ep.paused_until(now),
            concurrency_limit: ep.limit(),
            pending: ep.pending,
            in_flight: ep.in_flight,
            last_success_at: ep.last_success_at,
            last_error: ep.last_error.as_ref().map(|(at, ack)| (*at, ack)),
        })
    }

    fn endpoint_index(&mut self, name: &str) -> u32 {
        if let Some(&index) = self.by_name.get(name) {
            return index;
        }
        let index = u32::try_from(self.endpoints.len()).expect("fewer than 2^32 endpoints");
        self.endpoints
            .push(Endpoint::new(name, self.limits.endpoint_concurrency));
        self.by_name.insert(name.into(), index);
        self.states[EndpointState::Ok.index()] += 1;
        index
    }

    /// The head of a chain (or a notification back from recording) waits for its due time.
    fn schedule(&mut self, now: UnixMillis, id: NotificationId) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        if entry.due > now {
            entry.phase = Phase::Scheduled;
            self.timers.add(entry.due, Timer::Due(id));
        } else {
            // Already due (most of a backlog after a restart): no timer round trip.
            self.make_ready(now, id);
        }
    }

    fn make_ready(&mut self, now: UnixMillis, id: NotificationId) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        entry.phase = Phase::Ready;
        let index = entry.endpoint;
        self.endpoints[index as usize].ready.push_back(id);
        self.touch(index, now);
    }

    /// Something changed at endpoint `index`: recount its state and queue it if it may start.
    fn touch(&mut self, index: u32, now: UnixMillis) {
        let ep = &mut self.endpoints[index as usize];
        let state = ep.state(now);
        if state != ep.counted {
            self.states[ep.counted.index()] -= 1;
            self.states[state.index()] += 1;
            ep.counted = state;
        }
        if !ep.listed && ep.admit(now).is_some() {
            ep.listed = true;
            self.runnable.push_back(index);
        }
    }
}
