//! Wall-clock time for the daemon, derived from tokio's clock.
//!
//! Stored times and the scheduler's are wall-clock milliseconds ([`UnixMillis`]); timers are
//! tokio instants. Deriving one from the other (wall time at start + tokio time elapsed since)
//! keeps them in step, so a test that pauses tokio's clock moves both together (see the tests).

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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn paused_tokio_time_moves_the_wall_clock_and_timers_together() {
        let clock = Clock::new();
        let start = clock.now();
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(clock.now(), start.plus(Duration::from_secs(90)));
        let due = start.plus(Duration::from_secs(100));
        assert_eq!(
            clock.instant_at(due),
            Instant::now() + Duration::from_secs(10)
        );
        // A shard sleeping until a scheduler time wakes when paused time reaches it.
        tokio::time::sleep_until(clock.instant_at(due)).await;
        assert_eq!(clock.now(), due);
        assert_eq!(
            clock.instant_at(start),
            Instant::now(),
            "a past time is now"
        );
    }
}
