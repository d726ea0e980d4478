//! The `notifyd` binary: parses the command line, resolves the configuration and runs what was asked.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

use std::process::ExitCode;

use notifyd::cli::{self, EX_UNAVAILABLE, Environment, Invocation, RunArgs};
use notifyd::config::{Config, LogFormat};

fn main() -> ExitCode {
    let env = Environment::from_process();
    match cli::invocation(std::env::args_os(), &env) {
        Invocation::Run(config, args) => run(*config, args, env),
        Invocation::MockMerchant { listen, respond } => cli::mock_merchant(listen, respond),
        Invocation::Exit(code) => code,
    }
}

/// Runs the daemon with a validated configuration until SIGTERM or SIGINT.
fn run(config: Config, args: RunArgs, env: Environment) -> ExitCode {
    init_logging(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "Could not start the async runtime.");
            return ExitCode::from(EX_UNAVAILABLE);
        }
    };
    let reload = move || {
        cli::resolve(&args, &env).map_err(|problems| {
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        })
    };
    match runtime.block_on(notifyd::run::serve_until_signal(config, reload)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "notifyd could not start.");
            ExitCode::from(EX_UNAVAILABLE)
        }
    }
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
