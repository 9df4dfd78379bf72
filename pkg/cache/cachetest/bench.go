package cachetest

import (
	"testing"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/cache"
)

// Bench measures Put and Get through cache.Cache on a backend, for a 6 KiB
// JSON entry and a 200-event stream entry (generations memoized, as in the
// proxy).
func Bench(b *testing.B, backend cache.Backend) {
	fixtures := []struct {
		name string
		e    *cache.Entry
	}{
		{"json6k", JSONEntry(KeyOf("bench-json"), "project:bench", 6<<10)},
		{"stream200", StreamEntry(KeyOf("bench-stream"), "project:bench", 200)},
	}
	c := cache.New(backend, cache.Options{Namespace: namespace()})
	for _, f := range fixtures {
		size := int64(len(f.e.Body))
		for _, ev := range f.e.Events {
			size += int64(len(ev))
		}
		b.Run("Put/"+f.name, func(b *testing.B) {
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Put(ctx, f.e, time.Hour); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("Get/"+f.name, func(b *testing.B) {
			if err := c.Put(ctx, f.e, time.Hour); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Get(ctx, f.e.Key, f.e.Scope); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
