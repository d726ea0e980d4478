//! `notifyd ctl`: the operator's command line over the operator API (CONTRACT.md §1, §2.1).
//!
//! Every command is one or two API calls; the daemon does the judging (filters are checked by
//! the server, which names a bad field). Human tables by default, the API's JSON with `--json`.
//!
//! Exit codes, for scripts: 0 done; 1 not found or refused (404, 409, 401, an F answer);
//! 64 usage (a bad command line, or a filter the daemon refused with 400); 69 the daemon is
//! unreachable or not ready to judge (503).

mod client;
mod table;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use client::{Answer, Target, call};
use table::{cell, render};

use crate::cli::{EX_UNAVAILABLE, EX_USAGE};

/// Refused or not found.
const EX_REFUSED: u8 = 1;
/// The default ingest address (CONTRACT.md §1).
const DEFAULT_URL: &str = "http://127.0.0.1:8470";

/// `notifyd ctl` flags.
#[derive(Debug, Clone, Args)]
pub struct CtlArgs {
    /// The ingest listener, http://host:port (default http://127.0.0.1:8470).
    #[arg(long, value_name = "URL", conflicts_with = "socket")]
    pub url: Option<String>,
    /// The ingest Unix socket instead of TCP.
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// File holding the bearer token (the first non-comment line is used).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// Seconds to wait for an answer.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub timeout: u64,
    #[command(subcommand)]
    pub command: CtlCommand,
}

/// What to do.
#[derive(Debug, Clone, Subcommand)]
pub enum CtlCommand {
    /// Readiness, endpoints by state, pending work and dead letters.
    Status,
    /// List notifications, newest first: filters as KEY=VALUE (paymentId, paymentRequestId,
    /// partnerId, state, endpoint, since, until, limit, cursor).
    Ls {
        #[arg(value_name = "KEY=VALUE")]
        filters: Vec<String>,
    },
    /// One notification with its attempt log.
    Show { id: String },
    /// Redeliver one dead or failed notification, or every one matching --filter.
    Redeliver {
        /// The notification's id.
        #[arg(required_unless_present = "filter", conflicts_with = "filter")]
        id: Option<String>,
        /// KEY=VALUE, as for `ls` (repeat for more).
        #[arg(long, value_name = "KEY=VALUE")]
        filter: Vec<String>,
        /// Only count what would be redelivered.
        #[arg(long, requires = "filter")]
        dry_run: bool,
    },
    /// Every endpoint, worst first.
    Endpoints,
    /// Stop attempts to an endpoint (host:port) without spending any notification's attempts.
    Hold { endpoint: String },
    /// Let a held endpoint's notifications go again.
    Resume { endpoint: String },
}

/// Runs `notifyd ctl` and returns its exit code.
pub fn main(args: CtlArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("notifyd ctl: cannot start the runtime: {e}");
            return ExitCode::from(EX_UNAVAILABLE);
        }
    };
    let code = match runtime.block_on(run(&args)) {
        Ok(code) => code,
        Err(Failure::Usage(msg)) => {
            eprintln!("notifyd ctl: {msg}");
            EX_USAGE
        }
        Err(Failure::Unreachable(msg)) => {
            eprintln!("notifyd ctl: the daemon is unreachable: {msg}");
            EX_UNAVAILABLE
        }
    };
    ExitCode::from(code)
}

enum Failure {
    Usage(String),
    Unreachable(String),
}

struct Ctx {
    target: Target,
    token: Option<String>,
    timeout: Duration,
    json: bool,
}

impl Ctx {
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, Failure> {
        call(
            &self.target,
            self.token.as_deref(),
            method,
            path,
            body,
            self.timeout,
        )
        .await
        .map_err(|e| Failure::Unreachable(e.0))
    }
}

async fn run(args: &CtlArgs) -> Result<u8, Failure> {
    let target = match &args.socket {
        Some(p) => Target::Unix(p.clone()),
        None => {
            Target::from_url(args.url.as_deref().unwrap_or(DEFAULT_URL)).map_err(Failure::Usage)?
        }
    };
    let token = match &args.token_file {
        Some(f) => Some(read_token(f).map_err(Failure::Usage)?),
        None => None,
    };
    let ctx = Ctx {
        target,
        token,
        timeout: Duration::from_secs(args.timeout.max(1)),
        json: args.json,
    };
    match &args.command {
        CtlCommand::Status => status(&ctx).await,
        CtlCommand::Ls { filters } => {
            let query = query_string(filters)?;
            let a = ctx
                .call("GET", &format!("/v1/notifications{query}"), None)
                .await?;
            Ok(finish(&ctx, &a, |b| {
                let rows = rows(&b["notifications"]);
                let mut out = render(
                    &["ID", "STATE", "ATTEMPTS", "ACCEPTED", "API", "LAST RESULT"],
                    &rows,
                );
                if let Some(c) = b["nextCursor"].as_str() {
                    out.push_str(&format!("more: add cursor={c}\n"));
                }
                out
            }))
        }
        CtlCommand::Show { id } => {
            let a = ctx
                .call("GET", &format!("/v1/notifications/{}", segment(id)), None)
                .await?;
            Ok(finish(&ctx, &a, show))
        }
        CtlCommand::Redeliver { id: Some(id), .. } => {
            let path = format!("/v1/notifications/{}/redeliver", segment(id));
            let a = ctx.call("POST", &path, Some(&json!({}))).await?;
            Ok(finish(&ctx, &a, |b| {
                format!(
                    "redelivery started: {} ({})\n",
                    cell(&b["notificationId"]),
                    cell(&b["url"])
                )
            }))
        }
        CtlCommand::Redeliver {
            id: None,
            filter,
            dry_run,
        } => {
            let mut body = serde_json::Map::new();
            for (k, v) in pairs(filter)? {
                body.insert(k, Value::String(v));
            }
            body.insert("dryRun".into(), Value::Bool(*dry_run));
            let a = ctx
                .call("POST", "/v1/redeliver", Some(&Value::Object(body)))
                .await?;
            Ok(finish(&ctx, &a, |b| {
                let verb = if *dry_run {
                    "would redeliver"
                } else {
                    "redelivered"
                };
                format!(
                    "matched {}, {verb} {}\n",
                    cell(&b["matched"]),
                    if *dry_run {
                        cell(&b["matched"])
                    } else {
                        cell(&b["redelivered"])
                    }
                )
            }))
        }
        CtlCommand::Endpoints => {
            let a = ctx.call("GET", "/v1/endpoints", None).await?;
            Ok(finish(&ctx, &a, endpoints))
        }
        CtlCommand::Hold { endpoint } | CtlCommand::Resume { endpoint } => {
            let verb = if matches!(args.command, CtlCommand::Hold { .. }) {
                "hold"
            } else {
                "resume"
            };
            let path = format!("/v1/endpoints/{}/{verb}", segment(endpoint));
            let a = ctx.call("POST", &path, Some(&json!({}))).await?;
            Ok(finish(&ctx, &a, |b| {
                format!(
                    "{}: {}\n",
                    cell(&b["endpoint"]),
                    cell(&b["result"]["resultMessage"])
                )
            }))
        }
    }
}

fn read_token(file: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("--token-file: {}: {e}", file.display()))?;
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .ok_or_else(|| format!("--token-file: {}: holds no token", file.display()))
}

fn pairs(words: &[String]) -> Result<Vec<(String, String)>, Failure> {
    words
        .iter()
        .map(|w| {
            w.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| Failure::Usage(format!("{w}: a filter is KEY=VALUE")))
        })
        .collect()
}

fn query_string(words: &[String]) -> Result<String, Failure> {
    let parts: Vec<String> = pairs(words)?
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    Ok(if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    })
}

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// An id or endpoint as one path segment.
fn segment(s: &str) -> String {
    encode(s)
        .replace("%3A", ":")
        .replace("%2E", ".")
        .replace("%2D", "-")
}

/// Prints the answer (JSON or `human`) and maps its status to the exit code.
fn finish(ctx: &Ctx, a: &Answer, human: impl FnOnce(&Value) -> String) -> u8 {
    let code = exit_code(a);
    let mut out = std::io::stdout().lock();
    if ctx.json {
        let _ = writeln!(out, "{}", a.body);
    } else if code == 0 {
        let _ = out.write_all(human(&a.body).as_bytes());
    } else {
        let r = &a.body["result"];
        eprintln!(
            "notifyd ctl: {} {}: {}",
            a.status,
            cell(&r["resultCode"]),
            cell(&r["resultMessage"])
        );
    }
    code
}

fn exit_code(a: &Answer) -> u8 {
    match a.status {
        200..=299 if a.body["result"]["resultStatus"] != "F" => 0,
        400 | 413 => EX_USAGE,
        503 => EX_UNAVAILABLE,
        _ => EX_REFUSED,
    }
}

fn rows(list: &Value) -> Vec<Vec<String>> {
    list.as_array()
        .map(|l| {
            l.iter()
                .map(|n| {
                    vec![
                        cell(&n["notificationId"]),
                        cell(&n["state"]),
                        cell(&n["attempts"]),
                        cell(&n["acceptedAt"]),
                        cell(&n["api"]),
                        cell(&n["lastResult"]),
                    ]
                })
                .collect()
        })
        .unwrap_or_default()
}

fn show(b: &Value) -> String {
    let mut out = String::new();
    for (label, key) in [
        ("id", "notificationId"),
        ("api", "api"),
        ("url", "url"),
        ("profile", "profile"),
        ("state", "state"),
        ("attempts", "attempts"),
        ("last result", "lastResult"),
        ("accepted", "acceptedAt"),
        ("next attempt", "nextAttemptAt"),
        ("finished", "finishedAt"),
        ("waiting for", "waitingFor"),
    ] {
        if !b[key].is_null() {
            out.push_str(&format!("{label:<13}{}\n", cell(&b[key])));
        }
    }
    let log: Vec<Vec<String>> = b["attemptLog"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|e| {
                    vec![
                        cell(&e["at"]),
                        cell(&e["durationMs"]),
                        cell(&e["httpStatus"]),
                        cell(&e["signature"]),
                        cell(&e["result"]),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    out.push_str("\nattempts (oldest first):\n");
    out.push_str(&render(&["AT", "MS", "HTTP", "SIGNATURE", "RESULT"], &log));
    out
}

fn endpoints(b: &Value) -> String {
    let rows: Vec<Vec<String>> = b["endpoints"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|e| {
                    vec![
                        cell(&e["endpoint"]),
                        cell(&e["state"]),
                        cell(&e["ackRatio15m"]),
                        cell(&e["pending"]),
                        cell(&e["inFlight"]),
                        cell(&e["concurrencyLimit"]),
                        cell(&e["lastError"]),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    render(
        &[
            "ENDPOINT",
            "STATE",
            "ACK 15M",
            "PENDING",
            "IN FLIGHT",
            "LIMIT",
            "LAST ERROR",
        ],
        &rows,
    )
}

async fn status(ctx: &Ctx) -> Result<u8, Failure> {
    let ready = ctx.call("GET", "/readyz", None).await?;
    let eps = ctx.call("GET", "/v1/endpoints", None).await?;
    let dead = ctx
        .call("GET", "/v1/notifications?state=dead&limit=1000", None)
        .await?;
    let failed = ctx
        .call("GET", "/v1/notifications?state=failed&limit=1000", None)
        .await?;
    let count = |a: &Answer| {
        let n = a.body["notifications"].as_array().map_or(0, Vec::len);
        if a.body["nextCursor"].is_string() {
            format!("{n}+")
        } else {
            n.to_string()
        }
    };
    let list = eps.body["endpoints"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut by_state = serde_json::Map::new();
    for s in ["ok", "degraded", "paused", "held"] {
        let n = list.iter().filter(|e| e["state"] == s).count();
        by_state.insert(s.into(), json!(n));
    }
    let pending: u64 = list.iter().filter_map(|e| e["pending"].as_u64()).sum();
    let summary = json!({
        "ready": ready.status == 200,
        "endpoints": by_state,
        "pending": pending,
        "dead": count(&dead),
        "failed": count(&failed),
    });
    let mut out = std::io::stdout().lock();
    if ctx.json {
        let _ = writeln!(out, "{summary}");
    } else {
        let _ = writeln!(
            out,
            "ready        {}\npending      {pending}\ndead         {}\nfailed       {}\nendpoints    ok {} degraded {} paused {} held {}",
            if ready.status == 200 {
                "yes"
            } else {
                "no (recovering or stopping)"
            },
            count(&dead),
            count(&failed),
            by_state["ok"],
            by_state["degraded"],
            by_state["paused"],
            by_state["held"],
        );
    }
    // Not ready yet is what 69 means for the other commands too.
    Ok(if ready.status == 200 {
        exit_code(&eps).max(exit_code(&dead))
    } else {
        EX_UNAVAILABLE
    })
}
