//! `edgewise-cdn`: the caching HTTPS reverse proxy. Parses arguments, loads the config, serves.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use edgewise::cdn::{CdnServer, tls};
use edgewise::config::{CdnConfig, DEFAULT_CONFIG_PATH};

#[derive(Parser)]
#[command(version, about = "CloudFront-style caching HTTPS reverse proxy")]
struct Cli {
    /// The configuration file.
    #[arg(long, global = true, env = "EDGEWISE_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the configuration, print every error, and exit.
    Check,
    /// Write self-signed development certificates for the distributions' hosts to the
    /// configured [[cdn.certs]] files.
    GenCert {
        /// Replace files that already exist.
        #[arg(long)]
        force: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    edgewise::cli::init_tracing();
    let config = match edgewise::cli::load_config(&cli.config) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let Some(cdn) = config.cdn else {
        eprintln!(
            "{}: no [cdn] section: nothing to serve",
            cli.config.display()
        );
        return ExitCode::from(edgewise::cli::EXIT_BAD_CONFIG);
    };
    let result = match cli.command {
        Some(Command::Check) => {
            println!(
                "{}: ok ({} distributions)",
                cli.config.display(),
                cdn.distributions.len()
            );
            Ok(())
        }
        Some(Command::GenCert { force }) => gen_cert(&cdn, force),
        None => serve(&cdn),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("edgewise-cdn: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn gen_cert(cdn: &CdnConfig, force: bool) -> anyhow::Result<()> {
    let names = tls::dev_cert_names(cdn);
    for files in &cdn.certs {
        if !force && (files.cert.exists() || files.key.exists()) {
            println!(
                "{} exists; keeping it (--force replaces it)",
                files.cert.display()
            );
            continue;
        }
        tls::generate(files, &names).context("generating a certificate")?;
        println!(
            "wrote {} and {} for {}",
            files.cert.display(),
            files.key.display(),
            names.join(", ")
        );
    }
    Ok(())
}

fn serve(cdn: &CdnConfig) -> anyhow::Result<()> {
    let runtime =
        edgewise::cli::runtime(edgewise::cli::available_cpus()).context("starting the runtime")?;
    runtime.block_on(async {
        let shutdown = edgewise::shutdown::on_signal().context("installing signal handlers")?;
        let server = CdnServer::bind(cdn)?;
        server.run(shutdown).await;
        Ok(())
    })
}
