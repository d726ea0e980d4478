//! The scenarios: presets, the delivery phase they share, and the backlog and storm specials.

use std::sync::Arc;
use std::time::{Duration, Instant};

use notifyd_core::time::UnixMillis;
use serde_json::json;

use super::ceiling;
use super::cli::{Cli, Common, Scenario};
use super::daemon::{self, Daemon, Settings};
use super::http::{self, Client};
use super::ingest::{self, Plan};
use super::nginx::Nginx;
use super::postgres::{self, Pg};
use super::receiver::{Answer, Receiver};
use super::report::{self, Summary, round3};

/// A scenario's flags with its preset filled in.
#[derive(Debug, Clone)]
struct Resolved {
    endpoints: usize,
    respond: Answer,
    batch: usize,
    connections: usize,
    rate: Option<f64>,
    duration: Duration,
    count: u64,
    drain: Duration,
    schedule: Vec<String>,
}

impl Resolved {
    /// The ingest plan of this run: its rate, size and shape, to `target`, bound for `urls`, with
    /// payment ids of their own (a fresh run id).
    fn plan(&self, targets: Vec<String>, urls: Arc<Vec<String>>) -> Plan {
        Plan {
            targets: Arc::new(targets),
            urls,
            batch: self.batch,
            connections: self.connections,
            rate: self.rate,
            count: self.count,
            duration: self.duration,
            run: run_id(),
            first_seq: 0,
        }
    }
}

fn resolve(scenario: &Scenario, c: &Common) -> Result<Resolved, String> {
    // (endpoints, respond, batch, connections, rate, seconds, count, drain seconds)
    let (endpoints, respond, batch, connections, rate, secs, count, drain) = match scenario {
        Scenario::Throughput(_) => (1, "S", 100, 8, 0.0, 120.0, 300_000, 120.0),
        Scenario::Latency(_) => (1, "S", 1, 64, 5000.0, 20.0, u64::MAX, 30.0),
        Scenario::Slow(_) => (200, "SLOW:100ms", 100, 8, 0.0, 120.0, 200_000, 120.0),
        Scenario::Backlog(_) => (1, "S", 1000, 4, 0.0, 900.0, 1_000_000, 0.0),
        Scenario::Storm(_) => (20, "S", 100, 8, 0.0, 120.0, 100_000, 60.0),
        Scenario::Custom(_) | Scenario::RecoveryProbe(_) => {
            (1, "S", 1, 16, 0.0, 60.0, 10_000, 60.0)
        }
    };
    let rate = c.rate.unwrap_or(rate);
    let duration = Duration::from_secs_f64(c.duration.unwrap_or(secs));
    let mut count = c.count.unwrap_or(count);
    if count == u64::MAX && rate > 0.0 {
        count = (rate * duration.as_secs_f64()).ceil() as u64;
    }
    let schedule: Vec<String> = match scenario {
        // notifyd attempts at once whatever the first delay says (ingest/accept.rs sets next_attempt_at =
        // now), so the receiver is a black hole (see `backlog`) and a timed-out attempt waits an hour.
        Scenario::Backlog(_) => vec!["0s".into(), "1h".into()],
        // A storm: each U is retried ten times within two seconds, then dead.
        Scenario::Storm(_) => std::iter::once("0s".to_owned())
            .chain(std::iter::repeat_n("200ms".to_owned(), 10))
            .collect(),
        _ => Settings::default().schedule,
    };
    Ok(Resolved {
        endpoints: c.endpoints.unwrap_or(endpoints).max(1),
        respond: Answer::parse(c.respond.as_deref().unwrap_or(respond))?,
        batch: c.batch.unwrap_or(batch).clamp(1, 1000),
        connections: c.connections.unwrap_or(connections).max(1),
        rate: (rate > 0.0).then_some(rate),
        duration,
        count,
        drain: Duration::from_secs_f64(c.drain.unwrap_or(drain)),
        schedule,
    })
}

/// Runs the scenario named on the command line and prints (and writes) its summary.
pub async fn run(cli: Cli) -> Result<(), String> {
    let Some(c) = cli.scenario.common().cloned() else {
        if let Scenario::RecoveryProbe(p) = &cli.scenario {
            return super::probe::run(p).await;
        }
        return Ok(());
    };
    let r = resolve(&cli.scenario, &c)?;
    let mut s = Summary::default();
    s.put("scenario", cli.scenario.name());
    s.put("date", today());
    s.put("machine", machine());
    s.put(
        "plan",
        json!({
            "endpoints": r.endpoints, "respond": format!("{:?}", r.respond), "batch": r.batch,
            "connections": r.connections, "rate": r.rate, "count": r.count,
            "duration_s": r.duration.as_secs_f64(), "retry_schedule": r.schedule,
        }),
    );
    match &cli.scenario {
        Scenario::Backlog(_) | Scenario::Storm(_) if c.receiver == "nginx" => {
            return Err(format!(
                "{} has receivers of its own: --receiver nginx is for throughput, latency and custom",
                cli.scenario.name()
            ));
        }
        Scenario::Backlog(_) => backlog(&r, &c, &mut s).await?,
        Scenario::Storm(_) => storm(&r, &c, &mut s).await?,
        _ if c.receiver == "nginx" => nginx_run(&r, &c, &mut s).await?,
        _ => {
            let answers = vec![r.respond; r.endpoints];
            let phase = delivery_phase(&r, &c, &answers, "", None, &mut s).await?;
            if !c.no_ceiling
                && let Some(receiver) = &phase.receiver
            {
                ceiling_phase(&r, &c, receiver, phase.delivered_per_s, &mut s).await;
            }
        }
    }
    s.emit(c.json.as_deref())
}

/// The run's date, UTC (the driver may read a clock; core may not).
fn today() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let stamp = UnixMillis(now).rfc3339_millis().to_string();
    stamp[..10].to_owned()
}

fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {model}")
}

/// The notifyd under test: started here (`--hosts` of them), or the one `--target` names.
struct UnderTest {
    /// The first host.
    daemon: Option<Daemon>,
    others: Vec<Daemon>,
    _dir: Option<tempfile::TempDir>,
    /// Ingest base URL of each host.
    targets: Vec<String>,
    metrics: Vec<String>,
    // Last: the hosts stop before their database does.
    pg: Option<Pg>,
}

impl UnderTest {
    async fn start(c: &Common, settings: &Settings, client: &Client) -> Result<UnderTest, String> {
        let pg = postgres::for_run(c).await?;
        if let Some(target) = &c.target {
            return Ok(UnderTest {
                daemon: None,
                others: Vec::new(),
                _dir: None,
                targets: vec![target.trim_end_matches('/').to_owned()],
                metrics: c.metrics_url.iter().cloned().collect(),
                pg,
            });
        }
        let dir = tempfile::Builder::new()
            .prefix("notifyd-load-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let mut settings = settings.clone();
        settings.store = pg.as_ref().map(Pg::store_toml).unwrap_or_default();
        let mut hosts = postgres::start_hosts(&c.notifyd, dir.path(), &settings, c.hosts)?;
        for host in &mut hosts {
            host.wait_ready(client, Duration::from_secs(60)).await?;
        }
        let targets = hosts.iter().map(|h| h.ingest.clone()).collect();
        let metrics = hosts.iter().map(|h| h.metrics.clone()).collect();
        let mut hosts = hosts.into_iter();
        let daemon = hosts.next();
        let dir = if c.keep {
            eprintln!("notifyd-load: keeping {}", dir.path().display());
            let _ = dir.keep();
            None
        } else {
            Some(dir)
        };
        Ok(UnderTest {
            daemon,
            others: hosts.collect(),
            _dir: dir,
            targets,
            metrics,
            pg,
        })
    }

    /// All hosts together: CPU and memory summed.
    fn stats(&self) -> Option<daemon::ProcStats> {
        let all: Vec<daemon::ProcStats> = self
            .daemon
            .iter()
            .chain(&self.others)
            .filter_map(|d| Some(daemon::proc_stats(&d.pid()?.to_string())))
            .collect();
        (!all.is_empty()).then(|| daemon::ProcStats {
            cpu_secs: all.iter().map(|s| s.cpu_secs).sum(),
            rss_kib: all.iter().map(|s| s.rss_kib).sum(),
            hwm_kib: all.iter().map(|s| s.hwm_kib).sum(),
        })
    }

    /// The family's sum over every host that answers.
    async fn metric(&self, client: &Client, family: &str, filter: &[&str]) -> Option<f64> {
        let each = self.metric_each(client, family, filter).await;
        each.iter()
            .any(Option::is_some)
            .then(|| each.iter().flatten().sum())
    }

    /// The family's sum on each host.
    async fn metric_each(
        &self,
        client: &Client,
        family: &str,
        filter: &[&str],
    ) -> Vec<Option<f64>> {
        let mut each = Vec::with_capacity(self.metrics.len());
        for base in &self.metrics {
            each.push(match http::get(client, &format!("{base}/metrics")).await {
                Ok((200, text)) => Some(daemon::metric_sum(
                    &String::from_utf8_lossy(&text),
                    family,
                    filter,
                )),
                _ => None,
            });
        }
        each
    }

    async fn delivered(&self, client: &Client) -> Option<f64> {
        self.metric(
            client,
            "notifyd_notifications_finished_total",
            &["state=\"delivered\""],
        )
        .await
    }
}

struct PhaseResult {
    receiver: Option<Receiver>,
    urls: Arc<Vec<String>>,
    delivered_per_s: f64,
}

fn run_id() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Ingest into notifyd, wait for the deliveries, and put the figures under `prefix`.
async fn delivery_phase(
    r: &Resolved,
    c: &Common,
    answers: &[Answer],
    prefix: &str,
    nginx: Option<&Nginx>,
    s: &mut Summary,
) -> Result<PhaseResult, String> {
    let epoch = Instant::now();
    let client = http::client(r.connections.max(64));
    let receiver = match &c.receiver_url {
        Some(_) => None,
        None => Some(
            Receiver::start(answers, epoch)
                .await
                .map_err(|e| format!("receiver: {e}"))?,
        ),
    };
    let urls: Arc<Vec<String>> = Arc::new(match (&c.receiver_url, &receiver) {
        (Some(url), _) => vec![url.clone()],
        (None, Some(rx)) => rx
            .addrs()
            .iter()
            .map(|a| format!("http://{a}/v1/payments/notifyPayment"))
            .collect(),
        (None, None) => unreachable!("a receiver is started when no URL is given"),
    });
    let settings = Settings {
        schedule: r.schedule.clone(),
        shards: c.shards.unwrap_or(0),
        endpoint_concurrency: c.endpoint_concurrency.unwrap_or(64),
        ..Settings::default()
    };
    let nd = UnderTest::start(c, &settings, &client).await?;
    let delivered_before = nd.delivered(&client).await.unwrap_or(0.0);
    let cpu_before = nd.stats().unwrap_or_default();
    let self_before = daemon::proc_stats("self");
    let pg_watch = match &nd.pg {
        Some(pg) => Some(pg.watch().await?),
        None => None,
    };
    let ingest_start = epoch.elapsed();
    let plan = r.plan(nd.targets.clone(), Arc::clone(&urls));
    let out = ingest::run(plan, client.clone(), epoch).await;
    // Only notifications bound for endpoints that answer S can be delivered.
    let expected = out
        .answers
        .iter()
        .filter(|(seq, _)| {
            answers.is_empty()
                || c.receiver_url.is_some()
                || answers[(*seq % answers.len() as u64) as usize] != Answer::Unknown
        })
        .count() as u64;
    let drain_start = Instant::now();
    let mut delivered;
    let mut last_delivery = epoch.elapsed();
    loop {
        delivered = match &receiver {
            Some(rx) => rx.counts().acks,
            // A scrape of notifyd's metrics costs it about 1.6 M instructions (callgrind): with
            // nginx, its cheap request counter says when to start asking notifyd.
            None if match nginx {
                Some(ng) => ng.served(&client).await.unwrap_or(0) < expected,
                None => false,
            } =>
            {
                0
            }
            None => (nd.delivered(&client).await.unwrap_or(0.0) - delivered_before) as u64,
        };
        if delivered >= expected || drain_start.elapsed() >= r.drain {
            break;
        }
        if receiver.is_none() {
            last_delivery = epoch.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if receiver.is_none() && delivered < expected {
        // The drain ran out, maybe before nginx's count let the loop ask notifyd: ask it now.
        delivered = (nd.delivered(&client).await.unwrap_or(0.0) - delivered_before) as u64;
    }
    if let Some(rx) = &receiver {
        last_delivery = rx.last_ack();
        // The receiver counts an S as it answers it; notifyd counts it (and its attempt) only
        // once the outcome is durable. Let notifyd catch up before reading its own figures, so
        // they describe the same deliveries (bounded: a stuck notifyd still gets reported).
        let settle_by = Instant::now() + Duration::from_secs(5);
        while Instant::now() < settle_by
            && nd.delivered(&client).await.unwrap_or(0.0) - delivered_before < delivered as f64
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let cpu_after = nd.stats().unwrap_or_default();
    let self_after = daemon::proc_stats("self");
    let wall = last_delivery.saturating_sub(ingest_start).max(out.elapsed);
    let delivered_per_s = delivered as f64 / wall.as_secs_f64().max(1e-9);
    let k = |name: &str| format!("{prefix}{name}");
    s.put(&k("accepted"), out.accepted);
    s.put(&k("refused"), out.refused);
    if !out.refusal_samples.is_empty() {
        s.put(&k("refusal_samples"), out.refusal_samples.clone());
    }
    s.put(
        &k("accepted_per_s"),
        round3(out.accepted as f64 / out.elapsed.as_secs_f64().max(1e-9)),
    );
    s.put(&k("ingest_seconds"), round3(out.elapsed.as_secs_f64()));
    s.put(&k("delivered"), delivered);
    s.put(&k("delivered_expected"), expected);
    s.put(&k("delivered_per_s"), round3(delivered_per_s));
    s.put(
        &k("ingest_to_last_delivery_seconds"),
        round3(wall.as_secs_f64()),
    );
    s.percentiles(&k("ingest_request_latency"), &out.latency_us);
    if let Some(rx) = &receiver {
        let receipts = rx.take();
        s.percentiles(
            &k("accepted_to_delivered"),
            &report::accepted_to_delivered(&out.answers, &receipts),
        );
    }
    if nd.daemon.is_some() {
        let cpu = cpu_after.cpu_secs - cpu_before.cpu_secs;
        s.put(&k("notifyd_cpu_seconds"), round3(cpu));
        s.put(
            &k("notifyd_cpu_percent_of_one_core"),
            round3(100.0 * cpu / wall.as_secs_f64().max(1e-9)),
        );
        s.put(
            &k("notifyd_peak_rss_mib"),
            round3(cpu_after.hwm_kib as f64 / 1024.0),
        );
        s.put(
            &k("notifyd_cpu_us_per_delivered"),
            round3(1e6 * cpu / (delivered.max(1) as f64)),
        );
    }
    s.put(
        &k("driver_and_receiver_cpu_seconds"),
        round3(self_after.cpu_secs - self_before.cpu_secs),
    );
    s.put(&k("payload_bytes"), out.payload_bytes);
    // The store's side of it: how many durable commits, how long each took on average.
    let commits = nd
        .metric(&client, "notifyd_store_commit_seconds_count", &[])
        .await;
    let commit_sum = nd
        .metric(&client, "notifyd_store_commit_seconds_sum", &[])
        .await;
    if let (Some(n), Some(sum)) = (commits, commit_sum) {
        s.put(&k("notifyd_store_commits"), n);
        s.put(
            &k("notifyd_store_commit_mean_ms"),
            round3(1000.0 * sum / n.max(1.0)),
        );
    }
    let attempts = nd
        .metric(&client, "notifyd_delivery_attempts_total", &[])
        .await;
    s.put(&k("notifyd_delivery_attempts"), attempts);
    if !nd.others.is_empty() {
        let family = "notifyd_ingest_requests_total";
        let each = nd
            .metric_each(&client, family, &["outcome=\"accepted\""])
            .await;
        s.put(&k("accepted_by_host"), each);
    }
    if let Some(watch) = pg_watch {
        let work = postgres::Work {
            delivered,
            notifyd_cpu_secs: cpu_after.cpu_secs - cpu_before.cpu_secs,
        };
        watch.finish(work, prefix, s).await?;
    }
    drop(nd);
    Ok(PhaseResult {
        receiver,
        urls,
        delivered_per_s,
    })
}

async fn ceiling_phase(
    r: &Resolved,
    c: &Common,
    receiver: &Receiver,
    notifyd_per_s: f64,
    s: &mut Summary,
) {
    // What notifyd may have in flight for these endpoints: 64 per endpoint, 4096 in all (the defaults).
    let per_endpoint = c.endpoint_concurrency.unwrap_or(64) as usize;
    let concurrency = c
        .ceiling_concurrency
        .unwrap_or_else(|| (r.endpoints * per_endpoint).min(4096));
    let urls: Arc<Vec<String>> = Arc::new(
        receiver
            .addrs()
            .iter()
            .map(|a| format!("http://{a}/v1/payments/notifyPayment"))
            .collect(),
    );
    let count = r.count.min(1_000_000);
    let client = http::client(concurrency);
    let self_before = daemon::proc_stats("self");
    let ceiling = ceiling::run(
        urls,
        concurrency,
        count,
        Duration::from_secs(30),
        run_id(),
        client,
    )
    .await;
    let self_after = daemon::proc_stats("self");
    let _ = receiver.take();
    s.put("ceiling_concurrency", concurrency);
    s.put("ceiling_delivered", ceiling.delivered);
    s.put("ceiling_per_s", round3(ceiling.per_sec()));
    s.put(
        "ceiling_cpu_seconds",
        round3(self_after.cpu_secs - self_before.cpu_secs),
    );
    s.put(
        "delivered_ratio_of_ceiling",
        round3(notifyd_per_s / ceiling.per_sec().max(1e-9)),
    );
}

/// `--receiver nginx`: notifyd delivering to a Debian nginx, then wrk posting the same body straight to it.
async fn nginx_run(r: &Resolved, c: &Common, s: &mut Summary) -> Result<(), String> {
    if r.endpoints != 1 || c.receiver_url.is_some() || r.respond != Answer::Ack {
        return Err(
            "--receiver nginx is one endpoint answering S: drop --endpoints, --receiver-url and --respond"
                .into(),
        );
    }
    let client = http::client(8);
    let nginx = Nginx::start(&c.nginx, &client).await?;
    let c = Common {
        receiver_url: Some(nginx.url.clone()),
        ..c.clone()
    };
    s.put("receiver", "nginx");
    nginx.mark(&client).await?;
    let cpu_before = nginx.cpu_secs();
    let phase = delivery_phase(r, &c, &[], "", Some(&nginx), s).await?;
    let nginx_cpu = nginx.cpu_secs() - cpu_before;
    s.put("nginx_requests", nginx.served(&client).await?);
    s.put("nginx_cpu_seconds", round3(nginx_cpu));
    if c.no_ceiling {
        return Ok(());
    }
    let connections = c.ceiling_concurrency.unwrap_or(8);
    // About as long as notifyd's run took, so both see the machine alike; wrk counts whole seconds.
    let seconds = (r.count as f64 / phase.delivered_per_s.max(1.0)).clamp(2.0, 30.0) as u64;
    let cpu_before = nginx.cpu_secs();
    let wrk = nginx.wrk(&c.wrk, connections, seconds)?;
    s.put("ceiling", "wrk -> nginx, the same body");
    s.put("ceiling_concurrency", connections);
    s.put("ceiling_delivered", wrk.ok);
    s.put("ceiling_errors", wrk.errors);
    s.put("ceiling_seconds", round3(wrk.elapsed.as_secs_f64()));
    s.put("ceiling_per_s", round3(wrk.per_sec()));
    s.put(
        "ceiling_nginx_cpu_seconds",
        round3(nginx.cpu_secs() - cpu_before),
    );
    s.put(
        "delivered_ratio_of_ceiling",
        round3(phase.delivered_per_s / wrk.per_sec().max(1e-9)),
    );
    Ok(())
}

/// Scenario 5: all endpoints healthy, then the same load with half of them answering U.
async fn storm(r: &Resolved, c: &Common, s: &mut Summary) -> Result<(), String> {
    let healthy = vec![Answer::Ack; r.endpoints];
    let a = delivery_phase(r, c, &healthy, "all_healthy.", None, s).await?;
    drop(a.receiver);
    let half: Vec<Answer> = (0..r.endpoints)
        .map(|i| {
            if i % 2 == 0 {
                Answer::Ack
            } else {
                Answer::Unknown
            }
        })
        .collect();
    let b = delivery_phase(r, c, &half, "half_unknown.", None, s).await?;
    let _ = b.urls;
    // The healthy half carries half the traffic: compare it with half the all-healthy rate.
    let share = half.iter().filter(|a| **a != Answer::Unknown).count() as f64 / half.len() as f64;
    s.put(
        "healthy_half_delivered_per_s_ratio_to_all_healthy_share",
        round3(b.delivered_per_s / (a.delivered_per_s * share).max(1e-9)),
    );
    Ok(())
}

/// Scenario 4: N pending with no receiver; memory per pending notification, then restart-to-ready time.
async fn backlog(r: &Resolved, c: &Common, s: &mut Summary) -> Result<(), String> {
    if c.target.is_some() {
        return Err("backlog restarts notifyd: it cannot run with --target".into());
    }
    let client = http::client(64);
    let settings = Settings {
        schedule: r.schedule.clone(),
        shards: c.shards.unwrap_or(0),
        max_pending: r.count.max(1_000_000) * 2,
        idempotency_capacity: r.count.max(2_000_000),
        endpoint_concurrency: c.endpoint_concurrency.unwrap_or(64),
        ..Settings::default()
    };
    // A receiver that is down but does not refuse: a listener never accepting. Attempts hang until their
    // 15 s timeout, so only `endpoint_concurrency` of them run at a time, nothing is written back, and
    // every other notification stays queued in memory: what an outage looks like to notifyd.
    let hole = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let hole_addr = hole.local_addr().map_err(|e| e.to_string())?;
    let urls = Arc::new(vec![format!(
        "http://{hole_addr}/v1/payments/notifyPayment"
    )]);
    let mut nd = UnderTest::start(c, &settings, &client).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = nd.stats().unwrap_or_default();
    let epoch = Instant::now();
    let plan = r.plan(nd.targets.clone(), urls);
    let out = ingest::run(plan, client.clone(), epoch).await;
    let loaded = nd.stats().unwrap_or_default();
    let pending = nd
        .metric(&client, "notifyd_pending_notifications", &[])
        .await;
    let n = out.accepted.max(1) as f64;
    s.put("accepted", out.accepted);
    s.put("refused", out.refused);
    if !out.refusal_samples.is_empty() {
        s.put("refusal_samples", out.refusal_samples.clone());
    }
    s.put(
        "accepted_per_s",
        round3(out.accepted as f64 / out.elapsed.as_secs_f64().max(1e-9)),
    );
    s.percentiles("ingest_request_latency", &out.latency_us);
    s.put(
        "notifyd_cpu_seconds_ingest",
        round3(loaded.cpu_secs - idle.cpu_secs),
    );
    s.put("pending_gauge", pending);
    s.put("payload_bytes", out.payload_bytes);
    s.put("rss_idle_mib", round3(idle.rss_kib as f64 / 1024.0));
    s.put(
        "rss_with_pending_mib",
        round3(loaded.rss_kib as f64 / 1024.0),
    );
    s.put("peak_rss_mib", round3(loaded.hwm_kib as f64 / 1024.0));
    let per = (loaded.rss_kib.saturating_sub(idle.rss_kib) as f64) * 1024.0 / n;
    s.put("rss_bytes_per_pending", round3(per));
    s.put(
        "rss_bytes_per_pending_beyond_payload",
        round3(per - out.payload_bytes as f64),
    );
    let Some(daemon) = nd.daemon.as_mut() else {
        return Ok(());
    };
    let stop_started = Instant::now();
    daemon.stop(Duration::from_secs(60)).await?;
    s.put("stop_seconds", round3(stop_started.elapsed().as_secs_f64()));
    let store_bytes = dir_size(daemon.log_path().parent().map(|d| d.join("data")));
    s.put("store_bytes_per_pending", round3(store_bytes as f64 / n));
    daemon.restart(Duration::from_secs(1)).await?;
    let ready = daemon.wait_ready(&client, Duration::from_secs(600)).await?;
    s.put("restart_to_ready_seconds", round3(ready.as_secs_f64()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let recovered = nd.stats().unwrap_or_default();
    let pending = nd
        .metric(&client, "notifyd_pending_notifications", &[])
        .await;
    s.put("pending_gauge_after_restart", pending);
    s.put(
        "rss_after_restart_mib",
        round3(recovered.rss_kib as f64 / 1024.0),
    );
    s.put(
        "peak_rss_after_restart_mib",
        round3(recovered.hwm_kib as f64 / 1024.0),
    );
    s.put(
        "rss_bytes_per_pending_after_restart",
        round3((recovered.rss_kib.saturating_sub(idle.rss_kib) as f64) * 1024.0 / n),
    );
    drop(hole);
    Ok(())
}

fn dir_size(dir: Option<std::path::PathBuf>) -> u64 {
    let Some(dir) = dir else { return 0 };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(Some(e.path())),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
