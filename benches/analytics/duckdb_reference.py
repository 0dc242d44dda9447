#!/usr/bin/env python3
"""DuckDB as the batch reference for the analytics benchmark.

Loads the JSONL of gen_records.py with read_json (explicit columns and types), then runs
each benchmark query once as a batch over all records, single-threaded, best of 3 wall-clock
runs, and prints one line per query:

    query_name records records_per_s load_s query_s

load_s is the JSON parse into a table (best of 3), query_s the query alone (best of 3),
and records_per_s = records / (load_s + query_s): edgewise parses as it goes, so its
figures compare with parse and query together. Each query's rows are materialised into a
temporary table, so a projection cannot be optimised away and no time goes to Python.

    pip install duckdb
    python3 benches/analytics/duckdb_reference.py [--jsonl target/bench-analytics/logs.jsonl]
"""

import argparse
import sys
import time

import duckdb

# The JSON members and their types, as edgewise's [[analytics.inputs]] declares them.
COLUMNS = {
    "timestamp": "DOUBLE",
    "c_ip": "VARCHAR",
    "c_country": "VARCHAR",
    "cs_method": "VARCHAR",
    "cs_host": "VARCHAR",
    "cs_uri_stem": "VARCHAR",
    "sc_status": "INTEGER",
    "sc_bytes": "BIGINT",
    "time_taken": "DOUBLE",
    "x_edge_result_type": "VARCHAR",
    "distribution_id": "VARCHAR",
}

MINUTE = "time_bucket(INTERVAL 1 MINUTE, to_timestamp(timestamp))"

QUERIES = {
    "filter_projection": (
        "SELECT cs_uri_stem, sc_status, time_taken FROM logs WHERE sc_status >= 500"
    ),
    "tumbling_minute_status_country": (
        f"SELECT {MINUTE} AS minute, sc_status // 100 AS status_class, c_country, count(*) "
        "FROM logs GROUP BY ALL"
    ),
    "p95_time_taken_per_distribution_minute": (
        f"SELECT {MINUTE} AS minute, distribution_id, "
        "quantile_cont(time_taken, 0.95) AS p95_time_taken FROM logs GROUP BY ALL"
    ),
    "top10_paths_per_minute": (
        "SELECT minute, cs_uri_stem, hits FROM ("
        f"SELECT {MINUTE} AS minute, cs_uri_stem, count(*) AS hits, "
        "row_number() OVER (PARTITION BY minute ORDER BY count(*) DESC, cs_uri_stem) AS path_rank "
        "FROM logs GROUP BY minute, cs_uri_stem) WHERE path_rank <= 10"
    ),
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jsonl", default="target/bench-analytics/logs.jsonl")
    parser.add_argument("--runs", type=int, default=3, help="best of this many (3)")
    parser.add_argument("--threads", type=int, default=1, help="DuckDB threads (1)")
    args = parser.parse_args()
    if args.runs < 1 or args.threads < 1:
        parser.error("--runs and --threads must be at least 1")
    return args


def sql_string(text):
    return "'" + text.replace("'", "''") + "'"


def best_of(runs, action):
    """The shortest wall-clock time of `runs` calls of `action`, in seconds."""
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best


def load(con, jsonl, runs):
    """Parses the JSONL into table `logs`; the best load time and the record count."""
    columns = ", ".join(f"{sql_string(name)}: {sql_string(ty)}" for name, ty in COLUMNS.items())
    create = (
        "CREATE OR REPLACE TABLE logs AS SELECT * FROM read_json("
        f"{sql_string(jsonl)}, format = 'newline_delimited', columns = {{{columns}}})"
    )
    seconds = best_of(runs, lambda: con.execute(create))
    (records,) = con.execute("SELECT count(*) FROM logs").fetchone()
    return seconds, records


def run_query(con, sql, runs):
    """The best time to compute and materialise `sql`, and how many rows it gave."""
    materialise = f"CREATE OR REPLACE TEMP TABLE result AS {sql}"
    seconds = best_of(runs, lambda: con.execute(materialise))
    (rows,) = con.execute("SELECT count(*) FROM result").fetchone()
    return seconds, rows


def main():
    args = parse_args()
    con = duckdb.connect()
    con.execute(f"SET threads = {args.threads}")
    load_s, records = load(con, args.jsonl, args.runs)
    print(
        f"# duckdb {duckdb.__version__}, threads={args.threads}, best of {args.runs}, "
        f"{records} records from {args.jsonl}",
    )
    print("# query_name records records_per_s load_s query_s")
    for name, sql in QUERIES.items():
        query_s, rows = run_query(con, sql, args.runs)
        rate = records / (load_s + query_s)
        print(f"{name} {records} {rate:.0f} {load_s:.3f} {query_s:.3f}")
        print(f"#   {name}: {rows} rows", file=sys.stderr)


if __name__ == "__main__":
    main()
