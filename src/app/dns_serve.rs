//! `edgewise-dns`'s serve command: the runtime, signals (SIGINT/SIGTERM stop, SIGHUP
//! reloads, SIGUSR1 reopens the query log), the server until shutdown, the log's last lines.

use std::path::Path;

use anyhow::Context;

use crate::config::DnsConfig;
use crate::dns::DnsServer;

/// Serves `dns`, read from the config file at `path`, until SIGINT/SIGTERM.
///
/// # Errors
/// Whatever keeps the server from starting (a [`crate::dns::StartError`] inside).
pub fn serve(dns: &DnsConfig, path: &Path) -> anyhow::Result<()> {
    for warning in &dns.warnings {
        tracing::warn!("{warning}");
    }
    let runtime = crate::cli::runtime(dns.workers).context("starting the runtime")?;
    runtime.block_on(async {
        let shutdown = crate::shutdown::on_signal().context("installing signal handlers")?;
        let mut server = DnsServer::bind(dns)?;
        let reloader = server.reload_from(path.to_path_buf());
        crate::dns::reload::spawn_scheduled_resign(reloader.clone(), shutdown.clone());
        crate::dns::reload::spawn_on_sighup(reloader, shutdown.clone())
            .context("installing the SIGHUP handler")?;
        super::logs::reopen_on_sigusr1(shutdown.clone())
            .context("installing the SIGUSR1 handler")?;
        server.run(shutdown).await;
        super::logs::finish().await;
        Ok(())
    })
}
