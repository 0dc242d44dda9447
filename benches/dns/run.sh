#!/usr/bin/env bash
# DNS benchmark: Edgewise (edgewise-dns) against NSD on the same zone, same
# query mix, same single core. See README.md in this folder.
#
# Environment knobs (all optional):
#   ONLY=nsd|edgewise   run one server only (default: both)
#   DURATION=20         seconds per measured dnsperf run
#   ROUNDS=3            max-throughput runs per server (alternating servers; best is reported)
#   RATE=20000          queries/s of the fixed-rate (latency) run
#   ROUTED=yes          also measure Edgewise on routed names (queries-routed.txt:
#                       weighted + geolocation) against static names (queries-static.txt)
#                       (default no when DNSSEC=yes)
#   DNSSEC=no           yes: the zone signed in both servers and DO=1 queries (dnsperf -D):
#                       edgewise-dns signs it online (ecdsap256sha256, NSEC, its key made by
#                       `edgewise-dns ds` in the work dir), NSD serves it signed by
#                       ldns-signzone with that same key (plus the CDS/CDNSKEY edgewise
#                       publishes). Then DO=0 queries to edgewise on the signed zone against
#                       a third server, edgewise on the unsigned zone (UNSIGNED_PORT). Before
#                       measuring, the answers must carry RRSIGs and have the same rcodes
#                       (else the script stops; FORCE=1 measures anyway)
#   UNSIGNED_PORT=53533 UDP port of the unsigned edgewise-dns when DNSSEC=yes
#   CLIENTS=4           dnsperf -c (client sockets)
#   OUTSTANDING=200     dnsperf -q (max queries in flight)
#   WARMUP=5            seconds of unmeasured load before measuring (0: none)
#   NSD_PORT=53532      UDP port for NSD (Edgewise's comes from edgewise-bench.toml)
#   RRL=off             on: both servers rate-limit responses (Edgewise [dns] rrl, NSD rrl-*)
#                       at RRL_RATE per /24 and name, slip 2; no dnsperf client comes near
#                       the default rate, so this measures what the limiter costs when idle
#   RRL_RATE=1000000    responses a second per bucket when RRL=on
#   NSD_MINIMAL=yes     NSD's minimal-responses (Edgewise answers minimally too: no NS
#                       RRset in the authority section of positive answers)
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
BENCH=bench-dns
# shellcheck source=SCRIPTDIR/../lib.sh
source "$HERE/../lib.sh"

ONLY="${ONLY:-}"
DURATION="${DURATION:-20}"
ROUNDS="${ROUNDS:-3}"
RATE="${RATE:-20000}"
CLIENTS="${CLIENTS:-4}"
OUTSTANDING="${OUTSTANDING:-200}"
WARMUP="${WARMUP:-5}"
NSD_PORT="${NSD_PORT:-53532}"
NSD_MINIMAL="${NSD_MINIMAL:-yes}"
RRL="${RRL:-off}"
RRL_RATE="${RRL_RATE:-1000000}"
SERVER_CPU="${SERVER_CPU:-1}"
LOAD_CPU="${LOAD_CPU:-0}"
STARTUP_TIMEOUT="${STARTUP_TIMEOUT:-60}"
KEEP="${KEEP:-}"

DNSSEC="${DNSSEC:-no}"
UNSIGNED_PORT="${UNSIGNED_PORT:-53533}"
FORCE="${FORCE:-}"
if [[ "$DNSSEC" == yes ]]; then ROUTED="${ROUTED:-no}"; else ROUTED="${ROUTED:-yes}"; fi
ZONE_FILE="$HERE/bench.example.zone"
QUERIES="$HERE/queries.txt"
EW_CONFIG="$HERE/edgewise-bench.toml"
EW_BIN="${EDGEWISE_BIN:-$ROOT/target/release/edgewise-dns}"
ADDR=127.0.0.1

require_uints DURATION ROUNDS RATE CLIENTS OUTSTANDING WARMUP NSD_PORT SERVER_CPU LOAD_CPU STARTUP_TIMEOUT RRL_RATE UNSIGNED_PORT
((DURATION > 0 && RATE > 0 && ROUNDS > 0)) || die "DURATION, RATE and ROUNDS must be > 0"
[[ "$NSD_MINIMAL" == yes || "$NSD_MINIMAL" == no ]] || die "NSD_MINIMAL must be yes or no"
[[ "$RRL" == on || "$RRL" == off ]] || die "RRL must be on or off"
[[ "$DNSSEC" == yes || "$DNSSEC" == no ]] || die "DNSSEC must be yes or no"
((RRL_RATE >= 1 && RRL_RATE <= 1000000)) || die "RRL_RATE must be 1 to 1000000"
if [[ "$RRL" == on ]]; then NSD_RRL_RATE=$RRL_RATE NSD_RRL_SLIP=2; else NSD_RRL_RATE=0 NSD_RRL_SLIP=0; fi
case "$ONLY" in
    "") SERVERS=(nsd edgewise) ;;
    nsd) SERVERS=(nsd) ;;
    edgewise) SERVERS=(edgewise) ;;
    *) die "ONLY must be empty, 'nsd' or 'edgewise' (got '$ONLY')" ;;
esac
[[ -f "$ZONE_FILE" && -f "$QUERIES" ]] || die "missing $ZONE_FILE or $QUERIES"

# ---------------------------------------------------------------- tools
TOOLS=(nsd=nsd dnsperf=dnsperf taskset=util-linux python3=python3)
[[ "$DNSSEC" == yes ]] && TOOLS+=(ldns-signzone=ldnsutils)
install_tools "${TOOLS[@]}"
PY="$(python3 -c 'import sys; print(sys.executable)')"   # skip shims (pyenv) on every call
NCPU="$(nproc)"
((SERVER_CPU < NCPU && LOAD_CPU < NCPU)) || die "SERVER_CPU/LOAD_CPU must be < $NCPU (nproc)"
((SERVER_CPU != LOAD_CPU)) || log "warning: server and dnsperf share CPU $SERVER_CPU"

# ---------------------------------------------------------------- build
EW_PORT=""
# DNSSEC=yes needs edgewise-dns for NSD too: it makes the key NSD's copy is signed with
if [[ " ${SERVERS[*]} " == *" edgewise "* || "$DNSSEC" == yes ]]; then
    EW_LISTEN="$(grep -E '^[[:space:]]*listen[[:space:]]*=' "$EW_CONFIG" | head -n1)"
    EW_PORT="$(grep -oE '127\.0\.0\.1:[0-9]+' <<<"$EW_LISTEN" | head -n1 | cut -d: -f2)" || true
    [[ -n "$EW_PORT" ]] || die "$EW_CONFIG must listen on 127.0.0.1:PORT (found: $EW_LISTEN)"
    [[ "$EW_PORT" != "$NSD_PORT" ]] || die "NSD_PORT equals the Edgewise port $EW_PORT"
    if [[ "$DNSSEC" == yes && ( "$UNSIGNED_PORT" == "$EW_PORT" || "$UNSIGNED_PORT" == "$NSD_PORT" ) ]]; then
        die "UNSIGNED_PORT must differ from NSD_PORT and the Edgewise port $EW_PORT"
    fi
    build_edgewise edgewise-dns
fi

# ---------------------------------------------------------------- work dir, cleanup
mkdir -p "$ROOT/target/bench-dns"
WORK="$(mktemp -d "$ROOT/target/bench-dns/run.XXXXXX")"
# RRL=on, DNSSEC=yes: the config copied beside a copy of the zone file it names, then
# changed: RRL=on adds [dns] rrl; DNSSEC=yes keeps an unsigned twin on UNSIGNED_PORT and
# signs the zone of the copy, with its keys in the work dir.
if [[ ( "$RRL" == on || "$DNSSEC" == yes ) && -n "$EW_PORT" ]]; then
    cp "$ZONE_FILE" "$WORK/"
    cp "$EW_CONFIG" "$WORK/edgewise-bench.toml"
    EW_CONFIG="$WORK/edgewise-bench.toml"
fi
if [[ "$RRL" == on && -n "$EW_PORT" ]]; then
    sed -i -E "s/^(workers[[:space:]]*=.*)$/\1\nrrl = { responses_per_second = $RRL_RATE, slip = 2, ipv4_prefix = 24, ipv6_prefix = 56 }/" \
        "$EW_CONFIG"
    grep -q '^rrl = ' "$EW_CONFIG" || die "could not add rrl to $EW_CONFIG (no workers line)"
fi
NSD_ZONE="$ZONE_FILE"
if [[ "$DNSSEC" == yes ]]; then
    EW_UNSIGNED_CONFIG="$WORK/edgewise-unsigned.toml"
    sed "s/127\.0\.0\.1:$EW_PORT\b/127.0.0.1:$UNSIGNED_PORT/" "$EW_CONFIG" >"$EW_UNSIGNED_CONFIG"
    grep -q "127\.0\.0\.1:$UNSIGNED_PORT\b" "$EW_UNSIGNED_CONFIG" || die "could not move the unsigned config to port $UNSIGNED_PORT"
    sed -i -E 's/^(file[[:space:]]*=.*)$/\1\ndnssec = { algorithm = "ecdsap256sha256", keys_dir = "keys" }/' "$EW_CONFIG"
    [[ $(grep -c '^dnssec = ' "$EW_CONFIG") == 1 ]] || die "could not sign the one zone of $EW_CONFIG (needs one 'file =' line)"
fi
declare -A PGID=() PORT=() STATUS=()   # per server; PGID: process group (started with setsid)
FAILED=0

stop_server() { # name
    local pg="${PGID[$1]:-}"
    [[ -n "$pg" ]] || return 0
    PGID[$1]=""
    kill_group "$pg" 50   # up to 5 s for a clean shutdown
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

cat >"$WORK/compare.py" <<'PY'
# compare.py PORT_A PORT_B QUERIES OUT [MODE]: ask both servers every distinct query of QUERIES
# once and write to OUT the ones whose answers differ, then print "<differing> <distinct>
# <rcode differing> <A's with RRSIG> <B's with RRSIG> <A's avg bytes> <B's avg bytes>".
# MODE (what differs):
#   shape (default): no EDNS, RD=0; rcode, AA/TC flags or section counts
#   do:    EDNS (4096 bytes) with DO=1 and RD=1 as dnsperf -D sends them; rcode, AA/TC flags,
#          the record types in each section and the DO bit of the OPT record
#   exact: RD=1, once without EDNS as dnsperf sends it, once with EDNS DO=0; any byte after
#          the message ID (counted once per query)
# One UDP query at a time, 1 s timeout, 60 s in all.
import random, socket, struct, sys, time

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28,
         "SRV": 33, "CAA": 257, "ANY": 255}
NAMES = {v: k for k, v in TYPES.items()}
NAMES.update({41: "OPT", 43: "DS", 46: "RRSIG", 47: "NSEC", 48: "DNSKEY", 50: "NSEC3",
              59: "CDS", 60: "CDNSKEY"})
pa, pb, qfile, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
mode = sys.argv[5] if len(sys.argv) > 5 else "shape"
seen = {}   # insertion-ordered set
for line in open(qfile):
    f = line.split()
    if len(f) >= 2 and f[1].upper() in TYPES:
        seen[(f[0], f[1].upper())] = None
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(1.0)
deadline = time.monotonic() + 60

def ask(port, name, qtype, flags=0, opt_ttl=None):
    """the response (bytes) or None; opt_ttl: an OPT record with this TTL field (DO: 0x8000)"""
    qid = random.randrange(65536)
    qn = b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".")) + b"\0"
    q = struct.pack(">HHHHHH", qid, flags, 1, 0, 0, 0 if opt_ttl is None else 1)
    q += qn + struct.pack(">HH", TYPES[qtype], 1)
    if opt_ttl is not None:
        q += b"\0" + struct.pack(">HHIH", 41, 4096, opt_ttl, 0)
    sock.sendto(q, ("127.0.0.1", port))
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        try:
            d = sock.recv(65535)
        except socket.timeout:
            break
        if len(d) >= 12 and struct.unpack(">H", d[:2])[0] == qid:
            return d
    return None

def skip_name(d, i):
    while d[i]:
        if d[i] & 0xC0 == 0xC0:
            return i + 2
        i += 1 + d[i]
    return i + 1

def sections(d):
    """per section, the sorted record types ("OPT(do)" for an OPT with DO set)"""
    qd, an, ns, ar = struct.unpack(">HHHH", d[4:12])
    i = 12
    for _ in range(qd):
        i = skip_name(d, i) + 4
    result = []
    for count in (an, ns, ar):
        types = []
        for _ in range(count):
            i = skip_name(d, i)
            t, _, ttl, rdlen = struct.unpack(">HHIH", d[i:i + 10])
            i += 10 + rdlen
            types.append(NAMES.get(t, str(t)) + ("(do)" if t == 41 and ttl & 0x8000 else ""))
        result.append(" ".join(sorted(types)))
    return result

def shape(d):
    if d is None:
        return "no answer"
    fl = struct.unpack(">H", d[2:4])[0]
    s = "rcode=%d aa=%d tc=%d" % (fl & 15, fl >> 10 & 1, fl >> 9 & 1)
    if mode == "shape":
        return s + " an=%d ns=%d ar=%d" % struct.unpack(">HHH", d[6:12])
    try:
        return s + " an=[%s] ns=[%s] ar=[%s]" % tuple(sections(d))
    except (IndexError, struct.error):
        return s + " (unparsable)"

def rcode(d):
    return d[3] & 15 if d else None

n = diff = rdiff = 0
rrsig = [0, 0]
size = [0, 0]
with open(out, "w") as o:
    for name, qtype in seen:
        if time.monotonic() > deadline:
            break
        n += 1
        if mode == "exact":
            pairs = [(ask(pa, name, qtype, 0x100, e), ask(pb, name, qtype, 0x100, e)) for e in (None, 0)]
            a, b = pairs[0]
            differ = any(x is None or y is None or x[2:] != y[2:] for x, y in pairs)
            if differ:
                o.write(f"{name} {qtype}: " + " / ".join(
                    "%s: %s | %s" % (k, "-" if x is None else x[2:].hex(), "-" if y is None else y[2:].hex())
                    for k, (x, y) in zip(("no EDNS", "EDNS DO=0"), pairs)) + "\n")
        else:
            flags, opt = (0x100, 0x8000) if mode == "do" else (0, None)
            a, b = ask(pa, name, qtype, flags, opt), ask(pb, name, qtype, flags, opt)
            sa, sb = shape(a), shape(b)
            differ = sa != sb
            if differ:
                o.write(f"{name} {qtype}: {sa} | {sb}\n")
        diff += differ
        rdiff += rcode(a) != rcode(b)
        for k, d in enumerate((a, b)):
            if d:
                size[k] += len(d)
                rrsig[k] += "RRSIG" in shape(d) if mode == "do" else 0
print(diff, n, rdiff, rrsig[0], rrsig[1], size[0] // max(n, 1), size[1] // max(n, 1))
PY

# ---------------------------------------------------------------- measurement helpers
# "12%" for a whole number, "-" for anything else
pc() { if [[ "$1" =~ ^[0-9]+$ ]]; then echo "$1%"; else echo -; fi; }
# value after "KEY:" in a dnsperf statistics file (first word), empty if absent
stat_field() { { grep -m1 -E "^[[:space:]]*$1:" "$2" 2>/dev/null || true; } | sed -E "s/^[[:space:]]*$1:[[:space:]]*//" | awk '{print $1}'; }

server_alive() { [[ -n "${PGID[$1]:-}" ]] && kill -0 -- "-${PGID[$1]}" 2>/dev/null; }
check_alive() { # name phase: marks the server dead and stops it if it is gone
    server_alive "$1" && return 0
    log "$1 died during the $2"
    STATUS[$1]=died; FAILED=1; stop_server "$1"
    return 1
}

DNSPERF_COMMON=(-s "$ADDR" -d "$QUERIES" -c "$CLIENTS" -T 1 -q "$OUTSTANDING")
# perf OUTFILE ARGS...: dnsperf with the common and these arguments, as the load generator
perf() { load "$1" dnsperf "${DNSPERF_COMMON[@]}" "${@:2}"; }

start_server() { # name
    local name="$1" port
    case "$name" in
        nsd)
            port="$NSD_PORT"
            mkdir -p "$WORK/nsd"
            { nsd_server "$WORK/nsd" "$port"; cat <<CONF; } >"$WORK/nsd/nsd.conf"
    minimal-responses: $NSD_MINIMAL
    rrl-ratelimit: $NSD_RRL_RATE
    rrl-whitelist-ratelimit: $NSD_RRL_RATE
    rrl-slip: $NSD_RRL_SLIP
    rrl-ipv4-prefix-length: 24
    rrl-ipv6-prefix-length: 56
remote-control:
    control-enable: no
zone:
    name: bench.example
    zonefile: "$NSD_ZONE"
CONF
            nsd-checkconf "$WORK/nsd/nsd.conf" || { log "nsd-checkconf rejected $WORK/nsd/nsd.conf"; return 1; }
            "$PY" "$WORK/probe.py" free "$port" || { log "port $port/udp is already in use"; return 1; }
            setsid taskset -c "$SERVER_CPU" nsd -d -c "$WORK/nsd/nsd.conf" \
                >"$WORK/nsd.out" 2>&1 </dev/null &
            ;;
        edgewise | unsigned)   # unsigned: DNSSEC=yes's edgewise-dns on the unsigned zone
            local config="$EW_CONFIG"
            port="$EW_PORT"
            if [[ "$name" == unsigned ]]; then config="$EW_UNSIGNED_CONFIG" port="$UNSIGNED_PORT"; fi
            "$PY" "$WORK/probe.py" free "$port" || { log "port $port/udp is already in use"; return 1; }
            (cd "$ROOT" && RUST_LOG="${EDGEWISE_LOG:-info}" exec setsid taskset -c "$SERVER_CPU" \
                "$EW_BIN" --config "$config") >"$WORK/$name.out" 2>&1 </dev/null &
            ;;
    esac
    PGID[$name]=$!
    PORT[$name]=$port
    if ! "$PY" "$WORK/probe.py" ready "$port" "${PGID[$name]}" "$STARTUP_TIMEOUT"; then
        log "$name did not start; its output:"
        local logs=("$WORK/$name.out")
        [[ "$name" == nsd ]] && logs+=("$WORK/nsd/nsd.log")
        cat "${logs[@]}" 2>/dev/null | tail -n 30 | sed 's/^/    /' >&2 || true
        stop_server "$name"
        return 1
    fi
    log "$name answering on $ADDR:$port (pid ${PGID[$name]}, CPU $SERVER_CPU)"
    if [[ "$name" != nsd ]]; then
        grep -m1 -i 'listening on' "$WORK/$name.out" | sed 's/^/    /' >&2 || true
    fi
}

# measured NAME PREFIX RAWFILE DNSPERF-ARGS...: run dnsperf against NAME, output to RAWFILE,
# and write "srv gen other" CPU (% of one core over the run's wall time) to PREFIX.cpu:
# srv = the server's processes, gen = dnsperf, other = the rest of the machine's busy time
# (kernel network work charged to neither, and anything else running: a build...).
measured() {
    local name="$1" prefix="$2" raw="$3" t0 t1 b0 b1 g0 g1 w0 w1
    shift 3
    t0=$(group_ticks "${PGID[$name]}"); b0=$(cpu_busy); children_cpu; g0=$CHILD_CPU; w0=$(date +%s.%N)
    perf "$raw" -p "${PORT[$name]}" -l "$DURATION" "$@" || log "dnsperf exited non-zero (see $prefix.txt)"
    w1=$(date +%s.%N); children_cpu; g1=$CHILD_CPU; t1=$(group_ticks "${PGID[$name]}"); b1=$(cpu_busy)
    cpu_split $((t1 - t0)) $((b1 - b0)) "$g0" "$g1" "$w0" "$w1" >"$prefix.cpu"
}

max_run() { # name round: one closed-loop run as fast as dnsperf goes
    log "$1: max throughput, round $2/$ROUNDS, ${DURATION}s"
    measured "$1" "$WORK/$1.max.$2" "$WORK/$1.max.$2.txt" "${DO_ARGS[@]}"
    check_alive "$1" "throughput run"
}

fixed_run() { # name: fixed rate, per-query latencies from dnsperf -v
    log "$1: fixed rate $RATE q/s, ${DURATION}s"
    # -v output goes to a file and is parsed afterwards: a slow pipe reader would
    # stall dnsperf and show up as latency.
    measured "$1" "$WORK/$1.fixed" "$WORK/$1.fixed.raw" -Q "$RATE" -v "${DO_ARGS[@]}"
    "$PY" "$WORK/vparse.py" "$WORK/$1.fixed" <"$WORK/$1.fixed.raw"
    rm -f "$WORK/$1.fixed.raw"
    check_alive "$1" "fixed-rate run"
}

# sign_for_nsd: DNSSEC=yes: edgewise-dns makes the zone's key (`ds` makes it when there is
# none, as a start would, and prints the DS and DNSKEY), and NSD_ZONE := the zone signed with
# that key by ldns-signzone (NSEC, 14 days like edgewise), with the CDS and CDNSKEY records
# edgewise publishes added first, so that both servers hold the same RRsets and NSEC chain
sign_for_nsd() {
    local keys base
    log "making the zone's key (edgewise-dns ds bench.example), signing NSD's copy with ldns-signzone"
    "$EW_BIN" --config "$EW_CONFIG" ds bench.example >"$WORK/ds.txt" 2>"$WORK/ds.err" ||
        { sed 's/^/    /' "$WORK/ds.err" >&2; die "edgewise-dns ds bench.example failed"; }
    keys=("$WORK"/keys/Kbench.example.+013+*.private)
    base="${keys[0]%.private}"
    if ((${#keys[@]} != 1)) || [[ ! -f "$base.private" || ! -f "$base.key" ]]; then
        die "expected one key in BIND's format (Kbench.example.+013+TAG.key and .private) in $WORK/keys; found: $(cd "$WORK/keys" 2>/dev/null && printf '%s ' ./*)"
    fi
    grep -q '^Private-key-format:' "$base.private" || die "$base.private is not in BIND's private key format"
    KEY_TAG="${base##*+}"
    grep -Eq '[[:space:]]DS[[:space:]]' "$WORK/ds.txt" || die "edgewise-dns ds printed no DS record (see $WORK/ds.txt)"
    { cat "$ZONE_FILE"; awk '$4 == "DS" { $4 = "CDS"; print } $4 == "DNSKEY" { $4 = "CDNSKEY"; print }' "$WORK/ds.txt"; } \
        >"$WORK/nsd-unsigned.zone"
    NSD_ZONE="$WORK/bench.example.zone.signed"
    ldns-signzone -e "$(date -u -d '+14 days' +%Y%m%d)" -f "$NSD_ZONE" "$WORK/nsd-unsigned.zone" "$base" ||
        die "ldns-signzone failed"
    log "key $KEY_TAG; NSD's copy has $(grep -c '[[:space:]]RRSIG[[:space:]]' "$NSD_ZONE") RRSIGs"
}

# ---------------------------------------------------------------- run
DO_ARGS=()   # DNSSEC=yes: -D (DO=1) for NSD's and edgewise's runs, not for the DO=0 phase
COMPARE_MODE=shape
if [[ "$DNSSEC" == yes ]]; then
    DO_ARGS=(-D) COMPARE_MODE="do"
    sign_for_nsd
fi
busy_note
log "zone $(basename "$ZONE_FILE"), $(wc -l <"$QUERIES") queries, servers: ${SERVERS[*]}; work dir $WORK"
# Both servers stay up for the whole run (the idle one costs nothing) so that the
# throughput rounds can alternate between them: drift of this machine's speed then
# hits both alike instead of whichever happened to run second.
UP=()
for s in "${SERVERS[@]}"; do
    if start_server "$s"; then
        STATUS[$s]=ok; UP+=("$s")
    else
        STATUS[$s]=failed; FAILED=1
    fi
done
if [[ "$DNSSEC" == yes && "${STATUS[edgewise]:-}" == ok ]]; then
    if start_server unsigned; then STATUS[unsigned]=ok; else STATUS[unsigned]=failed; FAILED=1; fi
fi
ANSWERS="" PLAIN_ANSWERS=""
if [[ "${STATUS[nsd]:-}" == ok && "${STATUS[edgewise]:-}" == ok ]]; then
    log "comparing the answers of both servers to each distinct query${DO_ARGS[*]:+ (DO=1)}"
    ANSWERS=$("$PY" "$WORK/compare.py" "${PORT[nsd]}" "${PORT[edgewise]}" "$QUERIES" "$WORK/answers.diff" \
        "$COMPARE_MODE") || ANSWERS=""
fi
if [[ "${STATUS[unsigned]:-}" == ok ]]; then
    log "comparing edgewise's DO=0 answers on the signed and the unsigned zone, byte for byte"
    PLAIN_ANSWERS=$("$PY" "$WORK/compare.py" "${PORT[edgewise]}" "${PORT[unsigned]}" "$QUERIES" "$WORK/plain-answers.diff" exact) ||
        PLAIN_ANSWERS=""
fi
# DNSSEC=yes: a setup whose signed answers carry no RRSIG, or whose servers disagree on an
# rcode, would be measured doing something else: stop before the load (FORCE=1 goes on).
if [[ "$DNSSEC" == yes ]]; then
    problems=()
    if [[ -n "$ANSWERS" ]]; then
        read -r _ n rdiff sig_nsd sig_ew _ _ <<<"$ANSWERS"
        ((sig_nsd > 0)) || problems+=("none of NSD's $n DO=1 answers carries an RRSIG")
        ((sig_ew > 0)) || problems+=("none of edgewise's $n DO=1 answers carries an RRSIG")
        ((rdiff == 0)) || problems+=("$rdiff of $n DO=1 queries get another rcode from NSD than from edgewise ($WORK/answers.diff)")
    elif [[ "${STATUS[nsd]:-}" == ok && "${STATUS[edgewise]:-}" == ok ]]; then
        problems+=("the DO=1 comparison of NSD and edgewise failed")
    fi
    if [[ -z "$PLAIN_ANSWERS" && "${STATUS[unsigned]:-}" == ok ]]; then
        problems+=("the DO=0 comparison of signed and unsigned edgewise failed")
    elif [[ -n "$PLAIN_ANSWERS" ]]; then
        read -r _ n rdiff _ _ _ _ <<<"$PLAIN_ANSWERS"
        ((rdiff == 0)) || problems+=("$rdiff of $n DO=0 queries get another rcode from signed edgewise than from unsigned ($WORK/plain-answers.diff)")
    fi
    if ((${#problems[@]})); then
        for p in "${problems[@]}"; do log "answers: $p"; done
        if [[ -z "$FORCE" ]]; then
            FAILED=1
            die "the signed setup answers wrongly; not measuring it (FORCE=1 measures anyway)"
        fi
    fi
fi
if ((WARMUP > 0)); then
    for s in "${UP[@]}" unsigned; do
        [[ "${STATUS[$s]:-}" == ok ]] || continue
        log "$s: warm-up ${WARMUP}s"
        if [[ "$s" == unsigned ]]; then
            perf /dev/null -p "${PORT[$s]}" -l "$WARMUP" || true
        else
            perf /dev/null -p "${PORT[$s]}" -l "$WARMUP" "${DO_ARGS[@]}" || true
        fi
    done
fi
for ((r = 1; r <= ROUNDS; r++)); do
    order=("${UP[@]}")
    if ((r % 2 == 0 && ${#UP[@]} == 2)); then order=("${UP[1]}" "${UP[0]}"); fi   # ABBA order
    for s in "${order[@]}"; do
        if [[ "${STATUS[$s]}" == ok ]]; then max_run "$s" "$r" || true; fi
    done
done
for s in "${UP[@]}"; do
    if [[ "${STATUS[$s]}" == ok ]]; then fixed_run "$s" || true; fi
done
# Routing cost: the same server, alternating static-name and routed-name query files, so
# that both see the same machine. dnsperf takes the last -d given.
if [[ "$ROUTED" == yes && "${STATUS[edgewise]:-}" == ok ]]; then
    for ((r = 1; r <= ROUNDS; r++)); do
        for kind in static routed; do
            log "edgewise: $kind names, round $r/$ROUNDS, ${DURATION}s"
            measured edgewise "$WORK/edgewise.$kind.$r" "$WORK/edgewise.$kind.$r.txt" -d "$HERE/queries-$kind.txt" "${DO_ARGS[@]}"
            check_alive edgewise "$kind-name run" || break 2
        done
    done
fi
# DNSSEC=yes: what signing costs DO=0 queries, edgewise on the signed zone against edgewise
# on the unsigned one, alternating (ABBA)
if [[ "${STATUS[unsigned]:-}" == ok ]]; then
    for ((r = 1; r <= ROUNDS; r++)); do
        pair=(unsigned edgewise)
        if ((r % 2 == 0)); then pair=(edgewise unsigned); fi
        for s in "${pair[@]}"; do
            log "$s: DO=0 queries, round $r/$ROUNDS, ${DURATION}s"
            measured "$s" "$WORK/$s.do0.$r" "$WORK/$s.do0.$r.txt"
            check_alive "$s" "DO=0 run" || break 2
        done
    done
fi
for s in "${UP[@]}" unsigned; do stop_server "$s"; done

# ---------------------------------------------------------------- report
# median of the numbers on stdin (nothing for none)
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
declare -A BEST=() MED=() RUNS=() LOSTMAX=() CPU=()
for s in "${SERVERS[@]}"; do
    vals=() labels=() lost=0 best="" bestr=""
    for ((r = 1; r <= ROUNDS; r++)); do
        q=$(stat_field "Queries per second" "$WORK/$s.max.$r.txt")
        [[ -n "$q" ]] || continue
        vals+=("$q")
        read -r _ _ o <"$WORK/$s.max.$r.cpu" || o=-
        labels+=("$(printf '%.0f' "$q") (other $(pc "$o"))")
        l=$(stat_field "Queries lost" "$WORK/$s.max.$r.txt"); lost=$((lost + ${l:-0}))
        if [[ -z "$best" ]] || awk -v a="$q" -v b="$best" 'BEGIN { exit !(a > b) }'; then best=$q; bestr=$r; fi
    done
    ((${#vals[@]})) || continue
    BEST[$s]=$best
    MED[$s]=$(printf '%s\n' "${vals[@]}" | median)
    RUNS[$s]=$(printf '%s, ' "${labels[@]}"); RUNS[$s]=${RUNS[$s]%, }
    LOSTMAX[$s]=$lost
    CPU[$s]=$(cat "$WORK/$s.max.$bestr.cpu" 2>/dev/null || echo "- - -")
done

{
    echo
    echo "DNS benchmark: zone bench.example ($(grep -cvE '^[[:space:]]*(;|\$|$)' "$ZONE_FILE") records), $(wc -l <"$QUERIES") queries in the mix, UDP on $ADDR"
    echo "server on CPU $SERVER_CPU, dnsperf $(dnsperf -h 2>&1 | awk '/^Version/ { print $2 }') on CPU $LOAD_CPU, ${DURATION}s per run"
    echo "QPS: best of $ROUNDS alternating closed-loop runs (dnsperf -c $CLIENTS -q $OUTSTANDING${DO_ARGS[*]:+ -D}, no rate limit)"
    if [[ "$DNSSEC" == yes ]]; then
        echo "DNSSEC: edgewise-dns signs the zone online (ECDSAP256SHA256, NSEC, key ${KEY_TAG:-?}); NSD serves it signed by"
        echo "$(ldns-signzone -v 2>&1 | head -n 1) with the same key; QPS and latency runs send DO=1 (dnsperf -D: EDNS 4096)"
    fi
    echo "latency: one run at a fixed $RATE q/s (-Q), percentiles over every response (dnsperf -v)"
    if [[ -n "${STATUS[nsd]:-}" ]]; then
        echo "NSD $(nsd -v 2>&1 | awk 'NR == 1 { print $3 }'): 1 server process, minimal-responses: $NSD_MINIMAL"
    fi
    if [[ "$RRL" == on ]]; then
        echo "RRL on in both servers: $RRL_RATE responses/s per /24 (IPv6 /56) and name, slip 2"
    else
        echo "RRL off in both servers"
    fi
    if [[ -n "$BG_NOTE" ]]; then echo "$BG_NOTE"; fi
    echo
    printf '%-9s | %10s | %6s | %8s | %8s | %8s | %-18s | %7s | %7s | %-11s\n' \
        server "QPS (max)" "vs NSD" "p50 us" "p99 us" "p99.9 us" "lost (max/fixed)" "srv CPU" "gen CPU" "other (max/fixed)"
    echo "----------+------------+--------+----------+----------+----------+--------------------+---------+---------+------------------"
    for s in "${SERVERS[@]}"; do
        if [[ "${STATUS[$s]}" == failed ]]; then
            printf '%-9s | %s\n' "$s" "did not start"
            continue
        fi
        p50=- p99=- p999=- lfix=-
        if [[ -f "$WORK/$s.fixed.lat" ]]; then
            read -r _ p50 _ p99 p999 _ <"$WORK/$s.fixed.lat"
            lfix=$(stat_field "Queries lost" "$WORK/$s.fixed.txt")
        fi
        read -r scpu gcpu ocpu <<<"${CPU[$s]:-- - -}"
        ofix=-
        if [[ -f "$WORK/$s.fixed.cpu" ]]; then read -r _ _ ofix <"$WORK/$s.fixed.cpu"; fi
        printf '%-9s | %10.0f | %6s | %8s | %8s | %8s | %-18s | %7s | %7s | %s\n' \
            "$s" "${BEST[$s]:-0}" "$(ratio "${BEST[$s]:-}" "${BEST[nsd]:-}")" "$p50" "$p99" "$p999" \
            "${LOSTMAX[$s]:--} / ${lfix:--}" "$(pc "$scpu")" "$(pc "$gcpu")" "$(pc "$ocpu") / $(pc "$ofix")"
        [[ "${STATUS[$s]}" == died ]] && printf '%-9s   ^ server died during the benchmark; figures are partial\n' ""
    done
    echo
    for s in "${SERVERS[@]}"; do
        [[ -n "${RUNS[$s]:-}" ]] || continue
        printf '%-9s QPS per round: %s (median %.0f' "$s" "${RUNS[$s]}" "${MED[$s]}"
        if [[ "$s" != nsd && -n "${MED[nsd]:-}" ]]; then printf ', median vs NSD %s' "$(ratio "${MED[$s]}" "${MED[nsd]}")"; fi
        echo ")"
    done
    if [[ "$DNSSEC" == yes && -n "${BEST[nsd]:-}" && -n "${BEST[edgewise]:-}" ]]; then
        echo "DO=1, edgewise vs NSD: $(ratio "${BEST[edgewise]}" "${BEST[nsd]}") best, $(ratio "${MED[edgewise]}" "${MED[nsd]}") median (issue 14's target: >= 1.0)"
    fi
    echo "CPU in the best max run, as % of one core: srv = the server's processes, gen = dnsperf."
    echo "srv near 100%: the server set the max QPS; gen near 100% with srv well below: dnsperf did"
    echo "(NSD on 2 cores is close to that). other = the rest of the machine's busy time in that run and"
    echo "in the fixed-rate run: a few % when quiet; well above ~15%, something else was running (a"
    echo "build, tests) and those figures, tail latencies first, are suspect."
    echo
    for s in "${SERVERS[@]}"; do
        [[ -f "$WORK/$s.fixed.txt" ]] || continue
        printf '%-9s response codes (fixed run): %s; average response %s bytes\n' "$s" \
            "$(grep -m1 'Response codes:' "$WORK/$s.fixed.txt" | sed -E 's/^[[:space:]]*Response codes:[[:space:]]*//')" \
            "$(grep -m1 'Average packet size:' "$WORK/$s.fixed.txt" | sed -E 's/.*response[[:space:]]*//')"
    done
    for s in "${SERVERS[@]}"; do
        [[ -f "$WORK/$s.fixed.txt" ]] || continue
        got=$(stat_field "Queries per second" "$WORK/$s.fixed.txt")
        if awk -v g="${got:-0}" -v r="$RATE" 'BEGIN { exit !(g < 0.95 * r) }'; then
            printf 'WARNING: %s fixed-rate run reached only %.0f of %s q/s: its latencies are not at that rate\n' "$s" "${got:-0}" "$RATE"
        fi
    done
    if [[ -n "$ANSWERS" ]]; then
        read -r ndiff ndistinct _ sig_nsd sig_ew size_nsd size_ew <<<"$ANSWERS"
        what="section counts"
        [[ "$DNSSEC" == yes ]] && what="record types per section (DO=1)"
        if ((ndiff == 0)); then
            echo "answers: same rcode, AA/TC flags and $what from both servers for all $ndistinct distinct queries"
        else
            echo "answers: $ndiff of $ndistinct distinct queries differ in rcode, flags or $what (NSD | Edgewise), e.g.:"
            head -n 8 "$WORK/answers.diff" | sed 's/^/    /'
            cp "$WORK/answers.diff" "$ROOT/target/bench-dns/last-answers.diff"
            echo "    (all of them: target/bench-dns/last-answers.diff)"
        fi
        if [[ "$DNSSEC" == yes ]]; then
            echo "    with an RRSIG: NSD $sig_nsd, Edgewise $sig_ew of $ndistinct; average response NSD $size_nsd, Edgewise $size_ew bytes"
        fi
    fi
    if [[ -n "$PLAIN_ANSWERS" ]]; then
        read -r ndiff ndistinct _ _ _ size_sg size_us <<<"$PLAIN_ANSWERS"
        if ((ndiff == 0)); then
            echo "DO=0 answers: byte for byte the same from edgewise on the signed and on the unsigned zone for all $ndistinct distinct queries (without EDNS, and with EDNS DO=0)"
        else
            echo "DO=0 answers: $ndiff of $ndistinct distinct queries differ between edgewise on the signed and on the unsigned zone (bytes after the ID, signed | unsigned), e.g.:"
            head -n 4 "$WORK/plain-answers.diff" | cut -c 1-240 | sed 's/^/    /'
            cp "$WORK/plain-answers.diff" "$ROOT/target/bench-dns/last-plain-answers.diff"
            echo "    (all of them: target/bench-dns/last-plain-answers.diff; average response signed $size_sg, unsigned $size_us bytes)"
        fi
    fi
    if [[ -f "$WORK/nsd.fixed.rcodes" && -f "$WORK/edgewise.fixed.rcodes" ]]; then
        diffs=$(comm -3 "$WORK/nsd.fixed.rcodes" "$WORK/edgewise.fixed.rcodes" | wc -l)
        if ((diffs == 0)); then
            echo "rcodes: every distinct query got the same response code from both servers"
        else
            echo "rcodes: $diffs 'name type rcode' lines differ (first ones; left column NSD, indented Edgewise):"
            comm -3 "$WORK/nsd.fixed.rcodes" "$WORK/edgewise.fixed.rcodes" | head -n 10 | sed 's/^/    /'
        fi
    fi
    if [[ -f "$WORK/edgewise.routed.1.txt" ]]; then
        best_of() { # kind
            for ((r = 1; r <= ROUNDS; r++)); do stat_field "Queries per second" "$WORK/edgewise.$1.$r.txt"; done | sort -g | tail -n 1
        }
        st=$(best_of static); ro=$(best_of routed)
        echo
        echo "routing cost (edgewise, best of $ROUNDS alternating runs each):"
        printf '    static names (queries-static.txt)                        %10.0f q/s\n' "${st:-0}"
        printf '    routed names (queries-routed.txt: weighted + geolocation) %10.0f q/s = %s of static\n' "${ro:-0}" "$(ratio "$ro" "$st")"
    fi
    if [[ -f "$WORK/unsigned.do0.1.txt" ]]; then
        do0() { # name: each round's qps
            for ((r = 1; r <= ROUNDS; r++)); do stat_field "Queries per second" "$WORK/$1.do0.$r.txt"; done
        }
        do0_rounds() { # name: "qps (other N%)" per round
            for ((r = 1; r <= ROUNDS; r++)); do
                q=$(stat_field "Queries per second" "$WORK/$1.do0.$r.txt"); [[ -n "$q" ]] || continue
                read -r _ _ o <"$WORK/$1.do0.$r.cpu" || o=-
                printf '%s%.0f (other %s)' "$([[ $r == 1 ]] || echo ', ')" "$q" "$(pc "$o")"
            done
        }
        us=$(do0 unsigned | sort -g | tail -n 1); sg=$(do0 edgewise | sort -g | tail -n 1)
        usm=$(do0 unsigned | median); sgm=$(do0 edgewise | median)
        echo
        echo "DO=0 queries (no EDNS) to edgewise, unsigned zone against signed zone, best of $ROUNDS alternating runs each:"
        printf '    unsigned zone %10.0f q/s, median %.0f; rounds: %s\n' "${us:-0}" "${usm:-0}" "$(do0_rounds unsigned)"
        printf '    signed zone   %10.0f q/s, median %.0f; rounds: %s\n' "${sg:-0}" "${sgm:-0}" "$(do0_rounds edgewise)"
        echo "    signed vs unsigned: $(ratio "$sg" "$us") best, $(ratio "$sgm" "$usm") median (issue 14's target: >= 0.97)"
    fi
} | tee "$ROOT/target/bench-dns/last-summary.txt"

if ((FAILED)); then
    log "a server failed to start or died; see $WORK"
    exit 1
fi
