package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultGenerationTTL is how long a Cache trusts the generations it read.
const DefaultGenerationTTL = time.Second

// maxMemo bounds the number of scopes whose generations a Cache remembers.
const maxMemo = 4096

// Options configure a [Cache].
type Options struct {
	// Namespace prefixes every key the cache writes to the backend, so
	// stages (or tests) can share one memcached without seeing or flushing
	// each other's entries. Use the stage name. Default "wrapi". Characters
	// other than [A-Za-z0-9._:-], or more than 64 of them, are hashed.
	Namespace string
	// Generations is the flush-generation source. Default: the backend's
	// own ([GenerationKeeper]), else a [StoredGenerations] in the same
	// backend and namespace. The local
	// server injects one that lives in its SQLite store, so that a
	// `wrapi cache flush` run in another process reaches its in-process
	// cache.
	Generations Generations
	// GenerationTTL is how long the generations read for a scope are reused
	// before being read again (default 1s; negative: read on every call).
	// A flush made through this Cache is seen by it at once; a flush made
	// elsewhere (another process, Lambda instance or Cache) is seen within
	// GenerationTTL.
	GenerationTTL time.Duration
	// Now is the clock (default time.Now): entries' Created when unset, and
	// the generation memo.
	Now func() time.Time
}

// Stats are a Cache's counters since it was created.
type Stats struct {
	// Hits and Misses count Get calls that returned an entry or ErrMiss
	// (corrupt entries and key or scope mismatches are misses).
	Hits, Misses int64
	// Sets counts entries stored; Skipped entries the backend refused for
	// their size.
	Skipped, Sets int64
	// Errors counts backend or generation failures (Get, Put, Flush) and
	// corrupt entries.
	Errors int64
	// Bytes and Entries are what the backend holds, where it knows
	// ([Sizer]: the in-process LRU); zero otherwise.
	Bytes, Entries int64
}

// Cache stores and finds [Entry] values in a [Backend], checking on read
// that an entry belongs to the key and scope asked for, and flushing by
// generation. It is safe for concurrent use.
type Cache struct {
	b      Backend
	ns     string
	gens   Generations
	genTTL time.Duration
	now    func() time.Time

	memoMu sync.Mutex
	memo   map[string]*memoEntry

	hits, misses, sets, skipped, errs atomic.Int64
}

// memoEntry is one scope's generations, shared by concurrent readers: the
// first fetches them, the others wait on done.
type memoEntry struct {
	done           chan struct{}
	global, scoped int64
	err            error
	expires        time.Time
}

// New returns a Cache over b.
func New(b Backend, opts Options) *Cache {
	if opts.Namespace == "" {
		opts.Namespace = "wrapi"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.GenerationTTL == 0 {
		opts.GenerationTTL = DefaultGenerationTTL
	}
	if opts.Generations == nil {
		if k, ok := b.(GenerationKeeper); ok {
			opts.Generations = k.Generations(opts.Namespace)
		} else {
			opts.Generations = NewStoredGenerations(b, opts.Namespace)
		}
	}
	return &Cache{
		b:      b,
		ns:     namespaceKey(opts.Namespace),
		gens:   opts.Generations,
		genTTL: opts.GenerationTTL,
		now:    opts.Now,
		memo:   make(map[string]*memoEntry),
	}
}

// namespaceKey returns ns if it is safe in a memcached key, else a hash.
func namespaceKey(ns string) string {
	ok := len(ns) <= 64
	for i := 0; ok && i < len(ns); i++ {
		c := ns[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == ':' || c == '-'
	}
	if ok {
		return ns
	}
	h := sha256.Sum256([]byte(ns))
	return "h" + hex.EncodeToString(h[:16])
}

func checkArgs(key, scope string) error {
	if !validKey(key) {
		return fmt.Errorf("cache: key %.80q is not a cache.Key (lowercase hex SHA-256)", key)
	}
	if scope == "" {
		return errors.New("cache: empty scope")
	}
	return nil
}

// storedKey is where an entry of key lives in the current generations.
func (c *Cache) storedKey(key string, global, scoped int64) string {
	return c.ns + "/e/" + key + "/" + strconv.FormatUint(uint64(global), 36) + "." + strconv.FormatUint(uint64(scoped), 36)
}

// generations returns the generations of scope, from the memo when fresh.
func (c *Cache) generations(ctx context.Context, scope string) (int64, int64, error) {
	if c.genTTL < 0 {
		return c.gens.Get(ctx, scope)
	}
	c.memoMu.Lock()
	e := c.memo[scope]
	if e != nil {
		select {
		case <-e.done:
			if e.err == nil && c.now().Before(e.expires) {
				c.memoMu.Unlock()
				return e.global, e.scoped, nil
			}
			e = nil // stale or failed: fetch again
		default: // a fetch is under way: wait for it below
		}
	}
	if e == nil {
		if len(c.memo) >= maxMemo {
			c.pruneMemo()
		}
		e = &memoEntry{done: make(chan struct{})}
		c.memo[scope] = e
		c.memoMu.Unlock()
		e.global, e.scoped, e.err = c.gens.Get(ctx, scope)
		e.expires = c.now().Add(c.genTTL)
		if e.err != nil {
			c.memoMu.Lock()
			if c.memo[scope] == e {
				delete(c.memo, scope)
			}
			c.memoMu.Unlock()
		}
		close(e.done)
		return e.global, e.scoped, e.err
	}
	c.memoMu.Unlock()
	select {
	case <-e.done:
		return e.global, e.scoped, e.err
	case <-ctx.Done():
		return 0, 0, fmt.Errorf("cache: read generations: %w", ctx.Err())
	}
}

// pruneMemo drops expired scopes, or all of them if none expired (many
// scopes in one GenerationTTL is rare). Called with memoMu held.
func (c *Cache) pruneMemo() {
	now := c.now()
	for k, e := range c.memo {
		select {
		case <-e.done:
			if !now.Before(e.expires) {
				delete(c.memo, k)
			}
		default:
		}
	}
	if len(c.memo) >= maxMemo {
		clear(c.memo)
	}
}

// Get returns the entry stored for key in scope, or ErrMiss. Any other
// error means the backend or the generation source failed; callers treat
// it as a miss. The entry's Body and Events belong to the caller.
func (c *Cache) Get(ctx context.Context, key, scope string) (*Entry, error) {
	if err := checkArgs(key, scope); err != nil {
		return nil, err
	}
	global, scoped, err := c.generations(ctx, scope)
	if err != nil {
		c.errs.Add(1)
		return nil, err
	}
	sk := c.storedKey(key, global, scoped)
	v, err := c.b.Get(ctx, sk)
	if errors.Is(err, ErrMiss) {
		c.misses.Add(1)
		return nil, ErrMiss
	}
	if err != nil {
		c.errs.Add(1)
		return nil, fmt.Errorf("cache: get %s: %w", key, err)
	}
	e, err := decodeEntry(v)
	if err != nil {
		// Best effort: a corrupt value would be read again until it expires.
		_ = c.b.Delete(ctx, sk)
		c.errs.Add(1)
		c.misses.Add(1)
		return nil, ErrMiss
	}
	if e.Key != key || e.Scope != scope {
		c.misses.Add(1)
		return nil, ErrMiss
	}
	c.hits.Add(1)
	return e, nil
}

// Put stores e under e.Key in e.Scope for ttl (ttl <= 0: no expiry, the
// backend evicts). A zero e.Created is stored as now; e is not modified.
// An entry the backend refuses for its size is counted as skipped and Put
// returns nil.
func (c *Cache) Put(ctx context.Context, e *Entry, ttl time.Duration) error {
	if err := checkArgs(e.Key, e.Scope); err != nil {
		return err
	}
	global, scoped, err := c.generations(ctx, e.Scope)
	if err != nil {
		c.errs.Add(1)
		return err
	}
	err = c.b.Set(ctx, c.storedKey(e.Key, global, scoped), encodeEntry(e, c.now()), ttl)
	switch {
	case errors.Is(err, ErrTooLarge):
		c.skipped.Add(1)
		return nil
	case err != nil:
		c.errs.Add(1)
		return fmt.Errorf("cache: put %s: %w", e.Key, err)
	}
	c.sets.Add(1)
	return nil
}

// Flush makes every entry of scope ("" = every scope) unreachable: one
// generation bump. This Cache sees it at once; other processes within
// their GenerationTTL. The old entries stay in the backend until they
// expire or are evicted.
func (c *Cache) Flush(ctx context.Context, scope string) error {
	if err := c.gens.Bump(ctx, scope); err != nil {
		c.errs.Add(1)
		if scope == "" {
			return fmt.Errorf("cache: flush all: %w", err)
		}
		return fmt.Errorf("cache: flush %q: %w", scope, err)
	}
	c.memoMu.Lock()
	if scope == "" {
		clear(c.memo)
	} else {
		delete(c.memo, scope)
	}
	c.memoMu.Unlock()
	return nil
}

// Stats returns the counters, and the backend's size where it knows it.
func (c *Cache) Stats() Stats {
	s := Stats{
		Hits:    c.hits.Load(),
		Misses:  c.misses.Load(),
		Sets:    c.sets.Load(),
		Skipped: c.skipped.Load(),
		Errors:  c.errs.Load(),
	}
	if z, ok := c.b.(Sizer); ok {
		s.Entries, s.Bytes = z.Size()
	}
	return s
}
