//! The CDN admin listener's summary: distributions, the cache, requests by result.

use serde_json::{Value, json};

use crate::cdn::proxy::Edge;
use crate::stream::log::Log;

/// `{"kind": "cdn", "time", "distributions": [{id, hosts, behaviors, requests}], "cache":
/// {objects, bytes}, "requests": {"Hit": n, ...}, "streams": [...]}`; the streams of `log`,
/// the process's stream log if it runs one (see [`super::streams::summary`]).
pub fn summary(edge: &Edge, log: Option<&Log>) -> Value {
    let mut totals = serde_json::Map::new();
    let mut add = |by_result: &[(&str, u64)]| {
        for (result, n) in by_result {
            let total = totals.entry(*result).or_insert(Value::from(0u64));
            *total = Value::from(total.as_u64().unwrap_or(0) + n);
        }
    };
    add(&edge.metrics().unrouted().requests_by_result());
    let distributions: Vec<Value> = edge
        .config()
        .distributions
        .iter()
        .zip(edge.distribution_metrics())
        .map(|(d, metrics)| {
            let requests = metrics.requests_by_result();
            add(&requests);
            json!({
                "id": d.id,
                "hosts": d.hosts,
                "behaviors": d.behaviors.len(),
                "requests": requests.iter().map(|(_, n)| n).sum::<u64>(),
            })
        })
        .collect();
    let (objects, bytes) = edge.store.usage();
    json!({
        "kind": "cdn",
        "time": super::now(),
        "distributions": distributions,
        "cache": { "objects": objects, "bytes": bytes },
        "requests": totals,
        "streams": super::streams::summary(log),
    })
}
