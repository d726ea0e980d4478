//! The dead-letter hook against the real binary: a profile's `dead_letter_url` gets one signed
//! POST per notification that ends `dead` or `failed` (none for `delivered`), retried while the
//! receiver is down, kept across a SIGKILL, and never fired for a hook's own end. The bodies
//! run on the embedded store and on PostgreSQL (a private cluster the test starts); after a
//! SIGKILL a PostgreSQL host gets the hook back only once the killed host's lease ran out, so
//! that case has a short lease of its own.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use notifyd_core::UnixMillis;
use notifyd_core::signing::VerifyingKey;
use notifyd_core::signing::incoming::{SignedHeaders, check_signed_request};
use notifyd_daemon::mock_merchant::{MockMerchant, Received, Respond};
use notifyd_daemon::test_pg::Cluster;
use serde_json::Value;
use support::payment;
use support::process::{Home, call, client, free_port};
use support::trust::{secret, sigvec_dir};

const CLIENT_ID: &str = "TEST_5X00000000000000";

/// The `ops` profile: signed with the test vector's key, hooks to `hook`; `schedule` its retries.
fn ops_profile(keys: &Path, hook: SocketAddr, schedule: &str) -> String {
    let pem = std::fs::read(sigvec_dir().join("test_private_key_pkcs8.pem")).unwrap();
    let key = secret(keys, "ops.pem", &pem);
    format!(
        "[profiles.ops]\nallow_http = true\nallow_private = [\"127.0.0.0/8\"]\n\
         client_id = \"{CLIENT_ID}\"\nkey_version = 1\nprivate_key_file = \"{}\"\n\
         dead_letter_url = \"http://{hook}/ops/dead-letters\"\n\
         [profiles.ops.retry]\nkind = \"schedule\"\nschedule = {schedule}\njitter = 0.0\n\
         attempt_timeout = \"1s\"\n",
        key.display()
    )
}

/// A home whose `ops` profile hooks to `hook` (with the key directory, removed with it), on
/// database `pg` when given, else on its own redb file.
fn home(hook: SocketAddr, schedule: &str, pg: Option<&str>) -> (Home, tempfile::TempDir) {
    // The lease must outlast every profile's attempt_timeout (the default one's 15 s) + 10 s
    // (check-config).
    home_leased(hook, schedule, pg, "", "30s")
}

/// [`home`] with the default profile's retry section `default_retry` and, on PostgreSQL,
/// lease `lease`.
fn home_leased(
    hook: SocketAddr,
    schedule: &str,
    pg: Option<&str>,
    default_retry: &str,
    lease: &str,
) -> (Home, tempfile::TempDir) {
    let keys = tempfile::tempdir().unwrap();
    let home = Home::new(default_retry, &ops_profile(keys.path(), hook, schedule));
    if let Some(url) = pg {
        let text = std::fs::read_to_string(&home.config).unwrap();
        let store = format!("[store]\nkind = \"postgres\"\nurl = \"{url}\"\nlease = \"{lease}\"\n");
        std::fs::write(&home.config, text.replacen("[store]\n", &store, 1)).unwrap();
    }
    (home, keys)
}

/// Runs `body` on database `name` of a private PostgreSQL cluster, kept up until it ends
/// (skipped when PostgreSQL is missing).
async fn on_postgresql<F: std::future::Future<Output = ()>>(
    name: &str,
    body: impl FnOnce(Option<String>) -> F,
) {
    let cluster = match Cluster::start() {
        Ok(c) => c,
        Err(reason) => return support::skip(&reason),
    };
    body(Some(cluster.database(name).expect("createdb"))).await;
}

/// A loopback address nobody listens on yet.
fn nobody() -> SocketAddr {
    format!("127.0.0.1:{}", free_port()).parse().unwrap()
}

async fn merchant(mode: &str) -> MockMerchant {
    merchant_at("127.0.0.1:0".parse().unwrap(), mode).await
}

async fn merchant_at(addr: SocketAddr, mode: &str) -> MockMerchant {
    MockMerchant::start(addr, mode.parse::<Respond>().unwrap())
        .await
        .unwrap()
}

/// Submits a notifyPayment of `pay` under the `ops` profile; its notificationId.
async fn submit(ingest: SocketAddr, to: &MockMerchant, pay: &str) -> String {
    let mut env = payment(&format!("http://{}/n", to.addr()), pay);
    env["profile"] = "ops".into();
    let (status, v) = call(
        &client(),
        "POST",
        ingest,
        "/v1/notifications",
        serde_json::to_vec(&env).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{v}");
    v["notificationId"].as_str().unwrap().to_owned()
}

/// Polls notification `id` until `state` (panics after 20 s).
async fn wait_state(ingest: SocketAddr, id: &str, state: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, v) = call(
            &client(),
            "GET",
            ingest,
            &format!("/v1/notifications/{id}"),
            vec![],
        )
        .await
        .unwrap();
        if v["state"] == state {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id} never {state}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until `m` has received `n` requests, then a little longer to see no more come.
async fn received(m: &MockMerchant, n: usize) -> Vec<Received> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while m.received().len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {:?}",
            m.received().len()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    m.received()
}

fn header(v: &Option<http::HeaderValue>) -> Option<&str> {
    v.as_ref().and_then(|v| v.to_str().ok())
}

/// The hook's body, after checking its signature with the profile's public key.
fn verified_body(r: &Received) -> Value {
    let pem = std::fs::read(sigvec_dir().join("test_public_key_x509.pem")).unwrap();
    let key = VerifyingKey::from_spki_pem(&pem).unwrap();
    let headers = SignedHeaders {
        client_id: header(&r.client_id),
        request_time: header(&r.request_time),
        signature: header(&r.signature),
    };
    let now = UnixMillis(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64,
    );
    let verdict = check_signed_request(
        &headers,
        "POST",
        r.uri.path(),
        &r.body,
        now,
        Duration::from_secs(300),
        &|id| (id == CLIENT_ID).then(|| key.clone()),
    );
    assert_eq!(verdict, Ok(CLIENT_ID), "hook signature");
    assert_eq!(r.uri.path(), "/ops/dead-letters");
    serde_json::from_slice(&r.body).unwrap()
}

async fn scrape(metrics: SocketAddr) -> String {
    let req = http::Request::get(format!("http://{metrics}/metrics"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = client().request(req).await.unwrap();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

fn hooks_counted(text: &str, result: &str) -> u64 {
    let series = format!("notifyd_dead_letter_hooks_total{{result=\"{result}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in the scrape"))
}

async fn dead_fires_one_signed_hook(pg: Option<String>) {
    let hook = merchant("S").await;
    let (home, _keys) = home(hook.addr(), r#"["0s", "50ms", "50ms"]"#, pg.as_deref());
    let _n = home.spawn(&[]).await.unwrap();
    let down = merchant("U").await;
    let id = submit(home.ingest, &down, "PAY-DEAD").await;
    let dead = wait_state(home.ingest, &id, "dead").await;

    let got = received(&hook, 1).await;
    assert_eq!(got.len(), 1, "exactly one hook");
    let body = verified_body(&got[0]);
    assert_eq!(body["event"], "notifyd.deadLetter");
    assert_eq!(body["notifyId"], id);
    assert_eq!(body["kind"], "notifyPayment");
    assert_eq!(body["paymentId"], "PAY-DEAD");
    assert_eq!(body["paymentRequestId"], "REQ-PAY-DEAD");
    assert_eq!(body["partnerId"], "P0001");
    assert_eq!(body["state"], "dead");
    assert_eq!(body["attempts"], dead["attempts"].to_string());
    assert_eq!(body["lastResult"], dead["lastResult"]);
    assert_eq!(body["endpoint"], format!("http://{}/n", down.addr()));
    assert_eq!(body["finishedAt"], dead["finishedAt"]);
    let fields = body.as_object().unwrap();
    assert!(fields.values().all(Value::is_string), "{body}");

    let text = scrape(home.metrics).await;
    assert_eq!(hooks_counted(&text, "queued"), 1);
    assert_eq!(hooks_counted(&text, "delivered"), 1);
    assert_eq!(hooks_counted(&text, "dead"), 0);
    // The merchant's attempt figures count the merchant's attempts only, not the hook's.
    let merchant_attempts: f64 = text
        .lines()
        .filter_map(|l| l.strip_prefix("notifyd_delivery_attempts_total{"))
        .filter_map(|l| l.rsplit_once(' ').map(|(_, v)| v.parse::<f64>().unwrap()))
        .sum();
    assert_eq!(
        merchant_attempts,
        dead["attempts"].as_u64().unwrap() as f64,
        "{text}"
    );

    // The hook, found by its URL's endpoint, is read back naming the notification it reports.
    let (status, page) = call(
        &client(),
        "GET",
        home.ingest,
        &format!("/v1/notifications?endpoint={}", hook.addr()),
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{page}");
    let hooks = page["notifications"].as_array().expect("notifications");
    assert_eq!(hooks.len(), 1, "{page}");
    let hook_id = hooks[0]["notificationId"].as_str().unwrap();
    let shown = wait_state(home.ingest, hook_id, "delivered").await;
    assert_eq!(shown["deadLetterHookOf"], id, "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_notification_fires_exactly_one_signed_hook_that_names_it() {
    dead_fires_one_signed_hook(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_a_dead_notification_fires_exactly_one_signed_hook() {
    on_postgresql("hook_dead", dead_fires_one_signed_hook).await;
}

async fn failed_fires_delivered_does_not(pg: Option<String>) {
    // The hook receiver refuses every hook for good: a hook of a hook would come back here.
    let hook = merchant("F").await;
    let (home, _keys) = home(hook.addr(), r#"["0s", "50ms", "50ms"]"#, pg.as_deref());
    let _n = home.spawn(&[]).await.unwrap();
    let (refusing, taking) = (merchant("F").await, merchant("S").await);
    let failed = submit(home.ingest, &refusing, "PAY-F").await;
    let delivered = submit(home.ingest, &taking, "PAY-S").await;
    wait_state(home.ingest, &failed, "failed").await;
    wait_state(home.ingest, &delivered, "delivered").await;

    let got = received(&hook, 1).await;
    assert_eq!(
        got.len(),
        1,
        "one hook, for the failed one only, and none for the hook"
    );
    let body = verified_body(&got[0]);
    assert_eq!(body["notifyId"], failed);
    assert_eq!(body["state"], "failed");
    let text = scrape(home.metrics).await;
    assert_eq!(hooks_counted(&text, "queued"), 1);
    assert_eq!(hooks_counted(&text, "failed"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_fires_a_hook_delivered_does_not_and_a_failed_hook_fires_none() {
    failed_fires_delivered_does_not(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_failed_fires_a_hook_delivered_does_not_and_a_failed_hook_fires_none() {
    on_postgresql("hook_failed", failed_fires_delivered_does_not).await;
}

async fn receiver_down_then_up(pg: Option<String>) {
    let hook_addr = nobody();
    let (home, _keys) = home(
        hook_addr,
        r#"["0s", "100ms", "200ms", "400ms", "800ms", "1s", "1s", "1s", "1s"]"#,
        pg.as_deref(),
    );
    let _n = home.spawn(&[]).await.unwrap();
    let refusing = merchant("F").await;
    let id = submit(home.ingest, &refusing, "PAY-LATE").await;
    wait_state(home.ingest, &id, "failed").await;
    // Nobody listens yet: the hook's first attempts are refused connections.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let hook = merchant_at(hook_addr, "S").await;
    let got = received(&hook, 1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(verified_body(&got[0])["notifyId"], id);
    let text = scrape(home.metrics).await;
    assert_eq!(hooks_counted(&text, "delivered"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_receiver_down_then_up_still_gets_the_hook() {
    receiver_down_then_up(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_a_hook_receiver_down_then_up_still_gets_the_hook() {
    on_postgresql("hook_late", receiver_down_then_up).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_a_hook_leased_to_a_killed_host_is_sent_once_its_lease_runs_out() {
    let cluster = match Cluster::start() {
        Ok(c) => c,
        Err(reason) => return support::skip(&reason),
    };
    let url = cluster.database("hook_kill").expect("createdb");
    let hook_addr = nobody();
    // Attempts of at most 1 s, so check-config allows a 12 s lease.
    let (home, _keys) = home_leased(
        hook_addr,
        r#"["0s", "500ms", "500ms", "500ms", "500ms", "500ms", "500ms"]"#,
        Some(&url),
        "attempt_timeout = \"1s\"",
        "12s",
    );
    let mut n = home.spawn(&[]).await.unwrap();
    let refusing = merchant("F").await;
    let id = submit(home.ingest, &refusing, "PAY-PG-KILL").await;
    wait_state(home.ingest, &id, "failed").await;
    // The hook was stored with the outcome, leased to this host; it dies before sending it.
    n.kill9();
    let killed = std::time::Instant::now();

    let hook = merchant_at(hook_addr, "S").await;
    // A new process is a new host to the database: it claims the hook once the lease is out.
    let _again = home.spawn(&[]).await.unwrap();
    let got = received(&hook, 1).await;
    assert_eq!(
        got.len(),
        1,
        "sent once, by the host that took the lease over"
    );
    assert_eq!(verified_body(&got[0])["notifyId"], id);
    assert!(
        killed.elapsed() >= Duration::from_secs(5),
        "not before the killed host's lease could have run out"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_stored_with_its_outcome_survives_kill_9() {
    // Nobody listens at the hook's URL before the kill, so the hook is still pending then.
    let hook_addr = nobody();
    let (home, _keys) = home(
        hook_addr,
        r#"["0s", "500ms", "500ms", "500ms", "500ms", "500ms", "500ms"]"#,
        None,
    );
    let mut n = home.spawn(&[]).await.unwrap();
    let refusing = merchant("F").await;
    let id = submit(home.ingest, &refusing, "PAY-KILL").await;
    wait_state(home.ingest, &id, "failed").await;
    n.kill9();

    let hook = merchant_at(hook_addr, "S").await;
    let _again = home.spawn(&[]).await.unwrap();
    let got = received(&hook, 1).await;
    assert_eq!(got.len(), 1, "the restart delivers the stored hook once");
    assert_eq!(verified_body(&got[0])["notifyId"], id);
}
