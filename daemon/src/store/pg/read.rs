//! Reads (by id, by payment, dead letters, idempotency) and the operator writes (redeliver,
//! prune). A notification's state is where its row is: `nd_queue` while pending, else
//! `nd_outcome`.

use notifyd_core::{Api, NotificationId, UnixMillis};
use tokio_postgres::Row;
use uuid::Uuid;

use super::connect::pooled;
use super::{Shared, millis, nid, order_hash, pg_err, uid, unix};
use crate::store::{
    IdempotencyRecord, NotificationRecord, PruneStats, ReceiverIds, RedeliverOutcome, State,
    StoreError,
};

/// Every column of a record; `{body}` is the body column, or an empty one for searches (which
/// never show bodies and need not read them).
macro_rules! record_sql {
    ($body:literal) => {
        concat!(
            "SELECT n.id, n.api, n.profile, n.url, ",
            $body,
            ", n.idem_key, n.fingerprint, n.order_key,
       n.payment_id, n.payment_request_id, n.partner_id, n.accepted_at,
       q.id IS NOT NULL, coalesce(q.attempts, o.attempts, 0), coalesce(q.last_result, o.last_result),
       q.next_attempt_at, o.state, o.finished_at, n.delivery_started_at,
       coalesce(q.acquirer_id, o.acquirer_id), coalesce(q.psp_id, o.psp_id), n.hook_of
FROM nd_notification n
LEFT JOIN nd_queue q ON q.id = n.id
LEFT JOIN nd_outcome o ON o.id = n.id"
        )
    };
}
pub(super) use record_sql;

const RECORD: &str = record_sql!("n.body");

pub(super) fn record(row: &Row) -> Result<NotificationRecord, StoreError> {
    let id = nid(row.get(0));
    let api_tag: i16 = row.get(1);
    let api = u8::try_from(api_tag)
        .ok()
        .and_then(Api::from_tag)
        .ok_or_else(|| StoreError::Corrupt(format!("notification {id} has api {api_tag}")))?;
    let pending: bool = row.get(12);
    let state = if pending {
        State::Pending
    } else {
        let tag: Option<i16> = row.get(16);
        tag.and_then(|t| u8::try_from(t).ok())
            .and_then(State::from_tag)
            .ok_or_else(|| {
                StoreError::Corrupt(format!("notification {id} is neither pending nor finished"))
            })?
    };
    let attempts: i32 = row.get(13);
    Ok(NotificationRecord {
        id,
        api,
        profile: row.get(2),
        url: row.get(3),
        body: bytes::Bytes::from(row.get::<_, Vec<u8>>(4)),
        idem_key: row.get::<_, Uuid>(5).as_u128(),
        fingerprint: row.get::<_, Uuid>(6).as_u128(),
        order_key: row.get(7),
        payment_id: row.get(8),
        payment_request_id: row.get(9),
        partner_id: row.get(10),
        state,
        attempts: u32::try_from(attempts).unwrap_or(0),
        last_result: row.get(14),
        accepted_at: unix(row.get(11)),
        next_attempt_at: row.get::<_, Option<i64>>(15).map(unix),
        finished_at: row.get::<_, Option<i64>>(17).map(unix),
        delivery_started_at: row.get::<_, Option<i64>>(18).map(unix),
        receiver_ids: ReceiverIds {
            acquirer_id: row.get(19),
            psp_id: row.get(20),
        },
        hook_of: row.get::<_, Option<Uuid>>(21).map(nid),
    })
}

pub(super) async fn records(
    shared: &Shared,
    what: &str,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<NotificationRecord>, StoreError> {
    let client = pooled(&shared.pool).await?;
    let rows = client
        .query(sql, params)
        .await
        .map_err(|e| pg_err(what, e))?;
    rows.iter().map(record).collect()
}

/// These notifications, in id (accept) order; unknown ids are left out.
pub(super) async fn by_ids(
    shared: &Shared,
    ids: &[Uuid],
) -> Result<Vec<NotificationRecord>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!("{RECORD} WHERE n.id = ANY($1) ORDER BY n.id");
    records(shared, "reading notifications by id", &sql, &[&ids]).await
}

pub(super) async fn dead_letters(
    shared: &Shared,
    limit: usize,
) -> Result<Vec<NotificationRecord>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let sql = format!(
        "{RECORD} WHERE n.id IN (SELECT id FROM nd_outcome WHERE state IN (3, 4)
                                ORDER BY finished_at DESC, id DESC LIMIT $1)
         ORDER BY o.finished_at DESC, n.id DESC"
    );
    records(shared, "reading dead letters", &sql, &[&limit]).await
}

pub(super) async fn by_payment_id(
    shared: &Shared,
    payment_id: &str,
) -> Result<Vec<NotificationRecord>, StoreError> {
    let sql = format!("{RECORD} WHERE n.payment_id = $1 ORDER BY n.id");
    records(
        shared,
        "reading notifications by paymentId",
        &sql,
        &[&payment_id],
    )
    .await
}

pub(super) async fn by_payment_request_id(
    shared: &Shared,
    partner_id: Option<&str>,
    request: &str,
) -> Result<Vec<NotificationRecord>, StoreError> {
    let sql = format!(
        "{RECORD} WHERE n.payment_request_id = $1 AND ($2::text IS NULL OR n.partner_id = $2)
         ORDER BY n.id"
    );
    let what = "reading notifications by paymentRequestId";
    records(shared, what, &sql, &[&request, &partner_id]).await
}

pub(super) async fn idempotency(
    shared: &Shared,
    key: u128,
    since: UnixMillis,
) -> Result<Option<IdempotencyRecord>, StoreError> {
    let client = pooled(&shared.pool).await?;
    let row = client
        .query_opt(
            "SELECT fingerprint, id, accepted_at FROM nd_idem
             WHERE idem_key = $1 AND accepted_at >= $2 ORDER BY accepted_at, id LIMIT 1",
            &[&Uuid::from_u128(key), &millis(since)],
        )
        .await
        .map_err(|e| pg_err("reading an idempotency key", e))?;
    Ok(row.map(|r| IdempotencyRecord {
        key,
        fingerprint: r.get::<_, Uuid>(0).as_u128(),
        id: nid(r.get(1)),
        accepted_at: unix(r.get(2)),
    }))
}

/// A dead letter goes back to the hot table, due at `now`, unleased: whichever host claims
/// first delivers it.
pub(super) async fn redeliver(
    shared: &Shared,
    id: NotificationId,
    now: UnixMillis,
) -> Result<RedeliverOutcome, StoreError> {
    let Some(current) = by_ids(shared, &[uid(id)]).await?.pop() else {
        return Ok(RedeliverOutcome::Unknown);
    };
    if !current.state.is_dead_letter() {
        return Ok(RedeliverOutcome::NotRedeliverable(current.state));
    }
    let mut client = pooled(&shared.pool).await?;
    let tx = client
        .transaction()
        .await
        .map_err(|e| pg_err("starting a redeliver transaction", e))?;
    // The state check again, in the statement: another host may have redelivered it meanwhile.
    // The claim count goes on from the claim that finished it (the next claim takes the next
    // token), so a late write of that claim is refused like any lost lease. An outcome stored
    // by schema v3 has no token: the database's clock in milliseconds is far above any count
    // of claims a row has had, so the tokens after it still only grow (fences compare them for
    // equality; a shard keeps the larger of two of its own).
    let moved = tx
        .execute(
            "WITH o AS (DELETE FROM nd_outcome WHERE id = $1 AND state IN (3, 4)
                        RETURNING id, last_result, acquirer_id, psp_id, lease_token)
             INSERT INTO nd_queue (id, order_hash, due_at, next_attempt_at, last_result,
                                   acquirer_id, psp_id, lease_token)
             SELECT id, $2, $3, $3, last_result, acquirer_id, psp_id,
                    coalesce(lease_token, nd_now()) FROM o",
            &[&uid(id), &order_hash(&current.order_key), &millis(now)],
        )
        .await
        .map_err(|e| pg_err("moving a dead letter back to the queue", e))?;
    if moved == 1 {
        // The retry deadline counts from here (as on the embedded store).
        tx.execute(
            "UPDATE nd_notification SET delivery_started_at = $2 WHERE id = $1",
            &[&uid(id), &millis(now)],
        )
        .await
        .map_err(|e| pg_err("recording a redelivery's start", e))?;
    }
    tx.commit()
        .await
        .map_err(|e| pg_err("committing a redeliver", e))?;
    match by_ids(shared, &[uid(id)]).await?.pop() {
        Some(record) if moved == 1 => Ok(RedeliverOutcome::Started(Box::new(record))),
        Some(record) => Ok(RedeliverOutcome::NotRedeliverable(record.state)),
        None => Ok(RedeliverOutcome::Unknown),
    }
}

/// Arbitrary, fixed: the advisory lock key of the pruning leader ("nd-prune" in ASCII).
pub(super) const PRUNE_LOCK: i64 = 0x6e64_2d70_7275_6e65;

/// One batch of history pruning, by whichever host holds the leader lock. Every host runs the
/// prune loop; the lock is transaction-scoped, so a batch is led by one host at a time and a
/// host that dies mid-batch leaves no lock behind (a session lock on a pooled connection would
/// outlive the work). A host that finds the lock taken prunes nothing this round.
pub(super) async fn prune(
    shared: &Shared,
    older_than: UnixMillis,
    limit: usize,
) -> Result<PruneStats, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let before = millis(older_than);
    let mut client = pooled(&shared.pool).await?;
    let tx = client
        .transaction()
        .await
        .map_err(|e| pg_err("starting a prune transaction", e))?;
    let leader: bool = tx
        .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&PRUNE_LOCK])
        .await
        .map_err(|e| pg_err("taking the prune lock", e))?
        .get(0);
    if !leader {
        return Ok(PruneStats::default());
    }
    // Pending rows are never touched: only notifications with an outcome are candidates.
    let notifications: i64 = tx
        .query_one(
            "WITH o AS (DELETE FROM nd_outcome WHERE id IN (
                          SELECT id FROM nd_outcome WHERE finished_at < $1
                          ORDER BY finished_at LIMIT $2) RETURNING id),
                  a AS (DELETE FROM nd_attempt WHERE id IN (SELECT id FROM o)),
                  n AS (DELETE FROM nd_notification WHERE id IN (SELECT id FROM o) RETURNING 1)
             SELECT count(*) FROM n",
            &[&before, &limit],
        )
        .await
        .map_err(|e| pg_err("pruning finished notifications", e))?
        .get(0);
    let idempotency: i64 = tx
        .query_one(
            "WITH d AS (DELETE FROM nd_idem WHERE ctid IN (
                          SELECT ctid FROM nd_idem WHERE accepted_at < $1
                          ORDER BY accepted_at LIMIT $2) RETURNING 1)
             SELECT count(*) FROM d",
            &[&before, &limit],
        )
        .await
        .map_err(|e| pg_err("pruning idempotency keys", e))?
        .get(0);
    tx.commit()
        .await
        .map_err(|e| pg_err("committing a prune batch", e))?;
    Ok(PruneStats {
        notifications: u64::try_from(notifications).unwrap_or(0),
        idempotency: u64::try_from(idempotency).unwrap_or(0),
        more: notifications >= limit || idempotency >= limit,
    })
}
