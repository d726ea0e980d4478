//! The ingest API (CONTRACT.md §2) over HTTP/1.1, on TCP and on a Unix socket.
//!
//! - `server.rs`: listeners and connections.
//! - `routes.rs`: routing, auth, body limits.
//! - `accept.rs`: validate → dedupe → durable → S.
//! - `inflight.rs`: accept commits under way, which repeats wait for.
//! - `query.rs`: status, dead letters, redelivery, inquiryPayment.
//! - `endpoints.rs`: the operator's endpoint list, hold and resume.
//! - `search.rs`: the operator's search and bulk redeliver.
//! - `respond.rs`: the `result` answers.

pub mod accept;
pub mod endpoints;
pub mod inflight;
pub mod query;
pub mod respond;
pub mod routes;
pub mod search;
pub mod server;
