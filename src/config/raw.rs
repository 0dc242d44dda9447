//! The TOML file as written: a serde mirror with `deny_unknown_fields` everywhere.
//!
//! Nothing here is validated beyond its TOML type; `validate` turns it into [`super::Config`].
//! Fields that later checks must point at are `Spanned`, so errors carry line and column.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::units::{ConfigDuration, ConfigSize};

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
    #[serde(default)]
    pub edge_groups: Vec<Spanned<RawEdgeGroup>>,
    pub cdn: Option<RawCdn>,
    pub stream: Option<RawStream>,
    pub analytics: Option<RawAnalytics>,
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

/// `[[edge_groups]]`: CDN edges that alias records answer with.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEdgeGroup {
    pub id: Spanned<String>,
    #[serde(default)]
    pub members: Vec<Spanned<RawEdgeMember>>,
}

/// One edge of an `[[edge_groups]]` entry: its address, and what each policy reads.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEdgeMember {
    pub address: Spanned<String>,
    pub region: Option<Spanned<String>>,
    pub geo: Option<Spanned<RawGeoTarget>>,
    pub weight: Option<Spanned<i64>>,
    pub health_check: Option<Spanned<String>>,
}

/// `alias = { edges, policy }` of a record: answered with edges of a group, not values.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlias {
    pub edges: Spanned<String>,
    pub policy: Option<Spanned<String>>,
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
    pub data_dir: Option<Spanned<String>>,
    pub use_client_subnet: Option<bool>,
    #[serde(default)]
    pub status_listen: Vec<Spanned<String>>,
    #[serde(default)]
    pub cidr_collections: Vec<Spanned<RawCidrCollection>>,
    pub workers: Option<Spanned<i64>>,
    pub max_udp_payload: Option<Spanned<i64>>,
    pub tcp_idle_timeout: Option<Spanned<ConfigDuration>>,
    pub tcp_max_connections: Option<Spanned<i64>>,
    pub tcp_max_per_client: Option<Spanned<i64>>,
    pub status_token: Option<Spanned<String>>,
    pub watch_zones: Option<bool>,
    pub query_log: Option<Spanned<RawLog>>,
    pub chaos: Option<RawChaos>,
    pub rrl: Option<Spanned<RawRrl>>,
    #[serde(default)]
    pub tsig_keys: Vec<Spanned<RawTsigKey>>,
    #[serde(default)]
    pub zones: Vec<Spanned<RawZone>>,
}

/// `rrl = { ... }` of `[dns]`: response rate limiting; off when absent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRrl {
    pub responses_per_second: Option<Spanned<i64>>,
    pub slip: Option<Spanned<i64>>,
    pub ipv4_prefix: Option<Spanned<i64>>,
    pub ipv6_prefix: Option<Spanned<i64>>,
    #[serde(default)]
    pub exempt: Vec<Spanned<String>>,
    pub table_size: Option<Spanned<i64>>,
}

/// `[[dns.tsig_keys]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTsigKey {
    pub name: Spanned<String>,
    pub algorithm: Option<Spanned<String>>,
    pub secret: Option<Spanned<String>>,
    pub secret_file: Option<Spanned<String>>,
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
    #[serde(default)]
    pub allow_transfer: Vec<Spanned<String>>,
    #[serde(default)]
    pub notify: Vec<Spanned<String>>,
    #[serde(default)]
    pub allow_update: Vec<Spanned<RawUpdateRule>>,
    pub serial_policy: Option<Spanned<String>>,
    pub write_back: Option<Spanned<bool>>,
    pub dnssec: Option<Spanned<crate::config::dns::RawDnssec>>,
}

/// One `allow_update` entry of a zone: who may change which names and types.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpdateRule {
    pub key: Spanned<String>,
    pub names: Vec<Spanned<String>>,
    pub types: Vec<Spanned<String>>,
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
    pub alias: Option<Spanned<RawAlias>>,
}

/// `[cdn]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCdn {
    #[serde(default)]
    pub https_listen: Vec<Spanned<String>>,
    #[serde(default)]
    pub http_listen: Vec<Spanned<String>>,
    #[serde(default)]
    pub admin_listen: Vec<Spanned<String>>,
    pub admin_token: Option<Spanned<String>>,
    pub cache_size: Option<Spanned<ConfigSize>>,
    pub max_object_size: Option<Spanned<ConfigSize>>,
    pub cache_body_dir: Option<Spanned<String>>,
    pub header_timeout: Option<Spanned<ConfigDuration>>,
    pub max_header_size: Option<Spanned<ConfigSize>>,
    pub idle_timeout: Option<Spanned<ConfigDuration>>,
    pub max_connections: Option<Spanned<i64>>,
    pub error_ttl: Option<Spanned<ConfigDuration>>,
    pub targeted_cache_control: Option<Spanned<String>>,
    pub generate_dev_certs: Option<bool>,
    /// ACME account and certificates.
    pub data_dir: Option<Spanned<String>>,
    pub http3: Option<bool>,
    pub http3_max_streams: Option<Spanned<i64>>,
    pub http3_0rtt: Option<bool>,
    pub acme: Option<Spanned<RawAcme>>,
    #[serde(default)]
    pub trusted_proxies: Vec<Spanned<String>>,
    #[serde(default)]
    pub key_groups: Vec<Spanned<RawKeyGroup>>,
    pub realtime_logs: Option<Spanned<RawRealtimeLogs>>,
    pub access_log: Option<Spanned<RawLog>>,
    #[serde(default)]
    pub certs: Vec<Spanned<RawCert>>,
    #[serde(default)]
    pub distributions: Vec<Spanned<RawDistribution>>,
}

/// `[[cdn.certs]]`: PEM files (`cert`, `key`) or, with `acme = true`, `names` to get a
/// certificate for from `[cdn.acme]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCert {
    pub cert: Option<Spanned<String>>,
    pub key: Option<Spanned<String>>,
    pub acme: Option<Spanned<bool>>,
    pub names: Option<Spanned<RawCertNames>>,
}

/// `names` of an ACME certificate: a list, or the word `"distributions"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawCertNames {
    List(Vec<String>),
    Word(String),
}

/// `[cdn.acme]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAcme {
    pub directory: Spanned<String>,
    pub email: Option<Spanned<String>>,
    pub ca_roots: Option<Spanned<String>>,
    pub challenge: Option<Spanned<String>>,
    pub renew_before: Option<Spanned<ConfigDuration>>,
    pub eab: Option<Spanned<RawEab>>,
    pub dns: Option<Spanned<RawAcmeDns>>,
}

/// `eab = { kid, hmac_key }`: External Account Binding (RFC 8555 §7.3.4).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEab {
    pub kid: Spanned<String>,
    pub hmac_key: Spanned<String>,
}

/// `dns = { server, tsig_key, ... }`: where dns-01 records are published (RFC 2136).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAcmeDns {
    pub server: Spanned<String>,
    pub tsig_key: Spanned<String>,
    pub algorithm: Option<Spanned<String>>,
    pub secret: Option<Spanned<String>>,
    pub secret_file: Option<Spanned<String>>,
}

/// `[[cdn.distributions]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDistribution {
    pub id: Spanned<String>,
    pub hosts: Spanned<Vec<Spanned<String>>>,
    pub viewer_protocol: Option<Spanned<String>>,
    pub geo_restriction: Option<Spanned<RawGeoRestriction>>,
    #[serde(default)]
    pub custom_errors: Vec<Spanned<RawCustomError>>,
    #[serde(default)]
    pub origins: Vec<Spanned<RawOrigin>>,
    #[serde(default)]
    pub origin_groups: Vec<Spanned<RawOriginGroup>>,
    #[serde(default)]
    pub behaviors: Vec<Spanned<RawBehavior>>,
    pub parent: Option<Spanned<String>>,
    pub parent_ca: Option<Spanned<String>>,
}

/// `custom_errors = [{ status, path, ttl }]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCustomError {
    pub status: Spanned<i64>,
    pub path: Spanned<String>,
    pub ttl: Option<Spanned<ConfigDuration>>,
    pub response_status: Option<Spanned<i64>>,
}

/// `[[cdn.distributions.origins]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOrigin {
    pub id: Spanned<String>,
    pub url: Option<Spanned<String>>,
    pub dir: Option<Spanned<String>>,
    pub host: Option<Spanned<String>>,
    pub connect_timeout: Option<Spanned<ConfigDuration>>,
    pub read_timeout: Option<Spanned<ConfigDuration>>,
    #[serde(default)]
    pub headers: BTreeMap<String, Spanned<String>>,
}

/// `[[cdn.distributions.origin_groups]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOriginGroup {
    pub id: Spanned<String>,
    pub members: Spanned<Vec<String>>,
    pub failover_status: Option<Spanned<Vec<i64>>>,
}

/// `[[cdn.distributions.behaviors]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBehavior {
    pub path: Spanned<String>,
    pub origin: Spanned<String>,
    pub allowed_methods: Option<Spanned<Vec<String>>>,
    pub min_ttl: Option<Spanned<ConfigDuration>>,
    pub default_ttl: Option<Spanned<ConfigDuration>>,
    pub max_ttl: Option<Spanned<ConfigDuration>>,
    pub compress: Option<bool>,
    pub cache_key: Option<Spanned<RawCacheKey>>,
    #[serde(default)]
    pub forward_headers: Vec<Spanned<String>>,
    pub viewer_protocol: Option<Spanned<String>>,
    pub trusted_key_groups: Option<Spanned<Vec<String>>>,
}

/// `cache_key = { query_strings, headers, cookies }`: each "all", "none" or a list of names.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCacheKey {
    pub query_strings: Option<Selection>,
    #[serde(default)]
    pub headers: Vec<String>,
    pub cookies: Option<Selection>,
}

/// `"all"`, `"none"`, or a list of names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    All,
    None,
    Only(Vec<String>),
}

impl<'de> Deserialize<'de> for Selection {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SelectionVisitor;
        impl<'de> serde::de::Visitor<'de> for SelectionVisitor {
            type Value = Selection;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("\"all\", \"none\" or a list of names")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Selection, E> {
                match v {
                    "all" => Ok(Selection::All),
                    "none" => Ok(Selection::None),
                    other => Err(E::custom(format!(
                        "{other:?} is not \"all\", \"none\" or a list of names"
                    ))),
                }
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Selection, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    names.push(name);
                }
                Ok(Selection::Only(names))
            }
        }
        deserializer.deserialize_any(SelectionVisitor)
    }
}

/// `[[cdn.key_groups]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKeyGroup {
    pub id: Spanned<String>,
    pub keys: Vec<Spanned<RawPublicKey>>,
}

/// `keys = [{ id, public_key }]` of a key group.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPublicKey {
    pub id: Spanned<String>,
    pub public_key: Spanned<String>,
}

/// `geo_restriction = { mode, countries, block_unknown }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGeoRestriction {
    pub mode: Spanned<String>,
    pub countries: Vec<Spanned<String>>,
    pub block_unknown: Option<bool>,
}

/// `[cdn.realtime_logs]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRealtimeLogs {
    pub stream: Spanned<String>,
    pub sampling_percent: Option<Spanned<i64>>,
    pub fields: Option<Spanned<Vec<Spanned<String>>>>,
    pub queue: Option<Spanned<i64>>,
}

/// `query_log = { to, format, sample }` of `[dns]`, `access_log` of `[cdn]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    pub to: Option<Spanned<String>>,
    pub format: Option<Spanned<String>>,
    pub sample: Option<Spanned<f64>>,
}

/// `[stream]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStream {
    #[serde(default)]
    pub listen: Vec<Spanned<String>>,
    #[serde(default)]
    pub https_listen: Vec<Spanned<String>>,
    pub data_dir: Spanned<String>,
    pub fsync: Option<Spanned<String>>,
    pub fsync_interval: Option<Spanned<ConfigDuration>>,
    pub segment_size: Option<Spanned<ConfigSize>>,
    #[serde(default)]
    pub access_keys: Vec<Spanned<RawAccessKey>>,
    pub allow_create_streams: Option<bool>,
    #[serde(default)]
    pub streams: Vec<Spanned<RawStreamSpec>>,
    #[serde(default)]
    pub deliveries: Vec<Spanned<RawDelivery>>,
    pub backend: Option<Spanned<String>>,
    pub nats: Option<Spanned<RawNats>>,
}

/// `[stream] nats = { ... }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNats {
    #[serde(default)]
    pub servers: Vec<Spanned<String>>,
    pub replicas: Option<Spanned<i64>>,
    pub user: Option<Spanned<String>>,
    pub password: Option<Spanned<String>>,
    pub creds: Option<Spanned<String>>,
    pub nkey: Option<Spanned<String>>,
    pub tls: Option<Spanned<RawNatsTls>>,
}

/// `nats.tls = { ca, cert, key }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNatsTls {
    pub ca: Option<Spanned<String>>,
    pub cert: Option<Spanned<String>>,
    pub key: Option<Spanned<String>>,
}

/// `access_keys = [{ id, secret }]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccessKey {
    pub id: Spanned<String>,
    pub secret: Spanned<String>,
}

/// `[[stream.streams]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStreamSpec {
    pub name: Spanned<String>,
    pub shards: Option<Spanned<i64>>,
    pub retention: Option<Spanned<ConfigDuration>>,
}

/// `[[stream.deliveries]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDelivery {
    pub stream: Spanned<String>,
    pub dir: Spanned<String>,
    pub buffer_size: Option<Spanned<ConfigSize>>,
    pub buffer_interval: Option<Spanned<ConfigDuration>>,
    pub compression: Option<Spanned<String>>,
}

/// `[analytics]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAnalytics {
    pub max_rows: Option<Spanned<i64>>,
    pub query_timeout: Option<Spanned<ConfigDuration>>,
    pub discover_records: Option<Spanned<i64>>,
    pub idle_shard_timeout: Option<Spanned<ConfigDuration>>,
    #[serde(default)]
    pub inputs: Vec<Spanned<RawInput>>,
    #[serde(default)]
    pub applications: Vec<Spanned<RawApplication>>,
    #[serde(default)]
    pub references: Vec<Spanned<RawReference>>,
}

/// `[[analytics.references]]`: a CSV file applications join with.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReference {
    pub name: Spanned<String>,
    pub path: Spanned<String>,
}

/// `[[analytics.inputs]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInput {
    pub stream: Spanned<String>,
    pub format: Spanned<String>,
    pub columns: Option<Spanned<Vec<Spanned<RawColumn>>>>,
}

/// `columns = [{ name, type, path }]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawColumn {
    pub name: Spanned<String>,
    #[serde(rename = "type")]
    pub ty: Spanned<String>,
    pub path: Option<Spanned<String>>,
}

/// `[[analytics.applications]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApplication {
    pub name: Spanned<String>,
    pub inputs: Vec<Spanned<String>>,
    pub sql: Spanned<String>,
    #[serde(default)]
    pub outputs: Vec<Spanned<RawOutput>>,
}

/// `outputs = [{ sql_stream, stream }]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutput {
    pub sql_stream: Spanned<String>,
    pub stream: Spanned<String>,
}
