#!/usr/bin/env bash
# Signing time of a large signed zone at start and after dynamic updates (issue 14): serves
# the zone of `axfr.py zone` (RECORDS records) signed online, then sends UPDATES updates that
# each add one TXT record at a new name (`_acme-challenge.host-N`, below a new empty
# non-terminal, as a certificate's DNS challenge does), and prints the server's own log lines on signing and
# on building the snapshot, and how long each update took from sending it to its answer
# (the answer comes once the new snapshot serves).
#
# Environment knobs (all optional):
#   RECORDS=50000      records in the generated zone
#   UPDATES=5          updates sent, one after the other
#   DENIAL=nsec        nsec or nsec3
#   PORT=53561         UDP/TCP port on 127.0.0.1
#   STARTUP_TIMEOUT=120  seconds to wait for the zone to be signed and served
#   KEEP=1             keep the work dir (zone, config, keys, log)
#   EDGEWISE_BIN=path  use this edgewise-dns binary and skip the cargo build
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH=bench-sign-update
# shellcheck source=SCRIPTDIR/../lib.sh
source "$HERE/../lib.sh"

RECORDS="${RECORDS:-50000}"
UPDATES="${UPDATES:-5}"
DENIAL="${DENIAL:-nsec}"
PORT="${PORT:-53561}"
STARTUP_TIMEOUT="${STARTUP_TIMEOUT:-120}"
KEEP="${KEEP:-}"
EW_BIN="${EDGEWISE_BIN:-$ROOT/target/release/edgewise-dns}"
SECRET="c2lnbi11cGRhdGUtYmVuY2gtc2lnbi11cGRhdGUtYmVuY2g="
ORIGIN=bench.example
ADDR=127.0.0.1
FAILED=0

require_uints RECORDS UPDATES PORT STARTUP_TIMEOUT
[[ "$DENIAL" == nsec || "$DENIAL" == nsec3 ]] || die "DENIAL must be nsec or nsec3"
install_tools nsupdate=bind9-dnsutils dig=bind9-dnsutils python3=python3
ports_free "$PORT"
build_edgewise edgewise-dns

mkdir -p "$ROOT/target/bench-dns"
WORK="$(mktemp -d "$ROOT/target/bench-dns/sign-update.XXXXXX")"
PGID=""
on_exit() {
    local rc=$?
    [[ -n "$PGID" ]] && kill_group "$PGID" 50
    keep_work "$rc"
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

python3 "$HERE/axfr.py" zone "$ORIGIN" "$RECORDS" >"$WORK/$ORIGIN.zone"
cat >"$WORK/edgewise.toml" <<CONF
[dns]
listen = ["$ADDR:$PORT"]
data_dir = "data"
[[dns.tsig_keys]]
name = "upd"
secret = "$SECRET"
[[dns.zones]]
name = "$ORIGIN"
file = "$ORIGIN.zone"
dnssec = { algorithm = "ecdsap256sha256", keys_dir = "keys", denial = "$DENIAL" }
allow_update = [{ key = "upd", names = ["_acme-challenge.*"], types = ["TXT"] }]
CONF

log "starting edgewise-dns on a $RECORDS-record zone signed with $DENIAL"
(cd "$WORK" && RUST_LOG=info exec setsid "$EW_BIN" --config edgewise.toml) >"$WORK/out.log" 2>&1 </dev/null &
PGID=$!
for ((i = 0; i < STARTUP_TIMEOUT * 10; i++)); do
    dig +short +time=1 +tries=1 -p "$PORT" @127.0.0.1 "$ORIGIN" SOA 2>/dev/null | grep -q . && break
    kill -0 -- "-$PGID" 2>/dev/null || die "edgewise-dns exited: $(tail -n 5 "$WORK/out.log")"
    sleep 0.1
done
dig +short +time=1 +tries=1 -p "$PORT" @127.0.0.1 "$ORIGIN" SOA | grep -q . || die "no answer after ${STARTUP_TIMEOUT}s"

for ((n = 1; n <= UPDATES; n++)); do
    start=$(date +%s.%N)
    printf 'server 127.0.0.1 %s\nzone %s\nupdate add _acme-challenge.host-%s.%s. 300 TXT "update %s"\nsend\n' \
        "$PORT" "$ORIGIN" "$n" "$ORIGIN" "$n" |
        nsupdate -y "hmac-sha256:upd:$SECRET" || die "update $n failed"
    end=$(date +%s.%N)
    awk -v n="$n" -v a="$start" -v b="$end" 'BEGIN { printf "update %d answered in %.0f ms\n", n, (b - a) * 1000 }'
done
sleep 0.5
grep -E 'RRsets signed|snapshot for' "$WORK/out.log" | sed -E 's/^.*(zone |snapshot )/\1/'
