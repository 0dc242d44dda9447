# shellcheck shell=bash
# Shared by the benchmark scripts (benches/*/run.sh), which set BENCH (their log prefix) and
# source this after `set -euo pipefail`: what they do alike, written once, so that a fix to
# how one of them installs, builds, stops servers or counts CPU reaches all of them.
# Sourcing it defines ROOT, PATH and LOAD_PID and starts nothing.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$PATH:/usr/sbin:/sbin:$HOME/.cargo/bin"
LOAD_PID=""   # the load generator while it runs, for the exit trap

log() { printf '[%s] %s\n' "$BENCH" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# require_uints NAME...: each named knob must be a non-negative integer
require_uints() {
    local v
    for v; do
        [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer (got '${!v}')"
    done
}

# install_tools COMMAND=PACKAGE...: apt-get installs the package of each missing command (as
# root, or with sudo), then checks that every command is there
install_tools() {
    local need=() sudo=() pair
    for pair; do command -v "${pair%%=*}" >/dev/null 2>&1 || need+=("${pair#*=}"); done
    ((${#need[@]} == 0)) && return 0
    log "installing: ${need[*]}"
    if ((EUID != 0)); then
        command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to install ${need[*]}"
        sudo=(sudo)
    fi
    "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 \
        install -y -qq --no-install-recommends "${need[@]}" >/dev/null || die "apt-get install ${need[*]} failed"
    for pair; do
        command -v "${pair%%=*}" >/dev/null 2>&1 || die "${pair%%=*} still missing after apt-get install"
    done
}

# build_edgewise BIN: cargo build --release --bin BIN unless EDGEWISE_BIN names the binary to
# use; either way EW_BIN must then be executable
build_edgewise() {
    if [[ -z "${EDGEWISE_BIN:-}" ]]; then
        command -v cargo >/dev/null 2>&1 || die "cargo not found"
        log "building $1 (release)"
        (cd "$ROOT" && cargo build --release --bin "$1") || die "cargo build --release --bin $1 failed"
    fi
    [[ -x "$EW_BIN" ]] || die "$EW_BIN missing after build"
}

# ports_free PORT...: dies when something already listens on ADDR:PORT (TCP)
ports_free() {
    local p
    for p; do
        if (exec 3<>"/dev/tcp/$ADDR/$p") 2>/dev/null; then die "port $ADDR:$p is already in use (set PORT_BASE)"; fi
    done
}

# kill_group PGID TENTHS: SIGTERM to a process group (a server started with setsid), up to
# TENTHS tenths of a second for a clean shutdown, then SIGKILL; reaps its leader
kill_group() {
    local pg="$1" i
    kill -TERM -- "-$pg" 2>/dev/null || return 0
    for ((i = 0; i < $2; i++)); do
        kill -0 -- "-$pg" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL -- "-$pg" 2>/dev/null || true
    wait "$pg" 2>/dev/null || true
}

# load OUTFILE CMD...: CMD on LOAD_CPU in the background + wait, so that a signal to the script
# is handled at once (the output file is not a redirection of load itself: the trap would
# inherit it)
load() {
    local rc=0 out="$1"
    shift
    taskset -c "$LOAD_CPU" "$@" >"$out" 2>&1 &
    LOAD_PID=$!
    wait "$LOAD_PID" || rc=$?
    LOAD_PID=""
    return "$rc"
}

# stop_load: in the exit trap, ends a load generator that a signal interrupted
stop_load() {
    if [[ -n "$LOAD_PID" ]]; then kill -TERM "$LOAD_PID" 2>/dev/null || true; wait "$LOAD_PID" 2>/dev/null || true; fi
}

# keep_work RC: in the exit trap, keeps the work dir (and names it) with KEEP set or after a
# failure (RC or FAILED non-zero), removes it otherwise
keep_work() {
    if [[ -n "$KEEP" || $1 -ne 0 || $FAILED -ne 0 ]]; then
        log "work dir kept: $WORK"
    else
        rm -rf "$WORK"
    fi
}

# busy_note: BG_NOTE := a warning (logged too) when the machine was over 10% busy in the
# second before the benchmark: anything else running (a cargo build...) skews every figure
busy_note() {
    local b0 t0 b1 t1 busy
    read -r b0 t0 < <(awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat)
    sleep 1
    read -r b1 t1 < <(awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat)
    busy=$((t1 > t0 ? 100 * (b1 - b0) / (t1 - t0) : 0))
    BG_NOTE=""
    if ((busy > 10)); then
        BG_NOTE="WARNING: the machine was ${busy}% busy before the benchmark started; figures will be noisy"
        log "$BG_NOTE"
    fi
}

# nsd_server DIR PORT: prints the server: section of an NSD config for one server process
# on $ADDR:PORT keeping all its files in DIR (no chroot, no database, no zone file checks or
# rewrites); the caller adds its own server: lines right after it, then its other sections
nsd_server() {
    cat <<CONF
server:
    ip-address: $ADDR@$2
    do-ip4: yes
    do-ip6: no
    server-count: 1
    reuseport: no
    username: ""
    chroot: ""
    zonesdir: "$1"
    database: ""
    zonelistfile: "$1/zone.list"
    xfrdfile: "$1/xfrd.state"
    xfrdir: "$1"
    pidfile: "$1/nsd.pid"
    logfile: "$1/nsd.log"
    verbosity: 0
    hide-version: yes
    zonefiles-check: no
    zonefiles-write: 0
CONF
}

# ---------------------------------------------------------------- CPU of a measured run
# Each script samples before and after a run: its server's ticks, cpu_busy, children_cpu and
# the time; cpu_split turns the differences into "srv gen other".

# group_ticks PGID: CPU ticks (user+system) of every process in the process group
group_ticks() {
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } |
        awk -v g="$1" '{ sub(/^.*\) /, ""); if ($3 == g) s += $12 + $13 } END { print s + 0 }'
}
# busy jiffies (USER_HZ) of all CPUs from /proc/stat
cpu_busy() { awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6 }' /proc/stat; }
# CHILD_CPU := CPU seconds used by this shell's reaped children so far (bash "times"; call it
# directly, not in $(...), whose subshell would only see its own children)
children_cpu() {
    times >"$WORK/times"
    # shellcheck disable=SC2034 # the result, for the caller
    CHILD_CPU=$(awk 'NR == 2 { s = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] } print s }' "$WORK/times")
}
# cpu_split TICKS BUSY G0 G1 W0 W1: "srv gen other", % of one core over the wall time W0..W1:
# srv = the server's TICKS, gen = the load generator (this shell's children: CPU seconds G0
# to G1), other = the rest of the machine's BUSY ticks (kernel network work charged to
# neither, anything else running); "- - -" when the server's ticks went back (it died)
cpu_split() {
    awk -v t="$1" -v b="$2" -v g0="$3" -v g1="$4" -v w0="$5" -v w1="$6" \
        -v hz="$(getconf CLK_TCK)" 'BEGIN { w = w1 - w0
            if (w <= 0 || t < 0) { print "- - -"; exit }
            srv = 100 * t / hz / w; gen = 100 * (g1 - g0) / w; oth = 100 * b / hz / w - srv - gen
            printf "%.0f %.0f %.0f\n", srv, gen, (oth < 0 ? 0 : oth) }'
}

# ratio A B: A / B with two decimals, "-" unless both are positive numbers
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "-" }'; }
