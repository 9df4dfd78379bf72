#!/usr/bin/env bash
# Runs the integration suite (integration/): the whole system end to end,
# on containers when an engine is available, else on local processes.
#
#   WRAPI_IT_ENV=auto        (default) Docker if it answers, else podman if
#                            installed, else local processes (with a log line)
#   WRAPI_IT_ENV=containers  containers or fail; installs and starts podman
#                            when there is no Docker (root + apt: CI)
#   WRAPI_IT_ENV=processes   local processes only (memcached, dynalite, binaries)
#
# Extra arguments go to `go test` (e.g. -run TestStage -v). Image names
# are settings: see scripts/images.sh. Prints the time of each phase.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mode=${WRAPI_IT_ENV:-auto}
t0=$(date +%s)
phase() { echo "integration-test: $* ($(( $(date +%s) - t0 ))s)" >&2; }

case $mode in
  auto | containers | processes) ;;
  *) echo "integration-test: WRAPI_IT_ENV=$mode: want auto, containers or processes" >&2; exit 2 ;;
esac

engine=""
if [[ $mode != processes ]]; then
  if [[ -n ${DOCKER_HOST:-} && ${DOCKER_HOST} != *podman* ]] || { [[ -z ${DOCKER_HOST:-} ]] && command -v docker >/dev/null && docker info >/dev/null 2>&1; }; then
    engine=docker
  elif [[ $mode == containers ]] || command -v podman >/dev/null; then
    if out=$("$root/scripts/podman.sh" start); then
      eval "$out"
      engine=podman
    elif [[ $mode == containers ]]; then
      exit 1
    fi
  fi
  if [[ -z $engine ]]; then
    phase "no container engine (no Docker, no podman): local processes"
    export WRAPI_IT_ENV=processes
  else
    export WRAPI_IT_ENV=containers WRAPI_IT_ENGINE=$engine
    phase "container engine: $engine"
  fi
fi

# Containers a killed test binary left behind (no reaper on podman).
cleanup() {
  [[ -n $engine ]] || return 0
  local ids
  ids=$($engine ps -aq --filter label=dev.wrapi.it 2>/dev/null || true)
  [[ -z $ids ]] || $engine rm -f $ids >/dev/null 2>&1 || true
}

if [[ -n $engine ]]; then
  cleanup
  trap cleanup EXIT
  "$root/scripts/images.sh" build >/dev/null
  phase "images ready"
  "$root/scripts/images.sh" sizes >&2
fi

cd "$root/integration"
GOWORK=off go test -count=1 -timeout 20m "$@" ./...
phase "done (WRAPI_IT_ENV=$WRAPI_IT_ENV${engine:+, $engine})"
