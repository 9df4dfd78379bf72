package lru

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/cache"
	"github.com/wrapi-dev/wrapi/pkg/cache/cachetest"
)

// clock is a settable clock shared by the suite's backends (subtests run
// one after the other).
type clock struct{ ns atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
func newClock() *clock                   { c := &clock{}; c.ns.Store(time.Now().UnixNano()); return c }

func TestConformance(t *testing.T) {
	clk := newClock()
	const budget = 16 << 20
	cachetest.Run(t, cachetest.Config{
		New: func(t *testing.T) cache.Backend {
			return New(Config{MaxBytes: budget, MaxEntryFraction: 0.25, Now: clk.Now})
		},
		Advance:  clk.Advance,
		MaxValue: budget/4 - 512, // minus the key and item overhead
		Budget:   budget,
	})
}

var ctx = context.Background()

func TestDefaults(t *testing.T) {
	l := New(Config{})
	if l.max != DefaultMaxBytes || l.maxEntry != DefaultMaxBytes/16 {
		t.Fatalf("defaults: max %d, maxEntry %d", l.max, l.maxEntry)
	}
	if got := l.MaxValue(); got != 16<<20-itemOverhead {
		t.Fatalf("MaxValue = %d", got)
	}
}

func TestEvictionOrderAndAccounting(t *testing.T) {
	// Budget for exactly three items of 100-byte values and 2-byte keys.
	per := int64(2 + 100 + itemOverhead)
	l := New(Config{MaxBytes: 3 * per, MaxEntryFraction: 1})
	val := make([]byte, 100)
	for _, k := range []string{"k1", "k2", "k3"} {
		if err := l.Set(ctx, k, val, 0); err != nil {
			t.Fatal(err)
		}
	}
	if n, b := l.Size(); n != 3 || b != 3*per {
		t.Fatalf("Size = %d, %d; want 3, %d", n, b, 3*per)
	}
	if _, err := l.Get(ctx, "k1"); err != nil { // k1 becomes the most recent
		t.Fatal(err)
	}
	if err := l.Set(ctx, "k4", val, 0); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]bool{"k1": true, "k2": false, "k3": true, "k4": true} {
		_, err := l.Get(ctx, k)
		if got := err == nil; got != want {
			t.Errorf("%s present = %v, want %v", k, got, want)
		}
	}
	// Replacing a value re-accounts its size.
	if err := l.Set(ctx, "k4", make([]byte, 10), 0); err != nil {
		t.Fatal(err)
	}
	if n, b := l.Size(); n != 3 || b != 2*per+2+10+itemOverhead {
		t.Fatalf("after replace Size = %d, %d", n, b)
	}
	if err := l.Delete(ctx, "k4"); err != nil {
		t.Fatal(err)
	}
	if n, b := l.Size(); n != 2 || b != 2*per {
		t.Fatalf("after delete Size = %d, %d", n, b)
	}
}

func TestTooLarge(t *testing.T) {
	l := New(Config{MaxBytes: 10000, MaxEntryFraction: 0.1}) // 1000 bytes per item
	tests := []struct {
		size int
		want error
	}{
		{1000 - itemOverhead - 1, nil},
		{1000 - itemOverhead, cache.ErrTooLarge}, // plus the 1-byte key
		{5000, cache.ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.size), func(t *testing.T) {
			if err := l.Set(ctx, "k", []byte("old"), 0); err != nil {
				t.Fatal(err)
			}
			err := l.Set(ctx, "k", make([]byte, tc.size), 0)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Set(%d bytes) = %v, want %v", tc.size, err, tc.want)
			}
			v, gerr := l.Get(ctx, "k")
			switch {
			case tc.want == nil && (gerr != nil || len(v) != tc.size):
				t.Fatalf("stored value: %d bytes, %v", len(v), gerr)
			case tc.want != nil && !errors.Is(gerr, cache.ErrMiss):
				t.Fatalf("a refused value left the older one readable: %q, %v", v, gerr)
			}
		})
	}
}

func TestTTL(t *testing.T) {
	clk := newClock()
	l := New(Config{Now: clk.Now})
	if err := l.Set(ctx, "short", []byte("s"), time.Second); err != nil {
		t.Fatal(err)
	}
	if err := l.Set(ctx, "forever", []byte("f"), 0); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second - 1)
	if _, err := l.Get(ctx, "short"); err != nil {
		t.Fatalf("Get just before expiry: %v", err)
	}
	// Add over an expired value succeeds.
	if err := l.Add(ctx, "short", []byte("x"), time.Second); !errors.Is(err, cache.ErrNotStored) {
		t.Fatalf("Add over a live value = %v, want ErrNotStored", err)
	}
	clk.Advance(1)
	if _, err := l.Get(ctx, "short"); !errors.Is(err, cache.ErrMiss) {
		t.Fatalf("Get at expiry = %v, want ErrMiss", err)
	}
	if n, _ := l.Size(); n != 1 {
		t.Fatalf("the expired item was not dropped on read: %d items", n)
	}
	if err := l.Add(ctx, "short", []byte("x"), time.Second); err != nil {
		t.Fatalf("Add over an expired value = %v", err)
	}
	clk.Advance(100 * 365 * 24 * time.Hour)
	if v, err := l.Get(ctx, "forever"); err != nil || string(v) != "f" {
		t.Fatalf("ttl 0 expired: %q, %v", v, err)
	}
}

// TestConcurrentAccounting: whatever the interleaving, the byte count is
// the sum of what is held and stays within the budget.
func TestConcurrentAccounting(t *testing.T) {
	l := New(Config{MaxBytes: 64 << 10, MaxEntryFraction: 0.5})
	var wg sync.WaitGroup
	for w := range 100 {
		wg.Go(func() {
			for i := range 200 {
				k := fmt.Sprint("k", (w*7+i)%50)
				switch i % 4 {
				case 0, 1:
					_ = l.Set(ctx, k, make([]byte, (w*31+i*17)%4000), time.Hour)
				case 2:
					_, _ = l.Get(ctx, k)
				case 3:
					_ = l.Delete(ctx, k)
				}
			}
		})
	}
	wg.Wait()
	var sum int64
	for it := l.root.next; it != &l.root; it = it.next {
		sum += it.size
	}
	n, b := l.Size()
	if b != sum || b > 64<<10 || n != int64(len(l.items)) {
		t.Fatalf("Size = %d items, %d bytes; list holds %d bytes", n, b, sum)
	}
}

func BenchmarkCache(b *testing.B) { cachetest.Bench(b, New(Config{})) }
