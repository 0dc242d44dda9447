//! `[dns] query_log` and `[cdn] access_log`: where a line per query or request goes, in which
//! format, and which share of them is logged. Both are off unless configured.

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::diag::{ConfigError, SourceMap};
use super::raw::RawLog;

/// A validated `query_log` or `access_log` that is on (`to = "off"` validates to `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    pub to: LogTarget,
    /// Defaults to [`LogFormat::Text`].
    pub format: LogFormat,
    /// Share of queries or requests logged, 0.0 to 1.0, decided per line before anything is
    /// formatted. Defaults to 1.0 (all).
    pub sample: f64,
}

/// Where the lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    Stderr,
    /// Appended to, created when missing, reopened on SIGUSR1 (logrotate). Relative paths
    /// are resolved against the config file's folder.
    File(PathBuf),
}

/// How a line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One line of space- (DNS) or tab-separated (CDN, as the real-time log) fields.
    Text,
    /// One JSON object per line.
    Json,
}

/// The log file and the position of its `to` key, for the folder probe of `check`.
#[derive(Debug, Clone)]
pub(super) struct LogFileSite {
    pub file: PathBuf,
    pub span: Range<usize>,
    pub key_path: String,
}

/// Checks one log table at `key` (`dns.query_log`, `cdn.access_log`); `None` when it is off.
pub(super) fn validate(
    raw: &Spanned<RawLog>,
    key: &str,
    map: &SourceMap,
    base: &Path,
    errors: &mut Vec<ConfigError>,
) -> Option<LogConfig> {
    let r = raw.get_ref();
    let format = match r.format.as_ref().map(|f| (f, f.get_ref().as_str())) {
        None | Some((_, "text")) => LogFormat::Text,
        Some((_, "json")) => LogFormat::Json,
        Some((f, other)) => {
            errors.push(map.error(
                f.span(),
                format!("{key}.format"),
                format!("{other:?} is not a log format; expected \"text\" or \"json\""),
            ));
            LogFormat::Text
        }
    };
    let sample = match &r.sample {
        None => 1.0,
        Some(s) if (0.0..=1.0).contains(s.get_ref()) => *s.get_ref(),
        Some(s) => {
            errors.push(map.error(
                s.span(),
                format!("{key}.sample"),
                format!(
                    "{} is out of range (expected 0.0 to 1.0, the share of lines logged)",
                    s.get_ref()
                ),
            ));
            1.0
        }
    };
    let Some(to) = &r.to else {
        errors.push(map.error(
            raw.span(),
            key,
            "missing key `to`: \"off\", \"stderr\" or a file path",
        ));
        return None;
    };
    let to = match to.get_ref().as_str() {
        "off" => return None,
        "stderr" => LogTarget::Stderr,
        "" => {
            errors.push(map.error(
                to.span(),
                format!("{key}.to"),
                "must not be empty; expected \"off\", \"stderr\" or a file path",
            ));
            return None;
        }
        path if path.ends_with('/') => {
            errors.push(map.error(
                to.span(),
                format!("{key}.to"),
                format!(
                    "{path:?} names a folder; expected a file path such as \"logs/edgewise.log\""
                ),
            ));
            return None;
        }
        path => LogTarget::File(base.join(path)),
    };
    Some(LogConfig { to, format, sample })
}

/// Where a log file of `raw` (validated as `config`) is written, for the folder probe.
pub(super) fn file_site(
    config: Option<&LogConfig>,
    raw: Option<&Spanned<RawLog>>,
    key: &str,
) -> Option<LogFileSite> {
    let (LogTarget::File(file), Some(to)) = (&config?.to, &raw?.get_ref().to) else {
        return None;
    };
    Some(LogFileSite {
        file: file.clone(),
        span: to.span(),
        key_path: format!("{key}.to"),
    })
}
