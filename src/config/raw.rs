//! The TOML file as written: a serde mirror with `deny_unknown_fields` everywhere.
//!
//! Nothing here is validated beyond its TOML type; `validate` turns it into [`super::Config`].
//! Fields that later checks must point at are `Spanned`, so errors carry line and column.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;
use toml::Spanned;

use super::units::ConfigDuration;

/// The whole file. Sections that no served feature reads yet are accepted and skipped, so the
/// one example file loads for every binary; each is typed when the feature that reads it lands.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub dns: Option<RawDns>,
    pub geo: Option<RawGeo>,
    #[serde(default)]
    pub health_checks: Vec<Spanned<RawHealthCheck>>,
    #[serde(default)]
    pub regions: Vec<Spanned<RawRegion>>,
    #[serde(rename = "cdn")]
    _cdn: Option<IgnoredAny>,
    #[serde(rename = "stream")]
    _stream: Option<IgnoredAny>,
}

/// `[geo]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGeo {
    pub country_db: Option<Spanned<String>>,
    pub city_db: Option<Spanned<String>>,
    #[serde(default)]
    pub networks: Vec<Spanned<RawGeoNetwork>>,
}

/// `[[geo.networks]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGeoNetwork {
    pub cidr: Spanned<String>,
    pub continent: Option<Spanned<String>>,
    pub country: Option<Spanned<String>>,
    pub subdivision: Option<Spanned<String>>,
    pub latitude: Option<Spanned<f64>>,
    pub longitude: Option<Spanned<f64>>,
}

/// `[[health_checks]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealthCheck {
    pub id: Spanned<String>,
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    pub target: Option<Spanned<String>>,
    pub interval: Option<Spanned<ConfigDuration>>,
    pub timeout: Option<Spanned<ConfigDuration>>,
    pub failure_threshold: Option<Spanned<i64>>,
    pub success_threshold: Option<Spanned<i64>>,
    pub expect_status: Option<Spanned<Vec<i64>>>,
    pub search_string: Option<Spanned<String>>,
    pub invert: Option<bool>,
    pub verify_tls: Option<Spanned<bool>>,
    pub children: Option<Spanned<Vec<String>>>,
    pub healthy_threshold: Option<Spanned<i64>>,
}

/// `[[regions]]`: where a latency-routed region's endpoints are.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRegion {
    pub id: Spanned<String>,
    pub latitude: Spanned<f64>,
    pub longitude: Spanned<f64>,
}

/// `[[dns.cidr_collections]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCidrCollection {
    pub id: Spanned<String>,
    pub locations: Spanned<BTreeMap<String, Vec<Spanned<String>>>>,
}

/// `geo = { ... }` of a geolocation-routed record set.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGeoTarget {
    pub continent: Option<String>,
    pub country: Option<String>,
    pub subdivision: Option<String>,
}

/// `cidr = { collection, location }` of an IP-routed record set.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCidrTarget {
    pub collection: String,
    pub location: String,
}

/// `[dns]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDns {
    #[serde(default)]
    pub listen: Vec<Spanned<String>>,
    pub use_client_subnet: Option<bool>,
    #[serde(default)]
    pub status_listen: Vec<Spanned<String>>,
    #[serde(default)]
    pub cidr_collections: Vec<Spanned<RawCidrCollection>>,
    pub workers: Option<Spanned<i64>>,
    pub max_udp_payload: Option<Spanned<i64>>,
    pub tcp_idle_timeout: Option<Spanned<ConfigDuration>>,
    pub tcp_max_connections: Option<Spanned<i64>>,
    pub chaos: Option<RawChaos>,
    #[serde(default)]
    pub zones: Vec<Spanned<RawZone>>,
}

/// `[dns.chaos]`: answers to CHAOS-class TXT queries; each is refused when unset.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChaos {
    pub version: Option<Spanned<String>>,
    pub id: Option<Spanned<String>>,
}

/// `[[dns.zones]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawZone {
    pub name: Spanned<String>,
    pub file: Option<Spanned<String>>,
    pub ttl: Option<Spanned<i64>>,
    pub soa: Option<Spanned<RawSoa>>,
    #[serde(default)]
    pub records: Vec<Spanned<RawRecord>>,
}

/// `soa = { ... }` of a zone; any field left out gets a default.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSoa {
    pub mname: Option<Spanned<String>>,
    pub rname: Option<Spanned<String>>,
    pub serial: Option<Spanned<i64>>,
    pub refresh: Option<Spanned<ConfigDuration>>,
    pub retry: Option<Spanned<ConfigDuration>>,
    pub expire: Option<Spanned<ConfigDuration>>,
    pub minimum: Option<Spanned<ConfigDuration>>,
    pub ttl: Option<Spanned<i64>>,
}

/// `[[dns.zones.records]]`: one record set, plain or (with `set_id`) routed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRecord {
    pub name: Spanned<String>,
    #[serde(rename = "type")]
    pub rtype: Spanned<String>,
    pub ttl: Option<Spanned<i64>>,
    #[serde(default)]
    pub values: Vec<Spanned<String>>,
    pub set_id: Option<Spanned<String>>,
    pub health_check: Option<Spanned<String>>,
    pub weight: Option<Spanned<i64>>,
    pub failover: Option<Spanned<String>>,
    pub region: Option<Spanned<String>>,
    pub geo: Option<Spanned<RawGeoTarget>>,
    pub cidr: Option<Spanned<RawCidrTarget>>,
    pub multivalue: Option<Spanned<bool>>,
}
