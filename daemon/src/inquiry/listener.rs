//! The merchant-facing `POST /v1/payments/inquiryPayment` (`[inquiry] listen`, CONTRACT.md §2.2).
//!
//! The ingest listener can make notifyd sign notifications with the wallet's key, so merchants
//! never get it; they get this listener instead, and authenticate the way the protocol does
//! (PROTOCOL.md §1): `Client-Id` names a `[merchants.NAME]`, `Request-Time` is within the
//! window, and `Signature` verifies with that merchant's key. Every answer, refusals included,
//! is a business answer (HTTP 200) signed with the inquiry profile's key over the exact bytes
//! sent, with the merchant's `Client-Id`, so the official SDKs' response check accepts it.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use notifyd_core::UnixMillis;
use notifyd_core::ack::Status;
use notifyd_core::ack::codes::{
    ACCESS_DENIED, METHOD_NOT_SUPPORTED, NO_INTERFACE_DEF, PARAM_ILLEGAL,
};
use notifyd_core::model::{InquiryRequest, InquiryResponse, ResultInfo};
use notifyd_core::signing::incoming::{SignedHeaders, check_signed_request};
use notifyd_core::signing::sign_request;

use super::held::{Scope, answer};
use super::settings::InquirySettings;
use crate::app::App;
use crate::ingest::respond::Body;

/// The one path served.
pub const PATH: &str = "/v1/payments/inquiryPayment";

/// An inquiry body is ids and `extendInfo` (at most 4096 characters): a few KiB at most.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Time a merchant has to send its body once the headers are in.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Answers one request on the merchant listener.
pub async fn handle(app: Arc<App>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let settings = app.inquiry();
    let method = req.method().clone();
    let uri = req
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    let text = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (client_id, request_time, signature) =
        (text("client-id"), text("request-time"), text("signature"));
    // Not this API: a transport-level answer, unsigned (nothing to sign for).
    if req.uri().path() != PATH || method != Method::POST {
        let (status, code) = if req.uri().path() != PATH {
            (StatusCode::NOT_FOUND, NO_INTERFACE_DEF)
        } else {
            (StatusCode::METHOD_NOT_ALLOWED, METHOD_NOT_SUPPORTED)
        };
        let reply = refusal(code, &format!("only POST {PATH} is served here"));
        let mut resp = Response::new(Full::new(Bytes::from(reply.encode())));
        *resp.status_mut() = status;
        return Ok(resp);
    }
    let (status, reply) = {
        match read_body(req).await {
            Err(reply) => reply,
            Ok(body) => {
                let headers = SignedHeaders {
                    client_id: client_id.as_deref(),
                    request_time: request_time.as_deref(),
                    signature: signature.as_deref(),
                };
                let reply = authenticated(&app, &settings, &headers, &uri, body).await;
                (StatusCode::OK, reply)
            }
        }
    };
    // Only a configured merchant's Client-Id is echoed: the content signed for anyone else is
    // notifyd's own id, time and bytes, never text a stranger chose.
    let known = client_id
        .as_deref()
        .map(str::trim)
        .filter(|c| settings.merchant(c).is_some());
    Ok(signed(
        &app, &settings, status, &method, &uri, known, &reply,
    ))
}

async fn authenticated(
    app: &App,
    settings: &InquirySettings,
    headers: &SignedHeaders<'_>,
    uri: &str,
    mut body: Vec<u8>,
) -> InquiryResponse {
    let key_of = |id: &str| settings.merchant(id).map(|m| m.key.clone());
    let now = app.clock.now();
    let checked = check_signed_request(
        headers,
        Method::POST.as_str(),
        uri,
        &body,
        now,
        settings.request_time_window,
        &key_of,
    );
    let merchant = match checked.map(|id| settings.merchant(id)) {
        Ok(Some(m)) => m,
        // The key lookup succeeded a moment ago on the same settings.
        Ok(None) => return refusal(ACCESS_DENIED, "Client-Id: is not a client allowed"),
        Err(r) => {
            tracing::info!(
                client_id = headers.client_id.unwrap_or_default(),
                code = r.result_code(),
                reason = %r,
                "Merchant inquiry refused."
            );
            return refusal(r.result_code(), &r.to_string());
        }
    };
    let req = match InquiryRequest::parse(&mut body) {
        Ok(r) => r,
        Err(e) => return refusal(PARAM_ILLEGAL, &e.to_string()),
    };
    let scope = Scope {
        partners: Some(merchant.partner_ids.clone()),
    };
    answer(app, &req, scope).await
}

fn refusal(code: &str, message: &str) -> InquiryResponse {
    InquiryResponse::result_only(ResultInfo::new(Status::F, code, message))
}

async fn read_body(req: Request<Incoming>) -> Result<Vec<u8>, (StatusCode, InquiryResponse)> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        (
            StatusCode::OK,
            refusal(
                PARAM_ILLEGAL,
                &format!("body: must be at most {MAX_BODY_BYTES} bytes"),
            ),
        )
    };
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let read = Limited::new(req.into_body(), MAX_BODY_BYTES).collect();
    match tokio::time::timeout(BODY_TIMEOUT, read).await {
        Err(_) => Err((
            StatusCode::REQUEST_TIMEOUT,
            refusal(PARAM_ILLEGAL, "body: not received in time"),
        )),
        Ok(Ok(b)) => Ok(b.to_bytes().to_vec()),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large())
        }
        Ok(Err(_)) => Err((
            StatusCode::BAD_REQUEST,
            refusal(PARAM_ILLEGAL, "body: could not be read"),
        )),
    }
}

/// The answer with `Client-Id`, `Response-Time` and `Signature` over its exact bytes
/// (`<METHOD> <Request-URI>\n<Client-Id>.<Response-Time>.<body>`, PROTOCOL.md §1.4). The
/// `Client-Id` is the merchant's, as its SDK checks against its own configured id; for a
/// request from no configured merchant it is the profile's.
fn signed(
    app: &App,
    settings: &InquirySettings,
    status: StatusCode,
    method: &Method,
    uri: &str,
    client_id: Option<&str>,
    reply: &InquiryResponse,
) -> Response<Body> {
    let bytes = reply.encode();
    let mut resp = Response::new(Full::new(Bytes::from(bytes.clone())));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    let profile = app.profile(&settings.profile);
    let Some(signer) = profile.as_ref().and_then(|p| p.signer.as_ref()) else {
        // Configuration checks make the profile sign; a reload that broke it is loud here.
        tracing::error!(
            profile = settings.profile,
            "The inquiry profile has no signing key; answering unsigned."
        );
        return resp;
    };
    let client_id = client_id.unwrap_or(&signer.client_id);
    let response_time = response_time(app.clock.now());
    let signature = sign_request(
        &signer.key,
        signer.key_version,
        method.as_str(),
        uri,
        client_id,
        &response_time,
        &bytes,
    );
    for (name, value) in [
        ("client-id", client_id),
        ("response-time", response_time.as_str()),
        ("signature", signature.as_str()),
    ] {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    }
    resp
}

fn response_time(now: UnixMillis) -> String {
    now.rfc3339_millis().to_string()
}
