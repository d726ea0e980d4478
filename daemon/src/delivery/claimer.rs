//! A shared store's background work on this host: claim due notifications while the shards have
//! room, and keep the leases this host holds alive (POSTGRES.md §3, §5). The embedded store
//! runs none of it: it owns everything from recovery on.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Job;
use crate::app::App;
use crate::store::{PgStore, Store};

/// Most notifications one claim takes.
const CLAIM_BATCH: usize = 500;
/// Poll period while nothing is due (retries and expired leases have no wake-up).
const POLL: Duration = Duration::from_millis(500);

/// Claims due work into the shards until `stop`, keeping at most `backlog` notifications queued
/// locally (not counting those waiting at a held endpoint): more would only age leases in
/// memory that other hosts could be delivering.
pub(crate) async fn claim_loop(
    app: Arc<App>,
    store: Arc<PgStore>,
    backlog: usize,
    stop: CancellationToken,
) {
    loop {
        share_pauses(&app, &store).await;
        share_holds(&app, &store).await;
        // What waits at a held endpoint takes no room: a long hold must not keep this host
        // from claiming everyone else's work (and the claim skips those endpoints' rows).
        let held = app.dispatcher.held_endpoints().await;
        let parked: usize = held.iter().map(|h| h.waiting).sum();
        let held = held.into_iter().map(|h| h.endpoint).collect();
        let room = backlog
            .saturating_sub(app.dispatcher.pending().saturating_sub(parked))
            .min(CLAIM_BATCH);
        let mut full = false;
        if room > 0 {
            // Before the round trip: the claims' terms count from no later than the grant.
            let asked = app.clock.now();
            match store.claim_except(room, held).await {
                Ok(claimed) => {
                    full = claimed.len() == room;
                    enqueue(&app, &store, claimed, asked).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Claiming due notifications failed; will try again.")
                }
            }
        }
        // A full batch means more is due: claim again at once. Jitter keeps hosts from polling
        // in step.
        let wait = if full {
            Duration::ZERO
        } else {
            POLL.mul_f64(0.8 + rand::random::<f64>() * 0.4)
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// Hands the throttle pauses other hosts recorded to this host's shards, once per claim cycle:
/// a pause reaches every host within one cycle (about `POLL`).
async fn share_pauses(app: &App, store: &PgStore) {
    match store.paused_endpoints().await {
        Ok(pauses) => {
            for (endpoint, left) in pauses {
                app.dispatcher.pause(&endpoint, left);
            }
        }
        Err(e) => tracing::warn!(error = %e, "Reading endpoint pauses failed; will try again."),
    }
}

/// Makes this host's operator holds those recorded by any host: a hold asked of one host holds
/// on every host within one claim cycle, and so does its end. Compared with what the shards
/// hold now (not with an earlier read), so a hold applied by this host's API or at start and
/// resumed elsewhere before this cycle still ends here. Only an operator's hold is ended; an
/// endpoint held only by this host's own answers about our side stays held. Under the holds
/// lock, so an operator's change on this host cannot land between the read and the apply.
async fn share_holds(app: &App, store: &PgStore) {
    let _serial = app.holds.lock().await;
    let recorded: HashSet<String> = match store.holds().await {
        Ok(holds) => holds.into_iter().collect(),
        Err(e) => {
            tracing::warn!(error = %e, "Reading operators' holds failed; will try again.");
            return;
        }
    };
    let here: HashSet<String> = app
        .dispatcher
        .held_endpoints()
        .await
        .into_iter()
        .filter(|h| h.by_operator)
        .map(|h| h.endpoint)
        .collect();
    for endpoint in recorded.difference(&here) {
        app.dispatcher.hold(endpoint).await;
    }
    for endpoint in here.difference(&recorded) {
        app.dispatcher.resume_operator_hold(endpoint).await;
    }
}

async fn enqueue(
    app: &App,
    store: &PgStore,
    claimed: Vec<(crate::store::NotificationRecord, crate::store::Lease)>,
    asked: notifyd_core::UnixMillis,
) {
    let now = app.clock.now();
    let mut jobs = Vec::with_capacity(claimed.len());
    let mut unknown = Vec::new();
    for (rec, lease) in claimed {
        match app.profile(&rec.profile) {
            Some(profile) => {
                jobs.push(Job::from_record(&rec, profile, now).with_lease(lease, asked))
            }
            // Another host may still have this profile (a rolling config change): hand it back.
            None => {
                tracing::warn!(id = %rec.id, profile = %rec.profile, "Claimed a notification of a profile this host does not have; released.");
                unknown.push((rec.id, lease));
            }
        }
    }
    app.dispatcher.enqueue_many(jobs);
    // An empty release costs nothing (no round trip).
    if let Err(e) = store.release(unknown).await {
        tracing::warn!(error = %e, "Releasing notifications of unknown profiles failed.");
    }
}

/// Renews the claims the shards hold often enough that a claim always has room for the
/// longest attempt (`lease_term::renew_every`), and tells the shards, which start no attempt
/// their claim would not outlast.
pub(crate) async fn renew_loop(
    app: Arc<App>,
    store: Arc<PgStore>,
    lease: Duration,
    longest_attempt: Duration,
    stop: CancellationToken,
) {
    let every = super::lease_term::renew_every(lease, longest_attempt);
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stop.cancelled() => return,
        }
        // Only what the shards hold: a claim this host gave up on (an outcome it could not
        // write, an accept whose answer was lost) must run out so another host takes it;
        // renewing all its rows would keep such a one leased and unattempted for good. Asked
        // before the shards answer: a claim granted meanwhile, or still on its way to a shard,
        // is not in the list, and counts from its own grant until a renewal asked after its
        // shard took it (`lease_term.rs`).
        let asked = app.clock.now();
        let held = app.dispatcher.held_leases().await;
        match store.renew(held).await {
            Ok(gone) => {
                if !gone.is_empty() {
                    // Their outcome writes will be refused; the shards learn it then.
                    tracing::info!(
                        notifications = gone.len(),
                        "Claims no longer held by this host: another host took them over."
                    );
                }
                app.dispatcher.leases_renewed(asked, app.clock.now(), lease);
            }
            Err(e) => {
                tracing::warn!(error = %e, "Renewing this host's leases failed; will try again.")
            }
        }
    }
}
