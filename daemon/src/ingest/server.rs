//! Listeners: accept connections and serve HTTP/1.1 on each until shutdown.

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::routes;
use crate::app::App;

/// Most ingest connections served at once; further ones wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 4096;
/// Time a client has to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the ingest API on a TCP listener until `stop` fires.
pub async fn serve_tcp(listener: TcpListener, app: Arc<App>, stop: CancellationToken) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
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
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    serve_connection(stream, app, stop).await;
                    drop(permit);
                });
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "Ingest accept failed.");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Serves the ingest API on a Unix socket until `stop` fires.
pub async fn serve_unix(listener: UnixListener, app: Arc<App>, stop: CancellationToken) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
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
            Ok((stream, _)) => {
                let app = app.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    serve_connection(stream, app, stop).await;
                    drop(permit);
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "Unix socket accept failed.");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_connection<S>(stream: S, app: Arc<App>, stop: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| routes::handle(app.clone(), req));
    serve_http1(stream, service, stop).await;
}

/// One HTTP/1.1 connection with keep-alive, a header timeout, and a graceful close on `stop`
/// (the request in progress is answered first).
pub async fn serve_http1<S, Svc>(stream: S, service: Svc, stop: CancellationToken)
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
        .header_read_timeout(HEADER_READ_TIMEOUT)
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
