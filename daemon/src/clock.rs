//! Wall-clock time for the daemon, derived from tokio's clock.
//!
//! Stored times are wall-clock milliseconds ([`UnixMillis`]); timers are tokio instants. Deriving
//! one from the other (wall time at start + tokio time elapsed since) keeps them in step, and lets
//! tests with a paused tokio clock move both together.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use notifyd_core::UnixMillis;
use tokio::time::Instant;

/// A wall clock anchored at creation and advanced by tokio's monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    wall_at_start: UnixMillis,
    instant_at_start: Instant,
}

impl Clock {
    /// Anchors the clock at the current wall time.
    pub fn new() -> Clock {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        Clock {
            wall_at_start: UnixMillis(wall),
            instant_at_start: Instant::now(),
        }
    }

    /// Now, as wall-clock milliseconds.
    pub fn now(&self) -> UnixMillis {
        self.wall_at_start.plus(self.instant_at_start.elapsed())
    }

    /// The tokio instant at which wall time `t` arrives (now, if it is past).
    pub fn instant_at(&self, t: UnixMillis) -> Instant {
        let now = self.now();
        Instant::now() + Duration::from_millis(t.0.saturating_sub(now.0))
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}
