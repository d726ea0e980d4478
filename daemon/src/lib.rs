//! notifyd: durable, sharded dispatcher of payment notifications. The `notifyd` binary is a thin shell
//! over this library so integration tests and benchmarks can embed its parts.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod app;
pub mod backoff;
pub mod cli;
pub mod clock;
pub mod config;
pub mod ctl;
pub mod delivery;
pub mod exporter;
pub mod ingest;
pub mod inquiry;
pub mod inspect;
pub mod metrics;
pub mod mock_merchant;
pub mod profile;
pub mod run;
pub mod start_error;
pub mod status;
pub mod store;
pub mod systemd;
pub mod test_pg;
pub mod text;
