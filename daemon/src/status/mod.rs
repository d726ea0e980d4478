//! The operator's status page (CONTRACT.md §6), served on the metrics listener.
//!
//! - `page.html`, `page.css`, `page.js`: the page, embedded in the binary (gateway hosts have no
//!   internet, so nothing may come from a CDN).
//! - `tally.rs`: this daemon's own accepted and delivered counts.
//! - `history.rs`: those counts sampled in memory (a ring buffer), the store's commit times.
//! - `snapshot.rs`: `GET /status.json`, the data the page draws.
//! - `proxy.rs`: the page's operator actions, forwarded to the ingest API's own handlers.

mod history;
mod proxy;
mod snapshot;
mod tally;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;

pub use history::Status;
pub use tally::Tally;

use crate::app::App;
use crate::ingest::respond::{Body, Reply, bytes_response, json_response};

const PAGE: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("page.js");
const STYLE: &str = include_str!("page.css");

/// Where the proxy lives: `/status/api` + an ingest API path.
pub const API_PREFIX: &str = "/status/api";

/// Whether the metrics listener should hand `path` to [`handle`].
pub fn owns(path: &str) -> bool {
    matches!(path, "/" | "/status.json") || path.starts_with("/status/")
}

/// The metrics listener's answer, boxed so its plain paths and these share one future type.
pub type Answer = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Response<Body>, std::convert::Infallible>> + Send>,
>;

/// [`handle`] for the metrics listener's service.
pub fn serve(status: Arc<Status>, app: Arc<App>, req: Request<Incoming>) -> Answer {
    Box::pin(async move { Ok(handle(&status, &app, req).await) })
}

/// Answers the page, its assets, `/status.json` and the proxy.
pub async fn handle(
    status: &Arc<Status>,
    app: &Arc<App>,
    req: Request<Incoming>,
) -> Response<Body> {
    let path = req.uri().path().to_owned();
    if path.starts_with(API_PREFIX) {
        return hardened(proxy::forward(app, req).await);
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Reply::result(
            StatusCode::METHOD_NOT_ALLOWED,
            notifyd_core::ack::Status::F,
            notifyd_core::ack::codes::METHOD_NOT_SUPPORTED,
            "the status page is read with GET",
        )
        .into_response();
    }
    let resp = match path.as_str() {
        "/" => asset("text/html; charset=utf-8", PAGE),
        "/status/page.js" => asset("text/javascript; charset=utf-8", SCRIPT),
        "/status/page.css" => asset("text/css; charset=utf-8", STYLE),
        "/status.json" => {
            let snap = snapshot::build(status, app).await;
            json_response(StatusCode::OK, &snap, None)
        }
        _ => Reply::not_found("NO_INTERFACE_DEF", "try / or /status.json").into_response(),
    };
    hardened(resp)
}

fn asset(content_type: &'static str, text: &'static str) -> Response<Body> {
    bytes_response(
        StatusCode::OK,
        content_type,
        Bytes::from_static(text.as_bytes()),
        None,
    )
}

/// Headers that keep the page from loading anything but itself, from being framed by another
/// site (its buttons redeliver), and from being cached with yesterday's numbers.
fn hardened(mut resp: Response<Body>) -> Response<Body> {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
             img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}
