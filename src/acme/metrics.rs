//! ACME certificates on `/metrics`: expiry and order outcomes per certificate (`names`
//! label: its names joined by commas), so an alert can fire well before a certificate runs
//! out.

use std::fmt;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use super::AcmeCerts;
use crate::metrics::{self, Collector, DescriptorEncoder};

/// The slots of one process's ACME certificates, as scraped.
#[derive(Debug)]
pub struct AcmeCollector(pub Arc<AcmeCerts>);

impl Collector for AcmeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let rows: Vec<_> = self
            .0
            .slots()
            .iter()
            .map(|slot| ([("names", slot.names.join(","))], slot.status()))
            .collect();
        metrics::gauges(
            &mut encoder,
            "edgewise_cdn_certificate_expiry_timestamp_seconds",
            "When the certificate in force expires (Unix time); absent while a stand-in serves.",
            rows.iter()
                .filter_map(|(labels, s)| Some((labels.clone(), s.not_after? as f64))),
        )?;
        metrics::gauges(
            &mut encoder,
            "edgewise_cdn_certificate_next_renewal_timestamp_seconds",
            "When the certificate is next ordered (Unix time).",
            rows.iter().filter_map(|(labels, s)| {
                let at = s.next_attempt?.duration_since(UNIX_EPOCH).ok()?;
                Some((labels.clone(), at.as_secs_f64()))
            }),
        )?;
        metrics::counters(
            &mut encoder,
            "edgewise_cdn_acme_certificates_issued",
            "Certificates the CA issued since start.",
            rows.iter().map(|(labels, s)| (labels.clone(), s.issued)),
        )?;
        metrics::counters(
            &mut encoder,
            "edgewise_cdn_acme_orders_failed",
            "Orders (or account registrations) that failed since start.",
            rows.iter().map(|(labels, s)| (labels.clone(), s.failures)),
        )
    }
}
