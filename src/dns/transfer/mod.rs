//! Zone transfers out over TCP: AXFR (RFC 5936), and IXFR (RFC 1995) answered with the
//! current SOA when the secondary is up to date, else with the whole zone (§4 allows it).
//! Only TCP carries them; over UDP the responder refuses both.
//!
//! A transfer is built from one snapshot, so it is one consistent version of the zone even
//! if a reload swaps the snapshot meanwhile, and written in messages of about 16 KiB with
//! names compressed, SOA first and last.

mod encode;

use std::net::IpAddr;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, LowerName, RData, RecordType};

use super::snapshot::Snapshot;

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

    /// The messages answering this transfer from `peer` (`tsig_key`: the key the request was
    /// verified as signed with): the zone, the SOA alone, or one REFUSED / NOTAUTH message.
    pub fn answer(
        &self,
        snapshot: &Snapshot,
        peer: IpAddr,
        tsig_key: Option<&hickory_proto::rr::Name>,
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
        if !zone.transfer.allows(peer, tsig_key) {
            return Messages::error(id, question, ResponseCode::Refused);
        }
        match self.request {
            Request::Ixfr(Some(serial)) if !newer(zone.serial(), serial) => {
                Messages::soa_only(id, question, zone)
            }
            _ => Messages::zone(id, question, zone),
        }
    }
}

/// Serial arithmetic (RFC 1982): whether `ours` is newer than `theirs`.
fn newer(ours: u32, theirs: u32) -> bool {
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
