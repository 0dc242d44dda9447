//! Small MaxMind DB (`.mmdb`) files for the routing tests, written with `maxminddb-writer`.
//!
//! Records look like GeoIP2/GeoLite2 City records (`continent.code`, `country.iso_code`,
//! `subdivisions[].iso_code`, `location.latitude/longitude`), so `edgewise::geo::GeoDb` reads
//! them exactly as it reads the real databases. The files are IPv6 trees (as MaxMind ships
//! them) with IPv4 networks in the IPv4-compatible `::a.b.c.d/96+n` subtree, where readers
//! look IPv4 addresses up.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv6Addr};

use ipnet::IpNet;
use maxminddb_writer::Database;
use maxminddb_writer::metadata::IpVersion;
use serde_json::{Map, Value, json};

/// What one network of a generated database says about its addresses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Place {
    pub continent: Option<&'static str>,
    pub country: Option<&'static str>,
    pub subdivision: Option<&'static str>,
    pub coordinates: Option<(f64, f64)>,
}

impl Place {
    /// Continent and country only (a GeoLite2-Country style record).
    pub fn country(continent: &'static str, country: &'static str) -> Place {
        Place {
            continent: Some(continent),
            country: Some(country),
            ..Place::default()
        }
    }

    /// Continent, country and first subdivision.
    pub fn subdivision(
        continent: &'static str,
        country: &'static str,
        subdivision: &'static str,
    ) -> Place {
        Place {
            subdivision: Some(subdivision),
            ..Place::country(continent, country)
        }
    }

    /// Adds latitude/longitude (a City record).
    pub fn at(mut self, latitude: f64, longitude: f64) -> Place {
        self.coordinates = Some((latitude, longitude));
        self
    }

    /// The record as GeoIP2 City lays it out (with the English names real files carry, which
    /// readers must skip).
    fn record(&self) -> Value {
        let mut record = Map::new();
        if let Some(code) = self.continent {
            record.insert(
                "continent".into(),
                json!({ "code": code, "names": { "en": format!("Continent {code}") } }),
            );
        }
        if let Some(code) = self.country {
            record.insert(
                "country".into(),
                json!({ "iso_code": code, "names": { "en": format!("Country {code}") } }),
            );
        }
        if let Some(code) = self.subdivision {
            record.insert(
                "subdivisions".into(),
                json!([{ "iso_code": code, "names": { "en": format!("Subdivision {code}") } }]),
            );
        }
        if let Some((latitude, longitude)) = self.coordinates {
            record.insert(
                "location".into(),
                json!({ "latitude": latitude, "longitude": longitude, "accuracy_radius": 20.0, "time_zone": "Etc/UTC" }),
            );
        }
        Value::Object(record)
    }
}

/// Where a network sits in an IPv6 tree: IPv6 as is, IPv4 under `::/96`.
fn tree_network(net: IpNet) -> (Ipv6Addr, u8) {
    match net.trunc() {
        IpNet::V4(v4) => (v4.network().to_ipv6_compatible(), 96 + v4.prefix_len()),
        IpNet::V6(v6) => (v6.network(), v6.prefix_len()),
    }
}

/// The bits of `addr` a network of `prefix` bits covers, most significant first.
fn bit_path(addr: Ipv6Addr, prefix: u8) -> impl Iterator<Item = bool> {
    let bits = u128::from(addr);
    (0..u32::from(prefix)).map(move |i| bits & (1u128 << (127 - i)) != 0)
}

/// A GeoIP2-City-like database holding `networks` (CIDR text → place). Addresses outside
/// every network have no data. Nested networks are fine: the longest prefix wins, as in
/// a real database.
pub fn city_db(networks: &[(&str, Place)]) -> Vec<u8> {
    let mut db = Database::default();
    db.metadata.ip_version = IpVersion::V6;
    db.metadata.database_type = "GeoIP2-City".to_string();
    db.metadata.languages = vec!["en".to_string()];
    db.metadata.binary_format_major_version = 2;
    db.metadata.binary_format_minor_version = 0;
    db.metadata.build_epoch = 1_764_000_000;
    db.metadata
        .description
        .insert("en".to_string(), "Edgewise test database".to_string());
    let mut entries: Vec<(Ipv6Addr, u8, &Place)> = networks
        .iter()
        .map(|(cidr, place)| {
            let net: IpNet = cidr
                .parse()
                .unwrap_or_else(|e| panic!("{cidr} is not a CIDR block: {e}"));
            let (addr, prefix) = tree_network(net);
            (addr, prefix, place)
        })
        .collect();
    // The writer replaces whatever hangs below a network it inserts, so shorter prefixes go
    // first and longer ones split them afterwards.
    entries.sort_by_key(|(_, prefix, _)| *prefix);
    for (addr, prefix, place) in entries {
        let data = db
            .insert_value(place.record())
            .unwrap_or_else(|e| panic!("serialise the record for {addr}/{prefix}: {e}"));
        db.insert_node(bit_path(addr, prefix), data);
    }
    db.write_to(Vec::new())
        .unwrap_or_else(|e| panic!("write the test database: {e}"))
}

/// IPv4 or IPv6 address text.
pub fn ip(text: &str) -> IpAddr {
    text.parse()
        .unwrap_or_else(|e| panic!("{text} is not an address: {e}"))
}

/// What a lookup found, as plain text: (continent, country, subdivision, coordinates, prefix).
type Found = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<(f64, f64)>,
    u8,
);

fn found(db: &edgewise::geo::GeoDb, addr: &str) -> Option<Found> {
    db.locate(ip(addr)).map(|l| {
        let place = &l.location;
        (
            place.continent.as_ref().map(ToString::to_string),
            place.country.as_ref().map(ToString::to_string),
            place.subdivision.as_ref().map(ToString::to_string),
            place.coordinates,
            l.prefix_len,
        )
    })
}

fn expect(codes: [&str; 3], coordinates: Option<(f64, f64)>, prefix: u8) -> Option<Found> {
    let code = |c: &str| (!c.is_empty()).then(|| c.to_string());
    Some((
        code(codes[0]),
        code(codes[1]),
        code(codes[2]),
        coordinates,
        prefix,
    ))
}

#[test]
fn generated_city_database_is_read_by_geodb_with_codes_coordinates_and_prefixes() {
    use edgewise::geo::{GeoConfig, GeoDb};

    let bytes = city_db(&[
        (
            "203.0.113.0/24",
            Place::subdivision("EU", "DE", "HE").at(50.1, 8.6),
        ),
        ("198.51.0.0/16", Place::country("EU", "FR")),
        // nested inside the /16: the longer prefix wins for its addresses
        (
            "198.51.100.0/24",
            Place::subdivision("NA", "US", "CA").at(37.4, -122.1),
        ),
        (
            "2001:db8:1::/48",
            Place::subdivision("AS", "KR", "11").at(37.56, 126.97),
        ),
    ]);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("city.mmdb");
    std::fs::write(&path, &bytes).expect("write the database");
    GeoDb::probe(&path).expect("the generated file opens as a MaxMind DB");
    let db = GeoDb::open(&GeoConfig {
        city_db: Some(path),
        ..GeoConfig::default()
    })
    .expect("open the generated database");
    assert!(db.has_coordinates() && db.has_database());

    assert_eq!(
        found(&db, "203.0.113.77"),
        expect(["EU", "DE", "HE"], Some((50.1, 8.6)), 24)
    );
    // 198.51.0.0/16 with 198.51.100.0/24 split out of it: .7.1 sits in 198.51.0.0/18
    assert_eq!(found(&db, "198.51.7.1"), expect(["EU", "FR", ""], None, 18));
    assert_eq!(
        found(&db, "198.51.100.9"),
        expect(["NA", "US", "CA"], Some((37.4, -122.1)), 24)
    );
    assert_eq!(
        found(&db, "2001:db8:1:2::3"),
        expect(["AS", "KR", "11"], Some((37.56, 126.97)), 48)
    );
    // IPv4-mapped IPv6 is its IPv4 address
    assert_eq!(
        found(&db, "::ffff:203.0.113.5"),
        expect(["EU", "DE", "HE"], Some((50.1, 8.6)), 24)
    );
    for nowhere in ["192.0.2.1", "2001:db8:2::1", "10.0.0.1", "::1"] {
        assert_eq!(found(&db, nowhere), None, "{nowhere} has no data");
    }
}
