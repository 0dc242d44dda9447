//! What a reload changed, for the `POST /reload` answer and the SIGHUP log line.

use std::fmt;

use serde::Serialize;

use crate::config::DnsConfig;
use crate::config::dns::ZoneData;
use crate::health::HealthChanges;
use crate::net::listeners::ListenerChanges;

/// Zones, health checks and listeners before and after a reload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReloadSummary {
    pub zones: ZoneChanges,
    pub health_checks: HealthChanges,
    /// Addresses bound and retired (`udp+tcp` for `listen`, `http` for `status_listen`).
    pub listeners: ListenerChanges,
}

/// Zones by what the reload did to them; added and changed ones with their new figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ZoneChanges {
    pub added: Vec<ZoneFacts>,
    pub removed: Vec<String>,
    pub changed: Vec<ZoneFacts>,
    /// How many zones serve exactly what they served before.
    pub unchanged: usize,
}

/// A zone as now served: its apex, SOA serial and number of records (routed sets included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ZoneFacts {
    pub name: String,
    pub serial: u32,
    pub records: usize,
}

// === impl ReloadSummary ===

impl ReloadSummary {
    /// Every change as one line each, the `changed` list of the reload's answer.
    pub fn changed(&self) -> Vec<String> {
        let zones = &self.zones;
        let checks = &self.health_checks;
        let mut lines: Vec<String> = Vec::new();
        lines.extend(zones.added.iter().map(|z| format!("zone {z} added")));
        lines.extend(zones.changed.iter().map(|z| format!("zone {z} changed")));
        lines.extend(zones.removed.iter().map(|z| format!("zone {z} removed")));
        for (what, ids) in [
            ("added", &checks.added),
            ("removed", &checks.removed),
            ("restarted", &checks.restarted),
        ] {
            lines.extend(ids.iter().map(|id| format!("health check {id} {what}")));
        }
        lines.extend(self.listeners.lines());
        lines
    }

    /// Compares the zones of `old` and `new`; `health_checks` comes from staging the checks.
    pub fn between(old: &DnsConfig, new: &DnsConfig, health_checks: HealthChanges) -> Self {
        let mut zones = ZoneChanges::default();
        for zone in &new.zones {
            match old.zones.iter().find(|z| z.origin == zone.origin) {
                None => zones.added.push(ZoneFacts::of(zone)),
                Some(before) if before != zone => zones.changed.push(ZoneFacts::of(zone)),
                Some(_) => zones.unchanged += 1,
            }
        }
        zones.removed = old
            .zones
            .iter()
            .filter(|z| !new.zones.iter().any(|n| n.origin == z.origin))
            .map(|z| z.origin.to_string())
            .collect();
        ReloadSummary {
            zones,
            health_checks,
            listeners: ListenerChanges::default(),
        }
    }
}

/// One line: `zones: +a. (serial 3, 12 records), ~b. (...), -c.; 4 unchanged; health checks: ...`
impl fmt::Display for ReloadSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let zones = &self.zones;
        let mut parts: Vec<String> = Vec::new();
        parts.extend(zones.added.iter().map(|z| format!("added {z}")));
        parts.extend(zones.changed.iter().map(|z| format!("changed {z}")));
        parts.extend(zones.removed.iter().map(|z| format!("removed {z}")));
        parts.push(format!("{} unchanged", zones.unchanged));
        write!(f, "zones: {}", parts.join(", "))?;
        let checks = &self.health_checks;
        let lists = [
            ("added", &checks.added),
            ("removed", &checks.removed),
            ("restarted", &checks.restarted),
            ("kept", &checks.kept),
        ];
        let said: Vec<String> = lists
            .iter()
            .filter(|(_, ids)| !ids.is_empty())
            .map(|(what, ids)| format!("{what} {}", ids.join(" ")))
            .collect();
        if !said.is_empty() {
            write!(f, "; health checks: {}", said.join(", "))?;
        }
        let listeners = &self.listeners;
        if !listeners.is_empty() {
            let changes: Vec<String> = (listeners.added.iter().map(|l| format!("added {l}")))
                .chain(listeners.removed.iter().map(|l| format!("removed {l}")))
                .collect();
            write!(f, "; listeners: {}", changes.join(", "))?;
        }
        Ok(())
    }
}

// === impl ZoneFacts ===

impl ZoneFacts {
    /// The facts of `zone` as it will be served.
    pub fn of(zone: &ZoneData) -> ZoneFacts {
        let plain: usize = zone.rrsets.iter().map(|set| set.rdatas.len()).sum();
        let routed: usize = zone
            .routed
            .iter()
            .flat_map(|group| &group.members)
            .map(|member| member.rdatas.len())
            .sum();
        ZoneFacts {
            name: zone.origin.to_string(),
            serial: super::serial::of(zone),
            records: plain + routed,
        }
    }
}

impl fmt::Display for ZoneFacts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (serial {}, {} records)",
            self.name, self.serial, self.records
        )
    }
}
