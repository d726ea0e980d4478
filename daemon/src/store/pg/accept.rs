//! Accepts: one transaction for a whole batch, idempotency judged by the unique key.

use std::collections::HashMap;
use std::sync::Arc;

use tokio_postgres::Client;
use uuid::Uuid;

use super::lane::{Batch, BatchFuture};
use super::{Shared, millis, nid, order_hash, pg_err, uid};
use crate::store::{Accepted, Lease, NotificationRecord, StoreError};

/// New notifications and their idempotency keys in one statement: a row whose key is already
/// in `nd_idem` (committed by any host, or earlier in this batch) goes no further. Unnest keeps
/// it one statement for any batch size; the arrays travel in binary.
const INSERT: &str = "
WITH input AS (
  SELECT * FROM unnest($1::uuid[], $2::int2[], $3::text[], $4::text[], $5::bytea[], $6::uuid[],
                       $7::uuid[], $8::text[], $9::text[], $10::text[], $11::text[], $12::int8[],
                       $13::int8[], $14::int8[], $15::int8[])
    WITH ORDINALITY AS u(id, api, profile, url, body, idem_key, fingerprint, order_key,
                         payment_id, payment_request_id, partner_id, accepted_at, order_hash,
                         due_at, delivery_started_at, ord)),
idem AS (
  INSERT INTO nd_idem (profile, idem_key, fingerprint, id, accepted_at)
  SELECT profile, idem_key, fingerprint, id, accepted_at FROM input ORDER BY ord
  ON CONFLICT DO NOTHING RETURNING id),
fresh AS (SELECT input.* FROM input JOIN idem USING (id)),
notif AS (
  INSERT INTO nd_notification (id, api, profile, url, body, idem_key, fingerprint, order_key,
                               payment_id, payment_request_id, partner_id, accepted_at,
                               delivery_started_at)
  SELECT id, api, profile, url, body, idem_key, fingerprint, order_key, payment_id,
         payment_request_id, partner_id, accepted_at, delivery_started_at FROM fresh)
INSERT INTO nd_queue (id, order_hash, due_at, next_attempt_at)
SELECT id, order_hash, due_at, due_at FROM fresh ORDER BY ord
RETURNING id";

/// The accepting host leases its new rows to itself when they are due and head their payment,
/// so first attempts need no claim round trip (POSTGRES.md §0).
const SELF_CLAIM: &str = "
UPDATE nd_queue q SET lease_owner = $1, lease_token = q.lease_token + 1, due_at = nd_now() + $2
WHERE q.id = ANY($3) AND q.due_at <= nd_now()
  AND NOT EXISTS (SELECT 1 FROM nd_queue p WHERE p.order_hash = q.order_hash AND p.seq < q.seq)
RETURNING q.id, q.lease_token";

/// The winners for keys that lost. A separate statement, so that under READ COMMITTED it takes a
/// new snapshot and sees the row another host committed while our insert waited on its key.
const WINNERS: &str = "
SELECT i.profile, i.idem_key, i.fingerprint, i.id FROM nd_idem i
JOIN unnest($1::text[], $2::uuid[]) AS k(profile, idem_key) USING (profile, idem_key)";

pub(super) struct Accept(pub(super) Arc<Shared>);

impl Batch<NotificationRecord, Accepted> for Accept {
    fn run<'a>(
        &'a self,
        client: &'a mut Client,
        records: Vec<NotificationRecord>,
    ) -> BatchFuture<'a, Accepted> {
        Box::pin(accept(&self.0, client, records))
    }
}

async fn accept(
    shared: &Shared,
    client: &mut Client,
    records: Vec<NotificationRecord>,
) -> Result<Vec<Accepted>, StoreError> {
    let ids: Vec<Uuid> = records.iter().map(|r| uid(r.id)).collect();
    let apis: Vec<i16> = records.iter().map(|r| i16::from(r.api.tag())).collect();
    let profiles: Vec<&str> = records.iter().map(|r| r.profile.as_str()).collect();
    let urls: Vec<&str> = records.iter().map(|r| r.url.as_str()).collect();
    let bodies: Vec<&[u8]> = records.iter().map(|r| r.body.as_ref()).collect();
    let keys: Vec<Uuid> = records
        .iter()
        .map(|r| Uuid::from_u128(r.idem_key))
        .collect();
    let fps: Vec<Uuid> = records
        .iter()
        .map(|r| Uuid::from_u128(r.fingerprint))
        .collect();
    let order_keys: Vec<&str> = records.iter().map(|r| r.order_key.as_str()).collect();
    let payment_ids: Vec<Option<&str>> = records.iter().map(|r| r.payment_id.as_deref()).collect();
    let request_ids: Vec<Option<&str>> = records
        .iter()
        .map(|r| r.payment_request_id.as_deref())
        .collect();
    let partner_ids: Vec<Option<&str>> = records.iter().map(|r| r.partner_id.as_deref()).collect();
    let accepted: Vec<i64> = records.iter().map(|r| millis(r.accepted_at)).collect();
    let hashes: Vec<i64> = records.iter().map(|r| order_hash(&r.order_key)).collect();
    let due: Vec<i64> = records
        .iter()
        .map(|r| millis(r.next_attempt_at.unwrap_or(r.accepted_at)))
        .collect();
    let started: Vec<Option<i64>> = records
        .iter()
        .map(|r| r.delivery_started_at.map(millis))
        .collect();

    let tx = client
        .transaction()
        .await
        .map_err(|e| pg_err("starting an accept transaction", e))?;
    let inserted: Vec<Uuid> = tx
        .query(
            INSERT,
            &[
                &ids,
                &apis,
                &profiles,
                &urls,
                &bodies,
                &keys,
                &fps,
                &order_keys,
                &payment_ids,
                &request_ids,
                &partner_ids,
                &accepted,
                &hashes,
                &due,
                &started,
            ],
        )
        .await
        .map_err(|e| pg_err("inserting accepted notifications", e))?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let claimed: HashMap<Uuid, i64> = if inserted.is_empty() {
        HashMap::new()
    } else {
        tx.query(
            SELF_CLAIM,
            &[&shared.owner(), &shared.lease_millis(), &inserted],
        )
        .await
        .map_err(|e| pg_err("leasing accepted notifications to this host", e))?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
    };
    let stored: std::collections::HashSet<Uuid> = inserted.into_iter().collect();
    let lost: Vec<usize> = (0..records.len())
        .filter(|&i| !stored.contains(&ids[i]))
        .collect();
    let winners: HashMap<(String, Uuid), (Uuid, Uuid)> = if lost.is_empty() {
        HashMap::new()
    } else {
        let lost_profiles: Vec<&str> = lost.iter().map(|&i| profiles[i]).collect();
        let lost_keys: Vec<Uuid> = lost.iter().map(|&i| keys[i]).collect();
        tx.query(WINNERS, &[&lost_profiles, &lost_keys])
            .await
            .map_err(|e| {
                pg_err(
                    "reading the notifications stored first under repeated keys",
                    e,
                )
            })?
            .iter()
            .map(|row| ((row.get(0), row.get(1)), (row.get(2), row.get(3))))
            .collect()
    };
    tx.commit()
        .await
        .map_err(|e| pg_err("committing accepted notifications", e))?;

    records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            if stored.contains(&ids[i]) {
                let lease = claimed.get(&ids[i]).map(|&token| Lease {
                    owner: shared.host,
                    token: u64::try_from(token).unwrap_or(0),
                });
                return Ok(Accepted::Stored(lease));
            }
            let Some(&(fingerprint, id)) = winners.get(&(r.profile.clone(), keys[i])) else {
                // Only a prune racing the accept can remove the winner; the client's retry
                // then stores it afresh.
                return Err(StoreError::Backend(format!(
                    "idempotency key of notification {} was taken, but its holder is gone",
                    r.id
                )));
            };
            Ok(if fingerprint == fps[i] {
                Accepted::Duplicate(nid(id))
            } else {
                Accepted::Inconsistent(nid(id))
            })
        })
        .collect()
}
