//! What `edgewise-cdn` does besides serving: `gen-cert`, `sign-url` and `sign-cookies`, and
//! the serve command itself (the runtime, signals, reload on SIGHUP), so the binary only
//! parses arguments and loads the config.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::cdn::signed::{self, SignPolicy};
use crate::config::{CdnConfig, Config};
use crate::edge::{Edge, EdgeStartError};
use crate::net::tls;

/// The subcommands; none means serve.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Validate this binary's sections ([cdn], [stream], [geo]), print every error, and exit.
    Check(crate::cli::CheckArgs),
    /// Write self-signed development certificates for the distributions' hosts to the
    /// configured [[cdn.certs]] files.
    GenCert {
        /// Replace files that already exist.
        #[arg(long)]
        force: bool,
    },
    /// Sign a URL as CloudFront does (canned policy, or custom with --policy).
    SignUrl(SignArgs),
    /// Print the three signed cookies CloudFront would set for a resource (URL, may use *).
    SignCookies(SignArgs),
    /// Run one SQL query over the streams on the running edgewise-cdn ([analytics]), e.g.
    /// `sql 'SELECT sc_status, count(*) FROM "cdn-logs" GROUP BY sc_status'`.
    Sql {
        /// The query: every stream is a table (quote names with `-`).
        query: String,
        /// Output: csv or json.
        #[arg(long, default_value = "csv", value_parser = ["csv", "json"])]
        format: String,
    },
}

/// Runs `command` (serving when none) on the loaded `config` from `path`; the exit status
/// says whether it failed on the config (64) or at run time (1).
pub fn run(path: &Path, config: &Config, command: Option<Command>) -> ExitCode {
    if config.cdn.is_none() && config.stream.is_none() {
        eprintln!(
            "{}: no [cdn] or [stream] section: nothing to serve",
            path.display()
        );
        return ExitCode::from(crate::cli::EXIT_BAD_CONFIG);
    }
    if matches!(command, None | Some(Command::Check(_)))
        && let Err(code) = crate::cli::check_paths(config)
    {
        return code;
    }
    let result = match command {
        Some(Command::Check(_)) => {
            crate::cli::print_warnings(config);
            println!(
                "{}: ok ({} distributions, {} streams)",
                path.display(),
                config.cdn.as_ref().map_or(0, |c| c.distributions.len()),
                config.stream.as_ref().map_or(0, |s| s.streams.len())
            );
            Ok(())
        }
        Some(Command::GenCert { force }) => match &config.cdn {
            Some(cdn) => gen_cert(cdn, force),
            None => Err(anyhow::anyhow!(
                "no [cdn] section: no certificates to write"
            )),
        },
        Some(Command::SignUrl(args)) => sign(&args, false),
        Some(Command::SignCookies(args)) => sign(&args, true),
        Some(Command::Sql { query, format }) => super::sql_client::run(config, &query, &format),
        None => serve(config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let start = e.downcast_ref::<EdgeStartError>();
            crate::cli::failed(
                "edgewise-cdn",
                &e,
                config,
                &["cdn", "stream"],
                start.and_then(EdgeStartError::bind_failure),
                start.is_some_and(EdgeStartError::folder_held),
            )
        }
    }
}

/// What to sign, and for how long. Exactly one of `--expires` (canned policy) and
/// `--policy` (custom), as the usage line says.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("policy_kind").required(true).args(["expires", "policy"])))]
pub struct SignArgs {
    /// The key's id in its key group (Key-Pair-Id).
    #[arg(long)]
    key_pair_id: String,
    /// The RSA private key (PEM, PKCS#1 or PKCS#8).
    #[arg(long)]
    private_key: PathBuf,
    /// The URL to sign (for cookies: the resource they cover).
    #[arg(long)]
    url: String,
    /// Expiry: Unix seconds, or a duration from now such as "1h" or "7d" (canned policy).
    #[arg(long)]
    expires: Option<String>,
    /// A custom policy JSON file instead of a canned policy.
    #[arg(long)]
    policy: Option<PathBuf>,
}

/// Writes development certificates for the distributions' hosts to `[[cdn.certs]]` files
/// that are missing (all of them with `force`).
///
/// # Errors
/// A certificate that cannot be generated or written.
pub fn gen_cert(cdn: &CdnConfig, force: bool) -> anyhow::Result<()> {
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

/// Prints a signed URL, or the signed cookies (`cookies`), as CloudFront's signers make them.
///
/// # Errors
/// An unreadable key or policy, a bad expiry, or a policy that cannot be signed.
pub fn sign(args: &SignArgs, cookies: bool) -> anyhow::Result<()> {
    let pem = std::fs::read_to_string(&args.private_key)
        .with_context(|| format!("reading {}", args.private_key.display()))?;
    let key = signed::parse_private_key_pem(&pem)
        .with_context(|| format!("{}", args.private_key.display()))?;
    let policy = match (&args.policy, &args.expires) {
        (Some(file), _) => SignPolicy::Custom {
            json: std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?,
        },
        (None, Some(expires)) => SignPolicy::Canned {
            expires: expiry(expires)?,
        },
        (None, None) => anyhow::bail!("give --expires or --policy"),
    };
    if cookies {
        for (name, value) in signed::sign_cookies(&args.url, &args.key_pair_id, &key, &policy)? {
            println!("{name}={value}");
        }
    } else {
        println!(
            "{}",
            signed::sign_url(&args.url, &args.key_pair_id, &key, &policy)?
        );
    }
    Ok(())
}

/// Unix seconds as given, or now plus a duration ("1h", "7d").
fn expiry(text: &str) -> anyhow::Result<u64> {
    if let Ok(epoch) = text.parse::<u64>() {
        return Ok(epoch);
    }
    let ahead = crate::config::units::parse_duration(text).map_err(anyhow::Error::msg)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the clock is before 1970")?;
    Ok((now + ahead).as_secs())
}

/// Serves `[cdn]` and `[stream]` until SIGINT/SIGTERM; SIGHUP and `POST /reload` re-read the
/// file the config came from, SIGUSR1 reopens the access log.
///
/// # Errors
/// Whatever keeps the process from starting (an
/// [`EdgeStartError`](crate::edge::EdgeStartError) inside).
pub fn serve(config: &Config) -> anyhow::Result<()> {
    let runtime =
        crate::cli::runtime(crate::cli::available_cpus()).context("starting the runtime")?;
    runtime.block_on(async {
        let shutdown = crate::shutdown::on_signal().context("installing signal handlers")?;
        let mut edge = Edge::bind(config)?;
        edge.connect_upstream(&shutdown).await?;
        edge.reload_from(config.path.clone());
        super::logs::reopen_on_sigusr1(shutdown.clone())
            .context("installing the SIGUSR1 handler")?;
        edge.run(shutdown).await;
        super::logs::finish().await;
        Ok(())
    })
}
