//! Dead-letter hooks in the embedded store: stored in the commit that ends their notification's
//! delivery, and only then.

use super::tests_operator::{entry, id, open, record, update};
use super::*;

/// A hook of notification `of`, as delivery builds it (the fields that matter here).
fn hook(n: u64, of: u64) -> NotificationRecord {
    let mut h = record(n, "unused", "ops.example", "unused");
    h.payment_id = None;
    h.payment_request_id = None;
    h.partner_id = None;
    h.order_key = format!("ops.example:443|dead-letter:{}", id(of));
    h.hook_of = Some(id(of));
    h
}

#[tokio::test]
async fn a_hook_is_stored_with_the_outcome_that_ends_its_notification() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .accept(vec![record(1, "p1", "a.example", "P1")])
        .await
        .unwrap();
    let applied = store
        .update_with_hooks(
            vec![update(1, State::Dead, 3)],
            vec![entry(1, 0)],
            vec![hook(50, 1)],
        )
        .await
        .unwrap();
    assert_eq!(applied, [Applied::Done]);
    let stored = store.get(id(50)).unwrap().expect("the hook is stored");
    assert_eq!(stored.hook_of, Some(id(1)));
    assert_eq!(stored.state, State::Pending);
    assert_eq!(store.get(id(1)).unwrap().unwrap().state, State::Dead);
    // Pending, so recovery delivers it after a restart; not found by its notification's payment.
    drop(store);
    let store = open(dir.path());
    let pending: Vec<_> = store.load_pending().unwrap().iter().map(|r| r.id).collect();
    assert_eq!(pending, [id(50)]);
    // No idempotency entry: a hook is never repeated at ingest, and its id-derived key would
    // crowd one shard of the in-memory table at restart.
    let keys: Vec<_> = store
        .load_idempotency(UnixMillis(0))
        .unwrap()
        .iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(keys, [id(1)]);
    let by_payment: Vec<_> = store
        .find_by_payment_id("p1")
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(by_payment, [id(1)]);
}

#[tokio::test]
async fn no_hook_is_stored_unless_the_commit_ends_a_pending_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .accept(vec![
            record(1, "p1", "a.example", "P1"),
            record(2, "p2", "a.example", "P1"),
        ])
        .await
        .unwrap();
    // Still pending: no end to report.
    store
        .update_with_hooks(
            vec![update(1, State::Pending, 1)],
            vec![],
            vec![hook(50, 1)],
        )
        .await
        .unwrap();
    assert_eq!(store.get(id(50)).unwrap(), None);
    // The end written again (an outcome write retried after it had in fact committed).
    store
        .update_with_hooks(vec![update(2, State::Failed, 1)], vec![], vec![hook(51, 2)])
        .await
        .unwrap();
    store
        .update_with_hooks(vec![update(2, State::Failed, 1)], vec![], vec![hook(52, 2)])
        .await
        .unwrap();
    assert!(store.get(id(51)).unwrap().is_some());
    assert_eq!(store.get(id(52)).unwrap(), None, "one end, one hook");
    // Another host's lease: the outcome is refused, and its hook with it.
    let mut foreign = update(1, State::Dead, 2);
    foreign.lease = Lease { owner: 7, token: 1 };
    let applied = store
        .update_with_hooks(vec![foreign], vec![], vec![hook(53, 1)])
        .await
        .unwrap();
    assert_eq!(applied, [Applied::LeaseLost]);
    assert_eq!(store.get(id(53)).unwrap(), None);
}
