//! A receiver of notifications for trying notifyd out, for integration tests and for benchmarks
//! (`notifyd mock-merchant`). It answers the protocol's ack, or fails, stalls or throttles as told, and
//! remembers what it received.
//!
//! Besides notifications it serves `GET /_mock/stats` (counts) and `GET /_mock/received?limit=N` (the last
//! requests). The request path is the hot one of every benchmark: no logging, no copies of bodies, keep-alive.

mod record;
mod respond;

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use parking_lot::RwLock;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::{CancellationToken, DropGuard};

pub use record::{DEFAULT_RECORD_CAPACITY, Received};
pub use respond::{Outcome, Respond};

use record::Recorder;
use respond::ModeState;

/// Default listen address of `notifyd mock-merchant`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8471";

#[derive(Debug)]
struct Shared {
    mode: RwLock<Arc<ModeState>>,
    recorder: Recorder,
    stop: CancellationToken,
}

/// A running mock merchant. Dropping it stops it too; [`MockMerchant::shutdown`] also waits.
#[derive(Debug)]
pub struct MockMerchant {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
    _stop_on_drop: DropGuard,
}

impl MockMerchant {
    /// Binds `addr` (port 0 picks a free one) and serves in the background with `mode`, keeping up to
    /// [`DEFAULT_RECORD_CAPACITY`] requests.
    pub async fn start(addr: SocketAddr, mode: Respond) -> io::Result<MockMerchant> {
        Self::start_with_capacity(addr, mode, DEFAULT_RECORD_CAPACITY).await
    }

    /// As [`MockMerchant::start`], keeping up to `capacity` requests (0 keeps none, only counts).
    pub async fn start_with_capacity(
        addr: SocketAddr,
        mode: Respond,
        capacity: usize,
    ) -> io::Result<MockMerchant> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let shared = Arc::new(Shared {
            mode: RwLock::new(Arc::new(ModeState::new(mode))),
            recorder: Recorder::new(capacity),
            stop: stop.clone(),
        });
        let server = tokio::spawn(serve(listener, Arc::clone(&shared)));
        Ok(MockMerchant {
            addr,
            shared,
            server,
            _stop_on_drop: stop.drop_guard(),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The recorded requests, oldest first (at most the capacity, the most recent).
    pub fn received(&self) -> Vec<Received> {
        self.shared.recorder.last(usize::MAX)
    }

    /// Requests received so far (all of them, not only those still recorded).
    pub fn count(&self) -> u64 {
        self.shared.recorder.total()
    }

    /// Requests answered (or stalled) with `outcome` so far.
    pub fn outcome_count(&self, outcome: Outcome) -> u64 {
        self.shared.recorder.outcome(outcome)
    }

    /// Answers from now on with `mode` (a cycle starts from its first entry).
    pub fn set_mode(&self, mode: Respond) {
        *self.shared.mode.write() = Arc::new(ModeState::new(mode));
    }

    /// Stops accepting, drops every connection (stalled ones included) and waits for the server to end.
    pub async fn shutdown(self) {
        self.shared.stop.cancel();
        // A panic in the server task has nothing left to clean up; the mock is gone either way.
        let _ = self.server.await;
    }
}

/// Serves `addr` with `mode` until SIGINT or SIGTERM: `notifyd mock-merchant`.
pub async fn run_until_signal(addr: SocketAddr, mode: Respond) -> io::Result<()> {
    let merchant = MockMerchant::start(addr, mode.clone()).await?;
    eprintln!(
        "mock-merchant: listening on {} answering {mode}",
        merchant.addr()
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = term.recv() => {}
    }
    merchant.shutdown().await;
    Ok(())
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        tokio::select! {
            () = shared.stop.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of descriptors or a connection reset before accept: keep serving the others.
                    continue;
                };
                // Small request/response pairs: Nagle would only add latency.
                let _ = stream.set_nodelay(true);
                let shared = Arc::clone(&shared);
                let builder = builder.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| handle(Arc::clone(&shared), req));
                    // A client hanging up mid-request is its own business.
                    let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                });
            }
        }
    }
    connections.shutdown().await;
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() == Method::GET && req.uri().path().starts_with("/_mock/") {
        return Ok(control(&shared, &req));
    }
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(plain(StatusCode::BAD_REQUEST, "unreadable body")),
    };
    let decision = shared.mode.read().decide();
    shared.recorder.record(
        Received::new(parts.method, parts.uri, &parts.headers, body),
        decision.outcome,
    );
    if let Some(delay) = decision.delay {
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shared.stop.cancelled() => {}
        }
    }
    if decision.outcome == Outcome::Stall {
        shared.stop.cancelled().await;
    }
    Ok(respond::answer(decision.outcome))
}

fn control(shared: &Shared, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let value = match req.uri().path() {
        "/_mock/stats" => shared.recorder.stats_json(),
        "/_mock/received" => {
            let limit = req
                .uri()
                .query()
                .unwrap_or_default()
                .split('&')
                .find_map(|pair| pair.strip_prefix("limit="))
                .map(str::parse::<usize>);
            let limit = match limit {
                None => 100,
                Some(Ok(n)) => n,
                Some(Err(_)) => return plain(StatusCode::BAD_REQUEST, "limit must be a number"),
            };
            let received: Vec<_> = shared
                .recorder
                .last(limit)
                .iter()
                .map(Received::to_json)
                .collect();
            serde_json::Value::Array(received)
        }
        _ => return plain(StatusCode::NOT_FOUND, "unknown control path"),
    };
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
}
