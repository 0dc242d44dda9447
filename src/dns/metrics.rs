//! What edgewise-dns counts, for `GET /metrics` on the status listener.
//!
//! The query path adds to atomics laid out in advance and nothing else: each zone of a snapshot
//! holds an [`Arc<QueryCounters>`] (a cell per transport, rcode and query type) and each routed
//! record set an [`Arc<AtomicU64>`], both handed out at snapshot build by the registry in
//! [`DnsMetrics`], keyed by name. A reload asks for the same keys and gets the same counters,
//! so counts carry over; the registry's mutex is taken only at build and at scrape. Query types
//! outside [`QTYPES`] and rcodes outside [`RCODES`] share an `OTHER` cell, so the label sets
//! stay bounded whatever the queries ask. The most queried names are estimated from a sample
//! taken off the answer path ([`TopNames`]).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::Name;

use super::malformed::MalformedCounters;
use super::responder::Transport;
use super::top_names::TopNames;
use crate::logs::LogStats;
use crate::metrics::{self, Collector, DescriptorEncoder, Histogram};
use crate::net::admission::Admission;

/// Query types counted under their own name (`qtype` label); the rest count as `OTHER`.
pub const QTYPES: [(u16, &str); 23] = [
    (1, "A"),
    (2, "NS"),
    (5, "CNAME"),
    (6, "SOA"),
    (12, "PTR"),
    (15, "MX"),
    (16, "TXT"),
    (28, "AAAA"),
    (33, "SRV"),
    (35, "NAPTR"),
    (43, "DS"),
    (44, "SSHFP"),
    (46, "RRSIG"),
    (47, "NSEC"),
    (48, "DNSKEY"),
    (50, "NSEC3"),
    (52, "TLSA"),
    (64, "SVCB"),
    (65, "HTTPS"),
    (251, "IXFR"),
    (252, "AXFR"),
    (255, "ANY"),
    (257, "CAA"),
];
/// Response codes counted under their own name (`rcode` label); the rest count as `OTHER`.
pub const RCODES: [(u16, &str); 7] = [
    (0, "NOERROR"),
    (1, "FORMERR"),
    (2, "SERVFAIL"),
    (3, "NXDOMAIN"),
    (4, "NOTIMP"),
    (5, "REFUSED"),
    (16, "BADVERS"),
];
/// The rcodes an UPDATE is answered with (RFC 2136 §2.2), by their mnemonics.
const UPDATE_RCODES: [(u16, &str); 11] = [
    (0, "NOERROR"),
    (1, "FORMERR"),
    (2, "SERVFAIL"),
    (3, "NXDOMAIN"),
    (4, "NOTIMP"),
    (5, "REFUSED"),
    (6, "YXDOMAIN"),
    (7, "YXRRSET"),
    (8, "NXRRSET"),
    (9, "NOTAUTH"),
    (10, "NOTZONE"),
];
const TRANSPORTS: [&str; 2] = ["udp", "tcp"];
const QTYPE_SLOTS: usize = QTYPES.len() + 1;
const RCODE_SLOTS: usize = RCODES.len() + 1;
const CELLS: usize = TRANSPORTS.len() * RCODE_SLOTS * QTYPE_SLOTS;

/// The `QTYPES` slot of every type code up to CAA's; one load per query instead of a search.
const QTYPE_SLOT: [u8; 258] = {
    let mut slots = [QTYPES.len() as u8; 258];
    let mut i = 0;
    while i < QTYPES.len() {
        slots[QTYPES[i].0 as usize] = i as u8;
        i += 1;
    }
    slots
};

/// Response sizes in bytes: the classic 512, the EDNS sizes resolvers use, the UDP MTU.
const RESPONSE_BYTES: [u64; 10] = [64, 128, 256, 512, 1024, 1232, 1500, 4096, 16384, 65535];

/// The process's DNS counters, shared by the answer path (through the snapshot) and the
/// status listener.
#[derive(Debug)]
pub struct DnsMetrics {
    registry: Mutex<Registry>,
    /// Queries answered from no zone: REFUSED, CHAOS, NOTIMP, BADVERS (`zone=""`).
    unzoned: QueryCounters,
    /// By transport.
    response_bytes: [Histogram; 2],
    truncated: AtomicU64,
    edns: AtomicU64,
    client_subnet: AtomicU64,
    /// UDP responses response rate limiting dropped, and sent truncated instead (slipped).
    rrl_dropped: AtomicU64,
    rrl_slipped: AtomicU64,
    reloads: Reloads,
    /// The query log's lines written and dropped, once a log runs.
    query_log: OnceLock<Arc<LogStats>>,
    top_names: TopNames,
}

/// Counters by name, so a rebuilt snapshot finds those of the one before.
#[derive(Debug, Default)]
struct Registry {
    zones: BTreeMap<String, Arc<QueryCounters>>,
    routed: BTreeMap<RoutedKey, Arc<AtomicU64>>,
    /// Dynamic updates answered, by zone ("" when the request named none) and rcode.
    updates: BTreeMap<(String, &'static str), u64>,
}

/// The labels of one routed record set's counter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct RoutedKey {
    zone: String,
    name: String,
    policy: &'static str,
    set_id: String,
}

/// One zone's queries: a cell per (transport, rcode, qtype).
#[derive(Debug)]
pub struct QueryCounters {
    cells: [AtomicU64; CELLS],
    /// The zone's label; `None` for queries answered from no zone.
    zone: Option<Arc<str>>,
}

/// One routed record set's answers so far, for the console.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RoutedAnswers {
    pub zone: String,
    pub name: String,
    pub policy: &'static str,
    pub set_id: String,
    pub answers: u64,
}

/// Reload outcomes, whoever started them (SIGHUP, `POST /reload`, `watch_zones`).
#[derive(Debug)]
struct Reloads {
    ok: AtomicU64,
    refused: AtomicU64,
    /// The last reload's outcome; true before any (the config loaded at start).
    last_ok: AtomicBool,
    /// Unix milliseconds of the last reload, or of the start before any.
    last_at: AtomicU64,
}

/// `/metrics` for the DNS server: its [`DnsMetrics`], the malformed-query counters and the
/// TCP admission.
#[derive(Debug)]
pub struct DnsCollector {
    pub metrics: Arc<DnsMetrics>,
    pub malformed: Arc<MalformedCounters>,
    pub tcp: Admission,
}

// === impl DnsMetrics ===

impl Default for DnsMetrics {
    fn default() -> DnsMetrics {
        let histogram = || Histogram::new(&RESPONSE_BYTES, 1.0);
        DnsMetrics {
            registry: Mutex::default(),
            unzoned: QueryCounters::default(),
            response_bytes: [histogram(), histogram()],
            truncated: AtomicU64::new(0),
            edns: AtomicU64::new(0),
            client_subnet: AtomicU64::new(0),
            rrl_dropped: AtomicU64::new(0),
            rrl_slipped: AtomicU64::new(0),
            reloads: Reloads {
                ok: AtomicU64::new(0),
                refused: AtomicU64::new(0),
                last_ok: AtomicBool::new(true),
                last_at: AtomicU64::new(unix_millis()),
            },
            query_log: OnceLock::new(),
            top_names: TopNames::default(),
        }
    }
}

impl DnsMetrics {
    /// Shows the query log's counts from now on (a server runs one log at most).
    pub fn watch_query_log(&self, stats: Arc<LogStats>) {
        let _ = self.query_log.set(stats);
    }

    /// The counters of the zone at `origin`: the same ones every build of that zone gets.
    pub fn zone(&self, origin: &Name) -> Arc<QueryCounters> {
        let zone = label(origin);
        (self.lock().zones.entry(zone.clone()))
            .or_insert_with(|| Arc::new(QueryCounters::new(Some(zone.into()))))
            .clone()
    }

    /// The answer counter of routed set `set_id` of `name` (any type: sets of one name share
    /// their labels).
    pub fn routed(
        &self,
        origin: &Name,
        name: &Name,
        policy: &'static str,
        set_id: &str,
    ) -> Arc<AtomicU64> {
        let key = RoutedKey {
            zone: label(origin),
            name: label(name),
            policy,
            set_id: set_id.to_string(),
        };
        self.lock().routed.entry(key).or_default().clone()
    }

    /// Counters for answers from no zone (REFUSED and the like).
    pub fn unzoned(&self) -> &QueryCounters {
        &self.unzoned
    }

    /// Counts one response written to `response` for a query of type `qtype`, answered from
    /// `zone` (its counters, or [`DnsMetrics::unzoned`]). The rcode is read from the response
    /// header; `extended` is the upper bits of an extended rcode (BADVERS).
    pub fn response(
        &self,
        zone: &QueryCounters,
        qtype: u16,
        transport: Transport,
        extended: u8,
        response: &[u8],
    ) {
        let (Some(&flags), Some(&low)) = (response.get(2), response.get(3)) else {
            return;
        };
        let rcode = u16::from(extended) << 4 | u16::from(low & 0x0f);
        let transport = transport as usize;
        zone.cells[cell(transport, rcode, qtype)].fetch_add(1, Ordering::Relaxed);
        self.response_bytes[transport].observe(response.len() as u64);
        if flags & 0x02 != 0 {
            self.truncated.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Offers an answered query's name to the top-names sample: one in
    /// [`TopNames::sample_every`] is copied, the rest cost a per-thread increment.
    #[inline]
    pub fn sample_name(&self, zone: &QueryCounters, name: &Name, qtype: u16) {
        self.top_names.offer(zone.zone.as_ref(), name, qtype);
    }

    /// The most queried names lately, and the sampling task's handle.
    pub fn top_names(&self) -> &TopNames {
        &self.top_names
    }

    /// Counts a query that carries an OPT record, and whether it has a Client Subnet option.
    pub fn edns(&self, client_subnet: bool) {
        self.edns.fetch_add(1, Ordering::Relaxed);
        if client_subnet {
            self.client_subnet.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a response that response rate limiting held back: slipped (sent truncated) or
    /// dropped.
    pub fn rrl_limited(&self, slipped: bool) {
        let count = if slipped {
            &self.rrl_slipped
        } else {
            &self.rrl_dropped
        };
        count.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a dynamic update's answer (not on the query path: a lock is fine).
    pub fn update_answered(&self, zone: Option<&Name>, rcode: ResponseCode) {
        let zone = zone.map_or_else(String::new, label);
        let rcode = UPDATE_RCODES
            .iter()
            .find(|(code, _)| *code == u16::from(rcode))
            .map_or("OTHER", |(_, name)| *name);
        *self.lock().updates.entry((zone, rcode)).or_default() += 1;
    }

    /// Counts a reload's outcome.
    pub fn reloaded(&self, ok: bool) {
        let count = if ok {
            &self.reloads.ok
        } else {
            &self.reloads.refused
        };
        count.fetch_add(1, Ordering::Relaxed);
        self.reloads.last_ok.store(ok, Ordering::Relaxed);
        self.reloads.last_at.store(unix_millis(), Ordering::Relaxed);
    }

    /// Queries answered so far by rcode (every zone, and none), in [`RCODES`] order then
    /// `OTHER`: what the console charts.
    pub fn queries_by_rcode(&self) -> Vec<(&'static str, u64)> {
        let zones: Vec<Arc<QueryCounters>> = self.lock().zones.values().cloned().collect();
        let mut totals = [0u64; RCODE_SLOTS];
        for counters in std::iter::once(&self.unzoned).chain(zones.iter().map(|c| &**c)) {
            for (i, cell) in counters.cells.iter().enumerate() {
                totals[i % (RCODE_SLOTS * QTYPE_SLOTS) / QTYPE_SLOTS] +=
                    cell.load(Ordering::Relaxed);
            }
        }
        let names = RCODES.iter().map(|r| r.1).chain(std::iter::once("OTHER"));
        names.zip(totals).collect()
    }

    /// Queries answered so far from each zone (label form), every rcode and type.
    pub fn queries_by_zone(&self) -> Vec<(String, u64)> {
        let zones: Vec<(String, Arc<QueryCounters>)> = (self.lock().zones.iter())
            .map(|(zone, c)| (zone.clone(), c.clone()))
            .collect();
        (zones.into_iter())
            .map(|(zone, counters)| {
                let total = counters
                    .cells
                    .iter()
                    .map(|c| c.load(Ordering::Relaxed))
                    .sum();
                (zone, total)
            })
            .collect()
    }

    /// Answers so far of every routed record set, by zone, name, policy and set id.
    pub fn routed_answers(&self) -> Vec<RoutedAnswers> {
        (self.lock().routed.iter())
            .map(|(key, count)| RoutedAnswers {
                zone: key.zone.clone(),
                name: key.name.clone(),
                policy: key.policy,
                set_id: key.set_id.clone(),
                answers: count.load(Ordering::Relaxed),
            })
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        // Every change to the registry is one insert: a panicking holder leaves it whole.
        self.registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

// === impl QueryCounters ===

/// Counters of no zone: never sampled for top names.
impl Default for QueryCounters {
    fn default() -> QueryCounters {
        QueryCounters::new(None)
    }
}

impl QueryCounters {
    fn new(zone: Option<Arc<str>>) -> QueryCounters {
        QueryCounters {
            cells: std::array::from_fn(|_| AtomicU64::new(0)),
            zone,
        }
    }

    /// The non-zero cells as (qtype, rcode, transport, count).
    fn rows(&self) -> impl Iterator<Item = (&'static str, &'static str, &'static str, u64)> + '_ {
        (0..CELLS).filter_map(|i| {
            let count = self.cells[i].load(Ordering::Relaxed);
            let (transport, rest) = (
                i / (RCODE_SLOTS * QTYPE_SLOTS),
                i % (RCODE_SLOTS * QTYPE_SLOTS),
            );
            let (rcode, qtype) = (rest / QTYPE_SLOTS, rest % QTYPE_SLOTS);
            (count > 0).then(|| {
                let qtype = QTYPES.get(qtype).map_or("OTHER", |q| q.1);
                let rcode = RCODES.get(rcode).map_or("OTHER", |r| r.1);
                (qtype, rcode, TRANSPORTS[transport], count)
            })
        })
    }
}

/// The cell of a (transport, rcode, qtype) triple.
fn cell(transport: usize, rcode: u16, qtype: u16) -> usize {
    let qtype = QTYPE_SLOT
        .get(usize::from(qtype))
        .map_or(QTYPES.len(), |&s| usize::from(s));
    let rcode = match rcode {
        0..=5 => usize::from(rcode),
        16 => 6,
        _ => RCODES.len(),
    };
    (transport * RCODE_SLOTS + rcode) * QTYPE_SLOTS + qtype
}

/// The name of a query type: its [`QTYPES`] name, else `OTHER` (as the `qtype` label).
pub(super) fn qtype_name(qtype: u16) -> &'static str {
    QTYPES
        .iter()
        .find(|q| q.0 == qtype)
        .map_or("OTHER", |q| q.1)
}

/// A name as a label value: lower case, without the final dot (the root stays ".").
pub(super) fn label(name: &Name) -> String {
    let text = name.to_lowercase().to_string();
    match text.strip_suffix('.') {
        Some(relative) if !relative.is_empty() => relative.to_string(),
        _ => text,
    }
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

// === impl DnsCollector ===

impl Collector for DnsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let m = &*self.metrics;
        let (zones, routed, updates) = {
            let registry = m.lock();
            (
                registry.zones.clone(),
                registry.routed.clone(),
                registry.updates.clone(),
            )
        };
        let queries = std::iter::once(("", &m.unzoned))
            .chain(zones.iter().map(|(zone, c)| (zone.as_str(), &**c)))
            .flat_map(|(zone, counters)| {
                counters
                    .rows()
                    .map(move |(qtype, rcode, transport, count)| {
                        let labels = [
                            ("zone", zone),
                            ("qtype", qtype),
                            ("rcode", rcode),
                            ("transport", transport),
                        ];
                        (labels, count)
                    })
            });
        metrics::counters(
            &mut encoder,
            "edgewise_dns_queries",
            "Queries answered, by zone (\"\" when none: REFUSED), query type, rcode and transport.",
            queries,
        )?;
        let routed = routed.iter().map(|(key, count)| {
            let labels = [
                ("zone", key.zone.as_str()),
                ("name", key.name.as_str()),
                ("policy", key.policy),
                ("set_id", key.set_id.as_str()),
            ];
            (labels, count.load(Ordering::Relaxed))
        });
        metrics::counters(
            &mut encoder,
            "edgewise_dns_routed_answers",
            "Times a routed record set was chosen for an answer.",
            routed,
        )?;
        metrics::counters(
            &mut encoder,
            "edgewise_dns_updates",
            "Dynamic updates (RFC 2136) answered, by zone and rcode (NOERROR: applied).",
            (updates.iter()).map(|((zone, rcode), count)| {
                ([("zone", zone.as_str()), ("rcode", *rcode)], *count)
            }),
        )?;
        metrics::histograms(
            &mut encoder,
            "edgewise_dns_response_bytes",
            "Size of the responses sent, by transport.",
            TRANSPORTS
                .iter()
                .zip(&m.response_bytes)
                .map(|(transport, h)| ([("transport", *transport)], h)),
        )?;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        metrics::counter(
            &mut encoder,
            "edgewise_dns_truncated",
            "Responses sent with TC=1 (the client should retry over TCP).",
            load(&m.truncated),
        )?;
        metrics::counter(
            &mut encoder,
            "edgewise_dns_edns_queries",
            "Queries with an OPT record (EDNS).",
            load(&m.edns),
        )?;
        metrics::counter(
            &mut encoder,
            "edgewise_dns_ecs_queries",
            "Queries with an EDNS Client Subnet option.",
            load(&m.client_subnet),
        )?;
        metrics::counters(
            &mut encoder,
            "edgewise_dns_rrl_responses",
            "UDP responses over the rate limit, by action (dropped; slipped: sent truncated instead).",
            [
                ([("action", "dropped")], load(&m.rrl_dropped)),
                ([("action", "slipped")], load(&m.rrl_slipped)),
            ],
        )?;
        metrics::counter(
            &mut encoder,
            "edgewise_dns_top_names_samples_dropped",
            "Queries sampled for the console's top names but dropped: the queue was full.",
            m.top_names.dropped(),
        )?;
        self.malformed.encode(&mut encoder)?;
        let tcp = self.tcp.stats();
        metrics::gauge(
            &mut encoder,
            "edgewise_dns_tcp_connections_open",
            "TCP connections holding a slot now.",
            tcp.open as i64,
        )?;
        metrics::counter(
            &mut encoder,
            "edgewise_dns_tcp_connections_accepted",
            "TCP connections admitted.",
            tcp.admitted,
        )?;
        metrics::counters(
            &mut encoder,
            "edgewise_dns_tcp_connections_refused",
            "TCP connections closed at once, by reason (client_limit: the client has its maximum; full: every slot is busy).",
            [
                ([("reason", "client_limit")], tcp.refused_client_limit),
                ([("reason", "full")], tcp.refused_full),
            ],
        )?;
        metrics::counter(
            &mut encoder,
            "edgewise_dns_tcp_connections_evicted",
            "Idle TCP connections closed to make room for a new one.",
            tcp.evicted,
        )?;
        let reloads = &m.reloads;
        metrics::counters(
            &mut encoder,
            "edgewise_dns_reloads",
            "Reloads (SIGHUP, POST /reload, watch_zones), by result.",
            [
                ([("result", "ok")], load(&reloads.ok)),
                ([("result", "refused")], load(&reloads.refused)),
            ],
        )?;
        metrics::gauge(
            &mut encoder,
            "edgewise_dns_last_reload_successful",
            "1 when the last reload was put in force (or none was tried yet), 0 when it was refused.",
            i64::from(reloads.last_ok.load(Ordering::Relaxed)),
        )?;
        metrics::gauge(
            &mut encoder,
            "edgewise_dns_last_reload_timestamp_seconds",
            "When the last reload was tried (Unix time), or the server started.",
            (load(&reloads.last_at) / 1000) as i64,
        )?;
        match m.query_log.get() {
            Some(log) => metrics::counters(
                &mut encoder,
                "edgewise_dns_query_log_lines",
                "Query log lines written, and dropped because the log's queue was full.",
                [
                    ([("result", "written")], log.written()),
                    ([("result", "dropped")], log.dropped()),
                ],
            ),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cell_has_its_own_labels_and_unknown_ones_share_other() {
        let mut seen = std::collections::BTreeSet::new();
        for transport in 0..TRANSPORTS.len() {
            for rcode in RCODES.iter().map(|r| r.0).chain([6, 23]) {
                for qtype in QTYPES.iter().map(|q| q.0).chain([99, 256, 65534]) {
                    seen.insert(cell(transport, rcode, qtype));
                }
            }
        }
        assert_eq!(seen.len(), CELLS, "distinct and within bounds");
        assert_eq!(cell(0, 7, 3), cell(0, 8, 4), "both OTHER, OTHER");
    }

    #[test]
    fn a_response_counts_under_its_header_rcode_and_size() {
        let metrics = DnsMetrics::default();
        let zone = metrics.zone(&Name::from_ascii("Example.COM.").unwrap());
        // NXDOMAIN, TC set, 40 bytes.
        let mut response = vec![0u8; 40];
        response[2] = 0x82;
        response[3] = 0x03;
        metrics.response(&zone, 28, Transport::Udp, 0, &response);
        metrics.response(&zone, 999, Transport::Tcp, 1, &[0, 0, 0x80, 0]);
        let rows: Vec<_> = zone.rows().collect();
        assert_eq!(
            rows,
            [
                ("AAAA", "NXDOMAIN", "udp", 1),
                ("OTHER", "BADVERS", "tcp", 1)
            ]
        );
        assert!(Arc::ptr_eq(
            &zone,
            &metrics.zone(&Name::from_ascii("example.com").unwrap())
        ));
        assert_eq!(metrics.truncated.load(Ordering::Relaxed), 1);
        assert_eq!(metrics.response_bytes[0].count(), 1);
        assert_eq!(label(&Name::root()), ".");
    }
}
