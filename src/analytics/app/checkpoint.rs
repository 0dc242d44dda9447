//! An application's checkpoint under `<stream data_dir>/analytics/<app>.json`: where each
//! input was read to once everything from before it was emitted, and the end of the last
//! window each windowed pump emitted. Written after each emission, atomically (a temporary
//! file, fsync, rename), so a restart resumes from a state that was whole; what a crash
//! between an emission and its checkpoint would emit twice is found on the output streams
//! and skipped (see `emit`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::stream::delivery::file::write_atomically;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Per input stream, each shard's next offset to read.
    pub inputs: BTreeMap<String, Vec<u64>>,
    /// Per windowed pump, the end (epoch ms) of the last window it emitted.
    pub windows: BTreeMap<String, u64>,
}

/// Where an application's checkpoint lives.
pub fn path(data_dir: &Path, app: &str) -> PathBuf {
    data_dir.join("analytics").join(format!("{app}.json"))
}

impl Checkpoint {
    /// The checkpoint at `path`; a missing file is a fresh start.
    ///
    /// # Errors
    /// The file exists but cannot be read or is not a checkpoint.
    pub fn load(path: &Path) -> Result<Checkpoint, String> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| format!("{}: not a checkpoint: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Checkpoint::default()),
            Err(e) => Err(format!("reading {}: {e}", path.display())),
        }
    }

    /// Replaces the checkpoint at `path` in one step.
    ///
    /// # Errors
    /// The folder or file cannot be written.
    pub fn store(&self, path: &Path) -> Result<(), String> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| format!("{e}"))?;
        write_atomically(path, &bytes).map_err(|e| format!("writing {}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_checkpoint_loads_back_and_a_missing_one_is_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let at = path(dir.path(), "app");
        assert_eq!(Checkpoint::load(&at).unwrap(), Checkpoint::default());
        let mut checkpoint = Checkpoint::default();
        checkpoint.inputs.insert("in".into(), vec![3, 7]);
        checkpoint.windows.insert("P".into(), 60_000);
        checkpoint.store(&at).unwrap();
        assert_eq!(Checkpoint::load(&at).unwrap(), checkpoint);
        std::fs::write(&at, "{").unwrap();
        assert!(
            Checkpoint::load(&at)
                .unwrap_err()
                .contains("not a checkpoint")
        );
    }
}
