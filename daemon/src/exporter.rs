//! The metrics listener (`[metrics] listen`): the Prometheus exposition on `/metrics`, and the
//! same `/healthz` and `/readyz` as the ingest listener, for probes that should not need an
//! ingest token. It is served by the one accept loop of `ingest/server.rs`.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use notifyd_core::ack::codes::NO_INTERFACE_DEF;

use crate::app::App;
use crate::ingest::respond::{Body, Reply, bytes_response};
use crate::ingest::routes::readyz;
use crate::ingest::server::ConnLimits;
use crate::metrics;

/// Scrapers and probes come a few at a time; the cap keeps a flood of them from taking the
/// descriptors ingest needs.
pub const LIMITS: ConnLimits = ConnLimits {
    max_connections: 64,
    max_header_bytes: 16 * 1024,
    header_timeout: std::time::Duration::from_secs(10),
};

/// Installs the Prometheus recorder once per process; later calls get the same handle.
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = match builder().install_recorder() {
                Ok(h) => h,
                // Another recorder is installed (a test harness): keep a private one.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            };
            metrics::register();
            handle
        })
        .clone()
}

/// A builder with every family's buckets.
fn builder() -> PrometheusBuilder {
    let mut b = PrometheusBuilder::new();
    for (name, buckets) in metrics::buckets() {
        // The builder refuses only an empty list, and drops itself (with every bucket set so
        // far) when it does; `metrics::buckets` has none, which a test checks.
        b = b
            .set_buckets_for_metric(Matcher::Full(name.to_owned()), &buckets)
            .expect("every family has buckets");
    }
    b
}

/// Routes one request of the metrics listener.
pub async fn handle(
    app: Arc<App>,
    handle: PrometheusHandle,
    status: Arc<crate::status::Status>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, Infallible> {
    if crate::status::owns(req.uri().path()) {
        return Ok(crate::status::handle(&status, &app, req).await);
    }
    // Read-only paths: anything but GET (or HEAD) is refused, as the status page's paths are.
    if req.method() != http::Method::GET && req.method() != http::Method::HEAD {
        return Ok(Reply::result(
            StatusCode::METHOD_NOT_ALLOWED,
            notifyd_core::ack::Status::F,
            notifyd_core::ack::codes::METHOD_NOT_SUPPORTED,
            &format!("{} {} is not supported", req.method(), req.uri().path()),
        )
        .into_response());
    }
    Ok(match req.uri().path() {
        "/metrics" => {
            // Figures read at scrape time rather than on every event.
            metrics::refresh(&app).await;
            bytes_response(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                Bytes::from(handle.render()),
                None,
            )
        }
        "/healthz" => Reply::ok("alive").into_response(),
        "/readyz" => readyz(&app).into_response(),
        _ => Reply::not_found(NO_INTERFACE_DEF, "try /metrics").into_response(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_histogram_has_ascending_buckets() {
        for (name, buckets) in crate::metrics::buckets() {
            assert!(!buckets.is_empty(), "{name}");
            assert!(buckets.is_sorted_by(|a, b| a < b), "{name}: {buckets:?}");
        }
        super::builder();
    }
}
