//! The embedded store's format number, so a release never opens a store laid out by a newer
//! one it does not understand.
//!
//! Table `format`: `"version"` → the layout the store was last opened with, `"min_reader"` →
//! the oldest layout whose releases may still open it. A release checks both before it creates
//! or migrates anything, so a refused store is left exactly as it was. Releases before this
//! table existed cannot check: they open any store (README, upgrading).
//!
//! Layouts: 1 is the idempotency log, search indexes, attempt log and operators' holds
//! (2026-12). A change that an older release would misread (a table it relies on moved or
//! dropped), or a new table derived from the records that its writes would leave stale (an
//! index: `search::backfill` builds one only when it is empty), raises both numbers; only a
//! table that nothing an older release writes can make wrong raises `version` alone.

use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};

use super::error::{StoreError, db};

const FORMAT: TableDefinition<'_, &str, u32> = TableDefinition::new("format");

/// The layout this release writes.
pub(super) const VERSION: u32 = 1;
/// The oldest layout whose releases may open a store this release wrote.
const MIN_READER: u32 = 1;

/// [`check_and_record`] for a read-only look (`notifyd inspect`): refuses, records nothing.
pub(super) fn check(txn: &ReadTransaction, path: &str) -> Result<(), StoreError> {
    let table = match txn.open_table(FORMAT) {
        Ok(table) => table,
        // Written by a release before this table, or never opened by one.
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(e) => return Err(db(e)),
    };
    let (version, min_reader) = numbers(&table)?;
    refuse_newer(path, version, min_reader)
}

/// The store's `version` and `min_reader`, each absent until a release with this table
/// recorded it.
fn numbers(
    table: &impl ReadableTable<&'static str, u32>,
) -> Result<(Option<u32>, Option<u32>), StoreError> {
    let read = |key: &str| -> Result<Option<u32>, StoreError> {
        Ok(table.get(key).map_err(db)?.map(|v| v.value()))
    };
    Ok((read("version")?, read("min_reader")?))
}

fn refuse_newer(
    path: &str,
    version: Option<u32>,
    min_reader: Option<u32>,
) -> Result<(), StoreError> {
    match min_reader.filter(|&m| m > VERSION) {
        Some(min_reader) => Err(StoreError::Open(format!(
            "{path}: the store was written by a newer notifyd (store format {}, readable by \
             format {min_reader} and later); this release reads format {VERSION}: run the newer \
             release, or restore a backup taken before it",
            version.unwrap_or(min_reader)
        ))),
        None => Ok(()),
    }
}

/// Refuses a store whose layout needs a newer release; otherwise records this release's layout
/// (keeping a newer, compatible store's numbers). Inside the opening transaction.
pub(super) fn check_and_record(txn: &WriteTransaction, path: &str) -> Result<(), StoreError> {
    let mut table = txn.open_table(FORMAT).map_err(db)?;
    let (version, min_reader) = numbers(&table)?;
    refuse_newer(path, version, min_reader)?;
    if version.is_none_or(|v| v < VERSION) {
        table.insert("version", VERSION).map_err(db)?;
        table.insert("min_reader", MIN_READER).map_err(db)?;
    }
    Ok(())
}

#[cfg(test)]
pub(super) fn write(txn: &WriteTransaction, version: u32, min_reader: u32) {
    let mut table = txn.open_table(FORMAT).unwrap();
    table.insert("version", version).unwrap();
    table.insert("min_reader", min_reader).unwrap();
}

#[cfg(test)]
pub(super) fn read(txn: &WriteTransaction) -> (Option<u32>, Option<u32>) {
    numbers(&txn.open_table(FORMAT).unwrap()).unwrap()
}
