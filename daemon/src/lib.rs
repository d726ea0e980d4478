//! notifyd's daemon library: the modules the `notifyd` binary is built from.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod store;
