#!/usr/bin/env bash
# go vet and staticcheck over every module (GOWORK=off). staticcheck is
# installed from the Go module proxy at a pinned version.
set -euo pipefail
cd "$(dirname "$0")/.."
STATICCHECK_VERSION=v0.8.2
bin="$(go env GOPATH)/bin/staticcheck"
if ! "$bin" -version 2>/dev/null | grep -q "${STATICCHECK_VERSION#v}"; then
  go install "honnef.co/go/tools/cmd/staticcheck@${STATICCHECK_VERSION}"
fi
for m in pkg cmd/wrapi functions infra integration; do
  echo "== vet + staticcheck ($m)"
  (cd "$m" && GOWORK=off go vet ./... && GOWORK=off "$bin" ./...)
done
