//go:build unix

package proxy_test

// Overhead benchmarks: what wrapi adds to a call, compared with a bare
// httputil.ReverseProxy measured in the same run on the same machine.
//
// Every variant is real loopback HTTP against the same fake upstream
// (openaitest replaying the "chat" or "chat-stream" cassette):
//
//	Direct            client → upstream                     (the floor)
//	BareReverseProxy  client → httputil.ReverseProxy → upstream
//	Wrapi             client → wrapi (SQLite WAL file) → upstream
//	WrapiWithLimit    as Wrapi, with a project limit: every call reserves
//	                  and settles
//	…Stream           the same three for the streamed "chat-stream"
//	WhatIf/…          diagnostics: wrapi with one store cost switched off
//
// each "serial" (one client) and "parallel" (b.RunParallel, GOMAXPROCS
// clients). Besides ns/op and allocs/op (process-wide: client, proxy and
// upstream alike, so differences between variants are what counts) each
// reports p50-us and p99-us, the client-observed latency of one call, and
// cpu-us/op, the CPU time (user + system, getrusage) the whole process
// spent per call: unlike latency it hardly moves when other processes
// load the machine. scripts/bench.sh subtracts Direct from each and
// divides wrapi's added p50 (and CPU) by the bare proxy's: no absolute
// time is asserted anywhere.
//
// wrapi settles and records after the response, off the client's path;
// the run ends with Handler.Wait so that bookkeeping is paid inside the
// measured time (ns/op), while p50/p99 show what a client waits for.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/budget"
	"github.com/wrapi-dev/wrapi/pkg/identity"
	"github.com/wrapi-dev/wrapi/pkg/money"
	"github.com/wrapi-dev/wrapi/pkg/openaitest"
	"github.com/wrapi-dev/wrapi/pkg/proxy"
	"github.com/wrapi-dev/wrapi/pkg/store"
	"github.com/wrapi-dev/wrapi/pkg/store/sqlite"
)

const (
	benchStage   = "bench"
	benchProject = "bench"
	// benchWarmup requests open the connections and warm the store before
	// the timer starts.
	benchWarmup = 32
	// upstreamLogEvery bounds the fake upstream's request log (it keeps a
	// copy of every body): it is cleared every so many calls, in every
	// variant alike.
	upstreamLogEvery = 256
)

// benchTarget is one way of reaching the fake upstream.
type benchTarget struct {
	url  string // the chat/completions URL the client posts to
	auth string // the client's Authorization header
	wait func() // blocks until background bookkeeping is done; nil if none
	// verify checks, after the run, that the target did its job for all
	// calls (n = every request sent, warm-up included, each costing cost).
	verify func(tb testing.TB, n int, cost money.Nanos)
}

// benchSetup builds a target in front of the upstream at up.
type benchSetup func(tb testing.TB, up *openaitest.Server) benchTarget

func setupDirect(tb testing.TB, up *openaitest.Server) benchTarget {
	return benchTarget{url: up.URL + "/chat/completions", auth: "Bearer " + upstreamKey}
}

// upstreamTransport is the transport both proxies (and the client) use:
// wrapi's default, a clone of http.DefaultTransport keeping 256 idle
// connections per host, so the comparison is not about connection reuse.
func upstreamTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 256
	return t
}

// setupBare is the baseline of design.md: a plain ReverseProxy whose
// Rewrite sets the upstream URL and the upstream key, nothing more — but
// for reading the request body into memory first. Streaming the inbound
// body straight through hits golang/go#40747: when the upstream answers
// quickly, the server closes the inbound body as the proxy writes the
// response headers, the transport's final read of it fails, and it tears
// down the upstream connection mid-reply ("use of closed network
// connection"; here about 1 stream in 10,000). wrapi buffers the body
// anyway (it must price it), so it never meets this, and the io.ReadAll
// costs both proxies the same (about 7 µs of CPU per call, profiled).
func setupBare(tb testing.TB, up *openaitest.Server) benchTarget {
	return setupBareFlush(0)(tb, up)
}

// setupBareFlush is setupBare with ReverseProxy.FlushInterval set (wrapi
// uses -1: flush every write).
func setupBareFlush(interval time.Duration) benchSetup {
	return func(tb testing.TB, up *openaitest.Server) benchTarget { return bare(tb, up, interval) }
}

func bare(tb testing.TB, up *openaitest.Server, flush time.Duration) benchTarget {
	u, err := url.Parse(up.URL)
	if err != nil {
		tb.Fatal(err)
	}
	base := &url.URL{Scheme: u.Scheme, Host: u.Host} // the client's path already has /v1
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(base)
			pr.Out.Header.Set("Authorization", "Bearer "+upstreamKey)
		},
		Transport:     upstreamTransport(),
		FlushInterval: flush,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "bare proxy: read body", http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rp.ServeHTTP(w, r)
	}))
	tb.Cleanup(srv.Close)
	return benchTarget{url: srv.URL + "/v1/chat/completions", auth: "Bearer client-key-never-forwarded"}
}

// setupWrapi returns wrapi as `wrapi serve` runs it: SQLite in WAL mode on
// a file, bookkeeping after the response. With limit set, a generous
// monthly project limit covers every call, so each one reserves its worst
// case and settles to the cassette's cost.
func setupWrapi(limit bool) benchSetup { return setupWrapiWhatIf(whatIf{limit: limit}) }

// whatIf switches off one cost of the store to measure what it adds
// (BenchmarkWhatIf); the zero value is the real configuration.
type whatIf struct {
	limit bool // a project limit covers every call
	// cachedLimits answers ListLimits from memory, as a limits cache
	// refreshed in the background would.
	cachedLimits bool
	// noRecord drops the per-call record write (no durable record: not
	// an option for wrapi, only a measure of its cost).
	noRecord bool
}

// whatIfStore is the SQLite store with the costs a whatIf switches off.
type whatIfStore struct {
	*sqlite.Store
	w      whatIf
	limits []budget.Limit
}

func (s *whatIfStore) ListLimits(ctx context.Context) ([]budget.Limit, error) {
	if s.w.cachedLimits {
		return s.limits, nil
	}
	return s.Store.ListLimits(ctx)
}

func (s *whatIfStore) Record(ctx context.Context, r store.Record) error {
	if s.w.noRecord {
		return nil
	}
	return s.Store.Record(ctx, r)
}

func setupWrapiWhatIf(w whatIf) benchSetup {
	return func(tb testing.TB, up *openaitest.Server) benchTarget {
		ctx := context.Background()
		st, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "wrapi.db"))
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { st.Close() })
		if w.limit {
			l, err := budget.NewLimit(budget.Scope{Stage: benchStage, Project: benchProject}, budget.Month, money.MustParse("1000000"))
			if err != nil {
				tb.Fatal(err)
			}
			if err := st.PutLimit(ctx, l); err != nil {
				tb.Fatal(err)
			}
		}
		var ps store.Store = st
		if w.cachedLimits || w.noRecord {
			ls, err := st.ListLimits(ctx)
			if err != nil {
				tb.Fatal(err)
			}
			ps = &whatIfStore{Store: st, w: w, limits: ls}
		}
		u, err := url.Parse(up.URL)
		if err != nil {
			tb.Fatal(err)
		}
		h, err := proxy.New(proxy.Config{
			Stage: benchStage, Upstream: u, APIKey: upstreamKey, Store: ps,
			Auth: identity.None{User: "bench"},
		})
		if err != nil {
			tb.Fatal(err)
		}
		srv := httptest.NewServer(h)
		tb.Cleanup(srv.Close)
		tb.Cleanup(h.Wait) // before the store closes (cleanups run last-in first-out)
		return benchTarget{
			url:  srv.URL + "/v1/chat/completions",
			auth: "Bearer client-key-never-forwarded",
			wait: h.Wait,
			verify: func(tb testing.TB, n int, cost money.Nanos) {
				if !w.noRecord {
					verifyBookkeeping(tb, st, n, cost, w.limit)
				}
			},
		}
	}
}

// verifyBookkeeping checks that every call left a record and, with a
// limit, that every reservation was settled to the call's real cost.
func verifyBookkeeping(tb testing.TB, st *sqlite.Store, n int, cost money.Nanos, limit bool) {
	tb.Helper()
	ctx := context.Background()
	rows, err := st.DailyUsage(ctx, store.UsageFilter{})
	if err != nil {
		tb.Fatal(err)
	}
	var reqs, errs int64
	for _, r := range rows {
		reqs += r.Requests
		errs += r.Errors
	}
	if reqs != int64(n) || errs != 0 {
		tb.Fatalf("store holds %d records (%d errors) for %d calls", reqs, errs, n)
	}
	if !limit {
		return
	}
	held, err := st.Reservations(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	if len(held) != 0 {
		tb.Fatalf("%d reservations still held after Wait", len(held))
	}
	ls, err := st.ListLimits(ctx)
	if err != nil || len(ls) != 1 {
		tb.Fatalf("limits: %v, %v", ls, err)
	}
	cs, err := st.Committed(ctx, []budget.Check{{Limit: ls[0], Window: ls[0].Period.WindowAt(time.Now(), nil)}})
	if err != nil {
		tb.Fatal(err)
	}
	if got, want := cs[0].Committed, money.Nanos(n)*cost; got != want {
		tb.Fatalf("committed %s USD after %d calls, want %s (%d × %s)", got, n, want, n, cost)
	}
}

// benchClient sends the cassette's request to a target and checks the
// reply byte for byte. It is safe for concurrent use.
type benchClient struct {
	tgt   benchTarget
	body  []byte // request
	want  []byte // reply body
	http  *http.Client
	up    *openaitest.Server
	cost  money.Nanos // of one call, hand-computed in proxy_test.go
	calls atomic.Int64
	cpu0  time.Duration // process CPU time when the timer started
}

// cassetteCost is the hand-computed cost of each cassette used here.
var cassetteCost = map[string]money.Nanos{"chat": costChat, "chat-stream": costChatStream}

func newBenchClient(tb testing.TB, name string, setup benchSetup) *benchClient {
	c, err := openaitest.Load(name)
	if err != nil {
		tb.Fatal(err)
	}
	up := openaitest.NewServer(openaitest.WithAPIKey(upstreamKey))
	tb.Cleanup(up.Close)
	tr := upstreamTransport() // enough idle connections for parallel clients
	tb.Cleanup(tr.CloseIdleConnections)
	cost, ok := cassetteCost[name]
	if !ok {
		tb.Fatalf("no hand-computed cost for cassette %q", name)
	}
	return &benchClient{tgt: setup(tb, up), body: c.Request, want: c.Body, http: &http.Client{Transport: tr}, up: up, cost: cost}
}

// call makes one request and returns how long the client waited for the
// whole reply. buf is the caller's scratch buffer.
func (bc *benchClient) call(buf *bytes.Buffer) (time.Duration, error) {
	if bc.calls.Add(1)%upstreamLogEvery == 0 {
		bc.up.Reset()
	}
	req, err := http.NewRequest(http.MethodPost, bc.tgt.url, bytes.NewReader(bc.body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", bc.tgt.auth)
	req.Header.Set(proxy.HeaderProject, benchProject)
	start := time.Now()
	resp, err := bc.http.Do(req)
	if err != nil {
		return 0, err
	}
	buf.Reset()
	_, err = buf.ReadFrom(resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Equal(buf.Bytes(), bc.want) {
		return 0, fmt.Errorf("status %d, reply of %d bytes differs from the cassette's %d: %.200q", resp.StatusCode, buf.Len(), len(bc.want), buf.Bytes())
	}
	return d, nil
}

func (bc *benchClient) warmup(tb testing.TB) {
	var buf bytes.Buffer
	for range benchWarmup {
		if _, err := bc.call(&buf); err != nil {
			tb.Fatal(err)
		}
	}
	if bc.tgt.wait != nil {
		bc.tgt.wait()
	}
}

// start starts the timer and the CPU clock.
func (bc *benchClient) start(b *testing.B) {
	b.ReportAllocs()
	b.ResetTimer()
	bc.cpu0 = cpuTime(b)
}

// finish pays outstanding bookkeeping (timed), stops the timer, checks
// the target's records and reports the latency percentiles and CPU time.
func (bc *benchClient) finish(b *testing.B, lat []time.Duration) {
	if bc.tgt.wait != nil {
		bc.tgt.wait()
	}
	cpu := cpuTime(b) - bc.cpu0
	b.StopTimer()
	b.ReportMetric(us(cpu)/float64(b.N), "cpu-us/op")
	if bc.tgt.verify != nil {
		bc.tgt.verify(b, int(bc.calls.Load()), bc.cost)
	}
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(us(percentile(lat, 50)), "p50-us")
	b.ReportMetric(us(percentile(lat, 99)), "p99-us")
}

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100 // ceil(n·p/100)
	return sorted[max(i-1, 0)]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// cpuTime is the CPU time the process has used, user and system.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchSerial(b *testing.B, cassette string, setup benchSetup) {
	bc := newBenchClient(b, cassette, setup)
	bc.warmup(b)
	lat := make([]time.Duration, 0, b.N)
	var buf bytes.Buffer
	bc.start(b)
	for range b.N {
		d, err := bc.call(&buf)
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, d)
	}
	bc.finish(b, lat)
}

func benchParallel(b *testing.B, cassette string, setup benchSetup) {
	bc := newBenchClient(b, cassette, setup)
	bc.warmup(b)
	var (
		mu  sync.Mutex
		lat = make([]time.Duration, 0, b.N)
	)
	bc.start(b)
	b.RunParallel(func(pb *testing.PB) {
		var (
			buf   bytes.Buffer
			local []time.Duration
		)
		for pb.Next() {
			d, err := bc.call(&buf)
			if err != nil {
				b.Error(err)
				return
			}
			local = append(local, d)
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	bc.finish(b, lat)
}

func benchBoth(b *testing.B, cassette string, setup benchSetup) {
	b.Run("serial", func(b *testing.B) { benchSerial(b, cassette, setup) })
	b.Run("parallel", func(b *testing.B) { benchParallel(b, cassette, setup) })
}

func BenchmarkDirect(b *testing.B)                 { benchBoth(b, "chat", setupDirect) }
func BenchmarkBareReverseProxy(b *testing.B)       { benchBoth(b, "chat", setupBare) }
func BenchmarkWrapi(b *testing.B)                  { benchBoth(b, "chat", setupWrapi(false)) }
func BenchmarkWrapiWithLimit(b *testing.B)         { benchBoth(b, "chat", setupWrapi(true)) }
func BenchmarkDirectStream(b *testing.B)           { benchBoth(b, "chat-stream", setupDirect) }
func BenchmarkBareReverseProxyStream(b *testing.B) { benchBoth(b, "chat-stream", setupBare) }
func BenchmarkWrapiStream(b *testing.B)            { benchBoth(b, "chat-stream", setupWrapi(false)) }

// BenchmarkWhatIf prices the parts of wrapi's store work by switching
// each off (see whatIf). Diagnostic only: scripts/bench.sh runs it when
// BENCH_WHATIF=1; BENCHMARKS.md reads its figures.
func BenchmarkWhatIf(b *testing.B) {
	for _, tc := range []struct {
		name  string
		setup benchSetup
	}{
		{"CachedLimits", setupWrapiWhatIf(whatIf{cachedLimits: true})},
		{"NoRecord", setupWrapiWhatIf(whatIf{noRecord: true})},
		{"NoStore", setupWrapiWhatIf(whatIf{cachedLimits: true, noRecord: true})},
		{"LimitCachedLimits", setupWrapiWhatIf(whatIf{limit: true, cachedLimits: true})},
		// The bare proxy with wrapi's FlushInterval.
		{"BareFlushEveryWrite", setupBareFlush(-1)},
	} {
		b.Run(tc.name, func(b *testing.B) { benchBoth(b, "chat", tc.setup) })
	}
}

// TestBenchTargets keeps the benchmark harness honest under `go test
// -race`: every target returns the cassette byte for byte, and wrapi's
// targets leave one record per call and settle every reservation to the
// cassette's cost. It measures nothing.
func TestBenchTargets(t *testing.T) {
	for _, tc := range []struct {
		name, cassette string
		setup          benchSetup
	}{
		{"direct", "chat", setupDirect},
		{"bare", "chat", setupBare},
		{"bare stream", "chat-stream", setupBare},
		{"wrapi", "chat", setupWrapi(false)},
		{"wrapi with limit", "chat", setupWrapi(true)},
		{"wrapi stream", "chat-stream", setupWrapi(false)},
		{"wrapi stream with limit", "chat-stream", setupWrapi(true)},
		{"what-if cached limits, with limit", "chat", setupWrapiWhatIf(whatIf{limit: true, cachedLimits: true})},
		{"what-if no store", "chat", setupWrapiWhatIf(whatIf{cachedLimits: true, noRecord: true})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bc := newBenchClient(t, tc.cassette, tc.setup)
			bc.warmup(t)
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					var buf bytes.Buffer
					for range 8 {
						if _, err := bc.call(&buf); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			if bc.tgt.wait != nil {
				bc.tgt.wait()
			}
			if n := bc.calls.Load(); n != benchWarmup+32 {
				t.Fatalf("%d calls, want %d", n, benchWarmup+32)
			}
			if bc.tgt.verify != nil {
				bc.tgt.verify(t, int(bc.calls.Load()), bc.cost)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	for _, tc := range []struct {
		in   []time.Duration
		p    int
		want time.Duration
	}{
		{ms(7), 50, 7 * time.Millisecond},
		{ms(7), 99, 7 * time.Millisecond},
		{ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{ms(1, 2, 3, 4, 5), 50, 3 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 90, 9 * time.Millisecond},
	} {
		if got := percentile(tc.in, tc.p); got != tc.want {
			t.Errorf("percentile(%v, %d) = %v, want %v", tc.in, tc.p, got, tc.want)
		}
	}
}
