# Sourced by .ci/multi-server.sh and deploy/try-haproxy.sh (after `set -euo pipefail`, from the
# repository root): release binaries, a fresh PostgreSQL database and a work directory, and
# the cleanup that stops what a script started and drops both when it exits.
export FIELDSYNC_LOG="${FIELDSYNC_LOG:-warn}"
bin=./target/release

# fresh_database ADMIN_URL NAME: creates database NAME_<pid> next to ADMIN_URL and sets
# $admin, $db, $url (the new database), $work (a temp directory) and $pids (background
# processes, killed at exit).
fresh_database() {
  admin="$1"
  db="$2_$$"
  url="${admin%/*}/$db"
  work=$(mktemp -d)
  pids=()
  trap cleanup EXIT
  psql "$admin" -qtAc "CREATE DATABASE $db" >/dev/null
}

cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql "$admin" -qtAc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
