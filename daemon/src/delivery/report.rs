//! What crosses from an attempt task, or from the scheduler, back to the rest of the daemon.

use notifyd_core::ack::{Ack, RetryReason};
use notifyd_core::scheduler::EndpointSnapshot;
use notifyd_core::{NotificationId, UnixMillis};
use tokio::sync::mpsc;

use super::attempt::{self, Answered};
use super::shard::ShardMsg;

/// An attempt task's promise to report back. Dropped without a report (the task panicked, or
/// was cancelled), it reports a transport error instead, so the endpoint slot and the in-flight
/// count come back and the notification is retried like any attempt that got no answer.
pub(super) struct Report {
    tx: mpsc::UnboundedSender<ShardMsg>,
    id: NotificationId,
    done: bool,
}

impl Report {
    pub fn new(tx: mpsc::UnboundedSender<ShardMsg>, id: NotificationId) -> Report {
        Report {
            tx,
            id,
            done: false,
        }
    }

    pub fn answered(mut self, answered: Answered) {
        self.done = true;
        // The shard is gone only when the daemon is exiting.
        let _ = self.tx.send(ShardMsg::Answered(Box::new(answered)));
    }

    /// Abandoned at the shutdown abort: the shard is leaving and the store still says pending.
    pub fn abandoned(mut self) {
        self.done = true;
    }
}

impl Drop for Report {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        tracing::error!(id = %self.id, "A delivery attempt ended without an answer (the task panicked); it is retried like a transport error.");
        let ack = Ack::Retry {
            reason: RetryReason::Transport,
        };
        let text = format!(
            "{}: the attempt ended without an answer",
            attempt::summary(&ack)
        );
        let _ = self.tx.send(ShardMsg::Answered(Box::new(Answered {
            id: self.id,
            ack,
            text,
            profile: None,
            log: None,
            receiver_ids: None,
        })));
    }
}

/// One endpoint as `GET /v1/endpoints` shows it (CONTRACT.md §2.1).
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointView {
    /// `host:port`.
    pub endpoint: String,
    /// `ok`, `degraded`, `paused` or `held`.
    pub state: &'static str,
    /// Held by an operator (no probes) rather than by an answer about our side.
    pub held_by_operator: bool,
    pub paused_until: Option<UnixMillis>,
    pub concurrency_limit: usize,
    pub pending: usize,
    pub in_flight: usize,
    pub last_success_at: Option<UnixMillis>,
    /// The latest answer that was not an S, in `lastResult` words.
    pub last_error: Option<(UnixMillis, String)>,
    /// Share of the last 15 minutes' attempts answered `S`; `None` without attempts.
    pub ack_ratio_15m: Option<f64>,
}

impl EndpointView {
    /// Sort key: held, paused, degraded, ok; within a state, the lowest ack ratio first (an
    /// endpoint without attempts last).
    pub fn worse_first(&self, other: &EndpointView) -> std::cmp::Ordering {
        let ratio = |v: &EndpointView| v.ack_ratio_15m.unwrap_or(2.0);
        self.rank()
            .cmp(&other.rank())
            .then(ratio(self).total_cmp(&ratio(other)))
            .then_with(|| self.endpoint.cmp(&other.endpoint))
    }

    /// Rank of the state: held, paused, degraded, ok.
    pub fn rank(&self) -> usize {
        ["held", "paused", "degraded", "ok"]
            .iter()
            .position(|s| *s == self.state)
            .unwrap_or(4)
    }
}

impl From<EndpointSnapshot<'_>> for EndpointView {
    fn from(s: EndpointSnapshot<'_>) -> EndpointView {
        EndpointView {
            endpoint: s.endpoint.to_owned(),
            state: s.state.as_str(),
            held_by_operator: s.hold == Some(notifyd_core::scheduler::HoldKind::Operator),
            paused_until: s.paused_until,
            concurrency_limit: s.concurrency_limit,
            pending: s.pending,
            in_flight: s.in_flight,
            last_success_at: s.last_success_at,
            last_error: s.last_error.map(|(at, ack)| (at, attempt::summary(ack))),
            ack_ratio_15m: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_attempt_task_that_panics_still_reports_a_transport_error() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let id = NotificationId::from_u128(7);
        let report = Report::new(tx, id);
        let task = tokio::spawn(async move {
            let _report = report;
            panic!("boom");
        });
        assert!(task.await.unwrap_err().is_panic());
        let Some(ShardMsg::Answered(a)) = rx.recv().await else {
            panic!("no report");
        };
        assert_eq!(a.id, id);
        assert_eq!(
            a.ack,
            Ack::Retry {
                reason: RetryReason::Transport
            }
        );
        assert!(a.text.starts_with("retry: transport_error"), "{}", a.text);
    }

    #[tokio::test]
    async fn an_abandoned_attempt_reports_nothing() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        Report::new(tx.clone(), NotificationId::from_u128(1)).abandoned();
        drop(tx);
        assert!(rx.recv().await.is_none(), "nothing reported");
    }
}
