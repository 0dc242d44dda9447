//! `edgewise-dns`: the authoritative DNS server. Parses arguments, loads the config, serves.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use edgewise::config::{Config, DEFAULT_CONFIG_PATH};
use edgewise::dns::DnsServer;

/// Exit status for an invalid configuration (EX_DATAERR would be 65; sysexits' EX_USAGE is 64).
const EXIT_BAD_CONFIG: u8 = 1;

#[derive(Parser)]
#[command(
    version,
    about = "Authoritative DNS with Route 53-style traffic routing"
)]
struct Cli {
    /// The configuration file.
    #[arg(long, global = true, env = "EDGEWISE_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the configuration and its zone files, print every error, and exit.
    Check,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let config = match Config::load(&cli.config) {
        Ok(config) => config,
        Err(errors) => {
            eprint!("{errors}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    let Some(dns) = config.dns else {
        eprintln!(
            "{}: no [dns] section: nothing to serve",
            cli.config.display()
        );
        return ExitCode::from(EXIT_BAD_CONFIG);
    };
    if let Some(Command::Check) = cli.command {
        println!("{}: ok ({} zones)", cli.config.display(), dns.zones.len());
        return ExitCode::SUCCESS;
    }
    match serve(&dns) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("edgewise-dns: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(dns: &edgewise::config::DnsConfig) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(dns.workers)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        let shutdown = edgewise::shutdown::on_signal().context("installing signal handlers")?;
        let server = DnsServer::bind(dns)?;
        server.run(shutdown).await;
        Ok(())
    })
}
