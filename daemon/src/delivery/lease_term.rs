//! How long this host's claims on a shared store last, as this host knows it: the rule "a host
//! starts no attempt it could not finish inside its lease" (POSTGRES.md §3).
//!
//! The database extends a claim (`due_at`) when it grants it and at each renewal of the claims
//! the shards hold; this host knows only when it asked (no later than the database acted) and
//! when the answer came (no earlier). So a claim asked at `c` lasts at least until `c + lease`,
//! and a renewal asked at `a` and answered at `d` extends it to `a + lease` only if it was still
//! alive when the statement ran, which is sure when `d <` its end so far. A claim that lapsed
//! (the host stopped, starved, or cut off from the database) may have been taken by another
//! host, and is not counted as revived by a later renewal. No clock of another machine enters:
//! only this host's own readings, ordered against the database's acts.

use std::time::Duration;

use notifyd_core::UnixMillis;
use parking_lot::Mutex;

/// Room kept beyond an attempt's timeout for writing its outcome.
pub(crate) const START_MARGIN: Duration = Duration::from_secs(2);

/// The current run of renewals: each answered before the previous one's extension ran out.
#[derive(Debug, Clone, Copy)]
struct Run {
    /// When the run's first renewal was answered: a claim alive then is alive to the end.
    first_done: UnixMillis,
    /// When its latest renewal was asked: every claim alive in the run lasts until then + lease.
    last_asked: UnixMillis,
}

/// This host's renewals of the claims its shards hold (shared store only).
#[derive(Debug, Default)]
pub(crate) struct LeaseTerm {
    run: Mutex<Option<Run>>,
}

impl LeaseTerm {
    /// A renewal of the claims the shards hold, asked at `asked`, was answered done at `done`.
    pub(crate) fn renewed(&self, asked: UnixMillis, done: UnixMillis, lease: Duration) {
        let mut run = self.run.lock();
        *run = match *run {
            Some(r) if done < r.last_asked.plus(lease) => Some(Run {
                first_done: r.first_done,
                last_asked: r.last_asked.max(asked),
            }),
            // A gap: whatever lapsed in it stays lapsed; the claims alive now start a new run.
            _ => Some(Run {
                first_done: done,
                last_asked: asked,
            }),
        };
    }

    /// When the claim asked at `leased_at`, in a shard since `held_since`, runs out, as far as
    /// this host can be sure. Only a renewal asked after its shard took it included it (the
    /// held list is collected after the ask): a claim still on its way to a shard at the
    /// latest renewal counts from its own grant.
    pub(crate) fn end(
        &self,
        leased_at: UnixMillis,
        held_since: UnixMillis,
        lease: Duration,
    ) -> UnixMillis {
        let own = leased_at.plus(lease);
        match *self.run.lock() {
            Some(r) if own > r.first_done && held_since <= r.last_asked => {
                own.max(r.last_asked.plus(lease))
            }
            _ => own,
        }
    }

    /// Whether an attempt taking at most `timeout` may start `now` on a notification leased
    /// for `lease` at `leased_at` (in its shard since `held_since`): it must finish, outcome
    /// written, before the claim runs out.
    pub(crate) fn may_start(
        &self,
        now: UnixMillis,
        leased_at: UnixMillis,
        held_since: UnixMillis,
        lease: Duration,
        timeout: Duration,
    ) -> bool {
        now.plus(timeout + START_MARGIN) <= self.end(leased_at, held_since, lease)
    }
}

/// How often to renew every lease so that, between renewals, a claim always keeps room for the
/// longest attempt plus [`START_MARGIN`] (else due attempts would be handed back every cycle):
/// half of that slack, and at most a third of the lease, so one failed renewal leaves time for
/// the next.
pub(crate) fn renew_every(lease: Duration, longest_attempt: Duration) -> Duration {
    let slack = lease.saturating_sub(longest_attempt + START_MARGIN);
    (slack / 2).min(lease / 3).max(Duration::from_millis(100))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);
    const T0: UnixMillis = UnixMillis(1_700_000_000_000);

    #[test]
    fn an_attempt_starts_only_if_it_ends_inside_the_claim() {
        let term = LeaseTerm::default();
        let (lease, timeout) = (12 * S, S);
        // Claimed at T0 for 12s: an attempt of 1s plus the 2s margin may start until T0 + 9s.
        assert!(term.may_start(T0, T0, T0, lease, timeout));
        assert!(term.may_start(T0.plus(9 * S), T0, T0, lease, timeout));
        assert!(!term.may_start(T0.plus(9 * S + S / 1000), T0, T0, lease, timeout));
        // A longer attempt must start sooner.
        assert!(!term.may_start(T0.plus(6 * S), T0, T0, lease, 5 * S));
    }

    #[test]
    fn renewals_push_a_live_claim_on_and_never_back() {
        let term = LeaseTerm::default();
        let (lease, timeout) = (12 * S, S);
        term.renewed(T0.plus(4 * S), T0.plus(4 * S), lease);
        term.renewed(T0.plus(8 * S), T0.plus(8 * S), lease);
        assert_eq!(term.end(T0, T0, lease), T0.plus(20 * S));
        assert!(term.may_start(T0.plus(17 * S), T0, T0, lease, timeout));
        // A late report of an older renewal changes nothing.
        term.renewed(T0.plus(2 * S), T0.plus(9 * S), lease);
        assert_eq!(term.end(T0, T0, lease), T0.plus(20 * S));
        // A claim newer than the last renewal counts from the claim.
        assert_eq!(
            term.end(T0.plus(10 * S), T0.plus(10 * S), lease),
            T0.plus(22 * S)
        );
    }

    #[test]
    fn a_renewal_asked_before_its_shard_took_the_claim_does_not_extend_it() {
        let term = LeaseTerm::default();
        let lease = 12 * S;
        // Asked at T0, still on its way to its shard (a slow read of its records) when the
        // renewal at T0 + 4s collected the held list, taken by the shard at T0 + 5s.
        term.renewed(T0.plus(4 * S), T0.plus(4 * S), lease);
        assert_eq!(term.end(T0, T0.plus(5 * S), lease), T0.plus(12 * S));
        // The next renewal collected it: extended from that renewal's ask.
        term.renewed(T0.plus(8 * S), T0.plus(8 * S), lease);
        assert_eq!(term.end(T0, T0.plus(5 * S), lease), T0.plus(20 * S));
    }

    #[test]
    fn a_claim_that_lapsed_is_not_revived_by_a_later_renewal() {
        let term = LeaseTerm::default();
        let (lease, timeout) = (12 * S, S);
        term.renewed(T0.plus(4 * S), T0.plus(4 * S), lease);
        // The host stopped (SIGSTOP) for 30s: the next renewal is answered long after the last
        // one's extension ran out, so another host may hold what this one claimed before.
        term.renewed(T0.plus(34 * S), T0.plus(35 * S), lease);
        assert_eq!(
            term.end(T0, T0, lease),
            T0.plus(12 * S),
            "lapsed at T0 + 16s at the latest"
        );
        assert!(!term.may_start(T0.plus(35 * S), T0, T0, lease, timeout));
        // A claim alive when the new run began is carried by it.
        assert_eq!(
            term.end(T0.plus(30 * S), T0.plus(30 * S), lease),
            T0.plus(46 * S)
        );
        // A renewal that was asked in time but answered too late starts a new run as well.
        let slow = LeaseTerm::default();
        slow.renewed(T0, T0, lease);
        slow.renewed(T0.plus(4 * S), T0.plus(13 * S), lease);
        assert_eq!(
            slow.end(T0, T0, lease),
            T0.plus(12 * S),
            "it may have run after T0 + 12s"
        );
        assert_eq!(
            slow.end(T0.plus(S / 2), T0.plus(S / 2), lease),
            T0.plus(12 * S + S / 2)
        );
    }

    #[test]
    fn renewals_leave_room_for_the_longest_attempt() {
        // Lease 12s, attempts up to 1s: slack 9s; a third of the lease (4s) is sooner.
        assert_eq!(renew_every(12 * S, S), 4 * S);
        // Lease 30s, attempts up to 20s: slack 8s, renewed every 4s, not every 10s.
        assert_eq!(renew_every(30 * S, 20 * S), 4 * S);
        for (lease, longest) in [
            (12 * S, S),
            (30 * S, 20 * S),
            (11 * S, S / 2),
            (70 * S, 59 * S),
        ] {
            let every = renew_every(lease, longest);
            // Just before a renewal, the claim still holds an attempt begun then.
            let term = LeaseTerm::default();
            let before_next = T0.plus(every);
            assert!(
                term.may_start(before_next, T0, T0, lease, longest),
                "{lease:?} {longest:?} every {every:?}"
            );
        }
    }
}
