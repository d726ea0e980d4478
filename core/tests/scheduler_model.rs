//! The scheduler against a reference model under random operations and virtual time: attempts
//! of one payment never overlap and follow accept order, nothing is started twice or lost, the
//! bounds hold, an operator's hold is absolute, and once the receivers answer S everything
//! becomes final.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use notifyd_core::ack::{Ack, RetryReason};
use notifyd_core::backoff::RetryPolicy;
use notifyd_core::scheduler::{Enqueue, Limits, Scheduler, Verdict};
use notifyd_core::{NotificationId, UnixMillis};
use proptest::prelude::*;

const ENDPOINTS: [&str; 3] = ["a:443", "b:443", "c:443"];
const LIMITS: Limits = Limits {
    endpoint_concurrency: 2,
    max_in_flight: 4,
};

#[derive(Debug, Clone)]
enum Op {
    Enqueue {
        endpoint: usize,
        payment: u64,
        delay_ms: u64,
    },
    EnqueueAgain {
        pick: usize,
    },
    Start,
    Answer {
        pick: usize,
        ack: u8,
    },
    Record {
        pick: usize,
    },
    Advance {
        ms: u64,
    },
    Hold {
        endpoint: usize,
    },
    Resume {
        endpoint: usize,
    },
    Reload,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..3usize, 0..3u64, 0..5_000u64)
            .prop_map(|(endpoint, payment, delay_ms)| Op::Enqueue { endpoint, payment, delay_ms }),
        1 => any::<usize>().prop_map(|pick| Op::EnqueueAgain { pick }),
        3 => Just(Op::Start),
        3 => (any::<usize>(), 0..7u8).prop_map(|(pick, ack)| Op::Answer { pick, ack }),
        3 => any::<usize>().prop_map(|pick| Op::Record { pick }),
        2 => prop_oneof![0..2_000u64, 0..4_000_000u64].prop_map(|ms| Op::Advance { ms }),
        1 => (0..3usize).prop_map(|endpoint| Op::Hold { endpoint }),
        1 => (0..3usize).prop_map(|endpoint| Op::Resume { endpoint }),
        1 => Just(Op::Reload),
    ]
}

fn ack(kind: u8) -> Ack {
    match kind {
        0 => Ack::Delivered {
            code: "SUCCESS".into(),
            unexpected_code: false,
        },
        1 => Ack::Failed {
            code: "PROCESS_FAIL".into(),
            message: None,
        },
        2 => Ack::Retry {
            reason: RetryReason::Timeout,
        },
        3 => Ack::Throttled { retry_after: None },
        4 => Ack::Throttled {
            retry_after: Some(Duration::from_secs(3)),
        },
        5 => Ack::OurSide {
            code: "KEY_NOT_FOUND".into(),
            message: None,
        },
        _ => Ack::Doubtful {
            code: "ORDER_NOT_EXIST".into(),
            message: None,
            retries: 2,
        },
    }
}

/// What the scheduler must be consistent with.
#[derive(Default)]
struct Model {
    /// Per chain, every id in enqueue order.
    chains: HashMap<u64, Vec<u128>>,
    endpoint_of: HashMap<u128, usize>,
    chain_of: HashMap<u128, u64>,
    finished: HashSet<u128>,
    /// Started, not yet answered.
    in_flight: Vec<u128>,
    /// Answered, not yet recorded.
    answered: Vec<(u128, Verdict)>,
    operator_held: HashSet<usize>,
    next_id: u128,
}

impl Model {
    fn pending(&self) -> usize {
        self.endpoint_of.len() - self.finished.len()
    }
}

struct World {
    s: Scheduler<u128>,
    m: Model,
    now: UnixMillis,
    policy: RetryPolicy,
}

impl World {
    fn new() -> World {
        World {
            s: Scheduler::new(LIMITS),
            m: Model::default(),
            now: UnixMillis(1_700_000_000_000),
            policy: RetryPolicy::alipay_default(),
        }
    }

    fn enqueue(&mut self, n: u128, endpoint: usize, chain: u64, due: UnixMillis) -> bool {
        self.s.enqueue(
            self.now,
            Enqueue {
                id: NotificationId::from_u128(n),
                endpoint: ENDPOINTS[endpoint],
                chain,
                due,
                attempts: 0,
                delivery_started: None,
                payload: n,
            },
        )
    }

    fn start_all(&mut self) -> Result<(), TestCaseError> {
        while let Some(start) = self.s.poll_start(self.now) {
            let n = *start.payload;
            prop_assert_eq!(start.id, NotificationId::from_u128(n));
            let m = &mut self.m;
            prop_assert!(!m.finished.contains(&n), "{} started after it was final", n);
            prop_assert!(
                !m.in_flight.contains(&n) && !m.answered.iter().any(|(a, _)| *a == n),
                "{} started twice",
                n
            );
            let endpoint = m.endpoint_of[&n];
            prop_assert!(
                !m.operator_held.contains(&endpoint),
                "{} started on an endpoint an operator holds",
                n
            );
            let chain = &m.chains[&m.chain_of[&n]];
            for earlier in chain.iter().take_while(|x| **x != n) {
                prop_assert!(
                    m.finished.contains(earlier),
                    "{} started before {} of its payment was final",
                    n,
                    earlier
                );
            }
            m.in_flight.push(n);
            let busy = m.in_flight.len() + m.answered.len();
            prop_assert!(busy <= LIMITS.max_in_flight, "{} attempts busy", busy);
            let on_endpoint = m
                .in_flight
                .iter()
                .filter(|x| m.endpoint_of[x] == endpoint)
                .count();
            prop_assert!(on_endpoint <= LIMITS.endpoint_concurrency);
        }
        Ok(())
    }

    fn answer(&mut self, index: usize, kind: u8) -> Result<(), TestCaseError> {
        let n = self.m.in_flight.remove(index);
        let d = self.s.answered(
            self.now,
            NotificationId::from_u128(n),
            ack(kind),
            &self.policy,
            0.5,
        );
        let d = d.ok_or_else(|| TestCaseError::fail(format!("{n} was in flight")))?;
        prop_assert_eq!(d.verdict == Verdict::Pending, d.next_attempt_at.is_some());
        self.m.answered.push((n, d.verdict));
        Ok(())
    }

    fn record(&mut self, index: usize) -> Result<(), TestCaseError> {
        let (n, verdict) = self.m.answered.remove(index);
        let back = self.s.recorded(self.now, NotificationId::from_u128(n));
        prop_assert_eq!(back.is_some(), verdict.is_final());
        if verdict.is_final() {
            prop_assert_eq!(back, Some(n));
            self.m.finished.insert(n);
        }
        Ok(())
    }

    fn apply(&mut self, op: Op) -> Result<(), TestCaseError> {
        match op {
            Op::Enqueue {
                endpoint,
                payment,
                delay_ms,
            } => {
                let n = self.m.next_id;
                self.m.next_id += 1;
                // One payment to one host: the chain key covers both, as the daemon's does.
                let chain = endpoint as u64 * 100 + payment;
                let due = self.now.plus(Duration::from_millis(delay_ms));
                prop_assert!(self.enqueue(n, endpoint, chain, due));
                self.m.chains.entry(chain).or_default().push(n);
                self.m.endpoint_of.insert(n, endpoint);
                self.m.chain_of.insert(n, chain);
            }
            Op::EnqueueAgain { pick } => {
                let pending: Vec<u128> = (0..self.m.next_id)
                    .filter(|n| !self.m.finished.contains(n))
                    .collect();
                if !pending.is_empty() {
                    let n = pending[pick % pending.len()];
                    let (endpoint, chain) = (self.m.endpoint_of[&n], self.m.chain_of[&n]);
                    prop_assert!(!self.enqueue(n, endpoint, chain, self.now), "{} twice", n);
                }
            }
            Op::Start => self.start_all()?,
            Op::Answer { pick, ack } => {
                if !self.m.in_flight.is_empty() {
                    self.answer(pick % self.m.in_flight.len(), ack)?;
                }
            }
            Op::Record { pick } => {
                if !self.m.answered.is_empty() {
                    self.record(pick % self.m.answered.len())?;
                }
            }
            Op::Advance { ms } => {
                self.now = self.now.plus(Duration::from_millis(ms));
                self.s.handle_timeout(self.now);
            }
            Op::Hold { endpoint } => {
                self.s.hold(self.now, ENDPOINTS[endpoint]);
                self.m.operator_held.insert(endpoint);
            }
            Op::Resume { endpoint } => {
                self.s.resume(self.now, ENDPOINTS[endpoint]);
                self.m.operator_held.remove(&endpoint);
            }
            Op::Reload => {
                self.s.release_our_side_holds(self.now);
            }
        }
        prop_assert_eq!(
            self.s.len(),
            self.m.pending(),
            "nothing lost, nothing extra"
        );
        prop_assert_eq!(
            self.s.in_flight(),
            self.m.in_flight.len() + self.m.answered.len()
        );
        let per_state: usize = self.s.endpoint_states().iter().sum();
        prop_assert_eq!(per_state, self.s.endpoints(self.now).count());
        Ok(())
    }

    /// Every receiver answers S from now on: everything pending must become final.
    fn drain(&mut self) -> Result<(), TestCaseError> {
        for endpoint in 0..ENDPOINTS.len() {
            self.apply(Op::Resume { endpoint })?;
        }
        while let Some(index) = self.m.answered.len().checked_sub(1) {
            self.record(index)?;
        }
        for _ in 0..10_000 {
            if self.s.is_empty() {
                return Ok(());
            }
            self.start_all()?;
            while !self.m.in_flight.is_empty() {
                self.answer(0, 0)?;
                self.record(0)?;
            }
            self.start_all()?;
            if self.m.in_flight.is_empty() && !self.s.is_empty() {
                let next = self.s.poll_timeout();
                prop_assert!(
                    next.is_some(),
                    "pending work with no timer: {}",
                    self.s.len()
                );
                self.now = next.unwrap().max(self.now);
                self.s.handle_timeout(self.now);
            }
        }
        Err(TestCaseError::fail(format!(
            "{} never finished",
            self.s.len()
        )))
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_scheduler_keeps_order_bounds_and_every_notification(
        ops in prop::collection::vec(op(), 1..200)
    ) {
        let mut w = World::new();
        for op in ops {
            w.apply(op)?;
        }
        w.drain()?;
        prop_assert_eq!(w.m.finished.len(), w.m.endpoint_of.len());
    }
}
