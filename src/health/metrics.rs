//! Health checks on `/metrics`: state, last probe, probe durations, results, per check
//! (`id` and `type` labels).

use std::fmt;
use std::sync::Arc;

use super::status::unix_seconds;
use super::{CheckReport, HealthTable};
use crate::metrics::{self, Collector, DescriptorEncoder, Histogram};

/// Probe durations in microseconds, 1 ms to 10 s (the longest Route 53 timeout).
const PROBE_MICROS: [u64; 12] = [
    1_000, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000,
];

/// A check's probe-duration histogram, exported in seconds.
pub(super) fn probe_histogram() -> Histogram {
    Histogram::new(&PROBE_MICROS, 1e6)
}

/// The checks of one table, as scraped.
#[derive(Debug)]
pub struct HealthCollector(pub Arc<HealthTable>);

/// Name, help text, and the value of one check (none: not known yet).
type GaugeFamily = (&'static str, &'static str, fn(&CheckReport) -> Option<f64>);

impl Collector for HealthCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let reports = self.0.report();
        let labels = |r: &CheckReport| [("id", r.id.clone()), ("type", r.kind.to_string())];
        let gauges: [GaugeFamily; 4] = [
            (
                "edgewise_health_check_healthy",
                "1 when the check is healthy.",
                |r| Some(f64::from(u8::from(r.status.healthy))),
            ),
            (
                "edgewise_health_check_latency_seconds",
                "Duration of the last probe.",
                |r| r.status.last_latency.map(|d| d.as_secs_f64()),
            ),
            (
                "edgewise_health_check_last_probe_timestamp_seconds",
                "When the last probe finished (Unix time).",
                |r| unix_seconds(r.status.last_checked),
            ),
            (
                "edgewise_health_check_last_change_timestamp_seconds",
                "When the state last flipped (Unix time).",
                |r| unix_seconds(r.status.last_change),
            ),
        ];
        for (name, help, value) in gauges {
            let rows = reports
                .iter()
                .filter_map(|r| value(r).map(|v| (labels(r), v)));
            metrics::gauges(&mut encoder, name, help, rows)?;
        }
        metrics::counters(
            &mut encoder,
            "edgewise_health_check_probes_ok",
            "Probes that succeeded (after inversion).",
            reports.iter().map(|r| (labels(r), r.status.probes_ok)),
        )?;
        metrics::counters(
            &mut encoder,
            "edgewise_health_check_probes_failed",
            "Probes that failed (after inversion).",
            reports.iter().map(|r| (labels(r), r.status.probes_failed)),
        )?;
        // Calculated checks are never probed.
        let probed = (self.0.checks.iter())
            .filter(|c| c.kind != "calculated")
            .map(|c| ([("id", c.id.as_str()), ("type", c.kind)], &c.latency));
        metrics::histograms(
            &mut encoder,
            "edgewise_health_check_probe_duration_seconds",
            "How long probes took.",
            probed,
        )
    }
}
