// Package storetest is the conformance suite every store.Store backend
// runs: the same invariants on SQLite and DynamoDB. A backend's test calls
// Run with a constructor that returns a fresh, empty store.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/budget"
	"github.com/wrapi-dev/wrapi/pkg/meter"
	"github.com/wrapi-dev/wrapi/pkg/money"
	"github.com/wrapi-dev/wrapi/pkg/store"
)

// Options tune the suite for slower backends.
type Options struct {
	// Concurrency is the number of concurrent reservations in the budget
	// invariant test (default 500).
	Concurrency int
}

// Run runs the conformance suite. newStore must return an empty store;
// the suite closes it.
func Run(t *testing.T, newStore func(t *testing.T) store.Store, opts Options) {
	if opts.Concurrency == 0 {
		opts.Concurrency = 500
	}
	fresh := func(t *testing.T) store.Store {
		s := newStore(t)
		t.Cleanup(func() { s.Close() })
		return s
	}
	t.Run("Limits", func(t *testing.T) { testLimits(t, fresh(t)) })
	t.Run("ReserveAllOrNone", func(t *testing.T) { testAllOrNone(t, fresh(t)) })
	t.Run("ConcurrentReserveNeverOverruns", func(t *testing.T) { testConcurrent(t, fresh(t), opts.Concurrency) })
	t.Run("SettleAndReleaseAreIdempotent", func(t *testing.T) { testIdempotent(t, fresh(t)) })
	t.Run("ExpiredReservationsAreReleased", func(t *testing.T) { testExpiry(t, fresh(t)) })
	t.Run("LoweredLimitIsHonoured", func(t *testing.T) { testLowered(t, fresh(t)) })
	t.Run("WindowsAreSeparate", func(t *testing.T) { testWindows(t, fresh(t)) })
	t.Run("Records", func(t *testing.T) { testRecords(t, fresh(t)) })
	t.Run("Keys", func(t *testing.T) { testKeys(t, fresh(t)) })
	t.Run("Finisher", func(t *testing.T) {
		s := fresh(t)
		f, ok := s.(store.Finisher)
		if !ok {
			t.Skip("optional: this store settles and records in two steps")
		}
		testFinisher(t, s, f)
	})
}

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func mustLimit(t *testing.T, s store.Store, sc budget.Scope, p budget.Period, usd string) budget.Limit {
	t.Helper()
	l, err := budget.NewLimit(sc, p, money.MustParse(usd))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutLimit(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	return l
}

func checksFor(t *testing.T, s store.Store, subj budget.Subject, at time.Time) []budget.Check {
	t.Helper()
	ls, err := s.ListLimits(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return budget.Checks(ls, subj, at, time.UTC)
}

func committedOf(t *testing.T, s store.Store, checks []budget.Check) []money.Nanos {
	t.Helper()
	cs, err := s.Committed(context.Background(), checks)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]money.Nanos, len(cs))
	for i, c := range cs {
		out[i] = c.Committed
	}
	return out
}

func reserve(t *testing.T, s store.Store, id string, checks []budget.Check, amt money.Nanos, at time.Time) budget.Decision {
	t.Helper()
	d, err := s.Reserve(context.Background(), store.Reservation{ID: id, Checks: checks, Amount: amt, Created: at, Expires: at.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

var subj = budget.Subject{Stage: "test", Project: "ml", User: "alice", Model: "gpt-4o-mini"}

func testLimits(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := mustLimit(t, s, budget.Scope{Stage: "test", Project: "ml"}, budget.Month, "10")
	b := mustLimit(t, s, budget.Scope{Stage: "test", User: "alice"}, budget.Day, "1.5")
	mustLimit(t, s, budget.Scope{Stage: "test", Project: "ml"}, budget.Month, "12") // replaces a
	ls, err := s.ListLimits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 2 {
		t.Fatalf("want 2 limits, got %+v", ls)
	}
	got := map[string]money.Nanos{}
	for _, l := range ls {
		got[l.ID] = l.Amount
	}
	if got[a.ID] != money.MustParse("12") || got[b.ID] != money.MustParse("1.5") {
		t.Errorf("limits = %v", got)
	}
	if err := s.DeleteLimit(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteLimit(ctx, b.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second delete: want ErrNotFound, got %v", err)
	}
}

func testAllOrNone(t *testing.T, s store.Store) {
	mustLimit(t, s, budget.Scope{Stage: "test", Project: "ml"}, budget.Month, "10")
	mustLimit(t, s, budget.Scope{Stage: "test", User: "alice"}, budget.Month, "1")
	mustLimit(t, s, budget.Scope{Stage: "test", Model: "gpt-4o"}, budget.Month, "0.01") // does not match subj
	checks := checksFor(t, s, subj, t0)
	if len(checks) != 2 {
		t.Fatalf("want 2 matching checks, got %d", len(checks))
	}
	if d := reserve(t, s, "r1", checks, money.MustParse("0.6"), t0); !d.OK {
		t.Fatalf("0.6 of 1 refused: %+v", d)
	}
	d := reserve(t, s, "r2", checks, money.MustParse("0.5"), t0)
	if d.OK || d.Refused == nil || d.Refused.Limit.Scope.User != "alice" {
		t.Fatalf("0.6+0.5 > 1 (user limit) must be refused by the user limit: %+v", d)
	}
	// All or none: the project counter did not move for the refusal.
	if got := committedOf(t, s, checks); got[0]+got[1] != 2*money.MustParse("0.6") {
		t.Errorf("committed = %v, want 0.6 on each", got)
	}
	if d := reserve(t, s, "r3", checks, money.MustParse("0.4"), t0); !d.OK || d.Remaining != 0 {
		t.Fatalf("exactly the remainder must fit: %+v", d)
	}
}

func testConcurrent(t *testing.T, s store.Store, n int) {
	ctx := context.Background()
	// Three limits, a different one tightest: the user limit affords 37
	// reservations of 0.000435 USD (37 × 435000 = 16095000 ≤ 16100000).
	mustLimit(t, s, budget.Scope{Stage: "test", Project: "ml"}, budget.Month, "1")
	mustLimit(t, s, budget.Scope{Stage: "test", User: "alice"}, budget.Month, "0.0161")
	mustLimit(t, s, budget.Scope{Stage: "test", Model: "gpt-4o-mini"}, budget.Day, "0.5")
	checks := checksFor(t, s, subj, t0)
	amt := money.MustParse("0.000435")
	const want = 37
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			id := fmt.Sprintf("c%d", i)
			d, err := s.Reserve(ctx, store.Reservation{ID: id, Checks: checks, Amount: amt, Created: t0, Expires: t0.Add(time.Minute)})
			if err != nil {
				errc <- err
				return
			}
			if !d.OK {
				refused.Add(1)
				return
			}
			ok.Add(1)
			// Half settle below the reservation, half release.
			if i%2 == 0 {
				err = s.Settle(ctx, id, amt-100)
			} else {
				err = s.Release(ctx, id)
			}
			if err != nil {
				errc <- err
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	// Settled and released money frees room, so more than `want` may pass;
	// never fewer: a refusal needs more than 0.0161-0.000435 committed,
	// which takes at least 37 successes of at most 0.000435 each.
	if ok.Load() < want || ok.Load()+refused.Load() != int64(n) {
		t.Errorf("ok=%d refused=%d of %d; want ok ≥ %d and every request decided", ok.Load(), refused.Load(), n, want)
	}
	got := committedOf(t, s, checks)
	for i, c := range checks {
		if got[i] > c.Limit.Amount {
			t.Errorf("limit %s: committed %s exceeds %s", c.Limit.ID, got[i], c.Limit.Amount)
		}
	}
	held, err := s.Reservations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != 0 {
		t.Errorf("%d reservations leaked", len(held))
	}
	// Strict variant: nobody settles until all have tried, so exactly
	// `want` must succeed.
	s2 := s
	mustLimit(t, s2, budget.Scope{Stage: "test", Project: "strict"}, budget.Total, "0.0161")
	sub2 := subj
	sub2.Project = "strict"
	sub2.User = "bob"
	sub2.Model = "o3"
	checks2 := checksFor(t, s2, sub2, t0)
	ok.Store(0)
	var wg2 sync.WaitGroup
	start2 := make(chan struct{})
	for i := range n {
		wg2.Add(1)
		go func() {
			defer wg2.Done()
			<-start2
			d, err := s2.Reserve(ctx, store.Reservation{ID: fmt.Sprintf("s%d", i), Checks: checks2, Amount: amt, Created: t0, Expires: t0.Add(time.Minute)})
			if err != nil {
				t.Error(err)
				return
			}
			if d.OK {
				ok.Add(1)
			}
		}()
	}
	close(start2)
	wg2.Wait()
	if ok.Load() != want {
		t.Errorf("%d concurrent reservations of %s against 0.0161: %d succeeded, want exactly %d", n, amt, ok.Load(), want)
	}
	if got := committedOf(t, s2, checks2); got[0] != want*amt {
		t.Errorf("committed %s, want %s", got[0], want*amt)
	}
}

func testIdempotent(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustLimit(t, s, budget.Scope{Stage: "test", Project: "ml"}, budget.Month, "1")
	checks := checksFor(t, s, subj, t0)
	reserve(t, s, "a", checks, money.MustParse("0.3"), t0)
	for range 3 {
		if err := s.Settle(ctx, "a", money.MustParse("0.1")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Release(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if got := committedOf(t, s, checks)[0]; got != money.MustParse("0.1") {
		t.Errorf("after triple settle + release: committed %s, want 0.1", got)
	}
	reserve(t, s, "b", checks, money.MustParse("0.3"), t0)
	for range 2 {
		if err := s.Release(ctx, "b"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Settle(ctx, "b", money.MustParse("0.2")); err != nil {
		t.Fatal(err)
	}
	if got := committedOf(t, s, checks)[0]; got != money.MustParse("0.1") {
		t.Errorf("after double release (+ late settle): committed %s, want 0.1", got)
	}
	// A retried Reserve with the same ID does not reserve twice.
	reserve(t, s, "c", checks, money.MustParse("0.2"), t0)
	reserve(t, s, "c", checks, money.MustParse("0.2"), t0)
	if got := committedOf(t, s, checks)[0]; got != money.MustParse("0.3") {
		t.Errorf("after a retried reserve: committed %s, want 0.3", got)
	}
	if err := s.Settle(ctx, "nope", 1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("settle of unknown id: want ErrNotFound, got %v", err)
	}
}

func testExpiry(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustLimit(t, s, budget.Scope{Stage: "test", Project: "ml"}, budget.Month, "1")
	checks := checksFor(t, s, subj, t0)
	reserve(t, s, "crashed", checks, money.MustParse("0.7"), t0) // expires t0+1m
	reserve(t, s, "late", checks, money.MustParse("0.2"), t0)
	if d := reserve(t, s, "blocked", checks, money.MustParse("0.5"), t0); d.OK {
		t.Fatal("0.9 held: 0.5 more must be refused")
	}
	n, err := s.ReleaseExpired(ctx, t0.Add(30*time.Second))
	if err != nil || n != 0 {
		t.Fatalf("nothing has expired yet: n=%d err=%v", n, err)
	}
	n, err = s.ReleaseExpired(ctx, t0.Add(2*time.Minute))
	if err != nil || n != 2 {
		t.Fatalf("two reservations expired: n=%d err=%v", n, err)
	}
	if got := committedOf(t, s, checks)[0]; got != 0 {
		t.Errorf("after expiry: committed %s, want 0", got)
	}
	// The late request finally settles: its real spend counts.
	if err := s.Settle(ctx, "late", money.MustParse("0.15")); err != nil {
		t.Fatal(err)
	}
	if err := s.Settle(ctx, "late", money.MustParse("0.15")); err != nil {
		t.Fatal(err)
	}
	if got := committedOf(t, s, checks)[0]; got != money.MustParse("0.15") {
		t.Errorf("late settle after expiry: committed %s, want 0.15", got)
	}
	held, err := s.Reservations(ctx)
	if err != nil || len(held) != 0 {
		t.Errorf("held = %v, %v; want none", held, err)
	}
}

func testLowered(t *testing.T, s store.Store) {
	mustLimit(t, s, budget.Scope{Stage: "test", Project: "ml"}, budget.Month, "1")
	checks := checksFor(t, s, subj, t0) // carries the old amount
	mustLimit(t, s, budget.Scope{Stage: "test", Project: "ml"}, budget.Month, "0.1")
	if d := reserve(t, s, "x", checks, money.MustParse("0.5"), t0); d.OK {
		t.Fatal("a limit lowered after the caller read it must still be enforced at its new amount")
	}
}

func testWindows(t *testing.T, s store.Store) {
	mustLimit(t, s, budget.Scope{Stage: "test", Project: "ml"}, budget.Month, "1")
	endOfNov := time.Date(2026, 11, 30, 23, 59, 59, 0, time.UTC)
	dec := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	if d := reserve(t, s, "nov", checksFor(t, s, subj, endOfNov), money.MustParse("1"), endOfNov); !d.OK {
		t.Fatal("November's full budget refused")
	}
	if d := reserve(t, s, "nov2", checksFor(t, s, subj, endOfNov), 1, endOfNov); d.OK {
		t.Fatal("November is spent")
	}
	if d := reserve(t, s, "dec", checksFor(t, s, subj, dec), money.MustParse("1"), dec); !d.OK {
		t.Fatal("December starts a new window")
	}
}

func testRecords(t *testing.T, s store.Store) {
	ctx := context.Background()
	rec := func(id string, at time.Time, project, model string, cost string, status int) store.Record {
		return store.Record{ID: id, Time: at, Stage: "test", Project: project, User: "alice", Endpoint: "chat/completions",
			ModelRequested: model, Status: status, Cost: money.MustParse(cost),
			Usage: meter.Usage{InputTokens: 100, CachedInputTokens: 20, OutputTokens: 50, ReasoningTokens: 10}}
	}
	day2 := t0.Add(24 * time.Hour)
	for _, r := range []store.Record{
		rec("1", t0, "ml", "gpt-4o", "0.000000001", 200),
		rec("2", t0, "ml", "gpt-4o", "0.25", 200),
		rec("3", t0, "web", "gpt-4o", "0.5", 200),
		rec("4", day2, "ml", "gpt-4o", "0", 429),
		rec("2", t0, "ml", "gpt-4o", "0.25", 200), // retried write: counted once
	} {
		if err := s.Record(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := s.DailyUsage(ctx, store.UsageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var total store.UsageRow
	for _, r := range rows {
		total.Add(r)
	}
	if total.Requests != 4 || total.Errors != 1 || total.Cost != money.MustParse("0.750000001") ||
		total.Usage.InputTokens != 400 || total.Usage.ReasoningTokens != 40 {
		t.Errorf("total = %+v", total)
	}
	rows, err = s.DailyUsage(ctx, store.UsageFilter{Project: "ml", Since: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Day != "2026-11-28" || rows[0].Requests != 1 {
		t.Errorf("filtered rows = %+v", rows)
	}
	top, err := s.Records(ctx, store.UsageFilter{}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(top) != 2 || top[0].ID != "3" || top[1].ID != "2" || !top[0].Time.Equal(t0) || top[0].Usage.CachedInputTokens != 20 {
		t.Errorf("top records = %+v", top)
	}
}

func testKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	k := store.Key{ID: "key_1", Hash: "h1", Prefix: "sk-wrapi-abcd", User: "alice", Project: "ml", Created: t0}
	if err := s.CreateKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateKey(ctx, store.Key{ID: "key_2", Hash: "h1", User: "x", Created: t0}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate hash: want ErrConflict, got %v", err)
	}
	got, err := s.KeyByHash(ctx, "h1")
	if err != nil || got.ID != "key_1" || got.User != "alice" || got.Project != "ml" || got.Revoked != nil {
		t.Fatalf("KeyByHash = %+v, %v", got, err)
	}
	if _, err := s.KeyByHash(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown hash: want ErrNotFound, got %v", err)
	}
	if err := s.RevokeKey(ctx, "key_1", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.KeyByHash(ctx, "h1"); got.Revoked == nil || !got.Revoked.Equal(t0.Add(time.Hour)) {
		t.Errorf("revoked key = %+v", got)
	}
	if err := s.RevokeKey(ctx, "key_9", t0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoke unknown: want ErrNotFound, got %v", err)
	}
	ks, err := s.ListKeys(ctx)
	if err != nil || len(ks) != 1 {
		t.Errorf("ListKeys = %+v, %v", ks, err)
	}
}

func testFinisher(t *testing.T, s store.Store, f store.Finisher) {
	ctx := context.Background()
	mustLimit(t, s, budget.Scope{Stage: "test", Project: "ml"}, budget.Month, "1")
	checks := checksFor(t, s, subj, t0)
	rec := func(id string, cost string) store.Record {
		return store.Record{ID: id, Time: t0, Stage: "test", Project: "ml", User: "alice", Endpoint: "chat/completions",
			ModelRequested: "gpt-4o-mini", Status: 200, Cost: money.MustParse(cost)}
	}
	reserve(t, s, "a", checks, money.MustParse("0.3"), t0)
	reserve(t, s, "b", checks, money.MustParse("0.3"), t0)
	for range 2 { // a retried Finish counts once
		if err := f.Finish(ctx, store.Outcome{Reservation: "a", Actual: money.MustParse("0.1")}, rec("a", "0.1")); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Finish(ctx, store.Outcome{Reservation: "b", Release: true}, rec("b", "0")); err != nil {
		t.Fatal(err)
	}
	if err := f.Finish(ctx, store.Outcome{}, rec("c", "0.2")); err != nil { // no reservation
		t.Fatal(err)
	}
	if got := committedOf(t, s, checks)[0]; got != money.MustParse("0.1") {
		t.Errorf("committed %s, want 0.1 (a settled at 0.1, b released)", got)
	}
	rows, err := s.DailyUsage(ctx, store.UsageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var total store.UsageRow
	for _, r := range rows {
		total.Add(r)
	}
	if total.Requests != 3 || total.Cost != money.MustParse("0.3") {
		t.Errorf("records: %+v, want 3 requests costing 0.3", total)
	}
	if held, _ := s.Reservations(ctx); len(held) != 0 {
		t.Errorf("held after Finish: %+v", held)
	}
}
