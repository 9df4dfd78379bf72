// Package dashboardtest seeds a store with a small, fixed history whose
// every figure is known by hand, so the dashboard's handler tests and its
// real-browser test assert the same exact numbers.
//
// The history, at Now (2026-11-15 12:00 UTC), stage "local":
//
//   - 16 records: one in October (outside the default 30-day range) and 15
//     from 2026-11-10 to 2026-11-15 (none on 11-13), over projects ml and
//     web, users alice, bob, carol and dave, and models gpt-4o,
//     gpt-4o-mini and text-embedding-3-small;
//   - two cache hits (saving 2.40 and 0.06 USD), one upstream error (502)
//     and three budget refusals (429 budget_exceeded);
//   - four limits whose counters are filled the way the proxy fills them
//     (Reserve then Settle of every billed record), and two reservations
//     still held at Now (ml/alice/gpt-4o 0.25, web/dave/gpt-4o-mini 0.05).
package dashboardtest

import (
	"context"
	"fmt"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/budget"
	"github.com/wrapi-dev/wrapi/pkg/meter"
	"github.com/wrapi-dev/wrapi/pkg/money"
	"github.com/wrapi-dev/wrapi/pkg/store"
)

// Stage is the stage of every seeded item.
const Stage = "local"

// Now is the instant the seeded history ends at.
var Now = time.Date(2026, 11, 15, 12, 0, 0, 0, time.UTC)

// Rec is one seeded request, in a compact form.
type Rec struct {
	ID, At, Project, User, Model string
	Status                       int
	Code                         string
	In, Out                      int64
	Cost, Saved                  string
	Hit                          bool
}

// Records is the seeded history.
var Records = []Rec{
	{"r00", "2026-10-01T09:00:00Z", "ml", "alice", "gpt-4o", 200, "", 2_000_000, 400_000, "9.00", "", false},
	{"r01", "2026-11-10T09:00:00Z", "ml", "alice", "gpt-4o", 200, "", 300_000, 50_000, "1.25", "", false},
	{"r02", "2026-11-10T10:00:00Z", "ml", "bob", "gpt-4o-mini", 200, "", 100_000, 25_000, "0.03", "", false},
	{"r03", "2026-11-10T11:00:00Z", "web", "carol", "gpt-4o", 200, "", 120_000, 20_000, "0.50", "", false},
	{"r04", "2026-11-11T09:00:00Z", "ml", "alice", "gpt-4o", 200, "", 560_000, 100_000, "2.40", "", false},
	{"r05", "2026-11-11T09:05:00Z", "ml", "alice", "gpt-4o", 200, "", 560_000, 100_000, "0", "2.40", true},
	{"r06", "2026-11-11T13:00:00Z", "web", "carol", "gpt-4o-mini", 502, "upstream_error", 0, 0, "0", "", false},
	{"r07", "2026-11-12T08:00:00Z", "ml", "bob", "gpt-4o", 200, "", 840_000, 100_000, "3.10", "", false},
	{"r08", "2026-11-12T08:30:00Z", "ml", "bob", "gpt-4o", 429, "budget_exceeded", 0, 0, "0", "", false},
	{"r09", "2026-11-12T08:31:00Z", "ml", "bob", "gpt-4o", 429, "budget_exceeded", 0, 0, "0", "", false},
	{"r10", "2026-11-12T12:00:00Z", "web", "carol", "text-embedding-3-small", 200, "", 100, 0, "0.000002", "", false},
	{"r11", "2026-11-14T10:00:00Z", "web", "dave", "gpt-4o-mini", 200, "", 400_000, 100_000, "0.12", "", false},
	{"r12", "2026-11-14T10:05:00Z", "web", "carol", "gpt-4o-mini", 200, "", 200_000, 50_000, "0", "0.06", true},
	{"r13", "2026-11-14T16:00:00Z", "ml", "alice", "gpt-4o", 429, "budget_exceeded", 0, 0, "0", "", false},
	{"r14", "2026-11-14T17:00:00Z", "ml", "alice", "gpt-4o-mini", 200, "", 123, 45, "0.000123456", "", false},
	{"r15", "2026-11-15T09:00:00Z", "ml", "alice", "gpt-4o", 200, "", 150_000, 20_000, "0.75", "", false},
}

// Limit is one seeded limit.
type Limit struct {
	Project, User, Model string
	Period               budget.Period
	USD                  string
}

// Limits are the seeded limits (set after the history, as if an admin had
// lowered them: ml/alice's daily limit is below what alice spent on 11-11).
var Limits = []Limit{
	{"ml", "*", "*", budget.Month, "9"},
	{"ml", "alice", "*", budget.Day, "1"},
	{"web", "*", "*", budget.Month, "50"},
	{"*", "*", "gpt-4o", budget.Total, "100"},
}

// Held are the reservations still held at Now.
var Held = []Rec{
	{ID: "h1", Project: "ml", User: "alice", Model: "gpt-4o", Cost: "0.25"},
	{ID: "h2", Project: "web", User: "dave", Model: "gpt-4o-mini", Cost: "0.05"},
}

// Seed writes the history into st.
func Seed(ctx context.Context, st store.Store) error {
	// Limits start high so that every billed record fits, then take their
	// real amounts; PutLimit keeps the counters of an existing limit.
	var ls []budget.Limit
	for _, l := range Limits {
		bl, err := budget.NewLimit(budget.Scope{Stage: Stage, Project: l.Project, User: l.User, Model: l.Model}, l.Period, 1000*money.USD)
		if err != nil {
			return fmt.Errorf("dashboardtest: %w", err)
		}
		if err := st.PutLimit(ctx, bl); err != nil {
			return fmt.Errorf("dashboardtest: put limit: %w", err)
		}
		ls = append(ls, bl)
	}
	for _, r := range Records {
		rec, err := r.Record()
		if err != nil {
			return err
		}
		if err := st.Record(ctx, rec); err != nil {
			return fmt.Errorf("dashboardtest: record %s: %w", r.ID, err)
		}
		if rec.Cost == 0 {
			continue
		}
		if err := reserve(ctx, st, ls, r, rec.Time, rec.Cost); err != nil {
			return err
		}
		if err := st.Settle(ctx, r.ID, rec.Cost); err != nil {
			return fmt.Errorf("dashboardtest: settle %s: %w", r.ID, err)
		}
	}
	for _, h := range Held {
		if err := reserve(ctx, st, ls, h, Now.Add(-time.Minute), money.MustParse(h.Cost)); err != nil {
			return err
		}
	}
	for i, l := range Limits {
		bl := ls[i]
		bl.Amount = money.MustParse(l.USD)
		if err := st.PutLimit(ctx, bl); err != nil {
			return fmt.Errorf("dashboardtest: put limit: %w", err)
		}
	}
	return nil
}

func reserve(ctx context.Context, st store.Store, ls []budget.Limit, r Rec, at time.Time, amount money.Nanos) error {
	subj := budget.Subject{Stage: Stage, Project: r.Project, User: r.User, Model: r.Model}
	d, err := st.Reserve(ctx, store.Reservation{
		ID: r.ID, Checks: budget.Checks(ls, subj, at, time.UTC), Amount: amount,
		Created: at, Expires: Now.Add(10 * time.Minute),
	})
	if err != nil {
		return fmt.Errorf("dashboardtest: reserve %s: %w", r.ID, err)
	}
	if !d.OK {
		return fmt.Errorf("dashboardtest: reserve %s refused", r.ID)
	}
	return nil
}

// Record expands r into a store record.
func (r Rec) Record() (store.Record, error) {
	t, err := time.Parse(time.RFC3339, r.At)
	if err != nil {
		return store.Record{}, fmt.Errorf("dashboardtest: %s: %w", r.ID, err)
	}
	cost, saved := money.Nanos(0), money.Nanos(0)
	if r.Cost != "" {
		cost = money.MustParse(r.Cost)
	}
	if r.Saved != "" {
		saved = money.MustParse(r.Saved)
	}
	endpoint := "chat/completions"
	if r.Model == "text-embedding-3-small" {
		endpoint = "embeddings"
	}
	served := r.Model
	if r.Status != 200 {
		served = ""
	}
	return store.Record{
		ID: r.ID, Time: t, Stage: Stage, Project: r.Project, User: r.User, Endpoint: endpoint,
		ModelRequested: r.Model, ModelServed: served, Status: r.Status, ErrorCode: r.Code,
		Usage: meter.Usage{InputTokens: r.In, OutputTokens: r.Out},
		Cost:  cost, Reserved: cost, Saved: saved, CacheHit: r.Hit, PriceVersion: "test",
		Latency: time.Duration(len(r.ID)*100+int(r.In/1000)) * time.Millisecond,
	}, nil
}
