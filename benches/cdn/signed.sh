#!/usr/bin/env bash
# Cost of edge security on the hit path: edgewise-cdn cache hits for a plain object against
# the same object behind a signed behavior (a canned signed URL, verified per request) with a
# geo restriction (GeoIP lookup per request), in one run, alternating.
#
#   bash benches/cdn/signed.sh            DURATION=10 ROUNDS=2 CONNS=32 (env knobs)
#
# Needs wrk (installed with apt-get when missing). Traffic goes only to 127.0.0.1.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DURATION="${DURATION:-10}" ROUNDS="${ROUNDS:-2}" CONNS="${CONNS:-32}" PORT="${PORT:-18580}"
EW_BIN="${EDGEWISE_BIN:-$ROOT/target/release/edgewise-cdn}"

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq -o DPkg::Lock::Timeout=600 wrk; }
[[ -n "${EDGEWISE_BIN:-}" ]] || (cd "$ROOT" && cargo build --release --bin edgewise-cdn)

WORK="$(mktemp -d)"
cleanup() { [[ -n "${PID:-}" ]] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
mkdir -p "$WORK/www/plain" "$WORK/www/signed"
head -c 1024 /dev/zero | tr '\0' x >"$WORK/www/plain/one.txt"
cp "$WORK/www/plain/one.txt" "$WORK/www/signed/one.txt"
openssl genrsa -out "$WORK/signer.pem" 2048 2>/dev/null
openssl rsa -in "$WORK/signer.pem" -pubout -out "$WORK/signer-public.pem" 2>/dev/null
cat >"$WORK/edgewise.toml" <<TOML
[[geo.networks]]
cidr = "127.0.0.0/8"
country = "DE"
continent = "EU"

[cdn]
http_listen = ["127.0.0.1:$PORT"]

[[cdn.key_groups]]
id = "signers"
keys = [{ id = "KBENCH", public_key = "signer-public.pem" }]

[[cdn.distributions]]
id = "bench"
hosts = ["localhost"]
geo_restriction = { mode = "deny", countries = ["KP"] }

[[cdn.distributions.origins]]
id = "files"
dir = "www"

[[cdn.distributions.behaviors]]
path = "/signed/*"
origin = "files"
trusted_key_groups = ["signers"]

[[cdn.distributions.behaviors]]
path = "*"
origin = "files"
TOML
taskset -c 1 "$EW_BIN" --config "$WORK/edgewise.toml" 2>"$WORK/log" &
PID=$!
for _ in $(seq 1 50); do curl -sf -o /dev/null "http://localhost:$PORT/plain/one.txt" && break; sleep 0.2; done
SIGNED="$("$EW_BIN" --config "$WORK/edgewise.toml" sign-url --key-pair-id KBENCH --private-key "$WORK/signer.pem" \
    --url "http://localhost:$PORT/signed/one.txt" --expires 1d)"
for url in "http://localhost:$PORT/plain/one.txt" "$SIGNED"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$url")
    [[ "$code" == 200 ]] || { echo "expected 200 from $url, got $code" >&2; exit 1; }
done
unsigned=$(curl -s -o /dev/null -w '%{http_code}' "http://localhost:$PORT/signed/one.txt")
[[ "$unsigned" == 403 ]] || { echo "unsigned request got $unsigned, not 403" >&2; exit 1; }

declare -A BEST=([plain]=0 [signed]=0)
for ((r = 1; r <= ROUNDS; r++)); do
    for kind in plain signed; do
        url="http://localhost:$PORT/plain/one.txt"; [[ $kind == signed ]] && url="$SIGNED"
        rps=$(taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" "$url" | awk '/Requests\/sec/ { print int($2) }')
        echo "round $r $kind: $rps req/s" >&2
        ((rps > BEST[$kind])) && BEST[$kind]=$rps
    done
done
echo
echo "edgewise-cdn cache hits, 1 KiB, HTTP/1.1, $CONNS connections, best of $ROUNDS x ${DURATION}s (server on CPU 1, wrk on CPU 0)"
printf '  plain behavior                                 %8d req/s\n' "${BEST[plain]}"
printf '  signed URL (RSA-SHA1) + geo restriction        %8d req/s = %s of plain\n' "${BEST[signed]}" \
    "$(awk -v a="${BEST[signed]}" -v b="${BEST[plain]}" 'BEGIN { printf "%.2f", a / b }')"
