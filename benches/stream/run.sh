#!/usr/bin/env bash
# Stream log benchmark: edgewise's Kinesis-compatible PutRecords/GetRecords (fsync = "always")
# against Redis Streams XADD/XRANGE (appendonly yes, appendfsync always), same single core,
# same load generator (stream_loadgen). See README.md in this folder.
#
# Environment knobs (all optional):
#   DURATION=10         seconds per measured write run
#   READ_DURATION=5     seconds per measured read run (0: no reads)
#   ROUNDS=2            runs per server and row (alternating servers, ABBA; the best is reported)
#   CONNS=8             write connections (each one request / pipeline in flight)
#   BATCHES="100"       records per PutRecords request / XADD pipeline (1..500, Kinesis's limit);
#                       a list makes one row per batch size and record size
#   SIZES="100 1024"    record data sizes in bytes (1..1048576)
#   READ_LIMIT=10000    GetRecords Limit / XRANGE COUNT (1..10000)
#   SHARDS=1            shards of the edgewise stream (Redis: one stream key)
#   MAX_WRITE_MB=2000   a write run stops after this many MB of record data (bounds the disk used)
#   MIN_FREE_MB=1500    free space the work dir's file system must have before each run
#   PORT_BASE=18590     Redis PORT_BASE, edgewise +1
#   SERVER_CPU=1 LOAD_CPU=0   cores the servers and the load generator are pinned to
#   STARTUP_TIMEOUT=30  seconds to wait for a server to answer
#   KEEP=1              keep the work dir (configs, logs, raw load-generator output)
#   EDGEWISE_BIN=path   use this edgewise-cdn binary and skip its cargo build
#   LOADGEN_BIN=path    use this stream_loadgen binary and skip its cargo build
#   EDGEWISE_LOG=warn   RUST_LOG for edgewise-cdn
#
# Exit status: non-zero only when something could not run (tools missing and not
# installable, build failure, too little disk space, a server that did not start or died, a
# run whose stored record count does not match what was acknowledged). Slow results never
# fail the script.
#
# Traffic goes only to 127.0.0.1. Every wait loop is bounded; every load run is bounded by
# its duration and by a request count.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH=bench-stream
# shellcheck source=SCRIPTDIR/../lib.sh
source "$HERE/../lib.sh"

DURATION="${DURATION:-10}"
READ_DURATION="${READ_DURATION:-5}"
ROUNDS="${ROUNDS:-2}"
CONNS="${CONNS:-8}"
BATCHES="${BATCHES:-100}"
SIZES="${SIZES:-100 1024}"
READ_LIMIT="${READ_LIMIT:-10000}"
SHARDS="${SHARDS:-1}"
MAX_WRITE_MB="${MAX_WRITE_MB:-2000}"
MIN_FREE_MB="${MIN_FREE_MB:-1500}"
PORT_BASE="${PORT_BASE:-18590}"
SERVER_CPU="${SERVER_CPU:-1}"
LOAD_CPU="${LOAD_CPU:-0}"
STARTUP_TIMEOUT="${STARTUP_TIMEOUT:-30}"
KEEP="${KEEP:-}"
EW_BIN="${EDGEWISE_BIN:-$ROOT/target/release/edgewise-cdn}"
LG_BIN="${LOADGEN_BIN:-}"
ADDR=127.0.0.1
STREAM=bench

require_uints DURATION READ_DURATION ROUNDS CONNS READ_LIMIT SHARDS MAX_WRITE_MB MIN_FREE_MB PORT_BASE \
    SERVER_CPU LOAD_CPU STARTUP_TIMEOUT
((DURATION > 0 && ROUNDS > 0 && STARTUP_TIMEOUT > 0 && MAX_WRITE_MB > 0)) ||
    die "DURATION, ROUNDS, STARTUP_TIMEOUT and MAX_WRITE_MB must be > 0"
((CONNS >= 1 && CONNS <= 1024)) || die "CONNS must be in 1..1024"
((READ_LIMIT >= 1 && READ_LIMIT <= 10000)) || die "READ_LIMIT must be in 1..10000"
((SHARDS >= 1 && SHARDS <= 256)) || die "SHARDS must be in 1..256"
((PORT_BASE >= 1024 && PORT_BASE <= 65000)) || die "PORT_BASE must be in 1024..65000"
read -r -a BATCH_LIST <<<"$BATCHES"
read -r -a SIZE_LIST <<<"$SIZES"
((${#BATCH_LIST[@]} > 0 && ${#SIZE_LIST[@]} > 0)) || die "BATCHES and SIZES must not be empty"
for b in "${BATCH_LIST[@]}"; do
    [[ "$b" =~ ^[0-9]+$ ]] && ((b >= 1 && b <= 500)) || die "each of BATCHES must be in 1..500 (got '$b')"
done
for s in "${SIZE_LIST[@]}"; do
    [[ "$s" =~ ^[0-9]+$ ]] && ((s >= 1 && s <= 1048576)) || die "each of SIZES must be in 1..1048576 (got '$s')"
    for b in "${BATCH_LIST[@]}"; do   # Kinesis: at most 5 MiB of data per PutRecords
        ((s * b <= 5000000)) || die "SIZES x BATCHES must stay under 5 MB per request (got $s x $b)"
    done
done

# ---------------------------------------------------------------- tools
install_tools redis-server=redis-server redis-cli=redis-tools taskset=util-linux curl=curl
NCPU="$(nproc)"
((SERVER_CPU < NCPU && LOAD_CPU < NCPU)) || die "SERVER_CPU/LOAD_CPU must be < $NCPU (nproc)"
((SERVER_CPU != LOAD_CPU)) || log "warning: servers and load generator share CPU $SERVER_CPU"
REDIS_VERSION="$(redis-server --version | sed -nE 's/.* v=([0-9.]+).*/\1/p')"
# perf (optional) counts each server's fdatasync/fsync calls during the write runs.
PERF_OK=""
if command -v perf >/dev/null 2>&1 &&
    timeout 5 perf stat -e syscalls:sys_enter_fdatasync -x, -o /dev/null -- true >/dev/null 2>&1; then
    PERF_OK=1
fi

# ---------------------------------------------------------------- build
build_edgewise edgewise-cdn
if [[ -z "$LG_BIN" ]]; then
    command -v cargo >/dev/null 2>&1 || die "cargo not found"
    log "building the load generator (cargo build --release --bench stream_loadgen)"
    LG_BIN=$(cd "$ROOT" && cargo build --release --bench stream_loadgen --message-format=json 2>/dev/null |
        sed -nE 's/.*"executable":"([^"]*stream_loadgen[^"]*)".*/\1/p' | tail -n1) || true
    [[ -n "$LG_BIN" ]] || die "cargo build --release --bench stream_loadgen failed"
fi
[[ -x "$LG_BIN" ]] || die "$LG_BIN missing after build"

# ---------------------------------------------------------------- work dir, cleanup
mkdir -p "$ROOT/target/bench-stream"
WORK="$(mktemp -d "$ROOT/target/bench-stream/run.XXXXXX")"
SERVER_PID="" SERVER_NAME="" PERF_PID=""
FAILED=0
declare -a NOTES=()

stop_server() {
    local pid="$SERVER_PID"
    [[ -n "$pid" ]] || return 0
    SERVER_PID=""
    kill_group "$pid" 100   # up to 10 s for a clean shutdown (final syncs)
}

on_exit() {
    local rc=$?
    stop_load
    if [[ -n "$PERF_PID" ]]; then kill -INT "$PERF_PID" 2>/dev/null || true; wait "$PERF_PID" 2>/dev/null || true; fi
    stop_server
    rm -rf "$WORK/data"   # the records themselves: up to MAX_WRITE_MB, never kept
    keep_work "$rc"
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

REDIS_PORT=$PORT_BASE EW_PORT=$((PORT_BASE + 1))
ports_free "$REDIS_PORT" "$EW_PORT"

free_mb() { df -Pm "$WORK" | awk 'NR == 2 { print $4 }'; }
(($(free_mb) >= MIN_FREE_MB)) || die "only $(free_mb) MB free on the file system of $WORK (MIN_FREE_MB=$MIN_FREE_MB)"

# ---------------------------------------------------------------- servers
# Each run gets a fresh server and an empty data folder ($WORK/data): the same starting point
# for both, and the disk space is given back after each run.
write_ew_config() {
    cat >"$WORK/edgewise.toml" <<EOF
# edgewise-cdn for the stream benchmark (written by benches/stream/run.sh)
[stream]
listen = ["$ADDR:$EW_PORT"]
data_dir = "$WORK/data"
fsync = "always"

[[stream.streams]]
name = "$STREAM"
shards = $SHARDS
retention = "24h"
EOF
}
write_ew_config
"$EW_BIN" --config "$WORK/edgewise.toml" check >/dev/null || die "edgewise-cdn rejected $WORK/edgewise.toml"

redis() { timeout 10 redis-cli -h "$ADDR" -p "$REDIS_PORT" "$@" 2>/dev/null; }
ew_metric() { # name: a counter of edgewise's /metrics, empty if unavailable
    # Summed over the counter's labelled series (by stream and shard).
    curl -s --max-time 5 "http://$ADDR:$EW_PORT/metrics" 2>/dev/null |
        awk -v n="$1" 'index($1, n) == 1 && (length($1) == length(n) || substr($1, length(n) + 1, 1) == "{") { s += $2; seen = 1 } END { if (seen) print s }'
}
ready() { # server
    case "$1" in
        redis) [[ "$(redis ping)" == PONG ]] ;;
        edgewise) [[ "$(curl -s -o /dev/null --max-time 2 -w '%{http_code}' "http://$ADDR:$EW_PORT/metrics" 2>/dev/null)" == 200 ]] ;;
    esac
}

start_server() { # name
    local name="$1" i
    rm -rf "$WORK/data"
    mkdir -p "$WORK/data"
    case "$name" in
        redis)
            # Compiled-in defaults plus the durability under test; no RDB snapshots, no AOF
            # rewrite during the run (it would fork a child onto the same core).
            setsid taskset -c "$SERVER_CPU" redis-server --bind "$ADDR" --port "$REDIS_PORT" \
                --dir "$WORK/data" --appendonly yes --appendfsync always --save "" \
                --auto-aof-rewrite-percentage 0 --daemonize no --logfile "" \
                >"$WORK/redis.out" 2>&1 </dev/null &
            ;;
        edgewise)
            setsid taskset -c "$SERVER_CPU" env RUST_LOG="${EDGEWISE_LOG:-warn}" "$EW_BIN" \
                --config "$WORK/edgewise.toml" >>"$WORK/edgewise.out" 2>&1 </dev/null &
            ;;
    esac
    SERVER_PID=$! SERVER_NAME=$name
    for ((i = 0; i < STARTUP_TIMEOUT * 10; i++)); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        if ready "$name"; then return 0; fi
        sleep 0.1
    done
    log "$name did not start; its output:"
    tail -n 30 "$WORK/$name.out" 2>/dev/null | sed 's/^/    /' >&2 || true
    stop_server
    die "$name did not start"
}
server_alive() { [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; }

# ---------------------------------------------------------------- measuring helpers
proc_ticks() { # user+system ticks of process $1, all threads
    { cat "/proc/$1/stat" 2>/dev/null || echo "x) x x x x x x x x x x x 0 0"; } |
        awk '{ sub(/^.*\) /, ""); print $12 + $13 }'
}
# fsync probe: ms per 4 KiB write + fdatasync on the work dir's disk (the floor of every
# acknowledged write under fsync-always; on a shared disk it moves a lot)
sync_probe() {
    local out
    out=$(cd "$WORK" && timeout 30 dd if=/dev/zero of=probe bs=4k count=100 oflag=dsync 2>&1 | tail -n1) || true
    rm -f "$WORK/probe"
    awk '{ for (i = 1; i <= NF; i++) if ($i == "s,") { printf "%.2f", $(i - 1) * 1000 / 100; exit } }' <<<"$out"
}

# measure server kind size batch round: one run of the load generator on LOAD_CPU, its line
# of figures plus "srv gen other syncs" appended, in $WORK/<server>.<kind>.<size>.<batch>.<round>
measure() {
    local server="$1" kind="$2" size="$3" batch="$4" r="$5" mode secs max rc=0
    local f="$WORK/$server.$kind.$size.$batch.$r"
    local port=$REDIS_PORT
    [[ "$server" == edgewise ]] && port=$EW_PORT
    case "$server.$kind" in
        redis.write) mode=redis-put ;; edgewise.write) mode=kinesis-put ;;
        redis.read) mode=redis-get ;; edgewise.read) mode=kinesis-get ;;
    esac
    if [[ "$kind" == write ]]; then
        secs=$DURATION
        max=$((MAX_WRITE_MB * 1000000 / (size * batch) + 1))
        set -- --conns "$CONNS" --batch "$batch" --size "$size"
    else
        secs=$READ_DURATION
        max=10000000
        set -- --batch "$READ_LIMIT"
    fi
    local t0 t1 b0 b1 g0 g1 w0 w1
    if [[ "$kind" == write && -n "$PERF_OK" ]]; then
        perf stat -e syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync -x, -o "$f.perf" \
            -p "$SERVER_PID" >/dev/null 2>&1 &
        PERF_PID=$!
        sleep 0.3
    fi
    t0=$(proc_ticks "$SERVER_PID"); b0=$(cpu_busy); children_cpu; g0=$CHILD_CPU; w0=$(date +%s.%N)
    taskset -c "$LOAD_CPU" "$LG_BIN" "$mode" --addr "$ADDR:$port" --target "$STREAM" \
        --duration "$secs" --max-requests "$max" "$@" >"$f.out" 2>"$f.err" &
    LOAD_PID=$!
    wait "$LOAD_PID" || rc=$?
    LOAD_PID=""
    w1=$(date +%s.%N); children_cpu; g1=$CHILD_CPU; t1=$(proc_ticks "$SERVER_PID"); b1=$(cpu_busy)
    local syncs=-
    if [[ -n "$PERF_PID" ]]; then
        kill -INT "$PERF_PID" 2>/dev/null || true
        wait "$PERF_PID" 2>/dev/null || true
        PERF_PID=""
        syncs=$(awk -F, '$3 ~ /sys_enter_f(data)?sync/ { n += $1 } END { print n + 0 }' "$f.perf" 2>/dev/null || echo -)
    fi
    if ((rc != 0)) || ! grep -q '^records=' "$f.out"; then
        log "$server $kind: the load generator failed: $(head -c 300 "$f.err")"
        NOTES+=("$server $kind ${size} B x$batch round $r: load generator failed: $(head -c 200 "$f.err")")
        FAILED=1
        return 1
    fi
    [[ -s "$f.err" ]] && NOTES+=("$server $kind ${size} B x$batch round $r: $(head -c 200 "$f.err")")
    local cpu
    cpu=$(cpu_split $((t1 - t0)) $((b1 - b0)) "$g0" "$g1" "$w0" "$w1")
    echo "$(cat "$f.out") cpu=${cpu// //} syncs=$syncs" >"$f.res"
}
val() { # file key: the value of key=... in the file's line, "-" if missing
    local v
    v=$(tr ' ' '\n' <"$1" 2>/dev/null | awk -F= -v k="$2" '$1 == k { print $2; exit }') || true
    echo "${v:--}"
}

stored_count() { # the server's record count for the stream
    case "$SERVER_NAME" in
        redis) redis xlen "$STREAM" || true ;;
        edgewise) ew_metric edgewise_stream_records_in_total ;;
    esac
}

# One run: fresh server, write for DURATION, check the count, read for READ_DURATION, stop.
run_once() { # server size batch round
    local server="$1" size="$2" batch="$3" r="$4" f wrote stored pass
    f="$WORK/$server.write.$size.$batch.$r"
    (($(free_mb) >= MIN_FREE_MB)) || {
        NOTES+=("stopped before $server ${size} B x$batch round $r: only $(free_mb) MB free (MIN_FREE_MB=$MIN_FREE_MB)")
        FAILED=1
        return 1
    }
    start_server "$server"
    log "$server: write ${size} B x$batch, $CONNS connections, round $r/$ROUNDS, ${DURATION}s"
    measure "$server" write "$size" "$batch" "$r" || { stop_server; return 0; }
    server_alive || { NOTES+=("$server died during the write run (see $WORK/$server.out)"); FAILED=1; stop_server; return 0; }
    wrote=$(val "$f.res" records)
    stored=$(stored_count)
    echo "stored=${stored:--} data_mb=$(du -sm "$WORK/data" | cut -f1)" >>"$f.res"
    if [[ "$stored" != "$wrote" ]]; then
        NOTES+=("$server ${size} B x$batch round $r: acknowledged $wrote records, the server holds ${stored:-?}")
        FAILED=1
    fi
    if ((READ_DURATION > 0)); then
        log "$server: read ${size} B records, Limit/COUNT $READ_LIMIT, round $r/$ROUNDS, ${READ_DURATION}s"
        if measure "$server" read "$size" "$batch" "$r"; then
            pass=$(val "$WORK/$server.read.$size.$batch.$r.res" pass_records)
            if [[ "$pass" != - && "$pass" != "$stored" ]]; then
                NOTES+=("$server ${size} B x$batch round $r: a full read returned $pass records of $stored")
                FAILED=1
            fi
        fi
        server_alive || { NOTES+=("$server died during the read run (see $WORK/$server.out)"); FAILED=1; }
    fi
    stop_server
    rm -rf "$WORK/data"
}

# ---------------------------------------------------------------- run
busy_note
SYNC_BEFORE=$(sync_probe)
log "redis :$REDIS_PORT, edgewise :$EW_PORT; fdatasync probe ${SYNC_BEFORE:-?} ms; work dir $WORK"

ROWS=()
for size in "${SIZE_LIST[@]}"; do
    for batch in "${BATCH_LIST[@]}"; do ROWS+=("$size.$batch"); done
done
for ((r = 1; r <= ROUNDS; r++)); do
    for row in "${ROWS[@]}"; do
        order=(redis edgewise)
        ((r % 2 == 0)) && order=(edgewise redis)
        for server in "${order[@]}"; do
            run_once "$server" "${row%%.*}" "${row#*.}" "$r" || break 3
        done
    done
done
SYNC_AFTER=$(sync_probe)

# ---------------------------------------------------------------- report
# Reads do not depend on the batch size the records were written with: a read row is one
# record size, over the runs of every batch size.
runs_of() { # server kind size batch: the .res files, in run order
    local r b batches=("$4")
    [[ "$2" == read ]] && batches=("${BATCH_LIST[@]}")
    for ((r = 1; r <= ROUNDS; r++)); do
        for b in "${batches[@]}"; do echo "$WORK/$1.$2.$3.$b.$r.res"; done
    done
}
best() { # server kind size batch: the .res file of the run with the most records/s
    local f bestf="" bestv=-1 v
    while read -r f; do
        [[ -f "$f" ]] || continue
        v=$(val "$f" rps)
        if awk -v a="$v" -v b="$bestv" 'BEGIN { exit !(a > b) }'; then bestf=$f bestv=$v; fi
    done < <(runs_of "$@")
    echo "$bestf"
}
rounds() { # server kind size batch: records/s of each run
    local out="" f
    while read -r f; do
        if [[ -f "$f" ]]; then out+="$(val "$f" rps) "; else out+="- "; fi
    done < <(runs_of "$@")
    echo "${out% }"
}
per_sync() { # res file: records per fdatasync
    local s n
    s=$(val "$1" syncs) n=$(val "$1" records)
    awk -v s="$s" -v n="$n" 'BEGIN { if (s + 0 > 0) printf "%.0f", n / s; else print "-" }'
}
size_label() { if (($1 % 1024 == 0)); then echo "$(($1 / 1024)) KiB"; else echo "$1 B"; fi; }

{
    echo
    echo "Stream benchmark: edgewise-cdn PutRecords/GetRecords (fsync = \"always\", $SHARDS shard(s)) vs"
    echo "Redis $REDIS_VERSION XADD/XRANGE (appendonly yes, appendfsync always), both on CPU $SERVER_CPU, stream_loadgen on CPU $LOAD_CPU"
    echo "write: $CONNS connections, each one PutRecords / one pipeline of XADDs of B records in flight, ${DURATION}s;"
    if ((READ_DURATION > 0)); then
        echo "read: one connection, GetRecords Limit / XRANGE COUNT $READ_LIMIT from the start over all shards, repeated,"
        echo "${READ_DURATION}s, after each write run (a read row is the best over every batch size and round)"
    fi
    echo "best of $ROUNDS alternating runs (ABBA), each on a fresh server; MB/s = 10^6 bytes of record data"
    echo "fdatasync probe (4 KiB, dd oflag=dsync): ${SYNC_BEFORE:-?} ms before, ${SYNC_AFTER:-?} ms after"
    [[ -n "$BG_NOTE" ]] && echo "$BG_NOTE"
    echo
    printf '%-20s | %11s | %11s | %5s | %8s | %8s | %13s | %13s | %9s | %9s | %s\n' \
        row "redis rec/s" "edgew rec/s" ratio "redis MB" "edgew MB" "redis p50/p99" "edgew p50/p99" \
        "redis s/g" "edgew s/g" "rec/sync r/e"
    echo "---------------------+-------------+-------------+-------+----------+----------+---------------+---------------+-----------+-----------+-------------"
    for kind in write read; do
        ((READ_DURATION > 0)) || [[ "$kind" == write ]] || continue
        for row in "${ROWS[@]}"; do
            size=${row%%.*} batch=${row#*.}
            [[ "$kind" == read && "$batch" != "${BATCH_LIST[0]}" ]] && continue   # one row per size
            if [[ "$kind" == write ]]; then label="PUT $(size_label "$size") x$batch"; else
                label="GET $(size_label "$size") x$READ_LIMIT"; fi
            fr=$(best redis "$kind" "$size" "$batch") fe=$(best edgewise "$kind" "$size" "$batch")
            g() { if [[ -n "$1" ]]; then val "$1" "$2"; else echo -; fi; }
            cpu() { local c; c=$(g "$1" cpu); [[ "$c" == - ]] && { echo -; return; }
                IFS=/ read -r s gg _ <<<"$c"; echo "$s%/$gg%"; }
            sync_cell() { if [[ "$kind" == write && -n "$1" ]]; then per_sync "$1"; else echo -; fi; }
            printf '%-20s | %11s | %11s | %5s | %8s | %8s | %13s | %13s | %9s | %9s | %s\n' "$label" \
                "$(g "$fr" rps)" "$(g "$fe" rps)" "$(ratio "$(g "$fe" rps)" "$(g "$fr" rps)")" \
                "$(g "$fr" mbps)" "$(g "$fe" mbps)" \
                "$(g "$fr" p50_ms)/$(g "$fr" p99_ms)" "$(g "$fe" p50_ms)/$(g "$fe" p99_ms)" \
                "$(cpu "$fr")" "$(cpu "$fe")" "$(sync_cell "$fr")/$(sync_cell "$fe")"
        done
    done
    echo "ratio = edgewise / redis records/s. p50/p99: ms per request (one batch of records; for reads one"
    echo "page), as the load generator saw it. s/g: CPU of the server / of the load generator, % of one core."
    echo "rec/sync: records acknowledged per fdatasync (perf stat on the server; '-' without perf)."
    echo
    echo "records/s of each round (the table shows the best):"
    for kind in write read; do
        ((READ_DURATION > 0)) || [[ "$kind" == write ]] || continue
        for row in "${ROWS[@]}"; do
            size=${row%%.*} batch=${row#*.}
            [[ "$kind" == read && "$batch" != "${BATCH_LIST[0]}" ]] && continue
            printf '  %-5s %-8s x%-5s redis: %-24s edgewise: %s\n' "$kind" "$(size_label "$size")" \
                "$([[ $kind == write ]] && echo "$batch" || echo "$READ_LIMIT")" \
                "$(rounds redis "$kind" "$size" "$batch")" "$(rounds edgewise "$kind" "$size" "$batch")"
        done
    done
    other=$(cat "$WORK"/*.res 2>/dev/null | tr ' ' '\n' | awk -F= '$1 == "cpu" { split($2, c, "/"); if (c[3] > m) m = c[3] } END { print m + 0 }')
    echo "highest 'other' CPU in a run (neither server nor load generator: kernel work, other jobs): ${other}%"
    if [[ -s "$WORK/edgewise.out" ]]; then
        echo "edgewise log (RUST_LOG=${EDGEWISE_LOG:-warn}): $(wc -l <"$WORK/edgewise.out") lines, most frequent:"
        sed -E 's/^[0-9T:.Z-]+ +//' "$WORK/edgewise.out" | sort | uniq -c | sort -rn | head -n 3 | sed 's/^/    /'
    fi
    if ((${#NOTES[@]})); then
        echo "problems:"
        printf '    %s\n' "${NOTES[@]}"
    else
        echo "verified: every run's stored record count (XLEN / records_in) equals the records acknowledged"
        if ((READ_DURATION > 0)); then echo "and every full read pass returned all of them"; fi
    fi
} | tee "$ROOT/target/bench-stream/last-summary.txt"

if ((FAILED)); then
    log "something could not run; see $WORK"
    exit 1
fi
