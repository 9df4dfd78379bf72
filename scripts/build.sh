#!/usr/bin/env bash
# Builds the wrapi CLI (bin/wrapi, for this machine) and the Lambda
# functions (dist/<fn>.zip: linux/arm64 `bootstrap`, provided.al2023).
#
# Reproducible: CGO off, -trimpath, empty build id, no VCS stamping, and a
# zip with fixed timestamps and permissions (functions/internal/lambdazip),
# so an unchanged source gives byte-identical zips and Pulumi does not
# redeploy. `scripts/build.sh --verify` builds the zips twice, the second
# time with an empty Go build cache, and fails if any byte differs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export GOWORK=off CGO_ENABLED=0 GOFLAGS="-buildvcs=false -trimpath"
FUNCTIONS=(proxy admin reaper)
ldflags="-s -w -buildid="

build_cli() {
  mkdir -p bin
  (cd cmd/wrapi && go build -ldflags "$ldflags" -o "$root/bin/wrapi" .)
  echo "bin/wrapi $(du -h bin/wrapi | cut -f1)"
}

build_functions() {
  local out=$1
  mkdir -p "$out/build"
  (cd functions && go build -o "$out/build/lambdazip" ./tools/lambdazip)
  for fn in "${FUNCTIONS[@]}"; do
    mkdir -p "$out/build/$fn"
    (cd functions && GOOS=linux GOARCH=arm64 go build -tags lambda.norpc -ldflags "$ldflags" \
      -o "$out/build/$fn/bootstrap" "./$fn")
    "$out/build/lambdazip" "$out/build/$fn/bootstrap" "$out/$fn.zip"
  done
}

report() {
  local out=$1
  for fn in "${FUNCTIONS[@]}"; do
    printf '%s  %s  %s\n' "$(sha256sum "$out/$fn.zip" | cut -c1-16)" "$(du -h "$out/$fn.zip" | cut -f1)" "$out/$fn.zip"
  done
}

case "${1:-}" in
  --verify)
    build_functions "$root/dist"
    other=$(mktemp -d)
    trap 'rm -rf "$other"' EXIT
    GOCACHE="$other/gocache" build_functions "$other/dist"
    for fn in "${FUNCTIONS[@]}"; do
      if ! cmp -s "$root/dist/$fn.zip" "$other/dist/$fn.zip"; then
        echo "build: $fn.zip differs between two builds: not reproducible" >&2
        exit 1
      fi
    done
    echo "build: two builds (the second from an empty cache) gave byte-identical zips:"
    report "$root/dist"
    ;;
  --functions) build_functions "$root/dist"; report "$root/dist" ;;
  "") build_cli; build_functions "$root/dist"; report "$root/dist" ;;
  *) echo "usage: $0 [--verify|--functions]" >&2; exit 2 ;;
esac
