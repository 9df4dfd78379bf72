package memcached

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/wrapi-dev/wrapi/pkg/cache"
	"github.com/wrapi-dev/wrapi/pkg/cache/cachetest"
)

var ctx = context.Background()

func newClient(tb testing.TB, cfg Config) *Client {
	tb.Helper()
	c, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

func TestConformance(t *testing.T) {
	addr := serverAddr(t)
	c := newClient(t, Config{Servers: []string{addr}})
	cachetest.Run(t, cachetest.Config{
		New:        func(*testing.T) cache.Backend { return c },
		SleepSlack: 1500 * time.Millisecond, // memcached's clock ticks once a second
		MaxValue:   DefaultMaxValue,
	})
}

// uniqueKey returns a key no other run uses.
func uniqueKey(name string) string {
	var b [6]byte
	rand.Read(b[:])
	return "mt-" + hex.EncodeToString(b[:]) + "/" + name
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestChunking(t *testing.T) {
	addr := serverAddr(t)
	c := newClient(t, Config{Servers: []string{addr}})
	raw := memcache.New(addr)
	key := uniqueKey("v")
	single := DefaultItemLimit - itemMargin - len(key)
	tests := []struct {
		size   int
		pieces int // 0: stored as one item
	}{
		{0, 0},
		{1, 0},
		{100 << 10, 0},
		{single, 0},
		{single + 1, 2},
		{2 * DefaultChunkSize, 2},
		{2*DefaultChunkSize + 1, 3},
		{3584 << 10, 4},
		{DefaultMaxValue, 19},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.size), func(t *testing.T) {
			val := randomBytes(tc.size)
			if err := c.Set(ctx, key, bytes.Clone(val), time.Hour); err != nil {
				t.Fatalf("Set: %v", err)
			}
			got, err := c.Get(ctx, key)
			if err != nil || !bytes.Equal(got, val) {
				t.Fatalf("Get: %d bytes, %v; want the %d bytes set", len(got), err, len(val))
			}
			it, err := raw.Get(key)
			if err != nil {
				t.Fatal(err)
			}
			if tc.pieces == 0 {
				if it.Flags != flagValue || len(it.Value) != tc.size {
					t.Fatalf("stored as flags %d, %d bytes; want one plain item", it.Flags, len(it.Value))
				}
				return
			}
			m, ok := parseManifest(it.Value)
			if it.Flags != flagManifest || !ok || m.pieces != tc.pieces || m.length != tc.size {
				t.Fatalf("manifest %+v (flags %d), want %d pieces of %d bytes", m, it.Flags, tc.pieces, tc.size)
			}
			for i := range m.pieces {
				p, err := raw.Get(pieceKey(key, m.nonce, i))
				if err != nil || len(p.Value) > DefaultChunkSize {
					t.Fatalf("piece %d: %v", i, err)
				}
			}
		})
	}
	t.Run("TooLarge", func(t *testing.T) {
		if err := c.Set(ctx, key, []byte("small"), time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := c.Set(ctx, key, make([]byte, DefaultMaxValue+1), time.Hour); !errors.Is(err, cache.ErrTooLarge) {
			t.Fatalf("Set over MaxValue = %v, want ErrTooLarge", err)
		}
		if _, err := c.Get(ctx, key); !errors.Is(err, cache.ErrMiss) {
			t.Fatalf("the key kept its older value: %v", err)
		}
	})
}

// TestDamagedChunks: whatever happens to a chunked value's items, Get
// returns the value exactly or a miss.
func TestDamagedChunks(t *testing.T) {
	addr := serverAddr(t)
	c := newClient(t, Config{Servers: []string{addr}})
	raw := memcache.New(addr)
	tests := []struct {
		name   string
		damage func(t *testing.T, key string, m manifest)
	}{
		{"missing first piece", func(t *testing.T, key string, m manifest) {
			must(t, raw.Delete(pieceKey(key, m.nonce, 0)))
		}},
		{"missing last piece", func(t *testing.T, key string, m manifest) {
			must(t, raw.Delete(pieceKey(key, m.nonce, m.pieces-1)))
		}},
		{"piece flipped", func(t *testing.T, key string, m manifest) {
			k := pieceKey(key, m.nonce, 1)
			it, err := raw.Get(k)
			must(t, err)
			it.Value[1000] ^= 1
			must(t, raw.Set(it))
		}},
		{"piece truncated", func(t *testing.T, key string, m manifest) {
			k := pieceKey(key, m.nonce, 1)
			it, err := raw.Get(k)
			must(t, err)
			it.Value = it.Value[:len(it.Value)-1]
			must(t, raw.Set(it))
		}},
		{"pieces swapped", func(t *testing.T, key string, m manifest) {
			a, err := raw.Get(pieceKey(key, m.nonce, 0))
			must(t, err)
			b, err := raw.Get(pieceKey(key, m.nonce, 1))
			must(t, err)
			a.Key, b.Key = b.Key, a.Key
			must(t, raw.Set(a))
			must(t, raw.Set(b))
		}},
		{"manifest garbage", func(t *testing.T, key string, m manifest) {
			must(t, raw.Set(&memcache.Item{Key: key, Value: []byte("garbage"), Flags: flagManifest}))
		}},
		{"manifest claims more pieces", func(t *testing.T, key string, m manifest) {
			m.pieces++
			must(t, raw.Set(&memcache.Item{Key: key, Value: m.encode(), Flags: flagManifest}))
		}},
		{"manifest claims a longer value", func(t *testing.T, key string, m manifest) {
			m.length++
			must(t, raw.Set(&memcache.Item{Key: key, Value: m.encode(), Flags: flagManifest}))
		}},
		{"manifest wrong checksum", func(t *testing.T, key string, m manifest) {
			m.sum++
			must(t, raw.Set(&memcache.Item{Key: key, Value: m.encode(), Flags: flagManifest}))
		}},
		{"unknown flags", func(t *testing.T, key string, m manifest) {
			must(t, raw.Set(&memcache.Item{Key: key, Value: m.encode(), Flags: 7}))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := uniqueKey("d")
			val := randomBytes(2*DefaultChunkSize + 5000)
			must(t, c.Set(ctx, key, val, time.Hour))
			it, err := raw.Get(key)
			must(t, err)
			m, ok := parseManifest(it.Value)
			if !ok {
				t.Fatal("no manifest")
			}
			tc.damage(t, key, m)
			if got, err := c.Get(ctx, key); !errors.Is(err, cache.ErrMiss) {
				t.Fatalf("Get after damage = %d bytes, %v; want ErrMiss", len(got), err)
			}
			// GetMulti skips it the same way.
			if got, err := c.GetMulti(ctx, []string{key}); err != nil || len(got) != 0 {
				t.Fatalf("GetMulti after damage = %d values, %v; want none", len(got), err)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentChunkedWriters: writers of different large values under
// one key never make a reader see a mixture.
func TestConcurrentChunkedWriters(t *testing.T) {
	addr := serverAddr(t)
	c := newClient(t, Config{Servers: []string{addr}})
	key := uniqueKey("w")
	vals := [][]byte{randomBytes(3 * DefaultChunkSize), randomBytes(3 * DefaultChunkSize)}
	var wg sync.WaitGroup
	var bad sync.Map
	for w := range 4 {
		wg.Go(func() {
			for i := range 10 {
				if w < 2 {
					if err := c.Set(ctx, key, vals[w], time.Hour); err != nil {
						bad.Store(fmt.Sprint("set ", w, i), err)
					}
					continue
				}
				got, err := c.Get(ctx, key)
				if errors.Is(err, cache.ErrMiss) {
					continue
				}
				if err != nil {
					bad.Store(fmt.Sprint("get ", w, i), err)
				} else if !bytes.Equal(got, vals[0]) && !bytes.Equal(got, vals[1]) {
					bad.Store(fmt.Sprint("get ", w, i), "a mixture of two writes")
				}
			}
		})
	}
	wg.Wait()
	bad.Range(func(k, v any) bool { t.Errorf("%s: %v", k, v); return true })
}

// deadAddr returns a 127.0.0.1 address nothing listens on.
func deadAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// silentAddr returns a 127.0.0.1 address that accepts connections and never
// answers, like a server behind a dropped route.
func silentAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return l.Addr().String()
}

// TestUnreachableServer: errors come back within the timeout, never a hang
// and never a miss; after one failure the client backs off without
// touching the network, then tries again.
func TestUnreachableServer(t *testing.T) {
	const timeout = 100 * time.Millisecond
	for _, tc := range []struct {
		name string
		addr func(*testing.T) string
	}{
		{"refused", deadAddr},
		{"silent", silentAddr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, Config{Servers: []string{tc.addr(t)}, Timeout: timeout, Backoff: 300 * time.Millisecond})
			start := time.Now()
			_, err := c.Get(ctx, "k")
			if err == nil || errors.Is(err, cache.ErrMiss) || errors.Is(err, ErrUnavailable) {
				t.Fatalf("first Get = %v, want a network error", err)
			}
			if d := time.Since(start); d > 5*timeout {
				t.Fatalf("first Get took %v (timeout %v)", d, timeout)
			}
			start = time.Now()
			for _, op := range []func() error{
				func() error { _, err := c.Get(ctx, "k"); return err },
				func() error { _, err := c.GetMulti(ctx, []string{"a", "b"}); return err },
				func() error { return c.Set(ctx, "k", []byte("v"), time.Minute) },
				func() error { return c.Delete(ctx, "k") },
			} {
				if err := op(); !errors.Is(err, ErrUnavailable) {
					t.Fatalf("during back-off: %v, want ErrUnavailable", err)
				}
			}
			if d := time.Since(start); d > 20*time.Millisecond {
				t.Fatalf("back-off calls took %v", d)
			}
			time.Sleep(350 * time.Millisecond)
			if _, err := c.Get(ctx, "k"); err == nil || errors.Is(err, ErrUnavailable) {
				t.Fatalf("after back-off: %v, want a new attempt", err)
			}
		})
	}
}

// TestCacheOnDeadServer: the typed cache reports an error (which the proxy
// treats as a miss) quickly, and counts it.
func TestCacheOnDeadServer(t *testing.T) {
	c := newClient(t, Config{Servers: []string{silentAddr(t)}, Timeout: 100 * time.Millisecond})
	cc := cache.New(c, cache.Options{Namespace: "dead"})
	e := cachetest.JSONEntry(cachetest.KeyOf("x"), "project:a", 100)
	start := time.Now()
	if _, err := cc.Get(ctx, e.Key, e.Scope); err == nil || errors.Is(err, cache.ErrMiss) {
		t.Fatalf("Get = %v, want an error", err)
	}
	if err := cc.Put(ctx, e, time.Minute); err == nil {
		t.Fatal("Put succeeded on a dead server")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("took %v", d)
	}
	if st := cc.Stats(); st.Errors != 2 || st.Hits+st.Misses+st.Sets != 0 {
		t.Fatalf("Stats = %+v", st)
	}
}

func TestCanceledContext(t *testing.T) {
	c := newClient(t, Config{Servers: []string{deadAddr(t)}})
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Get(cctx, "k"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get = %v, want context.Canceled", err)
	}
}

func TestExpiration(t *testing.T) {
	month := 30 * 24 * time.Hour
	now := time.Now().Unix()
	tests := []struct {
		ttl       time.Duration
		want      int32
		wantAbout bool // absolute: about now + ttl
	}{
		{0, 0, false},
		{-time.Second, 0, false},
		{time.Millisecond, 1, false},
		{time.Second, 1, false},
		{1500 * time.Millisecond, 2, false},
		{time.Hour, 3600, false},
		{month, int32(month / time.Second), false},
		{month + time.Second, int32(now + int64((month+time.Second)/time.Second)), true},
	}
	for _, tc := range tests {
		got := expiration(tc.ttl)
		if tc.wantAbout {
			if d := got - tc.want; d < 0 || d > 5 {
				t.Errorf("expiration(%v) = %d, want about %d", tc.ttl, got, tc.want)
			}
		} else if got != tc.want {
			t.Errorf("expiration(%v) = %d, want %d", tc.ttl, got, tc.want)
		}
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no servers", Config{}},
		{"chunk over the item limit", Config{Servers: []string{"127.0.0.1:1"}, ItemLimit: 1 << 20, ChunkSize: 1 << 20}},
		{"tiny item limit", Config{Servers: []string{"127.0.0.1:1"}, ItemLimit: 1000}},
		{"bad address", Config{Servers: []string{"no-port"}}},
	}
	for _, tc := range tests {
		if _, err := New(tc.cfg); err == nil {
			t.Errorf("%s: New succeeded", tc.name)
		}
	}
	cl, err := New(Config{Servers: []string{"127.0.0.1:11211"}})
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if cl.chunk != DefaultChunkSize || cl.maxValue != DefaultMaxValue || cl.backoff != DefaultBackoff || cl.mc.Timeout != DefaultTimeout {
		t.Errorf("defaults not applied: %+v", cl)
	}
}

func TestLongKeyRefused(t *testing.T) {
	cl := newClient(t, Config{Servers: []string{deadAddr(t)}})
	if err := cl.Set(ctx, string(bytes.Repeat([]byte("k"), maxKeyLen+1)), nil, 0); err == nil || errors.Is(err, ErrUnavailable) {
		t.Fatalf("Set with a long key = %v", err)
	}
}

func BenchmarkCache(b *testing.B) {
	cachetest.Bench(b, newClient(b, Config{Servers: []string{serverAddr(b)}}))
}
