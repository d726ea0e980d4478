//! The scheduler's timers: notifications coming due, and endpoints whose pause or probe wait
//! ends. A timer is only a reminder to look again; what it finds then decides, so a timer left
//! over from an earlier state does no harm.

use std::collections::BTreeSet;

use crate::{NotificationId, UnixMillis};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Timer {
    /// A notification waiting for its due time.
    Due(NotificationId),
    /// An endpoint whose pause ends or whose next probe is due (index into the endpoints).
    Wake(u32),
}

#[derive(Debug, Default)]
pub(super) struct Timers {
    // Ordered by time; equal reminders at equal times collapse into one.
    set: BTreeSet<(UnixMillis, Timer)>,
}

impl Timers {
    pub fn add(&mut self, at: UnixMillis, timer: Timer) {
        self.set.insert((at, timer));
    }

    pub fn next(&self) -> Option<UnixMillis> {
        self.set.first().map(|(at, _)| *at)
    }

    /// Removes and returns the earliest timer due at `now`, if any.
    pub fn pop_due(&mut self, now: UnixMillis) -> Option<Timer> {
        match self.set.first() {
            Some((at, _)) if *at <= now => self.set.pop_first().map(|(_, t)| t),
            _ => None,
        }
    }
}
