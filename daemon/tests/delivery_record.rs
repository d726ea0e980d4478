//! What delivery keeps in the store beyond the state: the Alipay+ receiver's ids from its answer,
//! and the start of the current delivery, which an exponential deadline counts from across a
//! restart.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use support::Harness;
use support::trust::{Receiver, Seen, json_response};

fn alipayplus(url: &str, request: &str) -> Value {
    json!({
        "api": "alipayplus.notifyPayment",
        "url": url,
        "body": {
            "paymentResult": {"resultCode": "SUCCESS", "resultStatus": "S", "resultMessage": "success"},
            "paymentRequestId": request,
            "paymentId": format!("PAY-{request}"),
            "paymentAmount": {"currency": "JPY", "value": "100"},
            "paymentTime": "2020-01-01T12:01:01+08:30",
            "customerId": "1234567"
        }
    })
}

/// Answers with the ids the path names: `/ids` sane ones, `/insane` an over-long and a
/// non-string one, `/u-then-none` first U with ids then S without any.
async fn id_receiver() -> Receiver {
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    Receiver::start(
        None,
        Arc::new(move |seen: &Seen| {
            let s = r#""result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"}"#;
            let u = r#""result":{"resultCode":"UNKNOWN_EXCEPTION","resultStatus":"U","resultMessage":"later"}"#;
            let ids = r#""acquirerId":"2188120000000000","pspId":"1022188000000000001""#;
            let body = match seen.path_and_query.as_str() {
                "/ids" => format!("{{{s},{ids}}}"),
                "/insane" => format!(
                    r#"{{{s},"acquirerId":"{}","pspId":12}}"#,
                    "9".repeat(65)
                ),
                _ if count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 => {
                    format!("{{{u},{ids}}}")
                }
                _ => format!("{{{s}}}"),
            };
            json_response(body.as_bytes(), &[])
        }),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alipayplus_receiver_ids_are_kept_and_shown() {
    let rx = id_receiver().await;
    let h = Harness::start("S").await;
    let url = |p: &str| format!("http://{}{p}", rx.addr);

    let kept = h.submit(&alipayplus(&url("/ids"), "R-IDS")).await;
    let s = h.wait_state(&kept, "delivered").await;
    assert_eq!(s["acquirerId"], "2188120000000000", "{s}");
    assert_eq!(s["pspId"], "1022188000000000001", "{s}");

    let insane = h.submit(&alipayplus(&url("/insane"), "R-INSANE")).await;
    let s = h.wait_state(&insane, "delivered").await;
    assert_eq!(
        s["acquirerId"],
        Value::Null,
        "65 characters is not an id: {s}"
    );
    assert_eq!(s["pspId"], Value::Null, "a number is not an id: {s}");

    // The ids of a U answer stay when the final S names none.
    let later = h.submit(&alipayplus(&url("/u-then-none"), "R-LATER")).await;
    let s = h.wait_state(&later, "delivered").await;
    assert_eq!(s["attempts"], 2, "{s}");
    assert_eq!(s["acquirerId"], "2188120000000000", "{s}");

    // A notifyPayment (mini-program) answer's ids are not Alipay+'s: not kept.
    let mini = h
        .submit(&support::payment(&url("/ids"), "PAY-MINI-IDS"))
        .await;
    let s = h.wait_state(&mini, "delivered").await;
    assert_eq!(s["acquirerId"], Value::Null, "{s}");
}

/// An exponential policy whose 1.5 s deadline allows several 150 ms retries.
const SHORT_DEADLINE: &str = r#"allow_http = true
allow_private = ["127.0.0.0/8"]
[profiles.strict.retry]
kind = "exponential"
initial = "150ms"
multiplier = 1.0
max_delay = "150ms"
max_attempts = 1000
deadline = "1500ms"
jitter = 0.0
attempt_timeout = "1s"
"#;

fn millis(v: &Value) -> i64 {
    let t = v.as_str().unwrap();
    chrono_like_millis(t)
}

/// `2024-05-13T12:00:00.123+00:00` to epoch milliseconds (notifyd writes UTC with millis).
fn chrono_like_millis(t: &str) -> i64 {
    let date: Vec<i64> = t[..10].split('-').map(|p| p.parse().unwrap()).collect();
    let (y, m, d) = (date[0], date[1], date[2]);
    let secs_of_day = t[11..13].parse::<i64>().unwrap() * 3600
        + t[14..16].parse::<i64>().unwrap() * 60
        + t[17..19].parse::<i64>().unwrap();
    let ms: i64 = t[20..23].parse().unwrap();
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (days * 86_400 + secs_of_day) * 1000 + ms
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivery_keeps_its_full_deadline_across_a_restart() {
    let mut h = Harness::start_extra("U", |_| SHORT_DEADLINE.to_owned(), |_| {}).await;
    let mut env = support::payment(&h.merchant_url("/n"), "PAY-DEADLINE");
    env["profile"] = "strict".into();
    let id = h.submit(&env).await;
    let first = h.wait_state(&id, "dead").await;
    // Long after the accept, so a deadline counted from it would already be over.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (status, body) = h
        .post(&format!("/v1/notifications/{id}/redeliver"), &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let redelivered_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    h.wait_for(&id, |s| s["attempts"].as_u64() >= Some(2)).await;
    assert!(h.restart().await, "drained");
    let before_restart = h.status(&id).await["attempts"].as_u64().unwrap();

    let s = h.wait_state(&id, "dead").await;
    let after_restart = s["attempts"].as_u64().unwrap() - before_restart;
    let lived = millis(&s["finishedAt"]) - redelivered_at;
    assert!(
        after_restart >= 2,
        "after the restart the redelivery kept retrying, not dead at its first answer \
         (accept was {} ms before): {s}",
        redelivered_at - millis(&first["acceptedAt"])
    );
    assert!(
        (1_200..4_000).contains(&lived),
        "dead about 1.5 s after the redelivery ({lived} ms): {s}"
    );
}
