//! A zone's transfer settings: who may transfer it (`allow_transfer`) and which secondaries
//! hear of every new serial (`notify`).

use std::net::SocketAddr;

use hickory_proto::rr::Name;
use ipnet::IpNet;

use crate::config::diag::{ConfigError, SourceMap};

/// Who may transfer the zone, and whom to tell of changes. Default: nobody, no one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZoneTransfer {
    /// A transfer is allowed when any rule matches.
    pub allow: Vec<TransferRule>,
    /// Secondaries sent a NOTIFY (RFC 1996) on every serial change.
    pub notify: Vec<SocketAddr>,
}

/// One `allow_transfer` entry: `"CIDR"`, `"key:NAME"`, or both (`"CIDR key:NAME"`: the
/// request must come from the network and be signed with the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRule {
    pub network: Option<IpNet>,
    /// TSIG key name (compared without regard to case, as DNS names are).
    pub key: Option<Name>,
}

impl ZoneTransfer {
    /// Whether a request from `peer`, verified as signed with `key` (if any), may transfer.
    pub fn allows(&self, peer: std::net::IpAddr, key: Option<&Name>) -> bool {
        let peer = peer.to_canonical();
        self.allow.iter().any(|rule| {
            rule.network.is_none_or(|net| net.contains(&peer))
                && rule
                    .key
                    .as_ref()
                    .is_none_or(|wanted| key.is_some_and(|k| k == wanted))
        })
    }
}

/// Validates `allow_transfer` and `notify` of zone `key` (`dns.zones[N]`).
pub(super) fn validate(
    allow: &[toml::Spanned<String>],
    notify: &[toml::Spanned<String>],
    tsig_keys: &[Name],
    key: &str,
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) -> ZoneTransfer {
    let mut transfer = ZoneTransfer::default();
    for (i, entry) in allow.iter().enumerate() {
        match rule(entry.get_ref()) {
            Ok(TransferRule {
                key: Some(name), ..
            }) if !tsig_keys.contains(&name) => errors.push(map.error(
                entry.span(),
                format!("{key}.allow_transfer[{i}]"),
                format!("no [[dns.tsig_keys]] entry is named {name}"),
            )),
            Ok(rule) => transfer.allow.push(rule),
            Err(message) => {
                errors.push(map.error(entry.span(), format!("{key}.allow_transfer[{i}]"), message))
            }
        }
    }
    for (i, entry) in notify.iter().enumerate() {
        match notify_target(entry.get_ref()) {
            Ok(addr) if !transfer.notify.contains(&addr) => transfer.notify.push(addr),
            Ok(addr) => errors.push(map.error(
                entry.span(),
                format!("{key}.notify[{i}]"),
                format!("{addr} is listed twice"),
            )),
            Err(message) => {
                errors.push(map.error(entry.span(), format!("{key}.notify[{i}]"), message))
            }
        }
    }
    transfer
}

fn rule(text: &str) -> Result<TransferRule, String> {
    let mut rule = TransferRule {
        network: None,
        key: None,
    };
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() || words.len() > 2 {
        return Err(format!(
            "{text:?}: expected \"CIDR\", \"key:NAME\" or \"CIDR key:NAME\""
        ));
    }
    for word in words {
        if let Some(name) = word.strip_prefix("key:") {
            if rule.key.is_some() {
                return Err(format!("{text:?}: one key per entry"));
            }
            let name = Name::from_ascii(name)
                .map_err(|e| format!("{text:?}: {name:?} is not a key name: {e}"))?;
            rule.key = Some(
                name.to_lowercase()
                    .append_domain(&Name::root())
                    .map_err(|e| format!("{text:?}: key name too long: {e}"))?,
            );
        } else {
            if rule.network.is_some() {
                return Err(format!("{text:?}: one network per entry"));
            }
            let network = word
                .parse::<IpNet>()
                .or_else(|_| word.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    format!("{text:?}: {word:?} is neither an address/CIDR nor key:NAME")
                })?;
            rule.network = Some(network.trunc());
        }
    }
    Ok(rule)
}

fn notify_target(text: &str) -> Result<SocketAddr, String> {
    text.parse::<SocketAddr>()
        .or_else(|_| {
            text.parse::<std::net::IpAddr>()
                .map(|ip| SocketAddr::new(ip, 53))
        })
        .map_err(|_| format!("{text:?} is not an address (\"127.0.0.1:5301\", \"[::1]:53\")"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    #[test]
    fn rules_read_networks_keys_and_both() {
        let both = rule("10.0.0.0/8 key:XFR").unwrap();
        assert_eq!(both.network, Some("10.0.0.0/8".parse().unwrap()));
        assert_eq!(both.key, Some(name("xfr.")));
        assert_eq!(
            rule("192.0.2.1").unwrap().network,
            Some("192.0.2.1/32".parse().unwrap())
        );
        for bad in [
            "",
            "key:a key:b",
            "10.0.0.0/8 10.0.0.0/9",
            "nonsense",
            "a b c",
        ] {
            assert!(rule(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn allows_when_a_rule_matches_all_it_names() {
        let transfer = ZoneTransfer {
            allow: vec![
                rule("127.0.0.1").unwrap(),
                rule("10.0.0.0/8 key:xfr").unwrap(),
            ],
            notify: Vec::new(),
        };
        let xfr = name("XFR.");
        assert!(transfer.allows("127.0.0.1".parse().unwrap(), None));
        assert!(transfer.allows("::ffff:127.0.0.1".parse().unwrap(), None));
        assert!(!transfer.allows("10.1.2.3".parse().unwrap(), None));
        assert!(transfer.allows("10.1.2.3".parse().unwrap(), Some(&xfr)));
        assert!(!transfer.allows("192.0.2.9".parse().unwrap(), Some(&xfr)));
        assert!(!ZoneTransfer::default().allows("127.0.0.1".parse().unwrap(), None));
    }

    #[test]
    fn notify_targets_default_to_port_53() {
        assert_eq!(
            notify_target("192.0.2.1").unwrap(),
            "192.0.2.1:53".parse().unwrap()
        );
        assert_eq!(
            notify_target("[::1]:5301").unwrap(),
            "[::1]:5301".parse().unwrap()
        );
        assert!(notify_target("ns1.example").is_err());
    }
}
