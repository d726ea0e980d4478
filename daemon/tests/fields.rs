//! Fields the APIs add over time, end to end (CONTRACT.md §2, §3): what a forwarding profile
//! stores and sends, what a refusing one answers, and repeats judged against stores written
//! before the fingerprint stopped counting `resultMessage`.

mod support;

use bytes::Bytes;
use notifyd_core::{Envelope, NotificationId, UnixMillis};
use notifyd_daemon::store::{NotificationRecord, RedbStore, State, Store, StoreOptions};
use serde_json::{Value, json};
use support::{Harness, payment, void};

const FORWARD: &str = "allow_http = true\nallow_private = [\"127.0.0.0/8\"]\nextra_fields = \"forward\"\n\
     [profiles.strict.retry]\nkind = \"schedule\"\nschedule = [\"0s\", \"100ms\"]\njitter = 0.0\n\
     attempt_timeout = \"1s\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarding_profile_sends_new_fields_byte_identical_and_judges_repeats_by_them() {
    let h = Harness::start_extra("S", |_| FORWARD.to_owned(), |_| {}).await;
    let url = h.merchant_url("/n");
    let mut env = payment(&url, "PAY-X");
    env["profile"] = json!("strict");
    env["body"]["acquirerInfo"] = json!({"pspId": "PSP1", "acquirerId": "ACQ1"});
    env["body"]["newField"] = json!("v1");
    let id = h.submit(&env).await;
    h.wait_state(&id, "delivered").await;
    let sent = h.merchant.received()[0].body.clone();
    let text = std::str::from_utf8(&sent).unwrap();
    assert!(
        text.ends_with(
            r#""paymentStatus":"SUCCESS","acquirerInfo":{"acquirerId":"ACQ1","pspId":"PSP1"},"newField":"v1"}"#
        ),
        "known fields in table order, then the forwarded ones by name: {text}"
    );

    // The repeat with its fields in another order is the same notification...
    let mut repeat = env.clone();
    repeat["body"]["acquirerInfo"] = json!({"acquirerId": "ACQ1", "pspId": "PSP1"});
    let (status, body) = h.post("/v1/notifications", &repeat).await;
    assert_eq!(
        (status, body["duplicate"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    // ...and one that changes a forwarded field is inconsistent: they are key fields.
    let mut changed = env.clone();
    changed["body"]["newField"] = json!("v2");
    let (status, body) = h.post("/v1/notifications", &changed).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["result"]["resultCode"], "REPEAT_REQ_INCONSISTENT");

    // A redelivery resends the stored bytes as they are.
    h.merchant.set_mode("F".parse().unwrap());
    let mut again = payment(&url, "PAY-Y");
    again["profile"] = json!("strict");
    again["body"]["newField"] = json!("y");
    let id = h.submit(&again).await;
    h.wait_state(&id, "failed").await;
    h.merchant.set_mode("S".parse().unwrap());
    let (status, _) = h
        .post(&format!("/v1/notifications/{id}/redeliver"), &json!({}))
        .await;
    assert_eq!(status, 200);
    h.wait_state(&id, "delivered").await;
    let bodies: Vec<Bytes> = h
        .merchant
        .received()
        .into_iter()
        .map(|r| r.body)
        .filter(|b| std::str::from_utf8(b).unwrap().contains("PAY-Y"))
        .collect();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0], bodies[1], "byte-identical on every attempt");

    // Inquiry reads stored bodies past their forwarded fields.
    let (_, a) = h
        .post(
            "/v1/payments/inquiryPayment",
            &json!({"paymentId": "PAY-X"}),
        )
        .await;
    assert_eq!(a["paymentStatus"], "SUCCESS", "{a}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_profile_names_the_field() {
    let h = Harness::start("S").await;
    let mut env = payment(&h.merchant_url("/n"), "PAY-R");
    env["body"]["newField"] = json!("v1");
    let (status, body) = h.post("/v1/notifications", &env).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["result"]["resultMessage"],
        "body.newField: is not a field of notifyPayment"
    );
}

/// A record as a store written before this version holds it: fingerprint with `resultMessage`.
fn old_record(env: &Envelope, fingerprint: u128) -> NotificationRecord {
    let now = UnixMillis(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64,
    );
    let n = &env.notification;
    NotificationRecord {
        id: NotificationId::new(now, 7),
        api: env.api,
        profile: env.profile.clone(),
        url: env.url.clone(),
        body: Bytes::from(env.encode()),
        idem_key: env.idempotency().0.0,
        fingerprint,
        order_key: env.order_key(),
        payment_id: n.payment_id().map(str::to_owned),
        payment_request_id: n.payment_request_id().map(str::to_owned),
        partner_id: n.partner_id().map(str::to_owned),
        state: State::Delivered,
        attempts: 1,
        last_result: Some("S SUCCESS".into()),
        accepted_at: now,
        next_attempt_at: None,
        finished_at: Some(now),
        delivery_started_at: Some(now),
        receiver_ids: Default::default(),
        hook_of: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeats_of_notifications_stored_by_an_earlier_version_are_still_duplicates() {
    let mut h = Harness::start("S").await;
    let url = h.merchant_url("/n");
    let mut worded: Value = void(&url, "PAY-OLD", "S");
    worded["body"]["voidResult"]["resultMessage"] = json!("voided");
    let env = Envelope::parse(&mut serde_json::to_vec(&worded).unwrap()).unwrap();
    let legacy = env
        .legacy_fingerprint()
        .expect("the message made the old value differ");
    assert_ne!(legacy, env.idempotency().1);

    // Put the record in the store as the earlier version did, then start on that store.
    h.notifyd.take().unwrap().shutdown().await;
    let (path, record) = (h.config.store.path.clone(), old_record(&env, legacy.0));
    tokio::task::spawn_blocking(move || {
        let store = RedbStore::open(&path, StoreOptions::default()).unwrap();
        store.accept(vec![record]).wait().unwrap();
    })
    .await
    .unwrap();
    h.notifyd = Some(notifyd_daemon::run::start(&h.config).await.unwrap());

    let (status, body) = h.post("/v1/notifications", &worded).await;
    assert_eq!(
        (status, body["duplicate"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    // A real change is still inconsistent against the old record.
    let mut other = worded.clone();
    other["body"]["voidAmount"]["value"] = json!("1");
    let (status, _) = h.post("/v1/notifications", &other).await;
    assert_eq!(status, 409);
}
