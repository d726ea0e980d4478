//! The operator's reads (CONTRACT.md §2.1): search and the attempt log, answering as the embedded
//! store does (`store/search.rs`, `store/attempts.rs`).

use notifyd_core::NotificationId;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::connect::pooled;
use super::read::{record_sql, records};
use super::{Shared, pg_err, uid};
use crate::store::attempts::MAX_ENTRIES;
use crate::store::search::MAX_LIMIT;
use crate::store::{AttemptEntry, SearchFilter, SearchPage, State, StoreError};

/// Records without their bodies: a search never shows one.
const SEARCH: &str = record_sql!("''::bytea");

/// Notifications matching every filter given, newest first (by id, which is time-ordered), with
/// the cursor of the next page. Each filter has an index ordered by id after its key (schema.rs),
/// so a page is an index walk of about `limit` rows whichever filter leads.
pub(super) async fn search(shared: &Shared, f: &SearchFilter) -> Result<SearchPage, StoreError> {
    let limit = f.limit.clamp(1, MAX_LIMIT);
    let mut w = Where::default();
    if let Some(p) = &f.payment_id {
        w.bind("n.payment_id = ?", Box::new(p.clone()));
    }
    if let Some(p) = &f.payment_request_id {
        w.bind("n.payment_request_id = ?", Box::new(p.clone()));
    }
    if let Some(p) = &f.partner_id {
        w.bind("n.partner_id = ?", Box::new(p.clone()));
    }
    if let Some(e) = &f.endpoint {
        // The expression of index nd_notification_endpoint, and of `search::endpoint_of`.
        w.bind("split_part(n.order_key, '|', 1) = ?", Box::new(e.clone()));
    }
    match f.state {
        None => {}
        Some(State::Pending) => w.conds.push("q.id IS NOT NULL".into()),
        Some(s) => w.bind("o.state = ?", Box::new(i16::from(s.tag()))),
    }
    // The id time prefix (48 bits of milliseconds), as the embedded store reads it: `since` is
    // the first id of its millisecond, `until` the last.
    const MS: u64 = 0xFFFF_FFFF_FFFF;
    if let Some(t) = f.since {
        let low = u128::from(t.0.min(MS)) << 80;
        w.bind("n.id >= ?", Box::new(Uuid::from_u128(low)));
    }
    let mut upper: Option<u128> = match f.until {
        Some(t) if t.0 < MS => Some(u128::from(t.0 + 1) << 80),
        _ => None,
    };
    if let Some(b) = f.before {
        upper = Some(upper.map_or(b.as_u128(), |u| u.min(b.as_u128())));
    }
    if let Some(u) = upper {
        w.bind("n.id < ?", Box::new(Uuid::from_u128(u)));
    }
    let Where { conds, mut params } = w;
    // One more than the page, to know whether there is a next one.
    let fetch = i64::try_from(limit + 1).unwrap_or(i64::MAX);
    params.push(Box::new(fetch));
    let sql = format!(
        "{SEARCH} {} {} ORDER BY n.id DESC LIMIT ${}",
        if conds.is_empty() { "" } else { "WHERE" },
        conds.join(" AND "),
        params.len()
    );
    let refs: Vec<&(dyn ToSql + Sync)> =
        params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect();
    let mut found = records(shared, "searching notifications", &sql, &refs).await?;
    let next = if found.len() > limit {
        found.truncate(limit);
        found.last().map(|r| r.id)
    } else {
        None
    };
    Ok(SearchPage {
        records: found,
        next,
    })
}

/// A search's conditions and the values they bind, numbered as they come.
#[derive(Default)]
struct Where {
    conds: Vec<String>,
    params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Where {
    /// Adds `cond`, its `?` standing for `value`.
    fn bind(&mut self, cond: &str, value: Box<dyn ToSql + Sync + Send>) {
        self.params.push(value);
        let n = self.params.len();
        self.conds.push(cond.replace('?', &format!("${n}")));
    }
}

/// A notification's last attempts, oldest first.
pub(super) async fn attempt_log(
    shared: &Shared,
    id: NotificationId,
) -> Result<Vec<AttemptEntry>, StoreError> {
    let client = pooled(&shared.pool).await?;
    let row = client
        .query_opt("SELECT entries FROM nd_attempt WHERE id = $1", &[&uid(id)])
        .await
        .map_err(|e| pg_err("reading an attempt log", e))?;
    let Some(row) = row else {
        return Ok(Vec::new());
    };
    row.get::<_, Vec<Vec<u8>>>(0)
        .iter()
        .map(|e| AttemptEntry::decode(id, e))
        .collect()
}

/// Appends the attempt log entries of the outcomes just applied, keeping the last
/// [`MAX_ENTRIES`] of each notification; entries of the same notification in one batch keep
/// their order. Run in the outcome's transaction.
pub(super) const APPEND_LOG: &str = "
INSERT INTO nd_attempt AS a (id, entries)
SELECT id, array_agg(entry ORDER BY ord) FROM unnest($1::uuid[], $2::bytea[])
  WITH ORDINALITY AS u(id, entry, ord)
WHERE id = ANY($3) GROUP BY id
ON CONFLICT (id) DO UPDATE SET entries = (a.entries || excluded.entries)
  [greatest(1, cardinality(a.entries) + cardinality(excluded.entries) - $4 + 1):]";

/// The bound of [`APPEND_LOG`]'s `$4`.
pub(super) fn max_entries() -> i32 {
    i32::try_from(MAX_ENTRIES).unwrap_or(i32::MAX)
}
