//! The pooled HTTP(S) client every attempt goes through.
//!
//! hyper's pooled client over hyper-rustls (ring provider, see `tls.rs`), the profile's
//! connector (`proxy.rs`: direct, or through its CONNECT proxy) and the SSRF guard's resolver
//! (`guard.rs`): HTTP/1.1 keep-alive, HTTP/2 where the receiver offers it by ALPN. Answers are
//! read up to a bound: an ack is a few hundred bytes, and a receiver must not be able to make
//! notifyd buffer megabytes.

use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::ClientConfig;

use super::guard::{Forbidden, Guard, GuardedResolver, find_forbidden};
use super::proxy::Connector;
use super::transport::{TransportError, TransportKind};
use crate::config::ProxyConfig;

/// Largest answer body read; a longer one is treated as unparseable (and retried).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// A complete HTTP answer.
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Headers (Retry-After, Signature, Client-Id, Response-Time).
    pub headers: HeaderMap,
    /// The body, at most [`MAX_ANSWER_BYTES`]; `None` when it was longer or broke off.
    pub body: Option<Bytes>,
}

/// Why no answer came.
#[derive(Debug)]
pub enum SendError {
    /// The attempt timeout ran out.
    Timeout,
    /// Connect, TLS, proxy or I/O failure, typed by whose fault it is.
    Transport(TransportError),
    /// Every address of the target is refused by the profile's SSRF guard: trying again cannot
    /// help until the configuration changes.
    Forbidden(Forbidden),
}

/// Pool settings shared by every profile's client.
#[derive(Debug, Clone, Copy)]
pub struct PoolOptions {
    /// How long an idle connection is kept.
    pub idle_timeout: Duration,
    /// Idle connections kept per host.
    pub max_idle_per_host: usize,
}

/// One profile's pooled client, cheap to clone. Each profile has its own, because trust (CA,
/// client certificate) and the SSRF allow list are per profile, and a pooled connection opened
/// under one profile's rules must never serve another's.
#[derive(Clone, Debug)]
pub struct HttpClient {
    inner: Client<HttpsConnector<Connector>, Full<Bytes>>,
    guard: Guard,
}

impl HttpClient {
    /// A client with `tls` and `guard`, through `proxy` when set; plain `http://` is refused by
    /// the connector itself unless `allow_http`.
    pub fn new(
        pool: PoolOptions,
        tls: ClientConfig,
        guard: Guard,
        allow_http: bool,
        proxy: Option<ProxyConfig>,
    ) -> HttpClient {
        let mut direct = HttpConnector::new_with_resolver(GuardedResolver::new(guard.clone()));
        direct.enforce_http(false);
        direct.set_nodelay(true);
        direct.set_connect_timeout(Some(Duration::from_secs(10)));
        let http = Connector::new(direct, guard.clone(), proxy);
        let builder = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls);
        let https = if allow_http {
            builder
                .https_or_http()
                .enable_http1()
                .enable_http2()
                .wrap_connector(http)
        } else {
            builder
                .https_only()
                .enable_http1()
                .enable_http2()
                .wrap_connector(http)
        };
        let inner = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(pool.idle_timeout)
            .pool_max_idle_per_host(pool.max_idle_per_host)
            .build(https);
        HttpClient { inner, guard }
    }

    /// POSTs `body` to `url` with `headers`, waiting at most `timeout` for the whole answer.
    pub async fn post(
        &self,
        url: &str,
        headers: Vec<(&'static str, String)>,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Answer, SendError> {
        let mut req = Request::post(url).header(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=UTF-8"),
        );
        for (name, value) in headers {
            req = req.header(name, value);
        }
        // IP literals never reach the guarded resolver; a profile reloaded since ingest may also
        // have narrowed its allow list.
        self.guard.check_url(url).map_err(SendError::Forbidden)?;
        let req = req.body(Full::new(body)).map_err(|e| {
            SendError::Transport(TransportError {
                kind: TransportKind::Io,
                detail: e.to_string(),
            })
        })?;
        let call = async {
            let resp = self
                .inner
                .request(req)
                .await
                .map_err(|e| match find_forbidden(&e) {
                    Some(f) => SendError::Forbidden(f.clone()),
                    None => SendError::Transport(TransportError::of(&e)),
                })?;
            let (parts, body) = resp.into_parts();
            let body = Limited::new(body, MAX_ANSWER_BYTES)
                .collect()
                .await
                .ok()
                .map(|b| b.to_bytes());
            Ok(Answer {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
            })
        };
        match tokio::time::timeout(timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(SendError::Timeout),
        }
    }
}
