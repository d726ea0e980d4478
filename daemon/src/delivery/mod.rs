//! Delivery: sharded worker pools that send each accepted notification until the receiver
//! answers for good or the retry policy runs out.
//!
//! Endpoints (`host:port`) are hashed to shards. A shard is one task that owns its endpoints
//! outright: it drives core's sans-IO [`notifyd_core::scheduler::Scheduler`] (queues,
//! per-payment order, timers, endpoint limits, pauses and holds), so shards share no scheduling
//! state. What they do share: the profile registry (the one in the daemon, held by the
//! dispatcher and read by ingest through it), read (a shared read lock) before each attempt so a
//! reload applies to retries, and the store. Attempts run as their own tasks
//! (bounded per endpoint and per shard) and report back to their shard over its channel.
//!
//! - `job.rs`: a notification as delivery takes it, and what an attempt sends.
//! - `shard.rs`: the shard loop (drives the scheduler, writes its decisions).
//! - `report.rs`: what attempts and shards report back (with the guard for a panicked attempt).
//! - `interner.rs`: one shared copy of each URL.
//! - `attempt.rs`: one attempt: request, answer, classification; and the store write.
//! - `dead_letter.rs`: the hook that tells an operator's URL of a `dead` or `failed` end.
//! - `client.rs`: a profile's pooled HTTP(S) client.
//! - `proxy.rs`: its connector, direct or through the profile's CONNECT proxy.
//! - `transport.rs`: why an attempt got no answer, typed by whose fault it is.
//! - `tls.rs`: a profile's TLS trust and client certificate.
//! - `peer_keys.rs`: a profile's receiver public keys, by `keyVersion`.
//! - `guard.rs`: the SSRF guard (which addresses a profile may reach).
//! - `lease_term.rs`: how long this host's claims on a shared store last, and whether an
//!   attempt may still start under one.
//! - `dispatcher.rs`: the handle the rest of the daemon uses.

mod ack_ratio;
mod attempt;
mod attempt_log;
pub(crate) mod claimer;
mod client;
mod dead_letter;
mod dispatcher;
pub mod guard;
mod interner;
mod job;
pub(crate) mod lease_term;
mod peer_keys;
mod proxy;
mod report;
mod shard;
pub mod tls;
mod transport;

pub use client::{HttpClient, PoolOptions};
pub use dispatcher::{Dispatcher, DispatcherOptions};
pub use job::{Job, Payload};
pub use peer_keys::PeerKeys;
pub use report::EndpointView;
pub use transport::{Fault, TransportError, TransportKind};
