//! The most queried names lately, for the console, estimated off the answer path.
//!
//! The answer path counts queries in a per-thread cell and picks one in the current
//! [`TopNames::sample_every`]: an unpicked query costs that increment, a relaxed load and a
//! branch. A picked one copies its name's wire bytes into a bounded queue, or is dropped
//! (counted) when the queue is full, so an answer never waits. A background task drains the
//! queue once a second, keeps the [`TRACKED`] heaviest names in a Space-Saving summary whose
//! counts halve every [`HALF_LIFE`] (so the list follows recent traffic), publishes its top
//! [`SHOWN`] for the console if it was read since the last time (a server nobody watches
//! formats no names), and sets the next second's rate: every query while traffic is light,
//! fewer as it grows, so that at most [`SAMPLES_PER_SECOND`] are taken whatever the load.
//! Each sample carries its weight (the rate it was taken at), so counts estimate queries.

use std::cell::Cell;
use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use hickory_proto::rr::Name;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// Samples a second the rate aims at, at most: every query is sampled below this many a
/// second. A sample costs about 3,000 instructions (the copy in the answer, the summary in
/// the task), so this keeps them well under 3% of a server's work whatever its load.
pub const SAMPLES_PER_SECOND: u64 = 32;
/// The sampling rate is one query in this many at the lowest (a power of two).
const MAX_EVERY: u32 = 1 << 16;
/// Names the summary tracks at most.
pub const TRACKED: usize = 1000;
/// Names published for the console.
pub const SHOWN: usize = 20;
/// Every count halves this often.
pub const HALF_LIFE: Duration = Duration::from_secs(60);
/// Samples buffered between the answer path and the task (two seconds of
/// [`SAMPLES_PER_SECOND`]); beyond this they are dropped.
const QUEUE: usize = 64;
/// How often the task drains the queue, sets the rate and publishes (the console polls
/// every 2 s). The task sleeps in between: a sample wakes nothing.
const TICK: Duration = Duration::from_secs(1);

thread_local! {
    /// Queries seen by this thread, for the 1-in-[`TopNames::sample_every`] pick.
    static SEEN: Cell<u32> = const { Cell::new(0) };
}

/// The answer path's end (the sampler) and the console's (the published list).
#[derive(Debug, Default)]
pub struct TopNames {
    /// Set once the aggregating task runs.
    queue: OnceLock<mpsc::Sender<Sample>>,
    shared: Arc<Shared>,
}

/// What the answer path and the task both see.
#[derive(Debug)]
struct Shared {
    rate: Rate,
    dropped: AtomicU64,
    /// The weights of the dropped samples: queries the task did not see, for the rate.
    dropped_weight: AtomicU64,
    published: ArcSwap<Vec<TopName>>,
    /// The published list was read since it was last refreshed.
    wanted: AtomicBool,
}

/// The sampling rate less one, as a mask: a query is picked when its thread's count has
/// these bits clear. Every answer reads it; it gets a cache line of its own so the counters
/// written next to it do not evict it. All bits set (no pick but one in 2^32) until the
/// task runs.
#[derive(Debug)]
#[repr(align(128))]
struct Rate(AtomicU32);

/// A picked query: its name as on the wire (labels as asked, case included), type, zone and
/// weight (the rate it was picked at).
#[derive(Debug)]
struct Sample {
    name: WireName,
    qtype: u16,
    zone: Arc<str>,
    weight: u32,
}

/// A name's uncompressed wire form, held inline so that a sample allocates nothing.
#[derive(Debug)]
struct WireName {
    len: u8,
    bytes: [u8; 255],
}

/// What the summary counts by: the name's lower-case wire form, type, zone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key {
    name: Box<[u8]>,
    qtype: u16,
    zone: Arc<str>,
}

/// One published name with its estimated queries.
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
    /// [`TopNames::sample_every`], queues its name.
    #[inline]
    pub fn offer(&self, zone: Option<&Arc<str>>, name: &Name, qtype: u16) {
        let mask = self.shared.rate.0.load(Ordering::Relaxed);
        let seen = SEEN.with(|seen| {
            let n = seen.get().wrapping_add(1);
            seen.set(n);
            n
        });
        if seen & mask == 0 {
            self.push(zone, name, qtype, mask.wrapping_add(1));
        }
    }

    #[cold]
    fn push(&self, zone: Option<&Arc<str>>, name: &Name, qtype: u16, weight: u32) {
        let (Some(queue), Some(zone)) = (self.queue.get(), zone) else {
            return;
        };
        match queue.try_reserve() {
            Ok(permit) => permit.send(Sample {
                name: WireName::new(name),
                qtype,
                zone: zone.clone(),
                weight,
            }),
            Err(_) => self.shared.drop_sample(weight),
        }
    }

    /// Samples dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// One query in this many is sampled now (1 until the task runs and while traffic is
    /// light).
    pub fn sample_every(&self) -> u32 {
        self.shared.every()
    }

    /// The heaviest names lately, heaviest first, as of the last [`TICK`] after the
    /// previous call (a list read every few seconds is at most a second or two old).
    pub fn top(&self) -> Arc<Vec<TopName>> {
        self.shared.wanted.store(true, Ordering::Relaxed);
        self.shared.published.load_full()
    }

    /// Starts sampling and returns the task that aggregates the samples until `shutdown`;
    /// `None` if one was started already.
    pub fn aggregate(
        &self,
        shutdown: CancellationToken,
    ) -> Option<impl Future<Output = ()> + Send + 'static> {
        let (sender, receiver) = mpsc::channel(QUEUE);
        self.queue.set(sender).ok()?;
        self.shared.set_every(1);
        Some(aggregate(receiver, self.shared.clone(), shutdown))
    }
}

// === impl Shared ===

impl Default for Shared {
    fn default() -> Shared {
        Shared {
            rate: Rate(AtomicU32::new(u32::MAX)),
            dropped: AtomicU64::new(0),
            dropped_weight: AtomicU64::new(0),
            published: ArcSwap::default(),
            wanted: AtomicBool::new(true),
        }
    }
}

impl Shared {
    fn every(&self) -> u32 {
        match self.rate.0.load(Ordering::Relaxed) {
            u32::MAX => 1,
            mask => mask + 1,
        }
    }

    /// `every` is a power of two from 1 to [`MAX_EVERY`].
    fn set_every(&self, every: u32) {
        self.rate.0.store(every - 1, Ordering::Relaxed);
    }

    /// Counts a sample the full queue refused and halves the rate at once, so a burst costs
    /// a few refusals rather than one per query until the next tick.
    #[cold]
    fn drop_sample(&self, weight: u32) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        self.dropped_weight
            .fetch_add(u64::from(weight), Ordering::Relaxed);
        let slower = weight.saturating_mul(2).min(MAX_EVERY);
        self.rate.0.fetch_max(slower - 1, Ordering::Relaxed);
    }
}

// === impl WireName ===

impl WireName {
    /// Label by label; a name longer than the wire allows (which a parsed one never is) is
    /// cut at the last label that fits.
    fn new(name: &Name) -> WireName {
        let mut wire = WireName {
            len: 0,
            bytes: [0; 255],
        };
        let mut at = 0;
        for label in name.iter() {
            let end = at + 1 + label.len();
            if end > wire.bytes.len() {
                break;
            }
            wire.bytes[at] = label.len() as u8;
            wire.bytes[at + 1..end].copy_from_slice(label);
            at = end;
        }
        wire.len = at as u8;
        wire
    }
}

// === the task ===

/// Once a [`TICK`]: folds the queued samples into the summary, sets the rate from the queries
/// they stand for and publishes the top if it was read; halves the summary every
/// [`HALF_LIFE`].
async fn aggregate(
    mut samples: mpsc::Receiver<Sample>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    let mut summary = SpaceSaving::new(TRACKED);
    let start = Instant::now();
    let mut tick = tokio::time::interval_at(start + TICK, TICK);
    let mut halve = tokio::time::interval_at(start + HALF_LIFE, HALF_LIFE);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    halve.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let (mut since, mut dropped_weight) = (start, 0);
    let mut texts = HashMap::new();
    let mut changed = false;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {
                let mut queries = 0;
                for sample in std::iter::from_fn(|| samples.try_recv().ok()).take(QUEUE) {
                    let weight = u64::from(sample.weight);
                    summary.record(Key::from(sample), weight);
                    queries += weight;
                    changed = true;
                }
                let dropped = shared.dropped_weight.load(Ordering::Relaxed);
                queries += dropped.saturating_sub(dropped_weight);
                dropped_weight = dropped;
                let now = Instant::now();
                shared.set_every(every_for(queries, now - since));
                since = now;
                if changed && shared.wanted.swap(false, Ordering::Relaxed) {
                    shared.published.store(Arc::new(shown(&summary, &mut texts)));
                    changed = false;
                }
            }
            _ = halve.tick() => {
                summary.halve();
                changed = true;
            }
        }
    }
}

/// The rate for traffic of `queries` over `elapsed`: the smallest power of two that keeps
/// samples at most [`SAMPLES_PER_SECOND`], 1 to [`MAX_EVERY`].
fn every_for(queries: u64, elapsed: Duration) -> u32 {
    let per_second = queries as f64 / elapsed.as_secs_f64().max(0.001);
    let every = (per_second / SAMPLES_PER_SECOND as f64).ceil();
    if every >= f64::from(MAX_EVERY) {
        MAX_EVERY
    } else {
        (every as u32).max(1).next_power_of_two()
    }
}

impl From<Sample> for Key {
    fn from(sample: Sample) -> Key {
        let mut name: Box<[u8]> = sample.name.bytes[..usize::from(sample.name.len)].into();
        // Length bytes are below 64, so only the letters of the labels change.
        name.make_ascii_lowercase();
        Key {
            name,
            qtype: sample.qtype,
            zone: sample.zone,
        }
    }
}

/// The summary's top [`SHOWN`] as published. Names are turned to text here rather than per
/// sample, and only when they enter the top: `texts` holds those of the last one.
fn shown(summary: &SpaceSaving<Key>, texts: &mut HashMap<Key, String>) -> Vec<TopName> {
    let mut kept = HashMap::with_capacity(SHOWN);
    let top = (summary.top(SHOWN).into_iter())
        .filter_map(|(key, estimate)| {
            let name = match texts.remove(&key) {
                Some(name) => name,
                None => super::metrics::label(&Name::from_labels(labels(&key.name)).ok()?),
            };
            let shown = TopName {
                name: name.clone(),
                qtype: super::metrics::qtype_name(key.qtype),
                zone: key.zone.to_string(),
                estimate,
            };
            kept.insert(key, name);
            Some(shown)
        })
        .collect();
    *texts = kept;
    top
}

/// The labels of an uncompressed wire name without its root byte.
fn labels(mut wire: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let (&len, rest) = wire.split_first()?;
        let label = rest.get(..usize::from(len))?;
        wire = &rest[label.len()..];
        Some(label)
    })
}

/// Space-Saving (Metwally et al.), weighted: at most `capacity` keys; a new key when full
/// takes the place of the lightest one and inherits its count plus its weight, so a heavy key
/// is never missed and counts only overestimate. Every step is O(log capacity).
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

    fn record(&mut self, key: K, weight: u64) {
        if let Some(&slot) = self.slots.get(&key) {
            let count = self.counts[slot];
            self.order.remove(&(count, slot));
            self.set(slot, count + weight);
        } else if self.keys.len() < self.capacity {
            self.slots.insert(key.clone(), self.keys.len());
            self.keys.push(key);
            self.counts.push(0);
            self.set(self.keys.len() - 1, weight);
        } else if let Some((lightest, slot)) = self.order.pop_first() {
            let evicted = std::mem::replace(&mut self.keys[slot], key.clone());
            self.slots.remove(&evicted);
            self.slots.insert(key, slot);
            self.set(slot, lightest + weight);
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
                summary.record(key, 1);
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
            summary.record(name, 1);
            if i % 5 == 0 {
                summary.record("heavy", 1);
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
            summary.record("new", 1);
        }
        assert_eq!(summary.top(10), [("new", 6), ("old", 4)]);
        summary.halve();
        summary.halve();
        assert_eq!(summary.top(10), [("new", 1), ("old", 1)]);
    }

    #[test]
    fn weights_add_up_and_a_newcomer_inherits_the_lightest_count() {
        let mut summary = SpaceSaving::new(2);
        summary.record("a", 64);
        summary.record("b", 8);
        summary.record("a", 128);
        assert_eq!(summary.top(2), [("a", 192), ("b", 8)]);
        summary.record("c", 4);
        assert_eq!(summary.top(2), [("a", 192), ("c", 12)], "c took b's place");
    }

    #[test]
    fn the_rate_samples_every_query_while_light_and_about_the_budget_when_heavy() {
        let second = Duration::from_secs(1);
        assert_eq!(every_for(0, second), 1);
        assert_eq!(every_for(SAMPLES_PER_SECOND, second), 1);
        assert_eq!(every_for(SAMPLES_PER_SECOND + 1, second), 2);
        assert_eq!(every_for(SAMPLES_PER_SECOND * 3, second), 4);
        assert_eq!(
            every_for(SAMPLES_PER_SECOND * 3, second * 3),
            1,
            "per second"
        );
        assert_eq!(every_for(100_000, second), 4096);
        assert_eq!(every_for(u64::MAX, second), MAX_EVERY);
        assert!(
            every_for(5, Duration::ZERO).is_power_of_two(),
            "no division by zero"
        );
        for qps in [1, 500, 9_000, 100_000, 1_000_000] {
            let every = u64::from(every_for(qps, second));
            assert!(every.is_power_of_two());
            assert!(qps / every <= SAMPLES_PER_SECOND, "{qps} qps, 1 in {every}");
        }
    }

    #[test]
    fn wire_names_read_back_label_by_label() {
        let name = Name::from_ascii("WWW.Example.COM.").unwrap();
        let wire = WireName::new(&name);
        assert_eq!(
            &wire.bytes[..usize::from(wire.len)],
            b"\x03WWW\x07Example\x03COM"
        );
        let read: Vec<&[u8]> = labels(&wire.bytes[..usize::from(wire.len)]).collect();
        assert_eq!(read, [&b"WWW"[..], b"Example", b"COM"]);
        assert_eq!(WireName::new(&Name::root()).len, 0);
        assert_eq!(labels(b"\x05ab").count(), 0, "a cut label ends the name");
    }

    #[test]
    fn published_names_keep_their_text_while_they_stay_on_top() {
        let key = |name: &[u8], qtype| Key {
            name: name.into(),
            qtype,
            zone: "example.com".into(),
        };
        let mut summary = SpaceSaving::new(10);
        summary.record(key(b"\x03www\x07example\x03com", 28), 5);
        summary.record(key(b"\x07example\x03com", 1), 3);
        let mut texts = HashMap::new();
        let first = shown(&summary, &mut texts);
        assert_eq!(first[0].name, "www.example.com");
        assert_eq!(
            (first[1].name.as_str(), first[1].qtype),
            ("example.com", "A")
        );
        summary.record(key(b"\x07example\x03com", 1), 4);
        let second = shown(&summary, &mut texts);
        assert_eq!(second[0].name, "example.com");
        assert_eq!(second[0].estimate, 7);
        assert_eq!(texts.len(), 2);
    }

    /// Offers `name` `times` times and waits until the task has published it.
    async fn offer_until_published(names: &TopNames, name: &Name, times: u32) -> Vec<TopName> {
        let zone: Arc<str> = "example.com".into();
        for _ in 0..times {
            names.offer(Some(&zone), name, 1);
        }
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let top = names.top();
                if !top.is_empty() {
                    return top.to_vec();
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("published within a second or so")
    }

    #[tokio::test]
    async fn light_traffic_is_sampled_whole_and_published_lower_case() {
        let names = TopNames::default();
        let zone: Arc<str> = "example.com".into();
        let www = Name::from_ascii("WWW.Example.COM.").unwrap();
        names.offer(Some(&zone), &www, 1);
        assert_eq!(names.dropped(), 0, "no task yet: nothing is queued");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(names.aggregate(shutdown.clone()).unwrap());
        assert!(names.aggregate(shutdown.clone()).is_none(), "one task");
        assert_eq!(names.sample_every(), 1);
        let top = offer_until_published(&names, &www, 20).await;
        assert_eq!(top[0].name, "www.example.com");
        assert_eq!((top[0].qtype, top[0].zone.as_str()), ("A", "example.com"));
        assert_eq!(top[0].estimate, 20, "every query counted once: {top:?}");
        assert_eq!(names.sample_every(), 1, "20 a second is light");
        shutdown.cancel();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn the_list_is_refreshed_only_after_it_was_read() {
        let names = TopNames::default();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(names.aggregate(shutdown.clone()).unwrap());
        let www = Name::from_ascii("www.example.com.").unwrap();
        assert_eq!(offer_until_published(&names, &www, 5).await[0].estimate, 5);
        let zone: Arc<str> = "example.com".into();
        let offer_and_wait = |ticks: u32| {
            for _ in 0..5 {
                names.offer(Some(&zone), &www, 1);
            }
            tokio::time::sleep(TICK * ticks + Duration::from_millis(500))
        };
        // The last read came after the first list: the next news is published.
        offer_and_wait(1).await;
        assert_eq!(names.shared.published.load()[0].estimate, 10);
        offer_and_wait(2).await;
        let unread = names.shared.published.load();
        assert_eq!(
            unread[0].estimate, 10,
            "nobody read it since: not refreshed"
        );
        names.top();
        tokio::time::sleep(TICK + Duration::from_millis(500)).await;
        assert_eq!(
            names.top()[0].estimate,
            15,
            "refreshed at the tick after the read"
        );
        shutdown.cancel();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn heavy_traffic_slows_the_rate_and_weighs_the_samples() {
        let names = TopNames::default();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(names.aggregate(shutdown.clone()).unwrap());
        let root = Name::root();
        let offered = 20_000;
        let top = offer_until_published(&names, &root, offered).await;
        assert!(names.dropped() > 0, "a full queue refuses samples");
        assert!(
            names.dropped() < 20,
            "each refusal halves the rate at once: {}",
            names.dropped()
        );
        assert_eq!(top[0].name, ".");
        let every = names.sample_every();
        assert!(every >= 128 && every.is_power_of_two(), "1 in {every}");
        // The queued samples stand for their share of the queries; the dropped ones are lost.
        let estimate = top[0].estimate;
        assert!(
            (u64::from(QUEUE as u32)..=u64::from(offered)).contains(&estimate),
            "{estimate} of {offered}"
        );
        shutdown.cancel();
        task.await.unwrap();
    }
}
