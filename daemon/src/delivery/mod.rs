//! Delivery: sharded worker pools that send each accepted notification until the receiver
//! answers for good or the retry policy runs out.
//!
//! Endpoints (`host:port`) are hashed to shards. A shard is one task that owns its endpoints'
//! queues, per-payment order and retry timers outright, so nothing on the hot path takes a global
//! lock. Attempts run as their own tasks (bounded per endpoint and in total) and report back to
//! their shard over its channel.
//!
//! - `job.rs`: what a shard holds per notification.
//! - `shard.rs`: the shard loop (timers, queues, order, throttling).
//! - `endpoint.rs`: per-endpoint concurrency and throttle state.
//! - `order.rs`: per-payment order (one notification of a payment at a time).
//! - `interner.rs`: one shared copy of each URL and endpoint name.
//! - `attempt.rs`: one attempt: request, answer, classification, durable state change.
//! - `client.rs`: a profile's pooled HTTP(S) client.
//! - `tls.rs`: a profile's TLS trust and client certificate.
//! - `guard.rs`: the SSRF guard (which addresses a profile may reach).
//! - `dispatcher.rs`: the handle the rest of the daemon uses.

mod attempt;
mod client;
mod dispatcher;
mod endpoint;
pub mod guard;
mod interner;
mod job;
mod order;
mod shard;
pub mod tls;

pub use client::{HttpClient, PoolOptions};
pub use dispatcher::{Dispatcher, DispatcherOptions};
pub use job::Job;
