//! The stream API with real boto3 (SigV4-signed JSON 1.1): `tests/it/stream/boto3_e2e.py`
//! drives every supported operation and the auth errors against an in-process server with
//! access keys, on the local backend and on NATS JetStream, asserting in Python. boto3 must be installed; a missing boto3 fails the test.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;

use crate::stream_harness::*;

const KEY_ID: &str = "AKIDEDGEWISETEST";
const SECRET: &str = "test-secret-for-boto3";
/// The whole script: a few hundred requests, plus interpreter and boto3 start-up.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

fn signed_config() -> String {
    config(
        &format!(
            "allow_create_streams = true\naccess_keys = [{{ id = \"{KEY_ID}\", secret = \"{SECRET}\" }}]"
        ),
        "[[stream.streams]]\nname = \"cfg\"\nshards = 2\n",
    )
}

#[tokio::test]
async fn stream_with_access_keys_unsigned_requests_are_refused() {
    let streams = Streams::start(&signed_config()).await;
    let (status, out) = streams.call("ListStreams", json!({})).await;
    assert_eq!(status, 403, "{out}");
    assert_eq!(
        out["__type"], "MissingAuthenticationTokenException",
        "{out}"
    );
    let response = streams.post("/ingest/cfg", "{}\n").await;
    assert_eq!(response.status, 403, "{}", response.text());
    streams.read_all_unsigned_is_refused().await;
}

impl Streams {
    /// With keys configured, even loopback clients must sign GetShardIterator.
    async fn read_all_unsigned_is_refused(&self) {
        let (status, out) = self
            .call(
                "GetShardIterator",
                json!({"StreamName": "cfg", "ShardId": "shardId-000000000000", "ShardIteratorType": "TRIM_HORIZON"}),
            )
            .await;
        assert_eq!(
            (status, out["__type"].as_str()),
            (403, Some("MissingAuthenticationTokenException")),
            "{out}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_boto3_end_to_end() {
    boto3_end_to_end(Backend::Local).await;
}

/// The same script on a NATS JetStream server, its stream configured rather than created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_boto3_end_to_end_on_nats() {
    boto3_end_to_end(Backend::Nats).await;
}

async fn boto3_end_to_end(backend: Backend) {
    let (config, mode) = match backend {
        Backend::Local => (signed_config(), None),
        Backend::Nats => {
            let stream = "\n[[stream.streams]]\nname = \"py-stream\"\nshards = 2\n";
            (signed_config() + stream, Some("configured"))
        }
    };
    let streams = Streams::start_on(backend, &config).await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/stream/boto3_e2e.py");
    let endpoint = format!("http://{}", streams.http);
    let child = tokio::process::Command::new("python3")
        .arg(&script)
        .args([&endpoint, KEY_ID, SECRET])
        .args(mode)
        // No ambient AWS settings may leak into the script's clients.
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_KINESIS")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run python3 (needed with boto3 for this test; pip install boto3): {e}")
        });
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{} did not finish within {SCRIPT_TIMEOUT:?}",
                script.display()
            )
        })
        .expect("the boto3 script's output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.code() == Some(3) {
        panic!("boto3 is required for this test and is missing (pip install boto3):\n{stderr}");
    }
    assert!(
        output.status.success(),
        "{} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        script.display(),
        output.status
    );
    assert!(stdout.contains("all checks passed"), "{stdout}\n{stderr}");
    // The server saw signed traffic and is still healthy. (Records are counted per stream
    // and shard, and the script deletes its stream: count the requests instead.)
    assert!(streams.metric("edgewise_stream_requests_total").await >= 43);
}
