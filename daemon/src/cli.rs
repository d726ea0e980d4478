//! The command line: `notifyd [run flags]`, `notifyd check-config FILE`, `notifyd mock-merchant`.
//!
//! Exit codes follow sysexits: 64 (`EX_USAGE`) for a bad command line or an invalid configuration;
//! a daemon that could not start says why with [`crate::start_error::StartError::exit_code`].

use std::ffi::OsString;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, Overrides, Problem};
use crate::mock_merchant::{self, Respond};

/// Bad command line or invalid configuration.
pub const EX_USAGE: u8 = 64;
/// A needed service is not available.
pub const EX_UNAVAILABLE: u8 = 69;
/// An internal error: a bug.
pub const EX_SOFTWARE: u8 = 70;
/// The operating system refused something (a socket could not be bound).
pub const EX_OSERR: u8 = 71;

/// notifyd: durable dispatcher of payment notifications.
#[derive(Debug, Parser)]
#[command(name = "notifyd", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// Flags of the daemon (when no subcommand is given).
    #[command(flatten)]
    pub run: RunArgs,
    /// A tool instead of the daemon.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Flags of the daemon; each overrides its key in the file.
#[derive(Debug, Clone, Default, Args)]
pub struct RunArgs {
    /// Configuration file (TOML). Default: $NOTIFYD_CONFIG, else built-in defaults.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Store directory (overrides store.path).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Ingest address (overrides ingest.listen).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Metrics address (overrides metrics.listen).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
}

/// Subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Validate a configuration file: print every problem with its key and exit 64, or print "ok".
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
    /// Run a receiver that answers notifications as told (for trying notifyd out and benchmarks).
    MockMerchant {
        /// Address to listen on.
        #[arg(long, value_name = "ADDR", default_value = mock_merchant::DEFAULT_LISTEN)]
        listen: SocketAddr,
        /// S, F, U, SYSTEM_ERROR, THROTTLE, 429, 500, GARBAGE, STALL, `SLOW:<duration>`, `FAIL_RATE:<p>`,
        /// or a comma-separated list answered in turn ("U,U,S").
        #[arg(long, value_name = "MODE", default_value = "S")]
        respond: Respond,
    },
    /// The operator's command line over the operator API (a running daemon).
    Ctl(crate::ctl::CtlArgs),
    /// Read a stopped daemon's embedded store: counts by state, oldest pending, one notification.
    Inspect(crate::inspect::InspectArgs),
}

/// What the process environment contributes, read once in `main`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    /// `$NOTIFYD_CONFIG`: the config file when `--config` is absent.
    pub notifyd_config: Option<PathBuf>,
    /// `$STATE_DIRECTORY` (systemd `StateDirectory=`): the default store directory.
    pub state_directory: Option<PathBuf>,
}

impl Environment {
    /// Reads the variables from this process's environment (empty values count as unset).
    pub fn from_process() -> Self {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Environment {
            notifyd_config: var("NOTIFYD_CONFIG"),
            state_directory: var("STATE_DIRECTORY"),
        }
    }
}

/// What `main` is asked to do, with everything resolved.
#[derive(Debug)]
pub enum Invocation {
    /// Run the daemon with this configuration; the flags are kept to resolve it again on SIGHUP.
    Run(Box<Config>, RunArgs),
    /// Leave with this code (the command line was bad, the config invalid, or a tool finished).
    Exit(ExitCode),
    /// Run the mock merchant.
    MockMerchant {
        /// Address to listen on.
        listen: SocketAddr,
        /// How to answer.
        respond: Respond,
    },
}

/// Parses `args` (the program name first) and resolves the configuration. Usage errors and invalid
/// configurations are reported on stderr here and come back as [`Invocation::Exit`].
pub fn invocation<I, T>(args: I, env: &Environment) -> Invocation
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EX_USAGE } else { 0 };
            // clap renders --help and --version on stdout, errors on stderr.
            let _ = e.print();
            return Invocation::Exit(ExitCode::from(code));
        }
    };
    match cli.command {
        Some(Command::CheckConfig { file }) => Invocation::Exit(check_config(&file)),
        Some(Command::MockMerchant { listen, respond }) => {
            Invocation::MockMerchant { listen, respond }
        }
        Some(Command::Ctl(args)) => Invocation::Exit(crate::ctl::main(args)),
        Some(Command::Inspect(args)) => Invocation::Exit(crate::inspect::main(args)),
        None => match resolve(&cli.run, env) {
            Ok(config) => Invocation::Run(Box::new(config), cli.run),
            Err(problems) => {
                report(&problems);
                Invocation::Exit(ExitCode::from(EX_USAGE))
            }
        },
    }
}

/// The configuration the daemon runs with: the file from `--config` or `$NOTIFYD_CONFIG` (defaults when
/// neither), then the flags.
pub fn resolve(run: &RunArgs, env: &Environment) -> Result<Config, Vec<Problem>> {
    let file = run.config.as_deref().or(env.notifyd_config.as_deref());
    let overrides = Overrides {
        state_directory: env.state_directory.clone(),
        data_dir: run.data_dir.clone(),
        listen: run.listen,
        metrics_listen: run.metrics_listen,
    };
    Config::load_with(file, &overrides)
}

/// `notifyd check-config FILE`: every problem on stderr, one a line, and 64; or "ok" on stdout and 0.
pub fn check_config(file: &Path) -> ExitCode {
    match Config::load(Some(file)) {
        Ok(_) => {
            let _ = writeln!(std::io::stdout().lock(), "ok");
            ExitCode::SUCCESS
        }
        Err(problems) => {
            report(&problems);
            ExitCode::from(EX_USAGE)
        }
    }
}

fn report(problems: &[Problem]) {
    let mut stderr = std::io::stderr().lock();
    for problem in problems {
        let _ = writeln!(stderr, "{problem}");
    }
}

/// `notifyd mock-merchant`: serves until SIGINT/SIGTERM on a runtime of its own.
pub fn mock_merchant(listen: SocketAddr, respond: Respond) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("mock-merchant: cannot start the runtime: {e}");
            return ExitCode::from(EX_OSERR);
        }
    };
    match runtime.block_on(mock_merchant::run_until_signal(listen, respond)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mock-merchant: {listen}: {e}");
            ExitCode::from(EX_OSERR)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("notifyd").chain(args.iter().copied()))
    }

    #[test]
    fn run_flags_and_subcommands() {
        let cli = parse(&[
            "--config",
            "/etc/n.toml",
            "--listen",
            "0.0.0.0:1",
            "--data-dir",
            "/d",
        ])
        .unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.run.config.as_deref(), Some(Path::new("/etc/n.toml")));
        assert_eq!(cli.run.listen, Some("0.0.0.0:1".parse().unwrap()));
        let cli = parse(&["mock-merchant", "--respond", "U,U,S"]).unwrap();
        match cli.command {
            Some(Command::MockMerchant { listen, respond }) => {
                assert_eq!(listen, mock_merchant::DEFAULT_LISTEN.parse().unwrap());
                assert_eq!(respond.to_string(), "U,U,S");
            }
            other => panic!("parsed as {other:?}"),
        }
        assert!(parse(&["--listen", "nope"]).is_err());
        assert!(parse(&["mock-merchant", "--respond", "MAYBE"]).is_err());
        assert!(parse(&["--listen", "127.0.0.1:1", "check-config", "x"]).is_err());
    }

    #[test]
    fn config_file_from_flag_then_environment() {
        let dir = tempfile::tempdir().unwrap();
        let from_env = dir.path().join("env.toml");
        let from_flag = dir.path().join("flag.toml");
        std::fs::write(&from_env, "[ingest]\nlisten = \"127.0.0.1:1001\"\n").unwrap();
        std::fs::write(&from_flag, "[ingest]\nlisten = \"127.0.0.1:1002\"\n").unwrap();
        let env = Environment {
            notifyd_config: Some(from_env),
            state_directory: Some(PathBuf::from("/var/lib/notifyd")),
        };
        let config = resolve(&RunArgs::default(), &env).unwrap();
        assert_eq!(config.ingest.listen.port(), 1001);
        assert_eq!(config.store.path, Path::new("/var/lib/notifyd"));
        let run = RunArgs {
            config: Some(from_flag),
            data_dir: Some(PathBuf::from("/tmp/x")),
            ..RunArgs::default()
        };
        let config = resolve(&run, &env).unwrap();
        assert_eq!(config.ingest.listen.port(), 1002);
        assert_eq!(config.store.path, Path::new("/tmp/x"));
    }
}
