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

load() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || uptime; }
echo "== proxy overhead: $rounds rounds × ${calls} calls per variant; nproc $(nproc), $(go version | awk '{print $3}'), load average $(load)"
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
echo "== summary (load average at the end: $(load); figures taken under load are slower and noisier)"
echo "   median of $rounds rounds per figure"
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
# added metric of variant a over its Direct, relative to the bare proxy ones
function ratio(a, mode, unit,    b) {
  b = diff(bare(a), base(a), mode, unit)
  return b > 0 ? sprintf("%.2f", diff(a, base(a), mode, unit) / b) : "n/a"
}
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
  printf "%-36s %8s %8s %9s %9s %8s %9s %9s %7s %7s\n", "variant", "p50 us", "p99 us", "+p50 us", "+p99 us",
    "cpu us", "+cpu us", "allocs/op", "x bare", "x cpu"
  for (m = 1; m <= 2; m++) {
    for (k = 1; k <= norder; k++) {
      n = order[k] "/" modes[m]
      if (!((n SUBSEP "p50-us") in vals)) continue
      ap50 = ""; ap99 = ""; acpu = ""; x = ""; xc = ""
      if (order[k] != base(order[k])) {
        ap50 = sprintf("%+.0f", diff(order[k], base(order[k]), modes[m], "p50-us"))
        ap99 = sprintf("%+.0f", diff(order[k], base(order[k]), modes[m], "p99-us"))
        acpu = sprintf("%+.0f", diff(order[k], base(order[k]), modes[m], "cpu-us/op"))
      }
      if (order[k] ~ /^(Wrapi|WhatIf)/) {
        x = ratio(order[k], modes[m], "p50-us")
        xc = ratio(order[k], modes[m], "cpu-us/op")
        if (order[k] == "Wrapi" && modes[m] == "serial") { head = x; headcpu = xc }
      }
      printf "%-36s %8.0f %8.0f %9s %9s %8.0f %9s %9.0f %7s %7s\n", n,
        median(vals[n SUBSEP "p50-us"]), median(vals[n SUBSEP "p99-us"]), ap50, ap99,
        median(vals[n SUBSEP "cpu-us/op"]), acpu, median(vals[n SUBSEP "allocs/op"]), x, xc
    }
  }
  print ""
  if (head != "") {
    verdict = (head != "n/a" && head <= 1.5) ? "within target" : "OVER target"
    printf "ratio  wrapi added p50 / bare-proxy added p50 (chat, serial): %s  (target <= 1.5: %s)\n", head, verdict
    printf "       wrapi added CPU / bare-proxy added CPU per call:       %s\n", headcpu
    spread = ""
    for (r = 1; r <= seen["Wrapi/serial"]; r++) {
      d = v["BareReverseProxy/serial", r, "p50-us"] - v["Direct/serial", r, "p50-us"]
      spread = spread sprintf(" %s", d > 0 ? sprintf("%.2f", (v["Wrapi/serial", r, "p50-us"] - v["Direct/serial", r, "p50-us"]) / d) : "n/a")
    }
    printf "       p50 ratio of each round:%s\n", spread
  }
  print "p50/p99: client-observed latency of one call; +: minus Direct of the same round and mode."
  print "cpu: process CPU time (user+sys) per call, bookkeeping drained inside the run; less"
  print "sensitive to other load than latency. x bare / x cpu: added p50 / added CPU relative to"
  print "the bare proxy (BareReverseProxyStream for streams). allocs/op counts the whole process"
  print "(client, proxy and fake upstream): compare variants, not absolute values."
}' "$raw"
echo
echo "raw output: $out"
