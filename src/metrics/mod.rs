//! Prometheus metrics, one way for every listener. The hot path only bumps atomics laid out
//! in advance (a slot per label combination, a [`Histogram`]'s buckets), never a lock or a
//! map lookup; a scrape hands [`Collector`]s that read those atomics to prometheus-client,
//! which writes the Prometheus text format (0.0.4). Counter names are given without their
//! `_total`: the encoder adds it.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

pub use prometheus_client::collector::Collector;
pub use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, MetricEncoder};
use prometheus_client::encoding::{EncodeMetric, prometheus_text};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

/// What `/metrics` answers with.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The metrics of `collectors`, in the Prometheus text format.
pub fn render(collectors: impl IntoIterator<Item = Box<dyn Collector>>) -> String {
    let mut registry = Registry::default();
    for collector in collectors {
        registry.register_collector(collector);
    }
    let mut out = String::new();
    // Writing into a String cannot fail; a collector's own error leaves what it wrote.
    let _ = prometheus_text::encode(&mut out, &registry);
    out
}

/// One counter without labels (`name` without `_total`).
///
/// # Errors
/// Only the writer's.
pub fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// A counter family: one row per label set (`name` without `_total`).
///
/// # Errors
/// Only the writer's.
pub fn counters<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (L, u64)>,
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in rows {
        ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// One gauge without labels.
///
/// # Errors
/// Only the writer's.
pub fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64) -> fmt::Result {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// A gauge family: one row per label set.
///
/// # Errors
/// Only the writer's.
pub fn gauges<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (L, f64)>,
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in rows {
        ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A histogram family: one row per label set.
///
/// # Errors
/// Only the writer's.
pub fn histograms<'h, L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (L, &'h Histogram)>,
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for (labels, histogram) in rows {
        histogram.encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A histogram of integer observations (microseconds, bytes, ...) with fixed bucket
/// bounds, lock-free: an observation is two relaxed atomic adds.
#[derive(Debug)]
pub struct Histogram {
    /// Upper bounds (inclusive), ascending, in the observed unit.
    bounds: &'static [u64],
    /// Observed units per exported unit (1e6 for microseconds exported as seconds).
    per_unit: f64,
    /// One per bound, then the overflow bucket.
    buckets: Box<[AtomicU64]>,
    sum: AtomicU64,
}

impl Histogram {
    /// Buckets at `bounds` (ascending), exported divided by `per_unit`.
    pub fn new(bounds: &'static [u64], per_unit: f64) -> Histogram {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]), "ascending bounds");
        Histogram {
            bounds,
            per_unit,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: u64) {
        let bucket = self.bounds.partition_point(|&bound| bound < value);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// The observations' sum, in the exported unit.
    pub fn sum(&self) -> f64 {
        self.sum.load(Ordering::Relaxed) as f64 / self.per_unit
    }

    /// The `q` quantile (0..=1) in the exported unit, estimated as Prometheus's
    /// `histogram_quantile` does: linear within the bucket it falls in, the highest bound
    /// when it falls above them all. `None` before any observation.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let counts: Vec<u64> = (self.buckets.iter())
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut below = 0u64;
        for (i, &count) in counts.iter().enumerate() {
            let Some(&upper) = self.bounds.get(i) else {
                break;
            };
            if count > 0 && (below + count) as f64 >= rank {
                let lower = if i == 0 { 0 } else { self.bounds[i - 1] };
                let within = (rank - below as f64) / count as f64;
                let value = lower as f64 + (upper - lower) as f64 * within;
                return Some(value / self.per_unit);
            }
            below += count;
        }
        self.bounds.last().map(|&b| b as f64 / self.per_unit)
    }

    fn encode(&self, mut metric: MetricEncoder) -> fmt::Result {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let buckets: Vec<(f64, u64)> = (self.bounds.iter())
            .map(|&bound| bound as f64 / self.per_unit)
            .chain([f64::INFINITY])
            .zip(counts.iter().copied())
            .collect();
        let sum = self.sum.load(Ordering::Relaxed) as f64 / self.per_unit;
        metric.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            sum,
            counts.iter().sum(),
            &buckets,
            None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Sample(Histogram);

    impl Collector for Sample {
        fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
            counter(&mut encoder, "demo_queries", "Queries.", 3)?;
            counters(
                &mut encoder,
                "demo_answers",
                "Answers by rcode.",
                [([("rcode", "NOERROR")], 2), ([("rcode", "NXDOMAIN")], 1)],
            )?;
            histograms(
                &mut encoder,
                "demo_latency_seconds",
                "Latency.",
                [([("origin", "app")], &self.0)],
            )
        }
    }

    #[test]
    fn collectors_render_as_prometheus_text_with_cumulative_buckets() {
        let histogram = Histogram::new(&[1_000, 10_000], 1e6);
        for micros in [500, 1_000, 5_000, 50_000] {
            histogram.observe(micros);
        }
        assert_eq!(histogram.count(), 4);
        let text = render([Box::new(Sample(histogram)) as Box<dyn Collector>]);
        for line in [
            "# TYPE demo_queries_total counter",
            "demo_queries_total 3",
            "demo_answers_total{rcode=\"NXDOMAIN\"} 1",
            "# TYPE demo_latency_seconds histogram",
            "demo_latency_seconds_bucket{origin=\"app\",le=\"0.001\"} 2",
            "demo_latency_seconds_bucket{origin=\"app\",le=\"0.01\"} 3",
            "demo_latency_seconds_bucket{origin=\"app\",le=\"+Inf\"} 4",
            "demo_latency_seconds_sum{origin=\"app\"} 0.0565",
            "demo_latency_seconds_count{origin=\"app\"} 4",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} in:\n{text}");
        }
    }

    #[test]
    fn quantiles_interpolate_within_buckets_and_stop_at_the_highest_bound() {
        let histogram = Histogram::new(&[1_000, 10_000], 1e6);
        assert_eq!(histogram.quantile(0.5), None);
        for micros in [200, 400, 2_000, 8_000] {
            histogram.observe(micros);
        }
        assert_eq!(histogram.quantile(0.5), Some(0.001));
        assert_eq!(histogram.quantile(0.25), Some(0.0005));
        assert_eq!(histogram.quantile(0.75), Some(0.0055));
        assert!((histogram.sum() - 0.0106).abs() < 1e-12);
        histogram.observe(1_000_000);
        histogram.observe(1_000_000);
        histogram.observe(1_000_000);
        histogram.observe(1_000_000);
        assert_eq!(histogram.quantile(0.95), Some(0.01));
    }
}
