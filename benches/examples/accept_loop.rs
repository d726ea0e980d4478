//! A plain loop over the accept path of one fixture envelope, for profilers and CPU-time
//! counters that want a small process rather than a criterion run:
//! `accept_loop [API] [ITERATIONS] [validate|encode|both|all] [TABLE_ENTRIES]`, e.g.
//! `perf stat -e task-clock target/release/examples/accept_loop notifyPayment 2000000 both`.
//! Every mode copies the envelope into the parse buffer, as the benches do.
//!
//! `all` is the gateway's whole accept step: validate + encode + `Envelope::idempotency` +
//! `IdempotencyTable::check_and_reserve` + `confirm`. Each iteration writes a counter into the
//! idempotency-key field (`paymentRequestId`, or `voidRequestId` for notifyVoid) so every check is
//! a miss, and the table is first filled to `TABLE_ENTRIES` (default 2 000 000, the daemon's
//! default `idempotency_capacity`) so misses evict, as in steady state. `confirm` is included
//! because a gateway confirms every accepted notification and without it the reservations would
//! pile up unevicted. Filling the table costs far more CPU than a short loop, so the loop's own CPU
//! time is printed on stderr (from `/proc/thread-self/schedstat`, the counter behind `task-clock`).

use std::hint::black_box;

use benches::FIXTURES;
use benches::accept_step::{filled_table, key_digits, write_counter};
use notifyd_core::encode::encode_into;
use notifyd_core::idempotency::Check;
use notifyd_core::{Envelope, NotificationId, UnixMillis};

/// CPU time this thread has run, in ns, or `None` where the kernel does not expose it.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let api = args.next().unwrap_or_else(|| "notifyPayment".to_owned());
    let iterations: u64 = args
        .next()
        .map_or(1_000_000, |n| n.parse().expect("iterations"));
    let (validate, encode, idempotency) = match args.next().as_deref().unwrap_or("both") {
        "validate" => (true, false, false),
        "encode" => (false, true, false),
        "both" => (true, true, false),
        "all" => (true, true, true),
        _ => panic!("mode is validate, encode, both or all"),
    };
    let table_entries: u64 = args
        .next()
        .map_or(2_000_000, |n| n.parse().expect("table entries"));
    let fixture = FIXTURES
        .iter()
        .find(|f| f.api.as_str() == api)
        .expect("api is one of notifyPayment, notifyVoid, alipayplus.notifyPayment");
    let mut env = fixture.envelope();
    let counter_at = if idempotency {
        key_digits(&env, fixture.api)
    } else {
        0
    };
    let mut buf = Vec::with_capacity(env.len());
    let mut out = Vec::with_capacity(512);
    let preparsed = Envelope::parse(&mut env.clone()).expect("fixture envelope is valid");
    let table = idempotency.then(|| filled_table(table_entries));
    let now = UnixMillis(2);

    let cpu_start = thread_cpu_ns();
    for i in 0..iterations {
        if idempotency {
            write_counter(&mut env, counter_at, i);
        }
        buf.clear();
        buf.extend_from_slice(&env);
        let fresh;
        let parsed = if validate {
            fresh = Envelope::parse(black_box(&mut buf)).expect("valid");
            &fresh
        } else {
            black_box(&preparsed)
        };
        if encode {
            out.clear();
            encode_into(&parsed.notification, &mut out);
            black_box(out.len());
        }
        if let Some(table) = &table {
            let (key, fp) = parsed.idempotency();
            let id = NotificationId::new(now, u128::from(i));
            let check = table.check_and_reserve(key, fp, id, now);
            assert_eq!(check, Check::New, "every key is fresh");
            black_box(table.confirm(key, id));
        }
    }
    if let (Some(start), Some(end)) = (cpu_start, thread_cpu_ns())
        && iterations > 0
    {
        eprintln!(
            "loop CPU time: {:.1} ns per iteration ({iterations} iterations)",
            (end - start) as f64 / iterations as f64
        );
    }
}
