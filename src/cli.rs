//! What both binaries do before serving: logging to stderr and loading the config, with
//! every config error printed once.

use std::io::{IsTerminal, Write as _};
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use hickory_proto::rr::{LowerName, Name};

use crate::config::dns::{ZoneData, ZoneDnssec};
use crate::config::{Config, DnsConfig, Sections};
use crate::dns::dnssec::KeyError;
use crate::dns::dnssec::keys::{SigningKey, add_key, load_or_generate, retire_key};
use crate::dns::tsig::{Algorithm, generate_key};

/// Exit status for an invalid configuration, or a folder another process holds: the
/// operator must change what they run (sysexits' EX_USAGE, as linkerd and others use), so
/// a supervisor can tell it from a runtime failure, which exits 1.
pub const EXIT_BAD_CONFIG: u8 = 64;

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

/// `check`'s arguments, the same for both binaries.
#[derive(clap::Args)]
pub struct CheckArgs {
    /// Check the whole file, the other binary's sections too, not only this binary's own.
    #[arg(long)]
    pub all: bool,
}

impl CheckArgs {
    /// What to check: the binary's `own` sections, or with `--all` the whole file.
    pub fn sections(&self, own: Sections) -> Sections {
        if self.all { Sections::All } else { own }
    }
}

/// `tsig-keygen`'s arguments.
#[derive(clap::Args)]
pub struct TsigKeygenArgs {
    /// The key's name, a domain name such as `xfr-key`; both ends must use the same one.
    #[arg(value_parser = parse_key_name)]
    pub name: Name,
    /// hmac-sha256, hmac-sha512 or hmac-sha1 (for clients that know no other).
    #[arg(long, default_value = "hmac-sha256")]
    pub algorithm: Algorithm,
}

impl TsigKeygenArgs {
    /// Prints a fresh key in the config forms of edgewise-dns, BIND, Knot and NSD.
    pub fn run(&self) -> ExitCode {
        print_out(&generate_key(&self.name, self.algorithm).to_string());
        ExitCode::SUCCESS
    }
}

/// `ds`'s arguments.
#[derive(clap::Args)]
pub struct DsArgs {
    /// The signed zone, as its `name` in the config.
    #[arg(value_parser = parse_key_name)]
    pub zone: Name,
}

impl DsArgs {
    /// Prints, for each key of the zone the parent's DS names (its KSKs or CSK, not its
    /// ZSKs), its DS record (SHA-256) and its DNSKEY record: what the parent needs (a
    /// registrar asks for one or the other). Loads the keys as a start
    /// would, making the first one if there is none yet, so the DS can go to the parent
    /// before the server first runs.
    pub fn run(&self, dns: &DnsConfig) -> ExitCode {
        let (zone, dnssec) = match signed_zone(dns, &self.zone) {
            Ok(found) => found,
            Err(code) => return code,
        };
        match load_or_generate(&dnssec.keys_dir, &zone.origin, dnssec.algorithm) {
            Ok(keys) => {
                for key in keys.iter().filter(|key| key.is_ksk()) {
                    print_key(key, &zone.origin);
                }
                ExitCode::SUCCESS
            }
            Err(e) => key_failure(&e),
        }
    }
}

/// `key`'s arguments: the two ends of a key roll.
#[derive(clap::Args)]
pub struct KeyArgs {
    #[command(subcommand)]
    pub action: KeyAction,
}

#[derive(clap::Subcommand)]
pub enum KeyAction {
    /// Make a new KSK (or CSK) for the zone, published and signing beside the old one from
    /// the next reload; prints its DS for the parent. ZSKs roll by themselves
    /// (`zsk_lifetime`).
    Roll {
        #[arg(value_parser = parse_key_name)]
        zone: Name,
    },
    /// Take the key with this tag out (once the parent's DS names the new key and the old
    /// DS's TTL has passed); its files move to `retired/`.
    Retire {
        #[arg(value_parser = parse_key_name)]
        zone: Name,
        tag: u16,
    },
}

impl KeyArgs {
    pub fn run(&self, dns: &DnsConfig) -> ExitCode {
        let zone_name = match &self.action {
            KeyAction::Roll { zone } | KeyAction::Retire { zone, .. } => zone,
        };
        let (zone, dnssec) = match signed_zone(dns, zone_name) {
            Ok(found) => found,
            Err(code) => return code,
        };
        let (dir, origin, algorithm) = (&dnssec.keys_dir, &zone.origin, dnssec.algorithm);
        match &self.action {
            KeyAction::Roll { .. } => match add_key(dir, origin, algorithm) {
                Ok(key) => {
                    print_key(&key, origin);
                    eprintln!(
                        "new key {} for {origin}: reload edgewise-dns (SIGHUP) to publish it, give the parent the DS above, and once the parent serves it and the old DS's TTL has passed: edgewise-dns key retire {origin} <old tag>",
                        key.tag()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => key_failure(&e),
            },
            KeyAction::Retire { tag, .. } => match retire_key(dir, origin, algorithm, *tag) {
                Ok(()) => {
                    eprintln!("key {tag} of {origin} retired: reload edgewise-dns (SIGHUP)");
                    ExitCode::SUCCESS
                }
                Err(e) => key_failure(&e),
            },
        }
    }
}

/// The zone named `name` in `dns` and its `dnssec`, or the exit code after saying why not.
fn signed_zone<'a>(
    dns: &'a DnsConfig,
    name: &Name,
) -> Result<(&'a ZoneData, &'a ZoneDnssec), ExitCode> {
    let mut wanted = name.clone();
    wanted.set_fqdn(true);
    let wanted = LowerName::new(&wanted);
    let Some(zone) = dns
        .zones
        .iter()
        .find(|z| LowerName::new(&z.origin) == wanted)
    else {
        eprintln!("edgewise-dns: no zone {name} in [dns]");
        return Err(ExitCode::from(EXIT_BAD_CONFIG));
    };
    match &zone.dnssec {
        Some(dnssec) => Ok((zone, dnssec)),
        None => {
            eprintln!(
                "edgewise-dns: zone {} is not signed: give it dnssec = {{ ... }}",
                zone.origin
            );
            Err(ExitCode::from(EXIT_BAD_CONFIG))
        }
    }
}

/// The key's DS and DNSKEY records, a line each.
fn print_key(key: &SigningKey, zone: &Name) {
    print_out(&format!(
        "{}\n{}\n",
        key.ds_text(zone),
        key.dnskey_text(zone)
    ));
}

/// Writes `text` to stdout. A reader that closed the pipe (`| head -1`) ends the output
/// quietly, as it does for the shell's own tools, instead of a panic.
fn print_out(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

fn key_failure(error: &KeyError) -> ExitCode {
    eprintln!("edgewise-dns: {error}");
    ExitCode::FAILURE
}

fn parse_key_name(text: &str) -> Result<Name, String> {
    Name::from_ascii(text)
        .ok()
        .filter(|name| !name.is_root())
        .ok_or_else(|| format!("{text:?} is not a domain name"))
}

/// Loads `sections` of `path`, printing every error and returning the exit code on failure.
///
/// # Errors
/// The exit code to leave with; the errors are already printed.
pub fn load_config(path: &Path, sections: Sections) -> Result<Config, ExitCode> {
    Config::load_sections(path, sections).map_err(|errors| {
        eprint!("{errors}");
        ExitCode::from(EXIT_BAD_CONFIG)
    })
}

/// Prints what `check` found that does not stop the config from loading, each line
/// `warning: FILE:LINE:COL: KEY: ...` on stderr.
pub fn print_warnings(config: &Config) {
    for warning in config.warnings() {
        eprintln!("warning: {warning}");
    }
}

/// Looks at the folders and certificates a start would use ([`Config::check_paths`]),
/// printing every problem at its key's position.
///
/// # Errors
/// The exit code to leave with; the errors are already printed.
pub fn check_paths(config: &Config) -> Result<(), ExitCode> {
    config.check_paths().map_err(|errors| {
        eprint!("{errors}");
        ExitCode::from(EXIT_BAD_CONFIG)
    })
}

/// Prints why `binary` stops, once, and returns its exit status: [`EXIT_BAD_CONFIG`] when
/// `usage` (the operator must change what runs), else 1. A listen address that could not be
/// bound (`bind`) is said at the key of the served `sections` that names it, the OS's reason
/// given once.
pub fn failed(
    binary: &str,
    error: &anyhow::Error,
    config: &Config,
    sections: &[&str],
    bind: Option<(SocketAddr, &std::io::Error)>,
    usage: bool,
) -> ExitCode {
    match bind.and_then(|(addr, cause)| config.bind_error(addr, cause, sections)) {
        Some(at_key) => eprintln!("{binary}: {at_key}"),
        None => eprintln!("{binary}: {}", error_chain(error.as_ref())),
    }
    if usage {
        ExitCode::from(EXIT_BAD_CONFIG)
    } else {
        ExitCode::FAILURE
    }
}

/// `error` and its sources as one line, each cause said once: many of our errors already
/// quote their source in their own message, and repeating it would triple an OS error.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

/// The runtime for `workers` threads. One worker gets tokio's current-thread scheduler: the
/// multi-threaded one on a single worker lets tasks wait in its global queue under load
/// (p99 of 160 ms against 14 ms at 1,000 connections in benches/cdn).
///
/// # Errors
/// The OS refused the threads or the I/O driver.
pub fn runtime(workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if workers <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    }
}

/// Threads this process may run on (its CPU affinity, e.g. under `taskset`).
pub fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}
