package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/wrapi-dev/wrapi/pkg/cache"
	"github.com/wrapi-dev/wrapi/pkg/cache/lru"
	"github.com/wrapi-dev/wrapi/pkg/store/sqlite"
)

// A flush from another process (another Store on the same file) reaches a
// cache whose generations live in the store.
func TestCacheFlushAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wrapi.db")
	server, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	gens, err := server.CacheGenerations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := cache.New(lru.New(lru.Config{}), cache.Options{Generations: gens, GenerationTTL: -1})
	canon, _ := cache.Canonical([]byte(`{"model":"gpt-4o-mini"}`))
	put := func(scope string) string {
		k := cache.Key("local", scope, "POST", "chat/completions", canon)
		if err := c.Put(ctx, &cache.Entry{Key: k, Scope: scope, Status: 200, Body: []byte(`{}`)}, 0); err != nil {
			t.Fatal(err)
		}
		return k
	}
	kml, kweb := put("project:ml"), put("project:web")

	cli, err := sqlite.Open(ctx, path) // `wrapi cache flush --project ml`
	if err != nil {
		t.Fatal(err)
	}
	cg, _ := cli.CacheGenerations(ctx)
	if err := cg.Bump(ctx, "project:ml"); err != nil {
		t.Fatal(err)
	}
	cli.Close()
	if _, err := c.Get(ctx, kml, "project:ml"); err != cache.ErrMiss {
		t.Errorf("ml after its flush: %v, want a miss", err)
	}
	if _, err := c.Get(ctx, kweb, "project:web"); err != nil {
		t.Errorf("web must survive ml's flush: %v", err)
	}
	if err := gens.Bump(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, kweb, "project:web"); err != cache.ErrMiss {
		t.Errorf("web after flush-all: %v, want a miss", err)
	}
}
