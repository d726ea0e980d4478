//! The built binary's command line: exit codes and what it prints.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn notifyd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_notifyd"))
        .args(args)
        .env_remove("NOTIFYD_CONFIG")
        .env_remove("STATE_DIRECTORY")
        .output()
        .expect("the binary runs")
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd/notifyd.example.toml")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

const BAD: &str = r#"
[ingest]
listen = "nowhere"
max_body_bytes = 0
[profiles.acme]
client_id = "x"
[profiles.acme.retry]
jitter = 1.0
tyop = 1
"#;

#[test]
fn check_config_accepts_the_example() {
    let output = notifyd(&["check-config", example().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "ok");
}

#[test]
fn check_config_lists_every_problem_and_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, BAD).unwrap();
    let output = notifyd(&["check-config", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(64));
    let text = stderr(&output);
    let keys: Vec<&str> = text
        .lines()
        .map(|line| line.split(": ").next().unwrap())
        .collect();
    for key in [
        "ingest.listen",
        "ingest.max_body_bytes",
        "profiles.acme",
        "profiles.acme.retry.jitter",
        "profiles.acme.retry.tyop",
    ] {
        assert!(keys.contains(&key), "{key} missing from:\n{text}");
    }
    assert_eq!(keys.len(), 5, "one problem a line:\n{text}");
}

#[test]
fn check_config_of_a_missing_file_exits_64() {
    let output = notifyd(&["check-config", "/nonexistent/notifyd.toml"]);
    assert_eq!(output.status.code(), Some(64));
    assert!(stderr(&output).contains("/nonexistent/notifyd.toml"));
}

#[test]
fn bad_usage_exits_64() {
    for args in [
        &["--no-such-flag"][..],
        &["--listen", "not-an-address"],
        &["check-config"],
        &["mock-merchant", "--respond", "MAYBE"],
        &["frobnicate"],
    ] {
        let output = notifyd(args);
        assert_eq!(
            output.status.code(),
            Some(64),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    let help = notifyd(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("check-config"));
}

#[test]
fn run_refuses_an_invalid_config_from_flag_or_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, BAD).unwrap();
    let output = notifyd(&["--config", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(64));
    assert!(stderr(&output).contains("ingest.listen"));

    let output = Command::new(env!("CARGO_BIN_EXE_notifyd"))
        .env("NOTIFYD_CONFIG", &file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    assert!(stderr(&output).contains("profiles.acme.retry.jitter"));

    // A flag replaces the bad value it overrides, but the file's other problems remain.
    let output = notifyd(&[
        "--config",
        file.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(output.status.code(), Some(64));
    assert!(
        !stderr(&output).contains("ingest.listen"),
        "{}",
        stderr(&output)
    );
}
