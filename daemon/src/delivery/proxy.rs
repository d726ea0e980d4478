//! The connector under every profile's client: direct, or through the profile's HTTP CONNECT
//! proxy.
//!
//! Through the proxy, notifyd resolves the receiver's name itself with the SSRF guard and asks
//! for a tunnel to the *address* it checked (`CONNECT 203.0.113.7:443`), never to the name. Were
//! the proxy to resolve the name, its answer (another resolver, a split horizon, a rebinding
//! between our check and its lookup) could reach an address the guard never saw. The cost: a
//! proxy whose access rules are by name sees addresses only. TLS is end to end: the connector
//! only hands back the tunnel, and the TLS layer above it shakes hands with the receiver, by its
//! name (SNI and certificate check), inside the tunnel. Plain `http://` receivers go through a
//! tunnel too, so the guard's guarantee is the same for both.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower_service::Service;

use super::guard::{Guard, GuardedResolver};
use super::transport::TransportKind;
use crate::config::ProxyConfig;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Time allowed to connect to the proxy and to get its answer to CONNECT.
const PROXY_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest CONNECT answer head read.
const MAX_PROXY_HEAD: usize = 8 * 1024;

/// Why the proxy gave no tunnel.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The proxy could not be reached.
    #[error("cannot connect to proxy {proxy}: {source}")]
    Connect {
        proxy: String,
        #[source]
        source: std::io::Error,
    },
    /// The proxy answered CONNECT with something else than 2xx, or not in HTTP.
    #[error("proxy {proxy} refused CONNECT {target}: {answer}")]
    Refused {
        proxy: String,
        target: SocketAddr,
        /// The status line, or what was wrong with the answer.
        answer: String,
        /// 502 or 504: the proxy failed to reach the receiver, which is the receiver's failure.
        upstream: bool,
    },
}

impl ProxyError {
    /// The transport kind it counts as.
    pub fn kind(&self) -> TransportKind {
        match self {
            ProxyError::Refused { upstream: true, .. } => TransportKind::ProxyUpstream,
            _ => TransportKind::Proxy,
        }
    }
}

/// The profile's connector (see the module docs). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Connector {
    direct: HttpConnector<GuardedResolver>,
    resolver: GuardedResolver,
    guard: Guard,
    proxy: Option<Arc<ProxyConfig>>,
}

impl Connector {
    pub fn new(
        direct: HttpConnector<GuardedResolver>,
        guard: Guard,
        proxy: Option<ProxyConfig>,
    ) -> Connector {
        Connector {
            direct,
            resolver: GuardedResolver::new(guard.clone()),
            guard,
            proxy: proxy.map(Arc::new),
        }
    }
}

impl Service<Uri> for Connector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let mut direct = self.direct.clone();
        let Some(proxy) = self.proxy.clone() else {
            return Box::pin(async move { direct.call(uri).await.map_err(Into::into) });
        };
        let (mut resolver, guard) = (self.resolver.clone(), self.guard.clone());
        Box::pin(async move {
            let host = uri.host().unwrap_or_default();
            let host = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host)
                .to_owned();
            if proxy.no_proxy.matches_host(&host) {
                return direct.call(uri).await.map_err(Into::into);
            }
            let port = uri
                .port_u16()
                .unwrap_or(if uri.scheme_str() == Some("https") {
                    443
                } else {
                    80
                });
            let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
                Ok(ip) => {
                    guard.check(ip)?;
                    vec![SocketAddr::new(ip, port)]
                }
                Err(_) => {
                    let name: Name = host.parse()?;
                    resolver
                        .call(name)
                        .await?
                        .map(|a| SocketAddr::new(a.ip(), port))
                        .collect()
                }
            };
            if addrs.iter().any(|a| proxy.no_proxy.matches_ip(a.ip())) {
                return direct.call(uri).await.map_err(Into::into);
            }
            let mut last = None;
            for target in addrs {
                match tunnel(&proxy, target).await {
                    Ok(tcp) => return Ok(TokioIo::new(tcp)),
                    // The proxy could not reach this address of the receiver: try the next, as a
                    // direct connect would.
                    Err(e @ ProxyError::Refused { upstream: true, .. }) => last = Some(e),
                    Err(e) => return Err(e.into()),
                }
            }
            Err(last.map_or_else(|| "the receiver's name has no address".into(), Into::into))
        })
    }
}

/// Opens a connection to the proxy and asks it for a tunnel to `target`.
async fn tunnel(proxy: &ProxyConfig, target: SocketAddr) -> Result<TcpStream, ProxyError> {
    let name = match proxy.host.parse::<IpAddr>() {
        Ok(IpAddr::V6(ip)) => format!("[{ip}]:{}", proxy.port),
        _ => format!("{}:{}", proxy.host, proxy.port),
    };
    let connect_failed = |source| ProxyError::Connect {
        proxy: name.clone(),
        source,
    };
    let refused = |answer: String, upstream| ProxyError::Refused {
        proxy: name.clone(),
        target,
        answer,
        upstream,
    };
    let timed_out = || std::io::Error::from(std::io::ErrorKind::TimedOut);
    // The proxy is the operator's own host (often on a private address): the guard, which is
    // about receivers, does not apply to it.
    let mut tcp = tokio::time::timeout(
        PROXY_TIMEOUT,
        TcpStream::connect((proxy.host.as_str(), proxy.port)),
    )
    .await
    .map_err(|_| connect_failed(timed_out()))?
    .map_err(connect_failed)?;
    let _ = tcp.set_nodelay(true);
    let request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
    let head = tokio::time::timeout(PROXY_TIMEOUT, async {
        tcp.write_all(request.as_bytes()).await?;
        let mut head = Vec::with_capacity(256);
        let mut buf = [0u8; 512];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_PROXY_HEAD {
            let n = tcp.read(&mut buf).await?;
            if n == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok(head)
    })
    .await
    .map_err(|_| connect_failed(timed_out()))?
    .map_err(connect_failed)?;
    let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Err(refused(
            format!("no end of the answer head in {MAX_PROXY_HEAD} bytes"),
            false,
        ));
    };
    if end + 4 != head.len() {
        // Nothing may come before the receiver speaks (TLS, or the HTTP answer to our request).
        return Err(refused("bytes after the answer head".to_owned(), false));
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.split(' ');
    let status = match (words.next(), words.next()) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") => code.parse::<u16>().ok(),
        _ => None,
    };
    let mut shown = line.into_owned();
    crate::text::truncate_chars(&mut shown, 80);
    match status {
        Some(200..=299) => Ok(tcp),
        Some(502 | 504) => Err(refused(shown, true)),
        _ => Err(refused(shown, false)),
    }
}
