//! The page's calls to the operator API, on the metrics listener's own origin.
//!
//! The page cannot know where the ingest listener is (it may be a Unix socket, or bound where
//! the ssh tunnel does not reach), and cross-origin calls would need CORS on the ingest API. So
//! the metrics listener accepts a short list of operator paths under `/status/api` and hands them
//! to the ingest router itself: the token is checked by the very code that checks it on ingest,
//! and nothing is sent over the network a second time.

use std::sync::Arc;

use http::{Method, Request, Response, StatusCode, Uri, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::Value;

use super::API_PREFIX;
use crate::app::App;
use crate::ingest::respond::{Body, Reply, json_response};
use crate::ingest::routes;

/// Keys never passed on to the page: whatever a merchant or gateway sent may hold personal or
/// payment data, and the page is shown on screens other people see.
const WITHHELD: [&str; 3] = ["body", "responseBody", "headers"];

/// Forwards one allowed request to the ingest router; anything else is 404.
pub async fn forward(app: &Arc<App>, mut req: Request<Incoming>) -> Response<Body> {
    let Some(path) = req.uri().path().strip_prefix(API_PREFIX).map(str::to_owned) else {
        return not_here();
    };
    if !allowed(req.method(), &path) {
        return not_here();
    }
    // A page on another site can make a browser POST here (a plain form needs no preflight);
    // with no ingest token configured nothing else would stop it, so a foreign Origin is refused.
    if req.method() == Method::POST && !same_origin(&req) {
        return Reply::result(
            StatusCode::FORBIDDEN,
            notifyd_core::ack::Status::F,
            notifyd_core::ack::codes::ACCESS_DENIED,
            "operator actions are taken from the status page's own origin",
        )
        .into_response();
    }
    let target = match req.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    match target.parse::<Uri>() {
        Ok(u) => *req.uri_mut() = u,
        Err(_) => return Reply::invalid("path: not a valid URI").into_response(),
    }
    let Ok(resp) = routes::handle(app.clone(), req).await;
    redact(resp).await
}

fn not_here() -> Response<Body> {
    Reply::not_found(
        "NO_INTERFACE_DEF",
        "the status page forwards only its own calls",
    )
    .into_response()
}

/// The ingest API paths the page uses: reads of notifications, and the three actions.
fn allowed(method: &Method, path: &str) -> bool {
    let s: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, s.as_slice()) {
        (&Method::GET, ["v1", "notifications"] | ["v1", "notifications", _]) => true,
        (&Method::POST, ["v1", "notifications", id, "redeliver"]) => !id.is_empty(),
        (&Method::POST, ["v1", "endpoints", ep, "hold" | "resume"]) => !ep.is_empty(),
        _ => false,
    }
}

fn same_origin(req: &Request<Incoming>) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        // Not a browser (curl, tests): the token is what guards it.
        return true;
    };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    origin.to_str().ok().is_some_and(|o| {
        o.strip_prefix("http://")
            .or_else(|| o.strip_prefix("https://"))
            .is_some_and(|rest| rest.eq_ignore_ascii_case(host))
    })
}

async fn redact(resp: Response<Body>) -> Response<Body> {
    let (parts, body) = resp.into_parts();
    let bytes = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(never) => match never {},
    };
    let mut json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    strip(&mut json);
    let mut out = json_response(parts.status, &json, None);
    if let Some(ra) = parts.headers.get(header::RETRY_AFTER) {
        out.headers_mut().insert(header::RETRY_AFTER, ra.clone());
    }
    out
}

fn strip(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for k in WITHHELD {
                m.remove(k);
            }
            m.values_mut().for_each(strip);
        }
        Value::Array(a) => a.iter_mut().for_each(strip),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_pages_calls_are_forwarded() {
        assert!(allowed(&Method::GET, "/v1/notifications"));
        assert!(allowed(&Method::GET, "/v1/notifications/abc"));
        assert!(allowed(&Method::POST, "/v1/notifications/abc/redeliver"));
        assert!(allowed(&Method::POST, "/v1/endpoints/h:1/hold"));
        assert!(allowed(&Method::POST, "/v1/endpoints/h:1/resume"));
        // Ingest itself, bulk redelivery and inquiry stay on the ingest listener.
        assert!(!allowed(&Method::POST, "/v1/notifications"));
        assert!(!allowed(&Method::POST, "/v1/notifications/batch"));
        assert!(!allowed(&Method::POST, "/v1/redeliver"));
        assert!(!allowed(&Method::POST, "/v1/payments/inquiryPayment"));
        assert!(!allowed(&Method::GET, "/v1/endpoints/h:1/hold"));
    }

    #[test]
    fn bodies_are_withheld_at_any_depth() {
        let mut v = serde_json::json!({"body": 1, "attemptLog": [{"responseBody": "x", "at": 2}]});
        strip(&mut v);
        assert_eq!(v, serde_json::json!({"attemptLog": [{"at": 2}]}));
    }
}
