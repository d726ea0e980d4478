//! Accepts: one statement, so one transaction, for a whole batch, idempotency judged by the
//! unique key.

use std::collections::HashMap;
use std::sync::Arc;

use tokio_postgres::Client;
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::columns::RecordColumns;
use super::lane::{Batch, BatchFuture};
use super::{Shared, nid, pg_err};
use crate::store::{Accepted, Lease, NotificationRecord, StoreError};

/// New notifications and their idempotency keys in one statement: a row whose key is already
/// in `nd_idem` (committed by any host, or earlier in this batch) goes no further. Unnest keeps
/// it one statement for any batch size; the arrays travel in binary.
///
/// The accepting host leases its new rows to itself when they are due and head their payment
/// (no pending row of it in the table, none earlier in this batch), so first attempts need no
/// claim round trip (POSTGRES.md §0). The queue row is inserted leased rather than leased by a
/// second UPDATE: that update was not HOT (it changes indexed `due_at` and `lease_owner`), so
/// it cost a second heap tuple, four index entries and a dead tuple per notification, about a
/// fifth of the WAL of an accepted and delivered notification (benches/README.md, row 9).
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
         payment_request_id, partner_id, accepted_at, delivery_started_at FROM fresh),
own AS (
  SELECT f.*, f.due_at <= nd_now()
           AND f.ord = min(f.ord) OVER (PARTITION BY f.order_hash)
           AND NOT EXISTS (SELECT 1 FROM nd_queue p WHERE p.order_hash = f.order_hash) AS mine
  FROM fresh f)
INSERT INTO nd_queue (id, order_hash, due_at, next_attempt_at, lease_owner, lease_token)
SELECT id, order_hash, CASE WHEN mine THEN nd_now() + $17::int8 ELSE due_at END, due_at,
       CASE WHEN mine THEN $16::int4 END, CASE WHEN mine THEN 1 ELSE 0 END
FROM own ORDER BY ord
RETURNING id, lease_owner IS NOT NULL, lease_token";

/// The winners for keys that lost. A separate statement, so that under READ COMMITTED it takes a
/// new snapshot and sees the row another host committed while our insert waited on its key.
/// Rare (repeats only), so it keeps the plain prepared path.
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
    let columns = RecordColumns::of(&records);
    let (ids, profiles, keys, fps) = (&columns.ids, &columns.profiles, &columns.keys, &columns.fps);

    let (owner, lease) = (shared.owner(), shared.lease_millis());
    let mut params = columns.params();
    params.push((&owner, Type::INT4));
    params.push((&lease, Type::INT8));
    // One statement is its own transaction, committed (and flushed: synchronous_commit is on)
    // at the Sync that ends it, before the answer's ReadyForQuery, and the rows come back only
    // with that: typed parameters make it one round trip instead of BEGIN, prepare, execute and
    // COMMIT, each of which waited for the server.
    let rows = client
        .query_typed(INSERT, &params)
        .await
        .map_err(|e| pg_err("inserting accepted notifications", e))?;
    let stored: std::collections::HashSet<Uuid> = rows.iter().map(|row| row.get(0)).collect();
    let claimed: HashMap<Uuid, i64> = rows
        .iter()
        .filter(|row| row.get::<_, bool>(1))
        .map(|row| (row.get(0), row.get(2)))
        .collect();
    let lost: Vec<usize> = (0..records.len())
        .filter(|&i| !stored.contains(&ids[i]))
        .collect();
    // After the commit: should this read fail, the batch answers U although its new rows are
    // stored, and the gateway's retry of each finds it as a duplicate with the same id.
    let winners: HashMap<(String, Uuid), (Uuid, Uuid)> = if lost.is_empty() {
        HashMap::new()
    } else {
        let lost_profiles: Vec<&str> = lost.iter().map(|&i| profiles[i]).collect();
        let lost_keys: Vec<Uuid> = lost.iter().map(|&i| keys[i]).collect();
        client
            .query(WINNERS, &[&lost_profiles, &lost_keys])
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
