//! Where a client is: `[[geo.networks]]` first (LANs and VPNs no public database knows), then
//! the MaxMind-format databases (GeoLite2, GeoIP2, DB-IP lite) through maxminddb.
//!
//! Every answer carries the prefix length it holds for, which DNS echoes as the EDNS Client
//! Subnet scope (RFC 7871 §7.2.1).

pub mod distance;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use maxminddb::Reader;
use serde::Deserialize;

/// Validated `[geo]`.
#[derive(Debug, Clone, Default)]
pub struct GeoConfig {
    /// Country (and continent, maybe subdivision) database.
    pub country_db: Option<PathBuf>,
    /// City database: adds latitude/longitude; also has everything the country one has.
    pub city_db: Option<PathBuf>,
    /// Checked before the databases, longest prefix first.
    pub networks: Vec<GeoNetwork>,
}

/// One `[[geo.networks]]` entry.
#[derive(Debug, Clone)]
pub struct GeoNetwork {
    pub net: IpNet,
    pub location: Location,
}

/// A latency-routing region (`[[regions]]`): where its endpoints are.
#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    pub id: String,
    pub coordinates: (f64, f64),
}

/// What is known about a place: continent (AF AN AS EU NA OC SA), ISO 3166-1 alpha-2
/// country, the ISO 3166-2 subdivision without its country prefix, and coordinates. `Copy`,
/// so routing decisions never allocate.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Location {
    pub continent: Option<Code>,
    pub country: Option<Code>,
    pub subdivision: Option<Code>,
    pub coordinates: Option<(f64, f64)>,
}

/// A geographic code of 1 to 3 upper-case ASCII letters or digits, stored inline.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Code {
    bytes: [u8; 3],
    len: u8,
}

impl Code {
    /// Upper-cases `text`; `None` unless it is 1 to 3 ASCII letters or digits.
    pub fn new(text: &str) -> Option<Code> {
        let len = text.len();
        if !(1..=3).contains(&len) || !text.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        let mut bytes = [0; 3];
        for (slot, b) in bytes.iter_mut().zip(text.bytes()) {
            *slot = b.to_ascii_uppercase();
        }
        Some(Code {
            bytes,
            len: len as u8,
        })
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A location and the prefix length of the network it was found for.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    pub location: Location,
    pub prefix_len: u8,
}

/// A database that could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open GeoIP database {path}: {source}")]
pub struct GeoError {
    pub path: PathBuf,
    #[source]
    pub source: maxminddb::MaxMindDbError,
}

/// Opened databases plus the configured networks. Lookups are lock-free reads.
pub struct GeoDb {
    networks: Vec<GeoNetwork>,
    country: Option<Reader<Vec<u8>>>,
    city: Option<Reader<Vec<u8>>>,
}

/// The fields we read from a GeoIP2/GeoLite2/DB-IP record; everything else is skipped.
#[derive(Deserialize)]
struct MmdbRecord<'a> {
    #[serde(borrow, default)]
    continent: Option<MmdbCode<'a>>,
    #[serde(borrow, default)]
    country: Option<MmdbCode<'a>>,
    #[serde(borrow, default)]
    subdivisions: Option<Vec<MmdbCode<'a>>>,
    #[serde(default)]
    location: Option<MmdbLocation>,
}

#[derive(Deserialize)]
struct MmdbCode<'a> {
    #[serde(borrow, default)]
    code: Option<&'a str>,
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct MmdbLocation {
    latitude: Option<f64>,
    longitude: Option<f64>,
}

// === impl GeoDb ===

impl GeoDb {
    /// Opens the configured databases (read into memory once).
    ///
    /// # Errors
    /// A database that is missing or not in MaxMind DB format.
    pub fn open(config: &GeoConfig) -> Result<GeoDb, GeoError> {
        let open = |path: &Option<PathBuf>| -> Result<Option<Reader<Vec<u8>>>, GeoError> {
            path.as_ref()
                .map(|p| {
                    Reader::open_readfile(p).map_err(|source| GeoError {
                        path: p.clone(),
                        source,
                    })
                })
                .transpose()
        };
        let mut networks = config.networks.clone();
        networks.sort_by_key(|n| std::cmp::Reverse(n.net.prefix_len()));
        Ok(GeoDb {
            networks,
            country: open(&config.country_db)?,
            city: open(&config.city_db)?,
        })
    }

    /// Checks that a file is a readable MaxMind database, for config validation.
    ///
    /// # Errors
    /// The file is missing or not in MaxMind DB format.
    pub fn probe(path: &Path) -> Result<(), GeoError> {
        Reader::open_readfile(path)
            .map(|_| ())
            .map_err(|source| GeoError {
                path: path.to_path_buf(),
                source,
            })
    }

    /// Whether a city database (coordinates for every address) is loaded.
    pub fn has_coordinates(&self) -> bool {
        self.city.is_some()
    }

    /// Whether any database is loaded.
    pub fn has_database(&self) -> bool {
        self.city.is_some() || self.country.is_some()
    }

    /// Where `ip` is, or `None` when nothing knows it.
    pub fn locate(&self, ip: IpAddr) -> Option<Located> {
        let ip = canonical(ip);
        if let Some(network) = self.networks.iter().find(|n| n.net.contains(&ip)) {
            return Some(Located {
                location: network.location,
                prefix_len: network.net.prefix_len(),
            });
        }
        self.city
            .as_ref()
            .and_then(|r| lookup(r, ip))
            .or_else(|| self.country.as_ref().and_then(|r| lookup(r, ip)))
    }
}

impl std::fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoDb")
            .field("networks", &self.networks.len())
            .field("country_db", &self.country.is_some())
            .field("city_db", &self.city.is_some())
            .finish()
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn lookup(reader: &Reader<Vec<u8>>, ip: IpAddr) -> Option<Located> {
    let result = reader.lookup(ip).ok()?;
    let record: MmdbRecord = result.decode().ok()??;
    let prefix_len = result.network().map_or(0, |n| n.prefix());
    let upper = |s: Option<&str>| s.and_then(Code::new);
    let location = Location {
        continent: upper(record.continent.as_ref().and_then(|c| c.code)),
        country: upper(record.country.as_ref().and_then(|c| c.iso_code)),
        subdivision: upper(
            record
                .subdivisions
                .as_ref()
                .and_then(|s| s.first())
                .and_then(|s| s.iso_code),
        ),
        coordinates: record
            .location
            .and_then(|l| Some((l.latitude?, l.longitude?))),
    };
    Some(Located {
        location,
        prefix_len,
    })
}
