//! The journal of a zone's dynamic changes: RFC 2136 updates are written and fsynced here
//! before they are acknowledged, replayed at start, and kept as the recent history that
//! IXFR (RFC 1995) answers from.
//!
//! Updates are layered on the zone as the config loads it, and that data stays the user's
//! to edit. So the journal keeps two things: the net dynamic changes relative to the
//! configured data (a [`Delta`]), which a restart restores whole, and the recent
//! [`Changeset`]s, which only IXFR needs. Compaction folds old changesets into a *base*
//! entry, so the file stays bounded and no update is ever lost.
//!
//! A changeset should leave out the SOA record: its serials say which version it makes, and
//! a delta that held the SOA would override the user's later edits of it. IXFR's SOA
//! records are the zone's SOA with each serial put in.
//!
//! # On disk
//! One file per zone, `<dir>/<name>.journal` (see [`file_name`]). Integers are
//! little-endian; records are in DNS wire form, each encoded on its own with uncompressed
//! names in their own case, so an entry decodes without anything else.
//! ```text
//! header   0   4  magic "EWDJ"
//!          4   1  version (1)
//!          5   1  n: length of the zone name
//!          6   n  zone name, lowercase wire form (a file moved to another zone's name is refused)
//!          6+n 4  CRC32C of the header's bytes before it
//! entry    0   2  marker D5 4A         a scan past damage can find entries again
//!          2   1  kind: 1 = base, 2 = change
//!          3   1  flags (0)
//!          4   4  payload length       at most MAX_ENTRY_BYTES; more is damage
//!          8   8  commit number        the append that wrote the entry (see Recovery)
//!          16  4  CRC32C of bytes 0..16 and the payload
//!          20  .. payload
//! base     serial u32, removed records, added records        (only ever the first entry)
//! change   from serial u32, to serial u32, removed records, added records
//! records  count u32, then per record: length u16, wire form
//! ```
//! Each change's from serial is the serial before it (the base's, or the previous change's
//! to serial), and its to serial is newer (RFC 1982).
//!
//! # Writing
//! [`Journal::append`] writes a batch of changesets (the caller's group commit) with one
//! write and one `fdatasync`, all under one commit number, before it returns; what it
//! returned `Ok` for survives a crash. If the write or the sync fails, the bytes on disk are
//! in an unknown state (after a failed fsync Linux may drop the dirty pages and report
//! success next time), so the journal cuts the file back to its last good length as far as
//! it can and is *poisoned*: every later call fails until the zone reopens it, which reads
//! back what the disk really holds.
//!
//! Compaction ([`Journal::compact`], [`Journal::rebase`]) writes a new file (temporary name,
//! fsync, rename over the old one, fsync of the directory): a crash leaves the old file or
//! the new one, and a temporary file left behind is removed at open.
//!
//! # Recovery
//! [`Journal::open`] replays every entry in order and stops at the first that is not whole
//! and checksummed. Each append is synced before the next one is written, so a crash can
//! only damage the last append: damage followed by an entry of a later append is damage to
//! acknowledged data, and opening fails with the file and byte offset (the zone must not
//! start without updates it acknowledged). Otherwise the damage is the torn tail of an
//! append that never returned, and it is cut off with a warning. Damage inside the last
//! append cannot be told from a torn write, so it is cut too. Entries that decode badly
//! under a good checksum, or break the serial chain, are errors: that is a bug or a file
//! from another version, never a crash.

mod delta;
mod entry;
mod recover;
#[cfg(test)]
pub(crate) mod tests;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use hickory_proto::rr::{Name, Record};

pub use delta::{Delta, fold};
pub use entry::{Damage, EncodeError, MAX_ENTRY_BYTES};
pub use recover::ReplayError;

/// A journal file larger than this is refused rather than read into memory. Compaction
/// keeps files far below it.
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// One update's changes to a zone: the records it removed and added, and the serial it
/// moved the zone from and to. Records compare as hickory's `Record` does (RFC 2136 §1.1.1:
/// TTL excluded).
#[derive(Debug, Clone, PartialEq)]
pub struct Changeset {
    pub zone: Name,
    pub from_serial: u32,
    pub to_serial: u32,
    pub removed: Vec<Record>,
    pub added: Vec<Record>,
}

/// How much history the journal keeps. Compaction starts when either bound is passed and
/// keeps the newest changes within half of each, so it runs once per many appends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Changesets kept for IXFR. Defaults to 1,000.
    pub max_changes: usize,
    /// Bytes of changesets kept for IXFR; the base entry (the dynamic state itself) is not
    /// counted, it is as large as the state. Defaults to 4 MiB.
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_changes: 1000,
            max_bytes: 4 << 20,
        }
    }
}

/// What a journal restores at open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// The zone's latest serial, if the journal has ever recorded one.
    pub serial: Option<u32>,
    /// Every dynamic change, net, relative to the zone's configured data.
    pub delta: Delta,
}

/// Why a changeset cannot follow the journal's latest serial.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("changeset from serial {found} does not follow serial {expected}")]
    Gap { expected: u32, found: u32 },
    #[error("serial {to} is not newer than {from}")]
    NotNewer { from: u32, to: u32 },
}

/// What can go wrong with a journal, each naming its file.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {}: {op}: {source}", path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("journal {}: {source}", path.display())]
    Replay {
        path: PathBuf,
        #[source]
        source: ReplayError,
    },
    #[error("journal {}: {size} bytes is over the {MAX_FILE_BYTES}-byte limit", path.display())]
    FileTooLarge { path: PathBuf, size: u64 },
    #[error("journal {}: a changeset of zone {found} does not belong here", path.display())]
    WrongZone { path: PathBuf, found: Name },
    #[error("journal {}: {source}", path.display())]
    Link {
        path: PathBuf,
        #[source]
        source: LinkError,
    },
    #[error("journal {}: {source}", path.display())]
    Entry {
        path: PathBuf,
        #[source]
        source: EncodeError,
    },
    #[error("journal {}: an earlier write failed; reopen the journal to go on", path.display())]
    Poisoned { path: PathBuf },
    #[error("zone {zone}: its journal file name would be {len} bytes, over 255")]
    NameTooLong { zone: Name, len: usize },
}

/// The journal of one zone: its file, and what it holds in memory to compact and to answer
/// IXFR. Its calls do blocking file I/O (and `append` waits for the disk), so they belong
/// on a thread of their own or in `spawn_blocking`, never on the answer path.
#[derive(Debug)]
pub struct Journal {
    zone: Name,
    path: PathBuf,
    file: File,
    limits: Limits,
    /// Bytes of valid content; the next append goes here.
    len: u64,
    /// Bytes of the header and the base entry, which the history bound leaves out.
    base_len: u64,
    /// The commit number of the last append.
    commit: u64,
    base_serial: Option<u32>,
    base: Delta,
    history: Vec<Changeset>,
    /// The size of each history entry in the file.
    sizes: Vec<u64>,
    poisoned: bool,
}

// === impl Journal ===

impl Journal {
    /// Opens (creating if need be) the journal of `zone` in `dir`, and replays it.
    ///
    /// # Errors
    /// I/O errors, and damage that a crash cannot explain (see the module doc): the zone
    /// must not be served without updates that were acknowledged.
    pub fn open(
        dir: &Path,
        zone: &Name,
        limits: Limits,
    ) -> Result<(Journal, Replayed), JournalError> {
        let path = dir.join(file_name(zone)?);
        let io = |op| {
            let path = path.clone();
            move |source| JournalError::Io { path, op, source }
        };
        fs::create_dir_all(dir).map_err(io("create the directory"))?;
        match fs::remove_file(temp_path(&path)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(io("remove a leftover compaction file")(e));
            }
            _ => {}
        }
        if !path.try_exists().map_err(io("stat"))? {
            write_new(&path, &entry::header(zone))?;
            sync_dir(&path)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io("open"))?;
        let size = file.metadata().map_err(io("stat"))?.len();
        if size > MAX_FILE_BYTES {
            return Err(JournalError::FileTooLarge { path, size });
        }
        let mut buf = Vec::with_capacity(size as usize);
        (&file)
            .take(MAX_FILE_BYTES)
            .read_to_end(&mut buf)
            .map_err(io("read"))?;
        let replay = recover::replay(&buf, zone).map_err(|source| JournalError::Replay {
            path: path.clone(),
            source,
        })?;
        if let Some(damage) = &replay.cut {
            tracing::warn!(
                journal = %path.display(),
                offset = replay.end,
                bytes = buf.len() - replay.end,
                %damage,
                "cutting the torn tail of an append that never completed",
            );
            file.set_len(replay.end as u64)
                .and_then(|()| file.sync_all())
                .map_err(io("cut the torn tail"))?;
        }
        let journal = Journal {
            zone: zone.clone(),
            path,
            file,
            limits,
            len: replay.end as u64,
            base_len: replay.base_len as u64,
            commit: replay.commit,
            base_serial: replay.base_serial,
            base: replay.base,
            history: replay.history,
            sizes: replay.sizes,
            poisoned: false,
        };
        let replayed = Replayed {
            serial: journal.serial(),
            delta: journal.delta(),
        };
        Ok((journal, replayed))
    }

    /// Writes `batch` and makes it durable with one `fdatasync`. The first changeset must
    /// follow the journal's latest serial (any serial if the journal is empty) and each the
    /// one before it.
    ///
    /// # Errors
    /// A batch that does not chain or belongs to another zone is refused before anything is
    /// written. A failed write or sync poisons the journal (see the module doc).
    pub fn append(&mut self, batch: &[Changeset]) -> Result<(), JournalError> {
        self.check_usable()?;
        if batch.is_empty() {
            return Ok(());
        }
        let mut serial = self.serial();
        for change in batch {
            if change.zone != self.zone {
                return Err(JournalError::WrongZone {
                    path: self.path.clone(),
                    found: change.zone.clone(),
                });
            }
            check_link(serial, change).map_err(|source| JournalError::Link {
                path: self.path.clone(),
                source,
            })?;
            serial = Some(change.to_serial);
        }
        let commit = self.commit + 1;
        let mut buf = Vec::new();
        let mut sizes = Vec::with_capacity(batch.len());
        for change in batch {
            let start = buf.len();
            entry::put_change(&mut buf, commit, change)
                .map_err(|source| self.entry_error(source))?;
            sizes.push((buf.len() - start) as u64);
        }
        if let Err(source) = self
            .file
            .write_all_at(&buf, self.len)
            .and_then(|()| self.file.sync_data())
        {
            self.poisoned = true;
            // Best effort: so a reopen does not bring back a batch reported as failed.
            let _ = self.file.set_len(self.len);
            return Err(JournalError::Io {
                path: self.path.clone(),
                op: "append",
                source,
            });
        }
        self.len += buf.len() as u64;
        self.commit = commit;
        self.history.extend_from_slice(batch);
        self.sizes.extend(sizes);
        Ok(())
    }

    /// Compacts when the history is over either of the [`Limits`], keeping the newest
    /// changes within half of each. Returns whether it compacted.
    pub fn compact_if_needed(&mut self) -> Result<bool, JournalError> {
        let Limits {
            max_changes,
            max_bytes,
        } = self.limits;
        if self.history.len() <= max_changes && self.len - self.base_len <= max_bytes {
            return Ok(false);
        }
        let (mut keep, mut bytes) = (0, 0);
        for &size in self.sizes.iter().rev() {
            if keep >= max_changes / 2 || bytes + size > max_bytes / 2 {
                break;
            }
            keep += 1;
            bytes += size;
        }
        self.compact(keep)?;
        Ok(true)
    }

    /// Rewrites the file with only the newest `keep` changesets; older ones are folded into
    /// the base entry, so replay still restores every update.
    pub fn compact(&mut self, keep: usize) -> Result<(), JournalError> {
        self.check_usable()?;
        let dropped = self.history.len().saturating_sub(keep);
        if dropped == 0 {
            return Ok(());
        }
        let serial = self.history[dropped - 1].to_serial;
        let mut base = self.base.clone();
        self.history[..dropped].iter().for_each(|c| base.apply(c));
        self.rewrite(serial, base, dropped)
    }

    /// Starts the history afresh at `serial`, keeping the dynamic state: for when the zone's
    /// serial moved outside the journal (its configured data was edited and reloaded), so
    /// the old history no longer describes the zone and IXFR from it must fall back to AXFR.
    pub fn rebase(&mut self, serial: u32) -> Result<(), JournalError> {
        self.check_usable()?;
        let mut base = self.base.clone();
        self.history.iter().for_each(|c| base.apply(c));
        self.rewrite(serial, base, self.history.len())
    }

    /// The zone's latest serial the journal knows.
    pub fn serial(&self) -> Option<u32> {
        self.history
            .last()
            .map(|c| c.to_serial)
            .or(self.base_serial)
    }

    /// The changesets kept, oldest first.
    pub fn history(&self) -> &[Changeset] {
        &self.history
    }

    /// The changesets that bring a copy of the zone at `serial` up to date (empty when it
    /// is), or `None` when the history does not reach back that far (answer IXFR with AXFR).
    pub fn changes_since(&self, serial: u32) -> Option<&[Changeset]> {
        if self.serial() == Some(serial) {
            return Some(&[]);
        }
        let start = self.history.iter().rposition(|c| c.from_serial == serial)?;
        Some(&self.history[start..])
    }

    /// Every dynamic change, net, relative to the zone's configured data.
    pub fn delta(&self) -> Delta {
        let mut delta = self.base.clone();
        self.history.iter().for_each(|c| delta.apply(c));
        delta
    }

    /// The journal's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's length in bytes.
    pub fn len_bytes(&self) -> u64 {
        self.len
    }

    fn check_usable(&self) -> Result<(), JournalError> {
        if self.poisoned {
            return Err(JournalError::Poisoned {
                path: self.path.clone(),
            });
        }
        Ok(())
    }

    fn entry_error(&self, source: EncodeError) -> JournalError {
        JournalError::Entry {
            path: self.path.clone(),
            source,
        }
    }

    /// Replaces the file with a base entry and the history after its first `dropped`
    /// changesets, numbering the entries' commits afresh.
    fn rewrite(&mut self, serial: u32, base: Delta, dropped: usize) -> Result<(), JournalError> {
        let mut buf = entry::header(&self.zone);
        entry::put_base(&mut buf, 1, serial, &base).map_err(|e| self.entry_error(e))?;
        let base_len = buf.len();
        for (i, change) in self.history[dropped..].iter().enumerate() {
            entry::put_change(&mut buf, i as u64 + 2, change).map_err(|e| self.entry_error(e))?;
        }
        self.file = write_new(&self.path, &buf)?;
        self.len = buf.len() as u64;
        self.base_len = base_len as u64;
        self.commit = (self.history.len() - dropped) as u64 + 1;
        self.base_serial = Some(serial);
        self.base = base;
        self.history.drain(..dropped);
        self.sizes.drain(..dropped);
        // The rename is done: until the directory is synced, a crash may bring back the old
        // file, so nothing more may be acknowledged on top of the new one.
        sync_dir(&self.path).inspect_err(|_| self.poisoned = true)
    }
}

/// Whether `change` can follow a journal at `serial`.
fn check_link(serial: Option<u32>, change: &Changeset) -> Result<(), LinkError> {
    let (from, to) = (change.from_serial, change.to_serial);
    match serial {
        Some(expected) if expected != from => Err(LinkError::Gap {
            expected,
            found: from,
        }),
        // RFC 1982: `to` is newer when it is ahead of `from` by less than half the space.
        _ if to == from || to.wrapping_sub(from) >= 1 << 31 => {
            Err(LinkError::NotNewer { from, to })
        }
        _ => Ok(()),
    }
}

/// The journal file name of `zone`: its labels lowercased (DNS names are case-insensitive),
/// every byte other than `a-z`, `0-9` and `-` written `%xx` (so a `.` or `/` inside a label
/// cannot be confused with the separator or a path), joined by `.`, then `.journal`; the root
/// zone is `@.journal` (`@` is escaped in any label). Distinct zones get distinct names.
///
/// # Errors
/// A name whose escaped form is over 255 bytes, the longest file name most filesystems take.
pub fn file_name(zone: &Name) -> Result<String, JournalError> {
    let mut out = String::new();
    for label in zone.iter() {
        if !out.is_empty() {
            out.push('.');
        }
        for &byte in label {
            match byte.to_ascii_lowercase() {
                b @ (b'a'..=b'z' | b'0'..=b'9' | b'-') => out.push(char::from(b)),
                b => out.push_str(&format!("%{b:02x}")),
            }
        }
    }
    if out.is_empty() {
        out.push('@');
    }
    out.push_str(".journal");
    if out.len() > 255 {
        return Err(JournalError::NameTooLong {
            zone: zone.clone(),
            len: out.len(),
        });
    }
    Ok(out)
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// Puts `content` at `path` whole or not at all (see [`replace_file`]), as a journal error.
fn write_new(path: &Path, content: &[u8]) -> Result<File, JournalError> {
    replace_file(path, content).map_err(|source| JournalError::Io {
        path: path.to_owned(),
        op: "write a new file",
        source,
    })
}

/// Makes the latest rename in `path`'s directory durable (see [`sync_parent`]), as a
/// journal error.
fn sync_dir(path: &Path) -> Result<(), JournalError> {
    sync_parent(path).map_err(|source| JournalError::Io {
        path: path.to_owned(),
        op: "sync the directory",
        source,
    })
}

/// Puts `content` at `path` whole or not at all: a temporary file beside it (`path` with
/// `.tmp` added) written and fsynced, then renamed over `path`; the caller syncs the
/// directory ([`sync_parent`]) before it counts on the new file surviving a crash. Returns
/// the file, open for reading and writing.
///
/// # Errors
/// Whatever the OS says; the temporary file is removed then, and `path` is untouched.
pub(crate) fn replace_file(path: &Path, content: &[u8]) -> io::Result<File> {
    replace_file_with_mode(path, content, 0o666)
}

/// [`replace_file`], the new file created with `mode` (less the umask): a temporary file a
/// crash left behind is removed first, so its mode cannot be the one the new file gets.
///
/// # Errors
/// As [`replace_file`].
pub(crate) fn replace_file_with_mode(path: &Path, content: &[u8], mode: u32) -> io::Result<File> {
    let temp = temp_path(path);
    let _ = fs::remove_file(&temp);
    let written = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&temp)
        .and_then(|file| {
            file.write_all_at(content, 0)?;
            file.sync_all()?;
            fs::rename(&temp, path)?;
            Ok(file)
        });
    written.inspect_err(|_| {
        let _ = fs::remove_file(&temp);
    })
}

/// Makes the latest rename in `path`'s directory durable.
///
/// # Errors
/// The directory cannot be opened or synced.
pub(crate) fn sync_parent(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir).and_then(|d| d.sync_all())
}
