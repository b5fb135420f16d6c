#!/usr/bin/env bash
# Cold start of the desktop build to a usable Today screen, measured from process start until
# the route is in the webview's DOM (the e2e driver's `ready` step), on a synced territory.
#
#   mobile/app/bench-desktop.sh [OUTLETS] [PRODUCTS] [RUNS]      (defaults 300 10000 10)
#
# Seeds a server with one agent, activates and syncs the app once, then starts the app RUNS
# times on that data directory and prints a Markdown table (p50 / max in ms). Runs under Xvfb
# with software rendering, like mobile/app/e2e.sh; needs the same Debian packages.
set -euo pipefail
outlets=${1:-300}
products=${2:-10000}
runs=${3:-10}
cd "$(dirname "$0")/../.."
source mobile/app/lib.sh

cargo build -q --release -p fieldsync-server -p fieldsync-app --features fieldsync-app/desktop
server_bin=target/release/fieldsync-server
app_bin=target/release/fieldsync-app

"$server_bin" --database-url "sqlite://$work/server.db" seed --agents 1 --outlets "$outlets" \
  --products "$products" --pins-out "$work/pins.csv" >/dev/null
IFS=, read -r login pin < <(sed -n 2p "$work/pins.csv")
serve "$server_bin" "sqlite://$work/server.db"
start_xvfb

# Activation and the first (full) sync.
{ activation_steps; cat <<SCRIPT; } >"$work/activate"
click #activate
wait #route
expect #banner-last = Last sync: 2
SCRIPT
"$app_bin" --data-dir "$work/app" --position 50.4501,30.5234,12 --e2e-script "$work/activate" \
  >"$work/activate.out" 2>"$work/activate.log" || { tail -n 30 "$work/activate.log" >&2; exit 1; }

# Cold starts on the synced data directory.
printf 'wait #route li\nready\n' >"$work/start"
times=()
for _ in $(seq 1 "$runs"); do
  ms=$("$app_bin" --data-dir "$work/app" --position 50.4501,30.5234,12 --e2e-script "$work/start" 2>>"$work/start.log" \
    | awk '/ready after/ { print $4 }')
  [ -n "$ms" ] || { tail -n 30 "$work/start.log" >&2; exit 1; }
  times+=("$ms")
done
# The webview's own floor: the same measure on an empty data directory (activation screen).
printf 'wait #server\nready\n' >"$work/floor"
floor=()
for i in $(seq 1 "$runs"); do
  ms=$("$app_bin" --data-dir "$work/empty$i" --e2e-script "$work/floor" 2>>"$work/start.log" \
    | awk '/ready after/ { print $4 }')
  [ -n "$ms" ] || { tail -n 30 "$work/start.log" >&2; exit 1; }
  floor+=("$ms")
done
stops=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM route_stops rs JOIN routes r ON r.id = rs.route_id WHERE r.route_date = date(\x27now\x27)").fetchone()[0])' "$work/app/agent.db")
python3 - "$outlets" "$products" "$stops" "${times[*]}" "${floor[*]}" <<'PY'
import sys
outlets, products, stops, times, floor = sys.argv[1:6]
print("| measure | territory | catalogue | runs | p50 | max |")
print("|---|---:|---:|---:|---:|---:|")
for label, terr, cat, xs in [
    (f"desktop cold start to Today ({stops} stops, process start to route in the webview DOM)", f"{outlets} outlets", f"{products} products", times),
    ("webview floor: cold start to the activation screen on an empty data directory", "-", "-", floor),
]:
    t = sorted(int(x) for x in xs.split())
    print(f"| {label} | {terr} | {cat} | {len(t)} | {t[len(t) // 2]} ms | {t[-1]} ms |")
PY
