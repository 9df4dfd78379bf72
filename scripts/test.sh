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
      log=$(mktemp)
      if ! (cd pkg && GOWORK=off go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$FUZZTIME" \
            -fuzzminimizetime 1s "./${dir#pkg/}") >"$log" 2>&1; then
        # Go's fuzzer can end a run with "context deadline exceeded" when
        # the time budget expires while it minimises a new (non-failing)
        # input; that is not a finding. A real finding writes
        # testdata/fuzz/... and says "Failing input".
        if grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input' "$log"; then
          tail -3 "$log"; echo "fuzz: $fn stopped while minimising a new input (not a failure)"
        else
          cat "$log"; rm -f "$log"; exit 1
        fi
      else
        tail -2 "$log"
      fi
      rm -f "$log"
    done
  done
}

# Install or locate the services the tests start (memcached, dynalite,
# chromium) unless told not to.
if [[ ${WRAPI_SKIP_DEPS:-} != 1 ]]; then
  scripts/deps.sh
fi

case "$what" in
  unit) unit ;;
  fuzz) fuzz ;;
  all) unit; fuzz ;;
  *) echo "usage: $0 [unit|fuzz|all]" >&2; exit 2 ;;
esac
