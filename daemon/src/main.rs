//! The `notifyd` binary: parses the command line, resolves the configuration and runs what was asked.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

use std::process::ExitCode;

use notifyd::cli::{self, EX_UNAVAILABLE, Environment, Invocation};
use notifyd::config::Config;

fn main() -> ExitCode {
    match cli::invocation(std::env::args_os(), &Environment::from_process()) {
        Invocation::Run(config) => run(*config),
        Invocation::MockMerchant { listen, respond } => cli::mock_merchant(listen, respond),
        Invocation::Exit(code) => code,
    }
}

/// Runs the daemon with a validated configuration until it is told to stop.
fn run(config: Config) -> ExitCode {
    eprintln!(
        "notifyd {}: configuration ok (ingest {}, metrics {}, store {}, {} profile(s)); \
         the daemon is not built yet",
        env!("CARGO_PKG_VERSION"),
        config.ingest.listen,
        config.metrics.listen,
        config.store.path.display(),
        config.profiles.len(),
    );
    ExitCode::from(EX_UNAVAILABLE)
}
