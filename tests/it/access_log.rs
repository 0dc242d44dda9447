//! `[cdn] access_log`: the in-process CDN writing every field of the real-time log record
//! to a file, as text and as JSON; and the real edgewise-cdn binary reopening its file on
//! SIGUSR1 after the file was moved, as logrotate does.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use edgewise::config::realtime_logs::LOG_FIELDS;
use http::Method;

use crate::cdn_harness::*;
use crate::cdn_process::{Server, curl, example_copy};
use crate::query_log::lines;

/// A text line by CloudFront field name.
fn fields(line: &str) -> HashMap<&'static str, String> {
    let values: Vec<&str> = line.split('\t').collect();
    assert_eq!(values.len(), LOG_FIELDS.len(), "every field: {line:?}");
    LOG_FIELDS
        .iter()
        .zip(values)
        .map(|((_, name), value)| (*name, value.to_string()))
        .collect()
}

async fn site_with_log(log: &str) -> (Origin, Cdn) {
    let origin = Origin::start().await;
    origin.route("/page", Reply::ok("hello").cc("max-age=60"));
    let settings = format!("access_log = {{ {log} }}");
    let cdn = Cdn::start(&config(&settings, &site(&origin.url(), ""))).await;
    (origin, cdn)
}

#[tokio::test]
async fn text_lines_carry_the_real_time_log_fields_of_each_response() {
    let (_origin, cdn) = site_with_log(r#"to = "logs/access.log""#).await;
    assert_eq!(cdn.get("/page").send().await.status, 200);
    assert_eq!(
        cdn.get("/page?x=1")
            .header("user-agent", "a b\"c")
            .send()
            .await
            .status,
        200
    );
    assert_eq!(cdn.get("/missing").send().await.status, 404);
    let lines = lines(&cdn.dir.path().join("logs/access.log"), 3).await;
    let [miss, hit, missing] = [0, 1, 2].map(|i| fields(&lines[i]));
    assert_eq!(miss["cs-method"], "GET");
    assert_eq!(miss["cs-uri-stem"], "/page");
    assert_eq!(miss["sc-status"], "200");
    assert_eq!(miss["x-edge-result-type"], "Miss");
    assert_eq!(miss["c-ip"], "127.0.0.1");
    assert_eq!(miss["primary-distribution-id"], "site");
    assert_eq!(miss["cs-protocol"], "https");
    assert_eq!(hit["x-edge-result-type"], "Hit");
    assert_eq!(hit["cs-uri-query"], "x=1");
    assert_eq!(
        hit["cs-user-agent"], "a%20b%22c",
        "escaped as the real-time log does"
    );
    assert_eq!(missing["sc-status"], "404");
    assert_ne!(miss["x-edge-request-id"], hit["x-edge-request-id"]);
    // The writer counts a batch once it is written: the lines can be read a moment before.
    let written = "edgewise_cdn_access_log_lines_total{result=\"written\"} 3";
    let deadline = Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        let metrics = cdn
            .admin(Method::GET, "/metrics", Some(ADMIN_TOKEN), "")
            .await
            .text();
        if metrics.lines().any(|l| l == written) || Instant::now() > deadline {
            break metrics;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for line in [
        written,
        "edgewise_cdn_access_log_lines_total{result=\"dropped\"} 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    }
    assert!(
        !metrics.contains("edgewise_realtime_log_records"),
        "no real-time log is configured:\n{metrics}"
    );
}

#[tokio::test]
async fn json_lines_are_objects_keyed_by_field_name() {
    let (_origin, cdn) = site_with_log(r#"to = "access.json", format = "json""#).await;
    assert_eq!(cdn.get("/page").send().await.status, 200);
    let lines = lines(&cdn.dir.path().join("access.json"), 1).await;
    let record: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    let object = record.as_object().unwrap();
    assert_eq!(object.len(), LOG_FIELDS.len());
    assert_eq!(record["sc-status"], 200);
    assert_eq!(record["cs-uri-stem"], "/page");
    assert_eq!(record["x-edge-result-type"], "Miss");
    assert_eq!(record["cs-uri-query"], serde_json::Value::Null);
    assert!(record["timestamp"].as_f64().unwrap() > 1.7e9);
    assert!(record["sc-bytes"].as_u64().unwrap() > 5);
}

#[tokio::test]
async fn sample_zero_writes_nothing() {
    let (_origin, cdn) = site_with_log(r#"to = "access.log", sample = 0.0"#).await;
    for _ in 0..10 {
        assert_eq!(cdn.get("/page").send().await.status, 200);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let text = std::fs::read_to_string(cdn.dir.path().join("access.log")).unwrap_or_default();
    assert_eq!(text, "");
}

#[tokio::test]
async fn sigusr1_reopens_the_log_file_after_logrotate_moved_it() {
    let (dir, path) = example_copy();
    let text = std::fs::read_to_string(&path).unwrap();
    let token = "admin_token = \"change-me\"";
    assert!(text.contains(token));
    let with_log = text.replace(
        token,
        &format!("{token}\naccess_log = {{ to = \"../logs/access.log\" }}"),
    );
    std::fs::write(&path, with_log).unwrap();
    let log = dir.path().join("logs/access.log");
    let rotated = dir.path().join("logs/access.log.1");

    let server = Server::start(&path);
    let url = format!("https://localhost:{}/", server.https);
    let get = |query: &str| curl(&["-sk", "-o", "/dev/null", &format!("{url}?{query}")]);
    for query in ["before=1", "before=2"] {
        get(query);
    }
    assert_eq!(lines(&log, 2).await.len(), 2);
    std::fs::rename(&log, &rotated).unwrap();
    server.kill("-USR1");
    server.log_line("SIGUSR1 received, reopening");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !log.exists() {
        assert!(Instant::now() < deadline, "no new {}", log.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for query in ["after=1", "after=2", "after=3"] {
        get(query);
    }
    let new = lines(&log, 3).await;
    let old = lines(&rotated, 2).await;
    for (lines, want) in [(&old, "before="), (&new, "after=")] {
        for line in lines.iter() {
            assert!(fields(line)["cs-uri-query"].starts_with(want), "{line}");
        }
    }
    assert_eq!(server.signal("-TERM").code(), Some(0));
}

#[test]
fn check_probes_that_the_log_file_can_be_written() {
    let (dir, path) = example_copy();
    std::fs::write(dir.path().join("in-the-way"), "a file, not a folder").unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let token = "admin_token = \"change-me\"";
    let with_log = text.replace(
        token,
        &format!("{token}\naccess_log = {{ to = \"../in-the-way/access.log\" }}"),
    );
    std::fs::write(&path, with_log).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_edgewise-cdn"))
        .args(["--config", path.to_str().unwrap(), "check"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cdn.access_log.to: ") && stderr.contains("in-the-way is not a folder"),
        "{stderr}"
    );
}
