//! Retention: a sealed segment goes, whole, once its newest record is older than the
//! stream's retention; the trim horizon becomes the first segment left. The segment being
//! written is never removed, so a shard always keeps its newest records' offsets.

use std::fs;
use std::io;
use std::path::Path;

use tracing::{debug, warn};

use super::index;
use super::shard::ShardState;

/// Removes the sealed segments whose newest record arrived before `cutoff_ms`, oldest
/// first; returns how many. Readers holding a removed segment keep reading it.
pub(super) fn sweep(state: &ShardState, cutoff_ms: u64) -> usize {
    let mut expired = Vec::new();
    state.change_segments(|current| {
        let sealed = current.len().saturating_sub(1);
        let old = current[..sealed]
            .iter()
            .take_while(|s| s.last_arrival().is_none_or(|ms| ms < cutoff_ms))
            .count();
        if old == 0 {
            return None;
        }
        expired = current[..old].to_vec();
        Some(current[old..].to_vec())
    });
    for segment in &expired {
        debug!(file = %segment.path.display(), "retention removes a segment");
        // The segment first: an index left behind is removed as stale at the next open.
        remove(&segment.path);
        remove(&index::path_for(&segment.path));
    }
    expired.len()
}

fn remove(path: &Path) {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => warn!(file = %path.display(), "retention cannot remove a file: {e}"),
    }
}
