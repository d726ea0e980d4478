//! Shared payload fixtures for the benchmarks.
#![forbid(unsafe_code)]
