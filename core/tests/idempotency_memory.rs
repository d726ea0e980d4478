//! Memory per entry, from the sizes of the table's allocations at capacity.
//!
//! This is the layout-based half of the figure in `IdempotencyTable::APPROX_BYTES_PER_ENTRY`; the
//! RSS-based half is printed by the `idempotency` bench.

use std::time::Duration;

use notifyd_core::idempotency::{Fingerprint, IdempotencyKey, IdempotencyTable};
use notifyd_core::{NotificationId, UnixMillis};

fn uniform(n: u128) -> u128 {
    // Keys are xxh3 outputs in production; an odd multiplier spreads the counter as well.
    n.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835)
}

/// Fills a table of `capacity`, then inserts `churn` times as many more (each evicting the oldest);
/// returns bytes per entry from the allocation sizes.
fn bytes_per_entry(capacity: usize, churn: usize) -> usize {
    let table = IdempotencyTable::new(capacity, Duration::from_secs(3600));
    for n in 0..(capacity * (1 + churn)) as u128 {
        let key = IdempotencyKey(uniform(n));
        table.check_and_reserve(
            key,
            Fingerprint(n),
            NotificationId::from_u128(n),
            UnixMillis(0),
        );
        table.confirm(key, NotificationId::from_u128(n));
    }
    let len = table.len();
    // Uniform keys do not fill 64 shards exactly evenly, so a few shards hit their share early.
    assert!(len > capacity * 99 / 100 && len <= capacity, "{len}");
    let per_entry = table.memory_bytes() / len;
    eprintln!("capacity {capacity}, churn x{churn}: {per_entry} B/entry");
    per_entry
}

#[test]
fn bytes_per_entry_at_one_million() {
    let per_entry = bytes_per_entry(1 << 20, 0);
    // The floor is the layout itself: a 64-byte ring item and an eighth of a 64-byte index line
    // of seven slots, full.
    assert!(per_entry >= 64 + 64 / 8, "{per_entry}");
    // The measured figure quoted in the doc comment.
    assert!((78..=82).contains(&per_entry), "{per_entry}");
}

#[test]
fn steady_churn_at_the_worst_capacity_stays_under_the_documented_bound() {
    // 64 shards of 12 545: one entry past what 2 048 index lines take at 7/8, so every shard's
    // index has just doubled and is at its emptiest. That is the worst steady state.
    let per_entry = bytes_per_entry(64 * 12_545, 1);
    assert!(
        per_entry <= IdempotencyTable::APPROX_BYTES_PER_ENTRY,
        "{per_entry} > documented {}",
        IdempotencyTable::APPROX_BYTES_PER_ENTRY
    );
    assert!(
        per_entry >= 84,
        "the doubling the doc comment describes: {per_entry}"
    );
}
