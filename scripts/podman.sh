#!/usr/bin/env bash
# podman as the container engine of the integration tests, for machines
# with no Docker (this sandbox, CI): a Docker-compatible API on a unix
# socket that testcontainers-go talks to.
#
#   scripts/podman.sh install   apt-get install podman and runc if missing (root)
#   scripts/podman.sh start     install, write the config, start the API service
#                               (no-op when it already answers); prints the env
#   scripts/podman.sh env       print the export lines for testcontainers-go
#   scripts/podman.sh stop      stop the API service this script started (by PID)
#   scripts/podman.sh status
#
# Everything lives in $WRAPI_PODMAN_DIR (default .cache/podman in the
# repository): containers.conf, the PID file, the log and the socket
# podman.sock (a unix socket: local only, no TCP port).
#
# Why the config: podman's default runtime here (crun) fails with
# "setrlimit RLIMIT_NOFILE: Operation not permitted"; runc works once the
# containers' ulimits stay within what this sandbox allows. Ryuk (the
# reaper container) cannot be pulled, so it is off: the tests terminate
# their own containers. TESTCONTAINERS_HOST_OVERRIDE keeps mapped ports on
# 127.0.0.1 (else testcontainers picks the bridge gateway).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${WRAPI_PODMAN_DIR:-$root/.cache/podman}
conf=$dir/containers.conf
pidf=$dir/service.pid
log=$dir/service.log
sock=$dir/podman.sock
# A unix socket path must fit in 108 bytes; a deep checkout falls back to
# a short directory of its own.
if ((${#sock} > 100)); then
  dir=/tmp/wrapi-podman-$(printf %s "$root" | sha256sum | cut -c1-12)
  conf=$dir/containers.conf pidf=$dir/service.pid log=$dir/service.log sock=$dir/podman.sock
fi

die() { echo "podman.sh: $*" >&2; exit 1; }

install() {
  if command -v podman >/dev/null && command -v runc >/dev/null; then
    return 0
  fi
  if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
    die "podman and runc are missing; install them (apt-get install podman runc) or use Docker"
  fi
  echo "podman.sh: installing podman and runc (apt)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman runc >/dev/null
}

write_conf() {
  mkdir -p "$dir"
  local want
  want='# written by scripts/podman.sh
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"'
  [[ -f $conf && $(cat "$conf") == "$want" ]] || printf '%s\n' "$want" >"$conf"
}

print_env() {
  echo "export CONTAINERS_CONF=$conf"
  echo "export DOCKER_HOST=unix://$sock"
  echo "export TESTCONTAINERS_RYUK_DISABLED=true"
  echo "export TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1"
  echo "export WRAPI_IT_ENGINE=podman"
}

# answers: the socket serves the Docker API's ping.
answers() {
  [[ -S $sock ]] && curl -sf --max-time 2 --unix-socket "$sock" http://d/_ping >/dev/null 2>&1
}

ours() {
  local pid=${1:-}
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'system service'
}

start() {
  install
  command -v curl >/dev/null || die "curl is needed to check the API socket"
  write_conf
  if answers; then
    echo "podman.sh: API service already answers on $sock" >&2
    print_env
    return 0
  fi
  if [[ -f $pidf ]] && ours "$(cat "$pidf")"; then
    kill "$(cat "$pidf")" 2>/dev/null || true # alive but deaf: restart it
    sleep 0.5
  fi
  rm -f "$sock" "$pidf"
  local detach=()
  command -v setsid >/dev/null && detach=(setsid)
  CONTAINERS_CONF=$conf "${detach[@]}" podman system service --time=0 "unix://$sock" >"$log" 2>&1 </dev/null &
  echo $! >"$pidf"
  for _ in $(seq 100); do
    if answers; then
      echo "podman.sh: API service on $sock (pid $(cat "$pidf"), $(podman --version))" >&2
      print_env
      return 0
    fi
    ours "$(cat "$pidf")" || { cat "$log" >&2; die "podman system service exited"; }
    sleep 0.1
  done
  cat "$log" >&2
  die "podman system service did not answer on $sock within 10s"
}

stop() {
  local pid
  pid=$(cat "$pidf" 2>/dev/null || true)
  if ours "$pid"; then
    kill "$pid"
    for _ in $(seq 50); do ours "$pid" || break; sleep 0.1; done
    ours "$pid" && kill -9 "$pid"
    echo "podman.sh: stopped pid $pid" >&2
  fi
  rm -f "$pidf" "$sock"
}

status() {
  if answers; then
    echo "API service on $sock (pid $(cat "$pidf" 2>/dev/null || echo '?'))"
  else
    echo "no API service on $sock"
  fi
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  env) write_conf; print_env ;;
  stop) stop ;;
  status) status ;;
  *) sed -n '2,16p' "$0" >&2; exit 2 ;;
esac
