//! The CDN admin listener's summary: distributions with their responses by status class and
//! bytes out, origins with their latency, the cache against its size, requests by result,
//! and the top objects and countries of the latest real-time log records.

mod recent;

pub use recent::RecentRecords;

use serde_json::{Map, Value, json};

use crate::acme::AcmeCerts;
use crate::cdn::metrics::{DistributionMetrics, OriginMetrics};
use crate::cdn::proxy::Edge;
use crate::stream::log::Log;

/// `{"kind": "cdn", "time", "distributions": [{id, hosts, behaviors, requests, bytes_out,
/// status: {"2xx": n, ...}}], "unrouted": {requests, bytes_out, status}, "origins":
/// [{distribution, origin, requests, errors, latency: {count, sum_seconds, p50_seconds,
/// p95_seconds}}], "cache": {objects, bytes, capacity_bytes, evictions}, "requests":
/// {"Hit": n, ...}, "bytes_out", "recent": see [`RecentRecords::summary`], "streams": [...],
/// "certificates": [{names, not_after, next_attempt, issued, failures, last_error}]}`, the
/// last the ACME certificates (`not_after` null while a stand-in serves).
/// `log` is the process's stream log if it runs one: its streams are listed (see
/// [`super::streams::summary`]) and the real-time log is read from it.
pub fn summary(
    edge: &Edge,
    log: Option<&Log>,
    recent: &RecentRecords,
    acme: Option<&AcmeCerts>,
) -> Value {
    let mut by_result = Map::new();
    let mut bytes_out = 0;
    let mut block = |metrics: &DistributionMetrics| {
        let requests = metrics.requests_by_result();
        for (result, n) in &requests {
            let total = by_result.entry(*result).or_insert(Value::from(0u64));
            *total = Value::from(total.as_u64().unwrap_or(0) + n);
        }
        bytes_out += metrics.response_bytes();
        json!({
            "requests": requests.iter().map(|(_, n)| n).sum::<u64>(),
            "bytes_out": metrics.response_bytes(),
            "status": Map::from_iter(
                (metrics.requests_by_class().iter()).map(|(class, n)| (class.to_string(), json!(n)))
            ),
        })
    };
    let unrouted = block(edge.metrics().unrouted());
    let distributions: Vec<Value> = (edge.config().distributions.iter())
        .zip(edge.distribution_metrics())
        .map(|(d, metrics)| {
            let mut row = block(metrics);
            row["id"] = json!(d.id);
            row["hosts"] = json!(d.hosts);
            row["behaviors"] = json!(d.behaviors.len());
            row
        })
        .collect();
    let origins: Vec<Value> = (edge.origin_metrics().iter().flatten())
        .filter_map(Option::as_deref)
        .map(origin)
        .collect();
    let config = edge.config();
    let (objects, bytes) = edge.store.usage();
    json!({
        "kind": "cdn",
        "time": super::now(),
        "distributions": distributions,
        "unrouted": unrouted,
        "origins": origins,
        "cache": {
            "objects": objects,
            "bytes": bytes,
            "capacity_bytes": config.cache_size,
            "evictions": edge.store.evictions(),
        },
        "requests": by_result,
        "bytes_out": bytes_out,
        "recent": recent.summary(config.realtime_logs.as_ref(), log),
        "streams": super::streams::summary(log),
        "certificates": acme.map_or_else(Vec::new, certificates),
    })
}

/// The ACME certificates' rows: times in Unix seconds.
fn certificates(acme: &AcmeCerts) -> Vec<Value> {
    let unix = |at: std::time::SystemTime| {
        at.duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs())
    };
    acme.slots()
        .iter()
        .map(|slot| {
            let status = slot.status();
            json!({
                "names": slot.names,
                "not_after": status.not_after,
                "next_attempt": status.next_attempt.and_then(unix),
                "issued": status.issued,
                "failures": status.failures,
                "last_error": status.last_error,
            })
        })
        .collect()
}

/// One origin's row: cumulative counts, the latency sum (the page takes the mean of each
/// poll's difference) and quantiles since start.
fn origin(metrics: &OriginMetrics) -> Value {
    let (distribution, origin) = metrics.ids();
    let (requests, errors) = metrics.requests_and_errors();
    let latency = metrics.latency();
    json!({
        "distribution": distribution,
        "origin": origin,
        "requests": requests,
        "errors": errors,
        "latency": {
            "count": latency.count(),
            "sum_seconds": latency.sum(),
            "p50_seconds": latency.quantile(0.5),
            "p95_seconds": latency.quantile(0.95),
        },
    })
}
