//! Read-side endpoints: one notification, dead letters, redelivery, and `inquiryPayment`.

use std::sync::Arc;

use http::StatusCode;
use notifyd_core::ack::Status;
use notifyd_core::ack::codes::{ORDER_STATUS_INVALID, PROCESS_FAIL};
use notifyd_core::model::{InquiryRequest, InquiryResponse, ResultInfo};
use notifyd_core::{NotificationId, UnixMillis};
use serde_json::{Value, json};

use super::accept;
use super::respond::{NOTIFICATION_NOT_FOUND, Reply};
use crate::app::App;
use crate::delivery::Job;
use crate::inquiry::Scope;
use crate::store::{AttemptEntry, NotificationRecord, RedeliverOutcome, State, Store, StoreError};

/// Default and largest `limit` of `GET /v1/dead-letters`.
const DEAD_LETTERS_DEFAULT: usize = 100;
const DEAD_LETTERS_MAX: usize = 1000;

fn time(t: Option<UnixMillis>) -> Value {
    t.map_or(Value::Null, |t| json!(t.rfc3339_millis().to_string()))
}

/// The public view of a notification (CONTRACT.md §2).
pub fn view(r: &NotificationRecord) -> Value {
    let mut v = json!({
        "notificationId": r.id.to_string(),
        "api": r.api.as_str(),
        "url": r.url,
        "profile": r.profile,
        "state": r.state.as_str(),
        "attempts": r.attempts,
        "lastResult": r.last_result,
        "acceptedAt": time(Some(r.accepted_at)),
        "nextAttemptAt": time(r.next_attempt_at),
        "finishedAt": time(r.finished_at),
        "acquirerId": r.receiver_ids.acquirer_id,
        "pspId": r.receiver_ids.psp_id,
    });
    // A dead-letter hook names the notification it reports on; ordinary ones have no such key.
    if let Some(of) = r.hook_of {
        v["deadLetterHookOf"] = json!(of.to_string());
    }
    v
}

fn store_error(e: &StoreError) -> Reply {
    tracing::error!(error = %e, "Store read failed.");
    Reply::unavailable("the store could not be read")
}

/// One attempt log entry as `attemptLog` shows it (CONTRACT.md §2.1).
fn attempt_view(e: &AttemptEntry) -> Value {
    let mut v = json!({
        "at": e.at.rfc3339_millis().to_string(),
        "durationMs": e.duration_ms,
        "result": e.result,
        "signature": e.signature.as_str(),
        "responseBody": String::from_utf8_lossy(&e.response_body),
    });
    if let Some(status) = e.http_status {
        v["httpStatus"] = json!(status);
    }
    v
}

/// Runs a blocking store read off the async workers.
pub(super) async fn read<T: Send + 'static>(
    app: &App,
    f: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Reply> {
    let store: Arc<dyn Store> = app.store.clone();
    match tokio::task::spawn_blocking(move || f(store.as_ref())).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(store_error(&e)),
        Err(_) => Err(Reply::unavailable("the store read was interrupted")),
    }
}

fn parse_id(text: &str) -> Result<NotificationId, Reply> {
    text.parse()
        .map_err(|_| Reply::not_found(NOTIFICATION_NOT_FOUND, "no notification has this id"))
}

/// `GET /v1/notifications/{id}`.
pub async fn get(app: &App, id: &str) -> Reply {
    let id = match parse_id(id) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let found = read(app, move |s| {
        let Some(r) = s.get(id)? else {
            return Ok(None);
        };
        Ok(Some((r, s.attempt_log(id)?)))
    })
    .await;
    let (r, log) = match found {
        Ok(Some(found)) => found,
        Ok(None) => {
            return Reply::not_found(NOTIFICATION_NOT_FOUND, "no notification has this id");
        }
        Err(r) => return r,
    };
    let mut reply = merge(Reply::ok("found"), view(&r)).with(
        "attemptLog",
        Value::Array(log.iter().map(attempt_view).collect()),
    );
    if r.state == State::Pending {
        let endpoint = r.order_key.split('|').next().unwrap_or_default();
        if let Some(earlier) = app.dispatcher.waiting_for(endpoint, id).await {
            reply = reply.with("waitingFor", json!(earlier.to_string()));
        }
    }
    reply
}

fn merge(reply: Reply, extra: Value) -> Reply {
    let Value::Object(m) = extra else {
        return reply;
    };
    m.into_iter().fold(reply, |r, (k, v)| r.with(&k, v))
}

/// `GET /v1/dead-letters?limit=N`.
pub async fn dead_letters(app: &App, query: Option<&str>) -> Reply {
    let mut limit = DEAD_LETTERS_DEFAULT;
    for pair in query.unwrap_or_default().split('&') {
        if let Some(v) = pair.strip_prefix("limit=") {
            match v.parse::<usize>() {
                Ok(n) if (1..=DEAD_LETTERS_MAX).contains(&n) => limit = n,
                _ => {
                    return Reply::invalid(&format!(
                        "limit: must be a number from 1 to {DEAD_LETTERS_MAX}"
                    ));
                }
            }
        }
    }
    match read(app, move |s| s.dead_letters(limit)).await {
        Ok(list) => Reply::ok("dead letters").with(
            "notifications",
            Value::Array(list.iter().map(view).collect()),
        ),
        Err(r) => r,
    }
}

/// `POST /v1/notifications/{id}/redeliver`.
///
/// The profile is checked before the store changes: a record flipped to `pending` that no shard
/// can deliver would sit there until a restart refused to start over it. The store write and the
/// enqueue run in their own task, so a client hanging up between them cannot strand the record.
pub async fn redeliver(app: &Arc<App>, id: &str) -> Reply {
    let id = match parse_id(id) {
        Ok(id) => id,
        Err(r) => return r,
    };
    if let Some(r) = accept::closed(app) {
        return r;
    }
    let rec = match read(app, move |s| s.get(id)).await {
        Ok(Some(rec)) => rec,
        Ok(None) => {
            return Reply::not_found(NOTIFICATION_NOT_FOUND, "no notification has this id");
        }
        Err(r) => return r,
    };
    let Some(profile) = app.profile(&rec.profile) else {
        return Reply::result(
            StatusCode::CONFLICT,
            Status::F,
            PROCESS_FAIL,
            &format!("profile \"{}\" is no longer configured", rec.profile),
        );
    };
    let task = tokio::spawn({
        let app = app.clone();
        async move { start(&app, id, profile).await }
    });
    match task.await {
        Ok(Ok(RedeliverOutcome::Started(rec))) => {
            merge(Reply::ok("redelivery started"), view(&rec))
        }
        Ok(Ok(RedeliverOutcome::Unknown)) => {
            Reply::not_found(NOTIFICATION_NOT_FOUND, "no notification has this id")
        }
        Ok(Ok(RedeliverOutcome::NotRedeliverable(state))) => Reply::result(
            StatusCode::CONFLICT,
            Status::F,
            ORDER_STATUS_INVALID,
            &format!(
                "only dead or failed notifications can be redelivered; this one is {}",
                state.as_str()
            ),
        ),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "Redeliver could not commit.");
            Reply::unavailable("the store could not commit the redelivery")
        }
        Err(e) => {
            tracing::error!(error = %e, "A redeliver task ended without an answer.");
            Reply::unavailable("the redelivery did not complete; retry")
        }
    }
}

/// Flips a dead or failed notification back to pending and hands it to delivery once that is
/// durable; the caller has checked that its profile exists. Shared by the single and the bulk
/// redeliver, which run it in a task of their own.
pub(super) async fn start(
    app: &App,
    id: NotificationId,
    profile: Arc<crate::profile::Profile>,
) -> Result<RedeliverOutcome, StoreError> {
    Redelivery::submit(app, id).finish(app, profile).await
}

/// A redelivery handed to the store and not yet known durable. Submitting is separate from
/// awaiting so a bulk redeliver can put many into one group commit.
pub(super) struct Redelivery {
    write: crate::store::StoreFuture<RedeliverOutcome>,
    now: UnixMillis,
}

impl Redelivery {
    pub(super) fn submit(app: &App, id: NotificationId) -> Redelivery {
        let now = app.clock.now();
        Redelivery {
            write: app.store.redeliver(id, now),
            now,
        }
    }

    /// Waits for the store, then hands the notification to delivery.
    pub(super) async fn finish(
        self,
        app: &App,
        profile: Arc<crate::profile::Profile>,
    ) -> Result<RedeliverOutcome, StoreError> {
        let outcome = self.write.await;
        // A shared store leaves the row due and unleased: whichever host claims it first
        // delivers it (this one's claimer within a cycle). A local job as well would send it
        // twice, once without a lease.
        let local = matches!(app.store.mode(), crate::store::StoreMode::Local);
        if let Ok(RedeliverOutcome::Started(rec)) = &outcome
            && local
        {
            app.dispatcher
                .enqueue(Job::from_record(rec, profile, self.now));
        }
        outcome
    }
}

/// `POST /v1/payments/inquiryPayment` on the ingest listener (the operator's): answered from
/// the notifications notifyd holds, about every partner. Every answer is a business answer,
/// HTTP 200 with S, F or U in `result` (the SDKs read a non-200 as a transport error).
pub async fn inquiry(app: &App, mut body: Vec<u8>) -> Reply {
    let answer = match InquiryRequest::parse(&mut body) {
        Ok(req) => crate::inquiry::answer(app, &req, Scope::default()).await,
        Err(e) => InquiryResponse::result_only(ResultInfo::new(
            Status::F,
            e.result_code(),
            &e.to_string(),
        )),
    };
    let body: Value = serde_json::from_slice(&answer.encode()).unwrap_or(Value::Null);
    Reply {
        status: StatusCode::OK,
        body,
        retry_after: None,
    }
}
