//! `[geo]` and `[[regions]]`: databases that must open, networks and coordinates in range.

use std::path::Path;

use ipnet::IpNet;
use toml::Spanned;

use super::diag::{ConfigError, SourceMap};
use super::raw::{RawGeo, RawRegion};
use crate::geo::{Code, GeoConfig, GeoDb, GeoNetwork, Location, Region};

/// Continent codes used by MaxMind and Route 53.
pub const CONTINENTS: [&str; 7] = ["AF", "AN", "AS", "EU", "NA", "OC", "SA"];

pub(super) fn validate_geo(
    raw: &RawGeo,
    map: &SourceMap,
    base: &Path,
    errors: &mut Vec<ConfigError>,
) -> GeoConfig {
    let mut database = |field: &Option<Spanned<String>>, name: &str| {
        let value = field.as_ref()?;
        let path = base.join(value.get_ref());
        match GeoDb::probe(&path) {
            Ok(()) => Some(path),
            Err(e) => {
                errors.push(map.error(value.span(), format!("geo.{name}"), e.to_string()));
                None
            }
        }
    };
    let country_db = database(&raw.country_db, "country_db");
    let city_db = database(&raw.city_db, "city_db");
    let mut networks = Vec::new();
    for (i, network) in raw.networks.iter().enumerate() {
        let key = format!("geo.networks[{i}]");
        let n = network.get_ref();
        let net = match n.cidr.get_ref().parse::<IpNet>() {
            Ok(net) => net.trunc(),
            Err(_) => {
                errors.push(map.error(
                    n.cidr.span(),
                    format!("{key}.cidr"),
                    format!(
                        "{:?} is not a CIDR block (e.g. \"192.168.0.0/16\")",
                        n.cidr.get_ref()
                    ),
                ));
                continue;
            }
        };
        let continent = code(
            &n.continent,
            &format!("{key}.continent"),
            map,
            errors,
            |c| CONTINENTS.contains(&c),
            "one of AF AN AS EU NA OC SA",
        );
        let country = code(
            &n.country,
            &format!("{key}.country"),
            map,
            errors,
            is_country,
            "an ISO 3166-1 alpha-2 code such as \"KR\"",
        );
        let subdivision = code(
            &n.subdivision,
            &format!("{key}.subdivision"),
            map,
            errors,
            is_subdivision,
            "an ISO 3166-2 subdivision code without the country, such as \"CA\"",
        );
        let coordinates = coordinates(
            n.latitude.as_ref(),
            n.longitude.as_ref(),
            &key,
            network.span(),
            map,
            errors,
        );
        networks.push(GeoNetwork {
            net,
            location: Location {
                continent,
                country,
                subdivision,
                coordinates,
            },
        });
    }
    GeoConfig {
        country_db,
        city_db,
        networks,
    }
}

pub(super) fn validate_regions(
    raw: &[Spanned<RawRegion>],
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) -> Vec<Region> {
    let mut regions: Vec<Region> = Vec::new();
    for (i, region) in raw.iter().enumerate() {
        let key = format!("regions[{i}]");
        let r = region.get_ref();
        if regions.iter().any(|known| known.id == *r.id.get_ref()) {
            errors.push(map.error(
                r.id.span(),
                format!("{key}.id"),
                format!("{:?} is used by another region", r.id.get_ref()),
            ));
            continue;
        }
        if let Some(coordinates) = coordinates(
            Some(&r.latitude),
            Some(&r.longitude),
            &key,
            region.span(),
            map,
            errors,
        ) {
            regions.push(Region {
                id: r.id.get_ref().clone(),
                coordinates,
            });
        }
    }
    regions
}

fn is_country(code: &str) -> bool {
    code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase())
}

fn is_subdivision(code: &str) -> bool {
    (1..=3).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// An optional code, upper-cased, that must satisfy `valid`.
fn code(
    value: &Option<Spanned<String>>,
    key: &str,
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
    valid: impl Fn(&str) -> bool,
    expected: &str,
) -> Option<Code> {
    let value = value.as_ref()?;
    match Code::new(value.get_ref()).filter(|c| valid(c.as_str())) {
        Some(code) => Some(code),
        None => {
            errors.push(map.error(
                value.span(),
                key,
                format!("{:?} is not {expected}", value.get_ref()),
            ));
            None
        }
    }
}

/// Latitude and longitude: both or neither, each in range.
fn coordinates(
    latitude: Option<&Spanned<f64>>,
    longitude: Option<&Spanned<f64>>,
    key: &str,
    span: std::ops::Range<usize>,
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) -> Option<(f64, f64)> {
    match (latitude, longitude) {
        (None, None) => None,
        (Some(lat), Some(lon)) => {
            let mut ok = true;
            if !(-90.0..=90.0).contains(lat.get_ref()) {
                errors.push(map.error(
                    lat.span(),
                    format!("{key}.latitude"),
                    format!("{} is out of range (-90 to 90)", lat.get_ref()),
                ));
                ok = false;
            }
            if !(-180.0..=180.0).contains(lon.get_ref()) {
                errors.push(map.error(
                    lon.span(),
                    format!("{key}.longitude"),
                    format!("{} is out of range (-180 to 180)", lon.get_ref()),
                ));
                ok = false;
            }
            ok.then_some((*lat.get_ref(), *lon.get_ref()))
        }
        _ => {
            errors.push(map.error(
                span,
                key,
                "latitude and longitude go together: give both or neither",
            ));
            None
        }
    }
}
