//! The one configuration both binaries read: a TOML file, checked completely before anything runs.
//!
//! Loading goes raw (serde mirror, [`raw`]) → validated domain types ([`Config`]), collecting
//! every error with its file:line:col and key path. Loading never binds a socket, so
//! `check --config` runs exactly the loader the servers use.

pub mod acme;
pub mod analytics;
pub mod cdn;
mod collect;
mod diag;
pub mod dns;
pub mod edges;
mod geo;
mod health;
pub mod logs;
pub mod nats;
pub mod parent_tier;
mod probe;
mod raw;
pub mod realtime_logs;
mod sections;
mod sites;
pub mod stream;
pub mod units;
mod wording;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use analytics::AnalyticsConfig;
pub use cdn::CdnConfig;
use diag::SourceMap;
pub use diag::{ConfigError, ConfigErrors};
pub use dns::DnsConfig;
pub use sections::Sections;
pub use stream::StreamConfig;

/// Where the binaries look for the config when neither `--config` nor `$EDGEWISE_CONFIG` is given.
pub const DEFAULT_CONFIG_PATH: &str = "config/edgewise.toml";

/// A validated configuration. Immutable once loaded; servers build their snapshots from it.
#[derive(Debug)]
pub struct Config {
    /// The file it was read from (relative paths inside resolve against its folder).
    pub path: PathBuf,
    /// `[dns]`, when present and read, with the `[geo]`, `[[health_checks]]` and `[[regions]]`
    /// it uses.
    pub dns: Option<DnsConfig>,
    /// `[cdn]`, when present and read.
    pub cdn: Option<CdnConfig>,
    /// `[stream]`, when present and read (served by edgewise-cdn).
    pub stream: Option<StreamConfig>,
    /// `[analytics]`, when present and read (served by edgewise-cdn with the stream API).
    pub analytics: Option<AnalyticsConfig>,
    /// Folders and certificates to look at on disk before serving, see [`Config::check_paths`].
    paths: Vec<probe::PathCheck>,
    /// Where each listen address is written, see [`Config::bind_error`].
    listens: Vec<sites::ListenSite>,
}

impl Config {
    /// Reads and validates the whole of `path`, and every zone file it names.
    ///
    /// # Errors
    /// Every problem found, each with its position and key path.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        Self::load_sections(path, Sections::All)
    }

    /// Reads `path` and validates only `sections` (a binary's own, see [`Sections`]); the
    /// others are left out of the result, unread.
    ///
    /// # Errors
    /// Every problem found in those sections, each with its position and key path.
    pub fn load_sections(path: &Path, sections: Sections) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: path.to_path_buf(),
                line: 0,
                col: 0,
                key_path: String::new(),
                message: format!("cannot read the config file: {e}"),
            }])
        })?;
        Self::from_str_sections(&text, path, sections)
    }

    /// Validates the whole of config text as if read from `path`.
    ///
    /// # Errors
    /// Every problem found, each with its position and key path.
    pub fn from_str(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
        Self::from_str_sections(text, path, Sections::All)
    }

    /// Validates `sections` of config text as if read from `path`.
    ///
    /// # Errors
    /// Every problem found in those sections, each with its position and key path.
    pub fn from_str_sections(
        text: &str,
        path: &Path,
        sections: Sections,
    ) -> Result<Config, ConfigErrors> {
        let map = SourceMap { file: path, text };
        // Every structural error of the sections read, and the rest of them for the value
        // checks below, so both are reported together.
        let partial = collect::read(&map, sections);
        let (mut raw, mut errors) = match partial.raw {
            Some(raw) => (raw, partial.errors),
            None => return Err(ConfigErrors(partial.errors)),
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let listens = sites::listen_sites(&raw, &map);
        let geo = raw
            .geo
            .as_ref()
            .map(|g| geo::validate_geo(g, &map, base, &mut errors))
            .unwrap_or_default();
        let regions = geo::validate_regions(&raw.regions, &map, &mut errors);
        let health_checks = health::validate(&raw.health_checks, &map, &mut errors);
        let broken_health_checks: Vec<&str> = raw
            .health_checks
            .iter()
            .map(|c| c.get_ref().id.get_ref().as_str())
            .filter(|id| !health_checks.iter().any(|c| c.id == *id))
            .collect();
        let edge_refs = edges::Refs {
            health_checks: &health_checks,
            broken_health_checks: &broken_health_checks,
            regions: &regions,
            map: &map,
        };
        let edge_groups = edges::validate(&raw.edge_groups, &edge_refs, &mut errors);
        let refs = dns::RoutingRefs {
            health_checks: &health_checks,
            broken_health_checks: &broken_health_checks,
            regions: &regions,
            geo: &geo,
            edge_groups: &edge_groups,
        };
        let cdn_geo = geo.clone();
        let mut log_files = Vec::new();
        let dns = raw
            .dns
            .take()
            .map(|raw_dns| {
                let raw_log = raw_dns.query_log.clone();
                let dns = dns::validate(raw_dns, &refs, &map, base, &mut errors);
                let log = dns.query_log.as_ref();
                log_files.extend(logs::file_site(log, raw_log.as_ref(), "dns.query_log"));
                dns
            })
            .map(|dns| DnsConfig {
                geo,
                health_checks,
                regions,
                ..dns
            });
        let cdn = raw
            .cdn
            .as_ref()
            .map(|raw_cdn| cdn::validate(raw_cdn, &cdn_geo, &map, base, &mut errors));
        log_files.extend(logs::file_site(
            cdn.as_ref().and_then(|c| c.access_log.as_ref()),
            raw.cdn.as_ref().and_then(|c| c.access_log.as_ref()),
            "cdn.access_log",
        ));
        let stream = raw.stream.as_ref().map(|raw_stream| {
            let mut taken: Vec<_> = cdn
                .iter()
                .flat_map(|c| [&c.https_listen, &c.http_listen, &c.admin_listen])
                .flatten()
                .copied()
                .collect();
            stream::validate(raw_stream, &mut taken, &map, base, &mut errors)
        });
        cross_check_streams(&raw, cdn.as_ref(), stream.as_ref(), &map, &mut errors);
        let analytics = raw.analytics.as_ref().map(|raw_analytics| {
            if stream.is_none() {
                errors.push(map.error(
                    0..0,
                    "analytics",
                    "[analytics] reads streams: it needs a [stream] section",
                ));
            }
            let realtime_logs = cdn.as_ref().and_then(|c| c.realtime_logs.as_ref());
            analytics::validate(
                raw_analytics,
                stream.as_ref(),
                realtime_logs,
                &map,
                base,
                &mut errors,
            )
        });
        if errors.is_empty() {
            Ok(Config {
                path: path.to_path_buf(),
                paths: probe::path_checks(&raw, cdn.as_ref(), stream.as_ref(), &log_files, &map),
                listens,
                dns,
                cdn,
                stream,
                analytics,
            })
        } else {
            // In the file's order (zone-file lines after the config's), structural and value
            // errors interleaved as the operator will fix them.
            errors.sort_by_key(|e| (e.file != path, e.line, e.col));
            Err(ConfigErrors(errors))
        }
    }

    /// What the check found worth saying that does not stop the config from loading
    /// ([`DnsConfig::warnings`]).
    pub fn warnings(&self) -> &[ConfigError] {
        self.dns.as_ref().map_or(&[], |dns| &dns.warnings)
    }

    /// Looks at what a start would create, write or read on disk — `stream.data_dir`,
    /// `cdn.cache_body_dir`, the query and access log files, the certificates (or, with `generate_dev_certs`, where missing
    /// ones go) — so that `check` fails where a start would, at the key's position, and a
    /// start says so once, before it binds anything. Leaves nothing behind.
    ///
    /// # Errors
    /// Every problem found, each at its key's position.
    pub fn check_paths(&self) -> Result<(), ConfigErrors> {
        let errors: Vec<ConfigError> = self
            .paths
            .iter()
            .filter_map(probe::PathCheck::run)
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// `addr` could not be bound at start: said at the first listen key of the `sections`
    /// being served (e.g. `["cdn", "stream"]`) that names it, with the OS's reason once.
    /// `None` when no such key names it.
    pub fn bind_error(
        &self,
        addr: SocketAddr,
        cause: &std::io::Error,
        sections: &[&str],
    ) -> Option<ConfigError> {
        let listen = self.listens.iter().find(|l| {
            l.addr == addr
                && sections
                    .iter()
                    .any(|s| l.site.key_path.starts_with(&format!("{s}.")))
        })?;
        Some(ConfigError {
            message: format!("cannot bind {addr}: {cause}"),
            ..listen.site.clone()
        })
    }

    /// [`Config::bind_error`] for a reload, which answers with config errors only: when no
    /// key of `sections` names `addr`, the error is said of the file `path` as a whole.
    pub fn reload_bind_errors(
        &self,
        path: &Path,
        addr: SocketAddr,
        cause: &std::io::Error,
        sections: &[&str],
    ) -> ConfigErrors {
        let error = self
            .bind_error(addr, cause, sections)
            .unwrap_or_else(|| ConfigError {
                file: path.to_path_buf(),
                line: 0,
                col: 0,
                key_path: String::new(),
                message: format!("cannot bind {addr}: {cause}"),
            });
        ConfigErrors(vec![error])
    }
}

/// What `[cdn]` needs of `[stream]`: the real-time log stream, and certificates for HTTPS.
fn cross_check_streams(
    raw: &raw::RawConfig,
    cdn: Option<&CdnConfig>,
    stream: Option<&StreamConfig>,
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) {
    if let (Some(logs), Some(raw_logs)) = (
        cdn.and_then(|c| c.realtime_logs.as_ref()),
        raw.cdn.as_ref().and_then(|c| c.realtime_logs.as_ref()),
    ) && !stream.is_some_and(|s| s.streams.iter().any(|spec| spec.name == logs.stream))
    {
        errors.push(map.error(
            raw_logs.get_ref().stream.span(),
            "cdn.realtime_logs.stream",
            format!("{:?} is not a [[stream.streams]] name", logs.stream),
        ));
    }
    if let (Some(s), Some(raw_stream)) = (stream, raw.stream.as_ref())
        && !s.https_listen.is_empty()
        && cdn.is_none_or(|c| c.certs.is_empty() && c.acme_certs.is_empty())
    {
        errors.push(map.error(
            raw_stream.https_listen[0].span(),
            "stream.https_listen",
            "HTTPS listeners need at least one [[cdn.certs]] entry",
        ));
    }
}
