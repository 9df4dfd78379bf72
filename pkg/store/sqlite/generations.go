package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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

func (g *Generations) gen(ctx context.Context, scope string) (int64, error) {
	var v int64
	err := g.s.r.QueryRowContext(ctx, `SELECT gen FROM cache_generations WHERE scope = ?`, scope).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
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
	_, err := g.s.w.ExecContext(ctx, `INSERT INTO cache_generations VALUES (?, 1)
	  ON CONFLICT(scope) DO UPDATE SET gen = gen + 1`, scope)
	if err != nil {
		return fmt.Errorf("sqlite: bump cache generation: %w", err)
	}
	return nil
}
