//! notifyd: durable, sharded dispatcher of payment notifications. The `notifyd` binary is a thin shell
//! over this library so integration tests and benchmarks can embed its parts.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod cli;
pub mod config;
pub mod mock_merchant;
