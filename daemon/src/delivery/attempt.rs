//! One delivery attempt: sign, send, read the answer, classify it with core. What follows (the
//! decision, the store write) is the shard's, so an attempt holds nothing once it has answered.

use std::sync::Arc;

use notifyd_core::ack::{
    self, Ack, LocalCause, Outcome, ReceiverIds, RetryReason, SignatureCheck, SignatureMode,
};
use notifyd_core::backoff::parse_retry_after;
use notifyd_core::signing;
use notifyd_core::{NotificationId, UnixMillis};

use super::attempt_log;
use super::client::{Answer, SendError};
use super::job::Payload;
use super::transport::TransportKind;
use crate::backoff::Backoff;
use crate::clock::Clock;
use crate::metrics;
use crate::profile::{Profile, Profiles};
use crate::store::{Applied, AttemptEntry, AttemptUpdate, NotificationRecord, Store};
use crate::text::truncate_chars;

/// The `resultCode` notifyd gives an attempt its SSRF guard refused (no request was sent).
pub(super) const FORBIDDEN_ADDRESS: &str = "FORBIDDEN_ADDRESS";

/// The longest `lastResult` the store keeps, in characters.
pub(super) const LAST_RESULT_CHARS: usize = 300;

/// Shared by every attempt.
#[derive(Debug)]
pub(super) struct AttemptCtx {
    pub store: Arc<dyn Store>,
    pub clock: Clock,
    /// The profiles in force (see [`Profiles`]).
    pub profiles: Profiles,
    /// Fired when the shutdown grace period runs out: attempts still waiting for an answer are
    /// abandoned, leaving their notifications pending (and due) in the store.
    pub abort: tokio_util::sync::CancellationToken,
    /// How long this host's claims last (shared store only).
    pub leases: super::lease_term::LeaseTerm,
    /// Where dead-letter hooks go once stored: to the dispatcher, which routes them to the
    /// shard of their endpoint.
    pub hooks: tokio::sync::mpsc::UnboundedSender<super::job::Job>,
    /// This daemon's own counts (the status page's charts).
    pub tally: Arc<crate::status::Tally>,
}

/// An attempt's answer, classified.
#[derive(Debug)]
pub(super) struct Answered {
    pub id: NotificationId,
    pub ack: Ack,
    /// The store's `lastResult` for it, before the shard adds what it decided.
    pub text: String,
    /// The profile the attempt ran under; its retry policy decides what follows. `None` when
    /// the attempt never got that far (the notification's last profile then applies).
    pub profile: Option<Arc<Profile>>,
    /// Its attempt log entry; `None` when the task ended without an answer (the shard logs a
    /// transport error then).
    pub log: Option<AttemptEntry>,
    /// The Alipay+ receiver's `acquirerId`/`pspId`, when its answer named them.
    pub receiver_ids: Option<ReceiverIds>,
}

/// Runs one attempt; `None` when it was abandoned at shutdown (nothing to report).
pub(super) async fn run(id: NotificationId, mut p: Payload, ctx: &AttemptCtx) -> Option<Answered> {
    let started = ctx.clock.now();
    if let Some(current) = ctx.profiles.get(&p.profile.name) {
        p.profile = current;
    }
    let profile = p.profile;
    // The operator's hook receiver is not the merchant and holds none of its keys: its answers
    // are read unsigned.
    let mode = if p.hook {
        SignatureMode::Off
    } else {
        profile.response_signature
    };
    let uri = signing::request_uri(&p.url)
        .map(|u| u.into_owned())
        .unwrap_or_else(|| "/".into());
    let mut headers = Vec::new();
    if let Some(signer) = &profile.signer {
        let time = profile.request_time.format(started);
        let sig = signing::sign_request(
            &signer.key,
            signer.key_version,
            "POST",
            &uri,
            &signer.client_id,
            &time,
            &p.body,
        );
        headers.push(("client-id", signer.client_id.clone()));
        headers.push(("request-time", time));
        headers.push(("signature", sig));
    }

    let sent = tokio::select! {
        sent = profile.client.post(&p.url, headers, p.body, profile.attempt_timeout) => sent,
        () = ctx.abort.cancelled() => return None,
    };
    let now = ctx.clock.now();
    let receiver_ids = match &sent {
        Ok(answer) if p.api == notifyd_core::Api::AlipayPlusNotifyPayment && !p.hook => {
            answer.body.as_deref().and_then(ack::receiver_ids)
        }
        _ => None,
    };
    let (ack, detail, signature) = match &sent {
        // Not an answer of the receiver's, and final but for a DNS answer that may be transient
        // (split horizon, rebinding): one more try after the schedule's delay, then failed.
        Err(SendError::Forbidden(f)) => (
            Ack::Doubtful {
                code: FORBIDDEN_ADDRESS.into(),
                message: Some(f.to_string()),
                retries: 1,
            },
            None,
            SignatureCheck::NotChecked,
        ),
        Ok(answer) => classify_answer(p.api, &profile, mode, &uri, answer, now),
        Err(SendError::Timeout) => (
            ack::classify(p.api, &Outcome::Timeout, mode),
            None,
            SignatureCheck::NotChecked,
        ),
        Err(SendError::Transport(e)) => {
            metrics::transport_error(e.kind.as_str());
            let ack = match e.kind {
                TransportKind::Proxy => Ack::LocalFailure {
                    cause: LocalCause::Proxy,
                },
                _ => ack::classify(p.api, &Outcome::Transport, mode),
            };
            (ack, Some(e.to_string()), SignatureCheck::NotChecked)
        }
    };
    let log = attempt_log::entry(id, started, now, &sent, &ack, signature);
    // A dead-letter hook goes to the operator's URL: its attempts are not a merchant's, and
    // would blur the per-API attempt figures the merchant alerts read (the hook family
    // counts how hooks end).
    if !p.hook {
        metrics::attempt(p.api, ack.metric_outcome(), now.since(started));
    }
    let mut text = summary(&ack);
    if let Some(detail) = detail {
        text.push_str(": ");
        text.push_str(&detail);
    }
    // An answer whose signature failed the profile's rule is not the receiver's word on anything,
    // its ids included.
    let untrusted = matches!(
        ack,
        Ack::Retry {
            reason: RetryReason::SignatureMissing
                | RetryReason::SignatureInvalid
                | RetryReason::SignatureNotChecked
        }
    );
    Some(Answered {
        id,
        ack,
        text,
        profile: Some(profile),
        log: Some(log),
        receiver_ids: receiver_ids.filter(|_| !untrusted),
    })
}

/// An answer in the words of `lastResult` (CONTRACT.md §2): `S SUCCESS`, `F PROCESS_FAIL: ...`,
/// `retry: timeout`, `throttled by the receiver`, `not sent` (a failure of ours, such as the
/// proxy's, followed by what failed).
pub(super) fn summary(ack: &Ack) -> String {
    match ack {
        Ack::Delivered { code, .. } => format!("S {code}"),
        Ack::Failed { code, message }
        | Ack::OurSide { code, message }
        | Ack::Doubtful { code, message, .. } => match message {
            Some(m) => format!("F {code}: {m}"),
            None => format!("F {code}"),
        },
        Ack::Retry { reason } => format!("retry: {reason}"),
        Ack::Throttled { .. } => "throttled by the receiver".to_owned(),
        Ack::LocalFailure { .. } => "not sent".to_owned(),
    }
}

/// Writes an attempt's outcome; true once it is durable.
///
/// A transient failure (a full queue or disk) is tried again, with growing waits: the shard
/// moves on only once this returns, so an outcome never written would leave the store saying
/// pending (and due) with nothing in memory to correct it short of a restart. At the shutdown
/// abort it gives up. A failure waiting cannot fix (corrupt data, a closed store) is logged once
/// and not tried again. Either way the store still says pending, so the next start attempts the
/// notification again (at-least-once): nothing is recorded as delivered that was not, and
/// nothing is dropped.
///
/// Answers what the store made of it; `None` when nothing was written (the abort, or a failure
/// waiting cannot fix). `hooks` (dead-letter hooks of this outcome) are written in the same
/// commit.
pub(super) async fn record(
    ctx: &AttemptCtx,
    mut update: AttemptUpdate,
    log: AttemptEntry,
    hooks: Vec<NotificationRecord>,
) -> Option<Applied> {
    if let Some(text) = update.last_result.as_mut() {
        truncate_chars(text, LAST_RESULT_CHARS);
    }
    let mut backoff = Backoff::store_write();
    loop {
        let e = match ctx
            .store
            .update_with_hooks(vec![update.clone()], vec![log.clone()], hooks.clone())
            .await
        {
            Ok(applied) => return applied.first().copied().or(Some(Applied::Done)),
            Err(e) => e,
        };
        if !e.is_transient() {
            tracing::error!(id = %update.id, state = update.state.as_str(), error = %e, "Could not record an attempt outcome, and trying again would not help. The store still says pending: the notification is attempted again at the next start.");
            return None;
        }
        let wait = backoff.next_delay();
        tracing::error!(id = %update.id, error = %e, retry_in_ms = wait.as_millis() as u64, "Could not record an attempt outcome; trying again.");
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = ctx.abort.cancelled() => return None,
        }
    }
}

fn classify_answer(
    api: notifyd_core::Api,
    profile: &Profile,
    mode: SignatureMode,
    uri: &str,
    answer: &Answer,
    now: UnixMillis,
) -> (Ack, Option<String>, SignatureCheck) {
    let retry_after = answer
        .headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, now));
    let Some(body) = &answer.body else {
        // Too long or broken off: not an answer we can read, but its status and Retry-After are.
        let ack = ack::classify(
            api,
            &Outcome::Http {
                status: answer.status,
                retry_after,
                body: b"",
                signature: SignatureCheck::NotChecked,
            },
            SignatureMode::Off,
        );
        return (ack, None, SignatureCheck::NotChecked);
    };
    let keys = &profile.peer_keys;
    let mut detail = None;
    let signature = match mode {
        SignatureMode::Off => SignatureCheck::NotChecked,
        _ if keys.is_empty() => SignatureCheck::NotChecked,
        _ => match answer
            .headers
            .get("signature")
            .and_then(|v| v.to_str().ok())
        {
            // Some frameworks always emit the header, empty when they did not sign; the Java SDK
            // reads that as absent (protocol review §14), so `optional` accepts it and `required`
            // retries it as missing, never as a bad signature.
            None => SignatureCheck::Missing,
            Some(sig) if sig.trim().is_empty() => SignatureCheck::Missing,
            Some(sig) => {
                let header = |name: &str| answer.headers.get(name).and_then(|v| v.to_str().ok());
                let client_id = header("client-id")
                    .or(profile.signer.as_ref().map(|s| s.client_id.as_str()))
                    .unwrap_or_default();
                let time = header("response-time").unwrap_or_default();
                // The key is the one for the keyVersion the answer names (a rotation in progress
                // signs with the old or the new key); an unreadable header fails verification.
                let version = signing::parse_signature_header(sig)
                    .ok()
                    .and_then(|h| h.key_version);
                match keys.select(version.as_deref()) {
                    Err(why) => {
                        detail = Some(why);
                        SignatureCheck::Invalid
                    }
                    Ok(key) => {
                        match signing::verify_response(key, "POST", uri, client_id, time, body, sig)
                        {
                            Ok(()) => SignatureCheck::Verified,
                            Err(_) => SignatureCheck::Invalid,
                        }
                    }
                }
            }
        },
    };
    let ack = ack::classify(
        api,
        &Outcome::Http {
            status: answer.status,
            retry_after,
            body,
            signature,
        },
        mode,
    );
    (ack, detail, signature)
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, VecDeque};
    use std::sync::Mutex;

    use super::*;
    use crate::store::{
        Accepted, IdempotencyRecord, KeyLookup, Lease, NotificationRecord, PruneStats,
        RedeliverOutcome, SignatureNote, State, StoreError, StoreFuture, StoreMode,
    };
    use notifyd_core::ack::RetryReason;

    /// Answers `update` from a script and counts the calls; nothing else is used.
    #[derive(Debug, Default)]
    struct ScriptedStore {
        updates: Mutex<VecDeque<Result<(), StoreError>>>,
        calls: Mutex<usize>,
    }

    impl Store for ScriptedStore {
        fn mode(&self) -> StoreMode {
            StoreMode::Local
        }
        fn update(&self, u: Vec<AttemptUpdate>) -> StoreFuture<Vec<Applied>> {
            *self.calls.lock().unwrap() += 1;
            let next = self.updates.lock().unwrap().pop_front();
            StoreFuture::ready(
                next.unwrap_or(Ok(()))
                    .map(|()| vec![Applied::Done; u.len()]),
            )
        }
        fn accept(&self, _: Vec<NotificationRecord>) -> StoreFuture<Vec<Accepted>> {
            StoreFuture::ready(Err(StoreError::Closed))
        }
        fn find_idempotency(
            &self,
            _: u128,
            _: KeyLookup<'_>,
            _: UnixMillis,
        ) -> Result<Option<IdempotencyRecord>, StoreError> {
            Err(StoreError::Closed)
        }
        fn redeliver(&self, _: NotificationId, _: UnixMillis) -> StoreFuture<RedeliverOutcome> {
            StoreFuture::ready(Err(StoreError::Closed))
        }
        fn prune(&self, _: UnixMillis, _: usize) -> StoreFuture<PruneStats> {
            StoreFuture::ready(Err(StoreError::Closed))
        }
        fn set_hold(&self, _: &str, _: bool, _: UnixMillis) -> StoreFuture<()> {
            StoreFuture::ready(Err(StoreError::Closed))
        }
        fn holds(&self) -> StoreFuture<Vec<String>> {
            StoreFuture::ready(Err(StoreError::Closed))
        }
        fn get(&self, _: NotificationId) -> Result<Option<NotificationRecord>, StoreError> {
            Err(StoreError::Closed)
        }
        fn dead_letters(&self, _: usize) -> Result<Vec<NotificationRecord>, StoreError> {
            Err(StoreError::Closed)
        }
        fn find_by_payment_id(&self, _: &str) -> Result<Vec<NotificationRecord>, StoreError> {
            Err(StoreError::Closed)
        }
        fn find_by_payment_request_id(
            &self,
            _: Option<&str>,
            _: &str,
        ) -> Result<Vec<NotificationRecord>, StoreError> {
            Err(StoreError::Closed)
        }
        fn scan_pending(
            &self,
            _: usize,
            _: &mut dyn FnMut(Vec<NotificationRecord>),
        ) -> Result<usize, StoreError> {
            Err(StoreError::Closed)
        }
        fn load_idempotency(&self, _: UnixMillis) -> Result<Vec<IdempotencyRecord>, StoreError> {
            Err(StoreError::Closed)
        }
    }

    fn ctx(script: Vec<Result<(), StoreError>>) -> (AttemptCtx, Arc<ScriptedStore>) {
        let store = Arc::new(ScriptedStore {
            updates: Mutex::new(script.into()),
            calls: Mutex::new(0),
        });
        let ctx = AttemptCtx {
            store: store.clone(),
            clock: Clock::new(),
            profiles: Profiles::new(HashMap::new()),
            abort: tokio_util::sync::CancellationToken::new(),
            leases: Default::default(),
            hooks: tokio::sync::mpsc::unbounded_channel().0,
            tally: Arc::default(),
        };
        (ctx, store)
    }

    fn delivered() -> AttemptUpdate {
        AttemptUpdate {
            lease: Lease::LOCAL,
            receiver_ids: None,
            id: NotificationId::from_u128(7),
            state: State::Delivered,
            attempts: 1,
            last_result: Some("S SUCCESS".into()),
            next_attempt_at: None,
            finished_at: Some(UnixMillis(1)),
        }
    }

    fn log() -> AttemptEntry {
        AttemptEntry {
            id: NotificationId::from_u128(7),
            at: UnixMillis(1),
            duration_ms: 1,
            http_status: Some(200),
            result: "S SUCCESS".into(),
            signature: SignatureNote::NotChecked,
            response_body: bytes::Bytes::new(),
        }
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_transient_store_failure_is_retried_until_the_outcome_is_written() {
        let (ctx, store) = ctx(vec![
            Err(StoreError::Full),
            Err(StoreError::io("disk full")),
        ]);
        assert_eq!(
            record(&ctx, delivered(), log(), Vec::new()).await,
            Some(Applied::Done)
        );
        assert_eq!(*store.calls.lock().unwrap(), 3);
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_corrupt_store_is_tried_once_and_the_outcome_left_unwritten() {
        let (ctx, store) = ctx(vec![Err(StoreError::Corrupt(
            "notification 7: short".into(),
        ))]);
        assert_eq!(record(&ctx, delivered(), log(), Vec::new()).await, None);
        assert_eq!(*store.calls.lock().unwrap(), 1, "no retry on corruption");
    }

    #[test]
    fn summaries_are_the_last_result_texts() {
        let failed = Ack::Failed {
            code: notifyd_core::ack::codes::PROCESS_FAIL.into(),
            message: Some("no".into()),
        };
        assert_eq!(summary(&failed), "F PROCESS_FAIL: no");
        let retry = Ack::Retry {
            reason: RetryReason::HttpStatus(503),
        };
        assert_eq!(summary(&retry), "retry: HTTP status 503");
        let throttled = Ack::Throttled { retry_after: None };
        assert_eq!(summary(&throttled), "throttled by the receiver");
    }
}
