//! KDA scripts as AWS's documentation writes them, translated and run on a few rows.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, AsArray, Float64Array, RecordBatch, StringArray, TimestampMillisecondArray, UInt64Array,
};
use datafusion::arrow::datatypes::{Float64Type, Int64Type};
use datafusion::datasource::MemTable;

use super::*;

/// KDA's getting-started stock ticker stream: (ticker_symbol, sector, change, price).
fn ticker_source() -> Source {
    Source {
        name: "SOURCE_SQL_STREAM_001".into(),
        columns: vec![
            ("TICKER_SYMBOL".into(), SqlType::Varchar(Some(4))),
            ("SECTOR".into(), SqlType::Varchar(Some(16))),
            ("CHANGE".into(), SqlType::Double),
            ("PRICE".into(), SqlType::Double),
            (schema::ROWTIME.into(), SqlType::Timestamp),
        ],
    }
}

/// Rows of the ticker stream: (ms, ticker, sector, change, price).
fn ticker_rows(rows: &[(i64, &str, &str, f64, f64)]) -> RecordBatch {
    let schema = source_schema(&ticker_source().columns);
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2))),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.3))),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.4))),
            Arc::new(TimestampMillisecondArray::from_iter_values(
                rows.iter().map(|r| r.0),
            )),
            Arc::new(UInt64Array::from_iter_values(0..rows.len() as u64)),
        ],
    )
    .unwrap()
}

async fn translate_ticker(script: &str) -> Program {
    translate(script, &[ticker_source()], &[])
        .await
        .unwrap_or_else(|e| panic!("{e}\n{script}"))
}

/// Runs `pump` on `rows` as its source and shapes the output.
async fn run(pump: &Pump, rows: RecordBatch) -> RecordBatch {
    let ctx = crate::analytics::query::session().unwrap();
    let table = MemTable::try_new(rows.schema(), vec![vec![rows]]).unwrap();
    ctx.register_table(
        datafusion::common::TableReference::bare(pump.source.clone()),
        Arc::new(table),
    )
    .unwrap();
    let frame = ctx
        .sql(&pump.sql)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", pump.sql));
    let schema = Arc::new(frame.schema().as_arrow().clone());
    let batches = frame.collect().await.unwrap();
    let all = datafusion::arrow::compute::concat_batches(&schema, &batches).unwrap();
    pump.shape(&all).unwrap()
}

fn strings(batch: &RecordBatch, column: &str) -> Vec<String> {
    let column = batch.column_by_name(column).unwrap();
    let column = datafusion::arrow::compute::cast(column, &DataType::Utf8).unwrap();
    column
        .as_string::<i32>()
        .iter()
        .map(|v| v.unwrap_or("NULL").to_string())
        .collect()
}

const SAMPLE: [(i64, &str, &str, f64, f64); 6] = [
    (1_000, "AMZN", "TECHNOLOGY", 1.0, 100.0),
    (2_000, "NFLX", "TECHNOLOGY", -2.0, 50.0),
    (30_000, "AMZN", "TECHNOLOGY", 3.0, 103.0),
    (59_999, "XOM", "ENERGY", 0.5, 80.0),
    (60_000, "AMZN", "TECHNOLOGY", 1.0, 104.0),
    (61_000, "XOM", "ENERGY", -0.5, 79.5),
];

#[tokio::test]
async fn the_getting_started_filter_runs_row_by_row() {
    let program = translate_ticker(
        r#"
        -- Create an output stream with four columns.
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM"
           (ticker_symbol VARCHAR(4), sector VARCHAR(12), change DOUBLE, price DOUBLE);
        CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
           SELECT STREAM ticker_symbol, sector, change, price
           FROM   "SOURCE_SQL_STREAM_001"
           WHERE  sector SIMILAR TO '%TECH%';
        "#,
    )
    .await;
    assert_eq!(program.streams[0].name, "DESTINATION_SQL_STREAM");
    assert_eq!(program.streams[0].columns[0].0, "TICKER_SYMBOL");
    let pump = &program.pumps[0];
    assert_eq!(pump.window, Window::Rows);
    assert_eq!(pump.source, "SOURCE_SQL_STREAM_001");
    let out = run(pump, ticker_rows(&SAMPLE)).await;
    assert_eq!(
        strings(&out, "TICKER_SYMBOL"),
        ["AMZN", "NFLX", "AMZN", "AMZN"]
    );
    assert_eq!(out.num_columns(), 6, "four columns, __rowtime, __row");
    assert_eq!(strings(&out, ROW), ["0", "1", "2", "4"]);
}

#[tokio::test]
async fn step_makes_a_tumbling_window_ending_at_its_bucket_end() {
    let program = translate_ticker(
        r#"
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker_symbol VARCHAR(4), ticker_count INTEGER);
        CREATE OR REPLACE PUMP "STREAM_PUMP" AS
          INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM ticker_symbol, COUNT(*) AS ticker_count
            FROM "SOURCE_SQL_STREAM_001"
            GROUP BY ticker_symbol,
                     STEP("SOURCE_SQL_STREAM_001".ROWTIME BY INTERVAL '60' SECOND);
        "#,
    )
    .await;
    let pump = &program.pumps[0];
    assert_eq!(pump.window, Window::Tumbling { size_ms: 60_000 });
    let out = run(pump, ticker_rows(&SAMPLE)).await;
    let mut rows: Vec<(String, String, String)> = strings(&out, "TICKER_SYMBOL")
        .into_iter()
        .zip(strings(&out, "TICKER_COUNT"))
        .zip(strings(&out, ROWTIME_OUT))
        .map(|((a, b), c)| (a, b, c))
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            ("AMZN".into(), "1".into(), "1970-01-01T00:02:00".into()),
            ("AMZN".into(), "2".into(), "1970-01-01T00:01:00".into()),
            ("NFLX".into(), "1".into(), "1970-01-01T00:01:00".into()),
            ("XOM".into(), "1".into(), "1970-01-01T00:01:00".into()),
            ("XOM".into(), "1".into(), "1970-01-01T00:02:00".into()),
        ]
    );
    assert_eq!(
        out.column_by_name("TICKER_COUNT").unwrap().data_type(),
        &DataType::Int32,
        "cast to the declared INTEGER"
    );
}

#[tokio::test]
async fn floor_to_minute_and_date_bin_and_tumble_are_the_same_window() {
    for group in [
        r#"FLOOR("SOURCE_SQL_STREAM_001".ROWTIME TO MINUTE)"#,
        r#"date_bin(INTERVAL '1 minute', ROWTIME, TIMESTAMP '1970-01-01T00:00:00')"#,
    ] {
        let program = translate_ticker(&format!(
            r#"CREATE OR REPLACE STREAM "D" (sector VARCHAR(16), avg_price DOUBLE);
               CREATE OR REPLACE PUMP "P" AS INSERT INTO "D"
               SELECT STREAM sector, AVG(price) FROM "SOURCE_SQL_STREAM_001"
               GROUP BY sector, {group};"#
        ))
        .await;
        assert_eq!(
            program.pumps[0].window,
            Window::Tumbling { size_ms: 60_000 }
        );
        let out = run(&program.pumps[0], ticker_rows(&SAMPLE)).await;
        assert_eq!(out.num_rows(), 4, "{group}");
    }
    let program = translate_ticker(
        r#"CREATE OR REPLACE STREAM "D" (window_start TIMESTAMP, n BIGINT);
           CREATE OR REPLACE PUMP "P" AS INSERT INTO "D"
           SELECT window_start, COUNT(*) FROM TABLE(TUMBLE(TABLE "SOURCE_SQL_STREAM_001",
               DESCRIPTOR(ROWTIME), INTERVAL '1' MINUTE))
           GROUP BY window_start, window_end;"#,
    )
    .await;
    assert_eq!(
        program.pumps[0].window,
        Window::Tumbling { size_ms: 60_000 }
    );
    let out = run(&program.pumps[0], ticker_rows(&SAMPLE)).await;
    let mut counts = strings(&out, "N");
    counts.sort();
    assert_eq!(counts, ["2", "4"]);
}

#[tokio::test]
async fn a_sliding_window_orders_by_rowtime_and_keeps_its_range() {
    let program = translate_ticker(
        r#"
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (
            ticker_symbol VARCHAR(4), avg_price DOUBLE);
        CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
            SELECT STREAM ticker_symbol,
                AVG(price) OVER W1 AS avg_price
            FROM "SOURCE_SQL_STREAM_001"
            WINDOW W1 AS (PARTITION BY ticker_symbol RANGE INTERVAL '1' MINUTE PRECEDING);
        "#,
    )
    .await;
    let pump = &program.pumps[0];
    assert_eq!(
        pump.window,
        Window::Sliding {
            range_ms: Some(60_000),
            keep_rows: None
        }
    );
    let out = run(pump, ticker_rows(&SAMPLE)).await;
    let rows = out
        .column_by_name(ROW)
        .unwrap()
        .as_primitive::<datafusion::arrow::datatypes::UInt64Type>();
    let avg = out
        .column_by_name("AVG_PRICE")
        .unwrap()
        .as_primitive::<Float64Type>();
    let of_row = |r: u64| {
        (0..out.num_rows())
            .find(|&i| rows.value(i) == r)
            .map(|i| avg.value(i))
    };
    assert_eq!(of_row(2), Some(101.5), "AMZN at 30 s: 100 and 103");
    let at_60s = of_row(4).unwrap();
    assert!(
        (at_60s - 307.0 / 3.0).abs() < 1e-9,
        "AMZN at 60 s: 1 s is within the minute"
    );
    let at_61s = of_row(5).unwrap();
    assert!(
        (at_61s - 79.75).abs() < 1e-9,
        "XOM at 61 s: 59.999 s and 61 s"
    );
}

#[tokio::test]
async fn rows_frames_keep_each_partitions_last_rows() {
    let program = translate_ticker(
        r#"
        CREATE OR REPLACE STREAM "D" (ticker_symbol VARCHAR(4), last2 DOUBLE, last10 DOUBLE);
        CREATE OR REPLACE PUMP "P" AS INSERT INTO "D"
        SELECT STREAM ticker_symbol, AVG(price) OVER last2rows, AVG(price) OVER last10rows
        FROM "SOURCE_SQL_STREAM_001"
        WINDOW last2rows AS (PARTITION BY ticker_symbol ROWS 2 PRECEDING),
               last10rows AS (PARTITION BY ticker_symbol ROWS 10 PRECEDING);
        "#,
    )
    .await;
    let Window::Sliding {
        range_ms: None,
        keep_rows: Some(keep),
    } = &program.pumps[0].window
    else {
        panic!("{:?}", program.pumps[0].window);
    };
    let ctx = crate::analytics::query::session().unwrap();
    let rows = ticker_rows(&SAMPLE);
    ctx.register_table(
        datafusion::common::TableReference::bare("SOURCE_SQL_STREAM_001"),
        Arc::new(MemTable::try_new(rows.schema(), vec![vec![rows]]).unwrap()),
    )
    .unwrap();
    let kept = ctx.sql(keep).await.unwrap().collect().await.unwrap();
    assert_eq!(
        kept.iter().map(RecordBatch::num_rows).sum::<usize>(),
        6,
        "all within 10"
    );
}

#[tokio::test]
async fn top_k_and_count_distinct_tumble() {
    let program = translate_ticker(
        r#"
        CREATE OR REPLACE STREAM DESTINATION_SQL_STREAM (
          "TICKER_SYMBOL" VARCHAR(4),
          "MOST_FREQUENT_VALUES" BIGINT
        );
        CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
        SELECT STREAM *
            FROM TABLE (TOP_K_ITEMS_TUMBLING(
                CURSOR(SELECT STREAM * FROM "SOURCE_SQL_STREAM_001"),
                'TICKER_SYMBOL',     -- name of column in single quotes
                1,                   -- number of the most frequently occurring values
                60                   -- tumbling window size in seconds
                )
            );
        "#,
    )
    .await;
    assert_eq!(
        program.pumps[0].window,
        Window::Tumbling { size_ms: 60_000 }
    );
    let out = run(&program.pumps[0], ticker_rows(&SAMPLE)).await;
    let mut top: Vec<(String, String)> = strings(&out, "TICKER_SYMBOL")
        .into_iter()
        .zip(strings(&out, "MOST_FREQUENT_VALUES"))
        .collect();
    top.sort();
    assert_eq!(
        top,
        [("AMZN".into(), "1".into()), ("AMZN".into(), "2".into())]
    );

    let program = translate_ticker(
        r#"
        CREATE OR REPLACE STREAM DESTINATION_SQL_STREAM (NUMBER_OF_DISTINCT_ITEMS BIGINT);
        CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
        SELECT STREAM *
        FROM TABLE(COUNT_DISTINCT_ITEMS_TUMBLING(
          CURSOR(SELECT STREAM * FROM "SOURCE_SQL_STREAM_001"),
            'ticker_symbol', -- name of column in single quotes
            60               -- tumbling window size in seconds
          )
        );
        "#,
    )
    .await;
    let out = run(&program.pumps[0], ticker_rows(&SAMPLE)).await;
    let counts = out.column_by_name("NUMBER_OF_DISTINCT_ITEMS").unwrap();
    let mut counts: Vec<i64> = counts.as_primitive::<Int64Type>().values().to_vec();
    counts.sort_unstable();
    assert_eq!(counts, [2, 3]);
}

#[tokio::test]
async fn pumps_chain_through_in_application_streams() {
    let program = translate_ticker(
        r#"
        CREATE OR REPLACE STREAM "TECH" (ticker VARCHAR(4), price DOUBLE);
        CREATE OR REPLACE PUMP "FILTER" AS INSERT INTO "TECH"
          SELECT STREAM ticker_symbol, price FROM "SOURCE_SQL_STREAM_001" WHERE sector = 'TECHNOLOGY';
        CREATE OR REPLACE STREAM "PER_MINUTE" (ticker VARCHAR(4), high DOUBLE);
        CREATE OR REPLACE PUMP "AGG" AS INSERT INTO "PER_MINUTE"
          SELECT STREAM ticker, MAX(price) FROM "TECH"
          GROUP BY ticker, STEP("TECH".ROWTIME BY INTERVAL '1' MINUTE);
        "#,
    )
    .await;
    assert_eq!(program.pumps[1].source, "TECH");
    assert_eq!(
        program.pumps[1].window,
        Window::Tumbling { size_ms: 60_000 }
    );
}

#[tokio::test]
async fn mistakes_say_what_and_where() {
    let cases = [
        ("SELECT 1", "expected CREATE OR REPLACE STREAM"),
        ("CREATE OR REPLACE STREAM \"D\" (a FOO);", "is not a type"),
        (
            "CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"D\" SELECT STREAM * FROM \"SOURCE_SQL_STREAM_001\";",
            "no CREATE STREAM before it",
        ),
        (
            "CREATE OR REPLACE STREAM \"D\" (n BIGINT);\nCREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"D\"\n  SELECT STREAM COUNT(*) FROM \"SOURCE_SQL_STREAM_001\" GROUP BY sector;",
            "needs a window",
        ),
        (
            "CREATE OR REPLACE STREAM \"D\" (n BIGINT);\nCREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"D\"\n  SELECT STREAM COUNT(*) FROM \"SOURCE_SQL_STREAM_001\";",
            "an aggregate on a stream needs a window",
        ),
        (
            "CREATE OR REPLACE STREAM \"D\" (n DOUBLE);\nCREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"D\"\n  SELECT STREAM AVG(price) OVER (ORDER BY ROWTIME ROWS UNBOUNDED PRECEDING) FROM \"SOURCE_SQL_STREAM_001\";",
            "bounded way back",
        ),
        (
            "CREATE OR REPLACE STREAM \"D\" (n DOUBLE, m DOUBLE);\nCREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"D\"\n  SELECT STREAM price FROM \"SOURCE_SQL_STREAM_001\";",
            "selects 1 columns for 2",
        ),
        (
            "CREATE OR REPLACE STREAM \"D\" (n DOUBLE);\nCREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"D\"\n  SELECT STREAM price FROM \"ELSEWHERE\";",
            "is not an input",
        ),
        (
            "CREATE OR REPLACE STREAM \"D\" (n DOUBLE);\nCREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"D\"\n  SELECT STREAM no_such_column FROM \"SOURCE_SQL_STREAM_001\";",
            "no_such_column",
        ),
    ];
    for (script, expected) in cases {
        let err = translate(script, &[ticker_source()], &[])
            .await
            .unwrap_err();
        assert!(
            err.message.contains(expected),
            "{script}\n=> {err}\nexpected {expected:?}"
        );
        assert!(err.line >= 1, "{err}");
    }
    let err = translate(
        "CREATE OR REPLACE STREAM \"D\" (n DOUBLE);\nCREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"D\"\n  SELECT STREAM price FROM \"ELSEWHERE\";",
        &[ticker_source()],
        &[],
    )
    .await
    .unwrap_err();
    assert_eq!((err.line, err.col), (3, 3), "{err}");
}

#[tokio::test]
async fn a_reference_table_joins_the_stream() {
    let reference = Source {
        name: "companies".into(),
        columns: vec![
            ("Ticker".into(), SqlType::Varchar(None)),
            ("Company".into(), SqlType::Varchar(None)),
        ],
    };
    let program = translate(
        r#"
        CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (
            ticker_symbol VARCHAR(4), "Company" varchar(20), sector VARCHAR(12),
            change DOUBLE, price DOUBLE);
        CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
           SELECT STREAM ticker_symbol, "c"."Company", sector, change, price
           FROM "SOURCE_SQL_STREAM_001" LEFT JOIN "companies" as "c"
           ON "SOURCE_SQL_STREAM_001".ticker_symbol = "c"."Ticker";
        "#,
        &[ticker_source()],
        &[reference],
    )
    .await
    .unwrap();
    assert_eq!(program.pumps[0].source, "SOURCE_SQL_STREAM_001");
    assert_eq!(program.pumps[0].window, Window::Rows);
}

#[tokio::test]
async fn hop_puts_each_row_in_every_window_holding_it() {
    let program = translate_ticker(
        r#"CREATE OR REPLACE STREAM "D" (window_end TIMESTAMP, n BIGINT);
           CREATE OR REPLACE PUMP "P" AS INSERT INTO "D"
           SELECT window_end, COUNT(*) FROM TABLE(HOP(TABLE "SOURCE_SQL_STREAM_001",
               DESCRIPTOR(ROWTIME), INTERVAL '30' SECOND, INTERVAL '1' MINUTE))
           GROUP BY window_start, window_end;"#,
    )
    .await;
    assert_eq!(
        program.pumps[0].window,
        Window::Hopping {
            slide_ms: 30_000,
            size_ms: 60_000
        }
    );
    let out = run(&program.pumps[0], ticker_rows(&SAMPLE)).await;
    let mut windows: Vec<(String, String)> = strings(&out, "WINDOW_END")
        .into_iter()
        .zip(strings(&out, "N"))
        .collect();
    windows.sort();
    // Rows at 1, 2, 30, 59.999, 60 and 61 s.
    assert_eq!(
        windows,
        [
            ("1970-01-01T00:00:30".into(), "2".into()),
            ("1970-01-01T00:01:00".into(), "4".into()),
            ("1970-01-01T00:01:30".into(), "4".into()),
            ("1970-01-01T00:02:00".into(), "2".into()),
        ]
    );
    let err = translate(
        r#"CREATE OR REPLACE STREAM "D" (n BIGINT);
           CREATE OR REPLACE PUMP "P" AS INSERT INTO "D"
           SELECT COUNT(*) FROM TABLE(HOP(TABLE "SOURCE_SQL_STREAM_001",
               DESCRIPTOR(ROWTIME), INTERVAL '7' SECOND, INTERVAL '1' MINUTE))
           GROUP BY window_start;"#,
        &[ticker_source()],
        &[],
    )
    .await
    .unwrap_err();
    assert!(err.message.contains("multiple of the slide"), "{err}");
}
