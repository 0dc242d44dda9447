//! `[stream]` and `[cdn.realtime_logs]` validation: every mistake reported with its key
//! path, and the defaults a minimal section gets.

use std::time::Duration;

use edgewise::config::Config;
use edgewise::config::realtime_logs::LogField;
use edgewise::config::stream::{DeliveryCompression, FsyncPolicy};

use crate::config_check::errors_of;
use crate::harness::write_files;

/// The one distribution a `[cdn]` section needs, for configs about something else.
const DISTRIBUTION: &str = r#"[[cdn.distributions]]
id = "site"
hosts = ["localhost"]

[[cdn.distributions.origins]]
id = "app"
url = "http://127.0.0.1:9"

[[cdn.distributions.behaviors]]
path = "*"
origin = "app"
"#;

/// The key paths of every error `config` gets.
fn error_keys(config: &str) -> Vec<String> {
    let (errors, _, _dir) = errors_of(config, &[]);
    errors.into_iter().map(|e| e.key_path).collect()
}

#[test]
fn a_minimal_stream_section_gets_kinesis_defaults() {
    let (_dir, path) = write_files(
        r#"[stream]
listen = ["127.0.0.1:0"]
data_dir = "data"

[[stream.streams]]
name = "events"
"#,
        &[],
    );
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let stream = config.stream.expect("[stream]");
    assert_eq!(stream.fsync, FsyncPolicy::Always);
    assert!(!stream.allow_create_streams);
    assert!(stream.access_keys.is_empty());
    assert_eq!(stream.data_dir, path.parent().unwrap().join("data"));
    assert_eq!(stream.streams[0].shards, 1);
    assert_eq!(stream.streams[0].retention, Duration::from_secs(24 * 3600));
}

#[test]
fn deliveries_and_real_time_logs_are_read_with_their_defaults() {
    let (_dir, path) = write_files(
        &format!(
            r#"[stream]
listen = ["127.0.0.1:0"]
data_dir = "data"
fsync = "interval"
fsync_interval = "250ms"

[[stream.streams]]
name = "cdn-logs"
shards = 2

[[stream.deliveries]]
stream = "cdn-logs"
dir = "out"
compression = "gzip"

[cdn]
http_listen = ["127.0.0.1:0"]

[cdn.realtime_logs]
stream = "cdn-logs"
fields = ["timestamp", "sc-status", "cs-uri-stem"]

{DISTRIBUTION}"#
        ),
        &[],
    );
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let stream = config.stream.expect("[stream]");
    assert_eq!(
        stream.fsync,
        FsyncPolicy::Interval(Duration::from_millis(250))
    );
    let delivery = &stream.deliveries[0];
    assert_eq!(delivery.compression, DeliveryCompression::Gzip);
    assert_eq!(delivery.buffer_size, 5 << 20, "Firehose's 5 MiB");
    assert_eq!(delivery.buffer_interval, Duration::from_secs(300));
    let logs = config
        .cdn
        .expect("[cdn]")
        .realtime_logs
        .expect("realtime_logs");
    assert_eq!(logs.sampling_percent, 100);
    assert_eq!(
        logs.fields,
        [LogField::Timestamp, LogField::Status, LogField::UriStem]
    );
}

#[test]
fn every_stream_mistake_is_reported_with_its_key() {
    let keys = error_keys(
        r#"[stream]
listen = ["127.0.0.1:4567", "nowhere"]
https_listen = ["127.0.0.1:4568"]
data_dir = "data"
fsync = "sometimes"
segment_size = "1KiB"
access_keys = [{ id = "AK-1", secret = "short" }]

[[stream.streams]]
name = ".."
[[stream.streams]]
name = "events"
shards = 0
[[stream.streams]]
name = "logs"
retention = "9000h"
[[stream.streams]]
name = "dup"
[[stream.streams]]
name = "dup"

[[stream.deliveries]]
stream = "missing"
dir = "out"
[[stream.deliveries]]
stream = "logs"
dir = "out"
compression = "zip"
"#,
    );
    for key in [
        "stream.listen[1]",
        "stream.https_listen",
        "stream.fsync",
        "stream.segment_size",
        "stream.access_keys[0].id",
        "stream.access_keys[0].secret",
        "stream.streams[0].name",
        "stream.streams[1].shards",
        "stream.streams[2].retention",
        "stream.streams[4].name",
        "stream.deliveries[0].stream",
        "stream.deliveries[1].compression",
    ] {
        assert!(keys.iter().any(|k| k == key), "no error at {key}: {keys:?}");
    }
    assert_eq!(keys.len(), 12, "{keys:?}");
}

#[test]
fn real_time_logs_need_a_configured_stream_and_known_fields() {
    let keys = error_keys(&format!(
        r#"[cdn]
http_listen = ["127.0.0.1:0"]

[cdn.realtime_logs]
stream = "nope"
sampling_percent = 0
fields = ["timestamp", "c-favourite-colour"]

{DISTRIBUTION}"#
    ));
    let mut keys = keys;
    keys.sort();
    assert_eq!(
        keys,
        [
            "cdn.realtime_logs.fields[1]",
            "cdn.realtime_logs.sampling_percent",
            "cdn.realtime_logs.stream",
        ],
        "{keys:?}"
    );
}

#[test]
fn stream_listeners_may_not_take_the_cdns_addresses() {
    let keys = error_keys(&format!(
        r#"[cdn]
http_listen = ["127.0.0.1:18080"]

{DISTRIBUTION}
[stream]
listen = ["127.0.0.1:18080"]
data_dir = "data"
"#
    ));
    assert_eq!(keys, ["stream.listen[0]"], "{keys:?}");
}

#[test]
fn nats_backend_mistakes_are_reported_with_their_keys() {
    let section =
        |keys: &str| format!("[stream]\nlisten = [\"127.0.0.1:0\"]\ndata_dir = \"data\"\n{keys}\n");
    for (keys, want) in [
        ("backend = \"kafka\"", vec!["stream.backend"]),
        ("backend = \"nats\"", vec!["stream.nats"]),
        (
            "nats = { servers = [\"nats://127.0.0.1:4222\"] }",
            vec!["stream.nats"],
        ),
        (
            "backend = \"nats\"\nnats = { servers = [\"http://x:1\", \"nats://127.0.0.1:4222\"], replicas = 7 }",
            vec!["stream.nats.servers[0]", "stream.nats.replicas"],
        ),
        (
            "backend = \"nats\"\nnats = { servers = [\"nats://127.0.0.1:4222\"], user = \"u\" }",
            vec!["stream.nats"],
        ),
        (
            "backend = \"nats\"\nallow_create_streams = true\nnats = { servers = [\"nats://127.0.0.1:4222\"] }",
            vec!["stream.allow_create_streams"],
        ),
        (
            "backend = \"nats\"\nnats = { servers = [\"nats://a:4222\"], user = \"u\", password = \"p\", nkey = \"u.nk\" }",
            vec!["stream.nats"],
        ),
        (
            "backend = \"nats\"\nnats = { servers = [\"nats://a:4222\"], creds = \"missing.creds\" }",
            vec!["stream.nats.creds"],
        ),
        (
            "backend = \"nats\"\nnats = { servers = [\"nats://a:4222\"], nkey = \"missing.nk\", tls = { ca = \"missing.pem\" } }",
            vec!["stream.nats.nkey", "stream.nats.tls.ca"],
        ),
        (
            "backend = \"nats\"\nnats = { servers = [\"nats://a:4222\"], tls = { cert = \"c.pem\" } }",
            vec!["stream.nats.tls"],
        ),
    ] {
        assert_eq!(error_keys(&section(keys)), want, "{keys}");
    }
    let (_dir, path) = write_files(
        &section(
            "backend = \"nats\"\nnats = { servers = [\"nats://127.0.0.1:4222\"], replicas = 3, user = \"u\", password = \"p\" }",
        ),
        &[],
    );
    let stream = Config::load(&path).unwrap().stream.unwrap();
    let edgewise::config::nats::Backend::Nats(nats) = stream.backend else {
        panic!("{:?}", stream.backend);
    };
    assert_eq!(nats.servers, ["nats://127.0.0.1:4222"]);
    assert_eq!(nats.replicas, 3);
    assert!(
        !format!("{nats:?}").contains("\"p\""),
        "the password is redacted"
    );

    let (dir, path) = write_files(
        &section(
            "backend = \"nats\"\nnats = { servers = [\"tls://127.0.0.1:4222\"], creds = \"nats/ew.creds\", tls = { ca = \"nats/ca.pem\", cert = \"nats/c.pem\", key = \"nats/c.key\" } }",
        ),
        &[
            ("nats/ew.creds", "creds"),
            ("nats/ca.pem", "ca"),
            ("nats/c.pem", "cert"),
            ("nats/c.key", "key"),
        ],
    );
    let stream = Config::load(&path).unwrap().stream.unwrap();
    let edgewise::config::nats::Backend::Nats(nats) = stream.backend else {
        panic!("{:?}", stream.backend);
    };
    let at = |name: &str| dir.path().join(name);
    assert_eq!(
        nats.auth,
        edgewise::config::nats::NatsAuth::Creds(at("nats/ew.creds"))
    );
    let tls = nats.tls.expect("tls");
    assert_eq!(tls.ca, Some(at("nats/ca.pem")));
    assert_eq!(tls.client, Some((at("nats/c.pem"), at("nats/c.key"))));
}
