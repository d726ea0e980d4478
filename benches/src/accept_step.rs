//! The gateway's whole accept step as the benchmarks drive it: every iteration writes a counter
//! into the idempotency-key field, so every table check is a miss, against a table filled to the
//! daemon's default capacity, so every miss also evicts. Shared by the criterion bench
//! (`core_codec`) and the profiler loop (`examples/accept_loop.rs`).

use std::time::Duration;

use notifyd_core::idempotency::{Fingerprint, IdempotencyKey, IdempotencyTable};
use notifyd_core::{Api, NotificationId, UnixMillis};

/// Where in `env` the counter goes: the last 8 bytes of the idempotency-key field's value.
pub fn key_digits(env: &[u8], api: Api) -> usize {
    let field: &[u8] = match api {
        Api::NotifyVoid => b"\"voidRequestId\":",
        _ => b"\"paymentRequestId\":",
    };
    let after_key = env
        .windows(field.len())
        .position(|w| w == field)
        .expect("fixture has its key field")
        + field.len();
    // The fixtures are pretty-printed as the seeds show them: skip the space before the value.
    let start = after_key
        + env[after_key..]
            .iter()
            .position(|&b| b == b'"')
            .expect("a string value")
        + 1;
    let len = env[start..]
        .iter()
        .position(|&b| b == b'"')
        .expect("closed string");
    assert!(len >= 8, "key field shorter than the counter");
    start + len - 8
}

/// Writes `n` as 8 hex digits at `at` (see [`key_digits`]).
pub fn write_counter(buf: &mut [u8], at: usize, n: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in buf[at..at + 8].iter_mut().enumerate() {
        *b = HEX[((n >> (28 - 4 * i)) & 0xf) as usize];
    }
}

/// A table of `entries` settled entries, as after a restore: the state a gateway's misses meet.
pub fn filled_table(entries: u64) -> IdempotencyTable {
    let table = IdempotencyTable::new(entries as usize, Duration::from_secs(24 * 3600));
    let mut x: u128 = 0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834;
    for i in 0..entries {
        // A multiplicative sequence: uniform keys, like the xxh3 outputs the table sees.
        x = x.wrapping_mul(0x2360_ed05_1fc6_5da4_4385_df64_9fcc_f645) ^ u128::from(i);
        table.restore(
            IdempotencyKey(x),
            Fingerprint(x),
            NotificationId::new(UnixMillis(1), u128::from(i)),
            UnixMillis(1),
        );
    }
    table
}
