//! What the loader cannot see in the text but a start would trip over: folders the servers
//! create and write (`stream.data_dir`, `cdn.cache_body_dir`, log files, where dev certificates go) and
//! certificate files read as they are (`generate_dev_certs = false`). The loader records
//! each with its key's position; [`super::Config::check_paths`] runs them, so `check` and a
//! start report such a problem once, at file:line:col. Probes leave nothing behind.

use std::fs::{self, File};
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::cdn::{CdnConfig, CertFiles};
use super::diag::{ConfigError, SourceMap};
use super::logs::LogFileSite;
use super::raw::RawConfig;
use super::stream::StreamConfig;

/// One filesystem check and the config key it is reported at.
#[derive(Debug, Clone)]
pub(crate) struct PathCheck {
    /// The key's position and path; the message is filled in when the check fails.
    at: ConfigError,
    what: Probe,
}

#[derive(Debug, Clone)]
enum Probe {
    /// A folder the server creates if missing and writes in.
    WritableDir(PathBuf),
    /// A certificate and key read, parsed and paired as a start would.
    Certificate(CertFiles),
    /// A development certificate file, written at start if missing.
    DevCertificate(PathBuf),
    /// A query or access log file, appended to (created with its folder when missing).
    LogFile(PathBuf),
}

/// The checks for the folders and certificates of a validated `[cdn]` and `[stream]`, and
/// for `log_files`, at the positions of their keys in `raw`.
pub(super) fn path_checks(
    raw: &RawConfig,
    cdn: Option<&CdnConfig>,
    stream: Option<&StreamConfig>,
    log_files: &[LogFileSite],
    map: &SourceMap,
) -> Vec<PathCheck> {
    let mut checks = Vec::new();
    let mut check = |span: Range<usize>, key: String, what: Probe| {
        checks.push(PathCheck {
            at: map.error(span, key, ""),
            what,
        });
    };
    for site in log_files {
        let what = Probe::LogFile(site.file.clone());
        check(site.span.clone(), site.key_path.clone(), what);
    }
    if let (Some(stream), Some(raw_stream)) = (stream, &raw.stream) {
        let span = raw_stream.data_dir.span();
        check(
            span,
            "stream.data_dir".into(),
            Probe::WritableDir(stream.data_dir.clone()),
        );
    }
    let (Some(cdn), Some(raw_cdn)) = (cdn, &raw.cdn) else {
        return checks;
    };
    if let (Some(dir), Some(raw_dir)) = (&cdn.cache_body_dir, &raw_cdn.cache_body_dir) {
        check(
            raw_dir.span(),
            "cdn.cache_body_dir".into(),
            Probe::WritableDir(dir.clone()),
        );
    }
    if let (Some(dir), Some(raw_dir)) = (&cdn.data_dir, &raw_cdn.data_dir)
        && !cdn.acme_certs.is_empty()
    {
        check(
            raw_dir.span(),
            "cdn.data_dir".into(),
            Probe::WritableDir(dir.clone()),
        );
    }
    // Certificates are read only for HTTPS listeners, the CDN's or the stream API's.
    let https = !cdn.https_listen.is_empty() || stream.is_some_and(|s| !s.https_listen.is_empty());
    if !https {
        return checks;
    }
    // The PEM entries, in the order `cdn.certs` holds them, with their index in the file.
    let raw_files = raw_cdn.certs.iter().enumerate().filter_map(|(i, entry)| {
        let raw = entry.get_ref();
        let acme = raw.acme.as_ref().is_some_and(|a| *a.get_ref());
        Some((i, raw.cert.as_ref().filter(|_| !acme)?, raw.key.as_ref()?))
    });
    for (files, (i, raw_cert, raw_key)) in cdn.certs.iter().zip(raw_files) {
        if cdn.generate_dev_certs {
            for (name, path, raw_path) in [
                ("cert", &files.cert, raw_cert),
                ("key", &files.key, raw_key),
            ] {
                check(
                    raw_path.span(),
                    format!("cdn.certs[{i}].{name}"),
                    Probe::DevCertificate(path.clone()),
                );
            }
        } else {
            check(
                raw_cert.span(),
                format!("cdn.certs[{i}]"),
                Probe::Certificate(files.clone()),
            );
        }
    }
    checks
}

impl PathCheck {
    /// The problem, at the key's position; `None` if there is none.
    pub fn run(&self) -> Option<ConfigError> {
        let message = match &self.what {
            Probe::WritableDir(dir) => writable_dir(dir)
                .err()
                .map(|why| format!("{} cannot be a folder to write in: {why}", dir.display())),
            Probe::Certificate(files) => crate::net::tls::check_pair(files)
                .err()
                .map(|e| e.to_string()),
            Probe::LogFile(file) => log_file(file).err(),
            Probe::DevCertificate(file) if file.exists() => None,
            Probe::DevCertificate(file) => {
                let dir = file.parent().unwrap_or(Path::new("."));
                writable_dir(dir).err().map(|why| {
                    format!(
                        "{} is missing and cannot be written as a development certificate: {why}",
                        file.display()
                    )
                })
            }
        }?;
        Some(ConfigError {
            message,
            ..self.at.clone()
        })
    }
}

/// Whether `file` can be appended to: an existing file opens for appending (unchanged),
/// a missing one needs a folder to be written in.
fn log_file(file: &Path) -> Result<(), String> {
    match fs::metadata(file) {
        Ok(meta) if meta.is_dir() => Err(format!("{} is a folder, not a log file", file.display())),
        Ok(_) => fs::OpenOptions::new()
            .append(true)
            .open(file)
            .map(drop)
            .map_err(|e| format!("cannot append to {}: {e}", file.display())),
        Err(_) => {
            let dir = file.parent().unwrap_or(Path::new("."));
            writable_dir(dir)
                .map_err(|why| format!("{} cannot be created as a log file: {why}", file.display()))
        }
    }
}

/// Whether `dir` is, or can be created as, a folder this process can write in: its nearest
/// existing ancestor must be a folder that takes a new file (made and removed again), which
/// catches a regular file in the way and a read-only mount even for root.
fn writable_dir(dir: &Path) -> Result<(), String> {
    let mut existing = dir;
    loop {
        match fs::metadata(existing) {
            Ok(meta) if meta.is_dir() => break,
            Ok(_) => return Err(format!("{} is not a folder", existing.display())),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                existing = match existing.parent() {
                    Some(parent) if !parent.as_os_str().is_empty() => parent,
                    _ => Path::new("."),
                };
            }
            Err(e) => return Err(format!("cannot look at {}: {e}", existing.display())),
        }
    }
    let probe = existing.join(format!(
        ".edgewise-probe-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    File::create_new(&probe)
        .and_then(|file| {
            drop(file);
            fs::remove_file(&probe)
        })
        .map_err(|e| format!("cannot create a file in {}: {e}", existing.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_folder_under_a_folder_is_fine_and_nothing_is_left() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(writable_dir(&dir.path().join("a/b/c")), Ok(()));
        assert_eq!(writable_dir(dir.path()), Ok(()));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_regular_file_in_the_way_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        fs::write(&file, "").unwrap();
        for path in [file.clone(), file.join("below"), file.join("far/below")] {
            let error = writable_dir(&path).unwrap_err();
            assert!(
                error.contains("is not a folder") && error.contains("file"),
                "{error}"
            );
        }
    }
}
