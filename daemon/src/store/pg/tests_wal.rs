//! What schema v2's additions cost per notification, in WAL bytes (a load-independent measure:
//! the machine is shared, wall-clock figures are noise). Run with `--ignored --nocapture`.
//!
//! A/B in one binary on one cluster: schema v2 as it is against v2 with its three search indexes
//! dropped, and outcomes with an attempt log entry against without; interleaved, twice.

use notifyd_core::UnixMillis;

use super::tests::{LONG, database, open, outcome, record, sql};
use crate::store::{AttemptEntry, SignatureNote, State, Store};

const N: u64 = 4000;
const BATCH: u64 = 200;

fn wal(url: &str) -> i64 {
    sql(url, "SELECT pg_current_wal_insert_lsn() - '0/0'")[0]
        .parse()
        .unwrap()
}

/// WAL bytes per notification for accepting `N`, and for finishing them (claim, outcome).
fn run(name: &str, indexes: bool, logged: bool) -> (f64, f64) {
    let Some((_cluster, url)) = database(name) else {
        return (0.0, 0.0);
    };
    let store = open(&url, LONG);
    if !indexes {
        sql(
            &url,
            "DROP INDEX nd_notification_partner, nd_notification_endpoint, nd_outcome_state",
        );
    }
    sql(&url, "CHECKPOINT");
    let before = wal(&url);
    for b in 0..N / BATCH {
        let records: Vec<_> = (0..BATCH)
            .map(|i| {
                let n = 1 + b * BATCH + i;
                let mut r = record(n, &format!("pay{n}"));
                r.next_attempt_at = Some(UnixMillis(u64::MAX / 4));
                r.delivery_started_at = Some(r.accepted_at);
                r
            })
            .collect();
        store.accept(records).wait().unwrap();
    }
    let accept = (wal(&url) - before) as f64 / N as f64;
    sql(&url, "UPDATE nd_queue SET due_at = 0");
    sql(&url, "CHECKPOINT");
    let before = wal(&url);
    loop {
        let claimed = store.claim(BATCH as usize).wait().unwrap();
        if claimed.is_empty() {
            break;
        }
        let (updates, log): (Vec<_>, Vec<_>) = claimed
            .iter()
            .map(|(r, lease)| {
                let u = outcome(r.id.accepted_at().0 - 1_000, *lease, State::Delivered);
                let e = AttemptEntry {
                    id: r.id,
                    at: UnixMillis(4_000),
                    duration_ms: 3,
                    http_status: Some(200),
                    result: "S SUCCESS".into(),
                    signature: SignatureNote::NotChecked,
                    response_body: bytes::Bytes::new(),
                };
                (u, e)
            })
            .unzip();
        if logged {
            store.update_logged(updates, log).wait().unwrap();
        } else {
            store.update(updates).wait().unwrap();
        }
    }
    let finish = (wal(&url) - before) as f64 / N as f64;
    (accept, finish)
}

#[test]
#[ignore = "a measurement"]
fn wal_bytes_per_notification() {
    for round in 0..2 {
        for (indexes, logged) in [(true, true), (false, false)] {
            let (accept, finish) = run(&format!("wal_{round}_{indexes}"), indexes, logged);
            eprintln!(
                "round {round}: search indexes {indexes}, attempt log {logged}: \
                 accept {accept:.0} B, claim+finish {finish:.0} B per notification"
            );
        }
    }
}
