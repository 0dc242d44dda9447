//! Whether a mirror found on disk can be trusted whole. Its writes are synced once a second,
//! so a machine that went down (power, kernel) may have kept later writes and lost earlier
//! ones: holes a restart must not serve. It is trusted when it was closed (everything
//! synced) or when the machine has not restarted since it was written (the page cache held
//! every write, whatever became of the process).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::meta::sync_dir;

const FILE_NAME: &str = "mirror-state";
const CLOSED: &str = "closed";
/// Where Linux names the current boot.
const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// "boot <id>" for this boot, or None where the OS does not say.
fn this_boot() -> Option<String> {
    let id = fs::read_to_string(BOOT_ID).ok()?;
    Some(format!("boot {}", id.trim()))
}

/// Why the mirror in `data_dir` cannot be trusted whole; `None` when it can.
pub(super) fn distrust(data_dir: &Path) -> Option<&'static str> {
    let Ok(state) = fs::read_to_string(path(data_dir)) else {
        return Some("no record of how it was left");
    };
    let state = state.trim();
    if state == CLOSED || this_boot().as_deref() == Some(state) {
        None
    } else {
        Some("the machine restarted since it was written, without it being closed")
    }
}

/// Records that the mirror is being written in this boot, before any write.
pub(super) fn mark_open(data_dir: &Path) -> io::Result<()> {
    store(data_dir, this_boot().as_deref().unwrap_or("open"))
}

/// Records that every write of the mirror is synced.
pub(super) fn mark_closed(data_dir: &Path) -> io::Result<()> {
    store(data_dir, CLOSED)
}

fn store(data_dir: &Path, state: &str) -> io::Result<()> {
    let file = path(data_dir);
    let tmp = data_dir.join(format!("{FILE_NAME}.tmp"));
    let mut out = File::create(&tmp)?;
    out.write_all(format!("{state}\n").as_bytes())?;
    out.sync_all()?;
    fs::rename(&tmp, &file)?;
    sync_dir(data_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_when_closed_or_written_in_this_boot() {
        let dir = tempfile::tempdir().unwrap();
        assert!(distrust(dir.path()).is_some(), "nothing recorded");
        mark_open(dir.path()).unwrap();
        assert_eq!(distrust(dir.path()), None, "written in this boot");
        fs::write(path(dir.path()), "boot 00000000-another-boot\n").unwrap();
        assert!(distrust(dir.path()).unwrap().contains("restarted"));
        mark_closed(dir.path()).unwrap();
        assert_eq!(distrust(dir.path()), None, "closed");
    }
}
