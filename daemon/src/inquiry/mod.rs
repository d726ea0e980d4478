//! `inquiryPayment` (CONTRACT.md §2, §2.2): answered from what notifyd holds, on the ingest
//! listener for operators and, with `[inquiry] listen`, on a listener of its own for merchants,
//! who authenticate the protocol's way (request signature) and get signed answers.

mod held;
pub mod listener;
mod settings;

pub use held::{Scope, answer};
pub use settings::{InquirySettings, Merchant};
