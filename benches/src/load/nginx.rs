//! `--receiver nginx`: a Debian nginx as the merchant, started here with a generated config that
//! answers the protocol's ack to every POST over keep-alive, and wrk posting the same body straight to
//! it as the ceiling. These are the tools a user would reproduce the figures with; the in-process
//! receiver and hyper ceiling stay for the scenarios that need per-notification receipts.
//!
//! Counting is exact on both sides: nginx's `stub_status` request counter (each attempt notifyd made
//! that nginx answered) and notifyd's own delivered counter for notifyd; wrk's `done()` summary (its
//! completed requests minus non-2xx answers) for the ceiling.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::daemon::{self, free_port};
use super::http::{self, Client};
use super::payload;

/// The answer: PROTOCOL.md's ack, byte for byte what the in-process receiver sends.
const ACK: &str =
    r#"{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"}}"#;

/// A running nginx; dropping it stops it (master and workers).
#[derive(Debug)]
pub struct Nginx {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// Where notifyd and wrk post: `http://127.0.0.1:PORT/v1/payments/notifyPayment`.
    pub url: String,
    status_url: String,
    // stub_status counts its own requests: the counter at `mark`, and status reads since.
    base: AtomicU64,
    reads: AtomicU64,
}

/// What wrk measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct WrkRun {
    /// Requests answered 2xx.
    pub ok: u64,
    /// Requests wrk counted as errors (connect, read, write, timeout, non-2xx).
    pub errors: u64,
    /// Its wall time.
    pub elapsed: Duration,
}

impl WrkRun {
    /// 2xx answers per second.
    pub fn per_sec(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The config: Debian's defaults where they matter (one worker per core), no access log (notifyd's
/// and wrk's counters are exact; a log line per request would cost both runs alike and measure
/// nothing), and keep-alive without a request cap, so neither side pays for reconnects.
fn config(dir: &Path, port: u16) -> String {
    let d = dir.display();
    let mut c = String::new();
    let _ = write!(
        c,
        r#"daemon off;
worker_processes auto;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  client_body_temp_path {d}/client_body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  keepalive_timeout 75s;
  keepalive_requests 100000000;
  server {{
    listen 127.0.0.1:{port};
    location = /nginx_status {{ stub_status; }}
    location / {{
      default_type "application/json; charset=UTF-8";
      return 200 '{ACK}';
    }}
  }}
}}
"#
    );
    c
}

impl Nginx {
    /// Starts `binary` on a free loopback port and waits until it answers.
    pub async fn start(binary: &Path, client: &Client) -> Result<Nginx, String> {
        let dir = tempfile::Builder::new()
            .prefix("notifyd-load-nginx-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let port = free_port().map_err(|e| e.to_string())?.port();
        let conf = dir.path().join("nginx.conf");
        fs::write(&conf, config(dir.path(), port))
            .map_err(|e| format!("{}: {e}", conf.display()))?;
        // -e: the error log from the first line on, so a non-root run does not try
        // /var/log/nginx/error.log before reading the config.
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start {}: {e} (Debian: apt-get install nginx)",
                    binary.display()
                )
            })?;
        let mut nginx = Nginx {
            child: Some(child),
            url: format!("http://127.0.0.1:{port}/v1/payments/notifyPayment"),
            status_url: format!("http://127.0.0.1:{port}/nginx_status"),
            base: AtomicU64::new(0),
            reads: AtomicU64::new(0),
            dir,
        };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if let Some(child) = nginx.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!("nginx exited with {status}: {}", nginx.error_log()));
            }
            if nginx.requests(client).await.is_ok() {
                return Ok(nginx);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(format!(
            "nginx not answering after 10 s: {}",
            nginx.error_log()
        ))
    }

    fn error_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// nginx's request counter (`stub_status`), this status request included.
    pub async fn requests(&self, client: &Client) -> Result<u64, String> {
        match http::get(client, &self.status_url).await? {
            (200, text) => {
                parse_status_requests(&String::from_utf8_lossy(&text)).ok_or_else(|| {
                    format!("unreadable stub_status: {}", String::from_utf8_lossy(&text))
                })
            }
            (status, _) => Err(format!("stub_status answered {status}")),
        }
    }

    /// Starts counting requests served from now.
    pub async fn mark(&self, client: &Client) -> Result<(), String> {
        self.base
            .store(self.requests(client).await?, Ordering::Relaxed);
        self.reads.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// Requests nginx served since [`Nginx::mark`], its own status reads left out.
    pub async fn served(&self, client: &Client) -> Result<u64, String> {
        let now = self.requests(client).await?;
        let reads = self.reads.fetch_add(1, Ordering::Relaxed) + 1;
        Ok(now.saturating_sub(self.base.load(Ordering::Relaxed) + reads))
    }

    /// CPU seconds of the master and its workers so far.
    pub fn cpu_secs(&self) -> f64 {
        let Some(pid) = self.child.as_ref().map(Child::id) else {
            return 0.0;
        };
        let children =
            fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        std::iter::once(pid.to_string())
            .chain(children.split_whitespace().map(str::to_owned))
            .map(|p| daemon::proc_stats(&p).cpu_secs)
            .sum()
    }

    /// wrk posting notification 0's body to [`Nginx::url`] for `seconds` over `connections`.
    pub fn wrk(&self, wrk: &Path, connections: usize, seconds: u64) -> Result<WrkRun, String> {
        let script = self.dir.path().join("post.lua");
        fs::write(&script, wrk_script(&payload::body(0, 0))).map_err(|e| e.to_string())?;
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(connections.max(1));
        let out = Command::new(wrk)
            .arg("-t")
            .arg(threads.to_string())
            .arg("-c")
            .arg(connections.max(1).to_string())
            .arg("-d")
            .arg(format!("{}s", seconds.max(1)))
            .arg("-s")
            .arg(&script)
            .arg(&self.url)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| {
                format!(
                    "cannot start {}: {e} (Debian: apt-get install wrk)",
                    wrk.display()
                )
            })?;
        let text = String::from_utf8_lossy(&out.stdout);
        parse_wrk(&text).ok_or_else(|| {
            format!(
                "wrk exited with {} and no summary:\n{text}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM to the master: it stops its workers (SIGKILL would orphan them).
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

const WRK_MARK: &str = "notifyd-load-wrk";

/// A POST of `body` (a long bracket string: the body has no `]==]`) and a `done()` printing wrk's exact
/// counters on one line.
fn wrk_script(body: &str) -> String {
    format!(
        r#"wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json; charset=UTF-8"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("{WRK_MARK} requests=%d duration_us=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout))
end
"#
    )
}

fn parse_wrk(text: &str) -> Option<WrkRun> {
    let line = text.lines().find_map(|l| l.strip_prefix(WRK_MARK))?;
    let field = |name: &str| -> Option<u64> {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))?
            .parse()
            .ok()
    };
    let requests = field("requests")?;
    let status = field("status")?;
    let transport = field("connect")? + field("read")? + field("write")? + field("timeout")?;
    Some(WrkRun {
        // wrk counts a non-2xx answer in `requests` and in `errors.status`.
        ok: requests.saturating_sub(status),
        errors: status + transport,
        elapsed: Duration::from_micros(field("duration_us")?),
    })
}

/// The third number of stub_status's third line (`accepts handled requests`).
fn parse_status_requests(text: &str) -> Option<u64> {
    text.lines().nth(2)?.split_whitespace().nth(2)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stub_status_requests_are_read() {
        let text = "Active connections: 1 \nserver accepts handled requests\n 16 16 31 \nReading: 0 Writing: 1 Waiting: 0 \n";
        assert_eq!(parse_status_requests(text), Some(31));
        assert_eq!(parse_status_requests("Active connections: 1\n"), None);
    }

    #[test]
    fn wrk_summary_is_read_and_non_2xx_is_not_ok() {
        let out = "Running 1s test\n  2 threads\nnotifyd-load-wrk requests=1000 duration_us=2000000 connect=0 read=1 write=0 status=10 timeout=2\n";
        let run = parse_wrk(out).unwrap();
        assert_eq!(run.ok, 990);
        assert_eq!(run.errors, 13);
        assert_eq!(run.per_sec(), 495.0);
        assert!(parse_wrk("Running 1s test\n").is_none());
    }

    #[test]
    fn the_script_posts_the_body_verbatim() {
        let body = payload::body(7, 9);
        assert!(!body.contains("]==]"));
        assert!(wrk_script(&body).contains(&format!("[==[{body}]==]")));
    }
}
