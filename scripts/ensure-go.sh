#!/usr/bin/env bash
# Fails early with a clear message when Go is missing or too old.
set -euo pipefail
if ! command -v go >/dev/null 2>&1; then
  echo "wrapi needs Go 1.26.6 or newer (https://go.dev/dl/)" >&2
  exit 1
fi
v=$(go env GOVERSION | sed 's/^go//')
IFS=. read -r major minor patch _ <<<"${v}.0.0"
if (( major < 1 || (major == 1 && minor < 26) || (major == 1 && minor == 26 && ${patch:-0} < 6) )); then
  echo "wrapi needs Go 1.26.6 or newer; found go$v" >&2
  exit 1
fi
