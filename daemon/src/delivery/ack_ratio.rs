//! `ackRatio15m` of `GET /v1/endpoints`: the share of an endpoint's attempts in the last 15
//! minutes that the receiver answered `S`.
//!
//! Every attempt that ended counts (answers, timeouts, refused connections alike), so an endpoint
//! that answers nothing shows 0 rather than no figure. Memory is fixed per endpoint: 15 buckets of
//! one minute, each stamped with its minute so a bucket left from an earlier round reads as empty.

use std::collections::HashMap;

use notifyd_core::UnixMillis;

const BUCKETS: usize = 15;
const MINUTE_MS: u64 = 60_000;

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    minute: u64,
    acks: u32,
    total: u32,
}

/// The windows of one shard's endpoints.
#[derive(Debug, Default)]
pub(super) struct AckRatios {
    windows: HashMap<Box<str>, [Bucket; BUCKETS]>,
}

impl AckRatios {
    /// Counts an attempt of `endpoint` that ended at `now`.
    pub fn record(&mut self, endpoint: &str, now: UnixMillis, acked: bool) {
        let minute = now.0 / MINUTE_MS;
        let window = match self.windows.get_mut(endpoint) {
            Some(w) => w,
            None => self
                .windows
                .entry(endpoint.into())
                .or_insert([Bucket::default(); BUCKETS]),
        };
        let b = &mut window[(minute % BUCKETS as u64) as usize];
        if b.minute != minute {
            *b = Bucket {
                minute,
                acks: 0,
                total: 0,
            };
        }
        b.total = b.total.saturating_add(1);
        b.acks = b.acks.saturating_add(u32::from(acked));
    }

    /// The share of acks over the 15 minutes up to `now`; `None` without any attempt in them.
    pub fn ratio(&self, endpoint: &str, now: UnixMillis) -> Option<f64> {
        let minute = now.0 / MINUTE_MS;
        let window = self.windows.get(endpoint)?;
        let (acks, total) = window
            .iter()
            .filter(|b| b.total > 0 && b.minute + (BUCKETS as u64) > minute && b.minute <= minute)
            .fold((0u64, 0u64), |(a, t), b| {
                (a + u64::from(b.acks), t + u64::from(b.total))
            });
        (total > 0).then(|| acks as f64 / total as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_fifteen_minutes_and_forgets_older_ones() {
        let mut r = AckRatios::default();
        let t0 = UnixMillis(1_700_000_000_000);
        r.record("a:443", t0, true);
        r.record("a:443", t0, false);
        assert_eq!(r.ratio("a:443", t0), Some(0.5));
        assert_eq!(r.ratio("b:443", t0), None);
        // 14 minutes on, both still count; a third attempt fails.
        let t14 = UnixMillis(t0.0 + 14 * MINUTE_MS);
        r.record("a:443", t14, false);
        assert_eq!(r.ratio("a:443", t14), Some(1.0 / 3.0));
        // 15 minutes on, the first minute has left the window.
        let t15 = UnixMillis(t0.0 + 15 * MINUTE_MS);
        assert_eq!(r.ratio("a:443", t15), Some(0.0));
        // The same bucket reused a round later starts from zero.
        r.record("a:443", t15, true);
        assert_eq!(r.ratio("a:443", t15), Some(0.5));
    }
}
