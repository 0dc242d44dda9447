//! `edgewise-dns`: the authoritative DNS server. Parses arguments, loads the config, serves.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use edgewise::config::{DEFAULT_CONFIG_PATH, Sections};
use edgewise::dns::StartError;

#[derive(Parser)]
#[command(
    name = "edgewise-dns",
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
    /// Validate this binary's sections and their zone files, print every error, and exit.
    Check(edgewise::cli::CheckArgs),
    /// Print a new TSIG key for `[[dns.tsig_keys]]` and for BIND, Knot and NSD secondaries.
    TsigKeygen(edgewise::cli::TsigKeygenArgs),
    /// Print a signed zone's DS and DNSKEY records for its parent (its key made if new).
    Ds(edgewise::cli::DsArgs),
    /// Roll a signed zone's KSK or CSK: `key roll ZONE`, then `key retire ZONE OLD_TAG`.
    Key(edgewise::cli::KeyArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let own = Sections::Dns;
    let sections = match &cli.command {
        Some(Command::TsigKeygen(keygen)) => return keygen.run(),
        Some(Command::Check(c)) => c.sections(own),
        Some(Command::Ds(_) | Command::Key(_)) | None => own,
    };
    edgewise::cli::init_tracing();
    let config = match edgewise::cli::load_config(&cli.config, sections) {
        Ok(config) => config,
        Err(code) => return code,
    };
    if matches!(cli.command, Some(Command::Check(_)))
        && let Err(code) = edgewise::cli::check_paths(&config)
    {
        return code;
    }
    let Some(dns) = &config.dns else {
        eprintln!(
            "{}: no [dns] section: nothing to serve",
            cli.config.display()
        );
        return ExitCode::from(edgewise::cli::EXIT_BAD_CONFIG);
    };
    match &cli.command {
        Some(Command::Ds(ds)) => return ds.run(dns),
        Some(Command::Key(key)) => return key.run(dns),
        _ => {}
    }
    if let Some(Command::Check(_)) = cli.command {
        edgewise::cli::print_warnings(&config);
        println!("{}: ok ({} zones)", cli.config.display(), dns.zones.len());
        return ExitCode::SUCCESS;
    }
    match edgewise::app::dns_serve::serve(dns, &cli.config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let bind = match e.downcast_ref::<StartError>() {
                Some(StartError::Bind(e)) => Some((e.addr, &e.source)),
                _ => None,
            };
            edgewise::cli::failed("edgewise-dns", &e, &config, &["dns"], bind, false)
        }
    }
}
