//! Response rate limiting (RRL) of UDP answers, as NSD and Knot do it.
//!
//! A spoofed-source flood turns a server into an amplifier aimed at the forged address. RRL
//! caps the responses a second that one client prefix gets of one kind for one name; over the
//! cap, responses are dropped, and every `slip`-th one goes out truncated (TC=1, no records)
//! so a real client behind that prefix retries over TCP, which cannot be spoofed. TCP is
//! never limited.
//!
//! Responses are keyed by (client prefix, kind, name), read from the response bytes:
//! - positive answer: the query name and type (ANY apart, as NSD does);
//! - NODATA: the query name; NXDOMAIN: the zone (the authority SOA's owner), so random
//!   names under one zone share a bucket; referral: the delegation (the authority NS owner);
//! - any other rcode: one bucket per prefix, whatever the name.
//!
//! The buckets are a fixed table of `AtomicU64`s indexed by a keyed hash; keys that hash
//! alike share a bucket, as in NSD. Each bucket packs its state in one word, updated by
//! compare-and-swap, so the answer path takes no lock and allocates nothing:
//!
//! ```text
//! bits 0..32   stamp: when the bucket was last used, in ticks of 1/16 s
//! bits 32..56  credit: in 1/16 of a response; a response costs 16, a tick refills `rate`,
//!              and it holds at most one second's worth (16 × rate)
//! bits 56..64  slips: limited responses so far, modulo `slip`
//! ```

use std::fmt;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ipnet::IpNet;
use tokio::time::Instant;

use super::metrics::DnsMetrics;
use crate::config::dns::RrlConfig;

/// Ticks a second: refills come in sixteenths, so a limited client is not answered in one
/// burst at each second's start.
const TICKS_PER_SECOND: u32 = 16;
/// The credit one response costs.
const COST: u32 = TICKS_PER_SECOND;
/// How far behind a bucket's stamp a clock reading may be and still be taken as "now": two
/// threads read the clock, then update the bucket in the other order.
const STALE_TICKS: u32 = 1024;
/// Longest name in wire form (RFC 1035 §2.3.4).
const MAX_NAME: usize = 255;
/// Compression pointers followed in one name at most.
const MAX_HOPS: usize = 16;

/// What to do with a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Send,
    /// Over the limit: send nothing.
    Drop,
    /// Over the limit: send a truncated response (TC=1, question only) instead.
    Slip,
}

/// The kinds of response with buckets of their own (NSD's classification, from the bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Positive,
    Any,
    Nodata,
    Nxdomain,
    Referral,
    Error,
}

/// The rate limiter: settings and the bucket table, which a reload may hand on.
#[derive(Debug, Clone)]
pub struct Limiter {
    /// Responses a second per bucket, at most [`crate::config::dns::rrl::MAX_RATE`].
    rate: u32,
    slip: u8,
    ipv4_mask: u32,
    ipv6_mask: u128,
    exempt: Vec<IpNet>,
    table: Arc<Table>,
}

/// The buckets and what their stamps and indices mean; shared across reloads of one size.
struct Table {
    slots: Box<[AtomicU64]>,
    /// Keyed per table, so clients cannot pick names that share a victim's bucket.
    hasher: RandomState,
    /// Tick zero of the stamps.
    origin: Instant,
}

/// A response as RRL sees it.
struct Class {
    kind: Kind,
    qtype: u16,
    /// Length of the name in the caller's buffer that keys the bucket (0: none).
    name_len: usize,
    /// Where the question ends (the header's end when there is none): a slip's length.
    question_end: usize,
}

/// One bucket's state, unpacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bucket {
    stamp: u32,
    credit: u32,
    slips: u8,
}

// === impl Limiter ===

impl Limiter {
    /// A limiter with an empty table of `config.table_size` buckets.
    pub fn new(config: &RrlConfig) -> Limiter {
        let ipv4_mask = match config.ipv4_prefix {
            0 => 0,
            len => u32::MAX << (32 - u32::from(len)),
        };
        let ipv6_mask = match config.ipv6_prefix {
            0 => 0,
            len => u128::MAX << (128 - u32::from(len)),
        };
        Limiter {
            rate: config.responses_per_second,
            slip: config.slip,
            ipv4_mask,
            ipv6_mask,
            exempt: config.exempt.clone(),
            table: Arc::new(Table {
                slots: (0..config.table_size).map(|_| AtomicU64::new(0)).collect(),
                hasher: RandomState::new(),
                origin: Instant::now(),
            }),
        }
    }

    /// Takes over `previous`'s buckets when the table keeps its size, so a reload does not
    /// hand every limited client a fresh second's worth of responses.
    pub fn keep_table(&mut self, previous: &Limiter) {
        if previous.table.slots.len() == self.table.slots.len() {
            self.table = previous.table.clone();
        }
    }

    /// Applies the limit to a UDP `response` for `peer`: true to send it (a slip leaves the
    /// truncated response in its place), false to drop it. Counts what it limits.
    pub fn admit(&self, peer: IpAddr, response: &mut Vec<u8>, metrics: &DnsMetrics) -> bool {
        let now = self.table.ticks(Instant::now());
        match self.decide(peer, response, now) {
            Decision::Send => true,
            Decision::Slip => {
                metrics.rrl_limited(true);
                true
            }
            Decision::Drop => {
                metrics.rrl_limited(false);
                false
            }
        }
    }

    /// [`Limiter::admit`]'s decision at tick `now`, truncating `response` for a slip.
    fn decide(&self, peer: IpAddr, response: &mut Vec<u8>, now: u32) -> Decision {
        let peer = peer.to_canonical();
        if self.exempt.iter().any(|net| net.contains(&peer)) {
            return Decision::Send;
        }
        let mut name = [0u8; MAX_NAME];
        let class = classify(response, &mut name);
        let slot = &self.table.slots[self.slot(peer, &class, &name[..class.name_len])];
        let mut current = slot.load(Ordering::Relaxed);
        let decision = loop {
            let (next, decision) = Bucket::unpack(current).step(now, self.rate, self.slip);
            match slot.compare_exchange_weak(
                current,
                next.pack(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break decision,
                Err(actual) => current = actual,
            }
        };
        if decision == Decision::Slip {
            slip(response, class.question_end);
        }
        decision
    }

    /// The bucket index of a response's key.
    fn slot(&self, peer: IpAddr, class: &Class, name: &[u8]) -> usize {
        let mut hasher = self.table.hasher.build_hasher();
        match peer {
            IpAddr::V4(v4) => hasher.write_u32(u32::from(v4) & self.ipv4_mask),
            IpAddr::V6(v6) => hasher.write_u128(u128::from(v6) & self.ipv6_mask),
        }
        hasher.write_u8(class.kind as u8 | u8::from(peer.is_ipv6()) << 7);
        hasher.write(name);
        if class.kind == Kind::Positive {
            hasher.write_u16(class.qtype);
        }
        // Multiply-shift maps the hash onto the table without a division.
        ((u128::from(hasher.finish()) * self.table.slots.len() as u128) >> 64) as usize
    }
}

// === impl Table ===

impl Table {
    /// Ticks since the table's origin, plus one second: a bucket never used (stamp 0) then
    /// reads as idle for a second, which is full.
    fn ticks(&self, now: Instant) -> u32 {
        let elapsed = now.saturating_duration_since(self.origin);
        let ticks = elapsed.as_secs() * u64::from(TICKS_PER_SECOND)
            + u64::from(elapsed.subsec_nanos() / (1_000_000_000 / TICKS_PER_SECOND));
        (ticks as u32).wrapping_add(TICKS_PER_SECOND)
    }
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("buckets", &self.slots.len())
            .finish_non_exhaustive()
    }
}

// === impl Bucket ===

impl Bucket {
    fn unpack(word: u64) -> Bucket {
        Bucket {
            stamp: word as u32,
            credit: (word >> 32) as u32 & 0x00ff_ffff,
            slips: (word >> 56) as u8,
        }
    }

    fn pack(self) -> u64 {
        u64::from(self.stamp) | u64::from(self.credit) << 32 | u64::from(self.slips) << 56
    }

    /// One response at tick `now`: refill for the ticks gone by, then spend or limit.
    fn step(self, now: u32, rate: u32, slip: u8) -> (Bucket, Decision) {
        let behind = now.wrapping_sub(self.stamp);
        let (stamp, elapsed) = if behind > u32::MAX - STALE_TICKS {
            (self.stamp, 0)
        } else {
            (now, behind.min(TICKS_PER_SECOND))
        };
        let full = rate * TICKS_PER_SECOND;
        let credit = (self.credit + rate * elapsed).min(full);
        if credit >= COST {
            let next = Bucket {
                stamp,
                credit: credit - COST,
                slips: self.slips,
            };
            return (next, Decision::Send);
        }
        let slips = match slip {
            0 => 0,
            n => (self.slips + 1) % n,
        };
        let decision = if slip != 0 && slips == 0 {
            Decision::Slip
        } else {
            Decision::Drop
        };
        (
            Bucket {
                stamp,
                credit,
                slips,
            },
            decision,
        )
    }
}

// === response bytes ===

/// Reads a response's kind and key name (into `name`, lower case, wire form).
fn classify(msg: &[u8], name: &mut [u8; MAX_NAME]) -> Class {
    let mut class = Class {
        kind: Kind::Error,
        qtype: 0,
        name_len: 0,
        question_end: msg.len().min(12),
    };
    let count = |at: usize| {
        msg.get(at..at + 2)
            .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]))
    };
    if msg.len() < 12 || count(4) != 1 {
        return class;
    }
    let Some((qname_end, qname_len)) = read_name(msg, 12, name) else {
        return class;
    };
    let Some(qtype) = msg.get(qname_end..qname_end + 4) else {
        return class;
    };
    class.qtype = u16::from_be_bytes([qtype[0], qtype[1]]);
    class.question_end = qname_end + 4;
    let (authoritative, rcode) = (msg[2] & 0x04 != 0, msg[3] & 0x0f);
    let (answers, authority) = (count(6), count(8));
    class.kind = match rcode {
        0 if answers > 0 && class.qtype == 255 => Kind::Any,
        0 if answers > 0 => Kind::Positive,
        0 if !authoritative && authority > 0 => Kind::Referral,
        0 => Kind::Nodata,
        3 => Kind::Nxdomain,
        _ => return class,
    };
    class.name_len = qname_len;
    if matches!(class.kind, Kind::Nxdomain | Kind::Referral) && authority > 0 {
        // The zone or the delegation: the first authority record's owner.
        class.name_len = skip_records(msg, class.question_end, answers)
            .and_then(|at| read_name(msg, at, name))
            .map_or(0, |(_, len)| len);
    }
    class
}

/// Copies the name at `pos` into `out` (lower case, pointers followed); where the name ends
/// at `pos` and its length. `None` for anything malformed.
fn read_name(msg: &[u8], mut pos: usize, out: &mut [u8; MAX_NAME]) -> Option<(usize, usize)> {
    let (mut len, mut end, mut hops) = (0usize, None, 0);
    loop {
        let byte = *msg.get(pos)?;
        match byte & 0xc0 {
            0x00 if byte == 0 => return Some((end.unwrap_or(pos + 1), len)),
            0x00 => {
                let label = msg.get(pos + 1..pos + 1 + usize::from(byte))?;
                let next = len + 1 + label.len();
                // Room for the root label still to come.
                if next >= MAX_NAME {
                    return None;
                }
                out[len] = byte;
                for (o, b) in out[len + 1..next].iter_mut().zip(label) {
                    *o = b.to_ascii_lowercase();
                }
                len = next;
                pos += 1 + label.len();
            }
            0xc0 => {
                let target = usize::from(byte & 0x3f) << 8 | usize::from(*msg.get(pos + 1)?);
                end.get_or_insert(pos + 2);
                hops += 1;
                // Only backwards, and only so often: no loops.
                if target >= pos || hops > MAX_HOPS {
                    return None;
                }
                pos = target;
            }
            _ => return None,
        }
    }
}

/// Where the record after `count` records starting at `pos` begins.
fn skip_records(msg: &[u8], mut pos: usize, count: u16) -> Option<usize> {
    let mut scratch = [0u8; MAX_NAME];
    for _ in 0..count {
        let (end, _) = read_name(msg, pos, &mut scratch)?;
        let rdlength = msg.get(end + 8..end + 10)?;
        pos = end + 10 + usize::from(u16::from_be_bytes([rdlength[0], rdlength[1]]));
    }
    (pos <= msg.len()).then_some(pos)
}

/// Turns `response` into its slip: the header with TC=1 and the question, no records.
fn slip(response: &mut Vec<u8>, question_end: usize) {
    response.truncate(question_end);
    if response.len() < 12 {
        return;
    }
    response[2] |= 0x02;
    if question_end == 12 {
        response[4..6].fill(0);
    }
    response[6..12].fill(0);
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::{Message, OpCode, Query, ResponseCode};
    use hickory_proto::rr::rdata::{A, NS, SOA};
    use hickory_proto::rr::{Name, RData, Record, RecordType};
    use proptest::prelude::*;

    use super::*;

    const RATE: u32 = 10;
    /// A tick well after the table's start, with every bucket full.
    const T0: u32 = 1000;

    /// A million buckets: the few keys of a test share one with odds of about 1 in 10^5.
    fn config() -> RrlConfig {
        RrlConfig {
            responses_per_second: RATE,
            slip: 2,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            exempt: Vec::new(),
            table_size: 1 << 20,
        }
    }

    fn limiter(rate: u32, slip: u8, exempt: &[&str]) -> Limiter {
        Limiter::new(&RrlConfig {
            responses_per_second: rate,
            slip,
            exempt: exempt.iter().map(|e| e.parse().unwrap()).collect(),
            ..config()
        })
    }

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    /// A response to `qname`/`qtype` as the responder writes them (compression included).
    fn response(qname: &str, qtype: RecordType, kind: Kind) -> Vec<u8> {
        let mut message = Message::response(7, OpCode::Query);
        message.add_query(Query::query(name(qname), qtype));
        message.metadata.authoritative = kind != Kind::Referral;
        let soa = || {
            let soa = SOA::new(name("ns.zone.test."), name("h.zone.test."), 1, 2, 3, 4, 5);
            Record::from_rdata(name("zone.test."), 60, RData::SOA(soa))
        };
        match kind {
            Kind::Positive | Kind::Any => {
                message.add_answer(Record::from_rdata(
                    name(qname),
                    60,
                    RData::A(A::new(192, 0, 2, 1)),
                ));
            }
            Kind::Nodata => {
                message.add_authority(soa());
            }
            Kind::Nxdomain => {
                message.metadata.response_code = ResponseCode::NXDomain;
                message.add_authority(soa());
            }
            Kind::Referral => {
                let ns = RData::NS(NS(name("ns.child.zone.test.")));
                message.add_authority(Record::from_rdata(name("child.zone.test."), 60, ns));
            }
            Kind::Error => message.metadata.response_code = ResponseCode::Refused,
        }
        message.to_vec().unwrap()
    }

    /// Sends `count` responses like `bytes` to `peer` at tick `now`; the decisions.
    fn flood(rrl: &Limiter, peer: &str, bytes: &[u8], now: u32, count: usize) -> Vec<Decision> {
        (0..count)
            .map(|_| rrl.decide(peer.parse().unwrap(), &mut bytes.to_vec(), now))
            .collect()
    }

    fn sent(decisions: &[Decision]) -> usize {
        decisions.iter().filter(|d| **d == Decision::Send).count()
    }

    #[test]
    fn a_full_bucket_sends_a_seconds_worth_then_alternates_drop_and_slip() {
        let mut bucket = Bucket::unpack(0);
        let mut decisions = Vec::new();
        for _ in 0..16 {
            let (next, decision) = bucket.step(T0, RATE, 2);
            bucket = next;
            decisions.push(decision);
        }
        assert_eq!(sent(&decisions), 10);
        assert_eq!(
            decisions[10..],
            [
                Decision::Drop,
                Decision::Slip,
                Decision::Drop,
                Decision::Slip,
                Decision::Drop,
                Decision::Slip
            ]
        );
    }

    #[test]
    fn credit_comes_back_a_sixteenth_of_the_rate_per_tick_up_to_one_second() {
        let empty = Bucket {
            stamp: T0,
            credit: 0,
            slips: 0,
        };
        // One tick: 10/16 of a response, not enough.
        assert_eq!(empty.step(T0 + 1, RATE, 0).1, Decision::Drop);
        // Two ticks: 20/16, one response and 4/16 left over.
        let (after, decision) = empty.step(T0 + 2, RATE, 0);
        assert_eq!((decision, after.credit), (Decision::Send, 4));
        // An hour idle refills one second's worth, no more.
        let (after, _) = empty.step(T0 + 3600 * 16, RATE, 0);
        assert_eq!(after.credit, RATE * 16 - COST);
    }

    #[test]
    fn a_clock_reading_just_behind_the_stamp_refills_nothing() {
        let empty = Bucket {
            stamp: T0,
            credit: 0,
            slips: 0,
        };
        let (after, decision) = empty.step(T0 - 3, RATE, 0);
        assert_eq!(decision, Decision::Drop);
        assert_eq!(after.stamp, T0, "the stamp does not go back");
    }

    #[test]
    fn slip_zero_never_slips_and_slip_one_always_does() {
        let empty = Bucket {
            stamp: T0,
            credit: 0,
            slips: 0,
        };
        let run = |slip| {
            let mut bucket = empty;
            (0..5)
                .map(|_| {
                    let (next, decision) = bucket.step(T0, RATE, slip);
                    bucket = next;
                    decision
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(0), [Decision::Drop; 5]);
        assert_eq!(run(1), [Decision::Slip; 5]);
        assert_eq!(run(3).iter().filter(|d| **d == Decision::Slip).count(), 1);
    }

    #[test]
    fn buckets_pack_into_one_word_and_back() {
        let bucket = Bucket {
            stamp: u32::MAX - 1,
            credit: 16_000_000,
            slips: 9,
        };
        assert_eq!(Bucket::unpack(bucket.pack()), bucket);
    }

    #[test]
    fn a_prefix_shares_a_bucket_and_other_prefixes_and_names_have_their_own() {
        let rrl = limiter(RATE, 2, &[]);
        let www = response("www.zone.test.", RecordType::A, Kind::Positive);
        assert_eq!(sent(&flood(&rrl, "192.0.2.1", &www, T0, 30)), 10);
        assert_eq!(
            sent(&flood(&rrl, "192.0.2.200", &www, T0, 5)),
            0,
            "same /24"
        );
        assert_eq!(
            sent(&flood(&rrl, "192.0.3.1", &www, T0, 5)),
            5,
            "another /24"
        );
        let mail = response("mail.zone.test.", RecordType::A, Kind::Positive);
        assert_eq!(
            sent(&flood(&rrl, "192.0.2.1", &mail, T0, 5)),
            5,
            "another name"
        );
        let aaaa = response("www.zone.test.", RecordType::AAAA, Kind::Positive);
        assert_eq!(
            sent(&flood(&rrl, "192.0.2.1", &aaaa, T0, 5)),
            5,
            "another type"
        );
        let upper = response("WWW.Zone.Test.", RecordType::A, Kind::Positive);
        assert_eq!(
            sent(&flood(&rrl, "192.0.2.1", &upper, T0, 5)),
            0,
            "names are caseless"
        );
        assert_eq!(
            sent(&flood(&rrl, "192.0.2.1", &www, T0 + 16, 30)),
            10,
            "a second later"
        );
    }

    #[test]
    fn ipv6_clients_share_a_bucket_per_56() {
        let rrl = limiter(RATE, 2, &[]);
        let www = response("www.zone.test.", RecordType::A, Kind::Positive);
        assert_eq!(sent(&flood(&rrl, "2001:db8:0:ff::1", &www, T0, 30)), 10);
        assert_eq!(sent(&flood(&rrl, "2001:db8:0:1::9", &www, T0, 5)), 0);
        assert_eq!(sent(&flood(&rrl, "2001:db8:0:100::1", &www, T0, 5)), 5);
    }

    #[test]
    fn nxdomain_for_any_name_of_a_zone_shares_the_zones_bucket() {
        let rrl = limiter(RATE, 2, &[]);
        let decisions: Vec<Decision> = (0..30)
            .flat_map(|i| {
                let bytes = response(&format!("r{i}.zone.test."), RecordType::A, Kind::Nxdomain);
                flood(&rrl, "192.0.2.1", &bytes, T0, 1)
            })
            .collect();
        assert_eq!(sent(&decisions), 10);
        let nodata = response("r1.zone.test.", RecordType::A, Kind::Nodata);
        assert_eq!(
            sent(&flood(&rrl, "192.0.2.1", &nodata, T0, 5)),
            5,
            "NODATA apart"
        );
    }

    #[test]
    fn referrals_share_the_delegations_bucket_and_errors_the_prefixs() {
        let rrl = limiter(RATE, 2, &[]);
        let referrals: Vec<Decision> = ["a", "b", "c"]
            .iter()
            .flat_map(|label| {
                let bytes = response(
                    &format!("{label}.child.zone.test."),
                    RecordType::A,
                    Kind::Referral,
                );
                flood(&rrl, "192.0.2.1", &bytes, T0, 5)
            })
            .collect();
        assert_eq!(sent(&referrals), 10);
        let errors: Vec<Decision> = ["x.", "y.example.", "z.test."]
            .iter()
            .flat_map(|n| {
                flood(
                    &rrl,
                    "192.0.2.1",
                    &response(n, RecordType::A, Kind::Error),
                    T0,
                    5,
                )
            })
            .collect();
        assert_eq!(sent(&errors), 10);
    }

    #[test]
    fn exempt_clients_are_never_limited() {
        let rrl = limiter(RATE, 2, &["192.0.2.0/28"]);
        let www = response("www.zone.test.", RecordType::A, Kind::Positive);
        assert_eq!(sent(&flood(&rrl, "192.0.2.1", &www, T0, 100)), 100);
        assert_eq!(
            sent(&flood(&rrl, "192.0.2.100", &www, T0, 30)),
            10,
            "outside the block"
        );
    }

    #[test]
    fn a_slip_is_the_header_with_tc_and_the_question_only() {
        let rrl = limiter(1, 1, &[]);
        let bytes = response("www.zone.test.", RecordType::A, Kind::Positive);
        let peer = "192.0.2.1".parse().unwrap();
        assert_eq!(rrl.decide(peer, &mut bytes.clone(), T0), Decision::Send);
        let mut slipped = bytes.clone();
        assert_eq!(rrl.decide(peer, &mut slipped, T0), Decision::Slip);
        let message = Message::from_vec(&slipped).unwrap();
        assert!(message.metadata.truncation);
        assert_eq!(message.metadata.id, 7);
        assert_eq!(message.queries, Message::from_vec(&bytes).unwrap().queries);
        assert!(message.answers.is_empty() && message.authorities.is_empty());
        assert!(message.additionals.is_empty() && message.edns.is_none());
    }

    #[test]
    fn a_reload_of_the_same_size_keeps_the_buckets() {
        let www = response("www.zone.test.", RecordType::A, Kind::Positive);
        let old = limiter(RATE, 2, &[]);
        assert_eq!(sent(&flood(&old, "192.0.2.1", &www, T0, 30)), 10);
        let mut same = limiter(RATE * 2, 2, &[]);
        same.keep_table(&old);
        assert_eq!(
            sent(&flood(&same, "192.0.2.1", &www, T0, 5)),
            0,
            "still empty"
        );
        let mut bigger = Limiter::new(&RrlConfig {
            table_size: 1 << 21,
            ..config()
        });
        bigger.keep_table(&old);
        assert_eq!(
            sent(&flood(&bigger, "192.0.2.1", &www, T0, 5)),
            5,
            "a new table"
        );
    }

    #[test]
    fn names_behind_pointers_are_read_and_loops_are_refused() {
        let mut out = [0u8; MAX_NAME];
        // "a" at 12, then a pointer back to it at 15.
        let mut msg = vec![0u8; 12];
        msg.extend_from_slice(&[1, b'A', 0, 0xc0, 12]);
        assert_eq!(read_name(&msg, 15, &mut out), Some((17, 2)));
        assert_eq!(&out[..2], &[1, b'a']);
        msg.extend_from_slice(&[0xc0, 17]);
        assert_eq!(read_name(&msg, 17, &mut out), None, "points at itself");
    }

    proptest! {
        #[test]
        fn any_bytes_classify_and_slip_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let rrl = limiter(1, 1, &[]);
            for _ in 0..3 {
                let mut response = bytes.clone();
                let decision = rrl.decide("192.0.2.1".parse().unwrap(), &mut response, T0);
                prop_assert!(response.len() <= bytes.len());
                if decision == Decision::Slip && response.len() >= 12 {
                    prop_assert!(response[2] & 0x02 != 0);
                }
            }
        }
    }
}
