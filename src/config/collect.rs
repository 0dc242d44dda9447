//! The sections a binary reads ([`Sections`]), with every structural mistake in them, not
//! just the first one serde meets, and the rest of them for the value checks.
//!
//! Sections out of scope are dropped from the spanned tree before anything reads it, so
//! their mistakes stop no one but the binary that serves them. Deserializing the rest at
//! once stops at the first wrong type or unknown key. When that happens, each section, and
//! each element of every array of tables, is deserialized on its own (without its nested
//! arrays), so one mistake per table is found, each with its own position and key path. The keys those
//! mistakes are about are then cut from the tree and the rest is read as a [`RawConfig`], so
//! value errors (a bad duration, an unknown reference, a missing file) are found in the same
//! pass; a section that still does not read (a required key was the mistake) is left out,
//! with the sections that refer into it, so their checks add no follow-on errors.

use std::ops::Range;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::Sections;
use super::diag::{ConfigError, SourceMap};
use super::raw::{
    RawAnalytics, RawApplication, RawBehavior, RawCdn, RawCert, RawCidrCollection, RawConfig,
    RawDelivery, RawDistribution, RawDns, RawEdgeGroup, RawGeo, RawGeoNetwork, RawHealthCheck,
    RawInput, RawOrigin, RawOriginGroup, RawRecord, RawRegion, RawStream, RawStreamSpec,
    RawTsigKey, RawZone,
};
use super::wording;

/// Enough to list every mistake of a hand-written table, bounded for pathological files.
const MAX_ERRORS_PER_TABLE: usize = 64;

/// Top-level sections a config may have; the CDN and stream ones are read by their own binary.
const SECTIONS: [&str; 8] = [
    "dns",
    "geo",
    "health_checks",
    "regions",
    "edge_groups",
    "cdn",
    "stream",
    "analytics",
];

/// Sections whose checks look into other sections: left out with them, since every
/// reference into a left-out section would be reported as unknown.
const DEPENDS_ON: [(&str, &[&str]); 5] = [
    ("dns", &["geo", "health_checks", "regions", "edge_groups"]),
    ("edge_groups", &["health_checks", "regions"]),
    ("cdn", &["geo", "stream"]),
    ("stream", &["cdn"]),
    ("analytics", &["stream", "cdn"]),
];

/// What the piecewise reading found.
pub(super) struct Partial {
    /// Syntax errors, or one error per mistaken key; sorted by position.
    pub errors: Vec<ConfigError>,
    /// The file without the mistaken keys (and without sections that then still do not
    /// read), for the value checks; `None` after syntax errors.
    pub raw: Option<RawConfig>,
}

/// Errors found so far, and the spans of the keys they are about (cut before the rest is read).
struct Found {
    errors: Vec<ConfigError>,
    culprits: Vec<Range<usize>>,
}

/// The `sections` of `map`'s text, every structural error in them, and what can still be
/// read around those. Syntax errors anywhere in the file are reported in every scope.
pub(super) fn read(map: &SourceMap, sections: Sections) -> Partial {
    let (root, syntax) = DeTable::parse_recoverable(map.text);
    if !syntax.is_empty() {
        return Partial {
            errors: syntax.iter().map(|e| error(map, e, "")).collect(),
            raw: None,
        };
    }
    let root_span = root.span();
    let mut root = root.into_inner();
    let skipped: Vec<String> = root
        .keys()
        .map(|key| key.get_ref().to_string())
        .filter(|name| !sections.covers(name))
        .collect();
    for name in &skipped {
        root.remove(name.as_str());
    }
    let whole = match as_raw(root.clone(), root_span.clone()) {
        Ok(raw) => {
            return Partial {
                errors: Vec::new(),
                raw: Some(raw),
            };
        }
        Err(e) => e,
    };
    let mut found = Found {
        errors: Vec::new(),
        culprits: Vec::new(),
    };
    for (key, value) in root.clone() {
        let name: &str = key.get_ref();
        match name {
            "dns" => dns(value, map, &mut found),
            "geo" => {
                let mut value = value;
                let networks = split_off(&mut value, "networks");
                check::<RawGeo>(value, "geo", map, &mut found);
                each::<RawGeoNetwork>(networks, "geo.networks", map, &mut found, &[], leaf);
            }
            "health_checks" => {
                each::<RawHealthCheck>(Some(value), "health_checks", map, &mut found, &[], leaf)
            }
            "regions" => each::<RawRegion>(Some(value), "regions", map, &mut found, &[], leaf),
            "edge_groups" => {
                each::<RawEdgeGroup>(Some(value), "edge_groups", map, &mut found, &[], leaf)
            }
            "cdn" => cdn(value, map, &mut found),
            "stream" => {
                let mut value = value;
                let streams = split_off(&mut value, "streams");
                let deliveries = split_off(&mut value, "deliveries");
                check::<RawStream>(value, "stream", map, &mut found);
                each::<RawStreamSpec>(streams, "stream.streams", map, &mut found, &[], leaf);
                each::<RawDelivery>(deliveries, "stream.deliveries", map, &mut found, &[], leaf);
            }
            "analytics" => {
                let mut value = value;
                let inputs = split_off(&mut value, "inputs");
                let applications = split_off(&mut value, "applications");
                check::<RawAnalytics>(value, "analytics", map, &mut found);
                each::<RawInput>(inputs, "analytics.inputs", map, &mut found, &[], leaf);
                each::<RawApplication>(
                    applications,
                    "analytics.applications",
                    map,
                    &mut found,
                    &[],
                    leaf,
                );
            }
            other => {
                found.errors.push(map.error(
                    key.span(),
                    other,
                    format!(
                        "unknown section `{other}`, expected one of {}",
                        SECTIONS.join(", ")
                    ),
                ));
                found.culprits.push(key.span());
            }
        }
    }
    let mut errors = found.errors;
    if errors.is_empty() {
        // The piecewise reading found nothing: report what the whole reading said.
        return Partial {
            errors: vec![whole_error(map, &whole)],
            raw: None,
        };
    }
    errors.sort_by_key(|e| (e.line, e.col));
    errors.dedup();
    prune_table(&mut root, &found.culprits);
    Partial {
        errors,
        raw: readable(root, root_span),
    }
}

/// A table of top-level sections, spanning `span`, as a [`RawConfig`].
fn as_raw(table: DeTable<'_>, span: Range<usize>) -> Result<RawConfig, toml::de::Error> {
    RawConfig::deserialize(ValueDeserializer::from(Spanned::new(
        span,
        DeValue::Table(table),
    )))
}

/// The pruned tree as a [`RawConfig`], leaving out sections that still do not read (and
/// those that depend on them).
fn readable(mut root: DeTable<'_>, span: Range<usize>) -> Option<RawConfig> {
    let reads = |table: DeTable<'_>| as_raw(table, span.clone());
    let broken: Vec<String> = root
        .iter()
        .filter(|(key, value)| {
            let mut alone = DeTable::default();
            alone.insert((*key).clone(), (*value).clone());
            reads(alone).is_err()
        })
        .map(|(key, _)| key.get_ref().to_string())
        .collect();
    let left_out = |section: &str| {
        broken.iter().any(|b| b == section)
            || DEPENDS_ON.iter().any(|(dependent, needs)| {
                *dependent == section && needs.iter().any(|n| broken.iter().any(|b| b == n))
            })
    };
    let names: Vec<String> = root.iter().map(|(k, _)| k.get_ref().to_string()).collect();
    for name in names.iter().filter(|n| left_out(n)) {
        root.remove(name.as_str());
    }
    reads(root).ok()
}

/// Cuts every key whose span is among `culprits`, at any depth.
fn prune_table(table: &mut DeTable<'_>, culprits: &[Range<usize>]) {
    let cut: Vec<String> = table
        .iter()
        .filter(|(key, _)| culprits.contains(&key.span()))
        .map(|(key, _)| key.get_ref().to_string())
        .collect();
    for key in cut {
        table.remove(key.as_str());
    }
    for (_, value) in table.iter_mut() {
        prune_value(value.get_mut(), culprits);
    }
}

fn prune_value(value: &mut DeValue<'_>, culprits: &[Range<usize>]) {
    match value {
        DeValue::Table(table) => prune_table(table, culprits),
        DeValue::Array(items) => {
            for item in items.iter_mut() {
                prune_value(item.get_mut(), culprits);
            }
        }
        _ => {}
    }
}

fn dns(mut value: Spanned<DeValue<'_>>, map: &SourceMap, found: &mut Found) {
    let zones = split_off(&mut value, "zones");
    let collections = split_off(&mut value, "cidr_collections");
    let tsig_keys = split_off(&mut value, "tsig_keys");
    check::<RawDns>(value, "dns", map, found);
    each::<RawCidrCollection>(collections, "dns.cidr_collections", map, found, &[], leaf);
    each::<RawTsigKey>(tsig_keys, "dns.tsig_keys", map, found, &[], leaf);
    each::<RawZone>(
        zones,
        "dns.zones",
        map,
        found,
        &["records"],
        |mut nested, path, map, found| {
            each::<RawRecord>(
                nested.remove(0),
                &format!("{path}.records"),
                map,
                found,
                &[],
                leaf,
            );
        },
    );
}

fn cdn(mut value: Spanned<DeValue<'_>>, map: &SourceMap, found: &mut Found) {
    let distributions = split_off(&mut value, "distributions");
    let certs = split_off(&mut value, "certs");
    check::<RawCdn>(value, "cdn", map, found);
    each::<RawCert>(certs, "cdn.certs", map, found, &[], leaf);
    let children = ["origins", "origin_groups", "behaviors"];
    each::<RawDistribution>(
        distributions,
        "cdn.distributions",
        map,
        found,
        &children,
        |nested, path, map, found| {
            let mut nested = nested.into_iter();
            each::<RawOrigin>(
                nested.next().flatten(),
                &format!("{path}.origins"),
                map,
                found,
                &[],
                leaf,
            );
            each::<RawOriginGroup>(
                nested.next().flatten(),
                &format!("{path}.origin_groups"),
                map,
                found,
                &[],
                leaf,
            );
            each::<RawBehavior>(
                nested.next().flatten(),
                &format!("{path}.behaviors"),
                map,
                found,
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
type Nested = fn(Vec<Option<Spanned<DeValue<'_>>>>, &str, &SourceMap, &mut Found);

/// Checks each element of an array of tables without its `children` keys, then hands those
/// (in order) to `nested`.
fn each<T: DeserializeOwned>(
    value: Option<Spanned<DeValue<'_>>>,
    path: &str,
    map: &SourceMap,
    found: &mut Found,
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
                check::<T>(item, &item_path, map, found);
                nested(split, &item_path, map, found);
            }
        }
        other => check::<Vec<T>>(Spanned::new(span, other), path, map, found),
    }
}

/// For elements without nested arrays.
fn leaf(_: Vec<Option<Spanned<DeValue<'_>>>>, _: &str, _: &SourceMap, _: &mut Found) {}

/// Deserializes a table as `T`; after each error the offending key is dropped (and noted as
/// a culprit) and the rest tried again, so several mistakes in one table are all found.
fn check<T: DeserializeOwned>(
    mut value: Spanned<DeValue<'_>>,
    path: &str,
    map: &SourceMap,
    found: &mut Found,
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
        found.errors.push(error(map, &e, path));
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
            .map(|(key, _)| (key.get_ref().to_string(), key.span()));
        match culprit {
            Some((key, key_span)) => {
                table.remove(key.as_str());
                found.culprits.push(key_span);
                removed.push(key);
            }
            None => return,
        }
    }
}

/// An error of the whole reading, at the value it is about.
fn whole_error(map: &SourceMap, e: &toml::de::Error) -> ConfigError {
    let span = e.span().unwrap_or(0..0);
    let key = map.key_before(span.start);
    map.error(
        span.clone(),
        map.value_path_at(span.start),
        wording::in_toml_terms(e.message().trim(), key.as_deref()),
    )
}

/// A toml error as a config error in TOML's words; the path is the table's plus the key
/// before the value.
pub(super) fn error(map: &SourceMap, e: &toml::de::Error, table: &str) -> ConfigError {
    let span = e.span().unwrap_or(0..0);
    let key = map.key_before(span.start);
    let path = match &key {
        Some(key) if table.is_empty() => key.clone(),
        Some(key) => format!("{table}.{key}"),
        None => table.to_string(),
    };
    map.error(
        span,
        path,
        wording::in_toml_terms(e.message().trim(), key.as_deref()),
    )
}
