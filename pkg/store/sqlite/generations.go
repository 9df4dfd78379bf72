package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
)

const generationsSchema = `CREATE TABLE IF NOT EXISTS cache_generations (scope TEXT PRIMARY KEY, gen INTEGER NOT NULL)`

// Generations are the response cache's flush generations kept in the store
// file, so `wrapi cache flush` (another process) reaches the in-process
// cache of a running `wrapi serve`. It implements cache.Generations.
type Generations struct{ s *Store }

// CacheGenerations returns the store's cache generations.
func (s *Store) CacheGenerations(ctx context.Context) (*Generations, error) {
	if _, err := s.w.ExecContext(ctx, generationsSchema); err != nil {
		return nil, fmt.Errorf("sqlite: cache generations: %w", err)
	}
	return &Generations{s: s}, nil
}

// Generations are random 63-bit values, not counters starting at zero: a
// store file recreated next to a shared cache (memcached) must never bring
// back the generations, and so the entries, of the old one.
func (g *Generations) gen(ctx context.Context, scope string) (int64, error) {
	var v int64
	err := g.s.r.QueryRowContext(ctx, `SELECT gen FROM cache_generations WHERE scope = ?`, scope).Scan(&v)
	if !errors.Is(err, sql.ErrNoRows) {
		return v, err
	}
	if _, err := g.s.w.ExecContext(ctx, `INSERT OR IGNORE INTO cache_generations VALUES (?, ?)`, scope, rand.Int64()); err != nil {
		return 0, err
	}
	err = g.s.w.QueryRowContext(ctx, `SELECT gen FROM cache_generations WHERE scope = ?`, scope).Scan(&v)
	return v, err
}

// Get returns the global generation and scope's.
func (g *Generations) Get(ctx context.Context, scope string) (global, scoped int64, err error) {
	if global, err = g.gen(ctx, ""); err != nil {
		return 0, 0, fmt.Errorf("sqlite: cache generation: %w", err)
	}
	if scoped, err = g.gen(ctx, scope); err != nil {
		return 0, 0, fmt.Errorf("sqlite: cache generation: %w", err)
	}
	return global, scoped, nil
}

// Bump starts a new generation for scope ("" for everything).
func (g *Generations) Bump(ctx context.Context, scope string) error {
	_, err := g.s.w.ExecContext(ctx, `INSERT INTO cache_generations VALUES (?, ?)
	  ON CONFLICT(scope) DO UPDATE SET gen = excluded.gen`, scope, rand.Int64())
	if err != nil {
		return fmt.Errorf("sqlite: bump cache generation: %w", err)
	}
	return nil
}
