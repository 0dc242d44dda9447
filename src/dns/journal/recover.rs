//! Replaying a journal file's bytes: every whole entry in order, and at the first damaged
//! one the call between a torn tail (cut) and damage to acknowledged entries (refused).

use hickory_proto::rr::Name;

use super::entry::{self, Damage, Entry};
use super::{Changeset, Delta, LinkError, check_link};

/// What a journal file holds.
#[derive(Debug)]
pub(super) struct Replay {
    /// The serial of the base entry, if the journal has been compacted.
    pub base_serial: Option<u32>,
    /// The net changes the base entry holds (empty without one).
    pub base: Delta,
    /// Bytes of the header and the base entry.
    pub base_len: usize,
    /// The change entries after the base, in order, chained by serial.
    pub history: Vec<Changeset>,
    /// The size in bytes of each change entry.
    pub sizes: Vec<u64>,
    /// The commit number of the last entry (0 for none).
    pub commit: u64,
    /// Where the valid entries end.
    pub end: usize,
    /// The damage found at `end` and judged a torn tail, if any.
    pub cut: Option<Damage>,
}

impl Replay {
    pub fn serial(&self) -> Option<u32> {
        self.history
            .last()
            .map(|c| c.to_serial)
            .or(self.base_serial)
    }
}

/// Why a journal file cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("bad file header: {0}")]
    Header(String),
    #[error("the file belongs to zone {0}")]
    OtherZone(Name),
    #[error(
        "damaged entry at byte {offset} ({damage}) with a later append at byte {later}: \
         cutting it would lose acknowledged updates; repair the file or move it away"
    )]
    Damaged {
        offset: u64,
        damage: Damage,
        later: u64,
    },
    #[error("unreadable entry at byte {offset}: {damage}")]
    Unreadable { offset: u64, damage: Damage },
    #[error("entry at byte {offset}: {link}")]
    Chain { offset: u64, link: LinkError },
}

/// Replays `buf`, the whole content of the journal file of `zone`.
///
/// Appends are numbered (commit numbers) and each one is fsynced before the next is
/// written, so a crash can only damage the last append. Damage followed by an entry of a
/// later append than the one after the last good entry is therefore damage to synced,
/// acknowledged data, and an error; anything else is the tail of an append that never
/// finished, to be cut.
pub(super) fn replay(buf: &[u8], zone: &Name) -> Result<Replay, ReplayError> {
    let (owner, header_len) = entry::read_header(buf).map_err(ReplayError::Header)?;
    if owner != *zone {
        return Err(ReplayError::OtherZone(owner));
    }
    let mut replay = Replay {
        base_serial: None,
        base: Delta::default(),
        base_len: header_len,
        history: Vec::new(),
        sizes: Vec::new(),
        commit: 0,
        end: header_len,
        cut: None,
    };
    let mut pos = header_len;
    while pos < buf.len() {
        let frame = match entry::read_frame(buf, pos) {
            Ok(frame) => frame,
            Err(damage) => {
                if let Some(later) = later_append(buf, pos + 1, replay.commit + 1) {
                    return Err(ReplayError::Damaged {
                        offset: pos as u64,
                        damage,
                        later: later as u64,
                    });
                }
                replay.cut = Some(damage);
                break;
            }
        };
        let offset = pos as u64;
        let unreadable = |damage| ReplayError::Unreadable { offset, damage };
        if frame.commit < replay.commit {
            return Err(unreadable(Damage::CommitOrder));
        }
        match entry::decode(frame.kind, frame.payload, zone).map_err(unreadable)? {
            Entry::Base { .. } if pos != header_len => {
                return Err(unreadable(Damage::MisplacedBase));
            }
            Entry::Base { serial, delta } => {
                replay.base_serial = Some(serial);
                replay.base = delta;
                replay.base_len = frame.end;
            }
            Entry::Change(change) => {
                check_link(replay.serial(), &change)
                    .map_err(|link| ReplayError::Chain { offset, link })?;
                replay.sizes.push((frame.end - pos) as u64);
                replay.history.push(change);
            }
        }
        replay.commit = frame.commit;
        pos = frame.end;
        replay.end = pos;
    }
    Ok(replay)
}

/// The offset of a whole entry at or after `from` written by an append later than
/// `last_possible_torn`, if there is one.
fn later_append(buf: &[u8], from: usize, last_possible_torn: u64) -> Option<usize> {
    (from..buf.len()).find(|&pos| {
        entry::read_frame(buf, pos).is_ok_and(|frame| frame.commit > last_possible_torn)
    })
}
