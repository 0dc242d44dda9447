#!/usr/bin/env bash
# DNS benchmark: Edgewise (edgewise-dns) against NSD on the same zone, same
# query mix, same single core. See README.md in this folder.
#
# Environment knobs (all optional):
#   ONLY=nsd|edgewise   run one server only (default: both)
#   DURATION=20         seconds per measured dnsperf run
#   RATE=20000          queries/s of the fixed-rate (latency) run
#   CLIENTS=4           dnsperf -c (client sockets)
#   OUTSTANDING=200     dnsperf -q (max queries in flight)
#   WARMUP=2            seconds of unmeasured load before measuring (0: none)
#   NSD_PORT=53532      UDP port for NSD (Edgewise's comes from edgewise-bench.toml)
#   SERVER_CPU=1 LOAD_CPU=0   cores the server and dnsperf are pinned to
#   STARTUP_TIMEOUT=60  seconds to wait for a server to answer
#   KEEP=1              keep the work dir (configs, logs, raw dnsperf output)
#   EDGEWISE_BIN=path   use this edgewise-dns binary and skip the cargo build
#   EDGEWISE_LOG=info   RUST_LOG for edgewise-dns
#
# Exit status: non-zero only when something could not run (tools missing and
# not installable, build failure, a server that did not start or that died
# during the run). Slow results never fail the script.
#
# Traffic goes only to 127.0.0.1. Every wait loop is bounded.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

ONLY="${ONLY:-}"
DURATION="${DURATION:-20}"
RATE="${RATE:-20000}"
CLIENTS="${CLIENTS:-4}"
OUTSTANDING="${OUTSTANDING:-200}"
WARMUP="${WARMUP:-2}"
NSD_PORT="${NSD_PORT:-53532}"
SERVER_CPU="${SERVER_CPU:-1}"
LOAD_CPU="${LOAD_CPU:-0}"
STARTUP_TIMEOUT="${STARTUP_TIMEOUT:-60}"
KEEP="${KEEP:-}"

ZONE_FILE="$HERE/bench.example.zone"
QUERIES="$HERE/queries.txt"
EW_CONFIG="$HERE/edgewise-bench.toml"
EW_BIN="${EDGEWISE_BIN:-$ROOT/target/release/edgewise-dns}"
ADDR=127.0.0.1

export PATH="$PATH:/usr/sbin:/sbin:$HOME/.cargo/bin"

log() { printf '[bench-dns] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for v in DURATION RATE CLIENTS OUTSTANDING WARMUP NSD_PORT SERVER_CPU LOAD_CPU STARTUP_TIMEOUT; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer (got '${!v}')"
done
((DURATION > 0 && RATE > 0)) || die "DURATION and RATE must be > 0"
case "$ONLY" in
    "") SERVERS=(nsd edgewise) ;;
    nsd) SERVERS=(nsd) ;;
    edgewise) SERVERS=(edgewise) ;;
    *) die "ONLY must be empty, 'nsd' or 'edgewise' (got '$ONLY')" ;;
esac
[[ -f "$ZONE_FILE" && -f "$QUERIES" ]] || die "missing $ZONE_FILE or $QUERIES"

# ---------------------------------------------------------------- tools
install_missing() {
    local need=()
    command -v nsd >/dev/null 2>&1 || need+=(nsd)
    command -v dnsperf >/dev/null 2>&1 || need+=(dnsperf)
    command -v taskset >/dev/null 2>&1 || need+=(util-linux)
    command -v python3 >/dev/null 2>&1 || need+=(python3)
    ((${#need[@]} == 0)) && return 0
    log "installing: ${need[*]}"
    local sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to install ${need[*]}"
        sudo=(sudo)
    fi
    "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 \
        install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    for c in nsd dnsperf taskset python3; do
        command -v "$c" >/dev/null 2>&1 || die "$c still missing after apt-get install"
    done
}
install_missing
PY="$(python3 -c 'import sys; print(sys.executable)')"   # skip shims (pyenv) on every call
NCPU="$(nproc)"
((SERVER_CPU < NCPU && LOAD_CPU < NCPU)) || die "SERVER_CPU/LOAD_CPU must be < $NCPU (nproc)"
((SERVER_CPU != LOAD_CPU)) || log "warning: server and dnsperf share CPU $SERVER_CPU"

# ---------------------------------------------------------------- build
EW_PORT=""
if [[ " ${SERVERS[*]} " == *" edgewise "* ]]; then
    EW_LISTEN="$(grep -E '^[[:space:]]*listen[[:space:]]*=' "$EW_CONFIG" | head -n1)"
    EW_PORT="$(grep -oE '127\.0\.0\.1:[0-9]+' <<<"$EW_LISTEN" | head -n1 | cut -d: -f2)" || true
    [[ -n "$EW_PORT" ]] || die "$EW_CONFIG must listen on 127.0.0.1:PORT (found: $EW_LISTEN)"
    [[ "$EW_PORT" != "$NSD_PORT" ]] || die "NSD_PORT equals the Edgewise port $EW_PORT"
    if [[ -z "${EDGEWISE_BIN:-}" ]]; then
        command -v cargo >/dev/null 2>&1 || die "cargo not found"
        log "building edgewise-dns (release)"
        (cd "$ROOT" && cargo build --release --bin edgewise-dns) || die "cargo build --release --bin edgewise-dns failed"
    fi
    [[ -x "$EW_BIN" ]] || die "$EW_BIN missing after build"
fi

# ---------------------------------------------------------------- work dir, cleanup
mkdir -p "$ROOT/target/bench-dns"
WORK="$(mktemp -d "$ROOT/target/bench-dns/run.XXXXXX")"
SERVER_PGID=""   # process group of the running server (we start it with setsid)
FAILED=0

stop_server() {
    local pg="$SERVER_PGID" i
    [[ -n "$pg" ]] || return 0
    SERVER_PGID=""
    kill -TERM -- "-$pg" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do       # up to 5 s for a clean shutdown
        kill -0 -- "-$pg" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL -- "-$pg" 2>/dev/null || true
    wait "$pg" 2>/dev/null || true
}

on_exit() {
    local rc=$?
    stop_server
    if [[ -n "$KEEP" || $rc -ne 0 || $FAILED -ne 0 ]]; then
        log "work dir kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- helpers (python)
cat >"$WORK/probe.py" <<'PY'
# probe.py MODE PORT [PID TIMEOUT]
#   MODE=free:  exit 0 if 127.0.0.1:PORT/udp can be bound (nobody listening)
#   MODE=ready: query "bench.example SOA" until a NOERROR answer comes back,
#               the process PID is gone, or TIMEOUT seconds pass.
import os, random, socket, struct, sys, time

mode, port = sys.argv[1], int(sys.argv[2])
addr = ("127.0.0.1", port)
if mode == "free":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(addr)
    except OSError:
        sys.exit(1)
    sys.exit(0)

pid, timeout = int(sys.argv[3]), float(sys.argv[4])
qname = b"".join(bytes([len(l)]) + l for l in b"bench.example".split(b".")) + b"\0"
deadline = time.monotonic() + timeout
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.2)
last = "no answer"
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        print("server process exited", file=sys.stderr)
        sys.exit(2)
    qid = random.randrange(65536)
    s.sendto(struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0) + qname + struct.pack(">HH", 6, 1), addr)
    end = time.monotonic() + 0.2
    while time.monotonic() < end:
        try:
            data = s.recv(4096)
        except (socket.timeout, ConnectionRefusedError):
            time.sleep(0.05)
            break
        if len(data) >= 12:
            rid, flags, _, an = struct.unpack(">HHHH", data[:8])
            if rid == qid:
                if flags & 0xF == 0 and an >= 1:
                    sys.exit(0)
                last = f"rcode {flags & 0xF}, {an} answers"
print(f"not ready after {timeout}s ({last})", file=sys.stderr)
sys.exit(1)
PY

cat >"$WORK/vparse.py" <<'PY'
# vparse.py PREFIX < "dnsperf -v" output
#   PREFIX.txt    everything except the per-query lines (dnsperf's statistics)
#   PREFIX.lat    "n p50 p90 p99 p999 max" in microseconds
#   PREFIX.rcodes sorted unique "name type rcode" lines
import math, sys

prefix = sys.argv[1]
lat, rc = [], set()
with open(prefix + ".txt", "w") as other:
    for line in sys.stdin:
        if line.startswith("> "):
            f = line.split()
            if len(f) == 5:
                rc.add(f"{f[2]} {f[3]} {f[1]}")
                try:
                    lat.append(float(f[4]))
                except ValueError:
                    pass
                continue
        other.write(line)
lat.sort()

def pct(p):
    return lat[max(0, math.ceil(p * len(lat)) - 1)] * 1e6 if lat else float("nan")

with open(prefix + ".lat", "w") as f:
    f.write(f"{len(lat)} {pct(.5):.0f} {pct(.9):.0f} {pct(.99):.0f} {pct(.999):.0f} {pct(1):.0f}\n")
with open(prefix + ".rcodes", "w") as f:
    f.writelines(l + "\n" for l in sorted(rc))
PY

# ---------------------------------------------------------------- measurement helpers
# CPU ticks (user+system) of every process in process group $1.
group_ticks() {
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } |
        awk -v g="$1" '{ sub(/^.*\) /, ""); if ($3 == g) s += $12 + $13 } END { print s + 0 }'
}
# "busy total" jiffies (USER_HZ) of CPU $1 from /proc/stat.
cpu_jiffies() {
    awk -v c="cpu$1" '$1 == c { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat
}
# value after "KEY:" in a dnsperf statistics file (first word)
stat_field() { { grep -m1 -E "^[[:space:]]*$1:" "$2" 2>/dev/null || true; } | sed -E "s/^[[:space:]]*$1:[[:space:]]*//" | awk '{print $1}'; }

server_alive() { [[ -n "$SERVER_PGID" ]] && kill -0 -- "-$SERVER_PGID" 2>/dev/null; }

DNSPERF_COMMON=(-s "$ADDR" -d "$QUERIES" -c "$CLIENTS" -T 1 -q "$OUTSTANDING")

start_server() { # name -> sets SERVER_PGID, PORT
    local name="$1"
    case "$name" in
        nsd)
            PORT="$NSD_PORT"
            mkdir -p "$WORK/nsd"
            cat >"$WORK/nsd/nsd.conf" <<EOF
server:
    ip-address: $ADDR@$PORT
    do-ip4: yes
    do-ip6: no
    server-count: 1
    reuseport: no
    username: ""
    chroot: ""
    zonesdir: "$WORK/nsd"
    database: ""
    zonelistfile: "$WORK/nsd/zone.list"
    xfrdfile: "$WORK/nsd/xfrd.state"
    xfrdir: "$WORK/nsd"
    pidfile: "$WORK/nsd/nsd.pid"
    logfile: "$WORK/nsd/nsd.log"
    verbosity: 0
    hide-version: yes
    zonefiles-check: no
    zonefiles-write: 0
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
    rrl-slip: 0
remote-control:
    control-enable: no
zone:
    name: bench.example
    zonefile: "$ZONE_FILE"
EOF
            nsd-checkconf "$WORK/nsd/nsd.conf" || { log "nsd-checkconf rejected the config"; return 1; }
            "$PY" "$WORK/probe.py" free "$PORT" || { log "port $PORT/udp is already in use"; return 1; }
            setsid taskset -c "$SERVER_CPU" nsd -d -c "$WORK/nsd/nsd.conf" \
                >"$WORK/nsd.out" 2>&1 </dev/null &
            SERVER_PGID=$!
            ;;
        edgewise)
            PORT="$EW_PORT"
            "$PY" "$WORK/probe.py" free "$PORT" || { log "port $PORT/udp is already in use"; return 1; }
            (cd "$ROOT" && RUST_LOG="${EDGEWISE_LOG:-info}" exec setsid taskset -c "$SERVER_CPU" \
                "$EW_BIN" --config "$EW_CONFIG") >"$WORK/edgewise.out" 2>&1 </dev/null &
            SERVER_PGID=$!
            ;;
    esac
    if ! "$PY" "$WORK/probe.py" ready "$PORT" "$SERVER_PGID" "$STARTUP_TIMEOUT"; then
        log "$name did not start; its output:"
        local logs=("$WORK/$name.out")
        [[ "$name" == nsd ]] && logs+=("$WORK/nsd/nsd.log")
        cat "${logs[@]}" 2>/dev/null | tail -n 30 | sed 's/^/    /' >&2 || true
        stop_server
        return 1
    fi
    log "$name answering on $ADDR:$PORT (pid $SERVER_PGID, CPU $SERVER_CPU)"
    if [[ "$name" == edgewise ]]; then
        grep -m1 -i 'listening on' "$WORK/edgewise.out" | sed 's/^/    /' >&2 || true
    fi
}

bench_server() { # name -> writes $WORK/<name>.{max,fixed}.*
    local name="$1" t0 t1 c0 c1
    if ! start_server "$name"; then
        FAILED=1
        echo "failed" >"$WORK/$name.status"
        return 0
    fi
    if ((WARMUP > 0)); then
        taskset -c "$LOAD_CPU" dnsperf "${DNSPERF_COMMON[@]}" -p "$PORT" -l "$WARMUP" >/dev/null 2>&1 || true
    fi

    log "$name: max throughput, ${DURATION}s (dnsperf -c $CLIENTS -q $OUTSTANDING on CPU $LOAD_CPU)"
    t0=$(group_ticks "$SERVER_PGID"); read -r c0 _ < <(cpu_jiffies "$LOAD_CPU")
    taskset -c "$LOAD_CPU" dnsperf "${DNSPERF_COMMON[@]}" -p "$PORT" -l "$DURATION" \
        >"$WORK/$name.max.txt" 2>&1 || log "dnsperf exited non-zero (see $WORK/$name.max.txt)"
    t1=$(group_ticks "$SERVER_PGID"); read -r c1 _ < <(cpu_jiffies "$LOAD_CPU")
    local run; run=$(stat_field "Run time \(s\)" "$WORK/$name.max.txt")
    awk -v t=$((t1 - t0)) -v c=$((c1 - c0)) -v r="${run:-0}" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { if (r > 0) printf "%.0f %.0f\n", 100*t/hz/r, 100*c/hz/r; else print "- -" }' \
        >"$WORK/$name.max.cpu"
    if ! server_alive; then
        log "$name died during the throughput run"
        FAILED=1; echo "died" >"$WORK/$name.status"; stop_server; return 0
    fi

    log "$name: fixed rate $RATE q/s, ${DURATION}s (per-query latencies from dnsperf -v)"
    # -v output goes to a file, parsed afterwards: a slow pipe reader would stall dnsperf
    # and show up as latency.
    taskset -c "$LOAD_CPU" dnsperf "${DNSPERF_COMMON[@]}" -p "$PORT" -l "$DURATION" -Q "$RATE" -v \
        >"$WORK/$name.fixed.raw" 2>&1 || log "dnsperf exited non-zero (see $WORK/$name.fixed.txt)"
    "$PY" "$WORK/vparse.py" "$WORK/$name.fixed" <"$WORK/$name.fixed.raw"
    rm -f "$WORK/$name.fixed.raw"
    if ! server_alive; then
        log "$name died during the fixed-rate run"
        FAILED=1; echo "died" >"$WORK/$name.status"; stop_server; return 0
    fi
    echo "ok" >"$WORK/$name.status"
    stop_server
}

log "zone $(basename "$ZONE_FILE"), $(wc -l <"$QUERIES") queries, servers: ${SERVERS[*]}; work dir $WORK"
for s in "${SERVERS[@]}"; do
    bench_server "$s"
done

# ---------------------------------------------------------------- report
nsd_qps=""
if [[ -f "$WORK/nsd.max.txt" ]]; then nsd_qps=$(stat_field "Queries per second" "$WORK/nsd.max.txt"); fi

{
    echo
    echo "DNS benchmark: zone bench.example ($(grep -cvE '^[[:space:]]*(;|\$|$)' "$ZONE_FILE") records), $(wc -l <"$QUERIES") queries in the mix"
    echo "server pinned to CPU $SERVER_CPU, dnsperf $(dnsperf -h 2>&1 | awk '/^Version/ {print $2}') to CPU $LOAD_CPU; UDP on $ADDR; ${DURATION}s per run"
    echo "max: dnsperf -c $CLIENTS -q $OUTSTANDING as fast as it can; fixed: -Q $RATE, latency percentiles over every response"
    echo
    printf '%-9s | %10s | %6s | %8s | %8s | %8s | %-22s | %8s | %8s\n' \
        server "QPS (max)" "vs NSD" "p50 us" "p99 us" "p99.9 us" "lost (max / fixed)" "srv CPU" "gen CPU"
    printf '%s\n' "----------+------------+--------+----------+----------+----------+------------------------+----------+---------"
    for s in "${SERVERS[@]}"; do
        st=$(cat "$WORK/$s.status" 2>/dev/null || echo failed)
        if [[ "$st" == failed ]]; then
            printf '%-9s | %s\n' "$s" "did not start"
            continue
        fi
        qps=$(stat_field "Queries per second" "$WORK/$s.max.txt" 2>/dev/null || true)
        lmax=$(stat_field "Queries lost" "$WORK/$s.max.txt" 2>/dev/null || true)
        lfix=$(stat_field "Queries lost" "$WORK/$s.fixed.txt" 2>/dev/null || true)
        read -r _ p50 _ p99 p999 _ <"$WORK/$s.fixed.lat" 2>/dev/null || { p50=-; p99=-; p999=-; }
        read -r scpu gcpu _ <"$WORK/$s.max.cpu" 2>/dev/null || { scpu=-; gcpu=-; }
        ratio=$(awk -v a="${qps:-0}" -v b="${nsd_qps:-0}" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "-" }')
        printf '%-9s | %10.0f | %6s | %8s | %8s | %8s | %-22s | %7s%% | %7s%%\n' \
            "$s" "${qps:-0}" "$ratio" "$p50" "$p99" "$p999" "${lmax:--} / ${lfix:--}" "$scpu" "$gcpu"
        [[ "$st" == died ]] && printf '%-9s   (server died during the run)\n' ""
    done
    echo
    echo "srv CPU: server process(es) CPU time / wall time during the max run (100% = its core saturated);"
    echo "gen CPU: busy share of the dnsperf core. If gen CPU is ~100% and srv CPU well below, the load"
    echo "generator, not the server, set the max QPS."
    echo
    for s in "${SERVERS[@]}"; do
        [[ -f "$WORK/$s.fixed.txt" ]] || continue
        printf '%-9s response codes (fixed run): %s\n' "$s" \
            "$(grep -m1 'Response codes:' "$WORK/$s.fixed.txt" | sed -E 's/^[[:space:]]*Response codes:[[:space:]]*//')"
    done
    if [[ -f "$WORK/nsd.fixed.rcodes" && -f "$WORK/edgewise.fixed.rcodes" ]]; then
        diffs=$(comm -3 "$WORK/nsd.fixed.rcodes" "$WORK/edgewise.fixed.rcodes" | wc -l)
        if ((diffs == 0)); then
            echo "rcodes: every distinct query got the same response code from both servers"
        else
            echo "rcodes: $diffs 'name type rcode' lines differ between NSD and Edgewise (first ones; left NSD, right Edgewise):"
            comm -3 "$WORK/nsd.fixed.rcodes" "$WORK/edgewise.fixed.rcodes" | head -n 10 | sed 's/^/    /'
        fi
    fi
} | tee "$ROOT/target/bench-dns/last-summary.txt"

if ((FAILED)); then
    log "a server failed to start or died; see $WORK"
    exit 1
fi
