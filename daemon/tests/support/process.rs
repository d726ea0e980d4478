//! The real `notifyd` binary as a child process: for tests that kill it (SIGKILL), starve it of
//! file descriptors or watch its memory from outside.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// A loopback port nobody listens on right now (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Two distinct free loopback addresses: an ingest and a metrics listener.
pub fn two_ports() -> (SocketAddr, SocketAddr) {
    let port = || -> SocketAddr { format!("127.0.0.1:{}", free_port()).parse().unwrap() };
    let ingest = port();
    let mut metrics = port();
    while metrics == ingest {
        metrics = port();
    }
    (ingest, metrics)
}

/// A config file for the binary: plain http to loopback allowed, `retry` as the default
/// profile's `[profiles.default.retry]` body, `extra` appended (other sections).
pub fn config_text(
    store: &Path,
    ingest: SocketAddr,
    metrics: SocketAddr,
    retry: &str,
    extra: &str,
) -> String {
    format!(
        r#"
[store]
path = "{}"
[ingest]
listen = "{ingest}"
[metrics]
listen = "{metrics}"
[shutdown]
grace = "1s"
[log]
level = "warn"
{extra}
[profiles.default]
allow_http = true
allow_private = ["127.0.0.0/8"]
[profiles.default.retry]
{retry}
"#,
        store.display()
    )
}

/// A temporary home for one test's binary: two distinct free loopback ports, and a config file
/// from [`config_text`] with the store and the log beside it. Restarts reuse all of it.
pub struct Home {
    /// Removed (store, config, log) when the test ends.
    pub dir: tempfile::TempDir,
    pub ingest: SocketAddr,
    pub metrics: SocketAddr,
    pub config: PathBuf,
    pub log: PathBuf,
}

impl Home {
    /// Writes the config; `retry` and `extra` as in [`config_text`].
    pub fn new(retry: &str, extra: &str) -> Home {
        let dir = tempfile::tempdir().unwrap();
        let (ingest, metrics) = two_ports();
        let config = dir.path().join("notifyd.toml");
        let text = config_text(&dir.path().join("store"), ingest, metrics, retry, extra);
        std::fs::write(&config, text).unwrap();
        let log = dir.path().join("notifyd.log");
        Home {
            dir,
            ingest,
            metrics,
            config,
            log,
        }
    }

    /// Starts the binary on this home: [`Notifyd::spawn`].
    pub async fn spawn(&self, wrapper: &[&str]) -> Result<Notifyd, String> {
        Notifyd::spawn(&self.config, self.ingest, self.metrics, &self.log, wrapper).await
    }
}

/// Polls notification `id` until it is `delivered` and returns its status. Panics, naming it
/// `what`, if it is gone, leaves `pending` for anything else, or `deadline` passes first.
pub async fn wait_delivered(
    client: &Client<HttpConnector, Full<Bytes>>,
    ingest: SocketAddr,
    id: &str,
    what: &str,
    deadline: tokio::time::Instant,
) -> Value {
    loop {
        let (status, s) = call(
            client,
            "GET",
            ingest,
            &format!("/v1/notifications/{id}"),
            vec![],
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "an accepted notification is gone: {what}: {s}");
        if s["state"] == "delivered" {
            return s;
        }
        assert!(
            s["state"] == "pending" && tokio::time::Instant::now() < deadline,
            "{what} did not end delivered: {s}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A pooled client for loopback HTTP.
pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// One request; `Err` when there was no HTTP answer (refused, reset, killed mid-request).
pub async fn call(
    client: &Client<HttpConnector, Full<Bytes>>,
    method: &str,
    addr: SocketAddr,
    path: &str,
    body: Vec<u8>,
) -> Result<(u16, Value), String> {
    let req = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let resp = client.request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

/// A running `notifyd --config FILE`.
pub struct Notifyd {
    pub child: Child,
    pub ingest: SocketAddr,
    pub metrics: SocketAddr,
    pub log: PathBuf,
}

impl Notifyd {
    /// Spawns the binary (through `wrapper`, e.g. `["prlimit", "--nofile=64:64", "--"]`, when
    /// given) with stderr appended to `log`, and waits until `/readyz` answers 200.
    pub async fn spawn(
        config: &Path,
        ingest: SocketAddr,
        metrics: SocketAddr,
        log: &Path,
        wrapper: &[&str],
    ) -> Result<Notifyd, String> {
        let bin = Path::new(env!("CARGO_BIN_EXE_notifyd"));
        Notifyd::spawn_binary(bin, config, ingest, metrics, log, wrapper).await
    }

    /// [`Notifyd::spawn`] of another build of notifyd (an older release, for upgrades).
    pub async fn spawn_binary(
        bin: &Path,
        config: &Path,
        ingest: SocketAddr,
        metrics: SocketAddr,
        log: &Path,
        wrapper: &[&str],
    ) -> Result<Notifyd, String> {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| e.to_string())?;
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        let child = cmd
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", bin.display()))?;
        let mut n = Notifyd {
            child,
            ingest,
            metrics,
            log: log.to_owned(),
        };
        n.wait_ready(Duration::from_secs(20)).await?;
        Ok(n)
    }

    /// Waits until `/readyz` says 200; fails if the process exits first.
    pub async fn wait_ready(&mut self, limit: Duration) -> Result<(), String> {
        let client = client();
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!("notifyd exited with {status}: {}", self.log_tail()));
            }
            if let Ok((200, _)) = call(&client, "GET", self.metrics, "/readyz", vec![]).await {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("notifyd never got ready: {}", self.log_tail()));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// SIGKILL, and reap it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Still running?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last 2 KB of its log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(2000);
        text.get(start..).unwrap_or(&text).to_owned()
    }
}

impl Drop for Notifyd {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A process's resident set in KiB (`/proc/PID/status` VmRSS).
pub fn rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Open file descriptors of a process (`pid` may be "self").
pub fn fd_count(pid: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}
