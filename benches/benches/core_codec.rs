//! notifyd-core's accept path per API: validate an ingest envelope, encode its canonical bytes,
//! both, and both plus the idempotency check (`validate_encode_idempotency`, the gateway's whole
//! accept step). simd-json parses in place, so every iteration first copies the fixture into a
//! reused buffer; the `copy` group measures that copy alone (the memcpy floor) so it can be
//! subtracted.

use std::hint::black_box;

use benches::FIXTURES;
use benches::accept_step::{filled_table, key_digits, write_counter};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use notifyd_core::encode::encode_into;
use notifyd_core::{Envelope, NotificationId, UnixMillis};

/// Entries in the idempotency table: the daemon's default `idempotency_capacity`.
const TABLE_ENTRIES: u64 = 2_000_000;

fn refill(buf: &mut Vec<u8>, src: &[u8]) {
    buf.clear();
    buf.extend_from_slice(src);
}

fn core_codec(c: &mut Criterion) {
    let inputs: Vec<_> = FIXTURES
        .iter()
        .map(|f| {
            let env = f.envelope();
            let parsed = Envelope::parse(&mut env.clone()).expect("fixture envelope is valid");
            (f.api.as_str(), env, parsed)
        })
        .collect();

    let mut g = c.benchmark_group("copy");
    for (api, env, _) in &inputs {
        g.throughput(Throughput::Bytes(env.len() as u64));
        let mut buf = Vec::with_capacity(env.len());
        g.bench_with_input(BenchmarkId::from_parameter(api), env, |b, env| {
            b.iter(|| {
                refill(&mut buf, env);
                black_box(&mut buf);
            });
        });
    }
    g.finish();

    let mut g = c.benchmark_group("validate");
    for (api, env, _) in &inputs {
        g.throughput(Throughput::Bytes(env.len() as u64));
        let mut buf = Vec::with_capacity(env.len());
        g.bench_with_input(BenchmarkId::from_parameter(api), env, |b, env| {
            b.iter(|| {
                refill(&mut buf, env);
                black_box(Envelope::parse(black_box(&mut buf)).is_ok())
            });
        });
    }
    g.finish();

    let mut g = c.benchmark_group("encode");
    for (api, env, parsed) in &inputs {
        g.throughput(Throughput::Bytes(env.len() as u64));
        let mut out = Vec::with_capacity(512);
        g.bench_with_input(BenchmarkId::from_parameter(api), parsed, |b, parsed| {
            b.iter(|| {
                out.clear();
                encode_into(&black_box(parsed).notification, &mut out);
                black_box(out.len())
            });
        });
    }
    g.finish();

    let mut g = c.benchmark_group("validate_encode");
    for (api, env, _) in &inputs {
        g.throughput(Throughput::Bytes(env.len() as u64));
        let mut buf = Vec::with_capacity(env.len());
        let mut out = Vec::with_capacity(512);
        g.bench_with_input(BenchmarkId::from_parameter(api), env, |b, env| {
            b.iter(|| {
                refill(&mut buf, env);
                let parsed = Envelope::parse(black_box(&mut buf)).expect("valid");
                out.clear();
                encode_into(&parsed.notification, &mut out);
                black_box(out.len())
            });
        });
    }
    g.finish();

    // Each iteration writes a counter into the idempotency-key field, so every check is a miss
    // (a gateway's normal case), against a full table, so every miss also evicts. `confirm`
    // follows, as in the daemon; without it the pending reservations could never be evicted.
    let table = filled_table(TABLE_ENTRIES);
    let now = UnixMillis(2);
    let mut n = 0u64;
    let mut g = c.benchmark_group("validate_encode_idempotency");
    for (api, env, parsed) in &inputs {
        g.throughput(Throughput::Bytes(env.len() as u64));
        let mut env = env.clone();
        let at = key_digits(&env, parsed.api);
        let mut buf = Vec::with_capacity(env.len());
        let mut out = Vec::with_capacity(512);
        g.bench_function(BenchmarkId::from_parameter(api), |b| {
            b.iter(|| {
                n += 1;
                write_counter(&mut env, at, n);
                refill(&mut buf, &env);
                let parsed = Envelope::parse(black_box(&mut buf)).expect("valid");
                out.clear();
                encode_into(&parsed.notification, &mut out);
                let (key, fp) = parsed.idempotency();
                let id = NotificationId::new(now, u128::from(n));
                let check = table.check_and_reserve(key, fp, id, now);
                table.confirm(key, id);
                black_box((out.len(), check))
            });
        });
    }
    g.finish();
}

criterion_group!(benches, core_codec);
criterion_main!(benches);
