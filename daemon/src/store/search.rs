//! Operator search (`GET /v1/notifications?...`, `POST /v1/redeliver`): the indexes it needs and
//! the query that walks them.
//!
//! | table | key → value | why |
//! |---|---|---|
//! | `by_partner_id` | (partnerId, id) → () | filter by partner |
//! | `by_endpoint` | (host:port, id) → () | filter by endpoint |
//! | `by_state` | (state, id) → () | filter by state; rewritten only when the state changes |
//!
//! with `by_payment_id` and `by_payment_request_id` (tables.rs) and the `notifications` table
//! itself, whose keys are the ids: ids are time-ordered (ULID), so "newest first", the cursor and
//! `since`/`until` are all id ranges, and every index above is already in time order per key.
//!
//! A query intersects one sorted id stream per filter given, walking down from the cursor: each
//! stream is asked for its largest id below a bound (one B-tree seek), and the candidate drops to
//! the smallest answer until all agree (a leapfrog join). A page costs about `limit × filters`
//! seeks however many notifications the store holds and however rare the combination is, so
//! no filter combination turns into a table scan.

use notifyd_core::{NotificationId, UnixMillis};
use redb::{
    ReadOnlyTable, ReadTransaction, ReadableTable, ReadableTableMetadata, Table, TableDefinition,
    WriteTransaction,
};

use super::error::{StoreError, db};
use super::record::{NotificationRecord, State, decode_meta};
use super::tables::{BY_PAYMENT_ID, BY_PAYMENT_REQUEST_ID, NOTIFICATIONS};

pub(super) const BY_PARTNER_ID: TableDefinition<'_, (&str, u128), ()> =
    TableDefinition::new("by_partner_id");
pub(super) const BY_ENDPOINT: TableDefinition<'_, (&str, u128), ()> =
    TableDefinition::new("by_endpoint");
pub(super) const BY_STATE: TableDefinition<'_, (u8, u128), ()> = TableDefinition::new("by_state");

/// Largest page of one search.
pub const MAX_LIMIT: usize = 1000;

/// What to look for; every field given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchFilter {
    pub payment_id: Option<String>,
    pub payment_request_id: Option<String>,
    pub partner_id: Option<String>,
    pub state: Option<State>,
    /// `host:port`.
    pub endpoint: Option<String>,
    /// Accepted at or after (by the time in the id).
    pub since: Option<UnixMillis>,
    /// Accepted at or before (by the time in the id).
    pub until: Option<UnixMillis>,
    /// Only ids below this one (the previous page's cursor).
    pub before: Option<NotificationId>,
    /// Most records to return (1 to 1000, `MAX_LIMIT`).
    pub limit: usize,
}

/// One page of results, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchPage {
    /// Records without their bodies (a search never shows one).
    pub records: Vec<NotificationRecord>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<NotificationId>,
}

/// The endpoint (`host:port`) a record is delivered to: the order key's first part.
pub(super) fn endpoint_of(r: &NotificationRecord) -> &str {
    r.order_key.split('|').next().unwrap_or_default()
}

/// The state's key in `by_state` (fixed on disk; independent of record.rs's tags).
const fn state_key(s: State) -> u8 {
    match s {
        State::Pending => 1,
        State::Delivered => 2,
        State::Failed => 3,
        State::Dead => 4,
    }
}

/// The search indexes, open for writing.
pub(super) struct IndexTables<'txn> {
    partner: Table<'txn, (&'static str, u128), ()>,
    endpoint: Table<'txn, (&'static str, u128), ()>,
    state: Table<'txn, (u8, u128), ()>,
}

impl<'txn> IndexTables<'txn> {
    pub(super) fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        Ok(IndexTables {
            partner: txn.open_table(BY_PARTNER_ID).map_err(db)?,
            endpoint: txn.open_table(BY_ENDPOINT).map_err(db)?,
            state: txn.open_table(BY_STATE).map_err(db)?,
        })
    }

    pub(super) fn insert(&mut self, r: &NotificationRecord) -> Result<(), StoreError> {
        let id = r.id.as_u128();
        if let Some(p) = &r.partner_id {
            self.partner.insert((p.as_str(), id), ()).map_err(db)?;
        }
        self.endpoint.insert((endpoint_of(r), id), ()).map_err(db)?;
        self.state
            .insert((state_key(r.state), id), ())
            .map_err(db)?;
        Ok(())
    }

    pub(super) fn remove(&mut self, r: &NotificationRecord) -> Result<(), StoreError> {
        let id = r.id.as_u128();
        if let Some(p) = &r.partner_id {
            self.partner.remove((p.as_str(), id)).map_err(db)?;
        }
        self.endpoint.remove((endpoint_of(r), id)).map_err(db)?;
        self.state.remove((state_key(r.state), id)).map_err(db)?;
        Ok(())
    }

    /// An update: only a change of state touches the index, so a retry costs no index write.
    pub(super) fn moved(
        &mut self,
        old: &NotificationRecord,
        new: &NotificationRecord,
    ) -> Result<(), StoreError> {
        if old.state != new.state {
            let id = new.id.as_u128();
            self.state.remove((state_key(old.state), id)).map_err(db)?;
            self.state
                .insert((state_key(new.state), id), ())
                .map_err(db)?;
        }
        Ok(())
    }

    /// A record pruned while unreadable: its state entry is removed under every finished state.
    pub(super) fn remove_state_only(&mut self, id: u128) -> Result<(), StoreError> {
        for s in [State::Delivered, State::Failed, State::Dead] {
            self.state.remove((state_key(s), id)).map_err(db)?;
        }
        Ok(())
    }
}

/// Fills the search indexes from the records of a store written before they existed (once: an
/// empty `by_state` beside a non-empty `notifications`). Returns how many records it indexed.
pub(super) fn backfill(txn: &WriteTransaction) -> Result<u64, StoreError> {
    let mut idx = IndexTables::open(txn)?;
    if !idx.state.is_empty().map_err(db)? {
        return Ok(0);
    }
    let notifications = txn.open_table(NOTIFICATIONS).map_err(db)?;
    let mut n = 0;
    for entry in notifications.range::<u128>(..).map_err(db)? {
        let (k, v) = entry.map_err(db)?;
        let id = NotificationId::from_u128(k.value());
        // An unreadable record stays unindexed: it cannot be shown anyway.
        if let Ok(r) = decode_meta(id, v.value(), bytes::Bytes::new()) {
            idx.insert(&r)?;
            n += 1;
        }
    }
    Ok(n)
}

/// A sorted id set, asked for its largest member below a bound.
enum Stream {
    Ids(Vec<u128>),
    Str(ReadOnlyTable<(&'static str, u128), ()>, String),
    State(ReadOnlyTable<(u8, u128), ()>, u8),
    All(ReadOnlyTable<u128, &'static [u8]>),
}

impl Stream {
    /// The largest id `< upper`.
    fn below(&self, upper: u128) -> Result<Option<u128>, StoreError> {
        if upper == 0 {
            return Ok(None);
        }
        Ok(match self {
            Stream::Ids(ids) => {
                let i = ids.partition_point(|&x| x < upper);
                i.checked_sub(1).map(|i| ids[i])
            }
            Stream::Str(t, key) => t
                .range((key.as_str(), 0)..(key.as_str(), upper))
                .map_err(db)?
                .next_back()
                .transpose()
                .map_err(db)?
                .map(|(k, _)| k.value().1),
            Stream::State(t, key) => t
                .range((*key, 0)..(*key, upper))
                .map_err(db)?
                .next_back()
                .transpose()
                .map_err(db)?
                .map(|(k, _)| k.value().1),
            Stream::All(t) => t
                .range(..upper)
                .map_err(db)?
                .next_back()
                .transpose()
                .map_err(db)?
                .map(|(k, _)| k.value()),
        })
    }
}

fn multimap_ids(
    txn: &ReadTransaction,
    index: redb::MultimapTableDefinition<'_, &str, u128>,
    key: &str,
) -> Result<Vec<u128>, StoreError> {
    let table = txn.open_multimap_table(index).map_err(db)?;
    let mut ids = Vec::new();
    for id in table.get(key).map_err(db)? {
        ids.push(id.map_err(db)?.value());
    }
    // A multimap keeps a key's values sorted; sorting again costs nothing and guards the join.
    ids.sort_unstable();
    Ok(ids)
}

/// Runs a search on one read snapshot.
pub(super) fn run(txn: &ReadTransaction, f: &SearchFilter) -> Result<SearchPage, StoreError> {
    let limit = f.limit.clamp(1, MAX_LIMIT);
    let mut streams = Vec::new();
    if let Some(p) = &f.payment_id {
        streams.push(Stream::Ids(multimap_ids(txn, BY_PAYMENT_ID, p)?));
    }
    if let Some(p) = &f.payment_request_id {
        streams.push(Stream::Ids(multimap_ids(txn, BY_PAYMENT_REQUEST_ID, p)?));
    }
    if let Some(p) = &f.partner_id {
        streams.push(Stream::Str(
            txn.open_table(BY_PARTNER_ID).map_err(db)?,
            p.clone(),
        ));
    }
    if let Some(e) = &f.endpoint {
        streams.push(Stream::Str(
            txn.open_table(BY_ENDPOINT).map_err(db)?,
            e.clone(),
        ));
    }
    if let Some(s) = f.state {
        streams.push(Stream::State(
            txn.open_table(BY_STATE).map_err(db)?,
            state_key(s),
        ));
    }
    let notifications = txn.open_table(NOTIFICATIONS).map_err(db)?;
    if streams.is_empty() {
        streams.push(Stream::All(txn.open_table(NOTIFICATIONS).map_err(db)?));
    }
    // The id time prefix (48 bits of milliseconds): `since` is the first id of its millisecond,
    // `until` the last.
    const MS: u64 = 0xFFFF_FFFF_FFFF;
    let low = f.since.map_or(0, |t| u128::from(t.0.min(MS)) << 80);
    let mut upper = match f.until {
        Some(t) if t.0 < MS => u128::from(t.0 + 1) << 80,
        _ => u128::MAX,
    };
    if let Some(b) = f.before {
        upper = upper.min(b.as_u128());
    }
    let mut page = SearchPage::default();
    while let Some(id) = next_common(&streams, upper)? {
        if id < low {
            break;
        }
        upper = id;
        if page.records.len() == limit {
            page.next = page.records.last().map(|r| r.id);
            break;
        }
        let Some(meta) = notifications.get(id).map_err(db)? else {
            continue;
        };
        let r = decode_meta(
            NotificationId::from_u128(id),
            meta.value(),
            bytes::Bytes::new(),
        )?;
        // The multimaps may hold stale entries for records overwritten while corrupt.
        if f.payment_id
            .as_ref()
            .is_some_and(|p| r.payment_id.as_ref() != Some(p))
        {
            continue;
        }
        page.records.push(r);
    }
    Ok(page)
}

/// The largest id below `upper` that every stream holds.
fn next_common(streams: &[Stream], upper: u128) -> Result<Option<u128>, StoreError> {
    let Some(mut cand) = streams[0].below(upper)? else {
        return Ok(None);
    };
    loop {
        let mut agreed = true;
        for s in streams {
            let Some(got) = s.below(cand.saturating_add(1))? else {
                return Ok(None);
            };
            if got < cand {
                cand = got;
                agreed = false;
            }
        }
        if agreed {
            return Ok(Some(cand));
        }
    }
}
