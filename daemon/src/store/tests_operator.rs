//! The operator's tables through the [`Store`] trait: the attempt log (bounded, in order,
//! pruned with its notification) and search (every filter, the cursor, time bounds).

use bytes::Bytes;
use notifyd_core::UnixMillis;

use super::*;

pub(super) use super::tests::id;

pub(super) fn record(n: u64, payment_id: &str, host: &str, partner: &str) -> NotificationRecord {
    NotificationRecord {
        url: format!("https://{host}/notify"),
        body: Bytes::from_static(b"{}"),
        idem_key: u128::from(n),
        fingerprint: u128::from(n),
        order_key: format!("{host}:443|{payment_id}"),
        partner_id: Some(partner.into()),
        ..super::tests::record(n, payment_id)
    }
}

pub(super) fn update(n: u64, state: State, attempts: u32) -> AttemptUpdate {
    AttemptUpdate {
        lease: crate::store::Lease::LOCAL,
        id: id(n),
        state,
        attempts,
        last_result: Some("x".into()),
        next_attempt_at: (state == State::Pending).then_some(UnixMillis(5_000)),
        finished_at: state.is_finished().then_some(UnixMillis(9_000)),
        receiver_ids: None,
    }
}

pub(super) fn entry(n: u64, k: u32) -> AttemptEntry {
    AttemptEntry {
        id: id(n),
        at: UnixMillis(2_000 + u64::from(k)),
        duration_ms: k,
        http_status: Some(200),
        result: format!("U UNKNOWN_EXCEPTION #{k}"),
        signature: SignatureNote::NotChecked,
        response_body: Bytes::from_static(b"{\"result\":{}}"),
    }
}

pub(super) fn open(dir: &std::path::Path) -> RedbStore {
    RedbStore::open(dir, StoreOptions::default()).expect("store opens")
}

#[tokio::test]
async fn attempt_log_keeps_the_last_20_in_order_and_goes_with_the_notification() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .accept(vec![
            record(1, "p1", "a.example", "P1"),
            record(2, "p2", "a.example", "P1"),
        ])
        .await
        .unwrap();
    for k in 0..25 {
        store
            .update_logged(vec![update(1, State::Pending, k + 1)], vec![entry(1, k)])
            .await
            .unwrap();
    }
    store
        .update_logged(vec![update(2, State::Pending, 1)], vec![entry(2, 0)])
        .await
        .unwrap();
    let log = store.attempt_log(id(1)).unwrap();
    // Breaking the bound (MAX_ENTRIES = 25) fails here: 25 entries.
    assert_eq!(log.len(), 20);
    assert_eq!(log[0], entry(1, 5), "the oldest kept is the 6th");
    assert_eq!(log[19], entry(1, 24), "the newest is last");
    assert_eq!(
        store.get(id(1)).unwrap().unwrap().attempts,
        25,
        "outcome in the same commit"
    );
    assert_eq!(
        store.attempt_log(id(2)).unwrap(),
        vec![entry(2, 0)],
        "logs never mix"
    );

    store
        .update_logged(vec![update(1, State::Dead, 25)], vec![entry(1, 25)])
        .await
        .unwrap();
    let pruned = store.prune(UnixMillis(10_000), 100).await.unwrap();
    assert_eq!(pruned.notifications, 1);
    assert!(
        store.attempt_log(id(1)).unwrap().is_empty(),
        "pruned with it"
    );
    assert_eq!(store.attempt_log(id(2)).unwrap().len(), 1);
}

fn ids(page: &SearchPage) -> Vec<u64> {
    page.records
        .iter()
        .map(|r| r.id.accepted_at().0 - 1_000)
        .collect()
}

#[tokio::test]
async fn search_intersects_filters_newest_first_with_a_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut records = Vec::new();
    for n in 1..=12 {
        let host = if n % 2 == 0 {
            "even.example"
        } else {
            "odd.example"
        };
        let partner = if n % 3 == 0 { "P3" } else { "P1" };
        records.push(record(n, &format!("pay{}", n % 4), host, partner));
    }
    store.accept(records).await.unwrap();
    for n in [2, 6, 7] {
        store.update(vec![update(n, State::Dead, 3)]).await.unwrap();
    }
    let search = |f: SearchFilter| store.search(&SearchFilter { limit: 100, ..f }).unwrap();

    assert_eq!(
        ids(&search(SearchFilter::default())),
        (1..=12).rev().collect::<Vec<_>>()
    );
    let even = search(SearchFilter {
        endpoint: Some("even.example:443".into()),
        ..Default::default()
    });
    assert_eq!(ids(&even), vec![12, 10, 8, 6, 4, 2]);
    let dead_even = search(SearchFilter {
        endpoint: Some("even.example:443".into()),
        state: Some(State::Dead),
        ..Default::default()
    });
    assert_eq!(ids(&dead_even), vec![6, 2]);
    let p3 = search(SearchFilter {
        partner_id: Some("P3".into()),
        ..Default::default()
    });
    assert_eq!(ids(&p3), vec![12, 9, 6, 3]);
    let pay2 = search(SearchFilter {
        payment_id: Some("pay2".into()),
        state: Some(State::Dead),
        ..Default::default()
    });
    assert_eq!(ids(&pay2), vec![6, 2]);
    let req = search(SearchFilter {
        payment_request_id: Some("req-pay1".into()),
        partner_id: Some("P3".into()),
        ..Default::default()
    });
    assert_eq!(ids(&req), vec![9]);
    let window = search(SearchFilter {
        since: Some(UnixMillis(1_004)),
        until: Some(UnixMillis(1_007)),
        ..Default::default()
    });
    assert_eq!(ids(&window), vec![7, 6, 5, 4], "both bounds inclusive");
    let none = search(SearchFilter {
        payment_id: Some("nobody".into()),
        ..Default::default()
    });
    assert!(none.records.is_empty() && none.next.is_none());

    // Pages of 5 cover everything exactly once.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .search(&SearchFilter {
                limit: 5,
                before,
                ..Default::default()
            })
            .unwrap();
        seen.extend(ids(&page));
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, (1..=12).rev().collect::<Vec<_>>());
}

#[tokio::test]
async fn a_state_change_moves_the_state_index_and_pruning_clears_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .accept(vec![record(1, "p", "h.example", "P1")])
        .await
        .unwrap();
    let by = |s: State| {
        ids(&store
            .search(&SearchFilter {
                state: Some(s),
                limit: 10,
                ..Default::default()
            })
            .unwrap())
    };
    assert_eq!(by(State::Pending), vec![1]);
    store
        .update(vec![update(1, State::Failed, 1)])
        .await
        .unwrap();
    assert_eq!(by(State::Pending), Vec::<u64>::new());
    assert_eq!(by(State::Failed), vec![1]);
    store.redeliver(id(1), UnixMillis(9_500)).await.unwrap();
    assert_eq!(by(State::Pending), vec![1], "redelivery moves it back");
    store
        .update(vec![update(1, State::Delivered, 1)])
        .await
        .unwrap();
    store.prune(UnixMillis(10_000), 10).await.unwrap();
    assert_eq!(by(State::Delivered), Vec::<u64>::new());
}

/// Bytes and commit time one attempt log entry adds. Run on demand:
/// `cargo test -p notifyd --lib attempt_log_cost -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run on demand"]
#[allow(clippy::print_stdout)] // its figures are its output
async fn attempt_log_cost() {
    const N: u64 = 20_000;
    let s_body = Bytes::from_static(
        br#"{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"}}"#,
    );
    for (label, body, logged) in [
        ("outcome only", Bytes::new(), false),
        ("outcome + entry, no body", Bytes::new(), true),
        ("outcome + entry with S body", s_body.clone(), true),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(open(dir.path()));
        let records: Vec<_> = (0..N)
            .map(|n| record(n, &format!("pay{n}"), "m.example", "P1"))
            .collect();
        for chunk in records.chunks(1000) {
            store.accept(chunk.to_vec()).await.unwrap();
        }
        let before = stored(&store);
        let started = std::time::Instant::now();
        // 64 writers, as 64 attempts in flight would be: group commit shares the fsyncs.
        let tasks: Vec<_> = (0..64u64)
            .map(|t| {
                let store = store.clone();
                let body = body.clone();
                tokio::spawn(async move {
                    let mut n = t;
                    while n < N {
                        let u = update(n, State::Pending, 1);
                        if logged {
                            let mut e = entry(n, 0);
                            e.result = "S SUCCESS".into();
                            e.response_body = body.clone();
                            store.update_logged(vec![u], vec![e]).await.unwrap();
                        } else {
                            store.update(vec![u]).await.unwrap();
                        }
                        n += 64;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let secs = started.elapsed().as_secs_f64();
        let grown = stored(&store).saturating_sub(before);
        println!(
            "attempt_log_cost: {label}: {:.0} updates/s, store grew {:.1} bytes per attempt",
            N as f64 / secs,
            grown as f64 / N as f64
        );
    }
}

fn stored(store: &RedbStore) -> u64 {
    let database = store.slot_for_tests().unwrap();
    let txn = database.begin_write().unwrap();
    let stats = txn.stats().unwrap();
    txn.abort().unwrap();
    stats.stored_bytes()
}

/// Search latency over a store of 1 M notifications. Run on demand (release is far faster):
/// `cargo test --release -p notifyd --lib search_at_1m -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run on demand; builds 1 M records"]
#[allow(clippy::print_stdout)] // its figures are its output
async fn search_at_1m() {
    const N: u64 = 1_000_000;
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let built = std::time::Instant::now();
    let mut batch = Vec::with_capacity(5000);
    for n in 0..N {
        // 1 000 endpoints, 50 partners, 2 notifications per payment.
        let mut r = record(
            n,
            &format!("pay{}", n / 2),
            &format!("m{}.example", n % 1000),
            &format!("P{}", n % 50),
        );
        if n % 97 == 0 {
            r.state = State::Dead;
            r.finished_at = Some(UnixMillis(9_000));
            r.next_attempt_at = None;
        } else if n % 3 != 0 {
            r.state = State::Delivered;
            r.finished_at = Some(UnixMillis(9_000));
            r.next_attempt_at = None;
        }
        batch.push(r);
        if batch.len() == 5000 {
            store.accept(std::mem::take(&mut batch)).await.unwrap();
        }
    }
    println!(
        "search_at_1m: built in {:.1}s",
        built.elapsed().as_secs_f64()
    );
    let cases: Vec<(&str, SearchFilter)> = vec![
        ("newest 100, no filter", SearchFilter::default()),
        (
            "paymentId",
            SearchFilter {
                payment_id: Some("pay123456".into()),
                ..Default::default()
            },
        ),
        (
            "endpoint",
            SearchFilter {
                endpoint: Some("m7.example:443".into()),
                ..Default::default()
            },
        ),
        (
            "state=dead",
            SearchFilter {
                state: Some(State::Dead),
                ..Default::default()
            },
        ),
        (
            "endpoint + state=dead (rare pair)",
            SearchFilter {
                endpoint: Some("m7.example:443".into()),
                state: Some(State::Dead),
                ..Default::default()
            },
        ),
        (
            "partner + endpoint + state=pending + since/until",
            SearchFilter {
                partner_id: Some("P7".into()),
                endpoint: Some("m7.example:443".into()),
                state: Some(State::Pending),
                since: Some(UnixMillis(1_000 + 100_000)),
                until: Some(UnixMillis(1_000 + 900_000)),
                ..Default::default()
            },
        ),
        (
            "no match (partner P1 never at endpoint m2)",
            SearchFilter {
                partner_id: Some("P1".into()),
                endpoint: Some("m2.example:443".into()),
                ..Default::default()
            },
        ),
    ];
    for (label, f) in cases {
        let f = SearchFilter { limit: 100, ..f };
        let mut best = f64::MAX;
        let mut found = 0;
        for _ in 0..5 {
            let t = std::time::Instant::now();
            found = store.search(&f).unwrap().records.len();
            best = best.min(t.elapsed().as_secs_f64() * 1000.0);
        }
        println!("search_at_1m: {label}: {found} found in {best:.2} ms (best of 5)");
    }
}

#[tokio::test]
async fn operators_holds_outlive_a_reopen_and_a_resume_is_kept_too() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        assert!(store.holds().await.unwrap().is_empty(), "a fresh store");
        store
            .set_hold("a.example:443", true, UnixMillis(1))
            .await
            .unwrap();
        store
            .set_hold("b.example:443", true, UnixMillis(2))
            .await
            .unwrap();
        store
            .set_hold("b.example:443", false, UnixMillis(3))
            .await
            .unwrap();
    }
    let store = open(dir.path());
    assert_eq!(store.holds().await.unwrap(), ["a.example:443"]);
}
