//! Whole-zone answers kept encoded, one per zone version: the next full transfer of the same
//! version (the other secondaries after a NOTIFY, a retry, an IXFR that falls back to the
//! whole zone) is a copy with its ID set, instead of walking, sorting and compressing every
//! record again. A version is one `Arc<Zone>`: a reload or an update makes a new one, and an
//! entry goes once its version is gone. Memory: about the zone's size on the wire, for the
//! zones that were transferred.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError, Weak};

use hickory_proto::op::Query;

use super::encode::Messages;
use crate::dns::zone::Zone;

/// One zone version's answer, for one question as asked (its name's case is echoed, and
/// the records' names point into it).
struct Encoded {
    zone: Weak<Zone>,
    question: Vec<u8>,
    messages: Arc<Vec<Vec<u8>>>,
}

/// By the address of the zone version; the `Weak` in each entry keeps that address from
/// being reused while the entry exists.
static ENCODED: LazyLock<Mutex<HashMap<usize, Encoded>>> = LazyLock::new(Mutex::default);

/// SOA, every record, SOA ([`Messages::zone`]) with `id`, from the kept answer when this
/// version was already transferred for the same question.
pub fn zone(id: u16, question: &Query, zone: &Arc<Zone>) -> Messages {
    let key = Arc::as_ptr(zone) as usize;
    let asked = question_bytes(question);
    let kept = lock()
        .get(&key)
        .filter(|e| e.question == asked && e.zone.upgrade().is_some_and(|z| Arc::ptr_eq(&z, zone)))
        .map(|e| e.messages.clone());
    let messages = kept.unwrap_or_else(|| {
        let messages = Arc::new(Messages::zone(0, question, zone).0);
        let mut kept = lock();
        kept.retain(|_, e| e.zone.strong_count() > 0);
        kept.insert(
            key,
            Encoded {
                zone: Arc::downgrade(zone),
                question: asked,
                messages: messages.clone(),
            },
        );
        messages
    });
    Messages(messages.iter().map(|m| with_id(m, id)).collect())
}

fn lock() -> MutexGuard<'static, HashMap<usize, Encoded>> {
    // An entry is written whole under the lock: a panic elsewhere cannot leave half of one.
    ENCODED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The question's name as asked (case kept), type and class.
fn question_bytes(question: &Query) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(64);
    for label in question.name().iter() {
        bytes.push(label.len() as u8);
        bytes.extend_from_slice(label);
    }
    bytes.push(0);
    bytes.extend_from_slice(&u16::from(question.query_type()).to_be_bytes());
    bytes.extend_from_slice(&u16::from(question.query_class()).to_be_bytes());
    bytes
}

fn with_id(message: &[u8], id: u16) -> Vec<u8> {
    let mut copy = message.to_vec();
    copy[0..2].copy_from_slice(&id.to_be_bytes());
    copy
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
        let config =
            Config::from_str(ZONE, Path::new("cache.toml")).expect("the test zone is valid");
        let dns = config.dns.expect("[dns]");
        let catalog = Catalog::build(&dns.zones, &DnsMetrics::default());
        catalog.zones().next().expect("one zone").clone()
    }

    fn axfr(name: &str) -> Query {
        Query::query(Name::from_ascii(name).expect("a name"), RecordType::AXFR)
    }

    #[test]
    fn a_version_is_kept_once_and_copied_with_each_id_as_a_fresh_encoding_would_be() {
        let zone = version();
        let first = zone_answer(7, "cache.test.", &zone);
        assert!(lock().contains_key(&(Arc::as_ptr(&zone) as usize)));
        let again = zone_answer(8, "cache.test.", &zone);
        let fresh = Messages::zone(8, &axfr("cache.test."), &zone).0;
        assert_eq!(again, fresh);
        assert_eq!(first.len(), again.len());
        for (a, b) in first.iter().zip(&again) {
            assert_eq!(
                (a[0..2].to_vec(), b[0..2].to_vec()),
                (vec![0, 7], vec![0, 8])
            );
            assert_eq!(a[2..], b[2..]);
        }
        // Another case in the question: echoed, not the kept answer's.
        let upper = zone_answer(9, "CACHE.test.", &zone);
        let question = &Message::from_vec(&upper[0]).expect("decodes").queries[0];
        assert_eq!(question.name().to_string(), "CACHE.test.");
    }

    #[test]
    fn a_gone_version_leaves_with_the_next_one_kept() {
        let old = version();
        let key = Arc::as_ptr(&old) as usize;
        zone_answer(1, "cache.test.", &old);
        drop(old);
        let new = version();
        zone_answer(1, "cache.test.", &new);
        // Gone, unless a version of another test (they run in parallel) took the address.
        assert!(lock().get(&key).is_none_or(|e| e.zone.strong_count() > 0));
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

    fn zone_answer(id: u16, name: &str, version: &Arc<Zone>) -> Vec<Vec<u8>> {
        zone(id, &axfr(name), version).0
    }
}
