//! Dead-letter hooks on PostgreSQL: stored inside the outcome transaction that ends their
//! notification `dead` or `failed`, so a crash keeps both or neither (`delivery/dead_letter.rs`).
//!
//! A hook is a notification row like any other (`nd_notification` with `hook_of` set, and an
//! `nd_queue` row), with no `nd_idem` row: it is never submitted, so no repeat can match it, and
//! its `idem_key` column holds the key only it has. Its queue row is inserted leased to the
//! writing host under [`Lease::first`], so that host's dispatcher sends it at once without a
//! claim; should the host never get to it, the lease runs out and any host's claimer takes it.

use tokio_postgres::Transaction;
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::columns::RecordColumns;
use super::{Shared, pg_err, uid};
use crate::store::{Lease, NotificationRecord, StoreError};

/// The hooks and their leased queue rows, in one statement.
const INSERT: &str = "
WITH input AS (
  SELECT * FROM unnest($1::uuid[], $2::int2[], $3::text[], $4::text[], $5::bytea[], $6::uuid[],
                       $7::uuid[], $8::text[], $9::text[], $10::text[], $11::text[], $12::int8[],
                       $13::int8[], $14::int8[], $15::int8[], $16::uuid[])
    AS u(id, api, profile, url, body, idem_key, fingerprint, order_key, payment_id,
         payment_request_id, partner_id, accepted_at, order_hash, due_at, delivery_started_at,
         hook_of)),
notif AS (
  INSERT INTO nd_notification (id, api, profile, url, body, idem_key, fingerprint, order_key,
                               payment_id, payment_request_id, partner_id, accepted_at,
                               delivery_started_at, hook_of)
  SELECT id, api, profile, url, body, idem_key, fingerprint, order_key, payment_id,
         payment_request_id, partner_id, accepted_at, delivery_started_at, hook_of FROM input)
INSERT INTO nd_queue (id, order_hash, due_at, next_attempt_at, lease_owner, lease_token)
SELECT id, order_hash, nd_now() + $18::int8, due_at, $17::int4, $19::int8 FROM input";

/// Stores `hooks` in `tx`, each leased to this host.
pub(super) async fn insert(
    shared: &Shared,
    tx: &Transaction<'_>,
    hooks: &[&NotificationRecord],
) -> Result<(), StoreError> {
    if hooks.is_empty() {
        return Ok(());
    }
    let columns = RecordColumns::of(hooks.iter().copied());
    let of: Vec<Option<Uuid>> = hooks.iter().map(|h| h.hook_of.map(uid)).collect();
    let (owner, lease) = (shared.owner(), shared.lease_millis());
    let first = i64::try_from(Lease::first(shared.host).token).unwrap_or(i64::MAX);
    let mut params = columns.params();
    params.push((&of, Type::UUID_ARRAY));
    params.push((&owner, Type::INT4));
    params.push((&lease, Type::INT8));
    params.push((&first, Type::INT8));
    tx.query_typed(INSERT, &params)
        .await
        .map_err(|e| pg_err("storing dead-letter hooks", e))?;
    Ok(())
}
