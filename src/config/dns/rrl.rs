//! `[dns] rrl`: response rate limiting (NSD's `rrl-*`, Knot's `rate-limit*`), checked into
//! the settings [`crate::dns::rrl`] serves with.

use std::net::IpAddr;

use ipnet::IpNet;

use super::bounded;
use crate::config::diag::{ConfigError, SourceMap};
use crate::config::raw::RawRrl;

/// Responses a second per bucket unless configured.
const DEFAULT_RATE: u32 = 20;
/// Every second limited response goes out truncated, as in NSD, Knot and BIND.
const DEFAULT_SLIP: u8 = 2;
const DEFAULT_IPV4_PREFIX: u8 = 24;
/// A site's usual IPv6 allocation: one customer, one bucket.
const DEFAULT_IPV6_PREFIX: u8 = 56;
/// 2 MiB of buckets: ample for the clients of a small site within a second.
const DEFAULT_TABLE_SIZE: usize = 1 << 18;
/// The largest rate a bucket can count (it keeps 1/16 s of it as its unit, in 24 bits).
pub const MAX_RATE: u32 = 1_000_000;

/// Validated `rrl = { ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RrlConfig {
    /// UDP responses a second allowed per bucket: one client prefix, one kind of response
    /// for one name. Defaults to 20; 0 turns rate limiting off.
    pub responses_per_second: u32,
    /// Every `slip`-th limited response is sent truncated (TC=1, no records) so a real
    /// client retries over TCP; the others are dropped. 0 drops all, 1 truncates all.
    /// Defaults to 2.
    pub slip: u8,
    /// IPv4 clients share a bucket per prefix of this length. Defaults to 24.
    pub ipv4_prefix: u8,
    /// IPv6 clients share a bucket per prefix of this length. Defaults to 56.
    pub ipv6_prefix: u8,
    /// Clients never limited. Defaults to none: loopback is limited like everyone else.
    pub exempt: Vec<IpNet>,
    /// Buckets in the table; keys that hash alike share one. Defaults to 262,144 (2 MiB).
    pub table_size: usize,
}

/// Checks `dns.rrl`; `None` when it turns rate limiting off or has errors (pushed).
pub(super) fn validate(
    raw: &toml::Spanned<RawRrl>,
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) -> Option<RrlConfig> {
    let raw = raw.get_ref();
    let before = errors.len();
    let int =
        |value, range, key, errors: &mut Vec<ConfigError>| bounded(value, range, key, map, errors);
    let rate = int(
        &raw.responses_per_second,
        0..=i64::from(MAX_RATE),
        "dns.rrl.responses_per_second",
        errors,
    )
    .map_or(DEFAULT_RATE, |n| n as u32);
    let slip = int(&raw.slip, 0..=10, "dns.rrl.slip", errors).map_or(DEFAULT_SLIP, |n| n as u8);
    let ipv4_prefix = int(&raw.ipv4_prefix, 0..=32, "dns.rrl.ipv4_prefix", errors)
        .map_or(DEFAULT_IPV4_PREFIX, |n| n as u8);
    let ipv6_prefix = int(&raw.ipv6_prefix, 0..=128, "dns.rrl.ipv6_prefix", errors)
        .map_or(DEFAULT_IPV6_PREFIX, |n| n as u8);
    let table_size = int(
        &raw.table_size,
        1024..=(1 << 26),
        "dns.rrl.table_size",
        errors,
    )
    .map_or(DEFAULT_TABLE_SIZE, |n| n as usize);
    let mut exempt = Vec::new();
    for (i, entry) in raw.exempt.iter().enumerate() {
        match parse_block(entry.get_ref()) {
            Some(net) => exempt.push(net),
            None => errors.push(map.error(
                entry.span(),
                format!("dns.rrl.exempt[{i}]"),
                format!(
                    "{:?} is not an address or CIDR block (e.g. \"192.0.2.0/24\" or \"2001:db8::1\")",
                    entry.get_ref()
                ),
            )),
        }
    }
    (errors.len() == before && rate > 0).then_some(RrlConfig {
        responses_per_second: rate,
        slip,
        ipv4_prefix,
        ipv6_prefix,
        exempt,
        table_size,
    })
}

/// A CIDR block (host bits cleared), or one address as its own block.
fn parse_block(text: &str) -> Option<IpNet> {
    match text.parse::<IpNet>() {
        Ok(net) => Some(net.trunc()),
        Err(_) => text.parse::<IpAddr>().ok().map(IpNet::from),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::raw::RawConfig;

    fn check(rrl: &str) -> (Option<RrlConfig>, Vec<String>) {
        let text = format!("[dns]\nrrl = {rrl}\n");
        let raw: RawConfig = toml::from_str(&text).expect("valid TOML");
        let map = SourceMap {
            file: Path::new("c.toml"),
            text: &text,
        };
        let mut errors = Vec::new();
        let config = validate(raw.dns.unwrap().rrl.as_ref().unwrap(), &map, &mut errors);
        (config, errors.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn an_empty_table_turns_limiting_on_with_the_defaults() {
        let (config, errors) = check("{}");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            config,
            Some(RrlConfig {
                responses_per_second: 20,
                slip: 2,
                ipv4_prefix: 24,
                ipv6_prefix: 56,
                exempt: Vec::new(),
                table_size: 262_144,
            })
        );
    }

    #[test]
    fn a_rate_of_zero_turns_limiting_off() {
        assert_eq!(check("{ responses_per_second = 0 }"), (None, Vec::new()));
    }

    #[test]
    fn exempt_takes_blocks_and_single_addresses() {
        let (config, _) = check(r#"{ exempt = ["10.1.2.3/8", "2001:db8::1"] }"#);
        let exempt = config.unwrap().exempt;
        assert_eq!(exempt[0].to_string(), "10.0.0.0/8");
        assert_eq!(exempt[1].to_string(), "2001:db8::1/128");
    }

    #[test]
    fn every_bad_value_is_reported_at_its_line_and_key() {
        let (config, errors) = check(
            r#"{ responses_per_second = 2000000, slip = 11, ipv4_prefix = 33, ipv6_prefix = -1, table_size = 10, exempt = ["ten"] }"#,
        );
        assert_eq!(config, None);
        let keys = [
            "dns.rrl.responses_per_second: 2000000 is out of range (expected 0 to 1000000)",
            "dns.rrl.slip: 11 is out of range (expected 0 to 10)",
            "dns.rrl.ipv4_prefix: 33 is out of range",
            "dns.rrl.ipv6_prefix: -1 is out of range",
            "dns.rrl.table_size: 10 is out of range",
            "dns.rrl.exempt[0]: \"ten\" is not an address or CIDR block",
        ];
        assert_eq!(errors.len(), keys.len(), "{errors:?}");
        for (error, key) in errors.iter().zip(keys) {
            assert!(error.starts_with("c.toml:2:"), "{error}");
            assert!(error.contains(key), "{error} should say {key}");
        }
    }
}
