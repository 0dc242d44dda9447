#!/usr/bin/env bash
# Dynamic updates under query load: edgewise-dns against Knot DNS on the same zone. For each
# server, the max query rate (dnsperf) idle and while UPDATE_RATE signed RFC 2136 updates a
# second come in (benches/dns/update_loadgen.rs: TXT added and deleted again at 64 names),
# and what the updates got: updates/s answered, latency, lost. See README.md in this folder.
#
# Environment knobs (all optional):
#   ONLY=knot|edgewise   run one server only (default: both)
#   DURATION=15          seconds of each measured dnsperf run
#   UPDATE_RATE=1000     updates a second sent during the second run
#   UPDATE_CLIENTS=256   UDP sockets sending them (one update in flight each)
#   CLIENTS=4 OUTSTANDING=200   dnsperf -c / -q
#   EW_PORT=53551 KNOT_PORT=53552
#   SERVER_CPU=1 LOAD_CPU=0     cores of the server and of the load (dnsperf + updates)
#   KEEP=1               keep the work dir (configs, logs, raw output)
#   EDGEWISE_BIN=path    use this edgewise-dns binary and skip the cargo build
#
# Traffic goes only to 127.0.0.1. Every wait is bounded.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH=bench-updates
# shellcheck source=SCRIPTDIR/../lib.sh
source "$HERE/../lib.sh"

ONLY="${ONLY:-}"
DURATION="${DURATION:-15}"
UPDATE_RATE="${UPDATE_RATE:-1000}"
UPDATE_CLIENTS="${UPDATE_CLIENTS:-256}"
CLIENTS="${CLIENTS:-4}"
OUTSTANDING="${OUTSTANDING:-200}"
EW_PORT="${EW_PORT:-53551}"
KNOT_PORT="${KNOT_PORT:-53552}"
SERVER_CPU="${SERVER_CPU:-1}"
LOAD_CPU="${LOAD_CPU:-0}"
KEEP="${KEEP:-}"
EW_BIN="${EDGEWISE_BIN:-$ROOT/target/release/edgewise-dns}"
ZONE_FILE="$HERE/bench.example.zone"
QUERIES="$HERE/queries.txt"
ADDR=127.0.0.1
SECRET="dXBkYXRlLWJlbmNoLXVwZGF0ZS1iZW5jaC11cGRhdGUh"

require_uints DURATION UPDATE_RATE UPDATE_CLIENTS CLIENTS OUTSTANDING EW_PORT KNOT_PORT SERVER_CPU LOAD_CPU
((DURATION > 0 && UPDATE_RATE > 0 && UPDATE_CLIENTS > 0)) || die "DURATION, UPDATE_RATE and UPDATE_CLIENTS must be > 0"
case "$ONLY" in
    "") SERVERS=(knot edgewise) ;;
    knot | edgewise) SERVERS=("$ONLY") ;;
    *) die "ONLY must be empty, 'knot' or 'edgewise' (got '$ONLY')" ;;
esac

install_tools knotd=knot dnsperf=dnsperf taskset=util-linux
ports_free "$EW_PORT" "$KNOT_PORT"
if [[ " ${SERVERS[*]} " == *" edgewise "* ]]; then build_edgewise edgewise-dns; fi
log "building the update load generator (release)"
(cd "$ROOT" && cargo build --release --bench update_loadgen) || die "cargo build --bench update_loadgen failed"
LOADGEN="$(ls -t "$ROOT"/target/release/deps/update_loadgen-* | grep -v '\.d$' | head -n1)"
[[ -x "$LOADGEN" ]] || die "no update_loadgen binary under target/release/deps"

mkdir -p "$ROOT/target/bench-dns"
WORK="$(mktemp -d "$ROOT/target/bench-dns/updates.XXXXXX")"
echo "bench.example SOA" >"$WORK/probe.txt"
FAILED=0
PGID=""
on_exit() {
    local rc=$?
    stop_load
    [[ -n "$PGID" ]] && kill_group "$PGID" 50
    keep_work "$rc"
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# start NAME: the server in its own process group on SERVER_CPU; waits until it answers
start() {
    local dir="$WORK/$1"
    mkdir -p "$dir"
    cp "$ZONE_FILE" "$dir/bench.example.zone"
    case "$1" in
        edgewise)
            PORT=$EW_PORT
            cat >"$dir/edgewise.toml" <<CONF
[dns]
listen = ["$ADDR:$PORT"]
workers = 1
data_dir = "data"
[[dns.tsig_keys]]
name = "upd"
secret = "$SECRET"
[[dns.zones]]
name = "bench.example"
file = "bench.example.zone"
allow_update = [{ key = "upd", names = ["_acme-challenge.*"], types = ["TXT"] }]
CONF
            (cd "$dir" && RUST_LOG=warn exec setsid taskset -c "$SERVER_CPU" "$EW_BIN" --config edgewise.toml) \
                >"$dir/out.log" 2>&1 </dev/null &
            ;;
        knot)
            PORT=$KNOT_PORT
            cat >"$dir/knot.conf" <<CONF
server:
  rundir: "$dir"
  listen: $ADDR@$PORT
  udp-workers: 1
  tcp-workers: 1
  background-workers: 1
control:
  listen: "$dir/knot.sock"
database:
  storage: "$dir"
log:
  - target: stderr
    any: warning
key:
  - id: upd
    algorithm: hmac-sha256
    secret: $SECRET
acl:
  - id: upd
    key: upd
    action: update
zone:
  - domain: bench.example
    storage: "$dir"
    file: "bench.example.zone"
    acl: upd
    zonefile-sync: -1
    journal-content: changes
CONF
            setsid taskset -c "$SERVER_CPU" knotd -c "$dir/knot.conf" >"$dir/out.log" 2>&1 </dev/null &
            ;;
    esac
    PGID=$!
    local i
    for ((i = 0; i < 100; i++)); do
        if dnsperf -s "$ADDR" -p "$PORT" -l 1 -Q 10 -d "$WORK/probe.txt" 2>/dev/null |
            grep -qE 'Queries completed:[[:space:]]+[1-9]'; then
            return 0
        fi
        kill -0 -- "-$PGID" 2>/dev/null || break
        sleep 0.1
    done
    log "$1 did not start; its output:"
    tail -n 20 "$dir/out.log" | sed 's/^/    /' >&2
    return 1
}

# qps FILE: queries per second from a dnsperf output
qps() { awk '/Queries per second:/ { printf "%.0f", $4 }' "$1"; }

# server_cpu FILE CMD...: runs CMD; writes to FILE the server's CPU over its run (% of a core)
server_cpu() {
    local out="$1" t0 t1 w0 w1 rc=0
    shift
    t0=$(group_ticks "$PGID") w0=$(date +%s.%N)
    "$@" || rc=$?
    t1=$(group_ticks "$PGID") w1=$(date +%s.%N)
    awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v w0="$w0" -v w1="$w1" \
        'BEGIN { printf "%.0f\n", 100 * t / hz / (w1 - w0) }' >"$out"
    return "$rc"
}

# measure NAME: prints "qps_idle cpu_idle qps_busy cpu_busy <loadgen line>"
measure() {
    local dir="$WORK/$1" perf=(dnsperf -s "$ADDR" -p "$PORT" -d "$QUERIES" -c "$CLIENTS" -T 1 -q "$OUTSTANDING")
    load "$dir/warmup.txt" "${perf[@]}" -l 3 || true
    server_cpu "$dir/idle.cpu" load "$dir/idle.txt" "${perf[@]}" -l "$DURATION" || die "dnsperf failed against $1"
    taskset -c "$LOAD_CPU" "$LOADGEN" --addr "$ADDR:$PORT" --zone bench.example --key "upd:$SECRET" \
        --clients "$UPDATE_CLIENTS" --rate "$UPDATE_RATE" --duration $((DURATION + 4)) \
        >"$dir/updates.txt" 2>&1 &
    local updater=$!
    sleep 2
    server_cpu "$dir/busy.cpu" load "$dir/busy.txt" "${perf[@]}" -l "$DURATION" || die "dnsperf failed against $1"
    wait "$updater" || log "the update load generator failed against $1: $(cat "$dir/updates.txt")"
    echo "$(qps "$dir/idle.txt") $(cat "$dir/idle.cpu") $(qps "$dir/busy.txt") $(cat "$dir/busy.cpu") $(tail -n1 "$dir/updates.txt")"
}

field() { tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1 == k { print $2 }'; }

busy_note
declare -A RESULT=()
for server in "${SERVERS[@]}"; do
    log "$server: starting"
    start "$server" || { FAILED=1; continue; }
    log "$server: measuring (${DURATION}s idle, ${DURATION}s with $UPDATE_RATE updates/s)"
    RESULT[$server]="$(measure "$server")"
    kill_group "$PGID" 50
    PGID=""
done

printf '\n%-9s %14s %18s %6s %8s %9s %8s %8s %6s\n' server "qps idle (srv)" "qps updating (srv)" ratio "per-cpu" \
    "updates/s" "p50 ms" "p99 ms" lost
for server in "${SERVERS[@]}"; do
    r="${RESULT[$server]:-}"
    [[ -n "$r" ]] || { printf '%-9s %14s\n' "$server" "did not run"; continue; }
    read -r idle idle_cpu busy busy_cpu rest <<<"$r"
    per_cpu="$(awk -v a="$idle" -v ac="$idle_cpu" -v b="$busy" -v bc="$busy_cpu" \
        'BEGIN { if (a > 0 && ac > 0 && bc > 0) printf "%.2f", (b / bc) / (a / ac); else print "-" }')"
    printf '%-9s %14s %18s %6s %8s %9s %8s %8s %6s\n' "$server" "$idle ($idle_cpu%)" "$busy ($busy_cpu%)" \
        "$(ratio "$busy" "$idle")" "$per_cpu" "$(field ups "$rest")" "$(field p50_ms "$rest")" \
        "$(field p99_ms "$rest")" "$(field lost "$rest")"
done
cat <<'NOTE'
srv: the server's CPU during the run (% of one core). ratio: qps updating / qps idle. per-cpu:
the same for queries per unit of server CPU, i.e. the share of the server's core left to
queries while it takes the updates. On 2 cores the update load generator shares dnsperf's
core, so when srv is well under 100% the load, not the server, set the qps and per-cpu is
the figure to read.
NOTE
[[ -n "${BG_NOTE:-}" ]] && echo "$BG_NOTE"
echo "(server on CPU $SERVER_CPU; dnsperf -c $CLIENTS -q $OUTSTANDING and $UPDATE_CLIENTS update sockets on CPU $LOAD_CPU; ${DURATION}s runs)"
exit "$FAILED"
