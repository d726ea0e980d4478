//! The JSON library comparison on notifyd's own payloads (the three seed bodies):
//!
//! - `parse_encode`: parse the body and re-encode it compact, through a DOM value or through the
//!   core's typed struct, with simd-json, serde_json and sonic-rs;
//! - `encode_typed`: encode the same typed struct with each library's serde serializer.
//!
//! simd-json parses in place, so its cases include copying the body into a reused buffer (the
//! cost the daemon pays too); `core_codec`'s `copy` group measures that copy alone.

use std::hint::black_box;

use benches::FIXTURES;
use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
};
use notifyd_core::Api;
use notifyd_core::model::{AlipayPlusNotifyPayment, NotifyPayment, NotifyVoid};
use serde::Serialize;
use serde::de::DeserializeOwned;
use simd_json::prelude::*;

fn refill(buf: &mut Vec<u8>, src: &[u8]) {
    buf.clear();
    buf.extend_from_slice(src);
}

fn parse_encode<T: Serialize + DeserializeOwned>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    api: &str,
    body: &[u8],
) {
    g.throughput(Throughput::Bytes(body.len() as u64));
    let mut buf = Vec::with_capacity(body.len());
    let mut out = Vec::with_capacity(512);

    g.bench_function(BenchmarkId::new("simd_json/borrowed_value", api), |b| {
        b.iter(|| {
            refill(&mut buf, body);
            let v = simd_json::to_borrowed_value(black_box(&mut buf)).expect("valid");
            out.clear();
            v.write(&mut out).expect("vec write");
            black_box(out.len())
        });
    });
    g.bench_function(BenchmarkId::new("simd_json/serde_typed", api), |b| {
        b.iter(|| {
            refill(&mut buf, body);
            let v: T = simd_json::serde::from_slice(black_box(&mut buf)).expect("valid");
            out.clear();
            simd_json::serde::to_writer(&mut out, &v).expect("vec write");
            black_box(out.len())
        });
    });
    g.bench_function(BenchmarkId::new("serde_json/value", api), |b| {
        b.iter(|| {
            let v: serde_json::Value = serde_json::from_slice(black_box(body)).expect("valid");
            out.clear();
            serde_json::to_writer(&mut out, &v).expect("vec write");
            black_box(out.len())
        });
    });
    g.bench_function(BenchmarkId::new("serde_json/typed", api), |b| {
        b.iter(|| {
            let v: T = serde_json::from_slice(black_box(body)).expect("valid");
            out.clear();
            serde_json::to_writer(&mut out, &v).expect("vec write");
            black_box(out.len())
        });
    });
    g.bench_function(BenchmarkId::new("sonic_rs/value", api), |b| {
        b.iter(|| {
            let v: sonic_rs::Value = sonic_rs::from_slice(black_box(body)).expect("valid");
            out.clear();
            sonic_rs::to_writer(&mut out, &v).expect("vec write");
            black_box(out.len())
        });
    });
    g.bench_function(BenchmarkId::new("sonic_rs/typed", api), |b| {
        b.iter(|| {
            let v: T = sonic_rs::from_slice(black_box(body)).expect("valid");
            out.clear();
            sonic_rs::to_writer(&mut out, &v).expect("vec write");
            black_box(out.len())
        });
    });
}

fn encode_typed<T: Serialize + DeserializeOwned>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    api: &str,
    body: &[u8],
) {
    let value: T = serde_json::from_slice(body).expect("fixture matches its type");
    let mut out = Vec::with_capacity(512);
    simd_json::serde::to_writer(&mut out, &value).expect("vec write");
    g.throughput(Throughput::Bytes(out.len() as u64));

    g.bench_function(BenchmarkId::new("simd_json", api), |b| {
        b.iter(|| {
            out.clear();
            simd_json::serde::to_writer(&mut out, black_box(&value)).expect("vec write");
            black_box(out.len())
        });
    });
    g.bench_function(BenchmarkId::new("serde_json", api), |b| {
        b.iter(|| {
            out.clear();
            serde_json::to_writer(&mut out, black_box(&value)).expect("vec write");
            black_box(out.len())
        });
    });
    g.bench_function(BenchmarkId::new("sonic_rs", api), |b| {
        b.iter(|| {
            out.clear();
            sonic_rs::to_writer(&mut out, black_box(&value)).expect("vec write");
            black_box(out.len())
        });
    });
}

/// Runs `bench` with each fixture's body and its core type.
macro_rules! per_api {
    ($g:expr, $bench:ident) => {
        for f in FIXTURES {
            let api = f.api.as_str();
            match f.api {
                Api::NotifyPayment => $bench::<NotifyPayment>($g, api, f.body),
                Api::NotifyVoid => $bench::<NotifyVoid>($g, api, f.body),
                Api::AlipayPlusNotifyPayment => $bench::<AlipayPlusNotifyPayment>($g, api, f.body),
            }
        }
    };
}

fn json_libs(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse_encode");
    per_api!(&mut g, parse_encode);
    g.finish();

    let mut g = c.benchmark_group("encode_typed");
    per_api!(&mut g, encode_typed);
    g.finish();
}

criterion_group!(benches, json_libs);
criterion_main!(benches);
