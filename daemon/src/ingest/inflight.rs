//! Accept commits in flight, by notification id.
//!
//! A repeat whose first copy is still being committed must wait for exactly that commit, and no
//! longer: the commit's task marks its ids done the moment it has confirmed (or released) them,
//! and every waiter wakes at once. Polling the idempotency table instead would answer late, and a
//! fixed wait would answer 503 to a repeat of a copy that was in fact committed.

use std::time::Duration;

use dashmap::DashMap;
use notifyd_core::NotificationId;
use tokio::sync::watch;

/// The commits under way; see the module doc.
#[derive(Debug, Default)]
pub struct InFlight {
    commits: DashMap<NotificationId, watch::Receiver<bool>>,
}

/// One commit's registration; [`InFlight::finish`] (or dropping it, should the commit task
/// panic) wakes its waiters.
#[derive(Debug)]
pub struct Registration {
    ids: Vec<NotificationId>,
    done: watch::Sender<bool>,
}

/// What [`InFlight::wait`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    /// The commit of this id finished (or was never registered here): read the table again.
    Finished,
    /// The commit is still running after the time allowed.
    TimedOut,
}

impl InFlight {
    /// Registers a commit of these ids before it starts.
    pub fn begin(&self, ids: Vec<NotificationId>) -> Registration {
        let (done, rx) = watch::channel(false);
        for id in &ids {
            self.commits.insert(*id, rx.clone());
        }
        Registration { ids, done }
    }

    /// Marks the commit done: its ids are confirmed or released in the idempotency table.
    pub fn finish(&self, reg: Registration) {
        for id in &reg.ids {
            self.commits.remove(id);
        }
        // Waiters hold receivers; with none left the send fails, which is fine.
        let _ = reg.done.send(true);
    }

    /// Waits until the commit of `id` finishes, at most `limit`.
    pub async fn wait(&self, id: NotificationId, limit: Duration) -> Waited {
        let Some(mut rx) = self.commits.get(&id).map(|r| r.clone()) else {
            return Waited::Finished;
        };
        // A closed channel means the commit task ended without finishing (a panic): its
        // reservation state is then whatever the table says, so read it again too.
        match tokio::time::timeout(limit, rx.wait_for(|done| *done)).await {
            Ok(_) => Waited::Finished,
            Err(_) => Waited::TimedOut,
        }
    }

    /// Commits under way (for tests and shutdown).
    pub fn len(&self) -> usize {
        self.commits.len()
    }

    /// Whether no commit is under way.
    pub fn is_empty(&self) -> bool {
        self.commits.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notifyd_core::UnixMillis;

    fn id(n: u128) -> NotificationId {
        NotificationId::new(UnixMillis(1), n)
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_wakes_when_the_commit_finishes_not_at_its_limit() {
        let inflight = std::sync::Arc::new(InFlight::default());
        let reg = inflight.begin(vec![id(1), id(2)]);
        let waiter = {
            let inflight = inflight.clone();
            tokio::spawn(async move {
                let started = tokio::time::Instant::now();
                let w = inflight.wait(id(2), Duration::from_secs(30)).await;
                (w, started.elapsed())
            })
        };
        tokio::time::sleep(Duration::from_millis(250)).await;
        inflight.finish(reg);
        let (w, took) = waiter.await.unwrap();
        assert_eq!(w, Waited::Finished);
        assert_eq!(took, Duration::from_millis(250));
        assert!(inflight.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_commit_that_never_finishes_times_out_and_an_unknown_id_does_not_wait() {
        let inflight = InFlight::default();
        let _reg = inflight.begin(vec![id(1)]);
        assert_eq!(
            inflight.wait(id(1), Duration::from_secs(2)).await,
            Waited::TimedOut
        );
        assert_eq!(
            inflight.wait(id(9), Duration::from_secs(2)).await,
            Waited::Finished
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_registration_wakes_its_waiters() {
        let inflight = InFlight::default();
        let reg = inflight.begin(vec![id(1)]);
        let rx_wait = inflight.wait(id(1), Duration::from_secs(30));
        drop(reg);
        assert_eq!(rx_wait.await, Waited::Finished);
    }
}
