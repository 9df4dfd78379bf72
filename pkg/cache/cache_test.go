package cache_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/cache"
	"github.com/wrapi-dev/wrapi/pkg/cache/cachetest"
	"github.com/wrapi-dev/wrapi/pkg/cache/lru"
)

var ctx = context.Background()

// countingGens counts the reads of a Generations source and can be made
// slow or failing.
type countingGens struct {
	cache.Generations
	gets  atomic.Int64
	delay time.Duration
	fail  atomic.Bool
}

func (g *countingGens) Get(ctx context.Context, scope string) (int64, int64, error) {
	g.gets.Add(1)
	time.Sleep(g.delay)
	if g.fail.Load() {
		return 0, 0, errors.New("generations down")
	}
	return g.Generations.Get(ctx, scope)
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestGenerationsAreMemoized(t *testing.T) {
	b := lru.New(lru.Config{})
	g := &countingGens{Generations: cache.NewStoredGenerations(b, "ns")}
	clk := &clock{now: time.Now()}
	c := cache.New(b, cache.Options{Namespace: "ns", Generations: g, Now: clk.Now, GenerationTTL: time.Second})
	e := cachetest.JSONEntry(cachetest.KeyOf("m"), "project:a", 100)
	other := cachetest.JSONEntry(cachetest.KeyOf("o"), "project:b", 100)

	steps := []struct {
		name     string
		do       func()
		wantGets int64
	}{
		{"first put reads", func() { _ = c.Put(ctx, e, time.Hour) }, 1},
		{"reads within the TTL are free", func() {
			for range 10 {
				_, _ = c.Get(ctx, e.Key, e.Scope)
			}
		}, 1},
		{"expiry reads again", func() { clk.Advance(time.Second); _, _ = c.Get(ctx, e.Key, e.Scope) }, 2},
		{"another scope reads its own", func() { _, _ = c.Get(ctx, other.Key, other.Scope) }, 3},
		{"a flush of the scope forgets it", func() { _ = c.Flush(ctx, e.Scope); _, _ = c.Get(ctx, e.Key, e.Scope) }, 4},
		{"other scopes are kept", func() { _, _ = c.Get(ctx, other.Key, other.Scope) }, 4},
		{"a global flush forgets all", func() {
			_ = c.Flush(ctx, "")
			_, _ = c.Get(ctx, e.Key, e.Scope)
			_, _ = c.Get(ctx, other.Key, other.Scope)
		}, 6},
	}
	for _, s := range steps {
		s.do()
		if got := g.gets.Load(); got != s.wantGets {
			t.Fatalf("%s: %d generation reads, want %d", s.name, got, s.wantGets)
		}
	}
}

func TestGenerationReadsAreShared(t *testing.T) {
	b := lru.New(lru.Config{})
	g := &countingGens{Generations: cache.NewStoredGenerations(b, "ns"), delay: 50 * time.Millisecond}
	c := cache.New(b, cache.Options{Namespace: "ns", Generations: g})
	e := cachetest.JSONEntry(cachetest.KeyOf("s"), "project:a", 100)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := c.Get(ctx, e.Key, e.Scope); !errors.Is(err, cache.ErrMiss) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := g.gets.Load(); n != 1 {
		t.Fatalf("50 concurrent first reads made %d generation reads, want 1", n)
	}
}

func TestNoMemo(t *testing.T) {
	b := lru.New(lru.Config{})
	g := &countingGens{Generations: cache.NewStoredGenerations(b, "ns")}
	c := cache.New(b, cache.Options{Namespace: "ns", Generations: g, GenerationTTL: -1})
	e := cachetest.JSONEntry(cachetest.KeyOf("n"), "project:a", 100)
	for range 5 {
		_, _ = c.Get(ctx, e.Key, e.Scope)
	}
	if n := g.gets.Load(); n != 5 {
		t.Fatalf("%d generation reads, want 5", n)
	}
}

// TestGenerationFailure: an unavailable generation source is an error (not
// a miss), counted, and not remembered.
func TestGenerationFailure(t *testing.T) {
	b := lru.New(lru.Config{})
	g := &countingGens{Generations: cache.NewStoredGenerations(b, "ns")}
	g.fail.Store(true)
	c := cache.New(b, cache.Options{Namespace: "ns", Generations: g})
	e := cachetest.JSONEntry(cachetest.KeyOf("f"), "project:a", 100)
	if _, err := c.Get(ctx, e.Key, e.Scope); err == nil || errors.Is(err, cache.ErrMiss) {
		t.Fatalf("Get = %v, want an error", err)
	}
	if err := c.Put(ctx, e, time.Hour); err == nil {
		t.Fatal("Put succeeded without generations")
	}
	g.fail.Store(false)
	if err := c.Put(ctx, e, time.Hour); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	if _, err := c.Get(ctx, e.Key, e.Scope); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	if st := c.Stats(); st.Errors != 2 || st.Hits != 1 || st.Sets != 1 {
		t.Fatalf("Stats = %+v", st)
	}
}

// plain hides a backend's optional interfaces.
type plain struct{ cache.Backend }

// TestStoredGenerations: with or without GetMulti and Add, instances on one
// backend agree, a bump changes the value, and a lost or damaged
// generation comes back as a new value (a flush), never as an old one.
func TestStoredGenerations(t *testing.T) {
	for _, tc := range []struct {
		name string
		wrap func(cache.Backend) cache.Backend
	}{
		{"full", func(b cache.Backend) cache.Backend { return b }},
		{"plain", func(b cache.Backend) cache.Backend { return plain{b} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := lru.New(lru.Config{})
			b := tc.wrap(raw)
			g1 := cache.NewStoredGenerations(b, "ns")
			g2 := cache.NewStoredGenerations(b, "ns")
			gl, sc, err := g1.Get(ctx, "project:a")
			if err != nil || gl <= 0 || sc <= 0 || gl == sc {
				t.Fatalf("Get = %d, %d, %v", gl, sc, err)
			}
			if gl2, sc2, _ := g2.Get(ctx, "project:a"); gl2 != gl || sc2 != sc {
				t.Fatalf("instances disagree: %d,%d vs %d,%d", gl, sc, gl2, sc2)
			}
			if _, scB, _ := g2.Get(ctx, "project:b"); scB == sc {
				t.Fatal("two scopes share a generation")
			}
			if err := g2.Bump(ctx, "project:a"); err != nil {
				t.Fatal(err)
			}
			gl3, sc3, _ := g1.Get(ctx, "project:a")
			if gl3 != gl || sc3 == sc {
				t.Fatalf("after a scope bump: %d,%d (was %d,%d)", gl3, sc3, gl, sc)
			}
			if err := g2.Bump(ctx, ""); err != nil {
				t.Fatal(err)
			}
			gl4, sc4, _ := g1.Get(ctx, "project:a")
			if gl4 == gl3 || sc4 != sc3 {
				t.Fatalf("after a global bump: %d,%d (was %d,%d)", gl4, sc4, gl3, sc3)
			}
			// Lose every generation key (eviction), then damage them.
			for _, damage := range []func(k string){
				func(k string) { _ = raw.Delete(ctx, k) },
				func(k string) { _ = raw.Set(ctx, k, []byte("not a number"), 0) },
				func(k string) { _ = raw.Set(ctx, k, []byte("-5"), 0) },
			} {
				for _, k := range []string{"ns/g/*", genKey(t, raw)} {
					damage(k)
				}
				gl5, sc5, err := g1.Get(ctx, "project:a")
				if err != nil || gl5 <= 0 || sc5 <= 0 || gl5 == gl4 || sc5 == sc4 {
					t.Fatalf("after damage: %d,%d, %v (was %d,%d)", gl5, sc5, err, gl4, sc4)
				}
				gl4, sc4 = gl5, sc5
			}
		})
	}
}

// genKey is where StoredGenerations keeps project:a's generation (the
// layout is part of the stored format: changing it flushes every cache).
func genKey(t *testing.T, _ *lru.LRU) string {
	t.Helper()
	h := sha256.Sum256([]byte("project:a"))
	return "ns/g/" + hex.EncodeToString(h[:16])
}

func TestNamespaces(t *testing.T) {
	b := lru.New(lru.Config{})
	e := cachetest.JSONEntry(cachetest.KeyOf("ns"), "project:a", 100)
	dev := cache.New(b, cache.Options{Namespace: "dev"})
	prod := cache.New(b, cache.Options{Namespace: "prod"})
	weird := cache.New(b, cache.Options{Namespace: "a stage with spaces/and slashes"})
	if err := dev.Put(ctx, e, time.Hour); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*cache.Cache{"prod": prod, "weird": weird} {
		if _, err := c.Get(ctx, e.Key, e.Scope); !errors.Is(err, cache.ErrMiss) {
			t.Errorf("%s sees dev's entry: %v", name, err)
		}
	}
	if err := weird.Put(ctx, e, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := weird.Get(ctx, e.Key, e.Scope); err != nil {
		t.Fatalf("hashed namespace: %v", err)
	}
	if err := prod.Flush(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := dev.Get(ctx, e.Key, e.Scope); err != nil {
		t.Fatalf("prod's flush reached dev: %v", err)
	}
}

func TestPutDoesNotModifyEntry(t *testing.T) {
	c := cache.New(lru.New(lru.Config{}), cache.Options{})
	e := cachetest.StreamEntry(cachetest.KeyOf("p"), "project:a", 10)
	e.Created = time.Time{}
	if err := c.Put(ctx, e, time.Hour); err != nil {
		t.Fatal(err)
	}
	if !e.Created.IsZero() {
		t.Fatal("Put set Created on the caller's entry")
	}
	got, err := c.Get(ctx, e.Key, e.Scope)
	if err != nil {
		t.Fatal(err)
	}
	got.Events[0][0] = 'X' // the caller owns what Get returns
	again, _ := c.Get(ctx, e.Key, e.Scope)
	if again.Events[0][0] == 'X' {
		t.Fatal("modifying a returned entry changed the cached one")
	}
}
