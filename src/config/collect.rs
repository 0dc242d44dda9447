//! Every structural mistake, not just the first one serde meets.
//!
//! Deserializing the whole file stops at the first wrong type or unknown key. When that
//! happens, the file is read again as a spanned tree and each section, and each element of
//! every array of tables, is deserialized on its own (without its nested arrays), so one
//! mistake per table is found, each with its own position and key path.

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::diag::{ConfigError, SourceMap};
use super::raw::{
    RawBehavior, RawCdn, RawCert, RawCidrCollection, RawDelivery, RawDistribution, RawDns, RawGeo,
    RawGeoNetwork, RawHealthCheck, RawOrigin, RawOriginGroup, RawRecord, RawRegion, RawStream,
    RawStreamSpec, RawZone,
};

/// Enough to list every mistake of a hand-written table, bounded for pathological files.
const MAX_ERRORS_PER_TABLE: usize = 64;

/// Top-level sections a config may have; the CDN and stream ones are read by their own binary.
const SECTIONS: [&str; 6] = ["dns", "geo", "health_checks", "regions", "cdn", "stream"];

/// Every error in `text`: syntax errors if there are any, else one per mistaken table.
pub(super) fn structural_errors(map: &SourceMap) -> Vec<ConfigError> {
    let (root, syntax) = DeTable::parse_recoverable(map.text);
    if !syntax.is_empty() {
        return syntax.iter().map(|e| error(map, e, "")).collect();
    }
    let mut errors = Vec::new();
    for (key, value) in root.into_inner() {
        let name: &str = key.get_ref();
        match name {
            "dns" => dns(value, map, &mut errors),
            "geo" => {
                let mut value = value;
                let networks = split_off(&mut value, "networks");
                check::<RawGeo>(value, "geo", map, &mut errors);
                each::<RawGeoNetwork>(networks, "geo.networks", map, &mut errors, &[], leaf);
            }
            "health_checks" => {
                each::<RawHealthCheck>(Some(value), "health_checks", map, &mut errors, &[], leaf)
            }
            "regions" => each::<RawRegion>(Some(value), "regions", map, &mut errors, &[], leaf),
            "cdn" => cdn(value, map, &mut errors),
            "stream" => {
                let mut value = value;
                let streams = split_off(&mut value, "streams");
                let deliveries = split_off(&mut value, "deliveries");
                check::<RawStream>(value, "stream", map, &mut errors);
                each::<RawStreamSpec>(streams, "stream.streams", map, &mut errors, &[], leaf);
                each::<RawDelivery>(deliveries, "stream.deliveries", map, &mut errors, &[], leaf);
            }
            other => errors.push(map.error(
                key.span(),
                other,
                format!(
                    "unknown section `{other}`, expected one of {}",
                    SECTIONS.join(", ")
                ),
            )),
        }
    }
    errors.sort_by_key(|e| (e.line, e.col));
    errors.dedup();
    errors
}

fn dns(mut value: Spanned<DeValue<'_>>, map: &SourceMap, errors: &mut Vec<ConfigError>) {
    let zones = split_off(&mut value, "zones");
    let collections = split_off(&mut value, "cidr_collections");
    check::<RawDns>(value, "dns", map, errors);
    each::<RawCidrCollection>(collections, "dns.cidr_collections", map, errors, &[], leaf);
    each::<RawZone>(
        zones,
        "dns.zones",
        map,
        errors,
        &["records"],
        |mut nested, path, map, errors| {
            each::<RawRecord>(
                nested.remove(0),
                &format!("{path}.records"),
                map,
                errors,
                &[],
                leaf,
            );
        },
    );
}

fn cdn(mut value: Spanned<DeValue<'_>>, map: &SourceMap, errors: &mut Vec<ConfigError>) {
    let distributions = split_off(&mut value, "distributions");
    let certs = split_off(&mut value, "certs");
    check::<RawCdn>(value, "cdn", map, errors);
    each::<RawCert>(certs, "cdn.certs", map, errors, &[], leaf);
    let children = ["origins", "origin_groups", "behaviors"];
    each::<RawDistribution>(
        distributions,
        "cdn.distributions",
        map,
        errors,
        &children,
        |nested, path, map, errors| {
            let mut nested = nested.into_iter();
            each::<RawOrigin>(
                nested.next().flatten(),
                &format!("{path}.origins"),
                map,
                errors,
                &[],
                leaf,
            );
            each::<RawOriginGroup>(
                nested.next().flatten(),
                &format!("{path}.origin_groups"),
                map,
                errors,
                &[],
                leaf,
            );
            each::<RawBehavior>(
                nested.next().flatten(),
                &format!("{path}.behaviors"),
                map,
                errors,
                &[],
                leaf,
            );
        },
    );
}

/// Removes and returns `key` of a table value, so the table can be checked without it.
fn split_off<'i>(value: &mut Spanned<DeValue<'i>>, key: &str) -> Option<Spanned<DeValue<'i>>> {
    match value.get_mut() {
        DeValue::Table(table) => table.remove(key),
        _ => None,
    }
}

/// Nested arrays of tables an element holds, handed on once the element itself is checked.
type Nested = fn(Vec<Option<Spanned<DeValue<'_>>>>, &str, &SourceMap, &mut Vec<ConfigError>);

/// Checks each element of an array of tables without its `children` keys, then hands those
/// (in order) to `nested`.
fn each<T: DeserializeOwned>(
    value: Option<Spanned<DeValue<'_>>>,
    path: &str,
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
    children: &[&str],
    nested: Nested,
) {
    let Some(value) = value else { return };
    let span = value.span();
    match value.into_inner() {
        DeValue::Array(items) => {
            for (i, mut item) in items.into_iter().enumerate() {
                let item_path = format!("{path}[{i}]");
                let split: Vec<_> = children
                    .iter()
                    .map(|child| split_off(&mut item, child))
                    .collect();
                check::<T>(item, &item_path, map, errors);
                nested(split, &item_path, map, errors);
            }
        }
        other => check::<Vec<T>>(Spanned::new(span, other), path, map, errors),
    }
}

/// For elements without nested arrays.
fn leaf(_: Vec<Option<Spanned<DeValue<'_>>>>, _: &str, _: &SourceMap, _: &mut Vec<ConfigError>) {}

/// Deserializes a table as `T`; after each error the offending key is dropped and the rest
/// tried again, so several mistakes in one table are all found.
fn check<T: DeserializeOwned>(
    mut value: Spanned<DeValue<'_>>,
    path: &str,
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) {
    let mut removed: Vec<String> = Vec::new();
    for _ in 0..MAX_ERRORS_PER_TABLE {
        let Err(e) = T::deserialize(ValueDeserializer::from(value.clone())) else {
            return;
        };
        // Once a key was dropped, a missing required key is most likely that same mistake
        // (a typo in its name, or a wrong value we removed): it is already reported.
        if !removed.is_empty() && e.message().starts_with("missing field") {
            return;
        }
        errors.push(error(map, &e, path));
        let Some(span) = e.span() else { return };
        let DeValue::Table(table) = value.get_mut() else {
            return;
        };
        let culprit = table
            .iter()
            .find(|(key, item)| {
                key.span().contains(&span.start)
                    || item.span().contains(&span.start)
                    || item.span() == span
            })
            .map(|(key, _)| key.get_ref().to_string());
        match culprit {
            Some(key) => {
                table.remove(key.as_str());
                removed.push(key);
            }
            None => return,
        }
    }
}

/// A toml error as a config error; the path is the table's plus the key before the value.
fn error(map: &SourceMap, e: &toml::de::Error, table: &str) -> ConfigError {
    let span = e.span().unwrap_or(0..0);
    let path = match map.key_before(span.start) {
        Some(key) if table.is_empty() => key,
        Some(key) => format!("{table}.{key}"),
        None => table.to_string(),
    };
    map.error(span, path, e.message().trim())
}
