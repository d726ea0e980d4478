//! Shared payload fixtures for the benchmarks, and the `notifyd-load` load driver.
#![forbid(unsafe_code)]

pub mod load;
