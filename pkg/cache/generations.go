package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
)

// Generations is the source of the flush generations: one global, one per
// scope. Every stored key includes both, so a flush is one Bump and the
// entries of older generations are never found again (they age out by TTL
// or eviction).
//
// Values are opaque: the cache only compares them. A Bump must give the
// scope (or, for "", the global generation) a value that scope has not had
// before; incrementing a durable counter or drawing a random 63-bit number
// both do.
type Generations interface {
	// Get returns the global generation and the generation of scope.
	Get(ctx context.Context, scope string) (global, scoped int64, err error)
	// Bump starts a new generation for scope, or the global one for "".
	Bump(ctx context.Context, scope string) error
}

// StoredGenerations keeps the generations in a [Backend], under keys in the
// namespace: NS/g/* for the global one, NS/g/<sha256(scope)[:32]> per
// scope. It works on any backend, memcached included:
//
//   - Bump writes a fresh random value (no atomic increment needed; two
//     concurrent flushes both take effect).
//   - A missing generation (never set, or evicted) is created with a random
//     value, with Add where the backend has it so that concurrent readers
//     agree. Eviction therefore flushes the scope, never resurrects old
//     entries: a random value is never an old one.
//   - Both generations are read in one GetMulti where the backend has it.
//
// Generation keys are written without a TTL.
type StoredGenerations struct {
	b  Backend
	ns string
}

var _ Generations = (*StoredGenerations)(nil)

// NewStoredGenerations returns generations kept in b under namespace ns
// (the same namespace the cache uses; see [Options.Namespace]).
func NewStoredGenerations(b Backend, ns string) *StoredGenerations {
	return &StoredGenerations{b: b, ns: namespaceKey(ns)}
}

func (g *StoredGenerations) key(scope string) string {
	if scope == "" {
		return g.ns + "/g/*"
	}
	h := sha256.Sum256([]byte(scope))
	return g.ns + "/g/" + hex.EncodeToString(h[:16])
}

// Get implements [Generations].
func (g *StoredGenerations) Get(ctx context.Context, scope string) (global, scoped int64, err error) {
	gk, sk := g.key(""), g.key(scope)
	var gv, sv []byte
	if mg, ok := g.b.(MultiGetter); ok {
		m, err := mg.GetMulti(ctx, []string{gk, sk})
		if err != nil {
			return 0, 0, fmt.Errorf("cache: read generations: %w", err)
		}
		gv, sv = m[gk], m[sk]
	} else {
		if gv, err = g.get(ctx, gk); err != nil {
			return 0, 0, err
		}
		if sv, err = g.get(ctx, sk); err != nil {
			return 0, 0, err
		}
	}
	if global, err = g.value(ctx, gk, gv); err != nil {
		return 0, 0, err
	}
	if scoped, err = g.value(ctx, sk, sv); err != nil {
		return 0, 0, err
	}
	return global, scoped, nil
}

func (g *StoredGenerations) get(ctx context.Context, key string) ([]byte, error) {
	v, err := g.b.Get(ctx, key)
	if errors.Is(err, ErrMiss) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cache: read generation: %w", err)
	}
	return v, nil
}

// value parses a stored generation, creating it when absent or unreadable.
func (g *StoredGenerations) value(ctx context.Context, key string, v []byte) (int64, error) {
	if v != nil {
		if n, err := strconv.ParseInt(string(v), 10, 64); err == nil && n > 0 {
			return n, nil
		}
	}
	n := newGeneration()
	val := []byte(strconv.FormatInt(n, 10))
	if a, ok := g.b.(Adder); ok && v == nil {
		err := a.Add(ctx, key, val, 0)
		if errors.Is(err, ErrNotStored) {
			// Another process created it first: use theirs.
			v, err := g.get(ctx, key)
			if err != nil {
				return 0, err
			}
			if n, err := strconv.ParseInt(string(v), 10, 64); err == nil && n > 0 {
				return n, nil
			}
			return 0, fmt.Errorf("cache: generation %s unreadable after add", key)
		}
		if err != nil {
			return 0, fmt.Errorf("cache: create generation: %w", err)
		}
		return n, nil
	}
	if err := g.b.Set(ctx, key, val, 0); err != nil {
		return 0, fmt.Errorf("cache: create generation: %w", err)
	}
	return n, nil
}

// Bump implements [Generations].
func (g *StoredGenerations) Bump(ctx context.Context, scope string) error {
	val := []byte(strconv.FormatInt(newGeneration(), 10))
	if err := g.b.Set(ctx, g.key(scope), val, 0); err != nil {
		return fmt.Errorf("cache: bump generation: %w", err)
	}
	return nil
}

// newGeneration draws a random positive generation (math/rand/v2's global
// source is seeded from the OS, so processes draw different values).
func newGeneration() int64 { return rand.Int64N(1<<63-1) + 1 }
