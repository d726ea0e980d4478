//! Leases: claims, renewals, releases, and the fenced outcome writes.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use notifyd_core::NotificationId;
use tokio_postgres::Client;
use uuid::Uuid;

use super::connect::pooled;
use super::lane::{Batch, BatchFuture};
use super::read::by_ids;
use super::{Shared, millis, pg_err, text, uid};
use crate::store::{Applied, AttemptEntry, AttemptUpdate, Lease, NotificationRecord, StoreError};

/// Due rows that head their payment (no pending row of the same payment has a smaller `seq`,
/// POSTGRES.md §4), skipping rows another host is claiming right now. MATERIALIZED and
/// `ANY(ARRAY(..))` keep the LIMIT a limit and the update a primary-key probe (§3).
///
/// Not the rows of an endpoint an operator holds (`pause.rs`), nor of one this host holds
/// (`$4`: held by its own answers about our side): claimed, they would only sit in the shards,
/// and enough of them would fill every host's local backlog, so that no host claimed any other
/// merchant's due work until the resume. With no hold anywhere the first test is true once per
/// statement and nothing more is read; with one, each candidate costs a primary-key probe of
/// `nd_notification`.
const CLAIM: &str = "
WITH held AS MATERIALIZED (SELECT endpoint FROM nd_endpoint WHERE held_at IS NOT NULL
                           UNION ALL SELECT unnest($4::text[])),
cand AS MATERIALIZED (
  SELECT q.id FROM nd_queue q
  WHERE q.due_at <= nd_now()
    AND NOT EXISTS (SELECT 1 FROM nd_queue p WHERE p.order_hash = q.order_hash AND p.seq < q.seq)
    AND (NOT EXISTS (SELECT 1 FROM held)
         OR NOT EXISTS (SELECT 1 FROM nd_notification n
                        JOIN held h ON h.endpoint = split_part(n.order_key, '|', 1)
                        WHERE n.id = q.id))
  ORDER BY q.due_at LIMIT $1 FOR UPDATE OF q SKIP LOCKED)
UPDATE nd_queue q SET due_at = nd_now() + $2, lease_owner = $3, lease_token = q.lease_token + 1
WHERE q.id = ANY (ARRAY(SELECT id FROM cand))
RETURNING q.id, q.lease_token";

/// Claims up to `max` due notifications for this host, none to the endpoints in `held`.
pub(super) async fn claim(
    shared: &Shared,
    max: usize,
    held: &[String],
) -> Result<Vec<(NotificationRecord, Lease)>, StoreError> {
    if max == 0 {
        return Ok(Vec::new());
    }
    let client = pooled(&shared.pool).await?;
    let limit = i64::try_from(max).unwrap_or(i64::MAX);
    let rows = client
        .query(
            CLAIM,
            &[&limit, &shared.lease_millis(), &shared.owner(), &held],
        )
        .await
        .map_err(|e| pg_err("claiming due notifications", e))?;
    drop(client);
    let tokens: HashMap<Uuid, i64> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let ids: Vec<Uuid> = tokens.keys().copied().collect();
    let records = by_ids(shared, &ids).await?;
    Ok(records
        .into_iter()
        .filter_map(|r| {
            let token = *tokens.get(&uid(r.id))?;
            let lease = Lease {
                owner: shared.host,
                token: u64::try_from(token).ok()?,
            };
            Some((r, lease))
        })
        .collect())
}

/// Extends every lease in one statement; answers the ids no longer held under that lease.
pub(super) async fn renew(
    shared: &Shared,
    leases: Vec<(NotificationId, Lease)>,
) -> Result<Vec<NotificationId>, StoreError> {
    if leases.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = leases.iter().map(|(id, _)| uid(*id)).collect();
    let client = pooled(&shared.pool).await?;
    // By id and owner only: an unnest join on (id, token) can plan as a nested loop over both
    // arrays (POSTGRES.md §3). The tokens are compared here instead.
    let held: HashMap<Uuid, i64> = client
        .query(
            "UPDATE nd_queue SET due_at = greatest(due_at, nd_now() + $1)
             WHERE id = ANY($2) AND lease_owner = $3 RETURNING id, lease_token",
            &[&shared.lease_millis(), &ids, &shared.owner()],
        )
        .await
        .map_err(|e| pg_err("renewing leases", e))?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    Ok(leases
        .into_iter()
        .filter(|(id, lease)| held.get(&uid(*id)).copied() != i64::try_from(lease.token).ok())
        .map(|(id, _)| id)
        .collect())
}

/// Gives leases back: due again at their own schedule, claimable by any host at once.
pub(super) async fn release(
    shared: &Shared,
    leases: Vec<(NotificationId, Lease)>,
) -> Result<(), StoreError> {
    if leases.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = leases.iter().map(|(id, _)| uid(*id)).collect();
    let tokens: Vec<i64> = leases.iter().map(|(_, l)| token(l)).collect();
    let client = pooled(&shared.pool).await?;
    client
        .execute(
            "UPDATE nd_queue q SET lease_owner = NULL,
                    due_at = least(coalesce(q.next_attempt_at, nd_now()), nd_now())
             FROM unnest($1::uuid[], $2::int8[]) AS u(id, token)
             WHERE q.id = u.id AND q.lease_owner = $3 AND q.lease_token = u.token",
            &[&ids, &tokens, &shared.owner()],
        )
        .await
        .map_err(|e| pg_err("releasing leases", e))?;
    Ok(())
}

/// Gives back everything this host holds (at shutdown), due at its own schedule, so other
/// hosts take it at once instead of after the lease.
pub(super) async fn release_all(shared: &Shared) -> Result<u64, StoreError> {
    let client = pooled(&shared.pool).await?;
    client
        .execute(
            "UPDATE nd_queue SET lease_owner = NULL,
                    due_at = least(coalesce(next_attempt_at, nd_now()), nd_now())
             WHERE lease_owner = $1",
            &[&shared.owner()],
        )
        .await
        .map_err(|e| pg_err("releasing this host's leases", e))
}

fn token(lease: &Lease) -> i64 {
    i64::try_from(lease.token).unwrap_or(-1)
}

/// A retry keeps the row leased to this host, which schedules the retry itself; the lease runs
/// at least until the retry is due, so no other host takes it meanwhile.
/// The receiver's ids are replaced only when the answer named either (`named`), as on the
/// embedded store.
const RETRY: &str = "
UPDATE nd_queue q SET attempts = u.attempts, last_result = u.last_result,
       next_attempt_at = u.next_at, due_at = greatest(u.next_at, nd_now() + $6),
       acquirer_id = CASE WHEN u.named THEN u.acquirer_id ELSE q.acquirer_id END,
       psp_id = CASE WHEN u.named THEN u.psp_id ELSE q.psp_id END
FROM unnest($1::uuid[], $2::int8[], $3::int4[], $4::text[], $5::int8[], $8::bool[], $9::text[],
            $10::text[])
  AS u(id, token, attempts, last_result, next_at, named, acquirer_id, psp_id)
WHERE q.id = u.id AND q.lease_owner = $7 AND q.lease_token = u.token
RETURNING q.id";

/// A finished notification leaves the hot table and gains its outcome row in one statement, for
/// the rows whose lease is still this one only.
const FINISH: &str = "
WITH u AS (SELECT * FROM unnest($1::uuid[], $2::int8[], $3::int4[], $4::text[], $5::int8[],
                                $6::int2[], $8::bool[], $9::text[], $10::text[])
             AS u(id, token, attempts, last_result, finished_at, state, named, acquirer_id,
                  psp_id)),
gone AS (DELETE FROM nd_queue q USING u
         WHERE q.id = u.id AND q.lease_owner = $7 AND q.lease_token = u.token
         RETURNING q.id, q.acquirer_id, q.psp_id)
INSERT INTO nd_outcome (id, state, attempts, last_result, finished_at, acquirer_id, psp_id,
                        lease_owner, lease_token)
SELECT u.id, u.state, u.attempts, u.last_result, u.finished_at,
       CASE WHEN u.named THEN u.acquirer_id ELSE gone.acquirer_id END,
       CASE WHEN u.named THEN u.psp_id ELSE gone.psp_id END,
       $7, u.token
FROM u JOIN gone USING (id)
ON CONFLICT (id) DO NOTHING
RETURNING id";

/// Finished outcomes these very updates stored: written under their claim (owner and token),
/// not only alike. Another host that took the claim over may have stored the same state and
/// attempts (both delivered at their first attempt): that is a lost lease here.
const LANDED: &str = "
SELECT o.id FROM nd_outcome o
JOIN unnest($1::uuid[], $2::int8[], $3::int2[], $4::int4[]) AS u(id, token, state, attempts)
  USING (id)
WHERE o.lease_owner = $5 AND o.lease_token = u.token
  AND o.state = u.state AND o.attempts = u.attempts";

pub(super) struct Outcomes(pub(super) Arc<Shared>);

/// An attempt's outcome with the attempt log entries and dead-letter hooks written with it
/// (none from [`Store::update`](crate::store::Store::update)).
pub(super) struct Outcome {
    pub(super) update: AttemptUpdate,
    pub(super) log: Vec<AttemptEntry>,
    pub(super) hooks: Vec<NotificationRecord>,
}

impl Outcome {
    /// Pairs each log entry and hook with its notification's update; one without an update has
    /// no lease to fence its write by, and is dropped.
    pub(super) fn pair(
        updates: Vec<AttemptUpdate>,
        log: Vec<AttemptEntry>,
        hooks: Vec<NotificationRecord>,
    ) -> Vec<Outcome> {
        let mut out: Vec<Outcome> = updates
            .into_iter()
            .map(|update| Outcome {
                update,
                log: Vec::new(),
                hooks: Vec::new(),
            })
            .collect();
        for entry in log {
            if let Some(o) = out.iter_mut().find(|o| o.update.id == entry.id) {
                o.log.push(entry);
            }
        }
        for hook in hooks {
            if let Some(o) = out.iter_mut().find(|o| Some(o.update.id) == hook.hook_of) {
                o.hooks.push(hook);
            }
        }
        out
    }
}

impl Batch<Outcome, Applied> for Outcomes {
    fn run<'a>(&'a self, client: &'a mut Client, items: Vec<Outcome>) -> BatchFuture<'a, Applied> {
        Box::pin(outcomes(&self.0, client, items))
    }
}

async fn outcomes(
    shared: &Shared,
    client: &mut Client,
    items: Vec<Outcome>,
) -> Result<Vec<Applied>, StoreError> {
    let updates: Vec<&AttemptUpdate> = items.iter().map(|o| &o.update).collect();
    let (finished, retries): (Vec<&AttemptUpdate>, Vec<&AttemptUpdate>) =
        updates.iter().copied().partition(|u| u.state.is_finished());
    let tx = client
        .transaction()
        .await
        .map_err(|e| pg_err("starting an outcome transaction", e))?;
    let mut applied: HashSet<Uuid> = HashSet::with_capacity(updates.len());
    if !retries.is_empty() {
        let columns = Columns::of(&retries);
        let next: Vec<i64> = retries
            .iter()
            .map(|u| u.next_attempt_at.map_or(0, millis))
            .collect();
        let rows = tx
            .query(
                RETRY,
                &[
                    &columns.ids,
                    &columns.tokens,
                    &columns.attempts,
                    &columns.results,
                    &next,
                    &shared.lease_millis(),
                    &shared.owner(),
                    &columns.named,
                    &columns.acquirers,
                    &columns.psps,
                ],
            )
            .await
            .map_err(|e| pg_err("recording retries", e))?;
        applied.extend(rows.iter().map(|r| r.get::<_, Uuid>(0)));
    }
    if !finished.is_empty() {
        let columns = Columns::of(&finished);
        let at: Vec<i64> = finished
            .iter()
            .map(|u| u.finished_at.map_or(0, millis))
            .collect();
        let states: Vec<i16> = finished.iter().map(|u| i16::from(u.state.tag())).collect();
        let rows = tx
            .query(
                FINISH,
                &[
                    &columns.ids,
                    &columns.tokens,
                    &columns.attempts,
                    &columns.results,
                    &at,
                    &states,
                    &shared.owner(),
                    &columns.named,
                    &columns.acquirers,
                    &columns.psps,
                ],
            )
            .await
            .map_err(|e| pg_err("recording finished notifications", e))?;
        let ended: HashSet<Uuid> = rows.iter().map(|r| r.get::<_, Uuid>(0)).collect();
        // Only a write that moved its notification from the queue to a dead end stores its
        // hooks: a repeated final write (moved nothing) or a lost lease stores none.
        let hooks: Vec<&NotificationRecord> = items
            .iter()
            .filter(|o| o.update.state.is_dead_letter() && ended.contains(&uid(o.update.id)))
            .flat_map(|o| &o.hooks)
            .collect();
        super::hooks::insert(shared, &tx, &hooks).await?;
        applied.extend(ended);
    }
    // Fenced like the outcomes: a host that lost the lease writes no log entry either.
    let mut log_ids: Vec<Uuid> = Vec::new();
    let mut log_entries: Vec<Vec<u8>> = Vec::new();
    for o in &items {
        if !applied.contains(&uid(o.update.id)) {
            continue;
        }
        for e in &o.log {
            let mut bytes = Vec::new();
            e.encode(&mut bytes);
            log_ids.push(uid(o.update.id));
            log_entries.push(bytes);
        }
    }
    if !log_ids.is_empty() {
        let applied_ids: Vec<Uuid> = applied.iter().copied().collect();
        tx.execute(
            super::operator::APPEND_LOG,
            &[
                &log_ids,
                &log_entries,
                &applied_ids,
                &super::operator::max_entries(),
            ],
        )
        .await
        .map_err(|e| pg_err("appending to attempt logs", e))?;
    }
    tx.commit()
        .await
        .map_err(|e| pg_err("committing attempt outcomes", e))?;
    // A finished one not matched may be this very outcome, committed by an earlier try whose
    // answer was lost (the connection dropped, the server restarted mid-COMMIT): stored as
    // this update says, it is done, not a lease lost.
    let unmatched: Vec<&AttemptUpdate> = finished
        .iter()
        .copied()
        .filter(|u| !applied.contains(&uid(u.id)))
        .collect();
    if !unmatched.is_empty() {
        let ids: Vec<Uuid> = unmatched.iter().map(|u| uid(u.id)).collect();
        let tokens: Vec<i64> = unmatched.iter().map(|u| token(&u.lease)).collect();
        let states: Vec<i16> = unmatched.iter().map(|u| i16::from(u.state.tag())).collect();
        let attempts: Vec<i32> = unmatched
            .iter()
            .map(|u| i32::try_from(u.attempts).unwrap_or(i32::MAX))
            .collect();
        let rows = client
            .query(
                LANDED,
                &[&ids, &tokens, &states, &attempts, &shared.owner()],
            )
            .await
            .map_err(|e| pg_err("reading outcomes an earlier try may have written", e))?;
        applied.extend(rows.iter().map(|r| r.get::<_, Uuid>(0)));
    }
    // Not matched: the row is held under another lease, or already finished by the host that
    // took it over. Either way this host must forget it.
    Ok(updates
        .iter()
        .map(|u| {
            if applied.contains(&uid(u.id)) {
                Applied::Done
            } else {
                Applied::LeaseLost
            }
        })
        .collect())
}

struct Columns<'a> {
    ids: Vec<Uuid>,
    tokens: Vec<i64>,
    attempts: Vec<i32>,
    results: Vec<Option<Cow<'a, str>>>,
    /// Whether the answer named the receiver's ids (then they replace the stored ones).
    named: Vec<bool>,
    acquirers: Vec<Option<Cow<'a, str>>>,
    psps: Vec<Option<Cow<'a, str>>>,
}

impl<'a> Columns<'a> {
    fn of(updates: &[&'a AttemptUpdate]) -> Self {
        Columns {
            ids: updates.iter().map(|u| uid(u.id)).collect(),
            tokens: updates.iter().map(|u| token(&u.lease)).collect(),
            attempts: updates
                .iter()
                .map(|u| i32::try_from(u.attempts).unwrap_or(i32::MAX))
                .collect(),
            results: updates
                .iter()
                .map(|u| u.last_result.as_deref().map(text))
                .collect(),
            named: updates.iter().map(|u| u.receiver_ids.is_some()).collect(),
            acquirers: updates
                .iter()
                .map(|u| u.receiver_ids.as_ref()?.acquirer_id.as_deref().map(text))
                .collect(),
            psps: updates
                .iter()
                .map(|u| u.receiver_ids.as_ref()?.psp_id.as_deref().map(text))
                .collect(),
        }
    }
}
