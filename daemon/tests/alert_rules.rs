//! The alert rules notifyd ships (systemd/notifyd.rules.yml, CONTRACT.md §4): promtool accepts
//! them, its unit tests (systemd/notifyd.rules.test.yml) pass, and every alert is tested both
//! firing and not firing, carries `for:`, a severity and its annotations, and names only
//! metric families of the contract.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use notifyd_daemon::metrics as m;

fn systemd_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(systemd_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `promtool ARGS` in systemd/, or None (after saying so) where promtool is absent.
fn promtool(args: &[&str]) -> Option<std::process::Output> {
    match Command::new("promtool")
        .args(args)
        .current_dir(systemd_dir())
        .output()
    {
        Ok(out) => Some(out),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            support::skip("promtool not found (apt-get install -y prometheus provides it)");
            None
        }
        Err(e) => panic!("promtool: {e}"),
    }
}

fn assert_success(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn promtool_checks_and_tests_the_rules() {
    let Some(check) = promtool(&["check", "rules", "notifyd.rules.yml"]) else {
        return;
    };
    assert_success(&check, "promtool check rules");
    let test = promtool(&["test", "rules", "notifyd.rules.test.yml"]).expect("promtool ran once");
    assert_success(&test, "promtool test rules");
}

/// One `- alert:` entry of the rules file, as the lines under it say.
#[derive(Debug, Default)]
struct Rule {
    expr: String,
    keys: BTreeSet<String>,
    severity: Option<String>,
}

/// The rules file's alerts by name. Line-based: the file is ours and keeps one key per line.
fn rules() -> BTreeMap<String, Rule> {
    let mut out: BTreeMap<String, Rule> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut in_expr = false;
    for line in read("notifyd.rules.yml").lines() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix("- alert: ") {
            current = Some(name.to_owned());
            out.insert(name.to_owned(), Rule::default());
            continue;
        }
        let Some(rule) = current.as_ref().and_then(|c| out.get_mut(c)) else {
            continue;
        };
        if let Some((key, value)) = t.split_once(':').filter(|(k, _)| {
            !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        }) {
            rule.keys.insert(key.to_owned());
            in_expr = key == "expr";
            if in_expr {
                rule.expr.push_str(value);
            }
            if key == "severity" {
                rule.severity = Some(value.trim().to_owned());
            }
        } else if in_expr {
            rule.expr.push(' ');
            rule.expr.push_str(t);
        }
    }
    out
}

#[test]
fn every_alert_has_for_severity_and_annotations() {
    let rules = rules();
    assert!(rules.len() >= 12, "too few alerts parsed: {rules:?}");
    for (name, rule) in &rules {
        for key in [
            "expr",
            "for",
            "labels",
            "annotations",
            "summary",
            "description",
            "runbook",
        ] {
            assert!(rule.keys.contains(key), "{name} has no `{key}:`");
        }
        assert!(
            matches!(rule.severity.as_deref(), Some("critical" | "warning")),
            "{name}: severity {:?}",
            rule.severity
        );
    }
    // What an operator of a payment gateway must hear about (the issue's list).
    for needed in [
        r#"notifyd_notifications_finished_total{state="dead"}"#,
        r#"notifyd_notifications_finished_total{state="failed"}"#,
        "notifyd_pending_notifications",
        "notifyd_oldest_overdue_seconds",
        r#"notifyd_ingest_requests_total{outcome="error"}"#,
        "notifyd_store_commit_seconds_bucket",
        r#"notifyd_endpoints{state="held"}"#,
        "notifyd_lease_lost_total",
        "notifyd_idempotency_evicted_total",
        r#"notifyd_dead_letter_hooks_total{result=~"dead|failed"}"#,
        r#"up{job="notifyd"} == 0"#,
        r#"absent(up{job="notifyd"})"#,
    ] {
        assert!(
            rules.values().any(|r| r.expr.contains(needed)),
            "no alert on {needed}"
        );
    }
}

#[test]
fn alerts_name_only_contract_families() {
    let known: BTreeSet<&str> = m::FAMILIES.iter().map(|f| f.name).collect();
    for (name, rule) in rules() {
        let mut rest = rule.expr.as_str();
        while let Some(at) = rest.find("notifyd_") {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            let metric = &tail[..end];
            let family = metric.strip_suffix("_bucket").unwrap_or(metric);
            assert!(
                known.contains(family),
                "{name} names {metric}, not a notifyd family"
            );
            rest = &tail[end..];
        }
    }
}

#[test]
fn every_alert_is_tested_firing_and_not_firing() {
    let mut firing = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    let mut alert = String::new();
    for line in read("notifyd.rules.test.yml").lines() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix("alertname: ") {
            alert = name.to_owned();
        } else if t == "exp_alerts: []" {
            quiet.insert(alert.clone());
        } else if t.starts_with("- exp_labels:") {
            firing.insert(alert.clone());
        }
    }
    for name in rules().keys() {
        assert!(firing.contains(name), "{name} is never tested firing");
        assert!(quiet.contains(name), "{name} is never tested quiet");
    }
}
