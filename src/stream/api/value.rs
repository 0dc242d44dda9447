//! One value model for Kinesis's two wire formats, JSON 1.1 (boto3, the CLI, Vector, Fluent
//! Bit) and AWS CBOR 1.1 (the Java SDKs, KCL, Kinesis Agent). Operations read typed fields
//! from a decoded request and build their output once; [`encode`] writes it in either format.
//!
//! Blobs and timestamps are where the formats differ. JSON carries blobs as base64 text and
//! timestamps as epoch seconds; CBOR carries byte strings and epoch milliseconds. Only the
//! operation knows which field is which, so requests keep the raw values and the typed
//! accessors of [`Fields`] interpret them.

use std::borrow::Cow;
use std::cell::Cell;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use ciborium_ll::{Encoder, Header, simple};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::error::{ErrorCode, KinesisError};

/// How deep a request may nest. Kinesis requests need three levels (PutRecords:
/// body → Records → entry); the bound keeps hostile input from costing stack.
pub const MAX_DEPTH: usize = 32;

/// A request or response value in either wire format.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// Wide enough for every CBOR integer and every JSON integer serde_json reads.
    Int(i128),
    Float(f64),
    Str(String),
    Blob(Bytes),
    Array(Vec<Value>),
    /// Keeps its order, so responses come out in the order they were built. Names are
    /// borrowed when static: a GetRecords page builds four per record.
    Map(Vec<(Cow<'static, str>, Value)>),
    /// Milliseconds since the Unix epoch. Decoded requests hold this only for CBOR's tag 1;
    /// plain numbers stay numbers until [`Fields::timestamp`] reads them.
    Timestamp(i64),
}

impl Value {
    /// A map from `(name, value)` pairs, in that order.
    pub fn map<K: Into<Cow<'static, str>>>(entries: impl IntoIterator<Item = (K, Value)>) -> Self {
        Self::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// What the value is, for error messages.
    fn kind(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool(_) => "a boolean",
            Self::Int(_) | Self::Float(_) => "a number",
            Self::Str(_) => "a string",
            Self::Blob(_) => "a byte string",
            Self::Array(_) => "a list",
            Self::Map(_) => "a structure",
            Self::Timestamp(_) => "a timestamp",
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Self::Str(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Self::Str(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Self::Int(n.into())
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Self {
        Self::Int(n.into())
    }
}

impl From<u32> for Value {
    fn from(n: u32) -> Self {
        Self::Int(n.into())
    }
}

impl From<Bytes> for Value {
    fn from(b: Bytes) -> Self {
        Self::Blob(b)
    }
}

impl From<Vec<Value>> for Value {
    fn from(items: Vec<Value>) -> Self {
        Self::Array(items)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}

/// The body format, told by Content-Type; responses use the request's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Cbor,
}

impl Format {
    /// Reads the request's Content-Type. `application/json` and the JSON 1.0 type are
    /// accepted too, as kinesalite accepts them and the bodies are the same.
    pub fn from_content_type(content_type: Option<&str>) -> Result<Self, KinesisError> {
        let Some(raw) = content_type else {
            return Err(KinesisError::new(
                ErrorCode::UnknownOperation,
                "The request has no Content-Type header: Kinesis requests are \
                 application/x-amz-json-1.1 (JSON) or application/x-amz-cbor-1.1 (CBOR)",
            ));
        };
        let essence = raw.split(';').next().unwrap_or_default().trim();
        let lower = essence.to_ascii_lowercase();
        match lower.as_str() {
            "application/x-amz-json-1.1" | "application/x-amz-json-1.0" | "application/json" => {
                Ok(Self::Json)
            }
            "application/x-amz-cbor-1.1" => Ok(Self::Cbor),
            _ => Err(unsupported_media(&format!("Content-Type '{raw}'"))),
        }
    }

    /// The Content-Type of responses in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/x-amz-json-1.1",
            Self::Cbor => "application/x-amz-cbor-1.1",
        }
    }
}

fn unsupported_media(what: &str) -> KinesisError {
    KinesisError::new(
        ErrorCode::UnknownOperation,
        format!(
            "Unsupported {what}: expected application/x-amz-json-1.1 or application/x-amz-cbor-1.1"
        ),
    )
}

fn serialization(message: impl Into<String>) -> KinesisError {
    KinesisError::new(ErrorCode::Serialization, message)
}

/// Parses a request body, which must be a JSON object or CBOR map. An empty body is `{}`, as
/// for AWS (ListStreams takes no required input).
pub fn decode(format: Format, body: &[u8]) -> Result<Value, KinesisError> {
    if body.is_empty() {
        return Ok(Value::Map(Vec::new()));
    }
    let value = match format {
        Format::Json => {
            let too_deep = Cell::new(false);
            let mut parser = serde_json::Deserializer::from_slice(body);
            let parsed = JsonSeed {
                depth: 1,
                too_deep: &too_deep,
            }
            .deserialize(&mut parser)
            .and_then(|value| parser.end().map(|()| value));
            match parsed {
                Ok(value) => value,
                Err(_) if too_deep.get() => return Err(self::too_deep()),
                Err(e) => {
                    return Err(serialization(format!(
                        "The request body is not valid JSON: {e}"
                    )));
                }
            }
        }
        Format::Cbor => {
            let mut rest = body;
            // ciborium counts tags as levels too, hence the slack; `from_cbor` enforces the bound.
            let parsed: ciborium::Value =
                ciborium::de::from_reader_with_recursion_limit(&mut rest, 2 * MAX_DEPTH).map_err(
                    |e| serialization(format!("The request body is not valid CBOR: {e}")),
                )?;
            if !rest.is_empty() {
                return Err(serialization(format!(
                    "The request body has {} bytes after the CBOR map",
                    rest.len()
                )));
            }
            from_cbor(parsed, 1)?
        }
    };
    match value {
        Value::Map(_) => Ok(value),
        other => Err(serialization(format!(
            "The request body must be a structure, not {}",
            other.kind()
        ))),
    }
}

/// Checks a structure or list at `depth` (the body is 1) and gives its members' depth.
fn nest(depth: usize) -> Result<usize, KinesisError> {
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    Ok(depth + 1)
}

fn too_deep() -> KinesisError {
    serialization(format!("The request nests deeper than {MAX_DEPTH} levels"))
}

/// Parses JSON straight into a [`Value`], with no `serde_json::Value` in between (PutRecords
/// bodies hold up to 500 records: two allocations fewer per member adds up). Structures get
/// serde_json's map semantics: members sorted by name, a repeated member's last value wins.
/// Deeper than [`MAX_DEPTH`], it sets `too_deep` and fails.
struct JsonSeed<'c> {
    depth: usize,
    too_deep: &'c Cell<bool>,
}

impl JsonSeed<'_> {
    /// The seed for members of a structure or list at this depth.
    fn nested<E: de::Error>(&self) -> Result<Self, E> {
        if self.depth > MAX_DEPTH {
            self.too_deep.set(true);
            return Err(E::custom("nested too deeply"));
        }
        Ok(JsonSeed {
            depth: self.depth + 1,
            too_deep: self.too_deep,
        })
    }
}

impl<'de> DeserializeSeed<'de> for JsonSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for JsonSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Int(n.into()))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Int(n.into()))
    }

    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Float(f))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        Ok(Value::Str(s.to_owned()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        Ok(Value::Str(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element_seed(JsonSeed { ..inner })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        let mut entries: Vec<(String, Value)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(JsonSeed { ..inner })?;
            entries.push((key, value));
        }
        // As serde_json's BTreeMap: sorted (stable, so repeats keep their order), last wins.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut unique: Vec<(Cow<'static, str>, Value)> = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            match unique.last_mut() {
                Some(last) if last.0 == key => last.1 = value,
                _ => unique.push((key.into(), value)),
            }
        }
        Ok(Value::Map(unique))
    }
}

/// The reference for [`JsonSeed`]: through `serde_json::Value`, as requests were once read.
#[cfg(test)]
fn from_json(value: serde_json::Value, depth: usize) -> Result<Value, KinesisError> {
    Ok(match value {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::Int(i.into()),
            (None, Some(u), _) => Value::Int(u.into()),
            (None, None, Some(f)) => Value::Float(f),
            (None, None, None) => return Err(serialization(format!("Unreadable number {n}"))),
        },
        serde_json::Value::String(s) => Value::Str(s),
        serde_json::Value::Array(items) => {
            let inner = nest(depth)?;
            Value::Array(
                items
                    .into_iter()
                    .map(|v| from_json(v, inner))
                    .collect::<Result<_, _>>()?,
            )
        }
        serde_json::Value::Object(entries) => {
            let inner = nest(depth)?;
            Value::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| Ok((k.into(), from_json(v, inner)?)))
                    .collect::<Result<_, KinesisError>>()?,
            )
        }
    })
}

/// CBOR's tag 1: epoch seconds, integer or float.
const TAG_EPOCH_SECONDS: u64 = 1;

fn from_cbor(value: ciborium::Value, depth: usize) -> Result<Value, KinesisError> {
    Ok(match value {
        ciborium::Value::Null => Value::Null,
        ciborium::Value::Bool(b) => Value::Bool(b),
        ciborium::Value::Integer(i) => Value::Int(i.into()),
        ciborium::Value::Float(f) => Value::Float(f),
        ciborium::Value::Text(s) => Value::Str(s),
        ciborium::Value::Bytes(b) => Value::Blob(b.into()),
        ciborium::Value::Tag(TAG_EPOCH_SECONDS, inner) => {
            let millis = match *inner {
                ciborium::Value::Integer(i) => i128::from(i)
                    .checked_mul(1000)
                    .and_then(|ms| i64::try_from(ms).ok()),
                ciborium::Value::Float(f) => float_to_i64(f * 1000.0),
                _ => None,
            };
            Value::Timestamp(
                millis.ok_or_else(|| {
                    serialization("CBOR tag 1 must hold epoch seconds within range")
                })?,
            )
        }
        // Other tags add nothing a Kinesis field could use; their content stands for them.
        ciborium::Value::Tag(_, inner) => from_cbor(*inner, depth)?,
        ciborium::Value::Array(items) => {
            let inner = nest(depth)?;
            Value::Array(
                items
                    .into_iter()
                    .map(|v| from_cbor(v, inner))
                    .collect::<Result<_, _>>()?,
            )
        }
        ciborium::Value::Map(entries) => {
            let inner = nest(depth)?;
            Value::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| match k {
                        ciborium::Value::Text(k) => Ok((k.into(), from_cbor(v, inner)?)),
                        _ => Err(serialization("CBOR map keys must be text strings")),
                    })
                    .collect::<Result<_, _>>()?,
            )
        }
        // `ciborium::Value` is non-exhaustive.
        other => return Err(serialization(format!("Unsupported CBOR item {other:?}"))),
    })
}

/// Rounds to the nearest integer; `None` for NaN, infinities and out-of-range values.
fn float_to_i64(f: f64) -> Option<i64> {
    let rounded = f.round();
    // 2^63 is exactly representable; anything at or past it does not fit. NaN is in no range.
    (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0)
        .contains(&rounded)
        .then_some(rounded as i64)
}

/// Typed, path-aware reading of one structure in a decoded request.
///
/// Accessors treat an explicit `null` like an absent member, as AWS does. Wrong types are
/// SerializationExceptions naming the member; missing required members are
/// ValidationExceptions ("Member must not be null").
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    format: Format,
    entries: &'a [(Cow<'static, str>, Value)],
    /// AWS's member path of this structure plus a trailing dot, e.g. `records.3.member.`;
    /// empty at the top.
    prefix: Prefix,
}

/// A structure's path prefix; a list item's is only spelled out when a message needs it
/// (PutRecords has up to 500 items, nearly always without any).
#[derive(Debug, Clone)]
enum Prefix {
    Whole(String),
    /// `<list>.<index>.member.`
    Item {
        list: Arc<str>,
        index: usize,
    },
}

impl<'a> Fields<'a> {
    /// The request's top-level structure (what [`decode`] returned).
    pub fn root(format: Format, value: &'a Value) -> Result<Self, KinesisError> {
        match value {
            Value::Map(entries) => Ok(Self {
                format,
                entries,
                prefix: Prefix::Whole(String::new()),
            }),
            other => Err(serialization(format!(
                "The request body must be a structure, not {}",
                other.kind()
            ))),
        }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// The member path AWS names in validation messages: the prefix plus the member name
    /// with its first letter lowercased (`Records` → `records`, `StreamARN` → `streamARN`).
    pub fn path(&self, name: &str) -> String {
        let mut chars = name.chars();
        let first = chars.next().map(|c| c.to_ascii_lowercase());
        let mut path = match &self.prefix {
            Prefix::Whole(prefix) => prefix.clone(),
            Prefix::Item { list, index } => format!("{list}.{index}.member."),
        };
        path.extend(first);
        path.push_str(chars.as_str());
        path
    }

    /// The member's value; the last one wins if a member repeats, as in serde_json.
    fn get(&self, name: &str) -> Option<&'a Value> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
            .filter(|v| !matches!(v, Value::Null))
    }

    fn mismatch(&self, name: &str, expected: &str, found: &Value) -> KinesisError {
        let path = self.path(name);
        serialization(match found {
            Value::Map(_) => {
                format!("Start of structure or map found where not expected at '{path}'.")
            }
            Value::Array(_) => format!("Start of list found where not expected at '{path}'."),
            other => format!(
                "Expected {expected} at '{path}' but found {}.",
                other.kind()
            ),
        })
    }

    fn missing(&self, name: &str) -> KinesisError {
        let mut v = Violations::new();
        v.not_null::<()>(&self.path(name), None);
        v.into_error()
    }

    pub fn str(&self, name: &str) -> Result<Option<&'a str>, KinesisError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Str(s)) => Ok(Some(s)),
            Some(other) => Err(self.mismatch(name, "a string", other)),
        }
    }

    pub fn required_str(&self, name: &str) -> Result<&'a str, KinesisError> {
        self.str(name)?.ok_or_else(|| self.missing(name))
    }

    /// An integer member. Integral floats (`5.0`) are accepted; fractions are not.
    pub fn int(&self, name: &str) -> Result<Option<i64>, KinesisError> {
        let out_of_range =
            || serialization(format!("Number out of range at '{}'.", self.path(name)));
        match self.get(name) {
            None => Ok(None),
            Some(Value::Int(i)) => i64::try_from(*i).map(Some).map_err(|_| out_of_range()),
            Some(Value::Float(f)) if f.fract() == 0.0 => {
                float_to_i64(*f).map(Some).ok_or_else(out_of_range)
            }
            Some(other) => Err(self.mismatch(name, "an integer", other)),
        }
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, KinesisError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.mismatch(name, "a boolean", other)),
        }
    }

    /// A blob member: base64 text (standard alphabet, padded) in JSON; a byte string in CBOR,
    /// where base64 text is accepted too, as the Java SDK's CBOR parser does.
    pub fn blob(&self, name: &str) -> Result<Option<Bytes>, KinesisError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Blob(b)) => Ok(Some(b.clone())),
            Some(Value::Str(s)) => STANDARD.decode(s).map(|b| Some(b.into())).map_err(|e| {
                serialization(format!("Invalid base64 at '{}': {e}.", self.path(name)))
            }),
            Some(other) => Err(self.mismatch(name, "base64 text", other)),
        }
    }

    pub fn required_blob(&self, name: &str) -> Result<Bytes, KinesisError> {
        self.blob(name)?.ok_or_else(|| self.missing(name))
    }

    /// A timestamp member as epoch milliseconds: JSON numbers are epoch seconds (a
    /// fraction gives milliseconds), CBOR numbers epoch milliseconds, CBOR tag 1 seconds.
    pub fn timestamp(&self, name: &str) -> Result<Option<i64>, KinesisError> {
        let scale = match self.format {
            Format::Json => 1000,
            Format::Cbor => 1,
        };
        let out_of_range =
            || serialization(format!("Timestamp out of range at '{}'.", self.path(name)));
        match self.get(name) {
            None => Ok(None),
            Some(Value::Timestamp(ms)) => Ok(Some(*ms)),
            Some(Value::Int(i)) => i
                .checked_mul(scale)
                .and_then(|ms| i64::try_from(ms).ok())
                .map(Some)
                .ok_or_else(out_of_range),
            Some(Value::Float(f)) => float_to_i64(f * scale as f64)
                .map(Some)
                .ok_or_else(out_of_range),
            Some(other) => Err(self.mismatch(name, "a timestamp", other)),
        }
    }

    /// A nested structure (`StreamModeDetails`, `ShardFilter`).
    pub fn object(&self, name: &str) -> Result<Option<Fields<'a>>, KinesisError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Map(entries)) => Ok(Some(Fields {
                format: self.format,
                entries,
                prefix: Prefix::Whole(format!("{}.", self.path(name))),
            })),
            Some(other) => Err(self.mismatch(name, "a structure", other)),
        }
    }

    /// A list of structures (`Records`). Item `i` reports its members as
    /// `records.<i+1>.member.<name>`, AWS's one-based form.
    pub fn list(&self, name: &str) -> Result<Option<Vec<Fields<'a>>>, KinesisError> {
        let items = match self.get(name) {
            None => return Ok(None),
            Some(Value::Array(items)) => items,
            Some(other) => return Err(self.mismatch(name, "a list", other)),
        };
        let path: Arc<str> = self.path(name).into();
        items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Map(entries) => Ok(Fields {
                    format: self.format,
                    entries,
                    prefix: Prefix::Item {
                        list: Arc::clone(&path),
                        index: i + 1,
                    },
                }),
                other => Err(serialization(format!(
                    "Expected a structure at '{path}.{}.member' but found {}.",
                    i + 1,
                    other.kind()
                ))),
            })
            .collect::<Result<_, _>>()
            .map(Some)
    }

    /// A map of strings to strings (`Tags`), in request order.
    pub fn str_map(&self, name: &str) -> Result<Option<Vec<(&'a str, &'a str)>>, KinesisError> {
        let entries = match self.get(name) {
            None => return Ok(None),
            Some(Value::Map(entries)) => entries,
            Some(other) => return Err(self.mismatch(name, "a map", other)),
        };
        entries
            .iter()
            .map(|(k, v)| match v {
                Value::Str(s) => Ok((&**k, s.as_str())),
                other => Err(serialization(format!(
                    "Expected a string at '{}.{k}' but found {}.",
                    self.path(name),
                    other.kind()
                ))),
            })
            .collect::<Result<_, _>>()
            .map(Some)
    }
}

/// Model-constraint violations, collected so one ValidationException reports them all in
/// AWS's words: `2 validation errors detected: Value '…' at 'partitionKey' failed to satisfy
/// constraint: Member must have length less than or equal to 256; …`.
#[derive(Debug, Default)]
pub struct Violations(Vec<String>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, shown: Option<&str>, path: &str, constraint: &str) {
        let value = shown.map_or_else(|| "null".to_owned(), |s| format!("'{s}'"));
        self.0.push(format!(
            "Value {value} at '{path}' failed to satisfy constraint: {constraint}"
        ));
    }

    fn bounds(&mut self, shown: &str, path: &str, what: &str, n: i128, min: i128, max: i128) {
        if n < min {
            self.push(
                Some(shown),
                path,
                &format!("Member must have {what} greater than or equal to {min}"),
            );
        } else if n > max {
            self.push(
                Some(shown),
                path,
                &format!("Member must have {what} less than or equal to {max}"),
            );
        }
    }

    /// Records a missing required member; passes the value through.
    pub fn not_null<T>(&mut self, path: &str, value: Option<T>) -> Option<T> {
        if value.is_none() {
            self.push(None, path, "Member must not be null");
        }
        value
    }

    /// String length in characters.
    pub fn length(&mut self, path: &str, value: &str, min: usize, max: usize) {
        let n = value.chars().count();
        self.bounds(value, path, "length", n as i128, min as i128, max as i128);
    }

    /// Blob length in bytes; shown the way AWS's Java service shows a buffer.
    pub fn blob_length(&mut self, path: &str, value: &[u8], min: usize, max: usize) {
        let n = value.len();
        if (min..=max).contains(&n) {
            return; // the common case: no message to format
        }
        let shown = format!("java.nio.HeapByteBuffer[pos=0 lim={n} cap={n}]");
        self.bounds(&shown, path, "length", n as i128, min as i128, max as i128);
    }

    /// Number of items in a list. The value is shown as `[]` or `[<n> items]`.
    pub fn count(&mut self, path: &str, len: usize, min: usize, max: usize) {
        let shown = if len == 0 {
            "[]".to_owned()
        } else {
            format!("[{len} items]")
        };
        self.bounds(
            &shown,
            path,
            "length",
            len as i128,
            min as i128,
            max as i128,
        );
    }

    /// Numeric range, both ends inclusive.
    pub fn range(&mut self, path: &str, value: i64, min: i64, max: i64) {
        self.bounds(
            &value.to_string(),
            path,
            "value",
            value.into(),
            min.into(),
            max.into(),
        );
    }

    /// A pattern check the caller performed (no regex engine here); `pattern` is the model's
    /// text, e.g. `0|([1-9]\d{0,38})`.
    pub fn pattern(&mut self, path: &str, value: &str, pattern: &str, matches: bool) {
        if !matches {
            self.push(
                Some(value),
                path,
                &format!("Member must satisfy regular expression pattern: {pattern}"),
            );
        }
    }

    pub fn one_of(&mut self, path: &str, value: &str, allowed: &[&str]) {
        if !allowed.contains(&value) {
            self.push(
                Some(value),
                path,
                &format!(
                    "Member must satisfy enum value set: [{}]",
                    allowed.join(", ")
                ),
            );
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok` when nothing was violated, else the one ValidationException listing everything.
    pub fn into_result(self) -> Result<(), KinesisError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.into_error())
        }
    }

    fn into_error(self) -> KinesisError {
        let n = self.0.len();
        let noun = if n == 1 { "error" } else { "errors" };
        KinesisError::new(
            ErrorCode::Validation,
            format!("{n} validation {noun} detected: {}", self.0.join("; ")),
        )
    }
}

/// Serializes a response. JSON is compact (Fluent Bit looks for the literal
/// `"FailedRecordCount":0`), blobs are standard base64 and timestamps epoch seconds with a
/// millisecond fraction; CBOR has byte strings and epoch-millisecond integers.
pub fn encode(format: Format, value: &Value) -> Bytes {
    let mut out = Vec::new();
    match format {
        Format::Json => {
            // One allocation for a whole GetRecords page instead of a dozen regrowths.
            out.reserve(json_len_hint(value));
            write_json(&mut out, value);
        }
        Format::Cbor => {
            write_cbor(&mut Encoder::from(&mut out), value).expect("writing to a Vec cannot fail")
        }
    }
    out.into()
}

/// About how long `value` is as JSON (exact but for numbers and escapes).
fn json_len_hint(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) => 5,
        Value::Int(_) | Value::Float(_) | Value::Timestamp(_) => 20,
        Value::Str(s) => s.len() + 2,
        Value::Blob(b) => b.len().div_ceil(3) * 4 + 2,
        Value::Array(items) => items.iter().map(|v| json_len_hint(v) + 1).sum::<usize>() + 2,
        Value::Map(entries) => {
            entries
                .iter()
                .map(|(k, v)| k.len() + 4 + json_len_hint(v))
                .sum::<usize>()
                + 2
        }
    }
}

fn write_json(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int(i) => write_display(out, i),
        Value::Float(f) => match serde_json::Number::from_f64(*f) {
            Some(n) => out.extend_from_slice(n.to_string().as_bytes()),
            None => out.extend_from_slice(b"null"),
        },
        Value::Str(s) => write_json_str(out, s),
        // Base64 never needs escaping: encoded straight into the output, quoted.
        Value::Blob(b) => {
            out.push(b'"');
            let start = out.len();
            let len = base64::encoded_len(b.len(), true).expect("a blob in memory fits base64");
            out.resize(start + len, 0);
            let written = STANDARD
                .encode_slice(b, &mut out[start..])
                .expect("sized by encoded_len");
            out.truncate(start + written);
            out.push(b'"');
        }
        Value::Timestamp(ms) => {
            let (secs, frac) = (ms.unsigned_abs() / 1000, ms.unsigned_abs() % 1000);
            if *ms < 0 {
                out.push(b'-');
            }
            write_display(out, &secs);
            if frac != 0 {
                out.push(b'.');
                out.extend_from_slice(&[
                    b'0' + (frac / 100) as u8,
                    b'0' + (frac / 10 % 10) as u8,
                    b'0' + (frac % 10) as u8,
                ]);
            }
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(out, item);
            }
            out.push(b']');
        }
        Value::Map(entries) => {
            out.push(b'{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_str(out, k);
                out.push(b':');
                write_json(out, v);
            }
            out.push(b'}');
        }
    }
}

/// A number written in place, without a `String` in between.
fn write_display(out: &mut Vec<u8>, n: &impl std::fmt::Display) {
    use std::io::Write as _;
    write!(out, "{n}").expect("writing to a Vec cannot fail");
}

/// A JSON string: runs that need no escaping are copied whole (UTF-8 passes through; only
/// `"`, `\\` and control characters are escaped).
fn write_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    // Names, sequence numbers and most keys: nothing to escape, one copy.
    if !bytes.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\') {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..0x20 => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[run..i]);
        if escaped.is_empty() {
            out.extend_from_slice(format!("\\u{b:04x}").as_bytes());
        } else {
            out.extend_from_slice(escaped);
        }
        run = i + 1;
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

/// `value` as CBOR, written straight from the tree: the same bytes ciborium writes for the
/// equivalent `ciborium::Value` (definite lengths, shortest lossless floats), without
/// building that second tree or copying blobs into it.
fn write_cbor(out: &mut Encoder<&mut Vec<u8>>, value: &Value) -> std::io::Result<()> {
    match value {
        Value::Null => out.push(Header::Simple(simple::NULL)),
        Value::Bool(b) => out.push(Header::Simple(if *b {
            simple::TRUE
        } else {
            simple::FALSE
        })),
        Value::Int(i) => out.push(cbor_int(*i).unwrap_or(Header::Float(*i as f64))),
        Value::Float(f) => out.push(Header::Float(*f)),
        Value::Str(s) => out.text(s, None),
        Value::Blob(b) => out.bytes(b, None),
        Value::Timestamp(ms) => out.push(cbor_int((*ms).into()).expect("an i64 fits CBOR")),
        Value::Array(items) => {
            out.push(Header::Array(Some(items.len())))?;
            items.iter().try_for_each(|item| write_cbor(out, item))
        }
        Value::Map(entries) => {
            out.push(Header::Map(Some(entries.len())))?;
            entries.iter().try_for_each(|(k, v)| {
                out.text(k, None)?;
                write_cbor(out, v)
            })
        }
    }
}

/// CBOR's integer header for `i`, when it is in CBOR's range (-2^64 ..= 2^64 - 1).
fn cbor_int(i: i128) -> Option<Header> {
    if i >= 0 {
        u64::try_from(i).ok().map(Header::Positive)
    } else {
        u64::try_from(-1 - i).ok().map(Header::Negative)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference for [`write_cbor`]: the same value as a `ciborium::Value`.
    fn to_cbor(value: &Value) -> ciborium::Value {
        match value {
            Value::Null => ciborium::Value::Null,
            Value::Bool(b) => ciborium::Value::Bool(*b),
            Value::Int(i) => ciborium::value::Integer::try_from(*i)
                .map_or(ciborium::Value::Float(*i as f64), ciborium::Value::Integer),
            Value::Float(f) => ciborium::Value::Float(*f),
            Value::Str(s) => ciborium::Value::Text(s.clone()),
            Value::Blob(b) => ciborium::Value::Bytes(b.to_vec()),
            Value::Timestamp(ms) => ciborium::Value::Integer((*ms).into()),
            Value::Array(items) => ciborium::Value::Array(items.iter().map(to_cbor).collect()),
            Value::Map(entries) => ciborium::Value::Map(
                entries
                    .iter()
                    .map(|(k, v)| (ciborium::Value::Text(k.to_string()), to_cbor(v)))
                    .collect(),
            ),
        }
    }

    fn json(body: &str) -> Value {
        decode(Format::Json, body.as_bytes()).unwrap()
    }

    fn cbor(value: &ciborium::Value) -> Value {
        let mut body = Vec::new();
        ciborium::into_writer(value, &mut body).unwrap();
        decode(Format::Cbor, &body).unwrap()
    }

    fn cbor_map(entries: Vec<(&str, ciborium::Value)>) -> ciborium::Value {
        ciborium::Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    fn err_of<T: std::fmt::Debug>(r: Result<T, KinesisError>) -> (ErrorCode, String) {
        let e = r.unwrap_err();
        (e.code, e.message)
    }

    #[test]
    fn content_types() {
        for ct in [
            "application/x-amz-json-1.1",
            "application/x-amz-json-1.0",
            "application/json; charset=utf-8",
            "Application/X-Amz-Json-1.1",
        ] {
            assert_eq!(
                Format::from_content_type(Some(ct)).unwrap(),
                Format::Json,
                "{ct}"
            );
        }
        assert_eq!(
            Format::from_content_type(Some("application/x-amz-cbor-1.1")).unwrap(),
            Format::Cbor
        );
        for ct in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
        ] {
            let (code, _) = err_of(Format::from_content_type(ct));
            assert_eq!(code, ErrorCode::UnknownOperation);
        }
    }

    #[test]
    fn empty_body_is_an_empty_structure() {
        assert_eq!(json(""), Value::Map(Vec::new()));
        assert_eq!(decode(Format::Cbor, b"").unwrap(), Value::Map(Vec::new()));
    }

    #[test]
    fn bodies_must_be_structures() {
        for body in ["[]", "1", "\"x\"", "{", "{\"a\":}"] {
            let (code, _) = err_of(decode(Format::Json, body.as_bytes()));
            assert_eq!(code, ErrorCode::Serialization, "{body}");
        }
        let (code, _) = err_of(decode(Format::Cbor, &[0x83, 1, 2, 3]));
        assert_eq!(code, ErrorCode::Serialization);
        // A map followed by garbage.
        let (code, msg) = err_of(decode(Format::Cbor, &[0xa0, 0x00]));
        assert_eq!(code, ErrorCode::Serialization);
        assert!(msg.contains("1 bytes after"), "{msg}");
        // A non-text key.
        let (code, _) = err_of(decode(Format::Cbor, &[0xa1, 0x01, 0x02]));
        assert_eq!(code, ErrorCode::Serialization);
    }

    #[test]
    fn json_is_read_as_through_serde_json_value() {
        for body in [
            r#"{}"#,
            r#"{"b":1,"a":[1,-2,18446744073709551615,1e300,0.5,1.0,null,true,"x\u00e9\n"],"c":{}}"#,
            r#"{"Records":[{"PartitionKey":"k","Data":"aGk="},{"Data":"","PartitionKey":"é"}]}"#,
            r#"{"a":1,"b":{"z":[],"y":{"x":null}},"a":2,"A":3,"a":{"k":"last"}}"#,
            r#"{"Tags":{"b":"2","a":"1","b":"3"},"n":-9223372036854775808,"m":99999999999999999999}"#,
        ] {
            let expected = from_json(serde_json::from_str(body).unwrap(), 1).unwrap();
            assert_eq!(
                decode(Format::Json, body.as_bytes()).unwrap(),
                expected,
                "{body}"
            );
        }
        for bad in [
            r#"{"a":1e400}"#,
            r#"{"a":1"#,
            r#"{"a":1} x"#,
            r#"{"a":01}"#,
            "[1]",
            "\"s\"",
            "{\"a\":\"\\x\"}",
        ] {
            assert_eq!(
                err_of(decode(Format::Json, bad.as_bytes())).0,
                ErrorCode::Serialization,
                "{bad}"
            );
        }
    }

    #[test]
    fn depth_is_bounded() {
        // `levels` nested structures (JSON) or a map around nested lists (CBOR).
        let nested_json =
            |levels: usize| format!("{}1{}", "{\"a\":".repeat(levels), "}".repeat(levels));
        let nested_cbor = |levels: usize| {
            let mut body = vec![0xa1, 0x61, b'a'];
            body.extend(std::iter::repeat_n(0x81, levels - 1));
            body.push(0x01);
            body
        };
        json(&nested_json(MAX_DEPTH));
        decode(Format::Cbor, &nested_cbor(MAX_DEPTH)).unwrap();
        for (format, body) in [
            (Format::Json, nested_json(MAX_DEPTH + 1).into_bytes()),
            (Format::Cbor, nested_cbor(MAX_DEPTH + 1)),
        ] {
            assert_eq!(
                err_of(decode(format, &body)),
                (
                    ErrorCode::Serialization,
                    "The request nests deeper than 32 levels".to_owned()
                )
            );
        }
        // Far deeper input stops in the parsers' own limits.
        for (format, body) in [
            (Format::Json, nested_json(1000).into_bytes()),
            (Format::Cbor, nested_cbor(1000)),
        ] {
            assert_eq!(err_of(decode(format, &body)).0, ErrorCode::Serialization);
        }
    }

    #[test]
    fn typed_fields_from_json() {
        let v = json(
            r#"{"StreamName":"logs","Limit":25,"Big":5.0,"Flag":true,"Data":"aGVsbG8=",
                "Empty":"","Ts":1795594587.097,"TsInt":1795594587,"Gone":null,
                "Mode":{"StreamMode":"ON_DEMAND"},"Tags":{"a":"1","b":"2"}}"#,
        );
        let f = Fields::root(Format::Json, &v).unwrap();
        assert_eq!(f.str("StreamName").unwrap(), Some("logs"));
        assert_eq!(f.required_str("StreamName").unwrap(), "logs");
        assert_eq!(f.str("Missing").unwrap(), None);
        assert_eq!(f.str("Gone").unwrap(), None);
        assert_eq!(f.int("Limit").unwrap(), Some(25));
        assert_eq!(f.int("Big").unwrap(), Some(5));
        assert_eq!(f.bool("Flag").unwrap(), Some(true));
        assert_eq!(f.blob("Data").unwrap().unwrap().as_ref(), b"hello");
        assert_eq!(f.required_blob("Empty").unwrap().len(), 0);
        assert_eq!(f.timestamp("Ts").unwrap(), Some(1_795_594_587_097));
        assert_eq!(f.timestamp("TsInt").unwrap(), Some(1_795_594_587_000));
        let mode = f.object("Mode").unwrap().unwrap();
        assert_eq!(mode.str("StreamMode").unwrap(), Some("ON_DEMAND"));
        assert_eq!(mode.path("StreamMode"), "mode.streamMode");
        assert_eq!(
            f.str_map("Tags").unwrap().unwrap(),
            vec![("a", "1"), ("b", "2")]
        );
    }

    #[test]
    fn wrong_types_name_the_member() {
        let v = json(
            r#"{"StreamName":{"x":1},"Limit":"5","Records":[{"Data":7}],"Frac":1.5,"Huge":1e30,"Data":"not base64!"}"#,
        );
        let f = Fields::root(Format::Json, &v).unwrap();
        assert_eq!(
            err_of(f.str("StreamName")),
            (
                ErrorCode::Serialization,
                "Start of structure or map found where not expected at 'streamName'.".to_owned()
            )
        );
        assert_eq!(
            err_of(f.int("Limit")).1,
            "Expected an integer at 'limit' but found a string."
        );
        assert_eq!(
            err_of(f.str("Records")).1,
            "Start of list found where not expected at 'records'."
        );
        let records = f.list("Records").unwrap().unwrap();
        assert_eq!(
            err_of(records[0].blob("Data")).1,
            "Expected base64 text at 'records.1.member.data' but found a number."
        );
        assert_eq!(err_of(f.int("Frac")).0, ErrorCode::Serialization);
        assert_eq!(err_of(f.int("Huge")).1, "Number out of range at 'huge'.");
        let (code, msg) = err_of(f.blob("Data"));
        assert_eq!(code, ErrorCode::Serialization);
        assert!(msg.starts_with("Invalid base64 at 'data'"), "{msg}");
        // Unpadded base64 is refused too.
        let v = json(r#"{"Data":"aGVsbG8"}"#);
        assert_eq!(
            err_of(Fields::root(Format::Json, &v).unwrap().blob("Data")).0,
            ErrorCode::Serialization
        );
    }

    #[test]
    fn missing_required_members_are_validation_errors() {
        let v = json(r#"{"Records":[{"PartitionKey":"a"},{"Data":"","PartitionKey":"b"}]}"#);
        let f = Fields::root(Format::Json, &v).unwrap();
        assert_eq!(
            err_of(f.required_str("ShardId")),
            (
                ErrorCode::Validation,
                "1 validation error detected: Value null at 'shardId' failed to satisfy constraint: Member must not be null".to_owned()
            )
        );
        let records = f.list("Records").unwrap().unwrap();
        assert_eq!(
            err_of(records[0].required_blob("Data")).1,
            "1 validation error detected: Value null at 'records.1.member.data' failed to satisfy constraint: Member must not be null"
        );
        assert_eq!(records[1].required_blob("Data").unwrap().len(), 0);
    }

    #[test]
    fn typed_fields_from_cbor() {
        use ciborium::Value as C;
        let v = cbor(&cbor_map(vec![
            ("Data", C::Bytes(vec![0, 159, 146, 150])),
            ("Text", C::Text("aGVsbG8=".into())),
            ("Millis", C::Integer(1_795_594_587_097i64.into())),
            (
                "Tagged",
                C::Tag(1, Box::new(C::Integer(1_795_594_587.into()))),
            ),
            (
                "TaggedFloat",
                C::Tag(1, Box::new(C::Float(1_795_594_587.25))),
            ),
            ("Limit", C::Integer(7.into())),
            (
                "Records",
                C::Array(vec![cbor_map(vec![("PartitionKey", C::Text("k".into()))])]),
            ),
        ]));
        let f = Fields::root(Format::Cbor, &v).unwrap();
        assert_eq!(
            f.blob("Data").unwrap().unwrap().as_ref(),
            &[0, 159, 146, 150]
        );
        assert_eq!(f.blob("Text").unwrap().unwrap().as_ref(), b"hello");
        assert_eq!(f.timestamp("Millis").unwrap(), Some(1_795_594_587_097));
        assert_eq!(f.timestamp("Tagged").unwrap(), Some(1_795_594_587_000));
        assert_eq!(f.timestamp("TaggedFloat").unwrap(), Some(1_795_594_587_250));
        assert_eq!(f.int("Limit").unwrap(), Some(7));
        let records = f.list("Records").unwrap().unwrap();
        assert_eq!(records[0].str("PartitionKey").unwrap(), Some("k"));
        assert_eq!(
            records[0].path("PartitionKey"),
            "records.1.member.partitionKey"
        );
    }

    #[test]
    fn json_timestamps_must_be_numbers() {
        let v = json(r#"{"Timestamp":"2026-11-25T00:00:00Z"}"#);
        let f = Fields::root(Format::Json, &v).unwrap();
        assert_eq!(
            err_of(f.timestamp("Timestamp")).1,
            "Expected a timestamp at 'timestamp' but found a string."
        );
    }

    #[test]
    fn violation_messages() {
        let mut v = Violations::new();
        v.length("records.1.member.partitionKey", &"k".repeat(257), 1, 256);
        assert_eq!(
            v.into_result().unwrap_err(),
            KinesisError::new(
                ErrorCode::Validation,
                format!(
                    "1 validation error detected: Value '{}' at 'records.1.member.partitionKey' failed to satisfy constraint: Member must have length less than or equal to 256",
                    "k".repeat(257)
                )
            )
        );

        let mut v = Violations::new();
        v.length("partitionKey", "", 1, 256);
        v.range("limit", 10_001, 1, 10_000);
        v.blob_length("data", &[0; 3], 0, 2);
        v.one_of("shardIteratorType", "OLDEST", &["TRIM_HORIZON", "LATEST"]);
        v.pattern("explicitHashKey", "01", r"0|([1-9]\d{0,38})", false);
        v.count("records", 0, 1, 500);
        assert_eq!(v.not_null("streamName", Some(1)), Some(1));
        assert_eq!(
            v.into_result().unwrap_err().message,
            "6 validation errors detected: \
             Value '' at 'partitionKey' failed to satisfy constraint: Member must have length greater than or equal to 1; \
             Value '10001' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 10000; \
             Value 'java.nio.HeapByteBuffer[pos=0 lim=3 cap=3]' at 'data' failed to satisfy constraint: Member must have length less than or equal to 2; \
             Value 'OLDEST' at 'shardIteratorType' failed to satisfy constraint: Member must satisfy enum value set: [TRIM_HORIZON, LATEST]; \
             Value '01' at 'explicitHashKey' failed to satisfy constraint: Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38}); \
             Value '[]' at 'records' failed to satisfy constraint: Member must have length greater than or equal to 1"
        );

        let mut ok = Violations::new();
        ok.length("partitionKey", "é", 1, 1);
        ok.range("limit", 10_000, 1, 10_000);
        ok.count("records", 500, 1, 500);
        assert!(ok.is_empty());
        assert!(ok.into_result().is_ok());
    }

    #[test]
    fn json_output_is_compact_and_ordered() {
        let out = Value::map([
            ("FailedRecordCount", Value::from(0u32)),
            (
                "Records",
                Value::from(vec![Value::map([
                    ("SequenceNumber", Value::from("4960")),
                    ("ShardId", Value::from("shardId-000000000000")),
                ])]),
            ),
        ]);
        let text = encode(Format::Json, &out);
        assert_eq!(
            std::str::from_utf8(&text).unwrap(),
            r#"{"FailedRecordCount":0,"Records":[{"SequenceNumber":"4960","ShardId":"shardId-000000000000"}]}"#
        );
    }

    #[test]
    fn json_blobs_timestamps_and_escapes() {
        let out = Value::map([
            ("Data", Value::from(Bytes::from_static(b"hello"))),
            ("At", Value::Timestamp(1_795_594_587_097)),
            ("Whole", Value::Timestamp(1_795_594_587_000)),
            ("Early", Value::Timestamp(-1_500)),
            ("Small", Value::Timestamp(5)),
            ("S", Value::from("a\"b\\c\n\u{1}é")),
            ("T", Value::from("\t\r\u{1f}x🦀")),
            ("Empty", Value::from(Bytes::new())),
            ("F", Value::Float(0.5)),
            ("Nan", Value::Float(f64::NAN)),
            ("None", Value::from(None::<String>)),
            ("Yes", Value::from(true)),
        ]);
        let text = encode(Format::Json, &out);
        assert_eq!(
            std::str::from_utf8(&text).unwrap(),
            r#"{"Data":"aGVsbG8=","At":1795594587.097,"Whole":1795594587,"Early":-1.500,"Small":0.005,"S":"a\"b\\c\n\u0001é","T":"\t\r\u001fx🦀","Empty":"","F":0.5,"Nan":null,"None":null,"Yes":true}"#
        );
        // What we write, serde_json reads back.
        let back: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(back["S"], "a\"b\\c\n\u{1}é");
        assert_eq!(back["T"], "\t\r\u{1f}x🦀");
        assert_eq!(back["At"].as_f64(), Some(1_795_594_587.097));
    }

    #[test]
    fn cbor_output_round_trips_through_decode() {
        let out = Value::map([
            ("Data", Value::from(Bytes::from_static(&[1, 2, 3]))),
            ("At", Value::Timestamp(1_795_594_587_097)),
            ("Count", Value::from(-3i64)),
            ("Name", Value::from("logs")),
        ]);
        let bytes = encode(Format::Cbor, &out);
        let raw: ciborium::Value = ciborium::from_reader(bytes.as_ref()).unwrap();
        assert_eq!(
            raw,
            cbor_map(vec![
                ("Data", ciborium::Value::Bytes(vec![1, 2, 3])),
                ("At", ciborium::Value::Integer(1_795_594_587_097i64.into())),
                ("Count", ciborium::Value::Integer((-3).into())),
                ("Name", ciborium::Value::Text("logs".into())),
            ])
        );
        let v = decode(Format::Cbor, &bytes).unwrap();
        let f = Fields::root(Format::Cbor, &v).unwrap();
        assert_eq!(f.timestamp("At").unwrap(), Some(1_795_594_587_097));
        assert_eq!(f.blob("Data").unwrap().unwrap().as_ref(), &[1, 2, 3]);
        assert_eq!(f.int("Count").unwrap(), Some(-3));
    }

    #[test]
    fn cbor_is_written_byte_for_byte_as_ciborium_writes_it() {
        let ints = [
            0,
            23,
            24,
            255,
            256,
            65_536,
            i128::from(u64::MAX),
            i128::from(u64::MAX) + 1,
            -1,
            -24,
            -25,
            -(1 << 64),
            -(1 << 64) - 1,
        ];
        let mut entries: Vec<(String, Value)> = ints
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("int{i}"), Value::Int(*n)))
            .collect();
        entries.extend([
            ("null".into(), Value::Null),
            ("yes".into(), Value::Bool(true)),
            ("no".into(), Value::Bool(false)),
            ("half".into(), Value::Float(0.5)),
            ("third".into(), Value::Float(1.0 / 3.0)),
            ("nan".into(), Value::Float(f64::NAN)),
            ("text".into(), Value::from("héllo \u{1f980}")),
            ("long".into(), Value::from("x".repeat(70_000))),
            ("blob".into(), Value::from(Bytes::from(vec![7u8; 300]))),
            ("empty".into(), Value::from(Bytes::new())),
            ("at".into(), Value::Timestamp(1_795_594_587_097)),
            ("before".into(), Value::Timestamp(-1_500)),
            (
                "list".into(),
                Value::Array(vec![
                    Value::Null,
                    Value::Array(Vec::new()),
                    Value::map([("k", Value::Int(1))]),
                ]),
            ),
        ]);
        let value = Value::map(entries);
        let mut reference = Vec::new();
        ciborium::into_writer(&to_cbor(&value), &mut reference).unwrap();
        assert!(encode(Format::Cbor, &value) == reference);
    }
}
