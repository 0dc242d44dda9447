//! The console's SQL editor on a real edgewise-cdn with `[analytics]`, in headless Chromium:
//! a stream picked, its columns and latest rows, discovery, a template highlighted, a
//! one-shot query run and run again as records come, continuous SQL saved as an application
//! whose output rows then show, and the application deleted; and the
//! `/console/api/analytics/` endpoints' access rule.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use edgewise::config::Config;
use edgewise::edge::Edge;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::browser::Browser;
use crate::stream_harness::{Client, https_config};

const WAIT: Duration = Duration::from_secs(20);

/// edgewise-cdn with stream `orders` (JSON input) and `big` for an application's rows.
struct Running {
    _dir: TempDir,
    admin: SocketAddr,
    api: SocketAddr,
    stop: CancellationToken,
    _task: JoinHandle<()>,
}

impl Running {
    async fn start() -> Running {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edgewise.toml");
        let tables = r#"
[[stream.streams]]
name = "orders"
shards = 2
[[stream.streams]]
name = "big"
shards = 1

[analytics]
idle_shard_timeout = "200ms"
[[analytics.inputs]]
stream = "orders"
format = "json"
columns = [{ name = "item", type = "VARCHAR(16)" }, { name = "qty", type = "INTEGER" }]
"#;
        std::fs::write(&path, https_config("", tables)).unwrap();
        let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let edge = Edge::bind(&config).unwrap_or_else(|e| panic!("bind: {e}"));
        let admin = edge.cdn().unwrap().admin_addrs()[0];
        let api = edge.stream().unwrap().addrs()[0];
        let stop = CancellationToken::new();
        let task = tokio::spawn(edge.run(stop.clone()));
        Running {
            _dir: dir,
            admin,
            api,
            stop,
            _task: task,
        }
    }

    async fn put_orders(&self, orders: &[(&str, u32)]) {
        let entries: Vec<Value> = orders
            .iter()
            .enumerate()
            .map(|(i, (item, qty))| {
                let data = json!({"item": item, "qty": qty}).to_string();
                json!({"PartitionKey": format!("k{i}"), "Data": STANDARD.encode(data)})
            })
            .collect();
        let out = Client::new(self.api)
            .call(
                "PutRecords",
                &json!({"StreamName": "orders", "Records": entries}),
            )
            .await
            .unwrap_or_else(|e| panic!("PutRecords: {e:?}"));
        assert_eq!(out["FailedRecordCount"], 0, "{out}");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A request to the admin listener with curl: (status, body).
fn curl(
    admin: SocketAddr,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> (u16, String) {
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "10",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "-X",
            method,
        ])
        .args(["-H", &format!("Content-Type: {content_type}")])
        .args(["--data-binary", body])
        .arg(format!("http://{admin}{path}"))
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.parse().unwrap_or(0), body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sql_editor_queries_streams_and_saves_applications_in_chromium() {
    let running = Running::start().await;
    running
        .put_orders(&[("apple", 3), ("pear", 7), ("fig", 9)])
        .await;
    let browser = Browser::launch().await;
    let page = browser.open(&format!("http://{}/", running.admin)).await;

    // The section appears with the streams; orders' declared columns and latest rows.
    // The section shows at once; the stream picker fills when the tables are listed.
    page.wait_for(
        "!document.getElementById('sql').hidden \
         && [...document.querySelectorAll('#sql-stream option')].some((o) => o.value === 'orders')",
        WAIT,
    )
    .await;
    page.type_into("#sql-stream", "orders").await;
    page.wait_for(
        r##"(() => {
            const names = [...document.querySelectorAll("#sql-columns tbody th")].map((c) => c.textContent);
            const rows = document.querySelectorAll("#sql-sample tbody tr").length;
            return names[0] === "item" && names[1] === "qty" && names.includes("ROWTIME") && rows === 3;
        })()"##,
        WAIT,
    )
    .await;

    // Discovery proposes the columns from the records themselves.
    page.click("#sql-discover").await;
    page.wait_for(
        r##"document.getElementById("sql-status").textContent.includes("[[analytics.inputs]]")
            && [...document.querySelectorAll("#sql-columns tbody tr")].some((r) => r.cells[2].textContent === "$.qty")"##,
        WAIT,
    )
    .await;

    // A template, written for orders' columns, highlighted.
    page.type_into("#sql-template", "tumbling").await;
    let text = page.eval("document.getElementById('sql-text').value").await;
    let text = text.as_str().unwrap();
    assert!(
        text.contains("STEP(\"SOURCE_SQL_STREAM_001\".ROWTIME BY INTERVAL '60' SECOND)")
            && text.contains("\"item\""),
        "{text}"
    );
    let keywords = page
        .eval("[...document.querySelectorAll('#sql-highlight .tok-kw')].map((s) => s.textContent).slice(0, 3).join(' ')")
        .await;
    assert_eq!(keywords, "CREATE OR REPLACE");

    // A one-shot query, run again every 5 s: new records show without a click.
    page.type_into(
        "#sql-text",
        r#"SELECT item, SUM(qty) AS units FROM "orders" GROUP BY item ORDER BY item"#,
    )
    .await;
    page.eval("document.getElementById('sql-auto').checked = true")
        .await;
    page.click("#sql-run").await;
    page.wait_for(
        r##"(() => {
            const rows = [...document.querySelectorAll("#sql-results tbody tr")].map((r) => [...r.cells].map((c) => c.textContent).join("="));
            return rows.join(",") === "apple=3,fig=9,pear=7";
        })()"##,
        WAIT,
    )
    .await;
    running.put_orders(&[("apple", 10)]).await;
    page.wait_for(
        r##"document.querySelector("#sql-results tbody tr").cells[1].textContent === "13""##,
        WAIT,
    )
    .await;

    // A mistake in SQL says so; Ctrl+Enter in the editor runs it as Run does, typing no
    // newline.
    page.eval("document.getElementById('sql-auto').checked = false")
        .await;
    page.type_into("#sql-text", "SELECT nope FROM \"orders\"")
        .await;
    page.ctrl_enter("#sql-text").await;
    page.wait_for(
        r##"document.getElementById("sql-status").className.includes("bad")
            && document.getElementById("sql-status").textContent.includes("nope")"##,
        WAIT,
    )
    .await;
    assert_eq!(
        page.eval("document.getElementById('sql-text').value").await,
        "SELECT nope FROM \"orders\""
    );

    // Continuous SQL saved as an application: its rows on "big" show as they come.
    page.type_into(
        "#sql-text",
        "CREATE OR REPLACE STREAM \"DESTINATION_SQL_STREAM\" (item VARCHAR(16), qty INTEGER);\n\
         CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"\n\
         SELECT STREAM item, qty FROM \"SOURCE_SQL_STREAM_001\" WHERE qty >= 7;",
    )
    .await;
    page.type_into("#sql-app-name", "big-orders").await;
    page.type_into("#sql-app-to", "big").await;
    page.click("#sql-save").await;
    page.wait_for(
        r##"(() => {
            const app = [...document.querySelectorAll("#sql-apps tbody tr")].find((r) => r.cells[0].textContent === "big-orders");
            const rows = [...document.querySelectorAll("#sql-results tbody tr")];
            return !!app && app.cells[4].textContent === "running" && rows.length === 3;
        })()"##,
        WAIT,
    )
    .await;
    running.put_orders(&[("plum", 8)]).await;
    page.wait_for(
        r##"document.querySelectorAll("#sql-results tbody tr").length === 4"##,
        WAIT,
    )
    .await;

    // Deleted from its row.
    page.click("#sql-apps button[aria-label='Delete application big-orders']")
        .await;
    page.wait_for(
        r##"![...document.querySelectorAll("#sql-apps tbody tr")].some((r) => r.cells[0].textContent === "big-orders")"##,
        WAIT,
    )
    .await;
    // The one error the page saw is the query it was meant to refuse.
    let errors = page.errors();
    assert!(
        errors.len() == 1 && errors[0].contains("400") && errors[0].contains("analytics/query"),
        "{errors:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_analytics_writes_need_json_and_reads_answer_like_the_api() {
    let running = Running::start().await;
    let admin = running.admin;
    let sql = r#"{"sql": "SELECT 1 AS one"}"#;
    let (status, body) = curl(
        admin,
        "POST",
        "/console/api/analytics/query",
        "application/json",
        sql,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"one\":1"), "{body}");
    // A form post (what another site's page could send without a preflight) is refused.
    let (status, _) = curl(
        admin,
        "POST",
        "/console/api/analytics/query",
        "text/plain",
        sql,
    );
    assert_eq!(status, 401);
    let (status, body) = curl(
        admin,
        "POST",
        "/console/api/analytics/query",
        "application/json",
        r#"{"sql": "DROP TABLE orders"}"#,
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = curl(
        admin,
        "PUT",
        "/console/api/analytics/applications/x",
        "application/json",
        r#"{"inputs": ["orders"], "sql": "SELECT 1"}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("CREATE OR REPLACE"), "{body}");
    let (status, body) = curl(
        admin,
        "GET",
        "/console/api/analytics/tables",
        "application/json",
        "",
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"orders\""), "{body}");
}
