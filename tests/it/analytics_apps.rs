//! Continuous applications end to end: records put through the Kinesis API, KDA SQL run by
//! the application, its rows read back from the output stream through the API. Each
//! window's rows are checked against the same aggregation run once as a one-shot query on
//! the input (`POST /analytics/query`): equal, and each exactly once — also across a
//! restart.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::stream_harness::*;

/// `orders` (JSON, 2 shards) feeding a per-second tumbling count, a row-by-row filter and a
/// sliding 2-second sum.
fn apps_config() -> String {
    config(
        "",
        r#"
[[stream.streams]]
name = "orders"
shards = 2
[[stream.streams]]
name = "per-second"
shards = 1
[[stream.streams]]
name = "big-orders"
shards = 1
[[stream.streams]]
name = "running"
shards = 1
[[stream.streams]]
name = "hopping"
shards = 1

[analytics]
idle_shard_timeout = "300ms"
[[analytics.inputs]]
stream = "orders"
format = "json"
columns = [{ name = "item", type = "VARCHAR(16)" }, { name = "qty", type = "INTEGER" }]

[[analytics.applications]]
name = "per-second"
inputs = ["orders"]
sql = """
CREATE OR REPLACE STREAM "DEST" (item VARCHAR(16), orders BIGINT, units INTEGER);
CREATE OR REPLACE PUMP "P" AS INSERT INTO "DEST"
  SELECT STREAM item, COUNT(*), SUM(qty) FROM "SOURCE_SQL_STREAM_001"
  GROUP BY item, STEP("SOURCE_SQL_STREAM_001".ROWTIME BY INTERVAL '1' SECOND);
"""
outputs = [{ sql_stream = "DEST", stream = "per-second" }]

[[analytics.applications]]
name = "big"
inputs = ["orders"]
sql = """
CREATE OR REPLACE STREAM "BIG" (item VARCHAR(16), qty INTEGER);
CREATE OR REPLACE PUMP "P" AS INSERT INTO "BIG"
  SELECT STREAM item, qty FROM "SOURCE_SQL_STREAM_001" WHERE qty >= 5;
"""
outputs = [{ sql_stream = "BIG", stream = "big-orders" }]

[[analytics.applications]]
name = "running"
inputs = ["orders"]
sql = """
CREATE OR REPLACE STREAM "RUNNING" (item VARCHAR(16), qty INTEGER, last_2s BIGINT);
CREATE OR REPLACE PUMP "P" AS INSERT INTO "RUNNING"
  SELECT STREAM item, qty, SUM(qty) OVER W FROM "SOURCE_SQL_STREAM_001"
  WINDOW W AS (PARTITION BY item RANGE INTERVAL '2' SECOND PRECEDING);
"""
outputs = [{ sql_stream = "RUNNING", stream = "running" }]

[[analytics.applications]]
name = "hopping"
inputs = ["orders"]
sql = """
CREATE OR REPLACE STREAM "H" (item VARCHAR(16), end_ms BIGINT, orders BIGINT);
CREATE OR REPLACE PUMP "P" AS INSERT INTO "H"
  SELECT item, CAST(window_end AS BIGINT), COUNT(*)
  FROM TABLE(HOP(TABLE "SOURCE_SQL_STREAM_001", DESCRIPTOR(ROWTIME),
                 INTERVAL '1' SECOND, INTERVAL '2' SECOND))
  GROUP BY item, window_start, window_end;
"""
outputs = [{ sql_stream = "H", stream = "hopping" }]
"#,
    )
}

const ITEMS: [&str; 3] = ["apple", "pear", "fig"];

/// Puts `count` orders, `pause` apart, numbered from `first`; returns how many had qty ≥ 5.
async fn put_orders(streams: &Streams, first: usize, count: usize, pause: Duration) -> usize {
    let mut big = 0;
    for n in first..first + count {
        let qty = n % 7 + 1;
        big += usize::from(qty >= 5);
        let record = json!({"item": ITEMS[n % 3], "qty": qty});
        streams
            .put(
                "orders",
                &format!("order-{n}"),
                record.to_string().as_bytes(),
            )
            .await;
        tokio::time::sleep(pause).await;
    }
    big
}

/// The JSON records on every shard of `stream`.
async fn output(streams: &Streams, stream: &str) -> Vec<Value> {
    let shards = streams
        .ok("ListShards", json!({"StreamName": stream}))
        .await;
    let mut out = Vec::new();
    for shard in shards["Shards"].as_array().unwrap() {
        let id = shard["ShardId"].as_str().unwrap();
        for (_, _, data) in streams.read_all(stream, id).await {
            out.push(
                serde_json::from_slice(&data).unwrap_or_else(|e| {
                    panic!("{stream}: {e}: {}", String::from_utf8_lossy(&data))
                }),
            );
        }
    }
    out
}

/// One-shot query rows.
async fn query(streams: &Streams, sql: &str) -> Vec<Value> {
    let body = serde_json::to_vec(&json!({ "sql": sql })).unwrap();
    let response = streams.post("/analytics/query", body).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let out: Value = serde_json::from_str(&response.text()).unwrap();
    out["rows"].as_array().unwrap().clone()
}

/// Window rows as `(window end, item) → (orders, units)`, failing on a window emitted twice.
fn per_window(
    rows: &[Value],
    end: &str,
    item: &str,
    orders: &str,
    units: &str,
) -> BTreeMap<(String, String), (i64, i64)> {
    let mut out = BTreeMap::new();
    for row in rows {
        let key = (
            row[end]
                .as_str()
                .unwrap()
                .trim_end_matches(".000")
                .to_string(),
            row[item].as_str().unwrap().to_string(),
        );
        let value = (row[orders].as_i64().unwrap(), row[units].as_i64().unwrap());
        assert!(
            out.insert(key.clone(), value).is_none(),
            "{key:?} emitted twice"
        );
    }
    out
}

/// What the per-second application should have emitted: the same grouping, run once.
async fn expected_windows(streams: &Streams) -> BTreeMap<(String, String), (i64, i64)> {
    let rows = query(
        streams,
        r#"SELECT item, COUNT(*) AS orders, SUM(qty) AS units,
                  date_bin(INTERVAL '1' SECOND, "ROWTIME", TIMESTAMP '1970-01-01T00:00:00')
                    + INTERVAL '1' SECOND AS window_end
           FROM orders WHERE item IS NOT NULL GROUP BY 1, 4"#,
    )
    .await;
    per_window(&rows, "window_end", "item", "orders", "units")
}

/// Waits (bounded) until the per-second output has every window the input has.
async fn windows_complete(streams: &Streams) -> BTreeMap<(String, String), (i64, i64)> {
    let expected = expected_windows(streams).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = per_window(
            &output(streams, "per-second").await,
            "ROWTIME",
            "ITEM",
            "ORDERS",
            "UNITS",
        );
        if got.len() >= expected.len() || Instant::now() > deadline {
            assert_eq!(
                got, expected,
                "each window once, as the one-shot query counts it"
            );
            return got;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits (bounded) until the hopping output (2 s windows every second) has every window
/// the input's per-second counts make, and checks each count once.
async fn hops_complete(streams: &Streams) {
    let seconds = query(
        streams,
        r#"SELECT item, CAST(date_bin(INTERVAL '1' SECOND, "ROWTIME", TIMESTAMP '1970-01-01T00:00:00') AS BIGINT) AS s,
                  COUNT(*) AS n
           FROM orders WHERE item IS NOT NULL GROUP BY 1, 2"#,
    )
    .await;
    let mut expected: BTreeMap<(String, i64), i64> = BTreeMap::new();
    for row in &seconds {
        let (item, start, n) = (
            row["item"].as_str().unwrap(),
            row["s"].as_i64().unwrap(),
            row["n"].as_i64().unwrap(),
        );
        for end in [start + 1000, start + 2000] {
            *expected.entry((item.to_string(), end)).or_default() += n;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut got = BTreeMap::new();
        for row in output(streams, "hopping").await {
            let key = (
                row["ITEM"].as_str().unwrap().to_string(),
                row["END_MS"].as_i64().unwrap(),
            );
            assert!(
                got.insert(key.clone(), row["ORDERS"].as_i64().unwrap())
                    .is_none(),
                "{key:?} twice"
            );
        }
        if got.len() >= expected.len() || Instant::now() > deadline {
            assert_eq!(
                got, expected,
                "each 2 s window every second, as the per-second counts add up"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applications_emit_windows_rows_and_sliding_sums_once_across_a_restart() {
    let streams = Streams::start(&apps_config()).await;
    let mut big = put_orders(&streams, 0, 30, Duration::from_millis(70)).await;
    streams
        .put("orders", "broken", b"{\"item\": \"apple\", ")
        .await;
    let windows = windows_complete(&streams).await;
    assert!(
        windows.len() >= 6,
        "2 s of orders: 3 items over 3+ windows: {windows:?}"
    );

    // Row by row: every big order once, with its ROWTIME.
    let rows = output(&streams, "big-orders").await;
    assert_eq!(rows.len(), big, "{rows:?}");
    assert!(
        rows.iter()
            .all(|r| r["QTY"].as_i64().unwrap() >= 5 && r["ROWTIME"].is_string())
    );

    // Sliding: each order once, with the sum of its item's orders in the 2 s before it.
    let running = output(&streams, "running").await;
    assert_eq!(running.len(), 30, "one row per order");
    let inputs = query(
        &streams,
        r#"SELECT item, qty, SUM(qty) OVER (PARTITION BY item ORDER BY "ROWTIME"
               RANGE BETWEEN INTERVAL '2' SECOND PRECEDING AND CURRENT ROW) AS last_2s
           FROM orders WHERE item IS NOT NULL"#,
    )
    .await;
    let mut want: Vec<(String, i64, i64)> = inputs
        .iter()
        .map(|r| {
            (
                r["item"].as_str().unwrap().into(),
                r["qty"].as_i64().unwrap(),
                r["last_2s"].as_i64().unwrap(),
            )
        })
        .collect();
    let mut got: Vec<(String, i64, i64)> = running
        .iter()
        .map(|r| {
            (
                r["ITEM"].as_str().unwrap().into(),
                r["QTY"].as_i64().unwrap(),
                r["LAST_2S"].as_i64().unwrap(),
            )
        })
        .collect();
    want.sort();
    got.sort();
    assert_eq!(
        got, want,
        "the sliding sums, as one query over all the rows gives them"
    );

    // The record that is not JSON went to each application's error stream, with why.
    for app in ["per-second", "big", "running", "hopping"] {
        let errors = output(&streams, &format!("{app}_errors")).await;
        assert_eq!(errors.len(), 1, "{app}: {errors:?}");
        assert_eq!(errors[0]["partition_key"], "broken");
        assert!(
            errors[0]["reason"].as_str().unwrap().len() > 3,
            "{errors:?}"
        );
    }

    // A restart goes on from the checkpoint: nothing twice, nothing lost.
    let streams = streams.restart().await;
    big += put_orders(&streams, 30, 15, Duration::from_millis(70)).await;
    let after = windows_complete(&streams).await;
    assert!(after.len() > windows.len());
    hops_complete(&streams).await;
    assert_eq!(output(&streams, "big-orders").await.len(), big);
    assert_eq!(output(&streams, "running").await.len(), 45);
    assert_eq!(output(&streams, "per-second_errors").await.len(), 1);
}

/// The binary's config for the crash test: fsync always, a tumbling and a row-by-row
/// application over `orders`.
fn crash_config() -> String {
    r#"[stream]
listen = ["127.0.0.1:0"]
data_dir = "data"
fsync = "always"

[[stream.streams]]
name = "orders"
shards = 2
[[stream.streams]]
name = "per-second"
shards = 1
[[stream.streams]]
name = "big-orders"
shards = 1

[analytics]
idle_shard_timeout = "300ms"
[[analytics.inputs]]
stream = "orders"
format = "json"
columns = [{ name = "id", type = "BIGINT" }, { name = "item", type = "VARCHAR(16)" }, { name = "qty", type = "INTEGER" }]

[[analytics.applications]]
name = "per-second"
inputs = ["orders"]
sql = """
CREATE OR REPLACE STREAM "DEST" (item VARCHAR(16), orders BIGINT, units INTEGER);
CREATE OR REPLACE PUMP "P" AS INSERT INTO "DEST"
  SELECT STREAM item, COUNT(*), SUM(qty) FROM "SOURCE_SQL_STREAM_001"
  GROUP BY item, FLOOR("SOURCE_SQL_STREAM_001".ROWTIME TO SECOND);
"""
outputs = [{ sql_stream = "DEST", stream = "per-second" }]

[[analytics.applications]]
name = "big"
inputs = ["orders"]
sql = """
CREATE OR REPLACE STREAM "BIG" (id BIGINT, qty INTEGER);
CREATE OR REPLACE PUMP "P" AS INSERT INTO "BIG"
  SELECT STREAM id, qty FROM "SOURCE_SQL_STREAM_001" WHERE qty >= 5;
"""
outputs = [{ sql_stream = "BIG", stream = "big-orders" }]
"#
    .to_string()
}

/// A one-shot query on the binary, by curl.
fn curl_query(addr: std::net::SocketAddr, sql: &str) -> Vec<Value> {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "20", "-X", "POST"])
        .arg(format!("http://{addr}/analytics/query"))
        .args(["-H", "content-type: application/json", "--data-binary"])
        .arg(json!({ "sql": sql }).to_string())
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let answer: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    answer["rows"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("{answer}"))
}

async fn read_json(client: &mut Client, stream: &str) -> Vec<Value> {
    client
        .read_all(stream, 0)
        .await
        .iter()
        .map(|got| serde_json::from_slice(&got.data).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigkills_no_window_or_row_is_emitted_twice_or_lost() {
    use crate::stream_process::{Server, write_config};
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &crash_config());
    let mut next = 0u64;
    // Orders go in while the process is killed at a different moment each round.
    for batches in [23_u64, 37, 11] {
        let mut server = Server::start(&path);
        let mut client = Client::new(server.addr);
        for _ in 0..batches {
            let records: Vec<(String, Option<u128>, Vec<u8>)> = (next..next + 4)
                .map(|n| {
                    let record =
                        json!({"id": n, "item": ITEMS[(n % 3) as usize], "qty": n % 7 + 1});
                    (format!("order-{n}"), None, record.to_string().into_bytes())
                })
                .collect();
            next += 4;
            client
                .put_records("orders", &records)
                .await
                .expect("the put is acknowledged");
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        server.kill();
    }
    let server = Server::start(&path);
    let mut client = Client::new(server.addr);
    let expected = per_window(
        &curl_query(
            server.addr,
            r#"SELECT item, COUNT(*) AS orders, SUM(qty) AS units,
                      date_bin(INTERVAL '1' SECOND, "ROWTIME", TIMESTAMP '1970-01-01T00:00:00')
                        + INTERVAL '1' SECOND AS window_end
               FROM orders GROUP BY 1, 4"#,
        ),
        "window_end",
        "item",
        "orders",
        "units",
    );
    let big: Vec<i64> = curl_query(
        server.addr,
        "SELECT id FROM orders WHERE qty >= 5 ORDER BY id",
    )
    .iter()
    .map(|r| r["id"].as_i64().unwrap())
    .collect();
    assert_eq!(
        big.len() as u64,
        (0..next).filter(|n| n % 7 + 1 >= 5).count() as u64
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let windows = read_json(&mut client, "per-second").await;
        let got = per_window(&windows, "ROWTIME", "ITEM", "ORDERS", "UNITS");
        let rows = read_json(&mut client, "big-orders").await;
        let mut ids: Vec<i64> = rows.iter().map(|r| r["ID"].as_i64().unwrap()).collect();
        ids.sort_unstable();
        let done = got.len() >= expected.len() && ids.len() >= big.len();
        if done || Instant::now() > deadline {
            assert_eq!(
                got, expected,
                "every window once, as the one-shot query counts it"
            );
            assert_eq!(ids, big, "every big order once");
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `method` on an `/analytics/applications` path, with a JSON body.
async fn call_apps(
    streams: &Streams,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", streams.http.to_string())
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.map(|b| b.to_string()).unwrap_or_default(),
        )))
        .unwrap();
    let response = streams.send(request).await;
    let text = response.text();
    (
        response.status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
    )
}

/// `orders` and two output streams; `fixed` is an application of the config file.
fn api_config(reference: &std::path::Path) -> String {
    config(
        "",
        &format!(
            r#"
[[stream.streams]]
name = "orders"
shards = 2
[[stream.streams]]
name = "named-orders"
shards = 1
[[stream.streams]]
name = "fixed-out"
shards = 1

[analytics]
[[analytics.inputs]]
stream = "orders"
format = "json"
columns = [{{ name = "item", type = "VARCHAR(16)" }}, {{ name = "qty", type = "INTEGER" }}]
[[analytics.references]]
name = "items"
path = "{}"

[[analytics.applications]]
name = "fixed"
inputs = ["orders"]
sql = """
CREATE OR REPLACE STREAM "D" (qty INTEGER);
CREATE OR REPLACE PUMP "P" AS INSERT INTO "D" SELECT STREAM qty FROM "SOURCE_SQL_STREAM_001";
"""
outputs = [{{ sql_stream = "D", stream = "fixed-out" }}]
"#,
            reference.display()
        ),
    )
}

/// Joins each order with the reference table's name for its item.
const NAMED: &str = r#"
CREATE OR REPLACE STREAM "NAMED" (item VARCHAR(16), "label" VARCHAR(32), qty INTEGER);
CREATE OR REPLACE PUMP "P" AS INSERT INTO "NAMED"
  SELECT STREAM o.item, i."label", o.qty
  FROM "SOURCE_SQL_STREAM_001" AS o LEFT JOIN "items" AS i ON o.item = i."item";
"#;

async fn wait_rows(streams: &Streams, stream: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = output(streams, stream).await;
        if rows.len() >= count || Instant::now() > deadline {
            assert_eq!(rows.len(), count, "{stream}: {rows:?}");
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applications_made_through_the_api_join_reference_data_and_outlive_a_restart() {
    let files = tempfile::tempdir().unwrap();
    let reference = files.path().join("items.csv");
    std::fs::write(
        &reference,
        "item,label,price\napple,Red apple,1.25\npear,Green pear,2\n",
    )
    .unwrap();
    let streams = Streams::start(&api_config(&reference)).await;

    // A mistake is refused with where it is, and changes nothing.
    let bad = json!({"inputs": ["orders"], "sql": "CREATE OR REPLACE STREAM \"X\" (a INTEGER);\nCREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"X\"\n  SELECT STREAM nope FROM \"SOURCE_SQL_STREAM_001\";", "outputs": [{"sql_stream": "X", "stream": "named-orders"}]});
    let (status, answer) =
        call_apps(&streams, "PUT", "/analytics/applications/named", Some(bad)).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("line 3"),
        "{answer}"
    );
    let definition = json!({"inputs": ["orders"], "sql": NAMED, "outputs": [{"sql_stream": "NAMED", "stream": "named-orders"}]});
    let (status, answer) = call_apps(
        &streams,
        "PUT",
        "/analytics/applications/fixed",
        Some(definition.clone()),
    )
    .await;
    assert_eq!(status, 409, "the config file's: {answer}");
    let (status, _) = call_apps(&streams, "DELETE", "/analytics/applications/nothing", None).await;
    assert_eq!(status, 404);

    let (status, answer) = call_apps(
        &streams,
        "PUT",
        "/analytics/applications/named",
        Some(definition),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    for (n, item) in ["apple", "fig", "pear"].iter().enumerate() {
        let record = json!({"item": item, "qty": n + 1});
        streams
            .put("orders", &format!("o{n}"), record.to_string().as_bytes())
            .await;
    }
    let mut rows: Vec<(String, Value)> = wait_rows(&streams, "named-orders", 3)
        .await
        .into_iter()
        .map(|r| (r["ITEM"].as_str().unwrap().to_string(), r["label"].clone()))
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        rows,
        [
            ("apple".into(), json!("Red apple")),
            ("fig".into(), Value::Null),
            ("pear".into(), json!("Green pear")),
        ]
    );
    wait_rows(&streams, "fixed-out", 3).await;
    let (_, list) = call_apps(&streams, "GET", "/analytics/applications", None).await;
    let names: Vec<(&str, &str)> = list["applications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap(), a["origin"].as_str().unwrap()))
        .collect();
    assert_eq!(names, [("fixed", "config"), ("named", "api")]);

    // The API's application runs again after a restart, from where it was.
    let streams = streams.restart().await;
    streams
        .put("orders", "o3", br#"{"item": "apple", "qty": 9}"#)
        .await;
    wait_rows(&streams, "named-orders", 4).await;
    let (_, list) = call_apps(&streams, "GET", "/analytics/applications", None).await;
    assert_eq!(list["applications"][1]["status"], "running", "{list}");

    // Deleted, it stops and stays deleted.
    let (status, _) = call_apps(&streams, "DELETE", "/analytics/applications/named", None).await;
    assert_eq!(status, 200);
    let streams = streams.restart().await;
    let (_, list) = call_apps(&streams, "GET", "/analytics/applications", None).await;
    assert_eq!(list["applications"].as_array().unwrap().len(), 1, "{list}");
    streams
        .put("orders", "o4", br#"{"item": "pear", "qty": 1}"#)
        .await;
    wait_rows(&streams, "fixed-out", 5).await;
    assert_eq!(output(&streams, "named-orders").await.len(), 4);
}
