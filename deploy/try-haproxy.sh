#!/usr/bin/env bash
# Two fieldsync servers on one PostgreSQL database behind HAProxy (deploy/haproxy.cfg), and a
# faulted field run and the distributor simulator through HAProxy's one address; one server is
# stopped with SIGTERM mid-run (it drains; HAProxy takes it out) and started again.
#
#   apt-get install -y haproxy
#   cargo build --release -p fieldsync-server -p fieldsync-sim
#   deploy/try-haproxy.sh postgres://postgres@127.0.0.1:5432/postgres [AGENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/lib.sh
agents="${2:-50}"
fresh_database "$1" fieldsync_try_haproxy
$bin/fieldsync-server --database-url "$url" seed --agents "$agents" --outlets $((agents * 30)) --products 500 --pins-out "$work/pins.csv" >/dev/null
key=$($bin/fieldsync-server --database-url "$url" api-key add --distributor SIM 2>/dev/null)
declare -a app
start() { $bin/fieldsync-server --database-url "$url" --listen "127.0.0.1:$2" serve >>"$work/app$1.log" 2>&1 & app[$1]=$!; pids+=($!); }
start 1 18381
start 2 18382
haproxy -f deploy/haproxy.cfg -db >"$work/haproxy.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:18380/healthz >/dev/null && break; sleep 0.1; done
curl -sf http://127.0.0.1:18380/healthz; echo
$bin/fieldsync-sim field --server http://127.0.0.1:18380 --pins "$work/pins.csv" --days 2 --concurrency "$agents" \
  --faults drop=0.2,dup=0.2,offline=0.2 --deadline 600 --summary "$work/field.json" | tail -3 &
field=$!
sleep 3
kill -TERM "${app[2]}"; echo "try-haproxy: SIGTERM to app2 (drains)"; wait "${app[2]}" || true
sleep 2
start 2 18382; echo "try-haproxy: app2 started again"
wait "$field"
$bin/fieldsync-sim distributor --server http://127.0.0.1:18380 --api-key "$key" --faults crash=0.2,dupack=0.3 \
  --idle 3 --deadline 300 --summary "$work/distributor.json" | tail -1
python3 - "$work/field.json" "$work/distributor.json" <<'PY'
import json, sys
field, dist = (json.load(open(p)) for p in sys.argv[1:3])
assert field["lost"]["total"] == 0 and field["duplicated"]["total"] == 0, field
assert dist["handed_twice"] == 0 and dist["lost"] == 0, dist
print("try-haproxy: through HAProxy, nothing lost or doubled; distributor received", dist["received"], "orders once each")
PY
