//! The DNS status listener's summary: zones as served, queries by rcode and by zone, the most
//! queried names, routed answers by set, and health checks with their recent flips. All of it
//! is read from counters and state the answer path already keeps, at summary time.

use serde_json::{Map, Value, json};

use crate::dns::metrics::DnsMetrics;
use crate::dns::reload::ZoneFacts;
use crate::dns::snapshot::Snapshot;
use crate::dns::top_names;
use crate::dns::zone::Zone;
use crate::health::CheckReport;
use crate::health::status::{health_rows, unix_seconds};

/// Flips listed across all checks at most, newest first.
const FLIPS_SHOWN: usize = 50;

/// `{"kind": "dns", "time", "zones": [{name, serial, records}], "health_checks": [...],
/// "health_flips": [{id, time, healthy, reason}], "queries": {"NOERROR": n, ...},
/// "queries_by_zone": {zone: n}, "routed": [{zone, name, policy, set_id, answers}],
/// "top_names": {"sample_every" (now), "samples_per_second" (at most), "half_life_seconds",
/// "dropped", "names": [...]}}`;
/// `health_checks` as `GET /health-checks` shows them.
pub fn summary(snapshot: &Snapshot, checks: &[CheckReport], metrics: &DnsMetrics) -> Value {
    let mut zones: Vec<ZoneFacts> = snapshot.catalog.zones().map(|z| facts(z)).collect();
    zones.sort_by(|a, b| a.name.cmp(&b.name));
    let queries: Map<String, Value> = (metrics.queries_by_rcode().into_iter())
        .map(|(rcode, n)| (rcode.to_string(), n.into()))
        .collect();
    let by_zone: Map<String, Value> = (metrics.queries_by_zone().into_iter())
        .map(|(zone, n)| (zone, n.into()))
        .collect();
    let top = metrics.top_names();
    json!({
        "kind": "dns",
        "time": super::now(),
        "zones": zones,
        "health_checks": health_rows(checks),
        "health_flips": flips(checks),
        "queries": queries,
        "queries_by_zone": by_zone,
        "routed": metrics.routed_answers(),
        "top_names": {
            "sample_every": top.sample_every(),
            "samples_per_second": top_names::SAMPLES_PER_SECOND,
            "half_life_seconds": top_names::HALF_LIFE.as_secs(),
            "dropped": top.dropped(),
            "names": *top.top(),
        },
    })
}

/// Every check's recent flips, newest first, at most [`FLIPS_SHOWN`].
fn flips(checks: &[CheckReport]) -> Vec<Value> {
    let mut all: Vec<(&str, &crate::health::Flip)> = (checks.iter())
        .flat_map(|c| c.status.flips.newest_first().map(|f| (c.id.as_str(), f)))
        .collect();
    all.sort_by_key(|&(_, flip)| std::cmp::Reverse(flip.at));
    (all.into_iter().take(FLIPS_SHOWN))
        .map(|(id, flip)| {
            json!({
                "id": id,
                "time": unix_seconds(Some(flip.at)),
                "healthy": flip.healthy,
                "reason": flip.reason,
            })
        })
        .collect()
}

/// A served zone's apex, SOA serial and records (routed sets included), as a reload reports.
fn facts(zone: &Zone) -> ZoneFacts {
    let records = zone
        .nodes
        .values()
        .map(|node| {
            let plain: usize = node.rrsets.iter().map(|set| set.records.len()).sum();
            let routed: usize = (node.routed.iter().flat_map(|group| &group.members))
                .map(|member| member.rrset.records.len())
                .sum();
            plain + routed
        })
        .sum();
    ZoneFacts {
        name: zone.origin.to_string(),
        serial: zone.soa_rdata().map_or(0, |soa| soa.serial),
        records,
    }
}
