#!/usr/bin/env bash
# The HTTP caching test suite (https://cache-tests.fyi, npm package http-cache-tests) run
# against edgewise-cdn with config/rfc9111-strict.toml, its counts printed beside the
# results the suite ships for nginx, Squid, ATS, Apache httpd, Varnish, nuster and Fastly.
#
# Environment knobs (all optional):
#   SUITE_VERSION=0.4.5   http-cache-tests version (npm)
#   ORIGIN_PORT=8000      the suite's origin server, on every address (it binds no other way);
#                         only 127.0.0.1 is sent traffic
#   EDGE_PORT=8088        edgewise-cdn's HTTP listener on 127.0.0.1
#   KEEP=1                keep the work dir (target/bench-cache-tests: results JSON, logs)
#   EDGEWISE_BIN=path     use this edgewise-cdn binary and skip the cargo build
#
# Exit status: non-zero only when something could not run (node/npm missing and not
# installable, the suite not installable, a server that did not start). Failed tests never
# fail the script.
#
# Traffic goes only to 127.0.0.1. Every wait is bounded.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH=cache-tests
# shellcheck source=SCRIPTDIR/../lib.sh
source "$HERE/../lib.sh"

SUITE_VERSION="${SUITE_VERSION:-0.4.5}"
ORIGIN_PORT="${ORIGIN_PORT:-8000}"
EDGE_PORT="${EDGE_PORT:-8088}"
KEEP="${KEEP:-}"
ADDR=127.0.0.1
EW_BIN="${EDGEWISE_BIN:-$ROOT/target/release/edgewise-cdn}"
WORK="$ROOT/target/bench-cache-tests"
FAILED=0
ORIGIN_PG=""
EW_PG=""
require_uints ORIGIN_PORT EDGE_PORT

cleanup() {
    local rc=$?
    [[ -n "$EW_PG" ]] && kill_group "$EW_PG" 30
    [[ -n "$ORIGIN_PG" ]] && kill_group "$ORIGIN_PG" 30
    if [[ -n "$KEEP" || $rc -ne 0 ]]; then log "work dir kept: $WORK"; fi
}
trap cleanup EXIT

# wait_port PORT NAME LOGFILE: up to 30 s for a TCP listener on $ADDR:PORT
wait_port() {
    local i
    for ((i = 0; i < 300; i++)); do
        if (exec 3<>"/dev/tcp/$ADDR/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    cat "$3" >&2 || true
    die "$2 did not listen on $ADDR:$1 within 30 s"
}

install_tools node=nodejs npm=npm
build_edgewise edgewise-cdn
ports_free "$ORIGIN_PORT" "$EDGE_PORT"
mkdir -p "$WORK"
SUITE="$WORK/node_modules/http-cache-tests"
if [[ "$(node -p "require('$SUITE/package.json').version" 2>/dev/null || true)" != "$SUITE_VERSION" ]]; then
    log "installing http-cache-tests@$SUITE_VERSION from npm into $WORK"
    (cd "$WORK" && timeout 600 npm install --no-audit --no-fund --silent "http-cache-tests@$SUITE_VERSION") \
        || die "npm install http-cache-tests@$SUITE_VERSION failed"
fi

log "the suite's origin on port $ORIGIN_PORT"
(cd "$SUITE" && exec env npm_config_protocol=http npm_config_port="$ORIGIN_PORT" \
    npm_config_pidfile="$WORK/origin.pid" setsid node server/server.mjs) >"$WORK/origin.log" 2>&1 &
ORIGIN_PG=$!
sed -e "s|127.0.0.1:8088|$ADDR:$EDGE_PORT|" -e "s|http://127.0.0.1:8000|http://$ADDR:$ORIGIN_PORT|" \
    "$ROOT/config/rfc9111-strict.toml" >"$WORK/edgewise.toml"
log "edgewise-cdn (config/rfc9111-strict.toml) on $ADDR:$EDGE_PORT"
setsid "$EW_BIN" --config "$WORK/edgewise.toml" >"$WORK/edgewise.log" 2>&1 &
EW_PG=$!
wait_port "$ORIGIN_PORT" "the suite's origin" "$WORK/origin.log"
wait_port "$EDGE_PORT" edgewise-cdn "$WORK/edgewise.log"

log "running the suite through edgewise-cdn (about 20 s: its tests run concurrently, each pausing 3 s where freshness must run out)"
(cd "$SUITE" && env npm_config_base="http://$ADDR:$EDGE_PORT" npm_config_id="" npm_package_config_id="" \
    timeout 1200 node --no-warnings cli.mjs) >"$WORK/edgewise.json" 2>"$WORK/cli.log" \
    || die "the suite's client failed: $(tail -5 "$WORK/cli.log")"
kill -0 "$EW_PG" 2>/dev/null || die "edgewise-cdn died during the run: $(tail -5 "$WORK/edgewise.log")"

echo
echo "HTTP caching test suite http-cache-tests@$SUITE_VERSION, edgewise-cdn with config/rfc9111-strict.toml;"
echo "the other rows are the results shipped with that version of the suite (their versions as it names them)"
echo
node "$HERE/cache-tests-summary.mjs" "$SUITE" "$WORK/edgewise.json"
