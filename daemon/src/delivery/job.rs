//! A notification as delivery takes it, and the part of it an attempt needs.

use std::sync::Arc;

use bytes::Bytes;
use notifyd_core::{Api, NotificationId, UnixMillis};

use crate::profile::Profile;
use crate::store::{Lease, NotificationRecord};

/// A pending notification handed to the dispatcher (ingest, redeliver and recovery).
#[derive(Debug, Clone)]
pub struct Job {
    /// The notification's id.
    pub id: NotificationId,
    /// `host:port`: the shard and the scheduler's endpoint.
    pub endpoint: Arc<str>,
    /// Hash of the per-payment order key (`endpoint|payment`). A hash instead of the string
    /// saves an allocation per pending notification; two payments whose keys collide (about
    /// one chance in 10^13 among a million pending) are merely delivered one after the other.
    pub order: u64,
    /// Attempts already spent in the current delivery.
    pub attempts: u32,
    /// When the current delivery started, if it has; the retry deadline counts from here.
    pub delivery_started: Option<UnixMillis>,
    /// When the next attempt is due.
    pub due: UnixMillis,
    /// What each attempt sends.
    pub payload: Payload,
}

/// What an attempt needs, cheap to clone (shared buffers).
#[derive(Debug, Clone)]
pub struct Payload {
    /// Its API (metric label, signing path).
    pub api: Api,
    /// The profile of its latest attempt: an attempt looks the profile up by name first, so a
    /// reload applies to the next attempt, and a profile a reload removed keeps this version for
    /// what it already accepted.
    pub profile: Arc<Profile>,
    /// Target URL.
    pub url: Arc<str>,
    /// The canonical bytes, identical on every attempt.
    pub body: Bytes,
    /// When it was accepted (latency metric).
    pub accepted_at: UnixMillis,
    /// The claim its outcome writes complete ([`Lease::LOCAL`] on the embedded store).
    pub lease: Lease,
    /// When that claim was asked for: its term counts from here (`lease_term.rs`).
    pub leased_at: UnixMillis,
    /// When its shard took it: renewals asked since then include it (`lease_term.rs`).
    pub held_since: UnixMillis,
    /// A dead-letter hook (`dead_letter.rs`): its own end fires no hook, and its answers are
    /// not checked for the merchant's signature.
    pub hook: bool,
}

impl Job {
    /// Rebuilds a job from a stored pending record (ingest and recovery both go through here).
    pub fn from_record(rec: &NotificationRecord, profile: Arc<Profile>, now: UnixMillis) -> Job {
        let endpoint = rec.order_key.split('|').next().unwrap_or_default();
        Job {
            id: rec.id,
            endpoint: Arc::from(endpoint),
            order: xxhash_rust::xxh3::xxh3_64(rec.order_key.as_bytes()),
            attempts: rec.attempts,
            // A fresh or redelivered record (no attempts yet) starts its delivery at its first
            // attempt. One with attempts already made (recovered after a restart) counts from
            // the start the store kept (its accept or latest redeliver, at most as late as its
            // first attempt, so the deadline can come sooner than before the restart, never
            // later); records written before that was kept count from their accept time.
            delivery_started: (rec.attempts > 0)
                .then(|| rec.delivery_started_at.unwrap_or(rec.accepted_at)),
            due: rec.next_attempt_at.unwrap_or(now),
            payload: Payload {
                api: rec.api,
                profile,
                url: Arc::from(rec.url.as_str()),
                body: rec.body.clone(),
                accepted_at: rec.accepted_at,
                lease: Lease::LOCAL,
                leased_at: rec.accepted_at,
                held_since: rec.accepted_at,
                hook: rec.hook_of.is_some(),
            },
        }
    }

    /// The same job under a claim a shared store granted, asked for at `asked_at` (no later
    /// than the store granted it).
    pub fn with_lease(mut self, lease: Lease, asked_at: UnixMillis) -> Job {
        self.payload.lease = lease;
        self.payload.leased_at = asked_at;
        self
    }
}
