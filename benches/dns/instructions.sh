#!/usr/bin/env bash
# Instructions per DNS query of edgewise-dns, counted with valgrind's callgrind: the way to
# check a cost of a few %. Only the server's wake-ups vary with timing (about 1% between runs
# on a quiet machine, more during a build). See README.md in this folder.
#
# For each binary: run 1 serves QUERIES queries of queries.txt (dnsperf -c 1 -q 20) under
# callgrind; run 2 only starts, answers the one readiness query and stops (SIGTERM both
# times). Instructions per query = (Ir of run 1 - Ir of run 2) / (queries answered in run 1
# - queries answered in run 2), the counts from dnsperf and the readiness probe.
#
# Environment knobs (all optional):
#   EDGEWISE_BINS="label=path ..."  binaries to count, the first one is the reference
#                       (default: current=target/release/edgewise-dns, built first)
#   QUERIES=50000       queries in run 1 (rounded up to whole passes over queries.txt)
#   SERVER_CPU=1 LOAD_CPU=0  cores the server (valgrind) and dnsperf are pinned to: the
#                       count includes the server's wake-ups, fewer when dnsperf keeps it busy
#   PORT=53531          UDP port (default: the config's; another one: a copy of the config)
#   STARTUP_TIMEOUT=120 seconds to wait for the server under valgrind to answer
#   KEEP=1              keep the work dir (server logs, dnsperf output)
#   EDGEWISE_LOG=info   RUST_LOG for edgewise-dns
#
# The callgrind output of each run 1 is kept as target/bench-dns/callgrind.LABEL.out (for
# callgrind_annotate). Traffic goes only to 127.0.0.1. Every wait loop is bounded.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH=bench-dns-instr
# shellcheck source=SCRIPTDIR/../lib.sh
source "$HERE/../lib.sh"

QUERIES="${QUERIES:-50000}"
STARTUP_TIMEOUT="${STARTUP_TIMEOUT:-120}"
KEEP="${KEEP:-}"
SERVER_CPU="${SERVER_CPU:-1}"
LOAD_CPU="${LOAD_CPU:-0}"
QFILE="$HERE/queries.txt"
EW_CONFIG="$HERE/edgewise-bench.toml"
require_uints QUERIES STARTUP_TIMEOUT SERVER_CPU LOAD_CPU
((QUERIES > 0)) || die "QUERIES must be > 0"

install_tools valgrind=valgrind dnsperf=dnsperf python3=python3 taskset=util-linux
((SERVER_CPU < $(nproc) && LOAD_CPU < $(nproc))) || die "SERVER_CPU/LOAD_CPU must be < $(nproc) (nproc)"
CONF_PORT="$(grep -oE '127\.0\.0\.1:[0-9]+' "$EW_CONFIG" | head -n1 | cut -d: -f2)" || true
[[ -n "$CONF_PORT" ]] || die "$EW_CONFIG must listen on 127.0.0.1:PORT"
PORT="${PORT:-$CONF_PORT}"
require_uints PORT
LINES="$(grep -c . "$QFILE")"
PASSES=$(((QUERIES + LINES - 1) / LINES))   # dnsperf -n: whole passes over the file

# ---------------------------------------------------------------- binaries: LABELS, BINS
LABELS=() BINS=()
if [[ -z "${EDGEWISE_BINS:-}" ]]; then
    EW_BIN="$ROOT/target/release/edgewise-dns"
    build_edgewise edgewise-dns
    EDGEWISE_BINS="current=$EW_BIN"
fi
for pair in $EDGEWISE_BINS; do
    [[ "$pair" == ?*=?* ]] || die "EDGEWISE_BINS entries are label=path (got '$pair')"
    [[ -x "${pair#*=}" ]] || die "${pair#*=} is not an executable"
    LABELS+=("${pair%%=*}"); BINS+=("$(realpath "${pair#*=}")")
done

# ---------------------------------------------------------------- work dir, cleanup
mkdir -p "$ROOT/target/bench-dns"
WORK="$(mktemp -d "$ROOT/target/bench-dns/instr.XXXXXX")"
SERVER_PG=""   # the server's process group while it runs
FAILED=0
on_exit() {
    local rc=$?
    stop_load
    if [[ -n "$SERVER_PG" ]]; then kill_group "$SERVER_PG" 10; fi
    keep_work "$rc"
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# PORT other than the config's (run.sh uses 53531 too): the same config on that port
if [[ "$PORT" != "$CONF_PORT" ]]; then
    sed -e "s/127\.0\.0\.1:$CONF_PORT/127.0.0.1:$PORT/" -e "s|\"bench.example.zone\"|\"$HERE/bench.example.zone\"|" \
        "$EW_CONFIG" >"$WORK/edgewise-bench.toml"
    EW_CONFIG="$WORK/edgewise-bench.toml"
fi

# probe.py free PORT: exit 0 if 127.0.0.1:PORT/udp is free. probe.py ready PORT PID TIMEOUT:
# waits until process PID holds the UDP socket on PORT (not another server on that port),
# then sends "bench.example SOA" until answered, again only after 20 s without a reply.
# Prints the number of queries sent (the server may have answered all of them).
cat >"$WORK/probe.py" <<'PY'
import os, socket, struct, sys, time
mode, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
if mode == "free":
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        sys.exit(1)
    sys.exit(0)
pid, deadline = int(sys.argv[3]), time.monotonic() + int(sys.argv[4])
def owns():  # inodes of PID's sockets against /proc/net/udp's 127.0.0.1:PORT
    try:
        fds = {os.readlink(f"/proc/{pid}/fd/{f}") for f in os.listdir(f"/proc/{pid}/fd")}
        rows = [l.split() for l in open("/proc/net/udp").readlines()[1:]]
    except OSError:
        return False
    return any(r[1] == "0100007F:%04X" % port and f"socket:[{r[9]}]" in fds for r in rows)
while not owns():
    if not os.path.exists(f"/proc/{pid}"):
        sys.exit("server process exited")
    if time.monotonic() > deadline:
        sys.exit(f"process {pid} holds no UDP socket on 127.0.0.1:{port} after {sys.argv[4]} s")
    time.sleep(0.2)
s.connect(("127.0.0.1", port))
q = struct.pack(">HHHHHH", 4242, 0, 1, 0, 0, 0) + b"\x05bench\x07example\x00" + struct.pack(">HH", 6, 1)
sent = 0
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit("server process exited")
    s.send(q)
    sent += 1
    s.settimeout(min(20, max(0.1, deadline - time.monotonic())))
    try:
        if s.recv(4096)[:2] == q[:2]:
            print(sent)
            sys.exit(0)
    except socket.timeout:
        pass
sys.exit("no answer after %s s" % sys.argv[4])
PY

# ---------------------------------------------------------------- one run under callgrind
# run LABEL BIN NAME WITH_LOAD: sets IR (total Ir) and ANSWERED (queries answered)
run() {
    local label="$1" bin="$2" name="$3" out="$WORK/$1.$3.callgrind" probe got
    python3 "$WORK/probe.py" free "$PORT" || die "port $PORT/udp is already in use"
    log "$label: $name under callgrind"
    RUST_LOG="${EDGEWISE_LOG:-info}" setsid taskset -c "$SERVER_CPU" valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$bin" --config "$EW_CONFIG" >"$WORK/$label.$name.log" 2>&1 </dev/null &
    SERVER_PG=$!
    probe=$(python3 "$WORK/probe.py" ready "$PORT" "$SERVER_PG" "$STARTUP_TIMEOUT") ||
        { tail -n 20 "$WORK/$label.$name.log" >&2; die "$label did not answer under valgrind"; }
    ((probe == 1)) || log "warning: the probe sent $probe queries; ANSWERED may be off by one"
    ANSWERED=$probe
    if [[ "$4" == yes ]]; then
        # -t 60: nothing times out under valgrind (a late answer would count in Ir only);
        # -l bounds the run
        load "$WORK/$label.dnsperf" dnsperf -s 127.0.0.1 -p "$PORT" -d "$QFILE" -n "$PASSES" \
            -c 1 -q 20 -t 60 -l 3600 || die "dnsperf failed (see $WORK/$label.dnsperf)"
        got=$(awk '/Queries completed:/ { print $3; exit }' "$WORK/$label.dnsperf")
        [[ "$got" =~ ^[0-9]+$ ]] || die "no 'Queries completed' in $WORK/$label.dnsperf"
        grep -q 'Queries lost: *0 ' "$WORK/$label.dnsperf" || log "warning: dnsperf lost queries"
        ANSWERED=$((ANSWERED + got))
    fi
    kill_group "$SERVER_PG" 1200   # SIGTERM; up to 120 s to shut down and write the counts
    SERVER_PG=""
    IR=$(awk '/^summary:/ { s = $2 } /^totals:/ { t = $2 } END { print (t != "" ? t : s) }' "$out" 2>/dev/null) || true
    [[ "$IR" =~ ^[0-9]+$ ]] || die "no total in $out (see $WORK/$label.$name.log)"
    if [[ "$4" == yes ]]; then cp "$out" "$ROOT/target/bench-dns/callgrind.$label.out"; fi
}

# ---------------------------------------------------------------- count and report
busy_note   # BG_NOTE: a warning when the machine is busy (more wake-ups: higher counts)
log "$(valgrind --version), $QUERIES queries ($PASSES passes over $LINES), binaries: ${LABELS[*]}"
PER=()
for i in "${!LABELS[@]}"; do
    run "${LABELS[$i]}" "${BINS[$i]}" load yes; ir1=$IR a1=$ANSWERED
    run "${LABELS[$i]}" "${BINS[$i]}" idle no; ir2=$IR a2=$ANSWERED
    ((a1 > a2)) || die "${LABELS[$i]}: no queries answered under load"
    PER+=("$(awk -v d=$((ir1 - ir2)) -v n=$((a1 - a2)) 'BEGIN { printf "%.0f", d / n }')")
    log "${LABELS[$i]}: Ir $ir1 - $ir2 over $a1 - $a2 queries = ${PER[$i]} per query"
done
{
    echo
    echo "instructions per DNS query (callgrind; $QUERIES queries of queries.txt, dnsperf -c 1 -q 20, minus start+stop)"
    if [[ -n "$BG_NOTE" ]]; then echo "$BG_NOTE"; fi
    printf '%-12s | %12s | %8s\n' label instr/query "vs ${LABELS[0]}"
    for i in "${!LABELS[@]}"; do
        printf '%-12s | %12s | %8s\n' "${LABELS[$i]}" "${PER[$i]}" \
            "$(awk -v a="${PER[$i]}" -v b="${PER[0]}" 'BEGIN { printf "%+.1f%%", 100 * (a - b) / b }')"
    done
} | tee "$ROOT/target/bench-dns/last-instructions.txt"
