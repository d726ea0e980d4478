//! The schema, created and migrated by notifyd itself.
//!
//! Every host runs [`migrate`] at start. It holds a session advisory lock for the whole check, so
//! hosts starting at once against an empty database wait for the first one instead of racing
//! `CREATE TABLE` (plain `IF NOT EXISTS` still fails with a unique violation on `pg_type` when
//! two sessions create the same table concurrently). A database migrated by a newer release than
//! this one understands is refused: its writes could break invariants this code does not know.

use tokio_postgres::Client;

use super::pg_err;
use crate::store::StoreError;

/// Arbitrary, fixed: the advisory lock key of notifyd's migrations ("nd-schema" in ASCII).
const LOCK_KEY: i64 = 0x6e64_2d73_6368_656d;

/// The newest schema this release writes.
pub const VERSION: i32 = 4;

/// Migration `n` (1-based) brings the schema from version n-1 to n, in one transaction, with
/// the oldest release version that may still run on its result (`min_compatible`): hosts of
/// that release keep working while the others are upgraded one by one.
const MIGRATIONS: &[(&str, i32)] = &[(V1, 1), (V2, 2), (V3, 3), (V4, 3)];

/// Times are epoch milliseconds (bigint) like `UnixMillis`; "now" is the database's clock
/// (`nd_now()`) wherever hosts must agree on it (leases, due times of claims).
const V1: &str = r#"
CREATE FUNCTION nd_now() RETURNS bigint LANGUAGE sql STABLE
  AS $$ SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint $$;

CREATE TABLE nd_host (
  id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name text NOT NULL,
  started_at bigint NOT NULL DEFAULT nd_now()
) WITH (fillfactor = 50);

-- Cold: written once at accept, read by inquiry and claims.
CREATE TABLE nd_notification (
  id uuid PRIMARY KEY,
  api smallint NOT NULL, profile text NOT NULL, url text NOT NULL, body bytea NOT NULL,
  idem_key uuid NOT NULL, fingerprint uuid NOT NULL, order_key text NOT NULL,
  payment_id text, payment_request_id text, partner_id text,
  accepted_at bigint NOT NULL);
CREATE INDEX nd_notification_payment ON nd_notification (payment_id, id)
  WHERE payment_id IS NOT NULL;
CREATE INDEX nd_notification_request ON nd_notification (payment_request_id, partner_id, id)
  WHERE payment_request_id IS NOT NULL;

-- Idempotency across hosts: the unique key is the judge, whichever host commits first.
CREATE TABLE nd_idem (
  profile text NOT NULL, idem_key uuid NOT NULL,
  fingerprint uuid NOT NULL, id uuid NOT NULL, accepted_at bigint NOT NULL,
  PRIMARY KEY (profile, idem_key));
CREATE INDEX nd_idem_accepted ON nd_idem (accepted_at);
-- find_idempotency knows the key, not the profile.
CREATE INDEX nd_idem_key ON nd_idem (idem_key);

-- Hot: pending notifications only; its size is the backlog, not the history.
-- seq has CACHE 1: a cached block per session would break accept order between hosts.
CREATE TABLE nd_queue (
  id uuid PRIMARY KEY,
  seq bigint GENERATED ALWAYS AS IDENTITY (CACHE 1),
  order_hash bigint NOT NULL,
  due_at bigint NOT NULL,            -- next attempt; while leased, the end of the lease
  attempts int NOT NULL DEFAULT 0, last_result text,
  next_attempt_at bigint,            -- the host's schedule, kept for the record's readers
  lease_owner int, lease_token bigint NOT NULL DEFAULT 0
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000,
        autovacuum_vacuum_cost_delay = 0, autovacuum_analyze_scale_factor = 0.05);
CREATE INDEX nd_queue_due ON nd_queue (due_at);
CREATE INDEX nd_queue_order ON nd_queue (order_hash, seq);
-- A host renews and releases all it holds by owner.
CREATE INDEX nd_queue_owner ON nd_queue (lease_owner) WHERE lease_owner IS NOT NULL;

-- One row per finished notification, replacing its nd_queue row in the same statement.
CREATE TABLE nd_outcome (
  id uuid PRIMARY KEY,
  state smallint NOT NULL, attempts int NOT NULL, last_result text, finished_at bigint NOT NULL);
CREATE INDEX nd_outcome_finished ON nd_outcome (finished_at);
CREATE INDEX nd_outcome_dead ON nd_outcome (finished_at DESC, id DESC) WHERE state IN (3, 4);
"#;

/// What the embedded store keeps and v1 did not: the delivery start and the receiver's ids, the
/// attempt log, the operator search's indexes, and throttle pauses shared by the hosts.
///
/// Every column added is nullable without a default, so the ALTERs rewrite no table. The new
/// indexes are built inside the migration's transaction, which blocks accepts while it runs on
/// a large `nd_notification` (README: upgrading).
const V2: &str = r#"
ALTER TABLE nd_notification ADD COLUMN delivery_started_at bigint;
ALTER TABLE nd_queue ADD COLUMN acquirer_id text, ADD COLUMN psp_id text;
ALTER TABLE nd_outcome ADD COLUMN acquirer_id text, ADD COLUMN psp_id text;

-- The attempt log: one row per notification holding its last 20 entries (attempts.rs's
-- encoding), rewritten in the outcome's transaction. Not a row per attempt: a delivered-at-once
-- notification costs one insert, and the hot nd_queue never carries it.
CREATE TABLE nd_attempt (id uuid PRIMARY KEY, entries bytea[] NOT NULL);

-- Search, newest first within each filter (ids are time-ordered).
CREATE INDEX nd_notification_partner ON nd_notification (partner_id, id)
  WHERE partner_id IS NOT NULL;
CREATE INDEX nd_notification_endpoint ON nd_notification ((split_part(order_key, '|', 1)), id);
CREATE INDEX nd_outcome_state ON nd_outcome (state, id);

-- Throttle pauses, shared: a pause one host learns holds for every host. Rare, HOT-updated.
CREATE TABLE nd_endpoint (
  endpoint text PRIMARY KEY, paused_until bigint NOT NULL, updated_by int
) WITH (fillfactor = 50);
"#;

/// Dead-letter hooks (`hooks.rs`): the notification a hook reports on. Nullable without a
/// default, so no rewrite; nothing else changes, since a hook fills every NOT NULL column of
/// `nd_notification` as a notification does (its own id as its idempotency key) and needs no
/// `nd_idem` row.
const V3: &str = r#"
ALTER TABLE nd_notification ADD COLUMN hook_of uuid;
"#;

/// The claim that finished each notification (`claim.rs` FINISH): a write retried after its
/// COMMIT answer was lost knows its own outcome from one another host wrote meanwhile with the
/// same state and attempts (then its lease was lost), and a redelivery carries the claim count
/// on, so a stale write of the claim before it cannot pass the fence of the claim after it.
/// Operators' holds of endpoints (`pause.rs`), on every host and past restarts. Nullable
/// without a default: no rewrite, and outcomes of v3 carry no claim.
///
/// v3 hosts may go on running on it (a rolling upgrade): they name their columns, write the
/// new ones as NULL, never claim a parked row (its due time is past every real one), and
/// their outcomes carry no claim, which a v4 host's redelivery handles. A v3 redelivery names
/// no `lease_token`, so the column's default, the database clock in ms (metadata only, no
/// rewrite), keeps it from starting the claim count again at 0. While v3 hosts run, a hold
/// holds on the v4 hosts only, and a v3 host's own retried writes keep v3's weaker check.
const V4: &str = r#"
ALTER TABLE nd_outcome ADD COLUMN lease_owner int, ADD COLUMN lease_token bigint;
ALTER TABLE nd_endpoint ADD COLUMN held_at bigint;
ALTER TABLE nd_queue ALTER COLUMN lease_token SET DEFAULT nd_now();
"#;

/// Creates or upgrades the schema to [`VERSION`]; refuses a newer one.
pub(crate) async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    migrate_to(client, VERSION).await
}

/// [`migrate`], stopping at version `target` (tests build databases as older releases left them).
pub(crate) async fn migrate_to(client: &mut Client, target: i32) -> Result<(), StoreError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY])
        .await
        .map_err(|e| pg_err("taking the schema lock", e))?;
    let result = migrate_locked(client, target).await;
    // A session lock outlives a failed transaction: give it back either way.
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await
        .map_err(|e| pg_err("releasing the schema lock", e));
    result.and(unlocked.map(drop))
}

async fn migrate_locked(client: &mut Client, target: i32) -> Result<(), StoreError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS nd_schema (
               version int NOT NULL, min_compatible int NOT NULL,
               migrated_at timestamptz NOT NULL DEFAULT now())",
        )
        .await
        .map_err(|e| pg_err("creating nd_schema", e))?;
    let row = client
        .query_opt(
            "SELECT version, min_compatible FROM nd_schema ORDER BY version DESC LIMIT 1",
            &[],
        )
        .await
        .map_err(|e| pg_err("reading nd_schema", e))?;
    let (mut version, min_compatible) = row.map_or((0, 0), |r| (r.get(0), r.get(1)));
    if min_compatible > VERSION {
        return Err(StoreError::Open(format!(
            "the database schema is version {version}, which needs a release that understands \
             version {min_compatible}; this one understands up to {VERSION}"
        )));
    }
    while version < target.min(VERSION) {
        let next = version + 1;
        let step = usize::try_from(version).map_err(|_| {
            StoreError::Corrupt(format!("nd_schema holds a negative version {version}"))
        })?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| pg_err("starting a migration", e))?;
        let (migration, min_compatible) = MIGRATIONS[step];
        tx.batch_execute(migration)
            .await
            .map_err(|e| pg_err(&format!("migrating the schema to version {next}"), e))?;
        tx.execute(
            "INSERT INTO nd_schema (version, min_compatible) VALUES ($1, $2)",
            &[&next, &min_compatible],
        )
        .await
        .map_err(|e| pg_err("recording the schema version", e))?;
        tx.commit()
            .await
            .map_err(|e| pg_err(&format!("committing schema version {next}"), e))?;
        version = next;
    }
    Ok(())
}
