//! What the hosts of one database share beyond the queue: throttle pauses, operators' holds,
//! and history pruning led by one host at a time.

use std::time::Duration;

use notifyd_core::UnixMillis;

use super::tests::{LONG, database, id, open, outcome, record, sql, stored_lease};
use crate::store::{NotificationRecord, State, Store};

const THROTTLED: &str = "merchant.example.com";

fn elsewhere(n: u64) -> NotificationRecord {
    let mut r = record(n, &format!("other-{n}"));
    r.order_key = format!("other.example.com|other-{n}");
    r
}

#[test]
fn a_pause_one_host_records_keeps_every_host_from_claiming_the_endpoint() {
    let Some((_cluster, url)) = database("pause") else {
        return;
    };
    let (a, b) = (open(&url, LONG), open(&url, LONG));
    a.accept(vec![record(1, "p1"), record(2, "p2"), elsewhere(3)])
        .wait()
        .unwrap();
    // Nobody holds them: due, claimable by any host.
    a.release_all().wait().unwrap();
    assert!(b.paused_endpoints().wait().unwrap().is_empty());

    a.pause_endpoint(THROTTLED, Duration::from_secs(5))
        .wait()
        .unwrap();
    let seen = b.paused_endpoints().wait().unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].0, THROTTLED);
    assert!(
        seen[0].1 > Duration::from_secs(4) && seen[0].1 <= Duration::from_secs(5),
        "on the database's clock: {seen:?}"
    );
    // A shorter pause learned later never shortens it.
    b.pause_endpoint(THROTTLED, Duration::from_millis(100))
        .wait()
        .unwrap();
    assert!(b.paused_endpoints().wait().unwrap()[0].1 > Duration::from_secs(4));

    let claimed: Vec<_> = b
        .claim(10)
        .wait()
        .unwrap()
        .into_iter()
        .map(|(r, _)| r.id)
        .collect();
    assert_eq!(
        claimed,
        [id(3)],
        "the paused endpoint's rows wait for the pause's end"
    );
    let due = sql(
        &url,
        "SELECT (q.due_at >= e.paused_until)::text FROM nd_queue q, nd_endpoint e
         WHERE q.id IN (SELECT id FROM nd_notification WHERE order_key LIKE 'merchant.%')",
    );
    assert_eq!(due, ["true", "true"]);
}

#[test]
fn a_pause_ends_for_every_host_when_it_runs_out() {
    let Some((_cluster, url)) = database("pause_ends") else {
        return;
    };
    let (a, b) = (open(&url, LONG), open(&url, LONG));
    a.accept(vec![record(1, "p1")]).wait().unwrap();
    a.release_all().wait().unwrap();
    a.pause_endpoint(THROTTLED, Duration::from_millis(300))
        .wait()
        .unwrap();
    assert!(b.claim(10).wait().unwrap().is_empty());
    // Bounded: the pause is 300 ms; polling stops after 5 s.
    let start = std::time::Instant::now();
    loop {
        if b.claim(10).wait().unwrap().len() == 1 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "never claimable again"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(b.paused_endpoints().wait().unwrap().is_empty());
}

#[test]
fn one_host_prunes_at_a_time_and_only_history_past_retention_goes() {
    let Some((_cluster, url)) = database("prune_leader") else {
        return;
    };
    let (a, b) = (open(&url, LONG), open(&url, LONG));
    let answers = a
        .accept((1..=6).map(|n| record(n, &format!("p{n}"))).collect())
        .wait()
        .unwrap();
    // 1..=4 finish at 5 000 (past retention), 5 at 50 000 (recent), 6 stays pending.
    for (n, answer) in (1..=5).zip(answers) {
        let mut done = outcome(n, stored_lease(answer), State::Delivered);
        if n == 5 {
            done.finished_at = Some(UnixMillis(50_000));
        }
        let entry = crate::store::AttemptEntry {
            id: id(n),
            at: UnixMillis(4_000),
            duration_ms: 1,
            http_status: Some(200),
            result: "S SUCCESS".into(),
            signature: crate::store::SignatureNote::NotChecked,
            response_body: bytes::Bytes::new(),
        };
        a.update_logged(vec![done], vec![entry]).wait().unwrap();
    }
    assert_eq!(
        sql(&url, "SELECT count(*) FROM nd_queue"),
        ["1"],
        "finished notifications left the hot table at once"
    );

    // Another host is mid-batch (holds the leader lock): this one prunes nothing meanwhile.
    let leader = std::thread::spawn({
        let url = url.clone();
        move || {
            sql(
                &url,
                &format!(
                    "SELECT pg_advisory_lock({}); SELECT pg_sleep(1.5);",
                    super::read::PRUNE_LOCK
                ),
            )
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    let meanwhile = a.prune(UnixMillis(10_000), 2).wait().unwrap();
    assert_eq!((meanwhile.notifications, meanwhile.more), (0, false));
    leader.join().unwrap();

    // Both hosts prune at once, in batches of 2, until neither finds more.
    let run = |s: &super::PgStore| {
        let mut removed = 0;
        loop {
            let stats = s.prune(UnixMillis(10_000), 2).wait().unwrap();
            removed += stats.notifications;
            if !stats.more {
                return removed;
            }
        }
    };
    let (ra, rb) = std::thread::scope(|scope| {
        let ha = scope.spawn(|| run(&a));
        let hb = scope.spawn(|| run(&b));
        (ha.join().unwrap(), hb.join().unwrap())
    });
    // Whichever host lost a race for the lock tries again next round: run both once more.
    let late = run(&a) + run(&b);
    assert_eq!(ra + rb + late, 4, "each old notification removed once");
    for n in 1..=4 {
        assert_eq!(a.get(id(n)).unwrap(), None, "{n} is past retention");
    }
    assert_eq!(a.get(id(5)).unwrap().unwrap().state, State::Delivered);
    assert_eq!(a.get(id(6)).unwrap().unwrap().state, State::Pending);
    assert_eq!(
        sql(&url, "SELECT count(*) FROM nd_attempt"),
        ["1"],
        "the pruned notifications' attempt logs went with them"
    );
}

#[test]
fn an_operators_hold_recorded_by_one_host_is_read_by_every_host_and_keeps_pauses() {
    let Some((_cluster, url)) = database("holds") else {
        return;
    };
    let (a, b) = (open(&url, LONG), open(&url, LONG));
    assert!(b.holds().wait().unwrap().is_empty());
    a.pause_endpoint(THROTTLED, Duration::from_secs(60))
        .wait()
        .unwrap();
    a.set_hold(THROTTLED, true, UnixMillis(1)).wait().unwrap();
    a.set_hold("other.example.com", true, UnixMillis(1))
        .wait()
        .unwrap();
    // Held twice is held once.
    b.set_hold(THROTTLED, true, UnixMillis(2)).wait().unwrap();
    let mut held = b.holds().wait().unwrap();
    held.sort();
    assert_eq!(held, ["merchant.example.com", "other.example.com"]);
    assert_eq!(
        b.paused_endpoints().wait().unwrap().len(),
        1,
        "the hold left the pause as it was"
    );
    b.set_hold(THROTTLED, false, UnixMillis(3)).wait().unwrap();
    assert_eq!(a.holds().wait().unwrap(), ["other.example.com"]);
    a.set_hold("other.example.com", false, UnixMillis(3))
        .wait()
        .unwrap();
    // Resuming what nobody held changes nothing.
    a.set_hold("never.example.com", false, UnixMillis(4))
        .wait()
        .unwrap();
    assert!(a.holds().wait().unwrap().is_empty());
}

#[test]
fn no_host_claims_the_rows_of_a_held_endpoint_so_others_work_is_not_crowded_out() {
    let Some((_cluster, url)) = database("hold_claims") else {
        return;
    };
    let (a, b) = (open(&url, LONG), open(&url, LONG));
    a.accept(vec![record(1, "p1"), record(2, "p2"), elsewhere(3)])
        .wait()
        .unwrap();
    a.release_all().wait().unwrap();
    a.set_hold(THROTTLED, true, UnixMillis(1)).wait().unwrap();
    let ids = |claimed: Vec<(NotificationRecord, crate::store::Lease)>| {
        let mut ids: Vec<_> = claimed.into_iter().map(|(r, _)| r.id).collect();
        ids.sort();
        ids
    };
    assert_eq!(
        ids(b.claim(10).wait().unwrap()),
        [id(3)],
        "only the other endpoint's"
    );
    a.set_hold(THROTTLED, false, UnixMillis(2)).wait().unwrap();
    // An endpoint only this host holds (its own answers about our side) is skipped too.
    assert!(
        b.claim_except(10, vec![THROTTLED.into()])
            .wait()
            .unwrap()
            .is_empty()
    );
    assert_eq!(ids(b.claim(10).wait().unwrap()), [id(1), id(2)]);
}

/// What a claim costs while an operator holds an endpoint with a large due backlog, whose rows
/// the hold parks (`pause.rs`) so claims do not walk past them. 100 000 held rows and 500
/// others, claims of 500. Run with `--ignored --nocapture`.
#[test]
#[ignore = "a measurement"]
fn claim_cost_with_a_held_backlog() {
    let Some((_cluster, url)) = database("held_claim_cost") else {
        return;
    };
    let (a, b) = (open(&url, LONG), open(&url, LONG));
    let held = 100_000u64;
    for chunk in (1..=held).collect::<Vec<_>>().chunks(2_000) {
        a.accept(chunk.iter().map(|&n| record(n, &format!("h{n}"))).collect())
            .wait()
            .unwrap();
    }
    a.accept((held + 1..=held + 500).map(elsewhere).collect())
        .wait()
        .unwrap();
    a.release_all().wait().unwrap();
    sql(&url, "VACUUM ANALYZE");
    let time = |label: &str| {
        let t = std::time::Instant::now();
        let n = b.claim(500).wait().unwrap().len();
        eprintln!("{label}: claimed {n} in {:?}", t.elapsed());
    };
    let timed = |label: &str, held: bool| {
        let t = std::time::Instant::now();
        a.set_hold(THROTTLED, held, UnixMillis(1)).wait().unwrap();
        eprintln!("{label} in {:?}", t.elapsed());
    };
    timed("hold (parks 100 000 rows)", true);
    time("held backlog of 100 000, first claim");
    time("held backlog of 100 000, nothing left to claim");
    time("held backlog of 100 000, again");
    timed("resume (unparks them)", false);
    time("no hold, claim of 500");
}

/// How many of the endpoint's rows are parked, and whether it is held.
fn parked_and_held(url: &str) -> (String, String) {
    let parked = sql(
        url,
        &format!("SELECT count(*) FROM nd_queue WHERE due_at = {}", i64::MAX),
    );
    let held = sql(
        url,
        &format!(
            "SELECT (held_at IS NOT NULL)::text FROM nd_endpoint WHERE endpoint = '{THROTTLED}'"
        ),
    );
    (parked[0].clone(), held.first().cloned().unwrap_or_default())
}

#[test]
fn a_resume_racing_a_hold_on_another_host_leaves_no_row_parked_behind_it() {
    // A third session holds the endpoint's row locked, so a's hold and then b's resume both
    // wait on it, in that order; once it lets go, the hold parks and commits, and the resume
    // must then see and unpark every row it parked (a resume whose snapshot predated the
    // hold's commit left them parked with the hold ended).
    let Some((_cluster, url)) = database("hold_race") else {
        return;
    };
    let (a, b) = (
        std::sync::Arc::new(open(&url, LONG)),
        std::sync::Arc::new(open(&url, LONG)),
    );
    a.accept((1..=200).map(|n| record(n, &format!("r{n}"))).collect())
        .wait()
        .unwrap();
    a.release_all().wait().unwrap();
    // The endpoint's row exists, not held.
    a.set_hold(THROTTLED, true, UnixMillis(1)).wait().unwrap();
    a.set_hold(THROTTLED, false, UnixMillis(1)).wait().unwrap();
    assert_eq!(parked_and_held(&url), ("0".into(), "false".into()));

    let (locked_tx, locked) = std::sync::mpsc::channel();
    let (release_tx, release) = std::sync::mpsc::channel::<()>();
    let locker = {
        let url = url.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let (mut client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(conn);
                let tx = client.transaction().await.unwrap();
                tx.execute(
                    "SELECT 1 FROM nd_endpoint WHERE endpoint = $1 FOR UPDATE",
                    &[&THROTTLED],
                )
                .await
                .unwrap();
                locked_tx.send(()).unwrap();
                release.recv().unwrap();
                tx.commit().await.unwrap();
            });
        })
    };
    locked.recv().unwrap();
    let holder = a.clone();
    let hold = std::thread::spawn(move || {
        holder
            .set_hold(THROTTLED, true, UnixMillis(2))
            .wait()
            .unwrap()
    });
    std::thread::sleep(Duration::from_millis(300));
    let resumer = b.clone();
    let resume = std::thread::spawn(move || {
        resumer
            .set_hold(THROTTLED, false, UnixMillis(3))
            .wait()
            .unwrap()
    });
    std::thread::sleep(Duration::from_millis(300));
    release_tx.send(()).unwrap();
    locker.join().unwrap();
    hold.join().unwrap();
    resume.join().unwrap();
    assert_eq!(
        parked_and_held(&url),
        ("0".into(), "false".into()),
        "the resume came last: not held, nothing parked"
    );
    assert_eq!(b.claim(500).wait().unwrap().len(), 200);
}

#[test]
fn parking_takes_a_lapsed_lease_from_its_stalled_holder() {
    let Some((_cluster, url)) = database("park_lapsed") else {
        return;
    };
    let (a, b) = (open(&url, LONG), open(&url, LONG));
    let lease = stored_lease(a.accept(vec![record(1, "p1")]).wait().unwrap()[0]);
    // a stalled past its lease; b holds the endpoint.
    sql(&url, "UPDATE nd_queue SET due_at = 0");
    b.set_hold(THROTTLED, true, UnixMillis(1)).wait().unwrap();
    assert_eq!(
        a.renew(vec![(id(1), lease)]).wait().unwrap(),
        [id(1)],
        "a cannot renew the parked row and keep it"
    );
    b.set_hold(THROTTLED, false, UnixMillis(2)).wait().unwrap();
    let taken = b.claim(10).wait().unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(
        a.update(vec![outcome(1, lease, State::Delivered)])
            .wait()
            .unwrap(),
        [crate::store::Applied::LeaseLost]
    );
}

#[test]
fn a_resume_during_a_pause_makes_the_rows_due_when_the_pause_ends() {
    let Some((_cluster, url)) = database("resume_paused") else {
        return;
    };
    let (a, b) = (open(&url, LONG), open(&url, LONG));
    a.accept(vec![record(1, "p1")]).wait().unwrap();
    a.release_all().wait().unwrap();
    a.set_hold(THROTTLED, true, UnixMillis(1)).wait().unwrap();
    a.pause_endpoint(THROTTLED, Duration::from_secs(60))
        .wait()
        .unwrap();
    a.set_hold(THROTTLED, false, UnixMillis(2)).wait().unwrap();
    assert!(
        b.claim(10).wait().unwrap().is_empty(),
        "not due before the pause ends"
    );
    assert_eq!(parked_and_held(&url), ("0".into(), "false".into()));
}

#[test]
fn a_queue_row_inserted_without_a_token_as_v3_redelivers_does_not_count_from_zero() {
    let Some((_cluster, url)) = database("token_default") else {
        return;
    };
    drop(open(&url, LONG));
    let token = sql(
        &url,
        "INSERT INTO nd_queue (id, order_hash, due_at)
         VALUES ('00000000-0000-0000-0000-0000000000aa', 7, 0) RETURNING lease_token",
    );
    assert!(
        token[0].parse::<i64>().unwrap() > 1_000_000_000_000,
        "{token:?}"
    );
}
