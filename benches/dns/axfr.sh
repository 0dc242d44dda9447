#!/usr/bin/env bash
# AXFR benchmark: a full zone transfer of one generated zone (50,000 records by default) from
# edgewise-dns and from NSD, time, bytes and messages. See README.md in this folder.
#
# Environment knobs (all optional):
#   RECORDS=50000       records in the generated zone (benches/dns/axfr.py zone)
#   ROUNDS=10           repeated transfers per server and mode (alternating servers, ABBA)
#   COLD_ROUNDS=5       first transfers per server and mode, each after a fresh start of both
#   TSIG=yes            also transfer signed with an hmac-sha256 key (no: unsigned only)
#   DIG_ROUNDS=3        dig AXFR runs per server (its "XFR size" and "Query time"; 0: none)
#   NSD_PORT=53552 EW_PORT=53551   TCP/UDP ports on 127.0.0.1
#   SERVER_CPU=1 LOAD_CPU=0        cores the servers and the clients are pinned to
#   STARTUP_TIMEOUT=60  seconds to wait for a server to answer
#   KEEP=1              keep the work dir (zone, configs, logs, raw results)
#   EDGEWISE_BIN=path   use this edgewise-dns binary and skip the cargo build
#   EDGEWISE_LOG=warn   RUST_LOG for edgewise-dns
#
# Exit status: non-zero only when something could not run (tools, build, a server that did
# not start or died, a transfer that failed or came back malformed). Slow results never fail it.
#
# Traffic goes only to 127.0.0.1. Every wait loop is bounded; every socket has a timeout.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH=bench-axfr
# shellcheck source=SCRIPTDIR/../lib.sh
source "$HERE/../lib.sh"

RECORDS="${RECORDS:-50000}"
ROUNDS="${ROUNDS:-10}"
COLD_ROUNDS="${COLD_ROUNDS:-5}"
TSIG="${TSIG:-yes}"
DIG_ROUNDS="${DIG_ROUNDS:-3}"
NSD_PORT="${NSD_PORT:-53552}"
EW_PORT="${EW_PORT:-53551}"
SERVER_CPU="${SERVER_CPU:-1}"
LOAD_CPU="${LOAD_CPU:-0}"
STARTUP_TIMEOUT="${STARTUP_TIMEOUT:-60}"
KEEP="${KEEP:-}"
EW_BIN="${EDGEWISE_BIN:-$ROOT/target/release/edgewise-dns}"
ADDR=127.0.0.1
ORIGIN=bench.example

require_uints RECORDS ROUNDS COLD_ROUNDS DIG_ROUNDS NSD_PORT EW_PORT SERVER_CPU LOAD_CPU STARTUP_TIMEOUT
((RECORDS >= 10 && ROUNDS > 0)) || die "RECORDS must be >= 10 and ROUNDS > 0"
[[ "$TSIG" == yes || "$TSIG" == no ]] || die "TSIG must be yes or no"
((NSD_PORT != EW_PORT)) || die "NSD_PORT and EW_PORT must differ"

install_tools nsd=nsd dig=bind9-dnsutils taskset=util-linux python3=python3
PY="$(python3 -c 'import sys; print(sys.executable)')"   # skip shims (pyenv) on every call
NCPU="$(nproc)"
((SERVER_CPU < NCPU && LOAD_CPU < NCPU)) || die "SERVER_CPU/LOAD_CPU must be < $NCPU (nproc)"
ports_free "$NSD_PORT" "$EW_PORT"
build_edgewise edgewise-dns

# ---------------------------------------------------------------- work dir, cleanup
mkdir -p "$ROOT/target/bench-axfr"
WORK="$(mktemp -d "$ROOT/target/bench-axfr/run.XXXXXX")"
declare -A PGID=()
FAILED=0

stop_server() { # name
    local pg="${PGID[$1]:-}"
    [[ -n "$pg" ]] || return 0
    PGID[$1]=""
    kill_group "$pg" 50
}

on_exit() {
    local rc=$? s
    stop_load
    for s in "${!PGID[@]}"; do stop_server "$s"; done
    keep_work "$rc"
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- zone and configs
log "generating a zone of $RECORDS records"
"$PY" "$HERE/axfr.py" zone "$ORIGIN" "$RECORDS" >"$WORK/axfr.zone"
# A fresh key per run: nothing secret is ever committed or reused.
SECRET="$(head -c 32 /dev/urandom | base64)"

mkdir -p "$WORK/nsd"
{ nsd_server "$WORK/nsd" "$NSD_PORT"; cat <<CONF; } >"$WORK/nsd/nsd.conf"
    rrl-ratelimit: 0
remote-control:
    control-enable: no
key:
    name: xfr
    algorithm: hmac-sha256
    secret: "$SECRET"
zone:
    name: $ORIGIN
    zonefile: "$WORK/axfr.zone"
    provide-xfr: $ADDR NOKEY
    provide-xfr: $ADDR xfr
CONF
nsd-checkconf "$WORK/nsd/nsd.conf" || die "nsd-checkconf rejected $WORK/nsd/nsd.conf"

cat >"$WORK/edgewise.toml" <<CONF
[dns]
listen = ["$ADDR:$EW_PORT"]
workers = 1                 # one worker thread, as NSD runs one server process

[[dns.tsig_keys]]
name = "xfr"
algorithm = "hmac-sha256"
secret = "$SECRET"

[[dns.zones]]
name = "$ORIGIN"
file = "axfr.zone"
allow_transfer = ["$ADDR", "key:xfr"]
CONF

# ---------------------------------------------------------------- servers
# ready NAME PORT: bounded wait until the server answers the zone's SOA over TCP
ready() {
    local i
    for ((i = 0; i < STARTUP_TIMEOUT * 5; i++)); do
        # the leader's pid, not its group: setsid may not have run yet
        kill -0 "${PGID[$1]}" 2>/dev/null || { log "$1 exited"; return 1; }
        # (+short prints errors such as "connection refused" on stdout too: match the SOA)
        if dig +tcp +time=1 +tries=1 +short -p "$2" @"$ADDR" "$ORIGIN" SOA 2>/dev/null |
            grep -qE '^[^;]+( [0-9]+){5}$'; then return 0; fi
        sleep 0.2
    done
    log "$1 did not answer within ${STARTUP_TIMEOUT}s"
    return 1
}

start_servers() {
    setsid taskset -c "$SERVER_CPU" nsd -d -c "$WORK/nsd/nsd.conf" >"$WORK/nsd.out" 2>&1 </dev/null &
    PGID[nsd]=$!
    # edgewise-dns encodes the zone's transfer answer as it loads it, and logs how long it took
    RUST_LOG="${EDGEWISE_LOG:-warn},edgewise::dns::transfer=info" setsid taskset -c "$SERVER_CPU" \
        "$EW_BIN" --config "$WORK/edgewise.toml" >"$WORK/edgewise.out" 2>&1 </dev/null &
    PGID[edgewise]=$!
    local s port
    for s in nsd edgewise; do
        port=$NSD_PORT
        [[ $s == edgewise ]] && port=$EW_PORT
        if ! ready "$s" "$port"; then
            tail -n 20 "$WORK/$s.out" "$WORK/nsd/nsd.log" 2>/dev/null | sed 's/^/    /' >&2 || true
            die "$s did not start"
        fi
    done
    sed -n 's/.*transfer answer encoded ahead in \([0-9.]*\) ms.*/\1/p' "$WORK/edgewise.out" >>"$WORK/encode.ms"
}

alive() { # every server still running, else die naming the one that is not
    local s
    for s in nsd edgewise; do
        kill -0 -- "-${PGID[$s]}" 2>/dev/null || { FAILED=1; die "$s died during the benchmark (see $WORK)"; }
    done
}

# ---------------------------------------------------------------- measurements
stop_servers() { stop_server nsd; stop_server edgewise; }

# transfers MODE ROUNDS OUT [edgewise]: a first and ROUNDS more transfers of each server
# (edgewise first when asked), one result line per server appended to OUT
transfers() {
    local tsig=() order=("nsd=$NSD_PORT" "edgewise=$EW_PORT")
    [[ "$1" == tsig ]] && tsig=(--tsig "xfr:$SECRET")
    [[ "${4:-}" == edgewise ]] && order=("edgewise=$EW_PORT" "nsd=$NSD_PORT")
    load "$WORK/out" "$PY" "$HERE/axfr.py" bench "$2" "$ORIGIN" $((RECORDS + 1)) \
        "${order[@]}" "${tsig[@]}" || { cat "$WORK/out" >&2; die "$1 transfers failed"; }
    cat "$WORK/out" >>"$3"
    alive
}

# digs MODE: DIG_ROUNDS dig AXFR of each server; $WORK/MODE.dig.NAME holds one
# "records messages bytes ms" line per run
digs() {
    local key=() r s port out
    [[ "$1" == tsig ]] && key=(-y "hmac-sha256:xfr:$SECRET")
    for ((r = 1; r <= DIG_ROUNDS; r++)); do
        for s in nsd edgewise; do
            port=$NSD_PORT
            [[ $s == edgewise ]] && port=$EW_PORT
            out="$WORK/$1.dig.$s.$r"
            load "$out" dig +tcp +time=30 +tries=1 -p "$port" @"$ADDR" "${key[@]}" "$ORIGIN" AXFR || true
            grep -q '^;; XFR size:' "$out" || { tail -n 5 "$out" >&2; die "dig AXFR of $s ($1) failed"; }
            if grep -qE 'Transfer failed|tsig verify failure|; TSIG error' "$out"; then die "dig AXFR of $s ($1): $(grep -m1 -E 'failed|TSIG' "$out")"; fi
            awk '/^;; XFR size:/ { gsub(/[(),]/, ""); r = $4; m = $7; b = $9 }
                 /^;; Query time:/ { t = $4 } END { print r, m, b, t }' "$out" >>"$WORK/$1.dig.$s"
            rm -f "$out"
        done
    done
    alive
}

# ---------------------------------------------------------------- run
busy_note
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
MODES=(plain)
[[ "$TSIG" == yes ]] && MODES+=(tsig)
# First transfers: each right after both servers started, so that nothing of an earlier
# transfer is left (what edgewise keeps is what it encoded at load).
for m in "${MODES[@]}"; do
    for ((r = 1; r <= COLD_ROUNDS; r++)); do
        log "$m: first transfers, round $r/$COLD_ROUNDS"
        start_servers
        transfers "$m" 0 "$WORK/$m.cold" "$( ((r % 2 == 0)) && echo edgewise)"
        stop_servers
    done
done
start_servers
for m in "${MODES[@]}"; do
    log "$m: $ROUNDS repeated transfers from each server, alternating"
    transfers "$m" "$ROUNDS" "$WORK/$m.txt"
    ((DIG_ROUNDS > 0)) && digs "$m"
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
stop_servers

# ---------------------------------------------------------------- report
# stats MS...: "best median" in ms
stats() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.1f %.1f\n", v[1], m }'; }
# times MODE KIND NAME: the times of one server; KIND cold: each first transfer, warm: the
# repeated ones (the main run's first dropped)
times_of() {
    if [[ $2 == cold ]]; then
        awk -v s="$3" '$1 == s { print $6 }' "$WORK/$1.cold"
    else
        awk -v s="$3" '$1 == s { for (i = 7; i <= NF; i++) print $i }' "$WORK/$1.txt"
    fi
}

{
    echo
    echo "AXFR benchmark: zone $ORIGIN, $RECORDS records (benches/dns/axfr.py), over TCP on $ADDR"
    echo "servers on CPU $SERVER_CPU (NSD $(nsd -v 2>&1 | awk 'NR == 1 { print $3 }'): one server process; edgewise-dns: workers = 1), clients on CPU $LOAD_CPU"
    echo "time: query sent to last byte (axfr.py, raw socket); first = right after start, best and median"
    echo "of $COLD_ROUNDS starts; repeated = best and median of $ROUNDS alternating transfers"
    echo "load average (1/5/15 min): $LOAD_BEFORE before, $LOAD_AFTER after"
    [[ -n "$BG_NOTE" ]] && echo "$BG_NOTE"
    echo
    printf '%-5s | %-9s | %-15s | %7s | %-15s | %7s | %8s | %9s | %8s | %6s | %s\n' \
        mode server "first ms b/med" "vs NSD" "repeated ms" "vs NSD" messages bytes records signed "dig ms"
    echo "------+-----------+-----------------+---------+-----------------+---------+----------+-----------+----------+--------+-------"
    for m in "${MODES[@]}"; do
        declare -A CB=() CM=() WB=() WM=()
        for s in nsd edgewise; do
            # shellcheck disable=SC2046 # one word per time
            read -r CB[$s] CM[$s] < <(stats $(times_of "$m" cold "$s"))
            # shellcheck disable=SC2046
            read -r WB[$s] WM[$s] < <(stats $(times_of "$m" warm "$s"))
            read -r _ records messages bytes signed _ < <(awk -v s="$s" '$1 == s' "$WORK/$m.txt")
            dig_ms=-
            if [[ -s "$WORK/$m.dig.$s" ]]; then dig_ms=$(awk '{ print $4 }' "$WORK/$m.dig.$s" | sort -g | head -n1); fi
            printf '%-5s | %-9s | %-15s | %7s | %-15s | %7s | %8s | %9s | %8s | %6s | %s\n' "$m" "$s" \
                "${CB[$s]} / ${CM[$s]}" "$(ratio "${CB[$s]}" "${CB[nsd]}")" \
                "${WB[$s]} / ${WM[$s]}" "$(ratio "${WB[$s]}" "${WB[nsd]}")" \
                "$messages" "$bytes" "$records" "$signed" "$dig_ms"
        done
    done
    echo
    echo "vs NSD: edgewise's best time over NSD's (below 1.00: edgewise is faster). edgewise encodes"
    echo "the answer as it loads a zone that allows transfers (ms, best / median of each start:"
    # shellcheck disable=SC2046 # one word per time
    echo "$(stats $(cat "$WORK/encode.ms")) ms) and keeps it for the version; NSD encodes every time."
    echo "bytes: the whole answer on the wire (messages and their TCP length prefixes); records:"
    echo "the SOA twice included; signed: messages carrying a TSIG record (RFC 8945 §5.3.1 lets a"
    echo "server leave up to 99 in a row unsigned). dig ms: dig's own best Query time (it parses"
    echo "and prints every record, so it measures dig more than the server)."
    for m in "${MODES[@]}"; do
        for s in nsd edgewise; do
            echo "$m $s first (ms): $(times_of "$m" cold "$s" | xargs); repeated (ms): $(times_of "$m" warm "$s" | xargs)"
        done
    done
    for m in "${MODES[@]}"; do
        for s in nsd edgewise; do
            [[ -s "$WORK/$m.dig.$s" ]] || continue
            read -r r msg b _ <"$WORK/$m.dig.$s"
            echo "$m $s dig: XFR size: $r records (messages $msg, bytes $b)"
        done
    done
} | tee "$ROOT/target/bench-axfr/last-summary.txt"
