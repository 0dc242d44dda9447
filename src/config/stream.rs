//! `[stream]`: the Kinesis-compatible API's listeners and keys, the log's folder and fsync
//! policy, the configured streams and their Firehose-like deliveries.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::diag::{ConfigError, SourceMap};
use super::raw::{RawDelivery, RawStream, RawStreamSpec};
use super::units::ConfigDuration;

/// Kinesis's default retention.
const DEFAULT_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// Kinesis's longest retention (8,760 h).
const MAX_RETENTION: Duration = Duration::from_secs(8760 * 3600);
/// The config may go below Kinesis's 24 h floor (small disks); the API may not.
const MIN_RETENTION: Duration = Duration::from_secs(60);
const DEFAULT_FSYNC_INTERVAL: Duration = Duration::from_secs(1);
const DEFAULT_SEGMENT_SIZE: u64 = 64 << 20;
/// Shards per stream: enough for a homelab, bounded so a typo cannot open thousands of files.
pub const MAX_SHARDS: u32 = 256;
/// Firehose's defaults: 5 MiB or 300 s, whichever comes first.
const DEFAULT_BUFFER_SIZE: u64 = 5 << 20;
const DEFAULT_BUFFER_INTERVAL: Duration = Duration::from_secs(300);

/// Validated `[stream]`.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// The API over plain HTTP.
    pub listen: Vec<SocketAddr>,
    /// The API over HTTPS, with the `[[cdn.certs]]`.
    pub https_listen: Vec<SocketAddr>,
    /// Segment files, created streams and delivery checkpoints live here.
    pub data_dir: PathBuf,
    pub fsync: FsyncPolicy,
    /// A shard starts a new segment file past this many bytes. Defaults to 64 MiB.
    pub segment_size: u64,
    /// SigV4 credentials; none means only loopback clients are served, unsigned.
    pub access_keys: Vec<AccessKey>,
    /// CreateStream/DeleteStream through the API.
    pub allow_create_streams: bool,
    pub streams: Vec<StreamSpec>,
    pub deliveries: Vec<DeliverySpec>,
    /// Where records are kept: here, or a NATS JetStream cluster.
    pub backend: super::nats::Backend,
}

/// When appended records reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// A put is acknowledged only once its bytes are durable (group commit).
    Always,
    /// Acknowledged once written to the page cache; synced every interval. A crash loses
    /// at most the last interval of acknowledged records.
    Interval(Duration),
}

/// An access key id and its secret.
#[derive(Clone)]
pub struct AccessKey {
    pub id: String,
    pub secret: String,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A stream named in the config (streams created through the API live in `data_dir`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    pub name: String,
    pub shards: u32,
    pub retention: Duration,
}

/// Batches of a stream written to files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverySpec {
    pub stream: String,
    pub dir: PathBuf,
    pub buffer_size: u64,
    pub buffer_interval: Duration,
    pub compression: DeliveryCompression,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryCompression {
    None,
    Gzip,
}

/// Kinesis's stream name rule: 1–128 of `[a-zA-Z0-9_.-]`; `.` and `..` are refused too, as
/// a stream's name is its folder's name.
pub fn valid_stream_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Checks `[stream]`, pushing every problem onto `errors`.
pub(super) fn validate(
    raw: &RawStream,
    taken: &mut Vec<SocketAddr>,
    map: &SourceMap,
    base: &Path,
    errors: &mut Vec<ConfigError>,
) -> StreamConfig {
    let listen = super::cdn::addresses(&raw.listen, "stream.listen", taken, map, errors);
    let https_listen =
        super::cdn::addresses(&raw.https_listen, "stream.https_listen", taken, map, errors);
    if raw.listen.is_empty() && raw.https_listen.is_empty() {
        errors.push(map.error(
            raw.data_dir.span(),
            "stream",
            "needs at least one listener: listen or https_listen",
        ));
    }
    let data_dir = raw.data_dir.get_ref();
    if data_dir.is_empty() {
        errors.push(map.error(raw.data_dir.span(), "stream.data_dir", "must not be empty"));
    }
    let fsync = fsync_policy(raw, map, errors);
    let backend = super::nats::validate(raw, map, base, errors);
    if backend != super::nats::Backend::Local && raw.allow_create_streams == Some(true) {
        errors.push(map.error(
            raw.data_dir.span(),
            "stream.allow_create_streams",
            "with backend = \"nats\" the streams come from the config file, which every \
             edgewise-cdn in front of the cluster reads",
        ));
    }
    let segment_size = match &raw.segment_size {
        Some(s) if !(1 << 20..=1 << 30).contains(&s.get_ref().0) => {
            errors.push(map.error(
                s.span(),
                "stream.segment_size",
                "must be between 1MiB and 1GiB",
            ));
            DEFAULT_SEGMENT_SIZE
        }
        Some(s) => s.get_ref().0,
        None => DEFAULT_SEGMENT_SIZE,
    };
    let mut access_keys: Vec<AccessKey> = Vec::new();
    for (i, key) in raw.access_keys.iter().enumerate() {
        let path = format!("stream.access_keys[{i}]");
        let (id, secret) = (key.get_ref().id.get_ref(), key.get_ref().secret.get_ref());
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            errors.push(map.error(
                key.get_ref().id.span(),
                format!("{path}.id"),
                "must be letters and digits, as AWS access key ids are",
            ));
        }
        if secret.len() < 8 {
            errors.push(map.error(
                key.get_ref().secret.span(),
                format!("{path}.secret"),
                "must be at least 8 characters",
            ));
        }
        if access_keys.iter().any(|k| &k.id == id) {
            errors.push(map.error(
                key.get_ref().id.span(),
                format!("{path}.id"),
                format!("{id:?} is listed twice"),
            ));
        }
        access_keys.push(AccessKey {
            id: id.clone(),
            secret: secret.clone(),
        });
    }
    let mut streams: Vec<StreamSpec> = Vec::new();
    for (i, spec) in raw.streams.iter().enumerate() {
        if let Some(s) = stream_spec(spec.get_ref(), &format!("stream.streams[{i}]"), map, errors) {
            if streams.iter().any(|known| known.name == s.name) {
                errors.push(map.error(
                    spec.get_ref().name.span(),
                    format!("stream.streams[{i}].name"),
                    format!("{:?} is configured twice", s.name),
                ));
            }
            streams.push(s);
        }
    }
    let deliveries = raw
        .deliveries
        .iter()
        .enumerate()
        .filter_map(|(i, d)| {
            delivery(
                d.get_ref(),
                &format!("stream.deliveries[{i}]"),
                &streams,
                map,
                base,
                errors,
            )
        })
        .collect();
    StreamConfig {
        listen,
        https_listen,
        data_dir: base.join(data_dir),
        fsync,
        segment_size,
        access_keys,
        allow_create_streams: raw.allow_create_streams.unwrap_or(false),
        backend,
        streams,
        deliveries,
    }
}

fn fsync_policy(raw: &RawStream, map: &SourceMap, errors: &mut Vec<ConfigError>) -> FsyncPolicy {
    let interval = match &raw.fsync_interval {
        Some(d) if d.get_ref().0.is_zero() || d.get_ref().0 > Duration::from_secs(60) => {
            errors.push(map.error(
                d.span(),
                "stream.fsync_interval",
                "must be between 1ms and 60s",
            ));
            DEFAULT_FSYNC_INTERVAL
        }
        Some(d) => d.get_ref().0,
        None => DEFAULT_FSYNC_INTERVAL,
    };
    match raw.fsync.as_ref().map(|f| (f, f.get_ref().as_str())) {
        None | Some((_, "always")) => FsyncPolicy::Always,
        Some((_, "interval")) => FsyncPolicy::Interval(interval),
        Some((f, other)) => {
            errors.push(map.error(
                f.span(),
                "stream.fsync",
                format!("{other:?} is not \"always\" or \"interval\""),
            ));
            FsyncPolicy::Always
        }
    }
}

fn stream_spec(
    raw: &RawStreamSpec,
    key: &str,
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) -> Option<StreamSpec> {
    let name = raw.name.get_ref();
    if !valid_stream_name(name) {
        errors.push(map.error(
            raw.name.span(),
            format!("{key}.name"),
            format!("{name:?} is not a stream name (1-128 of letters, digits, _ . -)"),
        ));
        return None;
    }
    let shards = match &raw.shards {
        Some(n) if (1..=i64::from(MAX_SHARDS)).contains(n.get_ref()) => *n.get_ref() as u32,
        Some(n) => {
            errors.push(map.error(
                n.span(),
                format!("{key}.shards"),
                format!("{} is out of range (1 to {MAX_SHARDS})", n.get_ref()),
            ));
            return None;
        }
        None => 1,
    };
    let retention = retention(
        raw.retention.as_ref(),
        &format!("{key}.retention"),
        map,
        errors,
    );
    Some(StreamSpec {
        name: name.clone(),
        shards,
        retention,
    })
}

fn retention(
    raw: Option<&Spanned<ConfigDuration>>,
    key: &str,
    map: &SourceMap,
    errors: &mut Vec<ConfigError>,
) -> Duration {
    match raw {
        Some(d) if !(MIN_RETENTION..=MAX_RETENTION).contains(&d.get_ref().0) => {
            errors.push(map.error(d.span(), key, "must be between 1m and 8760h (365d)"));
            DEFAULT_RETENTION
        }
        Some(d) => d.get_ref().0,
        None => DEFAULT_RETENTION,
    }
}

fn delivery(
    raw: &RawDelivery,
    key: &str,
    streams: &[StreamSpec],
    map: &SourceMap,
    base: &Path,
    errors: &mut Vec<ConfigError>,
) -> Option<DeliverySpec> {
    let stream = raw.stream.get_ref();
    if !streams.iter().any(|s| &s.name == stream) {
        errors.push(map.error(
            raw.stream.span(),
            format!("{key}.stream"),
            format!("{stream:?} is not a [[stream.streams]] name"),
        ));
        return None;
    }
    // Firehose's bounds: 1-128 MiB and 0-900 s; we allow smaller buffers for small setups.
    let buffer_size = match &raw.buffer_size {
        Some(s) if !(1..=128 << 20).contains(&s.get_ref().0) => {
            errors.push(map.error(
                s.span(),
                format!("{key}.buffer_size"),
                "must be between 1B and 128MiB",
            ));
            return None;
        }
        Some(s) => s.get_ref().0,
        None => DEFAULT_BUFFER_SIZE,
    };
    let buffer_interval = match &raw.buffer_interval {
        Some(d) if d.get_ref().0 > Duration::from_secs(900) || d.get_ref().0.is_zero() => {
            errors.push(map.error(
                d.span(),
                format!("{key}.buffer_interval"),
                "must be between 1ms and 900s",
            ));
            return None;
        }
        Some(d) => d.get_ref().0,
        None => DEFAULT_BUFFER_INTERVAL,
    };
    let compression = match raw.compression.as_ref().map(|c| (c, c.get_ref().as_str())) {
        None | Some((_, "none")) => DeliveryCompression::None,
        Some((_, "gzip")) => DeliveryCompression::Gzip,
        Some((c, other)) => {
            errors.push(map.error(
                c.span(),
                format!("{key}.compression"),
                format!("{other:?} is not \"gzip\" or \"none\""),
            ));
            return None;
        }
    };
    if raw.dir.get_ref().is_empty() {
        errors.push(map.error(raw.dir.span(), format!("{key}.dir"), "must not be empty"));
        return None;
    }
    Some(DeliverySpec {
        stream: stream.clone(),
        dir: base.join(raw.dir.get_ref()),
        buffer_size,
        buffer_interval,
        compression,
    })
}
