#!/usr/bin/env bash
# Runs wrapi's tests. `scripts/test.sh` runs everything `make test` promises:
# unit tests with the race detector in every module (each with GOWORK=off,
# so module boundaries hold), then a short run of every fuzz target.
#   scripts/test.sh unit   only unit tests
#   scripts/test.sh fuzz   only fuzzing (FUZZTIME per target, default 10s)
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
FUZZTIME=${FUZZTIME:-10s}
export GOFLAGS=${GOFLAGS:--buildvcs=false}

unit() {
  # infra's Pulumi SDK is large; the race detector there costs minutes and
  # finds nothing our code does concurrently, so it runs without -race.
  for m in pkg cmd/wrapi functions; do
    echo "== go test -race ($m)"
    (cd "$m" && GOWORK=off go test -race -count=1 ./...)
  done
  for m in infra integration; do
    echo "== go test ($m)"
    (cd "$m" && GOWORK=off go test -count=1 ./...)
  done
}

fuzz() {
  # Every Fuzz* function in pkg, one at a time (go test allows one per run).
  grep -rl --include='*_test.go' '^func Fuzz' pkg | while read -r f; do
    dir=$(dirname "$f")
    for fn in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)' "$f" | awk '{print $2}'); do
      echo "== fuzz $dir $fn ($FUZZTIME)"
      (cd pkg && GOWORK=off go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$FUZZTIME" "./${dir#pkg/}")
    done
  done
}

case "$what" in
  unit) unit ;;
  fuzz) fuzz ;;
  all) unit; fuzz ;;
  *) echo "usage: $0 [unit|fuzz|all]" >&2; exit 2 ;;
esac
