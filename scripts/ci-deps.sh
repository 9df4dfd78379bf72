#!/usr/bin/env bash
# CI's machine starts bare: install what the suites need (see deps.sh).
set -euo pipefail
"$(dirname "$0")/deps.sh"
