//! Dynamic updates (RFC 2136), signed with TSIG and allowed by the zone's `allow_update`
//! policy: checked, written to the zone's journal under `[dns] data_dir` (fsync) and only
//! then answered, and served at once by a new snapshot.
//!
//! The served data of a zone is its configured data (file and inline records, which stay
//! the user's) with the net dynamic changes on top: the journal's delta. Reloads keep them
//! (the reloader asks [`Dynamic::served`]), and a restart replays them.
//!
//! - `rfc2136`: prerequisites, prescan and the update section's semantics

mod rfc2136;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_proto::op::{Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, RecordType};
use tokio::sync::Mutex;
use tracing::{info, warn};

use super::journal::{Changeset, Delta, Journal, JournalError, Limits};
use super::snapshot::Snapshot;
use super::transfer::{newer, notify, unix_now};
use super::tsig::{self, Verification};
use crate::config::DnsConfig;
use crate::config::dns::{SerialPolicy, ZoneData};

/// The dynamic layer of every zone that allows updates, shared by the request path (which
/// applies updates) and the reloader (which builds snapshots of new configs with it).
pub struct Dynamic {
    inner: Mutex<Inner>,
}

struct Inner {
    /// The config in force, without the dynamic changes.
    config: DnsConfig,
    zones: HashMap<LowerName, ZoneState>,
}

/// One zone's journal, its net changes and the serial updates gave it.
struct ZoneState {
    journal: Journal,
    delta: Delta,
    serial: Option<u32>,
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
        };
        inner.open_journals()?;
        let served = inner.served(config);
        let dynamic = Dynamic {
            inner: Mutex::new(inner),
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
        served: &ArcSwap<Snapshot>,
    ) -> Vec<u8> {
        let Ok(message) = Message::from_vec(request) else {
            return bare_error(request, ResponseCode::FormErr);
        };
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
        let rcode = self
            .apply(
                &message,
                zone_question.name(),
                signed.key.name(),
                peer,
                served,
            )
            .await;
        let mut out = reply(&message, rcode);
        if let Err(e) = signed.signer().sign(&mut out, now) {
            warn!("update from {peer}: cannot sign the answer: {e}");
        }
        out
    }

    async fn apply(
        &self,
        message: &Message,
        zone_name: &Name,
        key: &Name,
        peer: IpAddr,
        served: &ArcSwap<Snapshot>,
    ) -> ResponseCode {
        let mut inner = self.inner.lock().await;
        let lower = LowerName::new(zone_name);
        let Some(base) = inner
            .config
            .zones
            .iter()
            .find(|z| LowerName::new(&z.origin) == lower)
        else {
            return ResponseCode::NotAuth;
        };
        let policy = base.update.clone();
        if policy.rules.is_empty() {
            return ResponseCode::Refused;
        }
        let origin = base.origin.clone();
        let Some(state) = inner.zones.get(&lower) else {
            return ResponseCode::Refused;
        };
        let mut zone = base.clone();
        state.serve(&mut zone);
        let before = rfc2136::Records::of(&zone);
        if let Err(rcode) = rfc2136::check_prerequisites(&before, &origin, &message.answers) {
            return rcode;
        }
        let allowed = |name: &Name, rtype: RecordType| {
            if rtype == RecordType::ANY {
                // Deleting every RRset at a name: allowed only if every type there is.
                let types: Vec<RecordType> = (before.clone().into_rrsets().iter())
                    .filter(|s| s.name.to_lowercase() == name.to_lowercase())
                    .map(|s| s.rtype)
                    .collect();
                !types.is_empty() && types.iter().all(|t| policy.allows(key, name, *t, &origin))
            } else {
                policy.allows(key, name, rtype, &origin)
            }
        };
        if let Err(rcode) = rfc2136::prescan(&origin, &message.authorities, allowed) {
            return rcode;
        }
        let mut after = before.clone();
        rfc2136::apply(&mut after, &origin, &message.authorities);
        let (removed, added) = rfc2136::diff(&before, &after);
        if removed.is_empty() && added.is_empty() {
            return ResponseCode::NoError;
        }
        let from = serial_of(&zone);
        let to = next_serial(from, policy.serial_policy);
        let change = Changeset {
            zone: origin.clone(),
            from_serial: from,
            to_serial: to,
            removed,
            added,
        };
        let Some(state) = inner.zones.get_mut(&lower) else {
            return ResponseCode::Refused;
        };
        if let Err(e) = state.record(&change) {
            warn!("update of {origin} from {peer} not kept: {e}");
            return ResponseCode::ServFail;
        }
        info!(
            "update of {origin} from {peer} (key {key}): serial {from} -> {to}, {} removed, {} added",
            change.removed.len(),
            change.added.len()
        );
        let config = inner.served(&inner.config);
        let old = served.load_full();
        let new = Arc::new(old.rebuilt(&config));
        served.store(new.clone());
        notify::changed_zones(Some(&old), &new);
        ResponseCode::NoError
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
        self.0.open_journals()
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
            self.zones.insert(
                lower,
                ZoneState {
                    journal,
                    delta: replayed.delta,
                    serial: replayed.serial,
                },
            );
        }
        Ok(())
    }

    fn served(&self, config: &DnsConfig) -> DnsConfig {
        let mut config = config.clone();
        for zone in &mut config.zones {
            if let Some(state) = self.zones.get(&LowerName::new(&zone.origin)) {
                state.serve(zone);
            }
        }
        config
    }
}

impl ZoneState {
    /// Puts the dynamic changes and the updates' serial (when newer than the data's own)
    /// on `zone`.
    fn serve(&self, zone: &mut ZoneData) {
        rfc2136::patch(
            zone,
            &self.delta.removed_records(),
            &self.delta.added_records(),
        );
        if let Some(serial) = self.serial
            && newer(serial, serial_of(zone))
        {
            set_serial(zone, serial);
        }
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

fn set_serial(zone: &mut ZoneData, serial: u32) {
    for set in zone
        .rrsets
        .iter_mut()
        .filter(|s| s.rtype == RecordType::SOA)
    {
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

/// A header-only answer when the request could not be read.
fn bare_error(request: &[u8], rcode: ResponseCode) -> Vec<u8> {
    let mut out = vec![0u8; 12];
    out[..2].copy_from_slice(request.get(..2).unwrap_or(&[0, 0]));
    out[2] = 0x80 | (u8::from(OpCode::Update) << 3);
    out[3] = (u16::from(rcode) & 0x0f) as u8;
    out
}
