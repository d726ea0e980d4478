//! Listeners: accept connections and serve HTTP/1.1 on each until shutdown.
//!
//! A slow or hostile client must not be able to exhaust the daemon: connections are capped per
//! listener, a request head is bounded in size and must arrive within the header timeout (which
//! also closes idle keep-alive connections), and the body has its own timeout (`routes.rs`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::routes;
use crate::app::App;
use crate::backoff::Backoff;
use crate::config::IngestConfig;
use crate::start_error::StartError;

/// Per-connection limits of a listener.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Connections served at once; further ones wait in the kernel's backlog.
    pub max_connections: usize,
    /// Largest request head (hyper's read buffer; at least 8192).
    pub max_header_bytes: usize,
    /// Time a client has to send its request headers.
    pub header_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_connections: 4096,
            max_header_bytes: 16 * 1024,
            header_timeout: Duration::from_secs(10),
        }
    }
}

impl From<&IngestConfig> for ConnLimits {
    fn from(c: &IngestConfig) -> Self {
        ConnLimits {
            max_connections: c.max_connections.get(),
            max_header_bytes: c.max_header_bytes,
            header_timeout: c.header_timeout,
        }
    }
}

/// Binds the ingest Unix socket with its configured mode and group. The socket is made under a
/// temporary name and renamed into place once its permissions are right, so there is no moment
/// at which a client could connect through looser ones.
pub fn bind_unix(path: &Path, config: &IngestConfig) -> Result<UnixListener, StartError> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let err = |what: &'static str| {
        move |source: std::io::Error| StartError::Listen {
            what,
            addr: path.display().to_string(),
            source,
        }
    };
    // Only a stale socket is removed: a regular file at that path is a configuration mistake.
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(err("ingest.unix_socket")(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "exists and is not a socket",
            )));
        }
        std::fs::remove_file(path).map_err(err("ingest.unix_socket"))?;
    }
    let mut staging = path.as_os_str().to_owned();
    staging.push(format!(".{}.tmp", std::process::id()));
    let staging = std::path::PathBuf::from(staging);
    let _ = std::fs::remove_file(&staging);
    let listener = UnixListener::bind(&staging).map_err(err("ingest.unix_socket"))?;
    let placed = (|| {
        if let Some(gid) = config.unix_socket_group {
            std::os::unix::fs::chown(&staging, None, Some(gid))
                .map_err(err("ingest.unix_socket_group"))?;
        }
        std::fs::set_permissions(
            &staging,
            std::fs::Permissions::from_mode(config.unix_socket_mode),
        )
        .map_err(err("ingest.unix_socket_mode"))?;
        std::fs::rename(&staging, path).map_err(err("ingest.unix_socket"))
    })();
    if placed.is_err() {
        let _ = std::fs::remove_file(&staging);
    }
    placed.map(|()| listener)
}

/// What the accept loop needs of a listener: the next connection, ready to serve.
pub trait Accept: Send + 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn accept(&self) -> impl Future<Output = std::io::Result<Self::Stream>> + Send;
}

impl Accept for TcpListener {
    type Stream = TcpStream;
    async fn accept(&self) -> std::io::Result<TcpStream> {
        let (stream, _) = TcpListener::accept(self).await?;
        // Replies are small and written whole: Nagle would only delay them.
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }
}

impl Accept for UnixListener {
    type Stream = UnixStream;
    async fn accept(&self) -> std::io::Result<UnixStream> {
        UnixListener::accept(self).await.map(|(stream, _)| stream)
    }
}

/// Serves the ingest API on `listener` (TCP or Unix socket) until `stop` fires; `name` tells
/// the listeners apart in logs.
pub async fn serve<L: Accept>(
    listener: L,
    name: &'static str,
    app: Arc<App>,
    limits: ConnLimits,
    stop: CancellationToken,
) {
    serve_with(
        listener,
        name,
        move |req| routes::handle(app.clone(), req),
        limits,
        stop,
    )
    .await;
}

/// Serves `handler` on `listener` with the connection limits of a listener, until `stop` fires:
/// every listener of notifyd (ingest, the merchant-facing inquiry, metrics) goes through this
/// one loop. `name` is the listener's, for the log line of a failed accept.
pub async fn serve_with<L, H, F>(
    listener: L,
    name: &'static str,
    handler: H,
    limits: ConnLimits,
    stop: CancellationToken,
) where
    L: Accept,
    H: Fn(http::Request<hyper::body::Incoming>) -> F + Clone + Send + Sync + 'static,
    F: std::future::Future<
            Output = Result<http::Response<super::respond::Body>, std::convert::Infallible>,
        > + Send
        + 'static,
{
    let limit = Arc::new(Semaphore::new(limits.max_connections));
    let mut backoff = Backoff::accept();
    loop {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => p,
            () = stop.cancelled() => return,
        };
        let Ok(permit) = permit else { return };
        let conn = tokio::select! {
            c = listener.accept() => c,
            () = stop.cancelled() => return,
        };
        match conn {
            Ok(stream) => {
                backoff.reset();
                let handler = handler.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    serve_http1(stream, service_fn(handler), limits, stop).await;
                    drop(permit);
                });
            }
            Err(e) => {
                // EMFILE and friends: the connection stays queued, so retrying at once would spin.
                let wait = backoff.next_delay();
                tracing::warn!(listener = name, error = %e, retry_in_ms = wait.as_millis() as u64, "Accept failed; trying again shortly.");
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = stop.cancelled() => return,
                }
            }
        }
    }
}

/// One HTTP/1.1 connection with keep-alive, a bounded head that must arrive in time, and a
/// graceful close on `stop` (the request in progress is answered first).
async fn serve_http1<S, Svc>(stream: S, service: Svc, limits: ConnLimits, stop: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    Svc: hyper::service::Service<
            http::Request<hyper::body::Incoming>,
            Response = http::Response<super::respond::Body>,
            Error = std::convert::Infallible,
        > + Send
        + 'static,
    Svc::Future: Send + 'static,
{
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => { let _ = r; }
        () = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}
