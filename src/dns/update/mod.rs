//! Dynamic updates (RFC 2136), signed with TSIG and allowed by the zone's `allow_update`
//! policy: checked, written to the zone's journal under `[dns] data_dir` (fsync) and only
//! then answered, and served at once by a new snapshot.
//!
//! The served data of a zone is its configured data (file and inline records, which stay
//! the user's) with the net dynamic changes on top: the journal's delta. Reloads keep them
//! (the reloader asks [`Dynamic::lock`] for the served config), and a restart replays them.
//!
//! Updates are committed in groups: whoever finds updates waiting takes all of them, checks
//! and applies each in arrival order (each sees the ones before it), writes one changeset
//! per zone with one fsync, builds one snapshot and then answers them all. Under a steady
//! stream of updates the next group forms while one is being written. The group's writing
//! and snapshot build run on a blocking thread, off the threads that answer queries, and
//! while queries flow the builds are paced to a small share of the time ([`Pacer`]).
//!
//! - `rfc2136`: prerequisites, prescan and the update section's semantics

mod rfc2136;
mod write_back;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use hickory_proto::op::{Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, RecordType};
use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};
use tracing::{debug, info, warn};

use super::journal::{Changeset, Delta, Journal, JournalError, Limits};
use super::snapshot::Snapshot;
use super::transfer::{newer, notify, unix_now};
use super::tsig::{self, Verification};
use crate::config::DnsConfig;
use crate::config::dns::{RrsetData, SerialPolicy, ZoneData, ZoneDnssec};
use rfc2136::{Before, Records};

/// The dynamic layer of every zone that allows updates, shared by the request path (which
/// applies updates) and the reloader (which builds snapshots of new configs with it).
pub struct Dynamic {
    inner: Arc<Mutex<Inner>>,
    /// Updates waiting for the next group, in arrival order.
    queue: std::sync::Mutex<Vec<Pending>>,
}

struct Inner {
    /// The config in force, without the dynamic changes.
    config: DnsConfig,
    zones: HashMap<LowerName, ZoneState>,
    pacer: Pacer,
}

/// One zone's journal, its net changes, the serial updates gave it, and its records as
/// served.
struct ZoneState {
    journal: Journal,
    delta: Delta,
    serial: Option<u32>,
    /// The configured data with `delta` on top: what updates are checked against and
    /// applied to.
    records: Records,
}

/// A verified update waiting for its group.
struct Pending {
    message: Message,
    key: Name,
    peer: IpAddr,
    done: oneshot::Sender<ResponseCode>,
}

/// What checking and applying one update of a group gave.
enum Verdict {
    /// Answered with this rcode, nothing changed.
    Done(ResponseCode),
    /// Applied to this zone's records; NOERROR once the zone's changeset is on disk.
    Applied(LowerName),
}

/// Why the dynamic layer could not start: a journal that cannot be read must not be
/// served without the updates it acknowledged.
#[derive(Debug, thiserror::Error)]
#[error("zone {zone}: {source}")]
pub struct DynamicError {
    zone: Name,
    #[source]
    source: Box<JournalError>,
}

impl Dynamic {
    /// Opens and replays the journal of every zone that allows updates; with `config` as
    /// served (each zone's data with its dynamic changes and serial).
    ///
    /// # Errors
    /// A journal that cannot be opened or replayed.
    pub fn open(config: &DnsConfig) -> Result<(Dynamic, DnsConfig), DynamicError> {
        let mut inner = Inner {
            config: config.clone(),
            zones: HashMap::new(),
            pacer: Pacer::default(),
        };
        inner.open_journals()?;
        let served = inner.served(config);
        let dynamic = Dynamic {
            inner: Arc::new(Mutex::new(inner)),
            queue: std::sync::Mutex::new(Vec::new()),
        };
        Ok((dynamic, served))
    }

    /// Holds updates off while a reload builds and swaps its snapshot.
    pub async fn lock(&self) -> DynamicGuard<'_> {
        DynamicGuard(self.inner.lock().await)
    }

    /// The journal's changes of `zone` from `serial` on, for IXFR (the caller checks that
    /// they lead to the serial it serves).
    pub async fn changes_since(&self, zone: &Name, serial: u32) -> Option<Vec<Changeset>> {
        let inner = self.inner.lock().await;
        let state = inner.zones.get(&LowerName::new(zone))?;
        state
            .journal
            .changes_since(serial)
            .map(<[Changeset]>::to_vec)
    }

    /// Answers the UPDATE `request` (raw bytes) from `peer`, applying it to the zone and
    /// swapping in the snapshot that serves it before answering.
    pub async fn update(
        &self,
        request: &[u8],
        peer: IpAddr,
        served: &Arc<ArcSwap<Snapshot>>,
    ) -> Vec<u8> {
        let metrics = served.load().metrics.clone();
        let Ok(message) = Message::from_vec(request) else {
            metrics.update_answered(None, ResponseCode::FormErr);
            return bare_error(request, ResponseCode::FormErr);
        };
        let zone = message.queries.first().map(|q| q.name().clone());
        let out = self.answer(message, request, peer, served).await;
        metrics.update_answered(zone.as_ref(), ResponseCode::from(0, out[3] & 0x0f));
        out
    }

    /// The answer to a decoded UPDATE.
    async fn answer(
        &self,
        message: Message,
        request: &[u8],
        peer: IpAddr,
        served: &Arc<ArcSwap<Snapshot>>,
    ) -> Vec<u8> {
        let [zone_question] = message.queries.as_slice() else {
            return reply(&message, ResponseCode::FormErr);
        };
        if zone_question.query_type() != RecordType::SOA
            || zone_question.query_class() != DNSClass::IN
        {
            return reply(&message, ResponseCode::FormErr);
        }
        let now = unix_now();
        let snapshot = served.load_full();
        let signed = match tsig::verify(&snapshot.keyring, request, now) {
            Verification::Signed(signed) => signed,
            Verification::Unsigned => return reply(&message, ResponseCode::Refused),
            Verification::Failed(failure) => {
                let mut out = reply(&message, ResponseCode::NotAuth);
                let _ = failure.sign_error(&mut out, now);
                return out;
            }
            Verification::Malformed(_) => return reply(&message, ResponseCode::FormErr),
        };
        let mut out = reply(&message, ResponseCode::NoError);
        let key = signed.key.name().clone();
        let rcode = self.commit(message, key, peer, served).await;
        set_rcode(&mut out, rcode);
        if let Err(e) = signed.signer().sign(&mut out, unix_now()) {
            warn!("update from {peer}: cannot sign the answer: {e}");
        }
        out
    }

    /// Queues the update and waits for its group to be committed, leading the group when
    /// no one else has taken it.
    async fn commit(
        &self,
        message: Message,
        key: Name,
        peer: IpAddr,
        served: &Arc<ArcSwap<Snapshot>>,
    ) -> ResponseCode {
        let (done, mut result) = oneshot::channel();
        self.queued().push(Pending {
            message,
            key,
            peer,
            done,
        });
        let inner = self.inner.clone().lock_owned().await;
        if let Ok(rcode) = result.try_recv() {
            // A group committed while we waited for the lock took ours along.
            return rcode;
        }
        let pause = inner.pacer.pause(&served.load());
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        let group = std::mem::take(&mut *self.queued());
        let served = served.clone();
        let committed =
            tokio::task::spawn_blocking(move || commit_group(inner, group, &served)).await;
        if let Err(e) = committed {
            warn!("a group of updates failed: {e}");
        }
        result.await.unwrap_or(ResponseCode::ServFail)
    }

    fn queued(&self) -> std::sync::MutexGuard<'_, Vec<Pending>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Checks and applies `group` in order, persists each changed zone's net change as one
/// changeset, swaps in one snapshot that serves them, and answers every update. Runs on a
/// blocking thread, holding the dynamic layer.
fn commit_group(
    mut inner: OwnedMutexGuard<Inner>,
    group: Vec<Pending>,
    served: &ArcSwap<Snapshot>,
) {
    let mut touched: HashMap<LowerName, Before> = HashMap::new();
    let verdicts: Vec<Verdict> = group
        .iter()
        .map(|pending| inner.check_and_apply(pending, &mut touched))
        .collect();
    let mut failed = HashSet::new();
    let mut changes = Vec::new();
    for (zone, before) in touched {
        let names: Vec<Name> = (before.keys().map(|(name, _)| name.clone()))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        match inner.persist(&zone, before, &group) {
            Ok(true) => changes.push((zone, names)),
            Ok(false) => {}
            Err(()) => {
                failed.insert(zone);
            }
        }
    }
    if !changes.is_empty() {
        let started = thread_cpu_time();
        let old = served.load_full();
        let new = Arc::new(inner.next_snapshot(&old, &changes));
        served.store(new.clone());
        inner
            .pacer
            .built(thread_cpu_time().saturating_sub(started), &new);
        notify::changed_zones(Some(&old), &new);
    }
    for (pending, verdict) in group.into_iter().zip(verdicts) {
        let rcode = match verdict {
            Verdict::Done(rcode) => rcode,
            Verdict::Applied(zone) if failed.contains(&zone) => ResponseCode::ServFail,
            Verdict::Applied(_) => ResponseCode::NoError,
        };
        debug!(
            "update from {} (key {}): {rcode}",
            pending.peer, pending.key
        );
        let _ = pending.done.send(rcode);
    }
}

/// The dynamic layer held by a reload.
pub struct DynamicGuard<'a>(tokio::sync::MutexGuard<'a, Inner>);

impl DynamicGuard<'_> {
    /// `config` as served, with the dynamic changes.
    pub fn served(&self, config: &DnsConfig) -> DnsConfig {
        self.0.served(config)
    }

    /// The reload's config is now in force; zones that newly allow updates get journals.
    ///
    /// # Errors
    /// A new zone's journal that cannot be opened.
    pub fn commit(&mut self, config: DnsConfig) -> Result<(), DynamicError> {
        self.0.config = config;
        self.0.open_journals()?;
        self.0.rebase_records();
        Ok(())
    }
}

impl Inner {
    fn open_journals(&mut self) -> Result<(), DynamicError> {
        let Some(dir) = self.config.data_dir.clone() else {
            return Ok(());
        };
        for zone in self
            .config
            .zones
            .iter()
            .filter(|z| !z.update.rules.is_empty())
        {
            let lower = LowerName::new(&zone.origin);
            if self.zones.contains_key(&lower) {
                continue;
            }
            let (journal, replayed) =
                Journal::open(&dir.join("journal"), &zone.origin, Limits::default()).map_err(
                    |source| DynamicError {
                        zone: zone.origin.clone(),
                        source: Box::new(source),
                    },
                )?;
            if !replayed.delta.is_empty() {
                info!(
                    "zone {}: {} dynamic changes replayed from {}",
                    zone.origin,
                    replayed.delta.len(),
                    journal.path().display()
                );
            }
            let mut state = ZoneState {
                journal,
                delta: replayed.delta,
                serial: replayed.serial,
                records: Records::of(zone),
            };
            state.rebase_records(zone);
            self.zones.insert(lower, state);
        }
        Ok(())
    }

    /// Every zone's records again from its configured data (new after a reload) and its
    /// dynamic changes.
    fn rebase_records(&mut self) {
        for zone in &self.config.zones {
            if let Some(state) = self.zones.get_mut(&LowerName::new(&zone.origin)) {
                state.rebase_records(zone);
            }
        }
    }

    /// `config` (the one in force, or a reload's) with the dynamic changes on top.
    fn served(&self, config: &DnsConfig) -> DnsConfig {
        let mut config = config.clone();
        for zone in &mut config.zones {
            if let Some(state) = self.zones.get(&LowerName::new(&zone.origin)) {
                let serial = state.serial_over(zone);
                if let Some(delta) = state.delta_over(zone) {
                    rfc2136::patch(zone, &delta.removed_records(), &delta.added_records());
                }
                set_serial_of(&mut zone.rrsets, serial);
            }
        }
        config
    }

    /// The config in force as served now: each zone's records as updates left them.
    fn current(&self) -> DnsConfig {
        let mut config = self.config.clone();
        for zone in &mut config.zones {
            if let Some(state) = self.zones.get(&LowerName::new(&zone.origin)) {
                let serial = state.serial_over(zone);
                zone.rrsets = state.records.rrsets();
                set_serial_of(&mut zone.rrsets, serial);
            }
        }
        config
    }

    /// The snapshot serving the group's `changes` (each zone and the names whose data it
    /// changed): built from `old` in time proportional to the changes when they leave the
    /// zones' structure alone, else from the whole config.
    fn next_snapshot(&self, old: &Snapshot, changes: &[(LowerName, Vec<Name>)]) -> Snapshot {
        let started = Instant::now();
        let mut next: Option<Snapshot> = None;
        for (zone, names) in changes {
            let current = next.as_ref().unwrap_or(old);
            let incremental = self.change_of(zone, names).and_then(|(soa, sets, dnssec)| {
                let lowered: Vec<LowerName> = names.iter().map(LowerName::new).collect();
                current.with_zone_changes(zone, &soa, &lowered, &sets, dnssec)
            });
            match incremental {
                Some(snapshot) => next = Some(snapshot),
                None => {
                    let snapshot = old.rebuilt(&self.current());
                    log_build(changes, "whole", started);
                    return snapshot;
                }
            }
        }
        match next {
            Some(snapshot) => {
                log_build(changes, "from the changes", started);
                snapshot
            }
            None => old.rebuilt(&self.current()),
        }
    }

    /// The SOA `zone` serves now (the updates' serial in it), every RRset at `names`, and
    /// how the zone is signed.
    fn change_of(
        &self,
        zone: &LowerName,
        names: &[Name],
    ) -> Option<(RrsetData, Vec<RrsetData>, Option<&ZoneDnssec>)> {
        let base = (self.config.zones.iter()).find(|z| LowerName::new(&z.origin) == *zone)?;
        let state = self.zones.get(zone)?;
        let mut soa = state.records.soa(&base.origin)?.clone();
        set_serial_of(std::slice::from_mut(&mut soa), state.serial_over(base));
        Some((soa, state.records.sets_at(names), base.dnssec.as_ref()))
    }

    /// Checks one update of a group against its zone's records as the group's earlier
    /// updates left them, and applies it (noting in `touched` what it changes).
    fn check_and_apply(
        &mut self,
        pending: &Pending,
        touched: &mut HashMap<LowerName, Before>,
    ) -> Verdict {
        let Inner { config, zones, .. } = self;
        let message = &pending.message;
        let zone_name = message.queries[0].name();
        let lower = LowerName::new(zone_name);
        let Some(base) = config
            .zones
            .iter()
            .find(|z| LowerName::new(&z.origin) == lower)
        else {
            return Verdict::Done(ResponseCode::NotAuth);
        };
        let policy = &base.update;
        let Some(state) = zones.get_mut(&lower).filter(|_| !policy.rules.is_empty()) else {
            return Verdict::Done(ResponseCode::Refused);
        };
        let origin = &base.origin;
        let records = &mut state.records;
        if let Err(rcode) = rfc2136::check_prerequisites(records, origin, &message.answers) {
            return Verdict::Done(rcode);
        }
        let key = &pending.key;
        let allowed = |name: &Name, rtype: RecordType| {
            if rtype == RecordType::ANY {
                // Deleting every RRset at a name: allowed only if every type there is.
                let types = records.types_at(name);
                !types.is_empty() && types.iter().all(|t| policy.allows(key, name, *t, origin))
            } else {
                policy.allows(key, name, rtype, origin)
            }
        };
        if let Err(rcode) = rfc2136::prescan(origin, &message.authorities, allowed) {
            return Verdict::Done(rcode);
        }
        let before = touched.entry(lower.clone()).or_default();
        rfc2136::apply(records, origin, &message.authorities, before);
        Verdict::Applied(lower)
    }

    /// Journals the net change the group made to `zone` (what `before` noted) as one
    /// changeset with the next serial; whether anything changed. On failure the zone's
    /// records are put back and its updates answered SERVFAIL.
    fn persist(&mut self, zone: &LowerName, before: Before, group: &[Pending]) -> Result<bool, ()> {
        let Inner { config, zones, .. } = self;
        let (Some(base), Some(state)) = (
            config
                .zones
                .iter()
                .find(|z| LowerName::new(&z.origin) == *zone),
            zones.get_mut(zone),
        ) else {
            return Err(());
        };
        let (removed, added) = rfc2136::diff(&before, &state.records);
        if removed.is_empty() && added.is_empty() {
            return Ok(false);
        }
        let from = state.serial_over(base);
        let to = next_serial(from, base.update.serial_policy);
        let change = Changeset {
            zone: base.origin.clone(),
            from_serial: from,
            to_serial: to,
            removed,
            added,
        };
        let origin = &base.origin;
        let senders = group
            .iter()
            .filter(|p| LowerName::new(p.message.queries[0].name()) == *zone);
        let (count, peers) = senders.fold((0, Vec::new()), |(n, mut peers), p| {
            if !peers.contains(&p.peer) {
                peers.push(p.peer);
            }
            (n + 1, peers)
        });
        if let Err(e) = state.record(&change) {
            warn!("{count} updates of {origin} from {peers:?} not kept: {e}");
            state.records.restore(before);
            return Err(());
        }
        if let Some(path) = &base.update.write_back {
            let mut rrsets = state.records.rrsets();
            // The records hold the configured serial; the file gets the one now served.
            set_serial_of(&mut rrsets, to);
            if let Err(e) = write_back::write_zone_file(path, origin, &rrsets) {
                warn!(
                    "zone {origin}: serial {to} is journaled and served, but not written back: {e}"
                );
            }
        }
        info!(
            "{count} updates of {origin} from {peers:?}: serial {from} -> {to}, {} removed, {} added",
            change.removed.len(),
            change.added.len()
        );
        Ok(true)
    }
}

impl ZoneState {
    /// The serial of `zone`'s configured data, or the updates' when newer.
    fn serial_over(&self, zone: &ZoneData) -> u32 {
        let own = serial_of(zone);
        match self.serial {
            Some(serial) if newer(serial, own) => serial,
            _ => own,
        }
    }

    /// Rebuilds the records from `zone`, the configured data, and the delta.
    fn rebase_records(&mut self, zone: &ZoneData) {
        let mut served = zone.clone();
        if let Some(delta) = self.delta_over(zone) {
            rfc2136::patch(
                &mut served,
                &delta.removed_records(),
                &delta.added_records(),
            );
        }
        self.records = Records::of(&served);
    }

    /// The dynamic changes to lay over `zone`'s configured data. None when the zone writes
    /// its updates back and its file is at the updates' serial or newer: the file holds
    /// them, and what a person changed in it since stands (a record deleted by hand stays
    /// deleted). A write-back that failed left the file's serial behind: the journal's
    /// changes then apply as for any zone.
    fn delta_over(&self, zone: &ZoneData) -> Option<&Delta> {
        let written_back = zone.update.write_back.is_some()
            && self
                .serial
                .is_some_and(|updated| !newer(updated, serial_of(zone)));
        (!written_back && !self.delta.is_empty()).then_some(&self.delta)
    }

    /// Persists `change` (fsync) and folds it into the delta.
    fn record(&mut self, change: &Changeset) -> Result<(), JournalError> {
        if self.journal.serial() != Some(change.from_serial) {
            // The zone's own serial moved (its file was edited and reloaded).
            self.journal.rebase(change.from_serial)?;
        }
        self.journal.append(std::slice::from_ref(change))?;
        self.journal.compact_if_needed()?;
        self.delta.apply(change);
        self.serial = Some(change.to_serial);
        Ok(())
    }
}

/// Keeps the snapshot builds of update groups from crowding out queries: while queries flow
/// (over [`Pacer::BUSY_QPS`] since the last build), a group waits until the builds take at
/// most 1/[`Pacer::SHARE`] of the time (waiting [`Pacer::MAX_PAUSE`] at most), the last
/// build's CPU time standing for the next one's (CPU, not wall time: on a core shared with
/// the query threads a build's wall time grows with the very load it must yield to).
/// Updates keep arriving meanwhile and join the group, so more updates a second only make
/// groups larger. Without query load nothing waits.
#[derive(Default)]
struct Pacer {
    /// When the last build ended, what it cost, and the queries answered by then.
    last: Option<(Instant, Duration, u64)>,
}

impl Pacer {
    const SHARE: u32 = 10;
    const BUSY_QPS: f64 = 1000.0;
    /// However costly the builds (a very large zone), an update waits at most this long
    /// for its group to start.
    const MAX_PAUSE: Duration = Duration::from_millis(500);

    /// How long the next group waits before its build.
    fn pause(&self, snapshot: &Snapshot) -> Duration {
        let Some((end, cost, answered)) = self.last else {
            return Duration::ZERO;
        };
        let since = end.elapsed();
        let queries = answered_queries(snapshot).saturating_sub(answered);
        if (queries as f64) < Pacer::BUSY_QPS * since.as_secs_f64() {
            return Duration::ZERO;
        }
        (cost * Pacer::SHARE)
            .min(Pacer::MAX_PAUSE)
            .saturating_sub(since)
    }

    fn built(&mut self, cost: Duration, snapshot: &Snapshot) {
        self.last = Some((Instant::now(), cost, answered_queries(snapshot)));
    }
}

/// Logs how the snapshot serving `changes` was built (`how`) and how long it took.
fn log_build(changes: &[(LowerName, Vec<Name>)], how: &str, started: Instant) {
    let names: usize = changes.iter().map(|(_, names)| names.len()).sum();
    info!(
        "snapshot for {names} changed names in {} zones built {how} in {:.1} ms",
        changes.len(),
        started.elapsed().as_secs_f64() * 1e3
    );
}

/// CPU time this thread has used.
fn thread_cpu_time() -> Duration {
    let time = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(time.tv_sec).unwrap_or(0),
        u32::try_from(time.tv_nsec).unwrap_or(0),
    )
}

fn answered_queries(snapshot: &Snapshot) -> u64 {
    (snapshot.metrics.queries_by_rcode().iter())
        .map(|(_, n)| n)
        .sum()
}

fn serial_of(zone: &ZoneData) -> u32 {
    soa(zone).map_or(0, |soa| soa.serial)
}

fn soa(zone: &ZoneData) -> Option<&hickory_proto::rr::rdata::SOA> {
    zone.rrsets
        .iter()
        .filter(|s| s.rtype == RecordType::SOA)
        .flat_map(|s| &s.rdatas)
        .find_map(|r| match r {
            RData::SOA(soa) => Some(soa),
            _ => None,
        })
}

fn set_serial_of(rrsets: &mut [RrsetData], serial: u32) {
    for set in rrsets.iter_mut().filter(|s| s.rtype == RecordType::SOA) {
        for rdata in &mut set.rdatas {
            if let RData::SOA(soa) = rdata {
                soa.serial = serial;
            }
        }
    }
}

fn next_serial(serial: u32, policy: SerialPolicy) -> u32 {
    let incremented = serial.wrapping_add(1).max(1);
    match policy {
        SerialPolicy::Increment => incremented,
        SerialPolicy::Unixtime => {
            let now = unix_now() as u32;
            if newer(now, serial) { now } else { incremented }
        }
    }
}

/// The answer to an UPDATE: its header (opcode UPDATE, QR) with `rcode` and the zone
/// section; the other sections empty (§3.8).
fn reply(message: &Message, rcode: ResponseCode) -> Vec<u8> {
    let mut response = Message::new(
        message.metadata.id,
        hickory_proto::op::MessageType::Response,
        OpCode::Update,
    );
    response.metadata.response_code = rcode;
    if let Some(zone) = message.queries.first() {
        let mut query = Query::query(zone.name().clone(), zone.query_type());
        query.set_query_class(zone.query_class());
        response.add_query(query);
    }
    response
        .to_vec()
        .unwrap_or_else(|_| bare_error(&message.metadata.id.to_be_bytes(), rcode))
}

/// Sets the rcode of an answer [`reply`] made (the header's four bits: UPDATE's rcodes fit).
fn set_rcode(answer: &mut [u8], rcode: ResponseCode) {
    answer[3] = (answer[3] & 0xf0) | (u16::from(rcode) & 0x0f) as u8;
}

/// A header-only answer when the request could not be read.
fn bare_error(request: &[u8], rcode: ResponseCode) -> Vec<u8> {
    let mut out = vec![0u8; 12];
    out[..2].copy_from_slice(request.get(..2).unwrap_or(&[0, 0]));
    out[2] = 0x80 | (u8::from(OpCode::Update) << 3);
    out[3] = (u16::from(rcode) & 0x0f) as u8;
    out
}
