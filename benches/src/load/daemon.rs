//! The notifyd under test: started from its binary with a temp config, or already running (`--target`).
//! Also reads its CPU time and memory from /proc.

use std::fmt::Write as _;
use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::http::{self, Client};

/// How the started notifyd is configured.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Retry schedule of the default profile.
    pub schedule: Vec<String>,
    /// Delivery shards (0 = one per core).
    pub shards: u64,
    /// `ingest.max_pending`.
    pub max_pending: u64,
    /// `store.idempotency_capacity`.
    pub idempotency_capacity: u64,
    /// `delivery.endpoint_concurrency`.
    pub endpoint_concurrency: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            schedule: vec!["0s".into(), "1s".into(), "5s".into(), "1h".into()],
            shards: 0,
            max_pending: 2_000_000,
            idempotency_capacity: 2_000_000,
            endpoint_concurrency: 64,
        }
    }
}

/// A notifyd process this driver started.
#[derive(Debug)]
pub struct Daemon {
    child: Option<Child>,
    binary: PathBuf,
    config: PathBuf,
    log: PathBuf,
    /// Ingest base URL.
    pub ingest: String,
    /// Metrics base URL.
    pub metrics: String,
}

/// CPU time and memory of a process.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcStats {
    /// User + system CPU seconds.
    pub cpu_secs: f64,
    /// Resident set now, KiB.
    pub rss_kib: u64,
    /// Peak resident set (VmHWM), KiB.
    pub hwm_kib: u64,
}

/// A free loopback port.
pub fn free_port() -> std::io::Result<SocketAddr> {
    // Bound then released: a tiny race with other processes, acceptable for a loopback benchmark.
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

impl Daemon {
    /// Writes the config into `dir` (store under `dir/data`) and starts `binary` on it.
    pub fn start(binary: &Path, dir: &Path, settings: &Settings) -> Result<Daemon, String> {
        let ingest = free_port().map_err(|e| e.to_string())?;
        let metrics = free_port().map_err(|e| e.to_string())?;
        let mut toml = String::new();
        let schedule: Vec<String> = settings
            .schedule
            .iter()
            .map(|d| format!("\"{d}\""))
            .collect();
        let _ = write!(
            toml,
            r#"[store]
path = "{data}"
idempotency_capacity = {idem}
[ingest]
listen = "{ingest}"
max_pending = {max_pending}
[metrics]
listen = "{metrics}"
[delivery]
shards = {shards}
endpoint_concurrency = {endpoint_concurrency}
[log]
level = "warn"
[profiles.default]
allow_http = true
allow_private = ["127.0.0.0/8"]
[profiles.default.retry]
kind = "schedule"
schedule = [{schedule}]
jitter = 0.0
attempt_timeout = "15s"
"#,
            data = dir.join("data").display(),
            idem = settings.idempotency_capacity,
            max_pending = settings.max_pending,
            shards = settings.shards,
            endpoint_concurrency = settings.endpoint_concurrency,
            schedule = schedule.join(", "),
        );
        let config = dir.join("notifyd.toml");
        fs::write(&config, toml).map_err(|e| format!("{}: {e}", config.display()))?;
        let mut daemon = Daemon {
            child: None,
            binary: binary.to_owned(),
            config,
            log: dir.join("notifyd.log"),
            ingest: format!("http://{ingest}"),
            metrics: format!("http://{metrics}"),
        };
        daemon.spawn()?;
        Ok(daemon)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("{}: {e}", self.log.display()))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(&self.binary)
            .arg("--config")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.binary.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The daemon's log (stdout and stderr).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Waits until `/readyz` answers 200; the time it took from now.
    pub async fn wait_ready(
        &mut self,
        client: &Client,
        limit: Duration,
    ) -> Result<Duration, String> {
        let started = Instant::now();
        let url = format!("{}/readyz", self.ingest);
        while started.elapsed() < limit {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!(
                    "notifyd exited with {status}; see {}",
                    self.log.display()
                ));
            }
            if let Ok((200, _)) = http::get(client, &url).await {
                return Ok(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Err(format!(
            "notifyd not ready after {limit:?}; see {}",
            self.log.display()
        ))
    }

    /// SIGTERM, then waits up to `grace` for the exit (SIGKILL after).
    pub async fn stop(&mut self, grace: Duration) -> Result<(), String> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let started = Instant::now();
        while started.elapsed() < grace {
            if let Ok(Some(_)) = child.try_wait() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(format!("notifyd did not stop within {grace:?}; killed"))
    }

    /// Stops it and starts it again on the same config and store.
    pub async fn restart(&mut self, grace: Duration) -> Result<(), String> {
        self.stop(grace).await?;
        self.spawn()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Reads `/proc/<pid>/stat` and `/proc/<pid>/status` (`self` for this process).
pub fn proc_stats(pid: &str) -> ProcStats {
    let mut stats = ProcStats::default();
    if let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat"))
        && let Some((_, rest)) = stat.rsplit_once(')')
    {
        // After the command name: state is field 3, utime 14, stime 15.
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        stats.cpu_secs = (ticks(11) + ticks(12)) / clock_ticks();
    }
    if let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) {
        for line in status.lines() {
            let kib = || {
                line.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            if line.starts_with("VmRSS:") {
                stats.rss_kib = kib();
            } else if line.starts_with("VmHWM:") {
                stats.hwm_kib = kib();
            }
        }
    }
    stats
}

/// Sums the samples of `family` whose labels contain every `label="value"` in `filter`.
pub fn metric_sum(text: &str, family: &str, filter: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(family)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|l| filter.iter().all(|f| l.contains(f)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_sum_adds_matching_samples_only() {
        let text = "# HELP x\n\
            notifyd_notifications_finished_total{api=\"notifyPayment\",state=\"delivered\"} 10\n\
            notifyd_notifications_finished_total{api=\"notifyVoid\",state=\"delivered\"} 5\n\
            notifyd_notifications_finished_total{api=\"notifyVoid\",state=\"dead\"} 7\n\
            notifyd_notifications_finished_total_other 99\n\
            notifyd_pending_notifications 3\n";
        let delivered = metric_sum(
            text,
            "notifyd_notifications_finished_total",
            &["state=\"delivered\""],
        );
        assert_eq!(delivered, 15.0);
        assert_eq!(metric_sum(text, "notifyd_pending_notifications", &[]), 3.0);
    }

    #[test]
    fn own_process_stats_are_read() {
        let s = proc_stats("self");
        assert!(s.rss_kib > 0 && s.hwm_kib >= s.rss_kib);
    }
}
