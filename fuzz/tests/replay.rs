//! Runs every target's property over its committed seeds and any kept crash inputs
//! (`fuzz/regressions/<target>/`), on a stable toolchain without libFuzzer's runtime.

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for dir in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for e in entries {
            check(&std::fs::read(e.unwrap().path()).unwrap());
            n += 1;
        }
    }
    n
}

#[test]
fn every_seed_and_regression_holds() {
    assert!(replay("envelope", notifyd_fuzz::envelope) >= 3);
    assert!(replay("batch", notifyd_fuzz::batch) >= 1);
    assert!(replay("signature_header", notifyd_fuzz::signature_header) >= 1);
    assert!(replay("ack_classify", notifyd_fuzz::ack_classify) >= 1);
    assert!(replay("inquiry", notifyd_fuzz::inquiry) >= 1);
    assert!(replay("extra_fields", notifyd_fuzz::extra_fields) >= 2);
    assert!(replay("merchant_request", notifyd_fuzz::merchant_request) >= 2);
    assert!(replay("http_response", notifyd_fuzz::http_response) >= 6);
}
