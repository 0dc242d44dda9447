//! JSON records: every scalar reached through nested objects becomes a column at its path.
//!
//! Records are walked in document order by a serde visitor rather than through
//! `serde_json::Value`, whose maps sort their keys: the columns come out in the order a
//! person wrote them, and no tree is built per record.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::infer::{Kind, Observed, Widening};
use super::{DiscoveredColumn, Proposal};
use crate::config::analytics::{InputFormat, MAX_COLUMNS, METADATA_COLUMNS};

/// The most steps `parse_json_path` takes; values deeper down are left out.
const MAX_DEPTH: usize = 32;
/// Column names are cut to this many characters, leaving room under the loader's 128 for
/// a `COL_` prefix and a `_N` de-duplicating suffix.
const MAX_NAME: usize = 100;

/// The JSON proposal, when most samples are JSON objects.
pub(super) fn propose(samples: &[&[u8]]) -> Option<Proposal> {
    let mut columns = Columns::default();
    let mut scratch = Scratch::default();
    let mut objects = 0;
    for record in samples {
        if scratch.walk(record) {
            objects += 1;
            columns.commit(&mut scratch);
        }
    }
    (objects * 2 > samples.len()).then(|| Proposal {
        format: InputFormat::Json,
        columns: columns.discovered(),
        not_fitting: samples.len() - objects,
    })
}

/// The columns found so far, in the order first seen.
#[derive(Default)]
struct Columns {
    found: Vec<Column>,
    /// Path to its place in `found`.
    index: HashMap<String, usize>,
    /// Paths that held an object or an array in some record. A column there would make the
    /// input decoder reject those records, so only the members and elements become columns
    /// (`{"error": null}` beside `{"error": {"code": 5}}` gives `error_code` alone).
    containers: HashSet<String>,
}

struct Column {
    path: String,
    /// The path's steps joined with `_`, before it is made a unique identifier.
    name: String,
    ty: Widening,
}

impl Columns {
    /// Adds one whole record's values; paths past [`MAX_COLUMNS`] are dropped.
    fn commit(&mut self, scratch: &mut Scratch) {
        self.containers.extend(scratch.containers.drain(..));
        for leaf in scratch.leaves.drain(..) {
            let at = match self.index.get(&leaf.path) {
                Some(&at) => at,
                None if self.found.len() < MAX_COLUMNS => {
                    self.index.insert(leaf.path.clone(), self.found.len());
                    self.found.push(Column {
                        path: leaf.path,
                        name: leaf.name,
                        ty: Widening::default(),
                    });
                    self.found.len() - 1
                }
                None => continue,
            };
            if let Some(value) = leaf.value {
                self.found[at].ty.add(value);
            }
        }
    }

    fn discovered(self) -> Vec<DiscoveredColumn> {
        let mut taken = HashSet::new();
        let containers = self.containers;
        self.found
            .into_iter()
            .filter(|column| !containers.contains(&column.path))
            .map(|column| DiscoveredColumn {
                name: identifier(&column.name, &mut taken),
                ty: column.ty.sql_type().sql_name(),
                path: column.path,
            })
            .collect()
    }
}

/// A unique SQL identifier the config loader accepts, from a name of letters, digits and
/// `_`: never empty, never starting with a digit, never a metadata column's name (those
/// get `COL_` before them), and `_2`, `_3`... after a name already taken in another case.
fn identifier(name: &str, taken: &mut HashSet<String>) -> String {
    let name = &name[..name.len().min(MAX_NAME)];
    let base = if name.is_empty() {
        "COL".to_string()
    } else if name.starts_with(|c: char| c.is_ascii_digit())
        || METADATA_COLUMNS
            .iter()
            .any(|m| m.eq_ignore_ascii_case(name))
    {
        format!("COL_{name}")
    } else {
        name.to_string()
    };
    let mut unique = base.clone();
    let mut n = 1;
    while !taken.insert(unique.to_ascii_lowercase()) {
        n += 1;
        unique = format!("{base}_{n}");
    }
    unique
}

/// One scalar of a record: where it is, and what it is (`None` for null).
struct Leaf {
    path: String,
    name: String,
    value: Option<Observed>,
}

/// One record's walk: its values are kept here until the whole record has parsed, so a
/// truncated object adds nothing.
#[derive(Default)]
struct Scratch {
    /// `$.a.b[0]`, as far as the walk has gone.
    path: String,
    /// `a_b_0`, likewise.
    name: String,
    depth: usize,
    leaves: Vec<Leaf>,
    /// Paths below the root that held an object or an array.
    containers: Vec<String>,
}

/// Where to cut `path` and `name` back to when a step is left.
#[derive(Clone, Copy)]
struct Mark {
    path: usize,
    name: usize,
}

impl Scratch {
    /// Walks `record`; true if and only if it is one whole JSON object.
    fn walk(&mut self, record: &[u8]) -> bool {
        self.path.clear();
        self.path.push('$');
        self.name.clear();
        self.depth = 0;
        self.leaves.clear();
        self.containers.clear();
        if record.trim_ascii_start().first() != Some(&b'{') {
            return false;
        }
        let mut parser = serde_json::Deserializer::from_slice(record);
        Node { scratch: self }
            .deserialize(&mut parser)
            .and_then(|()| parser.end())
            .is_ok()
    }

    /// Steps into member `key`; `None` when it is too deep or no path can name it.
    fn enter_member(&mut self, key: &str) -> Option<Mark> {
        let plain = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
        // `parse_json_path` ends a bracketed name at the first `"]`, so one holding it
        // cannot be written.
        if !plain && key.contains("\"]") {
            return None;
        }
        let mark = self.enter()?;
        if plain {
            self.path.push('.');
            self.path.push_str(key);
        } else {
            self.path.push_str("[\"");
            self.path.push_str(key);
            self.path.push_str("\"]");
        }
        self.push_name_part(key);
        Some(mark)
    }

    /// Steps into an array's first element, the only one read.
    fn enter_first(&mut self) -> Option<Mark> {
        let mark = self.enter()?;
        self.path.push_str("[0]");
        self.push_name_part("0");
        Some(mark)
    }

    fn enter(&mut self) -> Option<Mark> {
        (self.depth < MAX_DEPTH).then(|| {
            self.depth += 1;
            Mark {
                path: self.path.len(),
                name: self.name.len(),
            }
        })
    }

    fn leave(&mut self, mark: Mark) {
        self.depth -= 1;
        self.path.truncate(mark.path);
        self.name.truncate(mark.name);
    }

    /// Appends `_` and `part`, with each run of characters an identifier cannot hold
    /// made one `_`.
    fn push_name_part(&mut self, part: &str) {
        if !self.name.is_empty() {
            self.name.push('_');
        }
        let mut replaced = false;
        for c in part.chars() {
            if c.is_ascii_alphanumeric() || c == '_' {
                self.name.push(c);
                replaced = false;
            } else if !replaced {
                self.name.push('_');
                replaced = true;
            }
        }
    }

    fn container(&mut self) {
        if self.depth > 0 {
            self.containers.push(self.path.clone());
        }
    }

    fn leaf(&mut self, value: Option<Observed>) {
        self.leaves.push(Leaf {
            path: self.path.clone(),
            name: self.name.clone(),
            value,
        });
    }
}

/// The visitor for one value at the walk's current path.
struct Node<'a> {
    scratch: &'a mut Scratch,
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        let chars = if v { 4 } else { 5 };
        self.scratch.leaf(Some(Observed {
            kind: Kind::Boolean,
            chars,
        }));
        Ok(())
    }

    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.scratch.leaf(Some(Observed::integer(v)));
        Ok(())
    }

    /// Above `i64::MAX` only a DOUBLE holds it.
    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        let value = match i64::try_from(v) {
            Ok(n) => Observed::integer(n),
            Err(_) => Observed {
                kind: Kind::Double,
                chars: v.to_string().len(),
            },
        };
        self.scratch.leaf(Some(value));
        Ok(())
    }

    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        self.scratch.leaf(Some(Observed {
            kind: Kind::Double,
            chars: v.to_string().len(),
        }));
        Ok(())
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.scratch.leaf(Some(Observed::json_string(v)));
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.scratch.leaf(None);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let scratch = self.scratch;
        scratch.container();
        while let Some(key) = map.next_key::<String>()? {
            match scratch.enter_member(&key) {
                Some(mark) => {
                    map.next_value_seed(Node {
                        scratch: &mut *scratch,
                    })?;
                    scratch.leave(mark);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    /// Only the first element is read: arrays in records are mostly lists of like things,
    /// and one column per element would make a schema as wide as the longest list.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let scratch = self.scratch;
        scratch.container();
        if let Some(mark) = scratch.enter_first() {
            seq.next_element_seed(Node {
                scratch: &mut *scratch,
            })?;
            scratch.leave(mark);
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
}
