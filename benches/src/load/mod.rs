//! `notifyd-load`: the load driver of issue 7. One subcommand per scenario ([`Scenario`](crate::load::cli::Scenario)); each starts
//! notifyd (or targets a running one), an in-process receiver, drives ingest, waits for the deliveries and
//! measures a bare-client ceiling in the same run. Usage and recorded figures: benches/LOAD.md.

pub mod ceiling;
pub mod cli;
pub mod daemon;
pub mod http;
pub mod ingest;
pub mod nginx;
pub mod payload;
mod probe;
pub mod receiver;
pub mod report;
mod scenario;

pub use scenario::run;
