//! The operator's view of endpoints (CONTRACT.md §2.1): list them, hold one, resume one.

use notifyd_core::UnixMillis;
use serde_json::{Value, json};

use std::sync::Arc;

use super::respond::Reply;
use crate::app::App;
use crate::delivery::EndpointView;
use crate::store::StoreError;

fn time(t: Option<UnixMillis>) -> Value {
    t.map_or(Value::Null, |t| json!(t.rfc3339_millis().to_string()))
}

/// The JSON of one endpoint, as `GET /v1/endpoints` lists it.
pub fn view(e: &EndpointView) -> Value {
    json!({
        "endpoint": e.endpoint,
        "state": e.state,
        "heldByOperator": e.held_by_operator,
        "pausedUntil": time(e.paused_until),
        "concurrencyLimit": e.concurrency_limit,
        "pending": e.pending,
        "inFlight": e.in_flight,
        "lastSuccessAt": time(e.last_success_at),
        "lastError": e.last_error.as_ref().map(|(_, what)| what.as_str()),
        "lastErrorAt": time(e.last_error.as_ref().map(|(at, _)| *at)),
        "ackRatio15m": e.ack_ratio_15m,
    })
}

/// `GET /v1/endpoints`: every endpoint notifyd knows, worst state first.
pub async fn list(app: &App) -> Reply {
    let all = app.dispatcher.endpoints().await;
    Reply::ok("endpoints").with("endpoints", Value::Array(all.iter().map(view).collect()))
}

/// `POST /v1/endpoints/{endpoint}/hold` (`hold`) or `/resume`.
///
/// The hold is recorded in the store before the shards hear of it, so it outlives a restart
/// and, on a shared store, every host's claimer applies it within a claim cycle. The write and
/// the shards' change run in their own task, under the holds lock: a client hanging up between
/// them, or a second change of the same endpoint, cannot leave the store saying one thing and
/// this host doing another.
pub async fn hold(app: &Arc<App>, endpoint: &str, hold: bool) -> Reply {
    let endpoint = percent_decode(endpoint);
    if endpoint.is_empty() || endpoint.contains(['/', ' ']) {
        return Reply::invalid("endpoint: must be host:port");
    }
    let task = tokio::spawn({
        let (app, endpoint) = (app.clone(), endpoint.clone());
        async move {
            let _serial = app.holds.lock().await;
            app.store.set_hold(&endpoint, hold, app.clock.now()).await?;
            Ok::<_, StoreError>(if hold {
                app.dispatcher.hold(&endpoint).await
            } else {
                app.dispatcher.resume(&endpoint).await
            })
        }
    });
    let changed = match task.await {
        Ok(Ok(changed)) => changed,
        Ok(Err(e)) => {
            tracing::error!(endpoint = %endpoint, error = %e, "Could not record an operator's hold or resume; this host did not apply it.");
            return Reply::unavailable(
                "the store did not confirm the change (it may not be recorded) and this host did not apply it; retry",
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "A hold task ended without an answer.");
            return Reply::unavailable("the change did not complete; retry");
        }
    };
    let message = match (hold, changed) {
        (true, true) => "endpoint held",
        (true, false) => "endpoint was already held",
        (false, true) => "endpoint resumed",
        (false, false) => "endpoint was not held",
    };
    Reply::ok(message)
        .with("endpoint", json!(endpoint))
        .with("changed", json!(changed))
}

/// `%3A` for the colon, as some clients write it in a path segment; endpoints hold no other
/// character a client would escape.
fn percent_decode(s: &str) -> String {
    s.replace("%3A", ":").replace("%3a", ":")
}
