#!/usr/bin/env bash
# CDN benchmark: edgewise-cdn against nginx (proxy_cache) as caching reverse proxies in
# front of the same origin, on the same single core. See README.md in this folder.
#
# Environment knobs (all optional):
#   DURATION=10         seconds per measured run
#   ROUNDS=2            runs per proxy and row (alternating proxies; the best is reported)
#   CONNS=32            connections of wrk / h2load
#   H2_STREAMS=1        h2load -m: concurrent streams per HTTP/2 connection
#   WARMUP=3            seconds of unmeasured load on each proxy before measuring (0: none)
#   STAMPEDE=200        concurrent requests for one cold object in the stampede check (0: skip)
#   SLOW_RATE=40k       body rate of the origin's /slow/ objects (nginx limit_rate syntax;
#                       nginx sends the first second's worth at once: 100 KiB at 40k takes ~2 s)
#   PORT_BASE=18480     origin PORT_BASE, nginx +1 (http) +2 (https), edgewise +3 (http)
#                       +4 (https) +5 (admin)
#   PROXY_CPU=1 LOAD_CPU=0   cores the proxies and the load generator (and origin) use
#   STARTUP_TIMEOUT=30  seconds to wait for a server to answer
#   KEEP=1              keep the work dir (configs, logs, raw wrk/h2load output)
#   EDGEWISE_BIN=path   use this edgewise-cdn binary and skip the cargo build
#   EDGEWISE_LOG=warn   RUST_LOG for edgewise-cdn
#
# Exit status: non-zero only when something could not run (tools missing and not
# installable, build failure, a server that did not start or died, a proxy that did not
# serve cache hits). Slow results never fail the script.
#
# Traffic goes only to 127.0.0.1. Every wait loop is bounded.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH=bench-cdn
# shellcheck source=SCRIPTDIR/../lib.sh
source "$HERE/../lib.sh"

DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-2}"
CONNS="${CONNS:-32}"
H2_STREAMS="${H2_STREAMS:-1}"
WARMUP="${WARMUP:-3}"
STAMPEDE="${STAMPEDE:-200}"
SLOW_RATE="${SLOW_RATE:-40k}"
PORT_BASE="${PORT_BASE:-18480}"
PROXY_CPU="${PROXY_CPU:-1}"
LOAD_CPU="${LOAD_CPU:-0}"
STARTUP_TIMEOUT="${STARTUP_TIMEOUT:-30}"
KEEP="${KEEP:-}"
EW_BIN="${EDGEWISE_BIN:-$ROOT/target/release/edgewise-cdn}"
ADDR=127.0.0.1

require_uints DURATION ROUNDS CONNS H2_STREAMS WARMUP STAMPEDE PORT_BASE PROXY_CPU LOAD_CPU STARTUP_TIMEOUT
((DURATION > 0 && ROUNDS > 0 && CONNS > 0 && H2_STREAMS > 0 && STARTUP_TIMEOUT > 0)) ||
    die "DURATION, ROUNDS, CONNS, H2_STREAMS and STARTUP_TIMEOUT must be > 0"
((PORT_BASE >= 1024 && PORT_BASE <= 65000)) || die "PORT_BASE must be in 1024..65000"
[[ "$SLOW_RATE" =~ ^[0-9]+[km]?$ ]] || die "SLOW_RATE must look like 200k"
for f in nginx-origin.conf.in nginx-proxy.conf.in edgewise-bench.toml.in; do
    [[ -f "$HERE/$f" ]] || die "missing $HERE/$f"
done

# ---------------------------------------------------------------- tools
install_tools nginx=nginx-light wrk=wrk h2load=nghttp2-client taskset=util-linux curl=curl openssl=openssl
NCPU="$(nproc)"
((PROXY_CPU < NCPU && LOAD_CPU < NCPU)) || die "PROXY_CPU/LOAD_CPU must be < $NCPU (nproc)"
((PROXY_CPU != LOAD_CPU)) || log "warning: proxies and load generator share CPU $PROXY_CPU"
NGINX_VERSION="$(nginx -v 2>&1 | sed -E 's|.*nginx/([0-9.]+).*|\1|')"

# ---------------------------------------------------------------- build
build_edgewise edgewise-cdn

# ---------------------------------------------------------------- work dir, cleanup
mkdir -p "$ROOT/target/bench-cdn"
WORK="$(mktemp -d "$ROOT/target/bench-cdn/run.XXXXXX")"
declare -A PGID=() STATUS=()   # per server; PGID: process group (started with setsid)
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

# ---------------------------------------------------------------- ports, files, configs
ORIGIN_PORT=$PORT_BASE
NGINX_HTTP=$((PORT_BASE + 1)) NGINX_HTTPS=$((PORT_BASE + 2))
EW_HTTP=$((PORT_BASE + 3)) EW_HTTPS=$((PORT_BASE + 4)) EW_ADMIN=$((PORT_BASE + 5))
declare -A HTTP_PORT=([nginx]=$NGINX_HTTP [edgewise]=$EW_HTTP)
declare -A HTTPS_PORT=([nginx]=$NGINX_HTTPS [edgewise]=$EW_HTTPS)
ports_free "$ORIGIN_PORT" "$NGINX_HTTP" "$NGINX_HTTPS" "$EW_HTTP" "$EW_HTTPS" "$EW_ADMIN"

mkdir -p "$WORK/www/slow" "$WORK/www/fast" "$WORK/origin-tmp" "$WORK/nginx-tmp" "$WORK/nginx-cache"
# Random bytes: nothing compresses them, whatever either proxy would do with Accept-Encoding.
head -c 1024 /dev/urandom >"$WORK/www/1k.bin"
head -c 102400 /dev/urandom >"$WORK/www/100k.bin"
for p in nginx edgewise; do   # stampede objects, one per proxy so both start cold
    head -c 1024 /dev/urandom >"$WORK/www/fast/$p.bin"
    head -c 102400 /dev/urandom >"$WORK/www/slow/$p.bin"
done
head -c 102400 /dev/urandom >"$WORK/www/slow/direct.bin"   # the slow origin's own time
# One self-signed P-256 certificate for both proxies.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" >/dev/null 2>&1 || die "openssl could not make a certificate"

USER_LINE=""
((EUID == 0)) && USER_LINE="user root;"   # the workers must write the work dir
# nginx >= 1.25.1 has "http2 on;"; older ones take "http2" on the listen line.
if [[ "$(printf '%s\n1.25.1\n' "$NGINX_VERSION" | sort -V | head -n1)" == 1.25.1 ]]; then
    H2_LISTEN="" H2_DIRECTIVE="http2 on;"
else
    H2_LISTEN="http2" H2_DIRECTIVE=""
fi
fill() { # template output
    sed -e "s|@WORK@|$WORK|g" -e "s|@USER@|$USER_LINE|g" -e "s|@ORIGIN_PORT@|$ORIGIN_PORT|g" \
        -e "s|@NGINX_HTTP@|$NGINX_HTTP|g" -e "s|@NGINX_HTTPS@|$NGINX_HTTPS|g" \
        -e "s|@EW_HTTP@|$EW_HTTP|g" -e "s|@EW_HTTPS@|$EW_HTTPS|g" -e "s|@EW_ADMIN@|$EW_ADMIN|g" \
        -e "s|@HTTP2_LISTEN@|$H2_LISTEN|g" -e "s|@HTTP2_DIRECTIVE@|$H2_DIRECTIVE|g" \
        -e "s|@SLOW_RATE@|$SLOW_RATE|g" "$HERE/$1" >"$WORK/$2"
}
fill nginx-origin.conf.in origin.conf
fill nginx-proxy.conf.in nginx.conf
fill edgewise-bench.toml.in edgewise.toml
nginx -t -q -e "$WORK/origin.err" -c "$WORK/origin.conf" || die "nginx rejected $WORK/origin.conf"
nginx -t -q -e "$WORK/nginx.err" -c "$WORK/nginx.conf" || die "nginx rejected $WORK/nginx.conf"
"$EW_BIN" --config "$WORK/edgewise.toml" check >/dev/null || die "edgewise-cdn rejected $WORK/edgewise.toml"

# ---------------------------------------------------------------- servers
# status URL: HTTP status code of one GET, "000" when nothing answered
status() { curl -s -o /dev/null --max-time 2 -w '%{http_code}' "$@" 2>/dev/null || true; }

start_server() { # name cpu probe-url command...
    local name="$1" cpu="$2" url="$3" i code=000
    shift 3
    setsid taskset -c "$cpu" "$@" >"$WORK/$name.out" 2>&1 </dev/null &
    PGID[$name]=$!
    for ((i = 0; i < STARTUP_TIMEOUT * 10; i++)); do
        kill -0 "${PGID[$name]}" 2>/dev/null || break
        code=$(status "$url")
        [[ "$code" == 000 ]] || break
        sleep 0.1
    done
    if [[ "$code" == 000 ]]; then
        log "$name did not start; its output:"
        cat "$WORK/$name.out" "$WORK/$name.err" 2>/dev/null | tail -n 30 | sed 's/^/    /' >&2 || true
        stop_server "$name"
        STATUS[$name]=failed; FAILED=1
        return 1
    fi
    STATUS[$name]=ok
    log "$name up (pgid ${PGID[$name]}, CPU $cpu)"
}
server_alive() { [[ -n "${PGID[$1]:-}" ]] && kill -0 -- "-${PGID[$1]}" 2>/dev/null; }
check_alive() { # name phase
    server_alive "$1" && return 0
    [[ "${STATUS[$1]:-}" == ok ]] || return 1
    log "$1 died during the $2"
    STATUS[$1]=died; FAILED=1; stop_server "$1"
    return 1
}

busy_note
start_server origin "$LOAD_CPU" "http://$ADDR:$ORIGIN_PORT/1k.bin" \
    nginx -e "$WORK/origin.err" -c "$WORK/origin.conf" -g 'daemon off;' || die "the origin did not start"
start_server nginx "$PROXY_CPU" "http://$ADDR:$NGINX_HTTP/" \
    nginx -e "$WORK/nginx.err" -c "$WORK/nginx.conf" -g 'daemon off;' || true
start_server edgewise "$PROXY_CPU" "http://$ADDR:$EW_HTTP/" \
    env RUST_LOG="${EDGEWISE_LOG:-warn}" "$EW_BIN" --config "$WORK/edgewise.toml" || true
PROXIES=()
for p in nginx edgewise; do [[ "${STATUS[$p]}" == ok ]] && PROXIES+=("$p"); done
((${#PROXIES[@]})) || die "neither proxy started"
# Threads of each proxy (edgewise: tokio sizes its runtime by the CPUs it may use).
threads_of() { local n=0 pid; for pid in $(pgrep -g "${PGID[$1]}" 2>/dev/null || true); do
    n=$((n + $(ls "/proc/$pid/task" 2>/dev/null | wc -l))); done; echo "$n"; }

# origin_count PATH: requests for PATH in the origin's access log so far
origin_count() { { grep -c "^$1 " "$WORK/origin.access.log" 2>/dev/null || true; } | head -n1; }
origin_total() { { wc -l <"$WORK/origin.access.log" 2>/dev/null || echo 0; } | tr -d ' '; }

# ---------------------------------------------------------------- load-generator helpers
ROWS=(1k-h1 1k-tls-h1 1k-h2 100k-h1 100k-tls-h1 100k-h2)
declare -A ROW_LABEL=([1k-h1]="1 KiB  HTTP/1.1" [1k-tls-h1]="1 KiB  HTTPS/1.1" [1k-h2]="1 KiB  HTTP/2 TLS"
    [100k-h1]="100 KiB HTTP/1.1" [100k-tls-h1]="100 KiB HTTPS/1.1" [100k-h2]="100 KiB HTTP/2 TLS")
row_cmd() { # row proxy seconds logfile: prints nothing, sets CMD
    local row="$1" p="$2" secs="$3" logf="$4" obj="${1%%-*}.bin"
    case "$row" in
        *-tls-h1) CMD=(wrk -t1 -c "$CONNS" -d "${secs}s" --timeout 5s --latency "https://$ADDR:${HTTPS_PORT[$p]}/$obj") ;;
        *-h1) CMD=(wrk -t1 -c "$CONNS" -d "${secs}s" --timeout 5s --latency "http://$ADDR:${HTTP_PORT[$p]}/$obj") ;;
        *-h2) CMD=(h2load -t1 -c "$CONNS" -m "$H2_STREAMS" -D "$secs" -T 5 "https://$ADDR:${HTTPS_PORT[$p]}/$obj")
              if [[ -n "$logf" ]]; then CMD+=(--log-file "$logf"); fi ;;
    esac
}

# parse_result row file -> "rps p50ms p99ms errors" (p from wrk --latency or the h2load log)
to_ms() { awk '{ v = $1; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
    if (u == "us") v /= 1000; else if (u == "s") v *= 1000; else if (u == "m") v *= 60000; printf "%.2f", v }'; }
parse_result() {
    local row="$1" f="$2" rps p50=- p99=- err=0 x
    if [[ "$row" == *-h2 ]]; then
        rps=$(grep -m1 -oE '[0-9.]+ req/s' "$f" | awk '{print $1}') || true
        x=$(grep -m1 -E '^requests:' "$f" | awk '{ print $10 + $12 + $14 }') || true   # failed errored timeout
        err=$((${x:-0}))
        x=$(grep -m1 -E '^status codes:' "$f" | awk '{ print $5 + $7 + $9 }') || true  # 3xx 4xx 5xx
        err=$((err + ${x:-0}))
        if [[ -s "$f.log" ]]; then
            read -r p50 p99 < <(cut -f3 "$f.log" | sort -n | awk '{ v[NR] = $1 } END {
                if (NR == 0) { print "- -"; exit }
                i50 = int(NR * .5); if (i50 < 1) i50 = 1; i99 = int(NR * .99); if (i99 < 1) i99 = 1
                printf "%.2f %.2f\n", v[i50] / 1000, v[i99] / 1000 }')
            rm -f "$f.log"
        fi
    else
        rps=$(awk '/^Requests\/sec:/ { print $2 }' "$f")
        p50=$(awk '$1 == "50%" { print $2 }' "$f" | to_ms)
        p99=$(awk '$1 == "99%" { print $2 }' "$f" | to_ms)
        x=$(awk '/Non-2xx or 3xx responses:/ { n += $NF } /Socket errors:/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 } END { print n + 0 }' "$f")
        err=$((${x:-0}))
    fi
    echo "${rps:-0} ${p50:--} ${p99:--} $err"
}

# measured proxy row round: one run, result in $WORK/p.row.r.{txt,res}
measured() {
    local p="$1" row="$2" r="$3" t0 t1 b0 b1 g0 g1 w0 w1 f="$WORK/$1.$2.$3.txt"
    row_cmd "$row" "$p" "$DURATION" "$f.log"
    t0=$(group_ticks "${PGID[$p]}"); b0=$(cpu_busy); children_cpu; g0=$CHILD_CPU; w0=$(date +%s.%N)
    load "$f" "${CMD[@]}" || log "$p $row: ${CMD[0]} exited non-zero (see $f)"
    w1=$(date +%s.%N); children_cpu; g1=$CHILD_CPU; t1=$(group_ticks "${PGID[$p]}"); b1=$(cpu_busy)
    # srv = the proxy's processes, gen = wrk/h2load
    echo "$(parse_result "$row" "$f") $(cpu_split $((t1 - t0)) $((b1 - b0)) "$g0" "$g1" "$w0" "$w1")" >"$WORK/$p.$row.$r.res"
}

# ---------------------------------------------------------------- run
log "origin :$ORIGIN_PORT, nginx :$NGINX_HTTP/:$NGINX_HTTPS, edgewise :$EW_HTTP/:$EW_HTTPS; work dir $WORK"

# 1. Stampede: STAMPEDE concurrent HTTP/1.1 requests (one connection each) for one cold
#    object, then count what reached the origin. "fast": 1 KiB, sent at once; "slow":
#    100 KiB sent at SLOW_RATE, so the first fetch is still running when the rest arrive.
declare -A STAMP=()
SLOW_TIME=-
if ((STAMPEDE > 0)); then
    ((STAMPEDE <= 1000)) || die "STAMPEDE must be at most 1000"
    SLOW_TIME=$(curl -s -o /dev/null --max-time 30 -w '%{time_total}' "http://$ADDR:$ORIGIN_PORT/slow/direct.bin" || true)
    for kind in fast slow; do
        for p in "${PROXIES[@]}"; do
            f="$WORK/stampede.$kind.$p.txt"
            log "$p: stampede, $STAMPEDE concurrent requests for cold /$kind/$p.bin"
            load "$f" h2load --h1 -t1 -c "$STAMPEDE" -n "$STAMPEDE" -T 30 "http://$ADDR:${HTTP_PORT[$p]}/$kind/$p.bin" ||
                log "$p: h2load exited non-zero (see $f)"
            sleep 0.5   # the origin's log line is written when its response ends
            ok=$(grep -m1 -E '^status codes:' "$f" | awk '{ print $3 }') || true
            secs=$(grep -m1 -oE 'finished in [0-9.]+[a-z]+' "$f" | awk '{ print $3 }') || true
            STAMP[$kind.$p]="$(origin_count "/$kind/$p.bin") ${ok:-0} ${secs:--}"
            check_alive "$p" "stampede" || true
        done
    done
fi

# 2. Verify: each object by each protocol answers 200 with the right body, and the second
#    request is a cache hit. This also fills both caches.
VERIFY_NOTE=()
for p in "${PROXIES[@]}"; do
    bad=0
    for obj in 1k.bin 100k.bin; do
        want=$(md5sum <"$WORK/www/$obj" | cut -d' ' -f1)
        for proto in http https-h1 https-h2; do
            case "$proto" in
                http) args=("http://localhost:${HTTP_PORT[$p]}/$obj" --http1.1) ;;
                https-h1) args=("https://localhost:${HTTPS_PORT[$p]}/$obj" --http1.1) ;;
                https-h2) args=("https://localhost:${HTTPS_PORT[$p]}/$obj" --http2) ;;
            esac
            for _ in 1 2; do
                curl -sk --max-time 5 --resolve "localhost:${HTTP_PORT[$p]}:$ADDR" \
                    --resolve "localhost:${HTTPS_PORT[$p]}:$ADDR" -D "$WORK/verify.h" \
                    -o "$WORK/verify.body" "${args[@]}" 2>/dev/null || true
            done
            code=$(awk 'NR == 1 { print $2 }' "$WORK/verify.h" | tr -d '\r')
            ver=$(awk 'NR == 1 { print $1 }' "$WORK/verify.h" | tr -d '\r')
            cache=$(grep -iE '^(x-cache|x-cache-status):' "$WORK/verify.h" | head -n1 | cut -d: -f2- | tr -d '\r' | sed 's/^ *//')
            got=$(md5sum <"$WORK/verify.body" | cut -d' ' -f1)
            case "$p" in nginx) hit=HIT ;; edgewise) hit="Hit from edgewise" ;; esac
            if [[ "$code" != 200 || "$cache" != "$hit" || "$got" != "$want" ]]; then
                bad=1
                VERIFY_NOTE+=("$p $proto /$obj: second request got $ver ${code:-nothing}, cache '${cache}', body $([[ "$got" == "$want" ]] && echo ok || echo WRONG)")
            fi
            rm -f "$WORK/verify.h" "$WORK/verify.body"
        done
    done
    if ((bad)); then STATUS[$p]=unverified; FAILED=1; log "$p did not serve cache hits: see the summary"; fi
done

# 3. Warm-up (connections, allocator, page cache), then the measured rounds. The proxies
#    alternate within each row, in ABBA order over rounds.
if ((WARMUP > 0)); then
    for p in "${PROXIES[@]}"; do
        for row in 1k-h1 100k-h2; do
            log "$p: warm-up $row ${WARMUP}s"
            row_cmd "$row" "$p" "$WARMUP" ""
            load /dev/null "${CMD[@]}" || true
        done
    done
fi
ORIGIN_BEFORE=$(origin_total)
for ((r = 1; r <= ROUNDS; r++)); do
    for row in "${ROWS[@]}"; do
        order=("${PROXIES[@]}")
        if ((r % 2 == 0 && ${#PROXIES[@]} == 2)); then order=("${PROXIES[1]}" "${PROXIES[0]}"); fi
        for p in "${order[@]}"; do
            check_alive "$p" "measurements" || continue
            log "$p: $row, round $r/$ROUNDS, ${DURATION}s"
            measured "$p" "$row" "$r"
        done
    done
done
ORIGIN_DURING=$(($(origin_total) - ORIGIN_BEFORE))
declare -A THREADS=()
for p in "${PROXIES[@]}"; do
    check_alive "$p" "measurements" || true
    THREADS[$p]=$(if server_alive "$p"; then threads_of "$p"; else echo -; fi)
done
declare -A TLS=()
for p in "${PROXIES[@]}"; do   # what wrk negotiates (same OpenSSL defaults as openssl s_client)
    TLS[$p]=$(timeout 5 openssl s_client -connect "$ADDR:${HTTPS_PORT[$p]}" -servername localhost </dev/null 2>/dev/null |
        awk '/^New, / { v = $2; c = $NF } END { sub(/,$/, "", v); print v, c }' || true)
done
EW_METRICS=""
if server_alive edgewise; then
    EW_METRICS=$(curl -s --max-time 2 -H "Authorization: Bearer bench-admin-token" \
        "http://$ADDR:$EW_ADMIN/metrics" | grep -E '^edgewise_cdn_requests_total' | tr '\n' ' ' || true)
fi
for p in "${PROXIES[@]}"; do stop_server "$p"; done
stop_server origin

# ---------------------------------------------------------------- report
declare -A BEST=() RUNS=()
for p in "${PROXIES[@]}"; do
    for row in "${ROWS[@]}"; do
        best="" runs=""
        for ((r = 1; r <= ROUNDS; r++)); do
            [[ -f "$WORK/$p.$row.$r.res" ]] || continue
            read -r rps _ _ _ _ _ oth <"$WORK/$p.$row.$r.res"
            runs+="$(printf '%.0f' "$rps")(o${oth}) "
            if [[ -z "$best" ]] || awk -v a="$rps" -v b="${best%% *}" 'BEGIN { exit !(a > b) }'; then
                best=$(cat "$WORK/$p.$row.$r.res")
            fi
        done
        BEST[$p.$row]="$best"
        RUNS[$p.$row]="$runs"
    done
done
field() { # proxy row n: field n (1-based) of the best run, "-" if none
    local v
    v=$(awk -v n="$3" '{ print $n }' <<<"${BEST[$1.$2]:-}")
    echo "${v:--}"
}
num() { awk -v a="$1" 'BEGIN { if (a == "-" || a == "") print "-"; else printf "%.0f", a }'; }

{
    echo
    echo "CDN benchmark: cache hits through nginx $NGINX_VERSION (proxy_cache, 1 worker) and edgewise-cdn, origin nginx on $ADDR"
    echo "proxies on CPU $PROXY_CPU; wrk $(wrk -v 2>&1 | awk 'NR == 1 { print $2 }') / h2load $(h2load --version | awk '{ print $2 }') and the origin on CPU $LOAD_CPU"
    echo "req/s: best of $ROUNDS alternating runs of ${DURATION}s, $CONNS connections (wrk -t1; h2load -t1 -m $H2_STREAMS)"
    echo "p50/p99 ms: of that run (wrk --latency; h2load per-request log). CPU: % of one core, srv = the proxy, gen = wrk/h2load"
    [[ -n "$BG_NOTE" ]] && echo "$BG_NOTE"
    echo
    printf '%-18s | %11s | %11s | %5s | %9s | %9s | %9s | %9s | %-13s | %-13s | %s\n' \
        row "nginx req/s" "edgew req/s" "ratio" "nginx p50" "edgew p50" "nginx p99" "edgew p99" \
        "nginx srv/gen" "edgew srv/gen" "errors n/e"
    echo "-------------------+-------------+-------------+-------+-----------+-----------+-----------+-----------+---------------+---------------+-----------"
    for row in "${ROWS[@]}"; do
        printf '%-18s | %11s | %11s | %5s | %9s | %9s | %9s | %9s | %-13s | %-13s | %s\n' "${ROW_LABEL[$row]}" \
            "$(num "$(field nginx "$row" 1)")" "$(num "$(field edgewise "$row" 1)")" \
            "$(ratio "$(field edgewise "$row" 1)" "$(field nginx "$row" 1)")" \
            "$(field nginx "$row" 2)" "$(field edgewise "$row" 2)" "$(field nginx "$row" 3)" "$(field edgewise "$row" 3)" \
            "$(field nginx "$row" 5)%/$(field nginx "$row" 6)%" "$(field edgewise "$row" 5)%/$(field edgewise "$row" 6)%" \
            "$(field nginx "$row" 4)/$(field edgewise "$row" 4)"
    done
    echo "ratio = edgewise / nginx req/s. srv near 100%: the proxy set the pace; gen near 100% with srv"
    echo "below: the load generator did (then the figure is a lower bound)."
    echo
    for p in "${PROXIES[@]}"; do
        printf '%-8s req/s per round (o = other CPU %%): ' "$p"
        for row in "${ROWS[@]}"; do printf '%s: %s ' "$row" "${RUNS[$p.$row]:-}"; done
        echo
    done
    echo "other = busy time of neither proxy nor load generator: kernel network work plus anything else"
    echo "running; far above the quiet level (compare rounds), a build or tests were running."
    echo "origin requests during the measured runs: $ORIGIN_DURING (0: every measured request was a cache hit)"
    echo "threads: nginx ${THREADS[nginx]:--}, edgewise ${THREADS[edgewise]:--}"
    echo "TLS (openssl s_client, as wrk): nginx ${TLS[nginx]:--}; edgewise ${TLS[edgewise]:--}; h2load: $(cat "$WORK"/*.1k-h2.1.txt 2>/dev/null | awk '/^Cipher:/ { print $2; exit }')"
    if [[ -n "$EW_METRICS" ]]; then echo "edgewise /metrics: $EW_METRICS"; fi
    if [[ -s "$WORK/edgewise.out" ]]; then
        echo "edgewise log (RUST_LOG=${EDGEWISE_LOG:-warn}): $(wc -l <"$WORK/edgewise.out") lines, most frequent:"
        sed -E 's/^[0-9T:.Z-]+ +//; s/\([0-9a-f]+\)$//' "$WORK/edgewise.out" | sort | uniq -c | sort -rn | head -n 3 | sed 's/^/    /'
    fi
    if ((STAMPEDE > 0)); then
        echo
        echo "stampede: $STAMPEDE concurrent HTTP/1.1 requests (one connection each) for one cold object"
        printf '%-36s | %-24s | %-24s\n' object "nginx (proxy_cache_lock)" "edgewise"
        printf '%-36s | %-24s | %-24s\n' "" "origin reqs / 200s / time" "origin reqs / 200s / time"
        for kind in fast slow; do
            case $kind in
                fast) what="1 KiB, origin answers at once" ;;
                slow) what="100 KiB, origin takes ${SLOW_TIME}s" ;;
            esac
            cells=()
            for p in nginx edgewise; do
                read -r n ok secs <<<"${STAMP[$kind.$p]:-- - -}"
                cells+=("$n / $ok / $secs")
            done
            printf '%-36s | %-24s | %-24s\n' "$what" "${cells[0]}" "${cells[1]}"
        done
    fi
    for s in nginx edgewise; do
        case "${STATUS[$s]:-}" in
            failed) echo "$s: did not start (see $WORK/$s.out)" ;;
            died) echo "$s: DIED during the benchmark; its figures are partial (see $WORK/$s.out)" ;;
            unverified) echo "$s: did NOT serve verified cache hits; its figures are not cache-hit figures" ;;
        esac
    done
    if ((${#VERIFY_NOTE[@]})); then
        echo "verification failures:"
        printf '    %s\n' "${VERIFY_NOTE[@]}"
    else
        echo "verified: both proxies answered 200 with the origin's bytes and a cache hit, for both objects over HTTP/1.1, HTTPS/1.1 and HTTP/2"
    fi
} | tee "$ROOT/target/bench-cdn/last-summary.txt"

if ((FAILED)); then
    log "something could not run; see $WORK"
    exit 1
fi
