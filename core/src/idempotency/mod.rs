//! Idempotency: is an ingested notification new, a repeat, or an inconsistent repeat?
//!
//! [`KeyHasher`] turns a notification's idempotency-key fields and key fields (CONTRACT.md §2) into
//! an [`IdempotencyKey`] and a [`Fingerprint`]; [`IdempotencyTable`] remembers them for a retention
//! window and answers [`Check`].

mod fields;
mod hash;
mod index;
mod table;

pub use hash::{Fingerprint, IdempotencyKey, KeyHasher};
pub use table::{Check, DEFAULT_SHARDS, IdempotencyTable};
