//! The operator's reads on PostgreSQL answer as on the embedded store: the same notifications
//! and outcomes written to both, then every search, record, attempt log and dead letter list
//! compared. And a database left by schema v1 (or v2) migrates to the current schema with its
//! notifications intact.

use bytes::Bytes;
use notifyd_core::{Api, UnixMillis};
use uuid::Uuid;

use super::tests::{LONG, database, every_version, id, open, sql, stored_lease};
use crate::store::{
    AttemptEntry, AttemptUpdate, Lease, NotificationRecord, ReceiverIds, RedbStore,
    RedeliverOutcome, SearchFilter, SignatureNote, State, Store, StoreOptions,
};

/// Twelve notifications on two endpoints and two partners, four payments between them; each
/// heads its own order chain, so the accepting host leases every one to itself.
fn record(n: u64) -> NotificationRecord {
    let host = if n.is_multiple_of(2) {
        "even.example"
    } else {
        "odd.example"
    };
    let payment = format!("pay{}", n % 4);
    let mut r = super::tests::record(n, &payment);
    r.url = format!("https://{host}/notify");
    r.idem_key = 0x5EA0_0000 + u128::from(n);
    r.order_key = format!("{host}:443|{payment}-{n}");
    r.partner_id = Some(if n.is_multiple_of(3) { "P3" } else { "P1" }.into());
    r.delivery_started_at = Some(UnixMillis(1_000 + n));
    r
}

fn update(n: u64, state: State, attempts: u32, ids: Option<(&str, Option<&str>)>) -> AttemptUpdate {
    AttemptUpdate {
        id: id(n),
        lease: Lease::LOCAL,
        state,
        attempts,
        last_result: Some(format!("{} after {attempts}", state.as_str())),
        next_attempt_at: (state == State::Pending).then_some(UnixMillis(5_000 + n)),
        finished_at: state.is_finished().then_some(UnixMillis(9_000 + n)),
        receiver_ids: ids.map(|(a, p)| ReceiverIds {
            acquirer_id: Some(a.into()),
            psp_id: p.map(str::to_owned),
        }),
    }
}

fn entry(n: u64, k: u32) -> AttemptEntry {
    AttemptEntry {
        id: id(n),
        at: UnixMillis(2_000 + u64::from(k)),
        duration_ms: k,
        http_status: k.is_multiple_of(2).then_some(503),
        result: format!("U UNKNOWN_EXCEPTION #{k}"),
        signature: SignatureNote::Missing,
        response_body: Bytes::from(vec![b'x'; 3000]),
    }
}

/// Every filter the operator API passes, alone and combined, and small pages.
fn filters() -> Vec<SearchFilter> {
    let f = |g: fn(&mut SearchFilter)| {
        let mut s = SearchFilter {
            limit: 100,
            ..Default::default()
        };
        g(&mut s);
        s
    };
    vec![
        f(|_| {}),
        f(|s| s.endpoint = Some("even.example:443".into())),
        f(|s| {
            s.endpoint = Some("even.example:443".into());
            s.state = Some(State::Dead);
        }),
        f(|s| s.partner_id = Some("P3".into())),
        f(|s| {
            s.payment_id = Some("pay2".into());
            s.state = Some(State::Dead);
        }),
        f(|s| {
            s.payment_request_id = Some("req-pay1".into());
            s.partner_id = Some("P3".into());
        }),
        f(|s| {
            s.since = Some(UnixMillis(1_004));
            s.until = Some(UnixMillis(1_007));
        }),
        f(|s| s.payment_id = Some("nobody".into())),
        f(|s| s.state = Some(State::Pending)),
        f(|s| s.state = Some(State::Delivered)),
        f(|s| s.state = Some(State::Failed)),
        f(|s| s.limit = 5),
        f(|s| {
            s.limit = 5;
            s.before = Some(id(8));
        }),
        f(|s| {
            s.limit = 2;
            s.state = Some(State::Pending);
            s.partner_id = Some("P1".into());
        }),
    ]
}

/// Writes the same history to both stores: the embedded one ignores leases, PostgreSQL gets the
/// one its accept granted.
fn write_history(pg: &super::PgStore, redb: &RedbStore) {
    let records: Vec<NotificationRecord> = (1..=12).map(record).collect();
    let leases: Vec<Lease> = pg
        .accept(records.clone())
        .wait()
        .unwrap()
        .into_iter()
        .map(stored_lease)
        .collect();
    redb.accept(records).wait().unwrap();
    let lease = |n: u64| leases[usize::try_from(n - 1).unwrap()];
    let steps: Vec<(AttemptUpdate, Vec<AttemptEntry>)> = vec![
        (update(2, State::Dead, 3, None), vec![entry(2, 0)]),
        (update(6, State::Dead, 3, Some(("ACQ6", None))), vec![]),
        (update(7, State::Dead, 3, None), vec![entry(7, 0)]),
        (
            update(5, State::Pending, 1, Some(("ACQ5", None))),
            vec![entry(5, 0)],
        ),
        (
            update(9, State::Delivered, 1, Some(("ACQ9", Some("PSP9")))),
            vec![entry(9, 0)],
        ),
        // A retry names the receiver; the final answer names nobody: the ids stay.
        (
            update(10, State::Pending, 1, Some(("ACQ10", Some("PSP10")))),
            vec![entry(10, 0)],
        ),
        (update(10, State::Failed, 2, None), vec![entry(10, 1)]),
    ];
    let mut steps = steps;
    // 25 attempts of one notification: the log keeps the last 20.
    for k in 0..25 {
        steps.push((update(1, State::Pending, k + 1, None), vec![entry(1, k)]));
    }
    for (u, log) in steps {
        let n = u.id.accepted_at().0 - 1_000;
        let mut leased = u.clone();
        leased.lease = lease(n);
        let applied = pg.update_logged(vec![leased], log.clone()).wait().unwrap();
        assert_eq!(applied, [crate::store::Applied::Done], "{u:?}");
        redb.update_logged(vec![u], log).wait().unwrap();
    }
}

fn compare(pg: &super::PgStore, redb: &RedbStore) {
    for f in filters() {
        let (p, r) = (pg.search(&f).unwrap(), redb.search(&f).unwrap());
        assert_eq!(p, r, "search {f:?}");
    }
    for n in 1..=12 {
        assert_eq!(
            pg.get(id(n)).unwrap(),
            redb.get(id(n)).unwrap(),
            "record {n}"
        );
        assert_eq!(
            pg.attempt_log(id(n)).unwrap(),
            redb.attempt_log(id(n)).unwrap(),
            "attempt log {n}"
        );
    }
    assert_eq!(
        pg.dead_letters(100).unwrap(),
        redb.dead_letters(100).unwrap()
    );
    // Inquiry's lookups.
    for p in ["pay0", "pay1", "pay2", "pay3"] {
        assert_eq!(
            pg.find_by_payment_id(p).unwrap(),
            redb.find_by_payment_id(p).unwrap(),
            "by paymentId {p}"
        );
        let request = format!("req-{p}");
        for partner in [None, Some("P3")] {
            assert_eq!(
                pg.find_by_payment_request_id(partner, &request).unwrap(),
                redb.find_by_payment_request_id(partner, &request).unwrap(),
                "by paymentRequestId {request} {partner:?}"
            );
        }
    }
}

#[test]
fn search_records_and_attempt_logs_answer_as_on_the_embedded_store() {
    let Some((_cluster, url)) = database("operator_same") else {
        return;
    };
    let pg = open(&url, LONG);
    let dir = tempfile::tempdir().unwrap();
    let redb = RedbStore::open(dir.path(), StoreOptions::default()).unwrap();
    write_history(&pg, &redb);
    // The ids survive a final answer that names nobody, and both are shown.
    let ten = pg.get(id(10)).unwrap().unwrap();
    assert_eq!(ten.receiver_ids.psp_id.as_deref(), Some("PSP10"));
    assert_eq!(pg.attempt_log(id(1)).unwrap().len(), 20, "the last 20 only");
    assert_eq!(pg.attempt_log(id(1)).unwrap()[0], {
        let mut e = entry(1, 5);
        e.response_body
            .truncate(crate::store::attempts::MAX_BODY_BYTES);
        e
    });
    let total = filters()[0].clone();
    assert_eq!(pg.search(&total).unwrap().records.len(), 12);
    compare(&pg, &redb);

    // A redeliver starts a new delivery on both: pending, its start now, the log kept.
    for s in [&pg as &dyn Store, &redb] {
        let started = s.redeliver(id(2), UnixMillis(9_500)).wait().unwrap();
        assert!(
            matches!(started, RedeliverOutcome::Started(_)),
            "{started:?}"
        );
    }
    assert_eq!(
        pg.get(id(2)).unwrap().unwrap().delivery_started_at,
        Some(UnixMillis(9_500))
    );
    compare(&pg, &redb);
}

/// Builds, by hand, what schema `version` (1 or 2) left: a pending notification and a
/// delivered one, in v1's columns (which v2 left as they were).
fn old_database(url: &str, version: i32) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (mut client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        super::schema::migrate_to(&mut client, version)
            .await
            .unwrap();
    });
    let api = Api::NotifyPayment.tag();
    for n in [1u64, 2] {
        let (nid, key) = (
            Uuid::from_u128(id(n).as_u128()),
            Uuid::from_u128(0x5EA0_0000 + u128::from(n)),
        );
        sql(
            url,
            &format!(
                "INSERT INTO nd_notification (id, api, profile, url, body, idem_key, fingerprint,
                   order_key, payment_id, payment_request_id, partner_id, accepted_at)
                 VALUES ('{nid}', {api}, 'default', 'https://odd.example/notify', '\\x7b7d',
                   '{key}', '{key}', 'odd.example:443|v1-{n}', 'v1-{n}', 'req-v1', 'P1', {at});
                 INSERT INTO nd_idem (profile, idem_key, fingerprint, id, accepted_at)
                 VALUES ('default', '{key}', '{key}', '{nid}', {at})",
                at = 1_000 + n
            ),
        );
    }
    let (one, two) = (
        Uuid::from_u128(id(1).as_u128()),
        Uuid::from_u128(id(2).as_u128()),
    );
    sql(
        url,
        &format!(
            "INSERT INTO nd_queue (id, order_hash, due_at, attempts, next_attempt_at)
             VALUES ('{one}', 1, 1001, 2, 1001);
             INSERT INTO nd_outcome (id, state, attempts, last_result, finished_at)
             VALUES ('{two}', 2, 1, 'S SUCCESS', 3000)"
        ),
    );
}

#[test]
fn a_database_left_by_schema_v1_migrates_to_v2_with_its_notifications() {
    let Some((_cluster, url)) = database("migrate_v1") else {
        return;
    };
    old_database(&url, 1);
    assert_eq!(sql(&url, "SELECT max(version) FROM nd_schema"), ["1"]);
    let store = open(&url, LONG);
    assert_eq!(
        sql(&url, "SELECT version FROM nd_schema ORDER BY version"),
        every_version()
    );
    let pending = store.get(id(1)).unwrap().unwrap();
    assert_eq!((pending.state, pending.attempts), (State::Pending, 2));
    assert_eq!(pending.delivery_started_at, None, "v1 did not keep it");
    assert_eq!(pending.body.as_ref(), b"{}");
    let delivered = store.get(id(2)).unwrap().unwrap();
    assert_eq!(delivered.state, State::Delivered);
    assert_eq!(delivered.receiver_ids, ReceiverIds::default());
    let by_partner = store
        .search(&SearchFilter {
            partner_id: Some("P1".into()),
            endpoint: Some("odd.example:443".into()),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        by_partner.records.iter().map(|r| r.id).collect::<Vec<_>>(),
        [id(2), id(1)],
        "the new indexes cover rows written before them"
    );
    // The v1 row is claimable and its outcome gets a log under v2.
    let claimed = store.claim(10).wait().unwrap();
    assert_eq!(claimed.len(), 1);
    let mut done = update(1, State::Delivered, 3, Some(("ACQ", None)));
    done.lease = claimed[0].1;
    store
        .update_logged(vec![done], vec![entry(1, 0)])
        .wait()
        .unwrap();
    assert_eq!(store.attempt_log(id(1)).unwrap().len(), 1);
    assert_eq!(
        store
            .get(id(1))
            .unwrap()
            .unwrap()
            .receiver_ids
            .acquirer_id
            .as_deref(),
        Some("ACQ")
    );
}

#[test]
fn a_database_left_by_schema_v2_migrates_to_the_newest_and_stores_hooks_of_its_notifications() {
    let Some((_cluster, url)) = database("migrate_v2") else {
        return;
    };
    old_database(&url, 2);
    assert_eq!(sql(&url, "SELECT max(version) FROM nd_schema"), ["2"]);
    let store = open(&url, LONG);
    assert_eq!(
        sql(&url, "SELECT version FROM nd_schema ORDER BY version"),
        every_version()
    );
    let pending = store.get(id(1)).unwrap().unwrap();
    assert_eq!((pending.state, pending.hook_of), (State::Pending, None));
    assert_eq!(store.get(id(2)).unwrap().unwrap().state, State::Delivered);
    // The v2 row ends dead under v3 and later: its hook is stored with the outcome and names it.
    let claimed = store.claim(10).wait().unwrap();
    assert_eq!(claimed.len(), 1);
    let mut dead = update(1, State::Dead, 3, None);
    dead.lease = claimed[0].1;
    let mut hook = record(60);
    hook.payment_id = None;
    hook.payment_request_id = None;
    hook.partner_id = None;
    hook.order_key = format!("ops.example:443|dead-letter:{}", id(1));
    hook.hook_of = Some(id(1));
    store
        .update_with_hooks(vec![dead], vec![entry(1, 0)], vec![hook])
        .wait()
        .unwrap();
    assert_eq!(store.get(id(1)).unwrap().unwrap().state, State::Dead);
    assert_eq!(store.get(id(60)).unwrap().unwrap().hook_of, Some(id(1)));
}

#[test]
fn a_dead_letter_stored_by_schema_v3_redelivers_under_v4_with_a_claim_no_earlier_one_had() {
    // v3 kept no finishing claim: the redelivery cannot count on from it, and must still not
    // hand out a token the claims before it had (they counted from 1).
    let Some((_cluster, url)) = database("migrate_v3") else {
        return;
    };
    old_database(&url, 3);
    sql(&url, "UPDATE nd_outcome SET state = 3");
    let store = open(&url, LONG);
    assert_eq!(
        sql(&url, "SELECT version FROM nd_schema ORDER BY version"),
        every_version()
    );
    assert!(matches!(
        store.redeliver(id(2), UnixMillis(9_000)).wait().unwrap(),
        RedeliverOutcome::Started(_)
    ));
    let claimed = store.claim(10).wait().unwrap();
    let token = claimed
        .iter()
        .find(|(r, _)| r.id == id(2))
        .map(|(_, lease)| lease.token)
        .expect("the redelivered dead letter is claimed");
    assert!(token > 1_000_000, "not a count from 1 again: {token}");
}
