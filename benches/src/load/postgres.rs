//! The PostgreSQL side of a run (`--store postgres`): the server notifyd's hosts share, and what
//! it cost them. The server is a private cluster with fsync on, started here and removed at the
//! end, or the one `--pg-url` names. Its cost is read around the delivery phase: CPU of the
//! postgres processes from /proc (server on this machine only), WAL bytes from
//! `pg_current_wal_lsn()`, and the size and dead tuples of notifyd's tables, sampled over the
//! phase so a long run shows whether the hot table stays small.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use notifyd_daemon::test_pg::Cluster;
use serde_json::{Value, json};
use tokio_postgres::{Client, NoTls};

use super::cli::{Common, StoreKind};
use super::daemon::{Daemon, Settings, clock_ticks};
use super::report::{Summary, round3};

/// How often the tables are sampled during a phase.
const SAMPLE_EVERY: Duration = Duration::from_secs(10);

/// The server this run's notifyd uses, when `--store postgres`; refuses flags that need it
/// without it.
pub async fn for_run(c: &Common) -> Result<Option<Pg>, String> {
    if c.hosts == 0 {
        return Err("--hosts: must be at least 1".into());
    }
    match c.store {
        StoreKind::Embedded if c.hosts > 1 => Err(format!(
            "--hosts {}: several hosts share one queue only on --store postgres \
             (embedded hosts would each keep their own)",
            c.hosts
        )),
        StoreKind::Embedded if c.pg_url.is_some() => {
            Err("--pg-url: only with --store postgres".into())
        }
        StoreKind::Embedded => Ok(None),
        StoreKind::Postgres if c.target.is_some() && c.pg_url.is_none() => Err(
            "--store postgres with --target: give --pg-url, the server that notifyd uses".into(),
        ),
        StoreKind::Postgres => Pg::start(c.pg_url.as_deref()).await.map(Some),
    }
}

/// Starts `n` notifyd processes on `settings`: the first in `dir`, the others in `dir/hostN`.
/// All at once: they meet at the schema's advisory lock like hosts of a real deployment.
pub fn start_hosts(
    binary: &std::path::Path,
    dir: &std::path::Path,
    settings: &Settings,
    n: usize,
) -> Result<Vec<Daemon>, String> {
    (0..n)
        .map(|i| {
            let dir = match i {
                0 => dir.to_owned(),
                _ => dir.join(format!("host{i}")),
            };
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            Daemon::start(binary, &dir, settings)
        })
        .collect()
}

/// The server under notifyd and a session of the driver's own on it.
pub struct Pg {
    url: String,
    client: Arc<Client>,
    /// The postmaster, when the server runs on this machine: its process tree is the CPU figure.
    postmaster: Option<u32>,
    // Last: the session above is gone before the cluster stops.
    _cluster: Option<Cluster>,
}

// The URL may carry a password.
impl std::fmt::Debug for Pg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pg")
            .field("postmaster", &self.postmaster)
            .finish_non_exhaustive()
    }
}

impl Pg {
    /// Connects to `url`, or starts a private cluster (fsync on: a figure without it says
    /// nothing about commits) with a database for notifyd.
    pub async fn start(url: Option<&str>) -> Result<Pg, String> {
        let (url, cluster) = match url {
            Some(url) => (url.to_owned(), None),
            None => {
                let cluster = Cluster::start_with(true)?;
                let url = cluster.database("notifyd_load")?;
                (url, Some(cluster))
            }
        };
        let (client, connection) = tokio_postgres::connect(&url, NoTls)
            .await
            .map_err(|e| format!("connecting to PostgreSQL for the figures: {e}"))?;
        tokio::spawn(connection);
        let backend: i32 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .map_err(|e| format!("pg_backend_pid(): {e}"))?
            .get(0);
        // Our backend's parent is the postmaster if the server is local; a remote server's pid
        // names nothing here (or something else), so only a process named postgres counts.
        let postmaster = u32::try_from(backend)
            .ok()
            .and_then(|pid| stat(pid).filter(|s| s.comm == "postgres"))
            .map(|s| s.ppid)
            .filter(|&ppid| stat(ppid).is_some_and(|s| s.comm == "postgres"));
        Ok(Pg {
            url,
            client: Arc::new(client),
            postmaster,
            _cluster: cluster,
        })
    }

    /// The `[store]` lines that put notifyd on this server.
    pub fn store_toml(&self) -> String {
        format!(
            "kind = \"postgres\"\nurl = \"{}\"\n",
            self.url.replace('\\', "\\\\").replace('"', "\\\"")
        )
    }

    /// Starts watching a phase: a first sample now, then one every `SAMPLE_EVERY`.
    pub async fn watch(&self) -> Result<Watch, String> {
        let first = sample(&self.client, self.postmaster).await?;
        let stop = Arc::new(AtomicBool::new(false));
        let (client, postmaster, flag) = (Arc::clone(&self.client), self.postmaster, stop.clone());
        let series = tokio::spawn(async move {
            let mut series = Vec::new();
            let mut next = Instant::now() + SAMPLE_EVERY;
            while !flag.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if Instant::now() >= next {
                    next += SAMPLE_EVERY;
                    if let Ok(s) = sample(&client, postmaster).await {
                        series.push(s);
                    }
                }
            }
            series
        });
        Ok(Watch {
            client: Arc::clone(&self.client),
            postmaster: self.postmaster,
            first,
            stop,
            series,
        })
    }
}

/// A phase being watched.
#[derive(Debug)]
pub struct Watch {
    client: Arc<Client>,
    postmaster: Option<u32>,
    first: Sample,
    stop: Arc<AtomicBool>,
    series: tokio::task::JoinHandle<Vec<Sample>>,
}

/// What notifyd did in the phase, to divide the server's costs by.
#[derive(Debug, Clone, Copy)]
pub struct Work {
    /// Notifications delivered (each accepted, attempted and finished once).
    pub delivered: u64,
    /// CPU seconds of all notifyd hosts.
    pub notifyd_cpu_secs: f64,
}

impl Watch {
    /// Takes the last sample and puts the phase's PostgreSQL figures under `prefix`.
    pub async fn finish(self, work: Work, prefix: &str, s: &mut Summary) -> Result<(), String> {
        self.stop.store(true, Ordering::Relaxed);
        let mut series = self.series.await.unwrap_or_default();
        let last = sample(&self.client, self.postmaster).await?;
        let n = work.delivered.max(1) as f64;
        let k = |name: &str| format!("{prefix}{name}");
        let wal = last.wal_bytes - self.first.wal_bytes;
        s.put(&k("pg_wal_bytes"), wal);
        s.put(&k("pg_wal_bytes_per_notification"), round3(wal as f64 / n));
        let notifyd_us = 1e6 * work.notifyd_cpu_secs / n;
        if let (Some(a), Some(b)) = (self.first.cpu_secs, last.cpu_secs) {
            let pg_us = 1e6 * (b - a) / n;
            s.put(&k("pg_cpu_seconds"), round3(b - a));
            s.put(&k("pg_cpu_us_per_notification"), round3(pg_us));
            // What one core of each side sustains: on a machine where neither shares its cores,
            // the side with fewer notifications per core and per second is the bound.
            s.put(
                &k("projection_per_core"),
                json!({
                    "postgres_notifications_per_s": round3(1e6 / pg_us.max(1e-9)),
                    "notifyd_notifications_per_s": round3(1e6 / notifyd_us.max(1e-9)),
                    "wal_mib_per_s_at_10k": round3(wal as f64 / n * 10_000.0 / 1_048_576.0),
                }),
            );
        }
        series.insert(0, self.first);
        series.push(last);
        let t0 = series[0].at;
        let rows: Vec<Value> = series
            .iter()
            .map(|x| {
                let tables: serde_json::Map<String, Value> = x
                    .tables
                    .iter()
                    .map(|t| {
                        (
                            t.name.clone(),
                            json!({"bytes": t.bytes, "live": t.live, "dead": t.dead,
                                   "autovacuums": t.autovacuums}),
                        )
                    })
                    .collect();
                json!({"t_s": round3(x.at.duration_since(t0).as_secs_f64()), "tables": tables})
            })
            .collect();
        s.put(&k("pg_tables_over_time"), rows);
        Ok(())
    }
}

/// The server at one moment.
#[derive(Debug, Clone)]
struct Sample {
    at: Instant,
    wal_bytes: i64,
    /// CPU seconds of the server's processes, exited ones included; `None` when not local.
    cpu_secs: Option<f64>,
    tables: Vec<TableStats>,
}

#[derive(Debug, Clone)]
struct TableStats {
    name: String,
    bytes: i64,
    live: i64,
    dead: i64,
    autovacuums: i64,
}

async fn sample(client: &Client, postmaster: Option<u32>) -> Result<Sample, String> {
    let wal_bytes: i64 = client
        .query_one("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint", &[])
        .await
        .map_err(|e| format!("pg_current_wal_lsn(): {e}"))?
        .get(0);
    let tables = client
        .query(
            "SELECT relname::text, pg_total_relation_size(relid), n_live_tup, n_dead_tup,
                    autovacuum_count
             FROM pg_stat_user_tables WHERE relname LIKE 'nd\\_%' ORDER BY relname",
            &[],
        )
        .await
        .map_err(|e| format!("pg_stat_user_tables: {e}"))?
        .iter()
        .map(|r| TableStats {
            name: r.get(0),
            bytes: r.get(1),
            live: r.get(2),
            dead: r.get(3),
            autovacuums: r.get(4),
        })
        .collect();
    Ok(Sample {
        at: Instant::now(),
        wal_bytes,
        cpu_secs: postmaster.map(tree_cpu_secs),
        tables,
    })
}

/// One line of /proc/PID/stat, the fields used here.
struct Stat {
    comm: String,
    ppid: u32,
    /// utime + stime + cutime + cstime, in clock ticks.
    ticks: f64,
}

fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, rest) = text.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_owned();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    // After the name: state, ppid, ... utime (12th), stime, cutime, cstime.
    Some(Stat {
        comm,
        ppid: fields.get(1)?.parse().ok()?,
        ticks: tick(11)? + tick(12)? + tick(13)? + tick(14)?,
    })
}

/// The postmaster and its children. A backend that exited was reaped by the postmaster, so
/// its time is in the postmaster's cutime/cstime and a short-lived session is not missed.
fn tree_cpu_secs(postmaster: u32) -> f64 {
    let children: f64 = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(stat)
        .filter(|s| s.ppid == postmaster)
        .map(|s| s.ticks)
        .sum();
    let own = stat(postmaster).map_or(0.0, |s| s.ticks);
    (own + children) / clock_ticks()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_tree_is_read() {
        // Burn some CPU in a child, then reap it: its time must show in our tree's total.
        let me = std::process::id();
        let before = tree_cpu_secs(me);
        let status = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"])
            .status()
            .expect("sh runs");
        assert!(status.success());
        let after = tree_cpu_secs(me);
        assert!(after - before >= 0.05, "before {before} after {after}");
        assert_eq!(
            stat(me).map(|s| s.ppid),
            Some(std::os::unix::process::parent_id())
        );
    }
}
