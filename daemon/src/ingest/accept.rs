//! Accepting notifications: validate, dedupe, make durable, then say yes.
//!
//! The order matters. A key is first *reserved* in the idempotency table (so two concurrent
//! copies cannot both be stored), then the record is committed (group commit: one fsync shared
//! with every concurrent accept), and only then is the reservation confirmed, the notification
//! handed to delivery and S answered. A failed commit releases the reservation and answers 503:
//! nothing half-accepted remains. A repeat that arrives while the first copy is still being
//! committed waits for that commit, so "duplicate" is never said of something not yet durable.
//!
//! Once records are handed to the store, their completion (confirm and enqueue, or release) runs
//! in a task of its own: hyper drops a request's future when the client hangs up, and a commit
//! completed in that future would leave a durable record that no shard delivers and a key whose
//! every repeat waits for a confirmation that never comes.
//!
//! Nothing is judged before recovery is done: until then the idempotency table is not restored
//! and recovered notifications are not queued, so a repeat would be taken for a new notification
//! and a new one could overtake an older one of its payment. Ingest answers 503 U with
//! `Retry-After` meanwhile.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use notifyd_core::ack::Status;
use notifyd_core::ack::codes::REPEAT_REQ_INCONSISTENT;
use notifyd_core::idempotency::{Check, Fingerprint, IdempotencyKey};
use notifyd_core::{Api, Envelope, NotificationId, UnixMillis, ValidationError};
use serde_json::{Value, json};

use super::inflight::Waited;
use super::respond::Reply;
use crate::app::App;
use crate::delivery::Job;
use crate::metrics::{self, IngestOutcome};
use crate::profile::Profile;
use crate::store::{Accepted, KeyLookup, NotificationRecord, State};

/// The most a repeat waits for its first copy's commit before answering 503: a bound for a
/// store that has stopped answering, far above a healthy commit (milliseconds).
const PENDING_WAIT: Duration = Duration::from_secs(30);

struct Prepared {
    record: NotificationRecord,
    profile: Arc<Profile>,
    key: IdempotencyKey,
    fp: Fingerprint,
    /// The fingerprint earlier versions stored for such a body, when it differs.
    legacy_fp: Option<Fingerprint>,
}

enum Claim {
    New(Prepared),
    /// A repeat of a copy that is still being committed.
    Pending(Prepared),
    Answer(Reply),
}

/// Why ingest cannot judge anything now, if it cannot: shutting down, or still recovering.
pub fn closed(app: &App) -> Option<Reply> {
    if app.is_stopping() {
        metrics::ingest(None, IngestOutcome::Error);
        return Some(Reply::unavailable("notifyd is shutting down"));
    }
    if !app.is_ready() {
        metrics::ingest(None, IngestOutcome::Error);
        return Some(Reply::recovering());
    }
    None
}

/// `POST /v1/notifications`.
pub async fn single(app: &Arc<App>, mut body: Vec<u8>) -> Reply {
    if let Some(r) = closed(app) {
        return r;
    }
    let envelope = match Envelope::parse_with(&mut body, &|p| app.extra_fields(p)) {
        Ok(e) => e,
        Err(e) => return invalid(None, &e),
    };
    let api = envelope.api;
    if app.dispatcher.pending() >= app.limits.max_pending {
        metrics::ingest(Some(api), IngestOutcome::Throttled);
        return Reply::throttled();
    }
    let prepared = match prepare(app, envelope) {
        Ok(p) => p,
        Err(reply) => return reply,
    };
    match claim(app, prepared) {
        Claim::Answer(r) => r,
        Claim::Pending(p) => wait_for_first(app, p).await,
        Claim::New(p) => commit_one(app, p).await,
    }
}

/// A lone new notification: checked against the store if the table may have forgotten its key,
/// then committed.
async fn commit_one(app: &Arc<App>, p: Prepared) -> Reply {
    let p = match settle_misses(app, vec![p]).await.pop() {
        Some(Ok(p)) => p,
        Some(Err(reply)) => return reply,
        None => return Reply::unavailable("nothing was committed"),
    };
    commit(app, vec![p])
        .await
        .pop()
        .unwrap_or_else(|| Reply::unavailable("nothing was committed"))
}

/// `POST /v1/notifications/batch`: each item judged on its own; the new ones share one commit.
pub async fn batch(app: &Arc<App>, mut body: Vec<u8>) -> Reply {
    if let Some(r) = closed(app) {
        return r;
    }
    let policy = |p: &str| app.extra_fields(p);
    let items =
        match notifyd_core::envelope::parse_batch_with(&mut body, app.limits.max_batch, &policy) {
            Ok(items) => items,
            Err(e) => return invalid(None, &e),
        };
    if app.dispatcher.pending() >= app.limits.max_pending {
        metrics::ingest(None, IngestOutcome::Throttled);
        return Reply::throttled();
    }
    let mut replies: Vec<Option<Reply>> = vec![None; items.len()];
    let mut fresh = Vec::new();
    let mut fresh_at = Vec::new();
    let mut waiting = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let prepared = match item {
            Ok(envelope) => prepare(app, envelope),
            Err(e) => Err(invalid(None, &e)),
        };
        match prepared.map(|p| claim(app, p)) {
            Err(r) | Ok(Claim::Answer(r)) => replies[i] = Some(r),
            Ok(Claim::New(p)) => {
                fresh.push(p);
                fresh_at.push(i);
            }
            Ok(Claim::Pending(p)) => waiting.push((i, p)),
        }
    }
    let (mut new, mut new_at) = (Vec::new(), Vec::new());
    for (i, settled) in fresh_at.into_iter().zip(settle_misses(app, fresh).await) {
        match settled {
            Ok(p) => {
                new.push(p);
                new_at.push(i);
            }
            Err(r) => replies[i] = Some(r),
        }
    }
    if !new.is_empty() {
        for (i, r) in new_at.into_iter().zip(commit(app, new).await) {
            replies[i] = Some(r);
        }
    }
    // Repeats of items in this very batch (or in a concurrent request) resolve after the commit.
    for (i, p) in waiting {
        replies[i] = Some(wait_for_first(app, p).await);
    }
    let results: Vec<Value> = replies
        .into_iter()
        .map(|r| r.map_or(Value::Null, with_status))
        .collect();
    Reply::ok("batch processed").with("results", Value::Array(results))
}

/// A batch item's answer: its body, plus the HTTP status it would have had alone.
fn with_status(r: Reply) -> Value {
    let mut body = r.body;
    if let Value::Object(m) = &mut body {
        m.insert("status".to_owned(), json!(r.status.as_u16()));
    }
    body
}

fn invalid(api: Option<Api>, e: &ValidationError) -> Reply {
    metrics::ingest(api, IngestOutcome::Invalid);
    Reply::invalid(&e.to_string())
}

fn prepare(app: &App, envelope: Envelope) -> Result<Prepared, Reply> {
    let api = envelope.api;
    let Some(profile) = app.profile(&envelope.profile) else {
        let e = ValidationError::new(
            "profile",
            format!("no profile named \"{}\" is configured", envelope.profile),
        );
        return Err(invalid(Some(api), &e));
    };
    if envelope.is_plain_http() && !profile.allow_http {
        let e = ValidationError::new(
            "url",
            format!(
                "plain http:// is not allowed by profile \"{}\" (allow_http = false)",
                profile.name
            ),
        );
        return Err(invalid(Some(api), &e));
    }
    if let Err(forbidden) = profile.guard.check_url(&envelope.url) {
        let e = ValidationError::new("url", forbidden.to_string());
        return Err(invalid(Some(api), &e));
    }
    let now = app.clock.now();
    let (key, fp) = envelope.idempotency();
    let legacy_fp = envelope.legacy_fingerprint();
    let n = &envelope.notification;
    let record = NotificationRecord {
        id: app.ids.next(now, rand::random()),
        api,
        profile: envelope.profile.clone(),
        body: Bytes::from(envelope.encode()),
        idem_key: key.0,
        fingerprint: fp.0,
        order_key: envelope.order_key(),
        payment_id: n.payment_id().map(str::to_owned),
        payment_request_id: n.payment_request_id().map(str::to_owned),
        partner_id: n.partner_id().map(str::to_owned),
        state: State::Pending,
        attempts: 0,
        last_result: None,
        accepted_at: now,
        // The schedule's first entry counts from acceptance too ("0s" in Alipay's schedule).
        next_attempt_at: Some(now.plus(first_delay(&profile))),
        finished_at: None,
        delivery_started_at: Some(now),
        receiver_ids: Default::default(),
        hook_of: None,
        url: envelope.url,
    };
    Ok(Prepared {
        record,
        profile,
        key,
        fp,
        legacy_fp,
    })
}

fn first_delay(profile: &Profile) -> Duration {
    profile
        .retry
        .next_delay(0, Duration::ZERO, rand::random())
        .unwrap_or_default()
}

fn claim(app: &App, p: Prepared) -> Claim {
    let now = app.clock.now();
    match app
        .idempotency
        .check_and_reserve(p.key, p.fp, p.record.id, now)
    {
        Check::New => Claim::New(p),
        Check::Duplicate { pending: true, .. } => Claim::Pending(p),
        Check::Duplicate { id, pending: false } => Claim::Answer(duplicate(p.record.api, id)),
        Check::Inconsistent { id } => Claim::Answer(inconsistent_unless_legacy(app, &p, id)),
    }
}

/// One record's fate after the commit: stored (confirmed and, when this host holds it, handed
/// to delivery) or found to repeat a record the store already had (a shared store judges
/// idempotency across hosts), which then answers for it.
fn settle(app: &App, p: Prepared, answer: Accepted) -> Reply {
    match answer {
        Accepted::Stored(lease) => {
            app.idempotency.confirm(p.key, p.record.id);
            // Without a lease another host's claim delivers it.
            if let Some(lease) = lease {
                let now = app.clock.now();
                // Taken before the commit that leased it: the lease's term counts from there.
                let asked = p.record.accepted_at;
                app.dispatcher
                    .enqueue(Job::from_record(&p.record, p.profile, now).with_lease(lease, asked));
            }
            metrics::ingest(Some(p.record.api), IngestOutcome::Accepted);
            app.tally.accepted();
            Reply::ok("accepted").with("notificationId", json!(p.record.id.to_string()))
        }
        Accepted::Duplicate(first) => {
            // The store knew the key (another host stored it): so does the table from now on.
            app.idempotency.release(p.key, p.record.id);
            app.idempotency
                .restore(p.key, p.fp, first, first.accepted_at());
            duplicate(p.record.api, first)
        }
        Accepted::Inconsistent(first) => {
            // Left to the store to judge again: the table holds only fingerprints it was given.
            app.idempotency.release(p.key, p.record.id);
            inconsistent(p.record.api, first)
        }
    }
}

/// Keys the table reserved as new, judged again by the store once the table has evicted keys
/// before their retention ran out: from then on a miss proves nothing, and a repeat of an old
/// key (possibly with a changed amount) must still be found. Costs nothing until the first such
/// eviction; after it, one indexed store read per new notification (benches/README.md).
///
/// A key found in the store gives up its reservation, goes back into the table (so its next
/// repeat is answered from memory) and is answered duplicate or inconsistent.
async fn settle_misses(app: &Arc<App>, items: Vec<Prepared>) -> Vec<Result<Prepared, Reply>> {
    let evicted = app.idempotency.evicted_unexpired();
    if evicted == 0 || items.is_empty() {
        return items.into_iter().map(Ok).collect();
    }
    let since = UnixMillis(
        app.clock
            .now()
            .0
            .saturating_sub(app.idempotency.retention().as_millis() as u64),
    );
    let store = app.store.clone();
    let lookups: Vec<_> = items.iter().map(|p| (p.key.0, p.record.clone())).collect();
    let found = tokio::task::spawn_blocking(move || {
        lookups
            .iter()
            .map(|(key, rec)| match KeyLookup::for_record(rec) {
                Some(by) => store.find_idempotency(*key, by, since),
                None => Ok(None),
            })
            .collect::<Vec<_>>()
    })
    .await;
    let Ok(found) = found else {
        return items
            .into_iter()
            .map(|p| Err(release_unjudged(app, &p)))
            .collect();
    };
    items
        .into_iter()
        .zip(found)
        .map(|(p, f)| match f {
            Ok(None) => Ok(p),
            Ok(Some(first)) => {
                app.idempotency.release(p.key, p.record.id);
                app.idempotency.restore(
                    p.key,
                    Fingerprint(first.fingerprint),
                    first.id,
                    first.accepted_at,
                );
                let same = first.fingerprint == p.fp.0
                    || p.legacy_fp.is_some_and(|fp| fp.0 == first.fingerprint);
                Err(if same {
                    duplicate(p.record.api, first.id)
                } else {
                    inconsistent(p.record.api, first.id)
                })
            }
            Err(e) => {
                tracing::error!(error = %e, "Store read failed while judging a repeat; ingest answered 503.");
                Err(release_unjudged(app, &p))
            }
        })
        .collect()
}

/// A reservation given up because the store could not say whether the key is new.
fn release_unjudged(app: &App, p: &Prepared) -> Reply {
    app.idempotency.release(p.key, p.record.id);
    metrics::ingest(Some(p.record.api), IngestOutcome::Error);
    Reply::unavailable("the store could not be read to judge this notification; retry")
}

/// A store written by an earlier version holds fingerprints that counted `resultMessage`; a
/// repeat of such a notification matches the fingerprint it had then.
fn inconsistent_unless_legacy(app: &App, p: &Prepared, id: NotificationId) -> Reply {
    let legacy = p
        .legacy_fp
        .and_then(|fp| app.idempotency.check(p.key, fp, app.clock.now()));
    match legacy {
        Some(Check::Duplicate { id, pending: false }) => duplicate(p.record.api, id),
        _ => inconsistent(p.record.api, id),
    }
}

fn duplicate(api: Api, id: NotificationId) -> Reply {
    metrics::ingest(Some(api), IngestOutcome::Duplicate);
    Reply::ok("duplicate of an accepted notification")
        .with("notificationId", json!(id.to_string()))
        .with("duplicate", json!(true))
}

fn inconsistent(api: Api, id: NotificationId) -> Reply {
    metrics::ingest(Some(api), IngestOutcome::Inconsistent);
    Reply::result(
        StatusCode::CONFLICT,
        Status::F,
        REPEAT_REQ_INCONSISTENT,
        &format!("same idempotency key as notification {id}, with different key fields"),
    )
    .with("notificationId", json!(id.to_string()))
}

async fn wait_for_first(app: &Arc<App>, p: Prepared) -> Reply {
    let give_up = tokio::time::Instant::now() + PENDING_WAIT;
    let mut p = p;
    loop {
        let now = app.clock.now();
        match app.idempotency.check(p.key, p.fp, now) {
            Some(Check::Duplicate { id, pending: true }) => {
                let left = give_up.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    metrics::ingest(Some(p.record.api), IngestOutcome::Error);
                    return Reply::unavailable("an earlier copy is still being committed; retry");
                }
                if app.inflight.wait(id, left).await == Waited::Finished {
                    // Reserved but not yet registered (the first copy's request is between its
                    // claim and its commit): a moment later it is one or the other.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            Some(Check::Duplicate { id, pending: false }) => return duplicate(p.record.api, id),
            Some(Check::Inconsistent { id }) => return inconsistent_unless_legacy(app, &p, id),
            // The first copy's commit failed and released the key: this copy may take it.
            Some(Check::New) | None => match claim(app, p) {
                Claim::New(fresh) => return commit_one(app, fresh).await,
                Claim::Pending(again) => p = again,
                Claim::Answer(r) => return r,
            },
        }
    }
}

/// Makes the reserved records durable together and answers each.
///
/// The commit and its completion run in their own task, which finishes whatever becomes of the
/// request that started it (see the module doc).
async fn commit(app: &Arc<App>, items: Vec<Prepared>) -> Vec<Reply> {
    let count = items.len();
    let reg = app
        .inflight
        .begin(items.iter().map(|p| p.record.id).collect());
    let task = tokio::spawn({
        let app = app.clone();
        async move {
            let replies = complete(&app, items).await;
            app.inflight.finish(reg);
            replies
        }
    });
    task.await.unwrap_or_else(|e| {
        tracing::error!(error = %e, count, "An accept task ended without an answer; ingest answered 503.");
        vec![Reply::unavailable("the commit did not complete; retry"); count]
    })
}

/// The store commit, then confirm and enqueue (or release) every record: never cut in half.
async fn complete(app: &App, items: Vec<Prepared>) -> Vec<Reply> {
    let records: Vec<NotificationRecord> = items.iter().map(|p| p.record.clone()).collect();
    match app.store.accept(records).await {
        Ok(answers) if answers.len() == items.len() => items
            .into_iter()
            .zip(answers)
            .map(|(p, answer)| settle(app, p, answer))
            .collect(),
        Ok(answers) => {
            // A store that answers for fewer records than it was given is broken; what it did
            // with them is unknown, so the keys stay reserved (a repeat waits, then gets 503)
            // rather than letting a second copy in.
            tracing::error!(
                given = items.len(),
                answered = answers.len(),
                "The store answered an accept for the wrong number of records; ingest answered 503."
            );
            items
                .iter()
                .map(|p| {
                    metrics::ingest(Some(p.record.api), IngestOutcome::Error);
                    Reply::unavailable("the store gave no clear answer; retry")
                })
                .collect()
        }
        Err(e) => {
            tracing::error!(error = %e, count = items.len(), "Store commit failed; ingest answered 503.");
            items
                .into_iter()
                .map(|p| {
                    app.idempotency.release(p.key, p.record.id);
                    metrics::ingest(Some(p.record.api), IngestOutcome::Error);
                    Reply::unavailable(
                        "the store could not commit the notification; nothing was stored",
                    )
                })
                .collect()
        }
    }
}
