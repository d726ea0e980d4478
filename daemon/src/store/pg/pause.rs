//! Throttle pauses shared by the hosts (CONTRACT.md §7, POSTGRES.md §4): the host that gets a
//! throttle answer records the endpoint's pause in `nd_endpoint`; every host's claimer reads the
//! active pauses once per claim cycle and hands them to its shards, which start no attempt to
//! the endpoint before the pause ends. The limit itself (AIMD) stays per host.
//!
//! Operators' holds live in the same table (`held_at`, schema v4): the host asked records the
//! hold, every host's claimer reads the holds in the same cycle and holds or resumes the
//! endpoint on its own shards, so a hold asked of one host holds on all of them, and a host
//! that starts later holds it before its first claim.
//!
//! Pauses travel as durations on the database's clock (`nd_now()`), not as the hosts' own
//! times, so a host whose clock is off still pauses for as long as the others.

use std::time::Duration;

use super::connect::pooled;
use super::{Shared, pg_err};
use crate::store::StoreError;

/// Extends the endpoint's pause to at least `pause` from now. When this starts a new pause
/// (none was running), the endpoint's due rows that no live lease holds are moved to its end
/// in the same statement, so no host claims them only to hold them: rare (once per pause, not
/// per throttle answer), and a walk of the pending rows only.
const PAUSE: &str = "
WITH before AS (SELECT paused_until FROM nd_endpoint WHERE endpoint = $1),
p AS (
  INSERT INTO nd_endpoint AS e (endpoint, paused_until, updated_by) VALUES ($1, nd_now() + $2, $3)
  ON CONFLICT (endpoint) DO UPDATE
    SET paused_until = greatest(e.paused_until, excluded.paused_until),
        updated_by = excluded.updated_by
  RETURNING paused_until)
UPDATE nd_queue q SET due_at = p.paused_until
FROM p, nd_notification n
WHERE NOT EXISTS (SELECT 1 FROM before WHERE before.paused_until > nd_now())
  AND n.id = q.id AND split_part(n.order_key, '|', 1) = $1
  AND q.due_at < p.paused_until AND (q.lease_owner IS NULL OR q.due_at <= nd_now())";

pub(super) async fn pause(
    shared: &Shared,
    endpoint: &str,
    pause: Duration,
) -> Result<(), StoreError> {
    let millis = i64::try_from(pause.as_millis()).unwrap_or(i64::MAX);
    let client = pooled(&shared.pool).await?;
    client
        .execute(PAUSE, &[&endpoint, &millis, &shared.owner()])
        .await
        .map_err(|e| pg_err("recording an endpoint's pause", e))?;
    Ok(())
}

/// The pauses running now, each with how long it has left.
pub(super) async fn paused(shared: &Shared) -> Result<Vec<(String, Duration)>, StoreError> {
    let client = pooled(&shared.pool).await?;
    let rows = client
        .query(
            "SELECT endpoint, paused_until - nd_now() FROM nd_endpoint
             WHERE paused_until > nd_now()",
            &[],
        )
        .await
        .map_err(|e| pg_err("reading endpoint pauses", e))?;
    Ok(rows
        .iter()
        .map(|r| {
            let left: i64 = r.get(1);
            (
                r.get(0),
                Duration::from_millis(u64::try_from(left).unwrap_or(0)),
            )
        })
        .collect())
}

/// The `due_at` of a row parked while its endpoint is held: after every real due time, so the
/// claims' walk in due order never reaches it (`claim.rs` skips held endpoints' rows, but each
/// one it walks past costs a probe: 53 ms per claim with 100 000 of them, benches row 9).
const PARKED: i64 = i64::MAX;

/// Records the hold (a row made only for it carries no pause: 0 is long past). The first
/// statement of the hold's transaction: it locks the endpoint's row until COMMIT, so a hold and
/// a resume of one endpoint, asked of two hosts at once, run one after the other.
const HOLD: &str = "
INSERT INTO nd_endpoint AS e (endpoint, paused_until, updated_by, held_at)
VALUES ($1, 0, $2, nd_now())
ON CONFLICT (endpoint) DO UPDATE
  SET held_at = coalesce(e.held_at, excluded.held_at), updated_by = excluded.updated_by";

/// Parks the endpoint's rows that no live lease holds: a walk of the pending rows, once per
/// hold. A row whose lease ran out is taken from its holder as a claim would take it (the owner
/// is cleared), so a host that was stalled cannot renew a parked row and hold it on, nor write
/// to it, while another host delivers it after the resume.
const PARK: &str = "
UPDATE nd_queue q SET due_at = $2, lease_owner = NULL
FROM nd_notification n
WHERE n.id = q.id AND split_part(n.order_key, '|', 1) = $1
  AND q.due_at < $2 AND (q.lease_owner IS NULL OR q.due_at <= nd_now())";

/// Ends the hold; answers the endpoint's pause end. First statement of the resume's
/// transaction, locking the row like [`HOLD`].
const RESUME: &str = "
UPDATE nd_endpoint SET held_at = NULL, updated_by = $2 WHERE endpoint = $1
RETURNING paused_until";

/// Makes the parked rows due again at their own next attempt, or when a pause still running
/// ends. Rows that became due while held (released, or their lease ran out) were never parked
/// and need nothing.
const UNPARK: &str = "
UPDATE nd_queue q SET due_at = greatest(coalesce(q.next_attempt_at, nd_now()), $3)
FROM nd_notification n
WHERE q.due_at = $2 AND n.id = q.id AND split_part(n.order_key, '|', 1) = $1";

/// Records an operator's hold of `endpoint` (since the database's now) or its end, parking or
/// unparking its rows in the same transaction. Two statements, not one: under READ COMMITTED
/// the second takes its snapshot after the first got the endpoint's row lock, so it sees every
/// row a hold committed just before parked (one statement would keep the snapshot it started
/// with, and a resume racing a hold on another host would leave that hold's rows parked).
pub(super) async fn set_hold(
    shared: &Shared,
    endpoint: &str,
    held: bool,
) -> Result<(), StoreError> {
    let mut client = pooled(&shared.pool).await?;
    let tx = client
        .transaction()
        .await
        .map_err(|e| pg_err("starting an operator's hold", e))?;
    if held {
        tx.execute(HOLD, &[&endpoint, &shared.owner()])
            .await
            .map_err(|e| pg_err("recording an operator's hold", e))?;
        tx.execute(PARK, &[&endpoint, &PARKED])
            .await
            .map_err(|e| pg_err("parking a held endpoint's notifications", e))?;
    } else {
        let paused_until: i64 = tx
            .query_opt(RESUME, &[&endpoint, &shared.owner()])
            .await
            .map_err(|e| pg_err("ending an operator's hold", e))?
            .map_or(0, |r| r.get(0));
        tx.execute(UNPARK, &[&endpoint, &PARKED, &paused_until])
            .await
            .map_err(|e| pg_err("unparking a resumed endpoint's notifications", e))?;
    }
    tx.commit()
        .await
        .map_err(|e| pg_err("committing an operator's hold", e))
}

/// The endpoints an operator holds (asked of any host).
pub(super) async fn holds(shared: &Shared) -> Result<Vec<String>, StoreError> {
    let client = pooled(&shared.pool).await?;
    let rows = client
        .query(
            "SELECT endpoint FROM nd_endpoint WHERE held_at IS NOT NULL",
            &[],
        )
        .await
        .map_err(|e| pg_err("reading operators' holds", e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
