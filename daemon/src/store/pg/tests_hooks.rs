//! Dead-letter hooks on PostgreSQL: stored in the outcome transaction that ends their
//! notification's delivery, leased to the writing host, and only then.

use uuid::Uuid;

use super::tests::{LONG, database, id, open, outcome, record, sql, stored_lease};
use crate::store::{Applied, Lease, NotificationRecord, State, Store};

/// A hook of notification `of`, as delivery builds it (the fields that matter here).
fn hook(n: u64, of: u64) -> NotificationRecord {
    let mut h = record(n, "unused");
    h.url = "https://ops.example/dl".into();
    h.payment_id = None;
    h.payment_request_id = None;
    h.partner_id = None;
    h.idem_key = id(n).as_u128();
    h.fingerprint = 0;
    h.order_key = format!("ops.example|dead-letter:{}", id(of));
    h.hook_of = Some(id(of));
    h
}

fn text(n: u64) -> String {
    Uuid::from_u128(id(n).as_u128()).to_string()
}

#[test]
fn a_hook_is_stored_with_the_outcome_that_ends_its_notification_leased_to_the_writer() {
    let Some((_cluster, url)) = database("hook_stored") else {
        return;
    };
    let store = open(&url, LONG);
    let lease = stored_lease(store.accept(vec![record(1, "p1")]).wait().unwrap()[0]);
    let applied = store
        .update_with_hooks(
            vec![outcome(1, lease, State::Dead)],
            vec![],
            vec![hook(50, 1)],
        )
        .wait()
        .unwrap();
    assert_eq!(applied, [Applied::Done]);
    assert_eq!(store.get(id(1)).unwrap().unwrap().state, State::Dead);
    let stored = store.get(id(50)).unwrap().expect("the hook is stored");
    assert_eq!(stored.hook_of, Some(id(1)), "hook_of is read back");
    assert_eq!(stored.state, State::Pending);
    assert_eq!(stored.body, hook(50, 1).body);
    // No idempotency row, and not found by its notification's payment.
    assert_eq!(
        sql(
            &url,
            &format!("SELECT count(*) FROM nd_idem WHERE id = '{}'", text(50))
        ),
        ["0"]
    );
    let by_payment: Vec<_> = store
        .find_by_payment_id("p1")
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(by_payment, [id(1)]);
    // Leased to the writer under its first grant: another host's claim does not take it...
    let other = open(&url, LONG);
    assert!(other.claim(10).wait().unwrap().is_empty(), "leased");
    // ...until the writer gives it back (as at shutdown; the release is fenced by that grant):
    // then any host's claim does, hook_of and all, so its end fires no hook there either.
    store
        .release(vec![(id(50), Lease::first(store.host()))])
        .wait()
        .unwrap();
    let claimed = other.claim(10).wait().unwrap();
    assert_eq!(claimed.len(), 1, "released under Lease::first");
    assert_eq!(claimed[0].0.hook_of, Some(id(1)));
    let done = other
        .update(vec![outcome(50, claimed[0].1, State::Delivered)])
        .wait()
        .unwrap();
    assert_eq!(done, [Applied::Done]);
    assert_eq!(store.get(id(50)).unwrap().unwrap().state, State::Delivered);
}

#[test]
fn no_hook_is_stored_for_a_lost_lease_a_repeat_or_an_end_that_is_no_dead_letter() {
    let Some((_cluster, url)) = database("hook_refused") else {
        return;
    };
    let store = open(&url, LONG);
    let leases: Vec<Lease> = store
        .accept(vec![record(1, "p1"), record(2, "p2"), record(3, "p3")])
        .wait()
        .unwrap()
        .into_iter()
        .map(stored_lease)
        .collect();
    // Still pending: no end to report.
    store
        .update_with_hooks(
            vec![outcome(1, leases[0], State::Pending)],
            vec![],
            vec![hook(50, 1)],
        )
        .wait()
        .unwrap();
    assert_eq!(store.get(id(50)).unwrap(), None);
    // The end written again (an outcome write retried after it had in fact committed).
    let first = store
        .update_with_hooks(
            vec![outcome(2, leases[1], State::Failed)],
            vec![],
            vec![hook(51, 2)],
        )
        .wait()
        .unwrap();
    let again = store
        .update_with_hooks(
            vec![outcome(2, leases[1], State::Failed)],
            vec![],
            vec![hook(52, 2)],
        )
        .wait()
        .unwrap();
    // The repeat finds the outcome stored as it says: done (claim.rs LANDED), yet no hook.
    assert_eq!((first, again), (vec![Applied::Done], vec![Applied::Done]));
    assert!(store.get(id(51)).unwrap().is_some());
    assert_eq!(store.get(id(52)).unwrap(), None, "one end, one hook");
    // A lease that is no longer the notification's: refused, and its hook with it.
    let stale = Lease {
        token: leases[0].token + 7,
        ..leases[0]
    };
    let applied = store
        .update_with_hooks(
            vec![outcome(1, stale, State::Dead)],
            vec![],
            vec![hook(53, 1)],
        )
        .wait()
        .unwrap();
    assert_eq!(applied, [Applied::LeaseLost]);
    assert_eq!(store.get(id(53)).unwrap(), None);
    assert_eq!(store.get(id(1)).unwrap().unwrap().state, State::Pending);
    // Delivered is no dead letter: a hook handed in with it is dropped.
    store
        .update_with_hooks(
            vec![outcome(3, leases[2], State::Delivered)],
            vec![],
            vec![hook(54, 3)],
        )
        .wait()
        .unwrap();
    assert_eq!(store.get(id(54)).unwrap(), None);
    assert_eq!(
        sql(
            &url,
            "SELECT count(*) FROM nd_notification WHERE hook_of IS NOT NULL"
        ),
        ["1"]
    );
}
