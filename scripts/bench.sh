#!/usr/bin/env bash
# Benchmarks for `make bench`: what wrapi adds to a call, as a ratio to a
# bare httputil.ReverseProxy measured in the same run, plus the parser,
# metering and pricing micro-benchmarks. About 1–2 minutes on 2 cores.
#
# The proxy benchmarks (pkg/proxy/bench_test.go) run BENCH_ROUNDS times,
# each round every variant in turn, so load from other processes spreads
# over all variants instead of landing on one. The summary takes, per
# variant, the median over rounds of p50/p99 and of the added latency
# over Direct (subtracted within each round), then
#   ratio = wrapi's added p50 / the bare proxy's added p50   (target ≤ 1.5)
# No absolute time is asserted; the script fails only if a benchmark does.
#
#   BENCH_ROUNDS  rounds of the proxy benchmarks (default 5)
#   BENCH_CALLS   calls per proxy benchmark per round (default 3000)
#   BENCH_OUT     directory for the raw outputs (default: a new temp dir)
#   BENCH_UNITS=0 skip the meter/request/pricing benchmarks
#   BENCH_WHATIF=1 also run BenchmarkWhatIf (diagnostic variants that
#                 switch off one store cost each; see BENCHMARKS.md)
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS=${GOFLAGS:--buildvcs=false}
rounds=${BENCH_ROUNDS:-5}
calls=${BENCH_CALLS:-3000}
out=${BENCH_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/wrapi-bench.XXXXXX")}
mkdir -p "$out"
raw="$out/proxy.txt"
pattern='^Benchmark(Direct|BareReverseProxy|Wrapi)'
[[ ${BENCH_WHATIF:-0} != 0 ]] && pattern='^Benchmark(Direct|BareReverseProxy|Wrapi|WhatIf)'
: >"$raw"

echo "== proxy overhead: $rounds rounds × ${calls} calls per variant (nproc $(nproc), $(go version | awk '{print $3}'))"
(cd pkg && GOWORK=off go test -c -o "$out/proxy.test" ./proxy)
for ((r = 1; r <= rounds; r++)); do
  echo "-- round $r/$rounds"
  (cd pkg/proxy && "$out/proxy.test" -test.run '^$' -test.bench "$pattern" \
    -test.benchtime "${calls}x" -test.benchmem) | tee -a "$raw" | grep -E '^(Benchmark|---|FAIL|panic)' || true
  if grep -qE '^(--- FAIL|FAIL|panic)' "$raw"; then
    echo "bench: a proxy benchmark failed; raw output in $raw" >&2
    exit 1
  fi
done

if [[ ${BENCH_UNITS:-1} != 0 ]]; then
  echo "== meter, request, pricing"
  (cd pkg && GOWORK=off go test -run '^$' -bench . -benchmem ./meter ./request ./pricing) | tee "$out/units.txt"
fi

echo
echo "== summary (median of $rounds rounds; added = minus Direct of the same round and mode)"
awk -v rounds="$rounds" '
function median(s,    n, a, i, j, t) {
  n = split(s, a, " ")
  if (n == 0) return ""
  for (i = 2; i <= n; i++) {            # insertion sort: mawk has no asort
    t = a[i] + 0
    for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]
    a[j + 1] = t
  }
  return (n % 2) ? a[(n + 1) / 2] + 0 : (a[n / 2] + a[n / 2 + 1]) / 2
}
function add(key, v) { vals[key] = (key in vals) ? vals[key] " " v : v }
/^Benchmark/ && /p50-us/ {
  name = $1
  sub(/^Benchmark/, "", name)
  sub(/-[0-9]+$/, "", name)           # the GOMAXPROCS suffix
  r = ++seen[name]
  for (i = 3; i < NF; i += 2) {
    v[name, r, $(i + 1)] = $i
    add(name SUBSEP $(i + 1), $i)
  }
}
function base(variant) { return variant ~ /Stream$/ ? "DirectStream" : "Direct" }
function bare(variant) { return variant ~ /Stream$/ ? "BareReverseProxyStream" : "BareReverseProxy" }
# median over rounds of (metric of a/mode - metric of b/mode)
function diff(a, b, mode, unit,    r, s) {
  s = ""
  for (r = 1; r <= seen[a "/" mode]; r++)
    if ((b "/" mode, r, unit) in v) s = s " " (v[a "/" mode, r, unit] - v[b "/" mode, r, unit])
  return median(s)
}
END {
  norder = split("Direct BareReverseProxy Wrapi WrapiWithLimit DirectStream BareReverseProxyStream WrapiStream " \
    "WhatIf/BareFlushEveryWrite WhatIf/NoStore WhatIf/CachedLimits WhatIf/NoRecord WhatIf/LimitCachedLimits", order, " ")
  split("serial parallel", modes, " ")
  printf "%-36s %9s %9s %11s %11s %10s %10s %9s\n", "variant", "p50 us", "p99 us", "added p50", "added p99", "ns/op", "allocs/op", "x bare"
  for (m = 1; m <= 2; m++) {
    for (k = 1; k <= norder; k++) {
      n = order[k] "/" modes[m]
      if (!((n SUBSEP "p50-us") in vals)) continue
      ap50 = ""; ap99 = ""; x = ""
      if (order[k] != base(order[k])) {
        ap50 = sprintf("%+.1f", diff(order[k], base(order[k]), modes[m], "p50-us"))
        ap99 = sprintf("%+.0f", diff(order[k], base(order[k]), modes[m], "p99-us"))
      }
      if (order[k] ~ /^(Wrapi|WhatIf)/) {
        b = diff(bare(order[k]), base(order[k]), modes[m], "p50-us")
        if (b > 0) x = sprintf("%.2f", diff(order[k], base(order[k]), modes[m], "p50-us") / b)
        else x = "n/a"
        ratio[n] = x
      }
      printf "%-36s %9.1f %9.0f %11s %11s %10.0f %10.0f %9s\n", n,
        median(vals[n SUBSEP "p50-us"]), median(vals[n SUBSEP "p99-us"]), ap50, ap99,
        median(vals[n SUBSEP "ns/op"]), median(vals[n SUBSEP "allocs/op"]), x
    }
  }
  print ""
  h = "Wrapi/serial"
  if (h in ratio) {
    verdict = (ratio[h] != "n/a" && ratio[h] <= 1.5) ? "within" : "OVER"
    printf "ratio  wrapi added p50 / bare-proxy added p50 (chat, serial): %s  — target ≤ 1.5: %s\n", ratio[h], verdict
  }
  print "p50/p99: client-observed latency of one call. ns/op: wall time per call with wrapi'\''s background"
  print "bookkeeping (settle, record) drained inside the timed run. allocs/op: the whole process"
  print "(client, proxy and fake upstream), so compare variants, not absolute values."
}' "$raw"
echo
echo "raw output: $out"
