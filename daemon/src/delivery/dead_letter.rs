//! Dead-letter hooks: when a notification of a profile with `dead_letter_url` ends `dead` or
//! `failed`, the operator's URL gets a signed POST saying so (README "Dead-letter hook").
//!
//! A hook is a notification-like job of the same profile: a stored record (`hook_of` names the
//! notification it reports on) delivered by the same shards, scheduler, retry policy, signing and
//! SSRF guard, shown by the same operator endpoints. It is stored in the very commit that records
//! the outcome ([`crate::store::Store::update_with_hooks`]), so a crash keeps both or neither: if
//! neither, the notification is still pending and its outcome (and hook) come again. A hook that
//! ends dead or failed itself fires no hook.

use bytes::Bytes;
use notifyd_core::envelope::endpoint_of;
use notifyd_core::{NotificationId, UnixMillis};
use serde_json::{Map, Value};

use super::attempt::{self, AttemptCtx};
use super::job::Job;
use crate::backoff::Backoff;
use crate::metrics;
use crate::profile::Profile;
use crate::store::{
    Applied, AttemptEntry, AttemptUpdate, Lease, NotificationRecord, State, StoreMode,
};
use crate::text::truncate_chars;

/// The `event` value of every hook body.
pub(super) const EVENT: &str = "notifyd.deadLetter";

/// The hook reporting that `original` ended as `update` says, for delivery to `url`.
///
/// Its body is a small JSON object of ours, every value a string as in the protocol's messages,
/// fields absent when the notification has none. The hook carries no payment lookup keys of its
/// own, so merchant-facing inquiry never answers with it.
pub(super) fn hook_record(
    original: &NotificationRecord,
    update: &AttemptUpdate,
    url: &str,
    now: UnixMillis,
) -> NotificationRecord {
    let mut body = Map::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            body.insert(k.to_owned(), Value::String(v));
        }
    };
    let time = |t: UnixMillis| Some(t.rfc3339_millis().to_string());
    put("event", Some(EVENT.to_owned()));
    put("notifyId", Some(original.id.to_string()));
    put("kind", Some(original.api.as_str().to_owned()));
    put("profile", Some(original.profile.clone()));
    put("paymentId", original.payment_id.clone());
    put("paymentRequestId", original.payment_request_id.clone());
    put("partnerId", original.partner_id.clone());
    put("acquirerId", original.receiver_ids.acquirer_id.clone());
    put("pspId", original.receiver_ids.psp_id.clone());
    put("state", Some(update.state.as_str().to_owned()));
    put("attempts", Some(update.attempts.to_string()));
    put("lastResult", update.last_result.clone());
    put("endpoint", Some(original.url.clone()));
    put("acceptedAt", time(original.accepted_at));
    put("finishedAt", time(update.finished_at.unwrap_or(now)));
    let body = serde_json::to_vec(&Value::Object(body)).unwrap_or_default();
    let id = NotificationId::new(now, rand::random());
    let host = endpoint_of(url).unwrap_or_default();
    NotificationRecord {
        id,
        api: original.api,
        profile: original.profile.clone(),
        url: url.to_owned(),
        body: Bytes::from(body),
        // Hooks are never submitted, so no repeat can match: a key only this hook has.
        idem_key: id.as_u128(),
        fingerprint: 0,
        // Hooks of different notifications do not wait for one another.
        order_key: format!("{host}|dead-letter:{}", original.id),
        payment_id: None,
        payment_request_id: None,
        partner_id: None,
        state: State::Pending,
        attempts: 0,
        last_result: None,
        accepted_at: now,
        next_attempt_at: Some(now),
        finished_at: None,
        delivery_started_at: Some(now),
        receiver_ids: Default::default(),
        hook_of: Some(original.id),
    }
}

/// Writes an outcome that ends a delivery `dead` or `failed` together with its hook, then hands
/// the hook to delivery. As [`attempt::record`] otherwise (what it answers, how it retries).
pub(super) async fn record(
    ctx: &AttemptCtx,
    mut update: AttemptUpdate,
    log: AttemptEntry,
    profile: &std::sync::Arc<Profile>,
    url: &str,
) -> Option<Applied> {
    let now = ctx.clock.now();
    let Some(original) = read_original(ctx, update.id).await? else {
        // Gone from the store (it cannot be pruned while pending) or unreadable: nothing the
        // hook could report on.
        return attempt::record(ctx, update, log, Vec::new()).await;
    };
    // The hook says what the store will say.
    if let Some(text) = update.last_result.as_mut() {
        truncate_chars(text, attempt::LAST_RESULT_CHARS);
    }
    let hook = hook_record(&original, &update, url, now);
    let applied = attempt::record(ctx, update, log, vec![hook.clone()]).await;
    // The store keeps the hook only when this write ended the notification (not when a
    // retried commit had already landed it): a hook it did not keep is not sent from memory.
    if applied == Some(Applied::Done) && stored(ctx, hook.id).await {
        metrics::dead_letter_hook("queued");
        tracing::info!(id = %original.id, hook = %hook.id, "Dead-letter hook queued.");
        let job = Job::from_record(&hook, profile.clone(), now);
        // A shared store leased the hook to this host in the outcome's commit, which began
        // after `now`: the claim's term counts from there.
        let job = match ctx.store.mode() {
            StoreMode::Local => job,
            StoreMode::Shared { host, .. } => job.with_lease(Lease::first(host), now),
        };
        // The dispatcher is gone only at exit; the hook is stored and goes at the next start
        // (or, on a shared store, to whichever host claims it once its lease runs out).
        let _ = ctx.hooks.send(job);
    }
    applied
}

/// Whether the hook `id` is in the store (read off the async workers). An unreadable answer
/// counts as stored: the hook then goes now rather than perhaps never.
async fn stored(ctx: &AttemptCtx, id: NotificationId) -> bool {
    let store = ctx.store.clone();
    !matches!(
        tokio::task::spawn_blocking(move || store.get(id)).await,
        Ok(Ok(None))
    )
}

/// The stored notification (for the fields the hook names), read off the async workers; a
/// transient failure is tried again like an outcome write. `None` at the shutdown abort;
/// `Some(None)` also for a failure waiting cannot fix (an unreadable record): the outcome is
/// then written without a hook rather than never, which would hold its payment's chain.
async fn read_original(ctx: &AttemptCtx, id: NotificationId) -> Option<Option<NotificationRecord>> {
    let mut backoff = Backoff::store_write();
    loop {
        let store = ctx.store.clone();
        let e = match tokio::task::spawn_blocking(move || store.get(id)).await {
            Ok(Ok(r)) => return Some(r),
            Ok(Err(e)) if !e.is_transient() => {
                tracing::error!(%id, error = %e, "Could not read a dead letter for its hook; recording its outcome without one.");
                return Some(None);
            }
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        let wait = backoff.next_delay();
        tracing::error!(%id, error = %e, retry_in_ms = wait.as_millis() as u64, "Could not read a dead letter for its hook; trying again.");
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = ctx.abort.cancelled() => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notifyd_core::Api;

    fn original() -> NotificationRecord {
        NotificationRecord {
            id: NotificationId::from_u128(99),
            api: Api::NotifyPayment,
            profile: "acme".into(),
            url: "https://merchant.example/n".into(),
            body: Bytes::from_static(b"{\"privateKey\":\"never\"}"),
            idem_key: 1,
            fingerprint: 2,
            order_key: "merchant.example|P1".into(),
            payment_id: Some("P1".into()),
            payment_request_id: None,
            partner_id: Some("2188".into()),
            state: State::Pending,
            attempts: 2,
            last_result: None,
            accepted_at: UnixMillis(1_700_000_000_000),
            next_attempt_at: None,
            finished_at: None,
            delivery_started_at: None,
            receiver_ids: Default::default(),
            hook_of: None,
        }
    }

    #[test]
    fn the_hook_names_the_notification_in_strings_and_carries_no_lookup_keys() {
        let update = AttemptUpdate {
            id: NotificationId::from_u128(99),
            lease: Lease::LOCAL,
            state: State::Dead,
            attempts: 3,
            last_result: Some("retry: timeout".into()),
            next_attempt_at: None,
            finished_at: Some(UnixMillis(1_700_000_060_000)),
            receiver_ids: None,
        };
        let h = hook_record(
            &original(),
            &update,
            "https://ops.example/dl",
            UnixMillis(1_700_000_060_001),
        );
        let v: Value = serde_json::from_slice(&h.body).unwrap();
        assert_eq!(v["notifyId"], original().id.to_string());
        assert_eq!(v["state"], "dead");
        assert_eq!(v["attempts"], "3");
        assert_eq!(v["paymentId"], "P1");
        assert_eq!(v["finishedAt"], "2023-11-14T22:14:20.000+00:00");
        assert!(v.as_object().unwrap().values().all(Value::is_string), "{v}");
        assert!(v.get("paymentRequestId").is_none(), "absent, not null");
        assert!(!String::from_utf8_lossy(&h.body).contains("privateKey"));
        assert_eq!(h.hook_of, Some(original().id));
        assert_eq!(
            h.order_key,
            format!("ops.example|dead-letter:{}", original().id)
        );
        assert!(h.payment_id.is_none() && h.partner_id.is_none());
    }
}
