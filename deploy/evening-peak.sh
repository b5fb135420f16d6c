#!/usr/bin/env bash
# The evening peak: every agent worked its day offline and syncs at once in the evening,
# through one, two or three servers on one PostgreSQL database.
#
#   cargo build --release -p fieldsync-server -p fieldsync-sim
#   deploy/evening-peak.sh postgres://postgres@127.0.0.1:5432/postgres [AGENTS] [VISITS] [SERVER_COUNTS] [CONCURRENCY]
#   (defaults: 10000 agents, 30 visits a day, "1 2 3" servers, 700 phones syncing at a time)
#
# Prepared once: a fresh database is seeded (30 outlets per agent, 300 products), every agent
# activates and pulls through one server, then works its day with no network (the simulator's
# day phase), which leaves each engine's outbox full in a work directory. For each server count
# the database is copied from that prepared one (CREATE DATABASE ... TEMPLATE) and the engine
# files are copied, N servers start, and the simulator's evening phase syncs every engine until
# its outbox is empty, spreading requests over the N servers. Printed: a Markdown table
# (seconds to drain, mutations/s, push p50/p99) and each run's JSON summary in $OUT (default
# a temporary directory that is removed).
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/lib.sh
agents="${2:-10000}"
visits="${3:-30}"
counts="${4:-1 2 3}"
concurrency="${5:-700}"
fresh_database "$1" fieldsync_peak
prepared="$db"
out="${OUT:-$work}"
mkdir -p "$out"
extra_dbs=()
peak_cleanup() {
  for d in "${extra_dbs[@]}"; do psql "$admin" -qtAc "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1 || true; done
  cleanup
}
trap peak_cleanup EXIT

start_servers() { # database-url count
  server_pids=()
  local list=""
  for i in $(seq 1 "$2"); do
    $bin/fieldsync-server --database-url "$1" --listen "127.0.0.1:$((18600 + i))" serve >>"$work/server-$i.log" 2>&1 &
    server_pids+=($!)
    pids+=($!)
    list="${list:+$list,}http://127.0.0.1:$((18600 + i))"
  done
  for i in $(seq 1 "$2"); do
    for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$((18600 + i))/healthz" >/dev/null && break; sleep 0.1; done
  done
  servers="$list"
}
stop_servers() {
  for p in "${server_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${server_pids[@]}"; do wait "$p" 2>/dev/null || true; done
}

if [ -n "${REUSE_DB:-}" ]; then
  # A database and engine files kept from an earlier preparation (REUSE_DB, REUSE_DIR,
  # REUSE_PINS): only the evenings run.
  prepared="$REUSE_DB"
  cp "$REUSE_PINS" "$work/pins.csv"
  ln -s "$REUSE_DIR" "$work/day"
else
t0=$(date +%s)
$bin/fieldsync-server --database-url "$url" seed --agents "$agents" --outlets $((agents * 30)) --products 300 \
  --pins-out "$work/pins.csv" >"$work/seed.out"
echo "evening-peak: $(cat "$work/seed.out") ($(($(date +%s) - t0)) s)" >&2

start_servers "$url" 1
t0=$(date +%s)
$bin/fieldsync-sim field --server "$servers" --pins "$work/pins.csv" --phase day --visits-per-day "$visits" \
  --concurrency "$concurrency" --deadline 7200 --workdir "$work/day" --summary "$out/day.json" >"$work/day.out"
stop_servers
echo "evening-peak: day phase (activation, first pull, $visits visits each offline) in $(($(date +%s) - t0)) s" >&2
# A checkpoint, so every copy starts from the same settled database. Not ANALYZE: it would
# record the still empty tables of visits and orders as empty, and PostgreSQL then plans the
# evening's key lookups as sequential scans (measured: 742 s instead of 85 s to drain 200
# agents).
psql "$url" -qtAc "CHECKPOINT" >/dev/null
fi

echo "| servers | agents | mutations | seconds to drain | mutations/s | pushes | push p50 ms | push p99 ms | requests | lost | doubled | checked in s |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for n in $counts; do
  copy="${prepared}_s$n"
  extra_dbs+=("$copy")
  psql "$admin" -qtAc "CREATE DATABASE $copy TEMPLATE $prepared" >/dev/null
  rm -rf "$work/evening"
  mkdir -p "$work/evening"
  cp -r "$work/day/." "$work/evening"
  start_servers "${admin%/*}/$copy" "$n"
  $bin/fieldsync-sim field --server "$servers" --pins "$work/pins.csv" --phase evening \
    --concurrency "$concurrency" --deadline 3600 --workdir "$work/evening" --summary "$out/evening-$n.json" >"$work/evening-$n.out" \
    || { tail -5 "$work/evening-$n.out" >&2; exit 1; }
  stop_servers
  python3 - "$out/evening-$n.json" "$n" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
lost, dup = j["lost"]["total"], j["duplicated"]["total"]
assert not j["errors"], j["errors"][:3]
print(f"| {sys.argv[2]} | {j['agents']:,} | {j['evening']['mutations']:,} | {j['elapsed_s']:.1f} | {j['evening']['mutations_per_s']:,.0f} "
      f"| {j['pushes']:,} | {j['push_latency_ms']['p50']:.0f} | {j['push_latency_ms']['p99']:.0f} | {j['requests']:,} | {lost} | {dup} | {j['verified_s']:.0f} |")
PY
  psql "$admin" -qtAc "DROP DATABASE IF EXISTS $copy WITH (FORCE)" >/dev/null
  rm -rf "$work/evening"
done
