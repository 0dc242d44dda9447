//! The most queried names lately, for the console, estimated off the answer path.
//!
//! The answer path counts queries in a per-thread cell and picks one in [`SAMPLE_EVERY`]:
//! an unpicked query costs that increment and a branch. A picked one copies its name and
//! tries to queue it; a full queue drops it (counted), so an answer never waits. A
//! background task keeps the [`TRACKED`] heaviest names in a Space-Saving summary whose
//! counts halve every [`HALF_LIFE`], so the list follows recent traffic, and publishes its top
//! [`SHOWN`] for the console to read.

use std::cell::Cell;
use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use hickory_proto::rr::Name;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// One query in this many is sampled (a power of two: the pick is a mask).
pub const SAMPLE_EVERY: u32 = 16;
/// Names the summary tracks at most.
pub const TRACKED: usize = 1000;
/// Names published for the console.
pub const SHOWN: usize = 20;
/// Every count halves this often.
pub const HALF_LIFE: Duration = Duration::from_secs(60);
/// Samples buffered between the answer path and the task; beyond this they are dropped.
const QUEUE: usize = 4096;
/// How often the published list is refreshed (the console polls every 2 s).
const PUBLISH_EVERY: Duration = Duration::from_secs(1);
/// Samples taken off the queue at once.
const BATCH: usize = 256;

thread_local! {
    /// Queries seen by this thread, for the 1-in-[`SAMPLE_EVERY`] pick.
    static SEEN: Cell<u32> = const { Cell::new(0) };
}

/// The answer path's end (the sampler) and the console's (the published list).
#[derive(Debug, Default)]
pub struct TopNames {
    /// Set once the aggregating task runs; until then nothing is sampled.
    queue: OnceLock<mpsc::Sender<Sample>>,
    dropped: AtomicU64,
    published: Arc<ArcSwap<Vec<TopName>>>,
}

/// A picked query: its zone (label form), name and type.
#[derive(Debug)]
struct Sample {
    zone: Arc<str>,
    name: Name,
    qtype: u16,
}

/// What the summary counts by: lower-case name without the final dot, type, zone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key {
    name: Arc<str>,
    qtype: u16,
    zone: Arc<str>,
}

/// One published name, its count scaled by [`SAMPLE_EVERY`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopName {
    pub name: String,
    #[serde(rename = "type")]
    pub qtype: &'static str,
    pub zone: String,
    pub estimate: u64,
}

// === impl TopNames ===

impl TopNames {
    /// Counts a query answered from `zone` (none: not sampled) and, for one in
    /// [`SAMPLE_EVERY`], queues its name.
    #[inline]
    pub fn offer(&self, zone: Option<&Arc<str>>, name: &Name, qtype: u16) {
        let seen = SEEN.with(|seen| {
            let n = seen.get().wrapping_add(1);
            seen.set(n);
            n
        });
        if seen & (SAMPLE_EVERY - 1) == 0 {
            self.push(zone, name, qtype);
        }
    }

    #[cold]
    fn push(&self, zone: Option<&Arc<str>>, name: &Name, qtype: u16) {
        let (Some(queue), Some(zone)) = (self.queue.get(), zone) else {
            return;
        };
        let sample = Sample {
            zone: zone.clone(),
            name: name.clone(),
            qtype,
        };
        if queue.try_send(sample).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Samples dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The heaviest names lately, heaviest first.
    pub fn top(&self) -> Arc<Vec<TopName>> {
        self.published.load_full()
    }

    /// Starts sampling and returns the task that aggregates the samples until `shutdown`;
    /// `None` if one was started already.
    pub fn aggregate(
        &self,
        shutdown: CancellationToken,
    ) -> Option<impl Future<Output = ()> + Send + 'static> {
        let (sender, receiver) = mpsc::channel(QUEUE);
        self.queue.set(sender).ok()?;
        Some(aggregate(receiver, self.published.clone(), shutdown))
    }
}

/// Folds samples into the summary, halves it every [`HALF_LIFE`] and publishes its top.
async fn aggregate(
    mut samples: mpsc::Receiver<Sample>,
    published: Arc<ArcSwap<Vec<TopName>>>,
    shutdown: CancellationToken,
) {
    let mut summary = SpaceSaving::new(TRACKED);
    let mut publish = tokio::time::interval(PUBLISH_EVERY);
    let mut halve = tokio::time::interval_at(Instant::now() + HALF_LIFE, HALF_LIFE);
    publish.set_missed_tick_behavior(MissedTickBehavior::Delay);
    halve.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut batch = Vec::with_capacity(BATCH);
    let mut changed = false;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            received = samples.recv_many(&mut batch, BATCH) => {
                if received == 0 {
                    return;
                }
                for sample in batch.drain(..) {
                    summary.record(Key {
                        name: super::metrics::label(&sample.name).into(),
                        qtype: sample.qtype,
                        zone: sample.zone,
                    });
                }
                changed = true;
            }
            _ = publish.tick() => if changed {
                published.store(Arc::new(shown(&summary)));
                changed = false;
            },
            _ = halve.tick() => {
                summary.halve();
                changed = true;
            }
        }
    }
}

/// The summary's top [`SHOWN`] as published.
fn shown(summary: &SpaceSaving<Key>) -> Vec<TopName> {
    summary
        .top(SHOWN)
        .into_iter()
        .map(|(key, count)| TopName {
            name: key.name.to_string(),
            qtype: super::metrics::qtype_name(key.qtype),
            zone: key.zone.to_string(),
            estimate: count * u64::from(SAMPLE_EVERY),
        })
        .collect()
}

/// Space-Saving (Metwally et al.): at most `capacity` keys; a new key when full takes the
/// place of the lightest one and inherits its count plus one, so a heavy key is never missed
/// and counts only overestimate. Every step is O(log capacity).
#[derive(Debug)]
struct SpaceSaving<K> {
    capacity: usize,
    keys: Vec<K>,
    counts: Vec<u64>,
    slots: HashMap<K, usize>,
    /// (count, slot), lightest first.
    order: BTreeSet<(u64, usize)>,
}

impl<K: Clone + Eq + Hash + Ord> SpaceSaving<K> {
    fn new(capacity: usize) -> SpaceSaving<K> {
        SpaceSaving {
            capacity,
            keys: Vec::new(),
            counts: Vec::new(),
            slots: HashMap::new(),
            order: BTreeSet::new(),
        }
    }

    fn record(&mut self, key: K) {
        if let Some(&slot) = self.slots.get(&key) {
            let count = self.counts[slot];
            self.order.remove(&(count, slot));
            self.set(slot, count + 1);
        } else if self.keys.len() < self.capacity {
            self.slots.insert(key.clone(), self.keys.len());
            self.keys.push(key);
            self.counts.push(0);
            self.set(self.keys.len() - 1, 1);
        } else if let Some((lightest, slot)) = self.order.pop_first() {
            let evicted = std::mem::replace(&mut self.keys[slot], key.clone());
            self.slots.remove(&evicted);
            self.slots.insert(key, slot);
            self.set(slot, lightest + 1);
        }
    }

    fn set(&mut self, slot: usize, count: u64) {
        self.counts[slot] = count;
        self.order.insert((count, slot));
    }

    /// Halves every count; keys left at zero are forgotten.
    fn halve(&mut self) {
        let keys = std::mem::take(&mut self.keys);
        let counts = std::mem::take(&mut self.counts);
        self.slots.clear();
        self.order.clear();
        for (key, count) in keys.into_iter().zip(counts) {
            if count / 2 > 0 {
                self.slots.insert(key.clone(), self.keys.len());
                self.keys.push(key);
                self.counts.push(0);
                self.set(self.keys.len() - 1, count / 2);
            }
        }
    }

    /// The `n` heaviest keys with their counts, heaviest first (ties by key).
    fn top(&self, n: usize) -> Vec<(K, u64)> {
        let mut top: Vec<(K, u64)> = (self.order.iter().rev().take(n))
            .map(|&(count, slot)| (self.keys[slot].clone(), count))
            .collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        top
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary_of(capacity: usize, stream: &[(&'static str, usize)]) -> SpaceSaving<&'static str> {
        let mut summary = SpaceSaving::new(capacity);
        for &(key, times) in stream {
            for _ in 0..times {
                summary.record(key);
            }
        }
        summary
    }

    #[test]
    fn the_heaviest_come_first_with_their_counts() {
        let summary = summary_of(10, &[("b", 3), ("a", 5), ("c", 3), ("d", 1)]);
        assert_eq!(summary.top(3), [("a", 5), ("b", 3), ("c", 3)]);
        assert_eq!(summary.top(10).len(), 4);
    }

    #[test]
    fn it_stays_bounded_and_keeps_heavy_keys_through_a_flood_of_new_ones() {
        // Space-Saving keeps every key seen more than total / capacity times (here 41).
        let mut summary = summary_of(10, &[("heavy", 50)]);
        let flood: Vec<&'static str> = (0..300)
            .map(|i| &*Box::leak(format!("once-{i}").into_boxed_str()))
            .collect();
        for (i, name) in flood.into_iter().enumerate() {
            summary.record(name);
            if i % 5 == 0 {
                summary.record("heavy");
            }
            assert!(summary.keys.len() <= 10 && summary.slots.len() <= 10);
        }
        let top = summary.top(1);
        assert_eq!(top[0].0, "heavy");
        assert!(top[0].1 >= 110, "never underestimated: {top:?}");
        assert_eq!(summary.slots.len(), summary.order.len());
    }

    #[test]
    fn halving_ages_old_traffic_out() {
        let mut summary = summary_of(10, &[("old", 8), ("rare", 1)]);
        summary.halve();
        assert_eq!(
            summary.top(10),
            [("old", 4)],
            "a count of 1 halves to nothing"
        );
        for _ in 0..6 {
            summary.record("new");
        }
        assert_eq!(summary.top(10), [("new", 6), ("old", 4)]);
        summary.halve();
        summary.halve();
        assert_eq!(summary.top(10), [("new", 1), ("old", 1)]);
    }

    #[tokio::test]
    async fn sampled_names_are_published_lower_case_with_scaled_counts() {
        let names = TopNames::default();
        let zone: Arc<str> = "example.com".into();
        let www = Name::from_ascii("WWW.Example.COM.").unwrap();
        names.offer(Some(&zone), &www, 1);
        assert_eq!(names.dropped(), 0, "no task yet: nothing is queued");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(names.aggregate(shutdown.clone()).unwrap());
        assert!(names.aggregate(shutdown.clone()).is_none(), "one task");
        for _ in 0..SAMPLE_EVERY * 4 {
            names.offer(Some(&zone), &www, 1);
        }
        tokio::time::timeout(Duration::from_secs(5), async {
            while names.top().is_empty() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("published within a second or so");
        let top = names.top();
        assert_eq!(top[0].name, "www.example.com");
        assert_eq!((top[0].qtype, top[0].zone.as_str()), ("A", "example.com"));
        assert!(
            top[0].estimate >= 3 * u64::from(SAMPLE_EVERY) && top[0].estimate.is_multiple_of(16),
            "{top:?}"
        );
        shutdown.cancel();
        task.await.unwrap();
    }
}
