#!/usr/bin/env bash
# memcached for tests and local runs, on 127.0.0.1 only.
#   scripts/memcached.sh install      install memcached from apt if missing
#   scripts/memcached.sh start [PORT] start a daemon (default port 11211),
#                                     print WRAPI_MEMCACHED_ADDR=127.0.0.1:PORT
#   scripts/memcached.sh stop [PORT]  stop the daemon(s) this script started
#                                     (all ports by default); idempotent
#   scripts/memcached.sh status
# PID files live in $WRAPI_RUN_DIR (default .cache/ in the repo). The Go
# tests (pkg/cache/memcached) do not need this: they start their own
# memcached from PATH, or use WRAPI_MEMCACHED_ADDR when it is set.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
run_dir=${WRAPI_RUN_DIR:-$root/.cache}
MEMORY_MB=${MEMCACHED_MEMORY_MB:-256}
ITEM_LIMIT=${MEMCACHED_ITEM_LIMIT:-1m} # pkg/cache/memcached assumes 1 MiB unless told

install() {
  command -v memcached >/dev/null && return 0
  if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
    echo "memcached.sh: memcached is missing; install it (apt-get install memcached) as root" >&2
    return 1
  fi
  echo "memcached.sh: installing memcached (apt)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends memcached >/dev/null
}

pidfile() { echo "$run_dir/memcached-$1.pid"; }

alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
  local port=${1:-11211}
  [[ $port =~ ^[0-9]+$ ]] || { echo "memcached.sh: bad port '$port'" >&2; return 2; }
  install
  mkdir -p "$run_dir"
  local pf
  pf=$(pidfile "$port")
  if alive "$pf"; then
    echo "memcached.sh: already running on 127.0.0.1:$port (pid $(cat "$pf"))" >&2
    echo "WRAPI_MEMCACHED_ADDR=127.0.0.1:$port"
    return 0
  fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "memcached.sh: 127.0.0.1:$port is already in use by another process" >&2
    return 1
  fi
  local user=()
  [[ $(id -u) == 0 ]] && user=(-u root) # memcached refuses to run as root without -u
  # -U 0: no UDP; -l: loopback only.
  memcached -d -l 127.0.0.1 -p "$port" -U 0 -m "$MEMORY_MB" -I "$ITEM_LIMIT" -P "$pf" "${user[@]}"
  for _ in $(seq 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "memcached.sh: started on 127.0.0.1:$port (pid $(cat "$pf" 2>/dev/null || echo ?))" >&2
      echo "WRAPI_MEMCACHED_ADDR=127.0.0.1:$port"
      return 0
    fi
    sleep 0.1
  done
  echo "memcached.sh: memcached did not come up on 127.0.0.1:$port" >&2
  stop "$port"
  return 1
}

stop() {
  local files=()
  if [[ -n ${1:-} ]]; then
    files=("$(pidfile "$1")")
  else
    shopt -s nullglob
    files=("$run_dir"/memcached-*.pid)
  fi
  local pf pid
  for pf in "${files[@]}"; do
    [[ -f $pf ]] || continue
    pid=$(cat "$pf")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
      echo "memcached.sh: stopped pid $pid" >&2
    fi
    rm -f "$pf"
  done
}

status() {
  shopt -s nullglob
  local pf any=0
  for pf in "$run_dir"/memcached-*.pid; do
    local port=${pf##*/memcached-}
    port=${port%.pid}
    if alive "$pf"; then
      echo "127.0.0.1:$port running (pid $(cat "$pf"))"
      any=1
    fi
  done
  ((any)) || echo "no memcached started by this script is running"
}

case "${1:-}" in
  install) install ;;
  start) start "${2:-}" ;;
  stop) stop "${2:-}" ;;
  status) status ;;
  *) echo "usage: $0 install | start [PORT] | stop [PORT] | status" >&2; exit 2 ;;
esac
