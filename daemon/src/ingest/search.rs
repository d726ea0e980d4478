//! Operator search and bulk redelivery (CONTRACT.md §2.1): `GET /v1/notifications?...` and
//! `POST /v1/redeliver`, which take the same filters (query string or JSON body).
//!
//! Unknown filter names are refused rather than ignored: a typo in a bulk redeliver's filter
//! would otherwise widen it to every dead letter.

use std::sync::Arc;
use std::time::Duration;

use notifyd_core::NotificationId;
use notifyd_core::model::datetime::to_unix_millis;
use serde_json::{Value, json};

use super::accept;
use super::query::{Redelivery, read, start, view};
use super::respond::Reply;
use crate::app::App;
use crate::store::{RedeliverOutcome, SearchFilter, State, StoreError};

/// Default `limit` of a search page.
const DEFAULT_LIMIT: usize = 100;
/// Largest `limit` (the store's bound too).
const MAX_LIMIT: usize = 1000;
/// Redeliveries handed to the store at once: enough to fill a group commit, few enough that
/// the writer's queue never refuses them.
const REDELIVER_CHUNK: usize = 64;

/// The filters both forms take (`limit` and `cursor` are the search's own).
const FILTERS: [&str; 7] = [
    "paymentId",
    "paymentRequestId",
    "partnerId",
    "state",
    "endpoint",
    "since",
    "until",
];

/// Reads one filter field; `Ok(false)` when `key` is not a filter.
fn set(f: &mut SearchFilter, key: &str, value: &str) -> Result<bool, String> {
    let text = || Some(value.to_owned());
    match key {
        "paymentId" => f.payment_id = text(),
        "paymentRequestId" => f.payment_request_id = text(),
        "partnerId" => f.partner_id = text(),
        "endpoint" => f.endpoint = text(),
        "state" => {
            f.state = Some(match value {
                "pending" => State::Pending,
                "delivered" => State::Delivered,
                "failed" => State::Failed,
                "dead" => State::Dead,
                _ => return Err("state: must be pending, delivered, failed or dead".into()),
            })
        }
        "since" | "until" => {
            let t = to_unix_millis(value)
                .ok_or_else(|| format!("{key}: must be an RFC 3339 date-time"))?;
            if key == "since" {
                f.since = Some(t);
            } else {
                f.until = Some(t);
            }
        }
        "limit" => {
            f.limit = value
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| format!("limit: must be a number from 1 to {MAX_LIMIT}"))?;
        }
        "cursor" => {
            f.before = Some(
                value
                    .parse::<NotificationId>()
                    .map_err(|_| "cursor: must be a nextCursor from an earlier page")?,
            );
        }
        _ => return Ok(false),
    }
    Ok(true)
}

fn decode(s: &str) -> Result<String, String> {
    let s = s.replace('+', " ");
    percent_encoding::percent_decode_str(&s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| "query: must be UTF-8 once percent-decoded".to_owned())
}

/// The filters of a query string.
pub fn parse_query(query: Option<&str>) -> Result<SearchFilter, String> {
    let mut f = SearchFilter {
        limit: DEFAULT_LIMIT,
        ..SearchFilter::default()
    };
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (decode(k)?, decode(v)?);
        if v.is_empty() {
            // `?paymentId=&state=dead` as a form leaves it: an empty filter is no filter.
            continue;
        }
        if !set(&mut f, &k, &v)? {
            return Err(format!("{k}: not a filter of this search"));
        }
    }
    Ok(f)
}

/// `GET /v1/notifications?...`.
pub async fn list(app: &App, query: Option<&str>) -> Reply {
    let filter = match parse_query(query) {
        Ok(f) => f,
        Err(e) => return Reply::invalid(&e),
    };
    match read(app, move |s| s.search(&filter)).await {
        Ok(page) => Reply::ok("notifications")
            .with(
                "notifications",
                Value::Array(page.records.iter().map(view).collect()),
            )
            .with(
                "nextCursor",
                page.next.map_or(Value::Null, |id| json!(id.to_string())),
            ),
        Err(r) => r,
    }
}

/// The filters and `dryRun` of a bulk redeliver body.
fn parse_body(body: &[u8]) -> Result<(SearchFilter, bool), String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|_| "body: must be a JSON object".to_owned())?;
    let Value::Object(fields) = v else {
        return Err("body: must be a JSON object".into());
    };
    let mut f = SearchFilter::default();
    let mut dry_run = false;
    for (k, v) in &fields {
        if k == "dryRun" {
            dry_run = v.as_bool().ok_or("dryRun: must be true or false")?;
            continue;
        }
        if k == "limit" || k == "cursor" {
            return Err(format!("{k}: a bulk redeliver takes every match"));
        }
        if !FILTERS.contains(&k.as_str()) {
            return Err(format!("{k}: not a filter of this search"));
        }
        let Some(text) = v.as_str() else {
            return Err(format!("{k}: must be a string"));
        };
        set(&mut f, k, text)?;
    }
    Ok((f, dry_run))
}

/// `POST /v1/redeliver`: every matching `dead` or `failed` notification starts over.
///
/// `matched` counts the matching dead and failed ones; `redelivered` those that started again
/// (fewer when a profile is no longer configured or one changed state meanwhile; 0 when dry).
/// The work runs in its own task, as a single redeliver does, so a client that hangs up leaves
/// no notification half redelivered.
pub async fn redeliver(app: &Arc<App>, body: &[u8]) -> Reply {
    if let Some(r) = accept::closed(app) {
        return r;
    }
    let (filter, dry_run) = match parse_body(body) {
        Ok(p) => p,
        Err(e) => return Reply::invalid(&e),
    };
    let states: Vec<State> = match filter.state {
        None => vec![State::Dead, State::Failed],
        Some(s) if s.is_dead_letter() => vec![s],
        Some(_) => Vec::new(),
    };
    let task = tokio::spawn({
        let app = app.clone();
        async move {
            let mut totals = (0u64, 0u64);
            for state in states {
                let f = SearchFilter {
                    state: Some(state),
                    limit: MAX_LIMIT,
                    ..filter.clone()
                };
                let (m, r) = redeliver_matching(&app, f, dry_run).await?;
                totals.0 += m;
                totals.1 += r;
            }
            Ok::<_, StoreError>(totals)
        }
    });
    match task.await {
        Ok(Ok((matched, redelivered))) => Reply::ok(if dry_run {
            "dry run: nothing redelivered"
        } else {
            "redelivery started"
        })
        .with("matched", json!(matched))
        .with("redelivered", json!(redelivered)),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "Bulk redeliver stopped on a store error.");
            Reply::unavailable("the store could not complete the redelivery; retry")
        }
        Err(e) => {
            tracing::error!(error = %e, "A bulk redeliver task ended without an answer.");
            Reply::unavailable("the redelivery did not complete; retry")
        }
    }
}

/// Walks every page of `f` (one state), redelivering as it goes.
async fn redeliver_matching(
    app: &Arc<App>,
    mut f: SearchFilter,
    dry_run: bool,
) -> Result<(u64, u64), StoreError> {
    let (mut matched, mut redelivered) = (0u64, 0u64);
    loop {
        let store = app.store.clone();
        let page_filter = f.clone();
        let page = tokio::task::spawn_blocking(move || store.search(&page_filter))
            .await
            .map_err(|_| StoreError::Closed)??;
        matched += page.records.len() as u64;
        if !dry_run {
            for chunk in page.records.chunks(REDELIVER_CHUNK) {
                let mut submitted = Vec::with_capacity(chunk.len());
                for rec in chunk {
                    // The same check as a single redeliver: no record flipped to pending that
                    // no shard could deliver.
                    let Some(profile) = app.profile(&rec.profile) else {
                        tracing::warn!(id = %rec.id, profile = %rec.profile, "Not redelivered: its profile is no longer configured.");
                        continue;
                    };
                    submitted.push((rec.id, Redelivery::submit(app, rec.id), profile));
                }
                for (id, write, profile) in submitted {
                    if let RedeliverOutcome::Started(_) = finish(app, id, write, profile).await? {
                        redelivered += 1;
                    }
                }
            }
        }
        match page.next {
            Some(next) => f.before = Some(next),
            None => return Ok((matched, redelivered)),
        }
    }
}

/// Awaits one redelivery; a full store queue is only a pause in a bulk run: the write was
/// refused before anything changed, so it is simply submitted again.
async fn finish(
    app: &App,
    id: NotificationId,
    write: Redelivery,
    profile: Arc<crate::profile::Profile>,
) -> Result<RedeliverOutcome, StoreError> {
    let mut outcome = write.finish(app, profile.clone()).await;
    let mut tries = 0;
    while matches!(outcome, Err(StoreError::Full)) && tries < 100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        outcome = start(app, id, profile.clone()).await;
        tries += 1;
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_filters_are_read_and_bad_ones_named() {
        let f = parse_query(Some(
            "paymentId=P%201&state=dead&endpoint=m.example%3A443&limit=5&since=2024-01-02T03:04:05Z&partnerId=",
        ))
        .unwrap();
        assert_eq!(f.payment_id.as_deref(), Some("P 1"));
        assert_eq!(f.state, Some(State::Dead));
        assert_eq!(f.endpoint.as_deref(), Some("m.example:443"));
        assert_eq!(f.limit, 5);
        assert!(f.since.is_some() && f.partner_id.is_none());
        assert_eq!(parse_query(None).unwrap().limit, DEFAULT_LIMIT);
        let err = |q: &str| parse_query(Some(q)).unwrap_err();
        assert!(err("limit=0").starts_with("limit:"));
        assert!(err("limit=1001").starts_with("limit:"));
        assert!(err("state=lost").starts_with("state:"));
        assert!(err("until=yesterday").starts_with("until:"));
        assert!(err("cursor=xyz").starts_with("cursor:"));
        assert!(err("paymentID=P1").starts_with("paymentID: not a filter"));
    }

    #[test]
    fn bulk_bodies_take_the_filters_and_dry_run_only() {
        let (f, dry) =
            parse_body(br#"{"endpoint":"m.example:443","state":"failed","dryRun":true}"#).unwrap();
        assert!(dry);
        assert_eq!(f.state, Some(State::Failed));
        assert!(
            parse_body(br#"{"dryRun":"yes"}"#)
                .unwrap_err()
                .starts_with("dryRun:")
        );
        assert!(
            parse_body(br#"{"limit":"5"}"#)
                .unwrap_err()
                .starts_with("limit:")
        );
        assert!(
            parse_body(br#"{"paymentId":5}"#)
                .unwrap_err()
                .starts_with("paymentId:")
        );
        assert!(
            parse_body(br#"{"endpont":"x"}"#)
                .unwrap_err()
                .contains("not a filter")
        );
        assert!(parse_body(b"[1]").is_err());
    }
}
