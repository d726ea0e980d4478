//! A notification as a delivery shard holds it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use notifyd_core::{Api, NotificationId, UnixMillis};

use crate::profile::Profile;
use crate::store::NotificationRecord;

/// Everything an attempt needs, cheap to clone (shared buffers).
#[derive(Debug, Clone)]
pub struct Job {
    /// The notification's id.
    pub id: NotificationId,
    /// Its API (metric label, signing path).
    pub api: Api,
    /// The profile it was accepted under: retry policy, timeout, signing.
    pub profile: Arc<Profile>,
    /// Target URL.
    pub url: Arc<str>,
    /// The canonical bytes, identical on every attempt.
    pub body: Bytes,
    /// `host:port`: the shard and endpoint queue key.
    pub endpoint: Arc<str>,
    /// Hash of the per-payment order key (`endpoint|payment`). A hash instead of the string
    /// saves an allocation per pending notification; two payments whose keys collide (about
    /// one chance in 10^13 among a million pending) are merely delivered one after the other.
    pub order: u64,
    /// Attempts already made.
    pub attempts: u32,
    /// When it was accepted (latency metric, deadline).
    pub accepted_at: UnixMillis,
    /// When the first attempt started; the retry deadline runs from here.
    pub first_attempt_at: Option<UnixMillis>,
    /// When the next attempt is due.
    pub due: UnixMillis,
    /// The deadline extension granted by a first throttled answer (kept in memory only: after a
    /// restart a throttled notification may be granted it once more).
    pub throttle_extension: Option<Duration>,
}

impl Job {
    /// Rebuilds a job from a stored pending record (ingest and recovery both go through here).
    pub fn from_record(rec: &NotificationRecord, profile: Arc<Profile>, now: UnixMillis) -> Job {
        let endpoint = rec.order_key.split('|').next().unwrap_or_default();
        Job {
            id: rec.id,
            api: rec.api,
            profile,
            url: Arc::from(rec.url.as_str()),
            body: rec.body.clone(),
            endpoint: Arc::from(endpoint),
            order: xxhash_rust::xxh3::xxh3_64(rec.order_key.as_bytes()),
            attempts: rec.attempts,
            accepted_at: rec.accepted_at,
            // The store keeps no first-attempt time; the accept time is the conservative stand-in
            // (the deadline can only come sooner, never later).
            first_attempt_at: (rec.attempts > 0).then_some(rec.accepted_at),
            due: rec.next_attempt_at.unwrap_or(now),
            throttle_extension: None,
        }
    }
}
