//! The analytics benchmark's edgewise side (run by `benches/analytics/run.sh`):
//!
//! - `throughput CONFIG JSONL`: puts the records of `gen_records.py` on the stream
//!   `cdn-logs` of CONFIG, then runs each continuous query through the engine an
//!   application uses (the input tail decoding records, the pump, JSON rows put on an output
//!   stream) and each one-shot query, on one thread, printing records/s;
//! - `latency CONFIG JSONL SECONDS`: runs CONFIG's applications while records go in at
//!   10,000 a second, and prints how long after a window's end its rows were on the output
//!   stream (p50, p99, max, over the windows).
//!
//! CONFIG is `benches/analytics/edgewise-bench.toml` (data under the current folder).

use std::io::BufRead;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use edgewise::analytics::Analytics;
use edgewise::analytics::app::tail::InputTail;
use edgewise::analytics::app::{emit, pump, source_name};
use edgewise::analytics::decode::Decoder;
use edgewise::analytics::kda::{self, Window};
use edgewise::analytics::query::OutputFormat;
use edgewise::config::Config;
use edgewise::stream::api::put::put_all;
use edgewise::stream::log::{Log, LogOptions, NewRecord, Stream};
use tokio_util::sync::CancellationToken;

/// The continuous queries: (name, KDA SQL); the output stream is `bench-out`.
const CONTINUOUS: [(&str, &str); 4] = [
    (
        "filter_projection",
        r#"CREATE OR REPLACE STREAM "OUT" (cs_uri_stem VARCHAR(64), sc_status INTEGER, time_taken DOUBLE);
           CREATE OR REPLACE PUMP "P" AS INSERT INTO "OUT"
           SELECT STREAM cs_uri_stem, sc_status, time_taken FROM "SOURCE_SQL_STREAM_001"
           WHERE sc_status >= 500;"#,
    ),
    (
        "tumbling_minute_status_country",
        r#"CREATE OR REPLACE STREAM "OUT" (status_class INTEGER, c_country VARCHAR(8), requests BIGINT);
           CREATE OR REPLACE PUMP "P" AS INSERT INTO "OUT"
           SELECT STREAM sc_status / 100, c_country, COUNT(*) FROM "SOURCE_SQL_STREAM_001"
           GROUP BY sc_status / 100, c_country,
                    STEP("SOURCE_SQL_STREAM_001".ROWTIME BY INTERVAL '60' SECOND);"#,
    ),
    (
        "p95_time_taken_per_distribution_minute",
        r#"CREATE OR REPLACE STREAM "OUT" (distribution_id VARCHAR(16), p95 DOUBLE);
           CREATE OR REPLACE PUMP "P" AS INSERT INTO "OUT"
           SELECT STREAM distribution_id, approx_percentile_cont(0.95) WITHIN GROUP (ORDER BY time_taken)
           FROM "SOURCE_SQL_STREAM_001"
           GROUP BY distribution_id, FLOOR("SOURCE_SQL_STREAM_001".ROWTIME TO MINUTE);"#,
    ),
    (
        "top10_paths_per_minute",
        r#"CREATE OR REPLACE STREAM "OUT" (path VARCHAR(64), hits BIGINT);
           CREATE OR REPLACE PUMP "P" AS INSERT INTO "OUT"
           SELECT STREAM * FROM TABLE(TOP_K_ITEMS_TUMBLING(
             CURSOR(SELECT STREAM * FROM "SOURCE_SQL_STREAM_001"), 'cs_uri_stem', 10, 60));"#,
    ),
];

/// The same four as one-shot queries over the stream's table, bucketed by the records'
/// own timestamps as DuckDB's are (so their row counts match DuckDB's).
const ONE_SHOT: [(&str, &str); 4] = [
    (
        "filter_projection",
        r#"SELECT cs_uri_stem, sc_status, time_taken FROM "cdn-logs" WHERE sc_status >= 500"#,
    ),
    (
        "tumbling_minute_status_country",
        r#"SELECT date_bin(INTERVAL '1 minute', to_timestamp_millis(CAST("timestamp" * 1000 AS BIGINT))) AS minute,
                  sc_status / 100 AS status_class, c_country, count(*) AS n
           FROM "cdn-logs" GROUP BY 1, 2, 3"#,
    ),
    (
        "p95_time_taken_per_distribution_minute",
        r#"SELECT date_bin(INTERVAL '1 minute', to_timestamp_millis(CAST("timestamp" * 1000 AS BIGINT))) AS minute,
                  distribution_id, approx_percentile_cont(0.95) WITHIN GROUP (ORDER BY time_taken) AS p95
           FROM "cdn-logs" GROUP BY 1, 2"#,
    ),
    (
        "top10_paths_per_minute",
        r#"SELECT minute, cs_uri_stem, hits FROM (
             SELECT date_bin(INTERVAL '1 minute', to_timestamp_millis(CAST("timestamp" * 1000 AS BIGINT))) AS minute,
                    cs_uri_stem, count(*) AS hits,
                    row_number() OVER (PARTITION BY date_bin(INTERVAL '1 minute', to_timestamp_millis(CAST("timestamp" * 1000 AS BIGINT)))
                                       ORDER BY count(*) DESC, cs_uri_stem) AS path_rank
             FROM "cdn-logs" GROUP BY 1, 2) AS ranked WHERE path_rank <= 10"#,
    ),
];

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["throughput", config, jsonl] => runtime.block_on(throughput(config, jsonl)),
        ["latency", config, jsonl, seconds] => {
            let seconds: u64 = seconds.parse().expect("SECONDS is a number");
            runtime.block_on(latency(config, jsonl, seconds.clamp(5, 600)));
        }
        _ => {
            eprintln!(
                "usage: engine throughput CONFIG JSONL | engine latency CONFIG JSONL SECONDS"
            );
            std::process::exit(2);
        }
    }
}

/// The log and analytics config of `path`.
fn open(path: &str) -> (Arc<Log>, Config) {
    let config = Config::load(std::path::Path::new(path)).unwrap_or_else(|e| panic!("{e}"));
    let stream = config.stream.as_ref().expect("a [stream] section");
    let options = LogOptions {
        data_dir: stream.data_dir.clone(),
        fsync: stream.fsync,
        segment_size: stream.segment_size,
        mirror: false,
    };
    let log = Log::open(options, &stream.streams).expect("the log opens");
    (log, config)
}

fn read_lines(jsonl: &str) -> Vec<Bytes> {
    let file = std::fs::File::open(jsonl).unwrap_or_else(|e| panic!("{jsonl}: {e}"));
    std::io::BufReader::new(file)
        .lines()
        .map(|line| Bytes::from(line.expect("a line")))
        .collect()
}

/// Appends `lines` to `stream`, round robin over its shards, 500 a call.
async fn append(stream: &Stream, lines: &[Bytes]) {
    let shards = stream.shards().len();
    for (i, chunk) in lines.chunks(500).enumerate() {
        let records = chunk
            .iter()
            .map(|data| NewRecord {
                partition_key: "bench".into(),
                data: data.clone(),
            })
            .collect();
        stream.append(i % shards, records).await.expect("append");
    }
}

/// CPU seconds this process has used (user + system).
fn cpu_seconds() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

async fn throughput(config_path: &str, jsonl: &str) {
    let (log, config) = open(config_path);
    let analytics_config = config.analytics.clone().expect("an [analytics] section");
    let input = analytics_config
        .input("cdn-logs")
        .expect("an input for cdn-logs")
        .clone();
    let stream = log.get("cdn-logs").expect("a cdn-logs stream");
    let out = log.get("bench-out").expect("a bench-out stream");
    let lines = read_lines(jsonl);
    let records = lines.len();
    if stream.shards()[0].next_offset() == 0 {
        append(&stream, &lines).await;
    }
    println!("# edgewise engine, one thread, {records} records of {jsonl}");
    println!("# mode query_name records records_per_s wall_s cpu_s output_rows peak_kept_bytes");
    for (name, sql) in CONTINUOUS {
        let source = kda::Source {
            name: source_name(0),
            columns: pump::source_columns(&input),
        };
        let program = kda::translate(sql, &[source], &[])
            .await
            .expect("the SQL translates");
        let pump = program.pumps[0].clone();
        let tumbling = matches!(pump.window, Window::Tumbling { .. });
        let (started, cpu) = (Instant::now(), cpu_seconds());
        let mut tail = InputTail::new(stream.clone(), Decoder::new(Some(&input)), &[], 500);
        let mut runner = pump::PumpRunner::new(pump, None, &[]).expect("a session");
        let (mut rows, mut peak) = (0usize, 0usize);
        let mut read = 0usize;
        loop {
            let polled = tail.poll().expect("the tail reads");
            let count = polled.batch.num_rows();
            read += count;
            let watermark = if count == 0 {
                u64::MAX
            } else {
                tail.watermark()
            };
            let output = runner
                .advance(std::slice::from_ref(&polled.batch), watermark)
                .await
                .expect("the pump runs");
            peak = peak.max(runner.kept_bytes());
            if let Some(output) = output {
                let mut entries =
                    emit::records("bench", "P", &output.rows, None).expect("JSON rows");
                rows += entries.len();
                while !entries.is_empty() {
                    let rest = entries.split_off(entries.len().min(500));
                    for outcome in put_all(&out, entries).await {
                        outcome.expect("the output put");
                    }
                    entries = rest;
                }
            }
            if count == 0 {
                break;
            }
        }
        assert_eq!(read, records, "{name}: every record read");
        let (wall, cpu) = (started.elapsed().as_secs_f64(), cpu_seconds() - cpu);
        println!(
            "continuous {name} {records} {:.0} {wall:.3} {cpu:.3} {rows} {}",
            records as f64 / cpu.max(wall).max(1e-9),
            if tumbling { peak } else { 0 }
        );
    }
    let analytics = Analytics::new(log.clone(), &analytics_config, std::env::temp_dir())
        .expect("analytics start");
    for (name, sql) in ONE_SHOT {
        let (started, cpu) = (Instant::now(), cpu_seconds());
        let mut chunks = analytics
            .queries()
            .start(sql.to_string(), OutputFormat::Csv)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let mut bytes = Vec::new();
        while let Some(chunk) = chunks.recv().await {
            bytes.extend_from_slice(&chunk);
        }
        let (wall, cpu) = (started.elapsed().as_secs_f64(), cpu_seconds() - cpu);
        let rows = bytes
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            .saturating_sub(1);
        println!(
            "one-shot {name} {records} {:.0} {wall:.3} {cpu:.3} {rows} 0",
            records as f64 / wall.max(1e-9)
        );
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

async fn latency(config_path: &str, jsonl: &str, seconds: u64) {
    let (log, config) = open(config_path);
    let analytics_config = config.analytics.clone().expect("an [analytics] section");
    let stream = log.get("cdn-logs").expect("a cdn-logs stream");
    let out = log.get("bench-latency").expect("a bench-latency stream");
    let lines = read_lines(jsonl);
    let from = out.shards()[0].next_offset();
    let analytics = Analytics::new(log.clone(), &analytics_config, std::env::temp_dir())
        .expect("analytics start");
    let shutdown = CancellationToken::new();
    analytics.start_applications(&shutdown);
    // 10,000 records a second: 100 every 10 ms, for `seconds`.
    let producer = {
        let stream = stream.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_millis(10));
            let shards = stream.shards().len();
            for (i, chunk) in lines
                .chunks(100)
                .cycle()
                .take(seconds as usize * 100)
                .enumerate()
            {
                ticks.tick().await;
                let records = chunk
                    .iter()
                    .map(|data| NewRecord {
                        partition_key: "bench".into(),
                        data: data.clone(),
                    })
                    .collect();
                stream.append(i % shards, records).await.expect("append");
            }
        })
    };
    producer.await.expect("the producer");
    tokio::time::sleep(Duration::from_secs(3)).await;
    shutdown.cancel();
    // Each window's delay: its first row's arrival on the output stream less its end.
    let mut first: std::collections::BTreeMap<u64, u64> = std::collections::BTreeMap::new();
    let shard = &out.shards()[0];
    let mut next = from;
    while next < shard.next_offset() {
        let read = shard.read(next, 8192, 8 << 20).expect("read the output");
        for record in &read.records {
            let row: serde_json::Value = serde_json::from_slice(&record.data).expect("JSON rows");
            let start = row["WINDOW_START_MS"].as_u64().expect("WINDOW_START_MS");
            let end = start + 1000;
            let arrival = first.entry(end).or_insert(record.arrival_ms);
            *arrival = (*arrival).min(record.arrival_ms);
        }
        next = read.next;
    }
    let mut delays: Vec<i64> = first
        .iter()
        .map(|(end, arrival)| *arrival as i64 - *end as i64)
        .collect();
    delays.sort_unstable();
    let at = |q: f64| delays[((delays.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "# edgewise applications, 10000 records/s for {seconds} s, 1 s tumbling windows, now {}",
        now_ms()
    );
    println!(
        "latency windows={} p50_ms={} p99_ms={} max_ms={}",
        delays.len(),
        at(0.5),
        at(0.99),
        delays.last().copied().unwrap_or(0)
    );
    drop(analytics);
}
