//! The in-process receiver: N endpoints (one listener each, distinct ports, so each is its own endpoint key
//! in notifyd) answering the protocol's ack, `U`, or `S` after a delay. Unlike `notifyd mock-merchant` it
//! timestamps every first `S` per notification sequence number, which is what accepted→delivered needs.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::payload;

/// What one endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Answer {
    /// `S SUCCESS` at once.
    Ack,
    /// `U UNKNOWN_EXCEPTION` at once (notifyd retries).
    Unknown,
    /// `S SUCCESS` after the delay.
    Slow(Duration),
}

impl Answer {
    /// `S`, `U` or `SLOW:<delay>`.
    pub fn parse(text: &str) -> Result<Answer, String> {
        match text.trim().to_ascii_uppercase().as_str() {
            "S" => Ok(Answer::Ack),
            "U" => Ok(Answer::Unknown),
            other => match other.strip_prefix("SLOW:") {
                Some(d) => super::cli::parse_delay(&d.to_ascii_lowercase()).map(Answer::Slow),
                None => Err(format!(
                    "unknown answer `{text}`; expected S, U or SLOW:<delay>"
                )),
            },
        }
    }
}

const ACK: &[u8] =
    br#"{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"}}"#;
const UNKNOWN: &[u8] = br#"{"result":{"resultCode":"UNKNOWN_EXCEPTION","resultStatus":"U","resultMessage":"unknown exception"}}"#;
const LOG_SHARDS: usize = 32;

#[derive(Debug)]
struct Shared {
    epoch: Instant,
    requests: AtomicU64,
    acks: AtomicU64,
    last_ack_nanos: AtomicU64,
    // (sequence number, receipt in nanos since epoch) of each acked request; sharded so endpoint tasks on
    // different threads rarely meet on one lock.
    log: [Mutex<Vec<(u64, u64)>>; LOG_SHARDS],
}

/// A running receiver; dropping it stops every endpoint.
#[derive(Debug)]
pub struct Receiver {
    shared: Arc<Shared>,
    addrs: Vec<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
}

/// Counts so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    /// Requests received.
    pub requests: u64,
    /// Requests answered `S`.
    pub acks: u64,
}

impl Receiver {
    /// Starts `answers.len()` endpoints on 127.0.0.1 with free ports, endpoint `i` answering `answers[i]`.
    pub async fn start(answers: &[Answer], epoch: Instant) -> io::Result<Receiver> {
        let shared = Arc::new(Shared {
            epoch,
            requests: AtomicU64::new(0),
            acks: AtomicU64::new(0),
            last_ack_nanos: AtomicU64::new(0),
            log: std::array::from_fn(|_| Mutex::new(Vec::new())),
        });
        let mut addrs = Vec::with_capacity(answers.len());
        let mut tasks = Vec::with_capacity(answers.len());
        for &answer in answers {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            addrs.push(listener.local_addr()?);
            tasks.push(tokio::spawn(serve(listener, Arc::clone(&shared), answer)));
        }
        Ok(Receiver {
            shared,
            addrs,
            tasks,
        })
    }

    /// The endpoint addresses, in the order of the answers given.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Counts so far.
    pub fn counts(&self) -> Counts {
        Counts {
            requests: self.shared.requests.load(Ordering::Relaxed),
            acks: self.shared.acks.load(Ordering::Relaxed),
        }
    }

    /// When the latest `S` was sent, since the epoch.
    pub fn last_ack(&self) -> Duration {
        Duration::from_nanos(self.shared.last_ack_nanos.load(Ordering::Relaxed))
    }

    /// Takes the receipt log and zeroes the counters, for the next phase.
    pub fn take(&self) -> Vec<(u64, u64)> {
        let mut all = Vec::new();
        for shard in &self.shared.log {
            all.append(&mut shard.lock());
        }
        self.shared.requests.store(0, Ordering::Relaxed);
        self.shared.acks.store(0, Ordering::Relaxed);
        self.shared.last_ack_nanos.store(0, Ordering::Relaxed);
        all
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>, answer: Answer) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let shared = Arc::clone(&shared);
                connections.spawn(async move {
                    let service = service_fn(move |req| handle(Arc::clone(&shared), answer, req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
}

async fn handle(
    shared: Arc<Shared>,
    answer: Answer,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let body_out = match answer {
        Answer::Unknown => UNKNOWN,
        Answer::Ack | Answer::Slow(_) => {
            if let Answer::Slow(delay) = answer {
                tokio::time::sleep(delay).await;
            }
            let at = shared.epoch.elapsed().as_nanos() as u64;
            shared.acks.fetch_add(1, Ordering::Relaxed);
            shared.last_ack_nanos.fetch_max(at, Ordering::Relaxed);
            if let Some(seq) = payload::sequence_of(&body) {
                shared.log[(seq as usize) % LOG_SHARDS]
                    .lock()
                    .push((seq, at));
            }
            ACK
        }
    };
    let mut response = Response::new(Full::new(Bytes::from_static(body_out)));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    Ok(response)
}
