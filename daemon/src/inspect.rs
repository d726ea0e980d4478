//! `notifyd inspect --data-dir DIR [--id ID] [--json]`: a stopped daemon's store, read-only.
//!
//! Exit codes: 0 read; 1 the id is not in the store; 64 usage; 69 the store cannot be opened
//! (in use by a running daemon, missing, or unreadable).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use notifyd_core::{NotificationId, UnixMillis};
use serde_json::{Value, json};

use crate::cli::{EX_UNAVAILABLE, EX_USAGE};
use crate::store::{self, Inspection};

/// `notifyd inspect` flags.
#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// The store directory (store.path).
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Also show this notification with its attempt log.
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

fn time(t: Option<UnixMillis>) -> Value {
    t.map_or(Value::Null, |t| json!(t.rfc3339_millis().to_string()))
}

/// Runs `notifyd inspect`.
pub fn main(args: InspectArgs) -> ExitCode {
    let id = match args.id.as_deref().map(str::parse::<NotificationId>) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => {
            eprintln!("notifyd inspect: --id: must be a notification id (26 characters)");
            return ExitCode::from(EX_USAGE);
        }
    };
    let found = match store::inspect(&args.data_dir, id) {
        Ok(found) => found,
        Err(e) => {
            eprintln!("notifyd inspect: {e}");
            return ExitCode::from(EX_UNAVAILABLE);
        }
    };
    let summary = to_json(&found);
    let mut out = std::io::stdout().lock();
    if args.json {
        let _ = writeln!(out, "{summary}");
    } else {
        let _ = out.write_all(text(&summary).as_bytes());
    }
    if id.is_some() && found.one.is_none() {
        eprintln!("notifyd inspect: no notification has this id");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

fn to_json(i: &Inspection) -> Value {
    let counts: serde_json::Map<String, Value> = i
        .counts
        .iter()
        .map(|(s, n)| (s.as_str().to_owned(), json!(n)))
        .collect();
    let oldest = i.oldest_pending.as_ref().map(|r| {
        json!({
            "notificationId": r.id.to_string(),
            "acceptedAt": time(Some(r.accepted_at)),
            "nextAttemptAt": time(r.next_attempt_at),
            "attempts": r.attempts,
            "url": r.url,
        })
    });
    let one = i.one.as_ref().map(|(r, log)| {
        let mut v = crate::ingest::query::view(r);
        v["attemptLog"] = Value::Array(
            log.iter()
                .map(|e| {
                    json!({
                        "at": e.at.rfc3339_millis().to_string(),
                        "durationMs": e.duration_ms,
                        "httpStatus": e.http_status,
                        "result": e.result,
                        "signature": e.signature.as_str(),
                    })
                })
                .collect(),
        );
        v
    });
    let holds: Vec<Value> = i
        .holds
        .iter()
        .map(|(endpoint, since)| json!({"endpoint": endpoint, "heldSince": time(Some(*since))}))
        .collect();
    json!({"counts": counts, "oldestPending": oldest, "holds": holds, "notification": one})
}

fn text(v: &Value) -> String {
    let mut out = String::new();
    for s in ["pending", "delivered", "failed", "dead"] {
        out.push_str(&format!("{s:<12}{}\n", v["counts"][s]));
    }
    match v["oldestPending"].as_object() {
        Some(o) => out.push_str(&format!(
            "oldest pending {} accepted {} next attempt {}\n",
            o["notificationId"].as_str().unwrap_or_default(),
            o["acceptedAt"].as_str().unwrap_or("-"),
            o["nextAttemptAt"].as_str().unwrap_or("-"),
        )),
        None => out.push_str("oldest pending -\n"),
    }
    for h in v["holds"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "held {} since {} (by an operator; held again at the next start)\n",
            h["endpoint"].as_str().unwrap_or_default(),
            h["heldSince"].as_str().unwrap_or("-"),
        ));
    }
    if let Some(n) = v["notification"].as_object() {
        out.push('\n');
        for (k, val) in n {
            if k != "attemptLog" && !val.is_null() {
                out.push_str(&format!(
                    "{k:<15}{}\n",
                    val.as_str().map_or(val.to_string(), str::to_owned)
                ));
            }
        }
        for e in n["attemptLog"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "  {} {}ms {} {}\n",
                e["at"].as_str().unwrap_or_default(),
                e["durationMs"],
                e["httpStatus"],
                e["result"].as_str().unwrap_or_default()
            ));
        }
    }
    out
}
