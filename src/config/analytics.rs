//! `[analytics]`: SQL over the streams, served by edgewise-cdn on the stream API's
//! listeners. Inputs say how a stream's records become columns (JSON paths, CSV or TSV
//! positions, or the CDN's own real-time log fields); applications are continuous queries in
//! Kinesis Data Analytics' SQL dialect whose in-application streams are written to streams.

use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::diag::{ConfigError, SourceMap};
use super::raw::{RawAnalytics, RawColumn, RawInput};
use super::realtime_logs::{LogField, RealtimeLogsConfig};
use super::stream::StreamConfig;
use super::units::ConfigDuration;

const DEFAULT_MAX_ROWS: u64 = 100_000;
const MAX_ROWS_LIMIT: u64 = 100_000_000;
const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_DISCOVER_RECORDS: usize = 100;
/// A shard with nothing new for this long stops holding the watermark back: short enough
/// that a window with idle shards still closes within KDA's one second.
const DEFAULT_IDLE_SHARD_TIMEOUT: Duration = Duration::from_millis(500);
/// Columns per input: wide enough for any log line, bounded so a typo cannot build a
/// million-column schema.
pub const MAX_COLUMNS: usize = 1_000;

/// Validated `[analytics]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyticsConfig {
    pub inputs: Vec<InputSpec>,
    pub applications: Vec<ApplicationSpec>,
    /// CSV tables applications may join with (`[[analytics.references]]`).
    pub references: Vec<ReferenceSpec>,
    /// Rows a one-shot query returns at most (`max_rows`).
    pub max_rows: u64,
    /// How long a one-shot query may run (`query_timeout`).
    pub query_timeout: Duration,
    /// Records schema discovery reads (`discover_records`).
    pub discover_records: usize,
    /// See [`DEFAULT_IDLE_SHARD_TIMEOUT`] (`idle_shard_timeout`).
    pub idle_shard_timeout: Duration,
}

impl AnalyticsConfig {
    /// The input reading `stream`, if one is configured.
    pub fn input(&self, stream: &str) -> Option<&InputSpec> {
        self.inputs.iter().find(|input| input.stream == stream)
    }
}

/// A reference table: a CSV file with a header line, read whole at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceSpec {
    /// The table's name in SQL.
    pub name: String,
    /// Relative to the config file.
    pub path: PathBuf,
}

/// How one stream's records become rows.
#[derive(Debug, Clone, PartialEq)]
pub struct InputSpec {
    pub stream: String,
    pub format: InputFormat,
    /// In the table's order; each knows where in the record its value is.
    pub columns: Vec<ColumnSpec>,
}

/// The record formats an input reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// One JSON object per record; columns by JSON path.
    Json,
    /// One comma-separated line per record (RFC 4180 quoting); columns by position.
    Csv,
    /// One tab-separated line per record; columns by position.
    Tsv,
    /// The CDN's real-time log lines: tab-separated, `-` for no value, columns named after
    /// `[cdn.realtime_logs] fields` (`sc-status` as `sc_status`).
    CloudfrontRealtime,
}

impl InputFormat {
    pub fn name(self) -> &'static str {
        match self {
            InputFormat::Json => "json",
            InputFormat::Csv => "csv",
            InputFormat::Tsv => "tsv",
            InputFormat::CloudfrontRealtime => "cloudfront-realtime",
        }
    }
}

/// One column of an input.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSpec {
    pub name: String,
    pub ty: SqlType,
    pub source: ColumnSource,
}

/// Where a column's value is in a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnSource {
    /// JSON: member names and array indexes from the root (`$.a.b[0]`).
    Json(Vec<PathStep>),
    /// CSV, TSV and real-time log lines: the field's position, from 0.
    Position(usize),
}

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    Member(String),
    Index(usize),
}

/// The SQL types of KDA's schema editor, as columns are declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlType {
    Boolean,
    TinyInt,
    SmallInt,
    Integer,
    BigInt,
    Real,
    Double,
    /// DECIMAL(precision, scale).
    Decimal(u8, i8),
    /// VARCHAR(n) / CHAR(n): text; the length is kept for the schema, not enforced.
    Varchar(Option<u32>),
    /// Milliseconds; from JSON numbers (epoch seconds), RFC 3339 / ISO 8601 text.
    Timestamp,
    Date,
}

impl SqlType {
    /// Parses a KDA/SQL type name: `INTEGER`, `INT`, `BIGINT`, `VARCHAR(16)`,
    /// `DECIMAL(10,2)`, `TIMESTAMP`... (any case).
    pub fn parse(text: &str) -> Option<SqlType> {
        let text = text.trim().to_ascii_uppercase();
        let (name, args) = match text.split_once('(') {
            Some((name, rest)) => (name.trim(), Some(rest.strip_suffix(')')?)),
            None => (text.as_str(), None),
        };
        let numbers: Option<Vec<u32>> = match args {
            None => None,
            Some(args) => Some(
                args.split(',')
                    .map(|n| n.trim().parse().ok())
                    .collect::<Option<Vec<u32>>>()?,
            ),
        };
        let plain = |ty| numbers.is_none().then_some(ty);
        match name {
            "BOOLEAN" | "BOOL" => plain(SqlType::Boolean),
            "TINYINT" => plain(SqlType::TinyInt),
            "SMALLINT" => plain(SqlType::SmallInt),
            "INTEGER" | "INT" => plain(SqlType::Integer),
            "BIGINT" => plain(SqlType::BigInt),
            "REAL" | "FLOAT" => plain(SqlType::Real),
            "DOUBLE" | "DOUBLE PRECISION" => plain(SqlType::Double),
            "TIMESTAMP" => plain(SqlType::Timestamp),
            "DATE" => plain(SqlType::Date),
            "VARCHAR" | "CHAR" | "CHARACTER" | "CHARACTER VARYING" | "STRING" | "TEXT" => {
                match numbers.as_deref() {
                    None => Some(SqlType::Varchar(None)),
                    Some([n]) if *n > 0 => Some(SqlType::Varchar(Some(*n))),
                    Some(_) => None,
                }
            }
            "DECIMAL" | "NUMERIC" => match numbers.as_deref() {
                None => Some(SqlType::Decimal(38, 10)),
                Some([p]) if (1..=38).contains(p) => Some(SqlType::Decimal(*p as u8, 0)),
                Some([p, s]) if (1..=38).contains(p) && s <= p => {
                    Some(SqlType::Decimal(*p as u8, *s as i8))
                }
                Some(_) => None,
            },
            _ => None,
        }
    }

    /// The name as SQL writes it (in discovered schemas and `CREATE STREAM` columns).
    pub fn sql_name(self) -> String {
        match self {
            SqlType::Boolean => "BOOLEAN".into(),
            SqlType::TinyInt => "TINYINT".into(),
            SqlType::SmallInt => "SMALLINT".into(),
            SqlType::Integer => "INTEGER".into(),
            SqlType::BigInt => "BIGINT".into(),
            SqlType::Real => "REAL".into(),
            SqlType::Double => "DOUBLE".into(),
            SqlType::Decimal(p, s) => format!("DECIMAL({p},{s})"),
            SqlType::Varchar(Some(n)) => format!("VARCHAR({n})"),
            SqlType::Varchar(None) => "VARCHAR".into(),
            SqlType::Timestamp => "TIMESTAMP".into(),
            SqlType::Date => "DATE".into(),
        }
    }
}

/// A continuous query: its inputs (SOURCE_SQL_STREAM_001 is the first), its SQL, and which
/// in-application streams go to which streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationSpec {
    pub name: String,
    pub inputs: Vec<String>,
    pub sql: String,
    pub outputs: Vec<OutputSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSpec {
    /// The in-application stream, as the SQL names it.
    pub sql_stream: String,
    /// The stream its rows are put on, as JSON records.
    pub stream: String,
}

/// Whether `name` may name an application: what Kinesis allows in a stream name, since
/// its error stream is `<name>_errors`.
pub fn valid_application_name(name: &str) -> bool {
    (1..=120).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// The column name a real-time log field gets: SQL identifiers cannot hold `-`.
pub fn realtime_column_name(field: LogField) -> String {
    field.name().replace('-', "_")
}

/// The column type of a real-time log field.
fn realtime_column_type(field: LogField) -> SqlType {
    match field {
        LogField::Timestamp => SqlType::Timestamp,
        LogField::TimeToFirstByte | LogField::TimeTaken => SqlType::Double,
        LogField::Status | LogField::ClientPort => SqlType::Integer,
        LogField::ResponseBytes
        | LogField::ContentLength
        | LogField::RangeStart
        | LogField::RangeEnd
        | LogField::RequestBytes => SqlType::BigInt,
        _ => SqlType::Varchar(None),
    }
}

/// Checks `[analytics]` against the streams of `[stream]` and the real-time log of `[cdn]`.
pub(super) fn validate(
    raw: &RawAnalytics,
    streams: Option<&StreamConfig>,
    realtime_logs: Option<&RealtimeLogsConfig>,
    map: &SourceMap,
    base: &Path,
    errors: &mut Vec<ConfigError>,
) -> AnalyticsConfig {
    let known_stream =
        |name: &str| streams.is_some_and(|s| s.streams.iter().any(|x| x.name == name));
    let mut inputs: Vec<InputSpec> = Vec::new();
    for (i, input) in raw.inputs.iter().enumerate() {
        let key = format!("analytics.inputs[{i}]");
        let r = input.get_ref();
        let stream = r.stream.get_ref();
        if !known_stream(stream) {
            errors.push(map.error(
                r.stream.span(),
                format!("{key}.stream"),
                format!("{stream:?} is not a [[stream.streams]] name"),
            ));
        }
        if inputs.iter().any(|other| &other.stream == stream) {
            errors.push(map.error(
                r.stream.span(),
                format!("{key}.stream"),
                format!("{stream:?} has an input already"),
            ));
        }
        if let Some(spec) = input_spec(r, &key, realtime_logs, map, errors) {
            inputs.push(spec);
        }
    }
    let mut applications: Vec<ApplicationSpec> = Vec::new();
    for (i, app) in raw.applications.iter().enumerate() {
        let key = format!("analytics.applications[{i}]");
        let r = app.get_ref();
        let name = r.name.get_ref();
        if !valid_application_name(name) {
            errors.push(map.error(
                r.name.span(),
                format!("{key}.name"),
                "must be 1 to 120 letters, digits, `_`, `-` or `.`",
            ));
        }
        if applications.iter().any(|other| &other.name == name) {
            errors.push(map.error(
                r.name.span(),
                format!("{key}.name"),
                format!("{name:?} is used twice"),
            ));
        }
        if r.inputs.is_empty() || r.inputs.len() > 999 {
            errors.push(map.error(
                app.span(),
                format!("{key}.inputs"),
                "must name 1 to 999 streams that have an [[analytics.inputs]] entry",
            ));
        }
        for (j, stream) in r.inputs.iter().enumerate() {
            if !inputs.iter().any(|input| &input.stream == stream.get_ref()) {
                errors.push(map.error(
                    stream.span(),
                    format!("{key}.inputs[{j}]"),
                    format!(
                        "{:?} has no [[analytics.inputs]] entry saying how its records read",
                        stream.get_ref()
                    ),
                ));
            }
        }
        if r.sql.get_ref().trim().is_empty() {
            errors.push(map.error(r.sql.span(), format!("{key}.sql"), "must not be empty"));
        }
        let mut outputs = Vec::new();
        for (j, output) in r.outputs.iter().enumerate() {
            let o = output.get_ref();
            if !known_stream(o.stream.get_ref()) {
                errors.push(map.error(
                    o.stream.span(),
                    format!("{key}.outputs[{j}].stream"),
                    format!("{:?} is not a [[stream.streams]] name", o.stream.get_ref()),
                ));
            }
            if r.inputs
                .iter()
                .any(|input| input.get_ref() == o.stream.get_ref())
            {
                errors.push(map.error(
                    o.stream.span(),
                    format!("{key}.outputs[{j}].stream"),
                    "an application may not write to its own input",
                ));
            }
            outputs.push(OutputSpec {
                sql_stream: o.sql_stream.get_ref().clone(),
                stream: o.stream.get_ref().clone(),
            });
        }
        applications.push(ApplicationSpec {
            name: name.clone(),
            inputs: r.inputs.iter().map(|s| s.get_ref().clone()).collect(),
            sql: r.sql.get_ref().clone(),
            outputs,
        });
    }
    let mut references: Vec<ReferenceSpec> = Vec::new();
    for (i, reference) in raw.references.iter().enumerate() {
        let r = reference.get_ref();
        let name = r.name.get_ref();
        let taken = references.iter().any(|other| &other.name == name)
            || known_stream(name)
            || !valid_application_name(name);
        if taken {
            errors.push(map.error(
                r.name.span(),
                format!("analytics.references[{i}].name"),
                format!(
                    "{name:?}: must be 1 to 120 letters, digits, `_`, `-` or `.`, used once, and \
                     not a stream's name"
                ),
            ));
        }
        if r.path.get_ref().is_empty() {
            errors.push(map.error(
                r.path.span(),
                format!("analytics.references[{i}].path"),
                "must name a CSV file",
            ));
        }
        references.push(ReferenceSpec {
            name: name.clone(),
            path: base.join(r.path.get_ref()),
        });
    }
    AnalyticsConfig {
        inputs,
        applications,
        references,
        max_rows: bounded(
            &raw.max_rows,
            "analytics.max_rows",
            DEFAULT_MAX_ROWS,
            map,
            errors,
        ),
        query_timeout: duration(
            &raw.query_timeout,
            "analytics.query_timeout",
            DEFAULT_QUERY_TIMEOUT,
            (Duration::from_millis(100), Duration::from_secs(3600)),
            map,
            errors,
        ),
        discover_records: bounded(
            &raw.discover_records,
            "analytics.discover_records",
            DEFAULT_DISCOVER_RECORDS as u64,
            map,
            errors,
        )
        .min(10_000) as usize,
        idle_shard_timeout: duration(
            &raw.idle_shard_timeout,
            "analytics.idle_shard_timeout",
            DEFAULT_IDLE_SHARD_TIMEOUT,
            (Duration::from_millis(10), Duration::from_secs(3600)),
            map,
            errors,
        ),
    }
}

/// A positive count no larger than [`MAX_ROWS_LIMIT`].
fn bounded(
    value: &Option<Spanned<i64>>,
    key: &str,
    default: u64,
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) -> u64 {
    match value {
        None => default,
        Some(v) => match u64::try_from(*v.get_ref()) {
            Ok(n) if (1..=MAX_ROWS_LIMIT).contains(&n) => n,
            _ => {
                errors.push(map.error(
                    v.span(),
                    key,
                    format!("{} is out of range (1 to {MAX_ROWS_LIMIT})", v.get_ref()),
                ));
                default
            }
        },
    }
}

fn duration(
    value: &Option<Spanned<ConfigDuration>>,
    key: &str,
    default: Duration,
    (min, max): (Duration, Duration),
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) -> Duration {
    match value {
        None => default,
        Some(d) if (min..=max).contains(&d.get_ref().0) => d.get_ref().0,
        Some(d) => {
            errors.push(map.error(
                d.span(),
                key,
                format!("must be between {min:?} and {max:?}"),
            ));
            default
        }
    }
}

/// One input's format and columns; `None` when its format is unknown.
fn input_spec(
    r: &RawInput,
    key: &str,
    realtime_logs: Option<&RealtimeLogsConfig>,
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) -> Option<InputSpec> {
    let format = match r.format.get_ref().as_str() {
        "json" => InputFormat::Json,
        "csv" => InputFormat::Csv,
        "tsv" => InputFormat::Tsv,
        "cloudfront-realtime" => InputFormat::CloudfrontRealtime,
        other => {
            errors.push(map.error(
                r.format.span(),
                format!("{key}.format"),
                format!("{other:?} is not a format: json, csv, tsv or cloudfront-realtime"),
            ));
            return None;
        }
    };
    let stream = r.stream.get_ref().clone();
    if format == InputFormat::CloudfrontRealtime {
        let Some(logs) = realtime_logs.filter(|logs| logs.stream == stream) else {
            errors.push(map.error(
                r.format.span(),
                format!("{key}.format"),
                format!(
                    "cloudfront-realtime reads the CDN's real-time log: {stream:?} must be the \
                     [cdn.realtime_logs] stream"
                ),
            ));
            return None;
        };
        if let Some(columns) = &r.columns {
            errors.push(map.error(
                columns.span(),
                format!("{key}.columns"),
                "cloudfront-realtime columns are the [cdn.realtime_logs] fields; leave columns out",
            ));
        }
        let columns = logs
            .fields
            .iter()
            .enumerate()
            .map(|(position, &field)| ColumnSpec {
                name: realtime_column_name(field),
                ty: realtime_column_type(field),
                source: ColumnSource::Position(position),
            })
            .collect();
        return Some(InputSpec {
            stream,
            format,
            columns,
        });
    }
    let Some(raw_columns) = &r.columns else {
        errors.push(map.error(
            r.format.span(),
            format!("{key}.columns"),
            "a json, csv or tsv input needs columns = [{ name, type, path }] \
             (POST /analytics/discover proposes them)",
        ));
        return None;
    };
    if raw_columns.get_ref().is_empty() || raw_columns.get_ref().len() > MAX_COLUMNS {
        errors.push(map.error(
            raw_columns.span(),
            format!("{key}.columns"),
            format!("must list 1 to {MAX_COLUMNS} columns"),
        ));
    }
    let mut columns: Vec<ColumnSpec> = Vec::new();
    for (i, column) in raw_columns.get_ref().iter().enumerate() {
        let key = format!("{key}.columns[{i}]");
        if let Some(spec) = column_spec(column, i, format, &key, map, errors) {
            if columns
                .iter()
                .any(|c| c.name.eq_ignore_ascii_case(&spec.name))
            {
                errors.push(map.error(
                    column.get_ref().name.span(),
                    format!("{key}.name"),
                    format!("{:?} is used twice", spec.name),
                ));
            }
            columns.push(spec);
        }
    }
    Some(InputSpec {
        stream,
        format,
        columns,
    })
}

/// Names every row has besides its columns (case-insensitively, as SQL compares them).
pub const METADATA_COLUMNS: [&str; 5] = [
    "ROWTIME",
    "APPROXIMATE_ARRIVAL_TIME",
    "partition_key",
    "sequence_number",
    "shard_id",
];

fn column_spec(
    column: &Spanned<RawColumn>,
    index: usize,
    format: InputFormat,
    key: &str,
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) -> Option<ColumnSpec> {
    let c = column.get_ref();
    let name = c.name.get_ref();
    let valid_name = !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    if !valid_name {
        errors.push(map.error(
            c.name.span(),
            format!("{key}.name"),
            "must be an SQL identifier: letters, digits and `_`, not starting with a digit",
        ));
    }
    if METADATA_COLUMNS
        .iter()
        .any(|m| m.eq_ignore_ascii_case(name))
    {
        errors.push(map.error(
            c.name.span(),
            format!("{key}.name"),
            format!("{name:?} is a column every row has already"),
        ));
    }
    let ty = SqlType::parse(c.ty.get_ref());
    if ty.is_none() {
        errors.push(map.error(
            c.ty.span(),
            format!("{key}.type"),
            format!(
                "{:?} is not a type: BOOLEAN, TINYINT, SMALLINT, INTEGER, BIGINT, REAL, DOUBLE, \
                 DECIMAL(p,s), VARCHAR(n), TIMESTAMP or DATE",
                c.ty.get_ref()
            ),
        ));
    }
    let source = match (format, &c.path) {
        (InputFormat::Json, None) => Some(ColumnSource::Json(vec![PathStep::Member(name.clone())])),
        (InputFormat::Json, Some(path)) => match parse_json_path(path.get_ref()) {
            Ok(steps) => Some(ColumnSource::Json(steps)),
            Err(why) => {
                errors.push(map.error(path.span(), format!("{key}.path"), why));
                None
            }
        },
        (_, None) => Some(ColumnSource::Position(index)),
        (_, Some(path)) => match path.get_ref().trim().parse::<usize>() {
            Ok(n) if n >= 1 => Some(ColumnSource::Position(n - 1)),
            _ => {
                errors.push(map.error(
                    path.span(),
                    format!("{key}.path"),
                    "a csv or tsv column's path is its field number, from 1",
                ));
                None
            }
        },
    };
    Some(ColumnSpec {
        name: name.clone(),
        ty: ty?,
        source: source?,
    })
}

/// Parses `$.a.b[0]["odd key"]`: member names and array indexes from the root.
pub fn parse_json_path(text: &str) -> Result<Vec<PathStep>, String> {
    let bad =
        |why: &str| format!("{text:?} is not a JSON path ({why}); expected e.g. \"$.a.b[0]\"");
    let mut rest = text
        .trim()
        .strip_prefix('$')
        .ok_or_else(|| bad("it must start with `$`"))?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let member = &after[..end];
            if member.is_empty() {
                return Err(bad("an empty member name"));
            }
            steps.push(PathStep::Member(member.to_string()));
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix("[\"") {
            let end = after.find("\"]").ok_or_else(|| bad("an unclosed [\""))?;
            steps.push(PathStep::Member(after[..end].to_string()));
            rest = &after[end + 2..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']').ok_or_else(|| bad("an unclosed ["))?;
            let index = after[..end]
                .trim()
                .parse()
                .map_err(|_| bad("an index must be a number"))?;
            steps.push(PathStep::Index(index));
            rest = &after[end + 1..];
        } else {
            return Err(bad("expected `.` or `[`"));
        }
        if steps.len() > 32 {
            return Err(bad("more than 32 steps"));
        }
    }
    if steps.is_empty() {
        return Err(bad("it names no member"));
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Sections};

    /// Loads a CDN with a real-time log to `cdn-logs`, streams `cdn-logs`, `orders` and
    /// `stats`, and `analytics` as the `[analytics]` section; the errors as text.
    fn load(analytics: &str) -> Result<AnalyticsConfig, String> {
        let text = format!(
            r#"[cdn]
http_listen = ["127.0.0.1:0"]
[cdn.realtime_logs]
stream = "cdn-logs"
fields = ["timestamp", "sc-status", "cs-uri-stem", "time-taken"]
[[cdn.distributions]]
id = "site"
hosts = ["localhost"]
[[cdn.distributions.origins]]
id = "app"
url = "http://127.0.0.1:9"
[[cdn.distributions.behaviors]]
path = "*"
origin = "app"
[stream]
listen = ["127.0.0.1:0"]
data_dir = "data"
[[stream.streams]]
name = "cdn-logs"
[[stream.streams]]
name = "orders"
[[stream.streams]]
name = "stats"
{analytics}
"#
        );
        Config::from_str_sections(&text, std::path::Path::new("edgewise.toml"), Sections::Cdn)
            .map(|c| c.analytics.expect("an [analytics] section"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn inputs_and_applications_read_with_defaults() {
        let analytics = load(
            r#"[analytics]
[[analytics.inputs]]
stream = "cdn-logs"
format = "cloudfront-realtime"
[[analytics.inputs]]
stream = "orders"
format = "json"
columns = [{ name = "amount", type = "DECIMAL(10,2)", path = "$.order.amount" }, { name = "item", type = "VARCHAR(32)" }]
[[analytics.applications]]
name = "status-per-minute"
inputs = ["cdn-logs"]
sql = "SELECT STREAM * FROM \"SOURCE_SQL_STREAM_001\";"
outputs = [{ sql_stream = "DEST", stream = "stats" }]
"#,
        )
        .unwrap();
        let logs = analytics.input("cdn-logs").unwrap();
        let names: Vec<&str> = logs.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["timestamp", "sc_status", "cs_uri_stem", "time_taken"]
        );
        assert_eq!(logs.columns[1].ty, SqlType::Integer);
        assert_eq!(logs.columns[3].source, ColumnSource::Position(3));
        let orders = analytics.input("orders").unwrap();
        assert_eq!(
            orders.columns[0].source,
            ColumnSource::Json(vec![
                PathStep::Member("order".into()),
                PathStep::Member("amount".into())
            ])
        );
        assert_eq!(
            orders.columns[1].source,
            ColumnSource::Json(vec![PathStep::Member("item".into())])
        );
        assert_eq!(analytics.applications[0].outputs[0].stream, "stats");
        assert_eq!(analytics.max_rows, DEFAULT_MAX_ROWS);
        assert_eq!(analytics.idle_shard_timeout, DEFAULT_IDLE_SHARD_TIMEOUT);
    }

    #[test]
    fn every_mistake_is_reported_at_its_key() {
        let errors = load(
            r#"[analytics]
max_rows = 0
[[analytics.inputs]]
stream = "nope"
format = "xml"
[[analytics.inputs]]
stream = "orders"
format = "json"
columns = [{ name = "ROWTIME", type = "INT" }, { name = "a", type = "INTEGR" }, { name = "b", type = "INT", path = "b" }]
[[analytics.inputs]]
stream = "stats"
format = "csv"
[[analytics.applications]]
name = "bad name"
inputs = ["cdn-logs"]
sql = " "
outputs = [{ sql_stream = "DEST", stream = "orders" }, { sql_stream = "DEST", stream = "cdn-logs" }]
"#,
        )
        .unwrap_err();
        for expected in [
            "analytics.max_rows: 0 is out of range",
            "analytics.inputs[0].stream: \"nope\" is not a [[stream.streams]] name",
            "analytics.inputs[0].format: \"xml\" is not a format",
            "analytics.inputs[1].columns[0].name: \"ROWTIME\" is a column every row has already",
            "analytics.inputs[1].columns[1].type: \"INTEGR\" is not a type",
            "analytics.inputs[1].columns[2].path: \"b\" is not a JSON path",
            "analytics.inputs[2].columns: a json, csv or tsv input needs columns",
            "analytics.applications[0].name: must be 1 to 120 letters",
            "analytics.applications[0].inputs[0]: \"cdn-logs\" has no [[analytics.inputs]] entry",
            "analytics.applications[0].sql: must not be empty",
            "analytics.applications[0].outputs[1].stream: an application may not write to its own input",
        ] {
            assert!(errors.contains(expected), "{expected:?} in:\n{errors}");
        }
    }

    #[test]
    fn kda_type_names_parse_and_print_back() {
        for (text, ty) in [
            ("INTEGER", SqlType::Integer),
            ("int", SqlType::Integer),
            ("BIGINT", SqlType::BigInt),
            ("VARCHAR(16)", SqlType::Varchar(Some(16))),
            ("varchar", SqlType::Varchar(None)),
            ("CHAR(3)", SqlType::Varchar(Some(3))),
            ("DECIMAL(10,2)", SqlType::Decimal(10, 2)),
            ("DOUBLE", SqlType::Double),
            ("REAL", SqlType::Real),
            ("TIMESTAMP", SqlType::Timestamp),
            ("BOOLEAN", SqlType::Boolean),
        ] {
            assert_eq!(SqlType::parse(text), Some(ty), "{text}");
            assert_eq!(SqlType::parse(&ty.sql_name()), Some(ty), "{text}");
        }
        for bad in [
            "",
            "INTEGR",
            "VARCHAR(0)",
            "VARCHAR(x)",
            "DECIMAL(10,20)",
            "INT(4)",
            "DECIMAL(99)",
        ] {
            assert_eq!(SqlType::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn json_paths_name_members_and_indexes() {
        use PathStep::{Index, Member};
        assert_eq!(parse_json_path("$.a").unwrap(), [Member("a".into())]);
        assert_eq!(
            parse_json_path("$.a.b[2][\"c d\"]").unwrap(),
            [
                Member("a".into()),
                Member("b".into()),
                Index(2),
                Member("c d".into())
            ]
        );
        for bad in ["a.b", "$", "$..a", "$.a[", "$.a[x]", "$[\"a", "$a"] {
            assert!(parse_json_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn application_names_are_stream_names() {
        assert!(valid_application_name("status-per-minute"));
        assert!(valid_application_name("a.b_c"));
        assert!(!valid_application_name(""));
        assert!(!valid_application_name("has space"));
        assert!(!valid_application_name(&"x".repeat(121)));
    }
}
