//! `notifyd inspect` (the real binary) on the store of the in-process daemon: refused while the
//! daemon holds it, read once it has stopped.

mod support;

use std::process::Command;

use serde_json::Value;
use support::{Harness, payment};

fn inspect(dir: &std::path::Path, extra: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_notifyd"))
        .arg("inspect")
        .arg("--data-dir")
        .arg(dir)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_refuses_a_store_in_use_and_reads_a_stopped_one() {
    let mut h = Harness::start("S").await;
    let delivered = h.submit(&payment(&h.merchant_url("/n"), "PAY-I1")).await;
    h.wait_state(&delivered, "delivered").await;
    let endpoint = h.merchant.addr().to_string();
    h.hold(&endpoint, true).await;
    let pending = h.submit(&payment(&h.merchant_url("/n"), "PAY-I2")).await;
    let dir = h.config.store.path.clone();

    let (code, _, err) = inspect(&dir, &[]);
    assert_eq!(code, 69, "refused while the daemon runs: {err}");
    assert!(err.contains("in use"), "{err}");

    h.notifyd.take().unwrap().shutdown().await;
    let (code, out, err) = inspect(&dir, &["--json", "--id", &delivered]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["counts"]["delivered"], 1, "{v}");
    assert_eq!(v["counts"]["pending"], 1, "{v}");
    assert_eq!(
        v["oldestPending"]["notificationId"],
        pending.as_str(),
        "{v}"
    );
    assert_eq!(v["notification"]["state"], "delivered", "{v}");
    assert_eq!(v["holds"][0]["endpoint"], endpoint.as_str(), "{v}");
    assert_eq!(
        v["notification"]["attemptLog"][0]["result"], "S SUCCESS",
        "{v}"
    );

    let (code, out, _) = inspect(&dir, &[]);
    assert_eq!(code, 0);
    assert!(out.starts_with("pending     1\n"), "{out}");
    assert!(out.contains(&format!("held {endpoint} since ")), "{out}");
    let (code, _, err) = inspect(&dir, &["--id", "01ARZ3NDEKTSV4RRFFQ69G5FAV"]);
    assert_eq!(code, 1, "{err}");
    let (code, _, err) = inspect(&dir.join("nowhere"), &[]);
    assert_eq!(code, 69, "{err}");
    assert!(err.contains("no store here"), "{err}");
}
