//! What the mock merchant remembers: a counter per outcome and the most recent requests, bounded.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Uri};
use parking_lot::Mutex;

use super::respond::Outcome;

/// Requests kept by default; the counters go on counting past it.
pub const DEFAULT_RECORD_CAPACITY: usize = 100_000;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The request method.
    pub method: Method,
    /// The request target.
    pub uri: Uri,
    /// The `Signature` header.
    pub signature: Option<HeaderValue>,
    /// The `Client-Id` header.
    pub client_id: Option<HeaderValue>,
    /// The `Request-Time` header.
    pub request_time: Option<HeaderValue>,
    /// The `Content-Type` header.
    pub content_type: Option<HeaderValue>,
    /// The body, exactly as sent.
    pub body: Bytes,
    /// When it arrived (before it was answered), to order deliveries against outside events.
    pub at: std::time::Instant,
}

impl Received {
    pub(crate) fn new(method: Method, uri: Uri, headers: &HeaderMap, body: Bytes) -> Self {
        Received {
            method,
            uri,
            signature: headers.get("signature").cloned(),
            client_id: headers.get("client-id").cloned(),
            request_time: headers.get("request-time").cloned(),
            content_type: headers.get(http::header::CONTENT_TYPE).cloned(),
            body,
            at: std::time::Instant::now(),
        }
    }

    /// The request path.
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    /// A header of interest as text (`None` when absent or not visible ASCII).
    pub fn header_str(value: &Option<HeaderValue>) -> Option<&str> {
        value.as_ref().and_then(|v| v.to_str().ok())
    }

    pub(crate) fn to_json(&self) -> serde_json::Value {
        let text = |v: &Option<HeaderValue>| Self::header_str(v).map(str::to_owned);
        serde_json::json!({
            "method": self.method.as_str(),
            "path": self.uri.path(),
            "signature": text(&self.signature),
            "clientId": text(&self.client_id),
            "requestTime": text(&self.request_time),
            "contentType": text(&self.content_type),
            "body": String::from_utf8_lossy(&self.body),
        })
    }
}

/// Counters and the bounded log of requests.
#[derive(Debug)]
pub(crate) struct Recorder {
    total: AtomicU64,
    outcomes: [AtomicU64; Outcome::ALL.len()],
    log: Mutex<VecDeque<Received>>,
    capacity: usize,
}

impl Recorder {
    pub(crate) fn new(capacity: usize) -> Self {
        Recorder {
            total: AtomicU64::new(0),
            outcomes: Default::default(),
            log: Mutex::new(VecDeque::with_capacity(capacity.min(4096))),
            capacity,
        }
    }

    pub(crate) fn record(&self, received: Received, outcome: Outcome) {
        self.total.fetch_add(1, Ordering::Relaxed);
        self.outcomes[outcome.index()].fetch_add(1, Ordering::Relaxed);
        if self.capacity == 0 {
            return;
        }
        let mut log = self.log.lock();
        if log.len() == self.capacity {
            log.pop_front();
        }
        log.push_back(received);
    }

    pub(crate) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    pub(crate) fn outcome(&self, outcome: Outcome) -> u64 {
        self.outcomes[outcome.index()].load(Ordering::Relaxed)
    }

    /// The last `limit` requests, oldest first.
    pub(crate) fn last(&self, limit: usize) -> Vec<Received> {
        let log = self.log.lock();
        log.iter()
            .skip(log.len().saturating_sub(limit))
            .cloned()
            .collect()
    }

    pub(crate) fn stats_json(&self) -> serde_json::Value {
        let outcomes: serde_json::Map<String, serde_json::Value> = Outcome::ALL
            .iter()
            .map(|o| (o.name().to_owned(), self.outcome(*o).into()))
            .collect();
        let recorded = self.log.lock().len();
        serde_json::json!({
            "total": self.total(),
            "recorded": recorded,
            "outcomes": outcomes,
        })
    }
}
