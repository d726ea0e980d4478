//! The load driver end to end against the real notifyd binary: a small run of two scenarios,
//! checking that what it reports adds up (every accepted notification counted once at the
//! receiver, the ceiling run posting the same count). Figures are not judged here: speed lives in
//! the benchmarks, not in tests.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

/// notifyd's binary, built beside this test by `cargo test --workspace` (another package's
/// binary has no `CARGO_BIN_EXE_` variable).
fn notifyd() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.parent()?.join("notifyd");
    bin.is_file().then_some(bin)
}

fn run(args: &[&str]) -> Option<Value> {
    let Some(notifyd) = notifyd() else {
        assert!(
            std::env::var_os("NOTIFYD_CI").is_none(),
            "the notifyd binary is not built beside the tests"
        );
        eprintln!("SKIPPED: build notifyd first (cargo test --workspace builds it)");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.json");
    let out = Command::new(env!("CARGO_BIN_EXE_notifyd-load"))
        .args(args)
        .arg("--notifyd")
        .arg(&notifyd)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "notifyd-load {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap())
}

#[test]
fn a_run_counts_every_accepted_notification_once_and_measures_the_ceiling() {
    let Some(r) = run(&[
        "custom",
        "--count",
        "300",
        "--batch",
        "10",
        "--endpoints",
        "3",
    ]) else {
        return;
    };
    assert_eq!(r["scenario"], "custom");
    assert_eq!(r["accepted"], 300);
    assert_eq!(r["refused"], 0);
    assert_eq!(r["delivered_expected"], 300);
    assert_eq!(r["delivered"], 300, "{r:#}");
    assert_eq!(
        r["notifyd_delivery_attempts"], 300.0,
        "one attempt each: every answer was S"
    );
    assert_eq!(
        r["ingest_request_latency"]["n"], 30,
        "30 batch requests of 10"
    );
    assert_eq!(r["accepted_to_delivered"]["n"], 300);
    assert_eq!(r["ceiling_delivered"], 300);
    assert!(r["ceiling_per_s"].as_f64().unwrap() > 0.0);
    assert!(r["delivered_ratio_of_ceiling"].as_f64().unwrap() > 0.0);
    assert!(r["notifyd_peak_rss_mib"].as_f64().unwrap() > 0.0);
}

#[test]
fn a_storm_delivers_the_healthy_half_and_retries_the_other() {
    let Some(r) = run(&["storm", "--count", "400"]) else {
        return;
    };
    assert_eq!(r["all_healthy.delivered"], 400);
    assert_eq!(r["half_unknown.accepted"], 400);
    assert_eq!(
        r["half_unknown.delivered_expected"], 200,
        "every other endpoint answers U"
    );
    assert_eq!(r["half_unknown.delivered"], 200, "{r:#}");
    assert!(
        r["half_unknown.notifyd_delivery_attempts"]
            .as_f64()
            .unwrap()
            > 200.0,
        "the U half was attempted as well"
    );
    assert!(
        r["healthy_half_delivered_per_s_ratio_to_all_healthy_share"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}

/// The nginx receiver and the wrk ceiling (`--receiver nginx`): Debian's nginx and wrk on PATH.
fn nginx_tools() -> bool {
    let have = |bin: &str| Command::new(bin).arg("-v").output().is_ok();
    if have("/usr/sbin/nginx") && have("wrk") {
        return true;
    }
    assert!(
        std::env::var_os("NOTIFYD_CI").is_none(),
        "nginx or wrk is missing (apt-get install nginx wrk)"
    );
    eprintln!("SKIPPED: apt-get install nginx wrk");
    false
}

#[test]
fn an_nginx_run_counts_each_delivery_at_nginx_and_in_notifyd_and_measures_wrk() {
    if !nginx_tools() {
        return;
    }
    let Some(r) = run(&[
        "custom",
        "--receiver",
        "nginx",
        "--count",
        "300",
        "--batch",
        "100",
    ]) else {
        return;
    };
    assert_eq!(r["receiver"], "nginx");
    assert_eq!(r["accepted"], 300);
    assert_eq!(r["delivered"], 300, "{r:#}");
    assert_eq!(
        r["nginx_requests"], 300,
        "nginx answered each delivery once, and nothing else: {r:#}"
    );
    assert_eq!(r["notifyd_delivery_attempts"], 300.0);
    assert!(r["ceiling_delivered"].as_u64().unwrap() > 0, "{r:#}");
    assert_eq!(r["ceiling_errors"], 0, "{r:#}");
    assert_eq!(r["ceiling_concurrency"], 8);
    assert!(r["delivered_ratio_of_ceiling"].as_f64().unwrap() > 0.0);
    let today = Command::new("date").args(["-u", "+%F"]).output().unwrap();
    assert_eq!(
        r["date"],
        String::from_utf8_lossy(&today.stdout).trim(),
        "the run's own date (UTC)"
    );
}

#[test]
fn nginx_refuses_a_plan_it_cannot_serve_before_starting_anything() {
    for (args, says) in [
        (
            &["custom", "--receiver", "nginx", "--endpoints", "3"][..],
            "--receiver nginx is one endpoint answering S",
        ),
        (
            &["custom", "--receiver", "nginx", "--respond", "U"][..],
            "--receiver nginx is one endpoint answering S",
        ),
        (
            &["storm", "--receiver", "nginx"][..],
            "storm has receivers of its own",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_notifyd-load"))
            .args(args)
            .args([
                "--notifyd",
                "/nonexistent/notifyd",
                "--nginx",
                "/nonexistent/nginx",
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} ran");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
