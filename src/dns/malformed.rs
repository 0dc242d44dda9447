//! Malformed-query accounting. Source addresses of UDP queries are spoofable, so a line per bad
//! packet would let anyone fill the log (and the disk) at line rate. Instead every malformed
//! query bumps a lock-free counter, `/metrics` exposes the counters
//! (`edgewise_dns_malformed_queries_total{reason}`), and one background task writes a single
//! summary line per interval in which any arrived.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::metrics::{self, DescriptorEncoder};

/// How often the summary line may be written, unless a test asks for less.
pub const DEFAULT_SUMMARY_INTERVAL: Duration = Duration::from_secs(10);

/// Why a query was malformed: the `reason` label of the metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Shorter than a DNS header: dropped without a reply.
    Header,
    /// The message does not decode (bad names, counts past the end, two OPT records, ...).
    Undecodable,
    /// Not exactly one question.
    QuestionCount,
    /// The OPT record's options are badly framed, or its Client Subnet option is invalid.
    Edns,
    /// The TSIG record is misplaced or unreadable (RFC 8945 §5.2: FORMERR).
    Tsig,
}

impl Malformed {
    const ALL: [Malformed; 5] = [
        Malformed::Header,
        Malformed::Undecodable,
        Malformed::QuestionCount,
        Malformed::Edns,
        Malformed::Tsig,
    ];

    /// The metric label and the word used in the summary line.
    pub fn as_str(self) -> &'static str {
        match self {
            Malformed::Header => "header",
            Malformed::Undecodable => "undecodable",
            Malformed::QuestionCount => "question_count",
            Malformed::Edns => "edns",
            Malformed::Tsig => "tsig",
        }
    }
}

/// One counter per [`Malformed`] reason, shared by every socket task.
#[derive(Debug, Default)]
pub struct MalformedCounters {
    counts: [AtomicU64; Malformed::ALL.len()],
}

impl MalformedCounters {
    /// Counts one malformed query: a single relaxed add, nothing else on the request path.
    pub fn record(&self, reason: Malformed) {
        self.counts[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The count for each reason, in [`Malformed::ALL`] order.
    fn snapshot(&self) -> [u64; Malformed::ALL.len()] {
        std::array::from_fn(|i| self.counts[i].load(Ordering::Relaxed))
    }

    /// Writes `edgewise_dns_malformed_queries_total{reason}`, every reason even at 0.
    ///
    /// # Errors
    /// Only the writer's.
    pub fn encode(&self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        let rows = (Malformed::ALL.iter())
            .zip(self.snapshot())
            .map(|(reason, count)| ([("reason", reason.as_str())], count));
        metrics::counters(
            encoder,
            "edgewise_dns_malformed_queries",
            "Queries that could not be answered normally, by reason.",
            rows,
        )
    }

    /// Every `interval` until `shutdown`, writes one WARN line with what arrived since the last
    /// one, if anything did.
    pub async fn log_summaries(&self, interval: Duration, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut logged = self.snapshot();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let now = self.snapshot();
            if let Some(line) = summary(&logged, &now, interval) {
                warn!("{line}");
            }
            logged = now;
        }
    }
}

/// "N malformed queries in the last 10s (edns 3, undecodable 2)", or nothing when none came.
fn summary(before: &[u64], after: &[u64], interval: Duration) -> Option<String> {
    let mut total = 0;
    let mut parts = Vec::new();
    for ((reason, old), new) in Malformed::ALL.iter().zip(before).zip(after) {
        let delta = new.wrapping_sub(*old);
        if delta > 0 {
            total += delta;
            parts.push(format!("{} {delta}", reason.as_str()));
        }
    }
    (total > 0).then(|| {
        format!(
            "{total} malformed queries in the last {interval:?} ({}); counted in /metrics as edgewise_dns_malformed_queries_total",
            parts.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_names_each_reason_that_grew_and_the_total() {
        let line = summary(&[1, 0, 0, 5], &[1, 2, 0, 8], Duration::from_secs(10))
            .expect("something arrived");
        assert!(
            line.starts_with("5 malformed queries in the last 10s (undecodable 2, edns 3)"),
            "{line}"
        );
        assert_eq!(
            summary(&[1, 2, 3, 4], &[1, 2, 3, 4], Duration::from_secs(1)),
            None
        );
    }

    #[derive(Debug, Default)]
    struct Only(MalformedCounters);

    impl metrics::Collector for Only {
        fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
            self.0.encode(&mut encoder)
        }
    }

    #[test]
    fn prometheus_text_has_every_reason() {
        let only = Only::default();
        only.0.record(Malformed::Edns);
        only.0.record(Malformed::Edns);
        let out = metrics::render([Box::new(only) as Box<dyn metrics::Collector>]);
        assert!(
            out.contains("# TYPE edgewise_dns_malformed_queries_total counter\n"),
            "{out}"
        );
        assert!(
            out.contains("edgewise_dns_malformed_queries_total{reason=\"edns\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("edgewise_dns_malformed_queries_total{reason=\"header\"} 0\n"),
            "{out}"
        );
    }
}
