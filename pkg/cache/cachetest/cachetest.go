// Package cachetest is the conformance suite every cache.Backend passes,
// run through cache.Cache: byte-exact round trips of streamed and
// non-streamed entries, TTL expiry, the key and scope checks on read,
// flushes by generation, large entries, concurrency and corrupt values.
//
// A backend's test calls Run with a constructor. The suite writes every
// subtest under a fresh random namespace, so the constructor may return a
// shared backend (one memcached server) as well as a fresh one.
package cachetest

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/cache"
)

// Config describes the backend under test.
type Config struct {
	// New returns the backend for one subtest.
	New func(t *testing.T) cache.Backend
	// Advance moves the backend's clock forward by d. Nil: the suite
	// sleeps, adding SleepSlack for backends with coarse expiry.
	Advance func(d time.Duration)
	// SleepSlack is added to sleeps when Advance is nil (memcached's
	// clock ticks once a second: use 1.5 s).
	SleepSlack time.Duration
	// MaxValue is the largest encoded value the backend stores; the suite
	// stores one of about 3/4 of it (up to 3.5 MiB) and expects one larger
	// than MaxValue to be skipped.
	MaxValue int
	// Budget, when > 0, is the byte budget the backend keeps to, reported
	// through cache.Sizer.
	Budget int64
}

// Run runs the suite.
func Run(t *testing.T, cfg Config) {
	if cfg.New == nil || cfg.MaxValue <= 0 {
		t.Fatal("cachetest: Config.New and Config.MaxValue are required")
	}
	s := &suite{cfg: cfg}
	t.Run("Backend", s.testBackend)
	t.Run("RoundTrip", s.testRoundTrip)
	t.Run("Overwrite", s.testOverwrite)
	t.Run("TTL", s.testTTL)
	t.Run("KeyAndScopeChecked", s.testChecks)
	t.Run("FlushScope", s.testFlushScope)
	t.Run("FlushAll", s.testFlushAll)
	t.Run("FlushSeenByOtherInstances", s.testFlushOtherInstance)
	t.Run("LargeEntries", s.testLarge)
	if cfg.Budget > 0 {
		t.Run("Budget", s.testBudget)
	}
	t.Run("Concurrent", s.testConcurrent)
	t.Run("CorruptIsMiss", s.testCorrupt)
}

type suite struct{ cfg Config }

var ctx = context.Background()

// namespace returns a namespace no other run uses.
func namespace() string {
	var b [6]byte
	crand.Read(b[:])
	return "ct-" + hex.EncodeToString(b[:])
}

func (s *suite) wait(d time.Duration) {
	if s.cfg.Advance != nil {
		s.cfg.Advance(d)
		return
	}
	time.Sleep(d + s.cfg.SleepSlack)
}

// newCache returns a Cache over a backend from cfg.New, in a fresh
// namespace, with the backend itself.
func (s *suite) newCache(t *testing.T, opts cache.Options) (*cache.Cache, cache.Backend) {
	t.Helper()
	b := s.cfg.New(t)
	if opts.Namespace == "" {
		opts.Namespace = namespace()
	}
	return cache.New(b, opts), b
}

// EntriesEqual reports how got differs from want ("" if it does not):
// every field, body and events byte for byte.
func EntriesEqual(got, want *cache.Entry) string {
	switch {
	case got.Key != want.Key:
		return fmt.Sprintf("Key %q, want %q", got.Key, want.Key)
	case got.Scope != want.Scope:
		return fmt.Sprintf("Scope %q, want %q", got.Scope, want.Scope)
	case got.Status != want.Status:
		return fmt.Sprintf("Status %d, want %d", got.Status, want.Status)
	case got.ContentType != want.ContentType:
		return fmt.Sprintf("ContentType %q, want %q", got.ContentType, want.ContentType)
	case !bytes.Equal(got.Body, want.Body):
		return fmt.Sprintf("Body differs (%d bytes, want %d)", len(got.Body), len(want.Body))
	case len(got.Events) != len(want.Events):
		return fmt.Sprintf("%d events, want %d", len(got.Events), len(want.Events))
	case got.Stream != want.Stream:
		return fmt.Sprintf("Stream %v, want %v", got.Stream, want.Stream)
	case got.Usage != want.Usage:
		return fmt.Sprintf("Usage %+v, want %+v", got.Usage, want.Usage)
	case got.Model != want.Model || got.ServiceTier != want.ServiceTier:
		return fmt.Sprintf("Model/ServiceTier %q/%q, want %q/%q", got.Model, got.ServiceTier, want.Model, want.ServiceTier)
	case got.Cost != want.Cost:
		return fmt.Sprintf("Cost %d, want %d", got.Cost, want.Cost)
	case !want.Created.IsZero() && !got.Created.Equal(want.Created):
		return fmt.Sprintf("Created %v, want %v", got.Created, want.Created)
	}
	for i := range want.Events {
		if !bytes.Equal(got.Events[i], want.Events[i]) {
			return fmt.Sprintf("event %d is %q, want %q", i, got.Events[i], want.Events[i])
		}
	}
	return ""
}

func mustHit(t *testing.T, c *cache.Cache, want *cache.Entry) {
	t.Helper()
	got, err := c.Get(ctx, want.Key, want.Scope)
	if err != nil {
		t.Fatalf("Get(%.8s…, %q): %v, want a hit", want.Key, want.Scope, err)
	}
	if d := EntriesEqual(got, want); d != "" {
		t.Fatalf("Get(%.8s…, %q): %s", want.Key, want.Scope, d)
	}
}

func mustMiss(t *testing.T, c *cache.Cache, key, scope string) {
	t.Helper()
	got, err := c.Get(ctx, key, scope)
	if !errors.Is(err, cache.ErrMiss) {
		t.Fatalf("Get(%.8s…, %q) = %v, %v; want ErrMiss", key, scope, got != nil, err)
	}
}

func mustPut(t *testing.T, c *cache.Cache, e *cache.Entry, ttl time.Duration) {
	t.Helper()
	if err := c.Put(ctx, e, ttl); err != nil {
		t.Fatalf("Put(%.8s…, %q): %v", e.Key, e.Scope, err)
	}
}

// testBackend checks the raw Backend contract.
func (s *suite) testBackend(t *testing.T) {
	b := s.cfg.New(t)
	ns := namespace()
	k1, k2, k3 := ns+"/a", ns+"/b", ns+"/c"
	if _, err := b.Get(ctx, k1); !errors.Is(err, cache.ErrMiss) {
		t.Fatalf("Get(absent) error = %v, want ErrMiss", err)
	}
	if err := b.Delete(ctx, k1); err != nil {
		t.Fatalf("Delete(absent) = %v, want nil", err)
	}
	if err := b.Set(ctx, k1, []byte("one"), time.Hour); err != nil {
		t.Fatal(err)
	}
	v, err := b.Get(ctx, k1)
	if err != nil || string(v) != "one" {
		t.Fatalf("Get = %q, %v; want one", v, err)
	}
	v[0] = 'X' // the caller owns what Get returns
	if v, _ := b.Get(ctx, k1); string(v) != "one" {
		t.Fatalf("modifying a returned value changed the stored one: %q", v)
	}
	if err := b.Set(ctx, k1, []byte("two"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if v, _ := b.Get(ctx, k1); string(v) != "two" {
		t.Fatalf("after a second Set, Get = %q, want two", v)
	}
	if err := b.Set(ctx, k2, []byte{}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if v, err := b.Get(ctx, k2); err != nil || len(v) != 0 {
		t.Fatalf("empty value: Get = %q, %v", v, err)
	}
	if mg, ok := b.(cache.MultiGetter); ok {
		m, err := mg.GetMulti(ctx, []string{k1, k3, k2})
		if err != nil {
			t.Fatal(err)
		}
		if b, ok := m[k2]; len(m) != 2 || string(m[k1]) != "two" || !ok || len(b) != 0 {
			t.Fatalf("GetMulti = %q, want {a:two, b:\"\"}", m)
		}
	}
	if a, ok := b.(cache.Adder); ok {
		if err := a.Add(ctx, k1, []byte("three"), time.Hour); !errors.Is(err, cache.ErrNotStored) {
			t.Fatalf("Add(present) = %v, want ErrNotStored", err)
		}
		if err := a.Add(ctx, k3, []byte("three"), time.Hour); err != nil {
			t.Fatalf("Add(absent) = %v", err)
		}
		if v, _ := b.Get(ctx, k3); string(v) != "three" {
			t.Fatalf("after Add, Get = %q, want three", v)
		}
	}
	if err := b.Delete(ctx, k1); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, k1); !errors.Is(err, cache.ErrMiss) {
		t.Fatalf("Get after Delete: %v, want ErrMiss", err)
	}
}

func (s *suite) testRoundTrip(t *testing.T) {
	c, _ := s.newCache(t, cache.Options{})
	noBody := JSONEntry(KeyOf("empty"), "project:a", 0)
	noBody.Body = nil
	binary := RandomEntry(KeyOf("binary"), "project:a", 3000, 1)
	oddStream := &cache.Entry{
		Key: KeyOf("odd"), Scope: "user:al ice\n", Status: 200, Stream: true,
		ContentType: "text/event-stream",
		Events:      [][]byte{[]byte(": ping\r\n\r\n"), []byte("event: x\ndata: a\ndata: b\n\n"), []byte("data: \xff\x00\n\n"), {}},
	}
	entries := []*cache.Entry{
		JSONEntry(KeyOf("json6k"), "project:a", 6<<10),
		StreamEntry(KeyOf("stream200"), "project:a", 200),
		StreamEntry(KeyOf("stream-other-scope"), "user:bob", 5),
		noBody, binary, oddStream,
	}
	for _, e := range entries {
		mustMiss(t, c, e.Key, e.Scope)
		mustPut(t, c, e, time.Hour)
	}
	for _, e := range entries {
		mustHit(t, c, e)
	}
	// The zero Created is stored as the time of Put.
	if got, _ := c.Get(ctx, oddStream.Key, oddStream.Scope); got == nil || time.Since(got.Created) > time.Minute || got.Created.Location() != time.UTC {
		t.Errorf("zero Created not stored as now (UTC): %+v", got)
	}
	st := c.Stats()
	n := int64(len(entries))
	if st.Hits != n+1 || st.Misses != n || st.Sets != n || st.Skipped != 0 || st.Errors != 0 {
		t.Errorf("Stats = %+v, want %d hits, %d misses, %d sets", st, n+1, n, n)
	}
}

func (s *suite) testOverwrite(t *testing.T) {
	c, _ := s.newCache(t, cache.Options{})
	k := KeyOf("overwrite")
	mustPut(t, c, StreamEntry(k, "project:a", 10), time.Hour)
	second := JSONEntry(k, "project:a", 100)
	mustPut(t, c, second, time.Hour)
	mustHit(t, c, second)
}

func (s *suite) testTTL(t *testing.T) {
	c, _ := s.newCache(t, cache.Options{})
	short := JSONEntry(KeyOf("short"), "project:a", 500)
	long := JSONEntry(KeyOf("long"), "project:a", 500)
	mustPut(t, c, short, time.Second)
	mustPut(t, c, long, time.Hour)
	mustHit(t, c, short)
	s.wait(time.Second)
	mustMiss(t, c, short.Key, short.Scope)
	mustHit(t, c, long)
}

// fixedGenerations gives every scope the same generations, so the stored
// key depends on the key alone and the entry's own checks are what
// separate scopes.
type fixedGenerations struct{}

func (fixedGenerations) Get(context.Context, string) (int64, int64, error) { return 7, 7, nil }
func (fixedGenerations) Bump(context.Context, string) error                { return nil }

// recorder remembers the last value Set under each key.
type recorder struct {
	cache.Backend
	mu   sync.Mutex
	sets map[string][]byte
	last string
}

func (r *recorder) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	r.mu.Lock()
	r.sets[key], r.last = bytes.Clone(val), key
	r.mu.Unlock()
	return r.Backend.Set(ctx, key, val, ttl)
}

func (s *suite) testChecks(t *testing.T) {
	rec := &recorder{Backend: s.cfg.New(t), sets: map[string][]byte{}}
	c := cache.New(rec, cache.Options{Namespace: namespace(), Generations: fixedGenerations{}})
	a := JSONEntry(KeyOf("a"), "project:one", 300)
	mustPut(t, c, a, time.Hour)
	storedA := rec.last
	// Same key, same generations: the same stored key. Only the scope
	// stored in the entry tells them apart.
	mustMiss(t, c, a.Key, "project:two")
	mustHit(t, c, a)

	b := JSONEntry(KeyOf("b"), "project:one", 300)
	mustPut(t, c, b, time.Hour)
	storedB := rec.last
	// Put a's bytes where b's belong (a hash misuse or collision): the
	// stored key check makes it a miss.
	if err := rec.Backend.Set(ctx, storedB, rec.sets[storedA], time.Hour); err != nil {
		t.Fatal(err)
	}
	mustMiss(t, c, b.Key, b.Scope)
	mustHit(t, c, a)

	// Keys that are not cache.Key results are refused, not looked up.
	for _, k := range []string{"", "abc", a.Key[:63] + "G", a.Key + "0"} {
		if _, err := c.Get(ctx, k, "project:one"); err == nil || errors.Is(err, cache.ErrMiss) {
			t.Errorf("Get(%q) = %v, want an invalid-key error", k, err)
		}
	}
	if _, err := c.Get(ctx, a.Key, ""); err == nil || errors.Is(err, cache.ErrMiss) {
		t.Errorf("Get with empty scope = %v, want an error", err)
	}
	bad := *a
	bad.Key = "not-a-key"
	if err := c.Put(ctx, &bad, time.Hour); err == nil {
		t.Error("Put of an invalid key succeeded")
	}
}

func (s *suite) testFlushScope(t *testing.T) {
	c, _ := s.newCache(t, cache.Options{})
	a1 := JSONEntry(KeyOf("a1"), "project:a", 200)
	a2 := StreamEntry(KeyOf("a2"), "project:a", 20)
	b1 := JSONEntry(KeyOf("b1"), "project:b", 200)
	u1 := JSONEntry(KeyOf("a1"), "user:a", 200) // same key, another scope
	for _, e := range []*cache.Entry{a1, a2, b1, u1} {
		mustPut(t, c, e, time.Hour)
	}
	if err := c.Flush(ctx, "project:a"); err != nil {
		t.Fatal(err)
	}
	mustMiss(t, c, a1.Key, a1.Scope)
	mustMiss(t, c, a2.Key, a2.Scope)
	mustHit(t, c, b1)
	mustHit(t, c, u1)
	// The scope works again after its flush.
	mustPut(t, c, a1, time.Hour)
	mustHit(t, c, a1)
	mustMiss(t, c, a2.Key, a2.Scope)
}

func (s *suite) testFlushAll(t *testing.T) {
	c, _ := s.newCache(t, cache.Options{})
	es := []*cache.Entry{
		JSONEntry(KeyOf("x"), "project:a", 200),
		JSONEntry(KeyOf("y"), "project:b", 200),
		StreamEntry(KeyOf("z"), "stage", 10),
	}
	for _, e := range es {
		mustPut(t, c, e, time.Hour)
	}
	if err := c.Flush(ctx, ""); err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		mustMiss(t, c, e.Key, e.Scope)
	}
	mustPut(t, c, es[0], time.Hour)
	mustHit(t, c, es[0])
}

// testFlushOtherInstance: a flush through one Cache reaches another Cache
// on the same backend and namespace (another process, Lambda instance)
// within GenerationTTL.
func (s *suite) testFlushOtherInstance(t *testing.T) {
	b := s.cfg.New(t)
	ns := namespace()
	const ttl = 50 * time.Millisecond
	admin := cache.New(b, cache.Options{Namespace: ns, GenerationTTL: ttl})
	server := cache.New(b, cache.Options{Namespace: ns, GenerationTTL: ttl})
	other := cache.New(b, cache.Options{Namespace: namespace(), GenerationTTL: ttl})
	e := JSONEntry(KeyOf("shared"), "project:a", 200)
	f := JSONEntry(KeyOf("kept"), "project:b", 200)
	mustPut(t, server, e, time.Hour)
	mustPut(t, server, f, time.Hour)
	mustPut(t, other, e, time.Hour)
	mustHit(t, admin, e)

	if err := admin.Flush(ctx, "project:a"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * ttl)
	mustMiss(t, server, e.Key, e.Scope)
	mustHit(t, server, f)
	mustHit(t, other, e) // another namespace is another stage: untouched

	if err := admin.Flush(ctx, ""); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * ttl)
	mustMiss(t, server, f.Key, f.Scope)
	mustHit(t, other, e)
}

func (s *suite) testLarge(t *testing.T) {
	c, _ := s.newCache(t, cache.Options{})
	size := min(s.cfg.MaxValue*3/4, 3584<<10)
	big := RandomEntry(KeyOf("big"), "project:a", size, 2)
	mustPut(t, c, big, time.Hour)
	mustHit(t, c, big)

	// A big stream: 2,000 events of ~1.2 KiB (each led by an SSE comment).
	st := StreamEntry(KeyOf("bigstream"), "project:a", 2000)
	comment := ": " + string(bytes.Repeat([]byte("x"), 900)) + "\n"
	for i, ev := range st.Events {
		st.Events[i] = append([]byte(comment), ev...)
	}
	if enc := encodedSize(st); enc <= s.cfg.MaxValue {
		mustPut(t, c, st, time.Hour)
		mustHit(t, c, st)
	}

	// Too large: skipped, counted, and the key no longer answers with the
	// older value it held.
	small := JSONEntry(KeyOf("huge"), "project:a", 100)
	mustPut(t, c, small, time.Hour)
	mustHit(t, c, small)
	huge := RandomEntry(KeyOf("huge"), "project:a", s.cfg.MaxValue+1024, 3)
	before := c.Stats()
	if err := c.Put(ctx, huge, time.Hour); err != nil {
		t.Fatalf("Put of an oversized entry = %v, want nil (skipped)", err)
	}
	after := c.Stats()
	if after.Skipped != before.Skipped+1 || after.Sets != before.Sets || after.Errors != before.Errors {
		t.Errorf("oversized Put: stats %+v -> %+v, want one more Skipped only", before, after)
	}
	mustMiss(t, c, huge.Key, huge.Scope)
}

// encodedSize is an upper bound of an entry's encoded size.
func encodedSize(e *cache.Entry) int {
	n := 256 + len(e.Body)
	for _, ev := range e.Events {
		n += len(ev) + 3
	}
	return n
}

func (s *suite) testBudget(t *testing.T) {
	c, b := s.newCache(t, cache.Options{})
	sz, ok := b.(cache.Sizer)
	if !ok {
		t.Fatal("Config.Budget is set but the backend is not a cache.Sizer")
	}
	each := int(s.cfg.Budget / 10)
	var es []*cache.Entry
	for i := range 30 {
		e := RandomEntry(KeyOf(fmt.Sprint("budget", i)), "project:a", each, uint64(i))
		es = append(es, e)
		mustPut(t, c, e, time.Hour)
		if _, bytes := sz.Size(); bytes > s.cfg.Budget {
			t.Fatalf("after %d puts the backend holds %d bytes, over its budget of %d", i+1, bytes, s.cfg.Budget)
		}
	}
	mustHit(t, c, es[len(es)-1])
	mustMiss(t, c, es[0].Key, es[0].Scope)
	st := c.Stats()
	if st.Entries < 5 || st.Entries > 12 || st.Bytes > s.cfg.Budget || st.Bytes < s.cfg.Budget/2 {
		t.Errorf("Stats = %+v with a budget of %d bytes in entries of %d", st, s.cfg.Budget, each)
	}
	// Reading an old entry makes it recent: it survives the next eviction.
	mustHit(t, c, es[len(es)-8])
	for i := range 3 {
		mustPut(t, c, RandomEntry(KeyOf(fmt.Sprint("more", i)), "project:a", each, uint64(100+i)), time.Hour)
	}
	mustHit(t, c, es[len(es)-8])
	mustMiss(t, c, es[len(es)-7].Key, es[len(es)-7].Scope)
}

// testConcurrent: 100 goroutines get and put 20 keys (and one flushes now
// and then); every hit is exactly the entry written for its key.
func (s *suite) testConcurrent(t *testing.T) {
	c, _ := s.newCache(t, cache.Options{})
	const workers, ops, keys = 100, 40, 20
	want := make([]*cache.Entry, keys)
	for i := range want {
		scope := fmt.Sprint("project:", i%3)
		if i%2 == 0 {
			want[i] = StreamEntry(KeyOf(fmt.Sprint("conc", i)), scope, 20+i)
		} else {
			want[i] = JSONEntry(KeyOf(fmt.Sprint("conc", i)), scope, 500+100*i)
		}
	}
	var hits atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for range ops {
				e := want[r.IntN(keys)]
				switch op := r.IntN(100); {
				case w == 0 && op < 10:
					if err := c.Flush(ctx, e.Scope); err != nil {
						errs <- err
						return
					}
				case op < 30:
					if err := c.Put(ctx, e, time.Hour); err != nil {
						errs <- err
						return
					}
				default:
					got, err := c.Get(ctx, e.Key, e.Scope)
					if errors.Is(err, cache.ErrMiss) {
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					if d := EntriesEqual(got, e); d != "" {
						errs <- errors.New(d)
						return
					}
					hits.Add(1)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := c.Stats()
	if hits.Load() == 0 || st.Hits != hits.Load() || st.Errors != 0 {
		t.Errorf("%d hits seen, Stats = %+v", hits.Load(), st)
	}
}

// corruptor changes what Get returns when armed.
type corruptor struct {
	cache.Backend
	mu      sync.Mutex
	corrupt func([]byte) []byte
}

func (c *corruptor) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := c.Backend.Get(ctx, key)
	c.mu.Lock()
	f := c.corrupt
	c.mu.Unlock()
	if err == nil && f != nil {
		v = f(v)
	}
	return v, err
}

func (c *corruptor) arm(f func([]byte) []byte) {
	c.mu.Lock()
	c.corrupt = f
	c.mu.Unlock()
}

func (s *suite) testCorrupt(t *testing.T) {
	flip := func(i func(n int) int) func([]byte) []byte {
		return func(v []byte) []byte {
			if len(v) > 0 {
				v[i(len(v))] ^= 0x10
			}
			return v
		}
	}
	cases := []struct {
		name string
		f    func([]byte) []byte
	}{
		{"empty", func([]byte) []byte { return []byte{} }},
		{"nil", func([]byte) []byte { return nil }},
		{"truncated by one", func(v []byte) []byte { return v[:len(v)-1] }},
		{"truncated by half", func(v []byte) []byte { return v[:len(v)/2] }},
		{"header only", func(v []byte) []byte { return v[:5] }},
		{"extra byte", func(v []byte) []byte { return append(v, 0) }},
		{"first byte flipped", flip(func(int) int { return 0 })},
		{"version flipped", flip(func(int) int { return 3 })},
		{"middle byte flipped", flip(func(n int) int { return n / 2 })},
		{"checksum flipped", flip(func(n int) int { return n - 1 })},
		{"garbage", func([]byte) []byte { return bytes.Repeat([]byte{0xff}, 300) }},
		{"json", func([]byte) []byte { return []byte(`{"Key":"x"}`) }},
	}
	for _, tc := range cases {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/stream=%v", tc.name, stream), func(t *testing.T) {
				cb := &corruptor{Backend: s.cfg.New(t)}
				c := cache.New(cb, cache.Options{Namespace: namespace(), Generations: fixedGenerations{}})
				e := JSONEntry(KeyOf("c"), "project:a", 2000)
				if stream {
					e = StreamEntry(KeyOf("c"), "project:a", 50)
				}
				mustPut(t, c, e, time.Hour)
				mustHit(t, c, e)
				cb.arm(tc.f)
				mustMiss(t, c, e.Key, e.Scope)
				if st := c.Stats(); st.Errors != 1 || st.Misses != 1 {
					t.Errorf("Stats = %+v, want the corrupt read counted as one miss and one error", st)
				}
				// The corrupt value was dropped.
				cb.arm(nil)
				mustMiss(t, c, e.Key, e.Scope)
			})
		}
	}
}
