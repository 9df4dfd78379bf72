package cache

import (
	"context"
	"errors"
	"time"
)

// ErrMiss is returned when a key holds no usable entry: absent, expired,
// flushed, corrupt, or stored for another key or scope.
var ErrMiss = errors.New("cache: miss")

// ErrTooLarge is returned by a [Backend]'s Set for a value it does not
// store because of its size. [Cache.Put] counts it as skipped and returns
// nil: not caching a huge response is policy, not failure.
var ErrTooLarge = errors.New("cache: value too large")

// ErrNotStored is returned by [Adder.Add] when the key already holds a value.
var ErrNotStored = errors.New("cache: key exists")

// Backend stores opaque values under string keys with a time to live.
// Keys are at most 200 bytes of printable ASCII without spaces (memcached's
// rule, with room for suffixes). Implementations are safe for concurrent
// use; callers treat every error other than ErrMiss as "the cache is
// unavailable" (the proxy then goes upstream).
type Backend interface {
	// Get returns the value stored under key, or ErrMiss. The returned
	// slice belongs to the caller.
	Get(ctx context.Context, key string) ([]byte, error)
	// Set stores val under key for ttl (ttl <= 0: as long as the backend
	// keeps anything), replacing any value. The backend may keep val: the
	// caller must not modify it afterwards. ErrTooLarge means the value was
	// not stored because of its size.
	Set(ctx context.Context, key string, val []byte, ttl time.Duration) error
	// Delete removes key; deleting an absent key is not an error.
	Delete(ctx context.Context, key string) error
}

// MultiGetter is implemented by backends that fetch several keys in one
// round trip. Absent keys are absent from the map.
type MultiGetter interface {
	GetMulti(ctx context.Context, keys []string) (map[string][]byte, error)
}

// Adder is implemented by backends that store a value only if the key is
// absent (memcached's add), used to create generation counters without
// races. Without it, creation falls back to Set.
type Adder interface {
	Add(ctx context.Context, key string, val []byte, ttl time.Duration) error
}

// Sizer is implemented by backends that know what they hold (the in-process
// LRU); [Cache.Stats] reports it.
type Sizer interface {
	Size() (entries, bytes int64)
}

// GenerationKeeper is implemented by backends that keep flush generations
// themselves, apart from the values they may evict (the in-process LRU:
// an evicted generation would flush its scope). [New] uses them instead of
// [StoredGenerations] when Options.Generations is nil.
type GenerationKeeper interface {
	Generations(namespace string) Generations
}
