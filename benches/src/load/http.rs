//! The HTTP/1.1 client every phase uses: hyper-util's pooled client, no TLS, Nagle off.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// The pooled client.
pub type Client = hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>;

/// A client keeping up to `idle_per_host` idle connections to each host:port.
pub fn client(idle_per_host: usize) -> Client {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(idle_per_host)
        .pool_idle_timeout(Duration::from_secs(60))
        .build(connector)
}

/// POSTs JSON; the status and the whole answer.
pub async fn post(client: &Client, url: &str, body: Bytes) -> Result<(u16, Bytes), String> {
    let req = Request::builder()
        .method(Method::POST)
        .uri(url)
        .header(header::CONTENT_TYPE, "application/json; charset=UTF-8")
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    send(client, req).await
}

/// GETs `url`; the status and the whole answer.
pub async fn get(client: &Client, url: &str) -> Result<(u16, Bytes), String> {
    let req = Request::builder()
        .uri(url)
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    send(client, req).await
}

async fn send(client: &Client, req: Request<Full<Bytes>>) -> Result<(u16, Bytes), String> {
    let answer = tokio::time::timeout(Duration::from_secs(30), client.request(req))
        .await
        .map_err(|_| "no answer within 30 s".to_owned())?
        .map_err(|e| e.to_string())?;
    let status = answer.status().as_u16();
    let body = answer
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, body))
}
