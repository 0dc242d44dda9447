//! A delivery's checkpoint: the next offset to deliver per shard, saved atomically in the
//! delivery folder, and tied to the stream's creation time so a re-created stream of the
//! same name starts over.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::stream::log::Stream;

const FILE_NAME: &str = ".edgewise-checkpoint.json";

#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    stream_created_ms: u64,
    next: BTreeMap<String, u64>,
}

pub(super) struct Checkpoint {
    path: PathBuf,
    saved: Saved,
}

impl Checkpoint {
    pub(super) async fn load(dir: &Path, stream: &Stream) -> io::Result<Checkpoint> {
        let path = dir.join(FILE_NAME);
        let created = created_ms(stream);
        let saved = match tokio::fs::read(&path).await {
            Ok(bytes) => {
                let saved: Saved = serde_json::from_slice(&bytes).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{} is not a delivery checkpoint: {e}", path.display()),
                    )
                })?;
                if saved.stream_created_ms == created {
                    saved
                } else {
                    tracing::warn!(
                        "{}: stream {} was re-created; delivering it from its start",
                        path.display(),
                        stream.name()
                    );
                    Saved::default()
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Saved::default(),
            Err(e) => return Err(e),
        };
        Ok(Checkpoint {
            path,
            saved: Saved {
                stream_created_ms: created,
                ..saved
            },
        })
    }

    pub(super) fn next(&self, shard_id: &str) -> u64 {
        self.saved.next.get(shard_id).copied().unwrap_or(0)
    }

    pub(super) fn set(&mut self, shard_id: &str, next: u64) {
        self.saved.next.insert(shard_id.to_owned(), next);
    }

    /// Writes a temporary file, syncs it and renames it over the checkpoint.
    pub(super) async fn save(&self) -> io::Result<()> {
        let text = serde_json::to_vec(&self.saved).map_err(io::Error::other)?;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || super::file::write_atomically(&path, &text))
            .await
            .map_err(io::Error::other)?
    }
}

fn created_ms(stream: &Stream) -> u64 {
    stream
        .created()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
