//! `nd_retry_policy`: when to retry a failed delivery (PROTOCOL.md §8, CONTRACT.md §3).

use std::time::Duration;

use notifyd_core::backoff::RetryPolicy;

use crate::handle::{ArcCastable, Out, arc_free, arc_into_ptr, arc_ref};
use crate::panic::{ffi_boundary, ffi_boundary_or_default};
use crate::result::{map_policy_error, nd_result};

/// A validated retry policy. Immutable: its methods take `const nd_retry_policy *` and may be
/// called concurrently from any thread. Released by `nd_retry_policy_free`.
#[derive(Debug)]
pub struct nd_retry_policy {
    _private: [u8; 0],
}

impl ArcCastable for nd_retry_policy {
    type Rust = RetryPolicy;
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Alipay's schedule: attempts at +0, +2 min, +10 min, +10 min, +1 h, +2 h, +6 h and +15 h after
/// the previous one, ±10 % jitter. On success `*out` receives the policy.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nd_retry_policy_alipay_default(
    out: *mut *const nd_retry_policy,
) -> nd_result {
    ffi_boundary! {
        // SAFETY: the caller's out-pointer, as documented above.
        let out = unsafe { Out::new(out) }?;
        out.write(arc_into_ptr(RetryPolicy::alipay_default()));
        Ok(())
    }
}

/// A fixed schedule of `count` delays in milliseconds (`delays_ms[0]` before attempt 1, then one
/// per further attempt) with `jitter` in [0, 1). Errors: `ND_RESULT_POLICY_*`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nd_retry_policy_schedule(
    delays_ms: *const u64,
    count: usize,
    jitter: f64,
    out: *mut *const nd_retry_policy,
) -> nd_result {
    ffi_boundary! {
        // SAFETY: the caller's out-pointer, as documented above.
        let out = unsafe { Out::new(out) }?;
        let delays: &[u64] = if count == 0 {
            &[]
        } else if delays_ms.is_null() {
            return Err(nd_result::NullParameter);
        } else {
            // SAFETY: non-NULL and `count` readable u64s, as documented above.
            unsafe { std::slice::from_raw_parts(delays_ms, count) }
        };
        let delays = delays.iter().map(|&d| Duration::from_millis(d)).collect();
        let policy = RetryPolicy::schedule(delays, jitter).map_err(map_policy_error)?;
        out.write(arc_into_ptr(policy));
        Ok(())
    }
}

/// Exponential backoff: `initial_ms × multiplier^(k-1)` after `k` failed attempts, at most
/// `max_delay_ms`, at most `max_attempts` attempts, none starting later than `deadline_ms` after
/// the first (0 = no deadline), with `jitter` in [0, 1). Errors: `ND_RESULT_POLICY_*`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nd_retry_policy_exponential(
    initial_ms: u64,
    multiplier: f64,
    max_delay_ms: u64,
    max_attempts: u32,
    deadline_ms: u64,
    jitter: f64,
    out: *mut *const nd_retry_policy,
) -> nd_result {
    ffi_boundary! {
        // SAFETY: the caller's out-pointer, as documented above.
        let out = unsafe { Out::new(out) }?;
        let deadline = (deadline_ms != 0).then(|| Duration::from_millis(deadline_ms));
        let policy = RetryPolicy::exponential(
            Duration::from_millis(initial_ms),
            multiplier,
            Duration::from_millis(max_delay_ms),
            max_attempts,
            deadline,
            jitter,
        )
        .map_err(map_policy_error)?;
        out.write(arc_into_ptr(policy));
        Ok(())
    }
}

/// The delay in milliseconds before attempt `attempts_made + 1`, after `attempts_made` failed
/// attempts and `elapsed_ms` since the first one started. `rand01` in [0, 1) drives the jitter
/// (0.5 = none). `ND_RESULT_RETRIES_EXHAUSTED` when no attempt follows (`*out_ms` untouched).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nd_retry_policy_next_delay(
    policy: *const nd_retry_policy,
    attempts_made: u32,
    elapsed_ms: u64,
    rand01: f64,
    out_ms: *mut u64,
) -> nd_result {
    ffi_boundary! {
        // SAFETY: a live policy and the caller's out-pointer, as documented above.
        let (policy, out) = unsafe { (arc_ref(policy)?, Out::new(out_ms)?) };
        let delay = policy
            .next_delay(attempts_made, Duration::from_millis(elapsed_ms), rand01)
            .ok_or(nd_result::RetriesExhausted)?;
        out.write(ms(delay));
        Ok(())
    }
}

/// The wait after a throttled answer, given the normally scheduled delay `scheduled_ms` and the
/// receiver's `Retry-After` in milliseconds (-1 when absent): `max(4 × scheduled, 60 s)` capped
/// at 15 h, or a longer `Retry-After`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nd_retry_policy_throttled_delay(
    policy: *const nd_retry_policy,
    scheduled_ms: u64,
    retry_after_ms: i64,
    out_ms: *mut u64,
) -> nd_result {
    ffi_boundary! {
        // SAFETY: a live policy and the caller's out-pointer, as documented above.
        let (policy, out) = unsafe { (arc_ref(policy)?, Out::new(out_ms)?) };
        let retry_after = match retry_after_ms {
            -1 => None,
            v if v >= 0 => Some(Duration::from_millis(v.unsigned_abs())),
            _ => return Err(nd_result::InvalidArgument),
        };
        out.write(ms(policy.throttled_delay(Duration::from_millis(scheduled_ms), retry_after)));
        Ok(())
    }
}

/// The most attempts the policy allows, the first included; 0 when `policy` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nd_retry_policy_max_attempts(policy: *const nd_retry_policy) -> u32 {
    ffi_boundary_or_default! {
        // SAFETY: NULL or a live policy, as documented above.
        unsafe { arc_ref(policy) }.map_or(0, RetryPolicy::max_attempts)
    }
}

/// Releases the policy. NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nd_retry_policy_free(policy: *const nd_retry_policy) {
    ffi_boundary_or_default! {
        // SAFETY: NULL or a policy from an nd_retry_policy constructor not yet freed.
        unsafe { arc_free(policy) }
    }
}
