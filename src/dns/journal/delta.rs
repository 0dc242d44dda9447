//! The net effect of a run of changesets on the zone as its config loads it: what a base
//! entry stores, and what a restart applies on top of the zone's records.

use std::collections::HashMap;

use hickory_proto::rr::{DNSClass, Name, RData, Record};

use super::Changeset;

/// Records removed from and added to the zone's configured data, net: a record added and
/// later removed again leaves nothing behind, so the delta stays as small as the dynamic
/// state (ACME challenge records come and go without piling up).
///
/// Records are identified as RFC 2136 §1.1.1 does: owner name (case-insensitive), class,
/// type and RDATA; the TTL is not part of the identity, so a TTL change is the old record
/// removed and the new one added. Folding assumes what IXFR needs anyway: each changeset
/// removes records that were present and adds records that were absent.
///
/// To restore the zone: remove [`removed_records`](Self::removed_records) from the
/// configured data, then add [`added_records`](Self::added_records).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    /// Records of the configured data that updates removed, with their TTL.
    removed: HashMap<Key, u32>,
    /// Records updates added that the configured data did not have, with their TTL.
    added: HashMap<Key, u32>,
}

/// A record without its TTL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    name: Name,
    class: DNSClass,
    data: RData,
}

impl Key {
    fn of(record: &Record) -> Key {
        Key {
            name: record.name.clone(),
            class: record.dns_class,
            data: record.data.clone(),
        }
    }

    fn record(&self, ttl: u32) -> Record {
        let mut record = Record::from_rdata(self.name.clone(), ttl, self.data.clone());
        record.dns_class = self.class;
        record
    }
}

/// The net effect of `changes`, in order.
pub fn fold<'a>(changes: impl IntoIterator<Item = &'a Changeset>) -> Delta {
    let mut delta = Delta::default();
    for change in changes {
        delta.apply(change);
    }
    delta
}

impl Delta {
    /// Folds one more changeset in: its removals first, then its additions.
    pub fn apply(&mut self, change: &Changeset) {
        for record in &change.removed {
            self.remove(record);
        }
        for record in &change.added {
            self.add(record);
        }
    }

    fn remove(&mut self, record: &Record) {
        let key = Key::of(record);
        if self.added.remove(&key).is_none() {
            self.removed.entry(key).or_insert(record.ttl);
        }
    }

    fn add(&mut self, record: &Record) {
        let key = Key::of(record);
        if self.removed.get(&key) == Some(&record.ttl) {
            self.removed.remove(&key);
        } else {
            self.added.insert(key, record.ttl);
        }
    }

    /// The configured records that updates removed, in canonical order.
    pub fn removed_records(&self) -> Vec<Record> {
        sorted(&self.removed)
    }

    /// The records updates added, in canonical order.
    pub fn added_records(&self) -> Vec<Record> {
        sorted(&self.added)
    }

    /// Number of records removed plus added.
    pub fn len(&self) -> usize {
        self.removed.len() + self.added.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The delta a base entry held.
    pub(super) fn from_parts(removed: &[Record], added: &[Record]) -> Delta {
        let entries = |records: &[Record]| records.iter().map(|r| (Key::of(r), r.ttl)).collect();
        Delta {
            removed: entries(removed),
            added: entries(added),
        }
    }
}

/// Canonical order keeps base entries byte-for-byte the same for the same state.
fn sorted(records: &HashMap<Key, u32>) -> Vec<Record> {
    let mut out: Vec<Record> = records.iter().map(|(key, &ttl)| key.record(ttl)).collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::slice;

    use proptest::prelude::*;

    use super::*;
    use crate::dns::journal::tests::{change, txt};

    /// A zone's records as (owner, text) → TTL: one TTL per record, as an RRset has.
    type State = BTreeMap<(u8, u8), u32>;

    fn record((owner, text): (u8, u8), ttl: u32) -> Record {
        txt(&format!("n{owner}.example.test."), &format!("t{text}"), ttl)
    }

    /// The changeset that turns `from` into `to`, as IXFR would carry it.
    fn diff(from: &State, to: &State, serial: u32) -> Changeset {
        let gone = from.iter().filter(|(k, t)| to.get(k) != Some(t));
        let new = to.iter().filter(|(k, t)| from.get(k) != Some(t));
        let removed: Vec<_> = gone.map(|(&k, &t)| record(k, t)).collect();
        let added: Vec<_> = new.map(|(&k, &t)| record(k, t)).collect();
        change(serial, serial + 1, &removed, &added)
    }

    /// `state` with the delta applied: removals, then additions.
    fn restore(mut state: State, delta: &Delta) -> State {
        let all = (0..4).flat_map(|owner| (0..4).map(move |text| (owner, text)));
        let key = |r: &Record| {
            all.clone()
                .find(|&k| record(k, 0) == *r)
                .expect("a test record")
        };
        for r in delta.removed_records() {
            state.remove(&key(&r));
        }
        for r in delta.added_records() {
            state.insert(key(&r), r.ttl);
        }
        state
    }

    fn exact(records: Vec<Record>) -> Vec<String> {
        records.iter().map(|r| r.to_string()).collect()
    }

    #[test]
    fn a_record_added_then_removed_leaves_nothing() {
        let r = txt("_acme-challenge.example.test.", "token", 60);
        let delta = fold(&[
            change(1, 2, &[], slice::from_ref(&r)),
            change(2, 3, &[r], &[]),
        ]);
        assert!(delta.is_empty());
    }

    #[test]
    fn a_ttl_change_is_a_replacement_and_undoing_it_cancels() {
        let old = txt("www.example.test.", "v", 300);
        let new = txt("www.example.test.", "v", 60);
        let mut delta = fold(&[change(1, 2, slice::from_ref(&old), slice::from_ref(&new))]);
        assert_eq!(exact(delta.removed_records()), exact(vec![old.clone()]));
        assert_eq!(exact(delta.added_records()), exact(vec![new.clone()]));
        delta.apply(&change(2, 3, &[new], &[old]));
        assert!(delta.is_empty());
    }

    #[test]
    fn names_match_without_regard_to_case() {
        let delta = fold(&[
            change(1, 2, &[], &[txt("WWW.example.test.", "v", 60)]),
            change(2, 3, &[txt("www.EXAMPLE.test.", "v", 60)], &[]),
        ]);
        assert!(delta.is_empty());
    }

    fn arb_state() -> impl Strategy<Value = State> {
        prop::collection::btree_map(
            (0u8..4, 0u8..4),
            prop::sample::select(vec![60u32, 300]),
            0..10,
        )
    }

    proptest! {
        /// Folding the diffs between successive states gives exactly the records that
        /// differ between the first and the last, and restores the last from the first.
        #[test]
        fn folding_diffs_equals_applying_them(first in arb_state(), next in prop::collection::vec(arb_state(), 0..12)) {
            let mut changes = Vec::new();
            let mut state = first.clone();
            for (i, to) in next.iter().enumerate() {
                changes.push(diff(&state, to, i as u32));
                state = to.clone();
            }
            let delta = fold(&changes);
            prop_assert_eq!(restore(first.clone(), &delta), state.clone());
            let whole = diff(&first, &state, 0);
            prop_assert_eq!(exact(delta.removed_records()), exact(sorted_vec(whole.removed)));
            prop_assert_eq!(exact(delta.added_records()), exact(sorted_vec(whole.added)));
        }
    }

    fn sorted_vec(mut records: Vec<Record>) -> Vec<Record> {
        records.sort();
        records
    }
}
