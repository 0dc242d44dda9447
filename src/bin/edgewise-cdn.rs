//! `edgewise-cdn`: the caching HTTPS reverse proxy and the stream API. Parses arguments,
//! loads the config, serves.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use edgewise::app::cdn_commands::{self as commands, Command};
use edgewise::config::{DEFAULT_CONFIG_PATH, Sections};

/// mimalloc: the request paths allocate and free many small objects per request (header
/// maps, HTTP/2 frames, tasks), which it serves from per-thread pages faster than glibc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "edgewise-cdn",
    version,
    about = "CloudFront-style caching HTTPS reverse proxy and Kinesis-compatible stream log"
)]
struct Cli {
    /// The configuration file.
    #[arg(long, global = true, env = "EDGEWISE_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    edgewise::cli::init_tracing();
    let sections = match &cli.command {
        Some(Command::Check(check)) => check.sections(Sections::Cdn),
        _ => Sections::Cdn,
    };
    let config = match edgewise::cli::load_config(&cli.config, sections) {
        Ok(config) => config,
        Err(code) => return code,
    };
    commands::run(&cli.config, &config, cli.command)
}
