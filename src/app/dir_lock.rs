//! One process per folder. Every folder a process writes (the stream log's `data_dir`,
//! delivery folders, `cache_body_dir`) is locked with `flock(2)` on the folder itself, so a
//! second process pointed at it stops before touching anything, and says which process holds
//! it. Locking the folder's own descriptor leaves no lock file behind, and the kernel drops
//! the lock when the holder exits, however it exits.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

/// Held for as long as the process uses the folder.
#[derive(Debug)]
pub struct DirLock {
    _folder: File,
}

/// Why a folder could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum DirLockError {
    #[error("{} is in use by another edgewise process{}; stop it or choose another folder", dir.display(), holder(*pid))]
    Held { dir: PathBuf, pid: Option<u32> },
    #[error("cannot lock {}: {source}", dir.display())]
    Io { dir: PathBuf, source: io::Error },
}

fn holder(pid: Option<u32>) -> String {
    pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
}

impl DirLock {
    /// Locks `dir`, which must exist, for this process.
    ///
    /// # Errors
    /// Another process holds it, or it cannot be opened.
    pub fn acquire(dir: &Path) -> Result<DirLock, DirLockError> {
        let io_error = |source| DirLockError::Io {
            dir: dir.to_path_buf(),
            source,
        };
        let folder = File::open(dir).map_err(io_error)?;
        match flock(&folder, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(DirLock { _folder: folder }),
            Err(rustix::io::Errno::WOULDBLOCK) => Err(DirLockError::Held {
                dir: dir.to_path_buf(),
                pid: holder_pid(&folder),
            }),
            Err(e) => Err(io_error(e.into())),
        }
    }
}

/// The process holding a flock on `folder`, from `/proc/locks`
/// (`1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF`: pid, then device and inode).
fn holder_pid(folder: &File) -> Option<u32> {
    let meta = folder.metadata().ok()?;
    let dev = meta.dev();
    let wanted = format!(
        "{:02x}:{:02x}:{}",
        rustix::fs::major(dev),
        rustix::fs::minor(dev),
        meta.ino()
    );
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(1) == Some(&"FLOCK") && fields.get(5) == Some(&wanted.as_str()))
            .then(|| fields.get(4)?.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_and_named_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        // A second open file description conflicts just as another process would.
        match DirLock::acquire(dir.path()) {
            Err(DirLockError::Held { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("expected Held, got {other:?}"),
        }
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "no lock file"
        );
        drop(first);
        DirLock::acquire(dir.path()).expect("free again");
    }

    #[test]
    fn a_missing_folder_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let error = DirLock::acquire(&missing).unwrap_err().to_string();
        assert!(error.contains("nope"), "{error}");
    }
}
