//! SOA serials across reloads. A zone without a configured serial gets the load time; a
//! reload that finds such a zone's data unchanged keeps the serial it had, so it is neither
//! reported as changed nor seen by resolvers as a new version.

use hickory_proto::rr::RData;

use crate::config::DnsConfig;
use crate::config::dns::ZoneData;
use crate::dns::transfer::newer;

/// The zone's SOA serial (0 if it had none, which validation rules out).
pub(super) fn of(zone: &ZoneData) -> u32 {
    soa_serial(zone).copied().unwrap_or_default()
}

/// Gives each zone of `new` whose serial was generated the serial it has in `old`, when
/// nothing else about it changed.
pub(super) fn keep_generated(old: &DnsConfig, new: &mut DnsConfig) {
    for zone in new.zones.iter_mut().filter(|z| z.serial_generated) {
        let Some(before) = old.zones.iter().find(|z| z.origin == zone.origin) else {
            continue;
        };
        let mut same = zone.clone();
        if let Some(serial) = soa_serial_mut(&mut same) {
            *serial = of(before);
        }
        // Transfer settings are not zone data: changing them keeps the serial too.
        if same.rrsets == before.rrsets && same.routed == before.routed {
            *zone = same;
        }
    }
}

/// Moves on the generated serial of each signed zone of `new` whose signer is not the one
/// `old` had (newly signed, or a key added, retired, starting or stopping to sign): its DNSKEY RRset or
/// signatures changed even when its data did not, and secondaries must transfer them.
pub(super) fn advance_resigned(old: &DnsConfig, new: &mut DnsConfig, now: u64) {
    let now = u32::try_from(now).unwrap_or(u32::MAX);
    for zone in &mut new.zones {
        let Some(dnssec) = &zone.dnssec else {
            continue;
        };
        let before = (old.zones.iter())
            .find(|z| z.origin == zone.origin)
            .and_then(|z| z.dnssec.as_ref());
        if before.is_none_or(|d| d.signer != dnssec.signer) {
            advance_generated(zone, now);
        }
    }
}

/// Moves a generated serial on to `now` (Unix seconds), or one past it when that is not
/// newer: the zone's signatures changed, and secondaries must see a new version.
pub(super) fn advance_generated(zone: &mut ZoneData, now: u32) {
    if !zone.serial_generated {
        return;
    }
    if let Some(serial) = soa_serial_mut(zone) {
        *serial = if newer(now, *serial) {
            now
        } else {
            serial.wrapping_add(1)
        };
    }
}

fn soa_serial(zone: &ZoneData) -> Option<&u32> {
    zone.rrsets
        .iter()
        .flat_map(|set| &set.rdatas)
        .find_map(|rdata| match rdata {
            RData::SOA(soa) => Some(&soa.serial),
            _ => None,
        })
}

fn soa_serial_mut(zone: &mut ZoneData) -> Option<&mut u32> {
    zone.rrsets
        .iter_mut()
        .flat_map(|set| &mut set.rdatas)
        .find_map(|rdata| match rdata {
            RData::SOA(soa) => Some(&mut soa.serial),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    /// A zone without an SOA (serial generated) and one with a configured serial.
    fn load(www: &str) -> DnsConfig {
        let text = format!(
            r#"[dns]
[[dns.zones]]
name = "gen.test"
records = [
  {{ name = "@", type = "NS", values = ["ns1.gen.test."] }},
  {{ name = "www", type = "A", values = ["{www}"] }},
]
[[dns.zones]]
name = "set.test"
soa = {{ mname = "ns1.set.test.", rname = "hostmaster.set.test.", serial = 9 }}
records = [{{ name = "@", type = "NS", values = ["ns1.set.test."] }}]
"#
        );
        let config = Config::from_str(&text, Path::new("serial.toml")).expect("valid");
        config.dns.expect("has [dns]")
    }

    /// `config` as loaded `seconds` later: generated serials moved on.
    fn later(mut config: DnsConfig, seconds: u32) -> DnsConfig {
        for zone in config.zones.iter_mut().filter(|z| z.serial_generated) {
            if let Some(serial) = soa_serial_mut(zone) {
                *serial += seconds;
            }
        }
        config
    }

    #[test]
    fn an_unchanged_zone_keeps_its_generated_serial_and_a_changed_one_moves_on() {
        let old = load("192.0.2.1");
        assert_eq!(
            old.zones
                .iter()
                .map(|z| z.serial_generated)
                .collect::<Vec<_>>(),
            [true, false]
        );
        let mut same = later(load("192.0.2.1"), 5);
        keep_generated(&old, &mut same);
        assert_eq!(same.zones, old.zones);

        let mut changed = later(load("192.0.2.2"), 5);
        keep_generated(&old, &mut changed);
        assert!(of(&changed.zones[0]) >= of(&old.zones[0]) + 5);
        assert_eq!(of(&changed.zones[1]), 9);
    }

    #[test]
    fn a_new_day_moves_a_generated_serial_on_and_leaves_a_configured_one() {
        let mut config = load("192.0.2.1");
        let generated = of(&config.zones[0]);
        for zone in &mut config.zones {
            advance_generated(zone, generated + 86_400);
        }
        assert_eq!(of(&config.zones[0]), generated + 86_400);
        assert_eq!(of(&config.zones[1]), 9);
        // A clock behind the serial still gives a newer one.
        advance_generated(&mut config.zones[0], 5);
        assert_eq!(of(&config.zones[0]), generated + 86_401);
    }
}
