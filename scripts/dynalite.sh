#!/usr/bin/env bash
# Installs and runs dynalite, the DynamoDB emulator the dynamo store's tests
# use (in-memory, single Node process, listening on 127.0.0.1 only).
#
#   scripts/dynalite.sh install      install dynalite into $DYNALITE_DIR if missing
#   scripts/dynalite.sh cli          install if missing, print the path of its cli.js
#   scripts/dynalite.sh start PORT   start it in the background (no-op if already running)
#   scripts/dynalite.sh stop [PORT]  stop the one on PORT, or every one this script started
#   scripts/dynalite.sh status       list the running ones
#
# DYNALITE_DIR defaults to .cache/dynalite in the repository (git-ignored);
# the PID and log of the instance on PORT are $DYNALITE_DIR/PORT.pid and
# PORT.log. Needs node >= 20 and npm.
#
# Endpoint: http://127.0.0.1:PORT, e.g. WRAPI_DYNAMODB_ENDPOINT for
# `go test ./store/dynamo` in pkg. Tables are ACTIVE at once (no 500 ms
# CREATING state). dynalite lacks TransactWriteItems, UpdateTimeToLive and
# ReturnValuesOnConditionCheckFailure; the store uses none of them.
set -euo pipefail
VERSION=4.0.0
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${DYNALITE_DIR:-$root/.cache/dynalite}
cli=$dir/node_modules/dynalite/cli.js

die() { echo "dynalite.sh: $*" >&2; exit 1; }

installed() {
  [[ -f $cli ]] && node -e 'process.exit(require(process.argv[1]).version === process.argv[2] ? 0 : 1)' \
    "$dir/node_modules/dynalite/package.json" "$VERSION" 2>/dev/null
}

install() {
  command -v node >/dev/null || die "node is not installed (apt-get install nodejs npm)"
  installed && return 0
  command -v npm >/dev/null || die "npm is not installed (apt-get install npm)"
  mkdir -p "$dir"
  echo "dynalite.sh: installing dynalite@$VERSION into $dir" >&2
  # memory-level is all we use; classic-level's install script (LevelDB on
  # disk) is not needed, so scripts stay off.
  npm install --prefix "$dir" --no-audit --no-fund --omit=dev --ignore-scripts \
    --loglevel=error "dynalite@$VERSION" >&2
  installed || die "dynalite@$VERSION did not install into $dir"
}

# ours PID: the process is alive and is a dynalite (not a reused PID).
ours() {
  [[ -n $1 ]] && kill -0 "$1" 2>/dev/null && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q dynalite
}

port_arg() {
  [[ ${1:-} =~ ^[0-9]+$ ]] && ((1 <= $1 && $1 <= 65535)) || die "want a port number, got '${1:-}'"
}

start() {
  port_arg "${1:-}"
  local port=$1 pidf=$dir/$1.pid log=$dir/$1.log pid
  install
  if [[ -f $pidf ]] && ours "$(cat "$pidf")"; then
    echo "dynalite.sh: already running on 127.0.0.1:$port (pid $(cat "$pidf"))" >&2
    return 0
  fi
  # setsid (where there is one): its own session, so it outlives this script
  # and a ^C in the shell that started it.
  local detach=()
  command -v setsid >/dev/null && detach=(setsid)
  "${detach[@]}" node "$cli" --host 127.0.0.1 --port "$port" \
    --createTableMs 0 --deleteTableMs 0 --updateTableMs 0 >"$log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$pidf"
  for _ in $(seq 100); do
    if grep -q 'listening' "$log" 2>/dev/null; then
      echo "dynalite.sh: listening on http://127.0.0.1:$port (pid $pid)" >&2
      return 0
    fi
    ours "$pid" || { rm -f "$pidf"; cat "$log" >&2; die "dynalite exited during start"; }
    sleep 0.1
  done
  kill "$pid" 2>/dev/null || true
  rm -f "$pidf"
  cat "$log" >&2
  die "dynalite did not listen on 127.0.0.1:$port within 10s"
}

stop_one() {
  local pidf=$1 pid
  pid=$(cat "$pidf" 2>/dev/null || true)
  if ours "$pid"; then
    kill "$pid"
    for _ in $(seq 50); do ours "$pid" || break; sleep 0.1; done
    ours "$pid" && kill -9 "$pid"
    echo "dynalite.sh: stopped pid $pid" >&2
  fi
  rm -f "$pidf"
}

stop() {
  if [[ -n ${1:-} ]]; then
    port_arg "$1"
    stop_one "$dir/$1.pid"
    return 0
  fi
  local f
  for f in "$dir"/*.pid; do
    [[ -e $f ]] && stop_one "$f"
  done
  return 0
}

status() {
  local f pid
  for f in "$dir"/*.pid; do
    [[ -e $f ]] || continue
    pid=$(cat "$f")
    if ours "$pid"; then echo "127.0.0.1:$(basename "$f" .pid) pid $pid"; fi
  done
}

case "${1:-}" in
  install) install ;;
  cli) install; echo "$cli" ;;
  start) start "${2:-}" ;;
  stop) stop "${2:-}" ;;
  status) status ;;
  *) sed -n '2,13p' "$0" >&2; exit 2 ;;
esac
