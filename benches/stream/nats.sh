#!/usr/bin/env bash
# PutRecords through [stream] backend = "nats" (JetStream R1 on one nats-server, R3 on a
# cluster of three) beside the local log (fsync = "always") and Redis Streams XADD
# (appendonly yes, appendfsync always), one after the other in the same run, with the same
# load generator (stream_loadgen). Every server on 127.0.0.1; see README.md in this folder.
#
# Environment knobs (all optional):
#   DURATION=10      seconds per write run
#   ROUNDS=2         runs per system (the best is reported)
#   CONNS=8          connections, each one PutRecords / XADD pipeline in flight
#   BATCH=100        records per request (1..500)
#   SIZE=1024        bytes of data per record
#   MAX_WRITE_MB=1000  a run stops after this many MB of record data
#   PORT_BASE=18690  first of the ports used (edgewise, redis, then 9 for nats)
#   LOAD_CPU=0       core the load generator is pinned to (servers run on the others)
#   KEEP=1           keep the work dir (configs, logs)
#   EDGEWISE_BIN, LOADGEN_BIN  use these binaries and skip their cargo builds
#
# Exit status: non-zero only when something could not run (tools missing, a build failure, a
# server that did not start, a run whose stored record count differs from what was
# acknowledged). Traffic goes only to 127.0.0.1; every wait loop and load run is bounded.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH=bench-stream-nats
# shellcheck source=SCRIPTDIR/../lib.sh
source "$HERE/../lib.sh"

DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-2}"
CONNS="${CONNS:-8}"
BATCH="${BATCH:-100}"
SIZE="${SIZE:-1024}"
MAX_WRITE_MB="${MAX_WRITE_MB:-1000}"
PORT_BASE="${PORT_BASE:-18690}"
LOAD_CPU="${LOAD_CPU:-0}"
KEEP="${KEEP:-}"
EW_BIN="${EDGEWISE_BIN:-$ROOT/target/release/edgewise-cdn}"
LG_BIN="${LOADGEN_BIN:-}"
ADDR=127.0.0.1
STREAM=bench
require_uints DURATION ROUNDS CONNS BATCH SIZE MAX_WRITE_MB PORT_BASE LOAD_CPU
((DURATION > 0 && ROUNDS > 0 && CONNS > 0 && BATCH >= 1 && BATCH <= 500 && SIZE >= 1)) ||
    die "DURATION, ROUNDS, CONNS > 0; BATCH in 1..500; SIZE >= 1"
((SIZE * BATCH <= 5000000)) || die "SIZE x BATCH must stay under 5 MB per request"

install_tools redis-server=redis-server redis-cli=redis-tools nats-server=nats-server taskset=util-linux curl=curl
NCPU="$(nproc)"
((LOAD_CPU < NCPU)) || die "LOAD_CPU must be < $NCPU"
SERVER_CPUS="$(seq 0 $((NCPU - 1)) | grep -vx "$LOAD_CPU" | paste -sd, -)"
[[ -n "$SERVER_CPUS" ]] || SERVER_CPUS=$LOAD_CPU
build_edgewise edgewise-cdn
if [[ -z "$LG_BIN" ]]; then
    log "building the load generator (cargo build --release --bench stream_loadgen)"
    LG_BIN=$(cd "$ROOT" && cargo build --release --bench stream_loadgen --message-format=json 2>/dev/null |
        sed -nE 's/.*"executable":"([^"]*stream_loadgen[^"]*)".*/\1/p' | tail -n1) || true
    [[ -n "$LG_BIN" ]] || die "cargo build --release --bench stream_loadgen failed"
fi

mkdir -p "$ROOT/target/bench-stream"
WORK="$(mktemp -d "$ROOT/target/bench-stream/nats.XXXXXX")"
FAILED=0
RESTART=""
PIDS=()
stop_all() {
    local pid
    for pid in "${PIDS[@]}"; do kill_group "$pid" 100; done
    PIDS=()
    rm -rf "$WORK/data"
}
on_exit() {
    local rc=$?
    stop_load
    stop_all
    keep_work "$rc"
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

EW_PORT=$PORT_BASE REDIS_PORT=$((PORT_BASE + 1))
nats_port() { echo $((PORT_BASE + 2 + 3 * $1 + $2)); }   # node, 0 client / 1 route / 2 monitor
ports_free "$EW_PORT" "$REDIS_PORT" $(for n in 0 1 2; do for k in 0 1 2; do nats_port "$n" "$k"; done; done)

spawn() { # name cmd...: started in its own process group on the server cores
    local name="$1"
    shift
    setsid taskset -c "$SERVER_CPUS" "$@" >>"$WORK/$name.out" 2>&1 </dev/null &
    PIDS+=($!)
}
wait_until() { # what cmd...: up to 30 s
    local what="$1" i
    shift
    for ((i = 0; i < 300; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    die "$what did not come up (see $WORK)"
}
nats_healthy() { curl -sf --max-time 2 "http://$ADDR:$(nats_port "$1" 2)/healthz" | grep -q '"ok"'; }
# Bound before it serves (a start first catches its mirror up): a connection waits until then.
ew_ready() { [[ "$(curl -s -o /dev/null --max-time 60 -w '%{http_code}' "http://$ADDR:$EW_PORT/")" != 000 ]]; }

start_nats() { # nodes
    local n routes=""
    for ((n = 0; n < $1; n++)); do routes+="${routes:+, }nats-route://$ADDR:$(nats_port "$n" 1)"; done
    for ((n = 0; n < $1; n++)); do
        {
            echo "server_name: n$n"
            echo "listen: $ADDR:$(nats_port "$n" 0)"
            echo "http: $ADDR:$(nats_port "$n" 2)"
            echo "max_payload: 2MB"
            echo "jetstream { store_dir: \"$WORK/data/nats$n\" }"
            (($1 > 1)) && echo "cluster { name: bench, listen: $ADDR:$(nats_port "$n" 1), routes: [$routes] }"
        } >"$WORK/nats$n.conf"
        spawn "nats$n" nats-server -c "$WORK/nats$n.conf"
    done
    for ((n = 0; n < $1; n++)); do wait_until "nats-server n$n" nats_healthy "$n"; done
}

start_edgewise() { # backend-keys
    cat >"$WORK/edgewise.toml" <<EOF
[stream]
listen = ["$ADDR:$EW_PORT"]
data_dir = "$WORK/data/edgewise"
fsync = "always"
$1

[[stream.streams]]
name = "$STREAM"
shards = 1
EOF
    spawn edgewise env RUST_LOG=warn "$EW_BIN" --config "$WORK/edgewise.toml"
    wait_until edgewise-cdn ew_ready
}

r1_keys() { printf 'backend = "nats"\nnats = { servers = ["nats://%s:%s"], replicas = 1 }\n' "$ADDR" "$(nats_port 0 0)"; }

servers() { # system: starts what it needs
    mkdir -p "$WORK/data"
    case "$1" in
        local) start_edgewise "" ;;
        nats-r1)
            start_nats 1
            start_edgewise "$(r1_keys)" ;;
        nats-r3)
            start_nats 3
            start_edgewise "backend = \"nats\"
nats = { servers = [\"nats://$ADDR:$(nats_port 0 0)\", \"nats://$ADDR:$(nats_port 1 0)\", \"nats://$ADDR:$(nats_port 2 0)\"], replicas = 3 }" ;;
        redis)
            spawn redis redis-server --bind "$ADDR" --port "$REDIS_PORT" --dir "$WORK/data" \
                --appendonly yes --appendfsync always --save "" --auto-aof-rewrite-percentage 0
            wait_until redis-server redis-cli -h "$ADDR" -p "$REDIS_PORT" ping ;;
    esac
}

stored() { # system: records the system holds for the stream
    case "$1" in
        redis) redis-cli -h "$ADDR" -p "$REDIS_PORT" xlen "$STREAM" ;;
        *) curl -s "http://$ADDR:$EW_PORT/metrics" |
            awk '$1 ~ /^edgewise_stream_records_in_total([{]|$)/ { n += $2; seen = 1 } END { if (seen) print n }' ;;
    esac
}

# After a nats-r1 run: seconds until edgewise-cdn serves again when restarted on its mirror
# (kept: only what came since is fetched), then when the mirror cannot be trusted (as after
# a power loss: mirrored again whole). Sets RESTART to "records kept rebuilt".
restarts() {
    local ew=$((${#PIDS[@]} - 1)) kept
    kill_group "${PIDS[$ew]}" 100
    unset "PIDS[$ew]"
    timed_start "$1"
    kept=$TOOK
    ew=$((${#PIDS[@]} - 1))
    kill -KILL -- "-${PIDS[$ew]}" 2>/dev/null || true
    wait "${PIDS[$ew]}" 2>/dev/null || true
    unset "PIDS[$ew]"
    echo "boot another-boot" >"$WORK/data/edgewise/mirror-state"
    timed_start "$1"
    RESTART="$2 $kept $TOOK"
}
# start_edgewise with keys $1, setting TOOK to the seconds until it answered (in this shell,
# not a subshell, so PIDS keeps the new process).
timed_start() {
    local t0
    t0=$(date +%s.%N)
    start_edgewise "$1"
    TOOK=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
}

SYSTEMS=(local nats-r1 nats-r3 redis)
MAX_REQ=$((MAX_WRITE_MB * 1000000 / (SIZE * BATCH) + 1))
for ((r = 1; r <= ROUNDS; r++)); do
    for system in "${SYSTEMS[@]}"; do
        servers "$system"
        mode=kinesis-put port=$EW_PORT
        [[ "$system" == redis ]] && mode=redis-put port=$REDIS_PORT
        log "$system: ${SIZE} B x$BATCH, $CONNS connections, ${DURATION}s, round $r/$ROUNDS"
        out="$WORK/$system.$r"
        if load "$out" "$LG_BIN" "$mode" --addr "$ADDR:$port" --target "$STREAM" --duration "$DURATION" \
            --max-requests "$MAX_REQ" --conns "$CONNS" --batch "$BATCH" --size "$SIZE"; then
            wrote=$(tr ' ' '\n' <"$out" | awk -F= '$1 == "records" { print $2 }')
            held=$(stored "$system")
            if [[ "$wrote" != "$held" ]]; then
                log "$system: acknowledged $wrote records, the system holds ${held:-?}"
                FAILED=1
            elif [[ "$system" == nats-r1 && $r == 1 ]]; then
                log "$system: restarting edgewise-cdn on $held records"
                restarts "$(r1_keys)" "$held"
            fi
        else
            log "$system: the load generator failed: $(head -c 300 "$out")"
            FAILED=1
        fi
        stop_all
    done
done

val() { tr ' ' '\n' <"$1" 2>/dev/null | awk -F= -v k="$2" '$1 == k { print $2; exit }'; }
best() { # system: the run with the most records/s
    local f bestf="" bestv=-1 v
    for f in "$WORK/$1".*; do
        v=$(val "$f" rps)
        [[ -n "$v" ]] || continue
        if awk -v a="$v" -v b="$bestv" 'BEGIN { exit !(a > b) }'; then bestf=$f bestv=$v; fi
    done
    echo "$bestf"
}
{
    echo
    echo "PutRecords, ${SIZE} B records x$BATCH per request, $CONNS connections, ${DURATION}s, best of $ROUNDS"
    echo "(servers on CPUs $SERVER_CPUS, stream_loadgen on CPU $LOAD_CPU; nats-server $(nats-server --version | awk '{print $2}'),"
    echo " Redis $(redis-server --version | sed -nE 's/.* v=([0-9.]+).*/\1/p'))"
    printf '%-34s | %11s | %7s | %13s\n' system "records/s" "MB/s" "p50/p99 ms"
    echo "-----------------------------------+-------------+---------+--------------"
    for system in "${SYSTEMS[@]}"; do
        f=$(best "$system")
        case "$system" in
            local) label="edgewise local log, fsync always" ;;
            nats-r1) label="edgewise on JetStream R1 (1 node)" ;;
            nats-r3) label="edgewise on JetStream R3 (3 nodes)" ;;
            redis) label="Redis XADD, appendfsync always" ;;
        esac
        printf '%-34s | %11s | %7s | %13s\n' "$label" "$(val "$f" rps)" "$(val "$f" mbps)" \
            "$(val "$f" p50_ms)/$(val "$f" p99_ms)"
    done
    if [[ -n "${RESTART:-}" ]]; then
        read -r n kept rebuilt <<<"$RESTART"
        echo "Restart of edgewise-cdn on JetStream R1 holding $n records: serving again after ${kept}s with"
        echo "its mirror kept, ${rebuilt}s when the mirror is mirrored again whole (as after a power loss)."
    fi
    echo "JetStream 2.9 file storage syncs every 2 minutes, not per message: R1 is durable against a"
    echo "process crash only; R3 against losing one node. The local log and Redis fsync each batch."
} | tee "$ROOT/target/bench-stream/nats-summary.txt"
((FAILED == 0)) || die "some run failed; see $WORK"
