//! A zone's dynamic update policy (RFC 2136): which TSIG key may change which names and
//! types, like Knot's and BIND's update-policy; how updates move the serial; and whether
//! they are written back into the zone file.

use std::path::PathBuf;

use hickory_proto::rr::{Name, RecordType};

use crate::config::diag::{ConfigError, SourceMap};
use crate::config::raw::{RawUpdateRule, RawZone};
use crate::dns::rdata;

/// Who may update the zone; empty: nobody (updates are refused).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZoneUpdate {
    pub rules: Vec<UpdateRule>,
    pub serial_policy: SerialPolicy,
    /// The zone file that updates are written back into (`write_back = true`), whole and
    /// atomically, after each group is journaled; `None` leaves the file alone (the default:
    /// zone files stay the user's).
    pub write_back: Option<PathBuf>,
}

/// How an update moves the SOA serial.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SerialPolicy {
    /// serial + 1 (RFC 1982 arithmetic).
    #[default]
    Increment,
    /// The Unix time, or serial + 1 when that is not newer.
    Unixtime,
}

/// One `allow_update` entry: requests signed with `key` may change records of `types` at
/// names matching `names`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateRule {
    pub key: Name,
    pub names: Vec<NamePattern>,
    pub types: Vec<RecordType>,
}

/// A name relative to the zone: `@` (the apex), `label.label` exactly, `first.*` (names
/// whose leftmost labels are `first`, followed by one or more labels: `_acme-challenge.*`
/// is `_acme-challenge.www`, the challenge of `www`), or `*` (any name of the zone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamePattern {
    Exact(Name),
    /// The leading labels, lowercased, ending in a dot.
    Leading(String),
    Any,
}

impl NamePattern {
    fn parse(text: &str, origin: &Name) -> Result<NamePattern, String> {
        if text == "*" {
            return Ok(NamePattern::Any);
        }
        if text.ends_with('.') {
            return Err(format!(
                "{text:?}: names are relative to the zone (no trailing dot)"
            ));
        }
        let checked = |relative: &str| {
            Name::from_ascii(relative)
                .and_then(|n| n.append_domain(origin))
                .map_err(|e| format!("{text:?} is not a name relative to the zone: {e}"))
        };
        if text == "@" {
            Ok(NamePattern::Exact(origin.clone()))
        } else if let Some(prefix) = text.strip_suffix(".*") {
            checked(prefix)?;
            Ok(NamePattern::Leading(format!(
                "{}.",
                prefix.to_ascii_lowercase()
            )))
        } else {
            Ok(NamePattern::Exact(checked(text)?))
        }
    }

    /// Whether `name`, a name of the zone at `origin`, matches.
    pub fn matches(&self, name: &Name, origin: &Name) -> bool {
        match self {
            NamePattern::Exact(exact) => exact == name,
            NamePattern::Leading(prefix) => {
                let full = name.to_lowercase().to_string();
                let origin = origin.to_lowercase().to_string();
                full.strip_suffix(&origin).is_some_and(|relative| {
                    relative.len() > prefix.len() && relative.starts_with(prefix.as_str())
                })
            }
            NamePattern::Any => true,
        }
    }
}

impl ZoneUpdate {
    /// Whether a request signed with `key` may change `rtype` records at `name` of the zone
    /// at `origin`.
    pub fn allows(&self, key: &Name, name: &Name, rtype: RecordType, origin: &Name) -> bool {
        self.rules.iter().any(|rule| {
            &rule.key == key
                && rule.types.contains(&rtype)
                && rule.names.iter().any(|p| p.matches(name, origin))
        })
    }
}

/// Validates `allow_update` and `serial_policy` of zone `key` (`dns.zones[N]`).
pub(super) fn validate(
    rules: &[toml::Spanned<RawUpdateRule>],
    serial_policy: Option<&toml::Spanned<String>>,
    origin: &Name,
    tsig_keys: &[Name],
    key: &str,
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) -> ZoneUpdate {
    let mut update = ZoneUpdate::default();
    for (i, raw) in rules.iter().enumerate() {
        let at = format!("{key}.allow_update[{i}]");
        let raw = raw.get_ref();
        let key_name = Name::from_ascii(raw.key.get_ref())
            .ok()
            .and_then(|n| n.to_lowercase().append_domain(&Name::root()).ok())
            .filter(|n| tsig_keys.contains(n));
        let Some(key_name) = key_name else {
            errors.push(map.error(
                raw.key.span(),
                format!("{at}.key"),
                format!(
                    "no [[dns.tsig_keys]] entry is named {:?}",
                    raw.key.get_ref()
                ),
            ));
            continue;
        };
        let mut names = Vec::new();
        for (j, name) in raw.names.iter().enumerate() {
            match NamePattern::parse(name.get_ref(), origin) {
                Ok(pattern) => names.push(pattern),
                Err(message) => {
                    errors.push(map.error(name.span(), format!("{at}.names[{j}]"), message))
                }
            }
        }
        let mut types = Vec::new();
        for (j, rtype) in raw.types.iter().enumerate() {
            match rdata::parse_record_type(rtype.get_ref()) {
                Ok(RecordType::SOA) => errors.push(map.error(
                    rtype.span(),
                    format!("{at}.types[{j}]"),
                    "SOA is not updatable: updates move its serial themselves",
                )),
                Ok(rtype) => types.push(rtype),
                Err(e) => {
                    errors.push(map.error(rtype.span(), format!("{at}.types[{j}]"), e.to_string()))
                }
            }
        }
        if names.is_empty() || types.is_empty() {
            errors.push(map.error(
                raw.key.span(),
                at,
                "a rule needs at least one name pattern and one type",
            ));
            continue;
        }
        update.rules.push(UpdateRule {
            key: key_name,
            names,
            types,
        });
    }
    if let Some(policy) = serial_policy {
        match policy.get_ref().as_str() {
            "increment" => update.serial_policy = SerialPolicy::Increment,
            "unixtime" => update.serial_policy = SerialPolicy::Unixtime,
            other => errors.push(map.error(
                policy.span(),
                format!("{key}.serial_policy"),
                format!("{other:?}: expected \"increment\" or \"unixtime\""),
            )),
        }
    }
    update
}

/// Checks `write_back` of zone `key` (`dns.zones[N]`), whose file resolved to `files[0]`
/// (with the files it `$INCLUDE`s after it), and returns the file to write back into.
///
/// The file written back holds the zone's data as served, so that data must all come from
/// the one file: inline `records` (routed sets among them, which a master file cannot
/// express) and an inline `soa` would be copied into it and then given twice, and the
/// `$INCLUDE`d files would be folded into it.
pub(super) fn write_back(
    raw: &RawZone,
    files: &[PathBuf],
    key: &str,
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) -> Option<PathBuf> {
    let flag = raw.write_back.as_ref().filter(|flag| *flag.get_ref())?;
    let (file, included) = match files.split_first() {
        Some((file, included)) if raw.file.is_some() => (file, included),
        _ => {
            let message = "write_back writes updates into the zone's file, and this zone has \
                           none: set `file`";
            errors.push(map.error(flag.span(), format!("{key}.write_back"), message));
            return None;
        }
    };
    let message = if raw.allow_update.is_empty() {
        "write_back writes updates into the zone file, and this zone allows none: set \
         allow_update"
            .to_string()
    } else if !raw.records.is_empty() {
        format!(
            "write_back needs a zone whose data all come from its file: move {key}.records \
             into the file (routed sets cannot be written to a zone file: keep them in a zone \
             without write_back)"
        )
    } else if raw.soa.is_some() {
        format!("write_back needs a zone whose data all come from its file: put {key}.soa in it")
    } else if !included.is_empty() {
        format!(
            "write_back writes one file, and this zone's file $INCLUDEs others ({}), which \
             would be folded into it: put their records in the one file",
            shown_paths(included)
        )
    } else {
        return Some(file.clone());
    };
    errors.push(map.error(flag.span(), format!("{key}.write_back"), message));
    None
}

fn shown_paths(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    shown.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    #[test]
    fn patterns_match_relative_to_the_zone() {
        let origin = name("home.example.");
        let exact = NamePattern::parse("_acme-challenge", &origin).unwrap();
        let leading = NamePattern::parse("_acme-challenge.*", &origin).unwrap();
        let apex = NamePattern::parse("@", &origin).unwrap();
        let m = |p: &NamePattern, n: &str| p.matches(&name(n), &origin);
        assert!(m(&exact, "_ACME-challenge.home.example."));
        assert!(!m(&exact, "_acme-challenge.www.home.example."));
        assert!(m(&leading, "_acme-challenge.www.home.example."));
        assert!(m(&leading, "_Acme-Challenge.a.b.home.example."));
        assert!(!m(&leading, "_acme-challenge.home.example."));
        assert!(!m(&leading, "www._acme-challenge.home.example."));
        assert!(m(&apex, "home.example."));
        assert!(NamePattern::parse("www.home.example.", &origin).is_err());
        assert!(m(&NamePattern::Any, "a.b.home.example."));
    }
}
