//! Zone transfers out over TCP, and NOTIFY to secondaries (`notify`): AXFR (RFC 5936), and IXFR (RFC 1995):
//! the SOA alone when the secondary is up to date, the journal's changes since its serial
//! when the journal of dynamic updates holds them and the zone is not signed, else the
//! whole zone (§4 allows it).
//! Only TCP carries them; over UDP the responder refuses both.
//!
//! A transfer is built from one snapshot, so it is one consistent version of the zone even
//! if a reload swaps the snapshot meanwhile, and written in messages of about 16 KiB with
//! names compressed, SOA first and last. A version's whole-zone answer is kept encoded for
//! the next transfer of that version (`cache`).

mod cache;
mod encode;
pub mod notify;

use std::net::IpAddr;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, RecordType};
use tracing::debug;

use super::journal::Changeset;
use super::snapshot::Snapshot;
use super::tsig::{self, Verification};

pub use cache::prepare;
pub use encode::Messages;

/// What a query asks for, when it is a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Axfr,
    /// The serial the secondary has (from the SOA in the authority section).
    Ixfr(Option<u32>),
}

/// A transfer query decoded, or `None` for every other query (answered as usual).
pub struct Transfer {
    pub message: Message,
    pub request: Request,
}

impl Transfer {
    /// Reads `query` as a transfer request when its header and question say it is one (a
    /// few byte reads for every other query before anything is decoded).
    pub fn parse(query: &[u8]) -> Option<Transfer> {
        if query.len() < 12 || query[2] & 0xf8 != 0 || query[4..6] != [0, 1] {
            return None;
        }
        let message = Message::from_vec(query).ok()?;
        let question = message.queries.first()?;
        if question.query_class() != DNSClass::IN {
            return None;
        }
        let request = match question.query_type() {
            RecordType::AXFR => Request::Axfr,
            RecordType::IXFR => {
                let serial = message.authorities.iter().find_map(|r| match &r.data {
                    RData::SOA(soa) => Some(soa.serial),
                    _ => None,
                });
                Request::Ixfr(serial)
            }
            _ => return None,
        };
        Some(Transfer { message, request })
    }

    /// The messages answering this transfer of `request` (its raw bytes, which a TSIG MAC
    /// covers) from `peer`: the zone, the SOA alone, or one REFUSED / NOTAUTH / FORMERR
    /// message; every one signed when the request was (RFC 8945 §5.3.1), and a failed TSIG
    /// check answered NOTAUTH with its TSIG error (§5.2).
    ///
    /// `history` is the journal's changes from the serial an IXFR gives to the zone's
    /// current one ([`Transfer::ixfr_serial`]), when the journal has them.
    pub fn answer(
        &self,
        snapshot: &Snapshot,
        request: &[u8],
        peer: IpAddr,
        history: Option<&[Changeset]>,
    ) -> Messages {
        let question = &self.message.queries[0];
        let id = self.message.metadata.id;
        let now = unix_now();
        let signed = match tsig::verify(&snapshot.keyring, request, now) {
            Verification::Unsigned => None,
            Verification::Signed(signed) => Some(signed),
            Verification::Failed(failure) => {
                let mut messages = Messages::error(id, question, ResponseCode::NotAuth);
                if let Err(e) = failure.sign_error(&mut messages.0[0], now) {
                    debug!("tsig error record for {peer}: {e}");
                }
                return messages;
            }
            Verification::Malformed(_) => {
                return Messages::error(id, question, ResponseCode::FormErr);
            }
        };
        let key = signed.as_ref().map(|s| s.key.name());
        let mut messages = self.unsigned(snapshot, peer, key, history);
        if let Some(signed) = signed {
            let mut signer = signed.signer();
            for message in &mut messages.0 {
                if let Err(e) = signer.sign(message, now) {
                    debug!("signing a transfer message to {peer}: {e}");
                    let mut failed = Messages::error(id, question, ResponseCode::ServFail);
                    let _ = signed.signer().sign(&mut failed.0[0], now);
                    return failed;
                }
            }
        }
        messages
    }

    /// The zone and serial of an IXFR request.
    pub fn ixfr_serial(&self) -> Option<(&Name, u32)> {
        match self.request {
            Request::Ixfr(Some(serial)) => Some((self.message.queries[0].name(), serial)),
            _ => None,
        }
    }

    fn unsigned(
        &self,
        snapshot: &Snapshot,
        peer: IpAddr,
        key: Option<&Name>,
        history: Option<&[Changeset]>,
    ) -> Messages {
        let question = &self.message.queries[0];
        let id = self.message.metadata.id;
        let zone = snapshot
            .catalog
            .find(&LowerName::new(question.name()))
            .filter(|zone| zone.origin == *question.name());
        let Some(zone) = zone else {
            // Not a zone apex we serve: NOTAUTH, as RFC 5936 §2.2.1 suggests.
            return Messages::error(id, question, ResponseCode::NotAuth);
        };
        if !zone.transfer.allows(peer, key) {
            return Messages::error(id, question, ResponseCode::Refused);
        }
        match self.request {
            Request::Ixfr(Some(serial)) if !newer(zone.serial(), serial) => {
                Messages::soa_only(id, question, zone)
            }
            // The journal holds the data's changes, not the signatures and denial records
            // they moved: a signed zone goes out whole.
            Request::Ixfr(Some(serial)) => match history.filter(|_| !zone.is_signed()) {
                Some(changes) if chains(changes, serial, zone.serial()) => {
                    Messages::incremental(id, question, zone, changes)
                }
                _ => cache::zone(id, question, zone),
            },
            _ => cache::zone(id, question, zone),
        }
    }
}

/// Seconds since the Unix epoch (TSIG times, unixtime serials).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whether `changes` lead, one after the other, from `from` to `to`.
fn chains(changes: &[Changeset], from: u32, to: u32) -> bool {
    let mut at = from;
    for change in changes {
        if change.from_serial != at {
            return false;
        }
        at = change.to_serial;
    }
    !changes.is_empty() && at == to
}

/// Serial arithmetic (RFC 1982): whether `ours` is newer than `theirs`.
pub(crate) fn newer(ours: u32, theirs: u32) -> bool {
    ours != theirs && ours.wrapping_sub(theirs) < 1 << 31
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_arithmetic_wraps() {
        assert!(newer(2, 1));
        assert!(!newer(1, 1));
        assert!(!newer(1, 2));
        assert!(newer(0, u32::MAX));
        assert!(!newer(u32::MAX, 0));
    }
}
