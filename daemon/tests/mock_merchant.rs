//! The mock merchant, embedded: each mode's answer, cycling, recording and the control endpoints.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use notifyd_daemon::mock_merchant::{MockMerchant, Outcome, Respond};

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn start(mode: &str) -> MockMerchant {
    MockMerchant::start("127.0.0.1:0".parse().unwrap(), mode.parse().unwrap())
        .await
        .unwrap()
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn result(&self) -> (String, String) {
        let json: serde_json::Value = serde_json::from_slice(&self.body).expect("a JSON body");
        let field = |name: &str| json["result"][name].as_str().unwrap().to_owned();
        (field("resultStatus"), field("resultCode"))
    }
}

async fn post(
    client: &HttpClient,
    merchant: &MockMerchant,
    path: &str,
    body: &'static str,
) -> Answer {
    let request = Request::post(format!("http://{}{path}", merchant.addr()))
        .header("content-type", "application/json; charset=UTF-8")
        .header("client-id", "2022000000000000")
        .header("request-time", "2024-05-13T12:00:00.000+08:00")
        .header(
            "signature",
            "algorithm=RSA256,keyVersion=1,signature=abc%3D",
        )
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

async fn get_json(client: &HttpClient, merchant: &MockMerchant, path: &str) -> serde_json::Value {
    let uri = format!("http://{}{path}", merchant.addr()).parse().unwrap();
    let response = client.get(uri).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test]
async fn each_mode_answers_as_documented() {
    let client = client();
    let merchant = start("S").await;
    let json_answers = [
        ("S", 200, "S", "SUCCESS"),
        ("F", 200, "F", "PROCESS_FAIL"),
        ("U", 200, "U", "UNKNOWN_EXCEPTION"),
        ("SYSTEM_ERROR", 200, "U", "SYSTEM_ERROR"),
        ("THROTTLE", 200, "U", "REQUEST_TRAFFIC_EXCEED_LIMIT"),
        ("429", 429, "U", "REQUEST_TRAFFIC_EXCEED_LIMIT"),
        ("SLOW:20ms", 200, "S", "SUCCESS"),
        ("FAIL_RATE:1", 200, "U", "UNKNOWN_EXCEPTION"),
        ("FAIL_RATE:0", 200, "S", "SUCCESS"),
    ];
    for (mode, status, result_status, code) in json_answers {
        merchant.set_mode(mode.parse().unwrap());
        let answer = post(&client, &merchant, "/notify", "{}").await;
        assert_eq!(answer.status.as_u16(), status, "{mode}");
        assert_eq!(
            answer.headers["content-type"], "application/json; charset=UTF-8",
            "{mode}"
        );
        assert_eq!(
            answer.result(),
            (result_status.to_owned(), code.to_owned()),
            "{mode}"
        );
        let retry_after = answer
            .headers
            .get("retry-after")
            .map(|v| v.to_str().unwrap());
        assert_eq!(retry_after, (mode == "429").then_some("1"), "{mode}");
    }

    merchant.set_mode(Respond::ServerError);
    let answer = post(&client, &merchant, "/notify", "{}").await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);

    merchant.set_mode(Respond::Garbage);
    let answer = post(&client, &merchant, "/notify", "{}").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(serde_json::from_slice::<serde_json::Value>(&answer.body).is_err());

    assert_eq!(merchant.count(), json_answers.len() as u64 + 2);
    assert_eq!(merchant.outcome_count(Outcome::Success), 3);
    assert_eq!(merchant.outcome_count(Outcome::Unknown), 2);
    assert_eq!(merchant.outcome_count(Outcome::Garbage), 1);
    merchant.shutdown().await;
}

#[tokio::test]
async fn the_success_body_is_the_protocol_ack() {
    let client = client();
    let merchant = start("S").await;
    let answer = post(&client, &merchant, "/", "{}").await;
    assert_eq!(
        answer.body,
        r#"{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"}}"#
    );
    merchant.shutdown().await;
}

#[tokio::test]
async fn a_cycle_answers_in_turn() {
    let client = client();
    let merchant = start("U,U,S").await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(post(&client, &merchant, "/n", "{}").await.result().0);
    }
    assert_eq!(statuses, ["U", "U", "S", "U", "U", "S"]);
    merchant.shutdown().await;
}

#[tokio::test]
async fn requests_are_recorded_with_the_headers_of_interest() {
    let client = client();
    let merchant = start("S").await;
    post(
        &client,
        &merchant,
        "/v1/payments/notifyPayment",
        r#"{"paymentId":"1"}"#,
    )
    .await;
    post(&client, &merchant, "/other", r#"{"paymentId":"2"}"#).await;
    let received = merchant.received();
    assert_eq!(received.len(), 2);
    let first = &received[0];
    assert_eq!(first.method, http::Method::POST);
    assert_eq!(first.path(), "/v1/payments/notifyPayment");
    assert_eq!(first.body, r#"{"paymentId":"1"}"#);
    assert_eq!(first.client_id.as_ref().unwrap(), "2022000000000000");
    assert_eq!(
        first.request_time.as_ref().unwrap(),
        "2024-05-13T12:00:00.000+08:00"
    );
    assert_eq!(
        first.signature.as_ref().unwrap(),
        "algorithm=RSA256,keyVersion=1,signature=abc%3D"
    );
    assert_eq!(
        first.content_type.as_ref().unwrap(),
        "application/json; charset=UTF-8"
    );
    assert_eq!(received[1].body, r#"{"paymentId":"2"}"#);

    let stats = get_json(&client, &merchant, "/_mock/stats").await;
    assert_eq!(stats["total"], 2);
    assert_eq!(stats["outcomes"]["S"], 2);
    assert_eq!(stats["outcomes"]["F"], 0);
    let last = get_json(&client, &merchant, "/_mock/received?limit=1").await;
    let last = last.as_array().unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!(last[0]["path"], "/other");
    assert_eq!(last[0]["body"], r#"{"paymentId":"2"}"#);
    assert_eq!(last[0]["clientId"], "2022000000000000");
    // Control requests are not notifications.
    assert_eq!(merchant.count(), 2);
    merchant.shutdown().await;
}

#[tokio::test]
async fn the_record_is_bounded_but_the_count_goes_on() {
    let client = client();
    let merchant =
        MockMerchant::start_with_capacity("127.0.0.1:0".parse().unwrap(), Respond::Success, 2)
            .await
            .unwrap();
    for body in ["1", "2", "3"] {
        post(&client, &merchant, "/", body).await;
    }
    let bodies: Vec<Bytes> = merchant.received().into_iter().map(|r| r.body).collect();
    assert_eq!(bodies, ["2", "3"]);
    assert_eq!(merchant.count(), 3);
    merchant.shutdown().await;
}

#[tokio::test]
async fn a_stall_never_answers_and_shutdown_still_ends() {
    let client = client();
    let merchant = start("STALL").await;
    let pending = tokio::time::timeout(
        Duration::from_millis(300),
        post(&client, &merchant, "/", "{}"),
    )
    .await;
    assert!(pending.is_err(), "a stalled request was answered");
    assert_eq!(merchant.count(), 1);
    assert_eq!(merchant.outcome_count(Outcome::Stall), 1);
    merchant.shutdown().await;
}
