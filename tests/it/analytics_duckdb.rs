//! DuckDB (PyPI) as the reference: the same records put on a stream and written to a JSON
//! lines file, the same SQL run by edgewise's one-shot queries and by DuckDB, the same rows.

use serde_json::{Value, json};

use crate::stream_harness::*;

const QUERIES: &[&str] = &[
    "SELECT item, count(*) AS n, sum(qty) AS total, min(price) AS lo, max(price) AS hi \
     FROM orders GROUP BY item ORDER BY item",
    "SELECT item, avg(price * qty) AS mean FROM orders WHERE qty > 3 \
     GROUP BY item HAVING count(*) > 5 ORDER BY mean DESC, item",
    "SELECT qty, count(DISTINCT item) AS kinds FROM orders GROUP BY qty ORDER BY qty",
    "SELECT item, qty, price FROM orders ORDER BY price DESC, item, qty LIMIT 7",
];

/// Deterministic orders: a few items, quantities 1-9, prices with cents.
fn orders(count: u64) -> Vec<Value> {
    let items = ["apple", "pear", "fig", "kiwi", "plum", "lime"];
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    (0..count)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            json!({
                "item": items[(state % items.len() as u64) as usize],
                "qty": 1 + (state >> 8) % 9,
                "price": ((state >> 16) % 10_000) as f64 / 100.0,
            })
        })
        .collect()
}

/// Whether two result cells agree (numbers to 1e-9 relative: sums of doubles may round
/// differently by order).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
        }
        _ => a == b,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edgewise_and_duckdb_give_the_same_rows() {
    let toml = config(
        "",
        r#"[[stream.streams]]
name = "orders"
shards = 3

[analytics]
[[analytics.inputs]]
stream = "orders"
format = "json"
columns = [{ name = "item", type = "VARCHAR" }, { name = "qty", type = "INTEGER" }, { name = "price", type = "DOUBLE" }]
"#,
    );
    let streams = Streams::start(&toml).await;
    let records = orders(3000);
    let lines: Vec<String> = records.iter().map(Value::to_string).collect();
    for chunk in lines.chunks(500) {
        streams.post("/ingest/orders", chunk.join("\n")).await;
    }
    let file = streams.dir.path().join("orders.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let output = tokio::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/it/clients/duckdb_query.py"
        ))
        .arg(&file)
        .args(QUERIES)
        .output()
        .await
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "duckdb: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let expected: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(expected.len(), QUERIES.len());
    for (sql, duckdb) in QUERIES.iter().zip(expected) {
        let response = streams
            .post("/analytics/query", json!({ "sql": sql }).to_string())
            .await;
        assert_eq!(response.status, 200, "{sql}: {}", response.text());
        let ours: Value = serde_json::from_slice(&response.body).unwrap();
        let (ours, duckdb) = (ours["rows"].as_array().unwrap(), duckdb.as_array().unwrap());
        assert_eq!(ours.len(), duckdb.len(), "{sql}");
        assert!(!ours.is_empty(), "{sql}");
        for (mine, theirs) in ours.iter().zip(duckdb) {
            let (mine, theirs) = (mine.as_object().unwrap(), theirs.as_object().unwrap());
            assert_eq!(mine.len(), theirs.len(), "{sql}: {mine:?} {theirs:?}");
            for (name, value) in theirs {
                assert!(
                    same(&mine[name], value),
                    "{sql}: {name}: {mine:?} vs {theirs:?}"
                );
            }
        }
    }
}
