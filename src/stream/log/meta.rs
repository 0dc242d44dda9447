//! `stream.json`: what a stream is (shards, retention, when it was made, whether the config
//! owns it), replaced atomically so a crash leaves the old file or the new one.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{LogError, MAX_SHARDS};

const FILE_NAME: &str = "stream.json";
const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct StreamMeta {
    pub version: u32,
    pub name: String,
    pub shards: u32,
    pub retention_secs: u64,
    pub created_ms: u64,
    /// Named in the config file: not deletable through the API.
    pub configured: bool,
    /// The config's retention when last opened: a different one in the config now means
    /// the config changed and wins; the same one means an API change since then stands.
    pub configured_retention_secs: Option<u64>,
    /// A mirror's upstream, one entry per shard (its JetStream stream's creation time): a
    /// mirror kept across a restart must still mirror these. None on the local log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_of: Option<Vec<String>>,
}

pub(super) fn path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Reads and checks the meta file of the stream folder `dir`, named `name`.
pub(super) fn load(dir: &Path, name: &str) -> Result<StreamMeta, LogError> {
    let file = path(dir);
    let text =
        fs::read(&file).map_err(|e| LogError::io(format!("reading {}", file.display()), e))?;
    let bad = |detail: String| LogError::BadMeta {
        file: file.clone(),
        detail,
    };
    let meta: StreamMeta = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
    if meta.version != VERSION {
        return Err(bad(format!("unknown version {}", meta.version)));
    }
    if meta.name != name {
        return Err(bad(format!(
            "it names stream {:?} but sits in folder {name:?}",
            meta.name
        )));
    }
    if !(1..=MAX_SHARDS).contains(&meta.shards) {
        return Err(bad(format!("{} shards is out of range", meta.shards)));
    }
    Ok(meta)
}

impl StreamMeta {
    pub fn new(name: &str, shards: u32, retention_secs: u64, created_ms: u64) -> StreamMeta {
        StreamMeta {
            version: VERSION,
            name: name.to_owned(),
            shards,
            retention_secs,
            created_ms,
            configured: false,
            configured_retention_secs: None,
            mirror_of: None,
        }
    }

    /// Puts the stream under the config with its `retention_secs` (`Some`), or under the API
    /// (`None`: out of the config, kept and now deletable). A configured retention other than
    /// the one last applied replaces the current one; the same one leaves an API change in
    /// place.
    pub fn configure(&mut self, retention_secs: Option<u64>) {
        match retention_secs {
            Some(retention) => {
                self.configured = true;
                if self.configured_retention_secs != Some(retention) {
                    self.retention_secs = retention;
                    self.configured_retention_secs = Some(retention);
                }
            }
            None => {
                self.configured = false;
                self.configured_retention_secs = None;
            }
        }
    }

    /// Writes the meta file of the stream folder `dir`: temp file, fsync, rename, fsync of
    /// the folder.
    pub fn store(&self, dir: &Path) -> Result<(), LogError> {
        let file = path(dir);
        let tmp = dir.join(format!("{FILE_NAME}.tmp"));
        let context = || format!("writing {}", file.display());
        let text = serde_json::to_vec_pretty(self)
            .map_err(|e| LogError::io(context(), io::Error::other(e)))?;
        let write = || -> io::Result<()> {
            let mut out = File::create(&tmp)?;
            out.write_all(&text)?;
            out.sync_all()?;
            fs::rename(&tmp, &file)?;
            sync_dir(dir)
        };
        write().map_err(|e| LogError::io(context(), e))
    }
}

/// Makes the entries of folder `dir` (files created, renamed or removed) durable.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let mut meta = StreamMeta::new("orders", 4, 86400, 1_700_000_000_000);
        meta.configured = true;
        meta.configured_retention_secs = Some(86400);
        meta.store(dir.path()).unwrap();
        assert_eq!(load(dir.path(), "orders").unwrap(), meta);
        assert!(!dir.path().join("stream.json.tmp").exists());
    }

    #[test]
    fn rejects_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        StreamMeta::new("orders", 4, 60, 0)
            .store(dir.path())
            .unwrap();
        let err = load(dir.path(), "other").unwrap_err();
        assert!(err.to_string().contains("folder \"other\""), "{err}");
        fs::write(path(dir.path()), "{not json").unwrap();
        assert!(matches!(
            load(dir.path(), "orders"),
            Err(LogError::BadMeta { .. })
        ));
        StreamMeta::new("orders", 0, 60, 0)
            .store(dir.path())
            .unwrap();
        assert!(matches!(
            load(dir.path(), "orders"),
            Err(LogError::BadMeta { .. })
        ));
    }
}
