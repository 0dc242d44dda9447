//! One-shot SQL over the streams (`POST /analytics/query`): a JSON input's columns, a
//! stream without an input as text, ROWTIME bounds, CSV output, the row limit, records that
//! do not fit counted, and statements that are not queries refused.

use serde_json::{Value, json};

use crate::stream_harness::*;

/// Streams `orders` (JSON input) and `notes` (no input), 2 shards each, and `[analytics]`
/// with the extra keys `settings`.
fn analytics_config(settings: &str) -> String {
    let streams = r#"
[[stream.streams]]
name = "orders"
shards = 2
[[stream.streams]]
name = "notes"
shards = 2

[analytics]
SETTINGS
[[analytics.inputs]]
stream = "orders"
format = "json"
columns = [
  { name = "item", type = "VARCHAR(16)" },
  { name = "amount", type = "DECIMAL(10,2)", path = "$.price.amount" },
  { name = "qty", type = "INTEGER" },
]
"#
    .replace("SETTINGS", settings);
    config("", &streams)
}

async fn query(streams: &Streams, sql: &str, format: Option<&str>) -> (u16, String) {
    let mut body = json!({ "sql": sql });
    if let Some(format) = format {
        body["format"] = format.into();
    }
    let response = streams
        .post("/analytics/query", serde_json::to_vec(&body).unwrap())
        .await;
    (response.status, response.text())
}

async fn rows(streams: &Streams, sql: &str) -> Value {
    let (status, text) = query(streams, sql, None).await;
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

async fn put_orders(streams: &Streams) {
    for (i, (item, amount, qty)) in [
        ("apple", "1.25", 3),
        ("pear", "2.00", 1),
        ("apple", "1.25", 2),
        ("fig", "0.50", 10),
    ]
    .into_iter()
    .enumerate()
    {
        let record = json!({"item": item, "price": {"amount": amount}, "qty": qty});
        streams
            .put("orders", &format!("key-{i}"), record.to_string().as_bytes())
            .await;
    }
}

#[tokio::test]
async fn a_json_input_is_a_table_with_its_columns_and_the_metadata() {
    let streams = Streams::start(&analytics_config("")).await;
    put_orders(&streams).await;
    let out = rows(
        &streams,
        r#"SELECT item, SUM(amount * qty) AS total, COUNT(DISTINCT shard_id) > 0 AS sharded
           FROM orders GROUP BY item ORDER BY item"#,
    )
    .await;
    assert_eq!(
        out["rows"],
        json!([
            {"item": "apple", "total": 6.25, "sharded": true},
            {"item": "fig", "total": 5.0, "sharded": true},
            {"item": "pear", "total": 2.0, "sharded": true},
        ]),
        "{out}"
    );
    assert_eq!(out["row_count"], 3);
    assert_eq!(out["truncated"], false);
    let names: Vec<&str> = out["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["item", "total", "sharded"]);
    let meta = rows(
        &streams,
        "SELECT partition_key, sequence_number, ROWTIME FROM orders WHERE qty = 10",
    )
    .await;
    assert_eq!(meta["rows"][0]["partition_key"], "key-3");
    assert!(meta["rows"][0]["sequence_number"].as_str().unwrap().len() > 19);
}

#[tokio::test]
async fn a_stream_without_an_input_reads_as_text_and_tables_lists_both() {
    let streams = Streams::start(&analytics_config("")).await;
    streams.put("notes", "k", b"hello analytics").await;
    let out = rows(&streams, "SELECT upper(data) AS loud FROM notes").await;
    assert_eq!(out["rows"], json!([{"loud": "HELLO ANALYTICS"}]));
    let tables = streams.get("/analytics/tables").await;
    assert_eq!(tables.status, 200);
    let tables: Value = serde_json::from_slice(&tables.body).unwrap();
    let formats: Vec<(&str, &str)> = tables["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["format"].as_str().unwrap()))
        .collect();
    assert!(formats.contains(&("orders", "json")), "{tables}");
    assert!(formats.contains(&("notes", "text")), "{tables}");
}

#[tokio::test]
async fn rowtime_bounds_select_by_arrival() {
    let streams = Streams::start(&analytics_config("")).await;
    streams
        .put("orders", "a", br#"{"item": "early", "qty": 1}"#)
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let between = rows(&streams, "SELECT max(ROWTIME) AS t FROM orders").await;
    let cut = between["rows"][0]["t"].as_str().unwrap().to_string();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    streams
        .put("orders", "b", br#"{"item": "late", "qty": 2}"#)
        .await;
    let late = rows(
        &streams,
        &format!("SELECT item FROM orders WHERE ROWTIME > TIMESTAMP '{cut}'"),
    )
    .await;
    assert_eq!(late["rows"], json!([{"item": "late"}]));
    let early = rows(
        &streams,
        &format!("SELECT item FROM orders WHERE ROWTIME <= TIMESTAMP '{cut}'"),
    )
    .await;
    assert_eq!(early["rows"], json!([{"item": "early"}]));
}

#[tokio::test]
async fn csv_output_and_the_row_limit() {
    let streams = Streams::start(&analytics_config("max_rows = 2")).await;
    put_orders(&streams).await;
    let (status, csv) = query(
        &streams,
        "SELECT item, qty FROM orders ORDER BY qty DESC",
        Some("csv"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(csv, "item,qty\nfig,10\napple,3\n");
    let out = rows(&streams, "SELECT item FROM orders").await;
    assert_eq!(out["row_count"], 2);
    assert_eq!(out["truncated"], true);
}

#[tokio::test]
async fn records_that_do_not_fit_are_counted_not_hidden() {
    let streams = Streams::start(&analytics_config("")).await;
    put_orders(&streams).await;
    streams.put("orders", "bad", b"not json at all").await;
    streams.put("orders", "bad", br#"{"qty": "many"}"#).await;
    let out = rows(&streams, "SELECT count(*) AS n FROM orders").await;
    assert_eq!(out["rows"], json!([{"n": 4}]));
    assert_eq!(out["rejected_records"], 2);
}

#[tokio::test]
async fn only_queries_run_and_mistakes_say_why() {
    let streams = Streams::start(&analytics_config("")).await;
    for (sql, why) in [
        ("SELECT nope FROM orders", "nope"),
        ("SELECT * FROM missing", "missing"),
        ("CREATE TABLE t AS SELECT 1", "DDL not supported"),
        ("COPY (SELECT 1) TO '/tmp/x.csv'", "DML not supported"),
        ("SET datafusion.execution.batch_size = 1", "not supported"),
        ("SELEC 1", "SELEC"),
    ] {
        let (status, text) = query(&streams, sql, None).await;
        assert_eq!(status, 400, "{sql}: {text}");
        let error: Value = serde_json::from_str(&text).unwrap();
        let message = error["error"].as_str().unwrap();
        assert!(message.contains(why), "{sql}: {message}");
    }
    let (status, text) = query(&streams, "SELECT 1", Some("xml")).await;
    assert_eq!(status, 400, "{text}");
    let bad = streams.post("/analytics/query", "{\"sq\": 1}").await;
    assert_eq!(bad.status, 400);
    assert!(!std::path::Path::new("/tmp/x.csv").exists());
}

#[tokio::test]
async fn without_an_analytics_section_the_paths_say_so() {
    let streams = Streams::start(&with_stream("s", 1)).await;
    let response = streams
        .post("/analytics/query", r#"{"sql": "SELECT 1"}"#)
        .await;
    assert_eq!(response.status, 404);
    assert!(response.text().contains("no [analytics] section"));
}

#[tokio::test]
async fn discover_proposes_columns_that_load_and_query() {
    let streams = Streams::start(&analytics_config("")).await;
    for i in 0..30 {
        let record = json!({
            "kind": if i % 3 == 0 { "click" } else { "view" },
            "value": f64::from(i) / 2.0,
            "user": {"id": i, "country": "KR"},
            "at": "2026-12-05T08:00:00Z",
        });
        streams
            .put("notes", &format!("k{i}"), record.to_string().as_bytes())
            .await;
    }
    let response = streams
        .post("/analytics/discover", r#"{"stream": "notes"}"#)
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    let found: Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(found["format"], "json");
    assert_eq!(found["records_read"], 30);
    let columns: Vec<(&str, &str, &str)> = found["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap(),
                c["type"].as_str().unwrap(),
                c["path"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        columns.contains(&("kind", "VARCHAR(8)", "$.kind")),
        "{columns:?}"
    );
    assert!(
        columns.contains(&("value", "DOUBLE", "$.value")),
        "{columns:?}"
    );
    assert!(
        columns.contains(&("user_id", "INTEGER", "$.user.id")),
        "{columns:?}"
    );
    assert!(
        columns.contains(&("at", "TIMESTAMP", "$.at")),
        "{columns:?}"
    );
    // The proposed input, added to the config, reads the stream.
    let toml = found["toml"].as_str().unwrap();
    let restarted = {
        let path = streams.config_path();
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push('\n');
        text.push_str(toml);
        std::fs::write(&path, text).unwrap();
        streams.restart().await
    };
    let out = rows(
        &restarted,
        "SELECT kind, count(*) AS n, max(user_id) AS top FROM notes GROUP BY kind ORDER BY kind",
    )
    .await;
    assert_eq!(
        out["rows"],
        json!([{"kind": "click", "n": 10, "top": 27}, {"kind": "view", "n": 20, "top": 29}])
    );
    let missing = restarted
        .post("/analytics/discover", r#"{"stream": "nope"}"#)
        .await;
    assert_eq!(missing.status, 404);
    let empty = restarted
        .post("/analytics/discover", r#"{"stream": "orders"}"#)
        .await;
    assert_eq!(empty.status, 400, "{}", empty.text());
}
