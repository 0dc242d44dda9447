#!/usr/bin/env bash
# Stream analytics benchmark: edgewise's continuous and one-shot SQL beside DuckDB running the
# same SQL once as a batch over the same 1,000,000 CDN-log records (single-threaded, the
# ceiling for one core), then the end-to-end latency of a 1 s tumbling window at 10,000
# records/s. Everything is local files and in-process: no network traffic at all.
#
#   benches/analytics/run.sh                  # records made once (about 35 s), then ~2 min
#   SECONDS_LATENCY=60 benches/analytics/run.sh
#
# Needs python3 and pip (DuckDB from PyPI); builds the engine program in release mode.
set -euo pipefail
cd "$(dirname "$0")/../.."

out=target/bench-analytics
latency_seconds=${SECONDS_LATENCY:-30}
mkdir -p "$out"

python3 -c 'import duckdb' 2>/dev/null || python3 -m pip install --quiet duckdb
[ -s "$out/logs.jsonl" ] || python3 benches/analytics/gen_records.py --out "$out/logs"

cargo build --release --bench analytics_engine 2>&1 | tail -1
engine=$(ls -t target/release/deps/analytics_engine-* | grep -v '\.d$' | head -1)

# A fresh data folder for each part: the throughput run puts the records on its stream first,
# the latency run starts from an empty stream.
fresh() {
  rm -rf "$out/$1"
  mkdir -p "$out/$1"
  cp benches/analytics/edgewise-bench.toml "$out/$1/edgewise.toml"
  echo "$out/$1/edgewise.toml"
}

echo "== DuckDB $(python3 -c 'import duckdb; print(duckdb.__version__)'), threads=1, best of 3"
python3 benches/analytics/duckdb_reference.py --jsonl "$out/logs.jsonl" 2>/dev/null | tee "$out/duckdb.txt"

echo "== edgewise (one thread; continuous: records/s per CPU second; one-shot: per wall second)"
"$engine" throughput "$(fresh throughput)" "$out/logs.jsonl" | tee "$out/edgewise.txt"

echo "== side by side: records/s (DuckDB = load + query of the same records)"
printf '%-40s %12s %12s %12s %8s\n' query duckdb continuous one-shot cont/ddb
while read -r name _ duck _; do
  case "$name" in "#"*) continue ;; esac
  cont=$(awk -v q="$name" '$1 == "continuous" && $2 == q { print $4 }' "$out/edgewise.txt")
  once=$(awk -v q="$name" '$1 == "one-shot" && $2 == q { print $4 }' "$out/edgewise.txt")
  ratio=$(awk -v a="$cont" -v b="$duck" 'BEGIN { printf "%.2f", a / b }')
  printf '%-40s %12s %12s %12s %8s\n' "$name" "$duck" "$cont" "$once" "$ratio"
done < "$out/duckdb.txt"

echo "== end-to-end latency: window end -> its rows on the output stream"
"$engine" latency "$(fresh latency)" "$out/logs.jsonl" "$latency_seconds"
