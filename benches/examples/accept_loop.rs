//! A plain loop over the accept path of one fixture envelope, for profilers and CPU-time
//! counters that want a small process rather than a criterion run:
//! `accept_loop [API] [ITERATIONS] [validate|encode|both]`, e.g.
//! `perf stat -e task-clock target/release/examples/accept_loop notifyPayment 2000000 both`.
//! Every mode copies the envelope into the parse buffer, as the benches do.

use std::hint::black_box;

use benches::FIXTURES;
use notifyd_core::Envelope;
use notifyd_core::encode::encode_into;

fn main() {
    let mut args = std::env::args().skip(1);
    let api = args.next().unwrap_or_else(|| "notifyPayment".to_owned());
    let iterations: u64 = args
        .next()
        .map_or(1_000_000, |n| n.parse().expect("iterations"));
    let (validate, encode) = match args.next().as_deref().unwrap_or("both") {
        "validate" => (true, false),
        "encode" => (false, true),
        "both" => (true, true),
        _ => panic!("mode is validate, encode or both"),
    };
    let fixture = FIXTURES
        .iter()
        .find(|f| f.api.as_str() == api)
        .expect("api is one of notifyPayment, notifyVoid, alipayplus.notifyPayment");
    let env = fixture.envelope();
    let mut buf = Vec::with_capacity(env.len());
    let mut out = Vec::with_capacity(512);
    let preparsed = Envelope::parse(&mut env.clone()).expect("fixture envelope is valid");
    for _ in 0..iterations {
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
    }
}
