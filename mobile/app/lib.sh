# Sourced by mobile/app/e2e.sh and mobile/app/bench-desktop.sh (after `set -euo pipefail`, from
# the repository root): a work directory and the background processes, both cleaned up at
# exit; a server on a free local port; Xvfb with software rendering for the webview.
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# serve SERVER_BIN DATABASE_URL [SERVE_ARGS...]: runs `serve` on a free port in the background
# (log in $work/server.log), sets $url and waits for its health check; exits with the log
# when the server never answers.
serve() {
  local bin=$1 database=$2 port
  shift 2
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  url="http://127.0.0.1:$port"
  "$bin" --database-url "$database" --listen "127.0.0.1:$port" serve "$@" >"$work/server.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do curl -sf "$url/healthz" >/dev/null && break; sleep 0.2; done
  curl -sf "$url/healthz" >/dev/null || { cat "$work/server.log"; echo "server did not start" >&2; exit 1; }
}

# start_xvfb: a virtual display for the webview, as $display and DISPLAY.
start_xvfb() {
  display=":$((90 + RANDOM % 100))"
  Xvfb "$display" -screen 0 480x900x24 -nolisten tcp >"$work/xvfb.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 50); do xdpyinfo -display "$display" >/dev/null 2>&1 && break; sleep 0.1; done
  export DISPLAY=$display
  # Software rendering: Xvfb has no GPU.
  export WEBKIT_DISABLE_COMPOSITING_MODE=1 LIBGL_ALWAYS_SOFTWARE=1 NO_AT_BRIDGE=1
}

# activation_steps: the e2e driver's lines that fill the activation form with $url, $login
# and $pin (see src/e2e.rs for the script language).
activation_steps() {
  printf 'wait #server\nfill #server = %s\nfill #login = %s\nfill #pin = %s\n' "$url" "$login" "$pin"
}
