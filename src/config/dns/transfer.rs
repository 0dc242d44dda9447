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
    pub notify: Vec<NotifyTarget>,
}

/// One `notify` entry: `"ADDRESS[:PORT]"`, or `"ADDRESS[:PORT] key:NAME"` to sign the NOTIFY
/// with that TSIG key (secondaries that take NOTIFY only signed, as NSD's `allow-notify` with
/// a key does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyTarget {
    pub addr: SocketAddr,
    /// TSIG key name (lowercased, absolute).
    pub key: Option<Name>,
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
        let at = format!("{key}.notify[{i}]");
        match notify_target(entry.get_ref()) {
            Ok(NotifyTarget {
                key: Some(name), ..
            }) if !tsig_keys.contains(&name) => errors.push(map.error(
                entry.span(),
                at,
                format!("no [[dns.tsig_keys]] entry is named {name}"),
            )),
            Ok(target) if transfer.notify.iter().any(|t| t.addr == target.addr) => {
                errors.push(map.error(entry.span(), at, format!("{} is listed twice", target.addr)))
            }
            Ok(target) => transfer.notify.push(target),
            Err(message) => errors.push(map.error(entry.span(), at, message)),
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
            rule.key = Some(key_name(text, name)?);
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

/// The key name of a `key:NAME` word of entry `text`: lowercased and absolute, as the
/// keyring holds names.
fn key_name(text: &str, name: &str) -> Result<Name, String> {
    let parsed =
        Name::from_ascii(name).map_err(|e| format!("{text:?}: {name:?} is not a key name: {e}"))?;
    parsed
        .to_lowercase()
        .append_domain(&Name::root())
        .map_err(|e| format!("{text:?}: key name too long: {e}"))
}

fn notify_target(text: &str) -> Result<NotifyTarget, String> {
    let usage = || {
        format!(
            "{text:?}: expected an address (\"127.0.0.1:5301\", \"[::1]:53\"), optionally \
             followed by key:NAME"
        )
    };
    let (addr, key) = match text.split_whitespace().collect::<Vec<_>>()[..] {
        [addr] => (addr, None),
        [addr, key] => (addr, Some(key.strip_prefix("key:").ok_or_else(usage)?)),
        _ => return Err(usage()),
    };
    let addr = addr
        .parse::<SocketAddr>()
        .or_else(|_| {
            addr.parse::<std::net::IpAddr>()
                .map(|ip| SocketAddr::new(ip, 53))
        })
        .map_err(|_| usage())?;
    let key = key.map(|name| key_name(text, name)).transpose()?;
    Ok(NotifyTarget { addr, key })
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
    fn notify_targets_default_to_port_53_and_may_name_a_key() {
        assert_eq!(
            notify_target("192.0.2.1").unwrap().addr,
            "192.0.2.1:53".parse().unwrap()
        );
        let keyed = notify_target("[::1]:5301 key:XFR").unwrap();
        assert_eq!(keyed.addr, "[::1]:5301".parse().unwrap());
        assert_eq!(keyed.key, Some(name("xfr.")));
        for bad in ["ns1.example", "", "192.0.2.1 xfr", "192.0.2.1 key:a key:b"] {
            assert!(notify_target(bad).is_err(), "{bad:?}");
        }
    }
}
