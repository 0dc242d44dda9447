#!/usr/bin/env bash
# HTTP/3 against HTTP/2 on the same edgewise-cdn: cache hits of a 1 KiB and a 100 KiB object
# over one QUIC endpoint and one TLS listener (same address and port), driven by the same
# load generator (benches/cdn/h3_loadgen.rs: h3 on quinn, and hyper's HTTP/2 client), in one
# run, alternating. No server in Debian speaks HTTP/3, so edgewise's own HTTP/2 is the
# reference.
#
#   bash benches/cdn/http3.sh      DURATION=10 ROUNDS=2 CONNS=8 STREAMS=8 PORT=18680 (env knobs)
#
# edgewise-cdn runs on CPU 1, the load generator on CPU 0. Traffic goes only to 127.0.0.1;
# every run is bounded by DURATION (and the load generator's own request cap).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DURATION="${DURATION:-10}" ROUNDS="${ROUNDS:-2}" CONNS="${CONNS:-8}" STREAMS="${STREAMS:-8}"
PORT="${PORT:-18680}"
EW_BIN="${EDGEWISE_BIN:-$ROOT/target/release/edgewise-cdn}"

[[ -n "${EDGEWISE_BIN:-}" ]] || (cd "$ROOT" && cargo build --release --bin edgewise-cdn)
LG_BIN=$(cd "$ROOT" && cargo build --release --bench h3_loadgen --message-format=json 2>/dev/null |
    sed -nE 's/.*"executable":"([^"]*h3_loadgen[^"]*)".*/\1/p' | tail -n1) || true
[[ -n "$LG_BIN" ]] || { echo "cargo build --release --bench h3_loadgen failed" >&2; exit 1; }

WORK="$(mktemp -d)"
cleanup() { [[ -n "${PID:-}" ]] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
mkdir -p "$WORK/www"
head -c 1024 /dev/urandom >"$WORK/www/1k.bin"
head -c 102400 /dev/urandom >"$WORK/www/100k.bin"
cat >"$WORK/edgewise.toml" <<TOML
[cdn]
https_listen = ["127.0.0.1:$PORT"]
http3 = true
generate_dev_certs = true

[[cdn.certs]]
cert = "cert.pem"
key = "key.pem"

[[cdn.distributions]]
id = "bench"
hosts = ["localhost"]

[[cdn.distributions.origins]]
id = "files"
dir = "www"

[[cdn.distributions.behaviors]]
path = "*"
origin = "files"
TOML
taskset -c 1 "$EW_BIN" --config "$WORK/edgewise.toml" 2>"$WORK/log" &
PID=$!
for _ in $(seq 1 50); do curl -skf -o /dev/null "https://localhost:$PORT/1k.bin" && break; sleep 0.2; done
for object in 1k 100k; do
    curl -skf -o /dev/null "https://localhost:$PORT/$object.bin" || { cat "$WORK/log" >&2; exit 1; }
done

run() { # proto object -> "rps mibps p50 p99 errors"
    taskset -c 0 "$LG_BIN" "$1" "127.0.0.1:$PORT" localhost "/$2.bin" \
        --conns "$CONNS" --streams "$STREAMS" --duration "$DURATION" |
        sed -E 's/.*rps=([0-9]+) mibps=([0-9.]+) p50_ms=([0-9.-]+) p99_ms=([0-9.-]+) errors=([0-9]+).*/\1 \2 \3 \4 \5/'
}
best() { sort -n -k1 | tail -n1; }

echo "edgewise-cdn on CPU 1, h3_loadgen on CPU 0; $CONNS connections x $STREAMS requests in flight, ${DURATION}s x $ROUNDS rounds (best)"
printf '%-8s %-6s %10s %9s %8s %8s %7s\n' object proto req/s MiB/s p50_ms p99_ms errors
for object in 1k 100k; do
    declare -A results=()
    for _ in $(seq 1 "$ROUNDS"); do
        for proto in h2 h3; do
            results[$proto]+="$(run "$proto" "$object")"$'\n'
        done
    done
    for proto in h2 h3; do
        read -r rps mibps p50 p99 errors <<<"$(printf '%s' "${results[$proto]}" | best)"
        printf '%-8s %-6s %10s %9s %8s %8s %7s\n' "$object" "$proto" "$rps" "$mibps" "$p50" "$p99" "$errors"
    done
    unset results
done
