//! Answers of the ingest API: every body carries `result` as the seeds define it.

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;
use notifyd_core::ack::Status;
use notifyd_core::ack::codes::{
    PARAM_ILLEGAL, REQUEST_TRAFFIC_EXCEED_LIMIT, SUCCESS, UNKNOWN_EXCEPTION,
};
use serde_json::{Value, json};

/// The body type of every answer.
pub type Body = Full<Bytes>;

/// The code of an answer about a notification id notifyd does not hold (its own, not the
/// protocol's: the seed tables have none for the ingest API).
pub const NOTIFICATION_NOT_FOUND: &str = "NOTIFICATION_NOT_FOUND";

/// One ingest outcome, before it becomes HTTP.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: StatusCode,
    /// The JSON body.
    pub body: Value,
    /// Seconds for `Retry-After` (429, and 503 while recovering).
    pub retry_after: Option<u32>,
}

impl Reply {
    /// A reply with `result` and optional extra members.
    pub fn result(status: StatusCode, rs: Status, code: &str, message: &str) -> Reply {
        Reply {
            status,
            body: json!({"result": {"resultStatus": rs.as_str(), "resultCode": code, "resultMessage": message}}),
            retry_after: None,
        }
    }

    /// Adds a member to the body.
    pub fn with(mut self, key: &str, value: Value) -> Reply {
        if let Value::Object(m) = &mut self.body {
            m.insert(key.to_owned(), value);
        }
        self
    }

    /// 200 S SUCCESS.
    pub fn ok(message: &str) -> Reply {
        Reply::result(StatusCode::OK, Status::S, SUCCESS, message)
    }

    /// 400 F PARAM_ILLEGAL naming the field and rule.
    pub fn invalid(message: &str) -> Reply {
        Reply::result(StatusCode::BAD_REQUEST, Status::F, PARAM_ILLEGAL, message)
    }

    /// 503 U UNKNOWN_EXCEPTION.
    pub fn unavailable(message: &str) -> Reply {
        Reply::result(
            StatusCode::SERVICE_UNAVAILABLE,
            Status::U,
            UNKNOWN_EXCEPTION,
            message,
        )
    }

    /// 503 U UNKNOWN_EXCEPTION with `Retry-After`: recovery is not done, nothing is judged yet.
    pub fn recovering() -> Reply {
        let mut r = Reply::unavailable("notifyd is recovering its store; retry");
        r.retry_after = Some(1);
        r
    }

    /// 429 U REQUEST_TRAFFIC_EXCEED_LIMIT with `Retry-After`.
    pub fn throttled() -> Reply {
        let mut r = Reply::result(
            StatusCode::TOO_MANY_REQUESTS,
            Status::U,
            REQUEST_TRAFFIC_EXCEED_LIMIT,
            "the pending queue is full; retry later",
        );
        r.retry_after = Some(1);
        r
    }

    /// 404 F with a code the caller chooses.
    pub fn not_found(code: &str, message: &str) -> Reply {
        Reply::result(StatusCode::NOT_FOUND, Status::F, code, message)
    }

    /// Turns the reply into an HTTP response.
    pub fn into_response(self) -> Response<Body> {
        json_response(self.status, &self.body, self.retry_after)
    }
}

/// A JSON response.
pub fn json_response(status: StatusCode, body: &Value, retry_after: Option<u32>) -> Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    bytes_response(
        status,
        "application/json; charset=UTF-8",
        Bytes::from(bytes),
        retry_after,
    )
}

/// A response with a body of the given content type.
pub fn bytes_response(
    status: StatusCode,
    content_type: &'static str,
    body: Bytes,
    retry_after: Option<u32>,
) -> Response<Body> {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    if let Some(secs) = retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
    }
    resp
}
