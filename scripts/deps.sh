#!/usr/bin/env bash
# Installs what the test suites need, idempotently: memcached and chromium
# from Debian's apt (as root), dynalite from npm into .cache/dynalite.
# Without root or apt it says what is missing and carries on: those tests
# skip outside CI and fail under CI=true, so nothing passes silently.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

missing=()
command -v make >/dev/null || missing+=(make)
command -v memcached >/dev/null || missing+=(memcached)
command -v chromium >/dev/null || missing+=(chromium fonts-dejavu-core)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)

if ((${#missing[@]})); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "deps: installing ${missing[*]} (apt)" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "deps: missing ${missing[*]}; install them (e.g. apt-get install ${missing[*]}) or their tests will skip" >&2
  fi
fi

if command -v node >/dev/null && command -v npm >/dev/null; then
  "$root/scripts/dynalite.sh" install
fi
