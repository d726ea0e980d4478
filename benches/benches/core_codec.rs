//! notifyd-core's accept path per API: validate an ingest envelope, encode its canonical bytes,
//! and both. simd-json parses in place, so every iteration first copies the fixture into a
//! reused buffer; the `copy` group measures that copy alone (the memcpy floor) so it can be
//! subtracted.

use std::hint::black_box;

use benches::FIXTURES;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use notifyd_core::Envelope;
use notifyd_core::encode::encode_into;

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
}

criterion_group!(benches, core_codec);
criterion_main!(benches);
