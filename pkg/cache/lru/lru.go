// Package lru is the in-process cache backend: a least-recently-used map
// with a byte budget, for `wrapi serve` and for a Lambda instance's warm
// memory.
//
// Every operation is O(1) under one mutex (a map plus an intrusive doubly
// linked list); values are never modified once stored, so Get copies them
// out after releasing the lock. Time to live is checked on read (an expired
// value is a miss and is dropped) and expired values otherwise leave by
// eviction. A value larger than MaxEntryFraction of the budget is refused
// with [cache.ErrTooLarge], so one huge response cannot empty the cache.
// The budget counts keys, values and a fixed per-item overhead, not Go's
// exact memory use.
package lru

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/cache"
)

// Defaults.
const (
	DefaultMaxBytes         = 256 << 20
	DefaultMaxEntryFraction = 1.0 / 16
	// itemOverhead approximates an item's memory besides its key and value
	// (the item struct, the map slot, the slice and string headers).
	itemOverhead = 128
)

// Config configures an [LRU].
type Config struct {
	// MaxBytes is the budget (default 256 MiB).
	MaxBytes int64
	// MaxEntryFraction is the largest share of MaxBytes one value may take
	// (default 1/16: 16 MiB of 256 MiB); larger values are refused.
	MaxEntryFraction float64
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// LRU is an in-process [cache.Backend].
type LRU struct {
	mu       sync.Mutex
	items    map[string]*item
	root     item // sentinel: root.next is the most recently used
	bytes    int64
	max      int64
	maxEntry int64
	now      func() time.Time

	// gens are the flush generations by namespace and scope ("" for the
	// global one), outside the budget; seq numbers them.
	gens map[genKey]int64
	seq  int64
}

type genKey struct{ ns, scope string }

var (
	_ cache.Backend          = (*LRU)(nil)
	_ cache.MultiGetter      = (*LRU)(nil)
	_ cache.Adder            = (*LRU)(nil)
	_ cache.Sizer            = (*LRU)(nil)
	_ cache.GenerationKeeper = (*LRU)(nil)
	_ cache.Generations      = (*generations)(nil)
)

type item struct {
	key        string
	val        []byte
	expires    int64 // unix ns; 0 = never
	size       int64
	prev, next *item
}

// New returns an empty LRU.
func New(cfg Config) *LRU {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.MaxEntryFraction <= 0 || cfg.MaxEntryFraction > 1 {
		cfg.MaxEntryFraction = DefaultMaxEntryFraction
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	l := &LRU{
		items:    make(map[string]*item),
		gens:     make(map[genKey]int64),
		max:      cfg.MaxBytes,
		maxEntry: int64(float64(cfg.MaxBytes) * cfg.MaxEntryFraction),
		now:      cfg.Now,
	}
	l.root.next, l.root.prev = &l.root, &l.root
	return l
}

// MaxValue is the largest value (with its key) Set accepts.
func (l *LRU) MaxValue() int64 { return l.maxEntry - itemOverhead }

func (l *LRU) unlink(it *item) {
	it.prev.next, it.next.prev = it.next, it.prev
	it.prev, it.next = nil, nil
}

func (l *LRU) pushFront(it *item) {
	it.prev, it.next = &l.root, l.root.next
	l.root.next.prev = it
	l.root.next = it
}

func (l *LRU) remove(it *item) {
	l.unlink(it)
	delete(l.items, it.key)
	l.bytes -= it.size
}

// lookup returns the live item of key, dropping it if expired. Called with
// mu held.
func (l *LRU) lookup(key string, now int64) *item {
	it := l.items[key]
	if it == nil {
		return nil
	}
	if it.expires != 0 && now >= it.expires {
		l.remove(it)
		return nil
	}
	l.unlink(it)
	l.pushFront(it)
	return it
}

// Get implements [cache.Backend]; the value returned is a copy.
func (l *LRU) Get(_ context.Context, key string) ([]byte, error) {
	now := l.now().UnixNano()
	l.mu.Lock()
	it := l.lookup(key, now)
	if it == nil {
		l.mu.Unlock()
		return nil, cache.ErrMiss
	}
	v := it.val
	l.mu.Unlock()
	return bytes.Clone(v), nil
}

// GetMulti implements [cache.MultiGetter].
func (l *LRU) GetMulti(_ context.Context, keys []string) (map[string][]byte, error) {
	now := l.now().UnixNano()
	found := make(map[string][]byte, len(keys))
	l.mu.Lock()
	for _, k := range keys {
		if it := l.lookup(k, now); it != nil {
			found[k] = it.val
		}
	}
	l.mu.Unlock()
	for k, v := range found {
		found[k] = bytes.Clone(v)
	}
	return found, nil
}

// Set implements [cache.Backend]; it keeps val.
func (l *LRU) Set(_ context.Context, key string, val []byte, ttl time.Duration) error {
	return l.store(key, val, ttl, false)
}

// Add implements [cache.Adder].
func (l *LRU) Add(_ context.Context, key string, val []byte, ttl time.Duration) error {
	return l.store(key, val, ttl, true)
}

func (l *LRU) store(key string, val []byte, ttl time.Duration, onlyNew bool) error {
	now := l.now().UnixNano()
	size := int64(len(key)+len(val)) + itemOverhead
	var expires int64
	if ttl > 0 {
		expires = now + int64(ttl)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.lookup(key, now)
	if onlyNew && old != nil {
		return cache.ErrNotStored
	}
	if size > l.maxEntry {
		// The key must not keep answering with an older value.
		if old != nil {
			l.remove(old)
		}
		return cache.ErrTooLarge
	}
	if old != nil {
		l.remove(old)
	}
	it := &item{key: key, val: val, expires: expires, size: size}
	l.items[key] = it
	l.pushFront(it)
	l.bytes += size
	for l.bytes > l.max {
		l.remove(l.root.prev)
	}
	return nil
}

// Delete implements [cache.Backend].
func (l *LRU) Delete(_ context.Context, key string) error {
	l.mu.Lock()
	if it := l.items[key]; it != nil {
		l.remove(it)
	}
	l.mu.Unlock()
	return nil
}

// Size implements [cache.Sizer]: items held (expired ones not yet dropped
// included) and their accounted bytes.
func (l *LRU) Size() (entries, bytes int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int64(len(l.items)), l.bytes
}

// Generations implements [cache.GenerationKeeper]: generations kept in
// process, never evicted (a scope that was never flushed costs nothing).
func (l *LRU) Generations(namespace string) cache.Generations {
	return &generations{l: l, ns: namespace}
}

type generations struct {
	l  *LRU
	ns string
}

func (g *generations) Get(_ context.Context, scope string) (global, scoped int64, err error) {
	g.l.mu.Lock()
	defer g.l.mu.Unlock()
	return g.l.gens[genKey{g.ns, ""}], g.l.gens[genKey{g.ns, scope}], nil
}

func (g *generations) Bump(_ context.Context, scope string) error {
	g.l.mu.Lock()
	defer g.l.mu.Unlock()
	g.l.seq++
	g.l.gens[genKey{g.ns, scope}] = g.l.seq
	return nil
}
