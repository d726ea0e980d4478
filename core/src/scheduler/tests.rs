//! The scheduler under virtual time: every rule of the module docs, one scenario each.

use std::time::Duration;

use super::*;
use crate::ack::RetryReason;

const SEC: Duration = Duration::from_secs(1);
const MIN: Duration = Duration::from_secs(60);
const EP: &str = "merchant.example:443";

fn id(n: u128) -> NotificationId {
    NotificationId::from_u128(n)
}

fn s() -> Ack {
    Ack::Delivered {
        code: "SUCCESS".into(),
        unexpected_code: false,
    }
}

fn f() -> Ack {
    Ack::Failed {
        code: "PROCESS_FAIL".into(),
        message: None,
    }
}

fn u() -> Ack {
    Ack::Retry {
        reason: RetryReason::Timeout,
    }
}

fn throttled(retry_after: Option<Duration>) -> Ack {
    Ack::Throttled { retry_after }
}

fn our_side() -> Ack {
    Ack::OurSide {
        code: "INVALID_SIGNATURE".into(),
        message: None,
    }
}

/// A scheduler, a virtual clock and a retry policy.
struct Sim {
    s: Scheduler<u128>,
    now: UnixMillis,
    policy: RetryPolicy,
}

impl Sim {
    fn new(endpoint_concurrency: usize, max_in_flight: usize) -> Sim {
        Sim {
            s: Scheduler::new(Limits {
                endpoint_concurrency,
                max_in_flight,
            }),
            now: UnixMillis(1_700_000_000_000),
            policy: RetryPolicy::alipay_default(),
        }
    }

    /// Enqueues notification `n` for `endpoint`, payment `chain`, due now.
    fn add(&mut self, n: u128, endpoint: &str, chain: u64) -> bool {
        self.s.enqueue(
            self.now,
            Enqueue {
                id: id(n),
                endpoint,
                chain,
                due: self.now,
                attempts: 0,
                delivery_started: None,
                payload: n,
            },
        )
    }

    /// Every attempt that may start now: (notification, probe).
    fn starts(&mut self) -> Vec<(u128, bool)> {
        let mut out = Vec::new();
        while let Some(start) = self.s.poll_start(self.now) {
            assert_eq!(start.id, id(*start.payload));
            out.push((*start.payload, start.probe));
        }
        out
    }

    fn started(&mut self) -> Vec<u128> {
        self.starts().into_iter().map(|(n, _)| n).collect()
    }

    /// Answers `n`'s attempt with `ack` and records the decision at once.
    fn answer(&mut self, n: u128, ack: Ack) -> Decision {
        let d = self
            .s
            .answered(self.now, id(n), ack, &self.policy, 0.5)
            .expect("an attempt in flight");
        self.s.recorded(self.now, id(n));
        d
    }

    fn advance(&mut self, d: Duration) {
        self.now = self.now.plus(d);
        self.s.handle_timeout(self.now);
    }

    fn state(&self) -> EndpointState {
        self.snapshot().state
    }

    fn snapshot(&self) -> EndpointSnapshot<'_> {
        self.s
            .endpoints(self.now)
            .find(|e| e.endpoint == EP)
            .expect("a known endpoint")
    }
}

#[test]
fn a_throttle_pauses_the_endpoint_briefly_not_for_the_notifications_delay() {
    let mut sim = Sim::new(8, 100);
    sim.add(1, EP, 1);
    assert_eq!(sim.started(), vec![1]);
    let d = sim.answer(1, throttled(None));
    assert_eq!(d.verdict, Verdict::Pending);
    assert_eq!(
        d.next_attempt_at,
        Some(sim.now.plus(8 * MIN)),
        "the notification keeps BACKOFF_HARD: 4 × the scheduled 2 min"
    );
    assert_eq!(d.learned, Learned::Paused(FIRST_THROTTLE_PAUSE));
    sim.add(2, EP, 2);
    assert!(sim.started().is_empty(), "paused");
    assert_eq!(sim.state(), EndpointState::Paused);
    assert_eq!(sim.s.poll_timeout(), Some(sim.now.plus(SEC)));
    sim.advance(SEC);
    assert_eq!(sim.started(), vec![2], "the pause ended after 1 s");
    assert_eq!(sim.state(), EndpointState::Degraded, "the limit was cut");
}

#[test]
fn a_pause_learned_from_another_host_holds_starts_until_it_ends_and_keeps_the_limit() {
    let mut sim = Sim::new(8, 100);
    let until = sim.now.plus(3 * SEC);
    assert!(
        sim.s.pause(sim.now, EP, until),
        "works before anything is queued"
    );
    assert!(
        !sim.s.pause(sim.now, EP, sim.now.plus(SEC)),
        "never shortened"
    );
    sim.add(1, EP, 1);
    assert!(sim.started().is_empty(), "paused");
    assert_eq!(sim.state(), EndpointState::Paused);
    assert_eq!(sim.s.poll_timeout(), Some(until));
    sim.advance(3 * SEC - Duration::from_millis(1));
    assert!(sim.started().is_empty(), "still paused 1 ms before the end");
    sim.advance(Duration::from_millis(1));
    assert_eq!(sim.started(), vec![1], "the pause ended");
    assert_eq!(
        sim.state(),
        EndpointState::Ok,
        "no throttle answer here: the limit stays"
    );
}

#[test]
fn consecutive_throttles_double_the_pause_up_to_a_minute_and_a_final_answer_resets_it() {
    let mut sim = Sim::new(8, 100);
    let mut pauses = Vec::new();
    for n in 1..=9 {
        sim.add(n, EP, n as u64);
        // Wait out the previous pause.
        while sim.started().is_empty() {
            sim.advance(SEC);
        }
        match sim.answer(n, throttled(None)).learned {
            Learned::Paused(p) => pauses.push(p.as_secs()),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(pauses, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    sim.add(100, EP, 100);
    while sim.started().is_empty() {
        sim.advance(SEC);
    }
    sim.answer(100, s());
    sim.add(101, EP, 101);
    assert_eq!(sim.started(), vec![101]);
    assert_eq!(
        sim.answer(101, throttled(None)).learned,
        Learned::Paused(SEC),
        "reset by the final answer"
    );
}

#[test]
fn retry_after_sets_the_pause_within_bounds() {
    let mut sim = Sim::new(8, 100);
    sim.add(1, EP, 1);
    sim.started();
    let d = sim.answer(1, throttled(Some(7 * SEC)));
    assert_eq!(d.learned, Learned::Paused(7 * SEC));
    sim.advance(7 * SEC);
    sim.add(2, EP, 2);
    assert_eq!(sim.started(), vec![2]);
    let d = sim.answer(2, throttled(Some(Duration::from_secs(3600))));
    assert_eq!(d.learned, Learned::Paused(MAX_RETRY_AFTER_PAUSE));
    assert_eq!(
        d.next_attempt_at,
        Some(sim.now.plus(Duration::from_secs(3600))),
        "the notification itself honours the full Retry-After"
    );
}

#[test]
fn retry_answers_squeeze_the_endpoint_to_one_and_final_answers_restore_it() {
    let mut sim = Sim::new(4, 100);
    for n in 0..40 {
        sim.add(n, EP, n as u64);
    }
    assert_eq!(sim.started().len(), 4, "the configured concurrency");
    // Answer everything with retries; each retry waits 2 min, new ones keep coming.
    let mut running: Vec<u128> = (0..4).collect();
    for _ in 0..20 {
        let n = running.remove(0);
        sim.answer(n, u());
        running.extend(sim.started());
    }
    assert_eq!(sim.snapshot().concurrency_limit, 1);
    assert_eq!(sim.state(), EndpointState::Degraded);
    for n in running.drain(..) {
        sim.answer(n, s());
    }
    let mut limits = Vec::new();
    for _ in 0..3 {
        let started = sim.started();
        limits.push(started.len());
        for n in started {
            sim.answer(n, s());
        }
    }
    assert!(
        limits.windows(2).all(|w| w[0] <= w[1]) && *limits.last().unwrap() == 4,
        "recovers to full concurrency: {limits:?}"
    );
    assert_eq!(sim.state(), EndpointState::Ok);
}

#[test]
fn a_chain_releases_its_next_notification_only_after_a_recorded_final_answer() {
    let mut sim = Sim::new(8, 100);
    sim.add(1, EP, 7);
    sim.add(2, EP, 7);
    sim.add(3, EP, 8);
    assert_eq!(sim.started(), vec![1, 3], "2 waits behind 1");
    assert_eq!(sim.s.waiting_for(id(2)), Some(id(1)));
    sim.answer(1, u());
    sim.advance(3 * MIN);
    assert_eq!(
        sim.started(),
        vec![1],
        "a retry keeps its place at the head"
    );
    let d = sim
        .s
        .answered(sim.now, id(1), s(), &sim.policy, 0.5)
        .unwrap();
    assert_eq!(d.verdict, Verdict::Delivered);
    assert!(
        sim.started().is_empty(),
        "not before the outcome is durable"
    );
    assert_eq!(sim.s.recorded(sim.now, id(1)), Some(1));
    assert_eq!(sim.started(), vec![2]);
    assert_eq!(sim.s.waiting_for(id(2)), None);
}

#[test]
fn enqueueing_an_id_twice_changes_nothing() {
    let mut sim = Sim::new(8, 100);
    assert!(sim.add(1, EP, 7));
    assert!(!sim.add(1, EP, 7), "a second enqueue is ignored");
    sim.add(2, EP, 7);
    assert_eq!(sim.started(), vec![1]);
    sim.answer(1, s());
    assert_eq!(sim.started(), vec![2], "no ghost head blocks the chain");
    assert_eq!(sim.answer(2, f()).verdict, Verdict::Failed);
    assert!(sim.s.is_empty());
}

#[test]
fn the_deadline_counts_from_the_first_attempt_and_not_held_time() {
    let mut sim = Sim::new(8, 100);
    // 10 s, 20 s, 40 s ...; deadline 100 s.
    sim.policy =
        RetryPolicy::exponential(10 * SEC, 2.0, 100 * SEC, 50, Some(100 * SEC), 0.0).unwrap();
    sim.s.enqueue(
        sim.now,
        Enqueue {
            id: id(1),
            endpoint: EP,
            chain: 1,
            due: sim.now.plus(1000 * SEC),
            attempts: 0,
            delivery_started: None,
            payload: 1,
        },
    );
    // Long after enqueue (a backlog, a redelivery): the deadline has not started yet.
    sim.advance(1000 * SEC);
    assert_eq!(sim.started(), vec![1]);
    assert_eq!(
        sim.answer(1, u()).next_attempt_at,
        Some(sim.now.plus(10 * SEC))
    );
    sim.advance(10 * SEC);
    sim.started();
    // Held for ten minutes in the middle: none of it counts.
    assert!(sim.s.hold(sim.now, EP));
    sim.answer(1, u());
    sim.advance(600 * SEC);
    assert!(sim.started().is_empty(), "held");
    assert!(sim.s.resume(sim.now, EP));
    assert_eq!(sim.started(), vec![1]);
    // 10 s counted (the 600 s held are not) + 40 s: fits in 100 s.
    let d = sim.answer(1, u());
    assert_eq!(d.verdict, Verdict::Pending, "{d:?}");
    sim.advance(40 * SEC);
    sim.started();
    // 50 s counted + 80 s is past 100 s.
    assert_eq!(sim.answer(1, u()).verdict, Verdict::Dead);
}

#[test]
fn a_local_failure_spends_no_attempt_no_deadline_and_leaves_the_endpoint_alone() {
    let mut sim = Sim::new(8, 100);
    // 10 s between attempts; deadline 30 s: three attempts' worth.
    sim.policy =
        RetryPolicy::exponential(10 * SEC, 1.0, 10 * SEC, 50, Some(30 * SEC), 0.0).unwrap();
    let proxy = || Ack::LocalFailure {
        cause: crate::ack::LocalCause::Proxy,
    };
    sim.add(1, EP, 1);
    assert_eq!(sim.started(), vec![1]);
    assert_eq!(sim.answer(1, u()).attempts, 1);
    sim.advance(10 * SEC);
    sim.started();
    // The proxy is down for a good while: 1 s, 2 s, 4 s ... 60 s backoffs, about 10 minutes.
    let mut lost = Duration::ZERO;
    for _ in 0..15 {
        let d = sim.answer(1, proxy());
        assert_eq!((d.verdict, d.attempts), (Verdict::Pending, 1), "{d:?}");
        assert_eq!(d.learned, Learned::Nothing);
        let wait = Duration::from_millis(d.next_attempt_at.unwrap().0 - sim.now.0);
        lost += wait;
        sim.advance(wait);
        assert_eq!(sim.started(), vec![1], "due again after its own backoff");
    }
    assert!(lost > 10 * 60 * SEC, "{lost:?}");
    assert_eq!(
        sim.state(),
        EndpointState::Ok,
        "the endpoint learnt nothing"
    );
    // Only the 10 s before the outage count: 10 s + 10 s fits in 30 s, and so does one more.
    let d = sim.answer(1, u());
    assert_eq!((d.verdict, d.attempts), (Verdict::Pending, 2), "{d:?}");
    sim.advance(10 * SEC);
    sim.started();
    assert_eq!(sim.answer(1, u()).verdict, Verdict::Pending);
    sim.advance(10 * SEC);
    sim.started();
    assert_eq!(
        sim.answer(1, u()).verdict,
        Verdict::Dead,
        "30 s counted at last"
    );
}

#[test]
fn an_answer_about_our_side_holds_the_endpoint_without_spending_attempts() {
    let mut sim = Sim::new(8, 100);
    sim.add(1, EP, 1);
    assert_eq!(sim.started(), vec![1]);
    let d = sim.answer(1, our_side());
    assert_eq!(
        (d.verdict, d.attempts, d.learned),
        (Verdict::Pending, 0, Learned::Held)
    );
    assert_eq!(
        d.next_attempt_at,
        Some(sim.now),
        "due as soon as the hold ends"
    );
    for n in 2..=5 {
        sim.add(n, EP, n as u64);
    }
    assert!(sim.started().is_empty(), "held");
    assert_eq!(sim.state(), EndpointState::Held);
    assert_eq!(sim.snapshot().pending, 5);
    // Probes: one attempt after 1 min, then after 2, 4 ... minutes, each refused again.
    let mut probes = Vec::new();
    let mut waited = Duration::ZERO;
    while probes.len() < 6 {
        sim.advance(SEC);
        waited += SEC;
        let starts = sim.starts();
        assert!(starts.len() <= 1, "one probe at a time: {starts:?}");
        if let Some(&(n, probe)) = starts.first() {
            assert!(probe);
            probes.push(waited.as_secs() / 60);
            waited = Duration::ZERO;
            assert_eq!(sim.answer(n, our_side()).attempts, 0);
        }
    }
    assert_eq!(probes, [1, 2, 4, 8, 15, 15]);
    // The receiver takes our request again: the probe's S releases everything.
    sim.advance(15 * MIN);
    let starts = sim.starts();
    assert_eq!(starts.len(), 1);
    let d = sim.answer(starts[0].0, s());
    assert_eq!(
        (d.verdict, d.attempts, d.learned),
        (Verdict::Delivered, 1, Learned::Released)
    );
    let rest = sim.started();
    assert_eq!(rest.len(), 4, "the others go at once");
    for n in rest {
        assert_eq!(
            sim.answer(n, s()).attempts,
            1,
            "no attempt was spent while held"
        );
    }
    assert_eq!(sim.state(), EndpointState::Ok);
}

#[test]
fn an_operator_hold_sends_no_probes_and_resume_lets_due_ones_go() {
    let mut sim = Sim::new(8, 100);
    assert!(
        sim.s.hold(sim.now, EP),
        "an endpoint not seen yet can be held"
    );
    assert!(!sim.s.hold(sim.now, EP));
    sim.add(1, EP, 1);
    sim.add(2, "other:443", 2);
    assert_eq!(sim.started(), vec![2], "other endpoints go on");
    sim.advance(24 * 60 * MIN);
    assert!(sim.started().is_empty(), "no probe of an operator's hold");
    assert_eq!(
        sim.s.release_our_side_holds(sim.now),
        0,
        "a reload keeps it"
    );
    assert!(sim.s.resume(sim.now, EP));
    assert!(!sim.s.resume(sim.now, EP));
    assert_eq!(sim.started(), vec![1]);
}

#[test]
fn an_operator_hold_lifted_elsewhere_ends_here_but_a_hold_from_answers_stays() {
    let mut sim = Sim::new(8, 100);
    sim.add(1, EP, 1);
    sim.started();
    sim.answer(1, our_side());
    assert!(
        !sim.s.resume_operator_hold(sim.now, EP),
        "held by an answer, not by an operator"
    );
    assert_eq!(sim.state(), EndpointState::Held);
    sim.s.hold(sim.now, "ops:443");
    sim.add(2, "ops:443", 2);
    assert!(sim.started().is_empty());
    assert!(sim.s.resume_operator_hold(sim.now, "ops:443"));
    assert!(!sim.s.resume_operator_hold(sim.now, "ops:443"));
    assert_eq!(sim.started(), vec![2]);
    assert!(!sim.s.resume_operator_hold(sim.now, "never.seen:443"));
}

#[test]
fn a_reload_releases_holds_caused_by_answers() {
    let mut sim = Sim::new(8, 100);
    sim.add(1, EP, 1);
    sim.started();
    sim.answer(1, our_side());
    assert_eq!(sim.s.endpoint_states()[EndpointState::Held.index()], 1);
    assert_eq!(sim.s.release_our_side_holds(sim.now), 1);
    assert_eq!(sim.s.endpoint_states()[EndpointState::Held.index()], 0);
    assert_eq!(sim.started(), vec![1]);
}

#[test]
fn the_in_flight_cap_counts_attempts_until_recorded() {
    let mut sim = Sim::new(8, 2);
    for n in 1..=3 {
        sim.add(n, &format!("host{n}:443"), n as u64);
    }
    assert_eq!(sim.started(), vec![1, 2]);
    sim.s
        .answered(sim.now, id(1), s(), &sim.policy, 0.5)
        .unwrap();
    assert!(sim.started().is_empty(), "1 is still being recorded");
    sim.s.recorded(sim.now, id(1));
    assert_eq!(sim.started(), vec![3]);
}

#[test]
fn answers_for_attempts_not_in_flight_are_ignored() {
    let mut sim = Sim::new(8, 100);
    sim.add(1, EP, 1);
    assert!(
        sim.s
            .answered(sim.now, id(1), s(), &sim.policy, 0.5)
            .is_none()
    );
    assert!(
        sim.s
            .answered(sim.now, id(9), s(), &sim.policy, 0.5)
            .is_none()
    );
    sim.started();
    sim.answer(1, s());
    assert!(sim.s.recorded(sim.now, id(1)).is_none(), "recorded once");
}

#[test]
fn a_lost_lease_forgets_the_notification_and_frees_its_slot_and_chain() {
    let mut sim = Sim::new(1, 100);
    sim.add(1, EP, 7);
    sim.add(2, EP, 7);
    assert_eq!(sim.started(), vec![1]);
    sim.s
        .answered(sim.now, id(1), u(), &sim.policy, 0.5)
        .unwrap();
    assert_eq!(
        sim.s.lost(sim.now, id(1)),
        Some(1),
        "its payload comes back"
    );
    assert_eq!(sim.s.in_flight(), 0);
    assert_eq!(sim.s.len(), 1, "only 2 is left");
    // Not retried here (another host owns it), and the endpoint's one slot is free for 2.
    assert_eq!(sim.started(), vec![2]);
    sim.advance(30 * MIN);
    assert_eq!(sim.s.lost(sim.now, id(1)), None, "forgotten for good");
    assert!(sim.started().is_empty());
}

#[test]
fn a_withdrawn_start_leaves_unattempted_and_frees_its_slot_and_chain() {
    let mut sim = Sim::new(1, 1);
    sim.add(1, EP, 7);
    sim.add(2, EP, 7);
    sim.add(3, EP, 8);
    assert_eq!(sim.started(), vec![1]);
    assert_eq!(
        sim.s.withdraw(sim.now, id(1)),
        Some(1),
        "its payload comes back"
    );
    assert_eq!(sim.s.in_flight(), 0);
    assert_eq!(sim.snapshot().in_flight, 0);
    // The endpoint's one slot and the host's one slot are free again (3 goes, ready first),
    // and 2 no longer waits behind 1 (the store orders them from here on).
    assert_eq!(sim.started(), vec![3]);
    sim.answer(3, s());
    assert_eq!(sim.started(), vec![2]);
    assert_eq!(sim.s.withdraw(sim.now, id(1)), None, "gone for good");
    sim.answer(2, s());
    assert_eq!(
        sim.s.withdraw(sim.now, id(2)),
        None,
        "only a start just handed out"
    );
    assert_eq!(sim.s.len(), 0);
}

#[test]
fn oldest_overdue_is_the_longest_waiting_due_notification_not_started() {
    let mut sim = Sim::new(1, 10);
    assert_eq!(sim.s.oldest_overdue(sim.now), None, "nothing held");
    let t0 = sim.now;
    sim.s.hold(sim.now, EP);
    sim.add(1, EP, 1);
    sim.add(2, EP, 2);
    sim.advance(Duration::from_secs(30));
    assert_eq!(
        sim.s.oldest_overdue(sim.now),
        Some(t0),
        "held since it came due"
    );
    sim.s.resume(sim.now, EP);
    assert_eq!(sim.started(), vec![1]);
    // 1 is in flight (not overdue); 2 waits behind the endpoint's limit of one.
    assert_eq!(sim.s.oldest_overdue(sim.now), Some(t0));
    sim.answer(1, s());
    assert_eq!(sim.started(), vec![2]);
    assert_eq!(sim.s.oldest_overdue(sim.now), None, "nothing waits");
}
