package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/store"
)

// Group commit. Finish (a settle or release plus the request's record)
// runs after the client has its response, so it can wait a little: the
// writer gathers the Finish calls that arrive within batchWindow (at most
// batchMax) and commits them in one transaction. One commit then serves
// many requests, which is most of what SQLite costs per call. Finish
// still returns only once its own work is committed.
//
// What a batch costs is time, not safety: a reservation is settled up to
// batchWindow later (it holds the larger, reserved amount meanwhile, so
// budgets stay conservative), and a process killed inside the window loses
// those records as it would lose any uncommitted write; their reservations
// are then released by the reaper at expiry.
const (
	batchWindow = 2 * time.Millisecond
	batchMax    = 256
)

type finishOp struct {
	o    store.Outcome
	rec  store.Record
	done chan error
}

type batcher struct {
	once     sync.Once
	stopOnce sync.Once
	ops      chan *finishOp
	stop     chan struct{}
	wg       sync.WaitGroup
}

func (s *Store) startBatcher() {
	s.batch.once.Do(func() {
		s.batch.ops = make(chan *finishOp, batchMax)
		s.batch.stop = make(chan struct{})
		s.batch.wg.Add(1)
		go s.batchLoop()
	})
}

// stopBatcher commits what is queued and stops the writer goroutine.
func (s *Store) stopBatcher() {
	if s.batch.ops == nil {
		return
	}
	s.batch.stopOnce.Do(func() { close(s.batch.stop) })
	s.batch.wg.Wait()
}

// Finish implements store.Finisher: the reservation's settlement (or
// release) and the request's record, committed with other requests' in
// one transaction (see the group commit note above).
func (s *Store) Finish(ctx context.Context, o store.Outcome, rec store.Record) error {
	op := &finishOp{o: o, rec: rec, done: make(chan error, 1)}
	select {
	case <-s.batch.stop:
		return errors.New("sqlite: store closed")
	default:
	}
	select {
	case s.batch.ops <- op:
	case <-s.batch.stop:
		return errors.New("sqlite: store closed")
	case <-ctx.Done():
		return fmt.Errorf("sqlite: finish %s: %w", rec.ID, ctx.Err())
	}
	select {
	case err := <-op.done:
		return err
	case <-ctx.Done():
		// The work is queued and will still be committed.
		return fmt.Errorf("sqlite: finish %s: %w", rec.ID, ctx.Err())
	}
}

var _ store.Finisher = (*Store)(nil)

func (s *Store) batchLoop() {
	defer s.batch.wg.Done()
	for {
		var first *finishOp
		select {
		case first = <-s.batch.ops:
		case <-s.batch.stop:
			s.drain()
			return
		}
		ops := []*finishOp{first}
		timer := time.NewTimer(batchWindow)
	gather:
		for len(ops) < batchMax {
			select {
			case op := <-s.batch.ops:
				ops = append(ops, op)
			case <-timer.C:
				break gather
			case <-s.batch.stop:
				break gather
			}
		}
		timer.Stop()
		s.commit(ops)
	}
}

// drain commits whatever is still queued when the store closes.
func (s *Store) drain() {
	for {
		var ops []*finishOp
		for len(ops) < batchMax {
			select {
			case op := <-s.batch.ops:
				ops = append(ops, op)
				continue
			default:
			}
			break
		}
		if len(ops) == 0 {
			return
		}
		s.commit(ops)
	}
}

// commit runs ops in one transaction; if that fails, each op runs alone so
// one bad op cannot fail the others.
func (s *Store) commit(ops []*finishOp) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, op := range ops {
			if err := s.finishOne(ctx, tx, op); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		for _, op := range ops {
			op.done <- nil
		}
		return
	}
	for _, op := range ops {
		op.done <- s.inTx(ctx, func(tx *sql.Tx) error { return s.finishOne(ctx, tx, op) })
	}
}

func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

func (s *Store) finishOne(ctx context.Context, tx *sql.Tx, op *finishOp) error {
	if op.o.Reservation != "" {
		next := settleTo(op.o.Actual)
		if op.o.Release {
			next = release
		}
		if err := s.finishTx(ctx, tx, "finish", op.o.Reservation, next); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	if err := s.exec(ctx, tx, qInsertRecord, recordArgs(op.rec)...); err != nil {
		return fmt.Errorf("sqlite: record %s: %w", op.rec.ID, err)
	}
	return nil
}
