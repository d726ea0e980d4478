//! Request routing for the ingest listener (TCP and Unix socket alike).

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use notifyd_core::ack::Status;
use notifyd_core::ack::codes::{
    ACCESS_DENIED, METHOD_NOT_SUPPORTED, NO_INTERFACE_DEF, PARAM_ILLEGAL,
};

use super::respond::{Body, Reply};
use super::{accept, endpoints, query, search};
use crate::app::App;
use crate::metrics::{self, IngestOutcome};

/// Routes one request.
pub async fn handle(
    app: Arc<App>,
    req: Request<Incoming>,
) -> Result<Response<Body>, std::convert::Infallible> {
    Ok(route(&app, req).await.into_response())
}

async fn route(app: &Arc<App>, req: Request<Incoming>) -> Reply {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    match (&method, path.as_str()) {
        (&Method::GET, "/healthz") => return Reply::ok("alive"),
        (&Method::GET, "/readyz") => return readyz(app),
        _ => {}
    }
    if !authorized(app, &req) {
        metrics::ingest(None, IngestOutcome::Unauthorized);
        return Reply::result(
            StatusCode::UNAUTHORIZED,
            Status::F,
            ACCESS_DENIED,
            "missing or wrong bearer token",
        );
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (&method, segments.as_slice()) {
        (&Method::POST, ["v1", "notifications"]) => match body(app, req).await {
            Ok(b) => accept::single(app, b).await,
            Err(r) => r,
        },
        (&Method::POST, ["v1", "notifications", "batch"]) => match body(app, req).await {
            Ok(b) => accept::batch(app, b).await,
            Err(r) => r,
        },
        (&Method::GET, ["v1", "notifications"]) => search::list(app, req.uri().query()).await,
        (&Method::POST, ["v1", "redeliver"]) => match body(app, req).await {
            Ok(b) => search::redeliver(app, &b).await,
            Err(r) => r,
        },
        (&Method::GET, ["v1", "notifications", id]) => query::get(app, id).await,
        (&Method::POST, ["v1", "notifications", id, "redeliver"]) => {
            query::redeliver(app, id).await
        }
        (&Method::GET, ["v1", "dead-letters"]) => query::dead_letters(app, req.uri().query()).await,
        (&Method::GET, ["v1", "endpoints"]) => endpoints::list(app).await,
        (&Method::POST, ["v1", "endpoints", endpoint, "hold"]) => {
            endpoints::hold(app, endpoint, true).await
        }
        (&Method::POST, ["v1", "endpoints", endpoint, "resume"]) => {
            endpoints::hold(app, endpoint, false).await
        }
        (&Method::POST, ["v1", "payments", "inquiryPayment"]) => match body(app, req).await {
            Ok(b) => query::inquiry(app, b).await,
            Err(r) => r,
        },
        (_, ["v1", ..]) | (_, ["healthz" | "readyz"]) => Reply::result(
            StatusCode::METHOD_NOT_ALLOWED,
            Status::F,
            METHOD_NOT_SUPPORTED,
            &format!("{method} {path} is not supported"),
        ),
        _ => Reply::not_found(NO_INTERFACE_DEF, &format!("no API at {path}")),
    }
}

/// `/readyz`, on the ingest and metrics listeners alike: 200 once recovery is done, 503 before
/// and while stopping.
pub(crate) fn readyz(app: &App) -> Reply {
    if app.is_ready() && !app.is_stopping() {
        Reply::ok("ready")
    } else {
        Reply::unavailable(if app.is_stopping() {
            "shutting down"
        } else {
            "recovering"
        })
    }
}

/// Bearer token check in constant time (no early exit on the first differing byte).
fn authorized(app: &App, req: &Request<Incoming>) -> bool {
    if app.tokens.is_empty() {
        return true;
    }
    let Some(given) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
    else {
        return false;
    };
    app.tokens
        .iter()
        .fold(false, |ok, t| ok | constant_time_eq(t, given))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Reads the body up to the configured limit: 413 beyond it, before any parsing.
async fn body(app: &App, req: Request<Incoming>) -> Result<Vec<u8>, Reply> {
    let max = app.limits.max_body_bytes;
    let too_large = || {
        metrics::ingest(None, IngestOutcome::Invalid);
        Reply::result(
            StatusCode::PAYLOAD_TOO_LARGE,
            Status::F,
            PARAM_ILLEGAL,
            &format!("body: must be at most {max} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let read = Limited::new(req.into_body(), max).collect();
    // A client trickling its body a byte at a time would otherwise hold a connection forever.
    let Ok(read) = tokio::time::timeout(app.limits.body_timeout, read).await else {
        metrics::ingest(None, IngestOutcome::Invalid);
        return Err(Reply::result(
            StatusCode::REQUEST_TIMEOUT,
            Status::F,
            PARAM_ILLEGAL,
            "body: not received in time",
        ));
    };
    match read {
        Ok(b) => Ok(Bytes::into(b.to_bytes())),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large())
        }
        Err(_) => Err(Reply::invalid("body: could not be read")),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(super::constant_time_eq(b"secret", b"secret"));
        assert!(!super::constant_time_eq(b"secret", b"secreT"));
        assert!(!super::constant_time_eq(b"secret", b"secret2"));
    }
}
