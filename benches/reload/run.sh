#!/usr/bin/env bash
# Reload benchmark: what a reload costs under full load, side by side with the servers users
# reload today. DNS: dnsperf against edgewise-dns (POST /reload) and NSD (SIGHUP), each
# reloaded RELOADS times during one run, alternating two zone files that differ in one
# record. CDN: wrk against edgewise-cdn (POST /reload) and nginx (nginx -s reload), each
# serving one cached 1 KiB object, reloaded RELOADS times, alternating two configs that
# differ in one behavior. Reported: queries lost / failed requests (target 0) and latency,
# with a run without reloads as the baseline.
#
# Environment knobs (all optional):
#   DURATION=20     seconds per run
#   RELOADS=10      reloads per run, spread evenly over it
#   CONNS=32        wrk connections
#   PORT_BASE=18580 dns +0 (edgewise) +1 (status) +2 (nsd); cdn +10 (edgewise http) +11
#                   (admin) +12 (nginx) +13 (origin, nginx)
#   SERVER_CPU=1 LOAD_CPU=0   cores the servers and the load generators use
#   EDGEWISE_DNS_BIN / EDGEWISE_CDN_BIN=path  use these binaries and skip the cargo build
#   KEEP=1          keep the work dir
#
# Traffic goes only to 127.0.0.1. Every wait loop is bounded. Exit status is non-zero only
# when something could not run; slow results never fail the script.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH=bench-reload
# shellcheck source=SCRIPTDIR/../lib.sh
source "$HERE/../lib.sh"

DURATION="${DURATION:-20}"
RELOADS="${RELOADS:-10}"
CONNS="${CONNS:-32}"
PORT_BASE="${PORT_BASE:-18580}"
SERVER_CPU="${SERVER_CPU:-1}"
LOAD_CPU="${LOAD_CPU:-0}"
KEEP="${KEEP:-}"
ADDR=127.0.0.1
FAILED=0
require_uints DURATION RELOADS CONNS PORT_BASE SERVER_CPU LOAD_CPU
((DURATION >= 5 && RELOADS > 0 && CONNS > 0)) || die "DURATION must be >= 5, RELOADS and CONNS > 0"
((PORT_BASE >= 1024 && PORT_BASE <= 65000)) || die "PORT_BASE must be in 1024..65000"

install_tools dnsperf=dnsperf nsd=nsd wrk=wrk nginx=nginx-light curl=curl taskset=util-linux
export PATH="$PATH:/usr/sbin"

DNS_PORT=$PORT_BASE STATUS_PORT=$((PORT_BASE + 1)) NSD_PORT=$((PORT_BASE + 2))
CDN_PORT=$((PORT_BASE + 10)) ADMIN_PORT=$((PORT_BASE + 11)) NGINX_PORT=$((PORT_BASE + 12))
ORIGIN_PORT=$((PORT_BASE + 13))
ports_free "$DNS_PORT" "$STATUS_PORT" "$NSD_PORT" "$CDN_PORT" "$ADMIN_PORT" "$NGINX_PORT" "$ORIGIN_PORT"

DNS_BIN="${EDGEWISE_DNS_BIN:-$ROOT/target/release/edgewise-dns}"
CDN_BIN="${EDGEWISE_CDN_BIN:-$ROOT/target/release/edgewise-cdn}"
if [[ -z "${EDGEWISE_DNS_BIN:-}${EDGEWISE_CDN_BIN:-}" ]]; then
    log "building edgewise-dns and edgewise-cdn (release)"
    (cd "$ROOT" && cargo build --release --bin edgewise-dns --bin edgewise-cdn) || die "cargo build failed"
fi
[[ -x "$DNS_BIN" && -x "$CDN_BIN" ]] || die "missing $DNS_BIN or $CDN_BIN"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/bench-reload.XXXXXX")"
GROUPS_STARTED=()
cleanup() {
    local rc=$?
    stop_load
    local g
    for g in "${GROUPS_STARTED[@]}"; do kill_group "$g" 30; done
    keep_work "$rc"
}
trap cleanup EXIT

# start NAME CMD...: a server in its own process group on SERVER_CPU, output to NAME.log
start() {
    local name="$1"
    shift
    setsid taskset -c "$SERVER_CPU" "$@" >"$WORK/$name.log" 2>&1 &
    GROUPS_STARTED+=("$!")
}

# wait_tcp PORT: until something accepts on ADDR:PORT (10 s at most)
wait_tcp() {
    local i
    for ((i = 0; i < 100; i++)); do
        if (exec 3<>"/dev/tcp/$ADDR/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    die "nothing listens on $ADDR:$1 (see $WORK/*.log)"
}

# reloads CMD...: runs CMD RELOADS times, evenly over DURATION (after a 1 s warm-up)
reloads() {
    local gap i
    gap=$(awk -v d="$DURATION" -v r="$RELOADS" 'BEGIN { printf "%.2f", (d - 2) / r }')
    sleep 1
    for ((i = 0; i < RELOADS; i++)); do
        "$@" "$i" || log "reload $i failed"
        sleep "$gap"
    done
}

# ---------------------------------------------------------------- DNS
mkdir -p "$WORK/dns"
cp "$ROOT/benches/dns/bench.example.zone" "$WORK/dns/a.zone"
# Zone B: one record differs, and the serial moves on (as an operator's edit would).
sed -e 's/^bench\.example\. 3600 IN A 192\.0\.2\.1$/bench.example. 3600 IN A 192.0.2.99/' \
    -e 's/ 2024010101 / 2024010102 /' "$WORK/dns/a.zone" >"$WORK/dns/b.zone"
cmp -s "$WORK/dns/a.zone" "$WORK/dns/b.zone" && die "zone B does not differ from zone A"
cp "$WORK/dns/a.zone" "$WORK/dns/bench.example.zone"
cat >"$WORK/dns/edgewise.toml" <<EOF
[dns]
listen = ["$ADDR:$DNS_PORT"]
status_listen = ["$ADDR:$STATUS_PORT"]
workers = 1

[[dns.zones]]
name = "bench.example"
file = "bench.example.zone"
EOF
cat >"$WORK/dns/nsd.conf" <<EOF
server:
    ip-address: $ADDR@$NSD_PORT
    do-ip4: yes
    do-ip6: no
    server-count: 1
    reuseport: no
    minimal-responses: yes
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
    rrl-slip: 0
    username: ""
    chroot: ""
    zonesdir: "$WORK/dns"
    zonelistfile: "$WORK/dns/zone.list"
    database: ""
    pidfile: "$WORK/dns/nsd.pid"
    xfrdfile: "$WORK/dns/xfrd.state"
    xfrdir: "$WORK/dns"
    logfile: "$WORK/dns/nsd-server.log"
    verbosity: 0
remote-control:
    control-enable: no
zone:
    name: bench.example
    zonefile: bench.example.zone
EOF

swap_zone() { cp "$WORK/dns/$([[ $(($1 % 2)) -eq 0 ]] && echo b || echo a).zone" "$WORK/dns/bench.example.zone"; }
reload_edgewise_dns() { swap_zone "$1"; curl -sf -X POST "http://$ADDR:$STATUS_PORT/reload" -o /dev/null; }
reload_nsd() { swap_zone "$1"; kill -HUP "$(cat "$WORK/dns/nsd.pid")"; }

# dns_run NAME PORT RELOAD-FN|-: one dnsperf run (-v: every response's latency); prints
# "sent lost p99_ms max_ms"
dns_run() {
    local name="$1" port="$2" reload="$3" out="$WORK/dns/$1-$3.out"
    cp "$WORK/dns/a.zone" "$WORK/dns/bench.example.zone"
    [[ "$reload" == - ]] || reloads "$reload" &
    local reloader=$!
    load "$out" dnsperf -s "$ADDR" -p "$port" -d "$ROOT/benches/dns/queries.txt" -l "$DURATION" \
        -c 4 -T 1 -q 200 -t 2 -v || log "dnsperf exited non-zero ($out)"
    wait "$reloader" 2>/dev/null || true
    awk '/^> / && NF == 5 { print $5 }' "$out" | sort -g >"$out.lat"
    local n p99 max
    n=$(wc -l <"$out.lat")
    p99=$(awk -v n="$n" 'NR == int(n * 0.99 + 0.999) { printf "%.3f", $1 * 1000 }' "$out.lat")
    max=$(awk 'END { printf "%.3f", $1 * 1000 }' "$out.lat")
    awk -v p="${p99:-nan}" -v m="${max:-nan}" '/Queries sent:/ { s = $3 } /Queries lost:/ { l = $3 }
         END { printf "%s %s %s %s\n", s, l, p, m }' "$out"
}

log "DNS: edgewise-dns and NSD, ${DURATION}s runs, $RELOADS reloads each"
start edgewise-dns "$DNS_BIN" --config "$WORK/dns/edgewise.toml"
wait_tcp "$STATUS_PORT"
start nsd nsd -d -c "$WORK/dns/nsd.conf"
sleep 1
declare -A DNS
for name in edgewise nsd; do
    port=$DNS_PORT reload=reload_edgewise_dns
    [[ $name == nsd ]] && port=$NSD_PORT reload=reload_nsd
    DNS[$name-base]="$(dns_run "$name" "$port" -)"
    DNS[$name-reload]="$(dns_run "$name" "$port" "$reload")"
done

# ---------------------------------------------------------------- CDN
mkdir -p "$WORK/cdn/www"
head -c 1024 /dev/urandom | base64 -w 0 | head -c 1024 >"$WORK/cdn/www/obj.txt"
cdn_config() { # behavior TTL of /obj.txt: the one difference between config A and B
    cat <<EOF
[cdn]
http_listen = ["$ADDR:$CDN_PORT"]
admin_listen = ["$ADDR:$ADMIN_PORT"]
admin_token = "bench-admin-token"

[[cdn.distributions]]
id = "bench"
hosts = ["$ADDR", "localhost"]
[[cdn.distributions.origins]]
id = "files"
dir = "www"
[[cdn.distributions.behaviors]]
path = "/obj*"
origin = "files"
default_ttl = "$1"
[[cdn.distributions.behaviors]]
path = "*"
origin = "files"
EOF
}
cdn_config 1h >"$WORK/cdn/a.toml"
cdn_config 2h >"$WORK/cdn/b.toml"
cp "$WORK/cdn/a.toml" "$WORK/cdn/edgewise.toml"
nginx_config() {
    cat <<EOF
worker_processes 1;
$( ((EUID == 0)) && echo "user root;")
pid $WORK/cdn/nginx.pid;
error_log $WORK/cdn/nginx-error.log;
events { worker_connections 1024; }
http {
    access_log off;
    proxy_cache_path $WORK/cdn/nginx-cache keys_zone=bench:10m;
    server {
        listen $ADDR:$ORIGIN_PORT;
        root $WORK/cdn/www;
    }
    server {
        listen $ADDR:$NGINX_PORT;
        location / {
            proxy_pass http://$ADDR:$ORIGIN_PORT;
            proxy_cache bench;
            proxy_cache_valid 200 $1;
        }
    }
}
EOF
}
nginx_config 1h >"$WORK/cdn/nginx-a.conf"
nginx_config 2h >"$WORK/cdn/nginx-b.conf"
cp "$WORK/cdn/nginx-a.conf" "$WORK/cdn/nginx.conf"

swap_cdn() { cp "$WORK/cdn/$([[ $(($1 % 2)) -eq 0 ]] && echo b || echo a).toml" "$WORK/cdn/edgewise.toml"; }
reload_edgewise_cdn() {
    swap_cdn "$1"
    curl -sf -X POST -H 'Authorization: Bearer bench-admin-token' "http://$ADDR:$ADMIN_PORT/reload" -o /dev/null
}
reload_nginx() {
    cp "$WORK/cdn/nginx-$([[ $(($1 % 2)) -eq 0 ]] && echo b || echo a).conf" "$WORK/cdn/nginx.conf"
    nginx -c "$WORK/cdn/nginx.conf" -s reload 2>>"$WORK/cdn/nginx-error.log"
}

# cdn_run NAME PORT RELOAD-FN|-: one wrk run; prints "requests errors non2xx p99_ms max_ms"
cdn_run() {
    local name="$1" port="$2" reload="$3" out="$WORK/cdn/$1-$3.out"
    [[ "$reload" == - ]] || reloads "$reload" &
    local reloader=$!
    load "$out" wrk -t 1 -c "$CONNS" -d "${DURATION}s" --latency "http://$ADDR:$port/obj.txt" ||
        log "wrk exited non-zero ($out)"
    wait "$reloader" 2>/dev/null || true
    awk 'function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
         / 99%/ { p = ms($2) } /Latency/ && !l { m = ms($4); l = 1 }
         /requests in/ { r = $1 } /Socket errors/ { e = ($4 + 0) + ($6 + 0) + ($8 + 0) + ($10 + 0) }
         /Non-2xx/ { n = $5 }
         END { printf "%s %d %d %.3f %.3f\n", r, e, n, p, m }' "$out"
}

log "CDN: edgewise-cdn and nginx, ${DURATION}s runs, $RELOADS reloads each"
start edgewise-cdn "$CDN_BIN" --config "$WORK/cdn/edgewise.toml"
wait_tcp "$CDN_PORT"
start nginx nginx -c "$WORK/cdn/nginx.conf" -g 'daemon off;'
wait_tcp "$NGINX_PORT"
curl -sf "http://$ADDR:$CDN_PORT/obj.txt" -o /dev/null && curl -sf "http://$ADDR:$NGINX_PORT/obj.txt" -o /dev/null ||
    die "a proxy does not serve /obj.txt"
declare -A CDN
for name in edgewise nginx; do
    port=$CDN_PORT reload=reload_edgewise_cdn
    [[ $name == nginx ]] && port=$NGINX_PORT reload=reload_nginx
    CDN[$name-base]="$(cdn_run "$name" "$port" -)"
    CDN[$name-reload]="$(cdn_run "$name" "$port" "$reload")"
done

# ---------------------------------------------------------------- report
{
    echo
    echo "DNS: dnsperf -c 4 -q 200, ${DURATION}s, $RELOADS reloads in the second run (alternating two zone files)"
    printf '%-24s %12s %8s %10s %10s\n' server queries lost "p99 ms" "max ms"
    for key in edgewise-base edgewise-reload nsd-base nsd-reload; do
        read -r sent lost p99 max <<<"${DNS[$key]}"
        printf '%-24s %12s %8s %10s %10s\n' "$key" "$sent" "$lost" "$p99" "$max"
    done
    echo
    echo "CDN: wrk -c $CONNS on a cached 1 KiB object, ${DURATION}s, $RELOADS reloads in the second run (alternating two configs)"
    printf '%-24s %12s %8s %8s %10s %10s\n' server requests errors non-2xx "p99 ms" "max ms"
    for key in edgewise-base edgewise-reload nginx-base nginx-reload; do
        read -r requests errors non2xx p99 max <<<"${CDN[$key]}"
        printf '%-24s %12s %8s %8s %10s %10s\n' "$key" "$requests" "$errors" "$non2xx" "$p99" "$max"
    done
} | tee "$WORK/report.txt"
