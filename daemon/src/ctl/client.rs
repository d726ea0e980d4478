//! One HTTP/1.1 request to the operator API, over TCP or the ingest Unix socket.
//!
//! A connection per request: `ctl` makes one or two calls per run, so a pool would only add
//! code. Plain `http://` only: the ingest listener serves no TLS of its own.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};

/// Where the daemon listens.
#[derive(Debug, Clone)]
pub enum Target {
    /// `host:port` of the ingest listener.
    Tcp(String),
    /// The ingest Unix socket.
    Unix(PathBuf),
}

impl Target {
    /// From `--url http://host:port` (a trailing `/` allowed).
    pub fn from_url(url: &str) -> Result<Target, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("--url: must start with http:// (got {url:?})"))?;
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') {
            return Err(format!("--url: must be http://host:port (got {url:?})"));
        }
        let authority = if authority.contains(':') {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(Target::Tcp(authority))
    }
}

/// An answer: status and JSON body (`Null` when the body was not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

/// Why no answer came: the daemon is not reachable (exit 69).
#[derive(Debug)]
pub struct Unreachable(pub String);

/// Sends one request and reads the whole answer, within `timeout`.
pub async fn call(
    target: &Target,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&Value>,
    timeout: Duration,
) -> Result<Answer, Unreachable> {
    let work = async {
        match target {
            Target::Tcp(addr) => {
                let stream = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(|e| Unreachable(format!("{addr}: {e}")))?;
                exchange(stream, addr, token, method, path, body).await
            }
            Target::Unix(path_) => {
                let stream = tokio::net::UnixStream::connect(path_)
                    .await
                    .map_err(|e| Unreachable(format!("{}: {e}", path_.display())))?;
                exchange(stream, "localhost", token, method, path, body).await
            }
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| Unreachable(format!("no answer within {}s", timeout.as_secs())))?
}

async fn exchange<S>(
    stream: S,
    host: &str,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<Answer, Unreachable>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let lost = |e: hyper::Error| Unreachable(format!("connection failed: {e}"));
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(lost)?;
    tokio::spawn(conn);
    let bytes = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, host)
        .header(http::header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        req = req.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = req
        .body(Full::new(Bytes::from(bytes)))
        .map_err(|e| Unreachable(format!("bad request: {e}")))?;
    let resp = sender.send_request(req).await.map_err(lost)?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.map_err(lost)?.to_bytes();
    Ok(Answer {
        status,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    })
}
