//! What both binaries do before serving: logging to stderr and loading the config, with
//! every config error printed once.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use crate::config::Config;

/// Exit status for an invalid configuration (distinct from runtime failures, which exit 1
/// through `ExitCode::FAILURE` as well, but after something started).
pub const EXIT_BAD_CONFIG: u8 = 1;

/// Logs to stderr, `RUST_LOG` filtering (default `info`), colours only on a terminal.
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Loads `path`, printing every error and returning the exit code on failure.
///
/// # Errors
/// The exit code to leave with; the errors are already printed.
pub fn load_config(path: &Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|errors| {
        eprint!("{errors}");
        ExitCode::from(EXIT_BAD_CONFIG)
    })
}
