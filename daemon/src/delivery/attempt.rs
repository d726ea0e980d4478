//! One delivery attempt, start to durable outcome: sign, send, read the answer, classify it with
//! core, decide the next state, write it to the store, report to the shard.

use std::sync::Arc;
use std::time::Duration;

use notifyd_core::UnixMillis;
use notifyd_core::ack::{self, Ack, Outcome, SignatureCheck, SignatureMode};
use notifyd_core::backoff::parse_retry_after;
use notifyd_core::signing;

use super::client::{Answer, SendError};
use super::endpoint::Signal;
use super::job::Job;
use crate::clock::Clock;
use crate::metrics;
use crate::profile::{Profiles, RequestTimeFormat};
use crate::store::{AttemptUpdate, State, Store};
use crate::text::truncate_chars;

/// What the shard needs to carry on after an attempt.
#[derive(Debug)]
pub(super) struct Done {
    /// The job as it now stands (attempts counted, next due time set).
    pub job: Job,
    /// Final state reached, if any.
    pub finished: Option<State>,
}

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
}

/// Runs one attempt; `None` when it was abandoned at shutdown (nothing recorded).
///
/// `answered` is called as soon as the receiver's answer is classified (with what it says of the
/// endpoint's health), before the outcome is written: the endpoint's slot is free from then on, so a
/// store commit never holds a connection slot. Order and retry timers wait for [`Done`], which
/// comes after the write.
pub(super) async fn run(
    mut job: Job,
    ctx: Arc<AttemptCtx>,
    answered: impl FnOnce(Signal),
) -> Option<Done> {
    let started = ctx.clock.now();
    let first = *job.first_attempt_at.get_or_insert(started);
    // A profile removed by a reload keeps its last version for what it already accepted.
    if let Some(current) = ctx.profiles.get(&job.profile.name) {
        job.profile = current;
    }
    let profile = job.profile.clone();
    let uri = signing::request_uri(&job.url)
        .map(|u| u.into_owned())
        .unwrap_or_else(|| "/".into());
    let mut headers = Vec::new();
    if let Some(signer) = &profile.signer {
        let time = match profile.request_time {
            RequestTimeFormat::Rfc3339Millis => started.rfc3339_millis().to_string(),
            RequestTimeFormat::EpochMillis => started.0.to_string(),
        };
        let sig = signing::sign_request(
            &signer.key,
            signer.key_version,
            "POST",
            &uri,
            &signer.client_id,
            &time,
            &job.body,
        );
        headers.push(("client-id", signer.client_id.clone()));
        headers.push(("request-time", time));
        headers.push(("signature", sig));
    }

    let sent = tokio::select! {
        sent = profile.client.post(&job.url, headers, job.body.clone(), profile.attempt_timeout) => sent,
        () = ctx.abort.cancelled() => return None,
    };
    let now = ctx.clock.now();
    let (ack, transport_detail) = match &sent {
        // Not an answer of the receiver's, but as final as an F: only a configuration change
        // could make the same URL deliverable.
        Err(SendError::Forbidden(f)) => (
            Ack::Failed {
                code: "FORBIDDEN_ADDRESS".into(),
                message: Some(f.to_string()),
            },
            None,
        ),
        Ok(answer) => (classify_answer(&job, &uri, answer, now), None),
        Err(SendError::Timeout) => (
            ack::classify(job.api, &Outcome::Timeout, profile.response_signature),
            None,
        ),
        Err(SendError::Transport(msg)) => (
            ack::classify(job.api, &Outcome::Transport, profile.response_signature),
            Some(msg.as_str()),
        ),
    };
    metrics::attempt(job.api, ack.metric_outcome(), now.since(started));
    job.attempts += 1;

    let rand01: f64 = rand::random();
    let elapsed = now.since(first);
    let mut throttle = None;
    let (state, last_result) = match &ack {
        Ack::Delivered { code, .. } => (State::Delivered, format!("S {code}")),
        Ack::Failed { code, message }
        | Ack::OurSide { code, message }
        | Ack::Doubtful { code, message, .. } => (
            State::Failed,
            match message {
                Some(m) => format!("F {code}: {m}"),
                None => format!("F {code}"),
            },
        ),
        Ack::Retry { reason } => {
            let text = match transport_detail {
                Some(detail) => format!("retry: {reason}: {detail}"),
                None => format!("retry: {reason}"),
            };
            let counted = elapsed.saturating_sub(job.throttle_extension.unwrap_or_default());
            match profile.retry.next_delay(job.attempts, counted, rand01) {
                Some(delay) => {
                    job.due = now.plus(delay);
                    (State::Pending, text)
                }
                None => (State::Dead, text),
            }
        }
        Ack::Throttled { retry_after } => {
            let text = "throttled by the receiver".to_owned();
            match profile.retry.throttled_next(
                job.attempts,
                elapsed,
                rand01,
                *retry_after,
                job.throttle_extension,
            ) {
                Some(t) => {
                    job.due = now.plus(t.delay);
                    job.throttle_extension = Some(t.extension);
                    throttle = Some(t.delay);
                    (State::Pending, text)
                }
                None => (State::Dead, text),
            }
        }
    };
    let mut last_result = last_result;
    truncate_chars(&mut last_result, 300);
    let finished = (state != State::Pending).then_some(state);
    let update = AttemptUpdate {
        id: job.id,
        state,
        attempts: job.attempts,
        last_result: Some(last_result),
        next_attempt_at: finished.is_none().then_some(job.due),
        finished_at: finished.map(|_| now),
    };
    answered(signal(&ack, throttle));
    record(&ctx, update).await;
    if let Some(state) = finished {
        metrics::finished(job.api, state.as_str(), now.since(job.accepted_at));
        match &ack {
            Ack::Delivered {
                code,
                unexpected_code: true,
            } => {
                tracing::warn!(id = %job.id, code = %code, "Delivered with an unexpected result code.");
            }
            Ack::Failed { code, .. } => {
                tracing::warn!(id = %job.id, api = %job.api, code = %code, "Receiver refused the notification for good.");
            }
            _ if state == State::Dead => {
                tracing::warn!(id = %job.id, api = %job.api, attempts = job.attempts, "Retries exhausted; notification is dead.");
            }
            _ => {}
        }
    }
    Some(Done { job, finished })
}

/// What an answer says about the endpoint. A throttle whose schedule ran out (the notification
/// is dead, no pause) still marks the endpoint as struggling.
fn signal(ack: &Ack, throttle: Option<Duration>) -> Signal {
    match (ack, throttle) {
        (_, Some(delay)) => Signal::Throttle(delay),
        (Ack::Retry { .. } | Ack::Throttled { .. }, None) => Signal::Unhealthy,
        (
            Ack::Delivered { .. } | Ack::Failed { .. } | Ack::OurSide { .. } | Ack::Doubtful { .. },
            None,
        ) => Signal::Healthy,
    }
}

/// Writes an attempt's outcome, trying again while the store refuses (a full disk). The job
/// leaves the dispatcher once this returns, so an outcome never written would leave the store
/// saying pending (and due) with nothing in memory to correct it short of a restart. At the
/// shutdown abort it gives up: the store still says pending, so a restart repeats the attempt
/// (at-least-once), never loses the notification.
async fn record(ctx: &AttemptCtx, update: AttemptUpdate) {
    let mut wait = Duration::from_millis(50);
    loop {
        match ctx.store.update(vec![update.clone()]).await {
            Ok(()) => return,
            Err(e) => {
                tracing::error!(id = %update.id, error = %e, retry_in_ms = wait.as_millis() as u64, "Could not record an attempt outcome; trying again.");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = ctx.abort.cancelled() => return,
        }
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}

fn classify_answer(job: &Job, uri: &str, answer: &Answer, now: UnixMillis) -> Ack {
    let profile = &job.profile;
    let Some(body) = &answer.body else {
        // Too long or broken off: not an answer we can read.
        return ack::classify(
            job.api,
            &Outcome::Http {
                status: answer.status,
                retry_after: None,
                body: b"",
                signature: SignatureCheck::NotChecked,
            },
            SignatureMode::Off,
        );
    };
    let retry_after = answer
        .headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, now));
    let signature = match (profile.response_signature, &profile.peer_key) {
        (SignatureMode::Off, _) | (_, None) => SignatureCheck::NotChecked,
        (_, Some(key)) => match answer
            .headers
            .get("signature")
            .and_then(|v| v.to_str().ok())
        {
            None => SignatureCheck::Missing,
            Some(sig) => {
                let header = |name: &str| answer.headers.get(name).and_then(|v| v.to_str().ok());
                let client_id = header("client-id")
                    .or(profile.signer.as_ref().map(|s| s.client_id.as_str()))
                    .unwrap_or_default();
                let time = header("response-time").unwrap_or_default();
                match signing::verify_response(key, "POST", uri, client_id, time, body, sig) {
                    Ok(()) => SignatureCheck::Verified,
                    Err(_) => SignatureCheck::Invalid,
                }
            }
        },
    };
    ack::classify(
        job.api,
        &Outcome::Http {
            status: answer.status,
            retry_after,
            body,
            signature,
        },
        profile.response_signature,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use notifyd_core::ack::RetryReason;

    #[test]
    fn retry_answers_mark_the_endpoint_unhealthy_and_final_answers_healthy() {
        let delivered = Ack::Delivered {
            code: "SUCCESS".into(),
            unexpected_code: false,
        };
        let failed = Ack::Failed {
            code: "PROCESS_FAIL".into(),
            message: None,
        };
        let retry = Ack::Retry {
            reason: RetryReason::Timeout,
        };
        let throttled = Ack::Throttled { retry_after: None };
        assert_eq!(signal(&delivered, None), Signal::Healthy);
        assert_eq!(signal(&failed, None), Signal::Healthy);
        assert_eq!(signal(&retry, None), Signal::Unhealthy);
        assert_eq!(signal(&throttled, None), Signal::Unhealthy);
        let pause = Duration::from_secs(60);
        assert_eq!(signal(&throttled, Some(pause)), Signal::Throttle(pause));
    }
}
