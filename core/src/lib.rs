//! # notifyd-core
//!
//! The protocol core of notifyd, without I/O. It knows the payment-notification protocol
//! (`../shared/spec/PROTOCOL.md`) and answers questions about bytes and values:
//!
//! - is this notification valid, and what are its canonical bytes? ([`envelope`], [`model`], [`encode`])
//! - is it new, a repeat, or an inconsistent repeat? ([`idempotency`])
//! - what does the receiver's answer mean: done, give up, retry, slow down? ([`ack`])
//! - how long until the next attempt? ([`backoff`])
//! - which attempt goes next, and what follows its answer? ([`scheduler`])
//! - what are the `Signature` header and the string to sign? ([`signing`])
//!
//! There is no tokio, no socket and no clock here: time comes in as [`time::UnixMillis`] and
//! randomness (jitter, ids) as arguments. The daemon owns I/O; the C library wraps this crate.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod ack;
pub mod api;
pub mod backoff;
pub mod encode;
pub mod envelope;
pub mod error;
pub mod id;
pub mod idempotency;
pub mod model;
pub mod scheduler;
pub mod signing;
pub mod time;
mod url_check;

pub use api::Api;
pub use envelope::Envelope;
pub use error::ValidationError;
pub use id::NotificationId;
pub use model::Notification;
pub use time::UnixMillis;
pub use url_check::check_url;
