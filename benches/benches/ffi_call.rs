//! One gateway-side accept step, validate + encode + idempotency check, done through the C ABI
//! (`nd_envelope_parse`, `nd_envelope_encode`, `nd_envelope_idempotency`, `nd_idem_table_reserve`,
//! `nd_envelope_free`) and the same work called directly in Rust. The difference is the cost of
//! the boundary: argument checks, `catch_unwind`, the boxed handle and the caller-buffer copy.
//! The envelope repeats, so after the first iteration the table answers "duplicate".

// Calling the C ABI from Rust is what this bench measures.
#![allow(unsafe_code)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use notifyd::idempotency::{nd_idem_check, nd_idem_table_new, nd_idem_table_reserve};
use notifyd::notification::{
    nd_envelope, nd_envelope_encode, nd_envelope_free, nd_envelope_idempotency, nd_envelope_parse,
    nd_idem_key,
};
use notifyd::result::nd_result;
use notifyd_core::idempotency::IdempotencyTable;
use notifyd_core::{Envelope, NotificationId, UnixMillis};

const ENVELOPE: &[u8] = br#"{"api":"notifyPayment","url":"https://merchant.example.com/v1/payments/notifyPayment","body":{"partnerId":"P000000000000001","paymentId":"20191127190741010007000000999901","paymentRequestId":"2019112719074101000700000088881","paymentAmount":{"currency":"USD","value":"10000"},"paymentTime":"2019-11-27T12:01:01+08:30","paymentStatus":"SUCCESS"}}"#;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("validate_encode_idempotency");
    g.throughput(Throughput::Bytes(ENVELOPE.len() as u64));

    let table = IdempotencyTable::new(1 << 16, Duration::from_secs(3600));
    let mut scratch = Vec::with_capacity(ENVELOPE.len());
    g.bench_function("rust", |b| {
        b.iter(|| {
            scratch.clear();
            scratch.extend_from_slice(black_box(ENVELOPE));
            let env = Envelope::parse(&mut scratch).expect("valid");
            let bytes = env.encode();
            let (key, fp) = env.idempotency();
            let id = NotificationId::new(UnixMillis(1), 7);
            black_box((
                bytes.len(),
                table.check_and_reserve(key, fp, id, UnixMillis(1)),
            ))
        })
    });

    let mut ctable = std::ptr::null();
    // SAFETY: a valid out-pointer.
    assert_eq!(
        unsafe { nd_idem_table_new(1 << 16, 3_600_000, &mut ctable) },
        nd_result::Ok
    );
    let mut buf = vec![0u8; 4096];
    g.bench_function("c_abi", |b| {
        b.iter(|| {
            let input = black_box(ENVELOPE);
            let mut env: *mut nd_envelope = std::ptr::null_mut();
            let mut len = 0usize;
            let mut key = nd_idem_key::default();
            let mut check = std::mem::MaybeUninit::<nd_idem_check>::uninit();
            // SAFETY: every pointer is to a live local or buffer of the stated size, and the
            // envelope handle is freed exactly once.
            unsafe {
                let rc = nd_envelope_parse(
                    input.as_ptr(),
                    input.len(),
                    &mut env,
                    std::ptr::null_mut(),
                    0,
                );
                assert_eq!(rc, nd_result::Ok);
                let rc = nd_envelope_encode(env, buf.as_mut_ptr(), buf.len(), &mut len);
                assert_eq!(rc, nd_result::Ok);
                assert_eq!(nd_envelope_idempotency(env, &mut key), nd_result::Ok);
                let rc = nd_idem_table_reserve(ctable, &key, 1, check.as_mut_ptr());
                assert_eq!(rc, nd_result::Ok);
                nd_envelope_free(env);
                black_box((len, check.assume_init().verdict))
            }
        })
    });
    g.finish();
    // SAFETY: the table from nd_idem_table_new, freed once, no longer used.
    unsafe { notifyd::idempotency::nd_idem_table_free(ctable) };
}

criterion_group!(benches, bench);
criterion_main!(benches);
