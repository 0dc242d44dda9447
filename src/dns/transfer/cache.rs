//! Whole-zone answers kept encoded, one per zone version (`Zone::encoded_transfer`): a full
//! transfer (AXFR, or an IXFR answered with the whole zone) is then a copy with its ID and
//! question type set, instead of walking, sorting and compressing every record again. A
//! reload or an update makes a new version, so a kept answer never goes stale, and goes with
//! its version. Zones that allow transfers are encoded when their snapshot is built
//! ([`prepare`]), so even the first transfer after a start or reload is a copy; a version
//! made by an update is encoded by its first full transfer (secondaries catch up on updates
//! by IXFR). Memory: about the zone's size on the wire, for the zones that allow transfers.

use std::sync::Arc;
use std::time::Instant;

use hickory_proto::op::Query;
use hickory_proto::rr::RecordType;
use tracing::info;

use super::encode::Messages;
use crate::dns::wire::HEADER_LEN;
use crate::dns::zone::Zone;

/// Encodes `zone`'s whole-zone answer now, if it allows transfers at all.
pub fn prepare(zone: &Zone) {
    if zone.transfer.allow.is_empty() {
        return;
    }
    let start = Instant::now();
    let kept = kept(zone);
    info!(
        "zone {}: transfer answer encoded ahead in {:.1} ms ({} messages, {} bytes)",
        zone.origin,
        start.elapsed().as_secs_f64() * 1e3,
        kept.len(),
        kept.iter().map(Vec::len).sum::<usize>()
    );
}

/// SOA, every record, SOA ([`Messages::zone`]) for `question`, copied from the kept answer
/// with its ID and question set. The question is `zone`'s name (in any case): the kept one
/// is overwritten in place, and the names that point into it then read as a fresh encoding
/// for this question would write them.
pub fn zone(id: u16, question: &Query, zone: &Zone) -> Messages {
    if !same_name(question, zone) {
        return Messages::zone(id, question, zone);
    }
    let mut messages: Vec<Vec<u8>> = kept(zone).iter().map(|m| m.to_vec()).collect();
    for message in &mut messages {
        message[0..2].copy_from_slice(&id.to_be_bytes());
    }
    let first = &mut messages[0];
    let mut at = HEADER_LEN;
    for label in question.name().iter() {
        first[at + 1..at + 1 + label.len()].copy_from_slice(label);
        at += label.len() + 1;
    }
    let qtype = u16::from(question.query_type()).to_be_bytes();
    first[at + 1..at + 3].copy_from_slice(&qtype);
    Messages(messages)
}

/// Whether the question names `zone` (the caller found the zone so: this only keeps a
/// mismatch from writing out of place).
fn same_name(question: &Query, zone: &Zone) -> bool {
    let asked = question.name();
    asked.num_labels() == zone.origin.num_labels()
        && (asked.iter().zip(zone.origin.iter())).all(|(a, b)| a.eq_ignore_ascii_case(b))
}

/// The version's answer, encoded by the first caller; others wait for it rather than
/// encode it again.
fn kept(zone: &Zone) -> &Arc<[Vec<u8>]> {
    zone.encoded_transfer.get_or_init(|| {
        let question = Query::query(zone.origin.clone(), RecordType::AXFR);
        Messages::zone(0, &question, zone).0.into()
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use hickory_proto::op::Message;
    use hickory_proto::rr::{LowerName, Name, RecordType};

    use super::*;
    use crate::config::Config;
    use crate::dns::metrics::DnsMetrics;
    use crate::dns::zone::Catalog;

    /// Owners in an order of their own, so that the canonical order has something to do.
    const ZONE: &str = r#"
[dns]
[[dns.zones]]
name = "Cache.Test"
records = [
  { name = "@", type = "NS", values = ["ns1.cache.test."] },
  { name = "ns1", type = "A", values = ["192.0.2.1"] },
  { name = "Zed", type = "A", values = ["192.0.2.2"] },
  { name = "a.b.c", type = "TXT", values = ['"deep"'] },
  { name = "b.c", type = "MX", values = ["10 ns1.cache.test."] },
  { name = "*.w", type = "TXT", values = ['"wild"'] },
  { name = "x.x", type = "A", values = ["192.0.2.3"] },
  { name = "xa", type = "A", values = ["192.0.2.4"] },
  { name = "x", type = "AAAA", values = ["2001:db8::1"] },
  { name = "x-", type = "CNAME", values = ["ns1.cache.test."] },
  { name = "_sip._tcp", type = "SRV", values = ["0 5 5060 Zed.cache.test."] },
]
"#;

    fn version() -> Arc<Zone> {
        version_from(ZONE)
    }

    fn version_from(toml: &str) -> Arc<Zone> {
        let config =
            Config::from_str(toml, Path::new("cache.toml")).expect("the test zone is valid");
        let dns = config.dns.expect("[dns]");
        let catalog = Catalog::build(&dns.zones, &DnsMetrics::default());
        catalog.zones().next().expect("one zone").clone()
    }

    fn axfr(name: &str) -> Query {
        Query::query(Name::from_ascii(name).expect("a name"), RecordType::AXFR)
    }

    #[test]
    fn a_version_is_encoded_once_and_copied_with_each_id_and_question_type() {
        let zone = version();
        let first = zone_answer(7, "cache.test.", &zone);
        let kept = zone
            .encoded_transfer
            .get()
            .expect("kept by the first transfer")
            .clone();
        let again = zone_answer(8, "cache.test.", &zone);
        assert!(Arc::ptr_eq(&kept, zone.encoded_transfer.get().unwrap()));
        assert_eq!(again, Messages::zone(8, &axfr("cache.test."), &zone).0);
        assert_eq!(first.len(), again.len());
        for (a, b) in first.iter().zip(&again) {
            assert_eq!(
                (a[0..2].to_vec(), b[0..2].to_vec()),
                (vec![0, 7], vec![0, 8])
            );
            assert_eq!(a[2..], b[2..]);
        }
        // An IXFR answered with the whole zone echoes its own question.
        let ixfr = Query::query(Name::from_ascii("cache.test.").unwrap(), RecordType::IXFR);
        assert_eq!(
            super::zone(9, &ixfr, &zone).0,
            Messages::zone(9, &ixfr, &zone).0
        );
    }

    #[test]
    fn a_question_in_another_case_reads_as_encoded_for_itself() {
        let zone = version();
        zone_answer(1, "cache.test.", &zone);
        let upper = zone_answer(9, "CACHE.test.", &zone);
        assert_eq!(upper, Messages::zone(9, &axfr("CACHE.test."), &zone).0);
        let question = &Message::from_vec(&upper[0]).expect("decodes").queries[0];
        assert_eq!(question.name().to_string(), "CACHE.test.");
    }

    #[test]
    fn only_zones_that_allow_transfers_are_encoded_ahead() {
        let closed = version();
        prepare(&closed);
        assert!(closed.encoded_transfer.get().is_none());
        let open = version_from(&ZONE.replace(
            "name = \"Cache.Test\"",
            "name = \"Cache.Test\"\nallow_transfer = [\"127.0.0.1\"]",
        ));
        prepare(&open);
        assert!(open.encoded_transfer.get().is_some());
    }

    #[test]
    fn records_go_out_in_canonical_order() {
        let zone = version();
        let mut owners: Vec<LowerName> = zone
            .transfer_records()
            .iter()
            .map(|r| LowerName::new(&r.name))
            .collect();
        owners.dedup();
        assert!(owners.len() > 10, "{owners:?}");
        assert!(
            owners.windows(2).all(|w| w[0] < w[1]),
            "not in canonical order: {owners:?}"
        );
    }

    fn zone_answer(id: u16, name: &str, version: &Zone) -> Vec<Vec<u8>> {
        zone(id, &axfr(name), version).0
    }
}
