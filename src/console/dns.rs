//! The DNS status listener's summary: zones as served, health checks, queries by rcode.

use serde_json::{Value, json};

use crate::dns::metrics::DnsMetrics;
use crate::dns::reload::ZoneFacts;
use crate::dns::snapshot::Snapshot;
use crate::dns::zone::Zone;

/// `{"kind": "dns", "time", "zones": [{name, serial, records}], "health_checks": [...],
/// "queries": {"NOERROR": n, ...}}`; `health_checks` as `GET /health-checks` shows them.
pub fn summary(snapshot: &Snapshot, health_checks: Vec<Value>, metrics: &DnsMetrics) -> Value {
    let mut zones: Vec<ZoneFacts> = snapshot.catalog.zones().map(|z| facts(z)).collect();
    zones.sort_by(|a, b| a.name.cmp(&b.name));
    let queries: serde_json::Map<String, Value> = metrics
        .queries_by_rcode()
        .into_iter()
        .map(|(rcode, n)| (rcode.to_string(), n.into()))
        .collect();
    json!({
        "kind": "dns",
        "time": super::now(),
        "zones": zones,
        "health_checks": health_checks,
        "queries": queries,
    })
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
