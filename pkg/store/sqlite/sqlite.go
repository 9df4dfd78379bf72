// Package sqlite is the embedded store behind `wrapi serve`: one SQLite
// file, pure Go (modernc.org/sqlite, no cgo), WAL mode.
//
// Writes go through a single connection, so every budget operation is a
// serialised transaction: Reserve reads the limits and counters, decides
// with budget.Decide and writes, all inside one BEGIN IMMEDIATE … COMMIT.
// Reads (usage reports) use a separate pool so a long report never holds
// up the proxy.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/budget"
	"github.com/wrapi-dev/wrapi/pkg/money"
	"github.com/wrapi-dev/wrapi/pkg/store"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Store is a store.Store on one SQLite file.
type Store struct {
	w     *sql.DB  // one connection: all writes, serialised
	r     *sql.DB  // readers
	stmts sync.Map // query → *sql.Stmt prepared on w (hot paths only)
	batch batcher  // group commit of Finish calls
	// listLimits is prepared on the readers: every proxied request reads
	// the limits, so it must not pay SQL compilation.
	listLimits *sql.Stmt
}

// stmt returns the writer's prepared statement for q. Every hot-path
// query (reserve, settle, record) is prepared once when the store opens;
// preparing later would wait for the single writer connection, which a
// transaction may be holding.
func (s *Store) stmt(q string) (*sql.Stmt, error) {
	if v, ok := s.stmts.Load(q); ok {
		return v.(*sql.Stmt), nil
	}
	return nil, fmt.Errorf("sqlite: statement not prepared: %.40q", q)
}

// txStmt is stmt bound to tx (on the same single connection, so the
// prepared statement is reused, not re-prepared).
func (s *Store) txStmt(ctx context.Context, tx *sql.Tx, q string) (*sql.Stmt, error) {
	st, err := s.stmt(q)
	if err != nil {
		return nil, err
	}
	return tx.StmtContext(ctx, st), nil
}

// prepareAll prepares the hot-path statements on the writer.
func (s *Store) prepareAll(ctx context.Context) error {
	for _, q := range []string{qInsertRecord, qReservationState, qLimitAmount, qCommitted, qAddCounter,
		qInsertReservation, qReservation, qUpdateReservation} {
		st, err := s.w.PrepareContext(ctx, q)
		if err != nil {
			return err
		}
		s.stmts.Store(q, st)
	}
	return nil
}

const (
	qInsertRecord = `INSERT OR IGNORE INTO records VALUES
	 (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`
	qReservationState  = `SELECT state FROM reservations WHERE id = ?`
	qLimitAmount       = `SELECT amount FROM limits WHERE id = ?`
	qCommitted         = `SELECT committed FROM counters WHERE limit_id = ? AND win = ?`
	qAddCounter        = `INSERT INTO counters VALUES (?,?,?) ON CONFLICT(limit_id, win) DO UPDATE SET committed = committed + excluded.committed`
	qInsertReservation = `INSERT INTO reservations VALUES (?,?,?,?,?,?,?)`
	qReservation       = `SELECT state, amount, counters FROM reservations WHERE id = ?`
	qUpdateReservation = `UPDATE reservations SET state = ?, updated = ? WHERE id = ?`
)

var _ store.Store = (*Store)(nil)

// finishedRetention is how long settled and released reservations are kept
// so that a retried Settle or Release still finds them and does nothing.
const finishedRetention = 24 * time.Hour

const schema = `
CREATE TABLE IF NOT EXISTS records (
  id TEXT PRIMARY KEY,
  time INTEGER NOT NULL,
  day TEXT NOT NULL,
  stage TEXT NOT NULL, project TEXT NOT NULL, user TEXT NOT NULL, key_id TEXT NOT NULL,
  endpoint TEXT NOT NULL, model_requested TEXT NOT NULL, model_served TEXT NOT NULL,
  service_tier TEXT NOT NULL, status INTEGER NOT NULL, error_code TEXT NOT NULL,
  input_tokens INTEGER NOT NULL, cached_input_tokens INTEGER NOT NULL,
  audio_input_tokens INTEGER NOT NULL, cached_audio_input_tokens INTEGER NOT NULL,
  image_input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
  reasoning_tokens INTEGER NOT NULL, audio_output_tokens INTEGER NOT NULL,
  image_output_tokens INTEGER NOT NULL,
  cost INTEGER NOT NULL, reserved INTEGER NOT NULL, saved INTEGER NOT NULL,
  cache_hit INTEGER NOT NULL, price_version TEXT NOT NULL, latency_ns INTEGER NOT NULL,
  stream INTEGER NOT NULL, estimated INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS records_time ON records(time);
CREATE INDEX IF NOT EXISTS records_day ON records(day, project, user, model_requested);
CREATE TABLE IF NOT EXISTS limits (
  id TEXT PRIMARY KEY, stage TEXT NOT NULL, project TEXT NOT NULL, user TEXT NOT NULL,
  model TEXT NOT NULL, period TEXT NOT NULL, amount INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
  limit_id TEXT NOT NULL, win TEXT NOT NULL, committed INTEGER NOT NULL,
  PRIMARY KEY (limit_id, win)
);
CREATE TABLE IF NOT EXISTS reservations (
  id TEXT PRIMARY KEY, amount INTEGER NOT NULL, created INTEGER NOT NULL,
  expires INTEGER NOT NULL, state TEXT NOT NULL, counters TEXT NOT NULL, updated INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS reservations_state ON reservations(state, expires);
CREATE TABLE IF NOT EXISTS keys (
  id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL, user TEXT NOT NULL,
  project TEXT NOT NULL, created INTEGER NOT NULL, revoked INTEGER
);
`

// DefaultPath is the store file under the user's data directory
// ($XDG_DATA_HOME/wrapi/wrapi.db, ~/.local/share/wrapi/wrapi.db, …).
func DefaultPath() (string, error) {
	dir := os.Getenv("XDG_DATA_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("sqlite: no home directory for the default store: %w", err)
		}
		dir = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(dir, "wrapi", "wrapi.db"), nil
}

// Open opens (creating if needed) the store at path. ":memory:" gives a
// private in-memory store (tests).
func Open(ctx context.Context, path string) (*Store, error) {
	mem := path == ":memory:"
	if !mem {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("sqlite: create directory for %s: %w", path, err)
		}
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	if !mem {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(NORMAL)")
	}
	q.Set("_txlock", "immediate")
	var dsn string
	if mem {
		// A shared-cache in-memory database so reader and writer see the
		// same data; unique name per Open.
		dsn = fmt.Sprintf("file:wrapi-%d?mode=memory&cache=shared&%s", time.Now().UnixNano(), q.Encode())
	} else {
		dsn = "file:" + path + "?" + q.Encode()
	}
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if _, err := w.ExecContext(ctx, schema); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: create schema in %s: %w", path, err)
	}
	r := w
	if !mem {
		r, err = sql.Open("sqlite", dsn)
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
		}
		r.SetMaxOpenConns(4)
	}
	s := &Store{w: w, r: r}
	if err := s.prepareAll(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: prepare statements in %s: %w", path, err)
	}
	if s.listLimits, err = r.PrepareContext(ctx, qListLimits); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: prepare statements in %s: %w", path, err)
	}
	s.startBatcher()
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error {
	s.stopBatcher()
	s.stmts.Range(func(_, v any) bool { v.(*sql.Stmt).Close(); return true })
	if s.listLimits != nil {
		s.listLimits.Close()
	}
	err := s.w.Close()
	if s.r != s.w {
		err = errors.Join(err, s.r.Close())
	}
	return err
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Record implements store.Usage.
func (s *Store) Record(ctx context.Context, r store.Record) error {
	st, err := s.stmt(qInsertRecord)
	if err == nil {
		_, err = st.ExecContext(ctx, recordArgs(r)...)
	}
	if err != nil {
		return fmt.Errorf("sqlite: record %s: %w", r.ID, err)
	}
	return nil
}

func recordArgs(r store.Record) []any {
	u := r.Usage
	return []any{r.ID, r.Time.UnixNano(), r.Time.UTC().Format("2006-01-02"),
		r.Stage, r.Project, r.User, r.KeyID, r.Endpoint, r.ModelRequested, r.ModelServed,
		r.ServiceTier, r.Status, r.ErrorCode,
		u.InputTokens, u.CachedInputTokens, u.AudioInputTokens, u.CachedAudioInputTokens,
		u.ImageInputTokens, u.OutputTokens, u.ReasoningTokens, u.AudioOutputTokens, u.ImageOutputTokens,
		int64(r.Cost), int64(r.Reserved), int64(r.Saved), b2i(r.CacheHit), r.PriceVersion,
		int64(r.Latency), b2i(r.Stream), b2i(r.Estimated)}
}

func filterSQL(f store.UsageFilter) (string, []any) {
	var where []string
	var args []any
	if !f.Since.IsZero() {
		where = append(where, "time >= ?")
		args = append(args, f.Since.UnixNano())
	}
	if !f.Until.IsZero() {
		where = append(where, "time < ?")
		args = append(args, f.Until.UnixNano())
	}
	for _, c := range []struct{ col, v string }{{"project", f.Project}, {"user", f.User}, {"model_requested", f.Model}} {
		if c.v != "" {
			where = append(where, c.col+" = ?")
			args = append(args, c.v)
		}
	}
	if len(where) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(where, " AND "), args
}

// DailyUsage implements store.Usage.
func (s *Store) DailyUsage(ctx context.Context, f store.UsageFilter) ([]store.UsageRow, error) {
	where, args := filterSQL(f)
	rows, err := s.r.QueryContext(ctx, `SELECT day, project, user, model_requested, count(*),
	  sum(status < 200 OR status > 299), sum(cache_hit), sum(estimated),
	  sum(input_tokens), sum(cached_input_tokens), sum(audio_input_tokens), sum(cached_audio_input_tokens),
	  sum(image_input_tokens), sum(output_tokens), sum(reasoning_tokens), sum(audio_output_tokens),
	  sum(image_output_tokens), sum(cost), sum(saved)
	  FROM records`+where+` GROUP BY day, project, user, model_requested ORDER BY day, project, user, model_requested`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: daily usage: %w", err)
	}
	defer rows.Close()
	var out []store.UsageRow
	for rows.Next() {
		var r store.UsageRow
		var cost, saved int64
		u := &r.Usage
		if err := rows.Scan(&r.Day, &r.Project, &r.User, &r.Model, &r.Requests, &r.Errors, &r.CacheHits, &r.Estimated,
			&u.InputTokens, &u.CachedInputTokens, &u.AudioInputTokens, &u.CachedAudioInputTokens,
			&u.ImageInputTokens, &u.OutputTokens, &u.ReasoningTokens, &u.AudioOutputTokens,
			&u.ImageOutputTokens, &cost, &saved); err != nil {
			return nil, fmt.Errorf("sqlite: daily usage: %w", err)
		}
		r.Cost, r.Saved = money.Nanos(cost), money.Nanos(saved)
		out = append(out, r)
	}
	return out, rows.Err()
}

// Records implements store.Usage.
func (s *Store) Records(ctx context.Context, f store.UsageFilter, limit int) ([]store.Record, error) {
	where, args := filterSQL(f)
	if limit <= 0 {
		limit = 100
	}
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, `SELECT id, time, stage, project, user, key_id, endpoint,
	  model_requested, model_served, service_tier, status, error_code,
	  input_tokens, cached_input_tokens, audio_input_tokens, cached_audio_input_tokens, image_input_tokens,
	  output_tokens, reasoning_tokens, audio_output_tokens, image_output_tokens,
	  cost, reserved, saved, cache_hit, price_version, latency_ns, stream, estimated
	  FROM records`+where+` ORDER BY cost DESC, time DESC LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: records: %w", err)
	}
	defer rows.Close()
	var out []store.Record
	for rows.Next() {
		var r store.Record
		var t, cost, reserved, saved, lat int64
		var hit, stream, est int
		u := &r.Usage
		if err := rows.Scan(&r.ID, &t, &r.Stage, &r.Project, &r.User, &r.KeyID, &r.Endpoint,
			&r.ModelRequested, &r.ModelServed, &r.ServiceTier, &r.Status, &r.ErrorCode,
			&u.InputTokens, &u.CachedInputTokens, &u.AudioInputTokens, &u.CachedAudioInputTokens, &u.ImageInputTokens,
			&u.OutputTokens, &u.ReasoningTokens, &u.AudioOutputTokens, &u.ImageOutputTokens,
			&cost, &reserved, &saved, &hit, &r.PriceVersion, &lat, &stream, &est); err != nil {
			return nil, fmt.Errorf("sqlite: records: %w", err)
		}
		r.Time = time.Unix(0, t).UTC()
		r.Cost, r.Reserved, r.Saved = money.Nanos(cost), money.Nanos(reserved), money.Nanos(saved)
		r.Latency = time.Duration(lat)
		r.CacheHit, r.Stream, r.Estimated = hit != 0, stream != 0, est != 0
		out = append(out, r)
	}
	return out, rows.Err()
}

// PutLimit implements store.Limits.
func (s *Store) PutLimit(ctx context.Context, l budget.Limit) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO limits VALUES (?,?,?,?,?,?,?)
	  ON CONFLICT(id) DO UPDATE SET amount = excluded.amount`,
		l.ID, l.Scope.Stage, l.Scope.Project, l.Scope.User, l.Scope.Model, string(l.Period), int64(l.Amount))
	if err != nil {
		return fmt.Errorf("sqlite: put limit %s: %w", l.ID, err)
	}
	return nil
}

// DeleteLimit implements store.Limits. Its counters are deleted too, so a
// limit set again later starts from zero.
func (s *Store) DeleteLimit(ctx context.Context, id string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: delete limit %s: %w", id, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM limits WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("sqlite: delete limit %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return store.ErrNotFound
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM counters WHERE limit_id = ?`, id); err != nil {
		return fmt.Errorf("sqlite: delete limit %s counters: %w", id, err)
	}
	return tx.Commit()
}

// ListLimits implements store.Limits.
func (s *Store) ListLimits(ctx context.Context) ([]budget.Limit, error) {
	rows, err := s.listLimits.QueryContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list limits: %w", err)
	}
	return scanLimits(rows)
}

type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

const qListLimits = `SELECT id, stage, project, user, model, period, amount FROM limits ORDER BY id`

func scanLimits(rows *sql.Rows) ([]budget.Limit, error) {
	defer rows.Close()
	var out []budget.Limit
	for rows.Next() {
		var l budget.Limit
		var p string
		var amt int64
		if err := rows.Scan(&l.ID, &l.Scope.Stage, &l.Scope.Project, &l.Scope.User, &l.Scope.Model, &p, &amt); err != nil {
			return nil, fmt.Errorf("sqlite: list limits: %w", err)
		}
		l.Period, l.Amount = budget.Period(p), money.Nanos(amt)
		out = append(out, l)
	}
	return out, rows.Err()
}

func committed(ctx context.Context, q querier, k budget.CounterKey) (money.Nanos, error) {
	var c int64
	err := q.QueryRowContext(ctx, qCommitted, k.LimitID, k.Window).Scan(&c)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return money.Nanos(c), err
}

// Committed implements store.Budgets.
func (s *Store) Committed(ctx context.Context, checks []budget.Check) ([]budget.Check, error) {
	out := make([]budget.Check, len(checks))
	for i, c := range checks {
		v, err := committed(ctx, s.r, c.Key())
		if err != nil {
			return nil, fmt.Errorf("sqlite: counter %s: %w", c.Key(), err)
		}
		c.Committed = v
		out[i] = c
	}
	return out, nil
}

func (s *Store) addCounter(ctx context.Context, tx *sql.Tx, k budget.CounterKey, delta money.Nanos) error {
	st, err := s.txStmt(ctx, tx, qAddCounter)
	if err != nil {
		return err
	}
	_, err = st.ExecContext(ctx, k.LimitID, k.Window, int64(delta))
	return err
}

// queryRow runs a prepared single-row query inside tx.
func (s *Store) queryRow(ctx context.Context, tx *sql.Tx, q string, args []any, dest ...any) error {
	st, err := s.txStmt(ctx, tx, q)
	if err != nil {
		return err
	}
	return st.QueryRowContext(ctx, args...).Scan(dest...)
}

func (s *Store) exec(ctx context.Context, tx *sql.Tx, q string, args ...any) error {
	st, err := s.txStmt(ctx, tx, q)
	if err != nil {
		return err
	}
	_, err = st.ExecContext(ctx, args...)
	return err
}

// Reserve implements store.Budgets. Limits are re-read inside the
// transaction, so a limit lowered a moment ago is honoured; a limit deleted
// meanwhile no longer constrains.
func (s *Store) Reserve(ctx context.Context, r store.Reservation) (budget.Decision, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return budget.Decision{}, fmt.Errorf("sqlite: reserve %s: %w", r.ID, err)
	}
	defer tx.Rollback()
	var state string
	switch err := s.queryRow(ctx, tx, qReservationState, []any{r.ID}, &state); {
	case err == nil:
		// A retried Reserve: the first one took effect.
		return budget.Decision{OK: true, Remaining: budget.Unlimited}, nil
	case !errors.Is(err, sql.ErrNoRows):
		return budget.Decision{}, fmt.Errorf("sqlite: reserve %s: %w", r.ID, err)
	}
	checks := make([]budget.Check, 0, len(r.Checks))
	for _, c := range r.Checks {
		var amt int64
		err := s.queryRow(ctx, tx, qLimitAmount, []any{c.Limit.ID}, &amt)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return budget.Decision{}, fmt.Errorf("sqlite: reserve %s: %w", r.ID, err)
		}
		c.Limit.Amount = money.Nanos(amt)
		var cm int64
		k := c.Key()
		switch err := s.queryRow(ctx, tx, qCommitted, []any{k.LimitID, k.Window}, &cm); {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return budget.Decision{}, fmt.Errorf("sqlite: reserve %s: %w", r.ID, err)
		}
		c.Committed = money.Nanos(cm)
		checks = append(checks, c)
	}
	d := budget.Decide(r.Amount, checks)
	if !d.OK {
		return d, nil
	}
	keys := make([]budget.CounterKey, len(checks))
	for i, c := range checks {
		keys[i] = c.Key()
		if err := s.addCounter(ctx, tx, keys[i], r.Amount); err != nil {
			return budget.Decision{}, fmt.Errorf("sqlite: reserve %s: %w", r.ID, err)
		}
	}
	kj, _ := json.Marshal(keys)
	if err := s.exec(ctx, tx, qInsertReservation,
		r.ID, int64(r.Amount), r.Created.UnixNano(), r.Expires.UnixNano(), store.Reserved, string(kj), r.Created.UnixNano()); err != nil {
		return budget.Decision{}, fmt.Errorf("sqlite: reserve %s: %w", r.ID, err)
	}
	if err := tx.Commit(); err != nil {
		return budget.Decision{}, fmt.Errorf("sqlite: reserve %s: commit: %w", r.ID, err)
	}
	return d, nil
}

type transition func(state string, amount money.Nanos) (newState string, delta money.Nanos, ok bool)

// finish moves reservation id to a final state in its own transaction.
func (s *Store) finish(ctx context.Context, op, id string, next transition) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: %s %s: %w", op, id, err)
	}
	defer tx.Rollback()
	if err := s.finishTx(ctx, tx, op, id, next); err != nil {
		return err
	}
	return tx.Commit()
}

// finishTx moves reservation id to a final state inside tx, applying
// delta(state, amount) to its counters.
func (s *Store) finishTx(ctx context.Context, tx *sql.Tx, op, id string, next transition) error {
	var state, kj string
	var amt int64
	err := s.queryRow(ctx, tx, qReservation, []any{id}, &state, &amt, &kj)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("sqlite: %s %s: %w", op, id, err)
	}
	newState, delta, ok := next(state, money.Nanos(amt))
	if !ok {
		return nil // already final: idempotent
	}
	var keys []budget.CounterKey
	if err := json.Unmarshal([]byte(kj), &keys); err != nil {
		return fmt.Errorf("sqlite: %s %s: counters: %w", op, id, err)
	}
	if delta != 0 {
		for _, k := range keys {
			if err := s.addCounter(ctx, tx, k, delta); err != nil {
				return fmt.Errorf("sqlite: %s %s: %w", op, id, err)
			}
		}
	}
	if err := s.exec(ctx, tx, qUpdateReservation, newState, time.Now().UnixNano(), id); err != nil {
		return fmt.Errorf("sqlite: %s %s: %w", op, id, err)
	}
	return nil
}

func settleTo(actual money.Nanos) transition {
	return func(state string, amount money.Nanos) (string, money.Nanos, bool) {
		switch state {
		case store.Reserved:
			return store.Settled, actual - amount, true
		case store.Expired:
			return store.Settled, actual, true
		}
		return "", 0, false
	}
}

func release(state string, amount money.Nanos) (string, money.Nanos, bool) {
	if state == store.Reserved {
		return store.Released, -amount, true
	}
	return "", 0, false
}

// Settle implements store.Budgets.
func (s *Store) Settle(ctx context.Context, id string, actual money.Nanos) error {
	return s.finish(ctx, "settle", id, settleTo(actual))
}

// Release implements store.Budgets.
func (s *Store) Release(ctx context.Context, id string) error {
	return s.finish(ctx, "release", id, release)
}

// Reservations implements store.Budgets.
func (s *Store) Reservations(ctx context.Context) ([]store.Reservation, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, amount, created, expires, state, counters FROM reservations
	  WHERE state = ? ORDER BY created`, store.Reserved)
	if err != nil {
		return nil, fmt.Errorf("sqlite: reservations: %w", err)
	}
	defer rows.Close()
	var out []store.Reservation
	for rows.Next() {
		var r store.Reservation
		var amt, c, e int64
		var kj string
		if err := rows.Scan(&r.ID, &amt, &c, &e, &r.State, &kj); err != nil {
			return nil, fmt.Errorf("sqlite: reservations: %w", err)
		}
		r.Amount, r.Created, r.Expires = money.Nanos(amt), time.Unix(0, c).UTC(), time.Unix(0, e).UTC()
		_ = json.Unmarshal([]byte(kj), &r.Keys)
		out = append(out, r)
	}
	return out, rows.Err()
}

// ReleaseExpired implements store.Budgets. It also forgets finished
// reservations older than a day.
func (s *Store) ReleaseExpired(ctx context.Context, now time.Time) (int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id FROM reservations WHERE state = ? AND expires <= ?`,
		store.Reserved, now.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("sqlite: release expired: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("sqlite: release expired: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	n := 0
	for _, id := range ids {
		err := s.finish(ctx, "expire", id, func(state string, amount money.Nanos) (string, money.Nanos, bool) {
			if state == store.Reserved {
				return store.Expired, -amount, true
			}
			return "", 0, false
		})
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return n, err
		}
		n++
	}
	if _, err := s.w.ExecContext(ctx, `DELETE FROM reservations WHERE state != ? AND updated < ?`,
		store.Reserved, now.Add(-finishedRetention).UnixNano()); err != nil {
		return n, fmt.Errorf("sqlite: forget finished reservations: %w", err)
	}
	return n, nil
}

// CreateKey implements store.Keys.
func (s *Store) CreateKey(ctx context.Context, k store.Key) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO keys VALUES (?,?,?,?,?,?,NULL)`,
		k.ID, k.Hash, k.Prefix, k.User, k.Project, k.Created.UnixNano())
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE") {
			return store.ErrConflict
		}
		return fmt.Errorf("sqlite: create key %s: %w", k.ID, err)
	}
	return nil
}

func scanKey(sc interface{ Scan(...any) error }) (store.Key, error) {
	var k store.Key
	var c int64
	var rev sql.NullInt64
	if err := sc.Scan(&k.ID, &k.Hash, &k.Prefix, &k.User, &k.Project, &c, &rev); err != nil {
		return k, err
	}
	k.Created = time.Unix(0, c).UTC()
	if rev.Valid {
		t := time.Unix(0, rev.Int64).UTC()
		k.Revoked = &t
	}
	return k, nil
}

// KeyByHash implements store.Keys.
func (s *Store) KeyByHash(ctx context.Context, hash string) (store.Key, error) {
	k, err := scanKey(s.r.QueryRowContext(ctx, `SELECT id, hash, prefix, user, project, created, revoked FROM keys WHERE hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return k, store.ErrNotFound
	}
	if err != nil {
		return k, fmt.Errorf("sqlite: key lookup: %w", err)
	}
	return k, nil
}

// ListKeys implements store.Keys.
func (s *Store) ListKeys(ctx context.Context) ([]store.Key, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, hash, prefix, user, project, created, revoked FROM keys ORDER BY created, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list keys: %w", err)
	}
	defer rows.Close()
	var out []store.Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list keys: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// RevokeKey implements store.Keys.
func (s *Store) RevokeKey(ctx context.Context, id string, at time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE keys SET revoked = coalesce(revoked, ?) WHERE id = ?`, at.UnixNano(), id)
	if err != nil {
		return fmt.Errorf("sqlite: revoke key %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return store.ErrNotFound
	}
	return nil
}
