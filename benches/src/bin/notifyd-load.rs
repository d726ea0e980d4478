//! `notifyd-load`: drives notifyd with gateway traffic, counts deliveries at an in-process receiver and
//! compares them with a bare client's ceiling. Scenarios and flags: benches/LOAD.md.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = benches::load::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("notifyd-load: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(benches::load::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("notifyd-load: {e}");
            ExitCode::FAILURE
        }
    }
}
