//! The request path: bytes in, bytes out. Every byte sequence gets a well-formed response or
//! deliberate silence; nothing here can panic on input.

use hickory_proto::op::{Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, LowerName, RecordType};

use super::answer;
use super::snapshot::Snapshot;
use super::wire::{self, Encoded, HEADER_LEN, OptOut, QueryHeader};

/// Largest DNS message (RFC 1035 §4.2.2 length prefix over TCP).
pub const MAX_MESSAGE: usize = 65535;
/// Classic UDP limit when the query has no EDNS (RFC 1035 §2.3.4).
const CLASSIC_UDP_LIMIT: usize = 512;

/// How the query arrived: decides the size limit of the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// Writes the response to `query` into `out` (cleared first). Returns false when nothing must
/// be sent: too short to have a header, or itself a response.
pub fn respond(snapshot: &Snapshot, query: &[u8], transport: Transport, out: &mut Vec<u8>) -> bool {
    out.clear();
    if query.len() < HEADER_LEN || query[2] & 0x80 != 0 {
        return false;
    }
    let header = QueryHeader {
        id: u16::from_be_bytes([query[0], query[1]]),
        opcode: (query[2] >> 3) & 0x0f,
        recursion_desired: query[2] & 0x01 != 0,
        checking_disabled: query[3] & 0x10 != 0,
    };
    let message = match Message::from_vec(query) {
        Ok(message) => message,
        Err(_) => {
            wire::write_bare_error(out, header, ResponseCode::FormErr);
            return true;
        }
    };
    let [question] = message.queries.as_slice() else {
        wire::write_bare_error(out, header, ResponseCode::FormErr);
        return true;
    };
    let opt = message.edns.as_ref().map(|edns| OptOut {
        payload: snapshot.max_udp_payload,
        ext_rcode: 0,
        dnssec_ok: edns.flags().dnssec_ok,
    });
    if message.metadata.op_code != OpCode::Query {
        wire::write_error(out, header, question, ResponseCode::NotImp, opt);
        return true;
    }
    if let (Some(edns), Some(opt)) = (&message.edns, opt) {
        if edns.version() > 0 {
            let badvers = OptOut { ext_rcode: (u16::from(ResponseCode::BADVERS) >> 4) as u8, ..opt };
            wire::write_error(out, header, question, ResponseCode::BADVERS, Some(badvers));
            return true;
        }
    }
    let limit = match (transport, &message.edns) {
        (Transport::Tcp, _) => MAX_MESSAGE,
        (Transport::Udp, None) => CLASSIC_UDP_LIMIT,
        (Transport::Udp, Some(edns)) => {
            usize::from(edns.max_payload()).clamp(CLASSIC_UDP_LIMIT, usize::from(snapshot.max_udp_payload))
        }
    };
    let qtype = question.query_type();
    match (question.query_class(), qtype) {
        (_, RecordType::OPT) => wire::write_error(out, header, question, ResponseCode::FormErr, opt),
        (DNSClass::IN, RecordType::AXFR | RecordType::IXFR) => {
            wire::write_error(out, header, question, ResponseCode::Refused, opt)
        }
        (DNSClass::IN, _) => answer_in(snapshot, header, question, limit, opt, out),
        (DNSClass::CH, _) => {
            let encoded = Encoded::new(question, &snapshot.chaos(question.name(), qtype));
            encoded.write(out, header, question, limit, opt);
        }
        _ => wire::write_error(out, header, question, ResponseCode::Refused, opt),
    }
    true
}

fn answer_in(snapshot: &Snapshot, header: QueryHeader, question: &Query, limit: usize, opt: Option<OptOut>, out: &mut Vec<u8>) {
    let qtype = question.query_type();
    if let Some(encoded) = snapshot.precomputed(&LowerName::new(question.name()), qtype) {
        encoded.write(out, header, question, limit, opt);
        return;
    }
    let resolved = answer::resolve(&snapshot.catalog, question.name(), qtype);
    Encoded::new(question, &resolved).write(out, header, question, limit, opt);
}
