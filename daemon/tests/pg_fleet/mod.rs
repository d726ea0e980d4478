//! Several real `notifyd` processes on one private PostgreSQL, for the failure tests of the
//! PostgreSQL store: their configs, a load that spreads over them, and what the receiver saw.
//!
//! Every host signs with its own `client_id` (`HOST-<slot>`), so the receiver can tell which host
//! sent each delivery; a slot keeps its id, ports and log across kills and restarts.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use notifyd_daemon::mock_merchant::{MockMerchant, Received, Respond};
use notifyd_daemon::test_pg::Cluster;
use parking_lot::Mutex;
use serde_json::Value;

use crate::support::process::{Notifyd, call, client, two_ports};
use crate::support::trust::{secret, sigvec_dir};

/// What differs between the tests' hosts.
#[derive(Clone)]
pub struct HostConfig {
    /// `[store] lease`: longer than the attempt timeout plus 10s, as check-config demands.
    pub lease: &'static str,
    /// `[profiles.default.retry]` body.
    pub retry: &'static str,
    /// `[delivery] endpoint_concurrency` (and `max_in_flight`).
    pub concurrency: usize,
}

/// One host's place: ports, config and log, kept across restarts.
pub struct Slot {
    pub name: String,
    pub ingest: SocketAddr,
    pub metrics: SocketAddr,
    config: PathBuf,
    log: PathBuf,
    pub proc: Option<Notifyd>,
    /// Stopped (SIGSTOP): asked nothing, it would not answer.
    pub paused: bool,
    /// Another build of notifyd to run here (an older release); this one's when `None`.
    pub binary: Option<PathBuf>,
}

impl Slot {
    pub async fn start(&mut self) {
        let started = match &self.binary {
            Some(bin) => {
                Notifyd::spawn_binary(bin, &self.config, self.ingest, self.metrics, &self.log, &[])
                    .await
            }
            None => Notifyd::spawn(&self.config, self.ingest, self.metrics, &self.log, &[]).await,
        };
        let n = started.unwrap_or_else(|e| panic!("{} did not start: {e}", self.name));
        self.proc = Some(n);
    }

    /// SIGKILL, reaped: once this returns, nothing more leaves the process.
    pub fn kill9(&mut self) {
        if let Some(mut n) = self.proc.take() {
            assert!(n.alive(), "{} died on its own: {}", self.name, n.log_tail());
            n.kill9();
        }
    }

    pub fn signal(&self, sig: &str) {
        let pid = self.proc.as_ref().expect("running").pid().to_string();
        // The shell's builtin: a fresh Debian has no /usr/bin/kill without procps.
        let ok = std::process::Command::new("sh")
            .args(["-c", &format!("kill {sig} {pid}")])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {pid}");
    }

    pub fn log_tail(&self) -> String {
        self.proc
            .as_ref()
            .map(Notifyd::log_tail)
            .unwrap_or_default()
    }

    /// The value of counter or gauge `name` (no labels) on its `/metrics`.
    pub async fn metric(&self, name: &str) -> f64 {
        let req = http::Request::get(format!("http://{}/metrics", self.metrics))
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let resp = client().request(req).await.expect("/metrics answers");
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        let text = String::from_utf8_lossy(&body).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} not on {}'s /metrics", self.name))
    }
}

/// The hosts, the database they share and the receiver they deliver to.
pub struct Fleet {
    pub cluster: Cluster,
    pub url: String,
    pub receiver: MockMerchant,
    pub target: String,
    pub slots: Vec<Slot>,
    _dir: tempfile::TempDir,
}

/// `None` (skipped, or failed under `NOTIFYD_CI`) without PostgreSQL.
pub fn cluster() -> Option<Cluster> {
    match Cluster::start() {
        Ok(c) => Some(c),
        Err(reason) => {
            crate::support::skip(&reason);
            None
        }
    }
}

impl Fleet {
    /// [`Fleet::new`] on a fresh cluster with every host started; `None` without PostgreSQL.
    pub async fn running(hosts: usize, mode: &str, host: HostConfig) -> Option<Fleet> {
        let mut fleet = Fleet::new(cluster()?, hosts, mode, host).await;
        fleet.start_all().await;
        Some(fleet)
    }

    /// `hosts` configured slots on a fresh database, none started; the receiver answers `mode`.
    pub async fn new(cluster: Cluster, hosts: usize, mode: &str, host: HostConfig) -> Fleet {
        let url = cluster.database("faults").expect("createdb");
        let receiver = MockMerchant::start_with_capacity(
            "127.0.0.1:0".parse().unwrap(),
            mode.parse::<Respond>().unwrap(),
            1_000_000,
        )
        .await
        .unwrap();
        let target = format!("http://{}/n", receiver.addr());
        let dir = tempfile::tempdir().unwrap();
        let key = std::fs::read(sigvec_dir().join("test_private_key_pkcs8.pem")).unwrap();
        let key = secret(dir.path(), "key.pem", &key);
        let slots = (0..hosts)
            .map(|i| {
                let name = format!("HOST-{i}");
                let (ingest, metrics) = two_ports();
                let config = dir.path().join(format!("{name}.toml"));
                let text = format!(
                    r#"
[store]
kind = "postgres"
path = "{store}"
url = "{url}"
lease = "{lease}"
pool_size = 4
[ingest]
listen = "{ingest}"
[metrics]
listen = "{metrics}"
[shutdown]
grace = "1s"
[log]
level = "warn"
[delivery]
max_in_flight = {c}
endpoint_concurrency = {c}
[profiles.default]
allow_http = true
allow_private = ["127.0.0.0/8"]
client_id = "{name}"
key_version = 1
private_key_file = "{key}"
[profiles.default.retry]
{retry}
"#,
                    store = dir.path().join(&name).display(),
                    lease = host.lease,
                    c = host.concurrency,
                    key = key.display(),
                    retry = host.retry,
                );
                std::fs::write(&config, text).unwrap();
                Slot {
                    log: dir.path().join(format!("{name}.log")),
                    name,
                    ingest,
                    metrics,
                    config,
                    proc: None,
                    paused: false,
                    binary: None,
                }
            })
            .collect();
        Fleet {
            cluster,
            url,
            receiver,
            target,
            slots,
            _dir: dir,
        }
    }

    /// Starts every host at once (they race for the schema) and waits until all are ready.
    pub async fn start_all(&mut self) {
        let starting: Vec<_> = self
            .slots
            .iter()
            .map(|s| {
                let (config, log, ingest, metrics) =
                    (s.config.clone(), s.log.clone(), s.ingest, s.metrics);
                tokio::spawn(
                    async move { Notifyd::spawn(&config, ingest, metrics, &log, &[]).await },
                )
            })
            .collect();
        for (slot, started) in self.slots.iter_mut().zip(starting) {
            let n = started
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("{} did not start: {e}", slot.name));
            slot.proc = Some(n);
        }
    }

    /// Posts `envelope` to host `slot`, which must answer S; answers the notificationId.
    pub async fn submit(&self, slot: usize, envelope: &Value) -> String {
        let body = serde_json::to_vec(envelope).unwrap();
        let ingest = self.slots[slot].ingest;
        let (status, v) = call(&client(), "POST", ingest, "/v1/notifications", body)
            .await
            .unwrap();
        let accepted = status == 200 && v["result"]["resultStatus"] == "S";
        assert!(accepted, "{} answered {status} {v}", self.slots[slot].name);
        v["notificationId"].as_str().unwrap().to_owned()
    }

    /// A plain connection to the shared database, for what only it can tell.
    pub async fn db(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .expect("connect to the test database");
        tokio::spawn(conn);
        client
    }

    /// What the receiver got, per paymentId: (arrival, sending host, api), oldest first.
    pub fn deliveries(&self) -> HashMap<String, Vec<Delivery>> {
        let mut out: HashMap<String, Vec<Delivery>> = HashMap::new();
        for r in self.receiver.received() {
            let d = Delivery::of(&r);
            out.entry(d.payment.clone()).or_default().push(d);
        }
        for v in out.values_mut() {
            v.sort_by_key(|d| d.at);
        }
        out
    }

    /// Waits until every accepted notification (paymentId → id, at least 50 of them) is
    /// delivered with S recorded and the receiver got it; answers what the receiver got.
    pub async fn all_delivered(
        &self,
        accepted: &HashMap<String, String>,
    ) -> HashMap<String, Vec<Delivery>> {
        assert!(
            accepted.len() >= 50,
            "the load got only {} S",
            accepted.len()
        );
        let deadline = Instant::now() + Duration::from_secs(40);
        for (pay, id) in accepted {
            let s = self.wait_delivered(id, pay, deadline).await;
            assert_eq!(s["lastResult"], "S SUCCESS", "{pay}: {s}");
        }
        let got = self.deliveries();
        for pay in accepted.keys() {
            assert!(got.contains_key(pay), "{pay} accepted and never delivered");
        }
        got
    }

    /// Polls notification `id` on any running host until it is `delivered`; panics if it is
    /// gone, leaves pending for anything else, or `deadline` passes.
    pub async fn wait_delivered(&self, id: &str, what: &str, deadline: Instant) -> Value {
        let c = client();
        let mut last = Value::Null;
        loop {
            for slot in self.slots.iter().filter(|s| s.proc.is_some() && !s.paused) {
                let path = format!("/v1/notifications/{id}");
                let Ok((status, s)) = call(&c, "GET", slot.ingest, &path, vec![]).await else {
                    continue;
                };
                assert_eq!(status, 200, "an accepted notification is gone: {what}: {s}");
                if s["state"] == "delivered" {
                    return s;
                }
                assert_eq!(s["state"], "pending", "{what} did not end delivered: {s}");
                last = s;
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{what} was not delivered in time: {last}: {}",
                self.slots.iter().map(Slot::log_tail).collect::<String>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// One delivery as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub payment: String,
    pub api: String,
    pub host: String,
    pub at: Instant,
}

impl Delivery {
    fn of(r: &Received) -> Delivery {
        let v: Value = serde_json::from_slice(&r.body).expect("the receiver got JSON");
        let api = if v.get("voidResult").is_some() {
            "void"
        } else {
            "payment"
        };
        Delivery {
            payment: v["paymentId"].as_str().expect("a paymentId").to_owned(),
            api: api.to_owned(),
            host: Received::header_str(&r.client_id)
                .expect("every host signs with its client_id")
                .to_owned(),
            at: r.at,
        }
    }
}

/// One ingest request of the load: when it was sent and answered, and how.
#[derive(Debug, Clone)]
pub struct Answer {
    pub payment: String,
    pub sent: Instant,
    pub answered: Instant,
    /// HTTP status and body; `None` when no answer came (the host was killed mid-request).
    pub reply: Option<(u16, Value)>,
}

impl Answer {
    pub fn accepted(&self) -> Option<&str> {
        match &self.reply {
            Some((200, v)) if v["result"]["resultStatus"] == "S" => v["notificationId"].as_str(),
            _ => None,
        }
    }
}

/// Unique notifyPayment notifications sent round-robin over the hosts' ingest addresses by
/// `tasks` tasks until stopped; a host that does not answer is skipped, the request not repeated
/// (no answer, nothing promised).
pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    pub answers: Arc<Mutex<Vec<Answer>>>,
}

impl Load {
    pub fn start(hosts: Vec<SocketAddr>, target: &str, prefix: &str, tasks: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let answers = Arc::new(Mutex::new(Vec::new()));
        let tasks = (0..tasks)
            .map(|t| {
                let (hosts, target, prefix) = (hosts.clone(), target.to_owned(), prefix.to_owned());
                let (stop, answers) = (stop.clone(), answers.clone());
                tokio::spawn(async move {
                    let c = client();
                    let mut n = 0usize;
                    while !stop.load(Ordering::Relaxed) {
                        let payment = format!("{prefix}-T{t}-{n}");
                        let host = hosts[(n + t) % hosts.len()];
                        n += 1;
                        let body = serde_json::to_vec(&crate::support::payment(&target, &payment))
                            .unwrap();
                        let sent = Instant::now();
                        let reply = tokio::time::timeout(
                            Duration::from_secs(5),
                            call(&c, "POST", host, "/v1/notifications", body),
                        )
                        .await
                        .ok()
                        .and_then(Result::ok);
                        let refused = reply.is_none();
                        answers.lock().push(Answer {
                            payment,
                            sent,
                            answered: Instant::now(),
                            reply,
                        });
                        if refused {
                            // A host being restarted: do not spin on its closed port.
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        } else {
                            // Keep the rate modest: the CI's two cores run PostgreSQL too.
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            tasks,
            answers,
        }
    }

    /// Stops and answers every request made.
    pub async fn stop(self) -> Vec<Answer> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        std::mem::take(&mut *self.answers.lock())
    }
}

/// paymentId → notificationId of every S answer; panics on an S answered with another status
/// or two different ids for one payment.
pub fn accepted(answers: &[Answer]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for a in answers {
        if let Some((status, v)) = &a.reply
            && v["result"]["resultStatus"] == "S"
        {
            assert_eq!(*status, 200, "S with HTTP {status}: {v}");
        }
        if let Some(id) = a.accepted() {
            let before = out.insert(a.payment.clone(), id.to_owned());
            assert!(before.is_none(), "{} accepted twice", a.payment);
        }
    }
    out
}
