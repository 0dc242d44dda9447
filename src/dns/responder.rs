//! The request path: bytes in, bytes out. Every byte sequence gets a well-formed response or
//! deliberate silence; nothing here can panic on input. Every response to a query with one
//! question is counted in the snapshot's metrics (malformed ones by the caller).

use std::net::IpAddr;

use hickory_proto::op::{Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, LowerName, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use tracing::debug;

use super::answer::{self, Routing};
use super::dnssec::proof::add_proofs;
use super::edns::{self, ClientSubnet};
use super::malformed::Malformed;
use super::metrics::QueryCounters;
use super::policy::Client;
use super::snapshot::{Prepared, Snapshot};
use super::transfer::unix_now;
use super::tsig::{self, Verification};
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

/// What [`respond`] made of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Outcome {
    /// `out` holds the response.
    Answered,
    /// `out` holds FORMERR, or nothing when not even a header could be read.
    Malformed(Malformed),
    /// The packet is itself a response: answering it could start a loop between servers.
    Ignored,
}

impl Outcome {
    /// True when `out` holds a response to send.
    pub fn has_reply(self) -> bool {
        !matches!(
            self,
            Outcome::Ignored | Outcome::Malformed(Malformed::Header)
        )
    }
}

/// Writes the response to `query` from `peer` into `out` (cleared first), and says whether
/// there is anything to send and whether the query was malformed.
pub fn respond(
    snapshot: &Snapshot,
    query: &[u8],
    peer: IpAddr,
    transport: Transport,
    out: &mut Vec<u8>,
) -> Outcome {
    out.clear();
    if query.len() < HEADER_LEN {
        return Outcome::Malformed(Malformed::Header);
    }
    if query[2] & 0x80 != 0 {
        return Outcome::Ignored;
    }
    let header = QueryHeader {
        id: u16::from_be_bytes([query[0], query[1]]),
        opcode: (query[2] >> 3) & 0x0f,
        recursion_desired: query[2] & 0x01 != 0,
        checking_disabled: query[3] & 0x10 != 0,
    };
    // Read before hickory decodes the message: hickory logs a WARN for every badly framed OPT
    // record, and those packets can come from any spoofed address.
    let subnet = match edns::client_subnet(query) {
        Ok(subnet) => subnet,
        Err(edns::MalformedSubnet) => {
            match only_question(query) {
                Some(question) => {
                    wire::write_error(out, header, &question, ResponseCode::FormErr, None)
                }
                None => wire::write_bare_error(out, header, ResponseCode::FormErr),
            }
            return Outcome::Malformed(Malformed::Edns);
        }
    };
    let message = match Message::from_vec(query) {
        Ok(message) => message,
        Err(_) => {
            wire::write_bare_error(out, header, ResponseCode::FormErr);
            return Outcome::Malformed(Malformed::Undecodable);
        }
    };
    let [question] = message.queries.as_slice() else {
        wire::write_bare_error(out, header, ResponseCode::FormErr);
        return Outcome::Malformed(Malformed::QuestionCount);
    };
    let request = Request {
        header,
        message: &message,
        question,
        subnet,
        peer,
        transport,
    };
    if carries_tsig(&message) {
        return respond_signed(snapshot, query, &request, out);
    }
    respond_to(snapshot, &request, 0, out)
}

/// True when the message ends with a TSIG record: hickory keeps it apart as the signature
/// with its DNSSEC feature, and as the last additional record without.
fn carries_tsig(message: &Message) -> bool {
    message.signature.is_some()
        || (message.additionals.last()).is_some_and(|r| r.record_type() == RecordType::TSIG)
}

/// A query hickory has decoded, with what the raw bytes told beyond it.
struct Request<'a> {
    header: QueryHeader,
    message: &'a Message,
    question: &'a Query,
    subnet: Option<ClientSubnet>,
    peer: IpAddr,
    transport: Transport,
}

/// Answers a query carrying a TSIG record (RFC 8945 §5.2, §5.3): verified on the raw bytes,
/// then answered as unsigned and signed, with room kept for the signature within the size
/// limit; NOTAUTH with the TSIG error when the check fails, FORMERR when the record is
/// unreadable. Secondaries sign their SOA refresh queries with the transfer key and reject
/// an unsigned answer.
fn respond_signed(
    snapshot: &Snapshot,
    query: &[u8],
    request: &Request<'_>,
    out: &mut Vec<u8>,
) -> Outcome {
    let now = unix_now();
    match tsig::verify(&snapshot.keyring, query, now) {
        Verification::Unsigned => respond_to(snapshot, request, 0, out),
        Verification::Signed(signed) => {
            let mut signer = signed.signer();
            let outcome = respond_to(snapshot, request, signer.record_len(), out);
            if let Err(e) = signer.sign(out, now) {
                debug!("signing the answer to {}: {e}", request.peer);
                out.clear();
                wire::write_error(
                    out,
                    request.header,
                    request.question,
                    ResponseCode::ServFail,
                    None,
                );
                let _ = signed.signer().sign(out, now);
            }
            outcome
        }
        Verification::Failed(failure) => {
            wire::write_error(
                out,
                request.header,
                request.question,
                ResponseCode::NotAuth,
                None,
            );
            if let Err(e) = failure.sign_error(out, now) {
                debug!("tsig error record for {}: {e}", request.peer);
            }
            Outcome::Answered
        }
        Verification::Malformed(_) => {
            wire::write_error(
                out,
                request.header,
                request.question,
                ResponseCode::FormErr,
                None,
            );
            Outcome::Malformed(Malformed::Tsig)
        }
    }
}

/// Writes the answer to a decoded query, `reserve` bytes under the size limit (room for a
/// TSIG record), and counts it.
fn respond_to(
    snapshot: &Snapshot,
    request: &Request<'_>,
    reserve: usize,
    out: &mut Vec<u8>,
) -> Outcome {
    let &Request {
        header,
        message,
        question,
        subnet,
        peer,
        transport,
    } = request;
    let metrics = &*snapshot.metrics;
    if message.edns.is_some() {
        metrics.edns(subnet.is_some());
    }
    let code = u16::from(question.query_type());
    let subnet = subnet.filter(|_| snapshot.use_client_subnet);
    let opt = message.edns.as_ref().map(|edns| OptOut {
        payload: snapshot.max_udp_payload,
        ext_rcode: 0,
        dnssec_ok: edns.flags().dnssec_ok,
        client_subnet: subnet.map(|s| (s, 0)),
    });
    if message.metadata.op_code != OpCode::Query {
        wire::write_error(out, header, question, ResponseCode::NotImp, opt);
        metrics.response(metrics.unzoned(), code, transport, 0, out);
        return Outcome::Answered;
    }
    if let (Some(edns), Some(opt)) = (&message.edns, opt)
        && edns.version() > 0
    {
        let badvers = OptOut {
            ext_rcode: (u16::from(ResponseCode::BADVERS) >> 4) as u8,
            ..opt
        };
        wire::write_error(out, header, question, ResponseCode::BADVERS, Some(badvers));
        metrics.response(metrics.unzoned(), code, transport, badvers.ext_rcode, out);
        return Outcome::Answered;
    }
    let limit = match (transport, &message.edns) {
        (Transport::Tcp, _) => MAX_MESSAGE,
        (Transport::Udp, None) => CLASSIC_UDP_LIMIT,
        (Transport::Udp, Some(edns)) => usize::from(edns.max_payload())
            .clamp(CLASSIC_UDP_LIMIT, usize::from(snapshot.max_udp_payload)),
    } - reserve;
    let qtype = question.query_type();
    match (question.query_class(), qtype) {
        (_, RecordType::OPT) => {
            wire::write_error(out, header, question, ResponseCode::FormErr, opt)
        }
        (DNSClass::IN, RecordType::AXFR | RecordType::IXFR) => {
            wire::write_error(out, header, question, ResponseCode::Refused, opt)
        }
        (DNSClass::IN, _) => {
            let wanted = Wanted {
                header,
                limit,
                transport,
            };
            answer_in(snapshot, wanted, question, opt, client(peer, subnet), out);
            return Outcome::Answered;
        }
        (DNSClass::CH, _) => {
            let encoded = Encoded::new(question, &snapshot.chaos(question.name(), qtype));
            encoded.write(out, header, question, limit, opt);
        }
        _ => wire::write_error(out, header, question, ResponseCode::Refused, opt),
    }
    metrics.response(metrics.unzoned(), code, transport, 0, out);
    Outcome::Answered
}

/// The question of a packet hickory has not decoded, when it has exactly one that reads.
fn only_question(packet: &[u8]) -> Option<Query> {
    if packet.get(4..6)? != [0, 1] {
        return None;
    }
    let mut decoder = BinDecoder::new(packet);
    decoder.read_slice(HEADER_LEN).ok()?;
    Query::read(&mut decoder).ok()
}

/// The client routing decisions see: the ECS subnet when it carries bits, else the peer.
fn client(peer: IpAddr, subnet: Option<ClientSubnet>) -> Client {
    match subnet {
        Some(subnet) if subnet.source_prefix > 0 => Client {
            addr: subnet.addr,
            prefix_len: subnet.source_prefix,
        },
        _ => Client {
            addr: peer,
            prefix_len: if peer.is_ipv4() { 32 } else { 128 },
        },
    }
}

/// How the response to an IN query is to be written.
#[derive(Clone, Copy)]
struct Wanted {
    header: QueryHeader,
    limit: usize,
    transport: Transport,
}

/// Answers an IN query from the zones and counts it under the zone answered from.
fn answer_in(
    snapshot: &Snapshot,
    wanted: Wanted,
    question: &Query,
    mut opt: Option<OptOut>,
    client: Client,
    out: &mut Vec<u8>,
) {
    let Wanted {
        header,
        limit,
        transport,
    } = wanted;
    let qtype = question.query_type();
    // A DO query, when some zone is signed, gets RRSIGs and proofs with its answer.
    let signed = snapshot.has_signed_zones && opt.is_some_and(|o| o.dnssec_ok);
    let mut with_scope = |scope: u8| {
        if let Some(opt) = &mut opt {
            opt.client_subnet = opt.client_subnet.map(|(subnet, _)| (subnet, scope));
        }
        opt
    };
    let metrics = &*snapshot.metrics;
    let resolved;
    let prepared = snapshot.prepared(&LowerName::new(question.name()), qtype, signed);
    let counters: &QueryCounters = match prepared {
        Some((Prepared::Fixed(encoded), counters)) => {
            encoded.write(out, header, question, limit, opt);
            counters
        }
        Some((Prepared::Routed(routed), counters)) => {
            let decision = routed.group.decide(&client, &snapshot.env());
            routed.group.count(&decision.chosen);
            let encoded = decision
                .chosen
                .first()
                .map_or(&routed.nodata, |i| &routed.per_member[i]);
            encoded.write(out, header, question, limit, with_scope(decision.scope));
            counters
        }
        None => {
            let routing = Routing {
                client,
                env: snapshot.env(),
                count: true,
            };
            let mut answer = answer::resolve(&snapshot.catalog, question.name(), qtype, &routing);
            // Encoded after the lowercased question, as prepared answers are: names in the
            // sections compress against it, so they come out in the query's spelling on the
            // wire (case echo, as NSD and Knot answer), not in the zone's.
            let mut lowered = Query::query(question.name().to_lowercase(), qtype);
            lowered.set_query_class(question.query_class());
            let encoded = if signed {
                add_proofs(&mut answer);
                Encoded::signed(&lowered, &answer)
            } else {
                Encoded::new(&lowered, &answer)
            };
            resolved = answer;
            encoded.write(out, header, question, limit, with_scope(resolved.scope));
            resolved
                .zone
                .as_ref()
                .map_or(metrics.unzoned(), |zone| &zone.counters)
        }
    };
    metrics.response(counters, u16::from(qtype), transport, 0, out);
    metrics.sample_name(counters, question.name(), u16::from(qtype));
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::{Arc, LazyLock};

    use hickory_proto::op::{Edns, Message, MessageType, Query};
    use hickory_proto::rr::{Name, RecordType};
    use proptest::prelude::*;

    use super::*;
    use crate::config::Config;
    use crate::geo::GeoDb;
    use crate::health::HealthTable;

    const ZONE: &str = r#"
[dns]
[[dns.zones]]
name = "fuzz.example"
records = [
  { name = "@", type = "NS", values = ["ns1.fuzz.example."] },
  { name = "ns1", type = "A", values = ["192.0.2.1"] },
  { name = "@", type = "MX", values = ["10 ns1.fuzz.example."] },
  { name = "www", type = "CNAME", values = ["ns1"] },
  { name = "*.w", type = "TXT", values = ['"wild"'] },
  { name = "big", type = "TXT", values = ['"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"', '"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"', '"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"', '"dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"', '"eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"', '"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"'] },
  { name = "deleg", type = "NS", values = ["ns.deleg.fuzz.example."] },
  { name = "ns.deleg", type = "A", values = ["192.0.2.2"] },
]
"#;

    static SNAPSHOT: LazyLock<Snapshot> = LazyLock::new(|| {
        let config = Config::from_str(ZONE, Path::new("fuzz.toml")).expect("fuzz config is valid");
        let dns = config.dns.expect("has [dns]");
        let health = Arc::new(HealthTable::new(&dns.health_checks));
        let geo = Arc::new(GeoDb::open(&dns.geo).expect("no databases to open"));
        Snapshot::build(&dns, health, geo, Arc::default())
    });

    fn query_bytes(name: &str, rtype: RecordType, edns: bool) -> Vec<u8> {
        let mut message = Message::new(0x1234, MessageType::Query, OpCode::Query);
        message.add_query(Query::query(
            Name::from_ascii(name).expect("valid name"),
            rtype,
        ));
        if edns {
            message.set_edns(Edns::new());
        }
        message.to_vec().expect("query encodes")
    }

    /// Whatever came in, a reply is a parseable response with the query's ID, within limits.
    fn check_reply(query: &[u8], transport: Transport, snapshot: &Snapshot) {
        let mut out = Vec::new();
        if !respond(
            snapshot,
            query,
            "192.0.2.7".parse().expect("an address"),
            transport,
            &mut out,
        )
        .has_reply()
        {
            assert!(
                query.len() < HEADER_LEN || query[2] & 0x80 != 0,
                "silence only for headerless or response packets"
            );
            return;
        }
        let reply = Message::from_vec(&out).expect("every reply parses");
        assert_eq!(reply.metadata.id, u16::from_be_bytes([query[0], query[1]]));
        assert_eq!(reply.metadata.message_type, MessageType::Response);
        if transport == Transport::Udp {
            assert!(
                out.len() <= usize::from(snapshot.max_udp_payload),
                "udp reply of {} bytes",
                out.len()
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let snapshot = &*SNAPSHOT;
            check_reply(&bytes, Transport::Udp, snapshot);
            check_reply(&bytes, Transport::Tcp, snapshot);
        }

        #[test]
        fn mutated_queries_never_panic(
            name in prop::sample::select(vec!["fuzz.example.", "www.fuzz.example.", "a.w.fuzz.example.", "big.fuzz.example.", "x.deleg.fuzz.example.", "nope.fuzz.example.", "other.test."]),
            rtype in prop::sample::select(vec![RecordType::A, RecordType::TXT, RecordType::ANY, RecordType::MX, RecordType::NS, RecordType::DS]),
            edns in any::<bool>(),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
            cut in any::<usize>(),
            extra in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let snapshot = &*SNAPSHOT;
            let mut bytes = query_bytes(name, rtype, edns);
            check_reply(&bytes, Transport::Udp, snapshot);
            for (at, value) in flips {
                let len = bytes.len();
                bytes[at % len] = value;
            }
            check_reply(&bytes, Transport::Udp, snapshot);
            bytes.truncate(cut % (bytes.len() + 1));
            check_reply(&bytes, Transport::Udp, snapshot);
            bytes.extend(extra);
            check_reply(&bytes, Transport::Tcp, snapshot);
        }
    }
}
