//! Who owns a pending notification, in the store's own terms.
//!
//! A store shared by several hosts hands each pending notification to one host at a time under a
//! lease; every outcome write names the lease it completes, and a write whose lease was taken
//! over (the host stalled past it) is refused, not applied, so two hosts never both record an
//! outcome for one attempt. The embedded store has one host, which owns everything it holds:
//! its every lease is [`Lease::LOCAL`] and its claims are trivial.

use std::time::Duration;

use notifyd_core::NotificationId;

/// A claim on a pending notification: which host holds it, and which grant of it (a token that
/// changes each time it is claimed anew, so a stale holder's write can be told from the current
/// one's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lease {
    /// The holding host's number.
    pub owner: u32,
    /// This grant of the claim.
    pub token: u64,
}

impl Lease {
    /// The single host of an embedded store, which owns all it holds for good.
    pub const LOCAL: Lease = Lease { owner: 0, token: 0 };

    /// The grant a shared store gives a row it inserts already leased to the host writing it
    /// (an accept that host delivers at once, a dead-letter hook): the row's first.
    pub const fn first(owner: u32) -> Lease {
        Lease { owner, token: 1 }
    }
}

/// What the store made of one record handed to [`Store::accept`](super::Store::accept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Stored; with the lease the accepting host holds on it, if it may deliver it at once.
    Stored(Option<Lease>),
    /// Another record with the same idempotency key and key fields was stored first (by another
    /// host, or before this host's table knew it): answer duplicate with its id.
    Duplicate(NotificationId),
    /// Another record with the same idempotency key and other key fields was stored first.
    Inconsistent(NotificationId),
}

/// What the store made of one outcome handed to [`Store::update`](super::Store::update).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Written (or the notification is gone, pruned: nothing to write).
    Done,
    /// Refused: the update's lease is not the notification's current one. Another host owns it
    /// now and will make the attempt again; this host must forget it.
    LeaseLost,
}

/// How the store shares its notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// One host owns everything it holds (the embedded store): recovery loads all pending work.
    Local,
    /// Several hosts share the store; this one is `host`, and its claims last `lease`.
    Shared {
        /// This host's number.
        host: u32,
        /// How long a claim lasts unless renewed.
        lease: Duration,
    },
}
